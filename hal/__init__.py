"""Device actions behind small interfaces (GPIO, sensors, system info, power, scripts).

``hal`` imports nothing else of the project. The bridge parses its ``[hal]``
table with :func:`hal.config.parse`, builds the backend with :func:`build`
and uses the interfaces of :mod:`hal.interfaces` only. See docs/hal.md.
"""

from __future__ import annotations

from . import config, errors, interfaces
from .config import HalConfig, parse
from .device import Hal, Problem, build, check
from .errors import (
    ConfigError,
    Fault,
    GpioError,
    HalError,
    PowerError,
    ScriptError,
    ScriptErrorKind,
    SensorError,
)
from .interfaces import (
    EdgeEvent,
    Gpio,
    LineInfo,
    Power,
    PowerRequest,
    ProgramInfo,
    Reading,
    ScriptInfo,
    ScriptResult,
    Scripts,
    Sensors,
    System,
    SystemSnapshot,
)

__all__ = [
    "ConfigError",
    "EdgeEvent",
    "Fault",
    "Gpio",
    "GpioError",
    "Hal",
    "HalConfig",
    "HalError",
    "LineInfo",
    "Power",
    "PowerError",
    "PowerRequest",
    "Problem",
    "ProgramInfo",
    "Reading",
    "ScriptError",
    "ScriptErrorKind",
    "ScriptInfo",
    "ScriptResult",
    "Scripts",
    "SensorError",
    "Sensors",
    "System",
    "SystemSnapshot",
    "build",
    "check",
    "config",
    "errors",
    "interfaces",
    "parse",
]
