"""The simulated backend: deterministic, inspectable, for the demo and every bridge test.

* :class:`SimGpio` - lines with state: outputs remember what was written (and
  :attr:`SimGpio.writes` keeps every write in order), inputs hold what the
  test drove with :meth:`SimGpio.drive`, which also emits the edge.
* :class:`SimSensors` - scripted values (:meth:`SimSensors.set`, or a queue
  with :meth:`SimSensors.script`) and scripted failures
  (:meth:`SimSensors.fail`), raised as the same :class:`~hal.errors.SensorError`
  the Linux readers raise.
* :class:`SimPower` - checks the configuration like the Linux backend, and
  records requests and runs instead of rebooting.
* :class:`SimSystem` - a fixed snapshot, replaceable by the test.
* Scripts are real programs in both backends (:class:`hal.scripts.ScriptRunner`).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from .config import HalConfig, LineConfig, PowerConfig, SensorConfig
from .errors import Fault, GpioError, PowerError, SensorError
from .gpio import GpioBase, is_level
from .interfaces import (
    DiskUsage,
    Interface,
    LineInfo,
    OsInfo,
    PowerAction,
    PowerRequest,
    ProgramInfo,
    Reading,
    SystemSnapshot,
)
from .power import SYSTEMCTL_VERB, allowed_actions, check_allowed

__all__ = ["SimControl", "SimGpio", "SimPower", "SimSensors", "SimSystem"]


class SimGpio(GpioBase):
    def __init__(
        self, lines: Mapping[str, LineConfig], inputs: Mapping[str, int] | None = None
    ) -> None:
        super().__init__(lines)
        inputs = inputs or {}
        self._level = {
            c.name: (c.initial if c.direction == "output" else inputs.get(c.name, 0))
            for c in lines.values()
        }
        self.writes: list[tuple[str, int]] = []
        self._clock = itertools.count(1)

    def _info(self, cfg: LineConfig) -> LineInfo:
        offset = cfg.line if isinstance(cfg.line, int) else list(self._cfg).index(cfg.name)
        return LineInfo(
            cfg.name,
            f"sim:{cfg.chip}",
            offset,
            cfg.line if isinstance(cfg.line, str) else "",
            cfg.direction,
            cfg.active_low,
            cfg.bias,
            cfg.debounce_ms,
        )

    def _get(self, cfg: LineConfig) -> int:
        return self._level[cfg.name]

    def _set(self, cfg: LineConfig, value: int) -> None:
        self._level[cfg.name] = value
        self.writes.append((cfg.name, value))

    def value(self, name: str) -> int:
        """What a line holds now (for assertions), input or output."""
        self.config(name)
        return self._level[name]

    def drive(self, name: str, value: int) -> None:
        """Set an input's level as the outside world would; a change emits an edge."""
        cfg = self.config(name)
        if cfg.direction != "input":
            raise GpioError(name, "is an output; only inputs are driven from outside")
        if not is_level(value):
            raise GpioError(name, f"value must be 0 or 1, not {value!r}")
        if self._level[name] != value:
            self._level[name] = value
            self._publish(name, value, next(self._clock))


