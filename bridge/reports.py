"""Device-initiated messages: the boot message, scheduled reports and events.

The other half of machine-to-machine SMS (docs/bridge.md, "Device-initiated
messages"). Each message goes the way a reply goes -- the same journal, the
same outbox, the same budgets, signed the same way (direction ``U``) -- to
the product's short code (2936 for Programmable Wireless, 000 for Super
SIM), where Twilio turns it into a ``from_sim`` Command:

* **boot**: ``boot`` and the ``status`` fields, once the module is ready
  after every start (a device that rebooted on a ``reboot`` Command says it
  is back, as Teltonika routers do);
* **report**: ``report`` and the ``status`` fields every
  ``[reports].status_every`` seconds;
* **event** (``[reports].events``): a GPIO input edge (``event door=on``),
  a sensor crossing a threshold with hysteresis (``event water=31.2°C
  above 30``, then ``event water=29.4°C normal``), and the module's
  registration back after ``signal_lost_after`` seconds or more without it
  (``event signal back after 0h5m``: an SMS cannot leave while the signal
  is lost, so loss and return are one message).

A message over the global reply budget (``[budgets]``, counted by
``Journal.replies_since`` with the replies) is journaled as a rejected
report (``over-budget:...``) and not sent. This module composes and queues;
:mod:`bridge.service` owns the tasks that call it.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import auth
from .actions.context import Counters
from .config import Config, Threshold
from .dispatcher import DAY, HOUR, ReplyQueue
from .journal import Budget, Journal
from .reply import Field, fit
from .worker import JournalCalls

log = logging.getLogger("bridge.reports")

#: A report answers no sender: only the global budgets apply to it.
_NO_LIMIT = 1 << 62

#: Priority of a report's first field (its kind), kept before any other.
PRIORITY_KIND = 50


class Band(enum.StrEnum):
    """Where a watched sensor's value is, with respect to its threshold."""

    NORMAL = "normal"
    ABOVE = "above"
    BELOW = "below"


@dataclass
class ThresholdWatch:
    """A threshold with hysteresis: which band a value is in, given the last band.

    A value at or past ``above`` (``below``) enters that band; it leaves only
    once it is back by more than ``hysteresis``, so a value wandering around
    the threshold gives one event, not one per read.
    """

    threshold: Threshold
    band: Band | None = None

    def classify(self, value: float) -> Band:
        t = self.threshold
        if t.above is not None and value >= t.above:
            return Band.ABOVE
        if t.below is not None and value <= t.below:
            return Band.BELOW
        if self.band is Band.ABOVE and t.above is not None and value > t.above - t.hysteresis:
            return Band.ABOVE
        if self.band is Band.BELOW and t.below is not None and value < t.below + t.hysteresis:
            return Band.BELOW
        return Band.NORMAL

    def update(self, value: float) -> Band | None:
        """The new band when it changed (the first value counts only when it is
        out of the normal band), else None."""
        new = self.classify(value)
        old, self.band = self.band, new
        if old is None:
            return new if new is not Band.NORMAL else None
        return new if new is not old else None


def duration(seconds: float) -> str:
    """``0h5m`` / ``2d3h``: how long, the way ``status`` shows uptime."""
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, _ = divmod(s, 60)
    return f"{d}d{h}h" if d else f"{h}h{m}m"


class Reporter:
    """Composes, budgets, signs and queues device-initiated messages."""

    def __init__(
        self,
        worker: JournalCalls,
        outbox: ReplyQueue,
        *,
        config: Config,
        keys: auth.Keyring | None,
        device_id: Callable[[], str],
        counters: Counters,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._worker = worker
        self._outbox = outbox
        self.config = config
        self.keys = keys
        self._device_id = device_id
        self.counters = counters
        self._clock = clock

    def compose(self, kind: str, fields: Sequence[Field]) -> str:
        """One line, one SMS: the kind first, then the fields, least important
        dropped first; room kept for the signature."""
        items = [Field(kind, PRIORITY_KIND)] + [
            Field(" ".join(f.text.split()), f.priority) for f in fields
        ]
        reserve = auth.TEXT_TRAILER_CHARS + 1 if self.keys is not None else 0
        text = str(fit(items, reserve=reserve).content)
        words = text.split(" ")
        if words and words[-1].startswith("#"):  # would read as a signature trailer
            words[-1] = "%" + words[-1][1:]
        return " ".join(words)

    async def _over_budget(self) -> str | None:
        """The global budgets, as a Command's are checked: replies queued and
        Commands started but not yet answered (``Journal.over_budget``)."""
        b = self.config.budgets
        now = self._clock()
        budget = Budget(
            hour_since=now - HOUR,
            day_since=now - DAY,
            sender="",
            global_per_hour=b.global_per_hour,
            global_per_day=b.global_per_day,
            sender_per_hour=_NO_LIMIT,
            sender_per_day=_NO_LIMIT,
        )
        return await self._worker.call(Journal.over_budget, budget)

    async def send(self, kind: str, fields: Sequence[Field], *, modem: str, to: str) -> int:
        """Journal one message (``reply_queued``, FULL) and hand it to the outbox;
        over budget: journaled rejected, not sent. Returns the entry id."""
        text = self.compose(kind, fields)
        over = await self._over_budget()
        if over is not None:
            entry = await self._worker.call(
                Journal.reject_report,
                modem=modem,
                to=to,
                message=text,
                reason=f"over-budget:{over}",
                summary=kind,
            )
            self.counters.inc("over_budget")
            self.counters.inc("reports_over_budget")
            log.warning("entry %d: %s report over budget (%s), not sent", entry, kind, over)
            return entry
        message = text
        if self.keys is not None:
            counter = await self._worker.call(Journal.next_reply_counter)
            message = auth.sign_reply(
                text, keys=self.keys, device_id=self._device_id(), counter=counter
            )
        entry = await self._worker.call(
            Journal.enqueue_report, modem=modem, to=to, message=message, summary=kind
        )
        self.counters.inc("reports")
        self._outbox.submit(entry, modem)
        log.info("entry %d: %s report queued to %s on %s", entry, kind, to, modem)
        return entry
