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
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from .journal import Journal, JournalError

log = logging.getLogger("bridge.worker")

P = ParamSpec("P")
R = TypeVar("R")


class WorkerClosed(JournalError):
    """The journal worker was closed; nothing more is written."""


class JournalCalls(Protocol):
    """What the bridge needs of a journal worker: :class:`JournalWorker` (a
    thread) or :class:`~bridge.journal_process.JournalProcess` (a process)."""

    @property
    def closed(self) -> bool: ...

    async def call(
        self, fn: Callable[Concatenate[Journal, P], R], /, *args: P.args, **kwargs: P.kwargs
    ) -> R: ...

    async def call_first(
        self, fn: Callable[Concatenate[Journal, P], R], /, *args: P.args, **kwargs: P.kwargs
    ) -> R: ...

    async def close(self) -> None: ...


#: Most calls one group commit takes (bridge.journal, "Group commit"): the
#: first call's result waits for the group's last (64 calls are about 10 ms
#: of the journal's thread), and each commit costs an fsync: with 16 modules
#: (tools/bench_bridge.py --modules 16, three runs each) 64 answered about as
#: many Commands as 32, 3 % more than 16 and 20 % more than 8.
GROUP_MAX = 64


class _Job:
    """One call for the thread: ``fn(journal, *args, **kwargs)``, its result
    for ``fut`` on ``loop``. ``groupable`` is False for the worker's close."""

    __slots__ = ("args", "fn", "fut", "groupable", "kwargs", "loop")

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        loop: asyncio.AbstractEventLoop,
        fut: asyncio.Future[Any],
        *,
        groupable: bool = True,
    ) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.loop, self.fut, self.groupable = loop, fut, groupable

    def run(self, journal: Journal) -> tuple[bool, Any]:
        """(True, result) or (False, the exception); never raises."""
        try:
            return True, self.fn(journal, *self.args, **self.kwargs)
        except StopIteration as exc:  # a future cannot carry it (PEP 479)
            return False, RuntimeError(f"journal call raised {exc!r}")
        except BaseException as exc:  # handed to the caller, as raised
            return False, exc


def _settle(done: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    """On the loop: each future its result or exception (a caller that
    cancelled meanwhile gets nothing: the call still ran)."""
    for fut, ok, value in done:
        if fut.cancelled():
            continue
        try:
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)
                fut.exception()  # retrieved: a caller cancelled meanwhile leaves no warning
        except Exception as exc:  # one outcome a future refuses strands none of the others
            fut.set_exception(RuntimeError(f"journal call outcome refused: {exc!r}"))


def _deliver(jobs: list[_Job], outcomes: list[tuple[bool, Any]]) -> None:
    """Hand the outcomes over: one wake-up of each loop for the whole batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for job, (ok, value) in zip(jobs, outcomes, strict=True):
        by_loop.setdefault(job.loop, []).append((job.fut, ok, value))
    for loop, done in by_loop.items():
        with contextlib.suppress(RuntimeError):  # its loop closed: nobody waits for it
            loop.call_soon_threadsafe(_settle, done)


class _Lanes:
    """The thread's work: two lanes, ``first`` served before ``rest``; one token
    in ``tokens`` per job (or the ``None`` that ends the thread), so the thread
    sleeps in one blocking get and never polls."""

    def __init__(self) -> None:
        self.tokens: queue.SimpleQueue[bool | None] = queue.SimpleQueue()
        self.first: collections.deque[_Job] = collections.deque()
        self.rest: collections.deque[_Job] = collections.deque()

    def put(self, job: _Job, *, first: bool) -> None:
        (self.first if first else self.rest).append(job)
        self.tokens.put(True)

    def end(self) -> None:
        self.tokens.put(None)

    def take(self) -> _Job | None:
        """The next job (the first lane's before the rest); None at the end."""
        if self.tokens.get() is None:
            return None
        return self.first.popleft() if self.first else self.rest.popleft()

    def take_more(self, batch: list[_Job], most: int) -> None:
        """Add to ``batch`` the groupable jobs queued now, in the order
        :meth:`take` would give them (the first lane's, then the rest),
        without waiting, up to ``most`` in all. Stops before a job that is
        not groupable (the close, which the ``None`` follows): the end is
        never taken here. Only the thread takes; the loop only appends, so
        the head seen is the head taken."""
        while len(batch) < most and (self.first or self.rest):
            lane = self.first or self.rest
            if not lane[0].groupable:
                return
            try:
                token = self.tokens.get_nowait()
            except queue.Empty:  # the job is queued, its token not yet: next time
                return
            assert token is not None  # the end comes only after the close
            batch.append(lane.popleft())


def _run_group(journal: Journal, batch: list[_Job]) -> list[tuple[bool, Any]]:
    """The batch in one group commit (:meth:`Journal.group`). If the group
    cannot stand (a call failed in the middle of its writes, or the commit
    itself failed), nothing of it is in the file: each call again, alone,
    and each gets its own outcome."""
    try:
        with journal.group():
            outcomes = [job.run(journal) for job in batch]
    except JournalError as exc:
        # a call's own failure is reported by that call, made alone; a failed
        # commit is the file's, worth a line
        log.log(
            logging.DEBUG if journal.broken else logging.WARNING,
            "journal: group of %d calls rolled back (%s); each made alone",
            len(batch),
            exc,
        )
        outcomes = [job.run(journal) for job in batch]
    return outcomes


def batch_work() -> None:
    """Put the calling thread in ``SCHED_BATCH`` (sched(7): never preempts on
    wake-up, no privilege needed); where that is missing, leave it be."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def _serve(lanes: _Lanes, journal: Journal) -> None:
    """The thread: run the jobs (the first lane's before the rest; the calls
    queued together as one group commit) until the ``None`` that ends it;
    when nothing is queued, the journal's idle work (its checkpoint).

    The thread runs ``SCHED_BATCH`` (Linux; a thread's own policy): a call
    that wakes it does not preempt the event loop's thread, which would
    otherwise lose the CPU, and then the GIL, at every hand-off.
    """
    batch_work()
    while (job := lanes.take()) is not None:
        batch = [job]
        if job.groupable:
            lanes.take_more(batch, GROUP_MAX)
        run_batch(journal, batch)
        if lanes.tokens.empty():
            idle_work(journal)


def run_batch(journal: Journal, batch: list[_Job]) -> None:
    """Run a batch (alone, or as one group commit) and hand its outcomes over."""
    outcomes = [batch[0].run(journal)] if len(batch) == 1 else _run_group(journal, batch)
    _deliver(batch, outcomes)


def idle_work(journal: Journal) -> None:
    """The journal's idle work (its checkpoint); a failure never stops the
    worker: the next call meets the file."""
    try:
        journal.idle()
    except Exception as exc:
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

    def _submit(self, job: _Job, *, first: bool = False) -> None:
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
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        # The thread settles the loop's future itself (one call_soon_threadsafe
        # for all it settles at once). Cancelling the awaiting task cancels
        # only ``fut``: the queued or running call is left alone.
        self._submit(_Job(fn, args, kwargs, loop, fut), first=first)
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
        self._submit(_Job(Journal.close, (), {}, loop, fut, groupable=False))
        self._lanes.end()  # the thread ends after the close
        await asyncio.shield(fut)

    async def __aenter__(self) -> JournalWorker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
