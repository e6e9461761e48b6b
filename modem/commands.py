"""Typed AT commands: each value carries its own contract.

A :class:`Command` holds the command line, the response prefixes that mark
its intermediate lines, its timeout, its retry policy and the parser that
turns a :class:`Response` into a typed value (the way atat's command traits
do). Builders below (:func:`csq`, :func:`cmgr`...) return ready commands.

Every parser takes the module's answer, returns a value or raises
:class:`~modem.errors.ProtocolError` (the module's bad data); nothing else
escapes for any input (tested with hypothesis).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from typing import Generic, TypeVar

from . import timing
from .errors import CmeError, CmsError, CommandFailed, ProtocolError, UsageError, is_number
from .protocol import FinalResult, Request, ResultKind

__all__ = [
    "NO_RETRY",
    "RETRY_TRANSIENT",
    "Command",
    "Listing",
    "MessageStat",
    "Operator",
    "PinState",
    "RegStat",
    "Registration",
    "Response",
    "RetryPolicy",
    "Routing",
    "Signal",
    "StorageStatus",
    "StoredPdu",
    "at",
    "bare_tpdu",
    "cclk_query",
    "cmgd",
    "cmgl",
    "cmgl_lenient",
    "cmgr",
    "cmgs",
    "cnma",
    "cnma_test",
    "cnmi_query",
    "cnmi_test",
    "cops_query",
    "cpin_enter",
    "cpin_query",
    "cpms_query",
    "cpms_set",
    "cpms_test",
    "creg_query",
    "csca_query",
    "csq",
    "digits",
    "identity",
    "parse_cclk",
    "parse_cmgl",
    "parse_cmgl_lenient",
    "parse_cmgr",
    "parse_cmgr_record",
    "parse_cmgs",
    "parse_cmt_header",
    "parse_cmti",
    "parse_cnma_test",
    "parse_cnmi",
    "parse_cnmi_test",
    "parse_cops",
    "parse_cpin",
    "parse_cpms",
    "parse_cpms_test",
    "parse_csq",
    "parse_digits",
    "parse_identity_line",
    "parse_registration",
    "parse_rssi_urc",
    "pdu_line_damage",
    "raw",
    "simple",
    "split_args",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Response:
    """The intermediate lines of a command's answer and its final result."""

    lines: tuple[str, ...]
    final: FinalResult
    #: the command's prompt data (a +CMGS PDU) was written before the result came
    data_sent: bool = False

    def raise_for_result(self, command: str | None = None) -> None:
        """Raise the typed error a failure result stands for (device fault).

        The error's ``data_sent`` tells whether the prompt data had been
        written (a ``+CMS ERROR`` after the PDU may leave the outcome unknown).
        """
        f = self.final
        if f.success:
            return
        exc: CommandFailed
        if f.kind is ResultKind.CME_ERROR:
            exc = CmeError(f.code, f.text or None, command)
        elif f.kind is ResultKind.CMS_ERROR:
            exc = CmsError(f.code, f.text or None, command)
        else:
            exc = CommandFailed(f.line, command)
        exc.data_sent = self.data_sent
        raise exc


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a command is retried on a *transient* error.

    ``attempts`` counts the first try. Delay: ``initial * factor**n`` capped.
    ``None`` takes :data:`timing.RETRY_INITIAL` / ``RETRY_FACTOR`` /
    ``RETRY_MAX`` when the delay is computed (so tuning :mod:`modem.timing`
    reaches the module-level policies too).
    """

    attempts: int = 1
    initial: float | None = None
    factor: float | None = None
    maximum: float | None = None
    retry_timeout: bool = False

    def delay(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1 = the first retry)."""
        initial = timing.RETRY_INITIAL if self.initial is None else self.initial
        factor = timing.RETRY_FACTOR if self.factor is None else self.factor
        maximum = timing.RETRY_MAX if self.maximum is None else self.maximum
        return float(min(maximum, initial * factor ** max(0, attempt - 1)))


NO_RETRY = RetryPolicy()
RETRY_TRANSIENT = RetryPolicy(attempts=3, retry_timeout=True)


def _lines(response: Response) -> tuple[str, ...]:
    return response.lines


def _none(_: Response) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Command(Generic[T]):
    """An AT command with its contract.

    ``data`` is what follows the ``> `` prompt (the PDU hex for ``+CMGS``);
    the client appends Ctrl-Z. ``timeout`` and ``prompt_timeout`` default to
    :data:`timing.DEFAULT_COMMAND_TIMEOUT` / :data:`timing.PROMPT_TIMEOUT` as
    they are when the command is built.
    """

    text: str
    parser: Callable[[Response], T]
    prefixes: tuple[str, ...] = ()
    timeout: float = field(default_factory=lambda: timing.DEFAULT_COMMAND_TIMEOUT)
    retry: RetryPolicy = NO_RETRY
    raw: bool = False
    pdu_lines: bool = False
    data: str | None = None
    prompt_timeout: float = field(default_factory=lambda: timing.PROMPT_TIMEOUT)
    numeric: bool = False
    #: Checked by the client under its lock, right before the line is written:
    #: False -> not written, :class:`~modem.client.StaleCommand` (see
    #: :meth:`~modem.client.AtClient.execute`). :meth:`when` sets it.
    precondition: Callable[[], bool] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if any(c in self.text for c in "\r\n\x1a\x1b"):
            raise UsageError(f"command line may not contain CR, LF, Ctrl-Z or ESC: {self.text!r}")
        if not self.text.upper().startswith("AT") and self.text != "A/":
            raise UsageError(f"command line must start with AT: {self.text!r}")
        if self.data is not None and not re.fullmatch(r"[0-9A-Fa-f]*", self.data):
            raise UsageError("data after the prompt must be hex (PDU mode)")

    def when(self, precondition: Callable[[], bool]) -> Command[T]:
        """This command, written only while ``precondition()`` holds (checked
        under the client's lock right before the write).

        A copy field by field: the fields were checked when this command was
        built (``dataclasses.replace`` would check them, the PDU's hex too,
        again for every read and delete)."""
        new = object.__new__(type(self))
        for name in _COMMAND_FIELDS:
            object.__setattr__(new, name, getattr(self, name))
        object.__setattr__(new, "precondition", precondition)
        return new

    @property
    def request(self) -> Request:
        return Request(
            self.text,
            self.prefixes,
            raw=self.raw,
            pdu_lines=self.pdu_lines,
            prompt=self.data is not None,
            numeric=self.numeric,
        )

    def parse(self, response: Response) -> T:
        """Raise the typed failure, or parse a successful response."""
        response.raise_for_result(self.text)
        return self.parser(response)


