"""asyncio AT client: one command in flight, URCs as bounded async streams.

The client is the I/O edge around :class:`modem.protocol.AtProtocol`. It owns
the transport (pyserial URL through pyserial-asyncio-fast, or ``sim://PROFILE``
for the in-process simulated module), writes one command at a time, feeds the
bytes it reads to the core, resolves the command's future from the core's
events and fans unsolicited result codes out to subscribers.

Guarantees (tested):

* one command in flight; a configurable pause between commands;
* cancellation-safe: a command cancelled or timed out leaves the line in
  sync - ESC right away for a stuck ``> `` prompt, then (before the next
  command) a resync;
* a sync (:meth:`AtClient.sync`, also at start-up) writes ESC first and
  pauses (:data:`timing.ESC_SETTLE`), so a module left at the ``> `` prompt
  by a killed sender takes commands again (TS 27.005 §3.5.1), then probes
  ``AT`` until *any* final result (V.250 §5.7.1): a module that answers
  ``ERROR`` to a bare ``AT`` is alive and in sync, never reset;
* after a plain ``ERROR`` the next command line waits
  :data:`timing.STRAY_RESULT_WINDOW`, so a stray second final result some
  modules send is discarded, not taken as the next command's answer;
* no busy polling: an idle client awaits nothing but the transport's
  callbacks; every wait has a deadline;
* closing the client or losing the port fails every pending future; after a
  timeout, a disconnect or a close no future or listener is left
  (:meth:`AtClient.leftovers` reports them for tests);
* raw traffic is logged at :data:`TRACE` (level 5) on ``modem.client.trace``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

from . import fdserial, timing
from .commands import Command, Response, at
from .errors import (
    ClientClosed,
    CommandTimeout,
    ModemDisconnected,
    ModemError,
    ModemRebooted,
    UsageError,
)
from .protocol import (
    AtProtocol,
    Discarded,
    DiscardReason,
    Echo,
    Event,
    FinalResult,
    Intermediate,
    Prompt,
    ResultKind,
    Urc,
)

__all__ = ["TRACE", "AtClient", "Connector", "StaleCommand", "Subscription", "open_connector"]

T = TypeVar("T")

log = logging.getLogger(__name__)
trace_log = logging.getLogger("modem.client.trace")

#: Log level of raw traffic (below DEBUG).
TRACE = 5
logging.addLevelName(TRACE, "TRACE")

CTRL_Z = b"\x1a"
ESC = b"\x1b"

#: Default bound of each subscriber's URC queue. On overflow the oldest URC is
#: dropped and :attr:`Subscription.overflowed` is set (the SMS service sweeps).
URC_QUEUE_SIZE = 256


class StaleCommand(ModemError):
    """A command's precondition failed once the line was its turn: it was
    **not written** (see :meth:`AtClient.execute`).

    Raised, for example, for a ``+CMGD`` queued on the lock while the module
    rebooted: the index it names belongs to a storage selection (``+CPMS``,
    TS 27.005 §3.2.2) and a module generation that no longer hold. Safe to
    issue again once the caller's state is valid again (never retried here).
    """

    def __init__(self, command: str) -> None:
        self.command = command
        super().__init__(f"{command!r}: not written, its precondition no longer holds")

    @property
    def transient(self) -> bool:
        return True


ProtocolFactory = Callable[[], asyncio.Protocol]
Connector = Callable[[ProtocolFactory], Awaitable[tuple[asyncio.BaseTransport, Any]]]


#: pyserial URL handlers without a file descriptor: pyserial-asyncio-fast
#: cannot wait on them (``rfc2217`` also refuses the non-blocking write timeout).
UNSUPPORTED_URL_SCHEMES = frozenset({"rfc2217", "loop"})


def open_connector(
    url: str, *, baudrate: int = 115200, sim_options: dict[str, Any] | None = None
) -> Connector:
    """A connector for ``url``: a pyserial URL or ``sim://PROFILE[?OPTIONS]``.

    For ``sim://`` the simulated module is created once (so it survives
    reconnects, like a real module behind a re-enumerated USB port) and kept
    as ``connector.sim_modem``. Options (``&``-separated): ``pin=1234`` (the
    SIM asks for it), ``puk=12345678``, ``sim_inserted=0`` (no SIM),
    ``sim_busy_time=S`` (the SIM answers "SIM busy" for S seconds after each
    boot), ``seed=N``, ``registered=0`` (no network at first),
    ``register_after=S`` (the network comes up S seconds after the first
    connection). A bad profile or option raises :class:`UsageError`.
    """
    if url.startswith("sim://"):
        return _sim_connector(url, sim_options)

    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme in UNSUPPORTED_URL_SCHEMES:
        raise UsageError(
            f"{scheme}:// ports are not supported: the asyncio serial transport "
            "(pyserial-asyncio-fast) needs a file descriptor to wait on, and "
            f"pyserial's {scheme} port has none. For a serial port on another "
            "machine, share it as a raw TCP port (ser2net, socat) and use "
            "socket://HOST:PORT."
        )

    async def serial_connect(factory: ProtocolFactory) -> tuple[asyncio.BaseTransport, Any]:
        loop = asyncio.get_running_loop()
        return await fdserial.connect(loop, factory, url, baudrate=baudrate)

    return serial_connect


_SIM_URL_OPTIONS = (
    "pin",
    "puk",
    "sim_inserted",
    "sim_busy_time",
    "seed",
    "registered",
    "register_after",
)


def _sim_connector(url: str, sim_options: dict[str, Any] | None) -> Connector:
    # production code touches the simulator only when a user asks for it
    sim: Any = importlib.import_module("modem.sim")

    spec = url[len("sim://") :]
    profile, _, query = spec.partition("?")
    opts: dict[str, str] = {}
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        if key not in _SIM_URL_OPTIONS:
            raise UsageError(
                f"{url!r}: unknown option {key!r} (known: {', '.join(_SIM_URL_OPTIONS)})"
            )
        opts[key] = value
    profile = profile or "generic"
    if profile not in sim.PROFILES:
        raise UsageError(
            f"{url!r}: unknown simulated module {profile!r} (known: {', '.join(sim.PROFILES)})"
        )
    try:
        seed = int(opts.get("seed", "0"))
        register_after = float(opts["register_after"]) if "register_after" in opts else None
        busy = float(opts.get("sim_busy_time", "0"))
    except ValueError as exc:
        raise UsageError(f"{url!r}: {exc}") from None
    for what, seconds in (("register_after", register_after), ("sim_busy_time", busy)):
        if seconds is not None and not 0 <= seconds <= 86400:
            raise UsageError(f"{url!r}: {what} is 0..86400 seconds")
    try:
        modem = sim.SimModem(
            profile,
            pin=opts.get("pin") or None,
            puk=opts.get("puk") or "12345678",
            sim_inserted=opts.get("sim_inserted", "1") != "0",
            sim_busy_time=busy,
            seed=seed,
        )
    except ValueError as exc:
        raise UsageError(f"{url!r}: {exc}") from None
    if opts.get("registered", "1") == "0" or register_after is not None:
        modem.set_registered(False)
    extra = dict(sim_options or {})
    pending_register = [register_after]

    async def sim_connect(factory: ProtocolFactory) -> tuple[asyncio.BaseTransport, Any]:
        delay = pending_register.pop() if pending_register else None
        if delay is not None:
            asyncio.get_running_loop().call_later(delay, modem.set_registered, True)
        result = sim.create_sim_connection(factory, modem, **extra)
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            result = await result
        transport, protocol = result
        return transport, protocol

    sim_connect.sim_modem = modem  # type: ignore[attr-defined]
    return sim_connect


class Subscription:
    """A bounded stream of URCs; iterate it (``async for urc in sub``).

    Ends (StopAsyncIteration) when the client closes. Use as a context manager
    or call :meth:`close` so the client forgets it.
    """

    def __init__(self, client: AtClient, maxsize: int, names: tuple[str, ...] | None) -> None:
        self._client = client
        self._queue: deque[Urc] = deque()
        self._maxsize = maxsize
        self._names = names
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.overflowed = 0

    def wants(self, urc: Urc) -> bool:
        return self._names is None or urc.name in self._names

    def _push(self, urc: Urc) -> None:
        if len(self._queue) >= self._maxsize:
            self._queue.popleft()
            self.overflowed += 1
            log.warning("URC queue full: dropped the oldest (%d so far)", self.overflowed)
        self._queue.append(urc)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client._subscriptions.discard(self)
            self._wake()

    def __aiter__(self) -> AsyncIterator[Urc]:
        return self

    async def __anext__(self) -> Urc:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    async def get(self, timeout: float | None = None) -> Urc:
        """The next URC; TimeoutError after ``timeout``; ClientClosed when closed."""
        async with asyncio.timeout(timeout):
            try:
                return await self.__anext__()
            except StopAsyncIteration:
                raise ClientClosed("subscription closed") from None

    def pending(self) -> int:
        return len(self._queue)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _LineProtocol(asyncio.Protocol):
    """The client's end of one connection.

    Callbacks reach the client only while this is the client's current
    connection: after a reconnect, a late ``data_received`` or
    ``connection_lost`` from the old transport is ignored (it must neither
    feed old bytes into the new session nor tear the new connection down).
    """

    def __init__(self, client: AtClient) -> None:
        self.client = client

    @property
    def current(self) -> bool:
        return self.client._line_protocol is self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.current:
            self.client._on_connected(transport)
        else:
            transport.close()

    def data_received(self, data: bytes) -> None:
        if self.current:
            self.client._on_data(data)
        else:
            log.debug("ignored %d bytes from a previous connection", len(data))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.current:
            self.client._on_lost(self, exc)


class _Expired(Exception):
    """A command's deadline passed (set on its final future by its timer)."""


