"""The outbox claims the next reply with the last one's outcome
(``Journal.mark_sent_and_claim``); what a stop, or a deferred effect, does
to that claim. A real journal file, the real worker and outbox."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bridge.journal import Journal, State
from bridge.outbox import Outbox
from bridge.worker import JournalWorker

from .test_journal_process import _receive


def _queued(j: Journal, n: int) -> int:
    eid = _receive(j, n)
    j.start(eid, idempotent=True)
    j.finish(eid, ok=True)
    j.queue_reply(eid, to="2936", reply=f"pong {n}")
    return eid


class Sender:
    def __init__(self) -> None:
        self.sent: list[str | bytes] = []
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def send(self, to: str, content: str | bytes, *, binary: bool) -> tuple[int, ...]:
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        self.sent.append(content)
        return (len(self.sent),)


async def test_a_stop_takes_back_the_claim_of_a_reply_never_sent(tmp_path: Path) -> None:
    async with JournalWorker(Journal.open(tmp_path / "journal.db")) as w:
        a, b = await w.call(_queued, 1), await w.call(_queued, 2)
        s = Sender()
        s.gate = asyncio.Event()
        ob = Outbox(w, {"modem0": s}, stop_grace=5.0)
        await ob.start()  # both queued by the recovery, a first
        await s.entered.wait()  # a's +CMGS is on its way; b waits behind it
        stopping = asyncio.ensure_future(ob.stop())
        await asyncio.sleep(0)
        s.gate.set()  # a ends within the grace: its outcome claims b, then the task stops
        await stopping
        ea, eb = await w.call(Journal.get, a), await w.call(Journal.get, b)
        assert s.sent == ["pong 1"]
        assert (ea.state, ea.tp_mr) == (State.SENT, 1)
        assert (eb.state, eb.send_attempts, eb.resends) == (State.REPLY_QUEUED, 0, 0)
        assert [t.detail for t in eb.transitions][-1] == "not sent: stopped"
        # the next start sends it as a first send, not as a resend
        s2 = Sender()
        ob2 = Outbox(w, {"modem0": s2})
        await ob2.start()
        await ob2.drain()
        await ob2.stop()
        eb = await w.call(Journal.get, b)
        assert s2.sent == ["pong 2"]
        assert (eb.state, eb.send_attempts, eb.resends) == (State.SENT, 1, 0)
        assert ob2.counters["resends"] == 0


async def test_no_claim_ahead_while_a_deferred_effect_is_to_run(tmp_path: Path) -> None:
    """A reply with a deferred effect (reboot) leaves the next one unclaimed:
    the effect may stop the bridge before the next send."""
    async with JournalWorker(Journal.open(tmp_path / "journal.db")) as w:
        a, b = await w.call(_queued, 1), await w.call(_queued, 2)
        s = Sender()
        ob = Outbox(w, {"modem0": s}, stop_grace=0.2)
        in_effect, gate = asyncio.Event(), asyncio.Event()

        async def effect() -> None:
            in_effect.set()
            await gate.wait()

        ob.submit(a, "modem0", [effect])
        ob.submit(b, "modem0")
        await ob.start()
        await in_effect.wait()
        eb = await w.call(Journal.get, b)
        assert (eb.state, eb.send_attempts) == (State.REPLY_QUEUED, 0)
        await ob.stop()  # during a's effect
        eb = await w.call(Journal.get, b)
        assert (eb.state, eb.send_attempts) == (State.REPLY_QUEUED, 0)
        assert s.sent == ["pong 1"]


async def test_ready_behind_a_send_only_with_nothing_queued_and_no_effect_to_run(
    tmp_path: Path,
) -> None:
    """``ready``: the dispatcher may claim a reply as it queues it when it
    would be the next one sent, and not behind a reply whose deferred
    effect (a reboot) may stop the bridge first."""
    async with JournalWorker(Journal.open(tmp_path / "journal.db")) as w:
        s = Sender()
        s.gate = asyncio.Event()
        ob = Outbox(w, {"modem0": s}, stop_grace=5.0)
        assert not ob.ready("modem0")  # no task yet
        await ob.start()
        assert ob.ready("modem0") and not ob.ready("modem1")  # idle; no such module
        a = await w.call(_queued, 1)
        ob.submit(a, "modem0")
        await s.entered.wait()  # a is in flight
        assert ob.ready("modem0")  # nothing queued: the next reply follows a
        b = await w.call(_queued, 2)
        ob.submit(b, "modem0")
        assert not ob.ready("modem0")  # b waits
        s.gate.set()
        await ob.drain()
        s.entered.clear()
        s.gate.clear()
        in_effect, effect_gate = asyncio.Event(), asyncio.Event()

        async def effect() -> None:
            in_effect.set()
            await effect_gate.wait()

        c = await w.call(_queued, 3)
        ob.submit(c, "modem0", [effect])
        await s.entered.wait()  # c is in flight, its effect to run after it
        assert not ob.ready("modem0")
        s.gate.set()
        await in_effect.wait()
        assert not ob.ready("modem0")  # nor while the effect runs (c is sent by then)
        assert (await w.call(Journal.get, c)).state is State.SENT
        effect_gate.set()
        await ob.drain()
        assert ob.ready("modem0")
        await ob.stop()
        assert s.sent == ["pong 1", "pong 2", "pong 3"]
