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
