"""The service: the one room that wires tasks (docs/bridge.md, "The service").

Per ``[[modem]]`` section a :class:`modem.stack.ModemStack` (the modem
layer's one lifecycle owner) whose SMS service consumer is
:meth:`Service._consumer`: a :class:`modem.sms.ReceivedMessage` becomes
:meth:`Dispatcher.admit`, an :class:`modem.sms.Undecodable` becomes
:meth:`Dispatcher.admit_undecodable`; the journal write (FULL) is done
before the consumer returns, so the SMS service deletes the SIM copy
(``AT+CMGD``, TS 27.005 §3.5.4) only once it is durable, and a
:class:`~bridge.journal.JournalError` raised to the SMS service keeps the
copy for a later sweep. The SMS service's ``known`` hook is
:meth:`Dispatcher.known`. Replies leave through :class:`StackSender` on the
module their Command came in on (the outbox has one task per module);
``status`` and ``info`` read the module through :class:`StackStatus`.

Start (:meth:`Service.start`): journal (its worker thread), ``hal`` built
once from ``[hal]`` (the simulated HAL when a port is ``sim://`` and there
is no ``[hal]``), GPIO outputs restored from the journal, the modem stacks,
the device identity (``[bridge].device_id`` or the first module's ICCID),
then the outbox and the dispatcher (each runs its restart recovery first),
then the device-initiated messages (:mod:`bridge.reports`).

Stop (:meth:`Service.stop`, SIGTERM/SIGINT in the CLI), in this order:
stop admitting (the consumer refuses, so what arrives now stays on the SIM),
the report tasks, the dispatcher (the Command in flight may finish within
its grace, else it stays ``executing`` for recovery), the outbox (a send in
flight may finish within its grace, else it stays ``sending`` and is resent
at the next start), the modem stacks, ``hal``, and last the journal worker
(every call queued runs to its commit). Nothing is half-sent without a
journal record: ``sending`` is durable before ``AT+CMGS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hal as _hal
import pdu
from hal.scripts import check_program
from modem import commands as C
from modem.errors import ModemError, SimProblem
from modem.session import PROFILES, SessionConfig
from modem.sms import Inbound, ReceivedMessage, Undecodable
from modem.stack import ModemStack

from . import __version__, auth
from .actions import builtins
from .actions.configured import configured
from .actions.context import ActionContext, Counters, ModemFigures, ModemIdentity
from .actions.gpio import restore_outputs
from .actions.registry import Registry, RegistryError
from .config import Config, ConfigError, ModemConfig
from .dispatcher import Dispatcher
from .framing import Product, ProductSetting, reply_address
from .grammar import Level
from .inbound import incoming
from .journal import Journal, JournalError, Kind
from .outbox import Outbox
from .reply import Field
from .reports import Band, Reporter, ThresholdWatch, duration
from .worker import JournalCalls, JournalWorker

log = logging.getLogger("bridge.service")

#: How often settled journal entries older than the retention are pruned.
PRUNE_EVERY = 86400.0

#: TS 27.007 §7.2 ``<stat>`` -> what ``status`` shows.
REGISTRATION_NAMES = {
    0: "none",
    1: "home",
    2: "searching",
    3: "denied",
    4: "unknown",
    5: "roaming",
    6: "home",
    7: "roaming",
    8: "emergency",
    9: "home",
    10: "roaming",
}

#: TS 27.007 §7.3 ``+COPS`` ``<AcT>`` -> a short name. 8 is EC-GSM-IoT in
#: 27.007 but LTE Cat M1 on Quectel modules (BG96 AT manual, +COPS), the
#: modules Twilio's guides use.
ACCESS_NAMES = {
    0: "GSM",
    2: "UMTS",
    3: "EDGE",
    4: "HSDPA",
    5: "HSUPA",
    6: "HSPA",
    7: "LTE",
    8: "LTE-M",
    9: "NB-IoT",
    10: "LTE",
    11: "NR",
    12: "NR",
    13: "EN-DC",
}


class _WatchedCounters(Counters):
    """:class:`Counters` that set :attr:`changed` on every increment (the
    ``STATUS=`` line and the status socket follow them without polling)."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def inc(self, name: str, n: int = 1) -> None:
        super().inc(name, n)
        self.changed.set()


