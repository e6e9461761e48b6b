"""modem.fdserial over real ptys (and a real TCP socket for ``socket://``).

The test holds the pty's master; the transport opens the slave by its path
through :func:`modem.fdserial.connect` (pyserial opens and configures it).
Every test waits on events (bytes counted, ``connection_lost`` called), and
the loop's exception handler records anything a callback let escape.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import tty
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import serial
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modem import commands as C
from modem import fdserial
from modem.client import AtClient, ProtocolFactory, open_connector
from modem.fdserial import FdSerialTransport
from modem.protocol import ResultKind
from modem.sim import SimModem
from modem.sim.endpoints import PtyEndpoint

TIMEOUT = 10.0  # generous: only reached when the behaviour is missing


class _Bytes:
    """Bytes collected, with a wait for a total count."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.chunks: list[bytes] = []
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def add(self, data: bytes) -> None:
        self.chunks.append(bytes(data))
        self.data += data
        for n, fut in list(self._waiters):
            if len(self.data) >= n and not fut.done():
                fut.set_result(None)
                self._waiters.remove((n, fut))

    async def until(self, n: int) -> bytes:
        if len(self.data) < n:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append((n, fut))
            await asyncio.wait_for(fut, TIMEOUT)
        return bytes(self.data)


class Recorder(asyncio.Protocol):
    """The protocol on the transport under test."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.received = _Bytes()
        self.made: asyncio.Future[asyncio.BaseTransport] = loop.create_future()
        self.lost: asyncio.Future[Exception | None] = loop.create_future()
        self.paused = 0
        self.resumed = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made.set_result(transport)

    def data_received(self, data: bytes) -> None:
        self.received.add(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(exc)

    def pause_writing(self) -> None:
        self.paused += 1

    def resume_writing(self) -> None:
        self.resumed += 1


class Master:
    """The pty's master, non-blocking, read and written on the loop."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd
        self.loop = asyncio.get_running_loop()
        self.received = _Bytes()
        os.set_blocking(fd, False)

    def start_reading(self) -> None:
        assert self.fd is not None
        self.loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        assert self.fd is not None
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the slave is closed
            self.loop.remove_reader(self.fd)
            return
        self.received.add(data)

    async def send(self, data: bytes) -> None:
        """Write all of ``data``, waiting for room when the pty is full."""
        assert self.fd is not None
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                n = 0
            view = view[n:]
            if view:
                room = self.loop.create_future()
                self.loop.add_writer(self.fd, room.set_result, None)
                try:
                    await asyncio.wait_for(room, TIMEOUT)
                finally:
                    self.loop.remove_writer(self.fd)

    def close(self) -> None:
        if self.fd is not None:
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = None


