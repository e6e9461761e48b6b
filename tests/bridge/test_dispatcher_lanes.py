"""The dispatcher with several modules: one task per module, each in order;
what all of them share (the replay window, the reply budgets) held exact
while their Commands are in flight at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from bridge.actions import builtins
from bridge.actions.context import ActionContext
from bridge.actions.registry import Registry, action
from bridge.grammar import Level
from bridge.inbound import Incoming
from bridge.journal import Entry, Journal, State
from bridge.reports import Reporter
from pdu.dcs import Alphabet

from .test_dispatcher_rig import Rig, make_config, signed

MODEMS = ("modem0", "modem1")
WAIT = 10.0


class Gate:
    """The ``hold`` action: each run says it started, then waits to be let go."""

    def __init__(self) -> None:
        self.started = 0
        self.running = asyncio.Event()
        self.release = asyncio.Event()

    def registry(self, *, idempotent: bool = False) -> Registry:
        gate = self

        @action("hold", level=Level.OPEN, idempotent=idempotent, timeout=30.0)
        async def hold(ctx: ActionContext) -> str:
            gate.started += 1
            gate.running.set()
            await gate.release.wait()
            return "held"

        reg = builtins()
        reg.add(hold)
        return reg


async def admit(rig: Rig, body: str, modem: str, ident: str) -> int:
    msg = Incoming("2936", body, Alphabet.GSM7, ident, (f"{ident}/1",), True)
    return (await rig.dispatcher.admit(msg, modem=modem)).entry_id


async def entry(rig: Rig, entry_id: int) -> Entry:
    return await rig.worker.call(Journal.get, entry_id)


async def until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def test_a_slow_action_on_one_module_holds_up_no_other(tmp_path: Path) -> None:
    gate = Gate()
    async with Rig(tmp_path, registry=gate.registry(), modems=MODEMS) as rig:
        held = await admit(rig, "hold", "modem0", "h")
        await asyncio.wait_for(gate.running.wait(), WAIT)
        await admit(rig, "ping", "modem1", "p")
        await until(lambda: len(rig.senders["modem1"].sent) == 1)
        assert rig.senders["modem1"].sent[0][0] == "2936"
        assert (await entry(rig, held)).state is State.EXECUTING  # still held
        assert rig.senders["modem0"].sent == []
        gate.release.set()
        await rig.settle()
        assert len(rig.senders["modem0"].sent) == 1


async def test_one_modules_commands_run_one_at_a_time_in_order(tmp_path: Path) -> None:
    gate = Gate()
    async with Rig(tmp_path, registry=gate.registry(), modems=MODEMS) as rig:
        held = await admit(rig, "hold", "modem0", "h")
        await asyncio.wait_for(gate.running.wait(), WAIT)
        after = await admit(rig, "ping", "modem0", "p")
        for _ in range(20):
            await asyncio.sleep(0.005)
        assert (await entry(rig, after)).state is State.RECEIVED  # waits its turn
        gate.release.set()
        await rig.settle()
        first, second = await entry(rig, held), await entry(rig, after)
        assert first.state is second.state is State.SENT
        assert first.updated <= second.updated
        assert rig.senders["modem0"].calls == 2 and rig.dispatcher.queued == 0


async def test_stop_lets_every_modules_command_in_flight_finish(tmp_path: Path) -> None:
    gate = Gate()
    rig = Rig(tmp_path, registry=gate.registry(), modems=MODEMS)
    await rig.__aenter__()
    try:
        ids = [await admit(rig, "hold", m, f"h{m}") for m in MODEMS]
        await until(lambda: gate.started == 2)
        stopping = asyncio.create_task(rig.dispatcher.stop())
        await asyncio.sleep(0.01)
        assert not stopping.done()
        gate.release.set()
        await asyncio.wait_for(stopping, WAIT)
        for i in ids:
            assert (await entry(rig, i)).state in (State.REPLY_QUEUED, State.SENDING, State.SENT)
    finally:
        await rig.outbox.stop()
        await rig.worker.close()


async def test_signed_commands_on_two_modules_at_once_both_keep_their_counters(
    tmp_path: Path,
) -> None:
    async with Rig(tmp_path, modems=MODEMS) as rig:
        ids = await asyncio.gather(
            admit(rig, signed("ping", 1), "modem0", "s1"),
            admit(rig, signed("ping", 2), "modem1", "s2"),
        )
        await rig.settle()
        for i in ids:
            assert (await entry(rig, i)).state is State.SENT
        window = await rig.worker.call(Journal.replay_window)
        assert window.seen(1) and window.seen(2)  # neither check undid the other's
        again = await admit(rig, signed("ping", 1), "modem1", "s1-again")
        await rig.settle()
        e = await entry(rig, again)
        assert e.state is State.REJECTED and e.reason == "auth:replayed"


async def test_budgets_hold_across_modules_with_commands_in_flight_at_once(
    tmp_path: Path,
) -> None:
    gate = Gate()
    cfg = make_config(tmp_path, budgets={"global_per_hour": 1})
    async with Rig(
        tmp_path, cfg=cfg, registry=gate.registry(idempotent=True), modems=MODEMS
    ) as rig:
        ids = await asyncio.gather(*(admit(rig, "hold", m, f"h{m}") for m in MODEMS))
        await asyncio.wait_for(gate.running.wait(), WAIT)
        await until(lambda: rig.counters["over_budget"] == 1)
        gate.release.set()
        await rig.settle()
        states = sorted([(await entry(rig, i)).state.value for i in ids])
        assert states == [State.REJECTED.value, State.SENT.value]
        assert gate.started == 1
        assert sum(s.calls for s in rig.senders.values()) == 1


async def test_usage_replies_reserve_their_budget_too(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, budgets={"global_per_hour": 1})
    async with Rig(tmp_path, cfg=cfg, modems=MODEMS) as rig:
        # usage errors (answered with the usage, nothing runs) on both modules at once
        ids = await asyncio.gather(*(admit(rig, "gpio", m, f"u{m}") for m in MODEMS))
        await rig.settle()
        got = sorted([((e := await entry(rig, i)).state.value, e.reason) for i in ids])
        assert got == [
            (State.REJECTED.value, "over-budget:global-hour"),
            (State.SENT.value, "usage"),
        ]
        assert sum(s.calls for s in rig.senders.values()) == 1


async def test_a_command_run_again_after_a_restart_holds_its_budget(tmp_path: Path) -> None:
    """Reservations live in memory: recovery reserves again the Command it runs
    again, so another module's Command meanwhile finds the budget used."""
    cfg = make_config(tmp_path, budgets={"global_per_hour": 1})
    first = Gate()
    rig = Rig(
        tmp_path,
        cfg=cfg,
        registry=first.registry(idempotent=True),
        modems=MODEMS,
        stop_grace=0.05,
    )
    await rig.__aenter__()
    held = await admit(rig, "hold", "modem0", "h1")
    await until(lambda: first.started == 1)
    await rig.__aexit__(None, None, None)  # cut off mid-action: left executing
    again = Gate()
    async with Rig(
        tmp_path, cfg=cfg, registry=again.registry(idempotent=True), modems=MODEMS
    ) as rig2:
        await until(lambda: again.started == 1)  # recovery runs it again, held
        other = await admit(rig2, "ping", "modem1", "p1")
        await until(lambda: rig2.counters["over_budget"] == 1)
        again.release.set()
        await rig2.settle()
        assert (await entry(rig2, held)).state is State.SENT
        e = await entry(rig2, other)
        assert e.state is State.REJECTED and e.reason == "over-budget:global-hour"
        assert sum(s.calls for s in rig2.senders.values()) == 1


async def test_a_report_counts_the_commands_in_flight_against_the_budget(
    tmp_path: Path,
) -> None:
    gate = Gate()
    cfg = make_config(tmp_path, budgets={"global_per_hour": 1})
    async with Rig(tmp_path, cfg=cfg, registry=gate.registry(idempotent=True)) as rig:
        held = await admit(rig, "hold", "modem0", "h")
        await asyncio.wait_for(gate.running.wait(), WAIT)  # started: its reply is reserved
        reporter = Reporter(
            rig.worker,
            rig.outbox,
            config=cfg,
            keys=None,
            device_id=lambda: "dev",
            counters=rig.counters,
        )
        report = await reporter.send("event", [], modem="modem0", to="2936")
        gate.release.set()
        await rig.settle()
        r = await entry(rig, report)
        assert r.state is State.REJECTED and r.reason == "over-budget:global-hour"
        assert (await entry(rig, held)).state is State.SENT
        assert rig.sender.calls == 1
