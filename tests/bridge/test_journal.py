"""The journal on real SQLite files: states, recovery, dedupe, corruption, crashes, pruning."""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import replace as dataclasses_replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge import journal as jmod
from bridge.auth import ReplayWindow
from bridge.journal import (
    IllegalTransition,
    Journal,
    JournalError,
    Kind,
    SchemaTooNew,
    State,
    UnknownEntry,
)

DAY = 86400.0


class Clock:
    def __init__(self, now=1_764_578_400.0):
        self.now = now

    def __call__(self):
        return self.now

    def tick(self, s=1.0):
        self.now += s


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def path(tmp_path):
    return tmp_path / "journal.db"


@pytest.fixture
def j(path, clock):
    with Journal.open(path, clock=clock) as journal:
        yield journal


def receive(j, n=1, **kw):
    args = {
        "modem": "m0",
        "sender": "2936",
        "body": f"ping {n}",
        "identity": f"id{n}",
        "part_ids": (f"p{n}a", f"p{n}b"),
    }
    args.update(kw)
    return j.receive(**args)


def test_file_is_wal_and_versioned(j, path):
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(jmod.MIGRATIONS) == 1
    db.close()


def test_whole_life_of_a_command_timed(j, clock):
    r = receive(j, sid="DC" + "0" * 32, product="programmable-wireless")
    assert not r.duplicate
    clock.tick()
    j.start(r.entry_id, idempotent=True, summary="ping")
    clock.tick()
    j.finish(r.entry_id, ok=True)
    clock.tick()
    ref = j.queue_reply(r.entry_id, to="2936", reply="pong")
    clock.tick()
    assert j.mark_sending(r.entry_id) == 0
    clock.tick()
    j.mark_sent(r.entry_id, tp_mr=17)
    e = j.get(r.entry_id)
    assert (e.state, e.tp_mr, e.reply, e.reply_ref, e.send_attempts) == (
        State.SENT,
        17,
        "pong",
        ref,
        1,
    )
    assert [(t.state, t.at - e.created) for t in e.transitions] == [
        (State.RECEIVED, 0.0),
        (State.EXECUTING, 1.0),
        (State.DONE, 2.0),
        (State.REPLY_QUEUED, 3.0),
        (State.SENDING, 4.0),
        (State.SENT, 5.0),
    ]
    assert j.counts()[State.SENT] == 1 and sum(j.counts().values()) == 1


@pytest.mark.parametrize(
    ("steps", "wanted"),
    [
        ([], State.SENT),
        ([], State.DONE),
        ([], State.REPLY_QUEUED),
        (["start"], State.REJECTED),
        (["start", "done"], State.EXECUTING),
        (["reject"], State.EXECUTING),
        (["start", "done", "queue", "sending", "sent"], State.SENDING),
    ],
)
def test_illegal_transitions_refused(j, steps, wanted):
    eid = receive(j).entry_id
    actions = {
        "start": lambda: j.start(eid, idempotent=False),
        "done": lambda: j.finish(eid, ok=True),
        "queue": lambda: j.queue_reply(eid, to="2936", reply="x"),
        "sending": lambda: j.mark_sending(eid),
        "sent": lambda: j.mark_sent(eid, 1),
        "reject": lambda: j.reject(eid, "bad-tag"),
    }
    for s in steps:
        actions[s]()
    before = j.get(eid)
    with pytest.raises(IllegalTransition) as e, j._tx(full=False):
        j._move(eid, wanted, None)
    assert e.value.wanted is wanted and e.value.current is before.state
    assert j.get(eid) == before  # nothing recorded


def test_public_methods_refuse_out_of_order(j):
    eid = receive(j).entry_id
    with pytest.raises(IllegalTransition, match="received -> done"):
        j.finish(eid, ok=True)
    with pytest.raises(IllegalTransition):
        j.mark_sent(eid, 3)
    with pytest.raises(UnknownEntry):
        j.start(999, idempotent=True)
    with pytest.raises(UnknownEntry):
        j.get(999)
    j.finish(eid, ok=False, reason="usage")  # received -> failed: a usage error, answered
    assert j.get(eid).state is State.FAILED


def test_dedupe_by_sid_identity_and_counter(j):
    sid = "DC" + "a" * 32
    first = receive(j, 1, sid=sid)
    # Twilio retried: same SID, a new SMS (new identity)
    again = receive(j, 2, sid=sid)
    assert again == jmod.Receipt(first.entry_id, True)
    # the network delivered the same SMS twice: same identity, no SID
    twice = receive(j, 1, sid=None, part_ids=("p1c",))
    assert twice == jmod.Receipt(first.entry_id, True)
    assert j.has_part("p1c") and j.has_part("p2a")  # the duplicate's parts are known too
    # signed: the counter, once the tag checked
    other = receive(j, 3)
    w = ReplayWindow().check(9)
    assert j.authenticate(other.entry_id, 9, w)
    fourth = receive(j, 4)
    assert not j.authenticate(fourth.entry_id, 9, w)
    # the same entry again (recovery after a restart): accepted, nothing changes
    assert j.authenticate(other.entry_id, 9, w.check(10))
    assert j.replay_window() == w
    assert j.get(other.entry_id).counter == 9 and j.get(fourth.entry_id).counter is None
    assert j.replay_window() == w
    assert sum(j.counts().values()) == 3


def test_has_part(j):
    assert not j.has_part("p1a")
    receive(j, 1)
    assert j.has_part("p1a") and j.has_part("p1b") and not j.has_part("p2a")


