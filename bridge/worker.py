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
import concurrent.futures
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from .journal import Journal, JournalError

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


class JournalWorker:
    """One thread that runs every journal call, in submission order."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="journal"
        )
        self._closed = False
        self._closing: asyncio.Future[None] | None = None

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

        self._pool.submit(job)
        return await fut

    async def close(self) -> None:
        """Drain the calls already queued, then close the journal (in the thread).

        Idempotent: a second call waits for the first to finish.
        """
        if self._closing is not None:
            await asyncio.shield(self._closing)
            return
        self._closed = True
        fut = asyncio.wrap_future(self._pool.submit(self.journal.close))
        self._closing = fut
        try:
            await asyncio.shield(fut)
        finally:
            self._pool.shutdown(wait=False)

    async def __aenter__(self) -> JournalWorker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