class _LineLock:
    """The line: one owner at a time, handed to waiters in FIFO order.

    Unlike :class:`asyncio.Lock`, :meth:`release` may be called by whoever
    holds the line for its owner: the client releases it from the transport's
    data callback the moment a command's final result is read, so the next
    command line is written one event-loop turn after the final result, not
    two (the owner's own resumption is not waited for). Ownership passes
    straight to the first waiter; nobody can take the line in between.
    """

    __slots__ = ("_held", "_waiters")

    def __init__(self) -> None:
        self._held = False
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiters(self) -> int:
        return len(self._waiters)

    def locked(self) -> bool:
        return self._held

    async def acquire(self) -> None:
        if not self._held and not self._waiters:
            self._held = True
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # handed to us as we were cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(fut)
            raise

    def release(self) -> None:
        """Hand the line to the next waiter, or free it."""
        waiters = self._waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the waiter owns it now (still held)
                return
        self._held = False

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class _InFlight:
    """The command on the line: its lines so far, its final result's future,
    the prompt data still to write, its deadline timer."""

    __slots__ = (
        "command",
        "data",
        "data_sent",
        "final",
        "finished",
        "lines",
        "owns_line",
        "timeout",
        "timer",
    )

    def __init__(
        self,
        command: str,
        final: asyncio.Future[FinalResult],
        *,
        data: str | None = None,
        timeout: float = 0.0,
        owns_line: bool = False,
    ) -> None:
        self.command = command
        self.lines: list[str] = []
        self.final = final
        self.data = data
        self.timeout = timeout
        #: the line is released with the final result (:meth:`AtClient.run`)
        self.owns_line = owns_line
        self.data_sent = False
        #: the final result was read and the command ended cleanly
        self.finished = False
        self.timer: asyncio.TimerHandle | None = None