def test_undecodable_journaled_raw(j):
    r = j.receive_undecodable(modem="m0", identity="raw-1", raw_pdu="07FFFF", error="TP-DCS: bad")
    e = j.get(r.entry_id)
    assert (e.kind, e.state, e.raw_pdu, e.error, e.reason) == (
        Kind.UNDECODABLE,
        State.REJECTED,
        "07FFFF",
        "TP-DCS: bad",
        "undecodable",
    )
    assert j.receive_undecodable(
        modem="m0", identity="raw-1", raw_pdu="07FFFF", error="x"
    ).duplicate


def test_binary_body_and_reply_kept_as_bytes(j):
    eid = receive(j, body=b"\xa0\x01\x00").entry_id
    j.start(eid, idempotent=True)
    j.finish(eid, ok=True)
    j.queue_reply(eid, to="2936", reply=b"\x01\x02")
    e = j.get(eid)
    assert (e.body, e.reply) == (b"\xa0\x01\x00", b"\x01\x02")


def test_outbox_for_device_initiated_messages(j):
    eid = j.enqueue_report(modem="m0", to="2936", message="boot ok", summary="boot")
    e = j.get(eid)
    assert (e.kind, e.state, e.reply, e.reply_to) == (
        Kind.REPORT,
        State.REPLY_QUEUED,
        "boot ok",
        "2936",
    )
    assert [x.id for x in j.recovery().send] == [eid]


def test_restart_recovery(path, clock):
    with Journal.open(path, clock=clock) as j:
        run = receive(j, 1).entry_id
        rerun = receive(j, 2).entry_id
        j.start(rerun, idempotent=True)
        interrupted = receive(j, 3).entry_id
        j.start(interrupted, idempotent=False)
        send = receive(j, 4).entry_id
        j.start(send, idempotent=True)
        j.finish(send, ok=True)
        j.queue_reply(send, to="2936", reply="pong")
        resend = receive(j, 5).entry_id
        j.start(resend, idempotent=True)
        j.finish(resend, ok=True)
        ref = j.queue_reply(resend, to="2936", reply="pong 5")
        j.mark_sending(resend)
        done = receive(j, 6).entry_id
        j.reject(done, "bad-tag")
        j.receive_undecodable(modem="m0", identity="raw", raw_pdu="00", error="x")
    with Journal.open(path, clock=clock) as j:
        rec = j.recovery()
        assert [e.id for e in rec.run] == [run]
        assert [e.id for e in rec.rerun] == [rerun]
        assert [e.id for e in rec.interrupted] == [interrupted]
        assert [e.id for e in rec.send] == [send]
        assert [e.id for e in rec.resend] == [resend]
        # interrupted: answered, never run again
        j.finish(interrupted, ok=False, reason="interrupted")
        j.queue_reply(interrupted, to="2936", reply="interrupted")
        # resend: same reply, same reference, counted
        assert j.mark_sending(resend) == 1
        e = j.get(resend)
        assert (e.reply, e.reply_ref, e.resends, e.send_attempts) == ("pong 5", ref, 1, 2)
        j.mark_sent(resend, 4)
        assert [e.id for e in j.recovery().resend] == []


def test_gating_writes_commit_with_synchronous_full(j):
    start = {1: "NORMAL", 2: "FULL"}[j._db.execute("PRAGMA synchronous").fetchone()[0]]
    seen = [f"PRAGMA synchronous={start}"]
    j._db.set_trace_callback(seen.append)
    eid = receive(j).entry_id
    j.reject(eid, "bad-tag")  # not gating
    eid2 = receive(j, 2).entry_id
    j.start(eid2, idempotent=False)

    def mode_at(i):
        modes = [s for s in seen[:i] if s.startswith("PRAGMA synchronous")]
        return modes[-1]

    begins = [i for i, s in enumerate(seen) if s.startswith("BEGIN")]
    assert [mode_at(i) for i in begins] == [
        "PRAGMA synchronous=FULL",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA synchronous=FULL",
        "PRAGMA synchronous=FULL",
    ]


def _modes_of_commits(j, ops):
    """The synchronous mode in force at each BEGIN while ``ops`` run."""
    start = {1: "NORMAL", 2: "FULL"}[j._db.execute("PRAGMA synchronous").fetchone()[0]]
    seen = [f"PRAGMA synchronous={start}"]
    j._db.set_trace_callback(seen.append)
    try:
        ops()
    finally:
        j._db.set_trace_callback(None)
    out, mode = [], start
    for s in seen:
        if s.startswith("PRAGMA synchronous="):
            mode = s.split("=")[1]
        elif s.startswith("BEGIN"):
            out.append(mode)
    return out


def test_idempotent_start_and_sent_are_normal_the_rest_of_the_path_full(j):
    eid = receive(j).entry_id
    eid2 = receive(j, 2).entry_id

    def ops():
        j.start(eid, idempotent=True)  # recovery runs it again if a power cut loses it
        j.start(eid2, idempotent=False)  # gates a non-idempotent action
        j.complete(eid, ok=True, to="2936", reply="pong")
        j.mark_sending(eid)
        j.mark_sent(eid, 7)  # a lost "sent" is a counted resend

    assert _modes_of_commits(j, ops) == ["NORMAL", "FULL", "FULL", "FULL", "NORMAL"]
    assert j.get(eid).state is State.SENT and j.get(eid2).state is State.EXECUTING


