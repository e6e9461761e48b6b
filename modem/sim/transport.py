"""An in-process asyncio transport pair to a :class:`SimModem` (no OS resources).

It behaves like pyserial-asyncio-fast's ``SerialTransport`` as the client sees
it: ``write``/``close``/``is_closing``/``abort``/``get_extra_info`` on the
transport; ``connection_made``/``data_received``/``connection_lost`` on the
protocol. Bytes never arrive inside ``write()``: each delivery is a loop
callback, like a real fd becoming readable.

Delivery modes (module -> client; client -> module bytes are always handed
to the module in order, after the same line-rate and delay model):

``whole``    each chunk the module writes arrives as one ``data_received``.
``bytewise`` one ``data_received`` per byte.
``delayed``  each chunk ``delay`` seconds after it was sent (order kept).
``lossy``    each byte dropped with probability ``loss`` (seeded), both ways.

``baud`` adds line-rate emulation: a byte takes 10/baud seconds on the line
(start + 8 data + stop bits), each direction its own line (``baud=True``
means 115200).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

from .core import SimModem

__all__ = ["SimConnection", "SimTransport", "create_sim_connection"]

P = TypeVar("P", bound=asyncio.BaseProtocol)

MODES = ("whole", "bytewise", "delayed", "lossy")
_CLOCK_RESOLUTION = time.get_clock_info("monotonic").resolution


class _Line:
    """One direction of the line: a FIFO with delay and rate, one timer at a time.

    Chunks are delivered strictly in the order sent (the loop's timer heap does
    not keep the order of callbacks due at the same time, so each chunk is not
    a timer of its own).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float, baud: int | None) -> None:
        self._loop = loop
        self._delay = delay
        self._byte_time = 10.0 / baud if baud else 0.0
        self._free_at = 0.0  # when the line finishes the last byte queued
        self._queue: deque[tuple[float, bytes, Callable[[bytes], None]]] = deque()
        self._handle: asyncio.Handle | None = None

    @property
    def pending(self) -> int:
        """Chunks on the line, not yet delivered."""
        return len(self._queue)

    def send(self, data: bytes, deliver: Callable[[bytes], None]) -> None:
        start = max(self._loop.time(), self._free_at)
        self._free_at = start + len(data) * self._byte_time
        self._queue.append((self._free_at + self._delay, data, deliver))
        if self._handle is None:
            self._arm()

    def _arm(self) -> None:
        at = self._queue[0][0]
        if at <= self._loop.time():
            self._handle = self._loop.call_soon(self._run)
        else:
            self._handle = self._loop.call_at(at, self._run)

    def _run(self) -> None:
        self._handle = None
        # The loop runs timers up to one clock resolution early.
        now = self._loop.time() + _CLOCK_RESOLUTION
        try:
            while self._queue and self._queue[0][0] <= now and self._handle is None:
                _, data, deliver = self._queue.popleft()
                deliver(data)  # may send (re-arming) or cancel
        finally:
            if self._queue and self._handle is None:
                self._arm()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._queue.clear()


class _FakeSerial:
    """Enough of ``serial.Serial`` for code that reads ``transport.serial``."""

    def __init__(self, baud: int | None) -> None:
        self.port = "sim://"
        self.baudrate = baud or 115200
        self.timeout = 0
        self.is_open = True