_COMMAND_FIELDS = tuple(f.name for f in fields(Command) if f.name != "precondition")


# -- argument grammar (V.250 §5.3, TS 27.007 §4) --------------------------------


def split_args(text: str) -> list[str]:
    """Split ``a,"b,c",d`` into ``['a', 'b,c', 'd']``; quotes removed.

    Raises ProtocolError on an unterminated string.
    """
    out: list[str] = []
    cur: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            quoted = not quoted
        elif c == "," and not quoted:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    if quoted:
        raise ProtocolError("unterminated string", text)
    out.append("".join(cur).strip())
    return out


def _payload(line: str, prefix: str) -> str:
    if not line.startswith(prefix):
        raise ProtocolError(f"expected {prefix}", line)
    rest = line[len(prefix) :]
    if rest.startswith(":"):
        rest = rest[1:]
    return rest.strip()


def _int(text: str, what: str, lo: int = 0, hi: int = 1 << 31) -> int:
    text = text.strip()
    if not is_number(text) or len(text) > 10:
        raise ProtocolError(f"{what}: not a number", text)
    value = int(text)
    if not lo <= value <= hi:
        raise ProtocolError(f"{what}: {value} out of range {lo}..{hi}", text)
    return value


def _opt_int(text: str, what: str, lo: int = 0, hi: int = 1 << 31) -> int | None:
    return None if text.strip() == "" else _int(text, what, lo, hi)


def _hex_int(text: str, what: str) -> int | None:
    text = text.strip()
    if text == "":
        return None
    if not re.fullmatch(r"[0-9A-Fa-f]{1,8}", text):
        raise ProtocolError(f"{what}: not hex", text)
    return int(text, 16)


def _one(response: Response, prefix: str) -> str:
    for line in response.lines:
        if line.startswith(prefix):
            return _payload(line, prefix)
    raise ProtocolError(f"no {prefix} line in the response", " | ".join(response.lines)[:80])


# -- +CMGR / +CMGL (TS 27.005 §3.4.2, §3.4.3, PDU mode) ------------------------


class MessageStat(enum.IntEnum):
    """<stat> in PDU mode (TS 27.005 §3.1)."""

    REC_UNREAD = 0
    REC_READ = 1
    STO_UNSENT = 2
    STO_SENT = 3
    ALL = 4


@dataclass(frozen=True, slots=True)
class StoredPdu:
    """One stored message as listed/read: index (None for +CMGR), stat, PDU hex.

    ``damage`` is empty for a record whose PDU line checks out against its
    ``<length>``; otherwise it says what is wrong (only the lenient parsers,
    :func:`parse_cmgr_record` and :attr:`Listing.damaged`, return such
    records) and ``pdu`` holds the line as it came (possibly empty, not hex).
    """

    index: int | None
    stat: int
    length: int
    pdu: str
    alpha: str = ""
    damage: str = ""


_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")


def _pdu_line(line: str, length: int | None = None) -> str:
    """Check a PDU line; with ``length`` (the header's TPDU length) check its size.

    The strict form of :func:`pdu_line_damage` (one rule for both): a damaged
    line raises ProtocolError, never decoded.
    """
    if length is None:
        if not _HEX.fullmatch(line):
            raise ProtocolError("PDU line is not even-length hex", line[:80])
        return line.upper()
    damage = pdu_line_damage(line, length)
    if damage:
        raise ProtocolError(damage, line[:80])
    return line.upper()


#: Longest PDU line a record can hold: SMSC field (1 + 11 octets) + 255 TPDU octets.
_MAX_PDU_CHARS = 2 * (12 + 255)


def pdu_line_damage(line: str | None, length: int) -> str:
    """Why a PDU line is not the record its header announces; "" when it is.

    TS 27.005 §3.1 / §3.4.3: ``<length>`` counts the TPDU octets; the line is
    the SMSC address field (its first octet is the field's length) then the
    TPDU, as hex. A line that is missing, empty, not even-length hex, longer
    than any PDU, or whose size disagrees with ``<length>`` lost or gained
    characters on the way (or the record is damaged): it is never decoded.
    """
    if line is None or line == "":
        return "empty PDU"
    if len(line) > _MAX_PDU_CHARS:
        return f"PDU line of {len(line)} characters is longer than any PDU"
    if not _HEX.fullmatch(line):
        return "PDU line is not even-length hex"
    if length > 255:
        return f"<length> {length} is over 255 octets"
    smsc_octets = int(line[:2], 16)
    if len(line) != 2 * (1 + smsc_octets + length):
        return f"PDU line does not hold SMSC + {length} TPDU octets"
    return ""


