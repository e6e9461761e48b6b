"""The outbox: journaled replies and reports out through the SMS service.

The service implements :class:`ReplySender` over its modem stack (one per
``[[modem]]``); the outbox drives each reply through the journal's states
(docs/bridge.md, "Journal")::

    reply_queued --mark_sending (FULL)--> sending --send--> mark_sent(tp_mr) (NORMAL)
                                             |--fails, times out--> reply_queued (retry later)
                                             '--max attempts------> send_failed

A reply for a module with nothing queued is queued and marked ``sending``
in one transaction by the dispatcher (``Journal.complete_and_claim``): one
commit fewer on the path to ``AT+CMGS``, whether it goes at once or right
after the reply in flight.

``mark_sending`` is durable before the PDU is handed to the module, so a
crash between ``AT+CMGS`` and ``mark_sent`` leaves ``sending``: the next
start sends the *same* journaled reply again (its signature's counter is
the reference the server drops a duplicate by) and the journal counts it in
``resends``. Any failure of :meth:`ReplySender.send` -- an error, a hang past
:func:`send_timeout`, an exception raised after the PDU left -- has an
unknown outcome and is retried the same way, at most :data:`MAX_ATTEMPTS`
sends in all, after :data:`RETRY_DELAYS`; then ``send_failed``.

Deferred effects (``reboot``) run only after ``mark_sent`` committed; a
reply that ends ``send_failed`` drops its effects (the server was never
told, so the device does not act). Effects live in memory: a restart
between the reply's queueing and ``mark_sent`` sends the reply again but
does not run the effect (at most once, never a reboot loop).

One task per module: a module that hangs delays only its own replies.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from modem import timing as modem_timing

from .actions.context import Counters, Effect
from .journal import Entry, Journal, JournalError
from .lanes import Lane
from .worker import JournalCalls

log = logging.getLogger("bridge.outbox")

#: How much longer than the modem layer's own deadlines for one send (the
#: wait for registration, ``modem.timing.REGISTRATION_WAIT``, then the
#: ``AT+CMGS`` answer, ``modem.timing.SEND_TIMEOUT``: up to 3 min on u-blox
#: SARA-R4; TS 27.005 §3.5.1 gives no bound) the outbox lets a send run before
#: it takes it for hung (:func:`send_timeout`).
SEND_TIMEOUT_MARGIN = 60.0


def send_timeout() -> float:
    """How long one send may take: the modem layer's deadlines for it and
    :data:`SEND_TIMEOUT_MARGIN`, read when used (5 min by default). A send cut
    short while the module still works on it is an outcome unknown, sent again."""
    return modem_timing.REGISTRATION_WAIT + modem_timing.SEND_TIMEOUT + SEND_TIMEOUT_MARGIN


#: Sends of one reply in all, before ``send_failed``.
MAX_ATTEMPTS = 3
#: Seconds to wait before the second, third... send of a reply.
RETRY_DELAYS = (5.0, 30.0, 120.0)
#: How long stop() lets a send in flight finish before cancelling it.
STOP_GRACE = 10.0


def _claim(j: Journal, entry_id: int) -> tuple[Entry, int] | None:
    """In the journal thread, one hand-off: the entry as it was and its resend
    count after ``mark_sending`` (FULL, before ``AT+CMGS``), or None when
    there is nothing to send (settled meanwhile, or no reply)."""
    e = j.get(entry_id, transitions=False)
    if not e.to_send:
        return None
    return e, j.mark_sending(entry_id)


class _Replies(asyncio.Queue[int]):
    """A module's queue of replies to send, whose head can be seen (the
    deque ``_queue`` is where :class:`asyncio.Queue` and its subclasses in
    the standard library keep their items)."""

    _queue: collections.deque[int]

    def peek(self) -> int | None:
        """The next reply to be taken, or None."""
        return self._queue[0] if self._queue else None


class ReplySender(Protocol):
    """Sends one SMS on one module; returns the TP-MR of each part (TS 23.040
    §9.2.3.6, from ``+CMGS: <mr>``, TS 27.005 §3.5.1). A reply is always one
    SMS, so one TP-MR. Raises anything on failure: the outbox treats every
    failure as "outcome unknown"."""

    async def send(self, to: str, content: str | bytes, *, binary: bool) -> tuple[int, ...]: ...


class Outbox:
    """Sends journaled replies, one task per module (module doc)."""

    def __init__(
        self,
        worker: JournalCalls,
        senders: Mapping[str, ReplySender],
        *,
        counters: Counters | None = None,
        send_timeout: float | None = None,
        max_attempts: int | None = None,
        retry_delays: Sequence[float] | None = None,
        stop_grace: float | None = None,
    ) -> None:
        self._worker = worker
        self._senders = dict(senders)
        self.counters = counters if counters is not None else Counters()
        self._send_timeout = send_timeout
        self._max_attempts = max_attempts
        self._retry_delays = retry_delays
        self._stop_grace = stop_grace
        self._queues: dict[str, _Replies] = {m: _Replies() for m in self._senders}
        self._pending: set[int] = set()
        self._effects: dict[int, list[Effect]] = {}
        self._workers: dict[str, Lane[int]] = {}
        #: replies claimed (``sending``) when they were queued: their first claim
        self._claimed: dict[int, tuple[Entry, int]] = {}
        #: what the Command did, for the one log line of its reply (from submit)
        self._notes: dict[int, str] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    # timing defaults are read when used, so one place tunes them
    @property
    def send_timeout(self) -> float:
        return send_timeout() if self._send_timeout is None else self._send_timeout

    @property
    def stop_grace(self) -> float:
        return STOP_GRACE if self._stop_grace is None else self._stop_grace

    @property
    def max_attempts(self) -> int:
        return MAX_ATTEMPTS if self._max_attempts is None else self._max_attempts

    def _delay(self, attempt: int) -> float:
        delays = RETRY_DELAYS if self._retry_delays is None else tuple(self._retry_delays)
        if not delays:
            return 0.0
        return delays[min(attempt - 1, len(delays) - 1)]

    # --- feeding ---------------------------------------------------------------

    def depths(self) -> dict[str, int]:
        """Replies waiting per module (for ``sms-bridge status`` and the metrics)."""
        return {name: q.qsize() for name, q in self._queues.items()}

    def ready(self, modem: str) -> bool:
        """True when a reply for ``modem`` would be the next one sent: the
        module has a running task and nothing queued. The dispatcher then has
        the reply claimed in the transaction that queues it
        (:meth:`~bridge.journal.Journal.complete_and_claim`): sent at once
        when nothing is in flight, else right after the reply in flight,
        whose ``mark_sent`` then claims nothing. One claimed reply waits per
        module at most, as with ``mark_sent_and_claim``, and none behind a
        reply with a deferred effect (a reboot may come first)."""
        q = self._queues.get(modem)
        w = self._workers.get(modem)
        if q is None or w is None or not q.empty():
            return False
        current = w.current
        return current is None or not self._effects.get(current)

    def submit(
        self,
        entry_id: int,
        modem: str,
        effects: Sequence[Effect] = (),
        claimed: tuple[Entry, int] | None = None,
        note: str = "",
    ) -> None:
        """Queue a journaled reply (``reply_queued`` or ``sending``) for its module.

        ``note`` (what the Command did, ``ping done``) goes into the log line
        of the reply's outcome: one line per Command answered.

        ``claimed``: what :meth:`~bridge.journal.Journal.complete_and_claim`
        returned (the reply is already ``sending``; its first attempt needs no
        claim). An entry already pending is not queued twice (its effects are
        added). An entry for a module with no sender is left in the journal
        and logged (a claimed one is resent at the next start, counted).
        """
        if claimed is not None:
            self._claimed[entry_id] = claimed
        if note:
            self._notes[entry_id] = note
        if effects:
            self._effects.setdefault(entry_id, []).extend(effects)
        if entry_id in self._pending:
            return
        q = self._queues.get(modem)
        if q is None:
            log.error("outbox: entry %d is for module %r, which has no sender", entry_id, modem)
            self.counters.inc("no_sender")
            return
        self._pending.add(entry_id)
        self._idle.clear()
        q.put_nowait(entry_id)

    async def recover(self) -> int:
        """Queue what the journal says is still to send (``reply_queued``, and
        ``sending`` with an unknown outcome); returns how many."""
        rec = await self._worker.call(Journal.recovery)
        for e in (*rec.send, *rec.resend):
            self.submit(e.id, e.modem)
        return len(rec.send) + len(rec.resend)

    async def drain(self) -> None:
        """Wait until every submitted reply is settled (sent, failed or parked)."""
        await self._idle.wait()

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Queue the journal's unsent replies and start one task per module."""
        if self._workers:
            raise RuntimeError("outbox already started")
        await self.recover()
        for modem, q in self._queues.items():
            settle = functools.partial(self._settle, modem)
            self._workers[modem] = Lane(f"outbox-{modem}", q, settle)

    async def stop(self) -> None:
        """Stop every module's task; a send in flight may finish within
        :attr:`stop_grace` seconds so its outcome is journaled, else it is
        cancelled and left ``sending`` (resent at the next start, counted).
        Replies still queued stay ``reply_queued`` for the next start."""
        workers = list(self._workers.values())
        self._workers.clear()
        grace = self.stop_grace
        for cut in await asyncio.gather(*(w.stop(grace) for w in workers)):
            if cut is not None:
                log.warning("outbox: entry %d: send cut at stop; resent at the next start", cut)
        # claimed with the last reply's outcome (or when queued), never sent:
        # back to reply_queued, so the next start sends them as first sends
        for entry_id in list(self._claimed):
            self._claimed.pop(entry_id, None)
            try:
                await self._worker.call(Journal.unclaim, entry_id)
            except JournalError as exc:  # left sending: resent at the next start, counted
                log.warning("outbox: entry %d: claim not taken back: %s", entry_id, exc)

    async def __aenter__(self) -> Outbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _done(self, entry_id: int) -> None:
        self._pending.discard(entry_id)
        if not self._pending:
            self._idle.set()

    async def _settle(self, modem: str, entry_id: int) -> None:
        """Send one reply until it is sent or failed for good."""
        try:
            while True:
                retry = await self._attempt(modem, entry_id)
                if retry is None:
                    return
                await asyncio.sleep(retry)
        except JournalError as exc:
            log.error("outbox: entry %d: journal failed: %s", entry_id, exc)
            self.counters.inc("journal_errors")
        except Exception as exc:  # a bug: never stop the outbox
            log.error("outbox: entry %d: %s", entry_id, type(exc).__name__)
            self.counters.inc("outbox_errors")
        finally:
            self._claimed.pop(entry_id, None)
            self._notes.pop(entry_id, None)
            self._effects.pop(entry_id, None)  # settled: an effect never outlives its reply
            self._done(entry_id)

    async def _attempt(self, modem: str, entry_id: int) -> float | None:
        """One send; the delay before the next attempt, or None when settled."""
        claimed = self._claimed.pop(entry_id, None)
        if claimed is None:
            claimed = await self._worker.call(_claim, entry_id)
        if claimed is None:
            return None
        e, after = claimed
        assert e.reply is not None and e.reply_to is not None  # checked by _claim
        resends = e.resends
        if after > resends:
            self.counters.inc("resends")
            log.warning("outbox: entry %d: outcome unknown after a restart, sent again", entry_id)
        attempt = e.send_attempts + 1
        binary = isinstance(e.reply, bytes)
        try:
            async with asyncio.timeout(self.send_timeout):
                mrs = await self._senders[modem].send(e.reply_to, e.reply, binary=binary)
            if not mrs:
                raise ValueError("the sender returned no TP-MR")
        except Exception as exc:
            why = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            if attempt >= self.max_attempts:
                await self._worker.call(Journal.mark_send_failed, entry_id, f"{why} x{attempt}")
                self.counters.inc("send_failed")
                dropped = self._effects.pop(entry_id, [])
                log.error(
                    "outbox: entry %d to %s: send failed (%s) after %d attempts%s",
                    entry_id,
                    e.reply_to,
                    why,
                    attempt,
                    f", {len(dropped)} deferred effect(s) dropped" if dropped else "",
                )
                return None
            await self._worker.call(Journal.requeue, entry_id, why)
            self.counters.inc("send_retries")
            log.warning(
                "outbox: entry %d to %s: send attempt %d failed (%s), retrying",
                entry_id,
                e.reply_to,
                attempt,
                why,
            )
            return self._delay(attempt)
        nxt = self._queues[modem].peek()
        if (
            nxt is not None
            and nxt not in self._claimed
            and not self._effects.get(entry_id)  # a deferred effect (reboot) may stop us first
        ):
            # the next reply's claim rides on this one's outcome: one hand-off
            claimed_next = await self._worker.call(
                Journal.mark_sent_and_claim, entry_id, mrs[0], nxt
            )
            if claimed_next is not None:
                self._claimed[nxt] = claimed_next
        else:
            await self._worker.call(Journal.mark_sent, entry_id, mrs[0])
        self.counters.inc("sent")
        note = self._notes.pop(entry_id, "")
        log.info(
            "entry %d: %sreply sent to %s, mr=%d",
            entry_id,
            f"{note}, " if note else "",
            e.reply_to,
            mrs[0],
        )
        # the effects stay listed while they run: ready() claims nothing behind them
        for effect in list(self._effects.get(entry_id, ())):
            try:
                await effect()
                self.counters.inc("effects_run")
            except Exception as exc:
                self.counters.inc("effects_failed")
                log.error("outbox: entry %d: deferred effect failed: %s", entry_id, exc)
        self._effects.pop(entry_id, None)
        return None
