"""Sensors read from sysfs: thermal zones, hwmon inputs, 1-Wire DS18B20, any file.

The parsers are pure (text in, integer or :class:`~hal.errors.ParseError`
out); :class:`LinuxSensors` reads the files under a root directory in a worker
thread, bounded by each sensor's timeout, and scales with integer arithmetic
into exact :class:`~decimal.Decimal` values.

Sources:

* thermal: ``/sys/class/thermal/thermal_zoneN/temp``, millidegree Celsius
  (Documentation/driver-api/thermal/sysfs-api.rst).
* hwmon: ``/sys/class/hwmon/hwmonN/<type><n>_input``; units by type from
  Documentation/hwmon/sysfs-interface.rst (see ``hal.config.HWMON_UNITS``).
* DS18B20 (w1_therm, Documentation/w1/slaves/w1_therm.rst): ``w1_slave`` is
  two lines, the nine scratchpad bytes in hex then ``: crc=XX YES`` (or
  ``NO``), then the retained bytes and ``t=<millidegrees>``; each open and
  read starts a conversion (up to 750 ms at 12 bits). The ``temperature``
  attribute holds millidegrees only. An empty read means the conversion
  failed. 85000 is the power-on reset value of the temperature register: a
  read that returns it never converted, and is rejected.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from decimal import Context, Decimal, Inexact
from pathlib import Path
from typing import Any, TypeVar

from .config import HWMON_UNITS, SensorConfig
from .errors import Fault, ParseError, SensorError
from .interfaces import Reading

__all__ = [
    "DS18B20_MAX_MC",
    "DS18B20_MIN_MC",
    "DS18B20_POWER_ON_MC",
    "LinuxSensors",
    "Opener",
    "dallas_crc8",
    "in_daemon_thread",
    "parse_int_attribute",
    "parse_number",
    "parse_w1_slave",
    "parse_w1_temperature",
    "read_text",
    "scale",
]

DS18B20_POWER_ON_MC = 85_000  # temperature register after power-on (0x0550)
DS18B20_MIN_MC = -55_000  # datasheet measuring range
DS18B20_MAX_MC = 125_000
_MAX_FILE = 4096  # a sysfs attribute is at most one page

#: Opens a path for reading and returns a file descriptor (injected in tests to
#: raise ``PermissionError``, which chmod cannot cause for a root process).
Opener = Callable[[str], int]

_INT = re.compile(r"[ \t]*(-?[0-9]{1,19})[ \t]*\n?")
_NUMBER = re.compile(r"[ \t]*(-?[0-9]{1,30}(?:\.[0-9]{1,30})?)[ \t]*\n?")
_W1_SLAVE = re.compile(
    r"((?:[0-9a-f]{2} ){9}): crc=([0-9a-f]{2}) (YES|NO)\n((?:[0-9a-f]{2} ){9})t=(-?[0-9]{1,9})\n?"
)
_EXACT = Context(prec=80, traps=[Inexact])
_T = TypeVar("_T")


def _number_text(pattern: re.Pattern[str], text: str, what: str) -> str:
    if not text:
        raise ParseError(Fault.MALFORMED, "empty")
    m = pattern.fullmatch(text)
    if not m:
        raise ParseError(Fault.MALFORMED, f"not {what}: {text[:40]!r}")
    return m.group(1)


def parse_int_attribute(text: str) -> int:
    """A sysfs integer attribute ("42000\\n") -> 42000."""
    return int(_number_text(_INT, text, "an integer"))


def parse_number(text: str) -> Decimal:
    """A decimal number, as a generic file sensor may hold ("1234", "-3.25")."""
    return Decimal(_number_text(_NUMBER, text, "a number"))


def dallas_crc8(data: bytes) -> int:
    """Maxim/Dallas 1-Wire CRC-8 (x^8 + x^5 + x^4 + 1, reflected), as the scratchpad uses."""
    crc = 0
    for byte in data:
        b = byte
        for _ in range(8):
            mix = (crc ^ b) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
            b >>= 1
    return crc


def _check_ds18b20_mc(mc: int) -> int:
    if mc == DS18B20_POWER_ON_MC:
        raise ParseError(
            Fault.POWER_ON_RESET, "85.000 °C is the power-on value: no conversion took place"
        )
    if not DS18B20_MIN_MC <= mc <= DS18B20_MAX_MC:
        raise ParseError(Fault.RANGE, f"{mc} m°C is outside the DS18B20 range (-55..125 °C)")
    return mc


def parse_w1_slave(text: str) -> int:
    """The ``w1_slave`` attribute -> millidegrees Celsius.

    Accepts only the kernel's two-line format with ``YES``, a scratchpad whose
    CRC-8 we recompute and find matching, not all zero (a shorted bus reads
    zeros, whose CRC is zero too), and a temperature in the device's range
    that is not the power-on value.
    """
    if not text:
        raise ParseError(Fault.MALFORMED, "empty: the conversion failed")
    m = _W1_SLAVE.fullmatch(text)
    if not m:
        raise ParseError(Fault.MALFORMED, f"not the w1_slave format: {text[:60]!r}")
    scratch = bytes.fromhex(m.group(1))
    crc = int(m.group(2), 16)
    if m.group(3) != "YES":
        raise ParseError(Fault.CRC, f"the kernel's CRC check failed (crc={crc:02x} NO)")
    if dallas_crc8(scratch[:8]) != scratch[8] or scratch[8] != crc:
        raise ParseError(Fault.CRC, "scratchpad CRC does not match its bytes")
    if not any(scratch):
        raise ParseError(Fault.BUS, "all-zero scratchpad: 1-Wire bus held low")
    if bytes.fromhex(m.group(4)) != scratch:
        raise ParseError(Fault.MALFORMED, "the retained bytes are not the bytes just read")
    return _check_ds18b20_mc(int(m.group(5)))


def parse_w1_temperature(text: str) -> int:
    """The ``temperature`` attribute of w1_therm -> millidegrees Celsius."""
    if not text.strip():
        raise ParseError(Fault.MALFORMED, "empty: the conversion failed or is still running")
    return _check_ds18b20_mc(parse_int_attribute(text))


def scale(raw: int | Decimal, factor: Decimal, offset: Decimal = Decimal(0)) -> Decimal:
    """``raw * factor + offset``, exactly (raises :class:`ParseError` if it cannot be exact)."""
    try:
        return _EXACT.add(_EXACT.multiply(Decimal(raw), factor), offset)
    except Inexact:
        raise ParseError(Fault.RANGE, "value too large to scale exactly") from None


def in_daemon_thread(fn: Callable[[], _T], name: str) -> asyncio.Future[_T]:
    """Run ``fn`` in a daemon thread of its own; its result or exception completes the future.

    Not the loop's default executor: ``asyncio.run()`` joins that executor's
    threads on the way out, so one read stuck in the kernel (a 1-Wire bus that
    never answers, a dead NFS mount under ``statvfs``) would keep the process
    from ever exiting. A daemon thread is abandoned at exit instead. Callers
    keep at most one such thread per sensor (and one for the status report).
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[_T] = loop.create_future()

    def deliver(ok: bool, value: Any) -> None:
        if fut.done():
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    def work() -> None:
        try:
            value: Any = fn()
            ok = True
        except BaseException as exc:  # handed to the awaiting task, not lost in the thread
            value, ok = exc, False
        with contextlib.suppress(RuntimeError):  # the loop was closed in the meantime
            loop.call_soon_threadsafe(deliver, ok, value)

    threading.Thread(target=work, name=name, daemon=True).start()
    return fut


