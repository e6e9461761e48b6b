"""Sensors: pure parsers (vectors + hypothesis) and LinuxSensors on real directory trees."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
import shutil
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.config import parse
from hal.errors import Fault, ParseError, SensorError
from hal.sensors import (
    LinuxSensors,
    dallas_crc8,
    parse_int_attribute,
    parse_number,
    parse_w1_slave,
    parse_w1_temperature,
    scale,
)

from .trees import Tree, ds18b20_scratchpad, w1_slave_text

# ------------------------------------------------------------------ parsers


def test_dallas_crc8_known_vector():
    # Maxim application note 27 example ROM: family 02, serial 1C B8 01 00 00 00, CRC A2
    assert dallas_crc8(bytes.fromhex("02 1c b8 01 00 00 00")) == 0xA2
    # A scratchpad captured from a DS18B20 (w1_therm output on a Raspberry Pi)
    assert dallas_crc8(bytes.fromhex("24 01 4b 46 7f ff 0c 10")) == 0x48


def test_w1_slave_captured_sample():
    text = "24 01 4b 46 7f ff 0c 10 48 : crc=48 YES\n24 01 4b 46 7f ff 0c 10 48 t=18250\n"
    assert parse_w1_slave(text) == 18250


@pytest.mark.parametrize(
    ("raw", "mc"),
    [(0x0191, 25062), (0x0000 + 1, 62), (0xFF5E, -10125), (0x07D0, 125000), (0xFC90, -55000)],
)
def test_w1_slave_values_from_the_datasheet_table(raw, mc):
    # DS18B20 datasheet table 1: +25.0625 °C = 0x0191, -10.125 °C = 0xFF5E, +125 = 0x07D0,
    # -55 = 0xFC90; the kernel truncates to whole millidegrees.
    assert parse_w1_slave(w1_slave_text(raw)) == mc


def test_w1_slave_crc_no_is_rejected():
    with pytest.raises(ParseError) as e:
        parse_w1_slave(w1_slave_text(0x0191, verdict="NO"))
    assert e.value.fault is Fault.CRC


def test_w1_slave_yes_with_wrong_crc_byte_is_rejected():
    sp = bytearray(ds18b20_scratchpad(0x0191))
    sp[8] ^= 0x01
    with pytest.raises(ParseError) as e:
        parse_w1_slave(w1_slave_text(0x0191, scratch=bytes(sp)))
    assert e.value.fault is Fault.CRC


def test_w1_slave_power_on_value_is_rejected():
    with pytest.raises(ParseError) as e:
        parse_w1_slave(w1_slave_text(0x0550))  # 85 °C
    assert e.value.fault is Fault.POWER_ON_RESET


def test_w1_slave_all_zero_scratchpad_is_a_bus_fault():
    with pytest.raises(ParseError) as e:
        parse_w1_slave(w1_slave_text(0, scratch=bytes(9)))
    assert e.value.fault is Fault.BUS


@pytest.mark.parametrize(
    "text",
    [
        "",  # the kernel returns nothing when the conversion failed
        "24 01 4b 46 7f ff 0c 10 48 : crc=48 YES\n",  # second line missing
        "24 01 4b 46 7f ff 0c 10 : crc=48 YES\n24 01 4b 46 7f ff 0c 10 48 t=18250\n",
        "24 01 4b 46 7f ff 0c 10 48 : crc=48 YES\n24 01 4b 46 7f ff 0c 10 48 t=\n",
        "24 01 4b 46 7f ff 0c 10 48 : crc=48 MAYBE\n24 01 4b 46 7f ff 0c 10 48 t=18250\n",
    ],
)
def test_w1_slave_malformed(text):
    with pytest.raises(ParseError) as e:
        parse_w1_slave(text)
    assert e.value.fault is Fault.MALFORMED


def test_w1_slave_retained_bytes_must_match():
    good = w1_slave_text(0x0191)
    first, second = good.splitlines()
    other = w1_slave_text(0x0192).splitlines()[1]
    with pytest.raises(ParseError):
        parse_w1_slave(f"{first}\n{other}\n")
    assert parse_w1_slave(f"{first}\n{second}\n") == 25062


def test_w1_temperature_attribute():
    assert parse_w1_temperature("21437\n") == 21437
    assert parse_w1_temperature("-1250\n") == -1250
    for text, fault in (
        ("85000\n", Fault.POWER_ON_RESET),
        ("\n", Fault.MALFORMED),
        ("130000\n", Fault.RANGE),
    ):
        with pytest.raises(ParseError) as e:
            parse_w1_temperature(text)
        assert e.value.fault is fault


def test_int_attribute():
    assert parse_int_attribute("42000\n") == 42000
    assert parse_int_attribute("-5") == -5
    for bad in ("", "\n", "4 2", "0x10", "42.0", "abc", "42\n\n"):
        with pytest.raises(ParseError):
            parse_int_attribute(bad)


def test_scale_is_exact():
    assert scale(1234, Decimal("0.001")) == Decimal("1.234")
    assert scale(Decimal("3.3"), Decimal("0.1"), Decimal("-0.33")) == Decimal("0.000")
    assert scale(10**19, Decimal("0.000000001")) == Decimal("10000000000.000000000")
    with pytest.raises(ParseError):
        # (10^60 + 1) * (1 + 10^-30) needs 91 significant digits: refused, not rounded
        scale(10**60 + 1, Decimal("1." + "0" * 29 + "1"))


@given(st.text(max_size=200))
def test_parsers_value_or_declared_error(text):
    for fn in (parse_int_attribute, parse_number, parse_w1_slave, parse_w1_temperature):
        with contextlib.suppress(ParseError):
            fn(text)


@given(st.integers(min_value=-32768, max_value=32767))
def test_w1_slave_any_register_value(raw):
    mc = int(raw * 1000 / 16)
    try:
        got = parse_w1_slave(w1_slave_text(raw))
    except ParseError as e:
        assert mc == 85000 or not -55000 <= mc <= 125000 or not any(ds18b20_scratchpad(raw))
        assert e.fault in (Fault.POWER_ON_RESET, Fault.RANGE, Fault.BUS)
    else:
        assert got == mc and -55000 <= got <= 125000 and got != 85000


@given(
    st.binary(min_size=9, max_size=9), st.sampled_from(["YES", "NO"]), st.integers(-(10**6), 10**6)
)
def test_w1_slave_any_bytes(sp, verdict, t):
    hexes = "".join(f"{b:02x} " for b in sp)
    text = f"{hexes}: crc={sp[8]:02x} {verdict}\n{hexes}t={t}\n"
    try:
        assert parse_w1_slave(text) == t
    except ParseError:
        return
    assert verdict == "YES" and dallas_crc8(sp[:8]) == sp[8] and t != 85000


@given(st.integers(min_value=-(10**18), max_value=10**18))
def test_int_attribute_round_trip(n):
    assert parse_int_attribute(f"{n}\n") == n


# ------------------------------------------------------------ on real trees


def sensors(tmp_path, table, **kw) -> LinuxSensors:
    cfg = parse({"backend": "linux", "root": str(tmp_path), "sensors": table})
    return LinuxSensors(cfg.sensors, str(tmp_path), **kw)


async def test_thermal_zone_millidegrees_to_exact_celsius(tmp_path):
    Tree(tmp_path).thermal(0, "48312\n")
    Tree(tmp_path).thermal(1, "-2500\n")
    s = sensors(
        tmp_path,
        {
            "cpu": {"type": "thermal", "zone": 0},
            "out": {"type": "thermal", "zone": "thermal_zone1"},
        },
    )
    r = await s.read("cpu")
    assert (r.sensor, r.value, r.unit) == ("cpu", Decimal("48.312"), "°C")
    assert str(r) == "48.312 °C"
    assert (await s.read("out")).value == Decimal("-2.500")


async def test_hwmon_by_name_and_by_index_with_units(tmp_path):
    t = Tree(tmp_path)
    t.hwmon(0, "cpu_thermal", {"temp1_input": "51540\n"})
    t.hwmon(
        1, "ina219", {"in0_input": "5012\n", "curr1_input": "-350\n", "power1_input": "2506000\n"}
    )
    t.hwmon(2, "pwmfan", {"fan1_input": "2950\n"})
    s = sensors(
        tmp_path,
        {
            "soc": {"type": "hwmon", "device": "cpu_thermal", "input": "temp1_input"},
            "volts": {"type": "hwmon", "device": "ina219", "input": "in0_input"},
            "amps": {"type": "hwmon", "device": "hwmon1", "input": "curr1_input"},
            "watts": {"type": "hwmon", "device": "ina219", "input": "power1_input"},
            "fan": {"type": "hwmon", "device": "pwmfan", "input": "fan1_input"},
        },
    )
    got = {n: (await s.read(n)) for n in s.names()}
    assert {n: (r.value, r.unit) for n, r in got.items()} == {
        "soc": (Decimal("51.540"), "°C"),
        "volts": (Decimal("5.012"), "V"),
        "amps": (Decimal("-0.350"), "A"),
        "watts": (Decimal("2.506000"), "W"),
        "fan": (Decimal("2950"), "RPM"),
    }


async def test_hwmon_name_not_found_and_ambiguous(tmp_path):
    t = Tree(tmp_path)
    t.hwmon(0, "twin", {"temp1_input": "1\n"})
    t.hwmon(1, "twin", {"temp1_input": "2\n"})
    s = sensors(
        tmp_path,
        {
            "a": {"type": "hwmon", "device": "nothere", "input": "temp1_input"},
            "b": {"type": "hwmon", "device": "twin", "input": "temp1_input"},
        },
    )
    with pytest.raises(SensorError) as e:
        await s.read("a")
    assert e.value.sensor == "a" and e.value.fault is Fault.MISSING
    with pytest.raises(SensorError, match="2 hwmon devices are named 'twin'"):
        await s.read("b")


async def test_ds18b20_good_bad_crc_power_on_vanished(tmp_path):
    t = Tree(tmp_path)
    t.w1("28-000000000001", w1_slave=w1_slave_text(0x0157))  # 21.4375 °C
    t.w1("28-000000000002", w1_slave=w1_slave_text(0x0157, verdict="NO"))
    t.w1("28-000000000003", w1_slave=w1_slave_text(0x0550))
    gone = t.w1("28-000000000004", w1_slave=w1_slave_text(0x0157))
    t.w1("28-000000000005", temperature="21437\n")
    s = sensors(
        tmp_path,
        {
            "good": {"type": "ds18b20", "device": "28-000000000001"},
            "crc": {"type": "ds18b20", "device": "28-000000000002"},
            "por": {"type": "ds18b20", "device": "28-000000000003"},
            "gone": {"type": "ds18b20", "device": "28-000000000004"},
            "attr": {"type": "ds18b20", "device": "28-000000000005", "attribute": "temperature"},
        },
    )
    assert await s.read("good") == __import__("hal").Reading("good", Decimal("21.437"), "°C")
    assert (await s.read("attr")).value == Decimal("21.437")
    assert (await s.read("gone")).value == Decimal("21.437")
    shutil.rmtree(gone)  # unplugged: w1 removes the device directory
    faults = {}
    for name in ("crc", "por", "gone"):
        with pytest.raises(SensorError) as e:
            await s.read(name)
        assert e.value.sensor == name
        faults[name] = e.value.fault
    assert faults == {"crc": Fault.CRC, "por": Fault.POWER_ON_RESET, "gone": Fault.MISSING}


async def test_permission_error_is_typed(tmp_path):
    # Tests run as root, and root reads a chmod 000 file anyway: the opener
    # raises what open(2) gives an unprivileged user instead.
    p = Tree(tmp_path).thermal(0, "40000\n")
    p.chmod(0)

    def opener(path: str) -> int:
        if path == str(p):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return os.open(path, os.O_RDONLY)

    s = sensors(tmp_path, {"cpu": {"type": "thermal", "zone": 0}}, opener=opener)
    with pytest.raises(SensorError) as e:
        await s.read("cpu")
    assert e.value.fault is Fault.PERMISSION
    assert str(e.value) == f"sensor cpu: permission: {p}: Permission denied"


async def test_directory_where_a_file_is_expected(tmp_path):
    (tmp_path / "sys/class/thermal/thermal_zone0/temp").mkdir(parents=True)
    s = sensors(tmp_path, {"cpu": {"type": "thermal", "zone": 0}})
    with pytest.raises(SensorError) as e:
        await s.read("cpu")
    assert e.value.fault is Fault.IO
    assert e.value.detail == f"{tmp_path}/sys/class/thermal/thermal_zone0/temp: Is a directory"


async def test_garbage_content_is_malformed_not_a_value(tmp_path):
    Tree(tmp_path).thermal(0, "hot\n")
    s = sensors(tmp_path, {"cpu": {"type": "thermal", "zone": 0}})
    with pytest.raises(SensorError) as e:
        await s.read("cpu")
    assert e.value.fault is Fault.MALFORMED


async def test_file_sensor_scale_offset_exact(tmp_path):
    Tree(tmp_path).write("sys/bus/iio/devices/iio:device0/in_voltage0_raw", "2047\n")
    s = sensors(
        tmp_path,
        {
            "level": {
                "type": "file",
                "path": "/sys/bus/iio/devices/iio:device0/in_voltage0_raw",
                "unit": "V",
                "scale": "0.000805664",
                "offset": 0.1,
            }
        },
    )
    r = await s.read("level")
    assert r.value == Decimal("2047") * Decimal("0.000805664") + Decimal("0.1")
    assert r.value == Decimal("1.749194208") and r.unit == "V"


async def test_read_runs_off_the_loop_times_out_and_joins_the_stuck_read(tmp_path):
    Tree(tmp_path).thermal(0, "40000\n")
    release = threading.Event()
    calls = []

    def opener(path: str) -> int:
        calls.append(path)
        release.wait()  # a bus that hangs until released
        return os.open(path, os.O_RDONLY)

    s = sensors(tmp_path, {"cpu": {"type": "thermal", "zone": 0, "timeout_s": 0.05}}, opener=opener)
    with pytest.raises(SensorError) as e:
        await s.read("cpu")
    assert e.value.fault is Fault.TIMEOUT and e.value.detail == "no value within 0.05 s"
    with pytest.raises(SensorError) as e:
        await s.read("cpu")  # joins the stuck read: no second thread
    assert e.value.fault is Fault.TIMEOUT
    assert len(calls) == 1
    s._cfg["cpu"] = dataclasses.replace(s._cfg["cpu"], timeout_s=60.0)
    reader = asyncio.create_task(s.read("cpu"))
    await asyncio.sleep(0)
    release.set()
    assert (await reader).value == Decimal("40.000")
    assert len(calls) == 1  # the value came from the one read that was stuck


async def test_unknown_sensor_name(tmp_path):
    s = sensors(tmp_path, {})
    with pytest.raises(SensorError) as e:
        await s.read("nope")
    assert e.value.fault is Fault.MISSING


async def test_hwmon_attributes_under_device_on_older_drivers(tmp_path):
    t = Tree(tmp_path)
    t.write("sys/class/hwmon/hwmon0/device/name", "lm75\n")
    t.write("sys/class/hwmon/hwmon0/device/temp1_input", "23500\n")
    s = sensors(tmp_path, {"board": {"type": "hwmon", "device": "lm75", "input": "temp1_input"}})
    assert (await s.read("board")).value == Decimal("23.500")


_SENSOR_TABLE = {
    "zone": {"type": "thermal", "zone": 0},
    "mon": {"type": "hwmon", "device": "hwmon0", "input": "in1_input"},
    "w1": {"type": "ds18b20", "device": "28-000000000001"},
    "w1t": {"type": "ds18b20", "device": "28-000000000002", "attribute": "temperature"},
    "raw": {"type": "file", "path": "/data/raw", "unit": "V", "scale": "0.5"},
}
_FILES = {
    "zone": "sys/class/thermal/thermal_zone0/temp",
    "mon": "sys/class/hwmon/hwmon0/in1_input",
    "w1": "sys/bus/w1/devices/28-000000000001/w1_slave",
    "w1t": "sys/bus/w1/devices/28-000000000002/temperature",
    "raw": "data/raw",
}


@given(
    st.sampled_from(sorted(_FILES)), st.binary(max_size=300) | st.text(max_size=80).map(str.encode)
)
def test_any_file_content_gives_a_reading_or_a_sensor_error(which, content):
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        p = Path(root) / _FILES[which]
        p.parent.mkdir(parents=True)
        p.write_bytes(content)
        cfg = parse({"sensors": _SENSOR_TABLE})
        s = LinuxSensors(cfg.sensors, root)
        try:
            r = s.read_sync(which)
        except SensorError as e:
            assert e.sensor == which and isinstance(e.fault, Fault)
        else:
            assert isinstance(r.value, Decimal) and r.value.is_finite()
            assert r.unit == cfg.sensors[which].unit


async def test_an_os_error_while_finding_the_hwmon_file_is_a_sensor_error(tmp_path):
    # hwmonN with a name longer than NAME_MAX: stat() fails with ENAMETOOLONG, which
    # Path.exists() does not swallow (nor EACCES for a non-root user).
    (tmp_path / "sys/class/hwmon").mkdir(parents=True)
    s = sensors(
        tmp_path, {"t": {"type": "hwmon", "device": "hwmon" + "1" * 300, "input": "in0_input"}}
    )
    with pytest.raises(SensorError) as e:
        await s.read("t")
    assert e.value.sensor == "t" and e.value.fault is Fault.IO
    assert "File name too long" in e.value.detail
    with pytest.raises(SensorError) as e:
        s.path_of("t")
    assert e.value.fault is Fault.IO


decimal_text = st.from_regex(r"-?[0-9]{1,40}(\.[0-9]{1,40})?", fullmatch=True)


@given(
    st.from_regex(r"[ \t]{0,2}-?[0-9]{1,35}(\.[0-9]{1,35})?[ \t]{0,2}\n?", fullmatch=True),
    decimal_text | st.from_regex(r"-?[0-9]{1,3}[eE][+-]?[0-9]{1,7}", fullmatch=True),
    decimal_text,
)
def test_file_sensor_value_is_exact_or_refused(content, scale_text, offset_text):
    import tempfile
    from decimal import Context

    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "raw").write_text(content)
        table = {"type": "file", "path": "/raw", "scale": scale_text, "offset": offset_text}
        cfg = parse({"sensors": {"s": table}})
        try:
            r = LinuxSensors(cfg.sensors, root).read_sync("s")
        except SensorError as e:
            assert e.fault in (Fault.RANGE, Fault.MALFORMED)
            if e.fault is Fault.MALFORMED:  # only a raw value beyond 30 + 30 digits
                int_part, _, frac = content.strip().lstrip("-").partition(".")
                assert len(int_part) > 30 or len(frac) > 30
            return
    big = Context(prec=100_000, Emax=10**9, Emin=-(10**9))
    raw = Decimal(content.strip())
    want = big.add(big.multiply(raw, Decimal(scale_text)), Decimal(offset_text))
    assert r.value == want  # the exact value, never a rounded one


HUNG_READ = """
import asyncio, os, sys, threading
from hal.config import parse
from hal.errors import SensorError
from hal.sensors import LinuxSensors
from hal.system import LinuxSystem

