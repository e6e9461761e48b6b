"""The dispatcher: a journaled Command -> checks -> actions -> one reply in the outbox.

One task per module, each fed by its own queue (the modem reader never
waits for an action): a module's Commands run one at a time in the order
they were journaled, and a slow action on one module holds up no other.
The service's consumer calls :meth:`Dispatcher.admit` for each received SMS:
it frames the SMS, journals it (``Journal.receive``, FULL, with its SID and
identity: the dedupe keys) and queues the entry; once ``admit`` returns the
SMS service may delete the SIM copy. Then, in its module's task, for
each entry (docs/bridge.md, "The dispatcher"):

1. **framing** again from the journaled fields (pure: product, reply
   address, the ``include_sid`` SID taken off);
2. **authentication**: the sender allow-list already held (framing refuses
   any other sender); a signed Command (``bridge.auth``: a text trailer, or
   the binary form's signed bit) is checked against the persisted replay
   window, and the counter with the new window is recorded by
   ``Journal.authenticate`` in the same transaction as its ``ctr:`` dedupe
   key, before anything runs. A signature that fails, or a trailer without
   a key configured, rejects the SMS: **no reply**, the reason journaled,
   counted;
3. **grammar**: text (footer cut, ``;``-separated Commands, typed
   arguments) or the binary form for 8-bit data;
4. **level**: each Command's verb needs its level (open, allow-listed,
   signed; ``[security.levels]`` overrides the action's own); a Command
   above the sender's level rejects the whole SMS without a reply, before
   anything runs;
5. **budgets**: per-sender and global replies per hour and per day
   (``Journal.replies_since``, so a restart resets nothing); over budget is
   rejected, journaled, not run and not answered;
6. ``Journal.start`` (FULL; idempotent when every Command is) and each
   Command in order through the registry, each under its declared timeout.
   A usage error is answered with the usage; an action that raises or times
   out gives an error field; nothing stops the dispatcher;
7. the reply: every Command's fields, ``reply.fit`` into one SMS (least
   important first), signed (direction ``U``) when a key is configured,
   ``Journal.queue_reply`` (FULL), handed to the outbox with any deferred
   effect.

Undecodable PDUs are journaled raw (:meth:`Dispatcher.admit_undecodable`)
and never answered. Restart recovery (:meth:`Dispatcher.recover`, called by
:meth:`Dispatcher.start`): received and not run -> run; executing and
idempotent -> run again; executing and not idempotent -> answered
``interrupted`` without running; ran (done, failed) but no reply queued ->
answered ``done`` / ``failed``; queued replies are the outbox's.

One dispatcher per journal: the replay window is read, checked and written
by one task at a time (a lock across the modules' tasks), and the reply
budgets count the Commands other modules have started and not yet answered
(``Journal.start`` reserves, docs/bridge.md "Journal", "Reservations"). Logs: one line per
event; no key, signature or Command body at info level (verbs and reasons
only).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import hal as _hal
from pdu.dcs import Alphabet

from . import auth, framing, grammar
from .actions.context import (
    ActionContext,
    Counters,
    Effect,
    ModemStatus,
    as_result,
)
from .actions.registry import Action, Registry
from .config import Config
from .grammar import Command, GrammarError, Level
from .inbound import Incoming
from .journal import Budget, Entry, Journal, JournalError, Kind, Receipt, State
from .lanes import Lane
from .reply import BinaryField, Field, fit, fit_binary
from .worker import JournalCalls

log = logging.getLogger("bridge.dispatcher")

#: Octet 0 of a binary reply: high nibble 0xB (a reply), version 0; bit 0 set when signed.
BINARY_REPLY_MAGIC = 0xB0
#: Status octet of each Command in a binary reply.
STATUS_OK, STATUS_FAILED, STATUS_USAGE, STATUS_TIMEOUT, STATUS_INTERRUPTED = 0, 1, 2, 3, 4
#: How the log line of a queued reply names each Command's outcome.
_OUTCOMES = {STATUS_OK: "done", STATUS_FAILED: "failed", STATUS_TIMEOUT: "timed out"}
#: Bytes of one Command's text in a binary reply (room for the header and trailer).
BINARY_TEXT_MAX = 120
#: Priority of the field that says a Command failed (kept before any detail).
PRIORITY_ERROR = 8
#: Priority added to each Command's first field (so ``a; b`` keeps both heads).
PRIORITY_HEAD = 20

#: Reasons that are never answered (a rerun that no longer passes its checks).
_UNANSWERED = ("auth:", "level:", "over-budget:", "unknown-sender", "malformed-entry")
#: How many done/failed entries recovery looks at for a reply never queued.
RECOVERY_SCAN = 10_000

#: How long stop() lets the Command in flight finish before cancelling it
#: (systemd's default stop timeout is 90 s; a cancelled action is left
#: ``executing`` for recovery: run again if idempotent, else "interrupted").
STOP_GRACE = 10.0

HOUR = 3600.0
DAY = 86400.0


class ReplyQueue(Protocol):
    """Where queued replies go (the :class:`~bridge.outbox.Outbox`)."""

    def ready(self, modem: str) -> bool: ...

    def submit(
        self,
        entry_id: int,
        modem: str,
        effects: Sequence[Effect] = (),
        claimed: tuple[Entry, int] | None = None,
        note: str = "",
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class _Done:
    """One Command's outcome: its reply fields, binary status and effect."""

    fields: tuple[Field, ...]
    status: int
    effect: Effect | None = None


