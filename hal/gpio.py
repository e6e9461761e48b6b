"""GPIO: the contract shared by both backends, and the edge fan-out.

:class:`GpioBase` holds what does not depend on the backend: name lookup,
value and direction checks, a lock per line (a pulse is not interleaved with
a write), ``pulse`` that always ends inactive even when cancelled,
``restore``, and edge subscriptions. A backend implements ``_get`` and
``_set`` (and publishes edges through ``_publish``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence

from .config import LineConfig
from .errors import GpioError
from .interfaces import EdgeEvent, LineInfo

__all__ = ["EDGE_QUEUE_LIMIT", "EdgeQueue", "GpioBase", "is_level"]

log = logging.getLogger(__name__)

EDGE_QUEUE_LIMIT = 256  # edges kept per subscriber; older ones are dropped (and logged)


def is_level(value: object) -> bool:
    """The integers 0 and 1 only (not True, not 1.0: a typed caller never sends them)."""
    return type(value) is int and value in (0, 1)


class EdgeQueue:
    """One subscriber's edges: an async iterator that ends when closed."""

    def __init__(self, owner: GpioBase) -> None:
        self._owner = owner
        self._queue: asyncio.Queue[EdgeEvent | None] = asyncio.Queue()
        self._closed = False
        self.dropped = 0

    def _put(self, event: EdgeEvent) -> None:
        if self._queue.qsize() >= EDGE_QUEUE_LIMIT:
            self._queue.get_nowait()
            self.dropped += 1
            log.warning("gpio edges: subscriber too slow, dropped %d so far", self.dropped)
        self._queue.put_nowait(event)

    def __aiter__(self) -> AsyncIterator[EdgeEvent]:
        return self

    async def __anext__(self) -> EdgeEvent:
        if self._closed:
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def __aenter__(self) -> EdgeQueue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._owner._subscribers.discard(self)
            self._queue.put_nowait(None)  # wake a waiting __anext__


class GpioBase:
    """Named lines with the checks and locking common to every backend."""

    def __init__(self, lines: Mapping[str, LineConfig]) -> None:
        self._cfg = dict(lines)
        self._locks = {name: asyncio.Lock() for name in self._cfg}
        self._subscribers: set[EdgeQueue] = set()
        self._closed = False

    # backend hooks ------------------------------------------------------

    def _info(self, cfg: LineConfig) -> LineInfo:
        raise NotImplementedError

    def _get(self, cfg: LineConfig) -> int:
        raise NotImplementedError

    def _set(self, cfg: LineConfig, value: int) -> None:
        raise NotImplementedError

    async def _read_input(self, cfg: LineConfig) -> int:
        return self._get(cfg)

    async def _close(self) -> None:
        return None

    # the contract -------------------------------------------------------

    def lines(self) -> Sequence[LineInfo]:
        return [self._info(c) for c in self._cfg.values()]

    def config(self, name: str) -> LineConfig:
        try:
            return self._cfg[name]
        except KeyError:
            raise GpioError(name, "no line of that name is configured") from None

    def _output(self, name: str, value: int) -> LineConfig:
        cfg = self.config(name)
        if cfg.direction != "output":
            raise GpioError(name, "is an input; it cannot be written")
        if not is_level(value):
            raise GpioError(name, f"value must be 0 or 1, not {value!r}")
        return cfg

    def _check_open(self, name: str) -> None:
        if self._closed:
            raise GpioError(name, "the GPIO lines have been released")

    async def read(self, name: str) -> int:
        """The logical value (1 = active); an output reads back what it drives."""
        cfg = self.config(name)
        self._check_open(name)
        if cfg.direction == "input":
            return await self._read_input(cfg)
        return self._get(cfg)

    async def write(self, name: str, value: int) -> None:
        cfg = self._output(name, value)
        async with self._locks[name]:
            self._check_open(name)
            self._set(cfg, value)

    async def pulse(self, name: str, ms: int) -> None:
        """Active for ``ms`` milliseconds, then inactive (also if the caller is cancelled)."""
        cfg = self._output(name, 1)
        if isinstance(ms, bool) or not isinstance(ms, int) or not 1 <= ms <= cfg.max_pulse_ms:
            raise GpioError(name, f"pulse must be 1 to {cfg.max_pulse_ms} ms, not {ms!r}")
        async with self._locks[name]:
            self._check_open(name)
            self._set(cfg, 1)
            try:
                await asyncio.sleep(ms / 1000)
            finally:
                if not self._closed:
                    self._set(cfg, 0)

    async def restore(self, states: Mapping[str, int]) -> list[str]:
        """Drive each named output to its desired state; returns the names skipped.

        A name that is no longer a configured output (the configuration
        changed since the state was saved) is skipped, not fatal: the other
        outputs are still restored.
        """
        skipped = []
        for name, value in states.items():
            cfg = self._cfg.get(name)
            if cfg is None or cfg.direction != "output" or not is_level(value):
                skipped.append(name)
                continue
            await self.write(name, value)
        return skipped

    def edges(self) -> EdgeQueue:
        """Subscribe to input edges (every input line); close the subscription when done."""
        sub = EdgeQueue(self)
        if self._closed:
            sub.close()  # no edge will ever come: end at once rather than wait forever
            return sub
        self._subscribers.add(sub)
        self._on_subscribe()
        return sub

    def _on_subscribe(self) -> None:
        return None

    def _publish(self, line: str, value: int, timestamp_ns: int | None = None) -> None:
        event = EdgeEvent(
            line, value, time.monotonic_ns() if timestamp_ns is None else timestamp_ns
        )
        for sub in list(self._subscribers):
            sub._put(event)

    async def close(self) -> None:
        """Release every line (outputs stop being held) and end every subscription."""
        if self._closed:
            return
        self._closed = True
        for sub in list(self._subscribers):
            sub.close()
        await self._close()
