"""The network side of the simulated module: what the network does with its SMS.

The network (:class:`Network`) owns what is on the network's side of the
radio link: the messages it holds for the module (refused, unacknowledged,
or waiting for coverage), the MO log with the TP-MRs the module answered,
what it heard back for each direct delivery, status reports that were not
routed, the radio (coverage, roaming, signal) and the simulator's clock.
:class:`NetworkSide` is the part of the module that meets it:

* MT arrival and routing per +CNMI <mt>/<ds> (TS 27.005 §3.4.1): stored with
  +CMTI/+CDSI, or direct as +CMT/+CDS, class 2 always stored; full storage
  refuses the message (RP-ERROR "memory capacity exceeded", TS 24.011), and
  the network retries when storage frees (the "memory available"
  notification, TS 23.040 §10.3) or coverage comes back;
* acknowledgement of direct deliveries with +CSMS=1 (§3.4.4 +CNMA): RP-ACK,
  RP-ERROR (redelivered), or no +CNMA within ``cnma_timeout`` (TS 24.011
  TR2M): RP-ERROR, <mt> and <ds> reset to 0 and the message delivered again;
  no further +CMT/+CDS while one is unacknowledged;
* MO sends (+CMGS/+CMSS): the TP-MR the module answers, the MO log, a status
  report (TS 23.040 §9.2.2.3) when TP-SRR asks for one;
* registration (TS 27.007 §7.2): registered when coverage, +CFUN, the SIM and
  +COPS allow; +CREG/+CGREG/+CEREG URCs on changes.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from modem.errors import CmsErrorCode

from . import codec as _codec
from .storage import REC_UNREAD
from .textmode import TextMode
from .v250 import _Cms

__all__ = ["MoRecord", "MtAck", "Network", "NetworkMessage", "NetworkSide"]


@dataclass
class MoRecord:
    """A message the module sent to the network (+CMGS / +CMSS)."""

    #: The PDU as the DTE gave it (SMSC field first), upper-case hex.
    pdu: str
    #: The decoded SMS-SUBMIT with TP-MR set to the module's reference.
    message: Any
    #: The TP-MR the module answered (+CMGS: <mr>).
    mr: int
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> dict[str, Any]:
        """The codec's JSON form of the message plus "mr"."""
        d = dict(_codec.to_json(self.message))
        d["mr"] = self.mr
        return d


@dataclass
class MtAck:
    """What the network heard back for one +CMT/+CDS (TS 27.005 §3.4.4)."""

    #: "ack" (RP-ACK: +CNMA, +CNMA=0/1), "nack" (RP-ERROR: +CNMA=2) or
    #: "timeout" (no +CNMA within ``cnma_timeout``: RP-ERROR, routing reset).
    result: str
    #: The delivered PDU (SMSC field first).
    pdu: bytes
    #: The SMS-DELIVER-REPORT TPDU given after +CNMA=<n>,<length>, if any.
    report: bytes | None = None


@dataclass
class NetworkMessage:
    """An MT TPDU on its way from the network (held while refused or unacknowledged)."""

    pdu: bytes
    kind: str


class Network:
    """What the network holds and has seen (see the module docstring)."""

    def __init__(self, seed: int = 0) -> None:
        #: Drives the Command SIDs of deliver(include_sid=...).
        self.rng = random.Random(seed)
        #: Every message the module sent, in order.
        self.mo_log: list[MoRecord] = []
        #: Status reports the network sent while <ds> was 0 (not routed to the TE).
        self.unrouted_status_reports: list[bytes] = []
        #: MT messages held network-side (refused, unacknowledged, unregistered).
        self.pending_mt: list[NetworkMessage] = []
        #: Every acknowledgement of a direct delivery, in order (what the network saw).
        self.mt_acks: list[MtAck] = []
        #: Direct deliveries waiting for +CNMA, oldest first, with their TR2M timer.
        self.acks: list[tuple[NetworkMessage, asyncio.TimerHandle | None]] = []
        #: The next TP-MR the module answers (+CMGS: <mr>, mod 256).
        self.mr = 0
        #: The last concatenation reference of a delivered long message.
        self.concat_ref = seed % 256
        #: Coverage: the module can register.
        self.available = True
        self.roaming = False
        #: What +CSQ answers while registered.
        self.rssi, self.ber = 20, 99
        #: A retry is running (one scheduled from inside it happens later).
        self.retrying = False
        # The simulator's clock (network and module): real UTC + offset, or fixed.
        self.clock_offset = timedelta(0)
        self.clock_fixed: datetime | None = None

    def now(self) -> datetime:
        """The simulator's clock (UTC, whole seconds)."""
        if self.clock_fixed is not None:
            return self.clock_fixed
        return (datetime.now(UTC) + self.clock_offset).replace(microsecond=0)