class _Reject(Exception):
    """Inside processing: reject the entry with ``reason`` (no reply)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def hal_names(device: _hal.Hal) -> grammar.Names:
    """The names the grammar's :class:`~bridge.grammar.NameArg` kinds accept:
    ``gpio`` (every line), ``output``, ``sensor``, ``script``."""
    cfg = device.config
    return {
        "gpio": frozenset(cfg.gpio),
        "output": frozenset(n for n, c in cfg.gpio.items() if c.direction == "output"),
        "sensor": frozenset(cfg.sensors),
        "script": frozenset(cfg.scripts),
    }


class _Outputs:
    def __init__(self, worker: JournalCalls) -> None:
        self._worker = worker

    async def set_desired(self, line: str, value: int) -> None:
        await self._worker.call(Journal.set_desired_output, line, value)


def _clean_text(text: str) -> str:
    """One line of reply text (a signed text is one line; bridge.auth)."""
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class _Signer:
    """A reply signed with the counter the journal takes for it, in the
    transaction that takes it; an object, not a closure, so that it also goes
    to a journal in a process of its own (bridge.journal_process) by pickle."""

    content: str | bytes
    keys: auth.Keyring
    device_id: str

    def __call__(self, counter: int) -> str | bytes:
        return auth.sign_reply(
            self.content, keys=self.keys, device_id=self.device_id, counter=counter
        )


class Dispatcher:
    """Commands from the journal to the outbox (module doc)."""

    def __init__(
        self,
        worker: JournalCalls,
        registry: Registry,
        *,
        config: Config,
        device: _hal.Hal,
        outbox: ReplyQueue,
        device_id: str,
        keys: auth.Keyring | None = None,
        framing_configs: Mapping[str, framing.FramingConfig] | None = None,
        modems: Mapping[str, ModemStatus] | None = None,
        counters: Counters | None = None,
        clock: Callable[[], float] = time.time,
        version: str = "",
        stop_grace: float | None = None,
    ) -> None:
        self._worker = worker
        self._stop_grace = stop_grace
        self.registry = registry
        self._specs = registry.specs
        self.config = config
        self.hal = device
        self._names = hal_names(device)
        self._outbox = outbox
        self.device_id = device_id
        self.keys = keys
        self._framing = dict(framing_configs or {})
        self._default_framing = config.framing()
        self._modems = dict(modems or {})
        self.counters = counters if counters is not None else Counters()
        self._clock = clock
        self.version = version
        self._outputs = _Outputs(worker)
        #: each module's entries to process, in order, and the task that does
        self._lanes: dict[str, asyncio.Queue[int]] = {}
        self._workers: dict[str, Lane[int]] = {}
        self._started = False
        self._queued: set[int] = set()
        #: the replay window's read, check and write, one module at a time
        self._auth_lock = asyncio.Lock()
        #: entries as admit() journaled them, so _process need not read them back
        self._fresh: dict[int, Entry] = {}

    @property
    def stop_grace(self) -> float:
        """Seconds :meth:`stop` lets the entry in flight finish (read when used)."""
        return STOP_GRACE if self._stop_grace is None else self._stop_grace

    # --- admission (the service's consumer) -------------------------------------

    def framing_for(self, modem: str) -> framing.FramingConfig:
        return self._framing.get(modem, self._default_framing)

    async def admit(self, msg: Incoming, *, modem: str) -> Receipt:
        """Journal one received SMS and queue it; the SIM copy may go once this returns.

        Framing refusals (unknown sender, oversize body, binary on Super SIM)
        and incomplete concatenations are journaled and rejected here, never
        answered. A duplicate (same SID or identity) is counted and not
        queued. :class:`~bridge.journal.JournalError` when the journal
        failed: the SMS was *not* recorded, keep it on the SIM.
        """
        err: str | None = None
        sid: str | None = None
        product: str | None = None
        try:
            framed = framing.frame(msg.sender, msg.body, self.framing_for(modem), coding=msg.coding)
            sid, product = framed.sid, framed.product.value
        except framing.FramingError as exc:
            err = exc.reason
        if err is None and not msg.complete:
            err = "incomplete"
        # first: the SIM copy's delete (and the modem line) waits on this one
        receipt = await self._worker.call_first(
            Journal.receive,
            modem=modem,
            sender=msg.sender,
            body=msg.body,
            identity=msg.identity,
            part_ids=msg.part_ids,
            sid=sid,
            product=product,
            coding=msg.coding.value,
        )
        if receipt.duplicate:
            self.counters.inc("duplicates")
            log.info("entry %d: duplicate from %s (%s)", receipt.entry_id, msg.sender, modem)
            return receipt
        self.counters.inc("received")
        if err is not None:
            await self._reject(receipt.entry_id, err, msg.sender)
            return receipt
        log.info(
            "entry %d: received from %s on %s%s",
            receipt.entry_id,
            msg.sender,
            modem,
            f" sid={sid}" if sid else "",
        )
        self.submit(receipt.entry_id, modem, receipt.entry)
        return receipt

    async def admit_undecodable(
        self, *, modem: str, identity: str, raw_pdu: str, error: str
    ) -> Receipt:
        """Journal a PDU the codec refused, raw, rejected; never answered."""
        receipt = await self._worker.call_first(
            Journal.receive_undecodable,
            modem=modem,
            identity=identity,
            raw_pdu=raw_pdu,
            error=error,
        )
        if not receipt.duplicate:
            self.counters.inc("undecodable")
            log.warning("entry %d: undecodable PDU on %s: %s", receipt.entry_id, modem, error)
        return receipt

    async def known(self, part_id: str) -> bool:
        """The SMS service's ``known`` hook: True when the message this SMS part
        belongs to is journaled (the part is then deleted from the SIM, not held)."""
        return await self._worker.call_first(Journal.has_part, part_id)

    def submit(self, entry_id: int, modem: str, entry: Entry | None = None) -> None:
        """Queue a journaled entry for its module's task (once); ``entry`` is
        the entry as just journaled, if the caller has it (saves reading it back)."""
        if entry_id in self._queued:
            return
        self._queued.add(entry_id)
        if entry is not None:
            self._fresh[entry_id] = entry
        lane = self._lanes.get(modem)
        if lane is None:
            lane = self._lanes[modem] = asyncio.Queue()
            if self._started:
                self._spawn(modem, lane)
        lane.put_nowait(entry_id)

    @property
    def queued(self) -> int:
        """Entries queued or in flight, every module."""
        return len(self._queued)

    # --- lifecycle ----------------------------------------------------------------

    async def recover(self) -> None:
        """Restart recovery (module doc): interrupted ones answered now, the
        ones to run (again) queued before anything new."""
        rec = await self._worker.call(Journal.recovery)
        for e in rec.interrupted:
            await self._answer_interrupted(e)
        for e in await self._ran_unanswered():
            await self._answer_lost(e)
        for e in sorted((*rec.run, *rec.rerun), key=lambda x: x.id):
            if e.state is State.EXECUTING:
                self.counters.inc("rerun")
                log.warning("entry %d: was executing at the last stop; idempotent, run again", e.id)
                # its reply counts against the budgets while it runs again, as
                # when it started (the reservation was lost with the process)
                await self._worker.call(Journal.reserve, e.id, e.sender or "")
            self.submit(e.id, e.modem)

    async def start(self) -> None:
        """Recover, then start the modules' tasks."""
        if self._started:
            raise RuntimeError("dispatcher already started")
        await self.recover()
        self._started = True
        for modem, lane in self._lanes.items():
            self._spawn(modem, lane)

    def _spawn(self, modem: str, lane: asyncio.Queue[int]) -> None:
        self._workers[modem] = Lane(
            f"dispatcher:{modem}", lane, self.process, functools.partial(self._processed, lane)
        )

    async def stop(self) -> None:
        """Stop the tasks. The entry in flight on each module may finish within
        :attr:`stop_grace` seconds (all modules at once), else it is cancelled
        and left ``executing`` for recovery; entries still queued stay
        ``received`` and run at the next start."""
        self._started = False
        workers = list(self._workers.values())
        self._workers.clear()
        grace = self.stop_grace
        for cut in await asyncio.gather(*(w.stop(grace) for w in workers)):
            if cut is not None:  # its journal state, ``executing`` at worst, is what recovery reads
                log.warning("entry %d: stopped mid-action; recovery decides at the next start", cut)

    async def __aenter__(self) -> Dispatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def drain(self) -> None:
        """Wait until every queued entry, on every module, has been processed."""
        while self._queued:  # left in the same step as each lane's task_done
            for lane in list(self._lanes.values()):
                await lane.join()

    def _processed(self, lane: asyncio.Queue[int], entry_id: int) -> None:
        self._queued.discard(entry_id)
        self._fresh.pop(entry_id, None)
        lane.task_done()

    # --- one entry ----------------------------------------------------------------

    async def process(self, entry_id: int) -> None:
        """Take one journaled entry as far as it goes. Never raises (but
        cancellation): a journal failure leaves the entry where it is for the
        next start; anything else is logged and counted."""
        try:
            await self._process(entry_id)
        except JournalError as exc:
            self.counters.inc("journal_errors")
            log.error("entry %d: journal failed, left for recovery: %s", entry_id, exc)
        except Exception as exc:  # a bug; the dispatcher goes on
            self.counters.inc("dispatch_errors")
            log.error("entry %d: internal error %s", entry_id, type(exc).__name__)
            with contextlib.suppress(JournalError):
                e = await self._worker.call(Journal.get, entry_id)
                if e.state is State.RECEIVED:
                    await self._reject(entry_id, "internal-error", e.sender)

    async def _reject(self, entry_id: int, reason: str, sender: str | None) -> None:
        await self._worker.call(Journal.reject, entry_id, reason)
        self.counters.inc("rejected")
        self.counters.inc(f"rejected:{reason}")
        if reason.startswith(("auth:", "level:")):
            self.counters.inc("auth_failures")
        log.warning("entry %d: rejected (%s), not answered; sender %s", entry_id, reason, sender)

    async def _process(self, entry_id: int) -> None:
        e = self._fresh.pop(entry_id, None)
        if e is None:
            e = await self._worker.call(Journal.get, entry_id, transitions=False)
        if e.kind is not Kind.COMMAND:
            return
        rerun = e.state is State.EXECUTING
        if not (e.state is State.RECEIVED or (rerun and e.idempotent)):
            return  # already settled (a duplicate submission)
        try:
            framed = self._frame(e)
            payload, level = await self._authenticate(e, framed)
            parsed = self._parse(payload)
            ctx = self._context(e, level)
            self._check_levels(parsed, ctx)
            commands = [p for p in parsed if isinstance(p, Command)]
            if not rerun and not commands:  # answered with the usage: a reply's budget
                await self._check_budgets(e)
        except _Reject as r:
            if rerun:  # checked before it first ran: cannot fail now but a config change
                await self._worker.call(Journal.finish, e.id, ok=False, reason=r.reason)
                await self._worker.call(Journal.release, e.id)  # never answered
                self.counters.inc("failed")
                log.error("entry %d: no longer passes its checks (%s)", e.id, r.reason)
                return
            await self._reject(e.id, r.reason, e.sender)
            return
        verbs = " ".join(c.verb.replace(" ", "-") for c in commands) or None
        done: list[_Done] = []
        if commands:
            idempotent = all(self._action(c).idempotent(ctx, c.args) for c in commands)
            if not rerun:  # the budgets checked in the same transaction
                over = await self._worker.call(
                    Journal.start,
                    e.id,
                    idempotent=idempotent,
                    summary=verbs,
                    budget=self._budget(e),
                )
                if over is not None:
                    self.counters.inc("over_budget")
                    await self._reject(e.id, f"over-budget:{over}", e.sender)
                    return
            for p in parsed:
                done.append(
                    self._grammar_error(p)
                    if isinstance(p, GrammarError)
                    else await self._execute(e.id, p, ctx)
                )
            ok = all(d.status == STATUS_OK for d in done)
            reason = None if ok else "command-failed"
        else:  # every segment is a usage error: answered, nothing ran
            done = [self._grammar_error(p) for p in parsed if isinstance(p, GrammarError)]
            ok, reason = False, "usage"
        counter = "executed" if commands else "usage_errors"
        try:
            content = self._compose(framed, done)
        except Exception:  # a bug: the outcome is still recorded first
            await self._worker.call(Journal.finish, e.id, ok=ok, reason=reason)
            self.counters.inc(counter)
            raise
        # One hand-off, one FULL transaction: the outcome, the reply (signed with
        # the next reply counter, taken in that transaction) and its reference.
        # With the module's outbox idle, the reply is marked sending in the same
        # transaction (its send starts at once): one commit fewer before AT+CMGS.
        claimed: tuple[Entry, int] | None = None
        to, reply = framed.reply_to, self._signer(content)
        if self._outbox.ready(e.modem):
            claimed = await self._worker.call(
                Journal.complete_and_claim, e.id, ok=ok, reason=reason, to=to, reply=reply
            )
        else:
            await self._worker.call(
                Journal.complete, e.id, ok=ok, reason=reason, to=to, reply=reply
            )
        self.counters.inc(counter)
        ran = (
            " ".join(
                f"{p.verb} {_OUTCOMES.get(d.status, 'failed')}"
                if isinstance(p, Command)
                else "usage"
                for p, d in zip(parsed, done, strict=True)
            )
            if commands
            else "usage"
        )
        self._reply_queued(e, framed, done, ran, claimed)

    # --- the checks -----------------------------------------------------------------

    def _frame(self, e: Entry) -> framing.Framed:
        if e.sender is None or e.body is None:
            raise _Reject("malformed-entry")
        try:
            coding = Alphabet(e.coding) if e.coding else None
            return framing.frame(e.sender, e.body, self.framing_for(e.modem), coding=coding)
        except framing.FramingError as exc:
            raise _Reject(exc.reason) from None
        except ValueError:
            raise _Reject("malformed-entry") from None

    async def _authenticate(self, e: Entry, framed: framing.Framed) -> tuple[str | bytes, Level]:
        """(the Command without footer or trailer, the sender's level)."""
        body = framed.body
        message: str | bytes
        if isinstance(body, str):
            message, _footer = grammar.split_footer(body, self.config.bridge.footer_markers)
            try:
                _, trailer = auth.split_text(message)
            except auth.AuthError as exc:
                raise _Reject(f"auth:{exc.reason.value}") from None
            signed = trailer is not None
        else:
            message = body
            signed = grammar.binary_signed(body)
        if not signed:
            return message, Level.ALLOWLISTED
        if self.keys is None:
            raise _Reject("auth:no-key")
        if e.counter is not None:
            # Authenticated before a restart (its counter is recorded): the tag is
            # checked again, the window is not (it already holds this counter).
            v = self._verify(message, e, auth.ReplayWindow(size=self.config.security.replay_window))
            if v.counter != e.counter:  # pragma: no cover - the body is the journal's own
                raise _Reject("auth:counter-mismatch")
            return v.body, Level.SIGNED
        # The window read, the check against it and the new window written, with
        # no other module's Command in between (one would undo the other's bit).
        async with self._auth_lock:
            v = self._verify(message, e, await self._worker.call(Journal.replay_window))
            assert v.window is not None
            if not await self._worker.call(Journal.authenticate, e.id, v.counter, v.window):
                raise _Reject("auth:replayed")
        return v.body, Level.SIGNED

    def _verify(self, message: str | bytes, e: Entry, window: auth.ReplayWindow) -> auth.Verified:
        assert self.keys is not None
        sec = self.config.security
        try:
            return auth.verify_command(
                message,
                keys=self.keys,
                device_id=self.device_id,
                window=window,
                # expiry was checked when the counter was recorded; not again
                now=self._clock() if sec.max_age and e.counter is None else None,
                max_age=sec.max_age or None,
                max_skew=sec.max_skew,
            )
        except auth.AuthError as exc:
            raise _Reject(f"auth:{exc.reason.value}") from None

    def _parse(self, payload: str | bytes) -> tuple[Command | GrammarError, ...]:
        try:
            if isinstance(payload, str):
                return grammar.parse(payload, self._specs, self._names)
            return grammar.decode_binary(payload, self._specs, self._names)
        except grammar.EmptyCommand:
            raise _Reject("empty") from None
        except GrammarError as exc:  # the binary form fails as a whole
            return (exc,)

    def _check_levels(self, parsed: Sequence[Command | GrammarError], ctx: ActionContext) -> None:
        for p in parsed:
            if isinstance(p, Command) and ctx.level_of(p.verb) > ctx.level:
                raise _Reject(f"level:{p.verb.replace(' ', '-')}")

    def _budget(self, e: Entry) -> Budget:
        b = self.config.budgets
        now = self._clock()
        return Budget(
            hour_since=now - HOUR,
            day_since=now - DAY,
            sender=e.sender or "",
            global_per_hour=b.global_per_hour,
            global_per_day=b.global_per_day,
            sender_per_hour=b.sender_per_hour,
            sender_per_day=b.sender_per_day,
        )

    async def _check_budgets(self, e: Entry) -> None:
        """For a reply with nothing to run (usage errors): the budgets alone.
        A Command that runs has them checked by :meth:`Journal.start`."""
        over = await self._worker.call(Journal.over_budget, self._budget(e), e.id)
        if over is not None:
            self.counters.inc("over_budget")
            raise _Reject(f"over-budget:{over}")

    # --- running -------------------------------------------------------------------

    def _context(self, e: Entry, level: Level) -> ActionContext:
        return ActionContext(
            hal=self.hal,
            config=self.config,
            counters=self.counters,
            registry=self.registry,
            outputs=self._outputs,
            level=level,
            modem_name=e.modem,
            modem=self._modems.get(e.modem),
            sender=e.sender or "",
            entry_id=e.id,
            version=self.version,
            levels=self.config.security.levels,
        )

    def _action(self, c: Command) -> Action:
        act = self.registry.get(c.verb)
        assert act is not None  # parsed against this registry's specs
        return act

    @staticmethod
    def _grammar_error(err: GrammarError) -> _Done:
        if isinstance(err, grammar.UsageError):
            text = f"usage: {err.usage}"
        elif isinstance(err, grammar.UnknownVerb):
            text = f"unknown command {err.verb[:20]}; send help"
        else:
            text = f"bad command: {err}"[:60]
        return _Done((Field(text, PRIORITY_ERROR),), STATUS_USAGE)

    async def _execute(self, entry_id: int, c: Command, ctx: ActionContext) -> _Done:
        act = self._action(c)
        spec = act.spec
        try:
            async with asyncio.timeout(spec.timeout):
                value = await act.fn(ctx, **c.args)
            result = as_result(value)
        except TimeoutError:
            self.counters.inc("timeouts")
            log.warning("entry %d: %s timed out after %gs", entry_id, c.verb, spec.timeout)
            return _Done((Field(f"{c.verb}: timeout", PRIORITY_ERROR),), STATUS_TIMEOUT)
        except _hal.HalError as exc:
            self.counters.inc("action_errors")
            log.warning("entry %d: %s failed: %s", entry_id, c.verb, exc)
            return _Done(
                (Field(f"{c.verb}: error", PRIORITY_ERROR), Field(_clean_text(str(exc)), 1)),
                STATUS_FAILED,
            )
        except Exception as exc:
            self.counters.inc("action_errors")
            log.warning("entry %d: %s raised %s", entry_id, c.verb, type(exc).__name__)
            return _Done((Field(f"{c.verb}: error", PRIORITY_ERROR),), STATUS_FAILED)
        log.debug("entry %d: %s done", entry_id, c.verb)  # the reply's line says how it ended
        return _Done(result.fields, STATUS_OK, result.effect)

    # --- the reply ------------------------------------------------------------------

    def _compose_text(self, done: Sequence[_Done]) -> str:
        fields: list[Field] = []
        for i, d in enumerate(done):
            for j, f in enumerate(d.fields or (Field("ok"),)):
                sep = ("; " if i else "") if j == 0 else " "
                pri = f.priority + (PRIORITY_HEAD if j == 0 else 0)
                fields.append(Field(sep + _clean_text(f.text), pri))
        reserve = auth.TEXT_TRAILER_CHARS + 1 if self.keys is not None else 0
        text = str(fit(fields, reserve=reserve, separator="").content).lstrip("; ")
        words = text.split(" ")
        if words and words[-1].startswith("#"):  # would read as a signature trailer
            words[-1] = "%" + words[-1][1:]
        return " ".join(words) or "ok"

    def _compose_binary(self, done: Sequence[_Done]) -> bytes:
        head = BINARY_REPLY_MAGIC | (1 if self.keys is not None else 0)
        items = [BinaryField(bytes((head,)), 1 << 20)]
        for i, d in enumerate(done):
            text = str(fit(list(d.fields), separator=" ").content).encode("utf-8")
            if len(text) > BINARY_TEXT_MAX:
                text = text[:BINARY_TEXT_MAX].decode("utf-8", "ignore").encode("utf-8")
            items.append(BinaryField(bytes((d.status, len(text))) + text, len(done) - i))
        reserve = auth.BINARY_TRAILER_OCTETS if self.keys is not None else 0
        data = fit_binary(items, reserve=reserve).content
        assert isinstance(data, bytes)
        return data

    async def _sign(self, content: str | bytes) -> str | bytes:
        if self.keys is None:
            return content
        counter = await self._worker.call(Journal.next_reply_counter)
        if isinstance(content, str):
            return auth.sign_reply(
                content, keys=self.keys, device_id=self.device_id, counter=counter
            )
        return auth.sign_reply(content, keys=self.keys, device_id=self.device_id, counter=counter)

    def _signer(self, content: str | bytes) -> str | bytes | Callable[[int], str | bytes]:
        """The reply for :meth:`Journal.complete`: as it is, or when keys are
        configured a function of the reply counter that signs it (run in the
        journal's thread, inside the transaction that takes the counter)."""
        if self.keys is None:
            return content
        return _Signer(content, self.keys, self.device_id)

    def _compose(self, framed: framing.Framed, done: Sequence[_Done]) -> str | bytes:
        return self._compose_binary(done) if framed.binary_replies else self._compose_text(done)

    async def _queue_reply(self, e: Entry, framed: framing.Framed, done: Sequence[_Done]) -> None:
        signed = await self._sign(self._compose(framed, done))
        await self._worker.call(Journal.queue_reply, e.id, to=framed.reply_to, reply=signed)
        self._reply_queued(e, framed, done)

    def _reply_queued(
        self,
        e: Entry,
        framed: framing.Framed,
        done: Sequence[_Done],
        ran: str = "",
        claimed: tuple[Entry, int] | None = None,
    ) -> None:
        """Hand the queued reply to the outbox; one log line for the Command's
        outcome and its reply (``ran``: each verb and how it ended)."""
        self.counters.inc("replies")
        effects = [d.effect for d in done if d.effect is not None]
        self._outbox.submit(e.id, e.modem, effects, claimed, ran)
        # the outbox's line for the reply says what ran: one INFO line per Command answered
        log.debug(
            "entry %d: %sreply queued to %s", e.id, f"{ran}, " if ran else "", framed.reply_to
        )

    async def _ran_unanswered(self) -> list[Entry]:
        """Commands that ran (done, failed) but whose reply was never queued: a
        stop between ``finish`` and ``queue_reply``."""
        out: list[Entry] = []
        for st in (State.DONE, State.FAILED):
            found = await self._worker.call(Journal.list_entries, limit=RECOVERY_SCAN, state=st)
            out += [
                e
                for e in found
                if e.kind is Kind.COMMAND
                and e.reply is None
                and not (e.reason or "").startswith(_UNANSWERED)
            ]
        return sorted(out, key=lambda e: e.id)

    async def _answer_lost(self, e: Entry) -> None:
        """The Command ran; its reply was lost with the process: say how it ended."""
        self.counters.inc("replies_lost")
        log.warning("entry %d: ran before the last stop, its reply was lost; answered", e.id)
        try:
            framed = self._frame(e)
        except _Reject:
            return
        if e.state is State.DONE:
            done = _Done((Field("done", PRIORITY_ERROR),), STATUS_OK)
        elif e.reason == "interrupted":
            done = _Done((Field("interrupted", PRIORITY_ERROR),), STATUS_INTERRUPTED)
        else:
            done = _Done((Field("failed", PRIORITY_ERROR),), STATUS_FAILED)
        await self._queue_reply(e, framed, [done])

    async def _answer_interrupted(self, e: Entry) -> None:
        """An entry found executing and not idempotent: never run again, answered."""
        await self._worker.call(Journal.finish, e.id, ok=False, reason="interrupted")
        self.counters.inc("interrupted")
        log.warning("entry %d: interrupted by the last stop; not run again", e.id)
        try:
            framed = self._frame(e)
        except _Reject:
            return  # cannot be framed any more (configuration changed): nobody to answer
        done = [_Done((Field("interrupted", PRIORITY_ERROR),), STATUS_INTERRUPTED)]
        await self._queue_reply(e, framed, done)