@contextlib.contextmanager
def _pty() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        yield master, os.ttyname(slave)
    finally:
        for fd in (master, slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What reached the loop's exception handler (tests assert it stays empty)."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield errors
    loop.set_exception_handler(previous)


@contextlib.asynccontextmanager
async def _connected() -> AsyncIterator[tuple[Master, FdSerialTransport, Recorder]]:
    """A pty whose slave is open through fdserial.connect; closed in order at the end."""
    with _pty() as (master_fd, path):
        master = Master(master_fd)
        loop = asyncio.get_running_loop()
        transport, protocol = await fdserial.connect(loop, Recorder, path, baudrate=115200)
        assert isinstance(transport, FdSerialTransport)
        assert isinstance(protocol, Recorder)
        assert await asyncio.wait_for(protocol.made, TIMEOUT) is transport
        master.start_reading()
        try:
            yield master, transport, protocol
        finally:
            if not protocol.lost.done():
                transport.close()
                assert await asyncio.wait_for(protocol.lost, TIMEOUT) is None
            master.close()


async def test_connect_on_a_pty_gives_the_fd_transport_and_bytes_pass_both_ways(loop_errors):
    async with _connected() as (master, transport, protocol):
        assert type(transport) is FdSerialTransport
        await master.send(b"AT\r\n")
        assert await protocol.received.until(4) == b"AT\r\n"

        big = bytes(range(256)) * 40 + b"tail"  # 10,244 bytes: more than one read
        await master.send(big)
        got = await protocol.received.until(4 + len(big))
        assert got == b"AT\r\n" + big
        assert len(protocol.received.chunks) >= 3  # READ_SIZE bytes a read at most
        assert max(map(len, protocol.received.chunks)) <= fdserial.READ_SIZE

        transport.write(b"OK\r\n")
        transport.write(bytearray(b"+CSQ: 20,99\r\n"))
        transport.write(memoryview(b"\x00\xff\x1a"))
        expected = b"OK\r\n+CSQ: 20,99\r\n\x00\xff\x1a"
        assert await master.received.until(len(expected)) == expected
        assert transport.get_write_buffer_size() == 0
    assert loop_errors == []


async def test_a_write_larger_than_the_pty_is_buffered_and_drained_in_order(loop_errors):
    async with _connected() as (master, transport, protocol):
        loop = asyncio.get_running_loop()
        loop.remove_reader(master.fd)  # nobody reads the master for now
        payload = os.urandom(1 << 20)
        transport.write(payload)
        buffered = transport.get_write_buffer_size()
        assert 0 < buffered < len(payload)  # what the pty took went out, the rest waits
        assert protocol.paused == 1  # over the high-water mark: the protocol is told
        transport.write(b"after")  # queued behind, not interleaved
        assert transport.get_write_buffer_size() == buffered + 5

        master.start_reading()
        got = await master.received.until(len(payload) + 5)
        assert got == payload + b"after"
        assert transport.get_write_buffer_size() == 0
        assert protocol.resumed == 1

        # The writer is idle again: a further loop turn reports nothing, and a
        # small write goes straight out.
        await asyncio.sleep(0)
        transport.write(b"again")
        assert transport.get_write_buffer_size() == 0
        got = await master.received.until(len(payload) + 10)
        assert got.endswith(b"afteragain")
        await master.send(b"still reading")
        assert await protocol.received.until(13) == b"still reading"
    assert loop_errors == []


async def test_a_hang_up_ends_the_connection_with_a_serial_exception(loop_errors):
    async with _connected() as (master, transport, protocol):
        await master.send(b"RDY\r\n")
        assert await protocol.received.until(5) == b"RDY\r\n"
        master.close()  # the module's side goes away
        exc = await asyncio.wait_for(protocol.lost, TIMEOUT)
        assert isinstance(exc, serial.SerialException)
        assert "read failed" in str(exc) or "returned no data" in str(exc)
        assert transport.is_closing()
        transport.write(b"ignored")  # after the loss: dropped, no error
        assert protocol.received.data == b"RDY\r\n"
    assert loop_errors == []


async def test_a_read_error_ends_the_connection_with_a_serial_exception(loop_errors):
    """A read that fails (not EAGAIN): ``read failed: ...``, as pyserial says it.

    A pty's hang-up reads as end of file on Linux (the test above), so the
    port's descriptor is pointed at a TCP socket reset by its peer: the next
    read raises ECONNRESET."""
    listener = socket.create_server(("127.0.0.1", 0))
    with listener, socket.create_connection(listener.getsockname()) as near:
        far, _ = listener.accept()
        far.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        far.close()  # RST
        async with _connected() as (_master, transport, protocol):
            transport.pause_reading()
            os.dup2(near.fileno(), transport.serial.fd)  # the port's fd is now the socket
            transport.resume_reading()
            exc = await asyncio.wait_for(protocol.lost, TIMEOUT)
            assert isinstance(exc, serial.SerialException)
            assert str(exc).startswith("read failed: ")
            assert "Connection reset" in str(exc)
            assert protocol.received.data == b""
    assert loop_errors == []


async def test_a_socket_url_keeps_pyserial_asyncio_fast_s_own_transport(loop_errors):
    server_got = _Bytes()
    accepted: asyncio.Future[asyncio.StreamWriter] = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result(writer)
        while data := await reader.read(4096):
            server_got.add(data)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        loop = asyncio.get_running_loop()
        transport, protocol = await fdserial.connect(
            loop, Recorder, f"socket://127.0.0.1:{port}", baudrate=115200
        )
        assert isinstance(protocol, Recorder)
        assert not isinstance(transport, FdSerialTransport)
        assert isinstance(transport, asyncio.Transport)
        await asyncio.wait_for(protocol.made, TIMEOUT)
        writer = await asyncio.wait_for(accepted, TIMEOUT)

        transport.write(b"AT\r")
        assert await server_got.until(3) == b"AT\r"
        writer.write(b"\r\nOK\r\n")
        await writer.drain()
        assert await protocol.received.until(6) == b"\r\nOK\r\n"

        transport.close()
        await asyncio.wait_for(protocol.lost, TIMEOUT)
        writer.close()
        await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()
    assert loop_errors == []


def test_uses_fd_only_for_pyserial_s_posix_port() -> None:
    with _pty() as (_master, path):
        port = serial.Serial(path, baudrate=115200)
        try:
            assert fdserial.uses_fd(port)
        finally:
            port.close()
        assert not fdserial.uses_fd(port)  # closed: no descriptor left
    loop_port = serial.serial_for_url("loop://")
    try:
        assert not fdserial.uses_fd(loop_port)
    finally:
        loop_port.close()
    assert not fdserial.uses_fd(object())

    class FdLike:
        fd = 3

    assert not fdserial.uses_fd(FdLike())


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(min_size=1, max_size=20_000))
async def test_arbitrary_bytes_from_the_module_arrive_unchanged(data: bytes, loop_errors):
    async with _connected() as (master, _transport, protocol):
        await master.send(data)
        assert await protocol.received.until(len(data)) == data
        assert all(0 < len(c) <= fdserial.READ_SIZE for c in protocol.received.chunks)
    assert loop_errors == []


async def test_the_client_talks_to_a_module_on_a_pty_through_the_fd_transport(
    tmp_path, loop_errors
):
    sim = SimModem("bg96")
    link = str(tmp_path / "ttyUSB2")
    pty = PtyEndpoint(sim, link)
    pty.start()
    try:
        connector = open_connector(link)
        transports: list[asyncio.BaseTransport] = []

        async def recording(factory: ProtocolFactory) -> tuple[asyncio.BaseTransport, Any]:
            transport, protocol = await connector(factory)
            transports.append(transport)
            return transport, protocol

        async with AtClient(recording) as client:
            response = await client.run(C.simple("AT", timeout=TIMEOUT))
            assert response.final.kind is ResultKind.OK
            assert client.stats["bytes_out"] > 0 and client.stats["bytes_in"] > 0
        assert [type(t) for t in transports] == [FdSerialTransport]
    finally:
        pty.close()
    assert loop_errors == []
