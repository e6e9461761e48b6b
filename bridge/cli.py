"""``sms-bridge`` / ``python -m bridge``: the service and the operator's tools.

::

    sms-bridge run --config /etc/sms-bridge/bridge.toml
    sms-bridge run --port /dev/ttyUSB2 --journal /var/lib/sms-bridge/journal.db
    sms-bridge demo
    sms-bridge check-config FILE
    sms-bridge journal --journal PATH list|show ID|counts
    sms-bridge keygen FILE
    sms-bridge sign --key-file FILE --device ICCID "gpio set relay1 on"
    sms-bridge verify --key-file FILE --device ICCID "relay1=on #BAAAAAH..."

Human output by default, ``--json`` where a script reads it. Every bad
argument or configuration key is one line on stderr and exit 2 (a
configuration error names the key), never a traceback. Exit codes: 0 done,
1 the work failed (a signature that does not verify, a module that failed),
2 bad input. ``run`` logs to stderr, one line per event (journald adds the
time), never a key, a signature or a Command body at info level.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import re
import signal
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__, auth, config, systemd
from .actions import builtins
from .actions.registry import RegistryError
from .config import DEFAULT_STATUS_SOCKET, Config, ConfigError, ModemConfig
from .journal import MIGRATIONS, Entry, Journal, JournalError, State, write_atomically
from .service import Service, ServiceError, add_actions, check, check_levels
from .status import Runtime, StatusUnavailable
from .status import human as status_human
from .status import query as status_query

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: ``status``: the service is not running or did not answer (LSB: 3, "not running").
EXIT_UNAVAILABLE = 3
#: Longest echo of a bad value in an error line.
MAX_ERROR_LINE = 200

log = logging.getLogger("bridge.cli")


class UsageProblem(Exception):
    """A bad argument: one line, exit 2."""


class _Formatter(argparse.HelpFormatter):
    """argparse's help layout at the terminal's width, found the way
    ``shutil.get_terminal_size()`` finds it (``COLUMNS``, then the terminal of
    standard output, else 80) without importing :mod:`shutil`: argparse imports
    it for every formatter it makes, and it brings ``bz2`` and ``lzma`` (their
    libraries too) into the service for good."""

    def __init__(self, prog: str) -> None:
        try:
            columns = int(os.environ["COLUMNS"])
        except (KeyError, ValueError):
            columns = 0
        if columns <= 0:
            try:
                columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
            except (AttributeError, ValueError, OSError):
                columns = 0
        super().__init__(prog, width=(columns or 80) - 2)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageProblem(f"{message} (see --help)")


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > MAX_ERROR_LINE:
        text = text[: MAX_ERROR_LINE - 3] + "..."
    return text


def _printable(value: object) -> str:
    """``value`` for a terminal: every character that is not printable (C0
    and C1 controls, ESC, bidirectional overrides) as its Python escape, so
    text from the network (a Command body, a sender, an operator name) cannot
    move the cursor, retitle or clear the operator's terminal, or add lines."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _out(args: argparse.Namespace, human: str, data: object) -> None:
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(data, sort_keys=True) + "\n")  # ASCII (ensure_ascii)
    else:
        try:
            sys.stdout.write(human + ("" if human.endswith("\n") else "\n"))
        except UnicodeEncodeError as exc:  # PYTHONIOENCODING=ascii, a Latin-1 locale
            bad = exc.object[exc.start : exc.end]
            raise UsageProblem(
                f"standard output ({exc.encoding}) cannot show {bad!a}: "
                "use --json, or a UTF-8 locale"
            ) from None
    sys.stdout.flush()


# --- run -------------------------------------------------------------------------


def run_config(args: argparse.Namespace) -> Config:
    """The configuration ``run`` uses: the file, or ``--port``/``--journal``
    standing in for one module (Programmable Wireless, Commands from 2936,
    ping/status/info/help open, every verb that changes the device refused
    until a key is configured)."""
    if args.config is not None:
        if args.port or args.journal or args.key_file or args.status_socket is not None:
            raise UsageProblem("--config is used alone; put port, journal and key in the file")
        return config.load(args.config)
    if not args.port:
        raise UsageProblem("run needs --config FILE, or --port URL (and --journal PATH)")
    port = config.check_port("--port", args.port)
    doc: dict[str, Any] = {
        "bridge": {"product": "programmable-wireless"},
        "twilio": {"wireless_senders": ["2936"]},
        "modem": [{"port": port, "baud": args.baud}],
    }
    # the operator's working directory is the one meant on the command line
    if args.journal:
        doc["bridge"]["journal"] = os.path.abspath(args.journal)
    if args.key_file:
        doc["security"] = {"key_file": os.path.abspath(args.key_file)}
    if args.status_socket is not None:
        doc["status"] = {"socket": args.status_socket}
    return config.parse(doc)


