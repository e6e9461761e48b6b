"""``python -m hal --config FILE {info,gpio,sensor,system,run}``: check a device in the field.

"Does my configuration find my relay and my sensor?" The file is TOML whose
top level is the table the bridge keeps under ``[hal]``. Human output by
default, ``--json`` for scripts (one JSON document on stdout).

* ``info`` - every line as resolved, every sensor read once, every script
  checked, the power actions; exit 3 when something the configuration names
  is not there.
* ``gpio [NAME [0|1]] [--pulse MS]`` - read all lines, read one, write one, or
  pulse one. The line is released when the command exits: what the kernel
  does with an output then depends on the driver.
* ``sensor [NAME]`` - read all sensors or one.
* ``system`` - the status report.
* ``run NAME [ARG...]`` - run an allow-listed script.

Exit codes (:data:`EXIT_OK` ...): 0 done; 1 the action failed (a sensor read,
a script that failed or exited non-zero, a GPIO write); 2 bad command line;
3 configuration error (the file cannot be read, is not TOML, a key is wrong,
or it names a chip, line, sensor or program the device does not have, also
when ``run`` finds its program not executable), the message names the key;
4 the device refused access (line busy, permission, the gpiod module missing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tomllib
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from .config import HalConfig, parse
from .device import Hal, Problem, build, check, sensor_problem
from .errors import (
    ConfigError,
    GpioError,
    HalError,
    PowerError,
    ScriptError,
    ScriptErrorKind,
    SensorError,
)
from .interfaces import PowerAction, Reading, SystemSnapshot

__all__ = [
    "EXIT_ACCESS",
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "load_config",
    "main",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_ACCESS = 4


class _Exit(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(message)


def load_config(path: str) -> HalConfig:
    """Read and parse a hal TOML file; :class:`ConfigError` for every problem."""
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f)
    except OSError as exc:
        raise ConfigError("", f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:  # tomllib.load decodes before it parses
        raise ConfigError(
            "", f"{path} is not valid TOML: not UTF-8 (byte {exc.start}: {exc.reason})"
        ) from None
    return parse(table)


class _Parser(argparse.ArgumentParser):
    """argparse with a bad command line as one line on stderr and exit 2
    (argparse's own prints the usage block first)."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {' '.join(message.split())} (see --help)\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m hal", description="Check and drive the device actions of a hal config."
    )
    p.add_argument("--config", required=True, metavar="FILE", help="TOML file (the [hal] table)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND", parser_class=_Parser)

    def cmd(name: str, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help)
        sp.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
        return sp

    cmd("info", "every line, sensor, script and power action, checked")
    g = cmd("gpio", "read all lines, read one, write one or pulse one")
    g.add_argument("name", nargs="?")
    g.add_argument("value", nargs="?", choices=["0", "1", "on", "off"])
    g.add_argument("--pulse", type=int, metavar="MS", help="pulse NAME active for MS ms")
    s = cmd("sensor", "read all sensors or one")
    s.add_argument("name", nargs="?")
    cmd("system", "the status report")
    r = cmd("run", "run an allow-listed script")
    r.add_argument("name")
    r.add_argument("args", nargs=argparse.REMAINDER)
    return p


def _emit(out: TextIO, as_json: bool, doc: Any, text: str) -> None:
    out.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n" if as_json else text)
    out.flush()


