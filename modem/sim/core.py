"""The simulated module: a V.250 / TS 27.007 / TS 27.005 peer with a network behind it.

Sans-I/O-ish: :meth:`SimModem.receive` takes the bytes a DTE wrote; every byte
the module sends goes to the attached ports (:class:`SimPort`), which are the
in-process transport, the pty and the TCP endpoints. Timers (answer delays,
the +CNMA timeout, boot, reconnect) use the running asyncio loop.

Semantics worth knowing (TS 27.005 unless noted):

* Echo (V.250 E1, on after power-up) sends each received byte straight back,
  before the line is complete, in command state and at the ``> `` prompt.
* Unsolicited result codes are held while a command line is being typed, a
  command is being answered or the prompt is open, and sent right after the
  final result code (+CNMI <mode> 2 behaviour; <mode> 0 keeps SMS indications
  in the TA buffer until <mode> 1-3 with <bfr> 0 flushes them).
* Full storage: an arriving SMS is refused to the network (RP-ERROR, memory
  capacity exceeded) and stays network-side in :attr:`SimModem.pending_mt`;
  the network retries when storage frees (the module's "memory available"
  notification, TS 23.040 §10.3) or when registration comes back.
* Direct delivery (+CMT/+CDS) with +CSMS=1 needs +CNMA within
  :attr:`SimTiming.cnma_timeout`; otherwise the module answers RP-ERROR to the
  network, sets +CNMI <mt> and <ds> to 0 (§3.4.1) and the network retries
  the message later (it is then stored: the client sees it again).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from modem.errors import CmsErrorCode

from . import codec as _codec
from .base import SimPort, SimTiming
from .card import PIN_ATTEMPTS, PUK_ATTEMPTS, SimCard  # noqa: F401  (also from here)
from .cmdline import READ, SET, TEST, Command
from .faults import (
    DAMAGE_MODES,
    FAULTS,
    FaultArg,
    FaultInjection,
    Faults,
    FaultSpec,
    check_fault,
    damage_pdu_line,
    fault_help,
)
from .line import CTRL_Z, ESC, LineDiscipline, _Prompt  # noqa: F401  (also from here)
from .profiles import PROFILES, Profile
from .registry import handler
from .storage import (
    ALL,
    REC_READ,
    REC_UNREAD,
    STAT_FROM_TEXT,
    STAT_TEXT,
    STO_SENT,
    STO_UNSENT,
    Storage,
    StoredMessage,
    UnionStorage,
)
from .textmode import TextMode
from .ts27007 import (
    Ts27007Commands,
    _parse_cclk,  # noqa: F401  (imported from modem.sim.core)
)
from .v250 import _Cms, _ErrorResult, _Plain

__all__ = [
    "DAMAGE_MODES",
    "FAULTS",
    "FaultArg",
    "FaultSpec",
    "MoRecord",
    "MtAck",
    "NetworkMessage",
    "SimModem",
    "SimPort",
    "SimTiming",
    "check_fault",
    "damage_pdu_line",
    "fault_help",
]


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


class SimModem(LineDiscipline, TextMode, Ts27007Commands, FaultInjection):
    """A simulated cellular module (see the module docstring)."""

    def __init__(
        self,
        profile: str | Profile = "generic",
        *,
        pin: str | None = None,
        puk: str = "12345678",
        sim_inserted: bool = True,
        sim_busy_time: float = 0.0,
        seed: int = 0,
        timing: SimTiming | None = None,
    ) -> None:
        if isinstance(profile, Profile):
            self.profile: Profile = profile
        elif profile in PROFILES:
            self.profile = PROFILES[profile]
        else:
            raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
        if any(m not in ("SM", "ME", "MT") for m in self.profile.cpms_default):
            raise ValueError(f"cpms_default names SM, ME or MT: {self.profile.cpms_default!r}")
        #: The SIM card (its PIN, PUK and retry counters survive reboots).
        self.card = SimCard(pin, puk, inserted=sim_inserted, busy_time=sim_busy_time)
        self.timing = timing or SimTiming()
        self._rng = random.Random(seed)
        self.faults = Faults(seed)
        self._ports: list[SimPort] = []
        self._reconnect_listeners: list[Callable[[], None]] = []
        self.connectable = True
        p = self.profile
        sm = Storage("SM", p.sm_capacity, p.index_base, cyclic=p.indexes_never_reused)
        me = Storage("ME", p.me_capacity, p.index_base, cyclic=p.indexes_never_reused)
        self._stores: dict[str, Storage] = {"SM": sm, "ME": me, "MT": UnionStorage(sm, me)}
        self.mo_log: list[MoRecord] = []
        #: Status reports the network sent while <ds> was 0 (not routed to the TE).
        self.unrouted_status_reports: list[bytes] = []
        #: MT messages held network-side (refused, unacknowledged, unregistered).
        self.pending_mt: list[NetworkMessage] = []
        #: Every acknowledgement of a direct delivery, in order (what the network saw).
        self.mt_acks: list[MtAck] = []
        self.smsc = p.smsc
        self._mr = 0
        self._concat_ref = seed % 256
        self._net_available = True
        self._roaming = False
        self.rssi, self.ber = 20, 99
        # The simulator's clock (network and module): real UTC + offset, or fixed.
        self._clock_offset = timedelta(0)
        self._clock_fixed: datetime | None = None
        #: The module's +CCLK time zone, in quarter hours (TS 27.007 §8.15).
        self.clock_tz_quarters = 0
        #: What +CCLK=<time> set: the module's clock minus the simulator's.
        self._cclk_skew = timedelta(0)
        # Timers.
        self._timers: set[asyncio.TimerHandle] = set()
        self._busy_handle: asyncio.TimerHandle | None = None
        self._acks: list[tuple[NetworkMessage, asyncio.TimerHandle | None]] = []
        self._retrying = False
        self._reset_volatile()
        self._state = "cmd"
        self._registered = self.card.pin_ok and sim_inserted and sim_busy_time == 0
        self._last_line = ""
        #: A command line (or prompt text) is being answered: URCs wait for its end.
        self._answering = False
        self._after_commit: Callable[[], None] | None = None
        #: Counts boots, so that a SIM-initialisation timer of an earlier boot is ignored.
        self._boot_gen = 0
        if sim_busy_time > 0 and sim_inserted:
            self._start_sim_init()

    # ---------------------------------------------------------------- power
    def close(self) -> None:
        """Cancel every timer (the module is switched off for good)."""
        for h in list(self._timers):
            h.cancel()
        self._timers.clear()
        if self._busy_handle is not None:
            self._busy_handle.cancel()
            self._busy_handle = None
        for _, h2 in self._acks:
            if h2 is not None:
                h2.cancel()
        self._acks.clear()

    # ------------------------------------------------------- settings, SIM
    def _reset_settings(self) -> None:
        """The settings ATZ / AT&F restore (V.250 §6.1.1, §6.1.2)."""
        p = self.profile
        self.echo, self.verbose, self.quiet = not p.echo_fixed_off, True, False
        self.s3, self.s4, self.s5 = 13, 10, 8
        self.cmee = p.cmee_default
        self.cmgf, self.cscs, self.csdh = 0, "GSM", 0
        self.cnmi = list(p.cnmi_default)
        self.csmp = [17, 167, 0, 0]
        self.creg_n = self.cgreg_n = self.cereg_n = 0

    def _reset_volatile(self) -> None:
        """Power-up state: every setting, and nothing typed, buffered or pending."""
        self._reset_settings()
        self.csms = 0
        self.cpms = list(self.profile.cpms_default)
        self.cfun = 1
        self.cops_mode = 0
        self._line = bytearray()
        self._line_overflow = False
        self._prompt: _Prompt | None = None
        self._pending_in = bytearray()
        self._echo_decided = 0
        self._urc_queue: list[bytes] = []
        self._ta_buffer: list[bytes] = []
        self._resp: list[bytes] = []

    @property
    def registered(self) -> bool:
        return self._registered

    def _reg_stat(self) -> int:
        if self._registered:
            return 5 if self._roaming else 1
        # Lost coverage: the module keeps searching (2); radio off, no SIM or
        # deregistered by +COPS=2: not searching (0) (TS 27.007 §7.2).
        return 2 if self._may_register() else 0

    def _may_register(self) -> bool:
        return self.cfun == 1 and self.sim_state == "ready" and self.cops_mode != 2

    def _update_registration(self) -> None:
        want = self._net_available and self._may_register()
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

    def _reboot(self) -> None:
        """Reset: drop the pending command, reset volatile settings, boot again."""
        if self._busy_handle is not None:
            self._busy_handle.cancel()
            self._busy_handle = None
        for pend, h in self._acks:
            if h is not None:
                h.cancel()
            self.pending_mt.append(pend)
        self._acks.clear()
        self.faults.reboot_on_next_line = False
        self._reset_volatile()
        self._state = "boot"
        self._registered = False
        self.card.power_up()
        self._boot_gen += 1
        self._later(self.timing.boot_delay, self._boot_done)

    def _boot_done(self) -> None:
        if self._state != "boot":
            return
        self._state = "cmd"
        for line in self.profile.startup_urcs:
            self._urc(line.encode())
        if self.card.inserted and self.card.busy_time > 0:
            self._start_sim_init()
        else:
            self._sim_init_done(self._boot_gen)

    # ----------------------------------------------------- SMS configuration
    @handler("+CSMS", sms=True)
    def _cmd_csms(self, cmd: Command) -> None:
        if cmd.form == READ:
            self._info(f"+CSMS: {self.csms},1,1,1")
        elif cmd.form == TEST:
            self._info("+CSMS: (0,1)")
        elif cmd.form == SET:
            (a,) = self._need_args(cmd, 1, 1)
            self.csms = self._int(a, 0, 1)
            self._info("+CSMS: 1,1,1")
        else:
            raise ValueError("no exec form")

    def _cpms_counts(self) -> str:
        parts = []
        for mem in self.cpms:
            st = self._stores[mem]
            parts.append(f"{st.used},{st.capacity}")
        return ",".join(parts)

    @handler("+CPMS", sms=True)
    def _cmd_cpms(self, cmd: Command) -> None:
        if cmd.form == READ:
            if self.profile.cpms_query_refused:
                raise _Plain()
            parts = []
            for mem in self.cpms:
                st = self._stores[mem]
                parts.append(f'"{mem}",{st.used},{st.capacity}')
            self._info("+CPMS: " + ",".join(parts))
        elif cmd.form == TEST:
            mems = '("SM","ME","MT")'
            self._info(f"+CPMS: {mems},{mems},{mems}")
        elif cmd.form == SET:
            args = self._need_args(cmd, 1, 3)
            new = list(self.cpms)
            for i, a in enumerate(args):
                if a is None:
                    continue
                mem = a.upper()
                if mem not in self._stores:
                    raise _Cms(CmsErrorCode.OPERATION_NOT_ALLOWED)
                new[i] = mem
            self.cpms = new
            self._info("+CPMS: " + self._cpms_counts())
            self._schedule_retry()
        else:
            raise ValueError("no exec form")

    @handler("+CMGF", pin_free=True, sms=True)
    def _cmd_cmgf(self, cmd: Command) -> None:
        self._setting(cmd, "cmgf", 1)

    @handler("+CSCA", sms=True)
    def _cmd_csca(self, cmd: Command) -> None:
        if cmd.form == READ:
            self._info(f'+CSCA: "{self.smsc}",{self._tosca()}')
        elif cmd.form == TEST:
            return
        elif cmd.form == SET:
            args = self._need_args(cmd, 1, 2)
            sca = self._te_to_str(args[0] or "")
            if sca and not sca.lstrip("+").isdigit():
                raise ValueError("address")
            if len(args) > 1:
                self._int(args[1], 0, 255)
            self.smsc = sca
        else:
            raise ValueError("no exec form")

    @handler("+CSMP", sms=True)
    def _cmd_csmp(self, cmd: Command) -> None:
        if cmd.form == READ:
            fo, vp, pid, dcs = self.csmp
            self._info(f"+CSMP: {fo},{vp},{pid},{dcs}")
        elif cmd.form == TEST:
            return
        elif cmd.form == SET:
            args = self._need_args(cmd, 1, 4)
            new = list(self.csmp)
            for i, a in enumerate(args):
                if a is not None:
                    new[i] = self._int(a, 0, 255)
            self.csmp = new
        else:
            raise ValueError("no exec form")

    @handler("+CSDH", sms=True)
    def _cmd_csdh(self, cmd: Command) -> None:
        self._setting(cmd, "csdh", 1)

    @handler("+CNMI", sms=True)
    def _cmd_cnmi(self, cmd: Command) -> None:
        if cmd.form == READ:
            self._info("+CNMI: " + ",".join(str(v) for v in self.cnmi))
        elif cmd.form == TEST:
            self._info("+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)")
        elif cmd.form == SET:
            args = self._need_args(cmd, 1, 5)
            limits = [(0, 3), (0, 3), (0, 3), (0, 2), (0, 1)]
            new = list(self.cnmi)
            for i, a in enumerate(args):
                if a is not None:
                    new[i] = self._int(a, *limits[i])
            if new[2] not in (0, 2):
                raise ValueError("bm")
            old_mode = self.cnmi[0]
            self.cnmi = new
            if new[0] != 0 and old_mode == 0 and self._ta_buffer:
                if new[4] == 0:
                    self._urc_queue.extend(self._ta_buffer)
                self._ta_buffer.clear()
        else:
            self.cnmi = [0, 0, 0, 0, 0]

    # ------------------------------------------------------------ SMS storage
    def _mem(self, i: int) -> Storage:
        return self._stores[self.cpms[i]]

    def _check_index(self, store: Storage, index: int) -> None:
        if not store.valid_index(index):
            raise _Cms(CmsErrorCode.INVALID_MEMORY_INDEX)

    @handler("+CMGR", message=True)
    def _cmd_cmgr(self, cmd: Command) -> None:
        if cmd.form == TEST:
            return
        if cmd.form != SET:
            raise ValueError("set only")
        (a,) = self._need_args(cmd, 1, 1)
        index = self._int(a, 0, 100000)
        store = self._mem(0)
        self._check_index(store, index)
        m = store.get(index)
        if m is None:
            if self.profile.stray_ok_after_error:
                # Plain ERROR, then a stray OK line: the line's own final result
                # code follows as the "second" answer.
                self._resp.append(self._fmt_final("ERROR", 4))
                return
            if self.profile.cmgr_empty_error is not None:
                raise _Cms(self.profile.cmgr_empty_error)
            return
        self._info_lines(self._message_lines(m, index, listing=False))
        if m.stat == REC_UNREAD:
            m.stat = REC_READ

    def _message_lines(self, m: StoredMessage, index: int, *, listing: bool) -> list[bytes]:
        """Header (and data line) of a stored message for +CMGR / +CMGL."""
        if self.cmgf == 0:
            head = f"+CMGL: {index},{m.stat},,{m.length}" if listing else (
                f"+CMGR: {m.stat},,{m.length}"
            )
            return [head.encode(), self._pdu_line(m.pdu_hex).encode("latin-1")]
        text_head, body = self._text_view(m, index if listing else None)
        return [text_head.encode()] + ([body] if body is not None else [])

    @handler("+CMGL", message=True)
    def _cmd_cmgl(self, cmd: Command) -> None:
        if cmd.form == TEST:
            if self.cmgf:
                self._info('+CMGL: ("REC UNREAD","REC READ","STO UNSENT","STO SENT","ALL")')
            else:
                self._info("+CMGL: (0-4)")
            return
        if cmd.form == READ:
            raise ValueError("no read form")
        stat = REC_UNREAD
        if cmd.form == SET:
            args = self._need_args(cmd, 1, 2)
            a = args[0]
            if self.cmgf:
                if a is None or not cmd.quoted(0) or a.upper() not in STAT_FROM_TEXT:
                    raise ValueError("stat")
                stat = STAT_FROM_TEXT[a.upper()]
            else:
                stat = self._int(a, 0, 4, REC_UNREAD)
                if cmd.quoted(0):
                    raise ValueError("stat")
        store = self._mem(0)
        shown = [(i, m) for i, m in store.items() if stat in (ALL, m.stat)]
        if not shown and self.profile.cmgl_empty_error is not None:
            raise _Cms(self.profile.cmgl_empty_error)
        lines: list[bytes] = []
        for i, m in shown:
            lines += self._message_lines(m, i, listing=True)
            if m.stat == REC_UNREAD:
                m.stat = REC_READ
        if lines:
            self._info_lines(lines)

    @handler("+CMGD", message=True)
    def _cmd_cmgd(self, cmd: Command) -> None:
        store = self._mem(0)
        if cmd.form == TEST:
            used = ",".join(str(i) for i, _ in store.items())
            self._info(f"+CMGD: ({used}),(0-4)")
            return
        if cmd.form != SET:
            raise ValueError("set only")
        args = self._need_args(cmd, 1, 2)
        if len(args) > 1 and self.profile.cmgd_flag_refused:
            raise _Plain()
        flag = self._int(args[1], 0, 4, 0) if len(args) > 1 else 0
        if flag == 0:
            index = self._int(args[0], 0, 100000)
            self._check_index(store, index)
            store.delete(index)
        else:
            if args[0] is not None:
                self._int(args[0], 0, 100000)
            doomed = {
                1: (REC_READ,),
                2: (REC_READ, STO_SENT),
                3: (REC_READ, STO_SENT, STO_UNSENT),
                4: (REC_READ, STO_SENT, STO_UNSENT, REC_UNREAD),
            }[flag]
            for i, m in store.items():
                if m.stat in doomed:
                    store.delete(i)
        self._schedule_retry()

    # -------------------------------------------------------------- sending
    @handler("+CMGS", message=True)
    def _cmd_cmgs(self, cmd: Command) -> None:
        self._open_prompt(cmd, "+CMGS")

    @handler("+CMGW", message=True)
    def _cmd_cmgw(self, cmd: Command) -> None:
        self._open_prompt(cmd, "+CMGW")

    def _open_prompt(self, cmd: Command, which: str) -> None:
        if cmd.form == TEST:
            return
        if cmd.form == READ:
            raise ValueError("no read form")
        if self.cmgf == 0:
            if cmd.form != SET:
                raise ValueError("length needed")
            args = self._need_args(cmd, 1, 2 if which == "+CMGW" else 1)
            length = self._int(args[0], 1, 164)
            stat = STO_UNSENT
            if len(args) > 1:
                stat = self._int(args[1], 0, 3, STO_UNSENT)
            self._prompt = _Prompt(which, True, length=length, stat=stat)
        else:
            da, toda, stat = "", 129, STO_UNSENT
            if cmd.form == SET:
                args = self._need_args(cmd, 1, 3)
                da = self._te_to_str(args[0] or "")
                if not da or not da.lstrip("+").isalnum():
                    raise ValueError("address")
                toda = 145 if da.startswith("+") else 129
                if len(args) > 1 and args[1] is not None:
                    toda = self._int(args[1], 128, 255)
                if len(args) > 2 and args[2] is not None:
                    if args[2].upper() not in STAT_FROM_TEXT:
                        raise ValueError("stat")
                    stat = STAT_FROM_TEXT[args[2].upper()]
            elif which == "+CMGS":
                raise ValueError("address needed")
            self._prompt = _Prompt(which, False, da=da, toda=toda, stat=stat)
        self._resp.append(self.profile.prompt)

    def _run_prompt(self, pr: _Prompt) -> None:
        self._resp = []
        self._after_commit = None
        self._answering = True
        try:
            if pr.overflow:
                raise self._bad_param(pr.command)
            if pr.command == "+CNMA":
                report = self._prompt_report(pr)
                if not self._acks:  # timed out while the prompt was open
                    raise _Cms(CmsErrorCode.NO_CNMA_EXPECTED)
                self._acknowledge(pr.stat, report)
            elif pr.command == "+CMGS":
                pdu = self._prompt_pdu(pr) if pr.pdu_mode else self._prompt_text(pr)
                mr = self._network_send(pdu)
                self._info(f"+CMGS: {mr}")
            else:
                pdu = self._prompt_pdu(pr) if pr.pdu_mode else self._prompt_text(pr)
                store = self._mem(1)
                length = _codec.tpdu_length(pdu)
                idx = store.add(pr.stat, pdu, length, _codec.kind_of(pdu))
                if idx is None:
                    raise _Cms(CmsErrorCode.MEMORY_FULL)
                self._info(f"+CMGW: {idx}")
            self._resp.append(self._fmt_final("OK", 0))
        except _ErrorResult as err:
            self._resp.append(self._fmt_error(err))
        self._commit()

    def _prompt_pdu(self, pr: _Prompt) -> bytes:
        text = bytes(pr.buf).decode("latin-1").strip().replace(" ", "")
        try:
            data = bytes.fromhex(text)
        except ValueError:
            raise _Cms(CmsErrorCode.INVALID_PDU_MODE_PARAMETER) from None
        if not data or data[0] + 1 > len(data):
            raise _Cms(CmsErrorCode.INVALID_PDU_MODE_PARAMETER)
        if len(data) - 1 - data[0] != pr.length:
            raise _Cms(CmsErrorCode.INVALID_PDU_MODE_PARAMETER)
        try:
            kind = _codec.kind_of(data, strict=True)
        except _codec.PduError:
            raise _Cms(CmsErrorCode.INVALID_PDU_MODE_PARAMETER) from None
        if pr.command == "+CMGS" and kind != "submit":
            raise _Cms(CmsErrorCode.INVALID_PDU_MODE_PARAMETER)
        return data

    def _network_send(self, pdu: bytes) -> int:
        if not self._registered:
            raise _Cms(CmsErrorCode.NO_NETWORK_SERVICE)
        if pdu[0] == 0 and not self.smsc:
            raise _Cms(CmsErrorCode.SMSC_ADDRESS_UNKNOWN)
        code = self.faults.take_cms_error()
        if code is not None:
            raise _Cms(code)
        msg = _codec.decode_with_mr(pdu, self._mr)
        if not msg.tp_da.number:
            # Stored by +CMGW without <da>: the SC refuses it (RP cause 1,
            # "unassigned number", TS 24.011 §8.2.5.4 / TS 27.005 §3.2.5).
            raise _Cms(1)
        mr = self._mr
        self._mr = (self._mr + 1) % 256
        self.mo_log.append(MoRecord(pdu.hex().upper(), msg, mr))
        if _codec.wants_status_report(msg):
            self._later(self.timing.status_report_delay, lambda: self._status_report(msg, mr))
        return mr

    def _status_report(self, submit: Any, mr: int) -> None:
        pdu = _codec.build_status_report(submit, mr, self._now(), smsc=self.smsc)
        self._mt_arrive(NetworkMessage(pdu, "status-report"))

    @handler("+CMSS", message=True)
    def _cmd_cmss(self, cmd: Command) -> None:
        if cmd.form == TEST:
            return
        if cmd.form != SET:
            raise ValueError("set only")
        args = self._need_args(cmd, 1, 3)
        index = self._int(args[0], 0, 100000)
        store = self._mem(1)
        self._check_index(store, index)
        m = store.get(index)
        if m is None or m.kind != "submit":
            raise _Cms(CmsErrorCode.INVALID_MEMORY_INDEX)
        pdu = m.pdu
        if len(args) > 1 and args[1]:
            pdu = _codec.with_destination(pdu, self._te_to_str(args[1]))
        mr = self._network_send(pdu)
        m.stat = STO_SENT
        self._info(f"+CMSS: {mr}")

    @handler("+CNMA", message=True)
    def _cmd_cnma(self, cmd: Command) -> None:
        """TS 27.005 §3.4.4. Text mode: ``+CNMA`` only. PDU mode: ``+CNMA=<n>``
        with <n> 0/1 RP-ACK, 2 RP-ERROR (the network keeps the message and
        delivers it again); ``+CNMA=<n>,<length>`` then takes the
        SMS-DELIVER-REPORT TPDU at the prompt (no SMSC field)."""
        if cmd.form == TEST:
            if self.cmgf == 0:
                self._info("+CNMA: (0-2)")
            return
        if cmd.form == READ:
            raise ValueError("no read form")
        n = length = 0
        if cmd.form == SET:
            if self.cmgf:
                raise ValueError("<n> is PDU mode only")
            args = self._need_args(cmd, 1, 2)
            n = self._int(args[0], 0, 2, 0)
            if len(args) > 1:
                length = self._int(args[1], 0, 175, 0)
        if self.csms != 1 or not self._acks:
            raise _Cms(CmsErrorCode.NO_CNMA_EXPECTED)
        if length:
            self._prompt = _Prompt("+CNMA", True, length=length, stat=n)
            self._resp.append(self.profile.prompt)
            return
        self._acknowledge(n, None)

    def _acknowledge(self, n: int, report: bytes | None) -> None:
        """RP-ACK (n 0/1) or RP-ERROR (n 2) for the oldest unacknowledged +CMT/+CDS."""
        pend, handle = self._acks.pop(0)
        if handle is not None:
            handle.cancel()
            self._timers.discard(handle)
        self.mt_acks.append(MtAck("nack" if n == 2 else "ack", pend.pdu, report))
        if n == 2:
            # RP-ERROR: the network keeps the message and delivers it again.
            self.pending_mt.append(pend)
        self._schedule_retry()  # the network may send what it held meanwhile

    def _prompt_report(self, pr: _Prompt) -> bytes:
        """The SMS-DELIVER-REPORT TPDU of +CNMA=<n>,<length> (TS 23.040 §9.2.2.1a)."""
        text = bytes(pr.buf).decode("latin-1").strip().replace(" ", "")
        try:
            data = bytes.fromhex(text)
        except ValueError:
            raise _Cms(CmsErrorCode.INVALID_PDU_MODE_PARAMETER) from None
        if len(data) != pr.length or data[0] & 0x03 != 0:
            raise _Cms(CmsErrorCode.INVALID_PDU_MODE_PARAMETER)
        return data

    # --------------------------------------------------------- network side
    def _now(self) -> datetime:
        return self.now()

    def now(self) -> datetime:
        """The simulator's clock (UTC, whole seconds): the network's SCTS and
        the base of the module's +CCLK. Real time unless :meth:`set_clock`."""
        if self._clock_fixed is not None:
            return self._clock_fixed
        return (datetime.now(UTC) + self._clock_offset).replace(microsecond=0)

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
        self._clock_fixed = None if fixed is None else fixed.astimezone(UTC).replace(microsecond=0)
        self._clock_offset = offset or timedelta(0)
        self._cclk_skew = timedelta(0)

    def _network_ok(self) -> bool:
        return self._registered and self._state != "boot"

    def _schedule_retry(self) -> None:
        if self.pending_mt:
            self._later(self.timing.network_retry_delay, self._retry_now)

    def _retry_now(self) -> None:
        self.retry_pending()

    def retry_pending(self) -> list[int]:
        """The network tries again to deliver the messages it holds."""
        if self._retrying:  # a retry scheduled from inside one (no loop: at once)
            return []
        self._retrying = True
        try:
            pend, self.pending_mt = self.pending_mt, []
            out: list[int] = []
            for p in pend:
                idx = self._mt_arrive(p)
                if idx is not None:
                    out.append(idx)
            return out
        finally:
            self._retrying = False

    def _mt_arrive(self, p: NetworkMessage) -> int | None:
        """One TPDU from the network: route it per +CNMI; the storage index or None."""
        if not self._network_ok():
            self.pending_mt.append(p)
            return None
        mt, ds = self.cnmi[1], self.cnmi[3]
        if p.kind == "status-report":
            if ds == 0:
                self.unrouted_status_reports.append(p.pdu)
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
            self.pending_mt.append(p)
            return None
        if urc is not None:
            self._urc(f'{urc}: "{store.name}",{idx}'.encode(), sms=True)
        return idx

    def _direct(self, p: NetworkMessage, urc: str) -> None:
        """Route ``p`` to the TE as +CMT/+CDS (TS 27.005 §3.4.1)."""
        if self.csms == 1 and self._acks:
            # "TA shall not send another +CMT or +CDS result code to TE before
            # previous one is acknowledged": the network holds it meanwhile.
            self.pending_mt.append(p)
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
            self.pending_mt.append(p)
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
            self._acks.append(entry)

    def _cnma_expired(self, entry: tuple[NetworkMessage, asyncio.TimerHandle | None]) -> None:
        if entry not in self._acks:
            return
        self._acks.remove(entry)
        self.mt_acks.append(MtAck("timeout", entry[0].pdu))
        # TS 27.005 §3.4.1: RP-ERROR to the network; <mt> and <ds> set to 0.
        self.cnmi[1] = 0
        self.cnmi[3] = 0
        self.pending_mt.insert(0, entry[0])  # before what the network held behind it
        self._schedule_retry()

    # ------------------------------------------------------ control: public
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
                    sid = ("HC" if sender == "000" else "DC") + self._rng.getrandbits(128).to_bytes(
                        16, "big"
                    ).hex()
                if include_sid == "start":
                    content = f"{sid} {content}"
                elif include_sid == "end":
                    content = f"{content} {sid}"
                else:
                    raise ValueError("include_sid is 'start' or 'end'")
            if scts is not None and scts.utcoffset() is None:
                raise ValueError("scts must be timezone-aware")
            self._concat_ref = (self._concat_ref + 1) % 256
            tpdus = _codec.build_delivers(
                sender, content, scts=self._now() if scts is None else scts, encoding=encoding,
                ref=self._concat_ref, smsc=self.smsc, message_class=message_class,
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
        self.mo_log.clear()

    def storage(self, name: str = "SM") -> Storage:
        """The storage ``name`` ("SM", "ME" or "MT")."""
        return self._stores[name.upper()]

    def store_raw(
        self,
        record: str | bytes,
        *,
        length: int | None = None,
        stat: int = REC_UNREAD,
        mem: str = "SM",
        notify: bool = False,
    ) -> int:
        """Put a (possibly damaged) record into storage ``mem``; its index.

        ``record`` as bytes is printed by +CMGR/+CMGL as its hex; as str it is
        printed exactly as given (non-hex text, odd length, empty). ``length``
        is the header's <length> (default: the TPDU length the octets imply,
        right or not), so framing that disagrees with it, an empty PDU, over
        255 octets or random bytes are kept and shown the same way every
        time. ``notify`` sends +CMTI when +CNMI routes indications.
        ValueError when the storage is full or an argument is out of range.
        """
        if stat not in STAT_TEXT or stat == ALL:
            raise ValueError(f"store_raw: stat is 0-3, not {stat!r}")
        store = self.storage(mem)
        if isinstance(record, bytes):
            raw, text = record, None
        else:
            text = record
            try:
                raw = bytes.fromhex(record)
            except ValueError:
                raw = b""
        if length is None:
            length = len(raw) - 1 - raw[0] if raw and raw[0] < len(raw) else len(raw)
        if length < 0:
            raise ValueError(f"store_raw: length must be >= 0, not {length}")
        idx = store.add(stat, raw, length, "deliver", raw_text=text)
        if idx is None:
            raise ValueError(f"store_raw: storage {store.name} is full")
        if notify and self.cnmi[1] in (1, 2, 3):
            self._urc(f'+CMTI: "{store.name}",{idx}'.encode(), sms=True)
        return idx

    def set_registered(self, registered: bool, *, roaming: bool = False) -> None:
        """The network is reachable (or lost); +CREG/+CGREG/+CEREG report changes."""
        self._roaming = roaming
        self._net_available = registered
        self._update_registration()

    def set_signal(self, rssi: int, ber: int = 99) -> None:
        self.rssi, self.ber = rssi, ber

    @property
    def _delay(self) -> float:
        """The answer delay of the "delay" fault (kept for tests that read it)."""
        return self.faults.delay