def bare_tpdu(line: str | None, length: int) -> bool:
    """True when a PDU line is the TPDU alone: hex of exactly ``<length>`` octets.

    TS 27.005 §3.1 puts the SMSC address field before the TPDU, but some
    modules' ``+CDS`` (a status report routed as a URC, §3.4.1) carry the
    TPDU alone. Such a line can never pass :func:`pdu_line_damage` (the SMSC
    field takes at least one octet), so the two readings never overlap.
    """
    return (
        line is not None
        and 0 < length <= 255
        and len(line) == 2 * length
        and _HEX.fullmatch(line) is not None
    )


def parse_cmgr_record(response: Response) -> StoredPdu | None:
    """``+CMGR`` read leniently: a damaged record is returned, not raised.

    Like :func:`parse_cmgr`, but when the header parses and the PDU line does
    not check out (:func:`pdu_line_damage`: missing, empty, not hex, over
    255 octets, size disagreeing with ``<length>``) the record comes back
    with ``damage`` set and ``pdu`` as received. A header with ``<length>`` 0
    and no PDU line is returned as an "empty PDU" record (some firmware
    answers an empty slot that way: the caller decides). None only for an
    answer with no header at all (an empty slot). ProtocolError when the
    header itself does not parse.
    """
    lines = response.lines
    for i, line in enumerate(lines):
        if line.startswith("+CMGR"):
            args = split_args(_payload(line, "+CMGR"))
            if len(args) < 2:
                raise ProtocolError("+CMGR header needs <stat>,[<alpha>],<length>", line)
            stat = _int(args[0], "<stat>", 0, 4)
            length = _int(args[-1], "<length>", 0, 65535)
            alpha = args[1] if len(args) >= 3 else ""
            nxt = lines[i + 1] if i + 1 < len(lines) else None
            damage = pdu_line_damage(nxt, length)
            raw = "" if nxt is None else nxt[: _MAX_PDU_CHARS + 2]
            if not damage:
                raw = raw.upper()
            return StoredPdu(None, stat, length, raw, alpha, damage)
    if not lines:
        return None
    raise ProtocolError("no +CMGR header", lines[0])


def parse_cmgr(response: Response) -> StoredPdu | None:
    """``+CMGR: <stat>,[<alpha>],<length>`` + PDU line; None for an empty slot.

    Also the Telit form without <alpha>: ``+CMGR: <stat>,<length>``.
    """
    lines = response.lines
    for i, line in enumerate(lines):
        if line.startswith("+CMGR"):
            args = split_args(_payload(line, "+CMGR"))
            if len(args) < 2:
                raise ProtocolError("+CMGR header needs <stat>,[<alpha>],<length>", line)
            stat = _int(args[0], "<stat>", 0, 4)
            length = _int(args[-1], "<length>", 0, 255)
            if i + 1 >= len(lines):
                if length == 0:
                    return None
                raise ProtocolError("+CMGR header without a PDU line", line)
            return StoredPdu(
                None,
                stat,
                length,
                _pdu_line(lines[i + 1], length),
                args[1] if len(args) >= 3 else "",
            )
    if not lines:
        return None  # OK with nothing: empty slot (Quectel, SIMCom)
    raise ProtocolError("no +CMGR header", lines[0])


def parse_cmgl(response: Response) -> list[StoredPdu]:
    """``+CMGL: <index>,<stat>,[<alpha>],<length>`` + PDU line, repeated."""
    out: list[StoredPdu] = []
    lines = response.lines
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("+CMGL"):
            raise ProtocolError("unexpected line in +CMGL listing", line)
        args = split_args(_payload(line, "+CMGL"))
        if len(args) < 3:
            raise ProtocolError("+CMGL header needs <index>,<stat>,[<alpha>],<length>", line)
        index = _int(args[0], "<index>", 0, 65535)
        stat = _int(args[1], "<stat>", 0, 4)
        length = _int(args[-1], "<length>", 0, 255)
        if i + 1 >= len(lines):
            raise ProtocolError("+CMGL header without a PDU line", line)
        out.append(
            StoredPdu(
                index,
                stat,
                length,
                _pdu_line(lines[i + 1], length),
                args[2] if len(args) >= 4 else "",
            )
        )
        i += 2
    return out


@dataclass(frozen=True, slots=True)
class Listing:
    """A +CMGL listing read leniently: the good entries and the damaged ones skipped.

    ``damaged``: the skipped entries whose header still names an index, as
    records with ``damage`` set and the PDU line as it came (see
    :func:`pdu_line_damage`); the SMS service reads them back by index.
    """

    entries: tuple[StoredPdu, ...]
    skipped: tuple[str, ...]
    damaged: tuple[StoredPdu, ...] = ()


