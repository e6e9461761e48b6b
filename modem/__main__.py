"""Command line: ``python -m modem --port URL {info,send,listen,at}``.

``--port`` takes a serial device or pyserial URL (``/dev/ttyUSB2``,
``socket://127.0.0.1:PORT``, ``spy://...``) or ``sim://PROFILE[?OPTIONS]`` (a
simulated module started in-process: generic, bg96, ec25, sim7600, sara-r410m...;
options in :func:`modem.client.open_connector`). ``rfc2217://`` and ``loop://``
are refused with a clear error: they have no file descriptor for the asyncio
transport to wait on.

* ``info [--json]``: identity, SIM, registration, signal, storage use. Every
  field the module cannot give reads ``unknown``; a SIM that needs a person
  (no SIM, PIN, PUK) is reported in ``sim`` and the rest is still shown.
* ``send --to NUMBER [--binary | --ucs2] [--alphanumeric] TEXT``:
  ``--binary`` takes TEXT as hex. NUMBER is digits with an optional leading
  ``+`` (at most 20, TS 23.040 §9.1.2.5); an alphanumeric address only with
  ``--alphanumeric``. Waits ``--registration-timeout`` seconds for the network.
* ``listen [--json] [--demo] [--count N]``: every SMS as it arrives, stored
  ones first; one line each (JSON: the codec's ``to_json`` keys plus ``id``,
  the message identity for dedupe). Each is deleted from the module only
  after its line is written and flushed. ``--demo`` (sim only) delivers a
  few Twilio-style Commands.
* ``at COMMAND``: one raw command; prints the answer lines and the result.

Every command runs the stack through :class:`modem.stack.ModemStack` (so it
sees the module's URCs) and starts with ESC, so a module left at the ``> ``
prompt recovers. Bad arguments give one ``error:`` line and exit status 2,
never a traceback. SIGTERM stops cleanly (exit 143): a message whose line was
not flushed stays on the module. A closed output (``listen | head -1``) ends
the command at once (exit 141).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import select
import signal
import stat
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, NoReturn, TextIO

import pdu

from . import commands as C
from . import timing
from .client import TRACE, AtClient
from .errors import CommandFailed, ModemError, SimProblem
from .session import SessionConfig
from .sms import Inbound, ReceivedMessage, StatusReportReceived
from .stack import ModemStack

__all__ = ["inbound_json", "main"]

#: Exit statuses besides 0 (done), 1 (the module refused an ``at`` command) and
#: 2 (bad arguments, or the module/network failed).
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a writer killed by it
EXIT_SIGTERM = 143  # 128 + SIGTERM
EXIT_INTERRUPTED = 130  # 128 + SIGINT

#: Longest error line printed (a 40,000-character argument is not echoed whole).
MAX_ERROR_LINE = 300

#: Recipient: digits with an optional "+" (TS 23.040 §9.1.2.5: at most 20
#: semi-octets); alphanumeric (TON 5): at most 11 characters of the default alphabet.
_NUMBER = re.compile(r"\+?[0-9]{1,20}")
_ALPHANUMERIC = re.compile(r"[A-Za-z0-9 .\-_]{1,11}")

UNKNOWN = "unknown"


class _ArgError(Exception):
    """A bad command line: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _ArgError(f"{message} (see --help)")


def inbound_json(item: Inbound) -> dict[str, Any]:
    """One ``listen --json`` line: ``pdu.to_json`` keys (joined content) plus ``id``."""
    if isinstance(item, ReceivedMessage):
        d = pdu.to_json(item.first)
        if len(item.parts) > 1:
            d["text"] = item.text
            data = item.data
            d["data"] = data.hex() if data is not None else None
    elif isinstance(item, StatusReportReceived):
        d = pdu.to_json(item.report)
    else:
        d = dict.fromkeys(pdu.JSON_KEYS)
        d["type"] = "undecodable"
        d["data"] = item.raw
    d["id"] = item.identity
    return d


