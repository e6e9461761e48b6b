"""Shared test harness: client + session + SMS service on an in-process simulated module."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from modem.client import AtClient
from modem.session import Session, SessionConfig
from modem.sim import SimModem, create_sim_connection
from modem.sms import Inbound, ReceivedMessage, SmsService


@dataclass
class Harness:
    client: AtClient
    sim: SimModem
    session: Session
    service: SmsService
    got: list[Inbound] = field(default_factory=list)
    #: Set by the consumer when an item arrives whose PDU is no longer on the SIM.
    deleted_before_ack: list[str] = field(default_factory=list)
    fail_next: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def texts(self) -> list[str | None]:
        return [i.text for i in self.got if isinstance(i, ReceivedMessage)]

    def on_sim(self) -> list[str]:
        out = []
        for mem in ("SM", "ME"):
            with contextlib.suppress(Exception):
                out.extend(m.pdu_hex for m in self.sim.storage(mem).messages())
        return out

    async def wait_for(self, pred: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not pred():
                self.arrived.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await self.arrived.wait()

    async def settle(self) -> None:
        """Wait until the SIM holds nothing the consumer has not seen."""
        await self.wait_for(lambda: not self.on_sim() and not self.sim.pending_mt, 10)


@contextlib.asynccontextmanager
async def running(
    profile: str = "generic",
    *,
    config: SessionConfig | None = None,
    check_store: bool = True,
    sim_kwargs: dict[str, Any] | None = None,
    conn: dict[str, Any] | None = None,
    service_kwargs: dict[str, Any] | None = None,
    before: Callable[[SimModem], None] | None = None,
) -> AsyncIterator[Harness]:
    sim = SimModem(profile, **(sim_kwargs or {}))
    if before is not None:
        before(sim)

    async def connector(factory):
        return await create_sim_connection(factory, sim, **(conn or {}))

    client = AtClient(connector)
    session = Session(client, config)
    h: Harness

    async def consumer(item: Inbound) -> None:
        if h.fail_next > 0:
            h.fail_next -= 1
            raise RuntimeError("journal unavailable")
        if check_store:
            # every index the item came from is still occupied when the consumer sees it
            for loc in item.locations:
                if h.sim.storage(loc.mem).get(loc.index) is None:
                    h.deleted_before_ack.append(item.identity)
        h.got.append(item)
        h.arrived.set()

    service = SmsService(session, consumer, **(service_kwargs or {}))
    h = Harness(client, sim, session, service)
    await client.connect()
    async with asyncio.TaskGroup() as tg:
        t1 = tg.create_task(session.run())
        t2 = tg.create_task(service.run())
        try:
            async with asyncio.timeout(10):
                await session.ready.wait()
            yield h
        finally:
            t1.cancel()
            t2.cancel()
    session.close()
    await client.close()
    left = client.leftovers()
    assert left == {"inflight": 0, "subscriptions": 0, "lock_waiters": 0}, left
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert not tasks, tasks
