"""The bundle of interfaces: :func:`build` picks the backend the configuration names."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING

from .config import HalConfig
from .errors import ScriptError, SensorError
from .interfaces import CommandRunner, Gpio, Power, Scripts, Sensors, System
from .power import LinuxPower, run_command
from .scripts import ScriptRunner, check_program

# The backends are imported by build(), only the one the configuration names: a
# service on the simulated HAL never loads the Linux readers (and their imports),
# a device on Linux never loads the simulator.
if TYPE_CHECKING:
    from .sensors import Opener
    from .sim import SimControl

__all__ = ["Hal", "Problem", "build", "check", "sensor_problem"]


@dataclass
class Hal:
    """Every device capability, built from one :class:`~hal.config.HalConfig`.

    ``sim`` is the simulator's control panel (``hal.sim.drive("door", 1)``)
    when the backend is ``sim``, else ``None``. Close it (or use ``async
    with``) to release the GPIO lines.
    """

    config: HalConfig
    gpio: Gpio
    sensors: Sensors
    system: System
    power: Power
    scripts: Scripts
    sim: SimControl | None = None

    async def close(self) -> None:
        await self.gpio.close()

    async def __aenter__(self) -> Hal:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def build(
    config: HalConfig,
    *,
    gpiod: ModuleType | None = None,
    runner: CommandRunner = run_command,
    opener: Opener | None = None,
    ipv4: Callable[[str], Sequence[str]] | None = None,
) -> Hal:
    """Build the backend ``config.backend`` names.

    The Linux backend requests every GPIO line now and holds it; a chip or
    line that is not there raises :class:`~hal.errors.ConfigError` naming its
    key, a busy line or a permission problem :class:`~hal.errors.GpioError`.
    ``gpiod`` (the module), ``runner``, ``opener`` and ``ipv4`` replace the
    real thing in tests (``ipv4`` defaults to :func:`hal.system.ioctl_ipv4`).
    """
    scripts = ScriptRunner(config.scripts)
    if config.backend == "sim":
        from .sim import SimControl  # noqa: PLC0415

        sim = SimControl.build(config)
        return Hal(config, sim.gpio, sim.sensors, sim.system, sim.power, scripts, sim)
    from .gpio_linux import LinuxGpio  # noqa: PLC0415  (gpiod itself only with lines to request)
    from .sensors import LinuxSensors  # noqa: PLC0415
    from .system import LinuxSystem, ioctl_ipv4  # noqa: PLC0415

    if ipv4 is None:
        ipv4 = ioctl_ipv4
    return Hal(
        config,
        LinuxGpio(config.gpio, config.root, config.consumer, module=gpiod),
        LinuxSensors(config.sensors, config.root, opener=opener),
        LinuxSystem(config.system, config.root, ipv4=ipv4),
        LinuxPower(config.power, config.root, runner=runner),
        scripts,
    )


@dataclass(frozen=True)
class Problem:
    """Something the configuration names that the device does not provide."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


async def check(hal: Hal, *, sensors: bool = True) -> list[Problem]:
    """Try what can be tried without side effects: read each sensor, look at each script.

    GPIO lines were checked when :func:`build` requested them. ``sensors=False``
    skips the sensor reads (for a caller that has just read them itself).
    """
    cfg = hal.config
    out = []
    for name in hal.sensors.names() if sensors else ():
        try:
            await hal.sensors.read(name)
        except SensorError as exc:
            out.append(sensor_problem(cfg, exc))
    for name, sc in cfg.scripts.items():
        try:
            hal.scripts.info(name)
            check_program(sc)
        except ScriptError as exc:
            out.append(Problem(f"{sc.key}.command[0]", exc.detail))
    if (
        isinstance(hal.power, LinuxPower)
        and hal.power.allowed()
        and not hal.power.systemd_running()
    ):
        out.append(
            Problem(
                cfg.key("power"),
                "reboot/shutdown are allowed but systemd is not running (no /run/systemd/system)",
            )
        )
    return out


def sensor_problem(config: HalConfig, exc: SensorError) -> Problem:
    """The :class:`Problem` a failed read of a configured sensor is."""
    return Problem(config.sensors[exc.sensor].key, f"{exc.fault.value}: {exc.detail}")