def test_complete_records_outcome_and_reply_in_one_transaction(j):
    eid = receive(j).entry_id
    j.start(eid, idempotent=True)
    seen = []
    j._db.set_trace_callback(seen.append)
    ref = j.complete(eid, ok=False, reason="command-failed", to="2936", reply="gpio: error")
    j._db.set_trace_callback(None)
    assert [s for s in seen if s in ("BEGIN IMMEDIATE", "COMMIT")] == ["BEGIN IMMEDIATE", "COMMIT"]
    e = j.get(eid)
    assert ref == f"{eid:x}" == e.reply_ref
    assert (e.state, e.reason, e.reply, e.reply_to) == (
        State.REPLY_QUEUED,
        "command-failed",
        "gpio: error",
        "2936",
    )
    assert [t.state for t in e.transitions][-3:] == [
        State.EXECUTING,
        State.FAILED,
        State.REPLY_QUEUED,
    ]
    assert [e.id for e in j.recovery().send] == [eid]


def test_complete_answers_a_usage_error_straight_from_received(j):
    eid = receive(j).entry_id
    j.complete(eid, ok=False, reason="usage", to="2936", reply="usage: gpio get NAME")
    assert [t.state for t in j.get(eid).transitions] == [
        State.RECEIVED,
        State.FAILED,
        State.REPLY_QUEUED,
    ]
    eid2 = receive(j, 2).entry_id
    with pytest.raises(IllegalTransition, match="received -> done"):
        j.complete(eid2, ok=True, to="2936", reply="pong")  # success needs executing
    assert j.get(eid2).state is State.RECEIVED and j.get(eid2).reply is None


def test_complete_with_a_signer_takes_the_next_reply_counter_in_its_transaction(j, path):
    first = j.next_reply_counter()
    eid = receive(j).entry_id
    j.start(eid, idempotent=True)
    got = []

    def sign(counter):
        got.append(counter)
        # the side file already holds the counter before the commit
        assert (
            json.loads(path.with_name(path.name + ".counters").read_text())["reply_counter"]
            == counter
        )
        return f"pong #{counter}"

    j.complete(eid, ok=True, to="2936", reply=sign)
    assert got == [first + 1] and j.get(eid).reply == f"pong #{first + 1}"
    assert j.next_reply_counter() == first + 2


def test_complete_that_fails_records_nothing_and_keeps_the_counter_unused_twice(j):
    eid = receive(j).entry_id
    j.start(eid, idempotent=True)
    before = j.next_reply_counter()
    j._db.execute(
        "CREATE TRIGGER no_replies BEFORE UPDATE OF reply_text ON entry "
        "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
    )
    with pytest.raises(JournalError, match="disk I/O error"):
        j.complete(eid, ok=True, to="2936", reply=lambda n: f"pong #{n}")
    j._db.execute("DROP TRIGGER no_replies")
    e = j.get(eid)
    assert (e.state, e.reply) == (State.EXECUTING, None)  # the outcome is not half-recorded
    assert j.next_reply_counter() == before + 2  # the one taken is skipped, never reused


def test_start_with_budget_used_up_changes_nothing_and_names_it(j, clock):
    budget = jmod.Budget(
        hour_since=clock() - 3600,
        day_since=clock() - DAY,
        sender="2936",
        global_per_hour=10,
        global_per_day=10,
        sender_per_hour=1,
        sender_per_day=10,
    )
    eid = receive(j).entry_id
    assert j.start(eid, idempotent=True, budget=budget) is None
    j.complete(eid, ok=True, to="2936", reply="pong")
    eid2 = receive(j, 2).entry_id
    assert j.over_budget(budget) == "sender-hour"
    assert j.start(eid2, idempotent=False, budget=budget) == "sender-hour"
    e = j.get(eid2)
    assert e.state is State.RECEIVED and [t.state for t in e.transitions] == [State.RECEIVED]
    assert (
        j.start(eid2, idempotent=False, budget=dataclasses_replace(budget, sender_per_hour=5))
        is None
    )
    assert j.get(eid2).state is State.EXECUTING


def test_receive_hands_back_the_new_entry_as_stored(j):
    r = receive(j)
    assert r.entry is not None and r.entry == j.get(r.entry_id, transitions=False)
    assert r.entry.state is State.RECEIVED and r.entry.transitions == ()
    dup = receive(j)
    assert dup.duplicate and dup.entry is None


def test_newer_schema_refused(path, clock):
    Journal.open(path, clock=clock).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=7")
    db.close()
    with pytest.raises(SchemaTooNew, match="version 7"):
        Journal.open(path, clock=clock)
    assert path.exists()  # not treated as corrupt


def test_migrations_run_in_order(path, clock, monkeypatch):
    with Journal.open(path, clock=clock) as j:
        receive(j, 1)
    monkeypatch.setattr(jmod, "MIGRATIONS", (*jmod.MIGRATIONS, ("CREATE TABLE extra (x INTEGER)",)))
    with Journal.open(path, clock=clock) as j:
        assert j._db.execute("PRAGMA user_version").fetchone()[0] == 2
        assert j._db.execute("SELECT count(*) FROM extra").fetchone()[0] == 0
        assert j.has_part("p1a")  # data kept


def test_locked_file_is_not_corrupt(path, clock):
    Journal.open(path, clock=clock).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA locking_mode=EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(JournalError, match="locked"):
            Journal.open(path, clock=clock, timeout=0)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert not list(path.parent.glob("*.corrupt-*"))


def _corrupt_header(path):
    with open(path, "r+b") as f:
        f.write(b"this is not sqlite" * 10)


def _corrupt_page(path):
    with open(path, "r+b") as f:
        f.seek(4096 * 2)  # a b-tree page of a table, past the header page
        f.write(b"\xff" * 4096)


