"""bridge.lanes.Lane: one module's worker loop and its graceful stop."""

from __future__ import annotations

import asyncio

import pytest

from bridge.lanes import Lane


async def test_items_run_in_order_in_the_lanes_own_task():
    q: asyncio.Queue[int] = asyncio.Queue()
    seen: list[tuple[int, asyncio.Task | None]] = []
    after: list[int] = []
    done = asyncio.Event()

    async def run(item: int) -> None:
        await asyncio.sleep(0)
        seen.append((item, asyncio.current_task()))
        if item == 4:
            done.set()

    lane = Lane("t", q, run, after.append)
    for i in range(5):
        q.put_nowait(i)
    await done.wait()
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4]
    tasks = {t for _, t in seen}
    assert len(tasks) == 1 and tasks != {asyncio.current_task()}  # no task per item
    assert after == [0, 1, 2, 3, 4]
    assert await lane.stop(5.0) is None
    assert not lane.busy and lane.current is None


async def test_an_idle_lane_stops_at_once_and_takes_nothing_more():
    q: asyncio.Queue[str] = asyncio.Queue()
    ran: list[str] = []

    async def run(item: str) -> None:
        ran.append(item)

    lane = Lane("t", q, run)
    await asyncio.sleep(0)
    assert await lane.stop(3600.0) is None  # no grace is waited for
    q.put_nowait("late")
    await asyncio.sleep(0)
    assert ran == [] and q.qsize() == 1


async def test_a_busy_lane_finishes_its_item_within_the_grace_and_leaves_the_rest_queued():
    q: asyncio.Queue[str] = asyncio.Queue()
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def run(item: str) -> None:
        started.set()
        await release.wait()
        finished.append(item)

    lane = Lane("t", q, run)
    q.put_nowait("first")
    q.put_nowait("second")
    await started.wait()
    assert lane.busy and lane.current == "first"
    stopping = asyncio.ensure_future(lane.stop(3600.0))
    await asyncio.sleep(0)
    assert not stopping.done()  # it waits for the item in flight
    release.set()
    assert await stopping is None
    assert finished == ["first"]
    assert q.qsize() == 1 and q.get_nowait() == "second"


async def test_an_item_past_the_grace_is_cancelled_and_returned():
    q: asyncio.Queue[int] = asyncio.Queue()
    started = asyncio.Event()
    events: list[str] = []
    after: list[int] = []

    async def run(item: int) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            events.append(f"cancelled {item}")
            raise

    lane = Lane("t", q, run, after.append)
    q.put_nowait(7)
    await started.wait()
    assert await lane.stop(0.01) == 7
    assert events == ["cancelled 7"] and after == [7]
    assert not lane.busy


async def test_the_stopping_caller_can_itself_be_cancelled():
    q: asyncio.Queue[int] = asyncio.Queue()
    started = asyncio.Event()

    async def run(item: int) -> None:
        started.set()
        await asyncio.Event().wait()

    lane = Lane("t", q, run)
    q.put_nowait(1)
    await started.wait()
    stopping = asyncio.ensure_future(lane.stop(3600.0))
    await asyncio.sleep(0)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert await lane.stop(0.0) == 1  # a second stop still ends it


async def test_an_error_out_of_run_ends_the_lane_and_comes_out_of_stop():
    q: asyncio.Queue[int] = asyncio.Queue()
    after: list[int] = []

    async def run(item: int) -> None:
        raise ValueError(f"bug at {item}")

    lane = Lane("t", q, run, after.append)
    q.put_nowait(3)
    q.put_nowait(4)
    for _ in range(5):
        await asyncio.sleep(0)
    assert after == [3] and q.qsize() == 1  # the lane ended at the error
    with pytest.raises(ValueError, match="bug at 3"):
        await lane.stop(1.0)