class ServiceError(Exception):
    """The service cannot start: a one-line message for the operator (a
    configuration key named where one is at fault)."""


class Stopping(RuntimeError):
    """The bridge is stopping: an SMS offered now stays on the SIM."""


class StackSender:
    """:class:`~bridge.outbox.ReplySender` over one module's SMS service.

    Text goes as the SMS service encodes it (GSM 7-bit, else UCS-2); binary
    as 8-bit data (TP-DCS 0x04, TS 23.038 §4, ``pdu.Alphabet.DATA8``). The
    TP-MRs of ``+CMGS`` are returned. Every error propagates: the outbox
    takes any failure as "outcome unknown" and counts it.
    """

    def __init__(self, stack: ModemStack) -> None:
        self._stack = stack

    async def send(self, to: str, content: str | bytes, *, binary: bool) -> tuple[int, ...]:
        if binary != isinstance(content, bytes):
            raise TypeError("binary replies are bytes, text replies str")
        encoding = pdu.Alphabet.DATA8 if binary else None
        result = await self._stack.guard(self._stack.sms.send(to, content, encoding=encoding))
        return result.mrs


def _registration(regs: Mapping[str, C.Registration]) -> str | None:
    found = list(regs.values())
    if not found:
        return None
    best = next((r for r in found if r.registered), found[0])
    return REGISTRATION_NAMES.get(best.stat, str(best.stat))


class StackStatus:
    """:class:`~bridge.actions.context.ModemStatus` over one module's session:
    ``+CSQ`` (TS 27.007 §8.5), the registration (§7.2), ``+COPS?`` (§7.3) and
    the identities read at initialisation (§5, the ICCID). A figure the module
    does not give is None; nothing here raises for a busy or absent module."""

    def __init__(self, stack: ModemStack) -> None:
        self._stack = stack

    async def figures(self) -> ModemFigures:
        s = self._stack.session
        rssi = ber = None
        with contextlib.suppress(ModemError, TimeoutError):
            sig = await s.signal_quality()
            rssi = sig.dbm
            ber = None if sig.ber == 99 else sig.ber
        with contextlib.suppress(ModemError, TimeoutError):
            await s.refresh_registration()
        operator = access = None
        with contextlib.suppress(ModemError, TimeoutError):
            op = await s.client.execute(C.cops_query())
            operator = op.name or None
            access = ACCESS_NAMES.get(op.act) if op.act is not None else None
        return ModemFigures(rssi, ber, _registration(s.registration), operator, access)

    async def identity(self) -> ModemIdentity:
        i = self._stack.session.identity
        return ModemIdentity(
            imei=i.imei or None,
            iccid=i.iccid or None,
            manufacturer=i.manufacturer or None,
            model=i.model or None,
            firmware=i.revision or None,
        )


class _Outputs:
    """Where a report's ActionContext would keep desired outputs (reports set none)."""

    def __init__(self, worker: JournalCalls) -> None:
        self._worker = worker

    async def set_desired(self, line: str, value: int) -> None:
        await self._worker.call(Journal.set_desired_output, line, value)


@dataclass
class ModemLink:
    """One ``[[modem]]``: its configuration, stack, sender and status."""

    config: ModemConfig
    stack: ModemStack
    sender: StackSender
    status: StackStatus

    @property
    def name(self) -> str:
        return self.config.name


def session_config(m: ModemConfig) -> SessionConfig:
    """The session settings of one module: its PIN; when ``profile`` names a
    module profile, that profile's storage and ``+CNMI``; stored delivery
    (``+CMTI``, TS 27.005 §3.4.1) unless ``direct_delivery`` asks for ``+CMT``
    with ``+CSMS=1`` and ``+CNMA`` (§3.4.4: the journal write must then be done
    within the acknowledgement deadline, which the SMS service enforces)."""
    prof = PROFILES.get(m.profile) if m.profile else None
    return SessionConfig(
        pin=m.pin or None,
        direct_delivery=m.direct_delivery,
        csms=1 if m.direct_delivery else None,
        storage=prof.storage if prof is not None else None,
        cnmi=None if m.direct_delivery or prof is None else prof.cnmi,
    )


