"""The dispatcher through its whole path: admit -> journal -> checks -> actions -> reply."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bridge import auth, grammar
from bridge.actions import builtins
from bridge.actions.context import ActionContext
from bridge.actions.registry import Registry, action
from bridge.dispatcher import BINARY_REPLY_MAGIC, STATUS_OK, STATUS_USAGE
from bridge.grammar import Command, Level
from bridge.journal import Journal, State
from pdu.dcs import Alphabet

from .test_dispatcher_rig import (
    BENCH,
    DEVICE,
    KEY,
    OTHER_KEY,
    Rig,
    make_config,
    signed,
    signed_binary,
)

SID = "DC" + "0123456789abcdef" * 2


async def test_open_ping_answered_signed_to_the_short_code(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        e = await rig.sms("ping")
        assert e.state is State.SENT and e.tp_mr == 1
        assert e.reply_to == "2936" and e.product == "programmable-wireless"
        assert rig.sender.sent[0][0] == "2936" and rig.sender.sent[0][2] is False
        assert rig.last_reply_body() == "pong"
        assert [t.state for t in e.transitions] == [
            State.RECEIVED,
            State.EXECUTING,
            State.DONE,
            State.REPLY_QUEUED,
            State.SENDING,
            State.SENT,
        ]
        assert rig.counters["executed"] == 1 and rig.counters["sent"] == 1


async def test_reply_unsigned_without_a_key(tmp_path: Path) -> None:
    async with Rig(tmp_path, keys=None) as rig:
        await rig.sms("PING")
        assert rig.replies() == ["pong"]


async def test_unsigned_command_above_its_level_gets_no_reply(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        e = await rig.sms("gpio set relay1 on")
        assert e.state is State.REJECTED and e.reason == "level:gpio-set"
        assert rig.sender.calls == 0
        assert rig.sim.gpio.writes == []
        assert rig.counters["auth_failures"] == 1 and rig.counters["rejected:level:gpio-set"] == 1


async def test_signed_command_runs_and_its_counter_is_persisted(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        e = await rig.sms(signed("gpio set relay1 on", 5))
        assert e.state is State.SENT and e.counter == 5
        assert rig.last_reply_body() == "relay1=on"
        assert rig.sim.gpio.value("relay1") == 1
        window = await rig.worker.call(Journal.replay_window)
        assert window.highest == 5


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: signed("gpio set relay1 on", 3).replace("relay1 on", "relay1 of"), "auth:bad-tag"),
        (lambda: signed("gpio set relay1 on", 3, key=OTHER_KEY), "auth:bad-tag"),
        (lambda: signed("gpio set relay1 on", 3, version=2), "auth:unknown-key"),
        (lambda: signed("gpio set relay1 on", 3)[:-1], "auth:malformed"),
        (lambda: "gpio set relay1 on #BAAAAAD", "auth:malformed"),
    ],
    ids=["altered", "wrong-key", "unknown-key-version", "truncated", "garbage-trailer"],
)
async def test_failed_signature_no_reply_reason_journaled_and_counted(
    tmp_path: Path, make: object, reason: str
) -> None:
    assert callable(make)
    async with Rig(tmp_path) as rig:
        e = await rig.sms(make())
        assert e.state is State.REJECTED and e.reason == reason
        assert rig.sender.calls == 0 and rig.sim.gpio.writes == []
        assert rig.counters["auth_failures"] == 1
        assert (await rig.worker.call(Journal.replay_window)).highest == 0


async def test_replayed_signed_command_not_run_twice(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        cmd = signed("gpio pulse gate 5", 9)
        first = await rig.sms(cmd, identity="a")
        again = await rig.sms(cmd, identity="b")  # a different SMS, same Command
        assert first.state is State.SENT
        assert again.state is State.REJECTED and again.reason == "auth:replayed"
        assert rig.sim.gpio.writes == [("gate", 1), ("gate", 0)]
        assert len(rig.sender.sent) == 1 and rig.counters["auth_failures"] == 1


async def test_signed_command_with_no_key_configured_is_rejected(tmp_path: Path) -> None:
    async with Rig(tmp_path, keys=None) as rig:
        e = await rig.sms(signed("ping", 1))
        assert e.state is State.REJECTED and e.reason == "auth:no-key"
        assert rig.sender.calls == 0


async def test_spoofed_sender_no_reply_journaled_and_counted(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        e = await rig.sms(signed("ping", 1), sender="+447700900123")
        assert e.state is State.REJECTED and e.reason == "unknown-sender"
        assert e.body == signed("ping", 1)  # kept as it came, nothing lost
        assert rig.sender.calls == 0
        assert rig.counters["rejected:unknown-sender"] == 1


async def test_bench_number_is_allowlisted_and_answered_on_the_short_code(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        e = await rig.sms("sensor water", sender=BENCH)
        assert e.state is State.SENT and e.reply_to == "2936"
        assert rig.last_reply_body() == "water=21.5°C"


async def test_super_sim_answered_on_000(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        e = await rig.sms("ping", sender="000")
        assert e.product == "super-sim" and rig.sender.sent[0][0] == "000"


async def test_several_commands_run_in_order_one_reply(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        e = await rig.sms(
            signed("gpio set relay1 on; gpio get relay1 ;ping;; gpio set relay1 off", 1)
        )
        assert e.state is State.SENT
        assert rig.last_reply_body() == "relay1=on; relay1=on; pong; relay1=off"
        assert rig.sim.gpio.writes == [("relay1", 1), ("relay1", 0)]
        assert len(rig.sender.sent) == 1


async def test_one_command_above_level_rejects_the_whole_sms(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        e = await rig.sms("ping; gpio pulse gate 5")
        assert e.state is State.REJECTED and e.reason == "level:gpio-pulse"
        assert rig.sim.gpio.writes == [] and rig.sender.calls == 0


async def test_usage_errors_answered_with_the_usage(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        e = await rig.sms("gpio get")
        assert e.state is State.SENT and e.reason == "usage"
        assert rig.last_reply_body() == "usage: gpio get <line>"
        await rig.sms("ping; gpio get nosuch; frobnicate now")
        assert (
            rig.last_reply_body()
            == "pong; usage: gpio get <line>; unknown command frobnicate; send help"
        )
        assert rig.counters["usage_errors"] == 1


async def test_footer_cut_before_the_signature_check(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        e = await rig.sms(signed("gpio set relay1 on", 2) + "\r\nSent from my phone")
        assert e.state is State.SENT and rig.last_reply_body() == "relay1=on"
        await rig.sms("ping Sent from my phone")
        assert rig.last_reply_body() == "pong"


def _faulty_registry() -> Registry:
    @action("boom", level=Level.OPEN, idempotent=True, timeout=5.0)
    async def boom(ctx: ActionContext) -> str:
        raise RuntimeError("secret detail")

    @action("slow", level=Level.OPEN, idempotent=True, timeout=0.01)
    async def slow(ctx: ActionContext) -> str:
        await asyncio.Event().wait()
        return "never"

    @action("weird", level=Level.OPEN, idempotent=True, timeout=5.0)
    async def weird(ctx: ActionContext) -> int:
        return 42

    reg = builtins()
    for fn in (boom, slow, weird):
        reg.add(fn)
    return reg


async def test_action_raising_or_timing_out_gives_an_error_reply_and_goes_on(
    tmp_path: Path,
) -> None:
    async with Rig(tmp_path, registry=_faulty_registry()) as rig:
        e = await rig.sms("boom; slow; weird; ping")
        assert e.state is State.SENT and e.reason == "command-failed"
        assert rig.last_reply_body() == "boom: error; slow: timeout; weird: error; pong"
        assert "secret" not in rig.last_reply_body()
        assert rig.counters["timeouts"] == 1 and rig.counters["action_errors"] == 2
        await rig.sms("ping")
        assert rig.last_reply_body() == "pong"
        assert rig.counters["dispatch_errors"] == 0


async def test_hal_error_message_is_in_the_reply(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        await rig.sms(signed("gpio pulse gate 60", 1))  # gate's max_pulse_ms is 50
        body = rig.last_reply_body()
        assert body == "gpio pulse: error gpio gate: pulse must be 1 to 50 ms, not 60"
        assert rig.sim.gpio.writes == []


async def test_budgets_per_sender_and_global(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, budgets={"sender_per_hour": 2, "global_per_day": 3})
    async with Rig(tmp_path, cfg=cfg) as rig:
        for _ in range(2):
            assert (await rig.sms("ping")).state is State.SENT
        over = await rig.sms("gpio get door")
        assert over.state is State.REJECTED and over.reason == "over-budget:sender-hour"
        assert (await rig.sms("ping", sender=BENCH)).state is State.SENT
        glob = await rig.sms("ping", sender="000")
        assert glob.state is State.REJECTED and glob.reason == "over-budget:global-day"
        assert len(rig.sender.sent) == 3 and rig.counters["over_budget"] == 2


async def test_budget_survives_a_restart(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, budgets={"sender_per_day": 1})
    async with Rig(tmp_path, cfg=cfg) as rig:
        await rig.sms("ping", identity="before")
    async with Rig(tmp_path, cfg=cfg) as rig:
        e = await rig.sms("ping", identity="after")
        assert e.reason == "over-budget:sender-day" and rig.sender.calls == 0


@pytest.mark.parametrize("where", ["start", "end"])
async def test_include_sid_taken_off_and_used_for_dedupe(tmp_path: Path, where: str) -> None:
    async with Rig(tmp_path) as rig:
        body = signed("gpio pulse gate 5", 4)
        text = f"{SID} {body}" if where == "start" else f"{body} {SID}"
        e = await rig.sms(text, identity="first")
        assert e.state is State.SENT and e.sid == SID
        assert rig.last_reply_body() == "gate pulsed 5ms"
        # Twilio retries the Command: another SMS (new identity), same SID
        receipt_entry = await rig.sms(text, identity="second")
        assert receipt_entry.id == e.id
        assert rig.counters["duplicates"] == 1
        assert rig.sim.gpio.writes == [("gate", 1), ("gate", 0)]
        assert len(rig.sender.sent) == 1


async def test_duplicate_sms_not_run_twice(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        a = await rig.sms("gpio get door", identity="same")
        b = await rig.sms("gpio get door", identity="same")
        assert a.id == b.id and len(rig.sender.sent) == 1
        assert rig.counters["duplicates"] == 1 and rig.counters["executed"] == 1


def _binary(*cmds: Command) -> bytes:
    return grammar.encode_binary(cmds)


async def test_binary_command_binary_reply(tmp_path: Path) -> None:
    specs = builtins().specs
    async with Rig(tmp_path) as rig:
        payload = _binary(
            Command("gpio set", {"line": "relay1", "value": True}, specs["gpio set"]),
            Command("ping", {}, specs["ping"]),
        )
        e = await rig.sms(signed_binary(payload, 7))
        assert e.state is State.SENT
        _to, content, binary = rig.sender.sent[-1]
        assert binary is True and isinstance(content, bytes)
        v = auth.verify_reply(content, keys={1: KEY}, device_id=DEVICE)
        body = v.body
        assert isinstance(body, bytes)
        assert body[0] == BINARY_REPLY_MAGIC | 1
        assert body[1:] == bytes((STATUS_OK, 9)) + b"relay1=on" + bytes((STATUS_OK, 4)) + b"pong"
        assert rig.sim.gpio.value("relay1") == 1


async def test_unsigned_binary_and_binary_usage_error(tmp_path: Path) -> None:
    async with Rig(tmp_path, keys=None) as rig:
        await rig.sms(bytes((0xA0, 1, 0)))  # ping
        content = rig.replies()[-1]
        assert content == bytes((BINARY_REPLY_MAGIC, STATUS_OK, 4)) + b"pong"
        await rig.sms(bytes((0xA0, 4, 0)))  # gpio get with no line
        content = rig.replies()[-1]
        assert isinstance(content, bytes) and content[1] == STATUS_USAGE
        assert content[3:] == b"usage: gpio get <line>"


async def test_garbage_binary_is_answered_or_rejected_never_raises(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        e = await rig.sms(b"\x00\x01\x02")
        assert e.state is State.SENT  # answered "bad command", allow-listed sender
        e = await rig.sms(b"\xa1" + b"\x00" * 20)  # claims a signature, has none valid
        assert e.state is State.REJECTED and e.reason.startswith("auth:")
        assert rig.counters["dispatch_errors"] == 0


async def test_binary_on_super_sim_refused(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        e = await rig.sms(bytes((0xA0, 1, 0)), sender="000")
        assert e.state is State.REJECTED and e.reason == "binary-not-allowed"


async def test_ucs2_command(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        e = await rig.sms("Ping", coding=Alphabet.UCS2)
        assert e.state is State.SENT and rig.last_reply_body() == "pong"
        await rig.sms("sensor wäter", coding=Alphabet.UCS2)
        assert rig.last_reply_body().startswith("usage: sensor [<name>]")


@pytest.mark.parametrize(
    ("body", "coding"),
    [
        ("p" * 161, Alphabet.GSM7),
        ("{" * 81, Alphabet.GSM7),  # 162 septets: an extension character costs two
        ("ü" * 71, Alphabet.UCS2),
        (b"\xa0" + b"\x01\x00" * 70, Alphabet.DATA8),  # 141 octets
    ],
    ids=["161-septets", "escapes", "71-ucs2", "141-octets"],
)
async def test_oversize_bodies_rejected_unanswered(
    tmp_path: Path, body: str | bytes, coding: Alphabet
) -> None:
    async with Rig(tmp_path) as rig:
        e = await rig.sms(body, coding=coding)
        assert e.state is State.REJECTED and e.reason == "body-too-long"
        assert rig.sender.calls == 0


async def test_exact_limits_accepted(tmp_path: Path) -> None:
    async with Rig(tmp_path, keys=None) as rig:
        e = await rig.sms("ping" + " " * 156)
        assert e.state is State.SENT


async def test_undecodable_pdu_journaled_raw_not_answered(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        r = await rig.dispatcher.admit_undecodable(
            modem="modem0", identity="raw-1", raw_pdu="07911326", error="truncated TPDU"
        )
        await rig.settle()
        e = await rig.worker.call(Journal.get, r.entry_id)
        assert e.state is State.REJECTED and e.raw_pdu == "07911326" and e.reason == "undecodable"
        assert rig.sender.calls == 0 and rig.counters["undecodable"] == 1


async def test_incomplete_concatenation_rejected(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        e = await rig.sms("gpio ge", complete=False)
        assert e.state is State.REJECTED and e.reason == "incomplete"
        assert rig.sender.calls == 0


async def test_empty_command_rejected(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        e = await rig.sms(" ; ;\nSent from")
        assert e.state is State.REJECTED and e.reason == "empty" and rig.sender.calls == 0


async def test_long_reply_fits_one_sms_and_keeps_every_head(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        await rig.sms("status; info; ping; help")
        content = rig.replies()[-1]
        assert isinstance(content, str)
        from pdu import alphabet

        septets = alphabet.gsm7_length(content)
        if septets is not None:
            assert septets <= 160
        else:
            assert len(content.encode("utf-16-be")) // 2 <= 70
        body = rig.last_reply_body()
        assert body.startswith("up=") and "; imei=860000000000001" in body
        assert "; pong; commands: " in body  # each Command's first field kept
        assert "python=" not in body  # the least important fields went first


async def test_level_override_from_configuration(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, security={"levels": {"ping": "signed"}})
    async with Rig(tmp_path, cfg=cfg) as rig:
        e = await rig.sms("ping")
        assert e.reason == "level:ping"
        e = await rig.sms(signed("ping", 1))
        assert e.state is State.SENT


async def test_stop_finishes_the_entry_in_flight(tmp_path: Path) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    @action("hold", level=Level.OPEN, idempotent=False, timeout=30.0)
    async def hold(ctx: ActionContext) -> str:
        started.set()
        await release.wait()
        return "held"

    reg = builtins()
    reg.add(hold)
    rig = Rig(tmp_path, registry=reg)
    await rig.__aenter__()
    try:
        from bridge.inbound import Incoming

        r = await rig.dispatcher.admit(
            Incoming("2936", "hold", Alphabet.GSM7, "h", (), True), modem="modem0"
        )
        r2 = await rig.dispatcher.admit(
            Incoming("2936", "ping", Alphabet.GSM7, "p", (), True), modem="modem0"
        )
        await started.wait()
        stopping = asyncio.create_task(rig.dispatcher.stop())
        await asyncio.sleep(0)
        assert not stopping.done()
        release.set()
        await stopping
        held = await rig.worker.call(Journal.get, r.entry_id)
        assert held.state in (State.REPLY_QUEUED, State.SENDING, State.SENT)
        queued = await rig.worker.call(Journal.get, r2.entry_id)
        assert queued.state is State.RECEIVED  # left for the next start
    finally:
        await rig.outbox.stop()
        await rig.worker.close()


async def test_stop_cancels_an_action_past_the_grace_and_recovery_answers_it(
    tmp_path: Path,
) -> None:
    started = asyncio.Event()

    @action("hang", level=Level.OPEN, idempotent=False, timeout=3600.0)
    async def hang(ctx: ActionContext) -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    reg = builtins()
    reg.add(hang)
    rig = Rig(tmp_path, registry=reg, stop_grace=0.01)
    await rig.__aenter__()
    from bridge.inbound import Incoming

    r = await rig.dispatcher.admit(
        Incoming("2936", "hang", Alphabet.GSM7, "h", (), True), modem="modem0"
    )
    await started.wait()
    await rig.__aexit__(None, None, None)
    async with Rig(tmp_path, registry=reg) as again:
        await again.settle()
        e = await again.worker.call(Journal.get, r.entry_id)
        assert e.state is State.SENT and e.reason == "interrupted"
        assert again.last_reply_body() == "interrupted"


async def test_expiry_with_a_trusted_clock(tmp_path: Path) -> None:
    now = 1_800_000_000.0
    cfg = make_config(tmp_path, security={"max_age": 300})

    def ts_signed(text: str, at: float) -> str:
        return auth.sign_command(
            text,
            key=KEY,
            key_version=1,
            device_id=DEVICE,
            counter=auth.timestamp_counter(at),
            timestamp=True,
        )

    async with Rig(tmp_path, cfg=cfg, clock=lambda: now) as rig:
        assert (await rig.sms(ts_signed("ping", now - 10))).state is State.SENT
        old = await rig.sms(ts_signed("ping", now - 1000))
        assert old.reason == "auth:expired"
        plain = await rig.sms(signed("ping", 1))
        assert plain.reason == "auth:no-timestamp"
        assert len(rig.sender.sent) == 1


async def test_recorded_counter_not_expired_again_after_a_restart(tmp_path: Path) -> None:
    t0 = 1_800_000_000.0
    cfg = make_config(tmp_path, security={"max_age": 300})
    body = auth.sign_command(
        "ping",
        key=KEY,
        key_version=1,
        device_id=DEVICE,
        counter=auth.timestamp_counter(t0),
        timestamp=True,
    )
    with Journal.open(tmp_path / "journal.db") as j:
        eid = j.receive(modem="modem0", sender="2936", body=body, identity="x").entry_id
        c = auth.timestamp_counter(t0)
        assert j.authenticate(eid, c, j.replay_window().check(c))
    async with Rig(tmp_path, cfg=cfg, clock=lambda: t0 + 3600) as rig:  # an hour later
        await rig.settle()
        e = await rig.worker.call(Journal.get, eid)
        assert e.state is State.SENT and rig.last_reply_body() == "pong"


async def test_logs_one_line_per_event_without_body_key_or_signature(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    async with Rig(tmp_path) as rig:
        good = signed("gpio set relay1 on", 1)
        bad = signed("gpio set relay1 off", 2).replace("off", "of")
        await rig.sms(good)
        await rig.sms(bad)
        await rig.sms("sensor water")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert all("\n" not in r.getMessage() for r in caplog.records)
    trailer = good.split()[-1]
    for secret in (trailer, trailer[8:], bad.split()[-1], "relay1 on", "relay1 of", KEY.hex()):
        assert secret not in text
    assert "rejected (auth:bad-tag), not answered" in text
    assert "entry 1: gpio set done, reply sent to 2936, mr=" in text


async def test_known_hook_answers_from_the_journal(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        await rig.sms("ping", identity="m1")
        assert await rig.dispatcher.known("m1/1") is True
        assert await rig.dispatcher.known("m2/1") is False
