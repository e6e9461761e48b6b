"""The simulated sensors and system: scripted values and failures, the same errors as Linux."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

import hal
from hal.config import parse
from hal.errors import Fault, SensorError

TABLE = {
    "sensors": {
        "water": {"type": "ds18b20", "device": "28-0000075e8a2b"},
        "tank": {"type": "file", "path": "/x", "unit": "V"},
    },
    "sim": {"sensors": {"water": "19.875"}},
}


@pytest.fixture
async def dev():
    async with hal.build(parse(TABLE)) as d:
        yield d


async def test_starting_values_and_units(dev):
    assert await dev.sensors.read("water") == hal.Reading("water", Decimal("19.875"), "°C")
    assert await dev.sensors.read("tank") == hal.Reading("tank", Decimal(0), "V")
    assert dev.sim.sensors.reads == ["water", "tank"]


async def test_set_fail_and_script(dev):
    s = dev.sim.sensors
    s.set("water", "21.437")
    assert (await dev.sensors.read("water")).value == Decimal("21.437")
    s.script("water", ["20.0", Fault.POWER_ON_RESET, 22])
    values = []
    for _ in range(4):
        try:
            values.append((await dev.sensors.read("water")).value)
        except SensorError as e:
            values.append(e.fault)
    assert values == [Decimal("20.0"), Fault.POWER_ON_RESET, Decimal(22), Decimal("21.437")]
    s.fail("water", Fault.MISSING, "unplugged")
    with pytest.raises(SensorError) as e:
        await dev.sensors.read("water")
    assert str(e.value) == "sensor water: missing: unplugged"
    with pytest.raises(SensorError):
        await dev.sensors.read("ghost")


async def test_system_snapshot_carries_the_program(dev):
    prog = hal.ProgramInfo("sms-bridge", "0.1.0", Decimal("5"))
    snap = await dev.system.snapshot(prog)
    assert snap.program == prog and snap.hostname == "sim-gateway"
    dev.sim.system.base = dataclasses.replace(snap, hostname="test-box")
    assert (await dev.system.snapshot()).hostname == "test-box"


async def test_problems_check_on_sim(dev, tmp_path):
    assert await hal.check(dev) == []
    dev.sim.sensors.fail("tank", Fault.IO, "bad")
    assert [str(p) for p in await hal.check(dev)] == ["sensors.tank: io: bad"]
