"""The journal in a process of its own (``bridge.journal_process``): a real
child process, a real SQLite file, real UNIX sockets and real signals."""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge import config
from bridge.journal import (
    Entry,
    IllegalTransition,
    Journal,
    JournalError,
    Kind,
    Receipt,
    State,
    Transition,
    UnknownEntry,
)
from bridge.journal_process import JournalProcess
from bridge.worker import WorkerClosed

from .test_service_rig import ServiceRig, service_config

ROOT = Path(__file__).parents[2]


def _receive(journal: Journal, n: int) -> int:
    """A module-level call (it is sent by reference)."""
    return journal.receive(
        modem="modem0",
        sender="2936",
        body=f"ping {n}",
        identity=f"id-{n}",
        part_ids=(),
        sid=None,
        product="wireless",
        coding="gsm7",
    ).entry_id


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too
    stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return stat[0] != "Z"


async def test_calls_and_their_errors_come_back_as_raised(tmp_path: Path) -> None:
    jp = await JournalProcess.start(tmp_path / "journal.db")
    try:
        assert jp.pid is not None and jp.pid != os.getpid()
        entry_id = await jp.call_first(_receive, 1)
        entry = await jp.call(Journal.get, entry_id)
        assert (entry.id, entry.state, entry.body) == (entry_id, State.RECEIVED, "ping 1")
        with pytest.raises(UnknownEntry, match="no journal entry 999"):
            await jp.call(Journal.get, 999)
        await jp.call(Journal.reject, entry_id, "usage")
        with pytest.raises(IllegalTransition) as err:
            await jp.call(Journal.reject, entry_id, "usage")
        assert (err.value.entry_id, err.value.current, err.value.wanted) == (
            entry_id,
            State.REJECTED,
            State.REJECTED,
        )
    finally:
        await jp.close()
    assert jp.closed and jp._proc is not None and jp._proc.returncode == 0


async def test_the_child_is_one_thread_of_batch_work(tmp_path: Path) -> None:
    # SCHED_BATCH: waking the child for a call never preempts the event loop;
    # one thread reads the calls and runs them (no hand-off, no GIL shared)
    jp = await JournalProcess.start(tmp_path / "journal.db")
    try:
        assert jp.pid is not None
        for n in range(3):
            await jp.call_first(_receive, n)
        tasks = sorted(int(t) for t in os.listdir(f"/proc/{jp.pid}/task"))
        assert tasks == [jp.pid]
        assert os.sched_getscheduler(jp.pid) == os.SCHED_BATCH
        assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the parent is left as it was
    finally:
        await jp.close()


async def test_a_call_that_cannot_be_sent_is_refused_at_once(tmp_path: Path) -> None:
    jp = await JournalProcess.start(tmp_path / "journal.db")
    try:
        with pytest.raises(TypeError, match="cannot go to the journal process"):
            await jp.call(lambda j: j.counts())
        assert jp._pending == {} and jp._out == []
        assert set((await jp.call(Journal.counts)).values()) == {0}  # still serving
    finally:
        await jp.close()


async def test_a_result_is_committed_when_it_arrives_and_order_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    jp = await JournalProcess.start(path)
    try:
        # made in one turn: one frame, one group in the child, in this order
        ids = await asyncio.gather(*(jp.call(_receive, n) for n in range(50)))
        assert ids == sorted(ids) and len(set(ids)) == 50
        # durable before the result came back: another connection sees all of it
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT id, body_text FROM entry ORDER BY id").fetchall()
        assert rows == [(i, f"ping {n}") for n, i in enumerate(ids)]
    finally:
        await jp.close()


async def test_close_runs_every_call_already_made(tmp_path: Path) -> None:
    jp = await JournalProcess.start(tmp_path / "journal.db")
    calls = [asyncio.ensure_future(jp.call(_receive, n)) for n in range(100)]
    await asyncio.sleep(0)
    await jp.close()
    assert all(c.done() and not c.cancelled() for c in calls)
    assert len({c.result() for c in calls}) == 100
    with pytest.raises(WorkerClosed, match="closed"):
        await jp.call(Journal.counts)
    await jp.close()  # idempotent


async def test_a_dead_journal_process_fails_every_call(tmp_path: Path) -> None:
    jp = await JournalProcess.start(tmp_path / "journal.db")
    assert jp.pid is not None
    await jp.call(_receive, 1)
    os.kill(jp.pid, signal.SIGKILL)
    with pytest.raises(WorkerClosed, match="the journal process ended"):
        for n in range(1000):  # one of these meets the end
            await jp.call(_receive, n + 2)
    assert jp.closed
    with pytest.raises(JournalError):
        await jp.call(Journal.counts)
    await jp.close()


