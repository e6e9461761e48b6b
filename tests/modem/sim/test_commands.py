"""V.250 / TS 27.007 command answers of the simulated module (in-process)."""

from __future__ import annotations

import pytest

from modem.errors import CmeErrorCode
from modem.sim import PROFILES, SimModem


async def test_at_ok_and_echo(sim, connect):
    d = connect(sim)
    # Echo is on after power-up (V.250 §6.2.4): the line comes back first.
    assert await d.cmd("AT") == "AT\r\r\nOK\r\n"
    assert await d.cmd("ATE0") == "ATE0\r\r\nOK\r\n"
    assert await d.cmd("AT") == "\r\nOK\r\n"
    assert await d.cmd("at") == "\r\nOK\r\n"
    assert await d.cmd("aT") == "\r\nOK\r\n"


async def test_numeric_and_quiet(dte):
    dte.buf.clear()
    dte.write("ATV0\r")
    assert await dte.wait(lambda b: b.endswith(b"0\r")) == b"0\r"
    dte.buf.clear()
    dte.write("AT+CGMI\r")
    out = await dte.wait(lambda b: b.endswith(b"0\r"))
    assert out == b"SIMULATED\r\n0\r"
    dte.buf.clear()
    dte.write("AT+FOO\r")
    assert await dte.wait(lambda b: b.endswith(b"\r\n")) == b"+CME ERROR: 4\r\n"
    assert await dte.cmd("ATV1") == "\r\nOK\r\n"
    dte.buf.clear()
    dte.write("ATQ1\r")
    dte.write("AT\r")
    dte.write("ATQ0\r")
    dte.write("AT+CGMM\r")
    out = await dte.wait_for(b"SIM-MODEM\r\n\r\nOK\r\n")
    assert out == b"\r\nOK\r\n\r\nSIM-MODEM\r\n\r\nOK\r\n"


async def test_chained_and_repeat(dte):
    out = await dte.cmd("AT+CMGF=1;+CNMI=2,1,0,1,0;+CMGF?;+CNMI?")
    assert out == "\r\n+CMGF: 1\r\n\r\n+CNMI: 2,1,0,1,0\r\n\r\nOK\r\n"
    assert await dte.cmd("AT+CSQ") == "\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
    dte.buf.clear()
    dte.write("A/")
    out = await dte.wait(lambda b: b.endswith(b"OK\r\n"))
    assert out == b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"


async def test_basic_commands_concatenated(dte):
    assert await dte.cmd("ATE0V1Q0") == "\r\nOK\r\n"
    assert await dte.cmd("ATS3?") == "\r\n013\r\n\r\nOK\r\n"
    assert await dte.cmd("ATI") == "\r\nSIMULATED\r\nSIM-MODEM\r\nRevision: SIM01A01\r\n\r\nOK\r\n"


async def test_atz_and_at_f_restore_defaults(dte):
    await dte.cmd("AT+CMGF=1;+CMEE=2")
    assert await dte.cmd("ATZ") == "\r\nOK\r\n"
    assert await dte.cmd("AT") == "AT\r\r\nOK\r\n"  # echo is back on
    assert (
        await dte.cmd("ATE0;+CMGF?;+CMEE?")
        == "ATE0;+CMGF?;+CMEE?\r\r\n+CMGF: 0\r\n\r\n+CMEE: 1\r\n\r\nOK\r\n"
    )
    assert await dte.cmd("AT&F") == "\r\nOK\r\n"
    assert await dte.cmd("AT") == "AT\r\r\nOK\r\n"


@pytest.mark.parametrize(
    ("cmee", "expected"),
    [
        (0, "\r\nERROR\r\n"),
        (1, "\r\n+CME ERROR: 4\r\n"),
        (2, "\r\n+CME ERROR: operation not supported\r\n"),
    ],
)
async def test_unknown_command_per_cmee(dte, cmee, expected):
    await dte.cmd(f"AT+CMEE={cmee}")
    assert await dte.cmd("AT+NOSUCH") == expected
    assert await dte.cmd("AT+CMEE?") == f"\r\n+CMEE: {cmee}\r\n\r\nOK\r\n"


