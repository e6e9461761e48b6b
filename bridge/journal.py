"""The journal: every Command's durable state machine, on one SQLite file.

Synchronous (the standard library's :mod:`sqlite3`), no asyncio: the only
room of the bridge that knows SQL. One caller at a time (the dispatcher may
run it in one worker thread: the connection is not tied to its thread).

File and durability (SQLite: "Write-Ahead Logging", "PRAGMA synchronous"):

* WAL mode. Writes that gate an irreversible step commit with
  ``synchronous=FULL`` (the WAL is fsynced at commit): the inbound record
  before the SMS service deletes the SIM copy (:meth:`Journal.receive`),
  "executing" before a non-idempotent action (:meth:`Journal.start`), the
  counter and replay window before execution (:meth:`Journal.authenticate`),
  the reply before it is sent (:meth:`Journal.complete` or
  :meth:`Journal.queue_reply`, then :meth:`Journal.mark_sending`) and a
  failed send. Other writes use ``NORMAL`` (in WAL mode a process kill
  keeps them, a power cut may lose the last ones, each of which recovery
  handles: "executing" of an idempotent action, "sent", "done" or "failed"
  before its reply, "rejected"); the next FULL commit makes them durable.
* Schema versioned by ``PRAGMA user_version``; :data:`MIGRATIONS` brings a
  file from any older version up, one transaction per step; a newer file is
  refused (:class:`SchemaTooNew`).
* ``PRAGMA quick_check`` at open. A corrupt file (``SQLITE_CORRUPT``,
  ``SQLITE_NOTADB`` or a failed check) is renamed aside with a UTC
  timestamp (``journal.db.corrupt-20261201T084000Z``, with its ``-wal`` and
  ``-shm``), a fresh file is started and the event logged at CRITICAL. A
  file that has neither the SQLite header nor a first page of zeros, with
  no ``-wal``, ``-shm`` or ``.counters`` file beside it, is not taken for a
  damaged journal: it is some other file the configuration names by
  mistake, left as it is (:class:`JournalError`); so is an SQLite database
  with tables and no schema version (another program's).
* The high-water marks that must never go back -- the highest Command
  counter accepted and the device's own reply counter -- are kept also in a
  side file (``journal.db.counters``, JSON), written atomically (temporary
  file, fsync, rename, fsync of the directory): the reply counter *before*
  the transaction that raises it commits (a counter is never used twice; a
  kill in between only skips one), the Command counter right *after* it (the
  side file holds only counters a committed transaction accepted). At open
  the larger of the two is taken; a database behind the side file (a fresh
  file after corruption, a restored copy) starts its replay window with every
  counter up to the mark counted as used
  (:meth:`bridge.auth.ReplayWindow.after_loss`). The one Command accepted
  between a commit and its side-file write is not in the mark: if the
  database is lost at that very moment, that one Command could be replayed
  once.
* Group commit (:meth:`Journal.group`): the worker runs the calls queued
  together in one transaction (a call that fails in the middle of its
  writes rolls the group back, and the worker makes each call again alone),
  committed once with
  ``synchronous=FULL`` (the strongest any call asks for; SQLite cannot
  change it inside a transaction). What follows a commit -- the reply
  budgets' index, the side-file mark after :meth:`Journal.authenticate`,
  the checkpoint count -- follows the group's commit, and no result leaves
  the worker before it (bridge.worker).

States (:class:`State`; every transition is timed in ``transition``)::

    received -> rejected                        (no reply: auth, sender, budget)
    received -> failed                          (usage error: answered)
    received -> executing -> done | failed
    done | failed -> reply_queued -> sending -> sent | send_failed
    sending -> sending                          (resent after a restart, counted)
    sending | send_failed -> reply_queued       (retry)

Anything else raises :class:`IllegalTransition`. Device-initiated messages
(boot, reports, events) enter at ``reply_queued`` (kind ``report``).
Undecodable PDUs are journaled raw (kind ``undecodable``) and rejected.

Restart recovery (:meth:`Journal.recovery`): received and not run -> run;
executing and idempotent -> run again; executing and not idempotent ->
answer "interrupted", never run again; reply queued -> send; sending with
unknown outcome -> send again with the same reply and reference
(:meth:`Journal.mark_sending` counts it in ``resends``).

Deduplication keys (table ``dedupe``): ``sid:`` the Command SID when
Twilio included it, ``sms:`` the SMS service's message identity, and
``ctr:`` the authentication counter once the signature checked. Any key
already present makes the message a duplicate of that entry. Each part's
identity is kept (``part``) for :meth:`Journal.has_part`. Records are kept
30 days (Twilio's retention of Commands) then pruned; freed pages are
returned (``auto_vacuum=INCREMENTAL``) so the file stays bounded.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import enum
import functools
import json
import logging
import operator
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from .auth import ReplayWindow

log = logging.getLogger("bridge.journal")

#: Default journal file (the service's state directory).
DEFAULT_PATH = "/var/lib/sms-bridge/journal.db"
#: Twilio keeps Commands 30 days; so does the journal.
RETENTION_SECONDS = 30 * 24 * 3600
#: WAL file kept at most this size after a checkpoint (PRAGMA journal_size_limit).
WAL_LIMIT = 1 << 20
#: Checkpoints are the journal's own (``wal_autocheckpoint=0``): when the
#: worker goes idle after at least this many commits (:meth:`Journal.idle`) ...
CHECKPOINT_IDLE_COMMITS = 64
#: ... and right after a commit once this many are in the WAL however busy
#: (about 1,500 pages of 4 KiB at ~6 pages a commit; SQLite's default is 1,000).
CHECKPOINT_MAX_COMMITS = 256


class State(enum.StrEnum):
    """Where an entry is in its life (module doc)."""

    RECEIVED = "received"
    REJECTED = "rejected"
    EXECUTING = "executing"
    DONE = "done"
    FAILED = "failed"
    REPLY_QUEUED = "reply_queued"
    SENDING = "sending"
    SENT = "sent"
    SEND_FAILED = "send_failed"


class Kind(enum.StrEnum):
    """What an entry is."""

    COMMAND = "command"
    UNDECODABLE = "undecodable"
    REPORT = "report"


TRANSITIONS: dict[State, frozenset[State]] = {
    State.RECEIVED: frozenset({State.REJECTED, State.EXECUTING, State.FAILED}),
    State.EXECUTING: frozenset({State.DONE, State.FAILED}),
    State.DONE: frozenset({State.REPLY_QUEUED}),
    State.FAILED: frozenset({State.REPLY_QUEUED}),
    State.REPLY_QUEUED: frozenset({State.SENDING}),
    State.SENDING: frozenset({State.SENT, State.SEND_FAILED, State.SENDING, State.REPLY_QUEUED}),
    State.SEND_FAILED: frozenset({State.REPLY_QUEUED}),
    State.REJECTED: frozenset(),
    State.SENT: frozenset(),
}

_EXECUTING = frozenset({State.EXECUTING})
_RECEIVED_OR_EXECUTING = frozenset({State.RECEIVED, State.EXECUTING})
#: The states in which a reservation against the reply budgets is held: the
#: reply is still to be queued (it counts as a reply from then on).
_RESERVING = frozenset({State.RECEIVED, State.EXECUTING, State.DONE, State.FAILED})
_RAN = frozenset({State.DONE, State.FAILED})
_SEND_OUTCOMES = frozenset({State.SENDING, State.SEND_FAILED})

#: States an entry may be pruned in (nothing left to do for it).
SETTLED = frozenset({State.REJECTED, State.SENT, State.SEND_FAILED, State.DONE, State.FAILED})


class JournalError(Exception):
    """The journal refused an operation (a caller's error, or an unusable file)."""


class IllegalTransition(JournalError):
    """A state change the state machine does not allow."""

    def __init__(self, entry_id: int, current: State, wanted: State) -> None:
        self.entry_id = entry_id
        self.current = current
        self.wanted = wanted
        super().__init__(f"entry {entry_id}: {current.value} -> {wanted.value} is not allowed")

    def __reduce__(self) -> tuple[type[IllegalTransition], tuple[int, State, State]]:
        # rebuilt from its fields (the journal process sends it to its parent)
        return type(self), (self.entry_id, self.current, self.wanted)


class UnknownEntry(JournalError):
    """No entry with that id (never existed, or pruned)."""


class SchemaTooNew(JournalError):
    """The file was written by a newer version of the bridge."""


#: Schema migrations: MIGRATIONS[i] brings user_version i to i + 1.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE entry (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            modem TEXT NOT NULL,
            state TEXT NOT NULL,
            sender TEXT, product TEXT, coding TEXT, sid TEXT, identity TEXT,
            counter INTEGER,
            body_text TEXT, body_data BLOB, raw_pdu TEXT, error TEXT,
            idempotent INTEGER, summary TEXT, reason TEXT,
            reply_to TEXT, reply_text TEXT, reply_data BLOB, reply_ref TEXT,
            tp_mr INTEGER,
            send_attempts INTEGER NOT NULL DEFAULT 0,
            resends INTEGER NOT NULL DEFAULT 0,
            created REAL NOT NULL, updated REAL NOT NULL)""",
        "CREATE INDEX entry_state ON entry(state)",
        "CREATE INDEX entry_updated ON entry(updated)",
        """CREATE TABLE transition (
            seq INTEGER PRIMARY KEY,
            entry_id INTEGER NOT NULL REFERENCES entry(id) ON DELETE CASCADE,
            state TEXT NOT NULL, at REAL NOT NULL, detail TEXT)""",
        "CREATE INDEX transition_entry ON transition(entry_id)",
        "CREATE INDEX transition_state_at ON transition(state, at)",
        """CREATE TABLE dedupe (
            key TEXT PRIMARY KEY,
            entry_id INTEGER NOT NULL REFERENCES entry(id) ON DELETE CASCADE) WITHOUT ROWID""",
        "CREATE INDEX dedupe_entry ON dedupe(entry_id)",
        """CREATE TABLE part (
            part_id TEXT PRIMARY KEY,
            entry_id INTEGER NOT NULL REFERENCES entry(id) ON DELETE CASCADE) WITHOUT ROWID""",
        "CREATE INDEX part_entry ON part(entry_id)",
        "CREATE TABLE kv (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    ),
)

_CORRUPT_CODES = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})
#: The first 16 octets of every SQLite 3 database file (SQLite's file format, 1.3).
_SQLITE_HEADER = b"SQLite format 3\0"


def _foreign_message(p: Path) -> str:
    return (
        f"journal {p}: not an SQLite database and no journal file beside it: "
        "left as it is (is bridge.journal right?)"
    )


@dataclass(frozen=True, slots=True)
class Transition:
    """One timed state change of an entry."""

    state: State
    at: float
    detail: str | None


@dataclass(frozen=True, slots=True)
class Entry:
    """One journaled message and where it is."""

    id: int
    kind: Kind
    modem: str
    state: State
    sender: str | None
    product: str | None
    coding: str | None
    sid: str | None
    identity: str | None
    counter: int | None
    body: str | bytes | None
    raw_pdu: str | None
    error: str | None
    idempotent: bool | None
    summary: str | None
    reason: str | None
    reply_to: str | None
    reply: str | bytes | None
    reply_ref: str | None
    tp_mr: int | None
    send_attempts: int
    resends: int
    created: float
    updated: float
    transitions: tuple[Transition, ...] = ()

    def __reduce__(self) -> tuple[Callable[..., Entry], tuple[object, ...]]:
        """Pickled as its fields in order, the kind and the state as their
        values, rebuilt by the constructor: the outcomes the journal process
        sends back (``bridge/journal_process.py``) cost half of what the
        dataclass default (``__getstate__`` over ``fields()``, each enum
        pickled by reference) costs."""
        eid, kind, modem, state, *rest = _entry_fields(self)
        return (_rebuild_entry, (eid, kind.value, modem, state.value, *rest))

    @property
    def to_send(self) -> bool:
        """A reply is here to send (or to send again): ``reply_queued`` or
        ``sending``, with its text and address."""
        return (
            self.state in (State.REPLY_QUEUED, State.SENDING)
            and self.reply is not None
            and self.reply_to is not None
        )


#: an entry's fields in their order (Entry.__reduce__)
_entry_fields = operator.attrgetter(*(f.name for f in dataclasses.fields(Entry)))
_KINDS = {k.value: k for k in Kind}
_STATES = {s.value: s for s in State}


def _rebuild_entry(eid: int, kind: str, modem: str, state: str, *rest: object) -> Entry:
    """An :class:`Entry` from :meth:`Entry.__reduce__`'s arguments."""
    return Entry(eid, _KINDS[kind], modem, _STATES[state], *rest)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Receipt:
    """What :meth:`Journal.receive` did: the entry, and whether it was already there.

    ``entry`` is the new entry as stored (no transitions), so the dispatcher
    need not read it back; None for a duplicate.
    """

    entry_id: int
    duplicate: bool
    entry: Entry | None = None


