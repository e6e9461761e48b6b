"""The GPIO contract through the simulated backend (what every bridge test relies on)."""

from __future__ import annotations

import asyncio

import pytest

import hal
from hal.config import parse
from hal.errors import GpioError

TABLE = {
    "backend": "sim",
    "gpio": {
        "relay1": {"chip": "gpiochip0", "line": "GPIO17", "direction": "output"},
        "relay2": {"chip": "gpiochip0", "line": 22, "direction": "output", "initial": 1},
        "door": {"chip": "gpiochip0", "line": "GPIO27", "direction": "input", "bias": "pull-up"},
        "button": {"chip": "gpiochip0", "line": 5, "direction": "input"},
    },
    "sim": {"inputs": {"door": 1}},
}


@pytest.fixture
async def dev():
    async with hal.build(parse(TABLE)) as d:
        yield d


async def test_outputs_remember_and_inputs_follow_the_driver(dev):
    g, sim = dev.gpio, dev.sim
    assert await g.read("relay1") == 0
    assert await g.read("relay2") == 1  # initial
    await g.write("relay1", 1)
    assert await g.read("relay1") == 1
    assert await g.read("door") == 1  # [sim.inputs]
    sim.drive("door", 0)
    assert await g.read("door") == 0
    assert sim.gpio.writes == [("relay1", 1)]


async def test_pulse_goes_active_then_inactive(dev):
    await dev.gpio.pulse("relay1", 5)
    assert dev.sim.gpio.writes == [("relay1", 1), ("relay1", 0)]
    assert await dev.gpio.read("relay1") == 0


async def test_cancelled_pulse_still_ends_inactive(dev):
    task = asyncio.create_task(dev.gpio.pulse("relay1", 10_000))
    await asyncio.sleep(0)  # the pulse task runs up to its sleep
    assert dev.sim.gpio.value("relay1") == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert dev.sim.gpio.writes == [("relay1", 1), ("relay1", 0)]


async def test_write_waits_for_a_pulse_in_progress(dev):
    pulse = asyncio.create_task(dev.gpio.pulse("relay1", 20))
    await asyncio.sleep(0)
    await dev.gpio.write("relay1", 1)  # queued behind the pulse's lock
    await pulse
    assert dev.sim.gpio.writes == [("relay1", 1), ("relay1", 0), ("relay1", 1)]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda g: g.write("door", 1), "gpio door: is an input; it cannot be written"),
        (lambda g: g.write("relay1", 2), "gpio relay1: value must be 0 or 1, not 2"),
        (lambda g: g.write("relay1", True), "gpio relay1: value must be 0 or 1, not True"),
        (lambda g: g.write("ghost", 1), "gpio ghost: no line of that name is configured"),
        (lambda g: g.read("ghost"), "gpio ghost: no line of that name is configured"),
        (lambda g: g.pulse("relay1", 0), "gpio relay1: pulse must be 1 to 10000 ms, not 0"),
        (
            lambda g: g.pulse("relay1", 10_001),
            "gpio relay1: pulse must be 1 to 10000 ms, not 10001",
        ),
        (lambda g: g.pulse("door", 5), "gpio door: is an input; it cannot be written"),
    ],
)
async def test_misuse_is_a_gpio_error(dev, call, message):
    with pytest.raises(GpioError) as e:
        await call(dev.gpio)
    assert str(e.value) == message
    assert dev.sim.gpio.writes == []


async def test_restore_applies_known_outputs_and_skips_the_rest(dev):
    skipped = await dev.gpio.restore({"relay1": 1, "relay2": 0, "door": 1, "gone": 1, "bad": 7})
    assert skipped == ["door", "gone", "bad"]
    assert (await dev.gpio.read("relay1"), await dev.gpio.read("relay2")) == (1, 0)


async def test_edges_for_input_changes_only(dev):
    async with dev.gpio.edges() as edges:
        dev.sim.drive("door", 1)  # no change: no edge
        dev.sim.drive("door", 0)
        dev.sim.drive("button", 1)
        dev.sim.drive("door", 1)
        got = [await anext(edges) for _ in range(3)]
    assert [(e.line, e.value) for e in got] == [("door", 0), ("button", 1), ("door", 1)]
    assert [e.timestamp_ns for e in got] == sorted(e.timestamp_ns for e in got)


async def test_every_subscriber_sees_every_edge_and_closing_ends_iteration(dev):
    a, b = dev.gpio.edges(), dev.gpio.edges()
    dev.sim.drive("button", 1)
    assert (await anext(a)).value == 1 and (await anext(b)).value == 1
    waiter = asyncio.create_task(anext(a))
    await asyncio.sleep(0)
    a.close()
    with pytest.raises(StopAsyncIteration):
        await waiter
    assert dev.gpio._subscribers == {b}
    await dev.gpio.close()
    assert [e async for e in b] == []  # close() ends every subscription


async def test_slow_subscriber_keeps_the_newest_edges(dev):
    from hal.gpio import EDGE_QUEUE_LIMIT

    edges = dev.gpio.edges()
    for i in range(EDGE_QUEUE_LIMIT + 10):
        dev.sim.drive("button", (i + 1) % 2)
    assert edges.dropped == 10
    first = await anext(edges)
    assert first.timestamp_ns == 11  # the ten oldest were dropped
    edges.close()


async def test_driving_an_output_is_refused(dev):
    with pytest.raises(GpioError, match="only inputs are driven"):
        dev.sim.drive("relay1", 1)


async def test_after_close_lines_are_released(dev):
    await dev.close()
    with pytest.raises(GpioError, match="released"):
        await dev.gpio.write("relay1", 1)


def test_line_info(dev):
    infos = {i.name: i for i in dev.gpio.lines()}
    assert infos["door"].bias == "pull-up" and infos["door"].direction == "input"
    assert infos["relay2"].offset == 22


async def test_a_subscription_taken_after_close_ends_at_once(dev):
    await dev.close()
    edges = dev.gpio.edges()
    assert [e async for e in edges] == []  # ends, instead of waiting for edges that never come
    assert dev.gpio._subscribers == set()


async def test_restore_skips_values_write_would_refuse_and_restores_the_rest(dev):
    skipped = await dev.gpio.restore({"relay1": True, "relay2": 0, "x": 1.0})
    assert skipped == ["relay1", "x"]
    assert dev.sim.gpio.writes == [("relay2", 0)]


@pytest.mark.parametrize("value", [1.0, 0.0, "1", None])
async def test_write_takes_the_integers_0_and_1_only(dev, value):
    with pytest.raises(GpioError, match="value must be 0 or 1"):
        await dev.gpio.write("relay1", value)
    assert await dev.gpio.restore({"relay1": value}) == ["relay1"]
    assert dev.sim.gpio.writes == []


@pytest.mark.parametrize("value", [True, 2, 1.0])
async def test_drive_takes_the_integers_0_and_1_like_write(dev, value):
    with pytest.raises(GpioError, match="value must be 0 or 1"):
        dev.sim.drive("door", value)
    assert await dev.gpio.read("door") == 1 and type(await dev.gpio.read("door")) is int