class AtClient:
    """The asyncio AT client. See the module docstring.

    ``connector`` opens the transport (see :func:`open_connector`); pass a URL
    instead with :meth:`from_url`.
    """

    def __init__(
        self,
        connector: Connector,
        *,
        pause: float | None = None,
        urc_queue_size: int = URC_QUEUE_SIZE,
        protocol: AtProtocol | None = None,
        name: str = "modem",
    ) -> None:
        self._connector = connector
        self._pause = pause
        self.urc_queue_size = urc_queue_size
        self.proto = protocol or AtProtocol()
        self.name = name
        self._transport: asyncio.BaseTransport | None = None
        self._line_protocol: _LineProtocol | None = None
        self._lock = _LineLock()
        self._inflight: _InFlight | None = None
        self._subscriptions: set[Subscription] = set()
        self._closed = False
        self._needs_resync = False
        self._last_done = 0.0
        #: the last command ended with a plain ERROR: a stray final result may follow
        self._stray_may_follow = False
        self._last_stray = ""
        self._lost = asyncio.Event()
        #: Called for every echoed command line (the session sets it after ATE0).
        self.on_echo: Callable[[str], None] | None = None
        #: Called for every line the core dropped (noise may have been a lost URC).
        self.on_discard: list[Callable[[Discarded], None]] = []
        #: Called after every command timeout (the session counts them: hung module).
        self.on_timeout: Callable[[], None] | None = None
        #: Counters, for tests, ``info`` and the supervisor.
        self.stats: dict[str, int] = {
            "commands": 0,
            "timeouts": 0,
            "consecutive_timeouts": 0,
            "discarded": 0,
            "stray_results": 0,
            "urcs": 0,
            "bytes_in": 0,
            "bytes_out": 0,
            "disconnects": 0,
        }

    @classmethod
    def from_url(cls, url: str, *, baudrate: int = 115200, **kwargs: Any) -> AtClient:
        sim_options = kwargs.pop("sim_options", None)
        return cls(open_connector(url, baudrate=baudrate, sim_options=sim_options), **kwargs)

    @property
    def sim_modem(self) -> Any:
        """The simulated module behind a ``sim://`` connector, else None."""
        return getattr(self._connector, "sim_modem", None)

    @property
    def pause(self) -> float:
        """Pause between commands: the value set, else :data:`timing.INTER_COMMAND_PAUSE`."""
        return timing.INTER_COMMAND_PAUSE if self._pause is None else self._pause

    @pause.setter
    def pause(self, value: float | None) -> None:
        self._pause = value

    # -- lifecycle ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._closed

    @property
    def closed(self) -> bool:
        return self._closed

    async def connect(self) -> None:
        """Open the port once (raises what the connector raises)."""
        if self._closed:
            raise ClientClosed("client closed")
        if self._transport is not None:
            return
        self.proto.reset()

        def factory() -> _LineProtocol:
            self._line_protocol = _LineProtocol(self)
            return self._line_protocol

        transport, _ = await self._connector(factory)
        if self._transport is None:  # connection_made not called by an odd transport
            self._on_connected(transport)
        self._needs_resync = False

    async def reconnect(
        self,
        *,
        initial: float | None = None,
        maximum: float | None = None,
        attempts: int | None = None,
    ) -> None:
        """Reopen the port with exponential backoff until it is back.

        ``initial``/``maximum`` default to :data:`timing.RECONNECT_INITIAL` /
        :data:`timing.RECONNECT_MAX` as they are now.
        """
        delay = timing.RECONNECT_INITIAL if initial is None else initial
        maximum = timing.RECONNECT_MAX if maximum is None else maximum
        n = 0
        while True:
            if self._closed:
                raise ClientClosed("client closed")
            try:
                await self.connect()
                return
            except (OSError, ModemDisconnected) as exc:
                n += 1
                if attempts is not None and n >= attempts:
                    raise ModemDisconnected(f"port did not come back: {exc}") from exc
                log.info("reconnect failed (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(maximum, delay * 2)

    async def wait_lost(self) -> None:
        """Return when the connection is lost (or the client closed)."""
        await self._lost.wait()

    async def close(self) -> None:
        """Close the port; fail pending commands; end every subscription."""
        if self._closed:
            return
        self._closed = True
        self._fail_inflight(ClientClosed("client closed"))
        for sub in list(self._subscriptions):
            sub.close()
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()
        self._lost.set()
        await asyncio.sleep(0)

    async def __aenter__(self) -> AtClient:
        await self.connect()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def leftovers(self) -> dict[str, int]:
        """What is still pending (tests assert all zero after timeouts/disconnects)."""
        return {
            "inflight": int(self._inflight is not None),
            "subscriptions": len(self._subscriptions),
            "lock_waiters": self._lock.waiters,
        }

    # -- transport callbacks ---------------------------------------------------------

    def _on_connected(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._lost.clear()
        log.info("%s: connected", self.name)

    def _on_data(self, data: bytes) -> None:
        self.stats["bytes_in"] += len(data)
        if trace_log.isEnabledFor(TRACE):
            trace_log.log(TRACE, "%s <- %r", self.name, data)
        for event in self.proto.feed(data):
            self._dispatch(event)

    def _on_lost(self, line_protocol: _LineProtocol, exc: Exception | None) -> None:
        if self._closed:
            return
        log.warning("%s: connection lost (%s)", self.name, exc)
        self.stats["disconnects"] += 1
        self._transport = None
        self.proto.reset()
        self._fail_inflight(ModemDisconnected(f"connection lost: {exc}"))
        self._lost.set()

    def _dispatch(self, event: Event) -> None:
        inflight = self._inflight
        if isinstance(event, Urc):
            self.stats["urcs"] += 1
            for sub in list(self._subscriptions):
                if sub.wants(event):
                    sub._push(event)
        elif isinstance(event, Intermediate):
            if inflight is not None:
                inflight.lines.append(event.line)
        elif isinstance(event, FinalResult):
            if inflight is not None and not inflight.final.done():
                self._finish(inflight, event)  # the next command's turn first
                inflight.final.set_result(event)
        elif isinstance(event, Prompt):
            if (
                inflight is not None
                and inflight.data is not None
                and not inflight.data_sent
                and not inflight.final.done()
            ):
                self._send_data(inflight)
        elif isinstance(event, Discarded):
            self.stats["discarded"] += 1
            if event.reason is DiscardReason.STRAY_RESULT:
                self.stats["stray_results"] += 1
                self._last_stray = event.data
            for hook in list(self.on_discard):
                hook(event)
        elif isinstance(event, Echo) and self.on_echo is not None:
            self.on_echo(event.line)

    def _send_data(self, inflight: _InFlight) -> None:
        """The prompt came: write the PDU and Ctrl-Z at once, from the data
        callback (TS 27.005 §3.5.1), and give the module the command's whole
        timeout from now for its final result."""
        assert inflight.data is not None
        self.proto.sent_pdu(inflight.data)
        try:
            self._write(inflight.data.encode("ascii") + CTRL_Z)
        except ModemDisconnected:
            return  # the connection-lost callback fails the command
        inflight.data_sent = True
        self._arm(inflight, inflight.timeout)

    def _arm(self, inflight: _InFlight, delay: float) -> None:
        """(Re)start the command's deadline: ``delay`` seconds from now."""
        if inflight.timer is not None:
            inflight.timer.cancel()
        inflight.timer = asyncio.get_running_loop().call_later(delay, self._expire, inflight)

    @staticmethod
    def _expire(inflight: _InFlight) -> None:
        inflight.timer = None
        if not inflight.final.done():
            inflight.final.set_exception(_Expired())

    def _finish(self, inflight: _InFlight, final: FinalResult) -> None:
        """The final result was read: the command is over. Its owner's task
        picks the response up; the line goes to the next command now."""
        inflight.finished = True
        if inflight.timer is not None:
            inflight.timer.cancel()
            inflight.timer = None
        if self._inflight is inflight:
            self._inflight = None
        self.stats["consecutive_timeouts"] = 0
        self._stray_may_follow = final.kind is ResultKind.ERROR
        if inflight.owns_line:
            self._last_done = asyncio.get_running_loop().time()
            self._lock.release()

    def _fail_inflight(self, exc: ModemError) -> None:
        inflight = self._inflight
        if inflight is None:
            return
        fut = inflight.final
        if not fut.done():
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: the awaiting task may be gone

    def fail_pending(self, exc: ModemError) -> None:
        """Fail the command in flight now (the module rebooted: no answer will come)."""
        if self._inflight is not None:
            self._fail_inflight(exc)
            self._needs_resync = True

    def _write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None:
            raise ModemDisconnected("not connected")
        if trace_log.isEnabledFor(TRACE):
            trace_log.log(TRACE, "%s -> %r", self.name, data)
        self.stats["bytes_out"] += len(data)
        transport.write(data)  # type: ignore[attr-defined]

    # -- URCs --------------------------------------------------------------------------

    def subscribe(
        self, names: tuple[str, ...] | None = None, *, maxsize: int | None = None
    ) -> Subscription:
        """A new bounded URC stream (all URCs, or only those named ``+CMTI``...)."""
        if self._closed:
            raise ClientClosed("client closed")
        sub = Subscription(self, maxsize or self.urc_queue_size, names)
        self._subscriptions.add(sub)
        return sub

    # -- commands ----------------------------------------------------------------------

    async def execute(
        self, command: Command[T], *, precondition: Callable[[], bool] | None = None
    ) -> T:
        """Run ``command`` with its retry policy; return its parsed value.

        ``precondition`` (and the command's own, :meth:`Command.when`) is
        evaluated once the lock is held, after any resync
        and pause, right before the command line is written (and again before
        each retry): when it returns False the command is not written and
        :class:`StaleCommand` is raised (never retried). A command queued
        behind a slow one may find the world changed by its turn - a reboot
        noticed meanwhile loses ``+CPMS`` (TS 27.005 §3.2.2), so an index read
        before it names another storage's slot now.

        Raises CmeError/CmsError/CommandFailed (the module said no),
        CommandTimeout, ModemDisconnected/ClientClosed, ProtocolError,
        StaleCommand.
        """
        policy = command.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self.run(command, precondition=precondition)
                return command.parse(response)
            except StaleCommand:
                raise
            except (CommandTimeout, ModemRebooted):
                # Outcome unknown: the module may have executed the command before
                # it went mute or restarted. Repeat only commands whose policy says
                # that is harmless (reads); never +CMGD (the freed index may hold
                # a new message by now) nor +CMGS (a second Command at Twilio).
                if attempt >= policy.attempts or not policy.retry_timeout:
                    raise
            except ModemError as exc:
                if (
                    attempt >= policy.attempts
                    or not exc.transient
                    or isinstance(exc, ModemDisconnected)
                ):
                    raise
            await asyncio.sleep(policy.delay(attempt))

    async def run(
        self, command: Command[Any], *, precondition: Callable[[], bool] | None = None
    ) -> Response:
        """Send one command line (and its prompt data); return the raw response.

        ``precondition``: see :meth:`execute` (checked under the lock, with no
        await between the check and the write).
        """
        if self._closed:
            raise ClientClosed("client closed")
        await self._lock.acquire()
        handed = False  # the line passed to the command (released with its end)
        try:
            if self._needs_resync:
                await self._resync()
            pause = self.pause
            if self._stray_may_follow:
                pause = max(pause, timing.STRAY_RESULT_WINDOW)
            if pause > 0:
                wait = self._last_done + pause - asyncio.get_running_loop().time()
                if wait > 0:
                    await asyncio.sleep(wait)
            for check in (command.precondition, precondition):
                if check is not None and not check():
                    raise StaleCommand(command.text)
            handed = True
            return await self._run_locked(command, owns_line=True)
        finally:
            if not handed:
                self._last_done = asyncio.get_running_loop().time()
                self._lock.release()

    async def _run_locked(self, command: Command[Any], *, owns_line: bool = False) -> Response:
        """One command on the line (held by the caller). ``owns_line``: the
        line is released when the command ends - from the data callback at
        its final result, else here, once the line is back in order."""
        inflight = _InFlight(
            command.text,
            asyncio.get_running_loop().create_future(),
            data=command.data,
            timeout=command.timeout,
            owns_line=owns_line,
        )
        try:
            if self._transport is None:
                raise ModemDisconnected("not connected")
            self._inflight = inflight
            self.stats["commands"] += 1
            self.proto.start(command.request)
            # with prompt data: the prompt (or an early final result, ERROR)
            # is due within prompt_timeout; the data callback writes the PDU
            # at the prompt and restarts the deadline at the whole timeout.
            # Armed before the write: a transport may answer inside write().
            self._arm(
                inflight, command.prompt_timeout if command.data is not None else command.timeout
            )
            self._write(command.text.encode("ascii") + b"\r")
            final = await inflight.final
            return Response(tuple(inflight.lines), final, inflight.data_sent)
        except _Expired:
            self.stats["timeouts"] += 1
            self.stats["consecutive_timeouts"] += 1
            if self.on_timeout is not None:
                self.on_timeout()
            err = CommandTimeout(command.text, command.timeout)
            err.data_sent = inflight.data_sent
            raise err from None
        except ModemError as exc:
            # disconnect, reboot, close: tell the caller whether the PDU was out
            if inflight.data_sent:
                exc.data_sent = True
            raise
        finally:
            if not inflight.finished:
                if inflight.timer is not None:
                    inflight.timer.cancel()
                if self._inflight is inflight:
                    self._inflight = None
                if not inflight.final.done():
                    inflight.final.cancel()
                elif not inflight.final.cancelled():
                    inflight.final.exception()  # retrieved (an expiry beside a cancel)
                self._after_abort(inflight)
                if owns_line:
                    self._last_done = asyncio.get_running_loop().time()
                    self._lock.release()

    def _after_abort(self, inflight: _InFlight) -> None:
        """A command ended without its final result: get the line back in sync."""
        self.proto.abort()
        if self._transport is None:
            return
        if inflight.data is not None and not inflight.data_sent:
            # TS 27.005 §3.5.1: ESC quits the prompt without sending. Written even
            # when the prompt has not shown yet: it may still come, and a module
            # left at the prompt would swallow every later command line. In
            # command state the ESC only spoils one line, which the resync absorbs.
            with contextlib.suppress(ModemError):
                self._write(ESC)
        self._needs_resync = True

    async def _resync(self) -> None:
        """Sync before the next command after an abort; CommandTimeout if the module is mute."""
        try:
            await self._sync_locked(timing.SYNC_ATTEMPTS)
        except BaseException:
            # still not known to be in sync (a probe's late OK may be on its way):
            # the next command resyncs first too
            self._needs_resync = True
            raise
        self._needs_resync = False

    async def _sync_locked(self, attempts: int) -> None:
        """V.250 sync: ESC, :data:`timing.ESC_SETTLE`, then ``AT`` until a final result.

        ESC first: a module left at the ``> `` prompt (a killed sender, a raw
        ``AT+CMGS``) takes it as "quit without sending" (TS 27.005 §3.5.1); in
        command state it spoils at most the next line, which the probes absorb.
        *Any* final result proves the module alive and in sync (V.250 §5.7.1):
        some modules answer a bare ``AT`` with ``ERROR``. After it the line must
        stay quiet for :data:`timing.SYNC_QUIET`: a further final result means
        the first was a late answer to an aborted command, so probe again - but
        an ``OK`` right after a plain ``ERROR`` is that ERROR's stray tail.
        """
        self.escape()
        await asyncio.sleep(timing.ESC_SETTLE)
        probe = at()
        for _ in range(attempts):
            try:
                response = await self._run_locked(probe)
            except CommandTimeout:
                self._needs_resync = False
                continue
            strays = self.stats["stray_results"]
            await asyncio.sleep(timing.SYNC_QUIET)
            extra = self.stats["stray_results"] - strays
            tail = extra == 1 and response.final.kind is ResultKind.ERROR
            if extra == 0 or (tail and self._last_stray == "OK"):
                self._stray_may_follow = False
                return
        raise CommandTimeout("AT (sync)", probe.timeout * attempts)

    async def sync(self, attempts: int | None = None) -> None:
        """ESC, then ``AT`` until a final result (``attempts`` default: timing.SYNC_ATTEMPTS)."""
        async with self._lock:
            await self._sync_locked(attempts or timing.SYNC_ATTEMPTS)
            self._needs_resync = False
            self._stray_may_follow = False

    def escape(self) -> None:
        """Write ESC now (out of band; used by the hung-module escalation)."""
        if self._transport is not None:
            self._write(ESC)