async def test_it_does_not_start_on_a_journal_it_cannot_open(tmp_path: Path) -> None:
    bad = tmp_path / "a-directory"
    bad.mkdir()
    with pytest.raises(JournalError, match="a-directory"):
        await JournalProcess.start(bad)


async def test_the_child_holds_the_services_lock_until_it_is_gone(tmp_path: Path) -> None:
    lock = tmp_path / "journal.db.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    jp = await JournalProcess.start(tmp_path / "journal.db", lock_fd=fd)
    os.close(fd)  # the service is gone; its journal process is not
    other = os.open(lock, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        await jp.close()
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free once it exited
    finally:
        os.close(other)


def test_the_child_dies_with_its_parent(tmp_path: Path) -> None:
    """A parent killed with SIGKILL takes its journal process with it (as a
    unit's stop kills the control group): no second writer is left behind."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.path.insert(0, {str(ROOT)!r})
        from bridge.journal_process import JournalProcess
        async def main():
            jp = await JournalProcess.start({str(tmp_path / "journal.db")!r})
            print(jp.pid, flush=True)
            await asyncio.sleep(60)
        asyncio.run(main())
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        with parent.stdout:
            child = int(parent.stdout.readline())
        assert _alive(child)
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(child)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_the_config_key_is_a_flag() -> None:
    doc = {"bridge": {"journal_process": True}, "modem": [{"port": "sim://bg96"}]}
    assert config.parse(doc).bridge.journal_process is True
    assert config.parse({"modem": [{"port": "sim://bg96"}]}).bridge.journal_process is False
    with pytest.raises(config.ConfigError, match=r"bridge\.journal_process: must be true or false"):
        config.parse({"bridge": {"journal_process": "yes"}, "modem": [{"port": "sim://bg96"}]})


async def test_the_service_answers_commands_with_its_journal_in_a_process(
    tmp_path: Path,
) -> None:
    cfg = service_config(tmp_path, bridge={"journal_process": True})
    async with ServiceRig(cfg) as rig:
        assert isinstance(rig.svc.worker, JournalProcess)
        child = rig.svc.worker.pid
        assert child is not None and _alive(child)
        assert [s.body for s in await rig.sms("ping")] == ["pong"]
        assert [s.body for s in await rig.sms("ping", include_sid="end")] == ["pong"]
    assert not _alive(child)
    with sqlite3.connect(tmp_path / "journal.db") as db:
        states = [s for (s,) in db.execute("SELECT state FROM entry WHERE kind = 'command'")]
    assert states and set(states) == {State.SENT.value}


class OddError(Exception):
    """An exception whose ``__init__`` pickle cannot call back (two arguments)."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{code}: {detail}")


def _odd(journal: Journal) -> None:
    raise OddError(7, "odd")


async def test_an_outcome_the_parent_cannot_read_fails_that_call_alone(tmp_path: Path) -> None:
    jp = await JournalProcess.start(tmp_path / "journal.db")
    try:
        a = asyncio.ensure_future(jp.call(_receive, 1))
        odd = asyncio.ensure_future(jp.call(_odd))
        b = asyncio.ensure_future(jp.call(_receive, 2))
        await asyncio.wait((a, odd, b))
        assert (a.result(), b.result()) == (1, 2)  # committed, and told so
        with pytest.raises(JournalError, match="outcome cannot be read"):
            odd.result()
        assert not jp.closed and await jp.call(_receive, 3) == 3
    finally:
        await jp.close()


async def test_a_call_the_child_cannot_load_fails_that_call_alone(tmp_path: Path) -> None:
    import types

    mod = types.ModuleType("only_in_the_parent")

    def counts(journal: Journal) -> object:  # pragma: no cover - never runs
        return journal.counts()

    counts.__module__ = mod.__name__
    counts.__qualname__ = "counts"
    mod.counts = counts  # type: ignore[attr-defined]
    sys.modules[mod.__name__] = mod
    jp = await JournalProcess.start(tmp_path / "journal.db")
    try:
        bad = asyncio.ensure_future(jp.call(counts))
        good = asyncio.ensure_future(jp.call(_receive, 1))
        await asyncio.wait((bad, good))
        with pytest.raises(TypeError, match="cannot be loaded there"):
            bad.result()
        assert good.result() == 1
        assert not jp.closed and await jp.call(_receive, 2) == 2
    finally:
        del sys.modules[mod.__name__]
        await jp.close()
    assert jp._proc is not None and jp._proc.returncode == 0


