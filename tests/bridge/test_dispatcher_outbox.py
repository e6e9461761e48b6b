"""The outbox: queued -> sending -> sent | send_failed, with a sender that fails,
hangs, or raises after the PDU left; deferred effects after mark_sent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import hal
from bridge import auth
from bridge.inbound import Incoming
from bridge.journal import Journal, State
from pdu.dcs import Alphabet

from .test_dispatcher_rig import DEVICE, KEY, MODEM, Rig, entry_state, signed


async def test_failed_send_retried_then_sent(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        rig.sender.fail_next = 1
        e = await rig.sms("ping")
        assert e.state is State.SENT and e.send_attempts == 2
        assert len(rig.sender.sent) == 1 and rig.sender.calls == 2
        assert rig.counters["send_retries"] == 1
        assert [t.state for t in e.transitions][-4:] == [
            State.SENDING,
            State.REPLY_QUEUED,
            State.SENDING,
            State.SENT,
        ]


async def test_send_failing_every_time_ends_send_failed(tmp_path: Path) -> None:
    async with Rig(tmp_path, max_attempts=3) as rig:
        rig.sender.fail_next = 99
        e = await rig.sms("ping")
        assert e.state is State.SEND_FAILED and e.send_attempts == 3
        assert e.reason == "RuntimeError x3"
        assert rig.counters["send_failed"] == 1 and rig.sender.sent == []
        rig.sender.fail_next = 0
        assert (await rig.sms("ping")).state is State.SENT  # the outbox goes on


async def test_hanging_send_times_out_and_is_retried(tmp_path: Path) -> None:
    async with Rig(tmp_path, send_timeout=0.05) as rig:
        rig.sender.hang_next = 1
        e = await rig.sms("ping")
        assert e.state is State.SENT and e.send_attempts == 2
        assert any(t.detail == "timeout" for t in e.transitions)


async def test_raise_after_the_pdu_left_resends_the_same_reply(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        rig.sender.raise_after_next = 1
        e = await rig.sms("ping")
        assert e.state is State.SENT
        first, second = rig.replies()
        assert first == second == e.reply  # same signed text: same counter, server drops it
        v = auth.verify_reply(first, keys={1: KEY}, device_id=DEVICE)
        assert v.body == "pong"
        assert rig.counters["send_retries"] == 1


async def test_reboot_power_request_runs_only_after_the_reply_is_marked_sent(
    tmp_path: Path,
) -> None:
    async with Rig(tmp_path) as rig:
        power = rig.sim.power
        seen: list[tuple[list[str], list[str]]] = []
        rig.sender.on_send.append(
            lambda to, c: seen.append((list(power.requests), list(power.executed)))
        )
        states: dict[str, list[str]] = {"requests": [], "executed": []}

        class Watch(list[hal.interfaces.PowerAction]):
            def __init__(self, name: str) -> None:
                super().__init__()
                self.name = name

            def append(self, item: hal.interfaces.PowerAction) -> None:
                states[self.name].append(entry_state(rig.path, 1))  # on disk, now
                super().append(item)

        power.requests = Watch("requests")
        power.executed = Watch("executed")
        e = await rig.sms(signed("reboot", 1))
        assert e.id == 1 and e.state is State.SENT
        assert rig.last_reply_body() == "rebooting"
        assert seen == [([], [])]  # nothing requested while the reply was going out
        assert states == {"requests": ["sent"], "executed": ["sent"]}
        assert power.requests == ["reboot"] and power.executed == ["reboot"]
        assert rig.counters["effects_run"] == 1


async def test_reboot_not_run_when_its_reply_cannot_be_sent(tmp_path: Path) -> None:
    async with Rig(tmp_path, max_attempts=2) as rig:
        rig.sender.fail_next = 99
        e = await rig.sms(signed("reboot", 1))
        assert e.state is State.SEND_FAILED
        assert rig.sim.power.requests == [] and rig.sim.power.executed == []


async def test_reboot_refused_by_the_system_after_the_reply_is_counted(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        rig.sim.power.refuse_with = hal.PowerError("reboot", "systemctl: Access denied")
        e = await rig.sms(signed("reboot", 1))
        assert e.state is State.SENT and rig.last_reply_body() == "rebooting"
        assert rig.sim.power.requests == ["reboot"] and rig.sim.power.executed == []
        assert rig.counters["effects_failed"] == 1


async def test_refused_power_request_is_an_error_reply(tmp_path: Path) -> None:
    from .test_dispatcher_rig import hal_table, make_config

    table = hal_table(tmp_path)
    table["power"] = {"allow_reboot": False}
    cfg = make_config(tmp_path, hal=table)
    async with Rig(tmp_path, cfg=cfg) as rig:
        e = await rig.sms(signed("reboot", 1))
        assert e.state is State.SENT and e.reason == "command-failed"
        assert rig.last_reply_body() == (
            "reboot: error reboot: not allowed by configuration (power.allow_reboot = false)"
        )
        assert rig.sim.power.requests == [] and rig.sim.power.executed == []


async def test_stop_leaves_queued_replies_for_the_next_start(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    await rig.__aenter__()
    await rig.outbox.stop()  # no sender task any more
    from bridge.inbound import Incoming
    from pdu.dcs import Alphabet

    r = await rig.dispatcher.admit(
        Incoming("2936", "ping", Alphabet.GSM7, "q", (), True), modem="modem0"
    )
    await rig.dispatcher.drain()
    await rig.dispatcher.stop()
    await rig.worker.close()
    assert entry_state(rig.path, r.entry_id) == "reply_queued"
    async with Rig(tmp_path) as again:
        await again.settle()
        e = await again.worker.call(Journal.get, r.entry_id)
        assert e.state is State.SENT and e.resends == 0


async def test_stop_cancels_a_hanging_send_past_the_grace_then_resends(tmp_path: Path) -> None:
    rig = Rig(tmp_path, stop_grace=0.01)
    await rig.__aenter__()
    rig.sender.hang_next = 1
    entered = asyncio.Event()
    rig.sender.on_send.append(lambda to, c: entered.set())
    from bridge.inbound import Incoming
    from pdu.dcs import Alphabet

    r = await rig.dispatcher.admit(
        Incoming("2936", "ping", Alphabet.GSM7, "q", (), True), modem="modem0"
    )
    await entered.wait()  # the send is in flight, and hangs
    await rig.__aexit__(None, None, None)
    assert entry_state(rig.path, r.entry_id) == "sending"
    async with Rig(tmp_path) as again:
        await again.settle()
        e = await again.worker.call(Journal.get, r.entry_id)
        assert e.state is State.SENT and e.resends == 1
        assert again.counters["resends"] == 1


@pytest.fixture
def claims(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The entries the outbox claimed with its own commit (Journal.mark_sending)."""
    seen: list[int] = []
    real = Journal.mark_sending

    def counted(self: Journal, entry_id: int) -> int:
        seen.append(entry_id)
        return real(self, entry_id)

    monkeypatch.setattr(Journal, "mark_sending", counted)
    return seen


