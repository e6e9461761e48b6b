"""The journal in a process of its own: :class:`JournalProcess`.

The same interface as :class:`~bridge.worker.JournalWorker` (``call``,
``call_first``, ``close``), over a UNIX socket pair to a child process that
owns the journal file and runs the worker's loop (as :func:`bridge.worker._serve`:
the two lanes, group commit, one hand-over per group after its commit) in its
one thread, which also reads the calls: nothing is handed between threads
there, and no second thread wants the child's GIL.

Why a process (``[bridge] journal_process = true``; docs/bridge.md, "The
journal in a process of its own"): the journal thread and the event loop share
one GIL. With 16 modules the loop holds it about half the time, and the thread
waits for it after every SQLite statement (the sqlite3 module lets go of it
for each step): a journal call took 0.64 ms of the thread's wall time for
0.19 ms of its CPU, the thread was busy 89 % of the time, and each call
waited 12-16 ms for its group. Every step of a Command waits on a call, so
the modules' lines stood idle. In a process of its own the journal has its
own GIL, on another core.

What stays the same, and why it holds:

* **Nothing is acknowledged before its commit.** The child sends a group's
  outcomes once the group has committed (the worker's ``_deliver``), and a
  future is settled only when its outcome arrives.
* **Order.** Calls go over one stream in the order they were made, and the
  child puts them in the worker's lanes in that order.
* **One writer.** The child is given the service's lock on
  ``journal.db.lock`` (the same open file), so the lock is held until both
  processes are gone; and it is killed with its parent (``PR_SET_PDEATHSIG``),
  as a unit's stop kills the whole control group. A call cut short by that
  kill is rolled back by SQLite, exactly as a power cut.
* **A dead journal is seen.** When the child dies, every pending call and
  every later one fails with :class:`~bridge.worker.WorkerClosed` (a
  :class:`~bridge.journal.JournalError`): an SMS is then kept on the SIM,
  and the watchdog's journal probe fails, so systemd restarts the service.

What a call must be: a :class:`~bridge.journal.Journal` method or a
module-level function taking the journal first (pickled by reference), with
arguments and a result that pickle. A call that cannot be sent raises
``TypeError`` at once, naming it.

Wire: frames of a 4-byte big-endian length and a pickle (protocol 5). The
parent sends ``("calls", [(id, first, blob)])`` (``blob`` the pickled
``(fn, args, kwargs)``) and ``("close",)``; the child answers ``("ready",)``
or ``("error", text)`` once the journal is open, ``("done", [(id, ok,
value)])`` per group, and ``("closed",)`` after the journal is closed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import logging
import os
import pickle
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from .journal import Journal, JournalError
from .worker import GROUP_MAX, WorkerClosed, _deliver, _Job, batch_work, idle_work, run_batch

log = logging.getLogger("bridge.journal_process")

P = ParamSpec("P")
R = TypeVar("R")

#: Seconds the parent waits for the child to open the journal (its own
#: ``timeout`` for a locked file is 5 s) and, at close, for it to finish.
START_TIMEOUT = 30.0
CLOSE_TIMEOUT = 30.0

_HEADER = 4
_PR_SET_PDEATHSIG = 1


def _frame(msg: object) -> bytes:
    data = pickle.dumps(msg, protocol=5)
    return len(data).to_bytes(_HEADER, "big") + data


class _Link(asyncio.Protocol):
    """The parent's end: frames in, each message to ``on_message``."""

    def __init__(
        self, on_message: Callable[[Any], None], on_lost: Callable[[Exception | None], None]
    ) -> None:
        self._buf = bytearray()
        self._on_message = on_message
        self._on_lost = on_lost

    def data_received(self, data: bytes) -> None:
        self._buf += data
        for msg in _frames(self._buf):
            self._on_message(msg)

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(exc)