def parse_cmgl_lenient(response: Response) -> Listing:
    """Like :func:`parse_cmgl`, but a damaged entry (noisy line) spoils only itself.

    Each ``+CMGL`` header with the PDU line after it is parsed on its own; a
    header whose fields or PDU line do not check out is skipped (reported in
    ``skipped``) and parsing resumes at the next header.
    """
    entries: list[StoredPdu] = []
    skipped: list[str] = []
    damaged: list[StoredPdu] = []
    lines = response.lines
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("+CMGL"):
            skipped.append(line[:80])
            i += 1
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        if nxt is None or nxt.startswith("+CMGL"):
            skipped.append(line[:80])
            record = _damaged_cmgl(line, None)
            if record is not None:
                damaged.append(record)
            i += 1
            continue
        try:
            entries.extend(parse_cmgl(Response((line, nxt), response.final)))
        except ProtocolError:
            skipped.append(line[:80])
            record = _damaged_cmgl(line, nxt)
            if record is not None:
                damaged.append(record)
        i += 2
    return Listing(tuple(entries), tuple(skipped), tuple(damaged))


def _damaged_cmgl(header: str, line: str | None) -> StoredPdu | None:
    """A skipped +CMGL entry as a damaged record, if its header names an index."""
    try:
        args = split_args(_payload(header, "+CMGL"))
        if len(args) < 3:
            return None
        index = _int(args[0], "<index>", 0, 65535)
        stat = _int(args[1], "<stat>", 0, 4)
        length = _int(args[-1], "<length>", 0, 65535)
    except ProtocolError:
        return None
    damage = pdu_line_damage(line, length) or "entry does not parse"
    raw = "" if line is None else line[: _MAX_PDU_CHARS + 2]
    return StoredPdu(index, stat, length, raw, args[2] if len(args) >= 4 else "", damage)


# -- +CPMS (TS 27.005 §3.2.2) ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class StorageStatus:
    """Use of the read/delete (mem1), write (mem2) and receive (mem3) storages."""

    mem: tuple[str, ...]
    used: tuple[int, ...]
    total: tuple[int, ...]

    @property
    def receive_full(self) -> bool:
        """True when the receive storage (mem3, else the last given) is full."""
        return bool(self.total) and self.used[-1] >= self.total[-1]

    @property
    def read_used(self) -> int:
        return self.used[0]

    @property
    def read_total(self) -> int:
        return self.total[0]


def parse_cpms(response: Response) -> StorageStatus:
    """Read form ``+CPMS: "SM",3,50,...`` or set form ``+CPMS: 3,50,3,50,3,50``."""
    args = split_args(_one(response, "+CPMS"))
    mems: list[str] = []
    used: list[int] = []
    total: list[int] = []
    if args and args[0] and not is_number(args[0]):
        if len(args) % 3 != 0 or not args:
            raise ProtocolError("+CPMS read form needs triples", ",".join(args))
        for i in range(0, len(args), 3):
            mems.append(args[i])
            used.append(_int(args[i + 1], "<used>", 0, 65535))
            total.append(_int(args[i + 2], "<total>", 0, 65535))
    else:
        if len(args) % 2 != 0 or not args:
            raise ProtocolError("+CPMS set form needs pairs", ",".join(args))
        for i in range(0, len(args), 2):
            used.append(_int(args[i], "<used>", 0, 65535))
            total.append(_int(args[i + 1], "<total>", 0, 65535))
            mems.append("")
    return StorageStatus(tuple(mems), tuple(used), tuple(total))


_MEM_NAME = re.compile(r"[A-Z]{2}")


def parse_cpms_test(response: Response) -> tuple[tuple[str, ...], ...]:
    """Test form ``+CPMS: ("SM","ME","MT"),("SM","ME"),("SM","ME")`` (TS 27.005
    §3.2.2): the storages each of ``<mem1>``, ``<mem2>``, ``<mem3>`` may name,
    in order; 1 to 3 lists. A name that is not two capitals (``SM``, ``ME``,
    ``MT``, ``BM``, ``SR``, ``TA``) is damage: ProtocolError.
    """
    payload = _one(response, "+CPMS").strip()
    lists: list[tuple[str, ...]] = []
    rest = payload
    while rest:
        if not rest.startswith("("):
            raise ProtocolError("+CPMS test form: '(' expected", payload[:80])
        end = rest.find(")")
        if end < 0:
            raise ProtocolError("+CPMS test form: ')' missing", payload[:80])
        names = tuple(a.upper() for a in split_args(rest[1:end]))
        if not names or not all(_MEM_NAME.fullmatch(n) for n in names):
            raise ProtocolError("+CPMS test form: not a storage list", rest[: end + 1][:80])
        lists.append(names)
        rest = rest[end + 1 :].strip()
        if rest:
            if not rest.startswith(","):
                raise ProtocolError("+CPMS test form: ',' expected between lists", payload[:80])
            rest = rest[1:].strip()
            if not rest:
                raise ProtocolError("+CPMS test form: trailing ','", payload[:80])
    if not 1 <= len(lists) <= 3:
        raise ProtocolError("+CPMS test form needs 1 to 3 lists", payload[:80])
    return tuple(lists)


# -- +CSQ (TS 27.007 §8.5) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signal:
    """``<rssi>`` 0..31 (99 unknown) and ``<ber>`` 0..7 (99 unknown)."""

    rssi: int
    ber: int

    @property
    def dbm(self) -> int | None:
        """Received signal strength in dBm (0 -> -113, 31 -> -51), None if unknown."""
        if self.rssi == 99 or self.rssi > 31:
            return None
        return -113 + 2 * self.rssi


def parse_csq(response: Response) -> Signal:
    args = split_args(_one(response, "+CSQ"))
    if len(args) != 2:
        raise ProtocolError("+CSQ needs <rssi>,<ber>", ",".join(args))
    rssi = _int(args[0], "<rssi>", 0, 199)
    ber = _int(args[1], "<ber>", 0, 99)
    return Signal(rssi, ber)


