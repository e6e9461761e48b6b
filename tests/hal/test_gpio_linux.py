"""The libgpiod adapter: translation to each API without a chip, and gpio-sim where present."""

from __future__ import annotations

import asyncio
import errno
import os
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from hal.config import parse
from hal.errors import ConfigError, GpioError
from hal.gpio_linux import LinuxGpio, adapter_for

from .fake_gpiod import World, make_v1, make_v2

APIS = {"v1": make_v1, "v2": make_v2}
NAMES = ["ID_SDA", "ID_SCL", "GPIO2", "GPIO3", "", "GPIO5", "17", "GPIO17"]


@pytest.fixture
def chip(tmp_path) -> str:
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "gpiochip0").touch()  # the backend checks the chip exists under its root
    return str(dev / "gpiochip0")


def lines(tmp_path, table, api, world):
    cfg = parse({"backend": "linux", "root": str(tmp_path), "gpio": table}, where="hal")
    return LinuxGpio(cfg.gpio, str(tmp_path), "test-consumer", module=APIS[api](world))


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_adapter_detects_the_api(api):
    assert adapter_for(APIS[api](World({}))).api == api


@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_resolves_by_name_first_then_offset(tmp_path, chip, api):
    world = World({chip: NAMES})
    g = lines(
        tmp_path,
        {
            "by_name": {"chip": "gpiochip0", "line": "GPIO17", "direction": "output"},
            "digits_name": {"chip": "gpiochip0", "line": "17", "direction": "output"},
            "digits_offset": {"chip": "gpiochip0", "line": "4", "direction": "output"},
            "by_offset": {"chip": "/dev/gpiochip0", "line": 5, "direction": "output"},
        },
        api,
        world,
    )
    infos = {i.name: (i.offset, i.line_name, i.chip) for i in g.lines()}
    assert infos == {
        "by_name": (7, "GPIO17", chip),
        "digits_name": (6, "17", chip),  # a line *named* "17" wins over offset 17
        "digits_offset": (4, "", chip),  # no line named "4": offset 4 (unnamed)
        "by_offset": (5, "GPIO5", chip),
    }
    assert {r.consumer for r in world.requests} == {"test-consumer"}
    await g.close()


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_missing_chip_and_line_name_their_keys(tmp_path, chip, api):
    world = World({chip: NAMES})
    with pytest.raises(ConfigError) as e:
        lines(tmp_path, {"r": {"chip": "gpiochip9", "line": 1, "direction": "output"}}, api, world)
    assert e.value.key == "hal.gpio.r.chip"
    assert e.value.message == f"no such GPIO chip: {tmp_path}/dev/gpiochip9"
    with pytest.raises(ConfigError) as e:
        lines(
            tmp_path,
            {"r": {"chip": "gpiochip0", "line": "GPIO99", "direction": "output"}},
            api,
            world,
        )
    assert e.value.key == "hal.gpio.r.line"
    assert e.value.message == f"no line named 'GPIO99' on {chip}"
    with pytest.raises(ConfigError) as e:
        lines(tmp_path, {"r": {"chip": "gpiochip0", "line": 8, "direction": "output"}}, api, world)
    assert e.value.message == f"no offset 8 (the chip has 8 lines) on {chip}"


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_a_failed_line_releases_the_lines_already_requested(tmp_path, chip, api):
    world = World({chip: NAMES})
    with pytest.raises(ConfigError):
        lines(
            tmp_path,
            {
                "ok": {"chip": "gpiochip0", "line": 2, "direction": "output"},
                "bad": {"chip": "gpiochip0", "line": "nope", "direction": "output"},
            },
            api,
            world,
        )
    assert [r.released for r in world.requests] == [True]


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_busy_line_is_a_gpio_error(tmp_path, chip, api):
    world = World({chip: NAMES})
    world.busy.add((chip, 7))
    with pytest.raises(GpioError) as e:
        lines(
            tmp_path,
            {"r": {"chip": "gpiochip0", "line": "GPIO17", "direction": "output"}},
            api,
            world,
        )
    assert str(e.value) == f"gpio r: line 'GPIO17' on {chip} is in use by another program"