async def test_cmee_verbose_text_comes_from_error_table(dte):
    await dte.cmd("AT+CMEE=2")
    out = await dte.cmd("AT+CMEE=7")
    assert out == f"\r\n+CME ERROR: {CmeErrorCode.INCORRECT_PARAMETERS.text}\r\n"
    out = await dte.cmd("AT+CMGR=999")
    assert out == "\r\n+CMS ERROR: invalid memory index\r\n"


async def test_chain_stops_at_first_error(dte):
    out = await dte.cmd("AT+CMGF=1;+BAD;+CMGF=0")
    assert out == "\r\n+CME ERROR: 4\r\n"
    assert await dte.cmd("AT+CMGF?") == "\r\n+CMGF: 1\r\n\r\nOK\r\n"


async def test_noise_lines_and_overlong_lines(sim, dte):
    # Characters before "AT" are ignored (V.250 §5.2.1).
    assert await dte.cmd("xx\x00AT") == "\r\nOK\r\n"
    dte.write("garbage\r")
    long_line = "AT+CMGF=1;" + "+CSQ;" * 200
    assert await dte.cmd(long_line) == "\r\nERROR\r\n"
    assert await dte.cmd("AT") == "\r\nOK\r\n"
    assert await dte.cmd('AT+CSCA="unterminated') == "\r\n+CME ERROR: 4\r\n"


@pytest.mark.parametrize("profile", sorted(PROFILES))
async def test_identity(make_sim, connect, profile):
    sim = make_sim(profile)
    d = connect(sim)
    await d.cmd("ATE0")
    p = PROFILES[profile]
    assert await d.cmd("AT+CGMI") == f"\r\n{p.manufacturer}\r\n\r\nOK\r\n"
    assert await d.cmd("AT+CGMM") == f"\r\n{p.model}\r\n\r\nOK\r\n"
    assert await d.cmd("AT+CGMR") == f"\r\n{p.revision}\r\n\r\nOK\r\n"
    assert await d.cmd("AT+CGSN") == f"\r\n{p.imei}\r\n\r\nOK\r\n"
    assert await d.cmd("AT+CIMI") == f"\r\n{p.imsi}\r\n\r\nOK\r\n"
    assert await d.cmd("AT+CGMI=?") == "\r\nOK\r\n"
    for command, prefix in p.iccid_commands.items():
        assert await d.cmd("AT" + command) == f"\r\n{prefix}{p.iccid}\r\n\r\nOK\r\n"


async def test_vendor_iccid_spellings():
    assert "+QCCID" in PROFILES["bg96"].iccid_commands
    assert "+QCCID" in PROFILES["ec25"].iccid_commands
    assert PROFILES["sim7600"].iccid_commands["+CICCID"] == "ICCID: "
    assert "+QCCID" not in PROFILES["sara-r410m"].iccid_commands


async def test_pin_flow(make_sim, connect):
    sim = make_sim(pin="1234")
    d = connect(sim)
    await d.cmd("ATE0")
    assert await d.cmd("AT+CPIN?") == "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n"
    assert await d.cmd("AT+CIMI") == "\r\n+CME ERROR: 11\r\n"
    assert await d.cmd("AT+CPMS?") == "\r\n+CMS ERROR: 311\r\n"
    await d.cmd("AT+CMEE=2")
    assert await d.cmd("AT+CIMI") == "\r\n+CME ERROR: SIM PIN required\r\n"
    assert await d.cmd('AT+CPIN="0000"') == "\r\n+CME ERROR: incorrect password\r\n"
    assert not sim.registered
    d.write('AT+CPIN="1234"\r')
    out = await d.wait_for(b"SMS Ready")
    assert out == b"\r\nOK\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n"
    d.buf.clear()
    assert sim.registered
    assert await d.cmd("AT+CPIN?") == "\r\n+CPIN: READY\r\n\r\nOK\r\n"


async def test_csq_and_signal(sim, dte):
    assert await dte.cmd("AT+CSQ=?") == "\r\n+CSQ: (0-31,99),(0-7,99)\r\n\r\nOK\r\n"
    sim.set_signal(12, 3)
    assert await dte.cmd("AT+CSQ") == "\r\n+CSQ: 12,3\r\n\r\nOK\r\n"
    sim.set_registered(False)
    assert await dte.cmd("AT+CSQ") == "\r\n+CSQ: 99,99\r\n\r\nOK\r\n"


