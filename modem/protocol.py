"""Sans-I/O AT protocol core (ITU-T V.250, 3GPP TS 27.007 / 27.005).

:class:`AtProtocol` is fed the bytes read from the module and returns events;
it owns no port, no task and no clock (the style of h11). The asyncio client
(:mod:`modem.client`) tells it which command is in flight (:meth:`start`) so
it can tell a response line from an unsolicited result code:

* a line starting with one of the in-flight request's prefixes is an
  :class:`Intermediate` line of the response; for requests whose answer is a
  header plus a PDU line (``+CMGR``, ``+CMGL``, TS 27.005 §3.4.2/§3.4.3) the
  hex line after a header belongs to the response too;
* a line equal to the command text is its :class:`Echo` (with ATE1);
* a final result code (V.250 §5.7.1; verbose or, when enabled, numeric V0)
  ends the request: :class:`FinalResult`; the call progress results (``NO
  CARRIER``, ``BUSY``, ``NO ANSWER``, ``NO DIALTONE``) only for ``ATD``/``ATA``/
  ``ATO``, else they are :class:`Urc` (an unanswered call that ended);
* ``> `` (or ``>`` and a line end) while the request waits for one is a
  :class:`Prompt` - no line ending needed;
* anything else that looks like an unsolicited result code is a :class:`Urc`,
  even in the middle of a response (a ``+CMTI`` inside a ``+CMGL`` listing);
  ``+CMT:``, ``+CDS:`` and ``+CBM:`` are two-line URCs whose second line (the
  PDU) is carried in :attr:`Urc.pdu`;
* everything else (noise, a final result nobody waits for, an over-long line)
  is :class:`Discarded`, with the reason, and logged.

The line buffer is bounded by ``max_line``; longer lines are dropped up to the
next line end. The core never raises on device input.
"""

from __future__ import annotations

import enum
import logging
import re
from dataclasses import dataclass

from .errors import CmeErrorCode, CmsErrorCode, is_number

__all__ = [
    "CALL_RESULTS",
    "DEFAULT_URC_PREFIXES",
    "TWO_LINE_URCS",
    "AtProtocol",
    "DiscardReason",
    "Discarded",
    "Echo",
    "Event",
    "FinalResult",
    "Intermediate",
    "Prompt",
    "Request",
    "ResultKind",
    "Urc",
]

log = logging.getLogger(__name__)

#: Maximum accepted line length in bytes. The longest legitimate line is a
#: PDU line: SMSC (12 octets) + TPDU (<= 176 octets) as hex = 376 characters.
MAX_LINE = 1024

#: Two-line URCs (TS 27.005 §3.4.1, PDU mode): header line, then the PDU line.
TWO_LINE_URCS: tuple[str, ...] = ("+CMT:", "+CDS:", "+CBM:")

#: Known unsolicited result codes (3GPP and the module manuals we support).
DEFAULT_URC_PREFIXES: tuple[str, ...] = (
    "+CMTI:",
    "+CMT:",
    "+CDSI:",
    "+CDS:",
    "+CBMI:",
    "+CBM:",
    "+CREG:",
    "+CGREG:",
    "+CEREG:",
    "+C5GREG:",
    "+CRING:",
    "RING",
    "+CLIP:",
    "+CUSD:",
    "+CIEV:",
    "+CPIN:",
    "+CFUN:",
    "+CTZV:",
    "+CTZE:",
    "+CTZEU:",
    "+QIND:",
    "+QUSIM:",
    "+QNITZ:",
    "+UUSOCL:",
    "+UMWI:",
    "+CSQN:",
    "^RSSI:",
    "^HCSQ:",
    "^MODE:",
    "^BOOT:",
    "^SYSSTART",
    "RDY",
    "SMS DONE",
    "SMS Ready",
    "Call Ready",
    "PB DONE",
    "POWERED DOWN",
    "NORMAL POWER DOWN",
    "*ATREADY:",
)