@pytest.mark.parametrize("damage", [_corrupt_header, _corrupt_page])
def test_corrupt_file_moved_aside_fresh_start_counter_kept(path, clock, caplog, damage):
    with Journal.open(path, clock=clock) as j:
        for n in range(40):
            receive(j, n)
        eid = receive(j, 99).entry_id
        j.authenticate(eid, 500, ReplayWindow().check(500))
        for _ in range(3):
            j.next_reply_counter()
    damage(path)
    clock.now = 1_764_578_400.0  # 2025-12-01T08:40:00Z
    with caplog.at_level(logging.CRITICAL, logger="bridge.journal"):
        j = Journal.open(path, clock=clock)
    try:
        aside = path.with_name("journal.db.corrupt-20251201T084000Z")
        assert j.moved_aside == aside and aside.exists()
        assert any("corrupt" in r.message and r.levelno == logging.CRITICAL for r in caplog.records)
        assert sum(j.counts().values()) == 0
        w = j.replay_window()
        assert w.highest == 500 and w.seen(500) and w.seen(437)  # never goes back
        assert j.next_reply_counter() == 4
    finally:
        j.close()


def test_side_file_written_atomically_and_private(j, path):
    eid = receive(j).entry_id
    j.authenticate(eid, 12, ReplayWindow().check(12))
    side = path.with_name("journal.db.counters")
    assert json.loads(side.read_text()) == {"command_counter": 12, "reply_counter": 0}
    assert oct(side.stat().st_mode & 0o777) == "0o600"
    assert not side.with_name(side.name + ".tmp").exists()


def test_side_file_ahead_of_the_database_wins(path, clock):
    """The database went back (a restored copy, a lost file): the side file wins."""
    Journal.open(path, clock=clock).close()
    path.with_name("journal.db.counters").write_text(
        json.dumps({"command_counter": 80, "reply_counter": 5})
    )
    with Journal.open(path, clock=clock) as j:
        assert j.replay_window().highest == 80 and j.replay_window().seen(80)
        assert j.next_reply_counter() == 6


def test_a_kill_before_authenticate_commits_leaves_the_counter_usable(path, clock, monkeypatch):
    """Killed inside authenticate, before its commit: nothing was accepted, so
    after the restart the same Command (its counter) is checked and accepted,
    not refused as a replay. The side file used to be raised before the commit:
    the restart then counted every counter up to it as used, and the Command
    (and any queued with lower counters) was lost unanswered."""
    with Journal.open(path, clock=clock) as j:
        first = receive(j, 1).entry_id
        assert j.authenticate(first, 7, ReplayWindow().check(7))
        eid = receive(j, 2).entry_id

        def killed(*args, **kwargs):
            raise SystemExit("killed before the commit")

        monkeypatch.setattr(j, "_put", killed)
        with pytest.raises(SystemExit):
            j.authenticate(eid, 9, j.replay_window().check(9))
        monkeypatch.undo()
    with Journal.open(path, clock=clock) as j:
        w = j.replay_window()
        assert w.highest == 7 and w.seen(7) and not w.seen(9) and not w.seen(8)
        assert j.authenticate(eid, 9, w.check(9))
        assert j.get(eid).counter == 9


def test_lost_database_keeps_the_marks(path, clock):
    with Journal.open(path, clock=clock) as j:
        eid = receive(j).entry_id
        j.authenticate(eid, 7, ReplayWindow().check(7))
    for p in path.parent.glob("journal.db*"):
        if not p.name.endswith(".counters"):
            p.unlink()
    with Journal.open(path, clock=clock) as j:
        assert j.replay_window().seen(7)


def test_prune_after_30_days_keeps_pending_work(j, clock):
    old_sent = receive(j, 1).entry_id
    j.start(old_sent, idempotent=True)
    j.finish(old_sent, ok=True)
    j.queue_reply(old_sent, to="2936", reply="x")
    j.mark_sending(old_sent)
    j.mark_sent(old_sent, 1)
    old_pending = receive(j, 2).entry_id
    old_rejected = receive(j, 3).entry_id
    j.reject(old_rejected, "replayed")
    clock.tick(30 * DAY - 1)
    young = receive(j, 4).entry_id
    j.reject(young, "x")
    assert j.prune() == 0
    clock.tick(2)
    assert j.prune() == 2
    with pytest.raises(UnknownEntry):
        j.get(old_sent)
    assert j.get(old_pending).state is State.RECEIVED
    assert not j.has_part("p1a") and not j.has_part("p3a") and j.has_part("p2a")
    # the dedupe keys went too: the same identity is new again after 30 days
    assert not receive(j, 1).duplicate
    n = j._db.execute("SELECT count(*) FROM transition WHERE entry_id = ?", (old_sent,))
    assert n.fetchone()[0] == 0


def test_file_stays_bounded(path, clock):
    sizes = []
    with Journal.open(path, clock=clock) as j:
        n = 0
        for _day in range(24):
            for _ in range(60):
                n += 1
                eid = receive(j, n, body="status " + "x" * 100).entry_id
                j.start(eid, idempotent=True)
                j.finish(eid, ok=True)
                j.queue_reply(eid, to="2936", reply="y" * 150)
                j.mark_sending(eid)
                j.mark_sent(eid, n % 256)
                clock.tick(DAY / 60)
            j.prune(keep=4 * DAY)
            sizes.append(sum(p.stat().st_size for p in path.parent.glob("journal.db*")))
    # four days of records in steady state: after the warm-up the file does
    # not keep growing (a page or two of b-tree balance either way; without
    # pruning it would end four times larger than on day 6)
    assert max(sizes[12:]) <= 1.1 * max(sizes[6:12]), sizes
    assert sizes[-1] < 1.5 * sizes[5], sizes


# --- crash in the middle of a transaction --------------------------------------