@dataclass(frozen=True, slots=True)
class Budget:
    """The reply budgets :meth:`Journal.start` checks (``[budgets]``): the four
    limits and the bounds of the hour and the day they count in."""

    hour_since: float
    day_since: float
    sender: str
    global_per_hour: int
    global_per_day: int
    sender_per_hour: int
    sender_per_day: int


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a restart must do (module doc, "Restart recovery")."""

    run: tuple[Entry, ...]
    rerun: tuple[Entry, ...]
    interrupted: tuple[Entry, ...]
    send: tuple[Entry, ...]
    resend: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class Marks:
    """The high-water marks kept beside the database."""

    command_counter: int = 0
    reply_counter: int = 0


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data``: temporary file, fsync, rename, fsync of the directory."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


_COLUMNS = (
    "id, kind, modem, state, sender, product, coding, sid, identity, counter, body_text,"
    " body_data, raw_pdu, error, idempotent, summary, reason, reply_to, reply_text, reply_data,"
    " reply_ref, tp_mr, send_attempts, resends, created, updated"
)


P = ParamSpec("P")
R = TypeVar("R")


@functools.cache
def _sources_of(to: State, sources: frozenset[State] | None) -> str:
    """The states ``to`` may be reached from (narrowed to ``sources``), as the
    SQL list of an ``IN`` (constants of this module, not user data)."""
    allowed = [s for s in State if to in TRANSITIONS[s] and (sources is None or s in sources)]
    return ", ".join(f"'{s.value}'" for s in allowed) or "NULL"


def _declared(fn: Callable[Concatenate[Journal, P], R]) -> Callable[Concatenate[Journal, P], R]:
    """SQLite and file-system failures (disk full, I/O error, a closed journal)
    leave a public method as :class:`JournalError` naming the file."""

    @functools.wraps(fn)
    def wrapper(self: Journal, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(self, *args, **kwargs)
        except (sqlite3.Error, OSError) as exc:
            raise JournalError(f"journal {self.path}: {exc}") from exc

    return wrapper


#: The reply budgets count back a day at most; the index keeps an hour more.
_INDEX_SPAN = 25 * 3600.0


class _ReplyIndex:
    """Every entry's latest ``reply_queued`` time since a horizon, sorted, in
    memory: the reply budgets' counts in O(log n) instead of a scan of the
    day's transitions (:meth:`Journal.replies_since` semantics: an entry
    queued again counts once, at its latest queueing).

    Exact for any ``since`` at or after :attr:`horizon`; :meth:`count` gives
    None for an older one (the caller asks SQL). Filled from the file at open
    and kept by :class:`Journal` after each commit that queues a reply.
    """

    def __init__(self, horizon: float) -> None:
        self.horizon = horizon
        self._latest: dict[int, tuple[float, str | None]] = {}
        self._all: list[float] = []
        self._by_sender: dict[str, list[float]] = {}

    def add(self, entry_id: int, sender: str | None, at: float) -> None:
        old = self._latest.get(entry_id)
        if old is not None:
            if old[0] >= at:  # the clock went back: the latest queueing stays the latest
                return
            self._remove(self._all, old[0])
            if old[1] is not None:
                self._remove(self._by_sender[old[1]], old[0])
        self._latest[entry_id] = (at, sender)
        bisect.insort(self._all, at)
        if sender is not None:
            bisect.insort(self._by_sender.setdefault(sender, []), at)

    def latest(self, entry_id: int) -> float | None:
        """``entry_id``'s latest queueing the index holds, or None."""
        got = self._latest.get(entry_id)
        return None if got is None else got[0]

    @staticmethod
    def _remove(times: list[float], at: float) -> None:
        i = bisect.bisect_left(times, at)
        if i < len(times) and times[i] == at:
            del times[i]

    def count(self, since: float, sender: str | None = None) -> int | None:
        """Entries whose latest queueing is at or after ``since`` (all, or
        ``sender``'s); None when ``since`` is before the horizon."""
        if since < self.horizon:
            return None
        times = self._all if sender is None else self._by_sender.get(sender, [])
        return len(times) - bisect.bisect_left(times, since)

    def forget_before(self, horizon: float) -> None:
        """Drop what is older than ``horizon`` once it has moved an hour past
        the present one (one rebuild an hour; the horizon only moves forward)."""
        if horizon < self.horizon + 3600.0:
            return
        self.horizon = horizon
        kept = {k: v for k, v in self._latest.items() if v[0] >= horizon}
        self._latest = kept
        self._all = sorted(at for at, _ in kept.values())
        by: dict[str, list[float]] = {}
        for at, sender in kept.values():
            if sender is not None:
                by.setdefault(sender, []).append(at)
        self._by_sender = {k: sorted(v) for k, v in by.items()}


