"""The one owner of a modem stack's lifecycle: client, session, SMS service.

Everyone who runs the modem layer (the CLI, the bridge, the benchmarks, the
tests) starts and stops it here, so the order is right in one place::

    stack = ModemStack("sim://bg96", session=SessionConfig(pin="1234"), consumer=journal)
    async with stack:                  # connect; start Session.run and SmsService.run
        await stack.wait_ready()        # initialised (SimProblem: the SIM needs a person)
        await stack.sms.send("2936", "pong")
    # left: the SMS service stops first, then the session, then the client closes

* Entering connects the client (a URL is opened with
  :meth:`AtClient.from_url`; a client you pass is used as it is) and starts
  the session's supervisor and, when there is a consumer, the SMS service's
  receive loop, each as a task the stack keeps.
* Without a consumer the SMS service is still there for :meth:`SmsService.send`
  but does not receive: nothing is read from or deleted on the SIM.
* A supervised task that fails (a bug, a misconfiguration the session cannot
  retry) is not lost: :meth:`wait_ready` and :meth:`guard` raise its error,
  and leaving the stack raises it too when nothing else is being raised.
* Leaving cancels the SMS service, then the session, then closes the
  client (which fails anything still pending): no task, subscription or
  hook is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from .client import AtClient
from .session import Session, SessionConfig
from .sms import Consumer, SmsService

__all__ = ["ModemStack"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class ModemStack:
    """Client + :class:`Session` + :class:`SmsService`, started and stopped in order.

    ``port`` is a port URL (see :func:`modem.client.open_connector`) or an
    :class:`AtClient` (not yet connected, or connected). ``session`` configures
    the session; ``consumer`` receives every inbound item (None: send only);
    ``sms`` holds :class:`SmsService` keyword arguments, passed through
    unchanged; ``client_options`` are :meth:`AtClient.from_url` keywords
    (``baudrate``, ``sim_options``, ``pause``...) for a URL.
    """

    def __init__(
        self,
        port: str | AtClient,
        *,
        session: SessionConfig | None = None,
        consumer: Consumer | None = None,
        sms: Mapping[str, Any] | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(port, AtClient):
            self.client = port
        else:
            self.client = AtClient.from_url(port, **dict(client_options or {}))
        self.session = Session(self.client, session)
        self.consumer = consumer
        self.sms = SmsService(self.session, consumer or _refuse, **dict(sms or {}))
        self._tasks: list[asyncio.Task[None]] = []
        self._failure: BaseException | None = None
        #: tasks awaiting in :meth:`guard` -> cancelled by it
        self._guarded: dict[asyncio.Task[Any], bool] = {}
        self._entered = False

    @property
    def sim_modem(self) -> Any:
        """The simulated module behind a ``sim://`` port, else None."""
        return self.client.sim_modem

    @property
    def failure(self) -> BaseException | None:
        """The error a supervised task ended with, if one did."""
        return self._failure

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> ModemStack:
        if self._entered:
            raise RuntimeError("a ModemStack is entered once")
        self._entered = True
        try:
            await self.client.connect()
        except BaseException:
            await self._close_all()
            raise
        self._start(self.session.run(), "session")
        if self.consumer is not None:
            self._start(self.sms.run(), "sms")
        return self

    def _start(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=f"{self.client.name}-{name}")
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        # Session.run and SmsService.run use TaskGroups: report the error itself
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        if exc is not None and self._failure is None:
            log.error("%s stopped: %s", task.get_name(), exc)
            self._failure = exc
            for guarded, cancelled in self._guarded.items():
                if not cancelled:
                    self._guarded[guarded] = True
                    guarded.cancel()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close_all()
        if e is None and self._failure is not None:
            raise self._failure

    async def _close_all(self) -> None:
        # the SMS service first (it uses the session), then the session, then the port
        for task in reversed(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self.sms.close()
        self.session.close()
        await self.client.close()

    # -- waiting ---------------------------------------------------------------------

    async def guard(self, aw: Awaitable[_T]) -> _T:
        """Await ``aw``; if a supervised task fails first, cancel it and raise that error.

        ``aw`` runs in the calling task: no task of its own, nothing more per
        call than a set entry. A failure cancels every guarded task (as
        :func:`asyncio.timeout` does, counted with ``uncancel`` so that a
        cancellation from outside is never taken for it, nor it for one).
        """
        if self._failure is not None:
            _discard(aw)
            raise self._failure
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("ModemStack.guard is awaited in a task")
        self._guarded[task] = False
        try:
            result = await aw
        except asyncio.CancelledError:
            if self._guarded.pop(task, False) and task.uncancel() == 0:
                raise self._failure or RuntimeError("a supervised task stopped") from None
            raise
        if self._guarded.pop(task, False):  # ``aw`` swallowed the cancellation
            task.uncancel()
            raise self._failure or RuntimeError("a supervised task stopped")
        return result

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Return once the session is initialised.

        Raises :class:`~modem.errors.SimProblem` while the SIM needs a person,
        a supervised task's error if one failed, TimeoutError after ``timeout``.
        """
        if self.session.ready.is_set():
            return
        async with asyncio.timeout(timeout):
            await self.guard(self.session.wait_ready())


def _discard(aw: Awaitable[Any]) -> None:
    """An awaitable that will never be awaited: closed (a coroutine) or cancelled."""
    if asyncio.iscoroutine(aw):
        aw.close()
    elif asyncio.isfuture(aw):
        aw.cancel()


async def _refuse(item: Any) -> None:
    raise RuntimeError("this stack has no consumer: it only sends")
