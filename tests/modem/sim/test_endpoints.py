"""The pty and TCP endpoints with real fds and sockets (pyserial-asyncio-fast as client)."""

from __future__ import annotations

import asyncio
import os

import pytest
import serial_asyncio_fast

from modem.sim.endpoints import PtyEndpoint, TcpEndpoint

from .conftest import Dte, eventually


@pytest.fixture
async def pty_ep(sim, tmp_path):
    ep = PtyEndpoint(sim, str(tmp_path / "ttySIM0"))
    ep.start()
    yield ep
    ep.close()


@pytest.fixture
async def tcp_ep(sim):
    ep = TcpEndpoint(sim)
    await ep.start()
    yield ep
    await ep.close()


async def open_serial(url: str) -> tuple[asyncio.Transport, Dte]:
    loop = asyncio.get_running_loop()
    t, p = await serial_asyncio_fast.create_serial_connection(loop, Dte, url, baudrate=115200)
    await eventually(lambda: p.transport is not None)
    return t, p


async def close_serial(t: asyncio.Transport, p: Dte) -> None:
    t.close()
    await asyncio.wait_for(p.lost_event.wait(), 2)


async def test_pty_symlink_and_commands(pty_ep, tmp_path):
    link = tmp_path / "ttySIM0"
    assert os.path.islink(link)
    assert os.readlink(link) == pty_ep.device
    t, p = await open_serial(str(link))
    try:
        assert await p.cmd("ATE0") == "ATE0\r\r\nOK\r\n"
        assert await p.cmd("AT+CGMI") == "\r\nSIMULATED\r\n\r\nOK\r\n"
    finally:
        await close_serial(t, p)


async def test_pty_survives_close_and_reopen(pty_ep, tmp_path):
    link = str(tmp_path / "ttySIM0")
    for _ in range(2):
        t, p = await open_serial(link)
        try:
            out = await p.cmd("AT")
            assert out.endswith("\r\nOK\r\n")
        finally:
            await close_serial(t, p)


async def test_pty_hangup_and_come_back(sim, pty_ep, tmp_path):
    link = str(tmp_path / "ttySIM0")
    t, p = await open_serial(link)
    await p.cmd("ATE0")
    came_back = asyncio.Event()
    sim.add_reconnect_listener(came_back.set)
    sim.fault("disconnect", 50)
    await asyncio.wait_for(p.lost_event.wait(), 2)  # the client sees the port die
    t.close()
    assert not os.path.exists(link)
    await asyncio.wait_for(came_back.wait(), 2)
    await eventually(lambda: os.path.islink(link))
    t2, p2 = await open_serial(link)
    try:
        assert (await p2.cmd("AT")).endswith("OK\r\n")
    finally:
        await close_serial(t2, p2)


async def test_pty_baud_paced(make_sim, tmp_path):
    sim = make_sim()
    ep = PtyEndpoint(sim, str(tmp_path / "slow"), baud=9600)
    ep.start()
    try:
        t, p = await open_serial(str(tmp_path / "slow"))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await p.cmd("ATE0;+CGMI;+CGMM;+CGMR;+CGSN;+CIMI")
        assert loop.time() - t0 >= 80 * 10 / 9600 * 0.8
        await close_serial(t, p)
    finally:
        ep.close()


async def test_tcp_socket_url(tcp_ep):
    t, p = await open_serial(f"socket://127.0.0.1:{tcp_ep.port}")
    try:
        assert await p.cmd("ATE0") == "ATE0\r\r\nOK\r\n"
        assert await p.cmd("AT+CGMM") == "\r\nSIM-MODEM\r\n\r\nOK\r\n"
    finally:
        await close_serial(t, p)


async def test_tcp_disconnect_and_come_back(sim, tcp_ep):
    port = tcp_ep.port
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"ATE0\r")
    assert (await r.readuntil(b"OK\r\n")).endswith(b"OK\r\n")
    came_back = asyncio.Event()
    sim.add_reconnect_listener(came_back.set)
    sim.fault("disconnect", 100)
    assert await asyncio.wait_for(r.read(), 2) == b""
    w.close()
    with pytest.raises(OSError):
        _r2, w2 = await asyncio.open_connection("127.0.0.1", port)
        w2.close()
    await asyncio.wait_for(came_back.wait(), 2)
    await eventually(lambda: tcp_ep._server is not None)
    r, w = await asyncio.open_connection("127.0.0.1", port)
    try:
        w.write(b"AT\r")
        assert (await asyncio.wait_for(r.readuntil(b"OK\r\n"), 2)).endswith(b"OK\r\n")
    finally:
        w.close()
        await w.wait_closed()