async def _serve(cfg: Config, *, ready_line: bool) -> int:
    svc = Service(cfg)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        # a stop asked for while starting (a module that is not there yet) ends the start
        starting = asyncio.ensure_future(svc.start())
        asked = asyncio.ensure_future(stop.wait())
        await asyncio.wait((starting, asked), return_when=asyncio.FIRST_COMPLETED)
        asked.cancel()
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, ServiceError):
                await starting
            log.info("stopped while starting")
            return EXIT_OK
        try:
            starting.result()
        except ServiceError as exc:
            sys.stderr.write(f"error: {_one_line(str(exc))}\n")
            return EXIT_USAGE
        if ready_line:  # admitting since start() returned; READY=1 follows wait_ready()
            log.info("ready: admitting Commands on %s", ", ".join(svc.links))
        runtime = Runtime(svc)
        await runtime.start()
        try:
            readying = asyncio.ensure_future(runtime.ready())
            stopped = asyncio.ensure_future(svc.wait_stopped())
            asked = asyncio.ensure_future(stop.wait())
            await asyncio.wait((readying, stopped, asked), return_when=asyncio.FIRST_COMPLETED)
            if not stopped.done() and not asked.done():
                await asyncio.wait((stopped, asked), return_when=asyncio.FIRST_COMPLETED)
            readying.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await readying  # a failure to get ready is the service's, reported there
            asked.cancel()
            systemd.stopping()  # before in-flight work is finished or journaled
            await svc.stop()
            stopped.cancel()
        finally:
            await runtime.close()
        if svc.failure is not None:
            sys.stderr.write(f"error: {_one_line(str(svc.failure))}\n")
            return EXIT_FAILED
        return EXIT_OK
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def cmd_status(args: argparse.Namespace) -> int:
    if args.socket and args.config:
        raise UsageProblem("status takes --socket PATH or --config FILE, not both")
    path = args.socket or (
        config.load(args.config).status.socket if args.config else DEFAULT_STATUS_SOCKET
    )
    if not path:
        raise UsageProblem(f"{args.config}: status.socket is empty: the service has no socket")
    try:
        data = status_query(path, timeout=args.timeout)
        text = "" if args.json else "\n".join(map(_printable, status_human(data).split("\n")))
    except StatusUnavailable as exc:
        message = str(exc) if str(exc).startswith(f"{path}: ") else f"{path}: {exc}"
        sys.stderr.write(f"error: {_one_line(message)}\n")
        return EXIT_UNAVAILABLE
    _out(args, text, data)
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    cfg = run_config(args)
    check(cfg)
    return asyncio.run(_serve(cfg, ready_line=True))


# --- check-config ------------------------------------------------------------------


def cmd_check_config(args: argparse.Namespace) -> int:
    cfg = config.load(args.file)
    hcfg = check(cfg)
    registry = builtins()  # the verbs run would offer
    try:
        add_actions(registry, cfg)
    except RegistryError as exc:
        raise UsageProblem(str(exc)) from None
    check_levels(cfg, registry)
    data = {
        "file": args.file,
        "product": cfg.bridge.product.value,
        "journal": cfg.bridge.journal,
        "modems": [{"name": m.name, "port": m.port} for m in cfg.modems],
        "key_file": cfg.security.key_file or None,
        "hal_backend": hcfg.backend,
        "gpio": sorted(hcfg.gpio),
        "sensors": sorted(hcfg.sensors),
        "scripts": sorted(hcfg.scripts),
    }
    mods = ", ".join(f"{m.name}={m.port}" for m in cfg.modems)
    key = cfg.security.key_file or "none (signed verbs refused)"
    human = (
        f"{args.file}: ok\n  product {data['product']}, journal {cfg.bridge.journal}\n"
        f"  modules {mods}\n  key {key}\n  hal {hcfg.backend}: "
        f"{len(hcfg.gpio)} gpio, {len(hcfg.sensors)} sensors, {len(hcfg.scripts)} scripts"
    )
    _out(args, human, data)
    return EXIT_OK