_CHILD = textwrap.dedent(
    """
    import sys, time
    from bridge.journal import Journal
    from bridge.auth import ReplayWindow
    stop_at = int(sys.argv[2])
    j = Journal.open(sys.argv[1])
    count = [0]
    def trace(sql):
        if sql.startswith("PRAGMA synchronous"):
            return
        count[0] += 1
        if count[0] == stop_at:
            print("at", sql.split()[0], flush=True)
            time.sleep(600)
    j._db.set_trace_callback(trace)
    r = j.receive(modem="m0", sender="2936", body="reboot", identity="idK",
                  part_ids=("k1", "k2", "k3"), sid="DC" + "f" * 32)
    j.authenticate(r.entry_id, 33, ReplayWindow().check(33))
    print("finished", flush=True)
    time.sleep(600)
    """
)


def _statements_of_receive_and_authenticate(tmp_path):
    seen = []
    with Journal.open(tmp_path / "probe.db") as j:
        j._db.set_trace_callback(seen.append)
        r = j.receive(
            modem="m0",
            sender="2936",
            body="reboot",
            identity="idK",
            part_ids=("k1", "k2", "k3"),
            sid="DC" + "f" * 32,
        )
        j.authenticate(r.entry_id, 33, ReplayWindow().check(33))
        j._db.set_trace_callback(None)
    return [s for s in seen if not s.startswith("PRAGMA synchronous")]


def _run_child_until(path, stop_at):
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(stop_at)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    try:
        line = proc.stdout.readline()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.stdout.close()
        if proc.poll() is None:  # pragma: no cover
            proc.kill()
            proc.wait()
    return line


def test_kill_between_statements_leaves_nothing_half_written(tmp_path):
    statements = _statements_of_receive_and_authenticate(tmp_path)
    commits = [i + 1 for i, s in enumerate(statements) if s == "COMMIT"]
    assert len(commits) == 2  # receive, then authenticate
    for stop_at in range(1, len(statements) + 2):
        path = tmp_path / f"kill{stop_at}.db"
        Journal.open(path).close()
        line = _run_child_until(path, stop_at)
        assert line.startswith(("at", "finished")), line
        with Journal.open(path) as j:
            entries = j.list_entries()
            received = stop_at > commits[0]  # killed after the first COMMIT ran
            authenticated = stop_at > commits[1]
            assert len(entries) == int(received), (stop_at, statements[stop_at - 1 : stop_at])
            assert j.has_part("k1") is received and j.has_part("k3") is received
            if received:
                e = entries[0]
                assert (e.state, e.sid, e.body) == (State.RECEIVED, "DC" + "f" * 32, "reboot")
                assert len(j.get(e.id).transitions) == 1
                assert (e.counter == 33) is authenticated
            # the window is persisted with the counter or not at all (the side
            # file is raised first, so it may be ahead: never behind)
            w = j.replay_window()
            assert w.seen(33) is (authenticated or w.highest >= 33)
            if authenticated:
                assert w.highest == 33


# --- the state machine under arbitrary sequences ------------------------------

_OPS = {
    "reject": (lambda j, e: j.reject(e, "r"), {State.RECEIVED: State.REJECTED}),
    "start": (
        lambda j, e: j.start(e, idempotent=True),
        {State.RECEIVED: State.EXECUTING},
    ),
    "fail": (
        lambda j, e: j.finish(e, ok=False, reason="x"),
        {State.RECEIVED: State.FAILED, State.EXECUTING: State.FAILED},
    ),
    "done": (lambda j, e: j.finish(e, ok=True), {State.EXECUTING: State.DONE}),
    "queue": (
        lambda j, e: j.queue_reply(e, to="2936", reply="r"),
        {State.DONE: State.REPLY_QUEUED, State.FAILED: State.REPLY_QUEUED},
    ),
    "sending": (
        lambda j, e: j.mark_sending(e),
        {State.REPLY_QUEUED: State.SENDING, State.SENDING: State.SENDING},
    ),
    "sent": (lambda j, e: j.mark_sent(e, 1), {State.SENDING: State.SENT}),
    "send_failed": (
        lambda j, e: j.mark_send_failed(e, "x"),
        {State.SENDING: State.SEND_FAILED},
    ),
    "requeue": (
        lambda j, e: j.requeue(e, "x"),
        {State.SENDING: State.REPLY_QUEUED, State.SEND_FAILED: State.REPLY_QUEUED},
    ),
}


@pytest.fixture(scope="module")
def shared_journal(tmp_path_factory):
    with Journal.open(tmp_path_factory.mktemp("sm") / "j.db") as j:
        yield j


_serial = iter(range(10**9))


@given(st.lists(st.sampled_from(sorted(_OPS)), max_size=12))
def test_only_allowed_transitions_happen(shared_journal, ops):
    j = shared_journal
    eid = receive(j, f"sm{next(_serial)}").entry_id
    state = State.RECEIVED
    path = [state]
    for name in ops:
        fn, moves = _OPS[name]
        if state in moves:
            fn(j, eid)
            state = moves[state]
            path.append(state)
        else:
            with pytest.raises(IllegalTransition):
                fn(j, eid)
        assert j.get(eid).state is state
    recorded = [t.state for t in j.get(eid).transitions]
    assert recorded == path
    assert all(b in jmod.TRANSITIONS[a] for a, b in itertools.pairwise(recorded))


def _answered(j, n, sender):
    """A Command from ``sender`` run and its reply queued; its entry id."""
    eid = receive(j, n, sender=sender).entry_id
    j.start(eid, idempotent=True)
    j.finish(eid, ok=True)
    j.queue_reply(eid, to="2936", reply="x")
    return eid


