"""Fixtures: a simulated module and a DTE (client) connected in-process."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from modem.sim import SimModem, SimTiming, create_sim_connection

FINAL = re.compile(rb"(\r\n(OK|ERROR|\+CME ERROR: [^\r]*|\+CMS ERROR: [^\r]*)\r\n|> |>\r\n)$")


def fast_timing(**kw: float) -> SimTiming:
    base = dict(
        boot_delay=0.01,
        cnma_timeout=0.2,
        status_report_delay=0.0,
        network_retry_delay=0.01,
        reconnect_delay=0.05,
        registration_delay=0.0,
    )
    base.update(kw)
    return SimTiming(**base)


async def eventually(pred: Callable[[], bool], timeout: float = 2.0) -> None:
    """Poll ``pred`` (for state that produces no bytes) with short sleeps."""
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.005)


async def settle(rounds: int = 5) -> None:
    """Let queued loop callbacks (in-process deliveries) run; no wall clock involved."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class Dte(asyncio.Protocol):
    """A minimal client: collects bytes and waits for patterns (no sleeps)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self._changed = asyncio.Event()
        self.lost: list[BaseException | None] = []
        self.transport: asyncio.Transport | None = None
        self.lost_event = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._changed.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)
        self.lost_event.set()

    async def wait(self, pred: Callable[[bytes], bool], timeout: float = 2.0) -> bytes:
        async with asyncio.timeout(timeout):
            while not pred(bytes(self.buf)):
                self._changed.clear()
                await self._changed.wait()
        return bytes(self.buf)

    async def wait_for(self, needle: bytes, timeout: float = 2.0) -> bytes:
        return await self.wait(lambda b: needle in b, timeout)

    def write(self, data: bytes | str) -> None:
        assert self.transport is not None
        self.transport.write(data.encode("latin-1") if isinstance(data, str) else data)

    async def cmd(self, line: str, timeout: float = 2.0) -> str:
        """Send ``line`` + CR; return everything up to the final result code."""
        self.buf.clear()
        self.write(line + "\r")
        out = await self.wait(lambda b: FINAL.search(b) is not None, timeout)
        self.buf.clear()
        return out.decode("latin-1")

    async def send_body(self, body: str, timeout: float = 2.0) -> str:
        self.buf.clear()
        self.write(body)
        out = await self.wait(lambda b: FINAL.search(b) is not None, timeout)
        self.buf.clear()
        return out.decode("latin-1")


@pytest.fixture
def make_sim() -> Iterator[Callable[..., SimModem]]:
    made: list[SimModem] = []

    def make(profile: str = "generic", **kw: object) -> SimModem:
        kw.setdefault("timing", fast_timing())
        m = SimModem(profile, **kw)  # type: ignore[arg-type]
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()


@pytest.fixture
def sim(make_sim: Callable[..., SimModem]) -> SimModem:
    return make_sim()


@pytest.fixture
async def connect() -> AsyncIterator[Callable[..., Dte]]:
    dtes: list[Dte] = []

    def _connect(modem: SimModem, **kw: object) -> Dte:
        _t, p = create_sim_connection(Dte, modem, **kw)  # type: ignore[arg-type]
        dtes.append(p)
        return p

    yield _connect
    for d in dtes:
        if d.transport is not None:
            d.transport.close()
    await asyncio.sleep(0)


@pytest.fixture
async def dte(sim: SimModem, connect: Callable[..., Dte]) -> Dte:
    d = connect(sim)
    assert "OK" in await d.cmd("ATE0")
    return d