def _line(item: Inbound) -> str:
    if isinstance(item, ReceivedMessage):
        body = item.text if item.text is not None else (item.data or b"").hex()
        return f"{item.first.tp_scts.isoformat()} {item.sender}: {body}"
    if isinstance(item, StatusReportReceived):
        return f"status report mr={item.report.tp_mr} st={item.report.tp_st}"
    return f"undecodable PDU {item.raw} ({item.error})"


def _stack(args: argparse.Namespace, consumer: Any = None) -> ModemStack:
    return ModemStack(
        args.port,
        session=SessionConfig(pin=args.pin),
        consumer=consumer,
        client_options={"baudrate": args.baud},
    )


async def _optional(query: Awaitable[Any], shape: Callable[[Any], Any] = lambda x: x) -> Any:
    """One optional query: its value, or ``unknown`` when the module cannot answer."""
    try:
        return shape(await query)
    except (ModemError, TimeoutError):
        return UNKNOWN


async def cmd_info(args: argparse.Namespace, out: TextIO) -> int:
    async with _stack(args) as stack:
        session = stack.session
        problem: SimProblem | None = None
        try:
            await _ready(stack, args)
        except SimProblem as exc:
            problem = exc
        client = stack.client
        signal_ = await _optional(
            session.signal_quality(0), lambda s: {"rssi": s.rssi, "ber": s.ber, "dbm": s.dbm}
        )
        known = session.storage  # from the +CPMS set form at init, if the query is refused
        status = await _optional(session.storage_status())
        st = status if status != UNKNOWN else known
        storage = (
            {"mem": list(st.mem), "used": list(st.used), "total": list(st.total)}
            if st is not None
            else UNKNOWN
        )
        operator = await _optional(client.execute(C.cops_query()), lambda op: op.name or UNKNOWN)
        if problem is None:
            await _optional(session.refresh_registration())
        ident = session.identity
        if problem is not None:
            sim = f"{problem.kind.value} ({problem.fault.value} must act)"
        else:
            sim = session.pin_state.value if session.pin_state else UNKNOWN
        info = {
            "manufacturer": ident.manufacturer or UNKNOWN,
            "model": ident.model or UNKNOWN,
            "revision": ident.revision or UNKNOWN,
            "imei": ident.imei or UNKNOWN,
            "imsi": ident.imsi or UNKNOWN,
            "iccid": ident.iccid or UNKNOWN,
            "profile": session.profile.name,
            "sim": sim,
            "registration": {
                d: {
                    "stat": r.stat,
                    "registered": r.registered,
                    "lac": r.lac,
                    "ci": r.ci,
                    "act": r.act,
                }
                for d, r in session.registration.items()
            }
            or UNKNOWN,
            "operator": operator,
            "signal": signal_,
            "storage": storage,
            "smsc": session.smsc or UNKNOWN,
        }
        if args.json:
            out.write(json.dumps(info) + "\n")
        else:
            for key, value in info.items():
                out.write(f"{key:13} {value}\n")
        out.flush()
    return 0


def _content(args: argparse.Namespace) -> tuple[str | bytes, pdu.Alphabet | None]:
    """The message and its alphabet, checked before the port is opened."""
    to = args.to
    if args.alphanumeric:
        if not _ALPHANUMERIC.fullmatch(to):
            raise _ArgError(f"--to {_show(to)}: an alphanumeric address is 1-11 letters/digits")
    elif not _NUMBER.fullmatch(to):
        alnum = to.isalnum() and not to.isdigit()
        hint = " (an alphanumeric address needs --alphanumeric)" if alnum else ""
        raise _ArgError(f"--to {_show(to)}: a number is 1-20 digits with an optional +{hint}")
    content: str | bytes = args.text
    encoding = None
    if args.binary:
        try:
            content = bytes.fromhex(args.text)
        except ValueError:
            raise _ArgError(f"--binary TEXT must be hex digits, not {_show(args.text)}") from None
        encoding = pdu.Alphabet.DATA8
    elif args.ucs2:
        encoding = pdu.Alphabet.UCS2
    if isinstance(content, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in content):
        raise _ArgError("TEXT holds a lone surrogate (bytes that are not UTF-8 in the argument?)")
    try:
        pdu.submit_parts(to, content, encoding=encoding)
    except pdu.PduError as exc:
        raise _ArgError(f"cannot send this: {exc}") from None
    return content, encoding