@pytest.mark.parametrize("name", ["+CREG", "+CGREG", "+CEREG"])
async def test_registration_reports(sim, dte, name):
    assert await dte.cmd(f"AT{name}=?") == f"\r\n{name}: (0-2)\r\n\r\nOK\r\n"
    assert await dte.cmd(f"AT{name}?") == f"\r\n{name}: 0,1\r\n\r\nOK\r\n"
    await dte.cmd(f"AT{name}=1")
    sim.set_registered(False)
    await dte.wait_for(f"\r\n{name}: 2\r\n".encode())
    dte.buf.clear()
    sim.set_registered(True, roaming=True)
    await dte.wait_for(f"\r\n{name}: 5\r\n".encode())
    await dte.cmd(f"AT{name}=2")
    out = await dte.cmd(f"AT{name}?")
    assert out.startswith(f"\r\n{name}: 2,5,")
    assert await dte.cmd(f"AT{name}=3") == "\r\n+CME ERROR: 50\r\n"


async def test_cops(sim, dte):
    assert await dte.cmd("AT+COPS?") == '\r\n+COPS: 0,0,"Twilio",7\r\n\r\nOK\r\n'
    assert (await dte.cmd("AT+COPS=?")).startswith('\r\n+COPS: (2,"Twilio"')
    sim.fault("unregister")
    assert await dte.cmd("AT+COPS?") == "\r\n+COPS: 0\r\n\r\nOK\r\n"


async def test_cfun(sim, dte):
    assert await dte.cmd("AT+CFUN?") == "\r\n+CFUN: 1\r\n\r\nOK\r\n"
    assert await dte.cmd("AT+CFUN=?") == "\r\n+CFUN: (0,1,4),(0,1)\r\n\r\nOK\r\n"
    await dte.cmd("AT+CFUN=4")
    assert not sim.registered
    await dte.cmd("AT+CFUN=1")
    assert sim.registered
    assert await dte.cmd("AT+CFUN=2") == "\r\n+CME ERROR: 50\r\n"


async def test_cfun_reset_reboots(make_sim, connect):
    sim = make_sim("ec25")
    d = connect(sim)
    await d.cmd("ATE0")
    await d.cmd("AT+CMGF=1")
    assert await d.cmd("AT+CFUN=1,1") == "\r\nOK\r\n"
    out = await d.wait_for(b"+QIND: PB DONE")
    assert b"RDY" in out
    assert await d.cmd("AT+CMGF?") == "AT+CMGF?\r\r\n+CMGF: 0\r\n\r\nOK\r\n"


async def test_cscs(dte):
    assert await dte.cmd("AT+CSCS?") == '\r\n+CSCS: "GSM"\r\n\r\nOK\r\n'
    assert "UCS2" in await dte.cmd("AT+CSCS=?")
    assert await dte.cmd('AT+CSCS="IRA"') == "\r\nOK\r\n"
    assert await dte.cmd('AT+CSCS="KOI8"') == "\r\n+CME ERROR: 50\r\n"


def test_profiles_known():
    assert set(PROFILES) == {"generic", "bg96", "ec25", "sim7600", "sara-r410m", "minimal"}
    with pytest.raises(ValueError, match="unknown profile"):
        SimModem("nokia")


