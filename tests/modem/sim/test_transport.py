"""The in-process transport pair: delivery modes, line rate, close, disconnect."""

from __future__ import annotations

import asyncio

import pytest

from modem.sim import SimModem, create_sim_connection

from .conftest import Dte, settle


class Chunks(Dte):
    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        super().data_received(data)


async def test_whole_delivery_is_one_chunk_per_write(sim):
    t, p = create_sim_connection(Chunks, sim)
    try:
        assert p.transport is t
        t.write(b"ATE0\r")
        await p.wait_for(b"OK\r\n")
        assert p.chunks == [b"A", b"T", b"E", b"0", b"\r", b"\r\nOK\r\n"]
        assert t.get_extra_info("sim") is sim
        assert t.get_extra_info("serial").baudrate == 115200
        assert not t.is_closing()
    finally:
        t.close()
        await settle()
    assert p.lost == [None]


async def test_awaitable_like_create_serial_connection(sim):
    t, p = await create_sim_connection(Dte, sim)
    t.close()
    await settle()
    assert p.lost == [None]


async def test_bytewise_delivery(sim, connect):
    d = connect(sim, delivery="bytewise")
    d.__class__ = Chunks
    d.chunks = []
    await d.cmd("ATE0")
    d.chunks.clear()
    await d.cmd("AT+CGMI")
    assert all(len(c) == 1 for c in d.chunks)
    assert b"".join(d.chunks) == b"\r\nSIMULATED\r\n\r\nOK\r\n"


async def test_delayed_delivery_keeps_order(sim, connect):
    d = connect(sim, delivery="delayed", delay=0.02)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await d.cmd("AT") == "AT\r\r\nOK\r\n"
    # Up 0.02 s, down 0.02 s at least.
    assert loop.time() - t0 >= 0.035


async def test_lossy_delivery_is_seeded(make_sim):
    async def run(seed: int) -> bytes:
        sim = make_sim()
        t, p = create_sim_connection(Dte, sim, delivery="lossy", loss=0.3, seed=seed)
        for _ in range(5):
            t.write(b"AT+CGMI\r")
        await settle(100)  # every hop is one loop callback
        t.close()
        await settle()
        return bytes(p.buf)

    a, b = await run(7), await run(7)
    assert a == b
    assert a != await run(8)
    assert len(a) < len(b"AT+CGMI\r\r\nSIMULATED\r\n\r\nOK\r\n") * 5


async def test_baud_rate_emulation(sim, connect):
    d = connect(sim, baud=9600)  # 960 bytes/s
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await d.cmd("ATE0")
    out = await d.cmd("AT+CGMI;+CGMM;+CGMR")
    elapsed = loop.time() - t0
    sent = len("ATE0\r") * 2 + len(out) + len("AT+CGMI;+CGMM;+CGMR\r") + len("\r\nOK\r\n")
    assert elapsed >= sent * 10 / 9600 * 0.9


async def test_disconnect_fault_loses_connection_and_comes_back(sim):
    t, p = create_sim_connection(Dte, sim)
    await p.cmd("AT")
    sim.fault("disconnect", 30)
    await asyncio.wait_for(p.lost_event.wait(), 1)
    assert isinstance(p.lost[0], ConnectionResetError)
    assert t.is_closing()
    t.write(b"AT\r")  # ignored, no error
    with pytest.raises(ConnectionRefusedError):
        create_sim_connection(Dte, sim)
    came_back = asyncio.Event()
    sim.add_reconnect_listener(came_back.set)
    await asyncio.wait_for(came_back.wait(), 1)
    t2, p2 = create_sim_connection(Dte, sim)
    assert "OK" in await p2.cmd("AT")
    t2.close()
    await settle()


async def test_bad_arguments(sim):
    with pytest.raises(ValueError, match="delivery"):
        create_sim_connection(Dte, sim, delivery="teleport")
    with pytest.raises(ValueError, match="loss"):
        create_sim_connection(Dte, sim, delivery="lossy", loss=2)


