"""The serial port's asyncio transport, reading and writing its file descriptor.

pyserial-asyncio-fast's ``SerialTransport`` waits on the port's descriptor
and then calls pyserial's ``Serial.read`` / ``Serial.write`` for each
readiness. On POSIX those are general blocking-with-timeout routines: a
``read`` builds a ``Timeout`` and ``select()``s once more before and after
its ``os.read`` (three system calls for one chunk), a ``write`` builds a
``Timeout`` too. With the descriptor already known to be ready and
non-blocking, :class:`FdSerialTransport` calls ``os.read`` / ``os.write``
itself: one system call per event, the same errors as pyserial's (which
stays the one that opens and configures the port, termios and all):

* ``EAGAIN`` / ``EINTR``: nothing now (the loop calls again);
* an empty read of a readable descriptor: the device went away (a USB
  module re-enumerating), ``serial.SerialException`` as pyserial says it;
* any other ``OSError`` (``EIO`` after a hang-up): ``SerialException``.

Everything else (buffering, flow control, close) is the parent's. Used for
pyserial's POSIX ``Serial`` only; ``socket://`` and other URL handlers keep
pyserial-asyncio-fast's own path (modem.client).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import serial
import serial_asyncio_fast

__all__ = ["READ_SIZE", "FdSerialTransport", "connect", "uses_fd"]

#: Bytes taken per read: a pty or a tty's buffer holds 4 KiB.
READ_SIZE = 4096


def uses_fd(serial_instance: Any) -> bool:
    """True for a pyserial POSIX port (a tty's descriptor to read and write)."""
    return type(serial_instance) is serial.Serial and isinstance(
        getattr(serial_instance, "fd", None), int
    )


class FdSerialTransport(serial_asyncio_fast.SerialTransport):
    """:class:`serial_asyncio_fast.SerialTransport` with its two I/O steps on
    the descriptor (module doc)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol: asyncio.Protocol,
        serial_instance: serial.Serial,
    ) -> None:
        super().__init__(loop, protocol, serial_instance)
        self._fd: int = serial_instance.fd
        self._max_read_size = READ_SIZE

    def _read_ready(self) -> None:
        try:
            data = os.read(self._fd, self._max_read_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._close(exc=serial.SerialException(f"read failed: {exc}"))
            return
        if not data:
            self._close(
                exc=serial.SerialException(
                    "device reports readiness to read but returned no data "
                    "(device disconnected or multiple access on port?)"
                )
            )
            return
        self._protocol.data_received(data)

    def _write_data(self, data: bytes | bytearray | memoryview) -> None:
        try:
            n = os.write(self._fd, data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as exc:
            self._fatal_error(
                serial.SerialException(f"write failed: {exc}"),
                "Fatal write error on serial transport",
            )
            return
        if n == len(data):
            # All out: stop waiting for room (the parent's _write_data leaves the
            # writer registered, and _write_ready then fires on an empty buffer).
            self._remove_writer()
            if self._closing:
                self._close()
            return
        self._write_buffer.append(data[n:])  # the rest when the port is writable
        self._maybe_pause_protocol()
        self._ensure_writer()


async def connect(
    loop: asyncio.AbstractEventLoop,
    protocol_factory: Any,
    url: str,
    **kwargs: Any,
) -> tuple[asyncio.BaseTransport, Any]:
    """pyserial-asyncio-fast's ``create_serial_connection``, with
    :class:`FdSerialTransport` for a POSIX port (opened, as there, in the
    default executor: opening a tty may block)."""
    if "://" in url:  # socket:// and pyserial's other URL handlers
        return await serial_asyncio_fast.create_serial_connection(
            loop, protocol_factory, url, **kwargs
        )
    port = await loop.run_in_executor(None, lambda: serial.serial_for_url(url, **kwargs))
    if not uses_fd(port):  # pragma: no cover - a plain path is pyserial's POSIX Serial
        return await serial_asyncio_fast.connection_for_serial(loop, protocol_factory, port)
    protocol = protocol_factory()
    return FdSerialTransport(loop, protocol, port), protocol
