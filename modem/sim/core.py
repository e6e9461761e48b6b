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
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Protocol

from modem.errors import CmeErrorCode, CmsErrorCode

from . import codec as _codec
from .cmdline import EXEC, READ, SET, TEST, Command, CommandLineError, parse_line
from .profiles import PROFILES, Profile
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

CTRL_Z = 0x1A
ESC = 0x1B

#: Commands of TS 27.005: their errors are +CMS ERROR.
_SMS_COMMANDS = frozenset({
    "+CSMS", "+CPMS", "+CMGF", "+CSCA", "+CSMP", "+CSDH", "+CNMI", "+CNMA", "+CMGS", "+CMGW",
    "+CMSS", "+CMGR", "+CMGL", "+CMGD",
})
#: 27.005 commands that carry message data: parameter errors are 304/305.
_SMS_MESSAGE_COMMANDS = frozenset({
    "+CNMA", "+CMGS", "+CMGW", "+CMSS", "+CMGR", "+CMGL", "+CMGD",
})
#: Commands that work before the SIM PIN is given.
_PIN_FREE = frozenset({
    "E", "V", "Q", "Z", "I", "H", "X", "&F", "&W", "&V", "&D", "&C", "+CPIN", "+CMEE", "+CGMI",
    "+CGMM", "+CGMR", "+CGSN", "+GMI", "+GMM", "+GMR", "+GSN", "+CFUN", "+CSQ", "+CREG", "+CGREG",
    "+CEREG", "+COPS", "+CSCS", "+CMGF", "+CCLK", "+QCCID", "+CCID", "+ICCID", "+CICCID",
})

#: SIM retry counters after a correct entry (ETSI TS 102 221 §9.4, TS 31.102).
PIN_ATTEMPTS = 3
PUK_ATTEMPTS = 10

#: Longest text a prompt collects (hex PDU of the largest SUBMIT is 2*(12+164)).
_PROMPT_MAX = 1024


class SimPort(Protocol):
    """Where the module's output goes (an endpoint or the in-process transport)."""

    def sim_output(self, data: bytes) -> None:
        """Bytes from the module to the DTE."""

    def sim_hangup(self) -> None:
        """The port was closed by the module side (disconnect fault)."""


@dataclass
class SimTiming:
    """Every delay of the simulator, in seconds (short defaults suit tests)."""

    #: Power-on / reset until the start-up lines and the module answers.
    boot_delay: float = 0.05
    #: TS 27.005 §3.4.1: the network's wait for +CNMA (TS 24.011 TR2M, ~12-20 s).
    cnma_timeout: float = 15.0
    #: MO message accepted -> SMS-STATUS-REPORT arrives.
    status_report_delay: float = 0.02
    #: A refused / unacknowledged MT message -> the network tries again.
    network_retry_delay: float = 0.1
    #: Default down time of the "disconnect" fault before the port comes back.
    reconnect_delay: float = 0.2
    #: Registration after boot / "register".
    registration_delay: float = 0.0


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


class _ErrorResult(Exception):
    pass


class _Cme(_ErrorResult):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _Cms(_ErrorResult):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _Plain(_ErrorResult):
    """Plain ERROR whatever +CMEE says (V.250 syntax errors)."""


@dataclass
class _Prompt:
    command: str  # "+CMGS" / "+CMGW"
    pdu_mode: bool
    length: int = 0
    da: str = ""
    toda: int = 129
    stat: int = STO_UNSENT
    buf: bytearray = field(default_factory=bytearray)
    overflow: bool = False


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


