"""GPIO on Linux through the GPIO character device, by libgpiod's Python bindings.

One adapter over two APIs:

* **v2** - PyPI ``gpiod`` 2.x (libgpiod 2): ``gpiod.Chip(path)``,
  ``chip.line_offset_from_id(name)``, ``chip.request_lines({offset:
  gpiod.LineSettings(direction=Direction.OUTPUT, active_low=..., bias=...,
  edge_detection=Edge.BOTH, debounce_period=timedelta, output_value=Value)},
  consumer=...)``, ``request.get_value/set_value``, ``request.fd`` and
  ``request.read_edge_events()``. Debounce is done by the kernel (uAPI v2).
* **v1** - Debian bookworm's ``python3-libgpiod`` 1.6: ``gpiod.Chip(path)``,
  ``chip.find_line(name)`` (``None`` when absent), ``chip.get_line(offset)``,
  ``line.request(consumer, type=LINE_REQ_DIR_OUT | LINE_REQ_EV_BOTH_EDGES,
  flags=LINE_REQ_FLAG_ACTIVE_LOW | LINE_REQ_FLAG_BIAS_PULL_UP ...,
  default_val=...)``, ``line.get_value/set_value``, ``line.event_get_fd()``,
  ``line.event_read()``. uAPI v1 has no debounce: inputs are debounced here
  (a value counts once it has held for ``debounce_ms``).

``gpiod`` is imported lazily, only when a Linux backend has lines to request,
and is optional (``pip install sms-command-bridge[gpio]`` or ``apt install
python3-libgpiod``). Lines are resolved by name first, then by offset.

Each line is requested once at start and the request is held until
:meth:`LinuxGpio.close`: the kernel keeps an output's value only while its
request is open (Documentation/userspace-api/gpio/gpio-v2-get-line-ioctl.rst).
Inputs are requested with edge detection on both edges, so the same request
serves reads and edge events; the event file descriptor is watched by the
event loop (no polling).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib
import logging
import os
import select
from collections.abc import Mapping
from datetime import timedelta
from types import ModuleType
from typing import Any, Protocol

from .config import LineConfig
from .errors import ConfigError, GpioError
from .gpio import GpioBase
from .interfaces import LineInfo

__all__ = ["DEBOUNCE_SAMPLES", "LineHandle", "LinuxGpio", "adapter_for", "chip_path"]

log = logging.getLogger(__name__)

DEBOUNCE_SAMPLES = 10  # v1 software debounce: give up if the input has not settled by then


class LineHandle(Protocol):
    """One requested line, whichever API requested it."""

    offset: int
    line_name: str
    kernel_debounce: bool

    def get(self) -> int: ...

    def set(self, value: int) -> None: ...

    def fileno(self) -> int: ...

    def read_events(self) -> list[tuple[int, int]]:
        """Pending edges as (logical value after the edge, timestamp in ns)."""
        ...

    def release(self) -> None: ...


class Adapter(Protocol):
    api: str

    def request(self, path: str, cfg: LineConfig, consumer: str) -> LineHandle: ...


def chip_path(root: str, chip: str) -> str:
    """``gpiochip0`` -> ``ROOT/dev/gpiochip0``; ``/dev/gpiochip0`` -> ``ROOT/dev/gpiochip0``."""
    dev = chip if chip.startswith("/") else f"/dev/{chip}"
    return os.path.join(root, dev.lstrip("/"))


def _os_error(cfg: LineConfig, path: str, exc: OSError) -> GpioError | ConfigError:
    if exc.errno == errno.ENOENT:
        return ConfigError(f"{cfg.key}.chip", f"no such GPIO chip: {path}")
    if exc.errno == errno.EBUSY:
        return GpioError(cfg.name, f"line {cfg.line!r} on {path} is in use by another program")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return GpioError(
            cfg.name, f"permission denied on {path} (add the user to the 'gpio' group)"
        )
    return GpioError(cfg.name, f"{path}: {exc.strerror or exc}")


def _no_line(cfg: LineConfig, path: str, what: str) -> ConfigError:
    return ConfigError(f"{cfg.key}.line", f"{what} on {path}")


# ----------------------------------------------------------------------- v2


class _V2Handle:
    kernel_debounce = True

    def __init__(self, g: Any, req: Any, offset: int, line_name: str) -> None:
        self._g = g
        self._req = req
        self.offset = offset
        self.line_name = line_name

    def get(self) -> int:
        return 1 if self._req.get_value(self.offset) == self._g.line.Value.ACTIVE else 0

    def set(self, value: int) -> None:
        v = self._g.line.Value
        self._req.set_value(self.offset, v.ACTIVE if value else v.INACTIVE)

    def fileno(self) -> int:
        return int(self._req.fd)

    def read_events(self) -> list[tuple[int, int]]:
        rising = self._g.EdgeEvent.Type.RISING_EDGE
        return [
            (1 if ev.event_type == rising else 0, int(ev.timestamp_ns))
            for ev in self._req.read_edge_events()
        ]

    def release(self) -> None:
        self._req.release()


class _Adapter:
    """What both adapters share: the module, and opening a chip with errors named by key."""

    api = ""

    def __init__(self, g: ModuleType) -> None:
        self._g: Any = g

    def _open(self, path: str, cfg: LineConfig) -> Any:
        try:
            return self._g.Chip(path)
        except OSError as exc:
            raise _os_error(cfg, path, exc) from None


class _V2Adapter(_Adapter):
    api = "v2"

    def settings(self, cfg: LineConfig) -> Any:
        """The ``gpiod.LineSettings`` for a configured line."""
        g = self._g
        line = g.line
        bias = {
            "as-is": line.Bias.AS_IS,
            "pull-up": line.Bias.PULL_UP,
            "pull-down": line.Bias.PULL_DOWN,
            "disabled": line.Bias.DISABLED,
        }[cfg.bias]
        if cfg.direction == "output":
            return g.LineSettings(
                direction=line.Direction.OUTPUT,
                active_low=cfg.active_low,
                bias=bias,
                output_value=line.Value.ACTIVE if cfg.initial else line.Value.INACTIVE,
            )
        return g.LineSettings(
            direction=line.Direction.INPUT,
            edge_detection=line.Edge.BOTH,
            active_low=cfg.active_low,
            bias=bias,
            debounce_period=timedelta(milliseconds=cfg.debounce_ms),
        )

    def request(self, path: str, cfg: LineConfig, consumer: str) -> LineHandle:
        g = self._g
        chip = self._open(path, cfg)
        try:
            if isinstance(cfg.line, str):
                try:
                    offset = int(chip.line_offset_from_id(cfg.line))
                except (OSError, ValueError):
                    raise _no_line(cfg, path, f"no line named {cfg.line!r}") from None
            else:
                offset = cfg.line
                if offset >= int(chip.get_info().num_lines):
                    n = chip.get_info().num_lines
                    raise _no_line(cfg, path, f"no offset {offset} (the chip has {n} lines)")
            line_name = chip.get_line_info(offset).name or ""
            req = chip.request_lines({offset: self.settings(cfg)}, consumer=consumer)
        except OSError as exc:  # busy, permission, or the chip failing after the open
            raise _os_error(cfg, path, exc) from None
        finally:
            chip.close()  # closing the chip leaves the line request in place
        return _V2Handle(g, req, offset, line_name)


# ----------------------------------------------------------------------- v1


class _V1Handle:
    kernel_debounce = False

    def __init__(self, g: Any, chip: Any, line: Any) -> None:
        self._g = g
        self._chip = chip  # a v1 Line lives only as long as its Chip is open
        self._line = line
        self.offset = int(line.offset())
        self.line_name = line.name() or ""

    def get(self) -> int:
        return 1 if self._line.get_value() else 0

    def set(self, value: int) -> None:
        self._line.set_value(1 if value else 0)

    def fileno(self) -> int:
        return int(self._line.event_get_fd())

    def read_events(self) -> list[tuple[int, int]]:
        ev = self._line.event_read()  # one event per wake-up; the fd stays readable if more
        value = 1 if ev.type == self._g.LineEvent.RISING_EDGE else 0
        return [(value, int(ev.sec) * 1_000_000_000 + int(ev.nsec))]

    def release(self) -> None:
        try:
            self._line.release()
        finally:
            self._chip.close()


class _V1Adapter(_Adapter):
    api = "v1"

    def flags(self, cfg: LineConfig) -> int:
        g = self._g
        flags = g.LINE_REQ_FLAG_ACTIVE_LOW if cfg.active_low else 0
        flags |= {
            "as-is": 0,
            "pull-up": g.LINE_REQ_FLAG_BIAS_PULL_UP,
            "pull-down": g.LINE_REQ_FLAG_BIAS_PULL_DOWN,
            "disabled": g.LINE_REQ_FLAG_BIAS_DISABLE,
        }[cfg.bias]
        return int(flags)

    def request(self, path: str, cfg: LineConfig, consumer: str) -> LineHandle:
        g = self._g
        chip = self._open(path, cfg)
        try:
            line = None
            offset: int | None = None
            if isinstance(cfg.line, str):
                line = chip.find_line(cfg.line)
                if line is None:
                    if not (cfg.line.isascii() and cfg.line.isdigit()):
                        raise _no_line(cfg, path, f"no line named {cfg.line!r}")
                    offset = int(cfg.line)
            else:
                offset = cfg.line
            if line is None:
                assert offset is not None  # set on every path that leaves line None
                n = int(chip.num_lines())
                if offset >= n:
                    raise _no_line(cfg, path, f"no offset {offset} (the chip has {n} lines)")
                line = chip.get_line(offset)
            if cfg.direction == "output":
                line.request(
                    consumer=consumer,
                    type=g.LINE_REQ_DIR_OUT,
                    flags=self.flags(cfg),
                    default_val=cfg.initial,
                )
            else:
                line.request(
                    consumer=consumer, type=g.LINE_REQ_EV_BOTH_EDGES, flags=self.flags(cfg)
                )
        except OSError as exc:  # busy, permission, or the chip failing after the open
            chip.close()
            raise _os_error(cfg, path, exc) from None
        except BaseException:
            chip.close()
            raise
        return _V1Handle(g, chip, line)


def adapter_for(module: ModuleType, line: str = "*") -> Adapter:
    """The adapter for whichever ``gpiod`` API ``module`` offers."""
    if hasattr(module, "request_lines") and hasattr(module, "LineSettings"):
        return _V2Adapter(module)
    if hasattr(module, "LINE_REQ_DIR_OUT") and hasattr(module, "Chip"):
        return _V1Adapter(module)
    raise GpioError(
        line, f"the gpiod module at {getattr(module, '__file__', '?')} is neither API v1 nor v2"
    )


def _import_gpiod(line: str) -> ModuleType:
    try:
        return importlib.import_module("gpiod")
    except ImportError:
        raise GpioError(
            line,
            "Python gpiod is not installed: pip install 'sms-command-bridge[gpio]' "
            "or apt install python3-libgpiod",
        ) from None


class LinuxGpio(GpioBase):
    """Lines on real GPIO chips under ``root``; ``module`` replaces ``import gpiod`` in tests."""

    def __init__(
        self,
        lines: Mapping[str, LineConfig],
        root: str = "/",
        consumer: str = "sms-bridge",
        *,
        module: ModuleType | None = None,
    ) -> None:
        super().__init__(lines)
        self._handles: dict[str, LineHandle] = {}
        self._paths: dict[str, str] = {}
        self._last: dict[str, int] = {}
        self._pending: dict[str, asyncio.TimerHandle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.api = ""
        if not lines:
            return
        for cfg in lines.values():  # configuration first: a wrong chip is named by its key
            path = chip_path(root, cfg.chip)
            if not os.path.exists(path):
                raise ConfigError(f"{cfg.key}.chip", f"no such GPIO chip: {path}")
        first = next(iter(lines))
        adapter = adapter_for(module if module is not None else _import_gpiod(first), first)
        self.api = adapter.api
        try:
            for cfg in lines.values():
                path = chip_path(root, cfg.chip)
                try:
                    self._handles[cfg.name] = adapter.request(path, cfg, consumer)
                except GpioError:
                    self._same_line_twice(cfg, path)  # EBUSY because we hold it already?
                    raise
                self._paths[cfg.name] = path
                if cfg.direction == "input":
                    self._last[cfg.name] = self._get(cfg)
        except BaseException:
            self._release_all()
            raise

    def _same_line_twice(self, cfg: LineConfig, path: str) -> None:
        """Raise ConfigError if ``cfg`` names a line another configured name already holds.

        :func:`hal.config.parse` refuses the same name or offset twice, but not
        ``"GPIO17"`` and ``17``: only the chip knows they are one line.
        """
        for name, h in self._handles.items():
            if self._paths[name] != path:
                continue
            if cfg.line == (h.line_name if isinstance(cfg.line, str) else h.offset):
                raise ConfigError(
                    f"{cfg.key}.line",
                    f"is the line gpio.{name} already uses ({path} offset {h.offset})",
                )

    def _info(self, cfg: LineConfig) -> LineInfo:
        h = self._handles[cfg.name]
        return LineInfo(
            cfg.name,
            self._paths[cfg.name],
            h.offset,
            h.line_name,
            cfg.direction,
            cfg.active_low,
            cfg.bias,
            cfg.debounce_ms,
        )

    def _call(self, cfg: LineConfig, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except OSError as exc:
            raise GpioError(cfg.name, f"{self._paths[cfg.name]}: {exc.strerror or exc}") from None

    def _get(self, cfg: LineConfig) -> int:
        return int(self._call(cfg, self._handles[cfg.name].get))

    def _set(self, cfg: LineConfig, value: int) -> None:
        self._call(cfg, self._handles[cfg.name].set, value)

    async def _read_input(self, cfg: LineConfig) -> int:
        """A read; without kernel debounce, sampled until it holds for ``debounce_ms``."""
        h = self._handles[cfg.name]
        value = self._get(cfg)
        if cfg.debounce_ms == 0 or h.kernel_debounce:
            return value
        for _ in range(DEBOUNCE_SAMPLES):
            await asyncio.sleep(cfg.debounce_ms / 1000)
            again = self._get(cfg)
            if again == value:
                return value
            value = again
        raise GpioError(cfg.name, f"input did not settle for {cfg.debounce_ms} ms")

    def _on_subscribe(self) -> None:
        if self._loop is not None or self._closed:
            return
        self._loop = asyncio.get_running_loop()
        for name, h in self._handles.items():
            if self._cfg[name].direction == "input":
                # Edges queued in the kernel before anyone listened are history, not news:
                # drop them and start from the level the line has now.
                with contextlib.suppress(OSError):
                    pending = select.poll()  # not select(): it cannot watch an fd >= 1024
                    pending.register(h.fileno(), select.POLLIN)
                    while any(ev & select.POLLIN for _, ev in pending.poll(0)):
                        h.read_events()
                    self._last[name] = h.get()
                self._loop.add_reader(h.fileno(), self._on_events, name)

    def _on_events(self, name: str) -> None:
        cfg = self._cfg[name]
        h = self._handles[name]
        try:
            events = h.read_events()
        except OSError as exc:
            # The line went away (chip unbound): stop watching rather than spin.
            if self._loop is not None:
                self._loop.remove_reader(h.fileno())
            log.error("gpio %s: reading edges failed (%s); edges from it stop", name, exc)
            return
        if cfg.debounce_ms and not h.kernel_debounce:
            if name not in self._pending and self._loop is not None:
                self._pending[name] = self._loop.call_later(
                    cfg.debounce_ms / 1000, self._settled, name
                )
            return
        for value, ts in events:
            if value != self._last.get(name):
                self._last[name] = value
                self._publish(name, value, ts)

    def _settled(self, name: str) -> None:
        """v1 debounce: ``debounce_ms`` after the first edge, report the level if it changed."""
        self._pending.pop(name, None)
        if self._closed:
            return
        try:
            value = self._handles[name].get()
        except OSError:
            return
        if value != self._last.get(name):
            self._last[name] = value
            self._publish(name, value)

    def _release_all(self) -> None:
        for name, h in list(self._handles.items()):
            if self._loop is not None and self._cfg[name].direction == "input":
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(h.fileno())
            with contextlib.suppress(Exception):
                h.release()
        for timer in self._pending.values():
            timer.cancel()
        self._pending.clear()

    async def _close(self) -> None:
        self._release_all()