async def test_tcp_disconnect_without_clients_stops_listening(sim, tcp_ep):
    port = tcp_ep.port
    came_back = asyncio.Event()
    sim.add_reconnect_listener(came_back.set)
    sim.fault("disconnect", 100)
    with pytest.raises(OSError):
        _r, w = await asyncio.open_connection("127.0.0.1", port)
        w.close()
    await asyncio.wait_for(came_back.wait(), 2)
    await eventually(lambda: tcp_ep._server is not None)
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"AT\r")
    assert (await asyncio.wait_for(r.readuntil(b"OK\r\n"), 2)).endswith(b"OK\r\n")
    w.close()
    await w.wait_closed()


class _VirtualHandle:
    def __init__(self, cb) -> None:
        self.cb = cb
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class _VirtualLoop:
    """Just enough of a loop for the pacer, on a virtual clock."""

    def __init__(self) -> None:
        self.now = 100.0
        self.due: list[tuple[float, _VirtualHandle]] = []

    def time(self) -> float:
        return self.now

    def call_soon(self, cb) -> _VirtualHandle:
        return self.call_at(self.now, cb)

    def call_at(self, when, cb) -> _VirtualHandle:
        h = _VirtualHandle(cb)
        self.due.append((when, h))
        return h

    def run(self) -> None:
        while self.due:
            self.due.sort(key=lambda item: item[0])
            when, h = self.due.pop(0)
            if not h.cancelled:
                self.now = max(self.now, when)
                h.cb()


@pytest.mark.parametrize("baud", [300, 1200, 2400, 4800, 9600, 115200])
def test_line_rate_is_exact_at_any_baud(baud):
    """Review fix: the pacer wrote int(baud / 10 * 10 ms) bytes every 10 ms, so
    1200 baud ran at 100 bytes/s instead of 120 and 4800 at 400 instead of
    480; pty and TCP also each had a copy of it."""
    from modem.sim.endpoints import _Pacer

    loop = _VirtualLoop()
    got: list[tuple[float, int]] = []
    pacer = _Pacer(loop, baud, lambda chunk: got.append((loop.now, len(chunk))))  # type: ignore[arg-type]
    n = baud // 10 * 2  # two seconds of output
    pacer.push(b"x" * n)
    loop.run()
    assert sum(k for _, k in got) == n
    last_at, _ = got[-1]
    took = last_at - 100.0  # a chunk arrives when its last byte is through
    assert took == pytest.approx(2.0, rel=0.02)


def test_paced_output_never_arrives_before_its_wire_time():
    """An answer after an idle line, and each turn of a command/answer exchange,
    arrive no sooner than a UART would deliver them: an idle line used to hand
    a tick's worth of bytes (115 at 115200 baud) over at once, so short AT turns
    ran about ten times faster than the line allows."""
    from modem.sim.endpoints import _Pacer

    loop = _VirtualLoop()
    got: list[tuple[float, bytes]] = []
    pacer = _Pacer(loop, 115200, lambda chunk: got.append((loop.now, chunk)))  # type: ignore[arg-type]
    for turn in range(5):
        loop.now = 100.0 + turn  # the line was idle for a second before each answer
        pacer.push(b"\r\nOK\r\n")
        loop.run()
    assert [c for _, c in got] == [b"\r\nOK\r\n"] * 5
    for turn, (at, _) in enumerate(got):
        assert at - (100.0 + turn) == pytest.approx(6 * 10 / 115200)
    # a burst: the second push waits for the first on the wire
    got.clear()
    loop.now = 200.0
    pacer.push(b"a" * 100)
    pacer.push(b"b" * 100)
    loop.run()
    assert b"".join(c for _, c in got) == b"a" * 100 + b"b" * 100
    assert got[-1][0] - 200.0 == pytest.approx(200 * 10 / 115200)


async def test_pty_symlink_failure_leaks_no_fds(sim, tmp_path):
    """Review fix: when the symlink could not be made (no such directory) the
    pty's two fds stayed open."""
    import os

    before = len(os.listdir("/proc/self/fd"))
    ep = PtyEndpoint(sim, str(tmp_path / "missing" / "ttySIM"))
    with pytest.raises(OSError):
        ep.start()
    assert len(os.listdir("/proc/self/fd")) == before
    assert ep.device is None
