"""The journal's worker thread: every :class:`~bridge.journal.Journal` call off the event loop.

The journal is synchronous SQLite, and its gating writes commit with
``synchronous=FULL`` (an fsync each): 11-14 ms at p99 on the development
VM, far more on an SD card (docs/bridge.md, "Journal"). The event loop also
drives the modem line, so it must never wait on a commit. A
:class:`JournalWorker` owns the journal and one thread; every call is queued
to that thread in order (one caller at a time, as the journal requires) and
awaited as a future::

    worker = JournalWorker(Journal.open(path))
    receipt = await worker.call(Journal.receive, modem="modem0", sender="2936", ...)
    await worker.close()        # runs every call already queued, then closes the file

A call is submitted when :meth:`JournalWorker.call` is awaited; cancelling
the awaiting task does not cancel the call, queued or started (a commit
is never torn), and :meth:`close` drains every call queued before it.
Errors are the journal's own (:class:`~bridge.journal.JournalError`); a call
after :meth:`close` raises :class:`WorkerClosed`, a subclass.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from .journal import Journal, JournalError

log = logging.getLogger("bridge.worker")

P = ParamSpec("P")
R = TypeVar("R")


class WorkerClosed(JournalError):
    """The journal worker was closed; nothing more is written."""


def _set_result(fut: asyncio.Future[Any], result: object) -> None:
    if not fut.cancelled():  # a caller cancelled meanwhile: the call still ran
        fut.set_result(result)


def _set_exception(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.cancelled():
        fut.set_exception(exc)
        fut.exception()  # retrieved: a caller cancelled meanwhile leaves no warning


class _Lanes:
    """The thread's work: two lanes, ``first`` served before ``rest``; one token
    in ``tokens`` per job (or the ``None`` that ends the thread), so the thread
    sleeps in one blocking get and never polls."""

    def __init__(self) -> None:
        self.tokens: queue.SimpleQueue[bool | None] = queue.SimpleQueue()
        self.first: collections.deque[Callable[[], None]] = collections.deque()
        self.rest: collections.deque[Callable[[], None]] = collections.deque()

    def put(self, job: Callable[[], None], *, first: bool) -> None:
        (self.first if first else self.rest).append(job)
        self.tokens.put(True)

    def end(self) -> None:
        self.tokens.put(None)

    def take(self) -> Callable[[], None] | None:
        if self.tokens.get() is None:
            return None
        return self.first.popleft() if self.first else self.rest.popleft()


def _serve(lanes: _Lanes, journal: Journal) -> None:
    """The thread: run each job (the first lane's before the rest) until the
    ``None`` that ends it; when nothing is queued, the journal's idle work (its
    checkpoint)."""
    while (job := lanes.take()) is not None:
        with contextlib.suppress(RuntimeError):  # its loop closed: nobody waits for it
            job()
        if lanes.tokens.empty():
            try:
                journal.idle()
            except Exception as exc:  # never stops the worker; the next call meets the file
                log.warning("journal: idle checkpoint failed: %s", exc)


class JournalWorker:
    """One thread that runs every journal call, in submission order (those
    submitted with :meth:`call_first` ahead of the others).

    A plain thread on a :class:`queue.SimpleQueue` rather than a
    ``ThreadPoolExecutor``: the pool's locks, work items and futures cost
    about half of each hand-off here, and one thread in order is all the
    journal wants. Started at the first call; a daemon thread, so a process
    exiting without :meth:`close` is not held up (the journal's commits are
    durable when made; an unfinished one is rolled back by SQLite).
    """

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._lanes = _Lanes()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._closing: asyncio.Future[None] | None = None

    def _submit(self, job: Callable[[], None], *, first: bool = False) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=_serve, args=(self._lanes, self.journal), name="journal", daemon=True
            )
            self._thread.start()
        self._lanes.put(job, first=first)

    @property
    def closed(self) -> bool:
        return self._closed

    async def call(
        self, fn: Callable[Concatenate[Journal, P], R], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Run ``fn(journal, *args, **kwargs)`` in the worker thread and return its result.

        ``fn`` is an unbound :class:`Journal` method (``Journal.receive``) or
        any function taking the journal first.
        """
        return await self._call(False, fn, *args, **kwargs)

    async def call_first(
        self, fn: Callable[Concatenate[Journal, P], R], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """:meth:`call`, served before every call queued with :meth:`call` (in
        order among themselves): for what the modem line waits on -- an SMS is
        deleted from the SIM only once journaled, and while it waits the line
        is idle -- so it does not queue behind the bookkeeping of earlier
        Commands. Only for calls that do not depend on an earlier queued one.
        """
        return await self._call(True, fn, *args, **kwargs)

    async def _call(
        self,
        first: bool,
        fn: Callable[Concatenate[Journal, P], R],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        if self._closed:
            raise WorkerClosed(f"journal {self.journal.path}: the worker is closed")
        journal = self.journal
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()

        # The thread settles the loop's future itself (one call_soon_threadsafe),
        # cheaper than wrapping the executor's future. Cancelling the awaiting
        # task cancels only ``fut``: the queued or running call is left alone.
        def job() -> None:
            try:
                result = fn(journal, *args, **kwargs)
            except BaseException as exc:
                loop.call_soon_threadsafe(_set_exception, fut, exc)
            else:
                loop.call_soon_threadsafe(_set_result, fut, result)

        self._submit(job, first=first)
        return await fut

    async def close(self) -> None:
        """Drain the calls already queued, then close the journal (in the thread).

        Idempotent: a second call waits for the first to finish.
        """
        if self._closing is not None:
            await asyncio.shield(self._closing)
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._closing = fut
        journal = self.journal

        def job() -> None:
            try:
                journal.close()
            except BaseException as exc:
                loop.call_soon_threadsafe(_set_exception, fut, exc)
            else:
                loop.call_soon_threadsafe(_set_result, fut, None)

        self._submit(job)
        self._lanes.end()  # the thread ends after the close
        await asyncio.shield(fut)

    async def __aenter__(self) -> JournalWorker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