# Read (?) and test (=?) forms (TS 27.007 / TS 27.005), generic profile defaults.
FORMS = [
    ("AT+CMEE?", "+CMEE: 1"),
    ("AT+CMEE=?", "+CMEE: (0-2)"),
    ("AT+CPIN?", "+CPIN: READY"),
    ("AT+CPIN=?", None),
    ("AT+CSQ=?", "+CSQ: (0-31,99),(0-7,99)"),
    ("AT+CREG?", "+CREG: 0,1"),
    ("AT+CGREG=?", "+CGREG: (0-2)"),
    ("AT+CEREG?", "+CEREG: 0,1"),
    ("AT+CFUN?", "+CFUN: 1"),
    ("AT+CSCS?", '+CSCS: "GSM"'),
    ("AT+CGMI=?", None),
    ("AT+CGMM=?", None),
    ("AT+CGMR=?", None),
    ("AT+CGSN=?", None),
    ("AT+CIMI=?", None),
    ("AT+CCID=?", None),
    ("AT+CSMS?", "+CSMS: 0,1,1,1"),
    ("AT+CSMS=?", "+CSMS: (0,1)"),
    ("AT+CPMS?", '+CPMS: "SM",0,30,"SM",0,30,"SM",0,30'),
    ("AT+CMGF?", "+CMGF: 0"),
    ("AT+CMGF=?", "+CMGF: (0,1)"),
    ("AT+CSCA=?", None),
    ("AT+CSMP?", "+CSMP: 17,167,0,0"),
    ("AT+CSMP=?", None),
    ("AT+CSDH?", "+CSDH: 0"),
    ("AT+CSDH=?", "+CSDH: (0,1)"),
    ("AT+CNMI?", "+CNMI: 0,0,0,0,0"),
    ("AT+CNMA=?", "+CNMA: (0-2)"),
    ("AT+CMGS=?", None),
    ("AT+CMGW=?", None),
    ("AT+CMSS=?", None),
    ("AT+CMGR=?", None),
    ("AT+CMGL=?", "+CMGL: (0-4)"),
    ("AT+CMGD=?", "+CMGD: (),(0-4)"),
    ("ATS4?", "010"),
    ("ATS5?", "008"),
]


@pytest.mark.parametrize(("line", "info"), FORMS)
async def test_read_and_test_forms(dte, line, info):
    expected = "\r\nOK\r\n" if info is None else f"\r\n{info}\r\n\r\nOK\r\n"
    assert await dte.cmd(line) == expected


@pytest.mark.parametrize(
    "line",
    ["AT+CSQ?", "AT+CGMI?", "AT+CMGF=1,2", "ATE2", "AT+CPMS", "AT+CMGR", "AT+CSCS", "ATE?"],
)
async def test_malformed_forms_are_errors(dte, line):
    out = await dte.cmd(line)
    assert "ERROR" in out and "OK" not in out


async def test_numeric_prompt_and_errors_with_v0(dte):
    dte.buf.clear()
    dte.write("ATV0\r")
    await dte.wait(lambda b: b.endswith(b"0\r"))
    assert await dte.cmd("AT+CMGS=5") == "\r\n> "
    dte.buf.clear()
    dte.write("\x1b")
    assert await dte.wait(lambda b: b.endswith(b"0\r")) == b"0\r"


async def test_urc_caused_by_a_command_follows_its_final_result(sim, connect):
    """Review fix: a +CREG URC raised while a command line ran (+COPS=2 in a
    chain) was written at once, before the line's own answers. V.250 §5.7 /
    TS 27.007 §4: URCs do not interrupt a command's response; the TA holds
    them until the final result code."""
    d = connect(sim)
    await d.cmd("ATE0")
    d.buf.clear()
    d.write("AT+CREG=1;+CSQ;+COPS=2;+CSQ\r")
    out = await d.wait_for(b"+CREG: 0\r\n")
    assert out == b"\r\n+CSQ: 20,99\r\n\r\n+CSQ: 99,99\r\n\r\nOK\r\n\r\n+CREG: 0\r\n"


async def test_cops_deregister_reports_mode_2_and_not_searching(sim, dte):
    """Review fix: after +COPS=2 (manual deregistration) TS 27.007 §7.2/§7.3
    give +CREG <stat> 0 (not searching) and +COPS? <mode> 2, not the
    "searching" 2 and mode 0 of lost coverage; a network-side "register" does
    not override the user's deregistration."""
    assert await dte.cmd("AT+COPS=2") == "\r\nOK\r\n"
    assert await dte.cmd("AT+COPS?") == "\r\n+COPS: 2\r\n\r\nOK\r\n"
    assert await dte.cmd("AT+CREG?") == "\r\n+CREG: 0,0\r\n\r\nOK\r\n"
    sim.fault("register")
    assert not sim.registered
    assert await dte.cmd("AT+COPS=0") == "\r\nOK\r\n"
    assert sim.registered
    assert await dte.cmd("AT+COPS?") == '\r\n+COPS: 0,0,"Twilio",7\r\n\r\nOK\r\n'
    sim.fault("unregister")
    assert await dte.cmd("AT+CREG?") == "\r\n+CREG: 0,2\r\n\r\nOK\r\n"