class SimSensors:
    def __init__(
        self, sensors: Mapping[str, SensorConfig], values: Mapping[str, Decimal] | None = None
    ) -> None:
        values = values or {}
        self._cfg = dict(sensors)
        self._values: dict[str, Decimal | SensorError] = {
            name: values.get(name, Decimal("21.5") if c.unit == "°C" else Decimal(0))
            for name, c in sensors.items()
        }
        self._script: dict[str, deque[Decimal | Fault]] = {n: deque() for n in sensors}
        self.reads: list[str] = []

    def _config(self, name: str) -> SensorConfig:
        try:
            return self._cfg[name]
        except KeyError:
            raise SensorError(name, Fault.MISSING, "no sensor of that name is configured") from None

    def names(self) -> Sequence[str]:
        return list(self._cfg)

    def unit(self, name: str) -> str:
        return self._config(name).unit

    def set(self, name: str, value: Decimal | int | str) -> None:
        """Every later read returns ``value``."""
        self._config(name)
        self._values[name] = Decimal(value)

    def fail(self, name: str, fault: Fault, detail: str = "simulated failure") -> None:
        """Every later read raises ``SensorError(name, fault, detail)``."""
        self._config(name)
        self._values[name] = SensorError(name, fault, detail)

    def script(self, name: str, steps: Iterable[Decimal | int | str | Fault]) -> None:
        """The next reads return (or fail with) ``steps`` in order, then the set value."""
        self._config(name)
        self._script[name].extend(s if isinstance(s, Fault) else Decimal(s) for s in steps)

    async def read(self, name: str) -> Reading:
        cfg = self._config(name)
        self.reads.append(name)
        queue = self._script[name]
        v: Decimal | SensorError
        if queue:
            step = queue.popleft()
            v = SensorError(name, step, "simulated failure") if isinstance(step, Fault) else step
        else:
            v = self._values[name]
        if isinstance(v, SensorError):
            raise SensorError(v.sensor, v.fault, v.detail)
        return Reading(name, v, cfg.unit)


def _default_snapshot() -> SystemSnapshot:
    return SystemSnapshot(
        hostname="sim-gateway",
        os=OsInfo("Simulated Linux", "sim", "1", "6.1.0-sim"),
        uptime_s=Decimal("3600.00"),
        load=(Decimal("0.10"), Decimal("0.05"), Decimal("0.01")),
        mem_total_bytes=512 * 1024 * 1024,
        mem_available_bytes=384 * 1024 * 1024,
        cpu_temp_c=Decimal("45.000"),
        disks=(DiskUsage("/", 8 * 1024**3, 2 * 1024**3, 6 * 1024**3),),
        interfaces=(Interface("wwan0", "up", "02:00:00:00:00:01", ("10.64.0.2/30",), ()),),
        program=None,
    )


class SimSystem:
    def __init__(self, snapshot: SystemSnapshot | None = None) -> None:
        self.base = snapshot or _default_snapshot()

    async def snapshot(self, program: ProgramInfo | None = None) -> SystemSnapshot:
        s = self.base
        return SystemSnapshot(
            s.hostname,
            s.os,
            s.uptime_s,
            s.load,
            s.mem_total_bytes,
            s.mem_available_bytes,
            s.cpu_temp_c,
            s.disks,
            s.interfaces,
            program,
            s.errors,
        )


class SimPower:
    """Applies the same configuration checks as Linux; records instead of rebooting."""

    def __init__(self, config: PowerConfig) -> None:
        self._cfg = config
        self.requests: list[PowerAction] = []
        self.executed: list[PowerAction] = []
        self.refuse_with: PowerError | None = None  # set to make run() fail

    def allowed(self) -> Sequence[PowerAction]:
        return allowed_actions(self._cfg)

    def request(self, action: PowerAction) -> PowerRequest:
        check_allowed(self._cfg, action)
        self.requests.append(action)

        async def run() -> None:
            if self.refuse_with is not None:
                raise self.refuse_with
            self.executed.append(action)

        return PowerRequest(action, ("sim", SYSTEMCTL_VERB[action]), run)


class SimControl:
    """The handles a test or the demo uses to drive the simulated device."""

    def __init__(
        self, gpio: SimGpio, sensors: SimSensors, power: SimPower, system: SimSystem
    ) -> None:
        self.gpio = gpio
        self.sensors = sensors
        self.power = power
        self.system = system

    def drive(self, name: str, value: int) -> None:
        self.gpio.drive(name, value)

    @classmethod
    def build(cls, config: HalConfig) -> SimControl:
        return cls(
            SimGpio(config.gpio, dict(config.sim.inputs)),
            SimSensors(config.sensors, dict(config.sim.sensors)),
            SimPower(config.power),
            SimSystem(),
        )