def test_replies_since_counts_what_the_budgets_need(j, clock):
    t0 = clock.now
    _answered(j, 1, "2936")
    clock.tick(3600)
    eid = _answered(j, 2, "+447700900123")
    j.mark_sending(eid)
    j.requeue(eid, "transient")  # queued again: still one reply
    j.enqueue_report(modem="m0", to="2936", message="boot")
    assert j.replies_since(t0) == 3
    assert j.replies_since(t0 + 1) == 2
    assert j.replies_since(t0, sender="2936") == 1
    assert j.replies_since(t0, sender="+447700900123") == 1


def test_reply_usage_gives_the_four_budget_counts_of_replies_since(j, clock):
    t0 = clock.now
    _answered(j, 1, "2936")
    clock.tick(3600)
    _answered(j, 2, "2936")
    eid = _answered(j, 3, "+447700900123")
    j.mark_sending(eid)
    j.requeue(eid, "transient")  # queued again: still one reply
    clock.tick(1)
    j.enqueue_report(modem="m0", to="2936", message="boot")
    for hour, day in ((t0 + 1, t0), (t0 + 3600, t0), (t0 + 3601, t0 + 1), (t0 + 9999, t0 + 9999)):
        for sender in ("2936", "+447700900123", "000"):
            want = (
                j.replies_since(hour),
                j.replies_since(day),
                j.replies_since(hour, sender=sender),
                j.replies_since(day, sender=sender),
            )
            assert j.reply_usage(hour_since=hour, day_since=day, sender=sender) == want
    assert j.reply_usage(hour_since=t0 + 1, day_since=t0, sender="2936") == (3, 4, 1, 2)


def test_disk_full_is_a_journal_error_and_nothing_half_written(j, path):
    receive(j, 1)
    pages = j._db.execute("PRAGMA page_count").fetchone()[0]
    j._db.execute(f"PRAGMA max_page_count={pages + 2}")  # the disk fills up
    stored = [1]
    with pytest.raises(JournalError, match=f"journal {path}: database or disk is full"):
        for n in range(2, 200):
            receive(j, n, body="x" * 2000)
            stored.append(n)
    j._db.execute("PRAGMA max_page_count=1073741823")
    entries = j.list_entries(limit=500)
    assert sorted(e.identity for e in entries) == sorted(f"id{n}" for n in stored)
    failed = stored[-1] + 1
    assert not j.has_part(f"p{failed}a") and not j.has_part(f"p{failed}b")
    for e in entries:  # every stored entry whole: its parts and its first transition
        n = e.identity[2:]
        assert j.has_part(f"p{n}a") and j.has_part(f"p{n}b")
        assert len(j.get(e.id).transitions) == 1
    assert not receive(j, failed).duplicate  # the failed one can be journaled later


def test_closed_journal_is_a_journal_error(path, clock):
    j = Journal.open(path, clock=clock)
    j.close()
    with pytest.raises(JournalError, match="closed"):
        j.has_part("x")


# --- the reply budgets' index ----------------------------------------------------

_INDEX_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("queue"), st.sampled_from(["2936", "000", "+15551234567"])),
        st.tuples(st.just("report"), st.none()),
        st.tuples(st.just("requeue"), st.integers(0, 30)),
        st.tuples(
            st.just("tick"),
            st.sampled_from([-3600.0, -60.0, 30.0, 3600.0, 25 * 3600.0])
            | st.floats(-7200.0, 30 * 3600.0),
        ),
        st.tuples(st.just("reopen"), st.none()),
    ),
    max_size=40,
)


@given(
    ops=_INDEX_OPS,
    probes=st.lists(
        st.sampled_from([-3600.0, -1800.0, -30.0, 0.0, 1800.0]) | st.floats(-3 * DAY, 3600.0),
        min_size=1,
        max_size=5,
    ),
)
def test_reply_counts_equal_the_sql_count_whatever_the_history(tmp_path_factory, ops, probes):
    path = tmp_path_factory.mktemp("idx") / "journal.db"
    clock = Clock()
    j = Journal.open(path, clock=clock)
    queued: list[int] = []
    n = itertools.count()
    try:
        for op, arg in ops:
            if op == "queue":
                eid = receive(j, next(n), sender=arg).entry_id
                j.start(eid, idempotent=True)
                j.complete(eid, ok=True, to="2936", reply="pong")
                queued.append(eid)
            elif op == "report":
                queued.append(j.enqueue_report(modem="m0", to="2936", message="boot"))
            elif op == "requeue" and queued:
                eid = queued[arg % len(queued)]
                if j.get(eid).state is State.REPLY_QUEUED:
                    j.mark_sending(eid)
                    j.requeue(eid, "timeout")  # queued again: counts once, at its latest
            elif op == "tick":
                clock.tick(arg)
            elif op == "reopen":
                j.close()
                j = Journal.open(path, clock=clock)
            for back in probes:
                since = clock() + back
                for sender in (None, "2936", "000", "+15551234567"):
                    assert j.replies_since(since, sender=sender) == j._replies_since_sql(
                        since, sender
                    ), (op, since, sender)
            hour, day = clock() - 3600, clock() - DAY
            assert j.reply_usage(hour_since=hour, day_since=day, sender="2936") == (
                j._replies_since_sql(hour, None),
                j._replies_since_sql(day, None),
                j._replies_since_sql(hour, "2936"),
                j._replies_since_sql(day, "2936"),
            )
    finally:
        j.close()


