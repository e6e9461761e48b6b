"""The small interfaces the bridge uses, and the values they return.

One Protocol per capability; each has a simulated backend (``hal.sim``) and a
Linux one (``hal.gpio_linux``, ``hal.sensors``, ``hal.system``, ``hal.power``),
chosen by configuration in :func:`hal.build`; scripts are real programs in both
(``hal.scripts``). Everything that can block is ``async``: sysfs reads run in
a worker thread with a timeout, scripts and ``systemctl`` are subprocesses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol, cast, runtime_checkable

__all__ = [
    "CommandResult",
    "CommandRunner",
    "DiskUsage",
    "EdgeEvent",
    "Gpio",
    "Interface",
    "LineInfo",
    "OsInfo",
    "Power",
    "PowerAction",
    "PowerRequest",
    "ProgramInfo",
    "Reading",
    "ScriptInfo",
    "ScriptResult",
    "Scripts",
    "Sensors",
    "System",
    "SystemSnapshot",
]


# --------------------------------------------------------------------- GPIO


@dataclass(frozen=True)
class LineInfo:
    """A configured line as the backend resolved it."""

    name: str  # configured name ("relay1")
    chip: str  # chip path ("/dev/gpiochip0")
    offset: int
    line_name: str  # the kernel's name for the line ("GPIO17"), "" when unnamed
    direction: Literal["input", "output"]
    active_low: bool
    bias: str
    debounce_ms: int


@dataclass(frozen=True)
class EdgeEvent:
    """An input changed: ``value`` is the logical value after the edge (1 = active)."""

    line: str
    value: int
    timestamp_ns: int  # kernel timestamp (CLOCK_MONOTONIC) or the simulator's clock


@runtime_checkable
class Gpio(Protocol):
    """Named lines. Values are logical: 1 is active (``active_low`` applied by the kernel).

    Output lines are requested at build time and held until :meth:`close`:
    an output keeps its value only while its request is held.
    """

    def lines(self) -> Sequence[LineInfo]: ...

    async def read(self, name: str) -> int: ...

    async def write(self, name: str, value: int) -> None: ...

    async def pulse(self, name: str, ms: int) -> None:
        """Drive the output active for ``ms`` milliseconds, then inactive."""
        ...

    async def restore(self, states: Mapping[str, int]) -> list[str]:
        """Re-apply desired output states (kept by the caller) at start-up.

        Returns the names skipped because they are no longer configured outputs.
        """
        ...

    def edges(self) -> EdgeSubscription: ...

    async def close(self) -> None: ...


class EdgeSubscription(Protocol):
    """An async iterator of input edges; close it (or leave ``async with``) when done."""

    def __aiter__(self) -> AsyncIterator[EdgeEvent]: ...

    async def __anext__(self) -> EdgeEvent: ...

    async def __aenter__(self) -> EdgeSubscription: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def close(self) -> None: ...


# ------------------------------------------------------------------ sensors


@dataclass(frozen=True)
class Reading:
    """An exact sensor value with its unit (``Decimal("21.437")``, ``"°C"``)."""

    sensor: str
    value: Decimal
    unit: str

    def __str__(self) -> str:
        return f"{self.value} {self.unit}".rstrip()

    def to_json(self) -> dict[str, Any]:
        return {"sensor": self.sensor, "value": str(self.value), "unit": self.unit}


@runtime_checkable
class Sensors(Protocol):
    """Named sensors; a failed read raises :class:`~hal.errors.SensorError`."""

    def names(self) -> Sequence[str]: ...

    def unit(self, name: str) -> str: ...

    async def read(self, name: str) -> Reading: ...


# ------------------------------------------------------------------- system


@dataclass(frozen=True)
class ProgramInfo:
    """The caller's own name, version and uptime (``hal`` cannot know them)."""

    name: str
    version: str
    uptime_s: Decimal


@dataclass(frozen=True)
class DiskUsage:
    mount: str
    total_bytes: int
    used_bytes: int
    available_bytes: int  # for an unprivileged user (f_bavail)


@dataclass(frozen=True)
class Interface:
    name: str
    state: str  # operstate: "up", "down", "unknown", ...
    mac: str
    ipv4: tuple[str, ...]  # "192.0.2.5/24"
    ipv6: tuple[str, ...]  # "2001:db8::5/64"


@dataclass(frozen=True)
class OsInfo:
    name: str  # PRETTY_NAME of os-release
    id: str
    version_id: str
    kernel: str


@dataclass(frozen=True)
class SystemSnapshot:
    """One status report. A part that could not be read is ``None`` and listed in ``errors``."""

    hostname: str | None
    os: OsInfo | None
    uptime_s: Decimal | None
    load: tuple[Decimal, Decimal, Decimal] | None
    mem_total_bytes: int | None
    mem_available_bytes: int | None
    cpu_temp_c: Decimal | None
    disks: tuple[DiskUsage, ...]
    interfaces: tuple[Interface, ...]
    program: ProgramInfo | None
    errors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        def conv(v: object) -> object:
            if isinstance(v, Decimal):
                return str(v)
            if isinstance(v, tuple | list):
                return [conv(x) for x in v]
            if dataclasses.is_dataclass(v) and not isinstance(v, type):
                return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
            return v

        return cast(dict[str, Any], conv(self))


@runtime_checkable
class System(Protocol):
    async def snapshot(self, program: ProgramInfo | None = None) -> SystemSnapshot: ...


# -------------------------------------------------------------------- power

PowerAction = Literal["reboot", "shutdown"]


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


#: Runs a command line (no shell) with a timeout in seconds. Injected in tests.
CommandRunner = Callable[[Sequence[str], float], Awaitable[CommandResult]]


class PowerRequest:
    """A reboot or shutdown that has been allowed but not yet run.

    The caller sends its reply first, then awaits :meth:`run`.
    """

    def __init__(
        self, action: PowerAction, command: tuple[str, ...], run: Callable[[], Awaitable[None]]
    ) -> None:
        self.action: PowerAction = action
        self.command = command
        self._run = run

    async def run(self) -> None:
        """Carry it out; raises :class:`~hal.errors.PowerError` when refused."""
        await self._run()

    def __repr__(self) -> str:
        return f"PowerRequest({self.action!r}, command={self.command!r})"


@runtime_checkable
class Power(Protocol):
    def allowed(self) -> Sequence[PowerAction]: ...

    def request(self, action: PowerAction) -> PowerRequest:
        """Check the action is allowed and possible; nothing runs yet."""
        ...


# ------------------------------------------------------------------ scripts


@dataclass(frozen=True)
class ScriptInfo:
    name: str
    command: tuple[str, ...]
    patterns: tuple[str, ...]
    min_args: int
    idempotent: bool
    timeout_s: float


@dataclass(frozen=True)
class ScriptResult:
    """A finished script: its exit code and the first ``output_limit`` bytes of each stream.

    ``exit_code`` is negative (-N) when it was ended by signal N.
    """

    script: str
    exit_code: int
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool
    stderr_truncated: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "script": self.script,
            "exit_code": self.exit_code,
            "stdout": self.stdout.decode("utf-8", "replace"),
            "stderr": self.stderr.decode("utf-8", "replace"),
            "stdout_truncated": self.stdout_truncated,
            "stderr_truncated": self.stderr_truncated,
        }


@runtime_checkable
class Scripts(Protocol):
    def scripts(self) -> Sequence[ScriptInfo]: ...

    def info(self, name: str) -> ScriptInfo: ...

    async def run(self, name: str, args: Sequence[str] = ()) -> ScriptResult: ...
