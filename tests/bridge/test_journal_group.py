"""Group commit in the journal (``Journal.group``) and in its worker thread.

Real SQLite files; a second connection is the reader that sees only what
was committed; the statements SQLite ran are read off its trace callback.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import sqlite3
import threading
from dataclasses import replace as dataclasses_replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge import journal as jmod
from bridge.auth import ReplayWindow
from bridge.journal import Journal, JournalError, State, UnknownEntry
from bridge.worker import GROUP_MAX, JournalWorker

NOW = 1_764_578_400.0


def receive(j: Journal, n: int, sender: str = "2936") -> int:
    return j.receive(modem="m0", sender=sender, body=f"ping {n}", identity=f"id{n}").entry_id


def committed_entries(path: Path) -> int:
    with sqlite3.connect(path) as other:
        return int(other.execute("SELECT count(*) FROM entry").fetchone()[0])


def budget(**kw: Any) -> jmod.Budget:
    b = jmod.Budget(
        hour_since=NOW - 3600,
        day_since=NOW - 86400,
        sender="2936",
        global_per_hour=100,
        global_per_day=100,
        sender_per_hour=100,
        sender_per_day=100,
    )
    return dataclasses_replace(b, **kw)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "journal.db"


@pytest.fixture
def j(path: Path):
    with Journal.open(path, clock=lambda: NOW) as journal:
        yield journal


def test_a_group_is_one_full_commit(j: Journal, path: Path) -> None:
    seen: list[str] = []
    j._db.set_trace_callback(seen.append)
    with j.group():
        a = receive(j, 1)
        b = receive(j, 2)
        j.start(a, idempotent=True)  # NORMAL alone; the group's commit is FULL
        assert j.get(a).state is State.EXECUTING  # a later call sees the earlier ones
        assert committed_entries(path) == 0  # nothing is visible before the commit
    j._db.set_trace_callback(None)
    assert committed_entries(path) == 2
    assert [s for s in seen if s.startswith(("BEGIN", "COMMIT"))] == ["BEGIN IMMEDIATE", "COMMIT"]
    assert not [s for s in seen if s.startswith(("SAVEPOINT", "RELEASE"))]
    assert j._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert j.get(b).state is State.RECEIVED


def test_a_call_that_fails_in_its_writes_rolls_the_whole_group_back(j: Journal, path: Path) -> None:
    with pytest.raises(JournalError, match="failed in the middle of its writes"), j.group():
        a = receive(j, 1)
        # a call that fails after its first write (as a disk full on its second statement)
        with pytest.raises(sqlite3.OperationalError), j._tx(full=True):
            j._move(a, State.EXECUTING, None)
            raise sqlite3.OperationalError("database or disk is full")
        assert j.broken
        with pytest.raises(JournalError, match="made again alone"):
            receive(j, 2)  # the rest fail at once: the worker makes every call again alone
    assert committed_entries(path) == 0
    assert receive(j, 3) == 1  # the next transaction is a fresh one


def test_a_read_that_fails_leaves_the_group_whole(j: Journal, path: Path) -> None:
    with j.group():
        a = receive(j, 1)
        with pytest.raises(UnknownEntry):
            j.get(999)  # outside any write: nothing to take back
        assert not j.broken
        j.start(a, idempotent=True)
    assert committed_entries(path) == 1 and j.get(a).state is State.EXECUTING


def test_a_group_whose_commit_fails_leaves_nothing(j: Journal, path: Path) -> None:
    real = j._db

    class FailingCommit:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def execute(self, sql: str, *args: Any) -> Any:
            if sql == "COMMIT":
                raise sqlite3.OperationalError("disk I/O error")
            return real.execute(sql, *args)

    j._db = FailingCommit()  # type: ignore[assignment]
    try:
        with pytest.raises(JournalError, match="disk I/O error"), j.group():
            receive(j, 1)
            receive(j, 2)
    finally:
        j._db = real
    assert committed_entries(path) == 0
    assert not real.in_transaction
    assert receive(j, 3) == 1  # the journal goes on; the ids of the lost group are free


def test_the_reply_index_follows_the_groups_commit_and_counts_inside_it(j: Journal) -> None:
    one = budget(global_per_hour=1)
    with j.group():
        a = receive(j, 1)
        assert j.start(a, idempotent=True, budget=one) is None
        j.complete(a, ok=True, to="2936", reply="pong")
        assert j.replies_since(NOW - 3600) == 1  # SQL sees its own transaction
        b = receive(j, 2)
        assert j.start(b, idempotent=True, budget=one) == "global-hour"
        assert j._replies.count(NOW - 3600) == 0  # the index moves at the commit
    assert j._replies.count(NOW - 3600) == 1 and j._reserved == {}
    assert j.over_budget(one) == "global-hour"


def test_a_reply_queued_in_a_group_counts_for_a_later_call_of_it(j: Journal) -> None:
    """A reply queued without a reservation (recovery's) is pending in the
    group; the next budget check of the same group counts it."""
    one = budget(global_per_hour=1, sender_per_hour=1)
    a = receive(j, 1)
    j.start(a, idempotent=True)
    j.finish(a, ok=True)
    with j.group():
        j.queue_reply(a, to="2936", reply="done")
        b = receive(j, 2)
        assert j.start(b, idempotent=True, budget=one) == "global-hour"
        assert j.reply_usage(hour_since=NOW - 3600, day_since=NOW - 86400, sender="2936") == (
            1,
            1,
            1,
            1,
        )
    assert j.reply_usage(hour_since=NOW - 3600, day_since=NOW - 86400, sender="2936") == (
        1,
        1,
        1,
        1,
    )


def test_a_started_command_holds_its_reply_until_queued(j: Journal) -> None:
    two = budget(sender_per_hour=2)
    a, b, c = receive(j, 1), receive(j, 2), receive(j, 3)
    assert j.start(a, idempotent=True, budget=two) is None
    assert j.start(b, idempotent=True, budget=two) is None
    assert j.start(c, idempotent=True, budget=two) == "sender-hour"  # two in flight
    j.complete(a, ok=True, to="2936", reply="pong")
    assert j.start(c, idempotent=True, budget=two) == "sender-hour"  # one sent, one in flight
    assert j.over_budget(budget(sender_per_hour=3), reserve=c) is None
    assert set(j._reserved) == {b, c}
    j.reject(c, "over-budget:test")  # reserved, then never answered: released
    assert set(j._reserved) == {b}
    other = budget(sender="+15550001111", sender_per_hour=1)
    d = receive(j, 4, sender="+15550001111")
    assert j.start(d, idempotent=True, budget=other) is None  # another sender's budget


def test_the_side_file_mark_after_authenticate_waits_for_the_groups_commit(
    j: Journal,
) -> None:
    def mark() -> int:
        if not j.marks_path.exists():
            return 0
        return int(json.loads(j.marks_path.read_bytes())["command_counter"])

    a = receive(j, 1)
    window = ReplayWindow(size=64).check(5)
    with j.group():
        assert j.authenticate(a, 5, window) is True
        assert mark() == 0
    assert mark() == 5


def test_a_side_file_that_fails_after_the_commit_is_logged_not_raised(
    j: Journal, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = receive(j, 1)

    def full(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(jmod, "write_atomically", full)
    with caplog.at_level(logging.ERROR, logger="bridge.journal"):
        assert j.authenticate(a, 5, ReplayWindow(size=64).check(5)) is True
    assert j.get(a).counter == 5  # the commit stands
    assert "committed, but the side file failed" in caplog.text


def test_group_is_not_reentrant(j: Journal) -> None:
    with j.group(), pytest.raises(RuntimeError, match="already open"), j.group():
        pass  # pragma: no cover


# --- the same calls, grouped or not, give the same results and the same file ----------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["receive", "start", "complete", "reject", "budget", "send"]),
        st.integers(1, 6),
    ),
    min_size=1,
    max_size=25,
)


def _apply(j: Journal, op: str, n: int) -> object:
    tight = budget(global_per_hour=3, sender_per_hour=2)
    try:
        if op == "receive":
            r = j.receive(modem="m0", sender="2936", body=f"b{n}", identity=f"i{n}")
            return ("receipt", r.entry_id, r.duplicate)
        if op == "start":
            return j.start(n, idempotent=n % 2 == 0, budget=tight)
        if op == "complete":
            return j.complete(n, ok=True, to="2936", reply=f"r{n}")
        if op == "reject":
            j.reject(n, "test")
            return None
        if op == "budget":
            return j.over_budget(tight, reserve=n)
        j.mark_sending(n)
        j.mark_sent(n, n)
        return None
    except JournalError as exc:
        return type(exc).__name__


def _state(j: Journal) -> object:
    rows = j._db.execute("SELECT id, state, reply_text, tp_mr FROM entry ORDER BY id").fetchall()
    trans = j._db.execute(
        "SELECT entry_id, state FROM transition ORDER BY entry_id, rowid"
    ).fetchall()
    return rows, trans, sorted(j._reserved.items()), j._replies.count(NOW - 3600)


_EXAMPLES = itertools.count()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS, cuts=st.lists(st.integers(0, 25), max_size=6))
def test_grouped_calls_behave_as_the_same_calls_one_by_one(
    tmp_path: Path, ops: list[tuple[str, int]], cuts: list[int]
) -> None:
    d = tmp_path / f"example{next(_EXAMPLES)}"
    d.mkdir()
    with Journal.open(d / "alone.db", clock=lambda: NOW) as alone:
        expected = [_apply(alone, op, n) for op, n in ops]
        want = _state(alone)
    bounds = sorted({0, len(ops), *(c for c in cuts if c < len(ops))})
    got: list[object] = []
    with Journal.open(d / "grouped.db", clock=lambda: NOW) as grouped:
        for lo, hi in itertools.pairwise(bounds):
            try:  # as the worker does: a group that cannot stand, made again call by call
                with grouped.group():
                    part = [_apply(grouped, op, n) for op, n in ops[lo:hi]]
            except JournalError:
                part = [_apply(grouped, op, n) for op, n in ops[lo:hi]]
            got += part
        assert got == expected
        assert _state(grouped) == want


# --- the worker ------------------------------------------------------------------------


class HeldWorker:
    """A worker on a fresh journal whose thread is held in a first call until
    :meth:`let_go`, so the calls queued meanwhile are all there when it takes
    the next (one group)."""

    def __init__(self, path: Path) -> None:
        self.journal = Journal.open(path, clock=lambda: NOW)
        self.worker = JournalWorker(self.journal)
        self._inside = threading.Event()
        self._release = threading.Event()

    async def __aenter__(self) -> HeldWorker:
        def hold(journal: Journal) -> None:
            self._inside.set()
            self._release.wait()

        self._held = asyncio.ensure_future(self.worker.call(hold))
        await asyncio.to_thread(self._inside.wait)
        return self

    def call(self, fn: Any, *args: Any, first: bool = False, **kw: Any) -> asyncio.Future[Any]:
        submit = self.worker.call_first if first else self.worker.call
        return asyncio.ensure_future(submit(fn, *args, **kw))

    async def let_go(self) -> None:
        await asyncio.sleep(0)  # every call queued so far is submitted
        self._release.set()
        await self._held

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        await self.worker.close()


async def test_calls_queued_together_share_one_commit(path: Path) -> None:
    n = 2 * GROUP_MAX + 3
    async with HeldWorker(path) as held:
        commits: list[str] = []
        held.journal._db.set_trace_callback(lambda s: commits.append(s) if s == "COMMIT" else None)
        calls = [held.call(receive, k) for k in range(1, n + 1)]
        await held.let_go()
        assert await asyncio.gather(*calls) == list(range(1, n + 1))  # in submission order
        assert len(commits) == 3  # GROUP_MAX, GROUP_MAX and 3
    assert committed_entries(path) == n


async def test_first_calls_lead_their_group(path: Path) -> None:
    order: list[str] = []

    def note(journal: Journal, what: str) -> str:
        order.append(what)
        return what

    async with HeldWorker(path) as held:
        rest = [held.call(note, f"r{k}") for k in range(3)]
        first = [held.call(note, f"f{k}", first=True) for k in range(2)]
        await held.let_go()
        await asyncio.gather(*rest, *first)
    assert order == ["f0", "f1", "r0", "r1", "r2"]


async def test_a_group_that_fails_to_commit_runs_each_call_alone(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with HeldWorker(path) as held:
        real = held.journal._db
        fail = {"commits": 1}

        class OnceFailingCommit:
            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

            def execute(self, sql: str, *args: Any) -> Any:
                if sql == "COMMIT" and fail["commits"]:
                    fail["commits"] -= 1
                    raise sqlite3.OperationalError("disk I/O error")
                return real.execute(sql, *args)

        held.journal._db = OnceFailingCommit()  # type: ignore[assignment]
        calls = [held.call(receive, k) for k in range(1, 6)]
        with caplog.at_level(logging.WARNING, logger="bridge.worker"):
            await held.let_go()
            assert await asyncio.gather(*calls) == [1, 2, 3, 4, 5]
        assert "group of 5 calls rolled back" in caplog.text
        held.journal._db = real
    assert committed_entries(path) == 5  # each once: the group left nothing


async def test_a_failing_call_in_a_group_gets_its_own_error_and_the_others_commit(
    path: Path,
) -> None:
    async with HeldWorker(path) as held:
        commits: list[str] = []
        held.journal._db.set_trace_callback(lambda s: commits.append(s) if s == "COMMIT" else None)
        first = held.call(receive, 1)
        bad = held.call(Journal.start, 999, idempotent=False)
        last = held.call(receive, 2)
        await held.let_go()
        assert await first == 1 and await last == 2
        with pytest.raises(UnknownEntry):
            await bad
        assert len(commits) == 1  # it failed before writing: the group stood whole
    assert committed_entries(path) == 2


async def test_an_outcome_a_future_refuses_strands_none_of_its_group(path: Path) -> None:
    def stop_iteration(journal: Journal) -> None:
        raise StopIteration("from a generator's next()")

    async with HeldWorker(path) as held:
        odd = held.call(stop_iteration)
        fine = held.call(receive, 1)
        await held.let_go()
        with pytest.raises(RuntimeError, match="StopIteration"):
            await asyncio.wait_for(odd, 5)
        assert await asyncio.wait_for(fine, 5) == 1


async def test_no_result_leaves_the_worker_before_its_groups_commit(path: Path) -> None:
    seen_committed: list[int] = []
    async with HeldWorker(path) as held:
        calls = [held.call(receive, k) for k in range(1, 4)]
        for c in calls:
            c.add_done_callback(lambda _: seen_committed.append(committed_entries(path)))
        await held.let_go()
        await asyncio.gather(*calls)
    assert seen_committed == [3, 3, 3]  # each result came after all three were in the file


def test_prune_in_a_group_tidies_after_the_commit(j: Journal, path: Path) -> None:
    old = receive(j, 1)
    j.reject(old, "test")  # settled
    with j.group():
        receive(j, 2)
        assert j.prune(now=NOW + 40 * 86400) == 1  # no checkpoint inside the transaction
    assert committed_entries(path) == 1
    with pytest.raises(UnknownEntry):
        j.get(old)
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # truncated after the commit


def test_a_call_that_fails_before_writing_leaves_the_group_whole(j: Journal, path: Path) -> None:
    seen: list[str] = []
    j._db.set_trace_callback(seen.append)
    with j.group():
        a = receive(j, 1)
        with pytest.raises(UnknownEntry):
            j.start(999, idempotent=False)
        with pytest.raises(jmod.IllegalTransition):
            j.complete(a, ok=True, to="2936", reply="pong")  # received: nothing written
        assert not j.broken
        receive(j, 2)
    j._db.set_trace_callback(None)
    assert committed_entries(path) == 2 and seen.count("COMMIT") == 1
