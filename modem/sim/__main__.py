"""Command line of the simulator.

Run a simulated module (until SIGINT/SIGTERM)::

    python -m modem.sim --pty /tmp/ttySIM0 --tcp 127.0.0.1:7000 --profile bg96 \\
        --control /tmp/sim.ctl [--baud 115200] [--pin 1234] [--seed 0]

Talk to a running one::

    python -m modem.sim deliver --control /tmp/sim.ctl [--from 2936] \\
        [--ucs2 | --binary HEX | --pdu HEX] [--include-sid start|end] [TEXT]
    python -m modem.sim sent --control /tmp/sim.ctl [--json]
    python -m modem.sim fault --control /tmp/sim.ctl NAME [ARGS...]
    python -m modem.sim status --control /tmp/sim.ctl
    python -m modem.sim storage --control /tmp/sim.ctl [SM|ME|MT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

from .control import ControlServer, control_request, parse_address
from .core import SimModem, SimTiming, check_fault, fault_help
from .endpoints import PtyEndpoint, TcpEndpoint
from .profiles import PROFILES

_CLIENT_COMMANDS = ("deliver", "sent", "fault", "status", "storage")


def _serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m modem.sim",
        description="Run a simulated cellular module (TS 27.005/27.007) on a pty and/or TCP. "
        f"Client commands: {', '.join(_CLIENT_COMMANDS)} (see --help of each).",
    )
    p.add_argument("--pty", metavar="PATH", help="symlink to publish the pty as (/tmp/ttySIM0)")
    p.add_argument("--tcp", metavar="HOST:PORT", help="listen on 127.0.0.1:PORT")
    p.add_argument("--profile", default="generic", choices=sorted(PROFILES))
    p.add_argument(
        "--baud",
        type=int,
        nargs="?",
        const=115200,
        default=None,
        metavar="N",
        help="pace output like a serial line at N baud (115200 if N is left out)",
    )
    p.add_argument("--control", metavar="ADDR", help="control socket: unix path or 127.0.0.1:PORT")
    p.add_argument("--pin", default=None, help="SIM PIN the module asks for")
    p.add_argument("--puk", default="12345678", help="SIM PUK (unblocks after 3 wrong PINs)")
    p.add_argument("--no-sim", action="store_true", help="no SIM inserted (+CME ERROR: 10)")
    p.add_argument(
        "--sim-busy",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds the SIM stays busy (+CME ERROR: 14) after each boot",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--cnma-timeout", type=float, default=None, help="seconds the network waits for +CNMA"
    )
    return p


def _client_parser(command: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"python -m modem.sim {command}",
        epilog=fault_help() if command == "fault" else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--control", metavar="ADDR", required=True)
    if command == "deliver":
        p.add_argument("--from", dest="sender", default="2936")
        g = p.add_mutually_exclusive_group()
        g.add_argument("--ucs2", action="store_true", help="UCS-2 text")
        g.add_argument("--gsm7", action="store_true", help="GSM 7-bit text (default if it fits)")
        g.add_argument("--binary", metavar="HEX", help="8-bit data")
        g.add_argument("--pdu", metavar="HEX", help="a complete SMS-DELIVER, SMSC field first")
        p.add_argument("--include-sid", choices=("start", "end"))
        p.add_argument("--sid", default=None)
        p.add_argument("--duplicate", action="store_true", help="the network delivers it twice")
        p.add_argument(
            "--class", dest="message_class", type=int, choices=range(4), help="TP-DCS message class"
        )
        p.add_argument("text", nargs="?", default=None)
    elif command == "sent":
        p.add_argument("--json", action="store_true", help="one JSON object a line")
    elif command == "fault":
        p.add_argument("name", help="the fault (see the list below)")
        p.add_argument("args", nargs="*", help="its arguments")
    elif command == "storage":
        p.add_argument("name", nargs="?", default="SM")
    return p


async def _serve(ns: argparse.Namespace) -> int:
    timing = SimTiming()
    if ns.cnma_timeout is not None:
        timing.cnma_timeout = ns.cnma_timeout
    modem = SimModem(
        ns.profile,
        pin=ns.pin,
        puk=ns.puk,
        sim_inserted=not ns.no_sim,
        sim_busy_time=ns.sim_busy,
        seed=ns.seed,
        timing=timing,
    )
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pty: PtyEndpoint | None = None
    tcp: TcpEndpoint | None = None
    ctl: ControlServer | None = None
    try:
        if ns.pty:
            pty = PtyEndpoint(modem, ns.pty, baud=ns.baud)
            pty.start()
            print(f"pty: {ns.pty} -> {pty.device}", flush=True)
        if ns.tcp:
            host, _, port = ns.tcp.rpartition(":")
            if host not in ("", "127.0.0.1", "localhost") or not port.isdigit():
                raise SystemExit("--tcp takes 127.0.0.1:PORT (loopback only)")
            tcp = TcpEndpoint(modem, host or "127.0.0.1", int(port), baud=ns.baud)
            await tcp.start()
            print(f"tcp: socket://{tcp.host}:{tcp.port}", flush=True)
        if ns.control:
            ctl = ControlServer(modem, ns.control)
            await ctl.start()
            print(f"control: {ctl.address}", flush=True)
        print(f"ready: profile {modem.profile.name}", flush=True)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if ctl is not None:
            await ctl.close()
        if tcp is not None:
            await tcp.close()
        if pty is not None:
            pty.close()
        modem.close()
    print("stopped", flush=True)
    return 0


def _print_sent(items: list[dict[str, Any]], as_json: bool) -> None:
    for item in items:
        if as_json:
            print(json.dumps(item, ensure_ascii=False))
        else:
            body = item.get("text")
            if body is None:
                body = "<8-bit " + str(item.get("data")) + ">"
            print(f"mr={item.get('mr')} to={item.get('recipient')} {body}")


async def _client(command: str, ns: argparse.Namespace) -> int:
    parse_address(ns.control)
    if command == "deliver":
        req: dict[str, Any] = {
            "op": "deliver",
            "sender": ns.sender,
            "include_sid": ns.include_sid,
            "sid": ns.sid,
            "duplicate": ns.duplicate,
            "message_class": ns.message_class,
        }
        if ns.pdu:
            req["pdu"] = ns.pdu
        elif ns.binary:
            req["hex"] = ns.binary
        else:
            req["text"] = ns.text or ""
            if ns.ucs2:
                req["encoding"] = "ucs2"
            elif ns.gsm7:
                req["encoding"] = "gsm7"
        print(json.dumps(await control_request(ns.control, req)))
    elif command == "sent":
        _print_sent(await control_request(ns.control, {"op": "sent"}), ns.json)
    elif command == "fault":
        await control_request(ns.control, {"op": "fault", "name": ns.name, "args": ns.args})
    elif command == "status":
        print(json.dumps(await control_request(ns.control, {"op": "status"})))
    elif command == "storage":
        for item in await control_request(ns.control, {"op": "storage", "name": ns.name}):
            print(json.dumps(item))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in _CLIENT_COMMANDS:
        command = args[0]
        parser = _client_parser(command)
        ns = parser.parse_args(args[1:])
        if command == "fault":
            try:
                check_fault(ns.name, ns.args)
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        try:
            return asyncio.run(_client(command, ns))
        except (OSError, RuntimeError, ValueError, TimeoutError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    ns = _serve_parser().parse_args(args)
    if not (ns.pty or ns.tcp):
        _serve_parser().error("give --pty PATH and/or --tcp 127.0.0.1:PORT")
    return asyncio.run(_serve(ns))


if __name__ == "__main__":
    sys.exit(main())
