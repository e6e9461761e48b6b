"""Module session: start-up, re-init, registration/signal tracking and recovery.

:meth:`Session.initialize` brings a module from any state to the one the SMS
service needs (TS 27.005/27.007):

1. sync: ``AT`` until ``OK`` (autobaud; a module that just booted may need a
   few tries), then ``ATE0`` (no echo), ``ATV1`` (verbose results),
   ``AT+CMEE=1`` (numeric +CME ERROR codes);
2. identity: ``+CGMI``/``+CGMM`` pick a :class:`ModuleProfile` (each
   module's quirks), then ``+CGMR``, ``+CGSN`` (IMEI);
3. SIM: ``+CPIN?``; enter the configured PIN when asked (never a PUK);
   ``+CIMI`` (IMSI) and the ICCID (``+QCCID``/``+CCID``/``+CICCID``);
4. SMS: ``+CMGF=0`` (PDU mode), ``+CPMS`` (storage), ``+CNMI`` (routing:
   stored delivery with ``+CMTI`` and stored status reports by default),
   ``+CSCA?`` (service centre check);
5. registration URCs: ``+CREG=2``, ``+CEREG=2`` (``+CGREG=2`` where there is
   no LTE); the first state is queried once, later ones come as URCs.

:meth:`Session.run` supervises: it watches the URC stream for signs of a
module reboot (``RDY``, ``+CFUN: 1``, ``SMS DONE``...) and re-initialises;
when the port vanishes it reconnects with backoff; when commands keep timing
out it escalates (ESC, resync, ``+CFUN=1,1``, then the application's
``power_cycle`` hook). After every (re-)init it calls the ``on_ready`` hooks
(the SMS service sweeps storage there).
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
    CommandFailed,
    CommandTimeout,
    Fault,
    ModemDisconnected,
    ModemError,
    ModemRebooted,
    ProtocolError,
    UsageError,
)
from .protocol import Urc

__all__ = ["Identity", "ModuleProfile", "Session", "SessionConfig", "detect_profile"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_D = TypeVar("_D")

#: Start-up lines that only a (re)boot produces; +CFUN: 1, SMS DONE, +QIND: SMS DONE
#: also count, outside BOOT_GRACE of a previous marker (see _is_boot_marker).
_BOOT_ONLY: frozenset[str] = frozenset({"RDY", "^SYSSTART", "*ATREADY"})


@dataclass(frozen=True)
class ModuleProfile:
    """Quirks of a module family (from its AT manual)."""

    name: str
    #: +CNMI: mode,mt,bm,ds,bfr. Stored delivery (mt=1, +CMTI), stored status
    #: reports (ds=2, +CDSI) unless the module lacks it.
    cnmi: str = "2,1,0,2,0"
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
    power_cycle: Callable[[], Awaitable[None]] | None = None
    #: Time to wait for a module to come back after +CFUN=1,1 / power-cycle.
    reboot_wait: float = timing.RESET_TIMEOUT


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
        self.storage: StorageStatus | None = None
        self.smsc: str | None = None
        self.ready = asyncio.Event()
        self.generation = 0
        self.on_ready: list[Callable[[], None]] = []
        self.on_urc: list[Callable[[Urc], None]] = []
        self._tracked = _Tracked()
        self._registered = asyncio.Event()
        self._reinit_wanted = asyncio.Event()
        self._last_boot = -1e18
        self._hung = False
        self._sub = client.subscribe()
        client.on_timeout = self.note_timeout
        self.stats = {"inits": 0, "reboots_seen": 0, "reconnects": 0, "escalations": 0}

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

    def _set_registration(self, reg: Registration) -> None:
        self._tracked.registration[reg.domain] = reg
        self._tracked.registration_at = self._now()
        if self.registered:
            self._registered.set()
        else:
            self._registered.clear()

    # -- initialisation --------------------------------------------------------------

    async def initialize(self) -> None:
        """Bring the module to the state the SMS service needs (see module doc)."""
        c = self.client
        self.ready.clear()
        await c.sync()
        c.on_echo = None
        await c.execute(C.simple("ATE0"))
        c.on_echo = self._unexpected_echo
        await c.execute(C.simple("ATV1"))
        await c.execute(C.simple("AT+CMEE=1"))
        ident = self.identity
        ident.manufacturer = await self._optional(C.identity("AT+CGMI"), "")
        ident.model = await self._optional(C.identity("AT+CGMM"), "")
        self.profile = detect_profile(ident.manufacturer, ident.model)
        c.pause = max(c.pause, self.profile.pause)
        ident.revision = await self._optional(C.identity("AT+CGMR"), "")
        ident.imei = await self._optional(C.digits("AT+CGSN"), "")
        await self._unlock_sim()
        ident.imsi = await self._optional(C.digits("AT+CIMI"), "")
        for cmd in self.profile.iccid_commands:
            ident.iccid = await self._optional(C.digits(cmd), "")
            if ident.iccid:
                break
        await c.execute(C.simple("AT+CMGF=0", timeout=timing.SIM_COMMAND_TIMEOUT))
        mems = self.config.storage or self.profile.storage
        try:
            st = await c.execute(C.cpms_set(*mems))
            self.storage = replace(st, mem=tuple(mems[: len(st.used)]))
        except CommandFailed:
            log.warning("+CPMS=%s refused; keeping the module's storage", mems)
            self.storage = await self._optional(C.cpms_query(), None)
        if self.config.direct_delivery and self.config.csms is not None:
            await self._optional(C.simple(f"AT+CSMS={self.config.csms}"), None)
        await c.execute(C.simple(f"AT+CNMI={self._cnmi()}"))
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
        for domain in self.profile.reg_domains:
            if await self._optional(C.simple(f"AT+{domain}=2"), False) is not False:
                reg = await self._optional(C.creg_query(domain), None)
                if reg is not None:
                    self._set_registration(reg)
        self.generation += 1
        self.stats["inits"] += 1
        self.ready.set()
        log.info(
            "%s: ready (profile %s, IMEI %s, registered %s)",
            c.name,
            self.profile.name,
            ident.imei,
            self.registered,
        )
        for hook in list(self.on_ready):
            hook()

    def _cnmi(self) -> str:
        if self.config.cnmi:
            return self.config.cnmi
        parts = self.profile.cnmi.split(",")
        if self.config.direct_delivery:
            parts[1] = "2"
        return ",".join(parts)

    async def _optional(self, command: C.Command[_T], default: _D) -> _T | _D:
        """Run a command a module may not support; keep ``default`` when refused."""
        try:
            return await self.client.execute(command)
        except (CommandFailed, ProtocolError) as exc:
            log.info("%s not available: %s", command.text, exc)
            return default

    async def _unlock_sim(self) -> None:
        c = self.client
        unknown = 0
        for _ in range(10):
            try:
                state = await c.execute(C.cpin_query())
            except CmeError as exc:
                if exc.code == CmeErrorCode.SIM_BUSY:
                    await asyncio.sleep(timing.RETRY_INITIAL)
                    continue
                raise
            self.pin_state = state
            if state is PinState.READY:
                return
            if state is PinState.SIM_PIN and self.config.pin:
                await c.execute(C.cpin_enter(self.config.pin))
                continue
            if state is PinState.OTHER and unknown < 2:
                # a state we do not know may be a line damaged by noise (device
                # input, not a misconfiguration): ask again before giving up
                unknown += 1
                log.warning("+CPIN? answered a state not understood; asking again")
                await asyncio.sleep(timing.RETRY_INITIAL)
                continue
            raise UsageError(f"SIM needs {state.value}; configure it (never guessing a PUK)")
        raise CommandTimeout("AT+CPIN?", timing.SIM_COMMAND_TIMEOUT)

    # -- queries when stale --------------------------------------------------------------

    async def signal_quality(self, max_age: float = timing.STATUS_STALE_AFTER) -> Signal:
        t = self._tracked
        if t.signal is None or self._now() - t.signal_at > max_age:
            t.signal = await self.client.execute(C.csq())
            t.signal_at = self._now()
        return t.signal

    async def refresh_registration(self, max_age: float = timing.STATUS_STALE_AFTER) -> None:
        if self._now() - self._tracked.registration_at <= max_age:
            return
        for domain in self.profile.reg_domains:
            reg = await self._optional(C.creg_query(domain), None)
            if reg is not None:
                self._set_registration(reg)

    async def wait_registered(self, timeout: float = timing.REGISTRATION_WAIT) -> None:
        """Return once registered (home or roaming); TimeoutError after ``timeout``."""
        if self.registered:
            return
        async with asyncio.timeout(timeout):
            while not self.registered:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(timeout, timing.STATUS_STALE_AFTER)):
                        await self._registered.wait()
                if not self.registered:
                    await self.refresh_registration(0)

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

    def _unexpected_echo(self, line: str) -> None:
        """An echo after ATE0: the module lost its settings (rebooted silently)."""
        if self.ready.is_set():
            log.warning("echo is back (%r): the module restarted; re-initialising", line)
            self.stats["reboots_seen"] += 1
            self.ready.clear()
            self._reinit_wanted.set()

    def _is_boot_marker(self, name: str, args: str) -> bool:
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
        """Initialise, then keep the module usable until cancelled. Never returns."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._urc_loop())
            tg.create_task(self._supervise())

    async def _urc_loop(self) -> None:
        async for urc in self._sub:
            self.handle_urc(urc)

    async def _supervise(self) -> None:
        c = self.client
        failures = 0
        while True:
            try:
                if not c.connected:
                    self.ready.clear()
                    await c.reconnect()
                    self.stats["reconnects"] += 1
                if not self.ready.is_set():
                    self._reinit_wanted.clear()
                    await self.initialize()
                    failures = 0
                await self._watch()
            except ModemDisconnected:
                if c.closed:
                    return
                continue
            except CommandTimeout as exc:
                log.warning("module not answering (%s): escalating", exc)
                await self._escalate()
            except (ModemError, TimeoutError) as exc:
                if isinstance(exc, ModemError) and exc.fault is Fault.CALLER:
                    raise  # misconfiguration (no PIN...): retrying cannot help; tell the app
                # the module refused something (SIM not inserted, PUK, busy): back off
                failures += 1
                delay = min(timing.RETRY_MAX, timing.RETRY_INITIAL * 2 ** min(failures, 10))
                log.warning("re-init failed (%s); retrying in %.1f s", exc, delay)
                self.ready.clear()
                await asyncio.sleep(delay)

    async def _watch(self) -> None:
        """Sleep until the port is lost, a reboot is seen or commands keep timing out."""
        c = self.client
        lost = asyncio.ensure_future(c.wait_lost())
        reinit = asyncio.ensure_future(self._reinit_wanted.wait())
        try:
            while True:
                await asyncio.wait(
                    (lost, reinit),
                    timeout=timing.STATUS_STALE_AFTER,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if lost.done():
                    raise ModemDisconnected("port lost")
                if reinit.done():
                    self.ready.clear()
                    if self._hung:
                        self._hung = False
                        raise CommandTimeout("repeated commands", timing.DEFAULT_COMMAND_TIMEOUT)
                    return
                if c.stats["consecutive_timeouts"] >= timing.HUNG_AFTER_TIMEOUTS:
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

    async def _escalate(self) -> None:
        """ESC, resync; then +CFUN=1,1; then the power-cycle hook."""
        c = self.client
        self.stats["escalations"] += 1
        self.ready.clear()
        c.stats["consecutive_timeouts"] = 0
        with contextlib.suppress(ModemError):
            c.escape()
            await c.sync()
            return
        with contextlib.suppress(ModemError):
            await c.execute(C.simple("AT+CFUN=1,1", timeout=timing.RESET_TIMEOUT))
        with contextlib.suppress(ModemError):
            await asyncio.sleep(self.config.reboot_wait / 3)
            await c.sync()
            return
        if self.config.power_cycle is not None:
            log.error("module hung: power-cycling through the application hook")
            await self.config.power_cycle()
            await asyncio.sleep(self.config.reboot_wait / 3)
        else:
            await asyncio.sleep(timing.RETRY_MAX / 10)

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


def with_pin(config: SessionConfig, pin: str) -> SessionConfig:
    return replace(config, pin=pin)