def parse_rssi_urc(args: str) -> Signal:
    """Huawei ``^RSSI: <rssi>`` URC."""
    return Signal(_int(args, "<rssi>", 0, 199), 99)


# -- +CREG / +CGREG / +CEREG (TS 27.007 §7.2, §10.1.20, §10.1.22) -----------------


class RegStat(enum.IntEnum):
    """<stat> of +CREG/+CGREG/+CEREG."""

    NOT_REGISTERED = 0
    HOME = 1
    SEARCHING = 2
    DENIED = 3
    UNKNOWN = 4
    ROAMING = 5
    HOME_SMS_ONLY = 6
    ROAMING_SMS_ONLY = 7
    EMERGENCY_ONLY = 8
    HOME_CSFB_NOT_PREFERRED = 9
    ROAMING_CSFB_NOT_PREFERRED = 10
    RLOS = 11


@dataclass(frozen=True, slots=True)
class Registration:
    """Registration state of one domain (``"CREG"``, ``"CGREG"``, ``"CEREG"``)."""

    domain: str
    stat: int
    n: int | None = None
    lac: int | None = None
    ci: int | None = None
    act: int | None = None

    @property
    def registered(self) -> bool:
        return self.stat in (1, 5, 6, 7, 9, 10)


def parse_registration(line_or_response: str | Response, *, urc: bool = False) -> Registration:
    """Parse any form of +CREG/+CGREG/+CEREG/+C5GREG.

    Read response (``urc=False``): ``<n>,<stat>[,<lac>,<ci>[,<AcT>...]]``.
    URC (``urc=True``): ``<stat>[,<lac>,<ci>[,<AcT>...]]``.
    """
    if isinstance(line_or_response, Response):
        return _registration_answer(line_or_response)
    line = line_or_response
    m = re.match(r"\+(C(?:E|G|5G)?REG):(.*)\Z", line)
    if m is None:
        raise ProtocolError("not a registration line", line)
    domain = m.group(1)
    args = split_args(m.group(2).strip())
    n: int | None = None
    if not urc:
        if len(args) < 2:
            raise ProtocolError("registration read response needs <n>,<stat>", line)
        n = _int(args[0], "<n>", 0, 5)
        args = args[1:]
    stat = _int(args[0], "<stat>", 0, 11)
    lac = _hex_int(args[1], "<lac>") if len(args) > 1 else None
    ci = _hex_int(args[2], "<ci>") if len(args) > 2 else None
    act = _opt_int(args[3], "<AcT>", 0, 15) if len(args) > 3 else None
    return Registration(domain, stat, n, lac, ci, act)


#: The read response ``<n>,<stat>[,...]``: two unquoted numbers first. The URC
#: forms are ``<stat>`` alone or ``<stat>,"<lac>",...`` (a quoted string second).
_REG_READ_FORM = re.compile(r"\+C(?:E|G|5G)?REG:\s*[0-5]\s*,\s*\d{1,2}\s*(?:,|\Z)")


def _registration_answer(response: Response) -> Registration:
    """The answer to ``AT+CREG?`` (TS 27.007 §7.2), URCs inside it allowed.

    Real firmware does not hold every URC until the final result code: a
    ``+CREG: <stat>[,<lac>,<ci>...]`` URC can come before or after the read
    response ``+CREG: <n>,<stat>[,...]``, with the same prefix. The lines are
    told apart by form; ``<n>`` comes from the read response and the state from
    the last line of the answer (the newest the module reported). An answer
    without a read response is a ProtocolError, as before.
    """
    lines = [x for x in response.lines if re.match(r"\+C(?:E|G|5G)?REG:", x)]
    if not lines:
        raise ProtocolError("no registration line", " | ".join(response.lines)[:80])
    read: Registration | None = None
    newest: Registration | None = None
    for line in lines:
        is_read = _REG_READ_FORM.match(line) is not None
        try:
            reg = parse_registration(line, urc=not is_read)
        except ProtocolError:
            continue  # a damaged line: the others may still say it
        if is_read:
            read = reg
        newest = reg
    if read is None or newest is None:
        raise ProtocolError("registration read response needs <n>,<stat>", lines[0])
    return replace(newest, n=read.n)


# -- +COPS (TS 27.007 §7.3) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Operator:
    mode: int
    format: int | None = None
    name: str | None = None
    act: int | None = None


def parse_cops(response: Response) -> Operator:
    args = split_args(_one(response, "+COPS"))
    mode = _int(args[0], "<mode>", 0, 4)
    fmt = _opt_int(args[1], "<format>", 0, 3) if len(args) > 1 else None
    name = args[2] if len(args) > 2 else None
    act = _opt_int(args[3], "<AcT>", 0, 15) if len(args) > 3 else None
    return Operator(mode, fmt, name, act)


# -- +CPIN (TS 27.007 §8.3) ------------------------------------------------------


class PinState(enum.Enum):
    READY = "READY"
    SIM_PIN = "SIM PIN"
    SIM_PUK = "SIM PUK"
    PH_SIM_PIN = "PH-SIM PIN"
    SIM_PIN2 = "SIM PIN2"
    SIM_PUK2 = "SIM PUK2"
    OTHER = "other"


def parse_cpin(response: Response) -> PinState:
    code = _one(response, "+CPIN").strip().strip('"').upper()
    if not code:
        raise ProtocolError("empty +CPIN")
    for state in PinState:
        if state.value == code:
            return state
    return PinState.OTHER


