"""Profile quirks: prompts, empty listings, index bases, start-up lines, defaults."""

from __future__ import annotations

import pdu
from modem.sim import PROFILES

from .conftest import eventually


async def _ready(make_sim, connect, name):
    sim = make_sim(name)
    d = connect(sim)
    await d.cmd("ATE0")
    return sim, d


async def test_prompt_variants(make_sim, connect):
    hexs, n = pdu.cmgs_pdu(pdu.submit_parts("2936", "x")[0])
    for name, prompt in (("bg96", "\r\n> "), ("sim7600", "\r\n>\r\n"), ("sara-r410m", "\r\n> ")):
        _sim, d = await _ready(make_sim, connect, name)
        assert await d.cmd(f"AT+CMGS={n}") == prompt, name
        assert "+CMGS: 0" in await d.send_body(hexs + "\x1a")


async def test_cmgl_on_empty_store(make_sim, connect):
    _, d = await _ready(make_sim, connect, "bg96")
    assert await d.cmd("AT+CMGL=4") == "\r\nOK\r\n"
    # The SARA-R410M's "+CMS ERROR: 321" had no source: it answers OK now.
    _, d = await _ready(make_sim, connect, "sara-r410m")
    assert await d.cmd("AT+CMGL=4") == "\r\nOK\r\n"
    await d.cmd("AT+CMEE=1")
    assert await d.cmd("AT+CMGL=4") == "\r\nOK\r\n"
    _, d = await _ready(make_sim, connect, "generic")
    await d.cmd("AT+CMGF=1")
    assert await d.cmd('AT+CMGL="ALL"') == "\r\nOK\r\n"


async def test_index_bases(make_sim, connect):
    for name, first in (("bg96", 0), ("ec25", 0), ("sim7600", 0), ("sara-r410m", 1)):
        sim, d = await _ready(make_sim, connect, name)
        await d.cmd("AT+CNMI=2,1,0,0,0")
        assert sim.deliver("x") == [first]
        await d.wait_for(f'+CMTI: "SM",{first}\r\n'.encode())


async def test_defaults(make_sim, connect):
    for name, p in PROFILES.items():
        _, d = await _ready(make_sim, connect, name)
        cnmi = ",".join(map(str, p.cnmi_default))
        assert await d.cmd("AT+CNMI?") == f"\r\n+CNMI: {cnmi}\r\n\r\nOK\r\n"
        if p.cmee_supported:
            assert await d.cmd("AT+CMEE?") == f"\r\n+CMEE: {p.cmee_default}\r\n\r\nOK\r\n"
        else:
            assert await d.cmd("AT+CMEE?") == "\r\nERROR\r\n"
        mems = f"{p.sm_capacity}"
        if not p.cpms_query_refused:
            assert f'"SM",0,{mems}' in await d.cmd("AT+CPMS?")
        else:
            assert await d.cmd("AT+CPMS?") == "\r\nERROR\r\n"


async def test_startup_lines_per_profile(make_sim, connect):
    for name, p in PROFILES.items():
        sim, d = await _ready(make_sim, connect, name)
        d.buf.clear()
        sim.fault("reboot")
        lines = [*p.startup_urcs, *p.sim_ready_urcs]
        if lines:
            expected = b"".join(b"\r\n" + x.encode() + b"\r\n" for x in lines)
            assert await d.wait_for(expected) == expected
        await eventually(lambda sim=sim: sim.state == "cmd")  # ignores input while booting
        final = "\r\nERROR\r\n" if p.bare_at_error else "\r\nOK\r\n"
        assert (await d.cmd("AT")).endswith(final)


async def test_mt_union_storage(make_sim, connect):
    sim, d = await _ready(make_sim, connect, "generic")
    sim.fault("storage-full", "SM")
    await d.cmd('AT+CPMS="MT","MT","MT"')
    assert sim.deliver("overflow to ME") == [31]  # SM 1..30, then ME
    assert sim.storage("ME").get(1) is not None
    out = await d.cmd("AT+CMGR=31")
    assert out.startswith("\r\n+CMGR: 0,,")
    assert await d.cmd("AT+CMGD=31") == "\r\nOK\r\n"
    assert len(sim.storage("ME")) == 0


async def test_sara_r410m_02b_reports_e_utran_act_7(make_sim, connect):
    """Review fix: the SARA-R4 AT manual (UBX-17003787 R16, +CEREG <AcT>) lists
    7 and 9 for SARA-R410M-02B; the profile (an -02B) answered 8, which 27.007
    defines as EC-GSM-IoT."""
    sim = make_sim("sara-r410m")
    d = connect(sim)
    await d.cmd("ATE0")
    assert await d.cmd("AT+COPS?") == '\r\n+COPS: 0,0,"Twilio",7\r\n\r\nOK\r\n'
    assert (await d.cmd("AT+CEREG=2;+CEREG?")).startswith('\r\n+CEREG: 2,1,"1A2B","01A2B3C4",7\r\n')