class ResultKind(enum.Enum):
    """Final result codes (V.250 §5.7.1, TS 27.007 §9.2, TS 27.005 §3.2.5)."""

    OK = "OK"
    CONNECT = "CONNECT"
    ERROR = "ERROR"
    CME_ERROR = "+CME ERROR"
    CMS_ERROR = "+CMS ERROR"
    NO_CARRIER = "NO CARRIER"
    BUSY = "BUSY"
    NO_ANSWER = "NO ANSWER"
    NO_DIALTONE = "NO DIALTONE"

    @property
    def success(self) -> bool:
        return self in (ResultKind.OK, ResultKind.CONNECT)


#: V.250 Table 1: numeric (ATV0) forms. 2 (RING) is unsolicited, not final.
_NUMERIC: dict[str, ResultKind] = {
    "0": ResultKind.OK,
    "1": ResultKind.CONNECT,
    "3": ResultKind.NO_CARRIER,
    "4": ResultKind.ERROR,
    "6": ResultKind.NO_DIALTONE,
    "7": ResultKind.BUSY,
    "8": ResultKind.NO_ANSWER,
}

_VERBOSE: dict[str, ResultKind] = {
    "OK": ResultKind.OK,
    "ERROR": ResultKind.ERROR,
    "NO CARRIER": ResultKind.NO_CARRIER,
    "BUSY": ResultKind.BUSY,
    "NO ANSWER": ResultKind.NO_ANSWER,
    "NO DIALTONE": ResultKind.NO_DIALTONE,
    "NO DIAL TONE": ResultKind.NO_DIALTONE,
}

#: Call progress results (V.250 §5.7.1, §6.3): final only for a command that
#: dials, answers or goes on line. Otherwise unsolicited: a call to the SIM's
#: number that the caller ends before anyone answers leaves RING ... NO CARRIER
#: (SIMCom SIM800, Quectel EC2x AT manuals), in the middle of any command.
CALL_RESULTS: frozenset[ResultKind] = frozenset(
    {ResultKind.NO_CARRIER, ResultKind.BUSY, ResultKind.NO_ANSWER, ResultKind.NO_DIALTONE}
)
_CALL_COMMAND = re.compile(r"AT\s*[DAO]", re.IGNORECASE)

_HEX_LINE = re.compile(r"[0-9A-Fa-f]+")
#: One line with its end (CR or LF), or the unterminated rest of a chunk.
_PIECE = re.compile(rb"[^\r\n]*[\r\n]|[^\r\n]+")
_EOL = b"\r\n"
#: Bytes the line discipline drops: NUL and the C0 controls but TAB, CR, LF
#: and Ctrl-Z (CR and LF end lines; they never reach the buffer).
_NOISE = bytes(b for b in range(0x20) if b not in (0x09, 0x0A, 0x0D, 0x1A))
#: What a line loses at its edges: white space and undecodable bytes (0x80-0xFF).
_EDGE = " \t\ufffd"
#: The same for the prompt, on raw bytes.
_EDGE_BYTES = b" \t" + bytes(range(0x80, 0x100))
_URC_SHAPE = re.compile(r"[+^*][A-Z0-9_]{2,16}:")


@dataclass(frozen=True, slots=True)
class Request:
    """What the core must know about the command in flight.

    ``line`` is the command line as sent (without CR); ``prefixes`` the
    response prefixes (``"+CSQ"``) that mark its intermediate lines;
    ``raw`` means the answer has no prefix (``ATI``, ``AT+CGSN``): every line
    that is not a known URC belongs to the response; ``pdu_lines`` means a hex
    line after a header is part of the response (``+CMGR``/``+CMGL``);
    ``prompt`` means a ``> `` prompt is expected; ``numeric`` accepts V0
    numeric result codes (used while resyncing a module of unknown state).
    """

    line: str
    prefixes: tuple[str, ...] = ()
    raw: bool = False
    pdu_lines: bool = False
    prompt: bool = False
    numeric: bool = False