def test_v2_settings_translation(tmp_path, chip):
    world = World({chip: NAMES})
    g = lines(
        tmp_path,
        {
            "relay": {
                "chip": "gpiochip0",
                "line": "GPIO17",
                "direction": "output",
                "active_low": True,
                "initial": 1,
            },
            "door": {
                "chip": "gpiochip0",
                "line": 3,
                "direction": "input",
                "bias": "pull-up",
                "debounce_ms": 20,
                "active_low": True,
            },
            "down": {"chip": "gpiochip0", "line": 2, "direction": "input", "bias": "pull-down"},
            "off": {"chip": "gpiochip0", "line": 1, "direction": "input", "bias": "disabled"},
        },
        "v2",
        world,
    )
    s = {r.offset: r.settings for r in world.requests}
    relay, door, down, off = s[7], s[3], s[2], s[1]
    assert relay.direction.name == "OUTPUT" and relay.active_low is True
    assert relay.output_value.name == "ACTIVE" and relay.bias.name == "AS_IS"
    assert door.direction.name == "INPUT" and door.edge_detection.name == "BOTH"
    assert door.bias.name == "PULL_UP" and door.debounce_period == timedelta(milliseconds=20)
    assert door.active_low is True
    assert down.active_low is False
    assert down.bias.name == "PULL_DOWN" and off.bias.name == "DISABLED"
    assert world.values[(chip, 7)] == 1  # requested with its initial value
    asyncio.run(g.close())


def test_v1_request_translation(tmp_path, chip):
    world = World({chip: NAMES})
    v1 = make_v1(world)
    cfg = parse(
        {
            "backend": "linux",
            "gpio": {
                "relay": {
                    "chip": "gpiochip0",
                    "line": "GPIO17",
                    "direction": "output",
                    "active_low": True,
                    "initial": 1,
                },
                "door": {"chip": "gpiochip0", "line": 3, "direction": "input", "bias": "pull-up"},
                "down": {
                    "chip": "gpiochip0",
                    "line": 2,
                    "direction": "input",
                    "bias": "pull-down",
                    "active_low": True,
                },
                "off": {"chip": "gpiochip0", "line": 1, "direction": "input", "bias": "disabled"},
            },
        }
    )
    g = LinuxGpio(cfg.gpio, str(tmp_path), "c", module=v1)
    r = {q.offset: q for q in world.requests}
    assert (r[7].type, r[7].flags, r[7].default_val) == (
        v1.LINE_REQ_DIR_OUT,
        v1.LINE_REQ_FLAG_ACTIVE_LOW,
        1,
    )
    assert (r[3].type, r[3].flags) == (v1.LINE_REQ_EV_BOTH_EDGES, v1.LINE_REQ_FLAG_BIAS_PULL_UP)
    assert r[2].flags == v1.LINE_REQ_FLAG_BIAS_PULL_DOWN | v1.LINE_REQ_FLAG_ACTIVE_LOW
    assert r[1].flags == v1.LINE_REQ_FLAG_BIAS_DISABLE
    assert g.api == "v1"
    asyncio.run(g.close())


@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_read_write_pulse_and_release(tmp_path, chip, api):
    world = World({chip: NAMES})
    g = lines(
        tmp_path,
        {
            "relay": {"chip": "gpiochip0", "line": "GPIO17", "direction": "output"},
            "door": {"chip": "gpiochip0", "line": 3, "direction": "input"},
        },
        api,
        world,
    )
    await g.write("relay", 1)
    assert await g.read("relay") == 1
    await g.pulse("relay", 1)
    assert world.sets == [(chip, 7, 1), (chip, 7, 1), (chip, 7, 0)]
    world.level(chip, 3, 1)
    assert await g.read("door") == 1
    await g.close()
    assert all(r.released for r in world.requests)  # outputs held until close, then released
    with pytest.raises(GpioError):
        await g.write("relay", 1)


@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_edges_arrive_through_the_event_fd(tmp_path, chip, api):
    world = World({chip: NAMES})
    g = lines(
        tmp_path, {"door": {"chip": "gpiochip0", "line": 3, "direction": "input"}}, api, world
    )
    async with g.edges() as edges:
        world.edge(chip, 3, 1, ts=1_500_000_000)
        first = await anext(edges)
        world.edge(chip, 3, 0, ts=2_000_000_001)
        second = await anext(edges)
    assert (first.line, first.value, first.timestamp_ns) == ("door", 1, 1_500_000_000)
    assert (second.value, second.timestamp_ns) == (0, 2_000_000_001)
    await g.close()


async def test_v1_software_debounce_reports_the_settled_level_once(tmp_path, chip):
    world = World({chip: NAMES})
    g = lines(
        tmp_path,
        {"door": {"chip": "gpiochip0", "line": 3, "direction": "input", "debounce_ms": 5}},
        "v1",
        world,
    )
    async with g.edges() as edges:
        world.edge(chip, 3, 1)
        world.edge(chip, 3, 0)  # contact bounce
        world.edge(chip, 3, 1)
        ev = await anext(edges)
        assert (ev.line, ev.value) == ("door", 1)
        world.edge(chip, 3, 0)
        world.edge(chip, 3, 1)  # a glitch that ends where it started: nothing to report
        world.edge(chip, 3, 1)  # (a repeated event, as after a missed one)
        await asyncio.sleep(0.02)  # let the debounce window close (the window is the behaviour)
        world.edge(chip, 3, 0)
        ev = await anext(edges)
        assert ev.value == 0  # the real change, and nothing for the glitch:
        assert edges._queue.empty()
    await g.close()