class SimModem:
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
        if sim_busy_time < 0:
            raise ValueError(f"sim_busy_time must be >= 0 seconds, not {sim_busy_time!r}")
        #: The SIM's PIN (None: PIN check disabled); a PUK unblock replaces it.
        self.pin = pin
        #: The SIM's PUK (TS 31.102 / ETSI TS 102 221 unblock key).
        self.puk = puk
        #: Retry counters kept on the SIM (ETSI TS 102 221 §9.4): they survive reboots.
        self.pin_attempts_left = PIN_ATTEMPTS
        self.puk_attempts_left = PUK_ATTEMPTS
        #: False: no SIM in the holder (+CPIN? answers +CME ERROR: 10).
        self.sim_inserted = sim_inserted
        #: Seconds the SIM stays busy (+CME ERROR: 14) after each boot.
        self.sim_busy_time = sim_busy_time
        self._sim_busy = False
        self.timing = timing or SimTiming()
        self._rng = random.Random(seed)
        self._fault_rng = random.Random(seed + 1)
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
        # Faults.
        self._drop_rate = 0.0
        self._corrupt_rate = 0.0
        self._delay = 0.0
        self._cms_errors: list[int] = []
        self._reboot_on_next_line = False
        # The simulator's clock (network and module): real UTC + offset, or fixed.
        self._clock_offset = timedelta(0)
        self._clock_fixed: datetime | None = None
        #: The module's +CCLK time zone, in quarter hours (TS 27.007 §8.15).
        self.clock_tz_quarters = 0
        #: What +CCLK=<time> set: the module's clock minus the simulator's.
        self._cclk_skew = timedelta(0)
        #: Damage for the next PDU lines printed (damage-next-pdu), oldest first.
        self._pdu_damage: list[str] = []
        # Timers.
        self._timers: set[asyncio.TimerHandle] = set()
        self._busy_handle: asyncio.TimerHandle | None = None
        self._acks: list[tuple[NetworkMessage, asyncio.TimerHandle | None]] = []
        self._retrying = False
        self._reset_volatile()
        self._pin_ok = pin is None
        self._state = "cmd"
        self._registered = self._pin_ok and sim_inserted and sim_busy_time == 0
        self._last_line = ""
        #: A command line (or prompt text) is being answered: URCs wait for its end.
        self._answering = False
        self._after_commit: Callable[[], None] | None = None
        #: Counts boots, so that a SIM-initialisation timer of an earlier boot is ignored.
        self._boot_gen = 0
        if sim_busy_time > 0 and sim_inserted:
            self._start_sim_init()

    # ------------------------------------------------------------------ ports
    def attach(self, port: SimPort) -> None:
        """Send the module's output to ``port`` from now on."""
        if port not in self._ports:
            self._ports.append(port)

    def detach(self, port: SimPort) -> None:
        if port in self._ports:
            self._ports.remove(port)

    def add_reconnect_listener(self, cb: Callable[[], None]) -> None:
        """``cb()`` runs when a port comes back after the "disconnect" fault."""
        self._reconnect_listeners.append(cb)

    def remove_reconnect_listener(self, cb: Callable[[], None]) -> None:
        if cb in self._reconnect_listeners:
            self._reconnect_listeners.remove(cb)

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

    # ----------------------------------------------------------------- timers
    def _later(self, delay: float, fn: Callable[[], None]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            fn()  # no loop (plain synchronous use): happen now
            return
        handle: asyncio.TimerHandle

        def run() -> None:
            self._timers.discard(handle)
            fn()

        handle = loop.call_later(max(0.0, delay), run)
        self._timers.add(handle)

    # ----------------------------------------------------------------- output
    def _write(self, data: bytes) -> None:
        if not data or self._state == "hung":
            return
        if self._drop_rate or self._corrupt_rate:
            out = bytearray()
            for byte in data:
                if self._drop_rate and self._fault_rng.random() < self._drop_rate:
                    continue
                if self._corrupt_rate and self._fault_rng.random() < self._corrupt_rate:
                    byte ^= self._fault_rng.randrange(1, 256)  # noqa: PLW2901
                out.append(byte)
            data = bytes(out)
            if not data:
                return
        for port in list(self._ports):
            port.sim_output(data)

    def _crlf(self) -> bytes:
        return bytes([self.s3, self.s4])

    def _fmt_info(self, line: bytes) -> bytes:
        if self.verbose:
            return self._crlf() + line + self._crlf()
        return line + self._crlf()

    def _fmt_final(self, text: str, number: int) -> bytes:
        if self.quiet:
            return b""
        if self.verbose:
            return self._crlf() + text.encode() + self._crlf()
        return str(number).encode() + bytes([self.s3])

    def _fmt_error(self, err: _ErrorResult) -> bytes:
        if self.quiet:
            return b""
        if isinstance(err, _Plain) or self.cmee == 0 or not self.profile.cmee_supported:
            return self._fmt_final("ERROR", 4)
        if isinstance(err, _Cme):
            prefix = "+CME ERROR: "
            member: Any = CmeErrorCode.from_number(err.code)
        else:
            assert isinstance(err, _Cms)
            prefix = "+CMS ERROR: "
            member = CmsErrorCode.from_number(err.code)
        code_num = err.code
        if self.cmee == 2 and isinstance(member, CmeErrorCode | CmsErrorCode):
            text = prefix + str(member.text)
        else:
            text = prefix + str(code_num)
        return self._fmt_info(text.encode())

    # -------------------------------------------------------- power and state
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
    def state(self) -> str:
        """"cmd", "prompt", "busy", "boot" or "hung"."""
        return self._state

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
        self._reboot_on_next_line = False
        self._reset_volatile()
        self._state = "boot"
        self._registered = False
        self._pin_ok = self.pin is None
        self._sim_busy = False
        self._boot_gen += 1
        self._later(self.timing.boot_delay, self._boot_done)

    def _boot_done(self) -> None:
        if self._state != "boot":
            return
        self._state = "cmd"
        for line in self.profile.startup_urcs:
            self._urc(line.encode())
        if self.sim_inserted and self.sim_busy_time > 0:
            self._start_sim_init()
        else:
            self._sim_init_done(self._boot_gen)

    def _start_sim_init(self) -> None:
        """Quectel/SIMCom: SIM commands answer +CME ERROR: 14 while the SIM
        initialises after power-up (``sim_busy_time`` seconds)."""
        self._sim_busy = True
        gen = self._boot_gen
        self._later(self.sim_busy_time, lambda: self._sim_init_done(gen))

    def _sim_init_done(self, gen: int) -> None:
        """The SIM finished initialising: report its state (+CPIN URC)."""
        if gen != self._boot_gen:
            return  # a timer of an earlier boot
        self._sim_busy = False
        if self._state in ("boot", "hung") or not self.sim_inserted:
            return
        state = self.sim_state
        if state == "ready":
            self._sim_ready()
        elif state == "pin":
            self._urc(b"+CPIN: SIM PIN")
        elif state == "puk":
            self._urc(b"+CPIN: SIM PUK")

    @property
    def sim_state(self) -> str:
        """The SIM as TS 27.007 §8.3 sees it: "absent", "busy", "blocked" (PUK
        retries exhausted), "puk" (PIN retries exhausted), "pin" or "ready"."""
        if not self.sim_inserted:
            return "absent"
        if self._sim_busy:
            return "busy"
        if self.puk_attempts_left == 0:
            return "blocked"
        if self.pin_attempts_left == 0:
            return "puk"
        return "ready" if self._pin_ok else "pin"

    def _sim_error(self, name: str) -> _ErrorResult | None:
        """Why a SIM-dependent command cannot run now (TS 27.007 §9.2.1 for
        +CME ERROR, TS 27.005 §3.2.5 for the +CMS ERROR of SMS commands)."""
        cme, cms = {
            "absent": (CmeErrorCode.SIM_NOT_INSERTED, CmsErrorCode.SIM_NOT_INSERTED),
            "busy": (CmeErrorCode.SIM_BUSY, CmsErrorCode.SIM_BUSY),
            "blocked": (CmeErrorCode.SIM_FAILURE, CmsErrorCode.SIM_FAILURE),
            "puk": (CmeErrorCode.SIM_PUK_REQUIRED, CmsErrorCode.SIM_PUK_REQUIRED),
            "pin": (CmeErrorCode.SIM_PIN_REQUIRED, CmsErrorCode.SIM_PIN_REQUIRED),
        }.get(self.sim_state, (None, None))
        if cme is None or cms is None:
            return None
        return _Cms(cms) if name in _SMS_COMMANDS else _Cme(cme)

    def _sim_ready(self) -> None:
        for line in self.profile.sim_ready_urcs:
            self._urc(line.encode())
        self._later(self.timing.registration_delay, self._update_registration)

    # ------------------------------------------------------------------ input
    def receive(self, data: bytes) -> None:
        """Bytes the DTE wrote to the module."""
        # Leading bytes already echoed (or not) when they arrived during a busy spell.
        decided, self._echo_decided = self._echo_decided, 0
        for i, b in enumerate(data):
            st = self._state
            if st == "busy":
                # Echo at once (the TA echoes on arrival); handle after the answer.
                rest = data[i:]
                fresh = rest[decided:]
                if fresh and self.echo:
                    self._write(fresh)
                self._pending_in += rest
                return
            echo = self.echo and not decided
            if decided:
                decided -= 1
            if st in ("hung", "boot"):
                continue
            if st == "prompt":
                self._prompt_byte(b, echo)
            else:
                self._cmd_byte(b, echo)

    def _cmd_byte(self, b: int, echo: bool) -> None:
        if echo:
            self._write(bytes([b]))
        if b == self.s3:
            self._line_complete()
            return
        if b == self.s5:
            if self._line:
                self._line.pop()
            return
        if b == self.s4 and not self._line:
            return
        if len(self._line) >= self.profile.max_line:
            self._line_overflow = True
            return
        self._line.append(b)
        # V.250 §5.2.4: "A/" repeats the last command line at once, no S3 needed.
        if b == ord("/") and bytes(self._line).strip().upper() == b"A/":
            self._line.clear()
            self._run_line(self._last_line)

    def _line_complete(self) -> None:
        raw = bytes(self._line)
        overflow = self._line_overflow
        self._line.clear()
        self._line_overflow = False
        text = raw.decode("latin-1")
        # V.250 §5.2.1: characters before "AT" are ignored; a line without it too.
        pos = text.upper().find("AT")
        if overflow:
            if pos >= 0 or len(text) >= self.profile.max_line:
                self._resp = [self._fmt_error(_Plain())]
                self._commit()
            return
        if pos < 0:
            self._flush_urcs()
            return
        body = text[pos + 2 :]
        self._last_line = body
        self._run_line(body)

    # --------------------------------------------------------------- execution
    def _run_line(self, body: str) -> None:
        if self._reboot_on_next_line:  # the "reboot next" fault: reset instead of answering
            self._reboot()
            return
        self._resp = []
        self._after_commit = None
        self._answering = True
        next_state = "cmd"
        if self.profile.bare_at_error and not body.strip():
            self._resp.append(self._fmt_final("ERROR", 4))
            self._commit()
            return
        try:
            cmds = parse_line(body)
        except CommandLineError:
            cmds = None
        if cmds is None:
            self._resp.append(self._fmt_error(_Cme(CmeErrorCode.OPERATION_NOT_SUPPORTED)))
        else:
            ok = True
            for cmd in cmds:
                try:
                    self._dispatch(cmd)
                except _ErrorResult as err:
                    self._resp.append(self._fmt_error(err))
                    ok = False
                    break
                if self._prompt is not None:
                    next_state = "prompt"
                    break
            if ok and next_state == "cmd":
                self._resp.append(self._fmt_final("OK", 0))
        self._commit(next_state)

    def _commit(self, next_state: str = "cmd") -> None:
        out = b"".join(self._resp)
        self._resp = []
        after = self._after_commit
        self._after_commit = None
        self._answering = False
        loop: asyncio.AbstractEventLoop | None = None
        if self._delay > 0:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None  # synchronous use: no delay without a loop
        if loop is not None:
            self._state = "busy"

            def done() -> None:
                self._busy_handle = None
                if self._state != "busy":
                    return
                self._state = next_state
                self._write(out)
                if after is not None:
                    after()
                self._resume()

            self._busy_handle = loop.call_later(self._delay, done)
            return
        self._state = next_state
        self._write(out)
        if after is not None:
            after()
        self._resume()

    def _resume(self) -> None:
        if self._state == "cmd":
            self._flush_urcs()
        if self._state in ("cmd", "prompt") and self._pending_in:
            data = bytes(self._pending_in)
            self._pending_in.clear()
            self._echo_decided = len(data)
            self.receive(data)

    def _dispatch(self, cmd: Command) -> None:
        name = cmd.name
        if name.startswith("S") and name[1:].isdigit():
            self._cmd_sreg(cmd)
            return
        if name in self.profile.iccid_commands:
            self._cmd_iccid(cmd)
            return
        handler = _HANDLERS.get(name)
        if handler is None:
            raise _Cme(CmeErrorCode.OPERATION_NOT_SUPPORTED)
        if name not in _PIN_FREE:
            err = self._sim_error(name)
            if err is not None:
                raise err
        try:
            handler(self, cmd)
        except (ValueError, CommandLineError) as exc:
            if isinstance(exc, _codec.PduError):
                raise _Cms(CmsErrorCode.INVALID_PDU_MODE_PARAMETER) from None
            raise self._bad_param(name) from None

    def _bad_param(self, name: str) -> _ErrorResult:
        if name in _SMS_MESSAGE_COMMANDS:
            return _Cms(
                CmsErrorCode.INVALID_TEXT_MODE_PARAMETER
                if self.cmgf
                else CmsErrorCode.INVALID_PDU_MODE_PARAMETER
            )
        if name in _SMS_COMMANDS:
            return _Cms(CmsErrorCode.OPERATION_NOT_SUPPORTED)
        if len(name) <= 2:
            return _Plain()
        return _Cme(CmeErrorCode.INCORRECT_PARAMETERS)

    def _info(self, line: str | bytes) -> None:
        self._resp.append(self._fmt_info(line.encode() if isinstance(line, str) else line))

    def _info_lines(self, lines: list[bytes]) -> None:
        """One information response of several lines (V.250 §5.7.1): one header
        and trailer, the lines apart by S3 S4 (no empty line between them, as in
        TS 27.005 +CMGL: "<data>[<CR><LF>+CMGL: ...")."""
        self._resp.append(self._fmt_info(self._crlf().join(lines)))

    # ------------------------------------------------------------------- URCs
    def _urc(self, line: bytes, *, sms: bool = False) -> bool:
        """Send an unsolicited line now, or hold it until the DTE link is free.

        False when it was discarded (+CNMI <mode> 1 with the link reserved).
        """
        chunk = self._fmt_info(line)
        if sms and self.cnmi[0] == 0:
            self._ta_buffer.append(chunk)
            return True
        if self._state == "hung":
            return True
        if self._state != "cmd" or self._line or self._answering:
            if sms and self.cnmi[0] == 1:
                return False  # <mode> 1: discard when the link is reserved
            self._urc_queue.append(chunk)
            return True
        self._write(chunk)
        return True

    def _flush_urcs(self) -> None:
        if self._urc_queue and self._state == "cmd" and not self._line and not self._answering:
            out = b"".join(self._urc_queue)
            self._urc_queue.clear()
            self._write(out)

    # ------------------------------------------------------------ arg helpers
    @staticmethod
    def _int(arg: str | None, lo: int, hi: int, default: int | None = None) -> int:
        if arg is None:
            if default is None:
                raise ValueError("missing argument")
            return default
        if not arg.isdigit():
            raise ValueError(f"not a number: {arg!r}")
        v = int(arg)
        if not lo <= v <= hi:
            raise ValueError(f"{v} out of range {lo}-{hi}")
        return v

    @staticmethod
    def _need_args(cmd: Command, lo: int, hi: int) -> list[str | None]:
        args = cmd.args()
        if not lo <= len(args) <= hi:
            raise ValueError("wrong number of arguments")
        return args

    # ------------------------------------------------------- V.250 basic set
    def _cmd_e(self, cmd: Command) -> None:
        echo = self._basic_flag(cmd)
        self.echo = echo and not self.profile.echo_fixed_off

    def _cmd_v(self, cmd: Command) -> None:
        self.verbose = self._basic_flag(cmd)

    def _cmd_q(self, cmd: Command) -> None:
        self.quiet = self._basic_flag(cmd)

    @staticmethod
    def _basic_flag(cmd: Command) -> bool:
        if cmd.form == READ:
            raise ValueError("no read form")
        v = int(cmd.raw) if cmd.raw else 0
        if v not in (0, 1):
            raise ValueError("0 or 1")
        return v == 1

    def _cmd_z(self, cmd: Command) -> None:
        if cmd.raw not in ("", "0"):
            raise ValueError("ATZ takes 0")
        self._reset_settings()

    def _cmd_and_f(self, cmd: Command) -> None:
        if cmd.raw not in ("", "0"):
            raise ValueError("AT&F takes 0")
        self._reset_settings()

    def _cmd_ok(self, cmd: Command) -> None:
        """Accepted and ignored (ATH, ATX, AT&W, AT&D, AT&C)."""

    def _cmd_i(self, cmd: Command) -> None:
        p = self.profile
        lines = [p.manufacturer, p.model, f"Revision: {p.revision}"]
        self._info_lines([line.encode() for line in lines])

    def _cmd_sreg(self, cmd: Command) -> None:
        reg = int(cmd.name[1:])
        regs = {3: "s3", 4: "s4", 5: "s5"}
        if cmd.form == READ:
            val = getattr(self, regs[reg]) if reg in regs else 0
            self._info(f"{val:03d}")
        elif cmd.form == SET:
            v = self._int(cmd.raw or None, 0, 127 if reg in regs else 255)
            if reg in regs:
                setattr(self, regs[reg], v)
        elif cmd.form == TEST:
            self._info("(0-127)")

    # -------------------------------------------------------------- identity
    def _ident(self, cmd: Command, value: str) -> None:
        if cmd.form == TEST:
            return
        if cmd.form != EXEC:
            raise ValueError("exec only")
        self._info(value)

    def _cmd_cgmi(self, cmd: Command) -> None:
        self._ident(cmd, self.profile.manufacturer)

    def _cmd_cgmm(self, cmd: Command) -> None:
        self._ident(cmd, self.profile.model)

    def _cmd_cgmr(self, cmd: Command) -> None:
        self._ident(cmd, self.profile.revision)

    def _cmd_cgsn(self, cmd: Command) -> None:
        self._ident(cmd, self.profile.imei)

    def _cmd_cimi(self, cmd: Command) -> None:
        self._ident(cmd, self.profile.imsi)

    def _cmd_iccid(self, cmd: Command) -> None:
        if cmd.form == TEST:
            return
        if cmd.form != EXEC:
            raise self._bad_param(cmd.name)
        # EF_ICCID is readable without the PIN (TS 31.102 §4.1.1): no PIN check,
        # but it needs a SIM that is present and initialised.
        if self.sim_state in ("absent", "busy"):
            err = self._sim_error(cmd.name)
            assert err is not None
            raise err
        self._info(self.profile.iccid_commands[cmd.name] + self.profile.iccid)

    def _cmd_cpin(self, cmd: Command) -> None:
        """TS 27.007 §8.3 with the SIM's retry counters (ETSI TS 102 221 §9.4):
        3 wrong PINs block the PIN (PUK needed), 10 wrong PUKs the SIM for good."""
        state = self.sim_state
        if cmd.form == TEST:
            return
        if state in ("absent", "busy", "blocked"):
            err = self._sim_error(cmd.name)
            assert err is not None
            raise err
        if cmd.form == READ:
            self._info({"ready": "+CPIN: READY", "pin": "+CPIN: SIM PIN"}.get(
                state, "+CPIN: SIM PUK"))
        elif cmd.form == SET:
            args = self._need_args(cmd, 1, 2)
            if state == "ready":
                raise _Cme(CmeErrorCode.OPERATION_NOT_ALLOWED)
            if state == "puk":
                self._enter_puk(args)
                return
            if args[0] != self.pin:
                self.pin_attempts_left -= 1
                raise _Cme(CmeErrorCode.INCORRECT_PASSWORD)
            self.pin_attempts_left = PIN_ATTEMPTS
            self._pin_ok = True
            self._after_commit = self._sim_ready
        else:
            raise ValueError("+CPIN needs a PIN")

    def _enter_puk(self, args: list[str | None]) -> None:
        """``+CPIN="<puk>","<newpin>"``: unblock with the PUK, set a new PIN."""
        if len(args) < 2 or args[1] is None:
            raise _Cme(CmeErrorCode.SIM_PUK_REQUIRED)
        new_pin = args[1]
        if not (new_pin.isdigit() and 4 <= len(new_pin) <= 8):
            raise _Cme(CmeErrorCode.INCORRECT_PARAMETERS)  # PIN: 4-8 digits
        if args[0] != self.puk:
            self.puk_attempts_left -= 1
            raise _Cme(CmeErrorCode.INCORRECT_PASSWORD)
        self.puk_attempts_left = PUK_ATTEMPTS
        self.pin_attempts_left = PIN_ATTEMPTS
        self.pin = new_pin
        self._pin_ok = True
        self._after_commit = self._sim_ready

    def _setting(self, cmd: Command, attr: str, hi: int) -> None:
        """A one-number setting 0..hi (+CMEE, +CMGF, +CSDH): read, test, set;
        the set form without a value and the exec form mean 0."""
        if cmd.form == READ:
            self._info(f"{cmd.name}: {getattr(self, attr)}")
        elif cmd.form == TEST:
            self._info(f"{cmd.name}: (0,1)" if hi == 1 else f"{cmd.name}: (0-{hi})")
        elif cmd.form == SET:
            (a,) = self._need_args(cmd, 1, 1)
            setattr(self, attr, self._int(a, 0, hi, 0))
        else:
            setattr(self, attr, 0)

    def _cmd_cmee(self, cmd: Command) -> None:
        if not self.profile.cmee_supported:
            raise _Plain()
        self._setting(cmd, "cmee", 2)

    def _cmd_cclk(self, cmd: Command) -> None:
        """TS 27.007 §8.15: ``+CCLK: "yy/MM/dd,hh:mm:ss±zz"`` (zz quarter hours)."""
        if cmd.form == READ:
            self._info(f'+CCLK: "{_codec.scts_text(self.module_clock())}"')
        elif cmd.form == TEST:
            return
        elif cmd.form == SET:
            (a,) = self._need_args(cmd, 1, 1)
            if a is None or not cmd.quoted(0):
                raise ValueError("time is a string")
            when = _parse_cclk(a)
            zone = when.utcoffset() or timedelta(0)
            self.clock_tz_quarters = int(zone // timedelta(minutes=15))
            self._cclk_skew = when - self.now()
        else:
            raise ValueError("no exec form")

    # --------------------------------------------------------------- network
    def _cmd_csq(self, cmd: Command) -> None:
        if cmd.form == TEST:
            self._info("+CSQ: (0-31,99),(0-7,99)")
        elif cmd.form == EXEC:
            if self._registered:
                self._info(f"+CSQ: {self.rssi},{self.ber}")
            else:
                self._info("+CSQ: 99,99")
        else:
            raise ValueError("exec only")

    def _reg_cmd(self, cmd: Command, attr: str) -> None:
        name = cmd.name
        if cmd.form == TEST:
            self._info(f"{name}: (0-2)")
        elif cmd.form == READ:
            n = getattr(self, attr)
            suffix = self._loc_suffix() if n == 2 else ""
            self._info(f"{name}: {n},{self._reg_stat()}{suffix}")
        elif cmd.form == SET:
            (a,) = self._need_args(cmd, 1, 1)
            setattr(self, attr, self._int(a, 0, 2, 0))
        else:
            setattr(self, attr, 0)

    def _cmd_creg(self, cmd: Command) -> None:
        self._reg_cmd(cmd, "creg_n")

    def _cmd_cgreg(self, cmd: Command) -> None:
        self._reg_cmd(cmd, "cgreg_n")

    def _cmd_cereg(self, cmd: Command) -> None:
        self._reg_cmd(cmd, "cereg_n")

    def _cmd_cops(self, cmd: Command) -> None:
        p = self.profile
        if cmd.form == READ:
            if self._registered:
                self._info(f'+COPS: {self.cops_mode},0,"{p.operator}",{p.act}')
            else:
                self._info(f"+COPS: {self.cops_mode}")
        elif cmd.form == TEST:
            self._info(
                f'+COPS: (2,"{p.operator}","{p.operator}","{p.operator_numeric}",{p.act}),'
                ",(0-4),(0-2)"
            )
        elif cmd.form == SET:
            args = self._need_args(cmd, 1, 4)
            mode = self._int(args[0], 0, 4)
            if mode != 3:  # 3 only sets the <format> of the read answer
                self.cops_mode = 2 if mode == 2 else 0
            self._update_registration()
        else:
            raise ValueError("no exec form")

    def _cmd_cfun(self, cmd: Command) -> None:
        if cmd.form == READ:
            self._info(f"+CFUN: {self.cfun}")
        elif cmd.form == TEST:
            self._info("+CFUN: (0,1,4),(0,1)")
        elif cmd.form == SET:
            args = self._need_args(cmd, 1, 2)
            fun = self._int(args[0], 0, 4)
            if fun not in (0, 1, 4):
                raise ValueError("fun")
            rst = self._int(args[1], 0, 1, 0) if len(args) > 1 else 0
            if rst == 1:
                if fun != 1:
                    raise ValueError("reset needs fun 1")
                self._after_commit = self._reboot
                return
            self.cfun = fun
            self._update_registration()
        else:
            raise ValueError("no exec form")

    def _cmd_cscs(self, cmd: Command) -> None:
        if cmd.form == READ:
            self._info(f'+CSCS: "{self.cscs}"')
        elif cmd.form == TEST:
            self._info('+CSCS: ("GSM","IRA","UCS2","8859-1","HEX")')
        elif cmd.form == SET:
            (a,) = self._need_args(cmd, 1, 1)
            cs = (a or "").upper()
            if cs not in ("GSM", "IRA", "UCS2", "8859-1", "HEX"):
                raise ValueError("charset")
            self.cscs = cs
        else:
            raise ValueError("no exec form")

    # ----------------------------------------------------- SMS configuration
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

    def _cmd_cmgf(self, cmd: Command) -> None:
        self._setting(cmd, "cmgf", 1)

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

    def _cmd_csdh(self, cmd: Command) -> None:
        self._setting(cmd, "csdh", 1)

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

    def _text_view(self, m: StoredMessage, index: int | None) -> tuple[str, bytes | None]:
        """Text-mode header and data line of a stored message (TS 27.005 §3.4.2/§3.4.3)."""
        stat = STAT_TEXT.get(m.stat, "REC READ")
        prefix = f"+CMGL: {index}," if index is not None else "+CMGR: "
        try:
            d = _codec.describe(m.pdu)
        except _codec.PduError:
            return f'{prefix}"{stat}","",,', m.pdu_hex.encode()
        head = f'{prefix}"{stat}",' + self._text_fields(d, listing=index is not None)
        return head, (None if d.kind == "status-report" else self._data_to_te(d))

    def _text_fields(self, d: _codec.Described, *, listing: bool) -> str:
        """Text-mode fields of a message after <stat>: as +CMGL shows them when
        ``listing``, else as +CMGR (and, the same, +CMT / +CDS) (TS 27.005 §3.4)."""
        addr = self._str_to_te(d.address)
        if d.kind == "status-report":
            return f'{d.fo},{d.mr},"{addr}",{d.toa},"{d.scts_text}","{d.dt_text}",{d.st}'
        if d.kind == "deliver":
            head = f'"{addr}",,"{d.scts_text}"'
        else:
            head = f'"{addr}",,' if listing else f'"{addr}",'  # <alpha> (and <scts>) empty
        if self.csdh:
            sca = f'"{self.smsc}",{self._tosca()}'
            if listing:
                head += f",{d.toa},{d.ud_length}"
            elif d.kind == "deliver":
                head += f",{d.toa},{d.fo},{d.pid},{d.dcs},{sca},{d.ud_length}"
            else:
                head += f",{d.toa},{d.fo},{d.pid},{d.dcs},{d.vp},{sca},{d.ud_length}"
        return head

    def _tosca(self) -> int:
        return 145 if self.smsc.startswith("+") else 129

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
    def _cmd_cmgs(self, cmd: Command) -> None:
        self._open_prompt(cmd, "+CMGS")

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

    def _prompt_byte(self, b: int, echo: bool) -> None:
        pr = self._prompt
        assert pr is not None
        if b == CTRL_Z:
            self._prompt = None
            self._run_prompt(pr)
            return
        if b == ESC:
            # TS 27.005 §3.5.1: ESC quits without sending.
            self._prompt = None
            self._resp = [self._fmt_final("OK", 0)]
            self._commit()
            return
        if echo:
            self._write(bytes([b]))
        if b in (self.s3, self.s4):
            if not pr.pdu_mode and b == self.s3:
                pr.buf += b"\n"
                self._write(self.profile.prompt)
            return
        if len(pr.buf) >= _PROMPT_MAX:
            pr.overflow = True
            return
        pr.buf.append(b)

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

    def _prompt_text(self, pr: _Prompt) -> bytes:
        fo, vp, pid, dcs = self.csmp
        raw = bytes(pr.buf)
        alphabet = _codec.alphabet_of_dcs(dcs)
        if alphabet == "gsm7":
            try:
                content: str | bytes = self._te_bytes_to_str(raw)
            except ValueError:
                raise _Cms(CmsErrorCode.INVALID_TEXT_MODE_PARAMETER) from None
        else:
            try:
                content = bytes.fromhex(raw.decode("latin-1").strip())
            except ValueError:
                raise _Cms(CmsErrorCode.INVALID_TEXT_MODE_PARAMETER) from None
        try:
            return _codec.build_submit(
                pr.da, content, fo=fo, vp=vp, pid=pid, dcs=dcs, smsc=None
            )
        except _codec.PduError:
            raise _Cms(CmsErrorCode.INVALID_TEXT_MODE_PARAMETER) from None

    def _network_send(self, pdu: bytes) -> int:
        if not self._registered:
            raise _Cms(CmsErrorCode.NO_NETWORK_SERVICE)
        if pdu[0] == 0 and not self.smsc:
            raise _Cms(CmsErrorCode.SMSC_ADDRESS_UNKNOWN)
        if self._cms_errors:
            raise _Cms(self._cms_errors.pop(0))
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

    # ------------------------------------------------------------- text mode
    def _te_to_str(self, s: str) -> str:
        """A quoted string parameter in the TE character set (+CSCS) -> text."""
        return self._te_bytes_to_str(s.encode("latin-1", "replace"))

    def _te_bytes_to_str(self, raw: bytes) -> str:
        """Text in the TE character set (TS 27.007 §5.5) -> str; ValueError if it is
        not: UCS2 is hex of UCS-2 code units, HEX hex of GSM 7-bit codes ("no
        conversions to the original ME character set"), IRA 7-bit ASCII."""
        cs = self.cscs
        if cs in ("UCS2", "HEX"):
            raw = bytes.fromhex(raw.decode("latin-1"))
            if cs == "UCS2":
                return raw.decode("utf-16-be")
        if cs in ("GSM", "HEX"):
            # ESC (0x1B) ends the prompt, so only the default table can be typed.
            return _codec.gsm_bytes_to_str(raw)
        return raw.decode("ascii" if cs == "IRA" else "latin-1")

    def _str_to_te(self, s: str) -> str:
        if self.cscs == "UCS2":
            return s.encode("utf-16-be").hex().upper()
        if self.cscs == "HEX":
            return _codec.str_to_gsm_bytes(s).hex().upper()
        return s

    def _data_to_te(self, d: _codec.Described) -> bytes:
        """Text-mode <data> (TS 27.005 §3.1): 8-bit and UCS2 coded messages, and
        any with a user data header (TP-UDHI), as hex of their TP-UD octets; GSM
        7-bit text converted to the +CSCS character set."""
        if d.fo & 0x40 and d.kind in ("deliver", "submit"):
            return d.raw_ud.hex().upper().encode()
        if d.text is None:
            return d.data.hex().upper().encode()
        if _codec.alphabet_of_dcs(d.dcs) == "ucs2":
            return d.text.encode("utf-16-be").hex().upper().encode()
        if self.cscs == "UCS2":
            return d.text.encode("utf-16-be").hex().upper().encode()
        if self.cscs == "GSM":
            return _codec.str_to_gsm_bytes(d.text)
        if self.cscs == "HEX":
            return _codec.str_to_gsm_bytes(d.text).hex().upper().encode()
        if self.cscs == "IRA":
            return d.text.encode("ascii", "replace")
        return d.text.encode("latin-1", "replace")

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

    def module_clock(self) -> datetime:
        """What +CCLK? shows: the simulator's clock (plus what +CCLK= set) in the
        module's time zone."""
        tz = timezone(timedelta(minutes=15 * self.clock_tz_quarters))
        return (self.now() + self._cclk_skew).astimezone(tz)

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

    def _pdu_line(self, text: str) -> str:
        """The PDU line about to be printed, damaged if a damage-next-pdu fault
        is pending (the header's <length> is left as it was)."""
        if not self._pdu_damage:
            return text
        return damage_pdu_line(text, self._pdu_damage.pop(0))

    def _direct_text(self, p: NetworkMessage, urc: str) -> bytes:
        try:
            d = _codec.describe(p.pdu)
        except _codec.PduError:
            return f"{urc}: ,0".encode() + self._crlf() + p.pdu.hex().upper().encode()
        head = f"{urc}: {self._text_fields(d, listing=False)}".encode()
        if urc == "+CDS":
            return head
        return head + self._crlf() + self._data_to_te(d)

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

    def fault(self, name: str, *args: str | int | float) -> None:
        """Inject a fault (:data:`FAULTS` lists them; docs/simulator.md).

        ValueError naming the fault and the argument when ``name`` is unknown
        or an argument is missing, extra, negative or not a number."""
        n, a = check_fault(name, [str(x) for x in args])
        if n == "reboot":
            if not a:
                self._reboot()
            elif a[0] == "next":
                self._reboot_on_next_line = True
            else:
                self._later(float(a[0]) / 1000.0, self._reboot)
        elif n == "garbage":
            count = int(a[0]) if a else 16
            state, self._state = self._state, "cmd"
            self._write(bytes(self._fault_rng.randrange(256) for _ in range(count)))
            self._state = state
        elif n == "drop":
            self._drop_rate = _rate(a)
        elif n == "corrupt":
            self._corrupt_rate = _rate(a)
        elif n == "delay":
            self._delay = float(a[0]) / 1000.0 if a else 0.0
        elif n == "hang":
            if self._busy_handle is not None:
                self._busy_handle.cancel()
                self._busy_handle = None
            self._state = "hung"
        elif n == "cms-error":
            count = int(a[1]) if len(a) > 1 else 1
            self._cms_errors = [int(a[0])] * count
        elif n == "damage-next-pdu":
            count = int(a[1]) if len(a) > 1 else 1
            self._pdu_damage += [a[0]] * count
        elif n == "urc":
            for line in a:
                self._urc(line.encode("latin-1", "replace"))
        elif n == "storage-full":
            self._fill_storage(a[0].upper() if a else self.cpms[2])
        elif n == "disconnect":
            self._disconnect(float(a[0]) / 1000.0 if a else self.timing.reconnect_delay)
        elif n == "unregister":
            self.set_registered(False)
        elif n == "register":
            self.set_registered(True, roaming=bool(a and a[0] == "roaming"))
        else:
            assert n == "clear", n
            self._drop_rate = self._corrupt_rate = self._delay = 0.0
            self._cms_errors = []
            self._pdu_damage = []

    def _fill_storage(self, mem: str) -> None:
        store = self._stores[mem]
        n = 0
        while not store.full:
            n += 1
            (raw,) = _codec.build_delivers(
                "+15550001111", f"filler {n}", scts=self._now(), encoding=None, ref=0,
                smsc=self.smsc,
            )
            if store.add(REC_READ, raw, _codec.tpdu_length(raw), "deliver") is None:
                break

    def _disconnect(self, down: float) -> None:
        self.connectable = False
        for port in list(self._ports):
            port.sim_hangup()
        self._ports.clear()

        def back() -> None:
            self.connectable = True
            for cb in list(self._reconnect_listeners):
                cb()

        self._later(down, back)


@dataclass(frozen=True)
class FaultArg:
    """One argument of a fault: ``kind`` says what it accepts."""

    name: str
    #: "count" (integer >= 0), "ms" (number >= 0), "rate" (0..1), "code"
    #: (integer 0-511), "choice" (one of ``choices``), "text" (anything).
    kind: str
    optional: bool = True
    choices: tuple[str, ...] = ()
    #: The last argument may repeat (one or more).
    repeat: bool = False

    def usage(self) -> str:
        text = self.name + ("..." if self.repeat else "")
        return f"[{text}]" if self.optional else text

    def check(self, fault: str, value: str) -> None:
        """ValueError naming ``fault`` and the argument when ``value`` is not accepted."""
        where = f"fault {fault}: {self.name}"
        if self.kind == "choice":
            if value not in self.choices and value.upper() not in self.choices:
                raise ValueError(f"{where} is one of {', '.join(self.choices)}, not {value!r}")
        elif self.kind in ("count", "code"):
            if not (value.isascii() and value.isdigit()):
                raise ValueError(f"{where} must be a whole number >= 0, not {value!r}")
            if self.kind == "code" and int(value) > 511:
                raise ValueError(f"{where} is 0-511, not {value}")
        elif self.kind in ("ms", "rate"):
            try:
                v = float(value)
            except ValueError:
                raise ValueError(f"{where} must be a number, not {value!r}") from None
            if not v >= 0 or v == float("inf"):  # NaN fails too
                raise ValueError(f"{where} must be >= 0, not {value!r}")
            if self.kind == "rate" and v > 1:
                raise ValueError(f"{where} is a probability 0..1, not {value!r}")


@dataclass(frozen=True)
class FaultSpec:
    """A fault, its arguments and what it does (one table for the code, the
    validation and ``python -m modem.sim fault --help``)."""

    name: str
    args: tuple[FaultArg, ...]
    help: str
    aliases: tuple[str, ...] = ()

    def usage(self) -> str:
        return " ".join(["|".join((self.name, *self.aliases)), *(x.usage() for x in self.args)])


#: Modes of the damage-next-pdu fault.
DAMAGE_MODES = ("drop-octet", "flip", "truncate", "nonhex")


def damage_pdu_line(text: str, mode: str) -> str:
    """``text`` (a hex PDU line) damaged by ``mode``, deterministically:
    drop-octet removes the middle octet, flip inverts every bit of it,
    truncate keeps the first half of the octets, nonhex puts "ZZ" in place of
    the middle octet. A line of no whole octet is returned unchanged."""
    octets = len(text) // 2
    if octets == 0:
        return text
    mid = 2 * (octets // 2)
    if mode == "drop-octet":
        return text[:mid] + text[mid + 2 :]
    if mode == "flip":
        try:
            flipped = f"{int(text[mid : mid + 2], 16) ^ 0xFF:02X}"
        except ValueError:
            flipped = text[mid : mid + 2]
        return text[:mid] + flipped + text[mid + 2 :]
    if mode == "truncate":
        return text[: 2 * (octets // 2)]
    if mode == "nonhex":
        return text[:mid] + "ZZ" + text[mid + 2 :]
    raise ValueError(f"unknown damage mode {mode!r}; known: {', '.join(DAMAGE_MODES)}")


_MS = FaultArg("MS", "ms")
FAULTS: dict[str, FaultSpec] = {f.name: f for f in (
    FaultSpec("reboot", (FaultArg("MS|next", "ms"),),
              "reset now, after MS, or instead of answering the next command line",
              aliases=("reset",)),
    FaultSpec("garbage", (FaultArg("N", "count"),), "N (default 16) random bytes to the DTE now"),
    FaultSpec("drop", (FaultArg("RATE", "rate", optional=False),),
              "drop each output byte with probability RATE (0 stops)"),
    FaultSpec("corrupt", (FaultArg("RATE", "rate", optional=False),),
              "change each output byte with probability RATE (0 stops)"),
    FaultSpec("delay", (FaultArg("MS", "ms", optional=False),), "every answer comes MS later"),
    FaultSpec("hang", (), "no answer, no echo, no URC until reboot"),
    FaultSpec("cms-error", (FaultArg("CODE", "code", optional=False), FaultArg("COUNT", "count")),
              "the next COUNT (default 1) sends answer +CMS ERROR: CODE"),
    FaultSpec("storage-full", (FaultArg("MEM", "choice", choices=("SM", "ME", "MT")),),
              "fill MEM (default <mem3>) with read filler messages"),
    FaultSpec("disconnect", (_MS,), "the port goes away for MS (default 200) ms"),
    FaultSpec("unregister", (), "coverage lost"),
    FaultSpec("register", (FaultArg("roaming", "choice", choices=("roaming",)),),
              "coverage back (roaming: +CREG 5)"),
    FaultSpec("damage-next-pdu", (FaultArg("MODE", "choice", optional=False,
                                           choices=DAMAGE_MODES),
                                  FaultArg("COUNT", "count")),
              "damage the next COUNT (default 1) PDU lines printed; <length> stays"),
    FaultSpec("urc", (FaultArg("LINE", "text", optional=False, repeat=True),),
              "send each LINE as an unsolicited line"),
    FaultSpec("clear", (), "stop drop, corrupt, delay, cms-errors and PDU damage"),
)}
_FAULT_NAMES = {alias: f.name for f in FAULTS.values() for alias in (f.name, *f.aliases)}


def check_fault(name: str, args: list[str]) -> tuple[str, list[str]]:
    """(canonical name, args) of a valid fault; ValueError naming the fault and
    the argument otherwise (unknown, missing, extra, negative, not a number)."""
    canonical = _FAULT_NAMES.get(name.lower())
    if canonical is None:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(_FAULT_NAMES))}")
    spec = FAULTS[canonical]
    required = sum(1 for x in spec.args if not x.optional)
    if len(args) < required:
        missing = spec.args[len(args)]
        raise ValueError(f"fault {canonical}: {missing.name} missing (usage: {spec.usage()})")
    if len(args) > len(spec.args) and not (spec.args and spec.args[-1].repeat):
        raise ValueError(f"fault {canonical}: too many arguments (usage: {spec.usage()})")
    for i, value in enumerate(args):
        arg = spec.args[min(i, len(spec.args) - 1)]
        if canonical == "reboot" and value == "next":
            continue
        arg.check(canonical, value)
    return canonical, args


def fault_help() -> str:
    """The fault table as text (``python -m modem.sim fault --help``)."""
    rows = []
    for f in FAULTS.values():
        choices = [f"{a.name}: {', '.join(a.choices)}" for a in f.args if a.kind == "choice"]
        rows.append((f.usage(), f.help + "".join(f" ({c})" for c in choices)))
    width = max(len(u) for u, _ in rows)
    return (
        "faults (MS: milliseconds >= 0, RATE: 0..1, N/COUNT: whole numbers >= 0):\n"
        + "\n".join(f"  {u.ljust(width)}  {h}" for u, h in rows)
    )


def _parse_cclk(text: str) -> datetime:
    """ "yy/MM/dd,hh:mm:ss±zz" (TS 27.007 §8.15) -> an aware datetime; ValueError."""
    body, sign, zz = text[:-3], text[-3:-2], text[-2:]
    if sign not in "+-" or not sign or not zz.isdigit() or int(zz) > 48:
        raise ValueError("time zone")
    local = datetime.strptime(body, "%y/%m/%d,%H:%M:%S")
    quarters = int(zz) * (1 if sign == "+" else -1)
    return local.replace(tzinfo=timezone(timedelta(minutes=15 * quarters)))


def _rate(a: list[str]) -> float:
    return float(a[0]) if a else 0.0


_HANDLERS: dict[str, Callable[[SimModem, Command], None]] = {
    "E": SimModem._cmd_e,
    "V": SimModem._cmd_v,
    "Q": SimModem._cmd_q,
    "Z": SimModem._cmd_z,
    "&F": SimModem._cmd_and_f,
    "I": SimModem._cmd_i,
    "H": SimModem._cmd_ok,
    "X": SimModem._cmd_ok,
    "&W": SimModem._cmd_ok,
    "&D": SimModem._cmd_ok,
    "&C": SimModem._cmd_ok,
    "+CGMI": SimModem._cmd_cgmi,
    "+GMI": SimModem._cmd_cgmi,
    "+CGMM": SimModem._cmd_cgmm,
    "+GMM": SimModem._cmd_cgmm,
    "+CGMR": SimModem._cmd_cgmr,
    "+GMR": SimModem._cmd_cgmr,
    "+CGSN": SimModem._cmd_cgsn,
    "+GSN": SimModem._cmd_cgsn,
    "+CIMI": SimModem._cmd_cimi,
    "+CPIN": SimModem._cmd_cpin,
    "+CMEE": SimModem._cmd_cmee,
    "+CSQ": SimModem._cmd_csq,
    "+CCLK": SimModem._cmd_cclk,
    "+CREG": SimModem._cmd_creg,
    "+CGREG": SimModem._cmd_cgreg,
    "+CEREG": SimModem._cmd_cereg,
    "+COPS": SimModem._cmd_cops,
    "+CFUN": SimModem._cmd_cfun,
    "+CSCS": SimModem._cmd_cscs,
    "+CSMS": SimModem._cmd_csms,
    "+CPMS": SimModem._cmd_cpms,
    "+CMGF": SimModem._cmd_cmgf,
    "+CSCA": SimModem._cmd_csca,
    "+CSMP": SimModem._cmd_csmp,
    "+CSDH": SimModem._cmd_csdh,
    "+CNMI": SimModem._cmd_cnmi,
    "+CNMA": SimModem._cmd_cnma,
    "+CMGS": SimModem._cmd_cmgs,
    "+CMGW": SimModem._cmd_cmgw,
    "+CMSS": SimModem._cmd_cmss,
    "+CMGR": SimModem._cmd_cmgr,
    "+CMGL": SimModem._cmd_cmgl,
    "+CMGD": SimModem._cmd_cmgd,
}
