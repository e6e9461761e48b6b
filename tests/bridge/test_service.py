"""The service end to end through the in-process simulated module (sim://).

Every Command is delivered by the simulated network and takes the whole
path: +CMTI, +CMGR, the SMS service, the journal, +CMGD, the dispatcher,
the action through the simulated HAL, the outbox, +CMGS. What was answered
is read from the simulator's MO log.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bridge import auth
from bridge.journal import Journal, JournalError, Kind, State
from modem.sms import ReceivedMessage

from .test_dispatcher_rig import DEVICE, OTHER_KEY, script_runs, signed, signed_binary
from .test_service_rig import SPOOFER, ServiceRig, service_config

SID = "DC" + "0123456789abcdef" * 2


@pytest.mark.parametrize("profile", ["bg96", "sim7600"])
async def test_every_builtin_through_the_simulator(tmp_path: Path, profile: str) -> None:
    cfg = service_config(tmp_path, modems=[{"port": f"sim://{profile}"}])
    async with ServiceRig(cfg) as rig:

        async def one(body: str) -> str:
            out = await rig.sms(body)
            assert len(out) == 1, body
            assert out[0].to == "2936" and out[0].dcs in (0x00, 0x08)  # GSM 7-bit or UCS-2
            text = out[0].body
            assert isinstance(text, str)
            return text

        assert await one("ping") == "pong"
        status = await one("status")
        assert status.startswith("up=") and "reg=home" in status and "op=" in status
        assert "sig=-" in status
        info = await one("info")
        assert f"iccid={rig.svc.links['modem0'].stack.session.identity.iccid}" in info
        assert "imei=" in info and "imei=?" not in info and "bridge=" in info
        assert await one("gpio get door") == "door=off"
        assert await one(signed("gpio set relay1 on", 1)) == "relay1=on"
        assert rig.hal.gpio.value("relay1") == 1
        assert await one(signed("gpio pulse gate 5", 2)) == "gate pulsed 5ms"
        assert rig.hal.gpio.writes[-2:] == [("gate", 1), ("gate", 0)]
        assert await one("sensor water") == "water=21.5°C"
        assert (await one(signed("run again x", 3))).startswith("again exit=0 ran 1 args: x")
        assert script_runs(tmp_path, "again") == 1
        assert await one("help") == "commands: gpio get, help, info, ping, sensor, status"
        assert await one(signed("reboot", 4)) == "rebooting"
        assert rig.hal.power.executed == ["reboot"]  # after the reply was marked sent
        e = await rig.entry()
        assert e.state is State.SENT and e.tp_mr is not None


@pytest.mark.parametrize(
    ("product", "sender", "reply_to"),
    [
        ("programmable-wireless", "2936", "2936"),
        ("super-sim", "000", "000"),
        ("auto", "2936", "2936"),
        ("auto", "000", "000"),
    ],
)
async def test_products_answered_on_their_short_code(
    tmp_path: Path, product: str, sender: str, reply_to: str
) -> None:
    cfg = service_config(tmp_path, bridge={"product": product})
    async with ServiceRig(cfg) as rig:
        out = await rig.sms("ping", sender=sender)
        assert [(s.to, s.body) for s in out] == [(reply_to, "pong")]
        e = await rig.entry()
        assert e.product == ("super-sim" if sender == "000" else "programmable-wireless")


@pytest.mark.parametrize("where", ["start", "end"])
async def test_include_sid_taken_off_and_journaled(tmp_path: Path, where: str) -> None:
    async with ServiceRig(service_config(tmp_path)) as rig:
        out = await rig.sms("ping", include_sid=where, sid=SID)
        assert [s.body for s in out] == ["pong"]
        e = await rig.entry()
        assert e.sid == SID and e.state is State.SENT
        # Twilio retries the same Command (same SID) as a new SMS: not run twice
        again = await rig.sms("ping", include_sid=where, sid=SID)
        assert again == [] and rig.svc.counters["duplicates"] == 1


async def test_duplicate_delivery_run_once_answered_once(tmp_path: Path) -> None:
    async with ServiceRig(service_config(tmp_path)) as rig:
        out = await rig.sms(signed("gpio pulse gate 5", 1), copies=2, duplicate=True)
        assert [s.body for s in out] == ["gate pulsed 5ms"]
        assert rig.hal.gpio.writes == [("gate", 1), ("gate", 0)]
        assert rig.svc.counters["duplicates"] == 1


async def test_binary_command_gets_a_binary_reply_dcs_04(tmp_path: Path) -> None:
    async with ServiceRig(service_config(tmp_path)) as rig:
        out = await rig.sms(signed_binary(bytes.fromhex("a00100"), 1))
        assert len(out) == 1 and out[0].dcs == 0x04 and isinstance(out[0].content, bytes)
        assert out[0].body == bytes.fromhex("b10004") + b"pong"


async def test_binary_refused_on_super_sim_not_answered(tmp_path: Path) -> None:
    cfg = service_config(tmp_path, bridge={"product": "super-sim"})
    async with ServiceRig(cfg) as rig:
        assert await rig.sms(bytes.fromhex("a00100"), sender="000") == []
        e = await rig.entry()
        assert e.state is State.REJECTED and e.reason == "binary-not-allowed"


@pytest.mark.parametrize(
    ("make", "sender", "reason"),
    [
        (lambda: signed("gpio set relay1 on", 1), SPOOFER, "unknown-sender"),
        (lambda: signed("gpio set relay1 on", 1).replace("on #", "of #"), "2936", "auth:bad-tag"),
        (lambda: signed("gpio set relay1 on", 1, key=OTHER_KEY), "2936", "auth:bad-tag"),
        (lambda: signed("gpio set relay1 on", 1, version=3), "2936", "auth:unknown-key"),
        (lambda: signed("gpio set relay1 on", 1)[:-2], "2936", "auth:malformed"),
        (lambda: "gpio set relay1 on", "2936", "level:gpio-set"),
    ],
    ids=["spoofed", "altered", "wrong-key", "unknown-version", "truncated", "unsigned"],
)
async def test_security_refusals_journaled_counted_never_answered(
    tmp_path: Path, make: object, sender: str, reason: str
) -> None:
    assert callable(make)
    async with ServiceRig(service_config(tmp_path)) as rig:
        assert await rig.sms(make(), sender=sender) == []
        e = await rig.entry()
        assert e.state is State.REJECTED and e.reason == reason
        assert rig.hal.gpio.writes == []
        assert rig.svc.counters[f"rejected:{reason}"] == 1


async def test_replayed_signed_command_not_run_again(tmp_path: Path) -> None:
    async with ServiceRig(service_config(tmp_path)) as rig:
        cmd = signed("gpio pulse gate 5", 7)
        assert [s.body for s in await rig.sms(cmd)] == ["gate pulsed 5ms"]
        assert await rig.sms(cmd) == []  # a new SMS (new SCTS) with the same counter
        e = await rig.entry()
        assert e.reason == "auth:replayed"
        assert rig.hal.gpio.writes == [("gate", 1), ("gate", 0)]


async def test_without_a_key_signed_verbs_are_refused(tmp_path: Path) -> None:
    async with ServiceRig(service_config(tmp_path, key=False)) as rig:
        out = await rig.sms("ping")
        assert [s.content for s in out] == ["pong"]  # unsigned reply without a key
        assert await rig.sms(signed("gpio set relay1 on", 1)) == []
        assert (await rig.entry()).reason == "auth:no-key"
        assert await rig.sms("reboot") == []
        assert (await rig.entry()).reason == "level:reboot"
        assert rig.hal.power.requests == []


async def test_reply_budget_per_sender(tmp_path: Path) -> None:
    cfg = service_config(tmp_path, budgets={"sender_per_hour": 2})
    async with ServiceRig(cfg) as rig:
        assert len(await rig.sms("ping")) == 1
        assert len(await rig.sms("ping")) == 1
        assert await rig.sms("ping") == []
        e = await rig.entry()
        assert e.state is State.REJECTED and e.reason == "over-budget:sender-hour"
        assert rig.svc.counters["over_budget"] == 1


async def test_global_budget_counts_the_boot_message(tmp_path: Path) -> None:
    cfg = service_config(tmp_path, budgets={"global_per_hour": 2})
    async with ServiceRig(cfg) as rig:
        assert [s.body.split()[0] for s in rig.sent()] == ["boot"]
        assert len(await rig.sms("ping")) == 1
        assert await rig.sms("ping") == []
        assert (await rig.entry()).reason == "over-budget:global-hour"


async def test_two_modules_each_reply_on_its_own(tmp_path: Path) -> None:
    cfg = service_config(
        tmp_path,
        modems=[
            {"port": "sim://bg96", "name": "north"},
            {"port": "sim://sim7600", "name": "south", "product": "super-sim"},
        ],
        bridge={"product": "programmable-wireless"},
    )
    async with ServiceRig(cfg) as rig:
        south_before = len(rig.sent("south"))
        out = await rig.sms("ping", modem="north")
        assert [(s.to, s.body) for s in out] == [("2936", "pong")]
        assert len(rig.sent("south")) == south_before
        out = await rig.sms("info", modem="south", sender="000")
        assert len(out) == 1 and out[0].to == "000"
        body = out[0].body
        assert isinstance(body, str) and "SIM7600" in body  # the south module answered
        assert (await rig.entry()).modem == "south"
        # the south module is Super SIM only: 2936 is nobody there
        assert await rig.sms("ping", modem="south", sender="2936") == []


async def test_undecodable_pdu_journaled_raw_not_answered(tmp_path: Path) -> None:
    async with ServiceRig(service_config(tmp_path)) as rig:
        index = rig.sim().store_raw("07911326040000F0FFFF", length=9, notify=True)
        assert index >= 0
        await rig.svc.wait_admitted(1)
        await rig.svc.settle()
        e = await rig.entry()
        assert e.kind is Kind.UNDECODABLE and e.state is State.REJECTED
        assert e.raw_pdu is not None and "FFFF" in e.raw_pdu.upper()
        assert rig.svc.counters["undecodable"] == 1
        assert len(rig.sent()) == 1  # only the boot message


async def test_a_journal_failure_keeps_the_sim_copy(tmp_path: Path) -> None:
    async with ServiceRig(service_config(tmp_path)) as rig:
        d = rig.svc.dispatcher
        assert d is not None
        called = asyncio.Event()
        real = d.admit

        async def failing(msg, *, modem):  # type: ignore[no-untyped-def]
            called.set()
            raise JournalError("disk full")

        d.admit = failing  # type: ignore[method-assign]
        sim = rig.sim()
        sim.deliver("ping")
        await called.wait()
        assert sim.storage().used == 1  # not journaled: kept on the SIM
        d.admit = real  # type: ignore[method-assign]
        rig.svc.links["modem0"].stack.sms.request_sweep()
        await rig.svc.wait_admitted(1)
        await rig.svc.settle()
        assert [s.body for s in rig.sent()[1:]] == ["pong"]
        assert (await rig.entry()).state is State.SENT


async def test_restart_recovery_on_the_same_journal(tmp_path: Path) -> None:
    cfg = service_config(tmp_path)
    async with ServiceRig(cfg) as rig:
        assert [s.body for s in await rig.sms(signed("gpio set relay1 on", 1))] == ["relay1=on"]
    # what a crash right after the journal write leaves: received, never run
    with Journal.open(tmp_path / "journal.db") as j:
        r = j.receive(modem="modem0", sender="2936", body="sensor water", identity="crash-1")
    async with ServiceRig(cfg) as rig:
        assert rig.hal.gpio.value("relay1") == 1  # the desired output restored at start
        e = await rig.entry(r.entry_id)
        assert e.state is State.SENT
        bodies = [s.body for s in rig.sent()]
        assert "water=21.5°C" in bodies and sum(str(b).startswith("boot ") for b in bodies) == 1
        # the replay window survived: the same signed Command is refused
        assert await rig.sms(signed("gpio set relay1 on", 1)) == []
        assert (await rig.entry()).reason == "auth:replayed"


async def test_device_id_from_the_iccid_when_not_configured(tmp_path: Path) -> None:
    cfg = service_config(tmp_path, bridge={"device_id": ""})
    async with ServiceRig(cfg) as rig:
        iccid = rig.svc.links["modem0"].stack.session.identity.iccid
        assert iccid and rig.svc.device_id == iccid
        cmd = auth.sign_command(
            "gpio set relay1 on", key=bytes(range(32)), key_version=1, device_id=iccid, counter=1
        )
        out = await rig.sms(cmd)
        v = auth.verify_reply(out[0].content, keys={1: bytes(range(32))}, device_id=iccid)
        assert v.body == "relay1=on"
        # signed for another device: refused
        assert await rig.sms(signed("gpio set relay1 off", 2)) == []
        assert iccid != DEVICE and (await rig.entry()).reason == "auth:bad-tag"


async def test_status_snapshot(tmp_path: Path) -> None:
    async with ServiceRig(service_config(tmp_path)) as rig:
        await rig.sms("ping")
        st = rig.svc.status()
        assert st["state"] == "running" and st["device_id"] == DEVICE and st["signed"] is True
        m = st["modems"]["modem0"]
        assert m["ready"] is True and m["registered"] is True and m["profile"] == "bg96"
        assert st["counters"]["executed"] == 1 and st["counters"]["sent"] == 2
        assert "key" not in str(st).lower().replace("key_", "")
    assert rig.svc.status()["state"] == "stopped"


async def test_consumer_refuses_once_stopping(tmp_path: Path) -> None:
    async with ServiceRig(service_config(tmp_path)) as rig:
        consume = rig.svc.links["modem0"].stack.consumer
        assert consume is not None
    with pytest.raises(RuntimeError, match="stopping"):
        await consume(ReceivedMessage("x", (), ()))


async def test_an_unknown_outcome_send_is_counted_and_the_same_reply_resent(
    tmp_path: Path,
) -> None:
    async with ServiceRig(service_config(tmp_path)) as rig:
        # +CMS ERROR: 500 after the PDU was written: the SMS service cannot say
        # whether it left, raises, and the outbox sends the same reply again
        rig.sim().fault("cms-error", 500)
        out = await rig.sms("ping")
        assert [s.body for s in out] == ["pong"]
        e = await rig.entry()
        assert e.state is State.SENT and e.send_attempts == 2
        assert rig.svc.counters["send_retries"] == 1 and rig.svc.counters["sent"] == 2


async def test_a_failed_modem_stack_stops_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridge.service import Service
    from modem.session import Session

    async def broken(self: Session) -> None:
        raise RuntimeError("session bug")

    monkeypatch.setattr(Session, "run", broken)
    svc = Service(service_config(tmp_path))
    await svc.start()
    await svc.wait_stopped()
    assert isinstance(svc.failure, RuntimeError) and str(svc.failure) == "session bug"
    assert svc.state == "stopped" and svc.worker is not None and svc.worker.closed


def _install_plugin(tmp: Path, monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """A real installed distribution on sys.path (dist-info and a module)."""
    import sys

    site = tmp / "site"
    dist = site / "lamp_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lamp-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[sms_bridge.actions]\nlamp = lamp_plugin_actions\n")
    (site / "lamp_plugin_actions.py").write_text(module)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "lamp_plugin_actions", raising=False)


async def test_the_service_loads_plugin_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_plugin(
        tmp_path,
        monkeypatch,
        "from bridge.actions.registry import action\n"
        "from bridge.grammar import Level\n\n"
        "@action('lamp', level=Level.OPEN, idempotent=True, binary_id=201)\n"
        "async def lamp(ctx):\n    return 'lamp on'\n",
    )
    async with ServiceRig(service_config(tmp_path)) as rig:
        assert [s.body for s in await rig.sms("lamp")] == ["lamp on"]


async def test_a_broken_plugin_is_a_start_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridge.service import Service, ServiceError

    _install_plugin(tmp_path, monkeypatch, "raise ImportError('no such thing')\n")
    svc = Service(service_config(tmp_path))
    with pytest.raises(ServiceError, match="lamp"):
        await svc.start()
    assert svc.state == "stopped"


async def test_direct_delivery_when_configured_is_acknowledged_after_the_journal(
    tmp_path: Path,
) -> None:
    cfg = service_config(tmp_path, modems=[{"port": "sim://bg96", "direct_delivery": True}])
    async with ServiceRig(cfg) as rig:
        assert [s.body for s in await rig.sms("ping")] == ["pong"]
        sim = rig.sim()
        assert [a.result for a in sim.mt_acks] == ["ack"]  # +CNMA: RP-ACK to the network
        assert sim.storage().used == 0  # never stored: +CMT
        assert (await rig.entry()).state is State.SENT


async def test_info_logs_carry_no_body_signature_or_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import base64
    import logging

    caplog.set_level(logging.INFO)
    async with ServiceRig(service_config(tmp_path)) as rig:
        cmd = signed("gpio set relay1 on", 1)
        out = await rig.sms(cmd)
        await rig.sms(cmd.replace("on #", "of #"))  # refused: logged with its reason
    text = caplog.text
    assert "entry 2" in text and "auth:bad-tag" in text
    trailer = cmd.split(" #")[1]
    reply_trailer = str(out[0].content).split(" #")[1]
    for secret in ("relay1 on", "relay1 of", trailer, reply_trailer, "relay1=on"):
        assert secret not in text
    assert base64.urlsafe_b64encode(bytes(range(32))).decode().rstrip("=") not in text


async def test_one_bridge_per_journal(tmp_path: Path) -> None:
    from bridge.service import Service, ServiceError

    cfg = service_config(tmp_path)
    async with ServiceRig(cfg):
        second = Service(cfg)
        with pytest.raises(ServiceError, match="in use by another sms-bridge"):
            await second.start()
        assert second.state == "stopped"
    async with ServiceRig(cfg) as rig:  # released at the stop
        assert rig.svc.state == "running"
