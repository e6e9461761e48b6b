"""SMS service: receive (stored or direct delivery), reassemble, acknowledge, send.

Receive (TS 27.005 §3.4.1, stored delivery): on ``+CMTI: <mem>,<index>`` the
service reads the index (``+CMGR``), decodes it (:func:`pdu.decode`) and, once
every part of a concatenated message is in, hands an :class:`Inbound` item to
the *consumer*. The consumer is an async callable; returning means "durably
accepted" (journaled), raising means "not accepted" (kept, retried later).
Only after that acknowledgement does the service delete exactly those indexes
(``+CMGD=<index>``, never a delete-all flag).

Storage is swept (``+CMGL=4``) at start-up, after every re-init of the module,
when storage is reported full, when the URC queue overflowed (a ``+CMTI``
may be lost) and periodically.

A PDU the codec rejects is handed over as :class:`Undecodable` (raw hex) and
deleted only after that report is acknowledged. Every item carries a stable
:attr:`Inbound.identity` (sender, SC timestamp, concatenation reference, body)
so the consumer can drop repeats: SMS may deliver a message twice.

Send: SUBMIT PDUs (:func:`pdu.submit_parts`, :func:`pdu.cmgs_pdu`) through
``AT+CMGS`` in PDU mode; transient ``+CMS ERROR`` retried with backoff,
permanent ones raised; a send waits while the module is not registered; a
timed-out ``+CMGS`` is *not* retried (it may have gone out: a second send is
a second Command at Twilio). Status reports (``+CDS``/``+CDSI``) are matched
to the TP-MR of recent sends and handed to the consumer as well.

Receiving and sending share the line through the client's FIFO lock: neither
starves the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import pdu

from . import commands as C
from . import timing
from .commands import StoredPdu
from .errors import (
    CmsError,
    CmsErrorCode,
    CommandFailed,
    CommandTimeout,
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
    "ReceivedMessage",
    "SendResult",
    "SmsService",
    "StatusReportReceived",
    "Undecodable",
    "message_identity",
]

log = logging.getLogger(__name__)

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


def _body(ud: pdu.UserData) -> bytes:
    if ud.text is not None:
        return b"T" + ud.text.encode("utf-8", "surrogatepass")
    if ud.data is not None:
        return b"D" + ud.data
    return b""


def message_identity(parts: Sequence[pdu.Deliver]) -> str:
    """Stable identity of a (possibly concatenated) DELIVER: hex digest.

    Built from the sender (TP-OA), the first part's SC timestamp (TP-SCTS),
    the concatenation reference and total, and the body of every part, in
    sequence order. Two network deliveries of the same SMS get the same value.
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


def _raw_identity(hex_pdu: str) -> str:
    return "raw-" + hashlib.sha256(hex_pdu.upper().encode()).hexdigest()[:28]


@dataclass(frozen=True)
class Location:
    """Where a message sits on the module: storage and index."""

    mem: str
    index: int


@dataclass(frozen=True)
class ReceivedMessage:
    """A whole SMS: one DELIVER or every part of a concatenated one, in order."""

    identity: str
    parts: tuple[pdu.Deliver, ...]
    locations: tuple[Location, ...]
    complete: bool = True

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
    """A stored PDU the codec rejected: reported with its raw hex."""

    identity: str
    raw: str
    error: str
    locations: tuple[Location, ...]


@dataclass(frozen=True)
class StatusReportReceived:
    """An SMS-STATUS-REPORT; ``matched`` when its TP-MR is one we sent recently."""

    identity: str
    report: pdu.StatusReport
    matched: bool
    locations: tuple[Location, ...]


Inbound = ReceivedMessage | Undecodable | StatusReportReceived
Consumer = Callable[[Inbound], Awaitable[None]]


@dataclass(frozen=True)
class SendResult:
    """TP-MR of every part sent, in order."""

    mrs: tuple[int, ...]