@dataclass(frozen=True, slots=True)
class Echo:
    """The module echoed the command line (or the PDU) back (ATE1)."""

    line: str


@dataclass(frozen=True, slots=True)
class Intermediate:
    """A line of the in-flight command's response."""

    line: str


@dataclass(frozen=True, slots=True)
class Prompt:
    """The ``> `` prompt (TS 27.005 §3.5.1): send the PDU and Ctrl-Z now."""


@dataclass(frozen=True, slots=True)
class FinalResult:
    """A final result code. ``code`` is set for +CME/+CMS ERROR.

    ``code`` is the enum member, a raw int for an unknown number, or None when
    the module answered a text the table does not know (``text`` has it).
    """

    kind: ResultKind
    line: str
    code: CmeErrorCode | CmsErrorCode | int | None = None
    text: str = ""

    @property
    def success(self) -> bool:
        return self.kind.success


@dataclass(frozen=True, slots=True)
class Urc:
    """An unsolicited result code; ``pdu`` is the second line of +CMT/+CDS/+CBM."""

    line: str
    pdu: str | None = None

    @property
    def name(self) -> str:
        """``"+CMTI"``, ``"RDY"``...: the part before the colon."""
        return self.line.split(":", 1)[0].strip()

    @property
    def args(self) -> str:
        """The part after the colon, stripped (empty when there is none)."""
        parts = self.line.split(":", 1)
        return parts[1].strip() if len(parts) == 2 else ""


class DiscardReason(enum.Enum):
    NOISE = "noise"
    STRAY_RESULT = "stray final result"
    OVERLONG = "over-long line"
    STRAY_PROMPT = "stray prompt"


@dataclass(frozen=True, slots=True)
class Discarded:
    """Input the core dropped (logged too). ``data`` is a bounded preview."""

    reason: DiscardReason
    data: str = ""


Event = Echo | Intermediate | Prompt | FinalResult | Urc | Discarded


def parse_final(line: str, *, numeric: bool = False) -> FinalResult | None:
    """The final result code ``line`` stands for, or None (V.250 §5.7.1)."""
    if line in _VERBOSE:
        return FinalResult(_VERBOSE[line], line)
    if line.startswith("CONNECT"):
        return FinalResult(ResultKind.CONNECT, line, text=line[7:].strip())
    for prefix, kind, table in (
        ("+CME ERROR:", ResultKind.CME_ERROR, CmeErrorCode),
        ("+CMS ERROR:", ResultKind.CMS_ERROR, CmsErrorCode),
    ):
        if line.startswith(prefix):
            payload = line[len(prefix) :].strip()
            code = table.parse(payload)
            if isinstance(code, CmeErrorCode | CmsErrorCode):
                text = code.text if is_number(payload) else payload
            else:
                text = payload
            return FinalResult(kind, line, code, text)
    if numeric and line in _NUMERIC:
        return FinalResult(_NUMERIC[line], line)
    return None


@dataclass
class _State:
    request: Request | None = None
    echo_pending: bool = False
    pdu_echo: str | None = None
    after_header: bool = False  # last response line was a +CMGR/+CMGL header
    urc_header: str | None = None  # first line of a two-line URC
    prompt_seen: bool = False
    skip_prompt_tail: bool = False
    overlong: bool = False