def hal_config(cfg: Config) -> _hal.HalConfig:
    """``[hal]`` parsed by the HAL (errors name ``hal.…``); no ``[hal]``: the
    simulated HAL when a port is ``sim://``, else the Linux backend with
    nothing configured (system report only)."""
    table: Mapping[str, Any] = cfg.hal
    if not table:
        sim = any(m.port.startswith("sim://") for m in cfg.modems)
        table = {} if sim else {"backend": "linux"}
    return _hal.parse(dict(table), where="hal")


def check(cfg: Config) -> _hal.HalConfig:
    """Everything that can be checked without opening anything but the key
    file: raises :class:`ConfigError` naming the key."""
    if not cfg.modems:
        raise ConfigError("modem", "at least one [[modem]] section is needed")
    devices: dict[str, int] = {}
    for i, m in enumerate(cfg.modems):
        if m.profile and m.profile not in PROFILES and not m.port.startswith("sim://"):
            known = ", ".join(sorted(PROFILES))
            raise ConfigError(f"modem[{i}].profile", f"{m.profile!r} is not one of {known}")
        if m.port.startswith("/"):  # /dev/serial/by-id/... and /dev/ttyUSB2 may be one device
            real = os.path.realpath(m.port)
            j = devices.setdefault(real, i)
            if j != i:
                raise ConfigError(
                    f"modem[{i}].port",
                    f"{m.port!r} is {real}, {cfg.modems[j].name}'s port too: "
                    "one [[modem]] per module",
                )
    try:
        hcfg = hal_config(cfg)
    except _hal.ConfigError as exc:
        raise ConfigError(exc.key, exc.message) from None
    for name in cfg.reports.thresholds:
        if name not in hcfg.sensors:
            raise ConfigError(f"reports.thresholds.{name}", "no such sensor in [hal.sensors]")
    builtin = builtins()
    for verb, section in cfg.actions.items():
        key = f"actions.{verb}" if " " not in verb else f'actions."{verb}"'
        if section.script not in hcfg.scripts:
            raise ConfigError(f"{key}.script", f"no script {section.script!r} in [hal.scripts]")
        if builtin.get(verb) is not None:
            raise ConfigError(key, f"{verb!r} is a built-in verb")
        other = builtin.by_binary_id(section.binary_id) if section.binary_id else None
        if other is not None:
            raise ConfigError(f"{key}.binary_id", f"{section.binary_id} is {other.spec.verb!r}'s")
    if cfg.security.key_file:
        try:
            auth.load_keyring(cfg.security.key_file)
        except auth.KeyFileError as exc:
            raise ConfigError("security.key_file", str(exc)) from None
    return hcfg


def add_actions(registry: Registry, cfg: Config, *, plugins: bool = True) -> list[str]:
    """Add to ``registry`` what ``run`` offers besides the built-ins: the
    plugins of the entry-point group ``sms_bridge.actions`` (when ``plugins``)
    and the configuration's ``[actions.VERB]`` scripts. The plugin verbs
    added; :class:`RegistryError` naming the plugin or the ``actions.VERB``."""
    loaded = [a.spec.verb for a in registry.add_entry_points()] if plugins else []
    for verb, section in cfg.actions.items():  # [actions.VERB]: one script each
        try:
            registry.add(configured(verb, section))
        except RegistryError as exc:
            raise RegistryError(f"actions.{verb}: {exc}") from None
    return loaded