root = sys.argv[1]
cfg = parse({"sensors": {"cpu": {"type": "thermal", "zone": 0, "timeout_s": 0.1}}})
never = threading.Event()

def opener(path):
    never.wait()  # a read stuck in the kernel (a 1-Wire bus that never answers)

os.statvfs = lambda path: never.wait()  # an NFS mount that never answers

async def main():
    try:
        await LinuxSensors(cfg.sensors, root, opener=opener).read("cpu")
    except SensorError as e:
        print(e.fault.value)
    snap = await LinuxSystem(cfg.system, root, ipv4=lambda n: [], timeout_s=0.1).snapshot()
    print(snap.errors[0])

asyncio.run(main())
print("exited")
"""


def test_a_hung_read_does_not_keep_the_process_from_exiting(tmp_path):
    # asyncio.run() joins the default executor's threads at exit: a read stuck there
    # would hang `python -m hal sensor` (and the bridge's shutdown) for ever.
    import subprocess
    import sys

    Tree(tmp_path).thermal(0, "40000\n")
    p = subprocess.run(
        [sys.executable, "-c", HUNG_READ, str(tmp_path)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (p.returncode, p.stderr) == (0, "")
    assert p.stdout == "timeout\nno answer within 0.1 s (a hung mount?)\nexited\n"
