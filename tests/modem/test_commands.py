"""Typed commands and their parsers: vectors (with sources) and hypothesis fuzzing."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modem import commands as C
from modem.commands import Response
from modem.errors import (
    CmeError,
    CmeErrorCode,
    CmsError,
    CmsErrorCode,
    CommandFailed,
    Fault,
    ProtocolError,
    UsageError,
)
from modem.protocol import FinalResult, ResultKind

OK = FinalResult(ResultKind.OK, "OK")
PDU = "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07"


def resp(*lines: str) -> Response:
    return Response(tuple(lines), OK)


# -- vectors (each from the spec example or a module manual) ------------------------


def test_cmgr_pdu_mode():
    # TS 27.005 §3.4.3 PDU mode: +CMGR: <stat>,[<alpha>],<length><CR><LF><pdu>
    r = C.parse_cmgr(resp("+CMGR: 0,,30", PDU))
    assert r == C.StoredPdu(None, 0, 30, PDU)


def test_cmgr_empty_slot_forms():
    assert C.parse_cmgr(resp()) is None  # Quectel: just OK
    assert C.parse_cmgr(resp("+CMGR: 0,,0")) is None  # some SIMCom firmware


def test_cmgl_listing():
    # Quectel BG96 AT manual, +CMGL example (PDU mode)
    r = C.parse_cmgl(resp("+CMGL: 0,1,,30", PDU, '+CMGL: 3,0,"Bob",30', PDU))
    assert [(x.index, x.stat, x.alpha) for x in r] == [(0, 1, ""), (3, 0, "Bob")]
    assert C.parse_cmgl(resp()) == []


def test_cmgl_lenient_skips_only_damaged_entries():
    r = C.parse_cmgl_lenient(
        resp(
            "+CMGL: 0,1,,30",
            PDU,
            "+CMGL: 1,1,,30",
            PDU[:-2],
            "+CMGL: 2,1,,30",
            "+CMGL: 3,0,,30",
            PDU,
        )
    )
    assert [e.index for e in r.entries] == [0, 3]
    assert len(r.skipped) == 2


def test_cpms_both_forms():
    # TS 27.005 §3.2.2 read form / set form
    r = C.parse_cpms(resp('+CPMS: "SM",3,30,"SM",3,30,"SM",3,30'))
    assert r.mem == ("SM", "SM", "SM") and r.used == (3, 3, 3) and r.total == (30, 30, 30)
    s = C.parse_cpms(resp("+CPMS: 30,30,30,30,30,30"))
    assert s.receive_full
    # u-blox SARA-R4: set form with two pairs
    assert C.parse_cpms(resp("+CPMS: 1,23,1,23")).total == (23, 23)


def test_csq():
    sig = C.parse_csq(resp("+CSQ: 20,99"))
    assert sig.dbm == -73
    assert C.parse_csq(resp("+CSQ: 99,99")).dbm is None


@pytest.mark.parametrize(
    ("line", "urc", "expected"),
    [
        ("+CREG: 0,1", False, (None, 1, None, None, None)),
        ('+CREG: 2,5,"1A2B","01C3D4E5",7', False, (None, 5, 0x1A2B, 0x01C3D4E5, 7)),
        ("+CREG: 1", True, (None, 1, None, None, None)),
        ('+CREG: 1,"1A2B","01C3D4E5",7', True, (None, 1, 0x1A2B, 0x01C3D4E5, 7)),
        ('+CEREG: 2,1,"3E9C","0A1B2C3",9', False, (None, 1, 0x3E9C, 0x0A1B2C3, 9)),
        # TS 27.007 §10.1.22 <n>=4 form with PSM timers
        (
            '+CEREG: 4,1,"3E9C","0A1B2C3",9,,,"00100001","00000110"',
            False,
            (None, 1, 0x3E9C, 0x0A1B2C3, 9),
        ),
        ('+CEREG: 5,"3E9C","0A1B2C3",8', True, (None, 5, 0x3E9C, 0x0A1B2C3, 8)),
        ("+CGREG: 0,2", False, (None, 2, None, None, None)),
    ],
)
def test_registration_forms(line, urc, expected):
    r = C.parse_registration(line, urc=urc)
    assert (None, r.stat, r.lac, r.ci, r.act) == expected
    assert r.registered == (r.stat in (1, 5))


def test_cops_cpin_cmgs_identity():
    assert C.parse_cops(resp('+COPS: 0,0,"Twilio",7')).name == "Twilio"
    assert C.parse_cops(resp("+COPS: 2")).mode == 2
    assert C.parse_cpin(resp("+CPIN: READY")) is C.PinState.READY
    assert C.parse_cpin(resp("+CPIN: SIM PIN")) is C.PinState.SIM_PIN
    assert C.parse_cmgs(resp("+CMGS: 42")) == 42
    assert C.parse_identity_line(resp("Quectel")) == "Quectel"
    assert C.parse_identity_line(resp("Revision: BG96MAR02A07M1G")) == "BG96MAR02A07M1G"
    assert C.parse_digits(resp("+QCCID: 8901260000000000025")) == "8901260000000000025"
    assert C.parse_digits(resp("ICCID: 8901260000000000041")) == "8901260000000000041"  # SIM7600
    assert C.parse_digits(resp('+CGSN: "866425030000001"')) == "866425030000001"


def test_urc_parsers():
    assert C.parse_cmti('"SM",3') == ("SM", 3)
    assert C.parse_cmt_header(",39") == 39
    with pytest.raises(ProtocolError):
        C.parse_cmti('"SM"')


def test_errors_raised_typed():
    cme = Response(
        (),
        FinalResult(
            ResultKind.CME_ERROR,
            "+CME ERROR: 10",
            CmeErrorCode.SIM_NOT_INSERTED,
            "SIM not inserted",
        ),
    )
    with pytest.raises(CmeError) as ei:
        C.csq().parse(cme)
    assert ei.value.code is CmeErrorCode.SIM_NOT_INSERTED
    assert ei.value.fault is Fault.DEVICE
    cms = Response(
        (),
        FinalResult(ResultKind.CMS_ERROR, "+CMS ERROR: 42", CmsErrorCode.CONGESTION, "Congestion"),
    )
    with pytest.raises(CmsError) as ej:
        C.csq().parse(cms)
    assert ej.value.transient
    with pytest.raises(CommandFailed):
        C.csq().parse(Response((), FinalResult(ResultKind.ERROR, "ERROR")))


def test_usage_errors_are_ours():
    with pytest.raises(UsageError) as ei:
        C.simple("AT\rATZ")
    assert ei.value.fault is Fault.CALLER
    with pytest.raises(UsageError):
        C.cmgs("zz", 3)
    with pytest.raises(UsageError):
        C.cpin_enter("12")


def test_error_tables():
    assert CmeErrorCode(32).text == "network not allowed - emergency calls only"
    assert CmeErrorCode.from_text("network not allowed-emergency calls only") is (
        CmeErrorCode.NETWORK_NOT_ALLOWED_EMERGENCY_ONLY
    )
    assert CmsErrorCode.from_text("SIM PIN required") is CmsErrorCode.SIM_PIN_REQUIRED
    assert CmsErrorCode.from_number(4242) == 4242
    assert CmsError(4242).code == 4242 and not CmsError(4242).transient
    for transient in (41, 42, 331, 332, 314):
        assert CmsError(transient).transient
    for permanent in (1, 21, 96, 195, 302, 304, 330):
        assert not CmsError(permanent).transient
    assert CmsErrorCode.parse("NOT A KNOWN TEXT") is None


def test_delete_never_retried_after_timeout():
    # a timed-out +CMGD may have deleted; the index may hold a new message by now
    assert not C.cmgd(3).retry.retry_timeout
    assert C.cmgr(3).retry.retry_timeout  # reads are safe to repeat


def test_command_contracts():
    assert C.cmgs("00", 1).timeout > C.at().timeout
    assert C.cmgl().request.pdu_lines and C.cmgr(1).request.pdu_lines
    assert C.cmgs("00", 1).request.prompt


# -- hypothesis: arbitrary input -> value or ProtocolError --------------------------

LINE = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda p, t: p + t,
        st.sampled_from(
            [
                "+CMGR: ",
                "+CMGL: ",
                "+CPMS: ",
                "+CSQ: ",
                "+CREG: ",
                "+CEREG: ",
                "+CGREG: ",
                "+COPS: ",
                "+CPIN: ",
                "+CMGS: ",
                "+CSCA: ",
                "+QCCID: ",
                "ICCID: ",
            ]
        ),
        st.text(alphabet='0123456789,"ABCDEF SM-+', max_size=40),
    ),
)

PARSERS = [
    C.parse_cmgl_lenient,
    C.parse_cmgr,
    C.parse_cmgl,
    C.parse_cpms,
    C.parse_csq,
    C.parse_registration,
    C.parse_cops,
    C.parse_cpin,
    C.parse_cmgs,
    C.parse_identity_line,
    C.parse_digits,
    C.csca_query().parser,
]


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: getattr(p, "__name__", "p"))
@given(lines=st.lists(LINE, max_size=5))
def test_parsers_return_or_protocol_error(parser, lines):
    with contextlib.suppress(ProtocolError):
        parser(Response(tuple(lines), OK))


@given(st.text(max_size=60), st.booleans())
def test_registration_urc_fuzz(line, urc):
    with contextlib.suppress(ProtocolError):
        C.parse_registration(line, urc=urc)


@given(st.text(max_size=40))
def test_urc_arg_fuzz(args):
    for parser in (C.parse_cmti, C.parse_cmt_header, C.parse_rssi_urc):
        with contextlib.suppress(ProtocolError):
            parser(args)


@given(st.text(max_size=30))
def test_error_lookup_never_crashes(text):
    CmeErrorCode.parse(text)
    CmsErrorCode.parse(text)


def test_when_copies_every_field_and_sets_the_precondition():
    pdu_hex = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
    cmd = C.cmgs(pdu_hex, 24)

    def check() -> bool:
        return True

    guarded = cmd.when(check)
    assert guarded is not cmd and guarded.precondition is check
    assert cmd.precondition is None  # the original is left as it was
    for f in dataclasses.fields(C.Command):
        if f.name != "precondition":
            assert getattr(guarded, f.name) == getattr(cmd, f.name), f.name
    assert guarded.request == cmd.request
    with pytest.raises(dataclasses.FrozenInstanceError):
        guarded.text = "AT"  # type: ignore[misc]
