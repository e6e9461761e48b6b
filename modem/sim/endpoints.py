"""Real OS endpoints for a :class:`SimModem`: a pty with a stable symlink, and TCP.

Both live on the running asyncio loop (no threads): readable fds feed
:meth:`SimModem.receive`, the module's output is written back.

* :class:`PtyEndpoint`: ``os.openpty()`` in raw mode; the slave's name is
  published as a symlink you choose (``/tmp/ttySIM0``). The endpoint keeps its
  own slave fd open so a client can close and reopen the port at will (the
  master never sees a hang-up). Bytes the module sends while nobody reads
  fill the pty buffer and are then dropped, like a serial line with no
  listener. The "disconnect" fault closes the pty (the client's reads fail:
  EIO/HUP) and removes the symlink; when the port comes back a new pty is
  made and the symlink points to it.
* :class:`TcpEndpoint`: a listening socket on 127.0.0.1 (pyserial's
  ``socket://127.0.0.1:PORT`` works). Every connected client is a port.
  The "disconnect" fault drops the connections and stops listening; coming
  back listens again on the same port.

``baud`` paces the module's output at the rate of a serial line (10 bits a
byte); input is taken as fast as it comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import tty
from collections.abc import Callable

from .core import SimModem

__all__ = ["PtyEndpoint", "TcpEndpoint"]

_TICK = 0.01  # pacing granularity, seconds


class _Pacer:
    """Output at the rate of a serial line: ``baud`` / 10 bytes a second.

    A chunk (a tick's worth of bytes at the most) reaches the reader when its
    last byte would have crossed the wire: the line starts sending when it is
    free (or now, if it was idle) and takes ``len(chunk) / rate`` seconds, so
    neither a burst nor a short answer after an idle line arrives sooner than
    a real UART would deliver it.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, baud: int, write: Callable[[bytes], None]
    ) -> None:
        self._loop = loop
        self._rate = baud / 10.0
        self._write = write
        self._out = bytearray()
        self._timer: asyncio.Handle | None = None
        self._in_flight = 0  # bytes of the chunk on the wire now
        self._free_at = 0.0  # loop time at which the chunk on the wire is through

    def push(self, data: bytes) -> None:
        self._out += data
        if self._timer is None:
            self._send_next()

    def _send_next(self) -> None:
        n = min(len(self._out), max(1, int(self._rate * _TICK)))
        self._in_flight = n
        self._free_at = max(self._free_at, self._loop.time()) + n / self._rate
        self._timer = self._loop.call_at(self._free_at, self._drain)

    def _drain(self) -> None:
        self._timer = None
        chunk = bytes(self._out[: self._in_flight])
        del self._out[: self._in_flight]
        self._in_flight = 0
        self._write(chunk)
        if self._out:
            self._send_next()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._in_flight = 0
        self._out.clear()