# --- journal -------------------------------------------------------------------------


def _show_body(body: str | bytes | None) -> str:
    if body is None:
        return "-"
    if isinstance(body, bytes):
        return body.hex()
    return body


def entry_json(e: Entry, *, bodies: bool) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": e.id,
        "kind": e.kind.value,
        "modem": e.modem,
        "state": e.state.value,
        "sender": e.sender,
        "product": e.product,
        "sid": e.sid,
        "counter": e.counter,
        "summary": e.summary,
        "reason": e.reason,
        "reply_to": e.reply_to,
        "tp_mr": e.tp_mr,
        "send_attempts": e.send_attempts,
        "resends": e.resends,
        "created": e.created,
        "updated": e.updated,
    }
    if bodies:
        d["body"] = _show_body(e.body) if e.body is not None else None
        d["reply"] = _show_body(e.reply) if e.reply is not None else None
        d["raw_pdu"] = e.raw_pdu
        d["error"] = e.error
        d["transitions"] = [
            {"state": t.state.value, "at": t.at, "detail": t.detail} for t in e.transitions
        ]
    return d


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _open_journal(path: str) -> Journal:
    """The journal opened read-only: the service may be running on it, and
    looking must change nothing (no migration, no window resize, never a
    file moved aside)."""
    p = Path(path)
    if not p.is_file():
        what = "a directory, not the journal file" if p.is_dir() else "no such file"
        raise UsageProblem(f"--journal {path}: {what}")
    try:
        db = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
        version = db.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path}: {exc}") from None
    if version != len(MIGRATIONS):
        db.close()
        raise JournalError(
            f"journal {path}: schema version {version}, this sms-bridge reads {len(MIGRATIONS)}"
        )
    return Journal(db, p, time.time)


def cmd_journal(args: argparse.Namespace) -> int:
    path = args.journal
    if path is None and args.config is not None:
        path = config.load(args.config).bridge.journal
    if path is None:
        raise UsageProblem("journal needs --journal PATH or --config FILE")
    with _open_journal(path) as j:
        if args.action == "counts":
            counts = {s.value: n for s, n in j.counts().items()}
            human = "\n".join(f"{s:13} {n}" for s, n in counts.items())
            _out(args, human, counts)
        elif args.action == "list":
            state = State(args.state) if args.state else None
            entries = j.list_entries(limit=args.limit, state=state)
            lines = [
                f"{e.id:6} {_when(e.updated)} {e.kind.value:11} {e.state.value:12} "
                + _printable(
                    f"{e.modem} {e.sender or '-'} {e.summary or '-'}"
                    + (f" ({e.reason})" if e.reason else "")
                )
                for e in entries
            ]
            _out(
                args,
                "\n".join(lines) or "(empty)",
                [entry_json(e, bodies=False) for e in entries],
            )
        else:
            e = j.get(args.id)
            d = entry_json(e, bodies=True)
            lines = [f"{k:13} {_printable(v)}" for k, v in d.items() if k != "transitions"]
            lines += [
                f"  {_when(t.at)} {t.state.value}"
                + (f" ({_printable(t.detail)})" if t.detail else "")
                for t in e.transitions
            ]
            _out(args, "\n".join(lines), d)
    return EXIT_OK


# --- keys: keygen, sign, verify --------------------------------------------------------


def cmd_keygen(args: argparse.Namespace) -> int:
    text = auth.format_key_file({args.key_version: auth.generate_key()}, args.key_version)
    try:
        auth.write_key_file(args.file, text)
    except FileExistsError:
        raise UsageProblem(f"{args.file}: exists; a key file is never overwritten") from None
    except OSError as exc:
        name = args.file or "''"
        raise UsageProblem(f"{name}: cannot create: {exc.strerror or exc}") from None
    _out(
        args,
        f"wrote {args.file} (mode 0600, key version {args.key_version}); give the server a copy",
        {"file": args.file, "key_version": args.key_version},
    )
    return EXIT_OK