# -- +CMGS (TS 27.005 §3.5.1) ------------------------------------------------------


def parse_cmgs(response: Response) -> int:
    """``+CMGS: <mr>[,<scts>|<ackpdu>]``: the TP-MR (0..255)."""
    args = split_args(_one(response, "+CMGS"))
    return _int(args[0], "<mr>", 0, 255)


# -- URC parsers -------------------------------------------------------------------


def parse_cmti(args: str) -> tuple[str, int]:
    """``+CMTI: <mem>,<index>`` (also ``+CDSI``)."""
    parts = split_args(args)
    if len(parts) != 2:
        raise ProtocolError("+CMTI needs <mem>,<index>", args)
    return parts[0], _int(parts[1], "<index>", 0, 65535)


def parse_cmt_header(args: str) -> int:
    """``+CMT: [<alpha>],<length>`` (PDU mode): the TPDU length."""
    parts = split_args(args)
    return _int(parts[-1], "<length>", 0, 255)


# -- identity ----------------------------------------------------------------------


def parse_identity_line(response: Response) -> str:
    """The first non-empty line, without a ``+XXX:`` prefix and quotes.

    For ``AT+CGSN``, ``AT+CIMI``, ``AT+CGMI``, ``AT+CGMM``, ``AT+CGMR``,
    ``AT+CCID``/``AT+QCCID``/``AT+ICCID``: modules differ on the prefix.
    """
    for line in response.lines:
        text = line.strip()
        if not text:
            continue
        m = re.match(r"[+^]?[A-Z]{2,8}:\s*(.*)\Z", text)
        if m:
            text = m.group(1)
        text = text.strip().strip('"').strip()
        if text.upper().startswith("REVISION:"):
            text = text[9:].strip()
        if text:
            return text
    raise ProtocolError("empty identity response")


def parse_digits(response: Response) -> str:
    """IMEI / IMSI / ICCID: digits (ICCID may end in F or a letter; kept)."""
    text = parse_identity_line(response)
    if not re.fullmatch(r"[0-9A-Fa-f]{5,22}", text):
        raise ProtocolError("identity is not a digit string", text)
    return text


# -- builders -----------------------------------------------------------------------


def at(*, timeout: float | None = None) -> Command[None]:
    """``AT``: the sync probe. Accepts numeric V0 results."""
    return Command("AT", _none, timeout=timeout or timing.SYNC_ATTEMPT_TIMEOUT, numeric=True)


def simple(text: str, *, timeout: float | None = None) -> Command[None]:
    """A command whose answer is just a final result (``ATE0``, ``AT+CMGF=0``)."""
    return Command(text, _none, timeout=timeout or timing.DEFAULT_COMMAND_TIMEOUT, numeric=True)


def raw(text: str, *, timeout: float | None = None) -> Command[tuple[str, ...]]:
    """Any command; the answer's lines as they came (used by ``modem at``)."""
    m = re.match(r"AT([+^][A-Z0-9]+)", text.upper())
    prefixes = (m.group(1),) if m else ()
    return Command(
        text, _lines, prefixes=prefixes, raw=True, timeout=timeout or timing.DEFAULT_COMMAND_TIMEOUT
    )


def csq() -> Command[Signal]:
    return Command("AT+CSQ", parse_csq, prefixes=("+CSQ",))


def creg_query(domain: str = "CREG") -> Command[Registration]:
    if domain not in ("CREG", "CGREG", "CEREG", "C5GREG"):
        raise UsageError(f"unknown registration domain {domain!r}")
    return Command(f"AT+{domain}?", parse_registration, prefixes=(f"+{domain}",))


def cops_query() -> Command[Operator]:
    return Command("AT+COPS?", parse_cops, prefixes=("+COPS",), timeout=timing.SIM_COMMAND_TIMEOUT)


def cpin_query() -> Command[PinState]:
    return Command("AT+CPIN?", parse_cpin, prefixes=("+CPIN",), timeout=timing.SIM_COMMAND_TIMEOUT)


def cpin_enter(pin: str) -> Command[None]:
    if not re.fullmatch(r"[0-9]{4,8}", pin):
        raise UsageError("a PIN is 4-8 digits")
    return Command(f'AT+CPIN="{pin}"', _none, timeout=timing.SIM_COMMAND_TIMEOUT)


def cpms_query() -> Command[StorageStatus]:
    return Command(
        "AT+CPMS?",
        parse_cpms,
        prefixes=("+CPMS",),
        timeout=timing.SIM_COMMAND_TIMEOUT,
        retry=RETRY_TRANSIENT,
    )


def cpms_set(mem1: str, mem2: str, mem3: str) -> Command[StorageStatus]:
    for mem in (mem1, mem2, mem3):
        if not re.fullmatch(r"[A-Z]{2}", mem):
            raise UsageError(f"storage name {mem!r}")
    return Command(
        f'AT+CPMS="{mem1}","{mem2}","{mem3}"',
        parse_cpms,
        prefixes=("+CPMS",),
        timeout=timing.SIM_COMMAND_TIMEOUT,
        retry=RETRY_TRANSIENT,
    )


def cpms_test() -> Command[tuple[tuple[str, ...], ...]]:
    """``AT+CPMS=?``: the storages the module offers for each ``<mem>``."""
    return Command(
        "AT+CPMS=?",
        parse_cpms_test,
        prefixes=("+CPMS",),
        timeout=timing.SIM_COMMAND_TIMEOUT,
        retry=RETRY_TRANSIENT,
    )