_opt_text = st.none() | st.text(max_size=20)
_entries = st.builds(
    Entry,
    id=st.integers(min_value=1, max_value=2**62),
    kind=st.sampled_from(Kind),
    modem=st.text(max_size=10),
    state=st.sampled_from(State),
    sender=_opt_text,
    product=_opt_text,
    coding=_opt_text,
    sid=_opt_text,
    identity=_opt_text,
    counter=st.none() | st.integers(min_value=0, max_value=2**40),
    body=st.none() | st.text(max_size=30) | st.binary(max_size=30),
    raw_pdu=_opt_text,
    error=_opt_text,
    idempotent=st.none() | st.booleans(),
    summary=_opt_text,
    reason=_opt_text,
    reply_to=_opt_text,
    reply=st.none() | st.text(max_size=30) | st.binary(max_size=30),
    reply_ref=_opt_text,
    tp_mr=st.none() | st.integers(min_value=0, max_value=255),
    send_attempts=st.integers(min_value=0, max_value=99),
    resends=st.integers(min_value=0, max_value=99),
    created=st.floats(allow_nan=False),
    updated=st.floats(allow_nan=False),
    transitions=st.lists(
        st.builds(Transition, st.sampled_from(State), st.floats(allow_nan=False), _opt_text),
        max_size=3,
    ).map(tuple),
)


@given(_entries)
def test_an_entry_crosses_to_the_parent_whole(entry: Entry) -> None:
    # Entry.__reduce__ (fields in order, enums as their values): every field
    # comes back equal and of the same type, the enums as the members themselves
    back = pickle.loads(pickle.dumps(entry, protocol=5))
    assert back == entry and type(back) is Entry
    assert back.kind is entry.kind and back.state is entry.state
    assert [type(getattr(back, f.name)) for f in dataclasses.fields(Entry)] == [
        type(getattr(entry, f.name)) for f in dataclasses.fields(Entry)
    ]
    assert pickle.loads(pickle.dumps(Receipt(entry.id, False, entry))).entry == entry
    # the kind and the state go as their values, not as references to the enums
    bare = pickle.dumps(dataclasses.replace(entry, transitions=()), protocol=5)
    assert b"State" not in bare and b"Kind" not in bare


# -- the child's reading: whole messages out of any split of the stream --------------------


@given(
    st.lists(st.lists(st.booleans(), min_size=1, max_size=4), min_size=1, max_size=6),
    st.data(),
)
def test_the_child_queues_every_call_in_order_however_the_stream_is_cut(
    messages: list[list[bool]], data: st.DataObject
) -> None:
    import socket

    from bridge.journal_process import _Calls, _frame, _Wire

    ids = iter(range(1, 1000))
    sent: list[list[tuple[int, bool, bytes]]] = [
        [(next(ids), first, pickle.dumps((_receive, (0,), {}))) for first in msg]
        for msg in messages
    ]
    stream = b"".join(_frame(("calls", m)) for m in sent) + _frame(("close",))
    cuts = sorted(data.draw(st.sets(st.integers(1, len(stream) - 1), max_size=8)))
    ours, theirs = socket.socketpair()
    try:
        calls = _Calls(theirs, _Wire(theirs))
        start = 0
        for cut in [*cuts, len(stream)]:
            ours.sendall(stream[start:cut])
            start = cut
            calls.take_in(wait=False)  # whatever has come, never waiting
        while calls.reading:
            calls.take_in(wait=True)
    finally:
        ours.close()
        theirs.close()
    order = [c for m in sent for c in m]
    firsts = [call_id for call_id, first, _ in order if first]
    rests = [call_id for call_id, first, _ in order if not first]
    assert [j.fut for j in calls.first] == firsts and [j.fut for j in calls.rest] == rests
    batches: list[list[int]] = []
    while calls:
        batches.append([j.fut for j in calls.batch()])
    assert [i for b in batches for i in b] == firsts + rests  # the first lane before the rest
    assert all(len(b) <= 64 for b in batches) and len(batches) == 1  # one group for all


async def test_calls_made_first_run_ahead_of_those_made_before_them(tmp_path: Path) -> None:
    jp = await JournalProcess.start(tmp_path / "journal.db")
    try:
        later = [asyncio.ensure_future(jp.call(_receive, n)) for n in range(3)]
        ahead = asyncio.ensure_future(jp.call_first(_receive, 9))
        ids = await asyncio.gather(*later, ahead)  # one frame: queued together in the child
        assert ids[-1] == 1 and ids[:3] == [2, 3, 4]
    finally:
        await jp.close()


def test_the_child_ends_at_a_broken_stream_and_keeps_what_came(tmp_path: Path) -> None:
    import socket

    from bridge.journal_process import _Calls, _frame, _Wire

    ours, theirs = socket.socketpair()
    calls = _Calls(theirs, _Wire(theirs))
    whole = _frame(("calls", [(1, False, pickle.dumps((_receive, (0,), {})))]))
    ours.sendall(whole + _frame(("calls", []))[:3])  # then the parent dies mid-frame
    ours.close()
    while calls.reading:
        calls.take_in(wait=True)
    theirs.close()
    assert [j.fut for j in calls.rest] == [1]  # the whole message is kept, the torn one not
