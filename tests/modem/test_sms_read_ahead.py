"""Read-ahead (``SmsService(read_ahead=True)``): the next cued message is read
while the consumer takes the last one; a delete still waits for its consumer.

For a consumer that commits durably before it returns (the bridge's journal),
the line would otherwise sit idle for that commit on every message.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import pytest

from modem.sim import codec
from modem.sms import Inbound, ReceivedMessage

from .harness import running

AHEAD = {"read_ahead": True}


def _indexes(wire: bytes, command: bytes) -> list[int]:
    return [int(m) for m in re.findall(command + rb"=(\d+)\r", wire)]


async def test_the_next_message_is_read_while_the_last_is_taken_and_deletes_wait() -> None:
    async with running(service_kwargs=AHEAD) as h:
        assert h.wire is not None
        wire = h.wire
        gate = asyncio.Event()
        seen: list[str] = []
        handed = asyncio.Event()
        inner = h.service.consumer

        async def slow(item: Inbound) -> None:
            assert isinstance(item, ReceivedMessage)
            seen.append(str(item.text))
            handed.set()
            if item.text == "first":
                await gate.wait()  # a slow durable commit
            await inner(item)

        h.service.consumer = slow
        await h.wait_for(lambda: h.service.stats["sweeps"] >= 1)  # the start-up sweep is done
        mark = len(wire.data)
        h.sim.deliver("first")
        await handed.wait()
        h.sim.deliver("second")
        # "second" is read while "first" is still with the consumer ...
        await wire.wait_for(lambda: len(_indexes(wire.since(mark), b"AT\\+CMGR")) == 2)
        assert _indexes(wire.since(mark), b"AT\\+CMGD") == []  # ... and nothing deleted
        assert seen == ["first"]  # one hand-over in flight at most
        assert len(h.on_sim()) == 2
        gate.set()
        await h.wait_for(lambda: h.texts() == ["first", "second"])
        await h.settle()
        reads = _indexes(wire.since(mark), b"AT\\+CMGR")
        assert _indexes(wire.since(mark), b"AT\\+CMGD") == reads  # in order, each once
        assert seen == ["first", "second"] and not h.deleted_before_ack


async def test_a_consumer_failure_in_flight_keeps_the_message() -> None:
    async with running(service_kwargs=AHEAD) as h:
        h.fail_next = 1
        h.sim.deliver("important")
        h.sim.deliver("next")
        await h.wait_for(lambda: h.service.stats["consumer_errors"] == 1)
        await h.wait_for(lambda: sorted(h.texts()) == ["important", "next"], 10)
        await h.settle()
        assert h.texts().count("important") == 1 and not h.deleted_before_ack


async def test_a_burst_through_reboots_and_drops_loses_nothing(fast_timing: None) -> None:
    kwargs = {**AHEAD, "periodic_sweep": 1.0}
    async with running(conn={"delivery": "bytewise"}, service_kwargs=kwargs) as h:
        expected = {f"burst {i}" for i in range(12)}
        for i, text in enumerate(sorted(expected)):
            h.sim.deliver(text)
            if i == 4:
                h.sim.fault("reboot")
            if i == 8:
                h.sim.fault("drop", 0.05)
        await h.wait_for(lambda: h.client.stats["timeouts"] > 0 or expected <= set(h.texts()), 10)
        h.sim.fault("clear")
        await h.wait_for(lambda: expected <= set(h.texts()), 20)
        await h.settle()
        assert not h.deleted_before_ack


async def test_stopping_with_a_hand_over_in_flight_keeps_it_on_the_module() -> None:
    gate = asyncio.Event()
    async with running(service_kwargs=AHEAD) as h:
        entered = asyncio.Event()

        async def stuck(item: Inbound) -> None:
            entered.set()
            await gate.wait()

        h.service.consumer = stuck
        h.sim.deliver("in flight at the stop")
        await entered.wait()
    # the stack stopped (no task left: checked by the harness) and the SIM keeps it
    assert len(h.on_sim()) == 1


async def test_a_sweep_of_another_storage_waits_for_the_hand_over_in_flight() -> None:
    # The delete of the message in flight needs <mem1> as it was; a +CMTI naming
    # another storage asks for a sweep of it, which selects that storage: the
    # hand-over (and its delete) settles before.
    async with running(service_kwargs=AHEAD) as h:
        assert h.wire is not None
        wire = h.wire
        gate, handed = asyncio.Event(), asyncio.Event()
        inner = h.service.consumer

        async def slow(item: Inbound) -> None:
            handed.set()
            if isinstance(item, ReceivedMessage) and item.text == "in SM":
                await gate.wait()
            await inner(item)

        h.service.consumer = slow
        await h.wait_for(lambda: h.service.stats["sweeps"] >= 1)
        mark = len(wire.data)
        h.sim.deliver("in SM")
        await handed.wait()
        (raw,) = codec.build_delivers(
            "+15550001234",
            "in ME",
            scts=datetime.now(UTC).replace(microsecond=0),
            encoding=None,
            ref=0,
            smsc=None,
        )
        h.sim.store_raw(raw, mem="ME", notify=True)
        await h.wait_for(lambda: "ME" in h.service._other_wanted)  # the sweep is asked for
        # an absence: the wrong order would write +CPMS="ME" at once; none comes
        with pytest.raises(TimeoutError):
            await wire.wait_for(lambda: b'AT+CPMS="ME"' in wire.since(mark), timeout=0.3)
        gate.set()
        await h.wait_for(lambda: sorted(h.texts()) == ["in ME", "in SM"], 10)
        await h.settle()
        after = wire.since(mark)
        assert after.index(b"AT+CMGD=") < after.index(b'AT+CPMS="ME"')
        assert not h.deleted_before_ack
