"""Shared test harness: the modem stack (ModemStack) on an in-process simulated module."""

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
from modem.stack import ModemStack


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
    stack: ModemStack | None = None
    #: every byte the client wrote to the module
    wire: Wire | None = None

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


class Wire:
    """What a client wrote to the simulated module; waitable (no polling)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self._wrote = asyncio.Event()

    def record(self, data: bytes) -> None:
        self.data += data
        self._wrote.set()

    def count(self, text: bytes) -> int:
        return bytes(self.data).count(text)

    def since(self, mark: int) -> bytes:
        return bytes(self.data[mark:])

    async def wait_for(self, pred: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not pred():
                self._wrote.clear()
                await self._wrote.wait()


def recording_connector(sim: SimModem, wire: Wire, **conn: Any):
    """A connector to ``sim`` whose transport tells ``wire`` every write."""

    async def connector(factory):
        transport, protocol = await create_sim_connection(factory, sim, **conn)
        write = transport.write

        def recorded(data):
            wire.record(bytes(data))
            write(data)

        transport.write = recorded
        return transport, protocol

    return connector


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
    """The stack (:class:`modem.stack.ModemStack`) on a simulated module, ready.

    ``service_kwargs`` go to :class:`SmsService` unchanged. On leaving, nothing
    may be left behind: no pending command, subscription or task.
    """
    sim = SimModem(profile, **(sim_kwargs or {}))
    if before is not None:
        before(sim)
    wire = Wire()
    client = AtClient(recording_connector(sim, wire, **(conn or {})))
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

    stack = ModemStack(client, session=config, consumer=consumer, sms=service_kwargs)
    h = Harness(client, sim, stack.session, stack.sms, stack=stack, wire=wire)
    async with stack:
        async with asyncio.timeout(10):
            # the session's own event, not stack.wait_ready(): a test may act in
            # the very step readiness is signalled (before the start-up sweep ran)
            await stack.session.ready.wait()
        yield h
    left = client.leftovers()
    assert left == {"inflight": 0, "subscriptions": 0, "lock_waiters": 0}, left
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert not tasks, tasks