async def test_v1_debounced_read_samples_until_stable(tmp_path, chip):
    world = World({chip: NAMES})
    g = lines(
        tmp_path,
        {"door": {"chip": "gpiochip0", "line": 3, "direction": "input", "debounce_ms": 1}},
        "v1",
        world,
    )
    world.level(chip, 3, 1)
    assert await g.read("door") == 1
    await g.close()


def test_without_gpiod_installed_the_error_says_how_to_get_it(tmp_path, chip, monkeypatch):
    monkeypatch.setitem(sys.modules, "gpiod", None)  # import gpiod -> ImportError
    cfg = parse(
        {"backend": "linux", "gpio": {"r": {"chip": "gpiochip0", "line": 1, "direction": "output"}}}
    )
    with pytest.raises(GpioError) as e:
        LinuxGpio(cfg.gpio, str(tmp_path))
    assert str(e.value) == (
        "gpio r: Python gpiod is not installed: pip install 'sms-command-bridge[gpio]' "
        "or apt install python3-libgpiod"
    )


# --------------------------------------------------------------- gpio-sim

GPIO_SIM = Path("/sys/kernel/config/gpio-sim")


def _gpiod_or_skip():
    if not GPIO_SIM.is_dir():
        pytest.skip(
            "gpio-sim is not available: /sys/kernel/config/gpio-sim is absent "
            "(kernel without CONFIG_GPIO_SIM or configfs not mounted)"
        )
    try:
        import gpiod
    except ImportError:
        pytest.skip(
            "the gpiod Python module is not installed (pip install 'sms-command-bridge[gpio]')"
        )
    return gpiod


async def test_against_gpio_sim(tmp_path):
    """A real chip from the kernel's gpio-sim (configfs), with named lines."""
    gpiod = _gpiod_or_skip()
    dev = GPIO_SIM / f"hal-test-{os.getpid()}"
    bank = dev / "bank0"
    bank.mkdir(parents=True)
    try:
        (bank / "num_lines").write_text("8")
        for off, name in ((3, "DOOR"), (5, "RELAY")):
            (bank / f"line{off}").mkdir()
            (bank / f"line{off}" / "name").write_text(name)
        (dev / "live").write_text("1")
        chip_name = (bank / "chip_name").read_text().strip()
        sim_dev = (dev / "dev_name").read_text().strip()
        cfg = parse(
            {
                "backend": "linux",
                "gpio": {
                    "door": {
                        "chip": chip_name,
                        "line": "DOOR",
                        "direction": "input",
                        "bias": "pull-down",
                    },
                    "relay": {"chip": chip_name, "line": "RELAY", "direction": "output"},
                },
            }
        )
        g = LinuxGpio(cfg.gpio, "/", "hal-test", module=gpiod)
        try:
            await g.write("relay", 1)
            value = Path(f"/sys/devices/platform/{sim_dev}/{chip_name}/sim_gpio5/value")
            assert value.read_text().strip() == "1"
            pull = Path(f"/sys/devices/platform/{sim_dev}/{chip_name}/sim_gpio3/pull")
            async with g.edges() as edges:
                pull.write_text("pull-up")
                ev = await anext(edges)
            assert (ev.line, ev.value) == ("door", 1)
            assert await g.read("door") == 1
        finally:
            await g.close()
    finally:
        (dev / "live").write_text("0")
        for off in (3, 5):
            (bank / f"line{off}").rmdir()
        bank.rmdir()
        dev.rmdir()


@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_edges_queued_before_subscribing_are_not_reported(tmp_path, chip, api):
    world = World({chip: NAMES})
    g = lines(
        tmp_path, {"door": {"chip": "gpiochip0", "line": 3, "direction": "input"}}, api, world
    )
    world.edge(chip, 3, 1, ts=10)
    world.edge(chip, 3, 0, ts=20)
    world.edge(chip, 3, 1, ts=30)  # the line is high when the subscriber arrives
    async with g.edges() as edges:
        world.edge(chip, 3, 0, ts=40)
        ev = await anext(edges)
        assert (ev.value, ev.timestamp_ns) == (0, 40)
        assert edges._queue.empty()
    await g.close()