def _sms_retry(attempts: int, *, retry_timeout: bool) -> RetryPolicy:
    """A retry policy built from :mod:`timing` now, not when this module was imported."""
    return RetryPolicy(
        attempts=attempts,
        initial=timing.RETRY_INITIAL,
        factor=timing.RETRY_FACTOR,
        maximum=timing.RETRY_MAX,
        retry_timeout=retry_timeout,
    )


def cmgr(index: int, *, lenient: bool = False) -> Command[StoredPdu | None]:
    """``AT+CMGR=<index>`` (TS 27.005 §3.4.3); ``lenient``: damaged records are
    returned with ``damage`` set (:func:`parse_cmgr_record`), not raised."""
    if not 0 <= index <= 65535:
        raise UsageError("index out of range")
    return Command(
        f"AT+CMGR={index}",
        parse_cmgr_record if lenient else parse_cmgr,
        prefixes=("+CMGR",),
        pdu_lines=True,
        timeout=timing.SIM_COMMAND_TIMEOUT,
        retry=_sms_retry(3, retry_timeout=True),
    )


def cmgl(stat: int = MessageStat.ALL) -> Command[list[StoredPdu]]:
    return Command(
        f"AT+CMGL={int(stat)}",
        parse_cmgl,
        prefixes=("+CMGL",),
        pdu_lines=True,
        timeout=timing.LIST_COMMAND_TIMEOUT,
        retry=_sms_retry(3, retry_timeout=True),
    )


def cmgl_lenient(stat: int = MessageStat.ALL) -> Command[Listing]:
    """``+CMGL`` for sweeps: damaged entries are skipped, not fatal."""
    return Command(
        f"AT+CMGL={int(stat)}",
        parse_cmgl_lenient,
        prefixes=("+CMGL",),
        pdu_lines=True,
        timeout=timing.LIST_COMMAND_TIMEOUT,
        retry=_sms_retry(3, retry_timeout=True),
    )


def cmgd(index: int) -> Command[None]:
    """Delete one index (never ``<delflag>``: deleting all loses messages)."""
    if not 0 <= index <= 65535:
        raise UsageError("index out of range")
    # Retried on a +CMS ERROR (not executed), never on a timeout: the delete may
    # have happened and the index been reused by a new message since.
    return Command(
        f"AT+CMGD={index}",
        _none,
        timeout=timing.SIM_COMMAND_TIMEOUT,
        retry=_sms_retry(3, retry_timeout=False),
    )


def cmgs(pdu_hex: str, tpdu_len: int) -> Command[int]:
    """``AT+CMGS=<length>`` then the PDU (SMSC prefix included) and Ctrl-Z."""
    if not 1 <= tpdu_len <= 176:
        raise UsageError("TPDU length out of range 1..176")
    return Command(
        f"AT+CMGS={tpdu_len}",
        parse_cmgs,
        prefixes=("+CMGS",),
        data=pdu_hex.upper(),
        timeout=timing.SEND_TIMEOUT,
        prompt_timeout=timing.PROMPT_TIMEOUT,
    )


def cnma(n: int | None = None) -> Command[None]:
    """``AT+CNMA`` (TS 27.005 §3.4.4): acknowledge the last ``+CMT``/``+CDS``.

    PDU mode: ``n`` 1 is RP-ACK, 2 is RP-ERROR (a negative acknowledgement:
    the network delivers the message again later); None sends the bare
    ``AT+CNMA`` (an RP-ACK, understood by every phase 2+ module).
    """
    if n is not None and n not in (0, 1, 2):
        raise UsageError("+CNMA <n> is 0, 1 or 2")
    text = "AT+CNMA" if n is None else f"AT+CNMA={n}"
    return Command(text, _none, timeout=timing.DEFAULT_COMMAND_TIMEOUT)


def parse_cnma_test(response: Response) -> frozenset[int]:
    """``+CNMA: (0-2)`` (PDU mode test form): the ``<n>`` values supported."""
    return frozenset(_int_set(_one(response, "+CNMA"), "<n>", 0, 2))


def cnma_test() -> Command[frozenset[int]]:
    """``AT+CNMA=?``: which ``<n>`` the module takes (2 = negative ack, §3.4.4)."""
    return Command(
        "AT+CNMA=?", parse_cnma_test, prefixes=("+CNMA",), timeout=timing.DEFAULT_COMMAND_TIMEOUT
    )


def _int_set(text: str, what: str, lo: int, hi: int) -> set[int]:
    """``(0-2)``, ``(0,1,2)``, ``0-2`` or ``(1)`` -> the integers named."""
    body = text.strip()
    if body.startswith("(") and body.endswith(")"):
        body = body[1:-1]
    out: set[int] = set()
    for piece in body.split(","):
        item = piece.strip()
        if "-" in item:
            a, _, b = item.partition("-")
            first, last = _int(a, what, lo, hi), _int(b, what, lo, hi)
            if first > last:
                raise ProtocolError(f"{what}: empty range", item)
            out.update(range(first, last + 1))
        else:
            out.add(_int(item, what, lo, hi))
    return out


@dataclass(frozen=True, slots=True)
class Routing:
    """``+CNMI: <mode>,<mt>,<bm>,<ds>,<bfr>`` (TS 27.005 §3.4.1)."""

    mode: int
    mt: int
    bm: int
    ds: int
    bfr: int

    @classmethod
    def parse(cls, text: str) -> Routing:
        """``"2,1,0,1,0"`` (missing trailing values are 0)."""
        args = split_args(text)
        if not 1 <= len(args) <= 5:
            raise ProtocolError("+CNMI needs 1 to 5 values", text)
        values = [_opt_int(a, "+CNMI value", 0, 9) or 0 for a in args]
        values += [0] * (5 - len(values))
        return cls(*values)

    def __str__(self) -> str:
        return f"{self.mode},{self.mt},{self.bm},{self.ds},{self.bfr}"