class NetworkSide(TextMode):
    """The module's side of the network (see the module docstring)."""

    csms: int

    @property
    def registered(self) -> bool:
        return self._registered

    def _reg_stat(self) -> int:
        if self._registered:
            return 5 if self.network.roaming else 1
        # Lost coverage: the module keeps searching (2); radio off, no SIM or
        # deregistered by +COPS=2: not searching (0) (TS 27.007 §7.2).
        return 2 if self._may_register() else 0

    def _may_register(self) -> bool:
        return self.cfun == 1 and self.card.state == "ready" and self.cops_mode != 2

    def _update_registration(self) -> None:
        want = self.network.available and self._may_register()
        if want == self._registered:
            return
        self._registered = want
        stat = self._reg_stat()
        for n, name in ((self.creg_n, "+CREG"), (self.cgreg_n, "+CGREG"), (self.cereg_n, "+CEREG")):
            if n == 1:
                self._urc(f"{name}: {stat}".encode())
            elif n == 2:
                self._urc(f"{name}: {stat}{self._loc_suffix()}".encode())
        if want:
            self._schedule_retry()

    def _loc_suffix(self) -> str:
        if not self._registered:
            return ""
        return f',"1A2B","01A2B3C4",{self.profile.act}'

    def _now(self) -> datetime:
        return self.now()

    def now(self) -> datetime:
        """The simulator's clock (UTC, whole seconds): the network's SCTS and
        the base of the module's +CCLK. Real time unless :meth:`set_clock`."""
        return self.network.now()

    def set_clock(
        self,
        fixed: datetime | None = None,
        *,
        offset: timedelta | None = None,
        tz_quarters: int | None = None,
    ) -> None:
        """Set the simulator's clock: ``fixed`` (timezone-aware) stops it at that
        time, ``offset`` runs it ahead (or behind) real time, neither: real
        time. ``tz_quarters`` (-48..48) is the zone +CCLK? reports. Clears what
        ``AT+CCLK=`` set."""
        if fixed is not None and offset is not None:
            raise ValueError("set_clock: give fixed or offset, not both")
        if fixed is not None and fixed.utcoffset() is None:
            raise ValueError("set_clock: fixed must be timezone-aware")
        if tz_quarters is not None:
            if not -48 <= tz_quarters <= 48:
                raise ValueError(f"set_clock: tz_quarters is -48..48, not {tz_quarters}")
            self.clock_tz_quarters = tz_quarters
        self.network.clock_fixed = (
            None if fixed is None else fixed.astimezone(UTC).replace(microsecond=0)
        )
        self.network.clock_offset = offset or timedelta(0)
        self._cclk_skew = timedelta(0)

    def _network_ok(self) -> bool:
        return self._registered and self._state != "boot"

    def _schedule_retry(self) -> None:
        if self.network.pending_mt:
            self._later(self.timing.network_retry_delay, self._retry_now)

    def _retry_now(self) -> None:
        self.retry_pending()

    def retry_pending(self) -> list[int]:
        """The network tries again to deliver the messages it holds."""
        if self.network.retrying:  # a retry scheduled from inside one (no loop: at once)
            return []
        self.network.retrying = True
        try:
            pend, self.network.pending_mt = self.network.pending_mt, []
            out: list[int] = []
            for p in pend:
                idx = self._mt_arrive(p)
                if idx is not None:
                    out.append(idx)
            return out
        finally:
            self.network.retrying = False

    def _mt_arrive(self, p: NetworkMessage) -> int | None:
        """One TPDU from the network: route it per +CNMI; the storage index or None."""
        if not self._network_ok():
            self.network.pending_mt.append(p)
            return None
        mt, ds = self.cnmi[1], self.cnmi[3]
        if p.kind == "status-report":
            if ds == 0:
                self.network.unrouted_status_reports.append(p.pdu)
                return None
            if ds == 1:
                self._direct(p, "+CDS")
                return None
            return self._store_mt(p, "+CDSI")
        cls = _codec.message_class(p.pdu)
        if (mt == 2 and cls != 2) or (mt == 3 and cls == 3):
            self._direct(p, "+CMT")
            return None
        return self._store_mt(p, "+CMTI" if mt in (1, 2, 3) else None)

    def _store_mt(self, p: NetworkMessage, urc: str | None) -> int | None:
        store = self._mem(2)
        idx = store.add(REC_UNREAD, p.pdu, _codec.tpdu_length(p.pdu), p.kind)
        if idx is None:
            # Refused: RP-ERROR "memory capacity exceeded"; the network keeps it.
            self.network.pending_mt.append(p)
            return None
        if urc is not None:
            self._urc(f'{urc}: "{store.name}",{idx}'.encode(), sms=True)
        return idx

    def _direct(self, p: NetworkMessage, urc: str) -> None:
        """Route ``p`` to the TE as +CMT/+CDS (TS 27.005 §3.4.1)."""
        if self.csms == 1 and self.network.acks:
            # "TA shall not send another +CMT or +CDS result code to TE before
            # previous one is acknowledged": the network holds it meanwhile.
            self.network.pending_mt.append(p)
            return
        length = _codec.tpdu_length(p.pdu)
        if self.cmgf == 0:
            line = (f"{urc}: ,{length}" if urc == "+CMT" else f"{urc}: {length}").encode()
            chunk = line + self._crlf() + self._pdu_line(p.pdu.hex().upper()).encode("latin-1")
        else:
            chunk = self._direct_text(p, urc)
        if not self._urc(chunk, sms=True):
            # <mode> 1, link reserved: the TA rejects the message (RP-ERROR);
            # the network delivers it again later.
            self.network.pending_mt.append(p)
            self._schedule_retry()
            return
        if self.csms == 1:
            handle: asyncio.TimerHandle | None = None
            entry: tuple[NetworkMessage, asyncio.TimerHandle | None]
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:

                def expire() -> None:
                    self._cnma_expired(entry)

                handle = loop.call_later(self.timing.cnma_timeout, expire)
            entry = (p, handle)
            self.network.acks.append(entry)

    def _cnma_expired(self, entry: tuple[NetworkMessage, asyncio.TimerHandle | None]) -> None:
        if entry not in self.network.acks:
            return
        self.network.acks.remove(entry)
        self.network.mt_acks.append(MtAck("timeout", entry[0].pdu))
        # TS 27.005 §3.4.1: RP-ERROR to the network; <mt> and <ds> set to 0.
        self.cnmi[1] = 0
        self.cnmi[3] = 0
        self.network.pending_mt.insert(0, entry[0])  # before what the network held behind it
        self._schedule_retry()

    def _acknowledge(self, n: int, report: bytes | None) -> None:
        """RP-ACK (n 0/1) or RP-ERROR (n 2) for the oldest unacknowledged +CMT/+CDS."""
        pend, handle = self.network.acks.pop(0)
        if handle is not None:
            handle.cancel()
            self._timers.discard(handle)
        self.network.mt_acks.append(MtAck("nack" if n == 2 else "ack", pend.pdu, report))
        if n == 2:
            # RP-ERROR: the network keeps the message and delivers it again.
            self.network.pending_mt.append(pend)
        self._schedule_retry()  # the network may send what it held meanwhile

    def _network_send(self, pdu: bytes) -> int:
        if not self._registered:
            raise _Cms(CmsErrorCode.NO_NETWORK_SERVICE)
        if pdu[0] == 0 and not self.smsc:
            raise _Cms(CmsErrorCode.SMSC_ADDRESS_UNKNOWN)
        code = self.faults.take_cms_error()
        if code is not None:
            raise _Cms(code)
        msg = _codec.decode_with_mr(pdu, self.network.mr)
        if not msg.tp_da.number:
            # Stored by +CMGW without <da>: the SC refuses it (RP cause 1,
            # "unassigned number", TS 24.011 §8.2.5.4 / TS 27.005 §3.2.5).
            raise _Cms(1)
        mr = self.network.mr
        self.network.mr = (self.network.mr + 1) % 256
        self.network.mo_log.append(MoRecord(pdu.hex().upper(), msg, mr))
        if _codec.wants_status_report(msg):
            self._later(self.timing.status_report_delay, lambda: self._status_report(msg, mr))
        return mr

    def _status_report(self, submit: Any, mr: int) -> None:
        pdu = _codec.build_status_report(submit, mr, self._now(), smsc=self.smsc)
        self._mt_arrive(NetworkMessage(pdu, "status-report"))

    def deliver(
        self,
        text_or_bytes: str | bytes | None = None,
        *,
        sender: str = "2936",
        encoding: str | None = None,
        pdu: str | None = None,
        include_sid: str | None = None,
        sid: str | None = None,
        duplicate: bool = False,
        message_class: int | None = None,
        scts: datetime | None = None,
    ) -> list[int]:
        """The network delivers an SMS (maybe several parts) to the module.

        ``pdu`` is a complete SMS-DELIVER (or SMS-STATUS-REPORT) as hex, SMSC
        field first; it is passed on as it is, even when it does not decode.
        ``include_sid`` ("start"/"end") joins a Twilio Command SID ("DC" + 32
        hex, "HC" + 32 hex when ``sender`` is "000"; or ``sid``) to the text
        with one space. ``message_class`` (0-3) sets a TP-DCS message class
        (TS 23.038 §4), which +CNMI <mt> 2/3 routing looks at. ``scts``
        (timezone-aware) is the parts' TP-SCTS instead of :meth:`now`, so a
        test can deliver old parts. Returns the
        storage indexes used ([] for direct delivery or when the network
        holds the message).
        """
        if pdu is not None:
            raw = bytes.fromhex(pdu.replace(" ", ""))
            tpdus = [raw]
        else:
            content = text_or_bytes if text_or_bytes is not None else ""
            if include_sid is not None:
                if not isinstance(content, str):
                    raise ValueError("include_sid needs a text message")
                if sid is None:
                    sid = ("HC" if sender == "000" else "DC") + self.network.rng.getrandbits(
                        128
                    ).to_bytes(16, "big").hex()
                if include_sid == "start":
                    content = f"{sid} {content}"
                elif include_sid == "end":
                    content = f"{content} {sid}"
                else:
                    raise ValueError("include_sid is 'start' or 'end'")
            if scts is not None and scts.utcoffset() is None:
                raise ValueError("scts must be timezone-aware")
            self.network.concat_ref = (self.network.concat_ref + 1) % 256
            tpdus = _codec.build_delivers(
                sender,
                content,
                scts=self._now() if scts is None else scts,
                encoding=encoding,
                ref=self.network.concat_ref,
                smsc=self.smsc,
                message_class=message_class,
            )
        if duplicate:
            tpdus = tpdus + tpdus
        out: list[int] = []
        for raw in tpdus:
            idx = self._mt_arrive(NetworkMessage(raw, _codec.kind_of(raw)))
            if idx is not None:
                out.append(idx)
        return out

    def clear_mo(self) -> None:
        self.network.mo_log.clear()

    def set_registered(self, registered: bool, *, roaming: bool = False) -> None:
        """The network is reachable (or lost); +CREG/+CGREG/+CEREG report changes."""
        self.network.roaming = roaming
        self.network.available = registered
        self._update_registration()

    def set_signal(self, rssi: int, ber: int = 99) -> None:
        self.network.rssi, self.network.ber = rssi, ber

    # ------------------------------------------- what the network holds (public)
    @property
    def mo_log(self) -> list[MoRecord]:
        """Every message the module sent (:class:`MoRecord`), in order."""
        return self.network.mo_log

    @mo_log.setter
    def mo_log(self, value: list[MoRecord]) -> None:
        self.network.mo_log = value

    @property
    def pending_mt(self) -> list[NetworkMessage]:
        """MT messages held network-side (refused, unacknowledged, unregistered)."""
        return self.network.pending_mt

    @pending_mt.setter
    def pending_mt(self, value: list[NetworkMessage]) -> None:
        self.network.pending_mt = value

    @property
    def mt_acks(self) -> list[MtAck]:
        """Every acknowledgement of a direct delivery, in order (what the network saw)."""
        return self.network.mt_acks

    @mt_acks.setter
    def mt_acks(self, value: list[MtAck]) -> None:
        self.network.mt_acks = value

    @property
    def unrouted_status_reports(self) -> list[bytes]:
        """Status reports that arrived while +CNMI <ds> was 0."""
        return self.network.unrouted_status_reports

    @unrouted_status_reports.setter
    def unrouted_status_reports(self, value: list[bytes]) -> None:
        self.network.unrouted_status_reports = value

    @property
    def rssi(self) -> int:
        """The <rssi> of +CSQ while registered (:meth:`set_signal`)."""
        return self.network.rssi

    @rssi.setter
    def rssi(self, value: int) -> None:
        self.network.rssi = value

    @property
    def ber(self) -> int:
        """The <ber> of +CSQ while registered."""
        return self.network.ber

    @ber.setter
    def ber(self, value: int) -> None:
        self.network.ber = value

    @property
    def _mr(self) -> int:
        """The next TP-MR (tests set it to see the wrap at 256)."""
        return self.network.mr

    @_mr.setter
    def _mr(self, value: int) -> None:
        self.network.mr = value
