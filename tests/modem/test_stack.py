"""ModemStack: the one owner of the client + session + SMS service lifecycle."""

from __future__ import annotations

import asyncio

import pytest

from modem.client import AtClient
from modem.errors import UsageError
from modem.session import SessionConfig
from modem.sim import SimModem
from modem.stack import ModemStack

from .harness import Wire, recording_connector


def others() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]


async def test_stack_from_url_runs_and_leaves_nothing_behind():
    got = []

    async def consumer(item):
        got.append(item)

    stack = ModemStack("sim://bg96", consumer=consumer, sms={"verify_reads": True})
    assert stack.sms.verify_reads  # SmsService keyword arguments pass through
    async with stack:
        await stack.wait_ready(10)
        assert stack.sim_modem is not None and stack.session.ready.is_set()
        stack.sim_modem.deliver("ping")
        result = await stack.guard(stack.sms.send("2936", "pong"))
        assert len(result.mrs) == 1
    assert stack.client.closed
    assert stack.client.leftovers() == {"inflight": 0, "subscriptions": 0, "lock_waiters": 0}
    assert others() == []


async def test_shutdown_order_sms_then_session_then_client():
    order: list[tuple[str, bool, bool]] = []

    async def consumer(item):
        return None

    stack = ModemStack("sim://generic", consumer=consumer)
    sms_close, session_close, client_close = (
        stack.sms.close,
        stack.session.close,
        stack.client.close,
    )

    tasks: list[asyncio.Task] = []

    def note(name: str) -> None:
        order.append((name, tasks[0].done(), stack.client.closed))

    def sms_closed() -> None:
        note("sms")
        sms_close()

    def session_closed() -> None:
        note("session")
        session_close()

    async def client_closed() -> None:
        note("client")
        await client_close()

    stack.sms.close = sms_closed  # type: ignore[method-assign]
    stack.session.close = session_closed  # type: ignore[method-assign]
    stack.client.close = client_closed  # type: ignore[method-assign]
    async with stack:
        tasks.extend(stack._tasks)  # [session, sms]
        await stack.wait_ready(10)
    # the SMS service stops while the session still runs and the port is open;
    # the session is closed before the client
    assert order[0] == ("sms", False, False)
    names = [name for name, _, _ in order]
    assert names.index("session") < names.index("client")
    assert names.index("sms") < names.index("session")
    assert all(not closed for name, _, closed in order if name != "client")


async def test_a_failed_supervisor_surfaces_instead_of_hanging():
    # a misconfiguration the session cannot retry (Fault.CALLER) stops its task
    stack = ModemStack("sim://generic", session=SessionConfig(smsc="not a number"))
    with pytest.raises(UsageError):
        async with stack:
            with pytest.raises(UsageError):
                await stack.wait_ready(10)
            with pytest.raises(UsageError):
                await stack.guard(asyncio.Event().wait())  # would wait forever
            assert isinstance(stack.failure, UsageError)
    assert others() == []


async def test_send_only_stack_reads_and_deletes_nothing():
    sim = SimModem("generic")
    sim.deliver("left alone")
    wire = Wire()
    stack = ModemStack(AtClient(recording_connector(sim, wire)))
    async with stack:
        await stack.wait_ready(10)
        await stack.sms.send("2936", "out")
    assert sim.storage("SM").used == 1  # still there for the real listener
    assert wire.count(b"AT+CMGR") == 0 and wire.count(b"AT+CMGD") == 0
    assert wire.count(b"AT+CMGL") == 0 and len(sim.mo_log) == 1


async def test_a_stack_is_entered_once():
    stack = ModemStack("sim://generic")
    async with stack:
        with pytest.raises(RuntimeError):
            await stack.__aenter__()


# -- guard: the awaitable runs in the caller's task, and a failure cancels it ------------


async def _supervised_failure(stack: ModemStack, go: asyncio.Event, exc: BaseException) -> None:
    """A supervised task of the stack's own kind that fails once ``go`` is set."""

    async def fail() -> None:
        await go.wait()
        raise exc

    stack._start(fail(), "probe")


async def test_guard_runs_the_awaitable_in_the_calling_task():
    stack = ModemStack("sim://generic")
    async with stack:
        await stack.wait_ready(10)

        async def where() -> asyncio.Task | None:
            return asyncio.current_task()

        assert await stack.guard(where()) is asyncio.current_task()
        assert stack._guarded == {}


async def test_guard_cancels_the_awaitable_and_raises_a_failure_that_comes_while_it_waits():
    stack = ModemStack("sim://generic")
    seen: list[str] = []
    go = asyncio.Event()
    with pytest.raises(ValueError, match="probe broke"):
        async with stack:
            await stack.wait_ready(10)
            await _supervised_failure(stack, go, ValueError("probe broke"))

            async def forever() -> None:
                try:
                    go.set()
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    seen.append("cancelled")
                    raise

            with pytest.raises(ValueError, match="probe broke"):
                await stack.guard(forever())
            assert seen == ["cancelled"]
            task = asyncio.current_task()
            assert task is not None and task.cancelling() == 0  # nothing left to cancel us
            await asyncio.sleep(0)  # and no cancellation is still pending
            assert stack._guarded == {}
    assert others() == []


async def test_guard_raises_the_failure_when_the_awaitable_swallows_the_cancellation():
    stack = ModemStack("sim://generic")
    go = asyncio.Event()
    with pytest.raises(KeyError):
        async with stack:
            await stack.wait_ready(10)
            await _supervised_failure(stack, go, KeyError("probe"))

            async def stubborn() -> str:
                try:
                    go.set()
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    pass
                return "finished anyway"

            with pytest.raises(KeyError):
                await stack.guard(stubborn())
            task = asyncio.current_task()
            assert task is not None and task.cancelling() == 0
            await asyncio.sleep(0)


async def test_guard_leaves_a_cancellation_from_outside_a_cancellation():
    stack = ModemStack("sim://generic")
    go = asyncio.Event()
    with pytest.raises(ValueError):
        async with stack:
            await stack.wait_ready(10)
            started = asyncio.Event()

            async def waits() -> None:
                started.set()
                await asyncio.Event().wait()

            caller = asyncio.ensure_future(stack.guard(waits()))
            await started.wait()
            caller.cancel()  # from outside: the caller is being stopped
            with pytest.raises(asyncio.CancelledError):
                await caller
            assert stack._guarded == {}
            # both at once: the stack fails while the caller is cancelled from outside
            started.clear()
            caller = asyncio.ensure_future(stack.guard(waits()))
            await started.wait()
            caller.cancel()
            await _supervised_failure(stack, go, ValueError("later"))
            go.set()
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            with pytest.raises(asyncio.CancelledError):
                await caller
            assert stack._guarded == {}


async def test_guard_after_a_failure_neither_runs_nor_leaks_the_awaitable():
    stack = ModemStack("sim://generic")
    go = asyncio.Event()
    ran: list[str] = []
    with pytest.raises(ValueError):
        async with stack:
            await stack.wait_ready(10)
            await _supervised_failure(stack, go, ValueError("gone"))
            go.set()
            while stack.failure is None:
                await asyncio.sleep(0)

            async def never() -> None:
                ran.append("ran")

            with pytest.raises(ValueError, match="gone"):
                await stack.guard(never())  # closed, so no "never awaited" warning either
            fut = asyncio.get_running_loop().create_future()
            with pytest.raises(ValueError, match="gone"):
                await stack.guard(fut)
            assert fut.cancelled()
    assert ran == []