class SimTransport(asyncio.Transport):
    """The client's end of the in-process pair."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol: asyncio.BaseProtocol,
        modem: SimModem,
        *,
        delivery: str,
        delay: float,
        loss: float,
        seed: int,
        baud: int | None,
    ) -> None:
        super().__init__()
        self._loop = loop
        self._protocol = protocol
        self._modem = modem
        self._mode = delivery
        self._loss = loss if delivery == "lossy" else 0.0
        self._rng = random.Random(seed)
        self._down = _Line(loop, delay if delivery == "delayed" else 0.0, baud)
        self._up = _Line(loop, delay if delivery == "delayed" else 0.0, baud)
        self._closing = False
        self._lost = False
        self._paused = False
        self._held: list[bytes] = []
        self.serial = _FakeSerial(baud)
        self._extra: dict[str, Any] = {"serial": self.serial, "sim": modem, "peername": "sim"}

    # -- SimPort (module side) --------------------------------------------
    def sim_output(self, data: bytes) -> None:
        if self._closing:
            return
        data = self._lose(data)
        if data:
            self._down.send(data, self._to_protocol)

    def sim_hangup(self) -> None:
        """Disconnect fault: the port vanished under the client."""
        if self._closing:
            return
        self._closing = True
        self._down.cancel()
        self._up.cancel()
        self._modem.detach(self)
        self._loop.call_soon(self._call_lost, ConnectionResetError("simulated disconnect"))

    # -- delivery -----------------------------------------------------------
    def _lose(self, data: bytes) -> bytes:
        if not self._loss:
            return data
        return bytes(b for b in data if self._rng.random() >= self._loss)

    def _to_protocol(self, data: bytes) -> None:
        if self._lost or self._closing:
            return
        if self._paused or self._held:  # behind what is held, in order
            self._held.append(data)
            return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        proto = self._protocol
        assert isinstance(proto, asyncio.Protocol)
        if self._mode == "bytewise":
            for i in range(len(data)):
                if self._closing or self._lost:
                    return
                proto.data_received(data[i : i + 1])
        else:
            proto.data_received(data)

    def _to_modem(self, data: bytes) -> None:
        if not self._closing:
            self._modem.receive(data)

    def _call_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._protocol.connection_lost(exc)

    # -- asyncio.Transport ------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing:
            return
        raw = self._lose(bytes(data))
        if raw:
            self._up.send(raw, self._to_modem)

    def writelines(self, list_of_data: Any) -> None:
        for d in list_of_data:
            self.write(d)

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("serial lines have no EOF")

    def get_write_buffer_size(self) -> int:
        return 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (0, 0)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._modem.detach(self)
        self._down.cancel()
        self._up.cancel()
        self._loop.call_soon(self._call_lost, None)

    def abort(self) -> None:
        self.close()

    def is_reading(self) -> bool:
        return not self._paused and not self._closing

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        if not self._paused:
            return
        self._paused = False
        if self._held:
            self._loop.call_soon(self._flush_held)

    def _flush_held(self) -> None:
        while self._held and not (self._paused or self._closing or self._lost):
            self._feed(self._held.pop(0))

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)


class SimConnection(tuple[SimTransport, P], Generic[P]):
    """``(transport, protocol)``; also awaitable, giving the same tuple.

    So both ``t, p = create_sim_connection(...)`` and
    ``t, p = await create_sim_connection(...)`` work.
    """

    def __await__(self) -> Generator[Any, None, tuple[SimTransport, P]]:
        if False:  # pragma: no cover - makes this a generator
            yield None
        return (self[0], self[1])


def create_sim_connection(
    protocol_factory: Callable[[], P],
    modem: SimModem,
    *,
    delivery: str = "whole",
    delay: float = 0.0,
    loss: float = 0.0,
    seed: int = 0,
    baud: int | bool | None = None,
) -> SimConnection[P]:
    """Connect a protocol to ``modem`` through an in-process transport.

    A plain function that needs a running loop; the result is also awaitable
    (like pyserial-asyncio's ``create_serial_connection``). ``connection_made``
    is called before it returns. Raises ``ConnectionRefusedError`` while the
    module's port is away (the "disconnect" fault).
    """
    if delivery not in MODES:
        raise ValueError(f"delivery is one of {MODES}, not {delivery!r}")
    if not 0.0 <= loss <= 1.0:
        raise ValueError("loss is a probability 0..1")
    if delay < 0:
        raise ValueError("delay must be >= 0")
    if baud is True:
        baud = 115200
    elif baud is False:
        baud = None
    if baud is not None and baud <= 0:
        raise ValueError("baud must be positive")
    if not modem.connectable:
        raise ConnectionRefusedError("simulated port is disconnected")
    loop = asyncio.get_running_loop()
    protocol = protocol_factory()
    if not isinstance(protocol, asyncio.Protocol):
        raise TypeError("protocol_factory must return an asyncio.Protocol")
    transport = SimTransport(
        loop, protocol, modem, delivery=delivery, delay=delay, loss=loss, seed=seed, baud=baud
    )
    protocol.connection_made(transport)
    modem.attach(transport)
    return SimConnection((transport, protocol))