def check_levels(cfg: Config, registry: Registry) -> None:
    """``[security.levels]`` names only verbs ``registry`` has: a typo, or a
    verb's first word alone (``gpio`` for ``gpio set``), would leave the verb
    at its own level without a word. :class:`ConfigError` naming the key."""
    for verb in cfg.security.levels:
        if registry.get(verb) is None:
            key = f"security.levels.{verb}" if " " not in verb else f'security.levels."{verb}"'
            verbs = ", ".join(sorted(a.spec.verb for a in registry))
            raise ConfigError(key, f"no verb {verb!r} ({verbs})")


class Service:
    """The bridge: every module, the journal, the dispatcher, the outbox, reports.

    ``client_options`` maps a module name to extra :meth:`AtClient.from_url`
    keywords (tests: ``sim_options``); ``registry`` replaces the built-ins.
    """

    def __init__(
        self,
        config: Config,
        *,
        registry: Registry | None = None,
        client_options: Mapping[str, Mapping[str, Any]] | None = None,
        clock: Callable[[], float] = time.time,
        stop_grace: float | None = None,
        outbox_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self._own_registry = registry is None
        self.registry = registry if registry is not None else builtins()
        self._client_options = dict(client_options or {})
        self._clock = clock
        self._stop_grace = stop_grace
        self._outbox_options = dict(outbox_options or {})
        self.counters = _WatchedCounters()
        #: set on a registration change or a counter increment (cleared by the reader)
        self.changed = self.counters.changed
        self.state = "new"
        self.device_id = config.bridge.device_id
        self.keys: auth.Keyring | None = None
        self.links: dict[str, ModemLink] = {}
        self.hal: _hal.Hal | None = None
        self.worker: JournalCalls | None = None
        self.dispatcher: Dispatcher | None = None
        self.outbox: Outbox | None = None
        self.reporter: Reporter | None = None
        self.failure: BaseException | None = None
        self.started_at: float | None = None
        self._exit = contextlib.AsyncExitStack()
        self._tasks: set[asyncio.Task[None]] = set()
        self._admitting = False
        self._admitted = 0
        self._admitted_changed = asyncio.Condition()
        self._stopped = asyncio.Event()
        self._ready = asyncio.Event()
        self._lost_at: dict[str, float] = {}
        self._stopper: asyncio.Task[None] | None = None

    # --- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> Service:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Bring everything up (module doc); :class:`ServiceError` (one line) when
        the configuration, the key file, the journal or ``hal`` refuses."""
        if self.state != "new":
            raise RuntimeError("a Service is started once")
        self.state = "starting"
        try:
            await self._start()
        except BaseException as exc:
            self.state = "stopping"
            await self._exit.aclose()
            self.state = "stopped"
            self._stopped.set()
            if self.failure is not None and not isinstance(exc, asyncio.CancelledError):
                return  # a module's stack failed while starting: stopped, `failure` says why
            raise
        if self.failure is not None:  # a stack failed while the rest was starting
            await self.stop()
            return
        self.state = "running"
        self.started_at = self._clock()
        log.info(
            "bridge %s running: %d module(s), device %s, %s",
            __version__,
            len(self.links),
            self.device_id or "?",
            "signed replies" if self.keys is not None else "no key (signed verbs refused)",
        )

    async def _start(self) -> None:
        cfg = self.config
        try:
            hcfg = check(cfg)
        except ConfigError as exc:
            raise ServiceError(str(exc)) from None
        if cfg.security.key_file:
            self.keys = auth.load_keyring(cfg.security.key_file)
        try:  # third-party actions only with the built-in registry
            for verb in add_actions(self.registry, cfg, plugins=self._own_registry):
                log.info("plugin action %r loaded", verb)
            check_levels(cfg, self.registry)
        except (RegistryError, ConfigError) as exc:
            raise ServiceError(str(exc)) from None
        path = Path(cfg.bridge.journal)
        worker: JournalCalls
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            Journal.refuse_foreign(path)  # before a .lock file is made beside someone's file
            lock_fd = self._lock_journal(path)
            if cfg.bridge.journal_process:
                # imported only when configured: its modules cost resident memory
                from .journal_process import JournalProcess  # noqa: PLC0415 - resident memory

                worker = await JournalProcess.start(
                    path, window_size=cfg.security.replay_window, lock_fd=lock_fd
                )
            else:
                worker = JournalWorker(Journal.open(path, window_size=cfg.security.replay_window))
        except (JournalError, OSError) as exc:
            raise ServiceError(f"bridge.journal: {exc}") from None
        self.worker = worker
        self._exit.push_async_callback(worker.close)
        pruned = await worker.call(Journal.prune)
        if pruned:
            log.info("journal: %d settled entries older than 30 days pruned", pruned)
        try:
            device = _hal.build(hcfg)
        except _hal.HalError as exc:
            raise ServiceError(str(exc)) from None
        self.hal = device
        self._exit.push_async_callback(device.close)
        for sc in hcfg.scripts.values():  # installed later is allowed; unnoticed is not
            try:
                check_program(sc)
            except _hal.ScriptError as exc:
                log.warning("%s.command[0]: %s: Commands that run it will fail", sc.key, exc.detail)
        skipped = await restore_outputs(device, lambda: worker.call(Journal.desired_outputs))
        for name in skipped:
            log.warning("gpio %s: a desired value is journaled but it is no output now", name)

        links: dict[str, ModemLink] = {}
        for m in cfg.modems:
            options: dict[str, Any] = {"baudrate": m.baud}
            options.update(self._client_options.get(m.name, {}))
            try:
                stack = ModemStack(
                    m.port,
                    session=session_config(m),
                    consumer=self._consumer(m.name),
                    # the journal dedupes and commits durably before the delete: the
                    # next message is read meanwhile (modem.sms, read_ahead)
                    sms={"known": self._known, "read_ahead": True},
                    client_options=options,
                )
            except ModemError as exc:
                raise ServiceError(f"{m.name}: port {m.port}: {exc}") from None
            links[m.name] = ModemLink(m, stack, StackSender(stack), StackStatus(stack))
        self.links = links
        outbox_kw: dict[str, Any] = dict(self._outbox_options)
        if self._stop_grace is not None:
            outbox_kw.setdefault("stop_grace", self._stop_grace)
        self.outbox = Outbox(
            worker, {n: k.sender for n, k in links.items()}, counters=self.counters, **outbox_kw
        )
        self.dispatcher = Dispatcher(
            worker,
            self.registry,
            config=cfg,
            device=device,
            outbox=self.outbox,
            device_id=self.device_id,
            keys=self.keys,
            framing_configs={m.name: cfg.framing(m) for m in cfg.modems},
            modems={n: k.status for n, k in links.items()},
            counters=self.counters,
            clock=self._clock,
            version=__version__,
            stop_grace=self._stop_grace,
        )
        self._admitting = True
        for link in self.links.values():
            try:
                await link.stack.__aenter__()
            except (OSError, ModemError) as exc:
                raise ServiceError(f"{link.name}: cannot open {link.config.port}: {exc}") from None
            self._exit.push_async_callback(self._close_stack, link)
            self._exit.callback(self._stop_admitting)  # first thing done on the way out
            self._spawn(self._watch_stack(link), f"watch-{link.name}")
            link.stack.session.on_urc.append(self._registration_hook(link))
        await self._resolve_device_id()
        self.dispatcher.device_id = self.device_id
        self.reporter = Reporter(
            worker,
            self.outbox,
            config=cfg,
            keys=self.keys,
            device_id=lambda: self.device_id,
            counters=self.counters,
            clock=self._clock,
        )
        await self.outbox.start()
        self._exit.push_async_callback(self.outbox.stop)
        await self.dispatcher.start()
        self._exit.push_async_callback(self.dispatcher.stop)
        self._exit.push_async_callback(self._cancel_tasks)
        self._spawn(self._bring_up(), "bring-up")
        self._spawn(self._prune_daily(), "prune")
        if cfg.reports.status_every:
            self._spawn(self._scheduled_reports(), "reports")
        if cfg.reports.events:
            if any(c.direction == "input" for c in device.config.gpio.values()):
                self._spawn(self._edge_events(), "gpio-events")
            if cfg.reports.thresholds:
                self._spawn(self._sensor_events(), "sensor-events")

    def _lock_journal(self, path: Path) -> int:
        """One bridge per journal (the replay window has one writer): an
        exclusive ``flock`` on ``journal.db.lock``, held for the service's
        life and released by the kernel even after a kill -9."""
        lock = path.with_name(path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ServiceError(
                f"bridge.journal: {path} is in use by another sms-bridge ({lock} is locked)"
            ) from None
        self._exit.callback(os.close, fd)
        return fd

    @staticmethod
    async def _close_stack(link: ModemLink) -> None:
        """Leave a stack; a supervised task's failure it re-raises was already
        reported (``failure``) and does not interrupt the shutdown."""
        try:
            await link.stack.__aexit__(None, None, None)
        except Exception as exc:
            if exc is not link.stack.failure:
                log.error("%s: closing: %s: %s", link.name, type(exc).__name__, exc)

    def _stop_admitting(self) -> None:
        self._admitting = False

    async def stop(self) -> None:
        """Shut down in order (module doc); idempotent."""
        if self.state in ("stopping", "stopped"):
            await self._stopped.wait()
            return
        self.state = "stopping"
        log.info("bridge stopping")
        self._admitting = False
        try:
            await self._exit.aclose()
        finally:
            self.state = "stopped"
            self._stopped.set()
            log.info("bridge stopped")

    async def wait_stopped(self) -> None:
        """Until :meth:`stop` finished (or a module's stack failed: see :attr:`failure`)."""
        await self._stopped.wait()

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Until every module is initialised and the boot message (if any) queued.

        Raises :class:`~modem.errors.SimProblem` while a SIM needs a person,
        TimeoutError after ``timeout``.
        """
        async with asyncio.timeout(timeout):
            for link in self.links.values():
                await link.stack.wait_ready()
            await self._ready.wait()

    def _spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s stopped: %s: %s", task.get_name(), type(exc).__name__, exc)

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    async def _watch_stack(self, link: ModemLink) -> None:
        """A module's supervised task failed (a bug, a port that cannot be
        used): the service stops, so systemd restarts it."""
        try:
            await link.stack.guard(asyncio.Event().wait())
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.failure = exc
            log.error("%s: the modem stack failed (%s); stopping", link.name, exc)
            if self.state == "starting":
                return  # start() sees the failure and stops once its own steps unwound
            # not one of self._tasks: stopping cancels those
            self._stopper = asyncio.get_running_loop().create_task(self.stop())

    async def _resolve_device_id(self) -> None:
        """``[bridge].device_id``, else the first module's ICCID (read at its
        initialisation, also without the PIN). Signatures are bound to it, so
        with a key the dispatcher starts only once it is known."""
        if self.device_id:
            return
        first = next(iter(self.links.values()))
        if self.keys is None:
            # nothing is signed: the identity only names the device in logs
            iccid = first.stack.session.identity.iccid
            self.device_id = iccid
            return
        if not first.stack.session.ready.is_set():
            log.info("waiting for %s: Commands are signed for its ICCID", first.name)
        with contextlib.suppress(SimProblem):
            await first.stack.wait_ready()
        iccid = first.stack.session.identity.iccid
        if not iccid:
            raise ServiceError(
                f"bridge.device_id: empty, and {first.name} gave no ICCID to sign with; "
                "set bridge.device_id"
            )
        self.device_id = iccid

    # --- the consumer (the SMS service's) ---------------------------------------------

    async def _known(self, part_id: str) -> bool:
        """The SMS service's ``known`` hook: :meth:`Dispatcher.known`."""
        if self.dispatcher is None:
            return False
        return await self.dispatcher.known(part_id)

    def _consumer(self, name: str) -> Callable[[Inbound], Any]:
        async def consume(item: Inbound) -> None:
            if not self._admitting:
                raise Stopping("the bridge is stopping: kept on the SIM")
            d = self.dispatcher
            assert d is not None
            if isinstance(item, ReceivedMessage):
                await d.admit(incoming(item), modem=name)
            elif isinstance(item, Undecodable):
                await d.admit_undecodable(
                    modem=name, identity=item.identity, raw_pdu=item.raw, error=item.error
                )
            else:  # a status report: the outbox does not rely on them (twilio-commands.md)
                log.debug("%s: status report %s (matched: %s)", name, item.identity, item.matched)
            async with self._admitted_changed:
                self._admitted += 1
                self._admitted_changed.notify_all()

        return consume

    @property
    def admitted(self) -> int:
        """Items the consumer accepted (journaled) since the start."""
        return self._admitted

    async def wait_admitted(self, count: int) -> None:
        """Until the consumer has accepted ``count`` items since the start."""
        async with self._admitted_changed:
            await self._admitted_changed.wait_for(lambda: self._admitted >= count)

    async def settle(self) -> None:
        """Until nothing admitted is left to process or send (tests, the demo)."""
        assert self.dispatcher is not None and self.outbox is not None
        await self.dispatcher.drain()
        await self.outbox.drain()

    # --- device-initiated messages --------------------------------------------------

    @property
    def report_modem(self) -> ModemLink:
        """The module device-wide reports go out on: the first ``[[modem]]``."""
        return next(iter(self.links.values()))

    async def report_address(self, link: ModemLink) -> str:
        """The product's short code for a module; under ``auto``, the product
        of the newest Command that came in on it (Programmable Wireless when
        none has)."""
        fc = self.config.framing(link.config)
        if fc.product is ProductSetting.SUPER_SIM:
            return reply_address(Product.SUPER_SIM, fc)
        if fc.product is ProductSetting.AUTO and self.worker is not None:
            for e in await self.worker.call(Journal.list_entries, limit=200):
                if e.kind is Kind.COMMAND and e.modem == link.name and e.product:
                    return reply_address(Product(e.product), fc)
        return reply_address(Product.PROGRAMMABLE_WIRELESS, fc)

    async def _status_fields(self, link: ModemLink) -> list[Field]:
        act = self.registry.get("status")
        if act is None or self.hal is None or self.worker is None:
            return []
        ctx = ActionContext(
            hal=self.hal,
            config=self.config,
            counters=self.counters,
            registry=self.registry,
            outputs=_Outputs(self.worker),
            level=Level.SIGNED,
            modem_name=link.name,
            modem=link.status,
            version=__version__,
            levels=self.config.security.levels,
        )
        try:
            async with asyncio.timeout(act.spec.timeout):
                value = await act.fn(ctx)
        except Exception as exc:
            log.warning("report: status unavailable: %s", type(exc).__name__)
            return []
        return list(value) if isinstance(value, list) else []

    async def report(self, kind: str, fields: list[Field], link: ModemLink | None = None) -> int:
        """Queue one device-initiated message (``boot``, ``report``, ``event``)."""
        assert self.reporter is not None
        link = link or self.report_modem
        to = await self.report_address(link)
        return await self.reporter.send(kind, fields, modem=link.name, to=to)

    async def _bring_up(self) -> None:
        """The boot message once the first module is ready, then ready."""
        link = self.report_modem
        try:
            await link.stack.wait_ready()
            if not self.device_id:
                self.device_id = link.stack.session.identity.iccid
            if self.config.reports.boot:
                await self.report("boot", await self._status_fields(link), link)
        except SimProblem as exc:
            log.error("%s: the SIM needs a person (%s): no boot message", link.name, exc.kind)
        except JournalError as exc:
            log.error("boot message: journal failed: %s", exc)
        finally:
            self._ready.set()

    async def _scheduled_reports(self) -> None:
        every = self.config.reports.status_every
        await self._ready.wait()  # the boot message first
        while True:
            await asyncio.sleep(every)
            link = self.report_modem
            await self.report("report", await self._status_fields(link), link)

    async def _prune_daily(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_EVERY)
            assert self.worker is not None
            with contextlib.suppress(JournalError):
                n = await self.worker.call(Journal.prune)
                if n:
                    log.info("journal: %d settled entries older than 30 days pruned", n)

    async def _edge_events(self) -> None:
        assert self.hal is not None
        async with self.hal.gpio.edges() as edges:
            async for ev in edges:
                value = "on" if ev.value else "off"
                await self.report("event", [Field(f"{ev.line}={value}", 10)])

    async def _sensor_events(self) -> None:
        assert self.hal is not None
        watches = {n: ThresholdWatch(t) for n, t in self.config.reports.thresholds.items()}
        while True:
            for name, watch in watches.items():
                try:
                    reading = await self.hal.sensors.read(name)
                except _hal.HalError as exc:
                    log.warning("sensor %s: %s", name, exc)
                    continue
                band = watch.update(float(reading.value))
                if band is None:
                    continue
                t = watch.threshold
                limit = t.above if band is Band.ABOVE else t.below
                what = band.value if band is Band.NORMAL else f"{band.value} {limit:g}"
                await self.report(
                    "event", [Field(f"{name}={reading.value}{reading.unit}", 10), Field(what, 9)]
                )
            await asyncio.sleep(self.config.reports.sensor_every)

    def _registration_hook(self, link: ModemLink) -> Callable[[Any], None]:
        """Registration URCs (TS 27.007 §7.2): lost, and back after at least
        ``signal_lost_after`` seconds -> one event on that module."""

        def hook(urc: Any) -> None:
            if urc.name not in ("+CREG", "+CGREG", "+CEREG", "+C5GREG"):
                return
            now = asyncio.get_running_loop().time()
            registered = link.stack.session.registered
            self.changed.set()
            if not registered:
                self._lost_at.setdefault(link.name, now)
                return
            lost = self._lost_at.pop(link.name, None)
            if lost is None or not self.config.reports.events or self.state != "running":
                return
            if now - lost >= self.config.reports.signal_lost_after:
                fields = [Field(f"signal back after {duration(now - lost)}", 10)]
                self._spawn(self._report_quietly("event", fields, link), "signal-event")

        return hook

    async def _report_quietly(self, kind: str, fields: list[Field], link: ModemLink) -> None:
        try:
            await self.report(kind, fields, link)
        except JournalError as exc:
            log.error("report: journal failed: %s", exc)

    # --- status ---------------------------------------------------------------------

    async def heartbeat(self) -> bool:
        """The watchdog's health check: one FULL write through the journal
        worker (the worker thread is alive and the file accepts a commit).
        Raises the journal's error when it does not; called once per watchdog
        round, so at most one fsync per ping interval."""
        if self.worker is None:
            return False
        await self.worker.call(Journal.heartbeat)
        return True

    def queue_depths(self) -> dict[str, int]:
        """Replies waiting in the outbox, per module."""
        if self.outbox is None:
            return {}
        return self.outbox.depths()

    def status(self) -> dict[str, Any]:
        """A snapshot for ``sms-bridge status``: state, modules, counters (no keys,
        no bodies)."""
        modems: dict[str, Any] = {}
        for name, link in self.links.items():
            s = link.stack.session
            sig = s.signal
            modems[name] = {
                "port": link.config.port,
                "ready": s.ready.is_set(),
                "sim_problem": s.sim_problem.kind.value if s.sim_problem is not None else None,
                "registered": s.registered,
                "registration": _registration(s.registration),
                "signal_dbm": sig.dbm if sig is not None else None,
                "profile": s.profile.name,
                "model": s.identity.model or None,
                "imei": s.identity.imei or None,
                "iccid": s.identity.iccid or None,
                "failure": str(link.stack.failure) if link.stack.failure else None,
            }
        now = self._clock()
        return {
            "state": self.state,
            "version": __version__,
            "device_id": self.device_id or None,
            "signed": self.keys is not None,
            "journal": self.config.bridge.journal,
            "uptime_s": round(now - self.started_at, 1) if self.started_at else 0.0,
            "admitted": self._admitted,
            "modems": modems,
            "counters": self.counters.snapshot(),
        }
