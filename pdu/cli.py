"""``python -m pdu``: decode and encode SMS PDUs from the command line.

``decode [--json] [--no-smsc] HEX... | -`` prints a report per PDU (or one
JSON object per line with the keys of :data:`pdu.JSON_KEYS`); ``-`` reads one
PDU per line from stdin. An input that does not decode prints an error line
(``{"input": ..., "error": ...}`` with ``--json``), the others still decode,
and the exit status is 1. Bad usage exits 2. A stdin line is read at most
:data:`MAX_INPUT_LINE` characters at a time (memory stays bounded on an
endless line); a longer line is skipped with an error, and an error line
echoes at most :data:`MAX_ECHO` characters of the input.

``encode --to NUMBER [--binary | --ucs2] [--srr] [--json] TEXT`` prints one
line per part: the hex ``AT+CMGS`` takes in PDU mode (SMSC field ``00``
first), a space and the TPDU length for ``AT+CMGS=<length>``.

This module is the codec's only edge with I/O; no traceback is ever printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TextIO

from .address import Address
from .dcs import DCS_INFO, Alphabet
from .errors import PduError
from .jsonview import to_json
from .segment import submit_parts
from .status import status_category, status_meaning
from .timestamps import SCTS_UNKNOWN, EnhancedValidity
from .tpdu import Deliver, Message, Submit, cmgs_pdu, decode, encode_user_data
from .udh import (
    IEI_CONCAT8,
    IEI_CONCAT16,
    IEI_LOCKING_SHIFT,
    IEI_PORTS8,
    IEI_PORTS16,
    IEI_SINGLE_SHIFT,
    InformationElement,
    UserData,
)

_TON = {
    0: "unknown",
    1: "international",
    2: "national",
    3: "network specific",
    4: "subscriber",
    5: "alphanumeric",
    6: "abbreviated",
    7: "reserved",
}
_NPI = {
    0: "unknown",
    1: "ISDN/E.164",
    3: "data X.121",
    4: "telex",
    8: "national",
    9: "private",
    10: "ERMES",
}
_CONTROL = {i: f"\\x{i:02x}" for i in range(32)} | {10: "\\n", 13: "\\r", 9: "\\t"}

#: Longest stdin line taken as a PDU. The longest PDU line a module prints is
#: 376 hex digits (SMSC field 12 octets + TPDU 176 octets, TS 27.005 §3.1);
#: whitespace inside is allowed, so ten times that.
MAX_INPUT_LINE = 4096

#: Characters of a bad input echoed in its error line.
MAX_ECHO = 80


class _Overlong:
    """A stdin line longer than MAX_INPUT_LINE: its start and its length."""

    __slots__ = ("head", "length")

    def __init__(self, head: str, length: int) -> None:
        self.head = head
        self.length = length


def _echo(item: str, limit: int = MAX_ECHO) -> str:
    """``item`` for an error line: at most ``limit`` characters of it."""
    if len(item) <= limit:
        return item
    return f"{item[:limit]}... ({len(item)} characters)"


def _addr(a: Address | None) -> str:
    if a is None:
        return "(none)"
    kind = f"{_TON.get(a.ton, '?')}, {_NPI.get(a.npi, f'plan {a.npi}')}"
    shown = str(a) if str(a) else "(empty)"
    return f"{shown}  ({kind})"


def _pid(pid: int) -> str:
    """TS 23.040 §9.2.3.9, the common values."""
    if pid == 0:
        return "0x00 (default: SME-to-SME short message)"
    if 0x41 <= pid <= 0x47:
        return f"{pid:#04x} (replace short message type {pid - 0x40})"
    if pid == 0x40:
        return "0x40 (short message type 0: acknowledge, do not store)"
    if pid == 0x7F:
        return "0x7f ((U)SIM data download)"
    if pid == 0x7C:
        return "0x7c (ANSI-136 R-DATA)"
    if pid & 0xE0 == 0x20:
        return f"{pid:#04x} (telematic interworking, device type {pid & 0x1F:#04x})"
    return f"{pid:#04x}"


def _ie(ie: InformationElement) -> str:
    d = ie.data
    if ie.iei == IEI_CONCAT8 and len(d) == 3:
        return f"concatenation 8-bit ref {d[0]}, part {d[2]} of {d[1]}"
    if ie.iei == IEI_CONCAT16 and len(d) == 4:
        return f"concatenation 16-bit ref {(d[0] << 8) | d[1]}, part {d[3]} of {d[2]}"
    if ie.iei == IEI_PORTS16 and len(d) == 4:
        return f"ports 16-bit: source {(d[2] << 8) | d[3]}, destination {(d[0] << 8) | d[1]}"
    if ie.iei == IEI_PORTS8 and len(d) == 2:
        return f"ports 8-bit: source {d[1]}, destination {d[0]}"
    if ie.iei == IEI_SINGLE_SHIFT and len(d) == 1:
        return f"national language single shift {d[0]}"
    if ie.iei == IEI_LOCKING_SHIFT and len(d) == 1:
        return f"national language locking shift {d[0]}"
    return f"IEI {ie.iei:#04x}, {len(d)} octets: {d.hex().upper() or '(empty)'}"


def _vp(vp: object) -> str:
    if vp is None:
        return "(none)"
    if isinstance(vp, EnhancedValidity):
        return f"enhanced {vp.octets.hex().upper()} (period {vp.period})"
    if hasattr(vp, "isoformat"):
        return f"absolute {vp.isoformat(sep=' ')}"
    return f"relative {vp}"


def _user_data_lines(ud: UserData | None, dcs_value: int) -> list[tuple[str, str]]:
    if ud is None:
        return [("User data", "(none)")]
    rows = []
    if ud.header:
        for ie in ud.header:
            rows.append(("UDH", _ie(ie)))
    try:
        udl = encode_user_data(ud, dcs_value)[0]
        enc = alphabet_of(dcs_value)
        unit = "septets" if enc is Alphabet.GSM7 else "octets"
        rows.append(("TP-UDL", f"{udl} {unit}"))
    except PduError:
        pass
    if ud.text is not None:
        rows.append(("Text", ud.text.translate(_CONTROL)))
    if ud.data is not None:
        rows.append(("Data", ud.data.hex().upper() or "(empty)"))
    return rows


def alphabet_of(dcs_value: int) -> Alphabet:
    """Alphabet of a DCS value."""
    return DCS_INFO[dcs_value & 0xFF][0]


def _stamp(t: datetime) -> str:
    if t == SCTS_UNKNOWN:
        return "unknown (not a date on the wire)"
    return t.isoformat(sep=" ")


def report(msg: Message) -> str:
    """A readable multi-line report, like online PDU decoders print."""
    rows: list[tuple[str, str]] = []
    if isinstance(msg, Deliver):
        rows.append(("Type", "SMS-DELIVER (TS 23.040 §9.2.2.1)"))
        rows.append(("SMSC", _addr(msg.smsc)))
        rows.append(("Sender", _addr(msg.tp_oa)))
        rows.append(("Timestamp", _stamp(msg.tp_scts)))
        flags = [("more messages waiting" if msg.tp_mms else "no more messages")]
        if msg.tp_sri:
            flags.append("status report indication")
        if msg.tp_rp:
            flags.append("reply path")
        if msg.tp_lp:
            flags.append("loop prevention")
        rows.append(("Flags", ", ".join(flags)))
        rows.append(("TP-PID", _pid(msg.tp_pid)))
        rows.append(("TP-DCS", f"{msg.tp_dcs.value:#04x} ({msg.tp_dcs.describe()})"))
        cls = msg.tp_dcs.message_class
        rows.append(("Class", "none" if cls is None else str(cls)))
        rows += _user_data_lines(msg.tp_ud, msg.tp_dcs.value)
    elif isinstance(msg, Submit):
        rows.append(("Type", "SMS-SUBMIT (TS 23.040 §9.2.2.2)"))
        rows.append(("SMSC", _addr(msg.smsc)))
        rows.append(("Recipient", _addr(msg.tp_da)))
        rows.append(("TP-MR", str(msg.tp_mr)))
        rows.append(("Validity", _vp(msg.tp_vp)))
        flags = []
        if msg.tp_srr:
            flags.append("status report requested")
        if msg.tp_rd:
            flags.append("reject duplicates")
        if msg.tp_rp:
            flags.append("reply path")
        rows.append(("Flags", ", ".join(flags) or "(none)"))
        rows.append(("TP-PID", _pid(msg.tp_pid)))
        rows.append(("TP-DCS", f"{msg.tp_dcs.value:#04x} ({msg.tp_dcs.describe()})"))
        cls = msg.tp_dcs.message_class
        rows.append(("Class", "none" if cls is None else str(cls)))
        rows += _user_data_lines(msg.tp_ud, msg.tp_dcs.value)
    else:
        rows.append(("Type", "SMS-STATUS-REPORT (TS 23.040 §9.2.2.3)"))
        rows.append(("SMSC", _addr(msg.smsc)))
        rows.append(("Recipient", _addr(msg.tp_ra)))
        rows.append(("TP-MR", str(msg.tp_mr)))
        rows.append(("Timestamp", _stamp(msg.tp_scts)))
        rows.append(("Discharge", _stamp(msg.tp_dt)))
        st = msg.tp_st
        rows.append(("Status", f"{st:#04x} {status_meaning(st)} ({status_category(st).value})"))
        if msg.tp_pid is not None:
            rows.append(("TP-PID", _pid(msg.tp_pid)))
        if msg.tp_dcs is not None:
            rows.append(("TP-DCS", f"{msg.tp_dcs.value:#04x} ({msg.tp_dcs.describe()})"))
        if msg.tp_ud is not None:
            dv = msg.tp_dcs.value if msg.tp_dcs is not None else 0
            rows += _user_data_lines(msg.tp_ud, dv)
    width = max(len(k) for k, _ in rows) + 2
    return "\n".join(f"{k + ':':<{width}}{v}" for k, v in rows)


def _stdin_lines(stdin: TextIO) -> Iterator[str | _Overlong]:
    """Lines of ``stdin``, each read at most MAX_INPUT_LINE characters at a time."""
    while True:
        raw = stdin.readline(MAX_INPUT_LINE + 1)
        if not raw:
            return
        if len(raw) > MAX_INPUT_LINE and not raw.endswith("\n"):
            length = len(raw)
            while True:  # skip the rest of the line without keeping it
                rest = stdin.readline(MAX_INPUT_LINE)
                length += len(rest.rstrip("\n"))
                if not rest or rest.endswith("\n"):
                    break
            yield _Overlong(raw[:MAX_ECHO], length)
            continue
        line = raw.strip()
        if line:
            yield line


def _inputs(items: Sequence[str], stdin: TextIO) -> Iterator[str | _Overlong]:
    for item in items:
        if item == "-":
            yield from _stdin_lines(stdin)
        else:
            yield item


def _json_line(obj: dict[str, Any], out: TextIO) -> str:
    enc = (getattr(out, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    return json.dumps(obj, ensure_ascii=bool(enc) and enc != "utf8")


def _cmd_decode(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> int:
    status = 0
    first = True
    for item in _inputs(args.pdu, stdin):
        try:
            if isinstance(item, _Overlong):
                status = 1
                why = f"line of {item.length} characters is longer than {MAX_INPUT_LINE}"
                shown = f"{item.head}..."
                if args.json:
                    out.write(_json_line({"input": shown, "error": why}, out) + "\n")
                else:
                    out.write(("" if first else "\n") + f"error: {shown}: {why}\n")
                continue
            msg = decode(item, smsc=not args.no_smsc)
            if args.json:
                out.write(_json_line(to_json(msg), out) + "\n")
            else:
                out.write(("" if first else "\n") + report(msg) + "\n")
        except Exception as exc:  # the CLI never shows a traceback
            status = 1
            why = str(exc) if isinstance(exc, PduError) else f"internal error: {exc!r}"
            why = _echo(why, 4 * MAX_ECHO)
            shown = _echo(item) if isinstance(item, str) else "?"
            if args.json:
                out.write(_json_line({"input": shown, "error": why}, out) + "\n")
            else:
                out.write(("" if first else "\n") + f"error: {shown}: {why}\n")
        finally:
            first = False
    return status


def _cmd_encode(args: argparse.Namespace, parser: argparse.ArgumentParser, out: TextIO) -> int:
    content: str | bytes = args.text
    encoding = None
    if args.binary:
        try:
            content = bytes.fromhex("".join(args.text.split()))
        except ValueError:
            parser.error("--binary takes the data as hex")
        encoding = Alphabet.DATA8
    elif args.ucs2:
        encoding = Alphabet.UCS2
    try:
        parts = submit_parts(
            args.to,
            content,
            encoding=encoding,
            srr=args.srr,
            ref=args.ref,
            message_class=args.message_class,
        )
        lines = []
        for part in parts:
            hexstr, length = cmgs_pdu(part)
            if args.json:
                lines.append(_json_line({"pdu": hexstr, "length": length}, out))
            else:
                lines.append(f"{hexstr} {length}")
    except PduError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    out.write("\n".join(lines) + "\n")
    return 0


def _reference(value: str) -> int:
    """``--ref``: an 8-bit concatenation reference (TS 23.040 §9.2.3.24.1); a
    bad value is a usage error (exit 2), not a failed input."""
    try:
        ref = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if not 0 <= ref <= 0xFF:
        raise argparse.ArgumentTypeError(f"{ref} is not 0-255")
    return ref


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    p = argparse.ArgumentParser(prog="python -m pdu", description="SMS PDU codec (3GPP TS 23.040)")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("decode", help="decode PDUs given as hex")
    d.add_argument("--json", action="store_true", help="one JSON object per input")
    d.add_argument("--no-smsc", action="store_true", help="inputs are bare TPDUs")
    d.add_argument("pdu", nargs="+", metavar="HEX", help="PDU in hex, or - for one per stdin line")
    e = sub.add_parser("encode", help="build SMS-SUBMIT PDUs for AT+CMGS")
    e.add_argument("--to", required=True, help="recipient: +447..., 2936, 000...")
    g = e.add_mutually_exclusive_group()
    g.add_argument("--binary", action="store_true", help="TEXT is hex data, sent as 8-bit")
    g.add_argument("--ucs2", action="store_true", help="force UCS-2")
    e.add_argument("--srr", action="store_true", help="request a status report")
    e.add_argument("--ref", type=_reference, default=0, help="concatenation reference (0-255)")
    e.add_argument("--class", dest="message_class", type=int, choices=range(4), default=None)
    e.add_argument("--json", action="store_true", help='{"pdu":..., "length":...} per line')
    e.add_argument("text", metavar="TEXT")
    return p


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 an input failed, 2 usage)."""
    parser = build_parser()
    if stdout is None:
        stdout = sys.stdout
        _reconfigure(stdout, "backslashreplace")
    if stdin is None:
        stdin = sys.stdin
        _reconfigure(stdin, "replace")  # undecodable bytes become a bad hex line
    try:
        args = parser.parse_args(argv)
        if args.command == "decode":
            return _cmd_decode(args, stdin, stdout)
        return _cmd_encode(args, parser, stdout)
    except SystemExit as exc:  # argparse usage errors and --help
        return exc.code if isinstance(exc.code, int) else 2
    except BrokenPipeError:
        # The reader went away (| head): silence the flush at exit too.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # last resort: never a traceback
        with contextlib.suppress(Exception):
            sys.stderr.write(f"error: internal error: {exc!r}\n")
        return 1


def _reconfigure(stream: TextIO, errors: str) -> None:
    reconf = getattr(stream, "reconfigure", None)
    if reconf is not None:
        with contextlib.suppress(OSError, ValueError):
            reconf(errors=errors)


__all__ = ["build_parser", "main", "report"]