@dataclass
class _Group:
    parts: dict[int, tuple[pdu.Deliver, Location]] = field(default_factory=dict)
    extra: list[Location] = field(default_factory=list)  # duplicate parts' indexes
    collided: bool = False  # a part of another message with the same ref was left
    first_seen: float = 0.0


class SmsService:
    """The SMS service on one :class:`~modem.session.Session`."""

    def __init__(
        self,
        session: Session,
        consumer: Consumer,
        *,
        reassembly_max_age: float = timing.REASSEMBLY_MAX_AGE,
        periodic_sweep: float = timing.PERIODIC_SWEEP,
        send_retry: C.RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        verify_reads: bool = False,
    ) -> None:
        self.session = session
        self.client = session.client
        self.consumer = consumer
        self.reassembly_max_age = reassembly_max_age
        self.periodic_sweep = periodic_sweep
        self.send_retry = send_retry or C.RetryPolicy(attempts=5, initial=1.0, maximum=30.0)
        self._clock = clock
        self._last_sweep = clock()
        #: Read every message twice and hand it over only when both reads agree:
        #: guards against a noisy line turning hex digits into other hex digits
        #: (a PDU of the right length that decodes to the wrong text). One more
        #: +CMGR per message.
        self.verify_reads = verify_reads
        self._sub = self.client.subscribe(
            ("+CMTI", "+CMT", "+CDSI", "+CDS", "+CIEV", "+QIND", "^SMMEMFULL")
        )
        #: read cues (+CMTI/+CDSI locations; None = a direct delivery waits). Bounded:
        #: when full, the cue is replaced by a sweep, which finds everything anyway.
        self._cues: asyncio.Queue[Location | None] = asyncio.Queue(CUE_QUEUE_SIZE)
        self._sweep_wanted = asyncio.Event()
        self._groups: dict[tuple[str, int, int, bool], _Group] = {}
        self._held: dict[Location, str] = {}  # read, waiting for other parts: PDU hex
        #: acknowledged, delete not yet confirmed: location -> PDU hex it held
        self._to_delete: dict[Location, str] = {}
        #: PDU hex last read at each location
        self._pdu_at: dict[Location, str] = {}
        self._recent_mrs: dict[int, float] = {}
        self._send_ref = 0
        #: direct deliveries (+CMT/+CDS PDUs) not yet handed over. Bounded: beyond it
        #: a PDU is not acknowledged, so the network delivers it again later.
        self._direct: deque[str] = deque()
        self._pending_incomplete: list[tuple[Inbound, list[Location]]] = []
        self.stats = {
            "received": 0,
            "acked": 0,
            "deleted": 0,
            "sweeps": 0,
            "sent": 0,
            "undecodable": 0,
            "consumer_errors": 0,
            "send_retries": 0,
        }
        session.on_ready.append(self.request_sweep)
        self._noise_timer: asyncio.TimerHandle | None = None
        #: consecutive sweeps that met damaged entries, and the backed-off re-sweep
        self._damaged_sweeps = 0
        self._resweep_timer: asyncio.TimerHandle | None = None
        self.client.on_discard.append(self._on_noise)

    # -- public --------------------------------------------------------------------

    def request_sweep(self) -> None:
        """Ask for a storage sweep (+CMGL=4) at the next opportunity."""
        self._sweep_wanted.set()

    async def run(self) -> None:
        """Receive until cancelled (run it beside :meth:`Session.run`)."""
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._urc_loop())
                tg.create_task(self._work_loop())
        finally:
            self.close()

    def _on_noise(self, event: Discarded) -> None:
        """A line was dropped as noise: it may have been a +CMTI. Sweep soon (debounced)."""
        if self._noise_timer is None:
            loop = asyncio.get_running_loop()
            self._noise_timer = loop.call_later(timing.NOISE_SWEEP_DELAY, self._noise_sweep)

    def _sweep_again(self) -> None:
        """A sweep met damaged entries: sweep again, at once the first time, then
        with backoff - a record the module always lists damaged must not make
        the service sweep back to back forever (no busy polling)."""
        self._damaged_sweeps += 1
        if self._damaged_sweeps <= 1:
            self.request_sweep()
            return
        if self._resweep_timer is not None:
            return
        n = min(self._damaged_sweeps - 2, 16)
        delay = min(timing.RETRY_MAX, timing.RETRY_INITIAL * timing.RETRY_FACTOR**n)
        loop = asyncio.get_running_loop()
        self._resweep_timer = loop.call_later(delay, self._resweep_due)

    def _resweep_due(self) -> None:
        self._resweep_timer = None
        self.request_sweep()

    def _noise_sweep(self) -> None:
        self._noise_timer = None
        self.request_sweep()

    def close(self) -> None:
        if self._noise_timer is not None:
            self._noise_timer.cancel()
            self._noise_timer = None
        if self._resweep_timer is not None:
            self._resweep_timer.cancel()
            self._resweep_timer = None
        with contextlib.suppress(ValueError):
            self.client.on_discard.remove(self._on_noise)
        self._sub.close()
        with contextlib.suppress(ValueError):
            self.session.on_ready.remove(self.request_sweep)

    async def send(
        self,
        recipient: str,
        content: str | bytes,
        *,
        encoding: pdu.Alphabet | None = None,
        srr: bool = False,
        registration_timeout: float = timing.REGISTRATION_WAIT,
    ) -> SendResult:
        """Send ``content`` to ``recipient``; multi-part when it needs to be.

        Raises :class:`CmsError` (permanent, or transient after the retries),
        :class:`CommandTimeout` (the +CMGS may or may not have gone out),
        ``TimeoutError`` when not registered in time, ``PduError`` (ours) for
        content SMS cannot carry.
        """
        self._send_ref = (self._send_ref + 1) % 256
        parts = pdu.submit_parts(recipient, content, encoding=encoding, srr=srr, ref=self._send_ref)
        mrs: list[int] = []
        for part in parts:
            hex_pdu, tpdu_len = pdu.cmgs_pdu(part)
            mrs.append(await self._send_one(hex_pdu, tpdu_len, registration_timeout))
        self.stats["sent"] += len(parts)
        return SendResult(tuple(mrs))

    async def _send_one(self, hex_pdu: str, tpdu_len: int, registration_timeout: float) -> int:
        policy = self.send_retry
        attempt = 0
        while True:
            attempt += 1
            await self.session.ready.wait()
            await self.session.wait_registered(registration_timeout)
            try:
                mr = await self.client.execute(C.cmgs(hex_pdu, tpdu_len))
            except CmsError as exc:
                if not exc.transient or attempt >= policy.attempts:
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
                # plain ERROR right after a reboot (prompt refused): retry a few times
                if attempt >= policy.attempts:
                    raise
                log.info("send failed (%s), retry %d", exc, attempt)
            else:
                self._recent_mrs[mr] = self._clock()
                if len(self._recent_mrs) > 512:
                    for k in sorted(self._recent_mrs, key=self._recent_mrs.__getitem__)[:256]:
                        del self._recent_mrs[k]
                return mr
            self.stats["send_retries"] += 1
            await asyncio.sleep(policy.delay(attempt))

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
                self.request_sweep()
            return
        try:
            if urc.name in ("+CMTI", "+CDSI"):
                mem, index = C.parse_cmti(urc.args)
                if mem != self._mem():
                    # +CMGR/+CMGD act on <mem1>; a notice for another storage (or a
                    # damaged name) is not read by index: the sweep finds the message
                    log.warning(
                        "%s for storage %r, reading %r: sweeping", urc.name, mem, self._mem()
                    )
                    self.request_sweep()
                    return
                self._cues.put_nowait(Location(mem, index))
            elif urc.name in ("+CMT", "+CDS"):
                if urc.pdu is None:
                    self.request_sweep()
                    return
                if len(self._direct) >= CUE_QUEUE_SIZE:
                    log.warning("too many direct deliveries pending; not acknowledging one")
                    return
                self._direct.append(urc.pdu)
                self._cues.put_nowait(None)
        except asyncio.QueueFull:
            self.request_sweep()
        except ProtocolError as exc:
            log.warning("malformed %s (%s): sweeping instead", urc.name, exc)
            self.request_sweep()

    async def _work_loop(self) -> None:
        while True:
            try:
                await self.session.ready.wait()
                if self._sweep_wanted.is_set():
                    self._sweep_wanted.clear()
                    await self.sweep()
                    continue
                self._expire_groups()
                while self._pending_incomplete:
                    item, locs = self._pending_incomplete.pop(0)
                    await self._deliver(item, locs)
                loc = await self._next_cue()
                if loc is None:
                    if self._direct:
                        await self._handle_direct(self._direct.popleft())
                    continue
                await self._read_index(loc)
            except (CommandTimeout, ModemDisconnected) as exc:
                # the session counts timeouts (hung module) and reconnects; we sweep after
                log.info("receive interrupted (%s); sweeping when the module is back", exc)
                self.request_sweep()
                await asyncio.sleep(timing.RETRY_INITIAL)
            except ModemError as exc:
                if isinstance(exc, CmsError) and exc.code == CmsErrorCode.MEMORY_FULL:
                    log.warning("storage full: sweeping")
                log.warning("receive step failed (%s); sweeping later", exc)
                self.request_sweep()
                await asyncio.sleep(timing.RETRY_INITIAL)

    async def _next_cue(self) -> Location | None:
        """Wait for a cue, a sweep request or the periodic sweep; no polling.

        The periodic sweep is due ``periodic_sweep`` seconds after the last
        sweep, however many cues came in between: under steady traffic a
        message whose ``+CMTI`` was lost is still found.
        """
        due: float | None = None
        if self.periodic_sweep > 0:
            due = self.periodic_sweep - (self._clock() - self._last_sweep)
            if due <= 0:
                self.request_sweep()
                return Location("", -1)
        if not self._cues.empty():
            return self._cues.get_nowait()
        get = asyncio.ensure_future(self._cues.get())
        sweep = asyncio.ensure_future(self._sweep_wanted.wait())
        try:
            timeout = due
            if self._groups:
                timeout = min(timeout or self.reassembly_max_age, self.reassembly_max_age)
            await asyncio.wait((get, sweep), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if get.done():
                return get.result()
            if not sweep.done() and self.periodic_sweep > 0:
                self.request_sweep()
            return Location("", -1)
        finally:
            if not get.done():
                get.cancel()
            sweep.cancel()
            await asyncio.gather(get, sweep, return_exceptions=True)

    # -- receive ---------------------------------------------------------------------

    async def sweep(self) -> int:
        """List every stored message (+CMGL=4) and handle each; returns how many."""
        self.stats["sweeps"] += 1
        self._last_sweep = self._clock()
        try:
            listing = await self.client.execute(C.cmgl_lenient(C.MessageStat.ALL))
        except CmsError as exc:
            if exc.code in (CmsErrorCode.INVALID_MEMORY_INDEX, CmsErrorCode.MEMORY_FAILURE):
                listing = C.Listing((), ())  # SARA-R4: +CMGL on an empty store answers an error
            else:
                raise
        listed = list(listing.entries)
        damaged = bool(listing.skipped)
        if listing.skipped:
            # a noisy line damaged some entries: handle the good ones, look again after
            log.warning("sweep skipped %d damaged entries; sweeping again", len(listing.skipped))
        mem = self._mem()
        present = {Location(mem, s.index) for s in listed if s.index is not None}
        if not listing.skipped:  # a complete listing: what is absent is really gone
            # forget held parts the module no longer has (it was reset or wiped)
            for loc in [loc for loc in self._held if loc not in present]:
                self._drop_held(loc)
            for loc in [loc for loc in self._to_delete if loc not in present]:
                del self._to_delete[loc]  # the delete did succeed; only its answer was lost
        for stored in listed:
            if stored.index is None:
                continue
            loc = Location(mem, stored.index)
            if loc in self._to_delete:
                if self._to_delete[loc] == stored.pdu:
                    self._pdu_at[loc] = stored.pdu
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
                await self._handle_stored(loc, stored, verify=True)
            except ProtocolError as exc:
                log.warning("index %d not handled (%s); sweeping again", stored.index, exc)
                damaged = True
        if damaged:
            self._sweep_again()
        else:
            self._damaged_sweeps = 0
        # a full store may have refused deliveries: look again once space is free
        with contextlib.suppress(ModemError):
            status = await self.session.storage_status()
            if status.receive_full and not self._held:
                log.warning("storage still full after a sweep")
        return len(listed)

    def _mem(self) -> str:
        st = self.session.storage
        return st.mem[0] if st is not None and st.mem and st.mem[0] else "SM"

    async def _read_index(self, loc: Location) -> None:
        if loc.index < 0:
            return
        if loc in self._held:
            return
        try:
            stored = await self.client.execute(C.cmgr(loc.index))
        except CmsError as exc:
            if exc.code == CmsErrorCode.INVALID_MEMORY_INDEX:
                return  # already gone (a sweep handled it)
            raise
        if stored is None:
            return  # already gone (handled by a sweep)
        await self._handle_stored(loc, stored)

    async def _handle_stored(
        self, loc: Location, stored: StoredPdu, *, verify: bool = False
    ) -> None:
        if self.verify_reads or verify:
            again = await self.client.execute(C.cmgr(loc.index))
            if again is None or again.pdu != stored.pdu:
                raise ProtocolError(f"two reads of index {loc.index} disagree", stored.pdu)
        self.stats["received"] += 1
        self._pdu_at[loc] = stored.pdu
        if stored.stat in (C.MessageStat.STO_UNSENT, C.MessageStat.STO_SENT):
            return  # our own drafts/outbox: not received messages, leave them
        try:
            msg = pdu.decode(stored.pdu, smsc=True)
        except ValueError as exc:
            self.stats["undecodable"] += 1
            item = Undecodable(_raw_identity(stored.pdu), stored.pdu, str(exc), (loc,))
            await self._deliver(item, [loc])
            return
        kind = type(msg).__name__
        if isinstance(msg, pdu.StatusReport):
            item2 = StatusReportReceived(
                _raw_identity(stored.pdu), msg, msg.tp_mr in self._recent_mrs, (loc,)
            )
            await self._deliver(item2, [loc])
            return
        if not isinstance(msg, pdu.Deliver):
            item3 = Undecodable(
                _raw_identity(stored.pdu), stored.pdu, f"not an SMS-DELIVER ({kind})", (loc,)
            )
            await self._deliver(item3, [loc])
            return
        concat = msg.tp_ud.concat
        if concat is None or concat.total <= 1:
            await self._deliver(ReceivedMessage(message_identity([msg]), (msg,), (loc,)), [loc])
            return
        key = (str(msg.tp_oa), concat.ref, concat.total, concat.ref16)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(first_seen=self._clock())
        if concat.seq in group.parts:
            known, known_loc = group.parts[concat.seq]
            if known_loc != loc:
                if _body(known.tp_ud) != _body(msg.tp_ud):
                    # Not a repeat: another message with the same (wrapped) reference.
                    # Leave it on the module, unheld: deleting it with this group would
                    # lose it unread; a later read or sweep picks it up again.
                    log.warning(
                        "index %d: part %d of ref %d differs from the one held; kept",
                        loc.index,
                        concat.seq,
                        concat.ref,
                    )
                    group.collided = True
                    return
                group.extra.append(loc)
        else:
            group.parts[concat.seq] = (msg, loc)
        self._held[loc] = stored.pdu
        if len(group.parts) == concat.total:
            del self._groups[key]
            ordered = [group.parts[s] for s in sorted(group.parts)]
            locs = [loc for _, loc in ordered] + group.extra
            item4 = ReceivedMessage(
                message_identity([m for m, _ in ordered]),
                tuple(m for m, _ in ordered),
                tuple(locs),
            )
            for held in locs:
                self._held.pop(held, None)
            await self._deliver(item4, locs)
            if group.collided:
                self.request_sweep()  # pick up the other message's part left behind

    def _drop_held(self, loc: Location) -> None:
        self._held.pop(loc, None)
        for key, group in list(self._groups.items()):
            for seq, (_, ploc) in list(group.parts.items()):
                if ploc == loc:
                    del group.parts[seq]
            group.extra = [x for x in group.extra if x != loc]
            if not group.parts:
                del self._groups[key]

    def _expire_groups(self) -> None:
        now = self._clock()
        for key, group in list(self._groups.items()):
            if now - group.first_seen < self.reassembly_max_age:
                continue
            del self._groups[key]
            ordered = [group.parts[s] for s in sorted(group.parts)]
            locs = [loc for _, loc in ordered] + group.extra
            for loc in locs:
                self._held.pop(loc, None)
            item = ReceivedMessage(
                message_identity([m for m, _ in ordered]),
                tuple(m for m, _ in ordered),
                tuple(locs),
                complete=False,
            )
            log.warning("handing over an incomplete concatenated message %s", key)
            self._pending_incomplete.append((item, locs))

    async def _deliver(self, item: Inbound, locs: list[Location]) -> None:
        """Hand ``item`` to the consumer; delete its indexes only after it returns."""
        try:
            await self.consumer(item)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.stats["consumer_errors"] += 1
            log.exception("consumer did not accept %s; kept on the module", item.identity)
            return
        self.stats["acked"] += 1
        await self._delete(locs)

    async def _delete(self, locs: list[Location]) -> None:
        """``+CMGD=<index>`` for each acknowledged location.

        If a delete fails (or its answer is lost) the location is remembered
        with the PDU it held; the next sweep deletes it only if it still holds
        that PDU - an index freed and reused by a new message is never deleted
        unread.
        """
        for loc in locs:
            self._to_delete[loc] = self._pdu_at.get(loc, "")
        for loc in list(locs):
            try:
                await self.client.execute(C.cmgd(loc.index))
            except CmsError as exc:
                if exc.code != CmsErrorCode.INVALID_MEMORY_INDEX:
                    raise
            self._to_delete.pop(loc, None)
            self._pdu_at.pop(loc, None)
            self.stats["deleted"] += 1

    async def _handle_direct(self, hex_pdu: str) -> None:
        """+CMT/+CDS (direct delivery): consumer first, then +CNMA when +CSMS=1."""
        try:
            msg = pdu.decode(hex_pdu, smsc=True)
        except ValueError as exc:
            item: Inbound = Undecodable(_raw_identity(hex_pdu), hex_pdu, str(exc), ())
        else:
            if isinstance(msg, pdu.StatusReport):
                item = StatusReportReceived(
                    _raw_identity(hex_pdu), msg, msg.tp_mr in self._recent_mrs, ()
                )
            elif isinstance(msg, pdu.Deliver):
                item = ReceivedMessage(message_identity([msg]), (msg,), ())
            else:
                kind = type(msg).__name__
                item = Undecodable(
                    _raw_identity(hex_pdu), hex_pdu, f"not an SMS-DELIVER ({kind})", ()
                )
        try:
            async with asyncio.timeout(timing.CNMA_DEADLINE):
                await self.consumer(item)
        except Exception:
            self.stats["consumer_errors"] += 1
            log.exception("consumer did not accept a direct delivery; not acknowledging")
            return
        self.stats["acked"] += 1
        if self.session.config.csms == 1:
            with contextlib.suppress(CommandFailed):
                await self.client.execute(C.cnma())