async def _ready(stack: ModemStack, args: argparse.Namespace) -> None:
    try:
        await stack.wait_ready(args.wait)
    except TimeoutError:
        raise ModemError(f"module not ready within {args.wait:g} s") from None


async def cmd_send(args: argparse.Namespace, out: TextIO) -> int:
    content, encoding = _content(args)
    async with _stack(args) as stack:
        await _ready(stack, args)
        result = await stack.guard(
            stack.sms.send(
                args.to,
                content,
                encoding=encoding,
                registration_timeout=args.registration_timeout,
            )
        )
    out.write(" ".join(str(mr) for mr in result.mrs) + "\n")
    out.flush()
    return 0


DEMO_COMMANDS = ["ping", "status", "DC0123456789abcdef0123456789abcdef reboot", "led on"]


@contextlib.contextmanager
def _when_reader_gone(out: TextIO, callback: Callable[[], None]) -> Iterator[None]:
    """Call ``callback`` when ``out`` is a pipe whose reader went away.

    A closed pipe is otherwise noticed only at the next write, which may not
    come for hours (``listen | head -1``). Linux: an epoll set on the write end
    reports EPOLLERR once no reader is left; the event loop waits on it (no
    polling). Elsewhere, or for files and terminals, nothing is watched.
    """
    try:
        fd = out.fileno()
        is_pipe = stat.S_ISFIFO(os.fstat(fd).st_mode)
    except (AttributeError, OSError, ValueError):
        is_pipe = False
    epoll_cls = getattr(select, "epoll", None)
    if not is_pipe or epoll_cls is None:
        yield
        return
    loop = asyncio.get_running_loop()
    ep = epoll_cls()

    def once() -> None:  # level-triggered: stop watching at the first report
        loop.remove_reader(ep.fileno())
        callback()

    try:
        ep.register(fd, 0)  # EPOLLERR/EPOLLHUP are always reported
        loop.add_reader(ep.fileno(), once)
        try:
            yield
        finally:
            loop.remove_reader(ep.fileno())
    finally:
        ep.close()


async def cmd_listen(args: argparse.Namespace, out: TextIO) -> int:
    seen = 0
    done = asyncio.Event()
    broken = False

    async def consumer(item: Inbound) -> None:
        nonlocal seen, broken
        line = json.dumps(inbound_json(item)) if args.json else _line(item)
        try:
            out.write(line + "\n")
            out.flush()  # written and flushed: only now may the module delete it
        except BrokenPipeError:
            broken = True
            done.set()
            # never accepted: the message stays on the module. Not raised (that is
            # a consumer failure, retried); the stack's shutdown cancels this wait
            await asyncio.Event().wait()
        seen += 1
        if args.count and seen >= args.count:
            done.set()

    def reader_gone() -> None:
        nonlocal broken
        broken = True
        done.set()

    async with _stack(args, consumer) as stack:
        with _when_reader_gone(out, reader_gone):
            if args.demo:
                sim = stack.sim_modem
                if sim is None:
                    raise _ArgError("--demo needs --port sim://PROFILE")
                await _ready(stack, args)
                for text in DEMO_COMMANDS:
                    sim.deliver(text, sender="2936")
                sim.deliver(b"\x01\x02\x03", sender="2936", encoding="8bit")
            await stack.guard(done.wait())
    if broken:
        raise BrokenPipeError("output closed")
    return 0