def test_reply_index_is_used_for_the_budgets_no_scan_of_the_day(j, clock):
    for i in range(20):
        eid = receive(j, i).entry_id
        j.start(eid, idempotent=True)
        j.complete(eid, ok=True, to="2936", reply="pong")
        clock.tick(60)
    seen = []
    j._db.set_trace_callback(seen.append)
    used = j.reply_usage(hour_since=clock() - 600, day_since=clock() - DAY, sender="2936")
    j._db.set_trace_callback(None)
    assert used == (10, 20, 10, 20) and seen == []  # answered from memory


def test_reply_requeued_after_the_clock_went_back_counts_at_its_latest_time(j, clock):
    eid = receive(j).entry_id
    j.start(eid, idempotent=True)
    j.complete(eid, ok=True, to="2936", reply="pong")
    queued_at = clock()
    clock.tick(-3600)  # the clock stepped back (NTP after a boot without RTC)
    j.mark_sending(eid)
    j.requeue(eid, "timeout")
    since = queued_at - 1800  # after the requeue, before the first queueing
    assert j.replies_since(since) == j._replies_since_sql(since, None) == 1
    assert j.replies_since(since, sender="2936") == 1


# --- checkpoints off the Command's path --------------------------------------------


def _entries_in_main_file(path, tmp_path):
    """What the database file holds without its WAL (what a checkpoint copied)."""
    copy = tmp_path / "copy.db"
    copy.write_bytes(path.read_bytes())
    db = sqlite3.connect(copy)
    try:
        return db.execute("SELECT count(*) FROM entry").fetchone()[0]
    except sqlite3.OperationalError:  # no table yet in the file itself
        return 0
    finally:
        db.close()


def test_no_checkpoint_inside_commits_until_the_limit(j, path, tmp_path):
    assert j._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    j._checkpoint()  # the opening's own commits
    before = _entries_in_main_file(path, tmp_path)
    seen = []
    j._db.set_trace_callback(seen.append)
    n = 0
    while not any("wal_checkpoint" in s for s in seen):
        receive(j, n)
        n += 1
        assert n <= jmod.CHECKPOINT_MAX_COMMITS
    j._db.set_trace_callback(None)
    assert n == jmod.CHECKPOINT_MAX_COMMITS
    assert _entries_in_main_file(path, tmp_path) == before + n


def test_idle_checkpoints_only_after_enough_commits(j, path, tmp_path):
    j._checkpoint()
    for n in range(jmod.CHECKPOINT_IDLE_COMMITS - 1):
        receive(j, n)
    assert j.idle() is False
    assert _entries_in_main_file(path, tmp_path) == 0
    receive(j, 999)
    assert j.idle() is True
    assert _entries_in_main_file(path, tmp_path) == jmod.CHECKPOINT_IDLE_COMMITS


def test_complete_and_claim_queues_and_marks_sending_in_one_full_transaction(j):
    eid = receive(j).entry_id
    j.start(eid, idempotent=True)
    modes = []

    def ops():
        modes.append(j.complete_and_claim(eid, ok=True, to="2936", reply="pong"))

    assert _modes_of_commits(j, ops) == ["FULL"]
    queued, resends = modes[0]
    assert (queued.state, queued.reply, queued.send_attempts, resends) == (
        State.REPLY_QUEUED,
        "pong",
        0,
        0,
    )
    e = j.get(eid)
    assert (e.state, e.send_attempts, e.resends) == (State.SENDING, 1, 0)
    assert [t.state for t in e.transitions][-3:] == [State.DONE, State.REPLY_QUEUED, State.SENDING]
    assert [x.id for x in j.recovery().resend] == [eid]  # a kill now: resent, counted


def _queued(j, n):
    eid = receive(j, n).entry_id
    j.start(eid, idempotent=True)
    j.complete(eid, ok=True, to="2936", reply=f"pong {n}")
    return eid


def test_mark_sent_and_claim_is_one_full_transaction(j):
    first, second = _queued(j, 1), _queued(j, 2)
    j.mark_sending(first)
    seen = []
    j._db.set_trace_callback(seen.append)
    claimed = j.mark_sent_and_claim(first, 17, second)
    j._db.set_trace_callback(None)
    assert [s for s in seen if s in ("BEGIN IMMEDIATE", "COMMIT")] == ["BEGIN IMMEDIATE", "COMMIT"]
    assert j._sync == "FULL"
    assert claimed is not None
    e, resends = claimed
    assert (e.id, e.state, e.reply, resends) == (second, State.REPLY_QUEUED, "pong 2", 0)
    a, b = j.get(first), j.get(second)
    assert (a.state, a.tp_mr, b.state, b.send_attempts) == (State.SENT, 17, State.SENDING, 1)


def test_mark_sent_and_claim_marks_only_the_first_when_the_next_has_nothing_to_send(j):
    first, second = _queued(j, 1), _queued(j, 2)
    j.mark_sending(first)
    j.mark_sending(second)
    j.mark_sent(second, 3)  # settled meanwhile
    assert j.mark_sent_and_claim(first, 17, second) is None
    assert (j.get(first).state, j.get(second).state) == (State.SENT, State.SENT)
    assert j.get(second).send_attempts == 1
    third = _queued(j, 3)
    j.mark_sending(third)
    assert j.mark_sent_and_claim(third, 1, 999) is None  # no such entry
    assert j.get(third).state is State.SENT


def test_mark_sent_and_claim_that_fails_records_neither(j):
    first, second = _queued(j, 1), _queued(j, 2)
    # the first is not sending: its mark refuses, and the claim is not made either
    with pytest.raises(IllegalTransition):
        j.mark_sent_and_claim(first, 17, second)
    assert (j.get(first).state, j.get(second).state) == (State.REPLY_QUEUED, State.REPLY_QUEUED)
    j.mark_sending(first)
    real = j._mark_sending

    def failing(entry_id):
        real(entry_id)
        raise sqlite3.OperationalError("disk I/O error")

    j._mark_sending = failing
    with pytest.raises(JournalError, match="disk I/O error"):
        j.mark_sent_and_claim(first, 17, second)
    del j._mark_sending
    assert (j.get(first).state, j.get(second).state) == (State.SENDING, State.REPLY_QUEUED)