async def test_pause_and_resume_reading(sim, connect):
    d = connect(sim)
    assert d.transport is not None
    d.transport.pause_reading()
    d.write("AT\r")
    await settle()
    assert d.buf == b""
    d.transport.resume_reading()
    await d.wait_for(b"OK\r\n")


async def test_two_clients_see_the_same_module(sim: SimModem, connect):
    """What one client changes or stores, the other sees (one module behind both)."""
    a = connect(sim)
    b = connect(sim)
    await a.cmd("ATE0")  # echo is the module's setting: off for b too
    assert await b.cmd("AT+CMGF=1") == "\r\nOK\r\n"
    assert await a.cmd("AT+CMGF?") == "\r\n+CMGF: 1\r\n\r\nOK\r\n"
    # a stores a draft; b reads it back and deletes it; a sees it gone.
    assert await a.cmd('AT+CMGW="+15551234567"') == "\r\n> "
    assert await a.send_body("shared\x1a") == "\r\n+CMGW: 1\r\n\r\nOK\r\n"
    assert await b.cmd("AT+CMGR=1") == (
        '\r\n+CMGR: "STO UNSENT","+15551234567",\r\nshared\r\n\r\nOK\r\n'
    )
    assert await b.cmd("AT+CMGD=1") == "\r\nOK\r\n"
    assert await a.cmd('AT+CMGL="ALL"') == "\r\nOK\r\n"
    # An indication the module sends reaches both.
    await b.cmd("AT+CNMI=2,1,0,0,0")
    sim.deliver("x")
    await a.wait_for(b'+CMTI: "SM",1\r\n')
    await b.wait_for(b'+CMTI: "SM",1\r\n')


async def test_delayed_mode_keeps_order_of_chunks_due_at_once(sim, monkeypatch):
    """Review fix: one loop timer per chunk let the timer heap reorder chunks
    that fell due at the same loop time (bytes written one by one in delayed
    mode reached the module scrambled). A coarse loop clock (as on Windows)
    makes every byte of a burst due at the same time."""
    loop = asyncio.get_running_loop()
    fine = loop.time
    monkeypatch.setattr(loop, "time", lambda: round(fine(), 2))
    t, p = create_sim_connection(Dte, sim, delivery="delayed", delay=0.01)
    try:
        for line in (b"ATE0\r", b"AT+CGMI;+CGMM;+CSQ\r"):
            for i in range(len(line)):
                t.write(line[i : i + 1])
        out = await p.wait(lambda b: b.count(b"OK\r\n") == 2)
        assert b"ERROR" not in out
        assert b"SIMULATED\r\n\r\nSIM-MODEM\r\n\r\n+CSQ: 20,99" in out
    finally:
        t.close()
        await settle()


async def test_line_keeps_no_timer_per_delivered_chunk(sim):
    """Review fix: finished timer handles piled up in the line (a leak)."""
    t, p = create_sim_connection(Dte, sim, delivery="delayed", delay=0.001)
    try:
        for _ in range(20):
            await p.cmd("AT")
        assert t._down.pending == 0 and t._up.pending == 0
        assert t._down._handle is None and t._up._handle is None
    finally:
        t.close()
        await settle()


async def test_resume_reading_keeps_order_of_held_and_new_chunks(sim):
    """Review fix: chunks held while reading was paused were re-sent with
    call_soon on resume, so a chunk already due on the line overtook them."""
    t, p = create_sim_connection(Chunks, sim)
    try:
        await p.cmd("ATE0;+CNMI=2,1")
        p.chunks.clear()
        t.pause_reading()
        sim.deliver("one")  # the TA's URC output, held while paused
        await settle()
        assert p.chunks == []
        t.write(b"AT\r")
        await settle()
        assert p.chunks == []
        sim.deliver("two")  # on the line (due) while still paused ...
        t.resume_reading()  # ... and reading resumes before the loop runs it
        out = await p.wait(lambda b: b.count(b"+CMTI") == 2)
        assert out.index(b'+CMTI: "SM",1') < out.index(b"OK") < out.index(b'+CMTI: "SM",2')
    finally:
        t.close()
        await settle()
