"""SMS service: receive (stored or direct delivery), reassemble, acknowledge, send.

Receive (TS 27.005 §3.4.1, stored delivery): on ``+CMTI: <mem>,<index>`` the
service reads the index (``+CMGR``), classifies it and, once every part of a
concatenated message is in, hands an :class:`Inbound` item to the
*consumer*. The consumer is an async callable; returning means "durably
accepted" (journaled), raising means "not accepted" (kept, offered again
later, with backoff). Only after that acknowledgement does the service delete
exactly those indexes (``+CMGD=<index>``, never a delete-all flag). Reads and
deletes wait for the session to be ready; a location read before a re-init
(an earlier :attr:`Session.generation`) is read again before it is deleted.

One classification serves the stored and the direct (``+CMT``/``+CDS``)
paths: the PDU line is checked against the header's ``<length>``
(:func:`modem.commands.pdu_line_damage`), decoded, told apart (status report,
single DELIVER, concatenated part) and handed over. A damaged stored record
is reported as :class:`Undecodable` (raw content kept) once two reads agree;
a damaged direct delivery is never acknowledged: negatively acknowledged
with ``+CNMA=2`` where the module supports it (TS 27.005 §3.4.4), else left
unacknowledged, so the network delivers it again.

Every read, listing and delete carries a precondition the client checks
under its lock right before the write (:meth:`~modem.client.AtClient.execute`):
the session ready, in the generation of the read, with the location's storage
selected as ``<mem1>`` (TS 27.005 §3.2.2) - a delete queued while the module
rebooted is not written. Storages other than ``<mem1>`` that may hold received
messages (:attr:`Session.other_storages`: the module's own before ``+CPMS``
was set) are swept after every re-init, and one a ``+CMTI`` names, with that
storage selected for the listing, the reads and the deletes.

Storage is swept (``+CMGL=4``) at start-up, after every re-init, when storage
is reported full, when the URC queue overflowed (a ``+CMTI`` may be lost), after
a failed step and periodically. A ``+CMTI`` older than the last read of its
location (or than the last complete listing) is dropped: that read saw it.

Concatenated parts (TS 23.040 §9.2.3.24.1) are held on the SIM until all are in.
Parts belong together only when sender, reference and total agree, their
TP-SCTS lie within ``CONCAT_SCTS_WINDOW`` and no sequence number is seen twice
with different content: a part that fits no held message starts a new one,
so a mixture of two messages is never handed over. Held parts are handed over
as incomplete (``complete=False``) after ``HOLD_MAX_AGE`` (age from their
TP-SCTS against the module's ``+CCLK`` clock) or when fewer than
``HOLD_FREE_SLOTS`` slots are free. A part the application already has
(the ``known`` hook, asked with :func:`part_identity`) is deleted, not held.

Identity: every item carries a stable :attr:`identity` so the consumer can
drop repeats (SMS may deliver a message twice). Two identical texts from the
same sender with the same TP-SCTS second have the same identity: SMS cannot
tell them apart, so an application that has a Command SID or a counter in
the text dedupes on that instead.

Send: SUBMIT PDUs (:func:`pdu.submit_parts`, :func:`pdu.cmgs_pdu`) through
``AT+CMGS`` in PDU mode; transient ``+CMS ERROR`` retried with backoff,
permanent ones raised; a send waits while the module is not registered and
while a direct delivery awaits its ``+CNMA``; a timed-out ``+CMGS`` is *not*
retried (it may have gone out: a second send is a second Command at Twilio).
Status reports (``+CDS``/``+CDSI``) match a send of the last
``STATUS_REPORT_WINDOW`` on TP-MR *and* recipient (TP-RA).

Receiving and sending share the line through the client's FIFO lock: neither
starves the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pdu

from . import commands as C
from . import timing
from .client import StaleCommand
from .commands import StoredPdu
from .errors import (
    CmsError,
    CmsErrorCode,
    CommandFailed,
    CommandTimeout,
    Fault,
    ModemDisconnected,
    ModemError,
    ModemRebooted,
    ProtocolError,
)
from .protocol import Discarded, Urc
from .session import Session

__all__ = [
    "Consumer",
    "Inbound",
    "Known",
    "Location",
    "PartialSendError",
    "ReceivedMessage",
    "SendResult",
    "SmsService",
    "StatusReportReceived",
    "Undecodable",
    "message_identity",
    "part_identity",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Bound of the read-cue queue and of pending direct deliveries.
CUE_QUEUE_SIZE = 256

#: ``+CMS ERROR`` codes that, *after the PDU was written*, do not say whether
#: the message left (TS 27.005 §3.2.5): 332 network timeout (no RP-ACK/RP-ERROR
#: came back: the SC may well have it), 300 ME failure and 500 unknown error
#: (catch-alls). Transient before the prompt, but never resent after the PDU:
#: a second send is a second Command at Twilio. RP causes (0-127) and TP-FCS
#: (128-255) are the network's or SC's refusal: the message was not accepted.
OUTCOME_UNKNOWN_CMS: frozenset[int] = frozenset(
    {CmsErrorCode.NETWORK_TIMEOUT, CmsErrorCode.ME_FAILURE, CmsErrorCode.UNKNOWN_ERROR}
)

#: A module clock before this year was never set (modules boot at 1980 or 2000).
_PLAUSIBLE_YEAR = 2020


def _body(ud: pdu.UserData) -> bytes:
    if ud.text is not None:
        return b"T" + ud.text.encode("utf-8", "surrogatepass")
    if ud.data is not None:
        return b"D" + ud.data
    return b""


def _aware(t: datetime) -> datetime:
    """A TP-SCTS with an unknown time zone octet is taken as UTC."""
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def message_identity(parts: Sequence[pdu.Deliver]) -> str:
    """Stable identity of a (possibly concatenated) DELIVER: hex digest.

    Built from the sender (TP-OA), the first part's SC timestamp (TP-SCTS),
    the concatenation reference and total, and the body of every part, in
    sequence order. Two network deliveries of the same SMS get the same value;
    so do two identical texts from one sender within the same TP-SCTS second
    (SMS cannot tell them apart: dedupe on a Command SID or counter if any).
    """
    h = hashlib.sha256()
    first = parts[0]
    h.update(str(first.tp_oa).encode())
    h.update(b"|" + first.tp_scts.isoformat().encode())
    concat = first.tp_ud.concat
    if concat is not None:
        h.update(f"|{concat.ref}/{concat.total}".encode())
    for part in parts:
        h.update(b"|" + _body(part.tp_ud))
    return h.hexdigest()[:32]


def part_identity(part: pdu.Deliver) -> str:
    """Stable identity of one part: sender, its own TP-SCTS, ref/total/seq, body.

    :attr:`ReceivedMessage.part_ids` lists it for every part handed over; the
    ``known`` hook of :class:`SmsService` is asked with it for a part found on
    the SIM later (a kill between per-part deletes leaves the others behind).
    """
    h = hashlib.sha256(b"part|")
    h.update(str(part.tp_oa).encode())
    h.update(b"|" + part.tp_scts.isoformat().encode())
    concat = part.tp_ud.concat
    if concat is not None:
        width = 16 if concat.ref16 else 8
        h.update(f"|{concat.ref}/{width}/{concat.total}/{concat.seq}".encode())
    h.update(b"|" + _body(part.tp_ud))
    return h.hexdigest()[:32]


class _LastDecode:
    """The last PDU decoded and its outcome: the check that a stored PDU
    decodes (before it is deleted) and its classification decode the same
    line once, not twice (TS 23.040 §9.2)."""

    __slots__ = ("outcome", "raw")

    def __init__(self) -> None:
        self.raw: str | None = None
        self.outcome: pdu.Message | ValueError = ValueError("nothing decoded")

    def decode(self, raw: str) -> pdu.Message | ValueError:
        """``pdu.decode(raw, smsc=True)``, or the ValueError it raised."""
        if raw != self.raw:
            try:
                self.outcome = pdu.decode(raw, smsc=True)
            except ValueError as exc:
                self.outcome = exc
            self.raw = raw
        return self.outcome

    def error(self, raw: str) -> str:
        """Why ``raw`` does not decode (the codec's message); "" when it does."""
        out = self.decode(raw)
        if isinstance(out, ValueError):
            return str(out) or type(out).__name__
        return ""


def _raw_identity(hex_pdu: str) -> str:
    return "raw-" + hashlib.sha256(hex_pdu.upper().encode()).hexdigest()[:28]


def _same_address(a: str, b: str) -> bool:
    """TP-DA of a send vs TP-RA of a report: the same number, international or not."""
    da, ra = a.lstrip("+"), b.lstrip("+")
    if da == ra:
        return True
    if da.isdigit() and ra.isdigit() and min(len(da), len(ra)) >= 7:
        return da.endswith(ra) or ra.endswith(da)
    return False


@dataclass(frozen=True)
class Location:
    """Where a message sits on the module: storage and index."""

    mem: str
    index: int


@dataclass(frozen=True)
class ReceivedMessage:
    """A whole SMS: one DELIVER or every part of a concatenated one, in order.

    ``complete`` is False for the parts of a concatenated message handed over
    before all came (held too long, storage nearly full, or a direct delivery
    part acknowledged on its own); ``parts`` are then the parts there are.
    """

    identity: str
    parts: tuple[pdu.Deliver, ...]
    locations: tuple[Location, ...]
    complete: bool = True

    @property
    def part_ids(self) -> tuple[str, ...]:
        """:func:`part_identity` of every part, in order."""
        return tuple(part_identity(p) for p in self.parts)

    @property
    def sender(self) -> str:
        return str(self.parts[0].tp_oa)

    @property
    def joined(self) -> pdu.CompletedMessage | None:
        """The codec's join of the parts (:class:`pdu.Reassembler`), None if incomplete.

        The codec joins UCS-2 parts before decoding, so a surrogate pair split
        at a segment boundary comes out whole.
        """
        if not self.complete:
            return None
        r = pdu.Reassembler()
        done: pdu.CompletedMessage | None = None
        for part in self.parts:
            done = r.add(part, 0.0) or done
        return done

    @property
    def text(self) -> str | None:
        joined = self.joined
        if joined is not None:
            return joined.text
        texts = [t for p in self.parts if (t := p.tp_ud.text) is not None]
        return "".join(texts) if len(texts) == len(self.parts) else None

    @property
    def data(self) -> bytes | None:
        joined = self.joined
        if joined is not None:
            return joined.data
        datas = [d for p in self.parts if (d := p.tp_ud.data) is not None]
        return b"".join(datas) if len(datas) == len(self.parts) else None

    @property
    def first(self) -> pdu.Deliver:
        return self.parts[0]


@dataclass(frozen=True)
class Undecodable:
    """A PDU that is not a message we can read: reported with its raw content.

    ``raw`` is the PDU line as the module gave it (it may be empty or not hex
    for a damaged record), ``error`` what is wrong with it.
    """

    identity: str
    raw: str
    error: str
    locations: tuple[Location, ...]


@dataclass(frozen=True)
class StatusReportReceived:
    """An SMS-STATUS-REPORT; ``matched`` when its TP-MR and TP-RA are those of a
    send of the last ``STATUS_REPORT_WINDOW``."""

    identity: str
    report: pdu.StatusReport
    matched: bool
    locations: tuple[Location, ...]


Inbound = ReceivedMessage | Undecodable | StatusReportReceived
Consumer = Callable[[Inbound], Awaitable[None]]
#: ``await known(part_id)``: True when the application already has the message
#: the part (:func:`part_identity`) belongs to.
Known = Callable[[str], Awaitable[bool]]


@dataclass(frozen=True)
class SendResult:
    """TP-MR of every part sent, in order."""

    mrs: tuple[int, ...]


class PartialSendError(ModemError):
    """Part ``failed_part`` (1-based) of a ``parts``-part send failed after
    earlier parts went out: ``sent_mrs`` are their TP-MRs (they reached the SC,
    so the recipient may see the start of the message). ``cause`` is the error
    of the failed part (also ``__cause__``); ``data_sent`` is its
    ``data_sent`` (that part's PDU was written: its outcome is unknown)."""

    def __init__(
        self, sent_mrs: tuple[int, ...], failed_part: int, parts: int, cause: BaseException
    ) -> None:
        super().__init__(
            f"part {failed_part} of {parts} failed ({cause}); "
            f"parts sent with TP-MR {', '.join(map(str, sent_mrs))}"
        )
        self.sent_mrs = sent_mrs
        self.failed_part = failed_part
        self.parts = parts
        self.cause = cause
        self.data_sent = bool(getattr(cause, "data_sent", False))
        self.fault = getattr(cause, "fault", Fault.DEVICE)

    @property
    def transient(self) -> bool:
        return bool(getattr(self.cause, "transient", False))


@dataclass(frozen=True)
class _Cue:
    loc: Location
    mark: int  # value of the cue counter when this +CMTI/+CDSI arrived


@dataclass
class _Direct:
    name: str  # "+CMT" / "+CDS"
    raw: str
    damage: str
    arrived: float  # loop time
    deadline: float  # loop time: the +CNMA must be written before
    generation: int  # session generation it arrived in


@dataclass
class _Part:
    msg: pdu.Deliver
    pid: str
    loc: Location | None  # None: a direct delivery (only in memory)


@dataclass
class _Group:
    key: tuple[str, int, int, bool]
    parts: dict[int, _Part] = field(default_factory=dict)
    extra: list[Location] = field(default_factory=list)  # duplicate copies' indexes
    first_seen: float = 0.0  # service clock, this process

    def scts(self) -> list[datetime]:
        return [_aware(p.msg.tp_scts) for p in self.parts.values()]

    def distance(self, t: datetime) -> float:
        """Largest TP-SCTS gap between ``t`` and the parts held."""
        return max(abs((t - s).total_seconds()) for s in self.scts())

    def oldest(self) -> datetime:
        return min(self.scts())

    def locations(self) -> list[Location]:
        return [p.loc for _, p in sorted(self.parts.items()) if p.loc is not None] + self.extra

    def ordered(self) -> tuple[pdu.Deliver, ...]:
        return tuple(p.msg for _, p in sorted(self.parts.items()))


class SmsService:
    """The SMS service on one :class:`~modem.session.Session`.

    ``known``: see :data:`Known`. ``ref_source``: returns the concatenation
    reference of the next multi-part send (an application that persists it
    keeps references distinct across restarts); without it references start
    at a random value per service and count up (TS 23.040 §9.2.3.24.1: the
    receiver joins parts by sender and reference). Timing defaults (None) are
    read from :mod:`modem.timing` when used.
    """

    def __init__(
        self,
        session: Session,
        consumer: Consumer,
        *,
        known: Known | None = None,
        ref_source: Callable[[], int] | None = None,
        reassembly_max_age: float | None = None,
        periodic_sweep: float | None = None,
        send_retry: C.RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        verify_reads: bool = False,
        read_ahead: bool = False,
    ) -> None:
        self.session = session
        self.client = session.client
        self.consumer = consumer
        self._last_decode = _LastDecode()
        self.known = known
        self.ref_source = ref_source
        self._reassembly_max_age = reassembly_max_age
        self._periodic_sweep = periodic_sweep
        self._send_retry = send_retry
        self._clock = clock
        self._last_sweep = clock()
        #: Read every message twice and hand it over only when both reads agree:
        #: guards against a noisy line turning hex digits into other hex digits
        #: (a PDU of the right length that decodes to the wrong text). One more
        #: +CMGR per message.
        self.verify_reads = verify_reads
        #: Read the next cued message while the consumer takes the last one (its
        #: delete still waits for the consumer): for a consumer that journals
        #: durably, during which the line would be idle. One hand-over in flight
        #: at most; settled before anything else the work loop does.
        self.read_ahead = read_ahead
        self._ahead: asyncio.Task[bool] | None = None
        self._sub = self.client.subscribe(
            ("+CMTI", "+CMT", "+CDSI", "+CDS", "+CIEV", "+QIND", "^SMMEMFULL")
        )
        #: read cues (+CMTI/+CDSI). Bounded: when full, a sweep replaces the cue.
        self._cues: asyncio.Queue[_Cue] = asyncio.Queue(CUE_QUEUE_SIZE)
        self._cue_count = 0
        #: cue counter when each location was last read, and when the last
        #: complete listing was issued: a cue not newer than that was seen
        self._handled: dict[Location, int] = {}
        #: per storage: the cue counter when its last complete listing was issued
        self._listed_mark: dict[str, int] = {}
        self._sweep_wanted = asyncio.Event()
        #: storages other than <mem1> to sweep (after a re-init, or a +CMTI naming one)
        self._other_wanted: set[str] = set()
        #: other storages whose sweep met damage: swept again with the backed-off re-sweep
        self._other_retry: set[str] = set()
        #: (session generation, the <mem1> this service selected in it; None:
        #: unknown, a +CPMS= whose outcome is not known). Another generation:
        #: the re-initialisation selected the configured <mem1>.
        self._selection: tuple[int, str | None] | None = None
        self._wake = asyncio.Event()
        self._groups: list[_Group] = []
        self._held: dict[Location, str] = {}  # read, waiting for other parts: PDU hex
        #: acknowledged, delete not yet confirmed: location -> PDU hex it held
        self._to_delete: dict[Location, str] = {}
        #: PDU hex last read at each location, and the session generation of that read
        self._pdu_at: dict[Location, str] = {}
        self._read_gen: dict[Location, int] = {}
        #: records without a PDU line: (damage, length) and the rounds in a row seen
        self._damage_seen: dict[Location, tuple[tuple[str, int], int]] = {}
        #: TP-MR -> (recipient, send time): only the latest send per TP-MR
        self._recent_sends: dict[int, tuple[str, float]] = {}
        self._send_ref = secrets.randbelow(256)
        #: direct deliveries (+CMT/+CDS) not yet handed over. Bounded: beyond it
        #: a PDU is not acknowledged, so the network delivers it again later.
        self._direct: deque[_Direct] = deque()
        self._acks_due = 0
        self._no_ack_due = asyncio.Event()
        self._no_ack_due.set()
        self._ack_gate_until = 0.0  # loop time after which sends no longer wait for acks
        self._ack_failures = 0
        self._routing_check_wanted = False
        self._routing_timer: asyncio.TimerHandle | None = None
        self._fell_back = False
        self._cnma_modes: tuple[int, frozenset[int]] | None = None  # (generation, <n>s)
        self._last_damaged_direct: tuple[str, str] | None = None
        #: module clock: (generation, its time, service clock when read); None: not read
        self._module_clock: tuple[int, datetime, float] | None = None
        self._next_release: float | None = None  # service clock when a held group is due
        self._storage_full_seen = False
        self._pressure_check = False
        #: records the last sweep had to leave on the module (drafts, damaged
        #: records not yet confirmed): they take slots that held parts cannot use
        self._stuck_other = 0
        self.stats = {
            "received": 0,
            "acked": 0,
            "deleted": 0,
            "sweeps": 0,
            "sent": 0,
            "undecodable": 0,
            "consumer_errors": 0,
            "send_retries": 0,
            "stale_cues": 0,
            "incomplete": 0,
            "known_parts": 0,
            "direct_damaged": 0,
            "direct_ignored": 0,
            "nacked": 0,
            "ack_failures": 0,
            "routing_restored": 0,
            #: the last pause after a refused receive step (see _failure_pause)
            "receive_backoff_ms": 0,
        }
        #: receive steps refused in a row (reset by a sweep that completes)
        self._step_failures = 0
        session.on_ready.append(self._on_session_ready)
        self._noise_timer: asyncio.TimerHandle | None = None
        #: lines the line discipline dropped as noise: how many, and the last one
        #: (a record's PDU line that is not hex ends up there, bounded)
        self._noise_seq = 0
        self._noise_data = ""
        #: consecutive rounds that met damaged entries or a consumer error, and
        #: the backed-off re-sweep
        self._failed_rounds = 0
        self._round_failed = False
        self._resweep_timer: asyncio.TimerHandle | None = None
        self.client.on_discard.append(self._on_noise)

    # -- timing, read when used ----------------------------------------------------

    @property
    def reassembly_max_age(self) -> float:
        """Hold limit of concatenated parts (``timing.HOLD_MAX_AGE`` unless given)."""
        v = self._reassembly_max_age
        return timing.HOLD_MAX_AGE if v is None else v

    @reassembly_max_age.setter
    def reassembly_max_age(self, value: float | None) -> None:
        self._reassembly_max_age = value

    @property
    def periodic_sweep(self) -> float:
        """Safety sweep period (``timing.PERIODIC_SWEEP`` unless given; 0: off)."""
        v = self._periodic_sweep
        return timing.PERIODIC_SWEEP if v is None else v

    @periodic_sweep.setter
    def periodic_sweep(self, value: float | None) -> None:
        self._periodic_sweep = value

    @property
    def send_retry(self) -> C.RetryPolicy:
        """Retry policy of sends (5 attempts, backoff from ``timing`` unless given)."""
        if self._send_retry is not None:
            return self._send_retry
        return C.RetryPolicy(
            attempts=5,
            initial=2 * timing.RETRY_INITIAL,
            factor=timing.RETRY_FACTOR,
            maximum=timing.RETRY_MAX,
        )

    @send_retry.setter
    def send_retry(self, value: C.RetryPolicy | None) -> None:
        self._send_retry = value

    # -- public --------------------------------------------------------------------

    def request_sweep(self, mem: str | None = None) -> None:
        """Ask for a storage sweep (+CMGL=4) at the next opportunity: of
        ``<mem1>``, or of storage ``mem`` (selected as ``<mem1>`` meanwhile)."""
        if mem is None or mem == self._mem():
            self._sweep_wanted.set()
        else:
            self._other_wanted.add(mem)
        self._wake.set()

    def _on_session_ready(self) -> None:
        """After every (re-)initialisation: sweep ``<mem1>`` and every other
        storage that may hold what arrived before ``+CPMS`` was restored
        (:attr:`Session.other_storages`)."""
        self.request_sweep()
        for mem in self.session.other_storages:
            self.request_sweep(mem)

    async def run(self) -> None:
        """Receive until cancelled or until the client is closed.

        Only this task's own cancellation ends it: a consumer that raises
        ``CancelledError`` is a consumer error (logged, the item kept and
        offered again).
        """
        try:
            async with asyncio.TaskGroup() as tg:
                work = tg.create_task(self._work_loop())
                # the subscription ends when the client is closed (or this
                # service is): then there is nothing more to receive
                await self._urc_loop()
                work.cancel()
        finally:
            self.close()

    def close(self) -> None:
        self._no_ack_due.set()  # nothing will be acknowledged any more: no send waits
        for timer in (self._noise_timer, self._resweep_timer, self._routing_timer):
            if timer is not None:
                timer.cancel()
        self._noise_timer = self._resweep_timer = self._routing_timer = None
        with contextlib.suppress(ValueError):
            self.client.on_discard.remove(self._on_noise)
        self._sub.close()
        with contextlib.suppress(ValueError):
            self.session.on_ready.remove(self._on_session_ready)

    async def send(
        self,
        recipient: str,
        content: str | bytes,
        *,
        encoding: pdu.Alphabet | None = None,
        srr: bool = False,
        registration_timeout: float | None = None,
    ) -> SendResult:
        """Send ``content`` to ``recipient``; multi-part when it needs to be.

        Raises :class:`CmsError` (permanent, or transient after the retries),
        :class:`CommandTimeout` (the +CMGS may or may not have gone out),
        :class:`CommandFailed` for a plain ``ERROR`` (never retried once its
        ``data_sent`` says the PDU was written: the outcome is unknown),
        ``TimeoutError`` when not registered in time (``registration_timeout``,
        default ``timing.REGISTRATION_WAIT``), ``PduError`` (ours) for content
        SMS cannot carry. When part *k* > 1 of a multi-part send fails, the
        error is a :class:`PartialSendError` whose ``sent_mrs`` are the TP-MRs
        of parts 1..k-1, which did go out (their recipient may see them), and
        whose ``cause`` is the failed part's error. A failure of the first
        part raises that error itself (nothing went out, unless its
        ``data_sent`` says the PDU was written).
        """
        wait = timing.REGISTRATION_WAIT if registration_timeout is None else registration_timeout
        parts = pdu.submit_parts(recipient, content, encoding=encoding, srr=srr)
        if len(parts) > 1:
            ref = self._next_ref()
            parts = pdu.submit_parts(recipient, content, encoding=encoding, srr=srr, ref=ref)
        mrs: list[int] = []
        for k, part in enumerate(parts, 1):
            hex_pdu, tpdu_len = pdu.cmgs_pdu(part)
            try:
                mr = await self._send_one(hex_pdu, tpdu_len, wait)
            except (ModemError, TimeoutError) as exc:
                if mrs:
                    raise PartialSendError(tuple(mrs), k, len(parts), exc) from exc
                raise
            self._note_sent(mr, str(part.tp_da))
            mrs.append(mr)
            self.stats["sent"] += 1
        return SendResult(tuple(mrs))

    def _next_ref(self) -> int:
        if self.ref_source is not None:
            return int(self.ref_source()) % 256
        self._send_ref = (self._send_ref + 1) % 256
        return self._send_ref

    def _note_sent(self, mr: int, recipient: str) -> None:
        now = self._clock()
        window = timing.STATUS_REPORT_WINDOW
        sends = self._recent_sends  # oldest first: a reused TP-MR moves to the end
        stale = []
        for k, (_, at) in sends.items():
            if now - at <= window:
                break  # the rest are younger (a clock step back leaves some: matching checks age)
            stale.append(k)
        for k in stale:
            del sends[k]
        sends.pop(mr, None)
        sends[mr] = (recipient, now)  # a reused TP-MR replaces the older send

    def _report_matches(self, report: pdu.StatusReport) -> bool:
        """TS 23.040 §9.2.2.3: TP-MR names the SUBMIT, TP-RA its recipient."""
        sent = self._recent_sends.get(report.tp_mr)
        if sent is None:
            return False
        recipient, at = sent
        if self._clock() - at > timing.STATUS_REPORT_WINDOW:
            return False
        return _same_address(recipient, str(report.tp_ra))

    async def _acks_written(self) -> None:
        """A +CMGS can hold the line for SEND_TIMEOUT (180 s); the +CNMA of a
        direct delivery must be written within CNMA_DEADLINE (TS 27.005 §3.4.4):
        no send starts while one is due, and none waits past the last deadline."""
        left = self._ack_gate_until - asyncio.get_running_loop().time()
        if self._no_ack_due.is_set() or left <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(left):
                await self._no_ack_due.wait()

    async def _send_one(self, hex_pdu: str, tpdu_len: int, registration_timeout: float) -> int:
        policy = self.send_retry
        attempt = 0
        while True:
            attempt += 1
            await self.session.ready.wait()
            await self.session.wait_registered(registration_timeout)
            await self._acks_written()
            try:
                return await self.client.execute(C.cmgs(hex_pdu, tpdu_len))
            except CmsError as exc:
                if not exc.transient or attempt >= policy.attempts:
                    self.session.note_sim_error(exc)
                    raise
                if exc.data_sent and exc.code in OUTCOME_UNKNOWN_CMS:
                    # the PDU went out and the module cannot say what became of it
                    raise
                log.info("send failed (%s), retry %d", exc, attempt)
            except CommandTimeout as exc:
                # No prompt in time: nothing was written after it (ESC sent), so a
                # retry is safe. Once the PDU is out, a timeout is an unknown outcome.
                if exc.data_sent or attempt >= policy.attempts:
                    raise
                log.info("no prompt for the send (%s), retry %d", exc, attempt)
            except (ModemDisconnected, ModemRebooted) as exc:
                # Safe to retry only while the PDU was not written: once it was,
                # the module may have sent it and a resend is a second Command.
                if self.client.closed or exc.data_sent or attempt >= policy.attempts:
                    raise
                log.info("send interrupted before the PDU (%s), retry %d", exc, attempt)
            except CommandFailed as exc:
                # plain ERROR right after a reboot (prompt refused): retry a few times.
                # A plain ERROR after the PDU (a module without +CMEE codes) may be
                # +CMS ERROR 332/500 in disguise (TS 27.005 §3.5.1): the SMS may have
                # gone out, so it is never sent again here.
                if exc.data_sent or attempt >= policy.attempts:
                    raise
                log.info("send failed (%s), retry %d", exc, attempt)
            self.stats["send_retries"] += 1
            await asyncio.sleep(policy.delay(attempt))

    # -- wake-ups ------------------------------------------------------------------

    def _on_noise(self, event: Discarded) -> None:
        """A line was dropped as noise: it may have been a +CMTI. Sweep soon (debounced)."""
        self._noise_seq += 1
        self._noise_data = event.data
        if self._noise_timer is None:
            loop = asyncio.get_running_loop()
            self._noise_timer = loop.call_later(timing.NOISE_SWEEP_DELAY, self._noise_sweep)

    def _noise_sweep(self) -> None:
        self._noise_timer = None
        self.request_sweep()

    def _retry_later(self, *, at_once: bool) -> None:
        """Something is left on the module (damaged entry, consumer error): sweep
        again, at once the first time when ``at_once``, then with backoff - a
        record always listed damaged or a journal that stays down must not make
        the service sweep back to back (no busy polling)."""
        self._failed_rounds += 1
        if at_once and self._failed_rounds <= 1:
            self.request_sweep()
            return
        if self._resweep_timer is not None:
            return
        n = min(max(self._failed_rounds - 2, 0), 16)
        delay = min(timing.RETRY_MAX, timing.RETRY_INITIAL * timing.RETRY_FACTOR**n)
        loop = asyncio.get_running_loop()
        self._resweep_timer = loop.call_later(delay, self._resweep_due)

    def _resweep_due(self) -> None:
        self._resweep_timer = None
        self.request_sweep()
        for mem in self._other_retry:
            self.request_sweep(mem)
        self._other_retry.clear()

    def _want_routing_check(self, at: float | None = None) -> None:
        """Check +CNMI? now, or at loop time ``at`` (keeps the latest)."""
        if at is None:
            self._routing_check_wanted = True
            self._wake.set()
            return
        loop = asyncio.get_running_loop()
        if self._routing_timer is not None:
            if self._routing_timer.when() >= at:
                return
            self._routing_timer.cancel()
        self._routing_timer = loop.call_at(at, self._routing_due)

    def _routing_due(self) -> None:
        self._routing_timer = None
        self._want_routing_check()

    # -- loops -----------------------------------------------------------------------

    async def _urc_loop(self) -> None:
        seen_overflow = 0
        async for urc in self._sub:
            if self._sub.overflowed != seen_overflow:
                seen_overflow = self._sub.overflowed
                self.request_sweep()
            self._on_urc(urc)

    def _on_urc(self, urc: Urc) -> None:
        if urc.name in ("+CIEV", "+QIND", "^SMMEMFULL"):
            # storage-full indications: +CIEV: "smsfull",1 / ^SMMEMFULL / +QIND: "smsfull"
            if "full" in urc.line.lower():
                log.warning("module reports SMS storage full (%s): sweeping", urc.line)
                self._storage_full_seen = True
                self.request_sweep()
            return
        try:
            if urc.name in ("+CMTI", "+CDSI"):
                mem, index = C.parse_cmti(urc.args)
                if mem != self._mem():
                    # +CMGR/+CMGD act on <mem1> (TS 27.005 §3.2.2): a message in
                    # another storage is found by a sweep of that storage (it is
                    # selected as <mem1> meanwhile); a damaged name by a sweep of
                    # <mem1>, as the name cannot be trusted
                    plausible = len(mem) == 2 and mem.isascii() and mem.isupper()
                    known = self.session.other_storages
                    if plausible and (mem in known or mem in ("SM", "ME")):
                        log.warning("%s for storage %r: sweeping %r", urc.name, mem, mem)
                        self.request_sweep(mem)
                    else:
                        log.warning(
                            "%s for storage %r, reading %r: sweeping", urc.name, mem, self._mem()
                        )
                        self.request_sweep()
                    return
                self._cue_count += 1
                self._cues.put_nowait(_Cue(Location(mem, index), self._cue_count))
                self._wake.set()  # the work loop's one wait (_next_cue)
            elif urc.name in ("+CMT", "+CDS"):
                self._on_direct(urc)
        except asyncio.QueueFull:
            self.request_sweep()
        except ProtocolError as exc:
            log.warning("malformed %s (%s): sweeping instead", urc.name, exc)
            self.request_sweep()

    def _on_direct(self, urc: Urc) -> None:
        """+CMT/+CDS: queue it with its +CNMA deadline (TS 27.005 §3.4.1)."""
        wanted = self.session.wanted_routing()
        asked = wanted.mt in (2, 3) if urc.name == "+CMT" else wanted.ds == 1
        if not asked:
            # Not configured: line noise that reads as +CMT (the next line would
            # become a phantom "PDU"), or routing changed behind our back.
            self.stats["direct_ignored"] += 1
            log.warning(
                "%s while the configuration asks for stored delivery: ignored; sweeping", urc.name
            )
            self.request_sweep()
            self._want_routing_check()
            return
        loop = asyncio.get_running_loop()
        if urc.pdu is None:
            log.warning("%s without its PDU line: sweeping; checking routing", urc.name)
            self.request_sweep()
            self._want_routing_check(loop.time() + timing.ROUTING_RECHECK_AFTER)
            return
        if len(self._direct) >= CUE_QUEUE_SIZE:
            log.warning("too many direct deliveries pending; not acknowledging one")
            return
        line = urc.pdu
        try:
            length = C.parse_cmt_header(urc.args)
        except ProtocolError as exc:
            damage = f"{urc.name} header: {exc}"
        else:
            damage = C.pdu_line_damage(line, length)
            if damage and urc.name == "+CDS" and C.bare_tpdu(line, length):
                # a +CDS with the TPDU alone (no SMSC field; some modules send it so):
                # read as the same report with an empty SMSC field (TS 24.011 §8.2.5.1)
                damage, line = "", "00" + line
        raw = line if damage else line.upper()
        now = loop.time()
        deadline = now + timing.CNMA_DEADLINE
        self._direct.append(_Direct(urc.name, raw, damage, now, deadline, self.session.generation))
        if self._needs_ack():
            self._acks_due += 1
            self._no_ack_due.clear()
            self._ack_gate_until = max(self._ack_gate_until, now + timing.CNMA_DEADLINE)
        self._wake.set()

    def _needs_ack(self) -> bool:
        return self.session.config.csms == 1

    async def _work_loop(self) -> None:
        try:
            await self._work()
        finally:
            ahead, self._ahead = self._ahead, None
            if ahead is not None and not ahead.done():
                ahead.cancel()  # the consumer's own cancellation: the item stays
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await ahead

    async def _settle_ahead(self) -> None:
        """Wait for the hand-over in flight (read-ahead), and its delete; its
        failure is raised here, in the work loop, as if it had run inline."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            await ahead

    def _ahead_done(self, task: asyncio.Task[bool]) -> None:
        if task is self._ahead and not task.cancelled() and task.exception() is not None:
            self._wake.set()  # the work loop settles it (and reacts) at once

    async def _work(self) -> None:
        while True:
            try:
                await self.session.ready.wait()
                if self._ahead is not None and (self._ahead.done() or self._wanted()):
                    await self._settle_ahead()
                if self._direct:
                    await self._handle_direct(self._direct.popleft())
                    continue
                if self._routing_check_wanted:
                    self._routing_check_wanted = False
                    await self._check_routing()
                    continue
                if self._sweep_wanted.is_set():
                    self._sweep_wanted.clear()
                    await self.sweep()
                    continue
                if self._other_wanted:
                    mem = min(self._other_wanted)
                    self._other_wanted.discard(mem)
                    await self._sweep_other(mem)
                    continue
                if self._pressure_check:
                    await self._check_storage(None, release=False)
                    continue
                if self._next_release is not None and self._next_release <= self._clock():
                    await self._settle_ahead()
                await self._release_due()
                # deletes of parts held in another storage may have selected it:
                # wait with the configured <mem1> selected
                await self._reselect_mem1()
                cue = await self._next_cue()
                if cue is not None:
                    await self._read_index(cue)
                elif self._ahead is not None and self._ahead.done():
                    await self._settle_ahead()
            except StaleCommand as exc:
                # a reboot (or re-init) came while it waited for the line: not
                # written; the re-initialisation asks for the sweeps that find it
                log.info("receive step not run (%s); sweeping after the re-init", exc)
                self.request_sweep()
            except (CommandTimeout, ModemDisconnected) as exc:
                if self.client.closed:
                    return
                # the session counts timeouts (hung module) and reconnects; we sweep after
                log.info("receive interrupted (%s); sweeping when the module is back", exc)
                self.request_sweep()
                await asyncio.sleep(timing.RETRY_INITIAL)
            except ModemError as exc:
                if isinstance(exc, CmsError) and exc.code == CmsErrorCode.MEMORY_FULL:
                    log.warning("storage full: sweeping")
                # a SIM gone or failed with no URC: the session looks at it again,
                # and this loop waits for it (session.ready) instead of retrying
                self.session.note_sim_error(exc)
                # a refusal (the module answered an error) is asked less and less
                # often; line noise (a garbled answer) is not the module's answer
                # and is swept again at the usual pace once the line is clean
                pause = (
                    self._failure_pause()
                    if isinstance(exc, CommandFailed)
                    else timing.RETRY_INITIAL
                )
                log.warning("receive step failed (%s); sweeping in %.1f s", exc, pause)
                self.request_sweep()
                await asyncio.sleep(pause)

    def _failure_pause(self) -> float:
        """The pause after a receive step the module refused (CommandFailed: it
        answered an error, as opposed to a garbled answer): RETRY_INITIAL,
        times RETRY_FACTOR per refusal in a row, up to RETRY_MAX. A module
        that keeps refusing (``+CMS ERROR: 500`` to every ``+CMGL``) is asked
        less and less often, not every 0.5 s for ever; a sweep that completes
        resets it (:meth:`sweep`)."""
        self._step_failures += 1
        n = min(self._step_failures - 1, 32)
        pause = min(timing.RETRY_MAX, timing.RETRY_INITIAL * timing.RETRY_FACTOR**n)
        self.stats["receive_backoff_ms"] = round(pause * 1000)
        return float(pause)

    async def _next_cue(self) -> _Cue | None:
        """Wait for a cue or a wake-up (sweep, direct delivery, routing check),
        the periodic sweep or the next held group's expiry; no polling.

        The periodic sweep is due ``periodic_sweep`` seconds after the last
        sweep, however many cues came in between: under steady traffic a
        message whose ``+CMTI`` was lost is still found.
        """
        timeout: float | None = None
        due_cb = self._periodic_sweep_due
        if self.periodic_sweep > 0:
            timeout = self.periodic_sweep - (self._clock() - self._last_sweep)
            if timeout <= 0:
                self.request_sweep()
                return None
        if self._next_release is not None:
            due = max(0.0, self._next_release - self._clock())
            if timeout is None or due < timeout:
                timeout, due_cb = due, self._held_release_due
        if not self._cues.empty():
            return self._cues.get_nowait()
        if self._wanted() or (self._ahead is not None and self._ahead.done()):
            return None
        self._wake.clear()
        # the wait's end is a timer of its own, named by what it is for: an idle
        # process's wake-ups can then be told apart (docs/reliability.md, "Long idle")
        timer = None if timeout is None else asyncio.get_running_loop().call_later(timeout, due_cb)
        # one wait, no task: a cue sets the wake-up too (_urc_loop)
        try:
            await self._wake.wait()
        finally:
            if timer is not None:
                timer.cancel()
        if not self._cues.empty():
            return self._cues.get_nowait()
        return None

    def _periodic_sweep_due(self) -> None:
        """Timer: the periodic sweep is due; :meth:`_next_cue` returns and the
        next call finds it due and asks for it."""
        self._wake.set()

    def _held_release_due(self) -> None:
        """Timer: a held group's hold ends; the work loop releases it."""
        self._wake.set()

    def _wanted(self) -> bool:
        return (
            bool(self._direct)
            or self._routing_check_wanted
            or self._pressure_check
            or self._sweep_wanted.is_set()
            or bool(self._other_wanted)
        )

    # -- receive: stored -------------------------------------------------------------

    async def _exec(self, command: C.Command[_T]) -> _T:
        """Run a command that names no storage location once the session is
        ready (never between the commands of a re-initialisation)."""
        await self.session.ready.wait()
        return await self.client.execute(command)

    def _selected(self, gen: int) -> str | None:
        """``<mem1>`` in generation ``gen`` as far as this service knows."""
        sel = self._selection
        if sel is not None and sel[0] == gen:
            return sel[1]
        return self._mem()  # the re-initialisation set the configured one

    def _usable(self, mem: str, gen: int) -> bool:
        """A read, listing or delete of storage ``mem`` learned in generation
        ``gen`` may be written now: the session is ready, in that generation,
        with ``mem`` selected as ``<mem1>``."""
        s = self.session
        return s.ready.is_set() and s.generation == gen and self._selected(gen) == mem

    def _storage_triple(self, mem1: str) -> tuple[str, str, str]:
        """``+CPMS`` with ``<mem1>`` = ``mem1`` and the configured ``<mem2>``/
        ``<mem3>`` (new messages keep arriving where the session put them)."""
        configured = self.session.config.storage or self.session.profile.storage
        st = self.session.storage
        mems = list(configured)
        if st is not None:
            for i, name in enumerate(st.mem[:3]):
                if len(name) == 2 and name.isascii() and name.isupper():
                    mems[i] = name
        return (mem1, mems[1], mems[2])

    async def _select(self, mem: str) -> int:
        """Make ``mem`` ``<mem1>`` (TS 27.005 §3.2.2: what ``+CMGL``/``+CMGR``/
        ``+CMGD`` act on) unless it is; the session generation it holds in.

        Before the ``+CPMS=`` the selection is unknown, so nothing that names
        an index is written if its outcome is lost; a re-initialisation
        selects the configured storage again (a new generation).
        """
        await self.session.ready.wait()
        gen = self.session.generation
        if self._selected(gen) == mem:
            return gen
        self._selection = (gen, None)
        s = self.session
        await self.client.execute(
            C.cpms_set(*self._storage_triple(mem)).when(
                lambda: s.ready.is_set() and s.generation == gen
            )
        )
        self._selection = (gen, mem)
        return gen

    async def _reselect_mem1(self) -> None:
        """Put the configured ``<mem1>`` back after work in another storage."""
        if self.session.ready.is_set() and self._selected(self.session.generation) != self._mem():
            await self._select(self._mem())

    async def _exec_in(self, mem: str, command: C.Command[_T], gen: int | None = None) -> _T:
        """Run a read, listing or delete of storage ``mem`` with ``mem`` selected,
        once the session is ready; ``gen``: only in that session generation.

        The condition is checked by the client under its lock right before the
        line is written (:class:`~modem.client.StaleCommand` when it fails): a
        command queued behind a slow one while the module rebooted is never
        written into a storage (or a generation) it was not meant for.
        """
        now = await self._select(mem)
        if gen is not None and gen != now:
            raise StaleCommand(command.text)
        return await self.client.execute(command.when(lambda: self._usable(mem, now)))

    async def _sweep_other(self, mem: str) -> None:
        """Sweep storage ``mem`` (not the configured ``<mem1>``): select it, list,
        handle each entry as any other (handed over, deleted after the
        acknowledgement, in that storage), then select ``<mem1>`` again."""
        try:
            await self.sweep(mem)
        except CommandFailed as exc:
            if not (exc.command or "").startswith("AT+CPMS="):
                raise
            log.warning("storage %s cannot be selected (%s): not swept", mem, exc)
        # (after an error the work loop selects <mem1> again before it waits)
        await self._reselect_mem1()

    async def sweep(self, mem: str | None = None) -> int:
        """List every stored message (+CMGL=4) of ``<mem1>`` (or of storage
        ``mem``, selected as ``<mem1>`` for the listing, the reads and the
        deletes) and handle each; returns how many."""
        configured = self._mem()
        mem = configured if mem is None else mem
        other = mem != configured
        self.stats["sweeps"] += 1
        if not other:
            self._last_sweep = self._clock()
        self._round_failed = False
        await self.session.ready.wait()
        mark = self._cue_count
        gen = await self._select(mem)
        trusted = True  # the listing shows everything there is
        try:
            listing = await self._exec_in(mem, C.cmgl_lenient(C.MessageStat.ALL), gen)
        except CmsError as exc:
            if exc.code in (CmsErrorCode.INVALID_MEMORY_INDEX, CmsErrorCode.MEMORY_FAILURE):
                listing = C.Listing((), ())  # some modules answer an empty store so
            else:
                raise
        except CommandFailed as exc:
            if type(exc) is not CommandFailed:
                raise  # +CME ERROR: a real refusal
            # A plain ERROR is how a module without +CMEE answers an empty list
            # (and any other failure): nothing to handle, nothing to forget, and
            # no re-sweep (that would repeat the same ERROR back to back).
            log.info("+CMGL answered %s: taken as an empty store", exc.result)
            listing = C.Listing((), ())
            trusted = False
        listed = list(listing.entries)
        damaged_records = [d for d in listing.damaged if d.index is not None]
        unplaced = len(listing.skipped) - len(damaged_records)
        if listing.skipped:
            log.warning("sweep met %d damaged entries", len(listing.skipped))
        present = {Location(mem, s.index) for s in listed + damaged_records if s.index is not None}
        if trusted and unplaced <= 0:  # every index listed is known: absent is really gone
            self._listed_mark[mem] = mark
            for loc in [loc for loc in self._held if loc.mem == mem and loc not in present]:
                self._drop_held(loc)
            for loc in [loc for loc in self._to_delete if loc.mem == mem and loc not in present]:
                del self._to_delete[loc]  # the delete did succeed; only its answer was lost
        for stored in listed + damaged_records:
            await self._drain_direct()
            if stored.index is None:
                continue
            loc = Location(mem, stored.index)
            self._handled[loc] = max(self._handled.get(loc, 0), mark)
            if loc in self._to_delete:
                if self._to_delete[loc] == stored.pdu:
                    self._pdu_at[loc] = stored.pdu
                    self._read_gen[loc] = gen
                    await self._delete([loc])
                    continue
                # the index was freed and reused by a new message: handle it as new
                del self._to_delete[loc]
            if self._held.get(loc) == stored.pdu:
                continue
            try:
                # a listing pairs each PDU with an index from its own header line: a
                # noisy digit there would make us delete another message's index, so
                # the index is read back (+CMGR) and must hold the same PDU
                await self._handle_record(loc, stored, gen, verify=True, listed=True)
            except ProtocolError as exc:
                log.warning("index %d not handled (%s); sweeping again", stored.index, exc)
                self._round_failed = True
        if unplaced > 0:
            self._round_failed = True
        self._step_failures = 0  # the module answers again: refusals start over
        if other:
            if self._round_failed:
                self._other_retry.add(mem)
                self._retry_later(at_once=True)
            return len(listed) + len(damaged_records)
        drafts = sum(
            1 for e in listed if e.stat in (C.MessageStat.STO_UNSENT, C.MessageStat.STO_SENT)
        )
        # damaged records handed over in this sweep are counted once too many
        # (until the next sweep): errs on the side of freeing slots
        self._stuck_other = drafts + len(damaged_records) + max(unplaced, 0)
        await self._check_storage(len(listed) + len(damaged_records))
        if self._round_failed:
            self._retry_later(at_once=True)
        else:
            self._failed_rounds = 0
        return len(listed) + len(damaged_records)

    def _mem(self) -> str:
        """``<mem1>`` (read and delete storage) as the module last reported it;
        a name that is not two capitals (a noisy +CPMS? line) is not taken."""
        st = self.session.storage
        mem = st.mem[0] if st is not None and st.mem else ""
        if len(mem) == 2 and mem.isascii() and mem.isupper():
            return mem
        return (self.session.config.storage or self.session.profile.storage)[0]

    async def _read_record(self, loc: Location, gen: int | None = None) -> StoredPdu | None:
        """``+CMGR`` leniently (in ``loc``'s storage; ``gen``: in that session
        generation only); a PDU line the line discipline dropped as noise
        during the read (not hex) is put back as the record's raw content."""
        seq = self._noise_seq
        record = await self._exec_in(loc.mem, C.cmgr(loc.index, lenient=True), gen)
        if record is not None and record.damage and not record.pdu and self._noise_seq == seq + 1:
            record = replace(record, pdu=self._noise_data, damage="PDU line is not hex")
        return record

    async def _read_index(self, cue: _Cue) -> None:
        loc = cue.loc
        if cue.mark <= max(self._handled.get(loc, 0), self._listed_mark.get(loc.mem, 0)):
            # a read or a complete listing issued after this cue saw the location
            self.stats["stale_cues"] += 1
            log.debug("cue for index %d older than its last read: dropped", loc.index)
            return
        if loc in self._held:
            return
        gen = await self._select(loc.mem)
        mark = self._cue_count
        try:
            stored = await self._read_record(loc, gen)
        except CmsError as exc:
            if exc.code == CmsErrorCode.INVALID_MEMORY_INDEX:
                self._handled[loc] = mark
                return  # already gone (a sweep handled it)
            raise
        self._handled[loc] = mark
        # read while the last one was handed over: that one settles first (one
        # hand-over in flight; its delete goes out now, before this one's)
        await self._settle_ahead()
        if stored is None:
            return  # already gone (handled by a sweep)
        try:
            await self._handle_record(loc, stored, gen, listed=False, ahead=self.read_ahead)
        except ProtocolError as exc:
            log.warning("index %d not handled (%s); sweeping", loc.index, exc)
            self._retry_later(at_once=True)

    async def _handle_record(
        self,
        loc: Location,
        stored: StoredPdu,
        gen: int,
        *,
        verify: bool = False,
        listed: bool,
        ahead: bool = False,
    ) -> None:
        """One stored record: read again when asked (or damaged), then classify."""
        if stored.damage and not listed and stored.length == 0 and stored.pdu == "":
            # "+CMGR: 0,,0" is how some firmware answers an empty slot: only a
            # listing can tell a record with an empty PDU from no record
            self.request_sweep()
            return
        if stored.damage:
            # a damaged record is reported only when two reads of it agree (the
            # listing's entry is not one of them: a non-hex line is lost there)
            first = await self._read_record(loc, gen) if listed else stored
            again = await self._read_record(loc, gen)
            if first is None or again is None:
                return  # gone meanwhile
            if (again.pdu, again.damage, again.length) != (first.pdu, first.damage, first.length):
                raise ProtocolError(f"two reads of index {loc.index} disagree", first.pdu[:80])
            stored = again
        elif self.verify_reads or verify or self._last_decode.error(stored.pdu):
            # a PDU that does not decode may be a good one that a noisy line
            # changed (a flipped octet keeps the length): read it again before
            # reporting it, and deleting it
            again = await self._exec_in(loc.mem, C.cmgr(loc.index, lenient=True), gen)
            if again is None:
                return  # gone meanwhile
            first_read = (stored.pdu, stored.damage, stored.length)
            if (again.pdu, again.damage, again.length) != first_read:
                raise ProtocolError(f"two reads of index {loc.index} disagree", stored.pdu[:80])
        if stored.damage and not stored.pdu:
            # Nothing of the PDU line came: two reads "agree" on nothing even when
            # noise ate the line both times. Only rounds in a row prove it.
            key = (stored.damage, stored.length)
            seen = self._damage_seen.get(loc)
            n = seen[1] + 1 if seen is not None and seen[0] == key else 1
            self._damage_seen[loc] = (key, n)
            if n < timing.DAMAGED_CONFIRM_ROUNDS:
                raise ProtocolError(f"index {loc.index}: no PDU line ({n} rounds so far)", "")
        self._damage_seen.pop(loc, None)
        if stored.stat in (C.MessageStat.STO_UNSENT, C.MessageStat.STO_SENT):
            return  # our own drafts/outbox: not received messages, leave them
        self.stats["received"] += 1
        self._pdu_at[loc] = stored.pdu
        self._read_gen[loc] = gen
        if stored.damage:
            log.warning("index %d holds a damaged record (%s)", loc.index, stored.damage)
        await self._accept(stored.pdu, stored.damage, loc, ahead=ahead)

    # -- classification: one path for stored and direct deliveries ------------------------

    async def _accept(
        self,
        raw: str,
        damage: str,
        loc: Location | None,
        *,
        timeout: float | None = None,
        ahead: bool = False,
    ) -> bool:
        """Classify one PDU and hand it over; True when it is taken care of (the
        consumer accepted it, it is held as a part, or the application has it).

        ``loc`` is the stored location (None: a direct delivery, acknowledged to
        the network by the caller only when this returns True).
        """
        locs = [loc] if loc is not None else []
        where = tuple(locs)
        if damage:
            self.stats["undecodable"] += 1
            return await self._deliver(Undecodable(_raw_identity(raw), raw, damage, where), locs)
        msg = self._last_decode.decode(raw)
        if isinstance(msg, ValueError):
            self.stats["undecodable"] += 1
            return await self._deliver(
                Undecodable(_raw_identity(raw), raw, str(msg), where), locs, timeout=timeout
            )
        if isinstance(msg, pdu.StatusReport):
            item: Inbound = StatusReportReceived(
                _raw_identity(raw), msg, self._report_matches(msg), where
            )
            return await self._deliver(item, locs, timeout=timeout)
        if not isinstance(msg, pdu.Deliver):
            kind = type(msg).__name__
            item = Undecodable(_raw_identity(raw), raw, f"not an SMS-DELIVER ({kind})", where)
            return await self._deliver(item, locs, timeout=timeout)
        concat = msg.tp_ud.concat
        if concat is None or concat.total <= 1:
            item = ReceivedMessage(message_identity([msg]), (msg,), where)
            if ahead and loc is not None:  # a cued single-part message: read-ahead
                self._ahead = asyncio.ensure_future(self._deliver(item, locs))
                self._ahead.add_done_callback(self._ahead_done)
                return True
            return await self._deliver(item, locs, timeout=timeout)
        return await self._take_part(msg, concat, raw, loc, timeout=timeout)

    def _group_for(
        self, msg: pdu.Deliver, concat: pdu.Concat, pid: str
    ) -> tuple[_Group | None, _Part | None]:
        """The held message ``msg`` is a part of (or None), and the part itself
        when it is a copy of one held."""
        key = (str(msg.tp_oa), concat.ref, concat.total, concat.ref16)
        t = _aware(msg.tp_scts)
        best: _Group | None = None
        best_gap = 0.0
        for group in self._groups:
            if group.key != key:
                continue
            gap = group.distance(t)
            if gap > timing.CONCAT_SCTS_WINDOW:
                continue  # another message that reuses the reference
            have = group.parts.get(concat.seq)
            if have is not None:
                if have.pid == pid:
                    return group, have
                log.warning(
                    "part %d of ref %d from %s differs from the one held: another message",
                    concat.seq,
                    concat.ref,
                    key[0],
                )
                continue
            if best is None or gap < best_gap:
                best, best_gap = group, gap
        return best, None

    async def _take_part(
        self,
        msg: pdu.Deliver,
        concat: pdu.Concat,
        raw: str,
        loc: Location | None,
        *,
        timeout: float | None,
    ) -> bool:
        pid = part_identity(msg)
        group, copy = self._group_for(msg, concat, pid)
        if copy is not None and group is not None:
            # the same part again: network duplicate, or the same record re-read
            if loc is not None and loc != copy.loc and loc not in group.extra:
                group.extra.append(loc)
                self._held[loc] = raw
            return True
        completes = group is not None and len(group.parts) + 1 == concat.total
        if not completes and loc is not None and self.known is not None:
            try:
                have = await self.known(pid)
            except Exception:
                log.exception("the known hook failed; holding the part")
                have = False
            if have:
                self.stats["known_parts"] += 1
                log.info("index %d: part of a message the application has: deleting", loc.index)
                await self._delete([loc])
                return True
        if group is None:
            group = _Group((str(msg.tp_oa), concat.ref, concat.total, concat.ref16))
            group.first_seen = self._clock()
            self._groups.append(group)
        group.parts[concat.seq] = _Part(msg, pid, loc)
        if loc is not None:
            self._held[loc] = raw
        if completes:
            self._groups.remove(group)
            locs = group.locations()
            for held in locs:
                self._held.pop(held, None)
            parts = group.ordered()
            item = ReceivedMessage(message_identity(parts), parts, tuple(locs))
            return await self._deliver(item, locs, timeout=timeout)
        self._next_release = self._clock()  # recompute the hold deadline
        if loc is not None:
            self._pressure_check = True  # one more slot held: is storage nearly full?
        if loc is None:
            # a direct part is not on the SIM: the network forgets it once
            # acknowledged, so the consumer gets it now, alone and marked
            # incomplete; the whole message follows when the last part comes
            item = ReceivedMessage(message_identity([msg]), (msg,), (), complete=False)
            self.stats["incomplete"] += 1
            accepted = await self._deliver(item, [], timeout=timeout)
            if not accepted:
                del group.parts[concat.seq]
                if not group.parts:
                    self._groups.remove(group)
            return accepted
        return True

    def _drop_held(self, loc: Location) -> None:
        self._held.pop(loc, None)
        for group in list(self._groups):
            for seq, part in list(group.parts.items()):
                if part.loc == loc:
                    del group.parts[seq]
            group.extra = [x for x in group.extra if x != loc]
            if not group.parts:
                self._groups.remove(group)

    # -- bounds on what is held ---------------------------------------------------------

    async def _module_now(self) -> datetime:
        """The module's clock (``+CCLK?``, TS 27.007 §8.15), read once per session
        generation and ``MODULE_CLOCK_REFRESH``; the host's when it has none."""
        now = self._clock()
        cached = self._module_clock
        if (
            cached is None
            or cached[0] != self.session.generation
            or now - cached[2] > timing.MODULE_CLOCK_REFRESH
        ):
            try:
                t = await self._exec(C.cclk_query())
                if t.year < _PLAUSIBLE_YEAR:
                    raise ProtocolError("module clock not set", t.isoformat())
            except (CommandFailed, ProtocolError) as exc:
                log.info("no module clock (%s): ageing held parts by the host clock", exc)
                t = datetime.now(UTC)
            cached = self._module_clock = (self.session.generation, t, now)
        return cached[1].astimezone(UTC) + timedelta(seconds=now - cached[2])

    def _age(self, group: _Group, module_now: datetime) -> float:
        by_scts = (module_now - group.oldest()).total_seconds()
        return max(by_scts, self._clock() - group.first_seen)

    async def _release_due(self) -> None:
        """Hand over held messages older than the hold limit as incomplete."""
        if self._next_release is None or self._next_release > self._clock():
            return
        self._next_release = None
        if not self._groups:
            return
        limit = self.reassembly_max_age
        now = await self._module_now()
        for group in list(self._groups):
            if group in self._groups and self._age(group, now) >= limit:
                await self._release(group, "held too long")
        if self._groups:
            left = min(limit - self._age(g, now) for g in self._groups)
            self._next_release = self._clock() + max(left, 0.0)

    async def _release(self, group: _Group, why: str) -> bool:
        """Hand ``group`` over as incomplete and free its slots (after the ack)."""
        if group in self._groups:
            self._groups.remove(group)
        locs = group.locations()
        for loc in locs:
            self._held.pop(loc, None)
        if not locs:
            return True  # direct parts only: each was handed over when it came
        parts = group.ordered()
        self.stats["incomplete"] += 1
        log.warning(
            "handing over %d of %d parts of ref %d from %s as incomplete (%s)",
            len(parts),
            group.key[2],
            group.key[1],
            group.key[0],
            why,
        )
        item = ReceivedMessage(message_identity(parts), parts, tuple(locs), complete=False)
        return await self._deliver(item, locs)

    async def _check_storage(self, listed: int | None, *, release: bool = True) -> None:
        """Free held slots when what the service cannot hand over fills storage.

        Pressure is counted on what stays: the parts held plus the records
        the last sweep had to leave (drafts, damaged records not yet
        confirmed). Messages that merely arrived meanwhile do not count - they
        are handed over and deleted anyway, so a store that a burst filled is
        no reason to split a message (a soak with the storage-full fault found
        this one). After a sweep (``listed`` entries) the oldest held groups
        go while fewer than ``HOLD_FREE_SLOTS`` would stay free; when a part
        was held (``release`` False) and storage is nearly full, a sweep is
        asked for instead. A warning
        is logged while storage stays nearly full with nothing held.
        """
        self._pressure_check = False
        total: int | None = None
        used: int | None = None
        try:
            await self.session.ready.wait()
            # +CPMS? reports the selected <mem1>: it must be the configured one
            await self._reselect_mem1()
            status = await self.session.storage_status()
            if status.total:
                total, used = status.total[-1], status.used[-1]
        except (CommandFailed, ProtocolError):
            st = self.session.storage
            if st is not None and st.total:
                total = st.total[0]
                used = listed if listed is not None else None
        full_seen, self._storage_full_seen = self._storage_full_seen, False
        holding = [g for g in self._groups if g.locations()]  # direct parts hold no slot
        if total is None:
            if full_seen and holding and release:  # no count at all: the indication only
                oldest = min(holding, key=lambda g: (g.oldest(), g.first_seen))
                await self._release(oldest, "storage reported full")
            return
        mem1 = self._mem()
        held_here = sum(1 for loc in self._held if loc.mem == mem1)
        stays_free = total - held_here - self._stuck_other
        free = total - (used if used is not None else held_here + self._stuck_other)
        if not release:
            # nearly full: the sweep hands over what can go, then decides
            if min(free, stays_free) < timing.HOLD_FREE_SLOTS and holding:
                self.request_sweep()
            return
        while stays_free < timing.HOLD_FREE_SLOTS and holding:
            oldest = min(holding, key=lambda g: (g.oldest(), g.first_seen))
            slots = len(oldest.locations())
            if not await self._release(oldest, f"storage nearly full, {stays_free} slots free"):
                break
            stays_free += slots
            free += slots
            holding = [g for g in self._groups if g.locations()]
        if free < timing.HOLD_FREE_SLOTS and not holding:
            log.warning(
                "SMS storage still full (%d slots free) with nothing held for reassembly: "
                "what fills it is not ours to delete (drafts, another application); new "
                "messages are refused once no slot is left",
                max(free, 0),
            )

    # -- hand-over and delete ----------------------------------------------------------

    async def _deliver(
        self, item: Inbound, locs: list[Location], *, timeout: float | None = None
    ) -> bool:
        """Hand ``item`` to the consumer; delete its indexes only after it returns.

        True when the consumer accepted it. A consumer error, including a
        ``CancelledError`` that is not this task's own cancellation, keeps
        the item on the module and offers it again later.
        """
        try:
            if timeout is None:
                await self.consumer(item)
            else:
                async with asyncio.timeout(timeout):
                    await self.consumer(item)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the service itself is being stopped
            self._consumer_failed(item, "raised CancelledError")
            return False
        except Exception as exc:
            self._consumer_failed(item, f"{type(exc).__name__}: {exc}")
            return False
        self.stats["acked"] += 1
        await self._delete(locs)
        return True

    def _consumer_failed(self, item: Inbound, why: str) -> None:
        self.stats["consumer_errors"] += 1
        log.error("consumer did not accept %s (%s); kept, offered again", item.identity, why)
        self._round_failed = True
        if item.locations:
            self._retry_later(at_once=False)

    async def _delete(self, locs: list[Location]) -> None:
        """``+CMGD=<index>`` for each acknowledged location.

        If a delete fails (or its answer is lost) the location is remembered
        with the PDU it held; the next sweep deletes it only if it still holds
        that PDU - an index freed and reused by a new message is never deleted
        unread. A location read before the last re-init (another session
        generation: the module may have rebooted, changed storage, or stored a
        new message in a freed index) is read again first and deleted only if
        it still holds that PDU. Each read and delete runs with the location's
        storage selected and only in the generation of its read (checked by
        the client right before the line is written): a delete that waited for
        the line while the module rebooted is not written, and the location
        stays on the module until a read of the new generation finds it.
        """
        for loc in locs:
            self._to_delete[loc] = self._pdu_at.get(loc, "")
        for loc in list(locs):
            gen = await self._select(loc.mem)
            if self._read_gen.get(loc) != gen:
                again = await self._exec_in(loc.mem, C.cmgr(loc.index, lenient=True), gen)
                if again is None or again.pdu != self._to_delete.get(loc):
                    log.warning(
                        "index %d changed since it was read before a re-init: not deleted",
                        loc.index,
                    )
                    self._forget(loc)
                    if again is not None:
                        self.request_sweep()
                    continue
                self._read_gen[loc] = gen
            try:
                # only in the generation (and storage selection) of the read: a
                # reboot noticed while this waited for the line stops it unwritten
                await self._exec_in(loc.mem, C.cmgd(loc.index), self._read_gen[loc])
            except CmsError as exc:
                if exc.code != CmsErrorCode.INVALID_MEMORY_INDEX:
                    raise
            self._forget(loc)
            self.stats["deleted"] += 1

    def _forget(self, loc: Location) -> None:
        self._damage_seen.pop(loc, None)
        self._to_delete.pop(loc, None)
        self._pdu_at.pop(loc, None)
        self._read_gen.pop(loc, None)

    # -- receive: direct ---------------------------------------------------------------

    async def _drain_direct(self) -> None:
        """Direct deliveries first (their +CNMA has a deadline), e.g. between the
        entries of a long sweep."""
        while self._direct:
            await self._handle_direct(self._direct.popleft())

    async def _handle_direct(self, d: _Direct) -> None:
        """+CMT/+CDS (direct delivery): classify, hand over, then acknowledge
        (+CNMA, TS 27.005 §3.4.4) when ``+CSMS=1``, before the deadline."""
        needs_ack = self._needs_ack()
        if not d.damage:
            error = self._last_decode.error(d.raw)
            if error:
                # the length held but the content does not decode: a flipped
                # octet on the line looks just like this. Not acknowledged
                # until the network delivers the same PDU again.
                d.damage = f"does not decode: {error}"
        try:
            if d.damage:
                self.stats["direct_damaged"] += 1
                if not needs_ack:
                    # +CSMS=0: the module acknowledged it already and the network
                    # will not deliver it again: report what there is
                    log.error("damaged %s (%s) with +CSMS=0: reported", d.name, d.damage)
                    await self._accept(d.raw, d.damage, None)
                    return
                if self._last_damaged_direct == (d.raw, d.damage):
                    # delivered twice the same way: not line noise, report it
                    self._last_damaged_direct = None
                    accepted = await self._accept(d.raw, d.damage, None)
                else:
                    self._last_damaged_direct = (d.raw, d.damage)
                    log.warning("damaged %s (%s): not acknowledged", d.name, d.damage)
                    accepted = False
            else:
                budget: float | None = None
                if needs_ack:
                    left = d.deadline - timing.CNMA_MARGIN - asyncio.get_running_loop().time()
                    budget = left if left > 0 else None
                accepted = await self._accept(d.raw, "", None, timeout=budget)
            if not needs_ack:
                if not accepted:
                    log.error("%s not accepted and +CSMS is not 1: the module has acked it", d.name)
                return
            await self._acknowledge(d, positive=accepted)
        finally:
            if needs_ack:
                self._acks_due -= 1
                if self._acks_due <= 0:
                    self._acks_due = 0
                    self._no_ack_due.set()

    async def _acknowledge(self, d: _Direct, *, positive: bool) -> None:
        loop = asyncio.get_running_loop()
        if d.generation != self.session.generation:
            # the module restarted since: it waits for no +CNMA any more, and the
            # re-init set the routing again; not an acknowledgement failure
            log.info("%s from before a re-init: not acknowledged", d.name)
            return
        try:
            if loop.time() >= d.deadline:
                raise TimeoutError  # too late: the module has given up on it
            async with asyncio.timeout_at(d.deadline):
                if positive:
                    await self.client.execute(C.cnma())
                elif await self._negative_ack_supported():
                    # RP-ERROR: the network keeps it and delivers it again
                    await self.client.execute(C.cnma(2))
                    self.stats["nacked"] += 1
                    return
                else:
                    # no negative ack: leave it unacknowledged; the module's RP timer
                    # runs out, the network delivers it again and routing is reset
                    self._want_routing_check(d.arrived + timing.ROUTING_RECHECK_AFTER)
                    return
        except (TimeoutError, CommandFailed, CommandTimeout, ProtocolError) as exc:
            self._ack_failures += 1
            self.stats["ack_failures"] += 1
            log.warning(
                "%s acknowledgement failed (%s); %d in a row: checking routing",
                d.name,
                type(exc).__name__ if isinstance(exc, TimeoutError) else exc,
                self._ack_failures,
            )
            self._want_routing_check()
            self._want_routing_check(d.arrived + timing.ROUTING_RECHECK_AFTER)
            return
        self._ack_failures = 0

    async def _negative_ack_supported(self) -> bool:
        """``AT+CNMA=?`` lists ``<n>`` 2 (asked once per session generation)."""
        gen = self.session.generation
        if self._cnma_modes is None or self._cnma_modes[0] != gen:
            try:
                modes = await self.client.execute(C.cnma_test())
            except (CommandFailed, ProtocolError):
                modes = frozenset()
            self._cnma_modes = (gen, modes)
        return 2 in self._cnma_modes[1]

    async def _check_routing(self) -> None:
        """After an ack failure (TS 27.005 §3.4.1: ``<mt>``/``<ds>`` reset to 0):
        read ``+CNMI?`` and set the routing again; fall back to stored delivery
        when acknowledgements keep failing. A sweep follows a restore: what
        arrived meanwhile was stored without a ``+CMTI``."""
        if self._ack_failures >= timing.ACK_FAILURES_BEFORE_STORED and not self._fell_back:
            self._fell_back = True
            self.session.fall_back_to_stored_delivery()
        try:
            restored = await self.session.restore_routing()
        except (CommandFailed, ProtocolError) as exc:
            log.warning("could not restore SMS routing (%s); sweeping", exc)
            restored = True
        if restored:
            self.stats["routing_restored"] += 1
            self.request_sweep()