# -- a row read back: whatever SQLite hands back, an Entry or ValueError -------------------


def _entry_reference(r: tuple[object, ...]) -> jmod.Entry:
    """The plain reading of a row (every column through str, then its type)."""
    (eid, kind, modem, state, sender, product, coding, sid, identity, counter, body_text,
     body_data, raw_pdu, error, idem, summary, reason, reply_to, reply_text, reply_data,
     reply_ref, tp_mr, attempts, resends, created, updated) = r  # fmt: skip

    def s(v: object) -> str | None:
        return None if v is None else str(v)

    def i(v: object) -> int | None:
        return None if v is None else int(str(v))

    return jmod.Entry(
        id=int(str(eid)),
        kind=jmod.Kind(str(kind)),
        modem=str(modem),
        state=State(str(state)),
        sender=s(sender),
        product=s(product),
        coding=s(coding),
        sid=s(sid),
        identity=s(identity),
        counter=i(counter),
        body=body_data if isinstance(body_data, bytes) else s(body_text),
        raw_pdu=s(raw_pdu),
        error=s(error),
        idempotent=None if idem is None else bool(idem),
        summary=s(summary),
        reason=s(reason),
        reply_to=s(reply_to),
        reply=reply_data if isinstance(reply_data, bytes) else s(reply_text),
        reply_ref=s(reply_ref),
        tp_mr=i(tp_mr),
        send_attempts=int(str(attempts)),
        resends=int(str(resends)),
        created=float(str(created)),
        updated=float(str(updated)),
    )


_sqlite_value = (
    st.none()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)


@st.composite
def _rows(draw: st.DrawFn) -> tuple[object, ...]:
    """Rows as a damaged or hand-edited file may hand them back, and good ones."""
    row = [draw(_sqlite_value) for _ in range(26)]
    if draw(st.booleans()):  # mostly well-formed: a kind and a state that exist
        row[1] = draw(st.sampled_from([k.value for k in jmod.Kind]))
        row[3] = draw(st.sampled_from([s.value for s in State]))
        for n in (0, 22, 23):
            row[n] = draw(st.integers(min_value=0, max_value=2**40))
        for n in (24, 25):
            row[n] = draw(st.floats(allow_nan=False))
    return tuple(row)


@given(_rows())
def test_a_row_reads_as_the_plain_reading_does_or_fails_alike(row: tuple[object, ...]) -> None:
    try:
        want: jmod.Entry | type[Exception] = _entry_reference(row)
    except ValueError:
        want = ValueError
    try:
        got: jmod.Entry | type[Exception] = jmod._entry(row)
    except ValueError:
        got = ValueError
    assert got == want
    if isinstance(got, jmod.Entry):
        assert isinstance(want, jmod.Entry)
        assert type(got.id) is int and type(got.created) is float
        assert got.kind is want.kind and got.state is want.state


@pytest.mark.parametrize(
    "content",
    [b"root:x:0:0:root:/root:/bin/bash\n" * 40, b"[[modem]]\nport = '/dev/ttyUSB2'\n" * 40],
    ids=["passwd", "config"],
)
def test_a_file_that_is_no_journal_is_refused_not_moved_aside(path, clock, content):
    """bridge.journal naming another file (a typo, the configuration itself):
    that file was renamed *.corrupt-... and a database put at its path."""
    path.write_bytes(content)
    with pytest.raises(JournalError) as e:
        Journal.open(path, clock=clock)
    assert str(e.value) == (
        f"journal {path}: not an SQLite database and no journal file beside it: "
        "left as it is (is bridge.journal right?)"
    )
    assert path.read_bytes() == content
    assert sorted(p.name for p in path.parent.iterdir()) == ["journal.db"]


def _zero_header(path):
    with open(path, "r+b") as f:
        f.write(bytes(4096))  # a first page lost in a power cut reads as zeros


@pytest.mark.parametrize("damage", [_corrupt_header, _zero_header], ids=["text", "zeros"])
def test_a_journal_with_a_damaged_header_is_still_moved_aside(path, clock, damage):
    with Journal.open(path, clock=clock) as j:
        receive(j, 1)
    assert not path.with_name("journal.db.counters").exists()  # no signed Command yet
    damage(path)
    wal = path.with_name("journal.db-wal")
    if damage is _corrupt_header:
        wal.write_bytes(b"")  # what a killed service leaves beside it
    with Journal.open(path, clock=clock) as j:
        assert j.moved_aside is not None and j.moved_aside.exists()
        assert sum(j.counts().values()) == 0


def test_another_programs_sqlite_database_is_refused_and_left_as_it_is(path, clock):
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE contacts (name TEXT)")
    other.execute("INSERT INTO contacts VALUES ('alice')")
    other.commit()
    other.close()
    with pytest.raises(JournalError) as e:
        Journal.open(path, clock=clock)
    assert str(e.value) == (
        f"journal {path}: an SQLite database without the journal's schema (another "
        "program's?): left as it is (is bridge.journal right?)"
    )
    other = sqlite3.connect(path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # not made WAL
        names = [r[0] for r in other.execute("SELECT name FROM sqlite_master")]
        assert names == ["contacts"]
        assert other.execute("SELECT name FROM contacts").fetchall() == [("alice",)]
    finally:
        other.close()
