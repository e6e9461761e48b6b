"""Restart recovery: the journal as a crash left it at each state, then a fresh start.

Each test writes, through the journal's own API on the real file, exactly
what the dispatcher had committed when the process died, closes the file
(nothing else survives a SIGKILL), and starts a new dispatcher and outbox on
it. Executions are counted in the simulated HAL and in the scripts' own
count files (which survive the "crash", like a real device's state).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bridge import auth
from bridge.journal import Journal, State

from .test_dispatcher_rig import DEVICE, KEY, Rig, script_runs, signed


def _journal(tmp: Path) -> Journal:
    return Journal.open(tmp / "journal.db")


def _received(j: Journal, body: str, ident: str = "x") -> int:
    return j.receive(
        modem="modem0",
        sender="2936",
        body=body,
        identity=ident,
        product="programmable-wireless",
        coding="gsm7",
    ).entry_id


def _authenticated(j: Journal, body: str, counter: int, ident: str = "x") -> int:
    eid = _received(j, body, ident)
    w = j.replay_window().check(counter)
    assert j.authenticate(eid, counter, w)
    return eid


async def test_received_not_run_is_run_once(tmp_path: Path) -> None:
    with _journal(tmp_path) as j:
        eid = _authenticated(j, signed("gpio pulse gate 5", 3), 3)
    async with Rig(tmp_path) as rig:
        await rig.settle()
        e = await rig.worker.call(Journal.get, eid)
        assert e.state is State.SENT
        assert rig.last_reply_body() == "gate pulsed 5ms"  # not refused as replayed
        assert rig.sim.gpio.writes == [("gate", 1), ("gate", 0)]
    async with Rig(tmp_path) as rig:  # and never again
        await rig.settle()
        assert rig.sim.gpio.writes == [] and rig.sender.calls == 0


async def test_received_unauthenticated_is_checked_then_run(tmp_path: Path) -> None:
    with _journal(tmp_path) as j:
        eid = _received(j, signed("gpio set relay1 on", 8))
    async with Rig(tmp_path) as rig:
        await rig.settle()
        e = await rig.worker.call(Journal.get, eid)
        assert e.state is State.SENT and e.counter == 8
        assert rig.sim.gpio.value("relay1") == 1


async def test_executing_idempotent_is_run_again(tmp_path: Path) -> None:
    with _journal(tmp_path) as j:
        eid = _authenticated(j, signed("run again x1", 4), 4)
        j.start(eid, idempotent=True, summary="run")
    async with Rig(tmp_path) as rig:
        await rig.settle()
        e = await rig.worker.call(Journal.get, eid)
        assert e.state is State.SENT
        assert rig.last_reply_body() == "again exit=0 ran 1 args: x1"
        assert rig.counters["rerun"] == 1
        assert script_runs(tmp_path, "again") == 1
        states = [t.state for t in e.transitions]
        assert states.count(State.EXECUTING) == 1  # not started twice in the journal


async def test_executing_not_idempotent_answered_interrupted_never_run(tmp_path: Path) -> None:
    with _journal(tmp_path) as j:
        pulse = _authenticated(j, signed("gpio pulse gate 5", 1), 1, "p")
        j.start(pulse, idempotent=False, summary="gpio-pulse")
        script = _authenticated(j, signed("run once y", 2), 2, "s")
        j.start(script, idempotent=False, summary="run")
        boot = _authenticated(j, signed("reboot", 3), 3, "r")
        j.start(boot, idempotent=False, summary="reboot")
    async with Rig(tmp_path) as rig:
        await rig.settle()
        for eid in (pulse, script, boot):
            e = await rig.worker.call(Journal.get, eid)
            assert e.state is State.SENT and e.reason == "interrupted"
            assert isinstance(e.reply, str)
            v = auth.verify_reply(e.reply, keys={1: KEY}, device_id=DEVICE)
            assert v.body == "interrupted"
        assert rig.sim.gpio.writes == []
        assert script_runs(tmp_path, "once") == 0
        assert rig.sim.power.requests == [] and rig.sim.power.executed == []
        assert rig.counters["interrupted"] == 3


async def test_ran_but_reply_never_queued_is_answered(tmp_path: Path) -> None:
    with _journal(tmp_path) as j:
        ok = _received(j, "ping", "a")
        j.start(ok, idempotent=True)
        j.finish(ok, ok=True)
        bad = _received(j, "gpio get", "b")
        j.finish(bad, ok=False, reason="usage")
    async with Rig(tmp_path) as rig:
        await rig.settle()
        assert (await rig.worker.call(Journal.get, ok)).state is State.SENT
        assert (await rig.worker.call(Journal.get, bad)).state is State.SENT
        bodies = sorted(
            str(auth.verify_reply(c, keys={1: KEY}, device_id=DEVICE).body) for c in rig.replies()
        )
        assert bodies == ["done", "failed"]
        assert rig.counters["replies_lost"] == 2


async def test_queued_reply_sent_after_restart_unchanged(tmp_path: Path) -> None:
    with _journal(tmp_path) as j:
        eid = _received(j, "ping")
        j.start(eid, idempotent=True)
        j.finish(eid, ok=True)
        j.queue_reply(eid, to="2936", reply="pong #BAAAAAH7NH2jjJKU2JA4X")
    async with Rig(tmp_path) as rig:
        await rig.settle()
        e = await rig.worker.call(Journal.get, eid)
        assert e.state is State.SENT and e.resends == 0
        assert rig.replies() == ["pong #BAAAAAH7NH2jjJKU2JA4X"]


async def test_sending_with_unknown_outcome_resent_same_reference_counted(tmp_path: Path) -> None:
    with _journal(tmp_path) as j:
        eid = _received(j, "ping")
        j.start(eid, idempotent=True)
        j.finish(eid, ok=True)
        reply = auth.sign_reply(
            "pong", keys=auth.Keyring({1: KEY}, 1), device_id=DEVICE, counter=j.next_reply_counter()
        )
        j.queue_reply(eid, to="2936", reply=reply)
        j.mark_sending(eid)  # AT+CMGS went out; the process died before +CMGS: <mr>
    async with Rig(tmp_path) as rig:
        await rig.settle()
        e = await rig.worker.call(Journal.get, eid)
        assert e.state is State.SENT and e.resends == 1 and e.send_attempts == 2
        assert rig.replies() == [reply]  # same text, same counter: the server drops it
        assert rig.counters["resends"] == 1
        assert rig.counters["executed"] == 0  # nothing ran again


@pytest.mark.parametrize("keys", [None, "default"])
async def test_journal_failure_recording_outcome_and_reply_leaves_it_executing_then_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keys: str | None
) -> None:
    # The outcome and the reply (signed or not) are one transaction
    # (Journal.complete, or complete_and_claim when the outbox is idle): when it
    # fails, neither is recorded, the idempotent Command stays executing and the
    # next start runs it again and answers it.
    real = Journal._complete

    def broken(self: Journal, *a: object, **kw: object) -> str:
        raise sqlite3.OperationalError("disk I/O error")

    rig_keys = {} if keys else {"keys": None}
    monkeypatch.setattr(Journal, "_complete", broken)
    async with Rig(tmp_path, **rig_keys) as rig:
        e = await rig.sms("ping")
        assert e.state is State.EXECUTING and e.reply is None
        assert rig.counters["executed"] == 0 and rig.counters["journal_errors"] == 1
        assert rig.counters["replies"] == 0 and rig.replies() == []
    monkeypatch.setattr(Journal, "_complete", real)
    async with Rig(tmp_path, **rig_keys) as rig:
        await rig.settle()
        after = await rig.worker.call(Journal.get, e.id)
        assert after.state is State.SENT
        assert [r.split(" #")[0] for r in rig.replies()] == ["pong"]
        assert rig.counters["rerun"] == 1 and rig.counters["executed"] == 1


async def test_unsigned_reply_is_queued_after_the_outcome_in_order(tmp_path: Path) -> None:
    async with Rig(tmp_path, keys=None) as rig:
        e = await rig.sms("ping")
        assert rig.replies() == ["pong"]
        states = [t.state for t in e.transitions]
        assert states == [
            State.RECEIVED,
            State.EXECUTING,
            State.DONE,
            State.REPLY_QUEUED,
            State.SENDING,
            State.SENT,
        ]
        assert rig.counters["executed"] == 1 and rig.counters["replies"] == 1