class AtProtocol:
    """Byte stream in, events out. See the module docstring.

    >>> p = AtProtocol()
    >>> p.start(Request("AT+CSQ", ("+CSQ",)))
    >>> p.feed(b"\\r\\n+CSQ: 20,99\\r\\n\\r\\nOK\\r\\n")  # doctest: +NORMALIZE_WHITESPACE
    [Intermediate(line='+CSQ: 20,99'), FinalResult(kind=<ResultKind.OK: 'OK'>,
     line='OK', code=None, text='')]
    """

    def __init__(
        self,
        *,
        max_line: int = MAX_LINE,
        urc_prefixes: tuple[str, ...] = DEFAULT_URC_PREFIXES,
        two_line_urcs: tuple[str, ...] = TWO_LINE_URCS,
        numeric_results: bool = False,
    ) -> None:
        self.max_line = max_line
        self.urc_prefixes = urc_prefixes
        self.two_line_urcs = two_line_urcs
        self.numeric_results = numeric_results
        self._buf = bytearray()
        self._s = _State()

    # -- command bookkeeping -------------------------------------------------

    @property
    def request(self) -> Request | None:
        """The request in flight, or None."""
        return self._s.request

    @property
    def buffered(self) -> int:
        """Bytes held in the partial-line buffer (bounded by ``max_line``)."""
        return len(self._buf)

    def start(self, request: Request) -> None:
        """Mark ``request`` as in flight (call just before writing it)."""
        self._s.request = request
        self._s.echo_pending = True
        self._s.pdu_echo = None
        self._s.after_header = False
        self._s.prompt_seen = False

    def sent_pdu(self, hex_pdu: str) -> None:
        """The PDU was written after the prompt; its echo (ATE1) is expected."""
        self._s.pdu_echo = hex_pdu.upper()

    def abort(self) -> None:
        """Forget the request in flight (it timed out or was cancelled)."""
        self._s.request = None
        self._s.echo_pending = False
        self._s.pdu_echo = None
        self._s.after_header = False

    def reset(self) -> None:
        """Forget everything, including partial input (after a reconnect)."""
        self._buf.clear()
        self._s = _State()

    # -- input -----------------------------------------------------------------

    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data``; return the events it completes, in order.

        Line by line: a piece up to its line end is cleaned and appended in one
        step. The byte-by-byte path (:meth:`_feed_bytes`, the reference; a
        hypothesis test holds the two equal) takes over for a piece where a
        prompt may show, where a prompt's tail is being skipped, or where an
        over-long line is being dropped.
        """
        events: list[Event] = []
        buf = self._buf
        for m in _PIECE.finditer(data):
            piece = m.group()
            s = self._s
            if s.skip_prompt_tail or s.overlong:
                self._feed_bytes(piece, events)
                continue
            req = s.request
            if (
                req is not None
                and req.prompt
                and not s.prompt_seen
                and (b">" in piece or b">" in buf)
            ):
                self._feed_bytes(piece, events)
                continue
            end = piece[-1] in _EOL
            text = piece[:-1] if end else piece
            if text:
                buf += text.translate(None, _NOISE)
                if len(buf) > self.max_line:
                    preview = self._decode(buf[: min(40, self.max_line + 1)])
                    log.warning(
                        "dropping over-long line (> %d bytes): %r...", self.max_line, preview
                    )
                    events.append(Discarded(DiscardReason.OVERLONG, preview))
                    buf.clear()
                    s.overlong = not end
                    continue
            if end and buf:
                line = self._decode(buf)
                buf.clear()
                if line:
                    self._line(line, events)
        return events

    def _feed_bytes(self, data: bytes, events: list[Event]) -> None:
        """The byte-by-byte reference of :meth:`feed`."""
        s = self._s
        buf = self._buf
        for byte in data:
            if s.skip_prompt_tail:
                if byte in b" \r\n":
                    continue
                s.skip_prompt_tail = False
            if byte in (0x0D, 0x0A):
                if s.overlong:
                    s.overlong = False
                    buf.clear()
                    continue
                if buf:
                    line = self._decode(buf)
                    buf.clear()
                    if line:
                        self._line(line, events)
                continue
            if s.overlong:
                continue
            if byte == 0 or (byte < 0x20 and byte not in (0x09, 0x1A)):
                continue  # noise: NUL and control bytes carry nothing in AT text
            buf.append(byte)
            if len(buf) > self.max_line:
                preview = self._decode(buf[:40])
                log.warning("dropping over-long line (> %d bytes): %r...", self.max_line, preview)
                events.append(Discarded(DiscardReason.OVERLONG, preview))
                buf.clear()
                s.overlong = True
                continue
            if byte in (0x3E, 0x20) and self._prompt_in_buffer():
                buf.clear()
                s.prompt_seen = True
                s.skip_prompt_tail = True
                events.append(Prompt())

    @staticmethod
    def _decode(raw: bytes | bytearray) -> str:
        """A line as text. Bytes 0x80-0xFF at either edge are dropped: V.250
        text is IA5 (§5.1), so they are line noise - 0xFF from a UART that
        glitched at power-up or a USB re-enumeration, glued to ``RDY`` or
        ``OK`` - and would hide the line. Inside a line they stay (U+FFFD):
        a damaged line is still told as damaged."""
        return bytes(raw).decode("ascii", "replace").replace("\x1a", "").strip(_EDGE)

    def _prompt_in_buffer(self) -> bool:
        s = self._s
        req = s.request
        if req is None or not req.prompt or s.prompt_seen:
            return False
        return bytes(self._buf).strip(_EDGE_BYTES) == b">"

    def _is_urc(self, line: str) -> bool:
        return line.startswith(self.urc_prefixes)

    def _line(self, line: str, events: list[Event]) -> None:
        s = self._s
        req = s.request
        # second line of a two-line URC
        if s.urc_header is not None:
            header, s.urc_header = s.urc_header, None
            final = parse_final(line, numeric=self._numeric())
            if final is None and not self._is_urc(line):
                events.append(Urc(header, line))
                return
            log.warning("two-line URC %r lost its second line", header)
            events.append(Urc(header, None))
        if line.startswith(self.two_line_urcs) and not (
            req is not None and line.startswith(req.prefixes)
        ):
            s.urc_header = line
            return
        if req is None:
            final = parse_final(line, numeric=self.numeric_results)
            if final is not None and final.kind in CALL_RESULTS:
                events.append(Urc(line))
            elif final is not None:
                log.warning("stray final result with no command in flight: %r", line)
                events.append(Discarded(DiscardReason.STRAY_RESULT, line))
            elif line == ">":
                events.append(Discarded(DiscardReason.STRAY_PROMPT, line))
            elif self._is_urc(line) or _URC_SHAPE.match(line):
                events.append(Urc(line))
            else:
                log.info("noise with no command in flight: %r", line[:80])
                events.append(Discarded(DiscardReason.NOISE, line[:80]))
            return
        # echo of the command line or of the PDU
        if s.echo_pending and line.upper() == req.line.strip().upper():
            s.echo_pending = False
            events.append(Echo(line))
            return
        if s.pdu_echo is not None and line.upper() == s.pdu_echo:
            s.pdu_echo = None
            events.append(Echo(line))
            return
        final = parse_final(line, numeric=self._numeric())
        if final is not None and final.kind in CALL_RESULTS and not _CALL_COMMAND.match(req.line):
            events.append(Urc(line))  # a call ended: not this command's result
            return
        if final is not None:
            self.abort()
            events.append(final)
            return
        if req.prefixes and line.startswith(req.prefixes):
            s.after_header = req.pdu_lines
            events.append(Intermediate(line))
            return
        if s.after_header and _HEX_LINE.fullmatch(line):
            s.after_header = False
            events.append(Intermediate(line))
            return
        if self._is_urc(line) or (not req.raw and _URC_SHAPE.match(line)):
            # a URC between a +CMGR/+CMGL header and its PDU line leaves the
            # PDU line pending: it still belongs to the response
            events.append(Urc(line))
            return
        s.after_header = False
        if req.raw:
            events.append(Intermediate(line))
            return
        if line == ">":
            events.append(Discarded(DiscardReason.STRAY_PROMPT, line))
            return
        log.info("noise inside the response to %r: %r", req.line, line[:80])
        events.append(Discarded(DiscardReason.NOISE, line[:80]))

    def _numeric(self) -> bool:
        req = self._s.request
        return self.numeric_results or (req is not None and req.numeric)
