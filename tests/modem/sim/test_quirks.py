"""Profile quirk flags (each off by default), one at a time on the generic
profile via dataclasses.replace, and all together in the ``minimal`` profile."""

from __future__ import annotations

import dataclasses

import pytest

from modem.sim import PROFILES, Profile, SimModem

from .conftest import fast_timing

GENERIC = PROFILES["generic"]


def quirk(**kw: object) -> Profile:
    return dataclasses.replace(GENERIC, **kw)  # type: ignore[arg-type]


async def ready(make_sim, connect, profile, **kw):
    sim = make_sim(profile, **kw)
    d = connect(sim)
    d.buf.clear()
    await d.cmd("ATE0")
    return sim, d


def test_profile_instance_or_name():
    p = quirk(model="ONE-QUIRK")
    assert SimModem(p, timing=fast_timing()).profile is p
    assert SimModem("bg96", timing=fast_timing()).profile is PROFILES["bg96"]
    with pytest.raises(ValueError, match="unknown profile 'nope'"):
        SimModem("nope")


def test_every_flag_is_off_by_default():
    for name, p in PROFILES.items():
        if name == "minimal":
            continue
        assert not (
            p.bare_at_error
            or p.stray_ok_after_error
            or p.cmgd_flag_refused
            or p.cpms_query_refused
            or p.echo_fixed_off
            or p.indexes_never_reused
        ), name
        assert p.cmee_supported and p.cpms_default == ("SM", "SM", "SM"), name
        assert p.cmgl_empty_error is None, name


async def test_bare_at_error(make_sim, connect):
    _, d = await ready(make_sim, connect, quirk(bare_at_error=True))
    assert await d.cmd("AT") == "\r\nERROR\r\n"
    assert await d.cmd("AT ") == "\r\nERROR\r\n"
    assert await d.cmd("AT+CGMI") == "\r\nSIMULATED\r\n\r\nOK\r\n"
    _, d = await ready(make_sim, connect, GENERIC)
    assert await d.cmd("AT") == "\r\nOK\r\n"


async def test_cmee_not_supported(make_sim, connect):
    _, d = await ready(make_sim, connect, quirk(cmee_supported=False))
    for line in ("AT+CMEE=1", "AT+CMEE=2", "AT+CMEE?", "AT+CMEE=?", "AT+CMEE"):
        assert await d.cmd(line) == "\r\nERROR\r\n", line
    # cmee_default 1 is ignored: errors stay plain.
    assert await d.cmd("AT+NOPE") == "\r\nERROR\r\n"
    assert await d.cmd("AT+CMGR=999") == "\r\nERROR\r\n"
    _, d = await ready(make_sim, connect, GENERIC)
    assert await d.cmd("AT+CMGR=999") == "\r\n+CMS ERROR: 321\r\n"


async def test_stray_ok_after_error_on_empty_cmgr(make_sim, connect):
    sim, d = await ready(make_sim, connect, quirk(stray_ok_after_error=True))
    d.buf.clear()
    d.write("AT+CMGR=3\r")
    assert await d.wait_for(b"OK\r\n") == b"\r\nERROR\r\n\r\nOK\r\n"
    sim.deliver("x")
    assert (await d.cmd("AT+CMGR=1")).startswith("\r\n+CMGR: 0,,")


async def test_cmgd_flag_refused(make_sim, connect):
    sim, d = await ready(make_sim, connect, quirk(cmgd_flag_refused=True))
    sim.deliver("a")
    sim.deliver("b")
    assert await d.cmd("AT+CMGD=1,0") == "\r\nERROR\r\n"
    assert await d.cmd("AT+CMGD=1,4") == "\r\nERROR\r\n"
    assert len(sim.storage("SM")) == 2
    assert await d.cmd("AT+CMGD=1") == "\r\nOK\r\n"
    assert [m.index for m in sim.storage("SM")] == [2]


