"""What real firmware does that a clean simulator does not: each test first
makes the simulator show the behaviour (a fault or profile quirk of
modem.sim), then checks what the client, session or SMS service makes of it.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modem import commands as C
from modem.commands import Response
from modem.errors import CmsError, CmsErrorCode, CommandFailed, ProtocolError, SimProblemKind
from modem.protocol import FinalResult, ResultKind
from modem.session import SessionConfig
from modem.sim import PROFILES, Profile

from .harness import running

OK = FinalResult(ResultKind.OK, "OK")


def creg_answer(*lines: str) -> Response:
    return Response(tuple(lines), OK)


# -- a registration URC inside the +CREG? answer ------------------------------------
#
# Real firmware does not hold every URC until the final result code: a
# +CREG/+CEREG URC (TS 27.007 §7.2, <n>=2: "+CREG: <stat>[,<lac>,<ci>[,<AcT>]]")
# can come between the echo of "AT+CREG?" and its read response
# "+CREG: <n>,<stat>[,...]". Both start with the command's prefix. Right after a
# boot - when the session initialises - is exactly when registration changes.


async def test_registration_urc_before_the_read_response_keeps_the_session_registered(
    fast_timing,
):
    def before(sim):
        sim.fault("urc-in-answer", "+CREG", '+CREG: 1,"00C3","0010ABCD",7')

    async with running("generic", before=before) as h:
        # the simulator did put the URC first in the +CREG? answer
        assert h.sim.faults.urc_in_answer == []
        reg = h.session.registration["CREG"]
        assert (reg.stat, reg.n) == (1, 2)
        assert h.session.registered


async def test_registration_urc_before_the_read_response_lets_a_send_go_out(fast_timing):
    """Without the read response understood, the session waits for a URC that
    never comes (the module is registered and stays so): every send would
    fail with NotRegistered."""

    def before(sim):
        for name in ("+CREG", "+CEREG"):
            sim.fault("urc-in-answer", name, f"{name}: 2")

    async with running("generic", before=before, config=SessionConfig()) as h:
        result = await h.service.send("+15551234567", "hi", registration_timeout=5)
        assert len(result.mrs) == 1
        assert len(h.sim.mo_log) == 1


@pytest.mark.parametrize(
    ("lines", "stat", "n"),
    [
        # URC (n=2 form) first, then the read response: the read is the newer state
        (('+CREG: 1,"00C3","0010ABCD",7', '+CREG: 2,5,"1A2B","01A2B3C4",7'), 5, 2),
        # the short URC form first
        (("+CREG: 2", "+CREG: 1,1"), 1, 1),
        # the URC after the read response (before OK): the URC is the newer state
        (('+CEREG: 2,2,"1A2B","01A2B3C4",7', '+CEREG: 1,"1A2B","01A2B3C4",7'), 1, 2),
        (("+CREG: 0,1", "+CREG: 3"), 3, 0),
        # a read response alone, every documented width
        (("+CREG: 0,1",), 1, 0),
        (('+CEREG: 2,5,"1A2B","01A2B3C4",7',), 5, 2),
    ],
)
def test_registration_answer_with_a_urc_inside(lines, stat, n):
    reg = C.parse_registration(creg_answer(*lines))
    assert (reg.stat, reg.n) == (stat, n)


def test_registration_answer_without_a_read_response_is_protocol_error():
    with pytest.raises(ProtocolError, match="registration read response"):
        C.parse_registration(creg_answer('+CREG: 1,"00C3","0010ABCD",7'))
    with pytest.raises(ProtocolError, match="no registration line"):
        C.parse_registration(creg_answer())


@given(
    st.lists(
        st.one_of(
            st.builds(
                lambda s, lac: f'+CREG: {s},"{lac:04X}","0010ABCD",7',
                st.integers(0, 11),
                st.integers(0, 0xFFFF),
            ),
            st.builds(lambda s: f"+CREG: {s}", st.integers(0, 11)),
        ),
        max_size=3,
    ),
    st.integers(0, 2),
    st.integers(0, 11),
    st.lists(st.builds(lambda s: f"+CREG: {s}", st.integers(0, 11)), max_size=2),
)
def test_registration_answer_urcs_around_the_read_response(before, n, stat, after):
    """Any URCs before the read response never change its ``<n>``; the last
    line in the answer gives the state (the newest the module reported)."""
    reg = C.parse_registration(creg_answer(*before, f"+CREG: {n},{stat}", *after))
    assert reg.n == n
    assert reg.stat == (int(after[-1].split()[-1]) if after else stat)


# -- a plain ERROR after the PDU was written ------------------------------------------
#
# TS 27.005 §3.5.1: "if sending fails in a network or an ME error, final result
# code +CMS ERROR: <err> is returned". A module without +CMEE codes (or one
# that refused AT+CMEE=1) answers every failure with a plain ERROR, so an
# ERROR after the PDU cannot be told from +CMS ERROR 332 "network timeout" or
# 500 "unknown error", after which the SMS may have gone out. Sending it again
# would be a second Command at Twilio.


def _no_cmee() -> Profile:
    return dataclasses.replace(PROFILES["generic"], cmee_supported=False)


async def test_plain_error_after_the_pdu_is_not_sent_again(fast_timing):
    async with running(_no_cmee()) as h:  # type: ignore[arg-type]
        assert not h.session.numeric_errors
        h.sim.fault("cms-error", 332)  # shown as a plain ERROR: no +CMEE
        with pytest.raises(CommandFailed) as ei:
            await h.service.send("+15551234567", "at most once")
        assert ei.value.data_sent
        assert ei.value.result == "ERROR"
        assert h.wire is not None and h.wire.count(b"AT+CMGS=") == 1
        assert h.service.stats["send_retries"] == 0


async def test_plain_error_before_the_prompt_is_retried(fast_timing):
    """No prompt, only ERROR (a module just rebooted): nothing was written, so
    the send is tried again and goes out once."""
    async with running(_no_cmee()) as h:  # type: ignore[arg-type]
        real = h.client.execute
        refused = []

        async def execute(cmd, **kw):
            if cmd.text.startswith("AT+CMGS=") and not refused:
                refused.append(cmd.text)
                raise CommandFailed("ERROR", cmd.text)  # data_sent False
            return await real(cmd, **kw)

        h.client.execute = execute  # type: ignore[method-assign]
        result = await h.service.send("+15551234567", "after a refused prompt")
        assert len(result.mrs) == 1 and len(refused) == 1
        assert len(h.sim.mo_log) == 1


# -- the SIM goes away without a +CPIN URC -----------------------------------------
#
# A module reports a SIM removed or failed under a running session with a +CPIN
# URC only when SIM hot-plug detection is on (Quectel AT+QSIMDET, SIMCom
# AT+CSDT: off by default); otherwise the only sign is the SMS commands'
# error: +CMS ERROR 310 "(U)SIM not inserted" / 313 "(U)SIM failure" (TS 27.005
# §3.2.5), +CME ERROR 10/13 (TS 27.007 §9.2.1). The simulator's SIM taken out
# at run time shows exactly that: errors, no URC.


async def test_sim_gone_without_a_urc_is_reported_and_not_swept_in_a_loop(fast_timing):
    async with running("bg96") as h:
        assert h.wire is not None
        changed = h.session.wait_changed()
        h.sim.sim_inserted = False  # no URC
        h.service.request_sweep()
        await asyncio.wait_for(changed, 10)
        problem = h.session.sim_problem
        assert problem is not None and problem.kind is SimProblemKind.NOT_INSERTED
        assert not h.session.ready.is_set()
        listed = h.wire.count(b"AT+CMGL=")
        await asyncio.sleep(0.5)  # absence of a retry loop (not a speed check)
        assert h.wire.count(b"AT+CMGL=") == listed
        # the SIM comes back (a person put it in) and the module says so
        changed = h.session.wait_changed()
        h.sim.sim_inserted = True
        h.client._on_data(b"\r\n+CPIN: READY\r\n")
        await asyncio.wait_for(changed, 10)
        await asyncio.wait_for(h.session.ready.wait(), 10)
        assert h.session.sim_problem is None
        h.sim.deliver("after the SIM came back")
        await h.wait_for(lambda: "after the SIM came back" in h.texts(), 10)


async def test_send_refused_for_a_sim_gone_without_a_urc_reports_the_sim(fast_timing):
    async with running("ec25") as h:
        changed = h.session.wait_changed()
        h.sim.sim_inserted = False  # no URC
        with pytest.raises(CmsError) as ei:
            await h.service.send("+15551234567", "no SIM")
        assert ei.value.code is CmsErrorCode.SIM_NOT_INSERTED
        assert not ei.value.data_sent
        await asyncio.wait_for(changed, 10)
        problem = h.session.sim_problem
        assert problem is not None and problem.kind is SimProblemKind.NOT_INSERTED
        assert h.sim.mo_log == []


async def test_note_sim_error_only_for_sim_codes():
    from modem.client import AtClient
    from modem.errors import CmeError, CmeErrorCode, CommandTimeout
    from modem.session import Session
    from modem.sim import SimModem, create_sim_connection

    s = Session(AtClient(lambda f: create_sim_connection(f, SimModem("generic"))))
    # not ready (initialising): the initialisation reports it itself
    assert s.note_sim_error(CmeError(CmeErrorCode.SIM_NOT_INSERTED))
    assert not s._reinit_wanted.is_set()
    s.ready.set()
    assert not s.note_sim_error(CmsError(CmsErrorCode.SIM_BUSY))  # busy: waited for, not a problem
    assert not s.note_sim_error(CmsError(CmsErrorCode.INVALID_MEMORY_INDEX))
    assert not s.note_sim_error(CommandTimeout("AT+CMGL=4", 1.0))
    assert not s.note_sim_error(CommandFailed("ERROR", "AT+CMGR=1"))
    assert s.ready.is_set()
    assert s.note_sim_error(CmeError(CmeErrorCode.SIM_FAILURE))
    assert not s.ready.is_set() and s._reinit_wanted.is_set()
    assert s.note_sim_error(CmsError(CmsErrorCode.SIM_PUK_REQUIRED))


# -- the longest documented +CMGS response time ---------------------------------------


def test_send_deadline_covers_the_longest_documented_cmgs_response_time():
    """u-blox SARA-R4/N4 AT Commands Manual (UBX-17003787), +CMGS: response time
    "up to 3 min (<1 s for prompt)"; Quectel BG96/EC2x and SIMCom SIM7600: 120 s.
    A shorter deadline makes a slow but working send an unknown outcome."""
    cmd = C.cmgs("0011000B916407281553F80000AA0AE8329BFD4697D9EC37", 23)
    assert cmd.timeout >= 180.0
    assert cmd.prompt_timeout >= 1.0


# -- call progress result codes that no command asked for ----------------------------
#
# A call to the SIM's number rings (RING, +CLIP) and, when the caller hangs up
# before anyone answers, the module reports NO CARRIER (V.250 §6.3.1/§5.7.1:
# NO CARRIER, BUSY, NO ANSWER, NO DIALTONE are the results of a call attempt;
# SIMCom SIM800 and Quectel EC2x manuals show NO CARRIER after RING when the
# caller hangs up). Sent unsolicited in the middle of an SMS command, it is not
# that command's final result.


async def test_no_carrier_inside_a_read_is_not_its_final_result(fast_timing):
    async with running("generic") as h:
        await h.wait_for(lambda: h.service.stats["sweeps"] >= 1)
        sub = h.client.subscribe()
        (index,) = h.sim.deliver("read across a hang-up")
        await h.wait_for(lambda: "read across a hang-up" in h.texts())
        h.sim.fault("urc-in-answer", "+CMGR", "NO CARRIER")
        # a read that meets the unsolicited NO CARRIER: the real answer still counts
        h.sim.deliver("second")
        await h.wait_for(lambda: "second" in h.texts())
        assert not h.sim.faults.urc_in_answer
        names = []
        while sub.pending():
            names.append((await sub.get(1)).name)
        assert "NO CARRIER" in names
        assert "+CMGR" not in names  # the read's own answer never came loose
        assert h.client.stats["timeouts"] == 0
        sub.close()
        assert index >= 0


async def test_no_carrier_after_the_pdu_is_not_a_failed_send(fast_timing):
    async with running("generic") as h:
        h.sim.fault("urc-in-answer", "+CMGS", "NO CARRIER")
        result = await h.service.send("+15551234567", "while a caller hangs up")
        assert len(result.mrs) == 1
        assert not h.sim.faults.urc_in_answer
        assert len(h.sim.mo_log) == 1
        assert h.wire is not None and h.wire.count(b"AT+CMGS=") == 1


@pytest.mark.parametrize("line", ["NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE"])
def test_call_results_are_unsolicited_unless_a_call_command_is_in_flight(line):
    from modem.protocol import AtProtocol, Request, Urc

    p = AtProtocol()
    p.start(Request("AT+CMGR=1", ("+CMGR",), pdu_lines=True))
    events = p.feed(f"\r\n{line}\r\n\r\nOK\r\n".encode())
    assert events == [Urc(line), FinalResult(ResultKind.OK, "OK")]
    assert p.feed(f"\r\n{line}\r\n".encode()) == [Urc(line)]  # nothing in flight
    p.start(Request("ATD+15551234567;"))
    (final,) = p.feed(f"\r\n{line}\r\n".encode())
    assert isinstance(final, FinalResult) and final.line == line and not final.success
    p.start(Request("ATA"))
    (final,) = p.feed(f"\r\n{line}\r\n".encode())
    assert isinstance(final, FinalResult)


# -- 0xFF bytes glued to a line ---------------------------------------------------------
#
# A UART whose TX line settles at power-up, or a USB port re-enumerating, puts
# bytes like 0xFF (a framing error reads as all ones) or 0x00 on the line;
# SIM800/SIM900 users see "ÿÿÿÿ" before "RDY". V.250 result codes and URCs
# are IA5 text (V.250 §5.1, T.50): a byte 0x80-0xFF is never part of one, so
# at a line's edge it is line noise, not a different line.


async def test_glitched_answer_line_is_still_its_answer(fast_timing):
    async with running("generic") as h:
        h.sim.fault("glitch", 2)
        signal = await h.client.execute(C.csq())
        assert (signal.rssi, signal.ber) == (20, 99)
        assert h.sim.faults.glitch == 0
        h.sim.fault("glitch", 1)
        await h.client.execute(C.simple("AT"))  # OK, not a timeout
        assert h.client.stats["timeouts"] == 0


async def test_reboot_marker_after_a_power_up_glitch_is_seen(fast_timing):
    """The module reboots; its one boot marker (RDY) comes with 0xFF in front
    of it, and its echo stays off (ATE0 saved with AT&W: no echo to give the
    reboot away). Unseen, the session would keep a module that lost +CNMI as
    ready: no +CMTI, every SMS waiting for the periodic sweep."""
    profile = dataclasses.replace(
        PROFILES["generic"], sim_ready_urcs=("+CPIN: READY",), echo_fixed_off=True
    )
    async with running(profile) as h:  # type: ignore[arg-type]
        # idle first: a command in flight would show the reboot by its echo
        await h.wait_for(lambda: h.service.stats["sweeps"] >= 1)
        await h.client.execute(C.simple("AT"))  # queued behind the start-up sweep
        inits = h.session.stats["inits"]
        h.sim.fault("glitch", 4)
        h.sim.fault("reboot")
        await h.wait_for(lambda: h.session.stats["inits"] > inits, 5)
        assert h.session.stats["reboots_seen"] == 1
        h.sim.deliver("after the glitch")
        await h.wait_for(lambda: "after the glitch" in h.texts(), 5)


def test_high_bytes_at_a_line_edge_are_dropped_nul_too():
    from modem.protocol import AtProtocol, Discarded, Urc

    p = AtProtocol()
    assert p.feed(b"\xff\xff\xffRDY\r\n") == [Urc("RDY")]
    assert p.feed(b"\x00\xff\r\n\xfe+CPIN: READY\xff\r\n") == [Urc("+CPIN: READY")]
    assert p.feed(b"\xff\xff\r\n") == []  # a line of nothing but noise
    # inside a line they stay (a damaged line is still told as damaged)
    (event,) = p.feed(b"SM\xffS DONE\r\n")
    assert isinstance(event, Discarded)


async def test_glitched_prompt_is_still_the_prompt(fast_timing):
    async with running("generic") as h:
        await h.wait_for(lambda: h.service.stats["sweeps"] >= 1)
        await h.client.execute(C.simple("AT"))  # idle: the glitch hits the prompt
        h.sim.fault("glitch", 2)
        result = await h.service.send("+15551234567", "through a glitched prompt")
        assert len(result.mrs) == 1 and len(h.sim.mo_log) == 1
        assert h.wire is not None and h.wire.count(b"AT+CMGS=") == 1
        assert h.client.stats["timeouts"] == 0
    from modem.protocol import AtProtocol, Prompt, Request

    p = AtProtocol()
    p.start(Request("AT+CMGS=23", ("+CMGS",), prompt=True))
    assert p.feed(b"\r\n\xff\xff>") == [Prompt()]


# -- a module that refuses the wanted +CNMI ---------------------------------------------
#
# TS 27.005 §3.4.1 leaves most +CNMI values optional, and modules differ:
# Motorola G20 "+CNMI: (0,3),(0-2),(0,2),(0),(0)"; Cinterion <bfr> (1) only;
# Nordic nRF91 <mode> 0 or 3. Refused, "+CNMI=2,1,0,1,0" failed every
# initialisation: the module never became ready and no SMS was ever read.

G20_CNMI = ((0, 3), (0, 1, 2), (0, 2), (0,), (0,))


async def test_refused_routing_falls_back_to_what_the_module_offers(fast_timing, caplog):
    profile = dataclasses.replace(PROFILES["generic"], cnmi_values=G20_CNMI)
    async with running(profile) as h:  # type: ignore[arg-type]
        assert h.sim.cnmi == [3, 1, 0, 0, 0]
        assert str(h.session.wanted_routing()) == "3,1,0,0,0"
        assert any("+CNMI=2,1,0,1,0 refused" in r.getMessage() for r in caplog.records)
        h.sim.deliver("with the routing the module offers")
        await h.wait_for(lambda: "with the routing the module offers" in h.texts())
        # a re-initialisation (a reboot) finds the same routing again
        inits = h.session.stats["inits"]
        h.sim.fault("reboot")
        await h.wait_for(lambda: h.session.stats["inits"] > inits)
        assert h.sim.cnmi == [3, 1, 0, 0, 0]


def test_parse_cnmi_test_forms():
    def parse(payload: str) -> tuple[frozenset[int], ...]:
        return C.parse_cnmi_test(Response((f"+CNMI: {payload}",), OK))

    assert parse("(0,3),(0-2),(0,2),(0),(0)") == (
        frozenset({0, 3}),
        frozenset({0, 1, 2}),
        frozenset({0, 2}),
        frozenset({0}),
        frozenset({0}),
    )
    assert parse("(0-3),(0-3),(0,2),(0-2),(1)")[4] == frozenset({1})
    assert parse("(1),(1)") == (
        frozenset({1}),
        frozenset({1}),
        frozenset({0}),
        frozenset({0}),
        frozenset({0}),
    )
    for bad in ("", "(0-3", "0-3)", "(0-3),,(1)", "(a)", "(3-1)", "(0),(0),(0),(0),(0),(0)"):
        with pytest.raises(ProtocolError):
            parse(bad)


@given(st.text(max_size=40))
def test_parse_cnmi_test_returns_or_raises_protocol_error(payload):
    try:
        sets = C.parse_cnmi_test(Response((f"+CNMI: {payload}",), OK))
    except ProtocolError:
        return
    assert len(sets) == 5 and all(s and all(0 <= v <= 9 for v in s) for s in sets)


@pytest.mark.parametrize(
    ("offered", "expected"),
    [
        ("(0-3),(0-3),(0,2),(0-2),(0,1)", "2,1,0,1,0"),  # everything offered
        ("(0,3),(0-2),(0,2),(0),(0)", "3,1,0,0,0"),  # Motorola G20
        ("(0-3),(0-3),(0,2),(0,2),(1)", "2,1,0,0,1"),  # Cinterion: <bfr> 1 only
        ("(1),(1)", "1,1,0,0,0"),  # the two values TS 27.005 needs, nothing else
        ("(0,3),(0,2),(0),(0,1),(1)", None),  # nRF91: no +CMTI (<mt> 1) at all
        ("(0),(0-3)", None),  # URCs never forwarded
    ],
)
def test_nearest_routing(offered, expected):
    from modem.session import _nearest_routing

    sets = C.parse_cnmi_test(Response((f"+CNMI: {offered}",), OK))
    got = _nearest_routing(C.Routing.parse("2,1,0,1,0"), sets)
    assert (None if got is None else str(got)) == expected


# -- real-firmware forms the code already handled (kept as regression checks) ------------

DELIVER = "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07"


def _feed(request, chunks):
    from modem.protocol import AtProtocol

    p = AtProtocol()
    p.start(request)
    events = []
    for chunk in chunks:
        events += p.feed(chunk)
    return events


@pytest.mark.parametrize(
    "chunks",
    [
        [b"\r\n> "],  # TS 27.005 §3.5.1 / Telit LE910: four characters, no line end
        [b"\r\n>\r\n"],  # u-blox SARA-R4
        [b"> "],  # no leading line end (echo off, SIM800)
        [b"\r\n>", b" "],  # split across reads
        [b"\r", b"\n", b">"],  # byte by byte, no space
        [b"AT+CMGS=23\r\r\n> "],  # echo on (ATE1 left by another program)
        [b'\r\n+CMTI: "SM",4\r\n\r\n> '],  # a URC just before the prompt
    ],
)
def test_prompt_variants(chunks):
    from modem.protocol import Prompt, Request

    events = _feed(Request("AT+CMGS=23", ("+CMGS",), prompt=True), chunks)
    assert events[-1] == Prompt() and events.count(Prompt()) == 1


@pytest.mark.parametrize("eol", [b"\r\n", b"\r", b"\n"])
@pytest.mark.parametrize(
    "header",
    [b'+CMGR: 0,"",30', b"+CMGR: 0,,30", b"+CMGR: 0,30", b'+CMGR: 1,"Twilio",30'],
)
def test_cmgr_forms_line_endings_and_urcs_inside(eol, header):
    # alpha quoted empty (SIMCom), empty (Quectel), absent (Telit), set; CR-only and
    # LF-only line ends; RDY / +CMTI / SMS DONE between the header and its PDU line
    from modem.protocol import FinalResult as Final
    from modem.protocol import Intermediate, Urc

    answer = eol.join(
        [b"", header, b'+CMTI: "ME",3', b"SMS DONE", DELIVER.encode(), b"", b"OK", b""]
    )
    events = _feed(C.cmgr(1).request, [answer])
    lines = tuple(e.line for e in events if isinstance(e, Intermediate))
    assert [e.line for e in events if isinstance(e, Urc)] == ['+CMTI: "ME",3', "SMS DONE"]
    assert isinstance(events[-1], Final) and events[-1].success
    stored = C.parse_cmgr(Response(lines, OK))
    assert stored is not None and stored.pdu == DELIVER and stored.length == 30


def test_cmgl_with_blank_lines_between_entries():
    from modem.protocol import Intermediate

    entry = f"+CMGL: 1,0,,30\r\n{DELIVER}".encode()
    answer = b"\r\n" + entry + b"\r\n\r\n\r\n" + entry.replace(b"1,0", b"2,1") + b"\r\n\r\nOK\r\n"
    events = _feed(C.cmgl().request, [answer])
    lines = tuple(e.line for e in events if isinstance(e, Intermediate))
    assert [(s.index, s.stat) for s in C.parse_cmgl(Response(lines, OK))] == [(1, 0), (2, 1)]


@pytest.mark.parametrize(
    ("line", "mr"),
    [("+CMGS: 12", 12), ('+CMGS: 12,"26/12/01,22:10:00+00"', 12), ("+CMGS:255,", 255)],
)
def test_cmgs_with_trailing_fields(line, mr):
    # TS 27.005 §3.5.1: +CMGS: <mr>[,<scts>] (text mode, +CSMS 1) or [,<ackpdu>]
    assert C.parse_cmgs(Response((line,), OK)) == mr


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("+CMS ERROR: invalid memory index", 321),  # CMEE=2 texts (Quectel, SIMCom, u-blox)
        ("+CMS ERROR: Invalid memory index", 321),
        ("+CME ERROR: SIM busy", 14),
        ("+CMS ERROR: SIM busy", 314),
        ("+CMS ERROR: SIM not inserted", 310),
        ("+CMS ERROR: 302", 302),
        ("+CMS ERROR: 332", 332),
        ("+CMS ERROR: 512", 512),  # manufacturer specific: kept as a number
        ("+CMS ERROR: 513", 513),
    ],
)
def test_error_results_verbose_and_numeric(line, code):
    from modem.protocol import parse_final

    final = parse_final(line)
    assert final is not None and not final.success and int(final.code) == code  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "line",
    [
        '+CPMS: "SM",2,30,"SM",2,30,"SM",2,30',
        "+CPMS: SM,2,30,SM,2,30,SM,2,30",
        '+CPMS: "ME",2,30,"MT",5,80,"SR",0,10',
    ],
)
def test_cpms_quoted_and_unquoted_names(line):
    st_ = C.parse_cpms(Response((line,), OK))
    assert (
        st_.mem[0] in ("SM", "ME") and st_.used[0] == 2 and st_.total[0] == 30 and len(st_.mem) == 3
    )


def test_sim800_banners_are_urcs():
    from modem.protocol import AtProtocol, Urc

    p = AtProtocol()
    events = p.feed(
        b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nCall Ready\r\n\r\nSMS Ready\r\n"
    )
    assert [e.name for e in events if isinstance(e, Urc)] == [
        "RDY",
        "+CFUN",
        "+CPIN",
        "Call Ready",
        "SMS Ready",
    ]


# -- a module that keeps refusing the listing -------------------------------------------


async def test_refused_listing_is_asked_again_less_often(fast_timing):
    """+CMS ERROR 500 "unknown error" (TS 27.005 §3.2.5; Quectel answers it for
    internal failures) to every +CMGL: the receive loop backs off (RETRY_INITIAL
    doubling) instead of sweeping every 0.5 s for ever, and starts over once a
    sweep completes. Nothing on the SIM is lost meanwhile."""
    from modem import timing

    async with running("generic") as h:
        await h.wait_for(lambda: h.service.stats["sweeps"] >= 1)
        await h.client.execute(C.simple("AT"))  # the start-up sweep is over
        # each +CMGL is tried 3 times by its retry policy (500 is transient): 4 steps
        h.sim.fault("error-on", "+CMGL", 500, 12)
        (index,) = h.sim.deliver("kept through the refusals")
        h.service.request_sweep()
        await h.wait_for(lambda: "kept through the refusals" in h.texts(), 10)
        # the fifth listing works: the refusals start over
        await h.wait_for(lambda: h.service._step_failures == 0, 10)
        assert not h.sim.faults.error_on.get("+CMGL")
        assert h.service.stats["receive_backoff_ms"] == round(
            1000 * timing.RETRY_INITIAL * timing.RETRY_FACTOR**3
        )
        await h.wait_for(lambda: h.sim.storage("SM").get(index) is None)


async def test_garbled_answers_are_swept_again_at_the_usual_pace(fast_timing, monkeypatch):
    """A receive step that fails on line noise (a garbled answer: ProtocolError)
    is not the module refusing: the loop sweeps again after RETRY_INITIAL each
    time, with no backoff, so a noisy moment does not leave the SIM unread for
    long once the line is clean; the message is read then."""
    async with running("generic") as h:
        await h.wait_for(lambda: h.service.stats["sweeps"] >= 1)
        await h.client.execute(C.simple("AT"))  # the start-up sweep is over
        real_sweep = h.service.sweep
        failures = []

        async def garbled(mem=None):
            if len(failures) < 6:
                failures.append(asyncio.get_running_loop().time())
                raise ProtocolError("+CMGL entry does not parse", "+CMGL: x")
            return await real_sweep(mem)

        monkeypatch.setattr(h.service, "sweep", garbled)
        h.sim.deliver("read once the line is clean")
        h.service.request_sweep()
        await h.wait_for(lambda: "read once the line is clean" in h.texts(), 10)
        assert len(failures) == 6
        assert h.service._step_failures == 0
        assert h.service.stats["receive_backoff_ms"] == 0