async def cmd_at(args: argparse.Namespace, out: TextIO) -> int:
    async with AtClient.from_url(args.port, baudrate=args.baud) as client:
        await client.sync()  # ESC first: a module left at the prompt takes commands again
        cmd = C.raw(args.command, timeout=args.timeout)
        response = await client.run(cmd)
    for line in response.lines:
        out.write(line + "\n")
    out.write(response.final.line + "\n")
    out.flush()
    try:
        response.raise_for_result(cmd.text)
    except CommandFailed as exc:
        sys.stderr.write(f"{_show(str(exc), quote=False)}\n")
        return 1
    return 0


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {_show(text)}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {_show(text)}") from None
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 86400, not {value:g}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m modem", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--port", required=True, help="pyserial URL or sim://PROFILE")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--pin", default=None, help="SIM PIN, if the SIM asks for one")
    p.add_argument(
        "--wait",
        type=_positive_seconds,
        default=timing.REGISTRATION_WAIT,
        help="seconds to wait for the module to be ready (default %(default)s)",
    )
    p.add_argument(
        "-v", "--verbose", action="count", default=0, help="-v info, -vv debug, -vvv raw"
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    info = sub.add_parser("info", help="identity, SIM, registration, signal, storage")
    info.add_argument("--json", action="store_true")
    send = sub.add_parser("send", help="send one SMS (multi-part when needed)")
    send.add_argument("--to", required=True)
    send.add_argument("--alphanumeric", action="store_true", help="--to is an alphanumeric address")
    kind = send.add_mutually_exclusive_group()
    kind.add_argument("--binary", action="store_true", help="TEXT is hex, sent as 8-bit data")
    kind.add_argument("--ucs2", action="store_true")
    send.add_argument(
        "--registration-timeout",
        type=_positive_seconds,
        default=timing.REGISTRATION_WAIT,
        help="seconds to wait for the network (default %(default)s)",
    )
    send.add_argument("text", metavar="TEXT")
    listen = sub.add_parser("listen", help="print every SMS as it arrives")
    listen.add_argument("--json", action="store_true")
    listen.add_argument("--demo", action="store_true", help="sim only: deliver demo Commands")
    listen.add_argument(
        "--count", type=_non_negative_int, default=0, help="stop after N messages (0: never)"
    )
    at = sub.add_parser("at", help="send one AT command")
    at.add_argument("command", metavar="COMMAND")
    at.add_argument("--timeout", type=_positive_seconds, default=timing.DEFAULT_COMMAND_TIMEOUT)
    return p


def _show(value: str, *, quote: bool = True) -> str:
    """``value`` for an error line: one line, at most MAX_ERROR_LINE characters."""
    text = repr(value) if quote else value
    text = text.replace("\n", " ").replace("\r", " ")
    if len(text) > MAX_ERROR_LINE:
        text = text[: MAX_ERROR_LINE - 20] + f"... ({len(value)} characters)"
    return text


def _error(exc: BaseException) -> str:
    message = str(exc) or type(exc).__name__
    return "error: " + _show(message, quote=False)


async def _run(
    handler: Callable[[argparse.Namespace, TextIO], Awaitable[int]],
    args: argparse.Namespace,
    out: TextIO,
) -> int:
    """Run ``handler``; SIGTERM cancels it (the stack shuts down in order)."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(handler(args, out))
    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        installed = True
    try:
        return await task
    except asyncio.CancelledError:
        if terminated:
            return EXIT_SIGTERM
        raise
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null, so the flush at exit is quiet."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except _ArgError as exc:
        sys.stderr.write(_error(exc) + "\n")
        return 2
    level = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}.get(args.verbose, TRACE)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = out or sys.stdout
    handler = {"info": cmd_info, "send": cmd_send, "listen": cmd_listen, "at": cmd_at}[args.cmd]
    try:
        return asyncio.run(_run(handler, args, out))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        if out is sys.stdout:
            _silence_stdout()
        return EXIT_BROKEN_PIPE
    except (_ArgError, ModemError, OSError, TimeoutError, pdu.PduError) as exc:
        sys.stderr.write(_error(exc) + "\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