def default_state_file() -> Path:
    """``$XDG_STATE_HOME/sms-bridge/sign-counters.json``; a relative or empty
    ``XDG_STATE_HOME`` is ignored (XDG Base Directory Specification), so the
    counters never follow the working directory (a fresh file there would
    hand out counters the device has seen: refused as replayed)."""
    base = os.environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(base):
        base = str(Path.home() / ".local" / "state")
    return Path(base) / "sms-bridge" / "sign-counters.json"


def next_counter(state: Path, device: str, *, timestamp: bool) -> int:
    """The next Command counter for ``device``, kept in ``state`` (JSON, 0600,
    locked while read and written, replaced atomically): never used twice."""
    lock = state.with_name(state.name + ".lock")
    try:
        state.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        where = exc.filename or lock
        raise UsageProblem(f"--state {state}: unusable ({where}: {exc.strerror or exc})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            counters = json.loads(state.read_text(encoding="utf-8")) if state.exists() else {}
            if not isinstance(counters, dict):
                raise ValueError("not an object")
            last = counters.get(device, 0)
            if not isinstance(last, int) or isinstance(last, bool) or last < 0:
                raise ValueError(f"{device}: {last!r} is not a counter")
            if last >= auth.MAX_COUNTER:
                raise ValueError(f"{device}: the counter is used up")
        except (ValueError, TypeError, OSError) as exc:
            raise UsageProblem(f"--state {state}: unreadable ({exc}); fix or move it") from None
        n = auth.timestamp_counter(time.time(), last) if timestamp else last + 1
        counters[device] = n
        write_atomically(state, (json.dumps(counters, sort_keys=True) + "\n").encode())
        return n
    finally:
        os.close(fd)


def _key(args: argparse.Namespace) -> auth.Keyring:
    try:
        return auth.load_keyring(args.key_file)
    except auth.KeyFileError as exc:
        raise UsageProblem(f"--key-file: {exc}") from None


def _payload(args: argparse.Namespace, text: str) -> str | bytes:
    if not args.binary:
        return text
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise UsageProblem(f"--binary: {_one_line(text)!r} is not hex") from None


def _path(value: str) -> str:
    """A file name as given; an empty one is refused (``Path("")`` is the
    working directory, and the errors would name ".")."""
    if not value:
        raise argparse.ArgumentTypeError("an empty path")
    return value


def _device(value: str) -> str:
    if not re.fullmatch(r"[\x21-\x7e]{1,64}", value):
        raise argparse.ArgumentTypeError("1-64 printable ASCII characters, no spaces")
    return value


def cmd_sign(args: argparse.Namespace) -> int:
    keys = _key(args)
    body = _payload(args, args.command)
    if args.counter is not None:
        counter = args.counter
    else:
        state = Path(args.state) if args.state else default_state_file()
        counter = next_counter(state, args.device, timestamp=args.timestamp)
    try:
        signed = auth.sign_command(
            body,
            key=keys.keys[keys.signing],
            key_version=keys.signing,
            device_id=args.device,
            counter=counter,
            timestamp=args.timestamp,
        )
    except ValueError as exc:
        raise UsageProblem(f"cannot sign: {exc}") from None
    shown = signed.hex() if isinstance(signed, bytes) else signed
    _out(args, shown, {"message": shown, "counter": counter, "key_version": keys.signing})
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    keys = _key(args)
    message = _payload(args, args.reply)
    try:
        v = auth.verify_reply(message, keys=keys, device_id=args.device)
    except auth.AuthError as exc:
        sys.stderr.write(f"error: not verified: {exc.reason.value}\n")
        if args.json:
            _out(args, "", {"ok": False, "reason": exc.reason.value})
        return EXIT_FAILED
    body = v.body.hex() if isinstance(v.body, bytes) else v.body
    _out(
        args,
        f"ok: counter {v.counter}, key version {v.trailer.key_version}: {body}",
        {"ok": True, "body": body, "counter": v.counter, "key_version": v.trailer.key_version},
    )
    return EXIT_OK


# --- demo ----------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    # Imported here: the demo (and the simulator it drives) is never part of `run`.
    from .demo import run_demo  # noqa: PLC0415

    return asyncio.run(run_demo(sys.stdout, as_json=args.json))


# --- the parser ------------------------------------------------------------------------


#: The largest entry id or limit (SQLite's INTEGER is 64-bit signed).
MAX_ROW = 2**63 - 1


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} must be at least 1")
    return n