class PtyEndpoint:
    """The module on a pseudo-terminal, published as ``link``."""

    def __init__(self, modem: SimModem, link: str, *, baud: int | None = None) -> None:
        self.modem = modem
        self.link = link
        self.baud = baud
        self._master: int | None = None
        self._slave: int | None = None
        self._pacer: _Pacer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def device(self) -> str | None:
        """The real pty device (``/dev/pts/N``) or None while disconnected."""
        return os.ttyname(self._slave) if self._slave is not None else None

    def start(self) -> None:
        """Open the pty, publish the symlink, attach to the module."""
        self._loop = asyncio.get_running_loop()
        self._closed = False
        if self.baud:
            self._pacer = _Pacer(self._loop, self.baud, self._write)
        self._open()
        self.modem.add_reconnect_listener(self._come_back)

    def _open(self) -> None:
        assert self._loop is not None
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            os.set_blocking(master, False)
            tmp = f"{self.link}.{os.getpid()}.tmp"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.symlink(os.ttyname(slave), tmp)
            os.replace(tmp, self.link)
        except OSError:
            os.close(master)
            os.close(slave)
            raise
        self._master, self._slave = master, slave
        self._loop.add_reader(master, self._readable)
        self.modem.attach(self)

    def _readable(self) -> None:
        if self._master is None:
            return
        try:
            data = os.read(self._master, 4096)
        except BlockingIOError:
            return
        except OSError:
            return  # EIO: no slave open; ours stays open, so rare
        if data:
            self.modem.receive(data)

    # -- SimPort --------------------------------------------------------------
    def sim_output(self, data: bytes) -> None:
        if self._master is None:
            return
        if self._pacer is not None:
            self._pacer.push(data)
        else:
            self._write(data)

    def _write(self, data: bytes) -> None:
        if self._master is None:
            return
        try:
            os.write(self._master, data)
        except BlockingIOError:
            pass  # pty buffer full, nobody reading: the bytes are lost
        except OSError as exc:
            if exc.errno not in (errno.EIO, errno.EAGAIN):
                raise

    def sim_hangup(self) -> None:
        """Disconnect fault: the device disappears (pty closed, symlink removed)."""
        self._teardown(remove_link=True)

    def _teardown(self, *, remove_link: bool) -> None:
        self.modem.detach(self)
        if self._pacer is not None:
            self._pacer.cancel()
        if self._master is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._master)
            os.close(self._master)
            self._master = None
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None
        if remove_link:
            with contextlib.suppress(FileNotFoundError):
                if os.path.islink(self.link):
                    os.unlink(self.link)

    def _come_back(self) -> None:
        if not self._closed and self._master is None:
            self._open()

    def close(self) -> None:
        self._closed = True
        self.modem.remove_reconnect_listener(self._come_back)
        self._teardown(remove_link=True)


class _TcpConnection(asyncio.Protocol):
    def __init__(self, endpoint: TcpEndpoint) -> None:
        self.endpoint = endpoint
        self.transport: asyncio.Transport | None = None
        self._pacer: _Pacer | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.endpoint.baud:
            self._pacer = _Pacer(asyncio.get_running_loop(), self.endpoint.baud, self._write)
        self.endpoint.connections.add(self)
        self.endpoint.modem.attach(self)

    def data_received(self, data: bytes) -> None:
        self.endpoint.modem.receive(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.endpoint.modem.detach(self)
        self.endpoint.connections.discard(self)
        if self._pacer is not None:
            self._pacer.cancel()

    def sim_output(self, data: bytes) -> None:
        if self._pacer is not None:
            self._pacer.push(data)
        else:
            self._write(data)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def sim_hangup(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class TcpEndpoint:
    """The module on a TCP port (default host 127.0.0.1; port 0 picks one)."""

    def __init__(
        self, modem: SimModem, host: str = "127.0.0.1", port: int = 0, *, baud: int | None = None
    ) -> None:
        self.modem = modem
        self.host = host
        self.port = port
        self.baud = baud
        self.connections: set[_TcpConnection] = set()
        self._server: asyncio.Server | None = None
        self._closed = False
        self._restart: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._closed = False
        await self._listen()
        self.modem.add_reconnect_listener(self._come_back)

    # The endpoint itself is a port too, so a disconnect fault reaches it even
    # when no client is connected: it stops listening until the port comes back.
    def sim_output(self, data: bytes) -> None:
        """Output goes to the connections, not here."""

    def sim_hangup(self) -> None:
        self.listening_down()

    async def _listen(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _TcpConnection(self), self.host, self.port, reuse_address=True
        )
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])
        self.modem.attach(self)

    def listening_down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def _come_back(self) -> None:
        if self._closed or self._server is not None:
            return
        self._restart = asyncio.get_running_loop().create_task(self._listen())

    async def close(self) -> None:
        self._closed = True
        self.modem.remove_reconnect_listener(self._come_back)
        self.modem.detach(self)
        if self._restart is not None:
            with contextlib.suppress(Exception):
                await self._restart
        for c in list(self.connections):
            if c.transport is not None:
                c.transport.close()
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        await asyncio.sleep(0)
