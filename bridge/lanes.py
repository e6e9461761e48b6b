"""One module's worker: a task that takes its queue's items one at a time, in
order, each run to its end in that task, and a stop that lets the item in
flight finish within a grace.

The dispatcher (Commands) and the outbox (replies) each keep one
:class:`Lane` per module. An item runs in the lane's own task, with no task
of its own and no shield: per Command that is two task creations, two
shields and their callbacks fewer on the event loop, whose CPU is what
limits many modules in one process (``docs/performance.md``). What the
shield gave, :meth:`Lane.stop` gives: an idle lane is cancelled at once; a
busy one is asked to stop after its item and is cancelled only when the
grace runs out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["Lane"]

T = TypeVar("T")


class Lane(Generic[T]):
    """Runs ``run(item)`` for each item of ``queue``, one at a time, in the
    order they were queued; ``after(item)`` follows each run, however it ended.

    ``run`` is not expected to raise (the dispatcher's ``process`` and the
    outbox's ``_settle`` log and count their errors): an exception it lets out
    ends the lane and is raised by :meth:`stop`, as a task's would be.
    """

    def __init__(
        self,
        name: str,
        queue: asyncio.Queue[T],
        run: Callable[[T], Awaitable[None]],
        after: Callable[[T], None] | None = None,
    ) -> None:
        self.queue = queue
        self._run = run
        self._after = after
        self._busy = False
        self._current: T | None = None
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name=name)

    @property
    def busy(self) -> bool:
        """True while an item is being run."""
        return self._busy

    @property
    def current(self) -> T | None:
        """The item being run, or None."""
        return self._current

    async def _loop(self) -> None:
        while not self._stopping:
            item = await self.queue.get()  # cancelled here when idle: the item stays queued
            self._busy = True
            self._current = item
            try:
                await self._run(item)
            finally:
                self._busy = False
                self._current = None
                if self._after is not None:
                    self._after(item)

    async def stop(self, grace: float) -> T | None:
        """Stop the lane; returns the item that was cancelled mid-way, if any.

        Idle, it stops at once. Busy, the item in flight may finish within
        ``grace`` seconds (no further item is taken), else it is cancelled
        at the await it is in. Items still queued stay in the queue.
        """
        self._stopping = True
        task = self._task
        cut: T | None = None
        if not task.done():
            if not self._busy:
                task.cancel()
            else:
                done, _ = await asyncio.wait((task,), timeout=grace)
                if not done:
                    cut = self._current
                    task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if me is not None and me.cancelling():
                raise  # the caller itself is being cancelled
        return cut