async def test_cpms_query_refused(make_sim, connect):
    _, d = await ready(make_sim, connect, quirk(cpms_query_refused=True))
    assert await d.cmd("AT+CPMS?") == "\r\nERROR\r\n"
    assert await d.cmd('AT+CPMS="ME","ME","ME"') == "\r\n+CPMS: 0,50,0,50,0,50\r\n\r\nOK\r\n"


async def test_echo_fixed_off(make_sim, connect):
    sim = make_sim(quirk(echo_fixed_off=True))
    d = connect(sim)
    assert await d.cmd("ATE1") == "\r\nOK\r\n"
    assert await d.cmd("AT+CGMI") == "\r\nSIMULATED\r\n\r\nOK\r\n"
    sim.fault("reboot")
    await d.wait_for(b"SMS Ready\r\n")
    assert await d.cmd("AT") == "\r\nOK\r\n"
    d2 = connect(make_sim(GENERIC))
    assert await d2.cmd("ATE1") == "ATE1\r\r\nOK\r\n"


async def test_indexes_never_reused(make_sim, connect):
    sim, d = await ready(make_sim, connect, quirk(indexes_never_reused=True, sm_capacity=3))
    assert sim.deliver("a") == [1]
    assert await d.cmd("AT+CMGD=1") == "\r\nOK\r\n"
    assert sim.deliver("b") == [2]
    assert sim.deliver("c") == [3]
    assert sim.deliver("d") == [1]  # wraps to the lowest free one
    assert await d.cmd("AT+CMGD=2") == "\r\nOK\r\n"
    assert sim.deliver("e") == [2]
    # The generic profile reuses the lowest free index.
    sim2, d2 = await ready(make_sim, connect, GENERIC)
    assert sim2.deliver("a") == [1]
    await d2.cmd("AT+CMGD=1")
    assert sim2.deliver("b") == [1]


async def test_cpms_default_after_boot(make_sim, connect):
    sim, d = await ready(make_sim, connect, quirk(cpms_default=("ME", "ME", "ME")))
    assert (await d.cmd("AT+CPMS?")).startswith('\r\n+CPMS: "ME",0,50,"ME",0,50,"ME",0,50')
    await d.cmd('AT+CPMS="SM","SM","SM"')
    sim.deliver("in SM")
    sim.fault("reboot")
    await d.wait_for(b"SMS Ready\r\n")
    await d.cmd("ATE0")
    # The module came back in ME: a delete before +CPMS is restored hits ME.
    assert (await d.cmd("AT+CPMS?")).startswith('\r\n+CPMS: "ME",0,50')
    assert await d.cmd("AT+CMGD=1") == "\r\nOK\r\n"
    assert len(sim.storage("SM")) == 1


def test_cpms_default_must_name_a_storage():
    with pytest.raises(ValueError, match="cpms_default"):
        SimModem(quirk(cpms_default=("XX", "SM", "SM")))


async def test_minimal_profile_has_every_quirk(make_sim, connect):
    sim = make_sim("minimal")
    d = connect(sim)
    assert await d.cmd("ATE1") == "\r\nOK\r\n"  # no echo, even after ATE1
    assert await d.cmd("AT") == "\r\nERROR\r\n"
    assert await d.cmd("AT+CMEE=1") == "\r\nERROR\r\n"
    assert await d.cmd("AT+CPMS?") == "\r\nERROR\r\n"
    assert await d.cmd("AT+CMGL=4") == "\r\nERROR\r\n"  # +CMS ERROR: 321, shown plain
    d.buf.clear()
    d.write("AT+CMGR=1\r")
    assert await d.wait_for(b"OK\r\n") == b"\r\nERROR\r\n\r\nOK\r\n"
    assert sim.deliver("a") == [1]
    assert await d.cmd("AT+CMGD=1,0") == "\r\nERROR\r\n"
    assert await d.cmd("AT+CMGD=1") == "\r\nOK\r\n"
    assert sim.deliver("b") == [2]
    assert PROFILES["minimal"].cmgl_empty_error == 321
