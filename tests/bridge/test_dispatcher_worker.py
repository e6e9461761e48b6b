"""The journal worker: every call in one thread, in order, off the event loop."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from bridge.journal import Journal, JournalError, State
from bridge.worker import JournalWorker, WorkerClosed


def _receive(j: Journal, ident: str) -> int:
    return j.receive(modem="m", sender="2936", body="ping", identity=ident).entry_id


async def test_calls_run_in_one_other_thread_in_order(tmp_path: Path) -> None:
    worker = JournalWorker(Journal.open(tmp_path / "j.db"))
    threads: list[int] = []

    def where(j: Journal, ident: str) -> int:
        threads.append(threading.get_ident())
        return _receive(j, ident)

    ids = await asyncio.gather(*(worker.call(where, f"i{k}") for k in range(20)))
    assert ids == list(range(1, 21))  # submission order is commit order
    assert len(set(threads)) == 1 and threads[0] != threading.get_ident()
    await worker.close()


async def test_the_journal_thread_is_batch_work_and_the_loop_thread_is_not(tmp_path: Path) -> None:
    # waking the journal thread for a call must not preempt the event loop's thread
    worker = JournalWorker(Journal.open(tmp_path / "j.db"))
    policy = await worker.call(lambda j: os.sched_getscheduler(0))
    assert policy == os.SCHED_BATCH
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    await worker.close()


async def test_the_event_loop_runs_while_a_call_blocks(tmp_path: Path) -> None:
    worker = JournalWorker(Journal.open(tmp_path / "j.db"))
    inside = threading.Event()
    release = threading.Event()

    def slow(j: Journal) -> str:
        inside.set()
        release.wait()  # a stalled fsync
        return "done"

    pending = asyncio.ensure_future(worker.call(slow))
    await asyncio.to_thread(inside.wait)  # the loop keeps turning: the line is served
    ticks = 0
    for _ in range(10):
        await asyncio.sleep(0)
        ticks += 1
    assert ticks == 10 and not pending.done()
    release.set()
    assert await pending == "done"
    await worker.close()


async def test_close_drains_pending_calls_then_refuses(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    worker = JournalWorker(Journal.open(path))
    calls = [asyncio.ensure_future(worker.call(_receive, f"i{k}")) for k in range(5)]
    await asyncio.sleep(0)  # submitted
    await worker.close()
    assert [c.result() for c in calls] == [1, 2, 3, 4, 5]
    with pytest.raises(WorkerClosed):
        await worker.call(_receive, "late")
    await worker.close()  # idempotent
    with Journal.open(path) as j:
        assert j.counts()[State.RECEIVED] == 5


async def test_a_cancelled_caller_does_not_tear_the_write(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    worker = JournalWorker(Journal.open(path))
    task = asyncio.ensure_future(worker.call(_receive, "c"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await worker.close()
    with Journal.open(path) as j:
        assert j.counts()[State.RECEIVED] == 1  # the submitted write still committed


async def test_journal_errors_are_the_journals_own(tmp_path: Path) -> None:
    worker = JournalWorker(Journal.open(tmp_path / "j.db"))
    with pytest.raises(JournalError, match="no journal entry 99"):
        await worker.call(Journal.get, 99)
    await worker.close()


async def test_a_queued_call_whose_caller_was_cancelled_still_runs_in_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "j.db"
    worker = JournalWorker(Journal.open(path))
    inside = threading.Event()
    release = threading.Event()

    def slow(j: Journal) -> int:
        inside.set()
        release.wait()
        return _receive(j, "first")

    first = asyncio.ensure_future(worker.call(slow))
    await asyncio.to_thread(inside.wait)  # the thread is busy: the next calls wait in the queue
    queued = asyncio.ensure_future(worker.call(_receive, "second"))
    failing = asyncio.ensure_future(worker.call(Journal.get, 99))
    await asyncio.sleep(0)
    queued.cancel()
    failing.cancel()
    release.set()
    assert await first == 1
    assert await worker.call(_receive, "third") == 3  # "second" ran before it
    await worker.close()
    assert queued.cancelled() and failing.cancelled()
    with Journal.open(path) as j:
        assert [j.get(n).identity for n in (1, 2, 3)] == ["first", "second", "third"]
    assert "never retrieved" not in caplog.text


async def test_close_ends_the_thread_and_a_loop_closed_mid_call_does_not_kill_it(
    tmp_path: Path,
) -> None:
    worker = JournalWorker(Journal.open(tmp_path / "j.db"))
    await worker.call(_receive, "a")
    names = [t.name for t in threading.enumerate()]
    assert names.count("journal") == 1
    await worker.close()
    thread = worker._thread
    assert thread is not None
    await asyncio.to_thread(thread.join, 10)
    assert not thread.is_alive() and "journal" not in [t.name for t in threading.enumerate()]


def test_a_call_whose_loop_closed_meanwhile_leaves_the_thread_serving(tmp_path: Path) -> None:
    worker = JournalWorker(Journal.open(tmp_path / "j.db"))
    gate, inside = threading.Event(), threading.Event()

    def held(j: Journal) -> int:
        inside.set()
        gate.wait(10)
        return _receive(j, "held")

    async def start_and_leave() -> None:
        call = asyncio.ensure_future(worker.call(held))
        await asyncio.to_thread(inside.wait, 10)  # running; the loop now ends under it
        assert not call.done()

    asyncio.run(start_and_leave())
    gate.set()  # the job's call_soon_threadsafe meets a closed loop

    async def after() -> tuple[int, list[State]]:
        eid = await worker.call(_receive, "next")
        states = [e.state for e in await worker.call(Journal.list_entries, limit=10)]
        await worker.close()
        return eid, states

    eid, states = asyncio.run(after())
    assert eid == 2 and states == [State.RECEIVED, State.RECEIVED]


async def test_the_worker_checkpoints_when_idle_not_inside_a_call(tmp_path: Path) -> None:
    import sqlite3

    from bridge import journal as jmod

    checkpointed = threading.Event()

    class Watched(Journal):
        def idle(self) -> bool:
            done = super().idle()
            if done:
                checkpointed.set()
            return done

    path = tmp_path / "j.db"
    worker = JournalWorker(Watched.open(path))
    await worker.call(Journal._checkpoint)
    for k in range(jmod.CHECKPOINT_IDLE_COMMITS):
        await worker.call(_receive, f"i{k}")
        assert not checkpointed.is_set() or k == jmod.CHECKPOINT_IDLE_COMMITS - 1
    assert await asyncio.to_thread(checkpointed.wait, 10)  # once the queue ran dry
    copy = tmp_path / "copy.db"
    copy.write_bytes(path.read_bytes())  # the file without its WAL
    db = sqlite3.connect(copy)
    try:
        assert db.execute("SELECT count(*) FROM entry").fetchone()[0] == 64
    finally:
        db.close()
    await worker.close()


async def test_call_first_is_served_before_the_calls_queued_with_call(tmp_path: Path) -> None:
    worker = JournalWorker(Journal.open(tmp_path / "j.db"))
    inside, gate = threading.Event(), threading.Event()
    order: list[str] = []

    def hold(j: Journal) -> None:
        inside.set()
        gate.wait(10)

    def note(j: Journal, what: str) -> str:
        order.append(what)
        return what

    held = asyncio.ensure_future(worker.call(hold))
    await asyncio.to_thread(inside.wait, 10)  # the thread is busy: the rest queue up
    rest = [asyncio.ensure_future(worker.call(note, f"rest{k}")) for k in range(3)]
    first = [asyncio.ensure_future(worker.call_first(note, f"first{k}")) for k in range(2)]
    await asyncio.sleep(0)  # every call submitted (each task ran to its await)
    gate.set()
    assert await asyncio.gather(*rest, *first) == ["rest0", "rest1", "rest2", "first0", "first1"]
    await held
    assert order == ["first0", "first1", "rest0", "rest1", "rest2"]
    await worker.close()