async def _sensor_rows(
    hal: Hal, names: Sequence[str]
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """One read of each sensor: its rows, and the problems of those that failed."""
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for name in names:
        key = hal.config.sensors[name].key
        try:
            r: Reading = await hal.sensors.read(name)
            rows.append({**r.to_json(), "key": key, "error": None})
        except SensorError as exc:
            problems.append(sensor_problem(hal.config, exc))
            rows.append(
                {
                    "sensor": name,
                    "value": None,
                    "unit": hal.sensors.unit(name),
                    "key": key,
                    "error": f"{exc.fault.value}: {exc.detail}",
                }
            )
    return rows, problems


def _sensor_text(rows: list[dict[str, Any]]) -> str:
    w = max((len(r["sensor"]) for r in rows), default=0)
    lines = []
    for r in rows:
        if r["error"] is None:
            lines.append(f"{r['sensor']:<{w}}  {r['value']} {r['unit']}".rstrip())
        else:
            lines.append(f"{r['sensor']:<{w}}  ERROR {r['error']}  [{r['key']}]")
    return "".join(line + "\n" for line in lines)


async def _gpio_rows(hal: Hal) -> list[dict[str, Any]]:
    rows = []
    for info in hal.gpio.lines():
        try:
            value: int | None = await hal.gpio.read(info.name)
            error = None
        except GpioError as exc:
            value, error = None, exc.message
        rows.append(
            {
                "name": info.name,
                "key": hal.config.gpio[info.name].key,
                "chip": info.chip,
                "offset": info.offset,
                "line_name": info.line_name,
                "direction": info.direction,
                "active_low": info.active_low,
                "bias": info.bias,
                "debounce_ms": info.debounce_ms,
                "value": value,
                "error": error,
            }
        )
    return rows


def _gpio_text(rows: list[dict[str, Any]]) -> str:
    w = max((len(r["name"]) for r in rows), default=0)
    out = []
    for r in rows:
        where = f"{r['chip']} offset {r['offset']}" + (
            f" ({r['line_name']})" if r["line_name"] else ""
        )
        value = r["value"] if r["error"] is None else f"ERROR {r['error']}"
        out.append(
            f"{r['name']:<{w}}  {r['direction']:<6}  {where}  "
            f"{'active-low' if r['active_low'] else 'active-high'}  bias {r['bias']}  "
            f"value {value}\n"
        )
    return "".join(out)


def _system_text(s: SystemSnapshot) -> str:
    out = [f"hostname  {s.hostname}\n"]
    if s.os:
        out.append(f"os        {s.os.name} (kernel {s.os.kernel})\n")
    out.append(f"uptime    {s.uptime_s} s\n")
    if s.load:
        out.append(f"load      {' '.join(str(x) for x in s.load)}\n")
    if s.mem_total_bytes is not None:
        out.append(f"memory    {s.mem_available_bytes} of {s.mem_total_bytes} bytes available\n")
    if s.cpu_temp_c is not None:
        out.append(f"cpu       {s.cpu_temp_c} °C\n")
    for d in s.disks:
        out.append(
            f"disk {d.mount}  {d.used_bytes} used, {d.available_bytes} available"
            f" of {d.total_bytes} bytes\n"
        )
    for i in s.interfaces:
        addrs = " ".join(i.ipv4 + i.ipv6)
        out.append(f"net {i.name}  {i.state}  {i.mac}  {addrs}".rstrip() + "\n")
    out.extend(f"unreadable: {e}\n" for e in s.errors)
    return "".join(out)


async def _info(hal: Hal, out: TextIO, as_json: bool) -> int:
    cfg = hal.config
    gpio = await _gpio_rows(hal)
    sensors, problems = await _sensor_rows(hal, hal.sensors.names())
    problems += await check(hal, sensors=False)  # the sensors were just read once
    scripts: list[dict[str, Any]] = []
    for s in hal.scripts.scripts():
        sc = cfg.scripts[s.name]
        bad = [p.message for p in problems if p.key.startswith(sc.key + ".")]
        scripts.append(
            {
                "name": s.name,
                "command": list(s.command),
                "args": list(s.patterns),
                "idempotent": s.idempotent,
                "timeout_s": s.timeout_s,
                "error": bad[0] if bad else None,
            }
        )
    allowed_actions = list(hal.power.allowed())
    commands = {a: list(hal.power.request(a).command) for a in _possible(hal)}
    power = {"allowed": allowed_actions, "commands": commands}
    doc = {
        "backend": cfg.backend,
        "root": cfg.root,
        "gpio": gpio,
        "sensors": sensors,
        "scripts": scripts,
        "power": power,
        "problems": [{"key": p.key, "message": p.message} for p in problems],
    }
    text = [f"backend  {cfg.backend} (root {cfg.root})\n"]
    text.append("gpio\n" + _indent(_gpio_text(gpio)) if gpio else "gpio     none configured\n")
    text.append(
        "sensors\n" + _indent(_sensor_text(sensors)) if sensors else "sensors  none configured\n"
    )
    if scripts:
        text.append("scripts\n")
        for s2 in scripts:
            state = "ok" if s2["error"] is None else f"ERROR {s2['error']}"
            text.append(
                f"  {s2['name']}  {' '.join(s2['command'])}  args {s2['args']}  "
                f"idempotent {'yes' if s2['idempotent'] else 'no'}  {state}\n"
            )
    else:
        text.append("scripts  none configured\n")
    allowed = ", ".join(allowed_actions) or "nothing"
    text.append(f"power    allowed: {allowed}\n")
    for action, argv in commands.items():
        text.append(f"  {action}: {' '.join(argv)}\n")
    if problems:
        text.append(f"{len(problems)} problem(s):\n")
        text.extend(f"  {p}\n" for p in problems)
    else:
        text.append("no problems found\n")
    _emit(out, as_json, doc, "".join(text))
    return EXIT_CONFIG if problems else EXIT_OK


def _possible(hal: Hal) -> list[PowerAction]:
    ok: list[PowerAction] = []
    for action in hal.power.allowed():
        try:
            hal.power.request(action)
            ok.append(action)
        except PowerError:
            pass
    return ok


def _indent(text: str) -> str:
    return "".join("  " + line + "\n" for line in text.splitlines())


async def _run(args: argparse.Namespace, out: TextIO) -> int:
    config = load_config(args.config)
    as_json = bool(args.json)
    async with build(config) as hal:
        if args.cmd == "info":
            return await _info(hal, out, as_json)
        if args.cmd == "sensor":
            names = [args.name] if args.name else list(hal.sensors.names())
            if args.name and args.name not in hal.config.sensors:
                raise _Exit(EXIT_FAILED, f"no sensor named {args.name!r} in {args.config}")
            rows, failed = await _sensor_rows(hal, names)
            _emit(out, as_json, rows, _sensor_text(rows))
            return EXIT_FAILED if failed else EXIT_OK
        if args.cmd == "system":
            snap = await hal.system.snapshot()
            _emit(out, as_json, snap.to_json(), _system_text(snap))
            return EXIT_OK
        if args.cmd == "gpio":
            return await _gpio(hal, args, out, as_json)
        try:
            result = await hal.scripts.run(args.name, args.args)
        except ScriptError as exc:
            sc = hal.config.scripts.get(args.name)
            if exc.kind is ScriptErrorKind.NOT_EXECUTABLE and sc is not None:
                raise ConfigError(f"{sc.key}.command[0]", exc.detail) from None
            raise
        text = result.stdout.decode("utf-8", "replace")
        if result.stdout_truncated:
            text += "\n[stdout truncated]\n"
        if result.stderr:
            text += "--- stderr\n" + result.stderr.decode("utf-8", "replace")
            if result.stderr_truncated:
                text += "\n[stderr truncated]\n"
        if text and not text.endswith("\n"):
            text += "\n"
        text += f"exit code {result.exit_code}\n"
        _emit(out, as_json, result.to_json(), text)
        return EXIT_OK if result.exit_code == 0 else EXIT_FAILED


async def _gpio(hal: Hal, args: argparse.Namespace, out: TextIO, as_json: bool) -> int:
    if args.name is None:
        if args.pulse is not None:
            raise _Exit(EXIT_USAGE, "--pulse needs a line NAME")
        rows = await _gpio_rows(hal)
        _emit(out, as_json, rows, _gpio_text(rows))
        return EXIT_OK if all(r["error"] is None for r in rows) else EXIT_FAILED
    name = args.name
    if name not in hal.config.gpio:
        raise _Exit(EXIT_FAILED, f"no line named {name!r} in {args.config}")
    if args.pulse is not None:
        if args.value is not None:
            raise _Exit(EXIT_USAGE, "give a VALUE or --pulse, not both")
        await hal.gpio.pulse(name, args.pulse)
    elif args.value is not None:
        await hal.gpio.write(name, 1 if args.value in ("1", "on") else 0)
    value = await hal.gpio.read(name)
    _emit(out, as_json, {"name": name, "value": value}, f"{name} {value}\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = out or sys.stdout
    try:
        return asyncio.run(_run(args, out))
    except KeyboardInterrupt:
        return 130
    except _Exit as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.code
    except ConfigError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        return EXIT_CONFIG
    except GpioError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_ACCESS if hal_access(exc) else EXIT_FAILED
    except (SensorError, ScriptError, PowerError, HalError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FAILED
    except OSError as exc:
        sys.stderr.write(f"error: {exc.strerror or exc}\n")
        return EXIT_FAILED


def hal_access(exc: GpioError) -> bool:
    """A GPIO error about access (busy, permission, no gpiod) rather than a value."""
    m = exc.message
    return "in use" in m or "permission" in m or "gpiod" in m