def _row(text: str) -> int:
    """An entry id or a count of entries: 1 .. 2**63 - 1."""
    n = _positive(text)
    if n > MAX_ROW:
        raise argparse.ArgumentTypeError(f"{n} is over 2**63 - 1")
    return n


def _counter(text: str) -> int:
    n = _positive(text)
    if n > auth.MAX_COUNTER:
        raise argparse.ArgumentTypeError(f"{n} is over the largest counter {auth.MAX_COUNTER}")
    return n


def _key_version(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= n <= auth.MAX_KEY_VERSION:
        raise argparse.ArgumentTypeError(f"{n} is not in 0..{auth.MAX_KEY_VERSION}")
    return n


#: Longest ``status --timeout`` (seconds).
MAX_STATUS_TIMEOUT = 3600.0


def _seconds(text: str) -> float:
    """A finite number of seconds above 0 (``socket.settimeout`` refuses
    negative and NaN values, and infinity overflows its clock)."""
    try:
        n = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < n <= MAX_STATUS_TIMEOUT:  # False for NaN too
        raise argparse.ArgumentTypeError(f"{text} is not in (0, {MAX_STATUS_TIMEOUT:g}] seconds")
    return n


def _baud(text: str) -> int:
    n = _positive(text)
    if not 300 <= n <= 4_000_000:
        raise argparse.ArgumentTypeError(f"{n} is not in 300..4000000")
    return n


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="sms-bridge",
        description="SMS command bridge: Twilio machine-to-machine Commands in, "
        "device actions, signed replies out (docs/bridge.md).",
    )
    p.add_argument("--version", action="version", version=f"sms-bridge {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log lines (-vv debug)")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND", parser_class=_Parser)

    r = sub.add_parser("run", help="run the bridge service", description="Run the service.")
    r.add_argument(
        "--config",
        type=_path,
        metavar="FILE",
        help="the TOML configuration (docs/bridge.example.toml)",
    )
    r.add_argument(
        "--port", metavar="URL", help="one module, no file: /dev/ttyUSB2, socket://H:P, sim://bg96"
    )
    r.add_argument("--journal", type=_path, metavar="PATH", help="with --port: the journal file")
    r.add_argument(
        "--key-file", type=_path, metavar="FILE", help="with --port: the key file (sign verbs)"
    )
    r.add_argument("--baud", type=_baud, default=115200, help="with --port: the line speed")
    r.add_argument(
        "--status-socket",
        metavar="PATH",
        help=f'with --port: the status socket (default {DEFAULT_STATUS_SOCKET}; "" for none)',
    )

    st = sub.add_parser(
        "status",
        help="live state of the running service",
        description="Ask the running service over its status socket (docs/bridge.md).",
    )
    st.add_argument("--socket", type=_path, metavar="PATH", help=f"default {DEFAULT_STATUS_SOCKET}")
    st.add_argument(
        "--config", type=_path, metavar="FILE", help="take the socket path from this file"
    )
    st.add_argument("--timeout", type=_seconds, default=5.0, help="seconds to wait for the answer")
    st.add_argument("--json", action="store_true", help="the status as one JSON object")

    d = sub.add_parser(
        "demo",
        help="a scripted session on the simulated module (no hardware)",
        description="Play a scripted session through the real path on sim://bg96 "
        "and the simulated HAL, with a temporary journal.",
    )
    d.add_argument("--json", action="store_true", help="one JSON object per case")

    c = sub.add_parser(
        "check-config",
        help="check a configuration file",
        description="Check a configuration file (and its key file and [hal]).",
    )
    c.add_argument("file", type=_path, metavar="FILE")
    c.add_argument("--json", action="store_true")

    j = sub.add_parser(
        "journal", help="look into the journal", description="Look into the journal."
    )
    j.add_argument("--journal", type=_path, metavar="PATH", help="the journal file")
    j.add_argument(
        "--config", type=_path, metavar="FILE", help="take the journal path from this file"
    )
    j.add_argument("--json", action="store_true")
    js = j.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=_Parser)
    jl = js.add_parser("list", help="the newest entries", description="The newest entries first.")
    jl.add_argument("--limit", type=_row, default=50)
    jl.add_argument("--state", choices=[s.value for s in State])
    jl.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    jsh = js.add_parser(
        "show",
        help="one entry with its transitions",
        description="One entry, with its bodies and transitions.",
    )
    jsh.add_argument("id", type=_row, metavar="ID")
    jsh.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    jc = js.add_parser("counts", help="entries per state", description="Entries per state.")
    jc.add_argument("--json", action="store_true", default=argparse.SUPPRESS)

    k = sub.add_parser(
        "keygen",
        help="create a key file (0600)",
        description="Create a key file with a fresh 256-bit key (mode 0600, never overwritten).",
    )
    k.add_argument("file", type=_path, metavar="FILE")
    k.add_argument("--key-version", type=_key_version, default=1)
    k.add_argument("--json", action="store_true")

    s = sub.add_parser(
        "sign",
        help="sign a Command for a device",
        description="Make a signed Command for a device; the counter is kept in a state file.",
    )
    s.add_argument("command", metavar="COMMAND", help="the Command text (hex with --binary)")
    s.add_argument("--key-file", required=True, type=_path, metavar="FILE")
    s.add_argument(
        "--device",
        required=True,
        type=_device,
        metavar="ID",
        help="the device's ICCID or bridge.device_id",
    )
    s.add_argument(
        "--state",
        type=_path,
        metavar="FILE",
        help=f"counter state (default {default_state_file()})",
    )
    s.add_argument("--counter", type=_counter, help="use this counter (no state file)")
    s.add_argument("--timestamp", action="store_true", help="a timestamp counter (device expiry)")
    s.add_argument("--binary", action="store_true", help="COMMAND is the binary form, in hex")
    s.add_argument("--json", action="store_true")

    v = sub.add_parser(
        "verify",
        help="check a signed reply",
        description="Check a reply or report signed by a device.",
    )
    v.add_argument("reply", metavar="REPLY", help="the reply text (hex with --binary)")
    v.add_argument("--key-file", required=True, type=_path, metavar="FILE")
    v.add_argument("--device", required=True, type=_device, metavar="ID")
    v.add_argument("--binary", action="store_true")
    v.add_argument("--json", action="store_true")
    return p


