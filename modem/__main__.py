"""Command line: ``python -m modem --port URL {info,send,listen,at}``.

``--port`` takes a serial device or pyserial URL (``/dev/ttyUSB2``,
``socket://127.0.0.1:PORT``, ``spy://...``) or ``sim://PROFILE`` (a simulated
module started in-process: generic, bg96, ec25, sim7600, sara-r410m).
``rfc2217://`` and ``loop://`` are refused with a clear error: they have no
file descriptor for the asyncio transport to wait on.

* ``info [--json]``: identity, SIM, registration, signal, storage use.
* ``send --to NUMBER [--binary | --ucs2] TEXT``: ``--binary`` takes TEXT as hex.
* ``listen [--json] [--demo] [--count N]``: every SMS as it arrives, stored
  ones first; one line each (JSON: the codec's ``to_json`` keys plus ``id``,
  the message identity for dedupe). Each is deleted from the module only
  after its line is written and flushed. ``--demo`` (sim only) delivers a
  few Twilio-style Commands.
* ``at COMMAND``: one raw command; prints the answer lines and the result.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from typing import Any, TextIO

import pdu

from . import commands as C
from . import timing
from .client import TRACE, AtClient
from .errors import CommandFailed, ModemError
from .session import Session, SessionConfig
from .sms import Inbound, ReceivedMessage, SmsService, StatusReportReceived

__all__ = ["inbound_json", "main"]


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


async def _open(args: argparse.Namespace) -> tuple[AtClient, Session]:
    client = AtClient.from_url(args.port, baudrate=args.baud)
    await client.connect()
    session = Session(client, SessionConfig(pin=args.pin))
    return client, session


async def cmd_info(args: argparse.Namespace, out: TextIO) -> int:
    client, session = await _open(args)
    try:
        await session.initialize()
        sig = await session.signal_quality(0)
        storage = await session.storage_status()
        operator: Any = None
        with contextlib.suppress(ModemError):
            operator = (await client.execute(C.cops_query())).name
        ident = session.identity
        info = {
            "manufacturer": ident.manufacturer,
            "model": ident.model,
            "revision": ident.revision,
            "imei": ident.imei,
            "imsi": ident.imsi,
            "iccid": ident.iccid,
            "profile": session.profile.name,
            "sim": session.pin_state.value if session.pin_state else None,
            "registration": {
                d: {
                    "stat": r.stat,
                    "registered": r.registered,
                    "lac": r.lac,
                    "ci": r.ci,
                    "act": r.act,
                }
                for d, r in session.registration.items()
            },
            "operator": operator,
            "signal": {"rssi": sig.rssi, "ber": sig.ber, "dbm": sig.dbm},
            "storage": {
                "mem": list(storage.mem),
                "used": list(storage.used),
                "total": list(storage.total),
            },
            "smsc": session.smsc,
        }
        if args.json:
            out.write(json.dumps(info) + "\n")
        else:
            for key, value in info.items():
                out.write(f"{key:13} {value}\n")
        return 0
    finally:
        session.close()
        await client.close()


async def cmd_send(args: argparse.Namespace, out: TextIO) -> int:
    client, session = await _open(args)
    content: str | bytes = args.text
    encoding = None
    if args.binary:
        content = bytes.fromhex(args.text)
        encoding = pdu.Alphabet.DATA8
    elif args.ucs2:
        encoding = pdu.Alphabet.UCS2

    async def no_consumer(item: Inbound) -> None:
        raise RuntimeError("send-only")

    service = SmsService(session, no_consumer)
    try:
        await session.initialize()
        result = await service.send(args.to, content, encoding=encoding)
        out.write(" ".join(str(mr) for mr in result.mrs) + "\n")
        return 0
    finally:
        service.close()
        session.close()
        await client.close()


DEMO_COMMANDS = ["ping", "status", "DC0123456789abcdef0123456789abcdef reboot", "led on"]


async def cmd_listen(args: argparse.Namespace, out: TextIO) -> int:
    client, session = await _open(args)
    seen = 0
    done = asyncio.Event()

    async def consumer(item: Inbound) -> None:
        nonlocal seen
        line = json.dumps(inbound_json(item)) if args.json else _line(item)
        out.write(line + "\n")
        out.flush()  # written and flushed: only now may the module delete it
        seen += 1
        if args.count and seen >= args.count:
            done.set()

    service = SmsService(session, consumer)
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(session.run()), tg.create_task(service.run())]
            if args.demo:
                sim = client.sim_modem
                if sim is None:
                    raise SystemExit("--demo needs --port sim://PROFILE")
                await session.ready.wait()
                for text in DEMO_COMMANDS:
                    sim.deliver(text, sender="2936")
                sim.deliver(b"\x01\x02\x03", sender="2936", encoding="8bit")
            await done.wait()
            for t in tasks:
                t.cancel()
    finally:
        service.close()
        session.close()
        await client.close()
    return 0


async def cmd_at(args: argparse.Namespace, out: TextIO) -> int:
    client = AtClient.from_url(args.port, baudrate=args.baud)
    await client.connect()
    try:
        await client.sync()
        cmd = C.raw(args.command, timeout=args.timeout)
        response = await client.run(cmd)
        for line in response.lines:
            out.write(line + "\n")
        out.write(response.final.line + "\n")
        try:
            response.raise_for_result(cmd.text)
        except CommandFailed as exc:
            sys.stderr.write(f"{exc}\n")
            return 1
        return 0
    finally:
        await client.close()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m modem", description=__doc__.splitlines()[0])
    p.add_argument("--port", required=True, help="pyserial URL or sim://PROFILE")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--pin", default=None, help="SIM PIN, if the SIM asks for one")
    p.add_argument(
        "-v", "--verbose", action="count", default=0, help="-v info, -vv debug, -vvv raw"
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    info = sub.add_parser("info", help="identity, SIM, registration, signal, storage")
    info.add_argument("--json", action="store_true")
    send = sub.add_parser("send", help="send one SMS (multi-part when needed)")
    send.add_argument("--to", required=True)
    kind = send.add_mutually_exclusive_group()
    kind.add_argument("--binary", action="store_true", help="TEXT is hex, sent as 8-bit data")
    kind.add_argument("--ucs2", action="store_true")
    send.add_argument("text", metavar="TEXT")
    listen = sub.add_parser("listen", help="print every SMS as it arrives")
    listen.add_argument("--json", action="store_true")
    listen.add_argument("--demo", action="store_true", help="sim only: deliver demo Commands")
    listen.add_argument("--count", type=int, default=0, help="stop after N messages")
    at = sub.add_parser("at", help="send one AT command")
    at.add_argument("command", metavar="COMMAND")
    at.add_argument("--timeout", type=float, default=timing.DEFAULT_COMMAND_TIMEOUT)
    return p


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}.get(args.verbose, TRACE)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = out or sys.stdout
    handler = {"info": cmd_info, "send": cmd_send, "listen": cmd_listen, "at": cmd_at}[args.cmd]
    try:
        return asyncio.run(handler(args, out))
    except KeyboardInterrupt:
        return 130
    except (ModemError, OSError, TimeoutError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
