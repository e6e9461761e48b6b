"""System status: the /proc parsers and LinuxSystem on a real tree."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.config import parse
from hal.errors import ParseError
from hal.interfaces import ProgramInfo
from hal.system import (
    LinuxSystem,
    ioctl_ipv4,
    parse_if_inet6,
    parse_loadavg,
    parse_meminfo,
    parse_os_release,
    parse_uptime,
)

from .trees import Tree


def test_uptime_and_loadavg():
    assert parse_uptime("701.35 1247.76\n") == Decimal("701.35")
    assert parse_loadavg("0.05 0.12 0.08 2/87 7070\n") == (
        Decimal("0.05"),
        Decimal("0.12"),
        Decimal("0.08"),
    )
    for bad in ("", "701.35\n", "-1.00 2.00\n", "1e3 2\n"):
        with pytest.raises(ParseError):
            parse_uptime(bad)
    for bad in ("", "0.05 0.12 0.08\n", "0.05 0.12 x 2/87 7070\n"):
        with pytest.raises(ParseError):
            parse_loadavg(bad)


def test_meminfo_bytes():
    mem = parse_meminfo("MemTotal: 948280 kB\nMemAvailable: 512000 kB\nHugePages_Total: 0\n")
    assert mem == {"MemTotal": 948280 * 1024, "MemAvailable": 512000 * 1024, "HugePages_Total": 0}
    with pytest.raises(ParseError, match="no MemAvailable"):
        parse_meminfo("MemTotal: 1 kB\n")  # kernels before 3.14
    with pytest.raises(ParseError):
        parse_meminfo("MemTotal 1 kB\n")


def test_meminfo_of_this_machine():
    with open("/proc/meminfo") as f:
        mem = parse_meminfo(f.read())
    assert 0 < mem["MemAvailable"] <= mem["MemTotal"]


def test_os_release_quoting_and_comments():
    rel = parse_os_release(
        "PRETTY_NAME=\"Raspbian GNU/Linux 12 (bookworm)\"\nID=raspbian\n# c\n\nVERSION_ID='12'\n"
        'garbage line\nBROKEN="unterminated\n'
    )
    assert rel == {
        "PRETTY_NAME": "Raspbian GNU/Linux 12 (bookworm)",
        "ID": "raspbian",
        "VERSION_ID": "12",
    }


def test_if_inet6():
    got = parse_if_inet6(
        "00000000000000000000000000000001 01 80 10 80       lo\n"
        "fe800000000000000000000000000001 03 40 20 80     eth0\n"
    )
    assert got == [("lo", "::1/128"), ("eth0", "fe80::1/64")]
    with pytest.raises(ParseError):
        parse_if_inet6("0001 01 80 10 80 lo\n")
    with pytest.raises(ParseError, match="prefix"):
        parse_if_inet6("00000000000000000000000000000001 01 ff 10 80 lo\n")


def test_if_inet6_of_this_machine():
    if os.path.exists("/proc/net/if_inet6"):
        with open("/proc/net/if_inet6") as f:
            assert all(name for name, _ in parse_if_inet6(f.read()))


@given(st.text(max_size=300))
def test_parsers_value_or_declared_error(text):
    for fn in (parse_uptime, parse_loadavg, parse_meminfo, parse_if_inet6):
        with contextlib.suppress(ParseError):
            fn(text)
    assert isinstance(parse_os_release(text), dict)  # ignores what it does not understand


@given(
    st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False),
    st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False),
)
def test_uptime_round_trip(up, idle):
    assert parse_uptime(f"{up} {idle}\n") == up


@given(
    st.dictionaries(
        st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,12}", fullmatch=True),
        st.integers(0, 2**50),
        max_size=8,
    )
)
def test_meminfo_round_trip(fields):
    fields = {**fields, "MemTotal": 100, "MemAvailable": 50}
    text = "".join(f"{k}: {v} kB\n" for k, v in fields.items())
    assert parse_meminfo(text) == {k: v * 1024 for k, v in fields.items()}


async def test_snapshot_of_a_tree(tmp_path):
    t = Tree(tmp_path)
    t.proc()
    t.thermal(0, "47850\n")
    (tmp_path / "data").mkdir()
    cfg = parse({"system": {"mounts": ["/", "/data", "/missing"]}})
    sysinfo = LinuxSystem(
        cfg.system, str(tmp_path), ipv4=lambda n: ["192.0.2.5/24"] if n == "eth0" else []
    )
    prog = ProgramInfo("sms-bridge", "0.1.0", Decimal("12.5"))
    s = await sysinfo.snapshot(prog)
    assert s.hostname == "gateway-7"
    assert (s.os.name, s.os.id, s.os.version_id, s.os.kernel) == (
        "Debian GNU/Linux 12 (bookworm)",
        "debian",
        "12",
        "6.6.31+rpt-rpi-v8",
    )
    assert s.uptime_s == Decimal("701.35")
    assert s.load == (Decimal("0.05"), Decimal("0.12"), Decimal("0.08"))
    assert (s.mem_total_bytes, s.mem_available_bytes) == (948280 * 1024, 512000 * 1024)
    assert s.cpu_temp_c == Decimal("47.850")
    st_ = os.statvfs(tmp_path)
    assert [d.mount for d in s.disks] == ["/", "/data"]
    assert s.disks[0].total_bytes == st_.f_blocks * st_.f_frsize
    assert 0 <= s.disks[0].used_bytes <= s.disks[0].total_bytes
    assert any(e.startswith("disk /missing:") for e in s.errors)
    assert [(i.name, i.state, i.mac, i.ipv4, i.ipv6) for i in s.interfaces] == [
        ("eth0", "up", "dc:a6:32:01:02:03", ("192.0.2.5/24",), ("2001:db8::5/64", "fe80::1/64")),
        ("wwan0", "down", "", (), ()),
    ]
    assert s.program == prog
    doc = s.to_json()
    assert doc["load"] == ["0.05", "0.12", "0.08"] and doc["program"]["version"] == "0.1.0"


async def test_a_missing_file_is_reported_not_invented(tmp_path):
    t = Tree(tmp_path)
    t.proc()
    os.remove(tmp_path / "proc/loadavg")
    t.write("proc/uptime", "garbage\n")
    shutil.rmtree(tmp_path / "sys/class/net")
    s = await LinuxSystem(parse({}).system, str(tmp_path), ipv4=lambda n: []).snapshot()
    assert s.load is None and s.uptime_s is None and s.interfaces == ()
    assert s.cpu_temp_c is None  # no thermal zone: nothing to report, not an error
    assert sorted(e.split(":")[0] for e in s.errors) == ["load", "network", "uptime"]
    assert s.hostname == "gateway-7"


async def test_selected_interfaces_and_cpu_zone(tmp_path):
    t = Tree(tmp_path)
    t.proc()
    t.thermal(0, "1000\n")
    t.thermal(3, "52000\n")
    cfg = parse({"system": {"interfaces": ["lo"], "cpu_zone": "thermal_zone3"}})
    s = await LinuxSystem(cfg.system, str(tmp_path), ipv4=lambda n: []).snapshot()
    assert [i.name for i in s.interfaces] == ["lo"] and s.interfaces[0].ipv6 == ("::1/128",)
    assert s.cpu_temp_c == Decimal("52.000")


def test_ioctl_ipv4_on_the_real_loopback():
    assert ioctl_ipv4("lo") == ["127.0.0.1/8"]
    assert ioctl_ipv4("no-such-if0") == []
    assert ioctl_ipv4("x" * 40) == []


async def test_a_hung_snapshot_is_reported_then_joined(tmp_path, monkeypatch):
    import threading

    Tree(tmp_path).proc()
    release = threading.Event()
    real = os.statvfs
    calls = []

    def hung_statvfs(path):
        calls.append(path)
        release.wait()  # an NFS mount that does not answer
        return real(path)

    monkeypatch.setattr("hal.system.os.statvfs", hung_statvfs)
    sysinfo = LinuxSystem(parse({}).system, str(tmp_path), ipv4=lambda n: [], timeout_s=0.05)
    prog = ProgramInfo("b", "1", Decimal(1))
    s = await sysinfo.snapshot(prog)
    assert s.errors == ("no answer within 0.05 s (a hung mount?)",)
    assert s.hostname is None and s.program == prog
    sysinfo._timeout_s = 60.0
    later = asyncio.create_task(sysinfo.snapshot(prog))
    await asyncio.sleep(0)
    release.set()
    s = await later
    assert s.hostname == "gateway-7" and s.program == prog
    assert len(calls) == 1  # the second call joined the thread that was stuck


async def test_one_unreadable_interface_file_does_not_hide_the_others(tmp_path):
    t = Tree(tmp_path)
    t.proc()
    (tmp_path / "sys/class/net/eth0/address").write_bytes(b"\xff\xfe\n")  # not ASCII
    s = await LinuxSystem(parse({}).system, str(tmp_path), ipv4=lambda n: []).snapshot()
    assert [(i.name, i.state, i.mac) for i in s.interfaces] == [
        ("eth0", "up", ""),
        ("wwan0", "down", ""),
    ]


async def test_the_snapshot_timeout_is_read_when_used(tmp_path, monkeypatch):
    # SNAPSHOT_TIMEOUT_S is the one place that tunes it: read when a LinuxSystem is made
    import threading

    import hal.system

    Tree(tmp_path).proc()
    release = threading.Event()
    monkeypatch.setattr("hal.system.os.statvfs", lambda path: release.wait())
    monkeypatch.setattr(hal.system, "SNAPSHOT_TIMEOUT_S", 0.05)
    try:
        s = await LinuxSystem(parse({}).system, str(tmp_path), ipv4=lambda n: []).snapshot()
        assert s.errors == ("no answer within 0.05 s (a hung mount?)",)
    finally:
        release.set()