HANDLERS = {
    "run": cmd_run,
    "status": cmd_status,
    "demo": cmd_demo,
    "check-config": cmd_check_config,
    "journal": cmd_journal,
    "keygen": cmd_keygen,
    "sign": cmd_sign,
    "verify": cmd_verify,
}


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            exc = record.exc_info[1]
            text += f" ({type(exc).__name__}: {exc})"
        return " ".join(text.split())


@contextlib.contextmanager
def _logging(args: argparse.Namespace) -> Iterator[None]:
    """One line per event on stderr (journald adds the time) while a command runs."""
    base = logging.INFO if args.cmd == "run" else logging.WARNING
    level = max(logging.DEBUG, base - 10 * args.verbose)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    handler.setLevel(level)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, old_level) if old_level else level)
    # The line shows none of the caller, thread or process: not gathered for each
    # record (the logging HOWTO, "Optimization"); about a third of a record's cost.
    gathered = (logging._srcfile, logging.logThreads, logging.logProcesses)
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = False
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        logging._srcfile, logging.logThreads, logging.logProcesses = gathered


def main(argv: Sequence[str] | None = None) -> int:
    """The console script ``sms-bridge``; returns the exit code."""
    try:
        args = build_parser().parse_args(list(argv) if argv is not None else None)
    except UsageProblem as exc:
        sys.stderr.write(f"error: {_one_line(str(exc))}\n")
        return EXIT_USAGE
    with _logging(args):
        return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    try:
        return HANDLERS[args.cmd](args)
    except (UsageProblem, ConfigError) as exc:
        sys.stderr.write(f"error: {_one_line(str(exc))}\n")
        return EXIT_USAGE
    except JournalError as exc:
        sys.stderr.write(f"error: {_one_line(str(exc))}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except Exception as exc:  # a bug: still one line, never a traceback
        sys.stderr.write(f"error: internal: {type(exc).__name__}: {_one_line(str(exc))}\n")
        return EXIT_FAILED


__all__ = ["ModemConfig", "build_parser", "main", "next_counter", "run_config"]