def _levels(g, name, values):
    """Make the handle of ``name`` return ``values`` on successive reads; count them."""
    h = g._handles[name]
    seq = iter(values)
    calls = []

    def get():
        calls.append(1)
        return next(seq)

    h.get = get
    return calls


async def test_v1_debounced_read_waits_for_two_agreeing_samples(tmp_path, chip):
    world = World({chip: NAMES})
    g = lines(
        tmp_path,
        {"door": {"chip": "gpiochip0", "line": 3, "direction": "input", "debounce_ms": 1}},
        "v1",
        world,
    )
    calls = _levels(g, "door", [1, 0, 1, 0, 0, 1])  # bouncing, then settled at 0
    assert await g.read("door") == 0
    assert len(calls) == 5  # sampled until two reads debounce_ms apart agreed
    _levels(g, "door", [0, 1] * 20)  # never settles
    with pytest.raises(GpioError, match="input did not settle for 1 ms"):
        await g.read("door")
    await g.close()


async def test_v2_read_is_not_sampled_the_kernel_debounces(tmp_path, chip):
    world = World({chip: NAMES})
    g = lines(
        tmp_path,
        {"door": {"chip": "gpiochip0", "line": 3, "direction": "input", "debounce_ms": 50}},
        "v2",
        world,
    )
    calls = _levels(g, "door", [1, 0])
    assert await g.read("door") == 1 and len(calls) == 1
    await g.close()


@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_a_subscription_after_close_ends_and_watches_nothing(tmp_path, chip, api):
    world = World({chip: NAMES})
    g = lines(
        tmp_path, {"door": {"chip": "gpiochip0", "line": 3, "direction": "input"}}, api, world
    )
    await g.close()
    assert [e async for e in g.edges()] == []


@pytest.mark.parametrize("api", ["v1", "v2"])
async def test_edges_work_with_an_event_fd_above_1023(tmp_path, chip, api):
    # select() cannot watch a descriptor >= FD_SETSIZE (1024); a long-running process
    # with many open files gets such descriptors for its line requests.
    world = World({chip: NAMES})
    g = lines(
        tmp_path, {"door": {"chip": "gpiochip0", "line": 3, "direction": "input"}}, api, world
    )
    r = world.requests[0]
    high = 1500
    os.dup2(r.read_fd, high)
    os.close(r.read_fd)
    r.read_fd = high
    if api == "v2":
        g._handles["door"]._req.fd = high
    world.edge(chip, 3, 1, ts=5)  # queued before anyone listens: dropped
    async with g.edges() as edges:
        world.edge(chip, 3, 0, ts=6)
        ev = await anext(edges)
    assert (ev.value, ev.timestamp_ns) == (0, 6)
    await g.close()


@pytest.mark.parametrize("api", ["v1", "v2"])
@pytest.mark.parametrize("where", ["lookup", "first-read"])
def test_an_os_error_while_requesting_is_a_gpio_error(tmp_path, chip, api, where, monkeypatch):
    # a chip that answers the open but fails later (unbound mid-way, an I/O error)
    world = World({chip: NAMES})
    module = APIS[api](world)
    eio = OSError(errno.EIO, "Input/output error")

    def fail(*a, **k):
        raise eio

    if where == "lookup":
        monkeypatch.setattr(module.Chip, "get_line_info" if api == "v2" else "find_line", fail)
    elif api == "v2":
        monkeypatch.setattr(module.LineRequest, "get_value", fail)
    else:
        monkeypatch.setattr(module.Line, "get_value", fail)
    cfg = parse(
        {
            "backend": "linux",
            "gpio": {"door": {"chip": "gpiochip0", "line": "GPIO3", "direction": "input"}},
        }
    )
    with pytest.raises(GpioError) as e:
        LinuxGpio(cfg.gpio, str(tmp_path), module=module)
    assert str(e.value) == f"gpio door: {chip}: Input/output error"
    assert all(r.released for r in world.requests)


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_one_line_configured_twice_by_name_and_offset_names_both_keys(tmp_path, chip, api):
    # parse() cannot see that "GPIO17" is offset 7; the kernel answers EBUSY, which
    # must not read "in use by another program" when the other user is us.
    world = World({chip: NAMES})
    with pytest.raises(ConfigError) as e:
        lines(
            tmp_path,
            {
                "relay": {"chip": "gpiochip0", "line": "GPIO17", "direction": "output"},
                "again": {"chip": "/dev/gpiochip0", "line": 7, "direction": "output"},
            },
            api,
            world,
        )
    assert e.value.key == "hal.gpio.again.line"
    assert e.value.message == f"is the line gpio.relay already uses ({chip} offset 7)"
    assert all(r.released for r in world.requests)
