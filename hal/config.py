"""The device configuration: a TOML table -> typed, validated :class:`HalConfig`.

:func:`parse` takes the table the bridge keeps under ``[hal]`` (or the top
level of the file ``python -m hal --config FILE`` reads) and returns frozen
dataclasses. Every problem raises :class:`~hal.errors.ConfigError` naming the
full key (``where`` + the key path, e.g. ``hal.gpio.relay1.line``). Unknown
keys are errors too: a typo must not silently fall back to a default.

Everything a Command may touch is named here (Teltonika/Cradlepoint style):
lines, sensors, scripts and the power actions. Nothing is addressed raw.

See ``docs/hal.md`` for every key, its default and an example file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from .errors import ConfigError

__all__ = [
    "BIASES",
    "DEFAULT_SCRIPT_OUTPUT_LIMIT",
    "HWMON_UNITS",
    "SENSOR_TYPES",
    "HalConfig",
    "LineConfig",
    "PowerConfig",
    "ScriptConfig",
    "SensorConfig",
    "SimConfig",
    "SystemConfig",
    "parse",
]

Backend = Literal["sim", "linux"]
Direction = Literal["input", "output"]
Bias = Literal["as-is", "pull-up", "pull-down", "disabled"]
SensorType = Literal["thermal", "hwmon", "ds18b20", "file"]

BIASES: tuple[Bias, ...] = ("as-is", "pull-up", "pull-down", "disabled")
SENSOR_TYPES: tuple[SensorType, ...] = ("thermal", "hwmon", "ds18b20", "file")

#: hwmon sysfs attribute prefix -> (unit, power of ten of the raw value), from
#: the kernel's Documentation/hwmon/sysfs-interface.rst; ``freq`` is not in that
#: standard list but drivers export it in Hz (Documentation/gpu/amdgpu, ``freq1_input``).
HWMON_UNITS: dict[str, tuple[str, int]] = {
    "temp": ("°C", -3),  # millidegree Celsius
    "in": ("V", -3),  # millivolt
    "curr": ("A", -3),  # milliampere
    "power": ("W", -6),  # microwatt
    "energy": ("J", -6),  # microjoule
    "humidity": ("%RH", -3),  # milli-percent relative humidity
    "fan": ("RPM", 0),  # revolutions per minute
    "freq": ("Hz", 0),
}
_HWMON_INPUT = re.compile(r"(temp|in|curr|power|energy|humidity|fan|freq)\d+_input")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_W1_DEVICE = re.compile(r"[0-9a-f]{2}-[0-9a-f]{12}")

DEFAULT_SCRIPT_OUTPUT_LIMIT = 4096
DEFAULT_SCRIPT_TIMEOUT_S = 10.0
DEFAULT_KILL_GRACE_S = 2.0
DEFAULT_SENSOR_TIMEOUT_S = 2.0  # a DS18B20 12-bit conversion takes up to 750 ms
DEFAULT_MAX_PULSE_MS = 10_000
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class LineConfig:
    """One named GPIO line (``[gpio.NAME]``)."""

    name: str
    key: str  # full key of its table, for error messages
    chip: str  # "gpiochip0" (-> /dev/gpiochip0) or an absolute /dev path
    line: str | int  # a line name (resolved first) or an offset
    direction: Direction
    active_low: bool = False
    bias: Bias = "as-is"
    debounce_ms: int = 0  # inputs only
    initial: int = 0  # outputs: value driven when the line is first requested
    max_pulse_ms: int = DEFAULT_MAX_PULSE_MS


@dataclass(frozen=True)
class SensorConfig:
    """One named sensor (``[sensors.NAME]``); which fields apply depends on ``type``."""

    name: str
    key: str
    type: SensorType
    unit: str
    timeout_s: float = DEFAULT_SENSOR_TIMEOUT_S
    zone: str = ""  # thermal: "thermal_zone0"
    device: str = ""  # hwmon: hwmon "name" or "hwmonN"; ds18b20: "28-0000075e8a2b"
    input: str = ""  # hwmon: "temp1_input", "in0_input"...
    attribute: Literal["w1_slave", "temperature"] = "w1_slave"  # ds18b20
    path: str = ""  # file: absolute path (under the root directory)
    scale: Decimal = Decimal(1)  # file: value = raw * scale + offset
    offset: Decimal = Decimal(0)


@dataclass(frozen=True)
class SystemConfig:
    """``[system]``: what the status report includes."""

    mounts: tuple[str, ...] = ("/",)
    cpu_zone: str = ""  # thermal zone of the CPU; "" = the first zone present
    interfaces: tuple[str, ...] = ()  # () = every interface but "lo"


@dataclass(frozen=True)
class PowerConfig:
    """``[power]``: which power actions a Command may request."""

    allow_reboot: bool = False
    allow_shutdown: bool = False
    systemctl: str = "systemctl"
    timeout_s: float = 30.0


@dataclass(frozen=True)
class ScriptConfig:
    """One allow-listed program (``[scripts.NAME]``)."""

    name: str
    key: str
    command: tuple[str, ...]  # absolute program path and fixed leading arguments
    args: tuple[re.Pattern[str], ...] = ()  # one pattern per caller argument (fullmatch)
    min_args: int = 0  # arguments beyond min_args are optional
    timeout_s: float = DEFAULT_SCRIPT_TIMEOUT_S
    kill_grace_s: float = DEFAULT_KILL_GRACE_S
    output_limit: int = DEFAULT_SCRIPT_OUTPUT_LIMIT  # bytes kept of stdout, and of stderr
    idempotent: bool = False
    cwd: str = "/"
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SimConfig:
    """``[sim]``: starting state of the simulated backend."""

    sensors: tuple[tuple[str, Decimal], ...] = ()
    inputs: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class HalConfig:
    """The whole device configuration."""

    backend: Backend = "sim"
    root: str = "/"
    consumer: str = "sms-bridge"
    where: str = ""
    gpio: Mapping[str, LineConfig] = field(default_factory=dict)
    sensors: Mapping[str, SensorConfig] = field(default_factory=dict)
    system: SystemConfig = SystemConfig()
    power: PowerConfig = PowerConfig()
    scripts: Mapping[str, ScriptConfig] = field(default_factory=dict)
    sim: SimConfig = SimConfig()

    def key(self, *parts: str) -> str:
        """The full key of ``parts`` (``key("gpio", "relay1")`` -> ``hal.gpio.relay1``)."""
        return _join(self.where, *parts)


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


class _Table:
    """A TOML table being read: typed getters that name the key on error."""

    def __init__(self, data: object, key: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(key, f"must be a table, not {_kind(data)}")
        for k in data:
            if not isinstance(k, str):
                raise ConfigError(key, f"keys must be strings, not {k!r}")
        self.data: Mapping[str, Any] = data
        self.key = key
        self.used: set[str] = set()

    def sub(self, name: str) -> str:
        return _join(self.key, name)

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str) -> Any:
        self.used.add(name)
        return self.data[name]

    def table(self, name: str) -> _Table:
        return _Table(self.raw(name) if self.has(name) else {}, self.sub(name))

    def text(self, name: str, default: str | None = None, *, empty: bool = False) -> str:
        if not self.has(name):
            if default is None:
                raise ConfigError(self.sub(name), "is required")
            return default
        v = self.raw(name)
        if not isinstance(v, str):
            raise ConfigError(self.sub(name), f"must be a string, not {_kind(v)}")
        if not v and not empty:
            raise ConfigError(self.sub(name), "must not be empty")
        if "\x00" in v:
            raise ConfigError(self.sub(name), "must not contain NUL")
        return v

    def flag(self, name: str, default: bool) -> bool:
        if not self.has(name):
            return default
        v = self.raw(name)
        if not isinstance(v, bool):
            raise ConfigError(self.sub(name), f"must be true or false, not {_kind(v)}")
        return v

    def integer(self, name: str, default: int, *, lo: int, hi: int) -> int:
        if not self.has(name):
            return default
        v = self.raw(name)
        if not isinstance(v, int) or isinstance(v, bool):
            raise ConfigError(self.sub(name), f"must be an integer, not {_kind(v)}")
        if not lo <= v <= hi:
            raise ConfigError(self.sub(name), f"must be between {lo} and {hi}, not {v}")
        return v

    def seconds(self, name: str, default: float, *, hi: float = 86_400.0) -> float:
        if not self.has(name):
            return default
        v = self.raw(name)
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise ConfigError(self.sub(name), f"must be a number of seconds, not {_kind(v)}")
        if not 0 < v <= hi:
            raise ConfigError(self.sub(name), f"must be more than 0 and at most {hi:g}, not {v}")
        return float(v)

    def decimal(self, name: str, default: Decimal) -> Decimal:
        if not self.has(name):
            return default
        v = self.raw(name)
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            raise ConfigError(self.sub(name), f"must be a number, not {_kind(v)}")
        try:
            # str(float) is the shortest text that reads back the same: 0.001 -> "0.001"
            d = Decimal(v) if isinstance(v, int | str) else Decimal(str(v))
        except InvalidOperation:
            raise ConfigError(self.sub(name), f"must be a decimal number, not {v!r}") from None
        if not d.is_finite():
            raise ConfigError(self.sub(name), f"must be a finite number, not {v!r}")
        return d

    def str_list(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        if not self.has(name):
            return default
        v = self.raw(name)
        if not isinstance(v, list):
            raise ConfigError(self.sub(name), f"must be a list of strings, not {_kind(v)}")
        out = []
        for i, item in enumerate(v):
            if not isinstance(item, str):
                raise ConfigError(f"{self.sub(name)}[{i}]", f"must be a string, not {_kind(item)}")
            if "\x00" in item:
                raise ConfigError(f"{self.sub(name)}[{i}]", "must not contain NUL")
            out.append(item)
        return tuple(out)

    def choice(self, name: str, choices: tuple[str, ...], default: str | None = None) -> str:
        v = self.text(name, default)
        if v not in choices:
            raise ConfigError(self.sub(name), f"must be one of {', '.join(choices)}, not {v!r}")
        return v

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(self.sub(unknown[0]), "unknown key")

    def names(self) -> list[tuple[str, _Table]]:
        """Sub-tables keyed by a configured name (``[gpio.relay1]`` ...)."""
        out = []
        for name in self.data:
            key = self.sub(name)
            if not _NAME.fullmatch(name):
                raise ConfigError(
                    key, "a name is 1-64 letters, digits, '_', '-' or '.', not starting with '-'"
                )
            out.append((name, _Table(self.raw(name), key)))
        return out


def _kind(v: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(v), type(v).__name__)


def _abs_path(t: _Table, name: str, default: str | None = None) -> str:
    p = t.text(name, default)
    if not p.startswith("/"):
        raise ConfigError(t.sub(name), f"must be an absolute path, not {p!r}")
    return p


def _line(name: str, t: _Table) -> LineConfig:
    chip = t.text("chip")
    base = chip.removeprefix("/dev/")
    if "/" in base or base in ("", ".", ".."):
        raise ConfigError(
            t.sub("chip"), f"must be a chip name (gpiochip0) or a /dev path, not {chip!r}"
        )
    if not t.has("line"):
        raise ConfigError(t.sub("line"), 'is required (a line name such as "GPIO17" or an offset)')
    raw = t.raw("line")
    line: str | int
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ConfigError(t.sub("line"), f"must be a line name or an offset, not {_kind(raw)}")
    if isinstance(raw, int):
        if not 0 <= raw < 65536:
            raise ConfigError(t.sub("line"), f"offset must be between 0 and 65535, not {raw}")
        line = raw
    else:
        line = t.text("line")
    direction = t.choice("direction", ("input", "output"))
    cfg = LineConfig(
        name=name,
        key=t.key,
        chip=chip,
        line=line,
        direction=direction,  # type: ignore[arg-type]
        active_low=t.flag("active_low", False),
        bias=t.choice("bias", BIASES, "as-is"),  # type: ignore[arg-type]
        debounce_ms=t.integer("debounce_ms", 0, lo=0, hi=10_000) if direction == "input" else 0,
        initial=t.integer("initial", 0, lo=0, hi=1) if direction == "output" else 0,
        max_pulse_ms=(
            t.integer("max_pulse_ms", DEFAULT_MAX_PULSE_MS, lo=1, hi=3_600_000)
            if direction == "output"
            else DEFAULT_MAX_PULSE_MS
        ),
    )
    t.done()
    return cfg


def _sensor(name: str, t: _Table) -> SensorConfig:
    kind = t.choice("type", SENSOR_TYPES)
    timeout = t.seconds("timeout_s", DEFAULT_SENSOR_TIMEOUT_S, hi=60.0)
    cfg: SensorConfig
    if kind == "thermal":
        zone = t.raw("zone") if t.has("zone") else None
        if isinstance(zone, int) and not isinstance(zone, bool):
            if not 0 <= zone < 10_000:
                raise ConfigError(
                    t.sub("zone"), f"must be thermal_zoneN or N (0 to 9999), not {zone}"
                )
            zone_name = f"thermal_zone{zone}"
        else:
            zone_name = t.text("zone")
            if not re.fullmatch(r"thermal_zone\d+", zone_name):
                raise ConfigError(t.sub("zone"), f"must be thermal_zoneN or N, not {zone_name!r}")
        cfg = SensorConfig(name, t.key, "thermal", "°C", timeout, zone=zone_name)
    elif kind == "hwmon":
        device = t.text("device")
        if "/" in device:
            raise ConfigError(t.sub("device"), f"must be a hwmon name or hwmonN, not {device!r}")
        inp = t.text("input")
        m = _HWMON_INPUT.fullmatch(inp)
        if not m:
            raise ConfigError(
                t.sub("input"),
                f"must be an hwmon input such as temp1_input or in0_input, not {inp!r}",
            )
        cfg = SensorConfig(
            name, t.key, "hwmon", HWMON_UNITS[m.group(1)][0], timeout, device=device, input=inp
        )
    elif kind == "ds18b20":
        device = t.text("device")
        if not _W1_DEVICE.fullmatch(device):
            raise ConfigError(
                t.sub("device"), f"must be a 1-Wire id such as 28-0000075e8a2b, not {device!r}"
            )
        attr = t.choice("attribute", ("w1_slave", "temperature"), "w1_slave")
        cfg = SensorConfig(
            name,
            t.key,
            "ds18b20",
            "°C",
            timeout,
            device=device,
            attribute=attr,  # type: ignore[arg-type]
        )
    else:
        cfg = SensorConfig(
            name,
            t.key,
            "file",
            t.text("unit", "", empty=True),
            timeout,
            path=_abs_path(t, "path"),
            scale=t.decimal("scale", Decimal(1)),
            offset=t.decimal("offset", Decimal(0)),
        )
    if kind != "file" and t.has("unit"):
        raise ConfigError(t.sub("unit"), f"is fixed for {kind} sensors ({cfg.unit})")
    t.done()
    return cfg


def _script(name: str, t: _Table) -> ScriptConfig:
    command = t.str_list("command", ())
    if not command:
        raise ConfigError(t.sub("command"), 'is required: ["/absolute/program", fixed args...]')
    if not command[0].startswith("/"):
        raise ConfigError(f"{t.sub('command')}[0]", f"must be an absolute path, not {command[0]!r}")
    patterns = []
    for i, text in enumerate(t.str_list("args", ())):
        try:
            patterns.append(re.compile(text))
        except (re.error, OverflowError, RecursionError) as exc:
            # OverflowError: a repeat count too large; RecursionError: nesting too deep
            raise ConfigError(f"{t.sub('args')}[{i}]", f"bad pattern: {exc}") from None
    min_args = t.integer("min_args", len(patterns), lo=0, hi=len(patterns))
    env_t = t.table("env")
    env = []
    for k in env_t.data:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
            raise ConfigError(env_t.sub(k), "is not a valid environment variable name")
        env.append((k, env_t.text(k, empty=True)))
    cfg = ScriptConfig(
        name=name,
        key=t.key,
        command=command,
        args=tuple(patterns),
        min_args=min_args,
        timeout_s=t.seconds("timeout_s", DEFAULT_SCRIPT_TIMEOUT_S, hi=3600.0),
        kill_grace_s=t.seconds("kill_grace_s", DEFAULT_KILL_GRACE_S, hi=60.0),
        output_limit=t.integer("output_limit", DEFAULT_SCRIPT_OUTPUT_LIMIT, lo=0, hi=1 << 20),
        idempotent=t.flag("idempotent", False),
        cwd=_abs_path(t, "cwd", "/"),
        env=tuple(env),
    )
    t.done()
    return cfg


def _sim(
    t: _Table, gpio: Mapping[str, LineConfig], sensors: Mapping[str, SensorConfig]
) -> SimConfig:
    st = t.table("sensors")
    svals = []
    for name in st.data:
        if name not in sensors:
            raise ConfigError(st.sub(name), "names no sensor in [sensors]")
        svals.append((name, st.decimal(name, Decimal(0))))
    st.done()
    it = t.table("inputs")
    ivals = []
    for name in it.data:
        line = gpio.get(name)
        if line is None or line.direction != "input":
            raise ConfigError(it.sub(name), "names no input line in [gpio]")
        ivals.append((name, it.integer(name, 0, lo=0, hi=1)))
    it.done()
    t.done()
    return SimConfig(tuple(svals), tuple(ivals))


def parse(table: Mapping[str, Any], *, where: str = "") -> HalConfig:
    """Validate ``table`` and return the typed configuration.

    ``where`` is the key of ``table`` itself in the file it came from ("hal"
    for the bridge's ``[hal]`` table, "" for a file of its own); every
    :class:`~hal.errors.ConfigError` names ``where`` + the key path.
    """
    t = _Table(table, where)
    backend = t.choice("backend", ("sim", "linux"), "sim")
    root = _abs_path(t, "root", "/")
    consumer = t.text("consumer", "sms-bridge")
    gpio = {name: _line(name, sub) for name, sub in t.table("gpio").names()}
    seen: dict[tuple[str, str | int], str] = {}
    for cfg in gpio.values():
        ident = (cfg.chip.removeprefix("/dev/"), cfg.line)
        if ident in seen:
            raise ConfigError(_join(cfg.key, "line"), f"is also used by gpio.{seen[ident]}")
        seen[ident] = cfg.name
    sensors = {name: _sensor(name, sub) for name, sub in t.table("sensors").names()}

    st = t.table("system")
    mounts = st.str_list("mounts", ("/",))
    for i, m in enumerate(mounts):
        if not m.startswith("/"):
            raise ConfigError(f"{st.sub('mounts')}[{i}]", f"must be an absolute path, not {m!r}")
    cpu_zone = st.text("cpu_zone", "", empty=True)
    if cpu_zone and not re.fullmatch(r"thermal_zone\d+", cpu_zone):
        raise ConfigError(st.sub("cpu_zone"), f"must be thermal_zoneN, not {cpu_zone!r}")
    system = SystemConfig(mounts, cpu_zone, st.str_list("interfaces", ()))
    st.done()

    pt = t.table("power")
    power = PowerConfig(
        allow_reboot=pt.flag("allow_reboot", False),
        allow_shutdown=pt.flag("allow_shutdown", False),
        systemctl=pt.text("systemctl", "systemctl"),
        timeout_s=pt.seconds("timeout_s", 30.0, hi=600.0),
    )
    pt.done()

    scripts = {name: _script(name, sub) for name, sub in t.table("scripts").names()}
    sim = _sim(t.table("sim"), gpio, sensors)
    t.done()
    return HalConfig(
        backend=backend,  # type: ignore[arg-type]
        root=root,
        consumer=consumer,
        where=where,
        gpio=gpio,
        sensors=sensors,
        system=system,
        power=power,
        scripts=scripts,
        sim=sim,
    )