def parse_cnmi_test(response: Response) -> tuple[frozenset[int], ...]:
    """``+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)`` (TS 27.005 §3.4.1 test form): the
    values each of ``<mode>,<mt>,<bm>,<ds>,<bfr>`` takes; 1 to 5 lists, a
    missing one is ``{0}`` (the parameter's default)."""
    payload = _one(response, "+CNMI").strip()
    sets: list[frozenset[int]] = []
    rest = payload
    while rest:
        if not rest.startswith("("):
            raise ProtocolError("+CNMI test form: '(' expected", payload[:80])
        end = rest.find(")")
        if end < 0:
            raise ProtocolError("+CNMI test form: ')' missing", payload[:80])
        sets.append(frozenset(_int_set(rest[1:end], "+CNMI value", 0, 9)))
        rest = rest[end + 1 :].strip()
        if rest:
            if not rest.startswith(","):
                raise ProtocolError("+CNMI test form: ',' expected between lists", payload[:80])
            rest = rest[1:].strip()
            if not rest:
                raise ProtocolError("+CNMI test form: trailing ','", payload[:80])
    if not 1 <= len(sets) <= 5:
        raise ProtocolError("+CNMI test form needs 1 to 5 lists", payload[:80])
    sets += [frozenset({0})] * (5 - len(sets))
    return tuple(sets)


def cnmi_test() -> Command[tuple[frozenset[int], ...]]:
    """``AT+CNMI=?``: the routing values the module supports (TS 27.005 §3.4.1)."""
    return Command(
        "AT+CNMI=?",
        parse_cnmi_test,
        prefixes=("+CNMI",),
        timeout=timing.DEFAULT_COMMAND_TIMEOUT,
        retry=_sms_retry(2, retry_timeout=True),
    )


def parse_cnmi(response: Response) -> Routing:
    """``+CNMI: 2,1,0,1,0``: the module's routing now."""
    return Routing.parse(_one(response, "+CNMI"))


def cnmi_query() -> Command[Routing]:
    """``AT+CNMI?``: TS 27.005 §3.4.1 says a missing ``+CNMA`` sets ``<mt>`` and
    ``<ds>`` to 0; the SMS service reads the routing back after an ack failure."""
    return Command(
        "AT+CNMI?",
        parse_cnmi,
        prefixes=("+CNMI",),
        timeout=timing.DEFAULT_COMMAND_TIMEOUT,
        retry=_sms_retry(2, retry_timeout=True),
    )


_CCLK = re.compile(r"(\d{2})/(\d{2})/(\d{2}),(\d{2}):(\d{2}):(\d{2})(?:([+-])(\d{1,2}))?\Z")


def parse_cclk(response: Response) -> datetime:
    """``+CCLK: "yy/MM/dd,hh:mm:ss±zz"`` (TS 27.007 §8.15; zz in quarter hours).

    Returns an aware datetime (years 70-99 are 1970-1999); ProtocolError for a
    malformed clock.
    """
    text = _one(response, "+CCLK").strip().strip('"')
    m = _CCLK.match(text)
    if m is None:
        raise ProtocolError("+CCLK is not yy/MM/dd,hh:mm:ss[±zz]", text)
    yy, mo, dd, hh, mi, ss = (int(m.group(i)) for i in range(1, 7))
    quarters = int(m.group(8) or 0)
    if quarters > 56:
        raise ProtocolError("+CCLK time zone out of range", text)
    offset = timedelta(minutes=15 * quarters) * (-1 if m.group(7) == "-" else 1)
    # two-digit year: 70-99 are 1970-1999 (an unset clock shows 80/01/06, the GPS
    # epoch, on many modules: read as 1980 it is plainly not set)
    year = 1900 + yy if yy >= 70 else 2000 + yy
    try:
        return datetime(year, mo, dd, hh, mi, ss, tzinfo=timezone(offset))
    except ValueError as exc:
        raise ProtocolError(f"+CCLK: {exc}", text) from None


def cclk_query() -> Command[datetime]:
    """``AT+CCLK?``: the module's clock (the SMS service ages held parts by it)."""
    return Command(
        "AT+CCLK?", parse_cclk, prefixes=("+CCLK",), timeout=timing.DEFAULT_COMMAND_TIMEOUT
    )


def identity(text: str) -> Command[str]:
    """``AT+CGMI``/``+CGMM``/``+CGMR``/``ATI``-style one-line identity."""
    return Command(text, parse_identity_line, raw=True, timeout=timing.SIM_COMMAND_TIMEOUT)


def digits(text: str) -> Command[str]:
    """``AT+CGSN``/``+CIMI``/``+CCID``: a digit string."""
    return Command(text, parse_digits, raw=True, timeout=timing.SIM_COMMAND_TIMEOUT)


def csca_query() -> Command[str]:
    """Service centre address (TS 27.005 §3.3.1); empty when unset."""

    def parse(response: Response) -> str:
        args = split_args(_one(response, "+CSCA"))
        return args[0]

    return Command("AT+CSCA?", parse, prefixes=("+CSCA",), timeout=timing.SIM_COMMAND_TIMEOUT)
