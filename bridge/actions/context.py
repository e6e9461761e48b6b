"""What an action is given and what it gives back.

An action is ``async def verb(ctx: ActionContext, **args) -> ActionReturn``:

* ``ctx`` (:class:`ActionContext`): the HAL bundle (``ctx.hal``), the
  status of the module the Command came in on (``ctx.modem``, a
  :class:`ModemStatus` the service supplies), the bridge's counters, the
  configuration, the sender's security level, the registry (for ``help``)
  and the store of desired GPIO outputs;
* the return value: a ``str`` (one reply field), a sequence of
  :class:`~bridge.reply.Field` (the reply drops the least important first
  when the SMS is full), or an :class:`ActionResult` that may also carry a
  deferred effect: a coroutine function the outbox runs only after the
  reply was marked sent (``reboot``).

An action that raises gives an error reply (a :class:`hal.HalError` shows
its one-line message, anything else only its type); one that overruns its
declared timeout is cancelled and answered ``timeout``.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..grammar import Level
from ..reply import Field

if TYPE_CHECKING:
    import hal

    from ..config import Config
    from .registry import Registry

#: A deferred effect: run by the outbox after the reply is marked sent.
Effect = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ModemFigures:
    """The module's radio state (TS 27.007 §8.5 ``+CSQ``, §7.2 ``+CREG``/``+CEREG``,
    §7.3 ``+COPS``); ``None`` where the module did not say."""

    rssi_dbm: int | None = None
    ber: int | None = None
    registration: str | None = None  # "home", "roaming", "searching", "denied", ...
    operator: str | None = None
    access: str | None = None  # "LTE-M", "NB-IoT", "GSM", ...


@dataclass(frozen=True, slots=True)
class ModemIdentity:
    """The module and SIM identities (TS 27.007 §5: ``+CGMI``, ``+CGMM``,
    ``+CGMR``, ``+CGSN``; the ICCID from ``+CCID``/``+QCCID``)."""

    imei: str | None = None
    iccid: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    firmware: str | None = None


@runtime_checkable
class ModemStatus(Protocol):
    """What ``status`` and ``info`` ask of the module a Command came in on.

    The service implements it over its modem stack; both calls may raise
    (the module is busy or gone): the actions answer what they have.
    """

    async def figures(self) -> ModemFigures: ...

    async def identity(self) -> ModemIdentity: ...


class Counters:
    """The bridge's event counters (in memory, since this start)."""

    def __init__(self) -> None:
        self._c: collections.Counter[str] = collections.Counter()
        self.started = time.monotonic()

    def inc(self, name: str, n: int = 1) -> None:
        self._c[name] += n

    def __getitem__(self, name: str) -> int:
        return self._c[name]

    def snapshot(self) -> dict[str, int]:
        return dict(sorted(self._c.items()))


class OutputStore(Protocol):
    """Where ``gpio set`` keeps an output's desired value (restored after a restart)."""

    async def set_desired(self, line: str, value: int) -> None: ...


@dataclass(frozen=True, slots=True)
class ActionResult:
    """An action's reply fields and, optionally, its deferred effect."""

    fields: tuple[Field, ...]
    effect: Effect | None = None


ActionReturn = str | Sequence[Field] | ActionResult | None


def as_result(value: object) -> ActionResult:
    """Normalise what an action returned; TypeError for anything else (a bug in it)."""
    if value is None:
        return ActionResult((Field("ok"),))
    if isinstance(value, ActionResult):
        return value
    if isinstance(value, str):
        return ActionResult((Field(value),))
    if isinstance(value, Sequence) and all(isinstance(f, Field) for f in value):
        return ActionResult(tuple(value))
    raise TypeError(f"an action returned {type(value).__name__}, not str, Fields or ActionResult")


@dataclass
class ActionContext:
    """Everything an action may use (module doc); one per Command."""

    hal: hal.Hal
    config: Config
    counters: Counters
    registry: Registry
    outputs: OutputStore
    level: Level = Level.OPEN
    modem_name: str = ""
    modem: ModemStatus | None = None
    sender: str = ""
    entry_id: int = 0
    version: str = ""
    levels: Mapping[str, Level] = field(default_factory=dict)

    def level_of(self, verb: str) -> Level:
        """The level a verb needs here: the configuration's override, else its own."""
        override = self.levels.get(verb)
        if override is not None:
            return override
        act = self.registry.get(verb)
        return act.spec.level if act is not None else Level.SIGNED

    def allowed_verbs(self) -> list[str]:
        """The verbs this sender may use at its level, sorted."""
        return sorted(
            a.spec.verb for a in self.registry if self.level_of(a.spec.verb) <= self.level
        )

    @property
    def uptime(self) -> float:
        """Seconds since the bridge's counters started."""
        return time.monotonic() - self.counters.started


__all__ = [
    "ActionContext",
    "ActionResult",
    "ActionReturn",
    "Counters",
    "Effect",
    "ModemFigures",
    "ModemIdentity",
    "ModemStatus",
    "OutputStore",
    "as_result",
]
