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
from collections.abc import Callable
from datetime import timedelta

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
from .network import MoRecord, MtAck, Network, NetworkMessage, NetworkSide
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


class SimModem(LineDiscipline, NetworkSide, Ts27007Commands, FaultInjection):
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
        self.faults = Faults(seed)
        self._ports: list[SimPort] = []
        self._reconnect_listeners: list[Callable[[], None]] = []
        self.connectable = True
        p = self.profile
        sm = Storage("SM", p.sm_capacity, p.index_base, cyclic=p.indexes_never_reused)
        me = Storage("ME", p.me_capacity, p.index_base, cyclic=p.indexes_never_reused)
        self._stores: dict[str, Storage] = {"SM": sm, "ME": me, "MT": UnionStorage(sm, me)}
        self.smsc = p.smsc
        #: The network behind the module (what it holds, logs and acknowledges).
        self.network = Network(seed)
        #: The module's +CCLK time zone, in quarter hours (TS 27.007 §8.15).
        self.clock_tz_quarters = 0
        #: What +CCLK=<time> set: the module's clock minus the simulator's.
        self._cclk_skew = timedelta(0)
        # Timers.
        self._timers: set[asyncio.TimerHandle] = set()
        self._busy_handle: asyncio.TimerHandle | None = None
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
        for _, h2 in self.network.acks:
            if h2 is not None:
                h2.cancel()
        self.network.acks.clear()

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

    def _reboot(self) -> None:
        """Reset: drop the pending command, reset volatile settings, boot again."""
        if self._busy_handle is not None:
            self._busy_handle.cancel()
            self._busy_handle = None
        for pend, h in self.network.acks:
            if h is not None:
                h.cancel()
            self.network.pending_mt.append(pend)
        self.network.acks.clear()
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
                if not self.network.acks:  # timed out while the prompt was open
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
        if self.csms != 1 or not self.network.acks:
            raise _Cms(CmsErrorCode.NO_CNMA_EXPECTED)
        if length:
            self._prompt = _Prompt("+CNMA", True, length=length, stat=n)
            self._resp.append(self.profile.prompt)
            return
        self._acknowledge(n, None)

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

    # ------------------------------------------------------ control: public
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

    @property
    def _delay(self) -> float:
        """The answer delay of the "delay" fault (kept for tests that read it)."""
        return self.faults.delay