class JournalProcess:
    """The journal's worker in a child process (see the module doc).

    ``await JournalProcess.start(path, window_size=64, lock_fd=fd)``; then
    ``call``/``call_first`` as on :class:`~bridge.worker.JournalWorker`, and
    ``close``. ``lock_fd``: the open ``journal.db.lock`` the service holds,
    passed on so the child holds it too.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._out: list[tuple[int, bool, bytes]] = []
        self._flush_at: asyncio.Handle | None = None
        self._transport: asyncio.Transport | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._ready: asyncio.Future[None] | None = None
        self._ended: asyncio.Future[None] | None = None
        self._closed = False
        self._closing: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls, path: str | Path, *, window_size: int = 64, lock_fd: int | None = None
    ) -> JournalProcess:
        """Start the child and wait until it has opened the journal.

        :class:`~bridge.journal.JournalError` with the child's reason when it
        could not (the same reasons as :meth:`Journal.open`), or when it did
        not start.
        """
        self = cls(Path(path))
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._ready = loop.create_future()
        self._ended = loop.create_future()
        fds = [theirs.fileno()] + ([lock_fd] if lock_fd is not None else [])
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        argv = [
            sys.executable,
            "-c",
            # OpenSSL kept out first, as in ``run`` (bridge.start): the journal needs none
            "import sys; sys.path.insert(0, sys.argv[1]); "
            "from bridge.start import keep_openssl_out; keep_openssl_out(); "
            "from bridge.journal_process import child_main; sys.exit(child_main(sys.argv[2:]))",
            root,
            "--fd",
            str(theirs.fileno()),
            "--path",
            str(self.path),
            "--window",
            str(window_size),
            "--parent",
            str(os.getpid()),
            "--log-level",
            str(logging.getLogger().getEffectiveLevel()),
        ]
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, pass_fds=fds
            )
        except BaseException as exc:
            ours.close()
            if not isinstance(exc, OSError):
                raise
            raise JournalError(
                f"journal {self.path}: the journal process did not start: {exc}"
            ) from None
        finally:
            theirs.close()
        transport, _ = await loop.connect_accepted_socket(
            lambda: _Link(self._on_message, self._on_lost), ours
        )
        self._transport = transport
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await asyncio.shield(self._ready)
        except BaseException:
            await self._abort()
            raise
        return self

    # --- the interface of JournalWorker ------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    async def call(
        self, fn: Callable[Concatenate[Journal, P], R], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Run ``fn(journal, *args, **kwargs)`` in the journal process; its result."""
        return cast(R, await self._call(False, fn, args, kwargs))

    async def call_first(
        self, fn: Callable[Concatenate[Journal, P], R], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """:meth:`~bridge.worker.JournalWorker.call_first`: ahead of every :meth:`call`."""
        return cast(R, await self._call(True, fn, args, kwargs))

    async def _call(
        self, first: bool, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if self._closed:
            raise WorkerClosed(f"journal {self.path}: the worker is closed")
        try:
            blob = pickle.dumps((fn, args, kwargs), protocol=5)
        except Exception as exc:  # PicklingError, TypeError, AttributeError, a __reduce__'s
            name = getattr(fn, "__qualname__", repr(fn))
            raise TypeError(
                f"journal call {name} cannot go to the journal process: {exc}"
            ) from None
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        call_id = next(self._ids)
        self._pending[call_id] = fut
        self._out.append((call_id, first, blob))
        if self._flush_at is None:
            # the calls made in one turn of the loop go in one frame
            self._flush_at = loop.call_soon(self._flush)
        return await fut

    def _flush(self) -> None:
        self._flush_at = None
        out, self._out = self._out, []
        if out and self._transport is not None:
            self._transport.write(_frame(("calls", out)))

    async def close(self) -> None:
        """Let the child run every call already made, close the journal and
        exit. Idempotent: a second call waits for the first."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        self._closed = True
        if self._flush_at is not None:
            self._flush_at.cancel()
        self._flush()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(_frame(("close",)))
        assert self._ended is not None
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await asyncio.shield(self._ended)
        except TimeoutError:
            log.error("journal process did not finish within %.0f s: killed", CLOSE_TIMEOUT)
        await self._abort()

    async def __aenter__(self) -> JournalProcess:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- the child's messages ------------------------------------------------------------

    def _on_message(self, msg: Any) -> None:
        kind = msg[0]
        if kind == "done":
            for call_id, sent_ok, blob in msg[1]:
                fut = self._pending.pop(call_id, None)
                if fut is None or fut.cancelled():
                    continue  # its caller gave up: the call ran all the same
                ok = sent_ok
                try:
                    value = pickle.loads(blob)
                except Exception as exc:  # one outcome that cannot be read strands no other
                    ok, value = False, JournalError(f"journal call outcome cannot be read: {exc!r}")
                try:
                    if ok:
                        fut.set_result(value)
                    else:
                        fut.set_exception(value)
                        fut.exception()  # retrieved: see bridge.worker._settle
                except Exception as exc:  # refused (not an exception, say): see _settle
                    fut.set_exception(RuntimeError(f"journal call outcome refused: {exc!r}"))
        elif kind == "ready":
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        elif kind == "error":
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(JournalError(msg[1]))
        elif kind == "closed" and self._ended is not None and not self._ended.done():
            self._ended.set_result(None)

    def _on_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if not self._closed:
            log.error("journal process ended (%s): the journal is closed", exc or "end of stream")
        self._closed = True
        err = WorkerClosed(f"journal {self.path}: the journal process ended")
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(err)
                fut.exception()
        self._pending.clear()
        if self._ready is not None and not self._ready.done():  # it ended while starting
            self._ready.set_exception(
                JournalError(f"journal {self.path}: the journal process ended")
            )
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(None)

    async def _abort(self) -> None:
        """Close the stream and reap the child (killed if it is still there)."""
        if self._transport is not None:
            self._transport.close()
        proc = self._proc
        if proc is None:
            return
        try:
            async with asyncio.timeout(5.0):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if proc.returncode not in (0, None):
            log.warning("journal process exited with %s", proc.returncode)

    @property
    def pid(self) -> int | None:
        """The child's process id (tests, the benchmark)."""
        return None if self._proc is None else self._proc.pid


# --- the child ---------------------------------------------------------------------------


class _Wire:
    """The child's stand-in for a job's event loop: the worker's ``_deliver``
    hands each group's outcomes to ``call_soon_threadsafe``; here they go to
    the parent, in one frame, after the group's commit."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.gone = False

    def send(self, msg: object) -> None:
        self._send(_frame(msg))

    def _send(self, frame: bytes) -> None:
        if self.gone:
            return
        try:
            self._sock.sendall(frame)
        except OSError:
            self.gone = True  # the parent is gone: nobody waits for these

    def call_soon_threadsafe(self, _settle: object, done: list[tuple[Any, bool, Any]]) -> None:
        # each outcome a pickle of its own: one that does not pickle here, or
        # does not load there, strands none of the others
        self._send(_frame(("done", [(call_id, *_sendable(ok, v)) for call_id, ok, v in done])))


def _sendable(ok: bool, value: Any) -> tuple[bool, bytes]:
    try:
        return ok, pickle.dumps(value, protocol=5)
    except Exception as exc:
        err = JournalError(f"journal call outcome cannot be sent: {exc!r}")
        return False, pickle.dumps(err, protocol=5)


def _refuse(journal: Journal, message: str) -> None:
    """The job of a call the child cannot load: its caller gets TypeError."""
    raise TypeError(message)


def _die_with_parent(parent: int) -> None:
    """SIGKILL when the parent dies (Linux ``prctl``), as systemd's stop kills the
    unit's control group; and no start at all when it is already gone."""
    import ctypes  # noqa: PLC0415 - the child's only: not loaded in the service

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _frames(buf: bytearray) -> Iterator[object]:
    """The whole messages at the head of ``buf``, taken out of it."""
    while len(buf) >= _HEADER:
        n = int.from_bytes(buf[:_HEADER], "big")
        if len(buf) < _HEADER + n:
            return
        body = bytes(buf[_HEADER : _HEADER + n])
        del buf[: _HEADER + n]
        yield pickle.loads(body)


class _Calls:
    """The child's queue of calls: the worker's two lanes, filled from the
    socket by the one thread that also runs them (no hand-off between
    threads, no second GIL holder in the child)."""

    def __init__(self, sock: socket.socket, wire: _Wire) -> None:
        self._sock = sock
        self._loop = cast(asyncio.AbstractEventLoop, wire)
        self._buf = bytearray()
        self.first: collections.deque[_Job] = collections.deque()
        self.rest: collections.deque[_Job] = collections.deque()
        self.reading = True

    def __bool__(self) -> bool:
        return bool(self.first or self.rest)

    def take_in(self, *, wait: bool) -> None:
        """Queue the calls that have come, in order; with ``wait``, first wait
        for one whole message. At the close, the end of the stream or a
        broken one (the parent is gone), :attr:`reading` turns False."""
        while self.reading:
            for msg in _frames(self._buf):
                if msg == ("close",):
                    self.reading = False
                    return
                assert isinstance(msg, tuple) and msg[0] == "calls"
                for call_id, first, blob in msg[1]:
                    try:
                        fn, a, kw = pickle.loads(blob)
                    except Exception as exc:  # in its place, in order: its caller gets TypeError
                        fn, a, kw = _refuse, (f"journal call cannot be loaded there: {exc!r}",), {}
                    job = _Job(fn, a, kw, self._loop, cast(Any, call_id))
                    (self.first if first else self.rest).append(job)
                wait = False  # one message is enough to go on with
            try:
                chunk = self._sock.recv(1 << 16, 0 if wait else socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""  # the parent is gone
            if not chunk:
                self.reading = False
                return
            self._buf += chunk

    def batch(self) -> list[_Job]:
        """The next job and the groupable ones queued behind it (the first
        lane's, then the rest), up to ``GROUP_MAX``: as the worker's lanes."""
        lane = self.first or self.rest
        batch = [lane.popleft()]
        if batch[0].groupable:
            while len(batch) < GROUP_MAX and (lane := self.first or self.rest):
                if not lane[0].groupable:
                    break
                batch.append(lane.popleft())
        return batch


def _serve_here(calls: _Calls, journal: Journal) -> None:
    """The worker's loop (:func:`bridge.worker._serve`) in the child's one
    thread: wait for calls only when none is queued; run them a group at a
    time (:func:`bridge.worker.run_batch`: one commit, then its outcomes in
    one frame); take in what came meanwhile (one read without waiting); when
    none is left, the journal's idle work (its checkpoint)."""
    while True:
        if not calls:
            if not calls.reading:
                return
            calls.take_in(wait=True)
            continue
        run_batch(journal, calls.batch())
        if calls.reading:
            calls.take_in(wait=False)
        if not calls:
            idle_work(journal)


def child_main(argv: Sequence[str] | None = None) -> int:
    """The journal process: open the journal, then serve the parent's calls."""
    p = argparse.ArgumentParser(prog="bridge.journal_process")
    p.add_argument("--fd", type=int, required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--parent", type=int, required=True)
    p.add_argument("--log-level", type=int, default=logging.INFO)
    args = p.parse_args(argv)
    _die_with_parent(args.parent)
    batch_work()  # the reader too: a call's frame never preempts the parent's event loop
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(args.log_level)
    sock = socket.socket(fileno=args.fd)
    wire = _Wire(sock)
    try:
        journal = Journal.open(args.path, window_size=args.window)
    except JournalError as exc:
        wire.send(("error", str(exc)))
        return 2
    wire.send(("ready",))
    calls = _Calls(sock, wire)
    try:
        _serve_here(calls, journal)
    finally:
        # the calls already here have run; then the journal closes
        loop = cast(asyncio.AbstractEventLoop, wire)
        close = _Job(Journal.close, (), {}, loop, cast(Any, 0), groupable=False)
        _deliver([close], [close.run(journal)])
    wire.send(("closed",))
    return 0