async def test_reply_for_an_idle_module_is_claimed_when_queued_one_commit_fewer(
    tmp_path: Path, claims: list[int]
) -> None:
    async with Rig(tmp_path, keys=None) as rig:
        assert rig.outbox.ready(MODEM) and not rig.outbox.ready("nosuchmodem")
        e = await rig.sms("ping")
        assert claims == []  # claimed by complete_and_claim, not by a separate commit
        assert (e.state, e.send_attempts, e.resends) == (State.SENT, 1, 0)
        assert [t.state for t in e.transitions][-4:] == [
            State.DONE,
            State.REPLY_QUEUED,
            State.SENDING,
            State.SENT,
        ]
        assert rig.replies() == ["pong"] and rig.counters["resends"] == 0


@pytest.fixture
def paired(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(sent, claimed) of each Journal.mark_sent_and_claim the outbox made."""
    seen: list[tuple[int, int]] = []
    real = Journal.mark_sent_and_claim

    def counted(self: Journal, entry_id: int, tp_mr: int, next_id: int):  # type: ignore[no-untyped-def]
        seen.append((entry_id, next_id))
        return real(self, entry_id, tp_mr, next_id)

    monkeypatch.setattr(Journal, "mark_sent_and_claim", counted)
    return seen


async def test_reply_behind_another_in_flight_is_claimed_when_it_is_queued(
    tmp_path: Path, claims: list[int], paired: list[tuple[int, int]]
) -> None:
    """With nothing queued, a reply is claimed in the transaction that queues
    it (``complete_and_claim``) even while another is in flight, and goes
    right after it: no hand-off of its own between the two sends. A third,
    queued behind the claimed one, is claimed with the second's outcome
    (``mark_sent_and_claim``)."""
    async with Rig(tmp_path, keys=None) as rig:
        entered, gate = asyncio.Event(), asyncio.Event()
        real_send = rig.sender.send

        async def slow(to: str, content: str | bytes, *, binary: bool) -> tuple[int, ...]:
            entered.set()
            await gate.wait()
            return await real_send(to, content, binary=binary)

        rig.sender.send = slow  # type: ignore[method-assign]

        def sms(ident: str) -> Incoming:
            return Incoming("2936", "ping", Alphabet.GSM7, ident, (f"{ident}/1",), True)

        first = await rig.dispatcher.admit(sms("a"), modem=MODEM)
        await entered.wait()  # the first reply is on its way to the module
        assert rig.outbox.ready(MODEM)  # in flight, nothing queued
        second = await rig.dispatcher.admit(sms("b"), modem=MODEM)
        await rig.dispatcher.drain()
        e2 = await rig.worker.call(Journal.get, second.entry_id)
        assert e2.state is State.SENDING  # claimed as it was queued, behind the first
        assert not rig.outbox.ready(MODEM)  # one claimed reply waits, at most
        third = await rig.dispatcher.admit(sms("c"), modem=MODEM)
        await rig.dispatcher.drain()
        e3 = await rig.worker.call(Journal.get, third.entry_id)
        assert e3.state is State.REPLY_QUEUED
        gate.set()
        await rig.settle()
        e1, e2, e3 = [
            await rig.worker.call(Journal.get, r.entry_id) for r in (first, second, third)
        ]
        assert claims == []  # no claim of its own, for any of them
        assert paired == [(e2.id, e3.id)]  # the third came with the second's outcome
        assert (e1.state, e2.state, e3.state) == (State.SENT,) * 3
        assert [e.send_attempts for e in (e1, e2, e3)] == [1, 1, 1]
        assert [e.resends for e in (e1, e2, e3)] == [0, 0, 0]
        assert rig.replies() == ["pong"] * 3
        assert rig.outbox.ready(MODEM)


def test_the_outbox_lets_a_send_run_past_the_modem_layers_own_deadlines(monkeypatch):
    # the module may answer +CMGS after up to modem.timing.SEND_TIMEOUT, after
    # waiting for registration: the outbox must not cut a working send short
    # (that is an outcome unknown, and a second copy on the air)
    from bridge import outbox
    from modem import timing as modem_timing

    assert outbox.send_timeout() > modem_timing.REGISTRATION_WAIT + modem_timing.SEND_TIMEOUT
    monkeypatch.setattr(modem_timing, "SEND_TIMEOUT", 400.0)
    assert outbox.send_timeout() > modem_timing.REGISTRATION_WAIT + 400.0  # read when used