class Journal:
    """The durable state machine (module doc). Open with :meth:`open`.

    Every public method raises :class:`JournalError` (or a subclass) and
    nothing else for a failure of the file, the disk or the state machine.
    """

    def __init__(self, db: sqlite3.Connection, path: Path, clock: Callable[[], float]) -> None:
        self._db = db
        self.path = path
        self._clock = clock
        self._sync = ""
        #: commits in the WAL since the last checkpoint
        self._uncheckpointed = 0
        #: replies queued by the transaction in progress: (entry, sender, at)
        self._queued_in_tx: list[tuple[int, str | None, float]] = []
        self._replies = _ReplyIndex(float("inf"))  # filled by open()
        #: Commands that passed a budget check and whose reply is not queued yet
        #: (entry -> sender): counted as replies, so two modules' Commands in
        #: flight at once cannot both take the last one (:meth:`start`)
        self._reserved: dict[int, str] = {}
        self._reserved_by_sender: dict[str, int] = {}
        #: how to take back the reservations the transaction in progress
        #: made or ended, should it roll back (newest last)
        self._undo: list[Callable[[], None]] = []
        #: what runs once the transaction in progress has committed
        self._after_commit: list[Callable[[], None]] = []
        #: inside :meth:`group`: each ``_tx`` is a savepoint of the group's transaction
        self._grouped = False
        #: a call of the group left it unusable: the group is rolled back whole
        self._broken = False
        self.marks_path = path.with_name(path.name + ".counters")
        self._marks = self._read_marks()
        #: Set when :meth:`open` found the file corrupt: where the old one went.
        self.moved_aside: Path | None = None

    # --- opening ---------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | Path = DEFAULT_PATH,
        *,
        clock: Callable[[], float] = time.time,
        window_size: int = 64,
        timeout: float = 5.0,
    ) -> Journal:
        """Open (or create) the journal at ``path``; see the module doc for corruption.

        Raises :class:`SchemaTooNew` for a newer file, :class:`JournalError`
        when the file cannot be opened at all (a permission, a lock held
        longer than ``timeout`` seconds by another process).
        """
        p = Path(path)
        moved: Path | None = None
        try:
            db = cls._connect_checked(p, timeout)
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorname", "") not in _CORRUPT_CODES and not isinstance(
                exc, _Corrupt
            ):
                raise JournalError(f"journal {p}: {exc}") from None
            if not cls._was_a_journal(p):
                raise JournalError(_foreign_message(p)) from None
            moved = cls._move_aside(p, clock())
            log.critical(
                "journal %s is corrupt (%s): moved aside to %s, a fresh journal started",
                p,
                exc,
                moved,
            )
            try:
                db = cls._connect_checked(p, timeout)
            except sqlite3.DatabaseError as exc2:
                raise JournalError(f"journal {p}: {exc2}") from None
        j = cls(db, p, clock)
        j.moved_aside = moved
        j._reconcile(window_size, fresh=moved is not None)
        j._load_reply_index()
        return j

    def _load_reply_index(self) -> None:
        horizon = self._clock() - _INDEX_SPAN
        index = _ReplyIndex(horizon)
        rows = self._db.execute(
            "SELECT t.entry_id, e.sender, max(t.at) FROM transition t"
            " JOIN entry e ON e.id = t.entry_id"
            " WHERE t.state = 'reply_queued' AND t.at >= ? GROUP BY t.entry_id",
            (horizon,),
        )
        for entry_id, sender, at in rows:
            index.add(int(entry_id), sender, float(at))
        self._replies = index

    @staticmethod
    def _connect_checked(p: Path, timeout: float) -> sqlite3.Connection:
        db = sqlite3.connect(p, timeout=timeout, isolation_level=None, check_same_thread=False)
        try:
            empty = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
            if empty:
                db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            elif db.execute("PRAGMA user_version").fetchone()[0] == 0:
                # tables, yet no schema version: the journal sets one in the
                # transaction that makes its tables (_migrate), so this file is
                # another program's; not made WAL, not migrated into
                raise JournalError(
                    f"journal {p}: an SQLite database without the journal's schema "
                    "(another program's?): left as it is (is bridge.journal right?)"
                )
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise JournalError(f"journal {p}: WAL mode refused ({mode})")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
            # No checkpoint inside a commit on a Command's path (SQLite's automatic
            # one copies and fsyncs ~1,000 pages there, every ~30 Commands): the
            # journal checkpoints when its worker is idle (Journal.idle).
            db.execute("PRAGMA wal_autocheckpoint=0")
            # 512 KiB of page cache (default 2 MiB): the hot pages are the last
            # entries and the indexes; memory is scarce on the devices.
            db.execute("PRAGMA cache_size=-512")
            rows = db.execute("PRAGMA quick_check").fetchall()
            if rows != [("ok",)]:
                raise _Corrupt("quick_check: " + "; ".join(str(r[0]) for r in rows[:3]))
            Journal._migrate(db, p)
        except BaseException:
            db.close()
            raise
        return db

    @staticmethod
    def _migrate(db: sqlite3.Connection, p: Path) -> None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise SchemaTooNew(
                f"journal {p}: schema version {version}, this bridge knows {len(MIGRATIONS)}"
            )
        for target in range(version + 1, len(MIGRATIONS) + 1):
            db.execute("BEGIN IMMEDIATE")
            try:
                for stmt in MIGRATIONS[target - 1]:
                    db.execute(stmt)
                db.execute(f"PRAGMA user_version={target}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            log.info("journal %s: schema migrated to version %d", p, target)

    @classmethod
    def refuse_foreign(cls, path: str | Path) -> None:
        """:class:`JournalError` when a file at ``path`` is clearly no journal
        (what :meth:`open` would refuse to move aside): for a caller that
        makes files beside the journal (a lock) before opening it."""
        p = Path(path)
        try:
            size = p.stat().st_size if p.is_file() else 0
        except OSError:
            return
        if size and not cls._was_a_journal(p):
            raise JournalError(_foreign_message(p))

    @staticmethod
    def _was_a_journal(p: Path) -> bool:
        """Whether a file SQLite refused is a damaged journal (moved aside)
        rather than some other file ``bridge.journal`` names by mistake (left
        alone): the SQLite header (SQLite's file format, section 1.3: the
        damage is inside), a first page of zeros (lost in a power cut), or a
        file SQLite or the journal keeps beside it."""
        try:
            with open(p, "rb") as f:
                head = f.read(len(_SQLITE_HEADER))
        except OSError:
            return True  # gone or unreadable: the move aside reports it
        if head == _SQLITE_HEADER or not head.strip(b"\0"):
            return True
        return any(p.with_name(p.name + s).exists() for s in ("-wal", "-shm", ".counters"))

    @staticmethod
    def _move_aside(p: Path, now: float) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        target = p.with_name(f"{p.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = p.with_name(f"{p.name}.corrupt-{stamp}-{n}")
        for suffix in ("-wal", "-shm"):
            side = p.with_name(p.name + suffix)
            if side.exists():
                os.replace(side, target.with_name(target.name + suffix))
        if p.exists():
            os.replace(p, target)
        _fsync_dir(p.parent)
        return target

    def _read_marks(self) -> Marks:
        try:
            raw = self.marks_path.read_bytes()
        except FileNotFoundError:
            return Marks()
        try:
            doc = json.loads(raw)
            return Marks(int(doc["command_counter"]), int(doc["reply_counter"]))
        except (ValueError, KeyError, TypeError):
            log.critical(
                "journal side file %s is unreadable; using the database's marks", self.marks_path
            )
            return Marks()

    def _write_marks(self, marks: Marks) -> None:
        data = json.dumps(
            {"command_counter": marks.command_counter, "reply_counter": marks.reply_counter}
        ).encode()
        write_atomically(self.marks_path, data)
        self._marks = marks

    def _reconcile(self, window_size: int, *, fresh: bool) -> None:
        """Make the database's marks and the side file agree, never going back."""
        window = self._kv_window()
        reply = int(self._kv("reply_counter") or 0)
        m = self._marks
        high = max(window.highest if window is not None else 0, m.command_counter)
        if window is None or window.highest < high:
            # lost or behind the side file: count every counter up to the mark as used
            window = ReplayWindow.after_loss(high, window_size)
            if high:
                log.warning("journal: replay window rebuilt from the side file (highest %d)", high)
        elif window.size != window_size:
            # a larger window must not reopen counters the old one called too old
            grown = (
                ((1 << window_size) - 1) ^ ((1 << window.size) - 1)
                if window_size > window.size
                else 0
            )
            bitmap = (window.bitmap | (grown if high else 0)) & ((1 << window_size) - 1)
            window = ReplayWindow(high, bitmap, window_size)
        reply = max(reply, m.reply_counter)
        with self._tx(full=True):
            self._put("replay_window", window.to_text())
            self._put("reply_counter", str(reply))
        if (window.highest, reply) != (m.command_counter, m.reply_counter):
            self._write_marks(Marks(window.highest, reply))
        if fresh:
            log.critical(
                "journal %s started afresh; replay counters kept at %d / %d",
                self.path,
                window.highest,
                reply,
            )

    def close(self) -> None:
        """Checkpoint and close the file."""
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing --------------------------------------------------------------

    @contextlib.contextmanager
    def _tx(self, *, full: bool) -> Iterator[sqlite3.Connection]:
        if self._grouped:
            with self._in_group():
                yield self._db
            return
        self._begin("FULL" if full else "NORMAL")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            self._discard_pending()
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise
        self._committed()

    def _begin(self, sync: str) -> None:
        if self._sync != sync:
            self._db.execute(f"PRAGMA synchronous={sync}")
            self._sync = sync
        self._db.execute("BEGIN IMMEDIATE")
        self._discard_pending()

    def _discard_pending(self) -> None:
        """The transaction in progress is no more: what followed it, dropped,
        and the reservations it changed, as they were."""
        self._queued_in_tx.clear()
        self._after_commit.clear()
        self._undo_to(0)

    def _undo_to(self, mark: int) -> None:
        while len(self._undo) > mark:
            self._undo.pop()()

    @contextlib.contextmanager
    def _in_group(self) -> Iterator[None]:
        """One call's writes inside :meth:`group`. A call that raises here after
        it wrote part of its change cannot be taken back alone without a
        savepoint (two statements per call, a quarter of a Command's): the
        group is marked broken, rolled back whole at its end, and its calls
        made again one by one (bridge.worker). One that raises before writing
        anything leaves the group whole."""
        if self._broken:
            raise _GroupBroken("an earlier call of the group failed; each is made again alone")
        if not self._db.in_transaction:  # SQLite rolled it back under a call (disk full)
            self._broken = True
            raise _GroupBroken("the group's transaction was rolled back")
        before = self._db.total_changes
        try:
            yield
        except BaseException:
            # a failure before any write (a read, an illegal transition) leaves
            # the group whole; one after a write, or a rollback by SQLite, not
            if self._db.total_changes != before or not self._db.in_transaction:
                self._broken = True
            raise

    @property
    def broken(self) -> bool:
        """The group in progress, or the last one, had a call fail in the
        middle of its writes (so it was rolled back whole)."""
        return self._broken

    @contextlib.contextmanager
    def group(self) -> Iterator[None]:
        """Group commit: every journal call made inside runs in this one
        transaction, committed once, FULL, at the end; each call sees what the
        ones before it wrote.

        Raises :class:`JournalError` when the group cannot stand as a whole:
        its ``BEGIN`` or ``COMMIT`` failed, SQLite rolled it back under a call
        (disk full), or a call raised in the middle of its writes (then the
        others go on, their results unused). Nothing of it is then in the
        file: the caller makes each call again, alone. A call that fails
        before writing anything (a read, an illegal transition) leaves the
        group whole. Not reentrant; one caller at a time, as for every method.
        """
        if self._grouped:
            raise RuntimeError("journal group already open")
        self._broken = False
        try:
            self._begin("FULL")
            self._grouped = True
            try:
                yield
            finally:
                self._grouped = False
            if self._broken or not self._db.in_transaction:
                raise _GroupBroken("a call of the group failed in the middle of its writes")
            self._db.execute("COMMIT")
        except BaseException as exc:
            self._discard_pending()
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error | OSError):
                raise JournalError(f"journal {self.path}: {exc}") from exc
            raise
        self._committed()

    def _committed(self) -> None:
        """After a commit (one call's, or a group's): its consequences. The
        commit stands whatever happens here: a side file or checkpoint that
        fails is logged, never raised (a mark behind the database is what the
        next open mends; the checkpoint is tried again)."""
        if self._queued_in_tx:  # committed: the budgets' index follows the file
            for entry_id, sender, at in self._queued_in_tx:
                self._replies.add(entry_id, sender, at)
            self._queued_in_tx.clear()
            self._replies.forget_before(self._clock() - _INDEX_SPAN)
        self._undo.clear()
        if self._after_commit:
            after, self._after_commit = self._after_commit, []
            for fn in after:
                try:
                    fn()
                except OSError as exc:
                    log.error("journal %s: committed, but the side file failed: %s", self.path, exc)
                except sqlite3.Error as exc:  # prune's vacuum and truncate, tried again next time
                    log.warning("journal %s: committed, but tidying failed: %s", self.path, exc)
        self._uncheckpointed += 1
        if self._uncheckpointed >= CHECKPOINT_MAX_COMMITS:
            try:
                self._checkpoint()
            except sqlite3.Error as exc:
                log.warning("journal %s: checkpoint failed: %s", self.path, exc)

    def _reserve(self, entry_id: int, sender: str) -> None:
        """``entry_id``'s reply counts against the budgets from now on; inside
        a transaction, taken back if it rolls back."""
        if entry_id in self._reserved:
            return
        self._reserved[entry_id] = sender
        self._reserved_by_sender[sender] = self._reserved_by_sender.get(sender, 0) + 1
        if self._db.in_transaction:
            self._undo.append(lambda: self._release(entry_id, undoable=False))

    def _release(self, entry_id: int, *, undoable: bool = True) -> None:
        sender = self._reserved.pop(entry_id, None)
        if sender is None:
            return
        left = self._reserved_by_sender[sender] - 1
        if left:
            self._reserved_by_sender[sender] = left
        else:
            del self._reserved_by_sender[sender]
        if undoable and self._db.in_transaction:
            self._undo.append(lambda: self._restore(entry_id, sender))

    def _restore(self, entry_id: int, sender: str) -> None:
        self._reserved[entry_id] = sender
        self._reserved_by_sender[sender] = self._reserved_by_sender.get(sender, 0) + 1

    def _checkpoint(self) -> None:
        """Copy the WAL's pages into the file (PASSIVE: readers are not waited
        for; what they hold is copied next time), SQLite "Checkpointing"."""
        self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        self._uncheckpointed = 0

    @_declared
    def idle(self) -> bool:
        """The worker has nothing queued: checkpoint if enough commits wait
        (:data:`CHECKPOINT_IDLE_COMMITS`). True when it checkpointed."""
        if self._uncheckpointed < CHECKPOINT_IDLE_COMMITS:
            return False
        self._checkpoint()
        return True

    def _kv(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM kv WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def _kv_window(self) -> ReplayWindow | None:
        text = self._kv("replay_window")
        if text is None:
            return None
        try:
            return ReplayWindow.from_text(text)
        except ValueError:
            log.critical("journal: stored replay window %r unreadable; rebuilt", text)
            return None

    def _put(self, name: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO kv(name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def _state(self, entry_id: int) -> State:
        row = self._db.execute("SELECT state FROM entry WHERE id = ?", (entry_id,)).fetchone()
        if row is None:
            raise UnknownEntry(f"no journal entry {entry_id}")
        return State(row[0])

    def _move(
        self,
        entry_id: int,
        to: State,
        detail: str | None,
        sources: frozenset[State] | None = None,
        **columns: object,
    ) -> float:
        """Inside a transaction: check and record ``entry_id -> to``.

        ``sources`` narrows the states the calling operation starts from (the
        reply is queued from done or failed, not from send_failed).
        """
        return self._move_returning(entry_id, to, detail, sources, "", columns)[0]

    def _move_returning(  # noqa: PLR0917 - one private helper of _move
        self,
        entry_id: int,
        to: State,
        detail: str | None,
        sources: frozenset[State] | None,
        extra_sets: str,
        columns: dict[str, object],
        returning: str = "",
    ) -> tuple[float, tuple[object, ...]]:
        """:meth:`_move` in one conditional ``UPDATE ... RETURNING`` (the
        state checked by SQLite in the same statement; read only when it
        refuses, to name the error) and the transition row: two statements.
        ``extra_sets`` (SQL, no parameters) and ``returning`` (columns after
        the sender) extend it; the returned row is theirs."""
        allowed = _sources_of(to, sources)
        now = self._clock()
        sets = "".join(f", {c} = ?" for c in columns)
        row = self._db.execute(
            f"UPDATE entry SET state = ?, updated = ?{sets}{extra_sets}"
            f" WHERE id = ? AND state IN ({allowed}) RETURNING sender{returning}",
            (to.value, now, *columns.values(), entry_id),
        ).fetchone()
        if row is None:
            current = self._state(entry_id)  # UnknownEntry when there is none
            raise IllegalTransition(entry_id, current, to)
        self._db.execute(
            "INSERT INTO transition(entry_id, state, at, detail) VALUES (?, ?, ?, ?)",
            (entry_id, to.value, now, detail),
        )
        if to is State.REPLY_QUEUED:
            self._queued_in_tx.append((entry_id, row[0], now))
        if to not in _RESERVING and entry_id in self._reserved:
            self._release(entry_id)
        return now, tuple(row[1:])

    def _insert(self, kind: Kind, state: State, detail: str | None, **columns: object) -> int:
        now = self._clock()
        names = ", ".join(("kind", "state", "created", "updated", *columns))
        marks = ", ".join("?" * (4 + len(columns)))
        cur = self._db.execute(
            f"INSERT INTO entry({names}) VALUES ({marks})",
            (kind.value, state.value, now, now, *columns.values()),
        )
        entry_id = cur.lastrowid
        assert entry_id is not None
        self._db.execute(
            "INSERT INTO transition(entry_id, state, at, detail) VALUES (?, ?, ?, ?)",
            (entry_id, state.value, now, detail),
        )
        if state is State.REPLY_QUEUED:
            sender = columns.get("sender")
            self._queued_in_tx.append((entry_id, sender if isinstance(sender, str) else None, now))
        return entry_id

    def _duplicate_of(self, keys: Sequence[str]) -> int | None:
        """The entry holding the first of ``keys`` found (in their order), or None."""
        if len(keys) == 1:
            row = self._db.execute("SELECT entry_id FROM dedupe WHERE key = ?", keys).fetchone()
            return None if row is None else int(row[0])
        marks = ", ".join("?" * len(keys))
        found = dict(
            self._db.execute(f"SELECT key, entry_id FROM dedupe WHERE key IN ({marks})", keys)
        )
        for k in keys:
            if k in found:
                return int(found[k])
        return None

    # --- inbound ---------------------------------------------------------------

    @_declared
    def receive(
        self,
        *,
        modem: str,
        sender: str,
        body: str | bytes,
        identity: str,
        part_ids: Sequence[str] = (),
        sid: str | None = None,
        product: str | None = None,
        coding: str | None = None,
    ) -> Receipt:
        """Journal an inbound Command durably (FULL), before the SIM copy is deleted.

        A message whose SID or identity is already journaled is a duplicate:
        nothing new is stored except its part ids (so its parts are known),
        and the receipt names the first entry.
        """
        keys = [f"sms:{identity}"] + ([f"sid:{sid}"] if sid else [])
        with self._tx(full=True):
            dup = self._duplicate_of(keys)
            if dup is not None:
                self._add_parts(dup, part_ids)
                return Receipt(dup, True)
            text = body if isinstance(body, str) else None
            data = body if isinstance(body, bytes) else None
            entry_id = self._insert(
                Kind.COMMAND,
                State.RECEIVED,
                None,
                modem=modem,
                sender=sender,
                product=product,
                coding=coding,
                sid=sid,
                identity=identity,
                body_text=text,
                body_data=data,
            )
            self._db.executemany(
                "INSERT INTO dedupe(key, entry_id) VALUES (?, ?)", [(k, entry_id) for k in keys]
            )
            self._add_parts(entry_id, part_ids)
            (entry,) = self._entries("id = ?", (entry_id,))
        return Receipt(entry_id, False, entry)

    def _add_parts(self, entry_id: int, part_ids: Sequence[str]) -> None:
        if part_ids:
            self._db.executemany(
                "INSERT OR IGNORE INTO part(part_id, entry_id) VALUES (?, ?)",
                [(pid, entry_id) for pid in part_ids],
            )

    @_declared
    def receive_undecodable(
        self, *, modem: str, identity: str, raw_pdu: str, error: str
    ) -> Receipt:
        """Journal a PDU the codec rejected, raw, as rejected (FULL, before the delete)."""
        key = f"sms:{identity}"
        with self._tx(full=True):
            dup = self._duplicate_of([key])
            if dup is not None:
                return Receipt(dup, True)
            entry_id = self._insert(
                Kind.UNDECODABLE,
                State.RECEIVED,
                None,
                modem=modem,
                identity=identity,
                raw_pdu=raw_pdu,
                error=error,
            )
            self._db.execute("INSERT INTO dedupe(key, entry_id) VALUES (?, ?)", (key, entry_id))
            self._move(entry_id, State.REJECTED, "undecodable", reason="undecodable")
        return Receipt(entry_id, False)

    @_declared
    def has_part(self, part_id: str) -> bool:
        """True when the message this SMS part belongs to is journaled (the SMS
        service's ``known`` hook: such a part is deleted from the SIM, not held)."""
        row = self._db.execute("SELECT 1 FROM part WHERE part_id = ?", (part_id,)).fetchone()
        return row is not None

    # --- authentication ---------------------------------------------------------

    @_declared
    def replay_window(self) -> ReplayWindow:
        """The replay window as last persisted."""
        w = self._kv_window()
        if w is None:  # pragma: no cover - _reconcile always stores one
            raise JournalError("journal has no replay window")
        return w

    @_declared
    def authenticate(self, entry_id: int, counter: int, window: ReplayWindow) -> bool:
        """Record a checked signature's counter and the window after it, atomically.

        One FULL transaction holds the ``ctr:`` dedupe key, the entry's
        counter and the new window; the side file's mark is raised after it
        commits (a kill in between leaves the mark behind the database, which
        the next open raises to the database's).
        False (nothing stored) when another entry holds the counter; True,
        with nothing changed, when this entry already does (it was
        authenticated before a restart: recovery must not check its counter
        against the window again, ``Entry.counter`` is set).
        """
        key = f"ctr:{counter}"
        with self._tx(full=True):
            holder = self._duplicate_of([key])
            if holder is not None:
                return holder == entry_id
            self._state(entry_id)
            self._db.execute("INSERT INTO dedupe(key, entry_id) VALUES (?, ?)", (key, entry_id))
            self._db.execute("UPDATE entry SET counter = ? WHERE id = ?", (counter, entry_id))
            self._put("replay_window", window.to_text())
            # Only after the commit (a group's, in a group): the side file holds
            # committed marks, so a mark above the database's at open means the
            # database went back (lost, restored) and every counter up to it
            # counts as used. Written before the commit, a kill between the two
            # made the Command being checked (and any queued with lower
            # counters) look replayed: lost unanswered.
            self._after_commit.append(lambda: self._raise_command_mark(window.highest))
        return True

    def _raise_command_mark(self, highest: int) -> None:
        if highest > self._marks.command_counter:
            self._write_marks(Marks(highest, self._marks.reply_counter))

    @_declared
    def next_reply_counter(self) -> int:
        """The next counter for a signed reply or report, persisted (never reused)."""
        n = self._take_reply_counter()
        with self._tx(full=True):
            self._put("reply_counter", str(n))
        return n

    def _take_reply_counter(self) -> int:
        """The next reply counter, its side-file mark written (fsynced) before
        the transaction that stores it commits: a kill in between skips one
        counter, never reuses it."""
        n = max(int(self._kv("reply_counter") or 0), self._marks.reply_counter) + 1
        self._write_marks(Marks(self._marks.command_counter, n))
        return n

    @_declared
    def heartbeat(self) -> int:
        """One FULL (fsynced) commit of the ``heartbeat`` row: proof that the
        journal accepts a write, the service's watchdog health check
        (``WATCHDOG=1`` only while this succeeds). Returns the count kept."""
        with self._tx(full=True):
            text = self._kv("heartbeat")
            count = (int(text) if text is not None and text.isdecimal() else 0) + 1
            self._put("heartbeat", str(count))
        return count

    # --- device state -------------------------------------------------------------

    @_declared
    def desired_outputs(self) -> dict[str, int]:
        """The GPIO outputs' desired values Commands set (``gpio set``), by line name:
        what the bridge restores after a restart (kept in ``kv`` as ``gpio:NAME``)."""
        rows = self._db.execute(
            "SELECT name, value FROM kv WHERE name >= 'gpio:' AND name < 'gpio;'"
        ).fetchall()
        return {str(n)[5:]: int(str(v)) for n, v in rows}

    @_declared
    def set_desired_output(self, line: str, value: int) -> None:
        """Record an output's desired value (FULL: it must survive the power cut
        that follows)."""
        with self._tx(full=True):
            self._put(f"gpio:{line}", str(int(value)))

    # --- the state machine ---------------------------------------------------------

    @_declared
    def reject(self, entry_id: int, reason: str) -> None:
        """received -> rejected (no reply: failed authentication, sender, budget)."""
        with self._tx(full=False):
            self._move(entry_id, State.REJECTED, reason, reason=reason)

    @_declared
    def start(
        self,
        entry_id: int,
        *,
        idempotent: bool,
        summary: str | None = None,
        budget: Budget | None = None,
    ) -> str | None:
        """received -> executing before the action runs; with ``budget``, only
        when no reply budget is used up (checked in the same transaction).

        Returns None when started, else the name of the budget used up
        (``global-hour``, ``global-day``, ``sender-hour``, ``sender-day``) and
        nothing is changed. A Command started against a budget counts as a
        reply from then on (reserved in memory until its reply is queued, or
        it ends without one), so Commands of several modules in flight at
        once never exceed a budget. Durable (FULL) before a non-idempotent action; for
        an idempotent one ``NORMAL`` (a process kill keeps it, a power cut may
        take it back to ``received``, and recovery then runs the action again,
        as it would from ``executing``).
        """
        with self._tx(full=not idempotent):
            if budget is not None:
                over = self._over_budget(budget, entry_id)
                if over is not None:
                    return over
            self._move(
                entry_id, State.EXECUTING, summary, idempotent=int(idempotent), summary=summary
            )
            if budget is not None:
                self._reserve(entry_id, budget.sender)
        return None

    @_declared
    def reserve(self, entry_id: int, sender: str) -> None:
        """Count ``entry_id``'s reply against the budgets until it is queued (a
        Command recovery runs again without :meth:`start`: its reservation was
        in memory, lost with the process)."""
        self._reserve(entry_id, sender)

    @_declared
    def release(self, entry_id: int) -> None:
        """End ``entry_id``'s reservation: it ends without a reply."""
        self._release(entry_id)

    @_declared
    def over_budget(self, budget: Budget, reserve: int | None = None) -> str | None:
        """The name of the first reply budget ``budget`` finds used up, or None
        (what :meth:`start` checks; for a reply with nothing to run). With
        ``reserve`` (an entry id) and no budget used up, that entry's reply
        counts from now on, as a started Command's does."""
        over = self._over_budget(budget, reserve)
        if over is None and reserve is not None:
            self._reserve(reserve, budget.sender)
        return over

    def _over_budget(self, b: Budget, entry_id: int | None = None) -> str | None:
        """``entry_id``'s own reservation, if it holds one, is not counted."""
        hour, day, s_hour, s_day = self._reply_usage(
            b.hour_since, b.day_since, b.sender, skip_reserved=True
        )
        held, s_held = len(self._reserved), self._reserved_by_sender.get(b.sender, 0)
        if entry_id in self._reserved:
            held -= 1
            s_held -= self._reserved[entry_id] == b.sender
        used = (hour + held, day + held, s_hour + s_held, s_day + s_held)
        limits = (
            ("global-hour", b.global_per_hour),
            ("global-day", b.global_per_day),
            ("sender-hour", b.sender_per_hour),
            ("sender-day", b.sender_per_day),
        )
        for (name, limit), n in zip(limits, used, strict=True):
            if n >= limit:
                return name
        return None

    @_declared
    def finish(self, entry_id: int, *, ok: bool, reason: str | None = None) -> None:
        """executing -> done | failed (a failure's ``reason`` kept); received ->
        failed for a Command refused before running (a usage error)."""
        to = State.DONE if ok else State.FAILED
        with self._tx(full=False):
            sources = _EXECUTING if ok else _RECEIVED_OR_EXECUTING
            self._move(entry_id, to, reason, sources, reason=reason)

    @_declared
    def queue_reply(
        self, entry_id: int, *, to: str, reply: str | bytes, ref: str | None = None
    ) -> str:
        """done | failed -> reply_queued with the reply's text or data (FULL).

        ``ref`` is the reference a resend keeps (default: the entry id in hex);
        returned.
        """
        ref = ref if ref is not None else f"{entry_id:x}"
        text = reply if isinstance(reply, str) else None
        data = reply if isinstance(reply, bytes) else None
        with self._tx(full=True):
            self._move(
                entry_id,
                State.REPLY_QUEUED,
                None,
                _RAN,
                reply_to=to,
                reply_text=text,
                reply_data=data,
                reply_ref=ref,
            )
        return ref

    @_declared
    def complete(
        self,
        entry_id: int,
        *,
        ok: bool,
        reason: str | None = None,
        to: str,
        reply: str | bytes | Callable[[int], str | bytes],
        ref: str | None = None,
    ) -> str:
        """:meth:`finish` and :meth:`queue_reply` in one FULL transaction (the
        outcome and the reply are durable together, before the send).

        ``reply`` may be a function of the next reply counter (a signed reply):
        the counter is taken as :meth:`next_reply_counter` takes it (its side
        file written before the commit) and committed in the same transaction.
        Returns the reply's reference.
        """
        ref, _ = self._complete(
            entry_id, ok=ok, reason=reason, to=to, reply=reply, ref=ref, claim=False
        )
        return ref

    @_declared
    def complete_and_claim(
        self,
        entry_id: int,
        *,
        ok: bool,
        reason: str | None = None,
        to: str,
        reply: str | bytes | Callable[[int], str | bytes],
        ref: str | None = None,
    ) -> tuple[Entry, int]:
        """:meth:`complete` and :meth:`mark_sending` in one FULL transaction,
        for a reply its module's outbox sends at once (nothing ahead of it).

        Returns what the outbox's claim gives: the entry as queued (before
        ``sending``) and its resend count (0).
        """
        _, claimed = self._complete(
            entry_id, ok=ok, reason=reason, to=to, reply=reply, ref=ref, claim=True
        )
        assert claimed is not None
        return claimed

    def _complete(
        self,
        entry_id: int,
        *,
        ok: bool,
        reason: str | None,
        to: str,
        reply: str | bytes | Callable[[int], str | bytes],
        ref: str | None,
        claim: bool,
    ) -> tuple[str, tuple[Entry, int] | None]:
        ref = ref if ref is not None else f"{entry_id:x}"
        counter: int | None = None
        if callable(reply):
            counter = self._take_reply_counter()
            reply = reply(counter)
        text = reply if isinstance(reply, str) else None
        data = reply if isinstance(reply, bytes) else None
        claimed: tuple[Entry, int] | None = None
        with self._tx(full=True):
            to_state = State.DONE if ok else State.FAILED
            sources = _EXECUTING if ok else _RECEIVED_OR_EXECUTING
            self._move(entry_id, to_state, reason, sources, reason=reason)
            if counter is not None:
                self._put("reply_counter", str(counter))
            self._move(
                entry_id,
                State.REPLY_QUEUED,
                None,
                _RAN,
                reply_to=to,
                reply_text=text,
                reply_data=data,
                reply_ref=ref,
            )
            if claim:
                (queued,) = self._entries("id = ?", (entry_id,))
                claimed = (queued, self._mark_sending(entry_id))
        return ref, claimed

    @_declared
    def enqueue_report(
        self, *, modem: str, to: str, message: str | bytes, summary: str | None = None
    ) -> int:
        """A device-initiated message (boot, report, event) into the outbox (FULL)."""
        text = message if isinstance(message, str) else None
        data = message if isinstance(message, bytes) else None
        with self._tx(full=True):
            entry_id = self._insert(
                Kind.REPORT,
                State.REPLY_QUEUED,
                summary,
                modem=modem,
                summary=summary,
                reply_to=to,
                reply_text=text,
                reply_data=data,
            )
            self._db.execute(
                "UPDATE entry SET reply_ref = ? WHERE id = ?", (f"{entry_id:x}", entry_id)
            )
        return entry_id

    @_declared
    def reject_report(
        self, *, modem: str, to: str, message: str | bytes, reason: str, summary: str | None = None
    ) -> int:
        """A device-initiated message that is not sent (over budget): journaled
        as a rejected report with its reason, never queued (NORMAL)."""
        text = message if isinstance(message, str) else None
        data = message if isinstance(message, bytes) else None
        with self._tx(full=False):
            return self._insert(
                Kind.REPORT,
                State.REJECTED,
                reason,
                modem=modem,
                summary=summary,
                reason=reason,
                reply_to=to,
                reply_text=text,
                reply_data=data,
            )

    @_declared
    def mark_sending(self, entry_id: int) -> int:
        """reply_queued -> sending before ``AT+CMGS`` (FULL); sending -> sending
        when resending after a restart, counted. Returns the resend count."""
        with self._tx(full=True):
            return self._mark_sending(entry_id)

    def _mark_sending(self, entry_id: int) -> int:
        resend = self._state(entry_id) is State.SENDING
        _, (resends,) = self._move_returning(
            entry_id,
            State.SENDING,
            "resend" if resend else None,
            None,
            f", send_attempts = send_attempts + 1, resends = resends + {int(resend)}",
            {},
            ", resends",
        )
        return int(resends)  # type: ignore[call-overload,no-any-return]

    @_declared
    def mark_sent(self, entry_id: int, tp_mr: int) -> None:
        """sending -> sent with the TP-MR of ``+CMGS``.

        ``NORMAL``, not FULL: nothing irreversible follows it. A process kill
        keeps it; a power cut may take the entry back to ``sending``, and the
        reply is then sent again with its reference and counted as a resend,
        the window the module doc names.
        """
        with self._tx(full=False):
            self._move(entry_id, State.SENT, f"mr={tp_mr}", tp_mr=tp_mr)

    @_declared
    def mark_sent_and_claim(
        self, entry_id: int, tp_mr: int, next_id: int
    ) -> tuple[Entry, int] | None:
        """:meth:`mark_sent` of one reply and the claim of the next one queued
        for the same module (``next_id``: :meth:`mark_sending`, FULL, before
        its ``AT+CMGS``), in one transaction: one hand-off for the outbox
        between two sends instead of two. Returns the next entry as it was
        before the claim and its resend count, or None (and only the first
        is marked) when the next has nothing to send (settled meanwhile, no
        reply, or no such entry)."""
        with self._tx(full=True):
            self._move(entry_id, State.SENT, f"mr={tp_mr}", tp_mr=tp_mr)
            rows = self._entries("id = ?", (next_id,))
            if not rows or not rows[0].to_send:
                return None
            return rows[0], self._mark_sending(next_id)

    @_declared
    def unclaim(self, entry_id: int) -> None:
        """sending -> reply_queued for a reply claimed and never sent (the
        outbox stopped before its ``AT+CMGS``): its attempt is taken back, so
        the next start sends it as a first send, not as a resend."""
        with self._tx(full=True):
            self._move_returning(
                entry_id,
                State.REPLY_QUEUED,
                "not sent: stopped",
                frozenset({State.SENDING}),
                ", send_attempts = MAX(send_attempts - 1, 0)",
                {},
            )

    @_declared
    def mark_send_failed(self, entry_id: int, reason: str) -> None:
        """sending -> send_failed (the module or network refused it for good)."""
        with self._tx(full=True):
            self._move(entry_id, State.SEND_FAILED, reason, reason=reason)

    @_declared
    def requeue(self, entry_id: int, reason: str) -> None:
        """sending | send_failed -> reply_queued (try the send again later)."""
        with self._tx(full=True):
            self._move(entry_id, State.REPLY_QUEUED, reason, _SEND_OUTCOMES)

    # --- queries ---------------------------------------------------------------

    def _entries(self, where: str, params: Sequence[object] = ()) -> tuple[Entry, ...]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM entry WHERE {where}", params)
        return tuple(_entry(r) for r in rows.fetchall())

    @_declared
    def recovery(self) -> Recovery:
        """What a restart must do, oldest first (module doc)."""

        def q(where: str) -> tuple[Entry, ...]:
            return self._entries(f"{where} ORDER BY id")

        return Recovery(
            run=q("state = 'received' AND kind = 'command'"),
            rerun=q("state = 'executing' AND idempotent = 1"),
            interrupted=q("state = 'executing' AND (idempotent IS NULL OR idempotent = 0)"),
            send=q("state = 'reply_queued'"),
            resend=q("state = 'sending'"),
        )

    @_declared
    def get(self, entry_id: int, *, transitions: bool = True) -> Entry:
        """One entry, with its transitions unless ``transitions=False``;
        :class:`UnknownEntry` if absent."""
        found = self._entries("id = ?", (entry_id,))
        if not found:
            raise UnknownEntry(f"no journal entry {entry_id}")
        if not transitions:
            return found[0]
        rows = self._db.execute(
            "SELECT state, at, detail FROM transition WHERE entry_id = ? ORDER BY seq",
            (entry_id,),
        ).fetchall()
        trans = tuple(Transition(State(s), float(a), d) for s, a, d in rows)
        return dataclasses.replace(found[0], transitions=trans)

    @_declared
    def list_entries(self, *, limit: int = 50, state: State | None = None) -> tuple[Entry, ...]:
        """The newest entries first, optionally in one state."""
        if state is None:
            return self._entries("1 ORDER BY id DESC LIMIT ?", (limit,))
        return self._entries("state = ? ORDER BY id DESC LIMIT ?", (state.value, limit))

    @_declared
    def replies_since(self, since: float, *, sender: str | None = None) -> int:
        """Replies and reports queued at or after ``since`` (Unix seconds), all
        or those answering ``sender``: what the reply budgets count (a reply
        queued again after a failed send counts once). Kept in the journal so
        a restart does not reset a budget; counted from an in-memory index of
        the last day (exact), by SQL for an older ``since``."""
        n = self._replies.count(since, sender)
        if n is None:
            return self._replies_since_sql(since, sender)
        if self._queued_in_tx:  # queued earlier in this transaction (a group's)
            hour, _, mine, _ = self._with_pending((n, n, n, n), since, since, sender or "")
            return mine if sender is not None else hour
        return n

    def _replies_since_sql(self, since: float, sender: str | None) -> int:
        q = (
            "SELECT count(DISTINCT t.entry_id) FROM transition t JOIN entry e ON e.id = t.entry_id"
            " WHERE t.state = 'reply_queued' AND t.at >= ?"
        )
        params: list[object] = [since]
        if sender is not None:
            q += " AND e.sender = ?"
            params.append(sender)
        return int(self._db.execute(q, params).fetchone()[0])

    @_declared
    def reply_usage(
        self, *, hour_since: float, day_since: float, sender: str
    ) -> tuple[int, int, int, int]:
        """The four reply budgets' counts in one query: (all since
        ``hour_since``, all since ``day_since``, ``sender``'s since
        ``hour_since``, ``sender``'s since ``day_since``), each what
        :meth:`replies_since` gives for the same bounds (``hour_since`` is at
        or after ``day_since``)."""
        return self._reply_usage(hour_since, day_since, sender)

    def _reply_usage(
        self, hour_since: float, day_since: float, sender: str, *, skip_reserved: bool = False
    ) -> tuple[int, int, int, int]:
        r = self._replies
        counts = (
            r.count(hour_since),
            r.count(day_since),
            r.count(hour_since, sender),
            r.count(day_since, sender),
        )
        if None not in counts:
            if self._queued_in_tx:  # queued earlier in this transaction (a group's)
                return self._with_pending(counts, hour_since, day_since, sender, skip_reserved)  # type: ignore[arg-type]
            return counts  # type: ignore[return-value]
        row = self._db.execute(
            "SELECT count(DISTINCT CASE WHEN t.at >= ? THEN t.entry_id END),"
            " count(DISTINCT t.entry_id),"
            " count(DISTINCT CASE WHEN t.at >= ? AND e.sender = ? THEN t.entry_id END),"
            " count(DISTINCT CASE WHEN e.sender = ? THEN t.entry_id END)"
            " FROM transition t JOIN entry e ON e.id = t.entry_id"
            " WHERE t.state = 'reply_queued' AND t.at >= ?",
            (hour_since, hour_since, sender, sender, min(day_since, hour_since)),
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2]), int(row[3])

    def _with_pending(
        self,
        counts: tuple[int, int, int, int],
        hour_since: float,
        day_since: float,
        sender: str,
        skip_reserved: bool = False,
    ) -> tuple[int, int, int, int]:
        """``counts`` from the index plus the replies queued in the transaction
        in progress (the index takes them at its commit), each entry once, at
        its latest queueing (the SQL fallback sees them as well). With
        ``skip_reserved``, not those holding a reservation (which the budget
        check counts as such)."""
        latest: dict[int, tuple[float, str | None]] = {}
        for entry_id, s, at in self._queued_in_tx:
            latest[entry_id] = (max(at, latest.get(entry_id, (at, s))[0]), s)
        hour, day, s_hour, s_day = counts
        known = self._replies.latest
        for entry_id, (at, s) in latest.items():
            if skip_reserved and entry_id in self._reserved:
                continue
            before = known(entry_id)
            mine = s == sender
            if at >= hour_since and not (before is not None and before >= hour_since):
                hour += 1
                s_hour += mine
            if at >= day_since and not (before is not None and before >= day_since):
                day += 1
                s_day += mine
        return hour, day, s_hour, s_day

    @_declared
    def counts(self) -> dict[State, int]:
        """Entries per state (every state, zero included)."""
        out = dict.fromkeys(State, 0)
        for s, n in self._db.execute("SELECT state, count(*) FROM entry GROUP BY state"):
            out[State(s)] = int(n)
        return out

    @_declared
    def prune(self, *, now: float | None = None, keep: float = RETENTION_SECONDS) -> int:
        """Delete settled entries not touched for ``keep`` seconds; returns how many.

        Their transitions, dedupe keys and part ids go with them; freed pages
        are returned to the file system and the WAL truncated.
        """
        cutoff = (self._clock() if now is None else now) - keep
        settled = tuple(s.value for s in SETTLED)
        with self._tx(full=False):
            cur = self._db.execute(
                f"DELETE FROM entry WHERE updated < ? AND state IN "
                f"({', '.join('?' * len(settled))})",
                (cutoff, *settled),
            )
            n = cur.rowcount
        if self._grouped:  # not inside a transaction: after the group's commit
            self._after_commit.append(self._shrink)
        else:
            self._shrink()
        return n

    def _shrink(self) -> None:
        """Return freed pages to the file system and truncate the WAL (neither
        can run inside a transaction)."""
        self._db.execute("PRAGMA incremental_vacuum")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class _GroupBroken(sqlite3.OperationalError):
    """A group's transaction can no longer be committed as it stands."""


class _Corrupt(sqlite3.DatabaseError):
    """quick_check found damage."""


def _entry(r: Sequence[object]) -> Entry:
    (
        eid,
        kind,
        modem,
        state,
        sender,
        product,
        coding,
        sid,
        identity,
        counter,
        body_text,
        body_data,
        raw_pdu,
        error,
        idem,
        summary,
        reason,
        reply_to,
        reply_text,
        reply_data,
        reply_ref,
        tp_mr,
        attempts,
        resends,
        created,
        updated,
    ) = r

    body = body_data if isinstance(body_data, bytes) else _opt_str(body_text)
    reply = reply_data if isinstance(reply_data, bytes) else _opt_str(reply_text)
    return Entry(
        id=_int(eid),
        kind=_KINDS.get(kind) or Kind(str(kind)),  # type: ignore[call-overload]
        modem=modem if type(modem) is str else str(modem),
        state=_STATES.get(state) or State(str(state)),  # type: ignore[call-overload]
        sender=_opt_str(sender),
        product=_opt_str(product),
        coding=_opt_str(coding),
        sid=_opt_str(sid),
        identity=_opt_str(identity),
        counter=None if counter is None else _int(counter),
        body=body,
        raw_pdu=_opt_str(raw_pdu),
        error=_opt_str(error),
        idempotent=None if idem is None else bool(idem),
        summary=_opt_str(summary),
        reason=_opt_str(reason),
        reply_to=_opt_str(reply_to),
        reply=reply,
        reply_ref=_opt_str(reply_ref),
        tp_mr=None if tp_mr is None else _int(tp_mr),
        send_attempts=_int(attempts),
        resends=_int(resends),
        created=created if type(created) is float else float(str(created)),
        updated=updated if type(updated) is float else float(str(updated)),
    )


def _opt_str(v: object) -> str | None:
    """A TEXT column (None stays None; anything else SQLite hands back, as text)."""
    return v if v is None or type(v) is str else str(v)


def _int(v: object) -> int:
    """An INTEGER column (ValueError for what is not one)."""
    return v if type(v) is int else int(str(v))
