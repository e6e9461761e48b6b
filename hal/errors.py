"""Typed errors of the device layer.

Every error says what it is about (the configuration key, the sensor, the
line, the script) and why, in one line. Nothing in ``hal`` returns a made-up
value when a read fails: it raises one of these.

* :class:`ConfigError` - the configuration is wrong: a bad key or value, or it
  names something the device does not have (an unknown chip, a missing line).
  :attr:`ConfigError.key` is the full dotted key (``hal.gpio.relay1.line``).
* :class:`SensorError` - a sensor read failed; :attr:`SensorError.fault` says
  how (:class:`Fault`).
* :class:`GpioError` - a line could not be requested, read or written, or the
  caller asked for something the configuration does not allow (writing an
  input, an unknown name).
* :class:`PowerError` - a reboot or shutdown is not allowed or failed.
* :class:`ScriptError` - a script was refused or failed to run;
  :attr:`ScriptError.kind` says how (:class:`ScriptErrorKind`).
* :class:`ParseError` - a file's content is not what the kernel writes; raised
  by the pure parsers (``hal.sensors``, ``hal.system``) and turned into a
  :class:`SensorError` by the readers.
"""

from __future__ import annotations

import enum

__all__ = [
    "ConfigError",
    "Fault",
    "GpioError",
    "HalError",
    "ParseError",
    "PowerError",
    "ScriptError",
    "ScriptErrorKind",
    "SensorError",
]


class HalError(Exception):
    """Base of every error raised by ``hal``."""


class ConfigError(HalError):
    """A configuration key is wrong; ``key`` is its full dotted name."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)


class Fault(enum.Enum):
    """How a read failed (the cause carried by :class:`SensorError`)."""

    MISSING = "missing"  # the file or device is not there (unplugged, vanished)
    PERMISSION = "permission"  # the process may not read it
    CRC = "crc"  # 1-Wire scratchpad CRC did not match
    POWER_ON_RESET = "power-on-reset"  # DS18B20 85 °C power-on value: no conversion
    BUS = "bus"  # 1-Wire bus fault (all-zero scratchpad)
    MALFORMED = "malformed"  # content is not what the kernel writes
    RANGE = "range"  # a value outside what the device can measure
    TIMEOUT = "timeout"  # the read did not finish in time
    IO = "io"  # any other operating system error


class ParseError(HalError, ValueError):
    """File content a parser does not accept; ``fault`` classifies it."""

    def __init__(self, fault: Fault, message: str) -> None:
        self.fault = fault
        self.message = message
        super().__init__(message)


class SensorError(HalError):
    """A sensor read failed: ``sensor`` is its configured name, ``fault`` the cause."""

    def __init__(self, sensor: str, fault: Fault, detail: str) -> None:
        self.sensor = sensor
        self.fault = fault
        self.detail = detail
        super().__init__(f"sensor {sensor}: {fault.value}: {detail}")


class GpioError(HalError):
    """A GPIO line could not be used as asked; ``line`` is its configured name."""

    def __init__(self, line: str, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"gpio {line}: {message}")


class PowerError(HalError):
    """A reboot or shutdown is not allowed or failed.

    ``returncode`` and ``stderr`` are those of ``systemctl`` when it ran.
    """

    def __init__(
        self, action: str, message: str, *, returncode: int | None = None, stderr: str = ""
    ) -> None:
        self.action = action
        self.message = message
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"{action}: {message}")


class ScriptErrorKind(enum.Enum):
    """Why a script did not give a result."""

    UNKNOWN_SCRIPT = "unknown-script"  # no script of that name is configured
    REFUSED_ARGUMENT = "refused-argument"  # an argument fails its pattern, or too many/few
    NOT_EXECUTABLE = "not-executable"  # the program is missing or not executable
    SPAWN_FAILED = "spawn-failed"  # the operating system refused to start it
    TIMEOUT = "timeout"  # it ran past its timeout and was killed with its group


class ScriptError(HalError):
    """A script was refused before it ran, could not start, or timed out.

    On a timeout, ``stdout``/``stderr`` hold what it wrote before it was
    killed (capped like a normal result).
    """

    def __init__(
        self,
        script: str,
        kind: ScriptErrorKind,
        detail: str,
        *,
        stdout: bytes = b"",
        stderr: bytes = b"",
    ) -> None:
        self.script = script
        self.kind = kind
        self.detail = detail
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(f"script {script}: {kind.value}: {detail}")