def _fault_of(exc: OSError) -> Fault:
    if isinstance(exc, PermissionError):
        return Fault.PERMISSION
    if isinstance(exc, FileNotFoundError) or exc.errno in (errno.ENODEV, errno.ENXIO):
        return Fault.MISSING
    return Fault.IO


def _os_detail(exc: OSError) -> str:
    return f"{exc.filename}: {exc.strerror or exc}" if exc.filename else str(exc.strerror or exc)


def read_text(path: str, opener: Opener | None = None) -> str:
    """Read a small sysfs file as text (one read, as sysfs attributes are meant to be read)."""
    try:
        fd = opener(path) if opener is not None else os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.read(fd, _MAX_FILE + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        if exc.filename is None:  # os.read names no file: say which one (same subclass)
            raise OSError(exc.errno, exc.strerror, path) from None
        raise
    if len(data) > _MAX_FILE:
        raise ParseError(Fault.MALFORMED, f"more than {_MAX_FILE} bytes")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise ParseError(Fault.MALFORMED, "not ASCII text") from None


def _hwmon_attr(device: Path, attr: str) -> str:
    """``hwmonN/attr``, or ``hwmonN/device/attr`` where older drivers put it."""
    p = device / attr
    if not p.exists() and (device / "device" / attr).exists():
        return str(device / "device" / attr)
    return str(p)


class LinuxSensors:
    """Sensors read from a real directory tree (``root`` is ``/`` on a device).

    ``opener`` (path -> file descriptor) replaces ``os.open``; tests use it to
    raise ``PermissionError``, which a root process never gets from chmod.
    """

    def __init__(
        self,
        sensors: Mapping[str, SensorConfig],
        root: str = "/",
        *,
        opener: Opener | None = None,
    ) -> None:
        self._cfg = dict(sensors)
        self._root = root
        self._opener = opener
        self._inflight: dict[str, asyncio.Future[Reading]] = {}

    def names(self) -> Sequence[str]:
        return list(self._cfg)

    def unit(self, name: str) -> str:
        return self._config(name).unit

    def _config(self, name: str) -> SensorConfig:
        try:
            return self._cfg[name]
        except KeyError:
            raise SensorError(name, Fault.MISSING, "no sensor of that name is configured") from None

    def _path(self, *parts: str) -> str:
        return os.path.join(self._root, *(p.lstrip("/") for p in parts))

    def path_of(self, name: str) -> str:
        """The file a sensor reads (hwmon resolved now); SensorError if it cannot be found."""
        cfg = self._config(name)
        try:
            return self._resolve(cfg)
        except OSError as exc:
            raise SensorError(name, _fault_of(exc), _os_detail(exc)) from None
        except ParseError as exc:
            raise SensorError(name, exc.fault, exc.message) from None

    def _resolve(self, cfg: SensorConfig) -> str:
        if cfg.type == "thermal":
            return self._path("sys/class/thermal", cfg.zone, "temp")
        if cfg.type == "ds18b20":
            return self._path("sys/bus/w1/devices", cfg.device, cfg.attribute)
        if cfg.type == "file":
            return self._path(cfg.path)
        base = Path(self._path("sys/class/hwmon"))
        if re.fullmatch(r"hwmon\d+", cfg.device):
            return _hwmon_attr(base / cfg.device, cfg.input)
        try:
            dirs = sorted(base.iterdir())
        except OSError as exc:
            raise ParseError(_fault_of(exc), f"{base}: {exc.strerror}") from None
        found = []
        for d in dirs:
            try:
                label = read_text(_hwmon_attr(d, "name"), self._opener).strip()
            except (OSError, ParseError):
                continue
            if label == cfg.device:
                found.append(d)
        if not found:
            raise ParseError(Fault.MISSING, f"no hwmon device named {cfg.device!r}")
        if len(found) > 1:
            raise ParseError(
                Fault.MALFORMED,
                f"{len(found)} hwmon devices are named {cfg.device!r}; name one as hwmonN",
            )
        return _hwmon_attr(found[0], cfg.input)

    def read_sync(self, name: str) -> Reading:
        """The blocking read (a worker thread runs it; see :meth:`read`)."""
        cfg = self._config(name)
        try:
            # stat() while finding an hwmon file fails too (EACCES, ENAMETOOLONG)
            text = read_text(self._resolve(cfg), self._opener)
            value = self._value(cfg, text)
        except OSError as exc:
            raise SensorError(name, _fault_of(exc), _os_detail(exc)) from None
        except ParseError as exc:
            raise SensorError(name, exc.fault, exc.message) from None
        return Reading(name, value, cfg.unit)

    @staticmethod
    def _value(cfg: SensorConfig, text: str) -> Decimal:
        if cfg.type == "thermal":
            return Decimal(parse_int_attribute(text)).scaleb(-3)
        if cfg.type == "ds18b20":
            parse = parse_w1_slave if cfg.attribute == "w1_slave" else parse_w1_temperature
            return Decimal(parse(text)).scaleb(-3)
        if cfg.type == "hwmon":
            prefix = re.match(r"[a-z]+", cfg.input)
            exp = HWMON_UNITS[prefix.group(0) if prefix else "temp"][1]
            return Decimal(parse_int_attribute(text)).scaleb(exp)
        return scale(parse_number(text), cfg.scale, cfg.offset)

    async def read(self, name: str) -> Reading:
        """Read one sensor off the event loop, bounded by its ``timeout_s``.

        One worker thread per sensor at most: a read that finds an earlier one
        still running (a hung bus after a timeout) waits for that one instead
        of starting another, so threads do not pile up.
        """
        cfg = self._config(name)
        fut = self._inflight.get(name)
        if fut is None:
            fut = in_daemon_thread(lambda: self.read_sync(name), f"hal-sensor-{name}")
            self._inflight[name] = fut
            fut.add_done_callback(lambda f: self._done(name, f))
        try:
            return await asyncio.wait_for(asyncio.shield(fut), cfg.timeout_s)
        except TimeoutError:
            raise SensorError(name, Fault.TIMEOUT, f"no value within {cfg.timeout_s:g} s") from None

    def _done(self, name: str, fut: asyncio.Future[Reading]) -> None:
        if self._inflight.get(name) is fut:
            del self._inflight[name]
        if not fut.cancelled():
            fut.exception()  # retrieved: a late failure nobody awaits is not logged as lost
