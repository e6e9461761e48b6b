"""Module session: start-up, re-init, registration/signal tracking and recovery.

:meth:`Session.initialize` brings a module from any state to the one the SMS
service needs (TS 27.005/27.007). A reboot loses every setting below (they are
power-on defaults, V.250 §6.1.1, unless saved with ``&W``, which we never do),
so every re-initialisation runs all of it again:

1. sync: ESC, a pause, then ``AT`` until any final result (the client's
   :meth:`~modem.client.AtClient.sync`: a module left at the ``> `` prompt
   recovers, one that answers ``ERROR`` to a bare ``AT`` is in sync); then
   ``ATE0`` (no echo), ``ATV1`` (verbose results) and ``AT+CMEE=1`` (numeric
   ``+CME ERROR`` codes, TS 27.007 §9.1) - a module that refuses ``+CMEE``
   is used with plain ``ERROR`` results (:attr:`Session.numeric_errors`);
2. identity: ``+CGMI``/``+CGMM`` pick a :class:`ModuleProfile` (each
   module's quirks), then ``+CGMR``, ``+CGSN`` (IMEI);
3. SIM (TS 27.007 §8.3): ``+CPIN?``. A SIM busy after boot (``+CME ERROR:
   14``) is waited for, up to :data:`timing.SIM_BUSY_BUDGET`. The configured
   PIN is entered at most once per configuration: a PIN the SIM refused
   (``+CME ERROR: 16``) is never entered again (a SIM blocks after three),
   nor is a PUK ever guessed. A missing or refused PIN, a SIM asking for its
   PUK, no SIM and a failed SIM raise :class:`~modem.errors.SimProblem`
   (:attr:`~modem.errors.Fault.OPERATOR`). Then ``+CIMI`` (IMSI) and the
   ICCID (``+QCCID``/``+CCID``/``+CICCID``; readable without the PIN);
4. SMS: ``+CMGF=0`` (PDU mode), ``+CPMS?`` (the storage the module uses
   now - its boot default after a reboot - or ``+CPMS=?`` where the query is
   refused: :attr:`Session.other_storages`, swept by the SMS service),
   ``+CPMS=`` (storage), ``+CNMI`` (routing,
   TS 27.005 §3.4.1: ``<mt>`` 1 stores each SMS and indicates it with
   ``+CMTI``; ``<mt>`` 2 routes it directly as ``+CMT``, which must be
   acknowledged with ``+CNMA`` when ``+CSMS=1``, §3.4.4, or the module resets
   ``<mt>`` and ``<ds>`` to 0. Status reports: ``<ds>`` 1 routes them
   directly as ``+CDS`` on every profile but SARA-R4, which keeps ``<ds>`` 0,
   none), ``+CSCA?`` (service centre check);
5. registration URCs: ``+CREG=2``, ``+CEREG=2`` (``+CGREG=2`` where there is
   no LTE); the first state is queried once, later ones come as URCs.

:meth:`Session.run` supervises: it watches the URC stream for signs of a
module reboot (``RDY``, ``^SYSSTART``, ``*ATREADY`` always; ``+CFUN: 1``,
``SMS DONE``, ``+QIND: SMS DONE``, ``SMS Ready``, ``Call Ready`` outside
:data:`timing.BOOT_GRACE` of another marker or once the session was ready;
an echo after ``ATE0``) and re-initialises; when the port vanishes it
reconnects with backoff; when commands keep timing out it escalates (ESC and
sync, ``+CFUN=1,1``, then the application's ``power_cycle`` hook) with a
growing pause between escalations and between power cycles, and never
resets a module that answers. A :class:`~modem.errors.SimProblem` is
reported once (one error log line, :attr:`Session.sim_problem`) and not
retried: the session waits, port open, until the module reboots, the SIM
reports a change (``+CPIN:``) or :meth:`Session.configure` gives a new
configuration. After every (re-)init it calls the ``on_ready`` hooks (the
SMS service sweeps storage there). No timer runs while the module is idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from . import commands as C
from . import timing
from .client import AtClient
from .commands import PinState, Registration, Signal, StorageStatus
from .errors import (
    CmeError,
    CmeErrorCode,
    CmsError,
    CmsErrorCode,
    CommandFailed,
    CommandTimeout,
    Fault,
    ModemDisconnected,
    ModemError,
    ModemRebooted,
    NotRegistered,
    ProtocolError,
    SimProblem,
    SimProblemKind,
    UsageError,
)
from .protocol import Urc

__all__ = ["Identity", "ModuleProfile", "Session", "SessionConfig", "detect_profile"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_D = TypeVar("_D")

#: Start-up lines that only a (re)boot produces (Quectel ``RDY``, Cinterion/Telit
#: ``^SYSSTART``, Sequans ``*ATREADY``); +CFUN: 1, SMS DONE, +QIND: SMS DONE also
#: count, outside BOOT_GRACE of a previous marker (see _is_boot_marker).
_BOOT_ONLY: frozenset[str] = frozenset({"RDY", "^SYSSTART", "*ATREADY"})

#: URCs that say the SIM's state changed or it finished initialising: a wait on a
#: busy SIM ends early; a reported SIM problem is looked at again (+CPIN:).
_SIM_NEWS: frozenset[str] = frozenset(
    {"+CPIN", "+QUSIM", "SMS DONE", "+QIND", "SMS Ready", "PB DONE", "Call Ready"}
)

#: A +CPIN? answer no table knows (a line damaged by noise) is asked again this often.
_PIN_STATE_UNKNOWN_RETRIES = 2


@dataclass(frozen=True)
class ModuleProfile:
    """Quirks of a module family (from its AT manual)."""

    name: str
    #: +CNMI: mode,mt,bm,ds,bfr (TS 27.005 §3.4.1). Stored delivery (mt=1,
    #: +CMTI); status reports routed directly (ds=1, +CDS).
    cnmi: str = "2,1,0,1,0"
    #: ICCID commands to try, in order.
    iccid_commands: tuple[str, ...] = ("AT+CCID", "AT+ICCID", "AT+QCCID", "AT+CICCID")
    #: Registration domains to enable URCs for.
    reg_domains: tuple[str, ...] = ("CREG", "CEREG")
    #: Preferred storage (mem1, mem2, mem3).
    storage: tuple[str, str, str] = ("SM", "SM", "SM")
    #: Pause between commands this module needs (SIM800: 0.1 s).
    pause: float = 0.0
    #: Source of the quirks above.
    source: str = "3GPP TS 27.005/27.007 defaults"


PROFILES: dict[str, ModuleProfile] = {
    "generic": ModuleProfile("generic", cnmi="2,1,0,1,0"),
    "bg96": ModuleProfile(
        "bg96",
        cnmi="2,1,0,1,0",
        iccid_commands=("AT+QCCID", "AT+CCID"),
        source="Quectel BG96 AT Commands Manual: +QCCID, +CNMI 2,1,0,1,0, +CEREG for Cat-M1",
    ),
    "ec25": ModuleProfile(
        "ec25",
        cnmi="2,1,0,1,0",
        iccid_commands=("AT+QCCID", "AT+CCID"),
        source="Quectel EC2x AT Commands Manual: +QCCID",
    ),
    "sim7600": ModuleProfile(
        "sim7600",
        cnmi="2,1,0,1,0",
        iccid_commands=("AT+CICCID", "AT+CCID"),
        source="SIMCom SIM7600 AT manual: +CICCID answers 'ICCID: ...'",
    ),
    "sim800": ModuleProfile(
        "sim800",
        cnmi="2,1,0,1,0",
        iccid_commands=("AT+CCID",),
        reg_domains=("CREG",),
        pause=0.1,
        source="SIMCom SIM800 AT manual: 2G only, no +CEREG",
    ),
    "sara-r4": ModuleProfile(
        "sara-r4",
        cnmi="1,1,0,0,0",
        iccid_commands=("AT+CCID",),
        source="u-blox SARA-R4 AT manual: +CNMI <mode> 0-2, <ds> 0 recommended; '>' CRLF prompt",
    ),
}


def _nearest_routing(
    wanted: C.Routing, offered: tuple[frozenset[int], ...] | None
) -> C.Routing | None:
    """``wanted`` with each value ``offered`` (``AT+CNMI=?``) lacks replaced (see
    :meth:`Session._set_routing`); None when no routing indicates new SMS."""
    if offered is None:
        return None
    modes, mts, bms, dss, bfrs = offered

    def pick(value: int, supported: frozenset[int], prefer: tuple[int, ...]) -> int | None:
        if value in supported:
            return value
        return next((p for p in prefer if p in supported), min(supported, default=None))

    values = [
        pick(wanted.mode, modes, (2, 1, 3)),
        pick(wanted.mt, mts, (1,)),
        pick(wanted.bm, bms, (0,)),
        pick(wanted.ds, dss, (0,)),
        pick(wanted.bfr, bfrs, (0, 1)),
    ]
    chosen = [v for v in values if v is not None]
    if len(chosen) != 5 or chosen[0] == 0 or chosen[1] not in (1, 2, 3):
        return None  # URCs kept in the module, or no SMS indication at all
    return C.Routing(*chosen)


def detect_profile(manufacturer: str, model: str) -> ModuleProfile:
    """Pick the profile for a +CGMI/+CGMM answer (generic when unknown)."""
    m = model.upper()
    if "BG96" in m or "BG95" in m:
        return PROFILES["bg96"]
    if "EC2" in m or "EG2" in m or "EC21" in m:
        return PROFILES["ec25"]
    if "SIM7600" in m or "SIM7500" in m or "SIM7080" in m:
        return PROFILES["sim7600"]
    if "SIM800" in m or "SIM900" in m:
        return PROFILES["sim800"]
    if "SARA-R4" in m or "SARA-R5" in m:
        return PROFILES["sara-r4"]
    return PROFILES["generic"]


@dataclass
class Identity:
    manufacturer: str = ""
    model: str = ""
    revision: str = ""
    imei: str = ""
    imsi: str = ""
    iccid: str = ""


@dataclass(frozen=True)
class SessionConfig:
    """What the application configures (everything else is detected)."""

    pin: str | None = None
    #: +CNMI override ("mode,mt,bm,ds,bfr"); None = the profile's.
    cnmi: str | None = None
    #: Direct delivery (+CMT, mt=2) instead of stored (+CMTI).
    direct_delivery: bool = False
    #: +CSMS=1 (phase 2+: +CNMA acknowledges +CMT) when direct delivery is on.
    csms: int | None = None
    storage: tuple[str, str, str] | None = None
    #: Service centre address to set when the SIM's differs or is empty (+CSCA).
    smsc: str | None = None
    #: Hook to power-cycle the module (GPIO, USB hub port); last escalation step.
    #: Called at most once per :data:`timing.POWER_CYCLE_INTERVAL` (growing).
    power_cycle: Callable[[], Awaitable[None]] | None = None
    #: Time to wait for a module to come back after +CFUN=1,1 / power-cycle;
    #: None: :data:`timing.REBOOT_WAIT` when it is needed.
    reboot_wait: float | None = None


@dataclass
class _Tracked:
    registration: dict[str, Registration] = field(default_factory=dict)
    registration_at: float = -1e18
    signal: Signal | None = None
    signal_at: float = -1e18


class Session:
    """One module behind one :class:`AtClient`. See the module docstring."""

    def __init__(self, client: AtClient, config: SessionConfig | None = None) -> None:
        self.client = client
        self.config = config or SessionConfig()
        self.profile = PROFILES["generic"]
        self.identity = Identity()
        self.pin_state: PinState | None = None
        #: The ``+CNMI`` set in place of a refused configured one (_set_routing).
        self._routing_in_use: str | None = None
        self.storage: StorageStatus | None = None
        #: Storages other than ``<mem1>`` that may hold received messages (the
        #: module's own choice before ``+CPMS`` was set; see _learn_storages):
        #: the SMS service sweeps them after every (re-)initialisation.
        self.other_storages: tuple[str, ...] = ()
        self._seen_storages: set[str] = set()
        self.smsc: str | None = None
        #: False when the module refused ``AT+CMEE=1``: errors are plain ``ERROR``.
        self.numeric_errors = True
        #: What the SIM needs from a person, while it does (see :class:`SimProblem`).
        self.sim_problem: SimProblem | None = None
        self.ready = asyncio.Event()
        self.generation = 0
        self.on_ready: list[Callable[[], None]] = []
        self.on_urc: list[Callable[[Urc], None]] = []
        self._tracked = _Tracked()
        self._registered = asyncio.Event()
        self._reinit_wanted = asyncio.Event()
        self._sim_news = asyncio.Event()
        self._changed = asyncio.Event()
        self._last_boot = -1e18
        self._hung = False
        #: the PIN the SIM refused: never entered again (until configure() changes it)
        self._rejected_pin: str | None = None
        #: the module accepted registration URCs (+CREG=2...) in the last init
        self._reg_urcs = False
        self._urc_loop_running = False
        #: escalations since the last successful initialisation, and their pause
        self._dead_escalations = 0
        self.escalation_pause = 0.0
        self._power_cycle_interval: float | None = None
        self._last_power_cycle = -1e18
        self._sub = client.subscribe()
        client.on_timeout = self.note_timeout
        self.stats = {
            "inits": 0,
            "reboots_seen": 0,
            "reconnects": 0,
            "escalations": 0,
            "power_cycles": 0,
            "sim_problems": 0,
        }

    # -- state ---------------------------------------------------------------------

    @property
    def registration(self) -> dict[str, Registration]:
        return dict(self._tracked.registration)

    @property
    def registered(self) -> bool:
        return any(r.registered for r in self._tracked.registration.values())

    @property
    def signal(self) -> Signal | None:
        return self._tracked.signal

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _notify(self) -> None:
        """Wake everything waiting in :meth:`wait_ready` (readiness or a SIM problem)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _set_registration(self, reg: Registration) -> None:
        self._tracked.registration[reg.domain] = reg
        self._tracked.registration_at = self._now()
        if self.registered:
            self._registered.set()
        else:
            self._registered.clear()

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Return once initialised; raise :attr:`sim_problem` while there is one.

        Needs :meth:`run` (the supervisor) to make progress. TimeoutError after
        ``timeout`` (None: no limit).
        """
        async with asyncio.timeout(timeout):
            while not self.ready.is_set():
                if self.sim_problem is not None:
                    raise self.sim_problem
                await self._changed.wait()

    def wait_changed(self) -> Awaitable[bool]:
        """An awaitable that ends at the next change of readiness or SIM problem
        (a problem reported again after a re-initialisation counts too). The
        change it waits for is fixed when this is called, not when awaited."""
        return self._changed.wait()

    def configure(self, config: SessionConfig) -> None:
        """Use ``config`` from the next (re-)initialisation on, which starts now.

        This is how a person's fix reaches a session that reported a
        :class:`SimProblem` (a new PIN): a PIN the SIM refused is entered again
        only when it comes back through here.
        """
        if config.pin != self.config.pin:
            self._rejected_pin = None
        self.config = config
        self.sim_problem = None  # to be seen again with this configuration
        self.ready.clear()
        self._reinit_wanted.set()
        self._notify()

    def note_sim_error(self, exc: ModemError) -> bool:
        """A command failed with a SIM error code: look at the SIM again.

        ``+CMS ERROR: 310/311/313/315/316`` (TS 27.005 §3.2.5) or ``+CME
        ERROR: 10/11/12/13/15`` (TS 27.007 §9.2.1) under a ready session means
        the SIM went away, failed or reset, and a module without SIM hot-plug
        detection (Quectel ``AT+QSIMDET``, SIMCom ``AT+CSDT``: off by default)
        sends no ``+CPIN`` URC to say so. The session re-initialises: ``+CPIN?``
        reports the problem once (:attr:`sim_problem`) and nothing is retried
        in a loop. True when ``exc`` was such an error. Never raises.
        """
        if SimProblem.from_error(exc) is None:
            return False
        if self.ready.is_set():
            log.warning("%s: SIM error (%s): looking at the SIM again", self.client.name, exc)
            self.ready.clear()
            self._reinit_wanted.set()
        return True

    # -- initialisation --------------------------------------------------------------

    async def initialize(self) -> None:
        """Bring the module to the state the SMS service needs (see module doc).

        Raises :class:`SimProblem` when the SIM needs a person (identity and
        ICCID are read first, for ``info``).
        """
        c = self.client
        self.ready.clear()
        await c.sync()
        c.on_echo = None
        await c.execute(C.simple("ATE0"))
        c.on_echo = self._unexpected_echo
        await c.execute(C.simple("ATV1"))
        self.numeric_errors = await self._optional(C.simple("AT+CMEE=1"), False) is not False
        if not self.numeric_errors:
            log.warning("%s: +CMEE=1 refused; errors will be plain ERROR (no codes)", c.name)
        ident = self.identity
        ident.manufacturer = await self._optional(C.identity("AT+CGMI"), "")
        ident.model = await self._optional(C.identity("AT+CGMM"), "")
        self.profile = detect_profile(ident.manufacturer, ident.model)
        c.pause = max(c.pause, self.profile.pause)
        ident.revision = await self._optional(C.identity("AT+CGMR"), "")
        ident.imei = await self._optional(C.digits("AT+CGSN"), "")
        deadline = self._now() + timing.SIM_BUSY_BUDGET
        try:
            await self._unlock_sim(deadline)
        except SimProblem:
            await self._read_iccid()  # EF_ICCID needs no PIN (TS 31.102 §4.1.1): say which SIM
            raise
        ident.imsi = await self._optional(C.digits("AT+CIMI"), "")
        await self._read_iccid()
        await self._sim_step(C.simple("AT+CMGF=0", timeout=timing.SIM_COMMAND_TIMEOUT), deadline)
        mems = self.config.storage or self.profile.storage
        await self._learn_storages(mems[0], deadline)
        try:
            st = await self._sim_step(C.cpms_set(*mems), deadline)
            self.storage = replace(st, mem=tuple(mems[: len(st.used)]))
        except CommandFailed:
            log.warning("+CPMS=%s refused; keeping the module's storage", mems)
            self.storage = await self._optional(C.cpms_query(), None)
        if self.config.direct_delivery and self.config.csms is not None:
            await self._optional(C.simple(f"AT+CSMS={self.config.csms}"), None)
        await self._set_routing(deadline)
        self.smsc = await self._optional(C.csca_query(), None)
        want = self.config.smsc
        if want and not re.fullmatch(r"\+?[0-9]{1,20}", want):
            raise UsageError(f"service centre address {want!r}: digits, optionally a leading +")
        if want and self.smsc != want:
            toa = 145 if want.startswith("+") else 129
            await c.execute(C.simple(f'AT+CSCA="{want}",{toa}', timeout=timing.SIM_COMMAND_TIMEOUT))
            self.smsc = want
        if not self.smsc:
            log.warning("no service centre address configured (+CSCA); sends may fail with 330")
        self._reg_urcs = False
        for domain in self.profile.reg_domains:
            if await self._optional(C.simple(f"AT+{domain}=2"), False) is not False:
                self._reg_urcs = True
                reg = await self._optional(C.creg_query(domain), None)
                if reg is not None:
                    self._set_registration(reg)
        self.generation += 1
        self.stats["inits"] += 1
        if self.sim_problem is not None:
            log.warning("%s: the SIM problem is solved (%s)", c.name, self.sim_problem.kind.value)
        self.sim_problem = None
        self._dead_escalations = 0
        self.escalation_pause = 0.0
        self._power_cycle_interval = None
        self.ready.set()
        self._notify()
        log.info(
            "%s: ready (profile %s, IMEI %s, registered %s)",
            c.name,
            self.profile.name,
            ident.imei,
            self.registered,
        )
        for hook in list(self.on_ready):
            hook()

    async def _learn_storages(self, mem1: str, deadline: float) -> None:
        """Which storages besides ``mem1`` may hold received messages.

        TS 27.005 §3.2.2: received messages are placed in ``<mem3>`` unless
        routed to the TE, and a reboot restores the module's boot default -
        so whatever arrived between the boot and our ``+CPMS=`` sits there
        (``ME`` on many modules), where ``+CMGL`` with ``<mem1>`` SM never
        looks. Asked with ``+CPMS?`` before the set (the storages in use
        now); a module that refuses the query gets its receive storages from
        ``+CPMS=?`` (the ``<mem3>`` list, also readable as ``<mem1>``). ``MT``
        (all storages of the ME, §3.1) stands for SM and ME. What was
        learned stays known for the session's life: a module that defaulted
        to ME after one reboot does so after the next.
        """
        names: tuple[str, ...] = ()
        try:
            now = await self._sim_step(C.cpms_query(), deadline)
            names = tuple(now.mem[-1:]) if len(now.mem) >= 3 else tuple(now.mem)
        except (CommandFailed, ProtocolError) as exc:
            log.info("+CPMS? not available (%s): asking +CPMS=?", exc)
            offered = await self._optional(C.cpms_test(), None)
            if offered is not None:
                receive = offered[2] if len(offered) >= 3 else offered[-1]
                names = tuple(n for n in receive if n in offered[0])
        found: list[str] = []
        for name in names:
            for mem in ("SM", "ME") if name == "MT" else (name,):
                if len(mem) == 2 and mem.isascii() and mem.isupper() and mem not in found:
                    found.append(mem)
        learned = [m for m in found if m not in ("BM", "MT")]
        self._seen_storages.update(learned)
        self.other_storages = tuple(sorted(m for m in self._seen_storages if m != mem1))

    def _cnmi(self) -> str:
        if self._routing_in_use is not None:
            return self._routing_in_use
        return self._configured_cnmi()

    def _configured_cnmi(self) -> str:
        if self.config.cnmi:
            return self.config.cnmi
        parts = self.profile.cnmi.split(",")
        if self.config.direct_delivery:
            parts[1] = "2"
        return ",".join(parts)

    async def _set_routing(self, deadline: float) -> None:
        """``+CNMI`` (TS 27.005 §3.4.1): the configured routing, or the nearest one
        the module offers.

        Most ``+CNMI`` values are optional and modules differ (Motorola G20
        ``(0,3),(0-2),(0,2),(0),(0)``; Cinterion ``<bfr>`` 1 only; u-blox
        SARA-R4 prefers ``<ds>`` 0). When the configured routing is refused,
        ``AT+CNMI=?`` says what is supported and each value that is not is
        replaced: ``<mode>`` by 2, 1 or 3 (URCs forwarded), ``<mt>`` by 1
        (``+CMTI``, stored delivery: nothing is lost without ``+CNMA``), the
        others by their lowest supported value. Without a routing that
        indicates new messages the refusal is raised as before.
        """
        wanted = self._configured_cnmi()
        self._routing_in_use = None
        try:
            await self._sim_step(C.simple(f"AT+CNMI={wanted}"), deadline)
            return
        except CommandFailed as exc:
            offered = await self._optional(C.cnmi_test(), None)
            fallback = _nearest_routing(C.Routing.parse(wanted), offered)
            if fallback is None or str(fallback) == wanted:
                raise
            log.warning(
                "%s: +CNMI=%s refused (%s); using +CNMI=%s", self.client.name, wanted, exc, fallback
            )
            await self._sim_step(C.simple(f"AT+CNMI={fallback}"), deadline)
            self._routing_in_use = str(fallback)

    async def _optional(self, command: C.Command[_T], default: _D) -> _T | _D:
        """Run a command a module may not support; keep ``default`` when refused."""
        try:
            return await self.client.execute(command)
        except (CommandFailed, ProtocolError) as exc:
            log.info("%s not available: %s", command.text, exc)
            return default

    async def _read_iccid(self) -> None:
        for cmd in self.profile.iccid_commands:
            self.identity.iccid = await self._optional(C.digits(cmd), "")
            if self.identity.iccid:
                break

    @staticmethod
    def _sim_busy(exc: ModemError) -> bool:
        """``+CME ERROR: 14`` / ``+CMS ERROR: 314``: the SIM is still initialising."""
        return (isinstance(exc, CmeError) and exc.code == CmeErrorCode.SIM_BUSY) or (
            isinstance(exc, CmsError) and exc.code == CmsErrorCode.SIM_BUSY
        )

    async def _sim_step(self, command: C.Command[_T], deadline: float) -> _T:
        """Run a SIM-touching init command: wait out a busy SIM (until ``deadline``),
        turn a SIM error code into :class:`SimProblem`."""
        pause = timing.RETRY_INITIAL
        while True:
            try:
                return await self.client.execute(command)
            except CommandFailed as exc:
                if self._sim_busy(exc) and self._now() < deadline:
                    log.info("%s: SIM busy; asking again", command.text)
                    pause = await self._wait_sim(pause, deadline)
                    continue
                problem = SimProblem.from_error(exc)
                if problem is not None and not self._sim_busy(exc):
                    raise problem from exc
                raise

    async def _wait_sim(self, pause: float, deadline: float) -> float:
        """Sleep ``pause`` (less when a SIM URC comes first); return the next pause."""
        self._sim_news.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, min(pause, deadline - self._now()))):
                await self._sim_news.wait()
        return min(pause * 2, timing.SIM_BUSY_RETRY_MAX)

    async def _unlock_sim(self, deadline: float) -> None:
        """+CPIN? until READY (TS 27.007 §8.3): the PIN at most once, never a PUK."""
        unknown = 0
        entered = False
        pause = timing.RETRY_INITIAL
        while True:
            try:
                state = await self._sim_step(C.cpin_query(), deadline)
            except CommandFailed as exc:
                if type(exc) is not CommandFailed:
                    raise
                # a plain ERROR (no +CMEE codes): a SIM still busy, or none at all
                if self._now() < deadline:
                    pause = await self._wait_sim(pause, deadline)
                    continue
                raise SimProblem(SimProblemKind.UNREADABLE, exc) from exc
            self.pin_state = state
            if state in (PinState.READY, PinState.SIM_PIN2, PinState.SIM_PUK2):
                # PIN2/PUK2 only gate PIN2-protected files (§8.3): SMS works
                return
            if state is PinState.SIM_PIN:
                pin = self.config.pin
                if not pin:
                    raise SimProblem(SimProblemKind.PIN_REQUIRED)
                if entered or pin == self._rejected_pin:
                    # entered once already (refused, or accepted and asked again):
                    # a second try could count down the SIM's last attempts
                    raise SimProblem(SimProblemKind.PIN_REJECTED)
                entered = True
                # counted as refused until the SIM says OK: an entry whose outcome is
                # unknown (a timeout, a reboot) may have cost one of its attempts
                self._rejected_pin = pin
                try:
                    await self._sim_step(C.cpin_enter(pin), deadline)
                except (CommandFailed, SimProblem) as exc:
                    if isinstance(exc, SimProblem) and exc.kind is not SimProblemKind.PIN_REQUIRED:
                        raise
                    raise SimProblem(SimProblemKind.PIN_REJECTED, exc) from exc
                self._rejected_pin = None
                continue
            if state is PinState.SIM_PUK:
                raise SimProblem(SimProblemKind.PUK_REQUIRED)
            if state is PinState.OTHER and unknown < _PIN_STATE_UNKNOWN_RETRIES:
                # a state we do not know may be a line damaged by noise (device
                # input, not a misconfiguration): ask again before giving up
                unknown += 1
                log.warning("+CPIN? answered a state not understood; asking again")
                await asyncio.sleep(timing.RETRY_INITIAL)
                continue
            raise SimProblem(SimProblemKind.OTHER_LOCK)

    # -- queries when stale --------------------------------------------------------------

    async def signal_quality(self, max_age: float | None = None) -> Signal:
        """``+CSQ`` unless the last value is younger than ``max_age``
        (None: :data:`timing.STATUS_STALE_AFTER`)."""
        age = timing.STATUS_STALE_AFTER if max_age is None else max_age
        t = self._tracked
        if t.signal is None or self._now() - t.signal_at > age:
            t.signal = await self.client.execute(C.csq())
            t.signal_at = self._now()
        return t.signal

    async def refresh_registration(self, max_age: float | None = None) -> None:
        """Query registration unless younger than ``max_age`` (None: STATUS_STALE_AFTER)."""
        age = timing.STATUS_STALE_AFTER if max_age is None else max_age
        if self._now() - self._tracked.registration_at <= age:
            return
        for domain in self.profile.reg_domains:
            reg = await self._optional(C.creg_query(domain), None)
            if reg is not None:
                self._set_registration(reg)

    async def wait_registered(self, timeout: float | None = None) -> None:
        """Return once registered (home or roaming); :class:`NotRegistered` after
        ``timeout`` (None: :data:`timing.REGISTRATION_WAIT`).

        Woken by the registration URCs (TS 27.007 §7.2 ``+CREG: <stat>``) that
        :meth:`run` processes. Only when they cannot come (the module refused
        ``+CREG=2``, or nobody runs the URC loop) is the state asked for, every
        :data:`timing.REGISTRATION_QUERY_INTERVAL`.
        """
        wait = timing.REGISTRATION_WAIT if timeout is None else timeout
        if self.registered:
            return
        try:
            async with asyncio.timeout(wait):
                while not self.registered:
                    if self._reg_urcs and self._urc_loop_running:
                        await self._registered.wait()
                        continue
                    await self.refresh_registration(0)
                    if self.registered:
                        return
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(timing.REGISTRATION_QUERY_INTERVAL):
                            await self._registered.wait()
        except TimeoutError:
            state = ", ".join(
                f"{d} {C.RegStat(r.stat).name.lower() if r.stat <= 11 else r.stat}"
                for d, r in self._tracked.registration.items()
            )
            raise NotRegistered(wait, state) from None

    async def storage_status(self) -> StorageStatus:
        self.storage = await self.client.execute(C.cpms_query())
        return self.storage

    # -- URC handling ----------------------------------------------------------------------

    def handle_urc(self, urc: Urc) -> None:
        """Track registration/signal; notice reboots. Never raises on device input."""
        name = urc.name
        try:
            if name in ("+CREG", "+CGREG", "+CEREG", "+C5GREG"):
                self._set_registration(C.parse_registration(urc.line, urc=True))
            elif name == "^RSSI":
                self._tracked.signal = C.parse_rssi_urc(urc.args)
                self._tracked.signal_at = self._now()
        except ProtocolError as exc:
            log.info("ignoring malformed %s: %s", name, exc)
        if name in _SIM_NEWS:
            self._sim_news.set()
            problem = self.sim_problem
            if name == "+CPIN" and problem is not None and self._sim_urc_is_news(problem, urc):
                log.info("SIM state changed (%s): looking at the SIM again", urc.line)
                self._reinit_wanted.set()
            elif name == "+CPIN" and self.ready.is_set() and urc.args.strip('"') != "READY":
                # the SIM went away or reset under a ready session (hot-plug:
                # "+CPIN: NOT READY"/"NOT INSERTED"): look at it again
                log.warning("SIM state changed (%s): re-initialising", urc.line)
                self.ready.clear()
                self._reinit_wanted.set()
        if self._is_boot_marker(name, urc.args):
            now = self._now()
            same_boot = name not in _BOOT_ONLY and now - self._last_boot < timing.BOOT_GRACE
            self._last_boot = now
            if not same_boot:
                log.warning("module rebooted (%s): re-initialising", urc.line)
                self.stats["reboots_seen"] += 1
                self.ready.clear()
                self._reinit_wanted.set()
                self.client.fail_pending(ModemRebooted(urc.line))
        for hook in list(self.on_urc):
            hook(urc)

    @staticmethod
    def _sim_urc_is_news(problem: SimProblem, urc: Urc) -> bool:
        """A ``+CPIN: <code>`` URC worth a new look at a reported SIM problem: the
        SIM is ready now, or one was missing/failed and the SIM says anything.
        ("SIM PIN" after a refused PIN is no news: it would only loop.)"""
        if urc.args.strip('"').upper() == "READY":
            return True
        return problem.kind in (
            SimProblemKind.NOT_INSERTED,
            SimProblemKind.FAILURE,
            SimProblemKind.UNREADABLE,
        )

    def _unexpected_echo(self, line: str) -> None:
        """An echo after ATE0: the module lost its settings (rebooted silently)."""
        if self.ready.is_set():
            log.warning("echo is back (%r): the module restarted; re-initialising", line)
            self.stats["reboots_seen"] += 1
            self.ready.clear()
            self._reinit_wanted.set()

    def _is_boot_marker(self, name: str, args: str) -> bool:
        """A line that says the module (re)started and lost its settings.

        ``RDY`` (Quectel AT manuals, "after power on"), ``^SYSSTART``
        (Cinterion/Telit), ``*ATREADY`` (Sequans) only come from a boot.
        ``+CFUN: 1`` (TS 27.007 §8.2 as a Quectel/SIMCom URC) comes from a boot
        or a +CFUN change. ``SMS DONE``/``+QIND: SMS DONE`` (Quectel),
        ``SMS Ready``/``Call Ready`` (SIMCom) also follow the SIM's own
        initialisation, so they count only once the session was ready.
        """
        if name in _BOOT_ONLY:
            return True
        if name == "+CFUN" and args == "1":
            return True
        if name in ("SMS DONE", "SMS Ready", "Call Ready") or (
            name == "+QIND" and "SMS DONE" in args
        ):
            return self.ready.is_set()
        return False

    # -- supervision ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Initialise, then keep the module usable until cancelled. Never returns
        while the client is open; a SIM problem keeps it waiting, not failing."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._urc_loop())
            tg.create_task(self._supervise())

    async def _urc_loop(self) -> None:
        self._urc_loop_running = True
        try:
            async for urc in self._sub:
                self.handle_urc(urc)
        finally:
            self._urc_loop_running = False

    async def _supervise(self) -> None:
        c = self.client
        failures = 0
        parked = False
        while True:
            try:
                if not c.connected:
                    self.ready.clear()
                    await c.reconnect()
                    self.stats["reconnects"] += 1
                if parked:
                    # a SIM problem is never retried by itself: wait for a reboot, a
                    # SIM URC, a new configuration (each sets _reinit_wanted) or a
                    # lost port
                    parked = False
                    await self._watch()
                if not self.ready.is_set():
                    self._reinit_wanted.clear()
                    await self.initialize()
                    failures = 0
                await self._watch()
            except ModemDisconnected:
                if c.closed:
                    return
                continue
            except SimProblem as exc:
                self._report_sim_problem(exc)
                parked = True
            except CommandTimeout as exc:
                log.warning("module not answering (%s): escalating", exc)
                await self._escalate()
            except (ModemError, TimeoutError) as exc:
                if isinstance(exc, ModemError) and exc.fault is Fault.CALLER:
                    raise  # misconfiguration (a bad SMSC...): retrying cannot help; tell the app
                # the module refused something (busy, a setting): back off
                failures = min(failures + 1, 32)
                delay = min(timing.RETRY_MAX, timing.RETRY_INITIAL * timing.RETRY_FACTOR**failures)
                log.warning("re-init failed (%s); retrying in %.1f s", exc, delay)
                self.ready.clear()
                await asyncio.sleep(delay)

    def _report_sim_problem(self, exc: SimProblem) -> None:
        """One error line per new problem; the same problem again is logged at info."""
        self.ready.clear()
        old = self.sim_problem
        self.sim_problem = exc
        if old is None or old.kind is not exc.kind:
            self.stats["sim_problems"] += 1
            log.error("%s: %s", self.client.name, exc)
        else:
            log.info("%s: still %s", self.client.name, exc.kind.value)
        self._notify()

    async def _watch(self) -> None:
        """Sleep until the port is lost or a re-init is wanted (a reboot, a SIM
        change, a new configuration, or commands that keep timing out: the
        client's timeouts are signalled through :meth:`note_timeout`). No timer."""
        c = self.client
        lost = asyncio.ensure_future(c.wait_lost())
        reinit = asyncio.ensure_future(self._reinit_wanted.wait())
        try:
            await asyncio.wait((lost, reinit), return_when=asyncio.FIRST_COMPLETED)
            if lost.done():
                raise ModemDisconnected("port lost")
            self.ready.clear()
            if self._hung:
                self._hung = False
                raise CommandTimeout("repeated commands", timing.DEFAULT_COMMAND_TIMEOUT)
        finally:
            for fut in (lost, reinit):
                fut.cancel()
            await asyncio.gather(lost, reinit, return_exceptions=True)

    def note_timeout(self) -> None:
        """After each command timeout: enough in a row wake the supervisor (hung module)."""
        if self.client.stats["consecutive_timeouts"] >= timing.HUNG_AFTER_TIMEOUTS:
            self._hung = True
            self._reinit_wanted.set()

    def _reboot_wait(self) -> float:
        wait = self.config.reboot_wait
        return timing.REBOOT_WAIT if wait is None else wait

    async def _escalate(self) -> None:
        """ESC and sync; then +CFUN=1,1; then the power-cycle hook.

        A module that answers the sync (any final result) is never reset. One
        that stays dead is escalated again only after a growing pause
        (:data:`timing.ESCALATION_INITIAL` doubling to ``ESCALATION_MAX``),
        and the power-cycle hook runs at most once per a growing interval
        (:data:`timing.POWER_CYCLE_INTERVAL` doubling to ``POWER_CYCLE_MAX``).
        Both reset after a successful initialisation.
        """
        c = self.client
        if self._dead_escalations > 0:
            self.escalation_pause = min(
                timing.ESCALATION_MAX,
                timing.ESCALATION_INITIAL * 2 ** min(self._dead_escalations - 1, 32),
            )
            log.warning("module still dead: next escalation in %g s", self.escalation_pause)
            await asyncio.sleep(self.escalation_pause)
        self._dead_escalations += 1
        self.stats["escalations"] += 1
        self.ready.clear()
        c.stats["consecutive_timeouts"] = 0
        with contextlib.suppress(ModemError):
            await c.sync()  # ESC, a pause, AT: a module that answers is not reset
            return
        with contextlib.suppress(ModemError):
            await c.execute(C.simple("AT+CFUN=1,1", timeout=timing.RESET_TIMEOUT))
        await asyncio.sleep(self._reboot_wait())
        with contextlib.suppress(ModemError):
            await c.sync()
            return
        hook = self.config.power_cycle
        if hook is None:
            return
        interval = self._power_cycle_interval
        if interval is not None and self._now() - self._last_power_cycle < interval:
            log.warning("module dead; power cycle not due yet (every %.0f s at most)", interval)
            return
        self._power_cycle_interval = (
            timing.POWER_CYCLE_INTERVAL
            if interval is None
            else min(timing.POWER_CYCLE_MAX, interval * 2)
        )
        self._last_power_cycle = self._now()
        self.stats["power_cycles"] += 1
        log.error("module hung: power-cycling through the application hook")
        try:
            await hook()
        except Exception as exc:  # the application's hook: report it, keep supervising
            log.error("the power-cycle hook failed: %r", exc)
        await asyncio.sleep(self._reboot_wait())

    # -- SMS routing (used by the SMS service)

    def wanted_routing(self) -> C.Routing:
        """The ``+CNMI`` every (re-)init sets: the configuration's, else the profile's."""
        return C.Routing.parse(self._cnmi())

    async def routing_status(self) -> C.Routing:
        """``AT+CNMI?``: the module's routing now (TS 27.005 §3.4.1)."""
        return await self.client.execute(C.cnmi_query())

    async def restore_routing(self) -> bool:
        """Set the wanted ``+CNMI`` again when the module lost it; True when it did.

        TS 27.005 §3.4.1: when a ``+CMT``/``+CDS`` is not acknowledged in time
        the module sets ``<mt>`` and ``<ds>`` to 0, and every later SMS is
        stored without a ``+CMTI``. A module that refuses ``AT+CNMI?`` gets
        the wanted routing set without the check.
        """
        wanted = self.wanted_routing()
        try:
            now: C.Routing | None = await self.routing_status()
        except (CommandFailed, ProtocolError) as exc:
            log.info("+CNMI? not available (%s): setting the routing again", exc)
            now = None
        if now is not None and (now.mode, now.mt, now.ds) == (wanted.mode, wanted.mt, wanted.ds):
            return False
        log.warning("SMS routing is %s, want %s: setting it again", now, wanted)
        await self.client.execute(C.simple(f"AT+CNMI={wanted}"))
        return True

    def fall_back_to_stored_delivery(self) -> None:
        """Stored delivery from now on (``<mt>`` 1, ``+CMTI``), also after re-inits.

        For a module whose ``+CNMA`` keeps failing: a message the network
        delivers again after each failure is stored instead. ``<ds>`` 1
        (``+CDS``, which also needs ``+CNMA``) becomes 0: status reports are
        not routed (Twilio documents that they must not be relied on) and
        ``<ds>`` 2 is optional in TS 27.005, so a module could refuse it.
        """
        r = self.wanted_routing()
        ds = 0 if r.ds == 1 else r.ds
        cnmi = f"{r.mode},1,{r.bm},{ds},{r.bfr}"
        log.error("SMS acknowledgements keep failing: stored delivery from now on (+CNMI=%s)", cnmi)
        self.config = replace(self.config, direct_delivery=False, cnmi=cnmi)

    def close(self) -> None:
        """Forget the client's URC stream and hooks (the client stays open)."""
        self._sub.close()
        if self.client.on_timeout == self.note_timeout:
            self.client.on_timeout = None
        if self.client.on_echo == self._unexpected_echo:
            self.client.on_echo = None
