"""SMS commands of the hardening work: lenient record parsers, +CNMI?, +CNMA=?, +CCLK?.

Vectors with their source, exact bounds, and hypothesis: "returns a value or
raises ProtocolError, nothing else".
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modem import commands as C
from modem.commands import Response
from modem.errors import ProtocolError, UsageError
from modem.protocol import FinalResult, ResultKind

OK = FinalResult(ResultKind.OK, "OK")
# TS 23.040 example-style DELIVER: SMSC field of 8 octets (07 + 7), TPDU 30 octets
PDU = "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07"
TPDU_LEN = len(PDU) // 2 - 8


def resp(*lines: str) -> Response:
    return Response(tuple(lines), OK)


# -- pdu_line_damage: exact bounds ----------------------------------------------------


def test_pdu_line_damage_exact_length_bounds():
    assert C.pdu_line_damage(PDU, TPDU_LEN) == ""
    assert "does not hold" in C.pdu_line_damage(PDU, TPDU_LEN + 1)
    assert "does not hold" in C.pdu_line_damage(PDU, TPDU_LEN - 1)
    assert "does not hold" in C.pdu_line_damage(PDU[:-2], TPDU_LEN)  # lost an octet
    assert C.pdu_line_damage(PDU[:-1], TPDU_LEN) == "PDU line is not even-length hex"
    assert C.pdu_line_damage(PDU[:10] + "ZZ" + PDU[12:], TPDU_LEN).endswith("not even-length hex")
    assert C.pdu_line_damage("", 0) == "empty PDU"
    assert C.pdu_line_damage(None, 5) == "empty PDU"
    assert "over 255" in C.pdu_line_damage("00" * 257, 256)
    # the longest legal line: SMSC 12 octets + 255 TPDU octets
    longest = "0B" + "00" * 11 + "00" * 255
    assert C.pdu_line_damage(longest, 255) == ""
    assert "longer than any PDU" in C.pdu_line_damage(longest + "00", 256)


@given(st.text(max_size=600), st.integers(0, 70000))
def test_pdu_line_damage_any_input_gives_a_reason_or_nothing(line, length):
    out = C.pdu_line_damage(line, length)
    assert isinstance(out, str)
    if out == "":
        smsc = int(line[:2], 16)
        assert len(line) == 2 * (1 + smsc + length) and length <= 255


def test_bare_tpdu_exact_bounds():
    tpdu = PDU[16:]  # the TPDU alone, without the 8-octet SMSC field
    assert C.bare_tpdu(tpdu, TPDU_LEN)
    assert not C.bare_tpdu(tpdu, TPDU_LEN + 1) and not C.bare_tpdu(tpdu, TPDU_LEN - 1)
    assert not C.bare_tpdu(PDU, TPDU_LEN)  # with its SMSC field: the usual reading
    assert not C.bare_tpdu(tpdu[:-1], TPDU_LEN) and not C.bare_tpdu(None, 0)
    assert not C.bare_tpdu("", 0)
    assert C.bare_tpdu("00" * 255, 255) and not C.bare_tpdu("00" * 256, 256)


@given(st.text(max_size=600), st.integers(0, 70000))
def test_bare_tpdu_and_the_usual_reading_never_both_hold(line, length):
    bare = C.bare_tpdu(line, length)
    assert isinstance(bare, bool)
    if bare:
        assert C.pdu_line_damage(line, length) != ""
        assert len(line) == 2 * length and 0 < length <= 255


@given(st.binary(min_size=1, max_size=255), st.binary(max_size=12))
def test_bare_tpdu_any_tpdu_with_or_without_its_smsc_field(tpdu, smsc):
    line = (bytes([len(smsc)]) + smsc + tpdu).hex().upper()
    assert C.pdu_line_damage(line, len(tpdu)) == ""
    assert not C.bare_tpdu(line, len(tpdu))
    assert C.bare_tpdu(tpdu.hex(), len(tpdu))


# -- +CMGR read leniently ---------------------------------------------------------------


def test_cmgr_record_good_and_damaged():
    # TS 27.005 §3.4.3 PDU mode: +CMGR: <stat>,[<alpha>],<length> then the PDU
    good = C.parse_cmgr_record(resp(f"+CMGR: 1,,{TPDU_LEN}", PDU))
    assert good == C.StoredPdu(None, 1, TPDU_LEN, PDU)
    short = C.parse_cmgr_record(resp(f"+CMGR: 1,,{TPDU_LEN}", PDU[:-2]))
    assert short is not None and short.pdu == PDU[:-2] and "does not hold" in short.damage
    over = C.parse_cmgr_record(resp("+CMGR: 0,,300", PDU))
    assert over is not None and over.length == 300 and "over 255" in over.damage
    empty = C.parse_cmgr_record(resp("+CMGR: 0,,25"))
    assert empty is not None and empty.damage == "empty PDU" and empty.pdu == ""
    assert C.parse_cmgr_record(resp()) is None  # Quectel: an empty slot is just OK
    with pytest.raises(ProtocolError):
        C.parse_cmgr_record(resp("+CMGR: x,,3", PDU))
    # the strict parser still refuses what the lenient one reports
    with pytest.raises(ProtocolError):
        C.parse_cmgr(resp(f"+CMGR: 1,,{TPDU_LEN}", PDU[:-2]))


def test_cmgl_lenient_reports_damaged_entries_with_their_index():
    listing = C.parse_cmgl_lenient(
        resp(
            f"+CMGL: 0,1,,{TPDU_LEN}",
            PDU,
            f"+CMGL: 1,1,,{TPDU_LEN}",
            PDU[:-2],
            "+CMGL: 2,1,,25",
            f"+CMGL: x,1,,{TPDU_LEN}",
            PDU,
        )
    )
    assert [e.index for e in listing.entries] == [0]
    assert [(d.index, d.pdu) for d in listing.damaged] == [(1, PDU[:-2]), (2, "")]
    assert listing.damaged[1].damage == "empty PDU"
    assert len(listing.skipped) == 3  # the entry without an index is only skipped


LINE = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda p, rest: p + rest,
        st.sampled_from(["+CMGR: ", "+CMGL: ", "+CNMI: ", "+CNMA: ", "+CCLK: "]),
        st.text(alphabet='0123456789,"()/:+-ABCDEFZ ', max_size=40),
    ),
    st.text(alphabet="0123456789ABCDEF", max_size=80),
)


@pytest.mark.parametrize(
    "parser",
    [C.parse_cmgr_record, C.parse_cmgl_lenient, C.parse_cnmi, C.parse_cnma_test, C.parse_cclk],
    ids=lambda p: p.__name__,
)
@given(lines=st.lists(LINE, max_size=5))
def test_sms_parsers_return_or_protocol_error(parser, lines):
    with contextlib.suppress(ProtocolError):
        parser(Response(tuple(lines), OK))


# -- +CNMI? (TS 27.005 §3.4.1) --------------------------------------------------------------


def test_cnmi_read_form():
    assert C.parse_cnmi(resp("+CNMI: 2,1,0,1,0")) == C.Routing(2, 1, 0, 1, 0)
    assert C.parse_cnmi(resp("+CNMI: 2,0,0,0,0")).mt == 0  # after a missing +CNMA
    assert str(C.Routing.parse("1,2")) == "1,2,0,0,0"
    with pytest.raises(ProtocolError):
        C.parse_cnmi(resp("+CNMI: 2,x,0,1,0"))
    with pytest.raises(ProtocolError):
        C.parse_cnmi(resp("+CNMI: 1,2,3,4,5,6"))
    assert C.cnmi_query().text == "AT+CNMI?"


@given(st.tuples(*[st.integers(0, 9)] * 5))
def test_routing_round_trip(values):
    r = C.Routing(*values)
    assert C.Routing.parse(str(r)) == r


# -- +CNMA (TS 27.005 §3.4.4) -----------------------------------------------------------------


def test_cnma_forms():
    assert C.cnma().text == "AT+CNMA"
    assert C.cnma(2).text == "AT+CNMA=2"
    with pytest.raises(UsageError):
        C.cnma(3)
    assert C.parse_cnma_test(resp("+CNMA: (0-2)")) == {0, 1, 2}
    assert C.parse_cnma_test(resp("+CNMA: (0,1)")) == {0, 1}
    with pytest.raises(ProtocolError):
        C.parse_cnma_test(resp("+CNMA: (2-0)"))
    with pytest.raises(ProtocolError):
        C.parse_cnma_test(resp("+CNMA: (0-3)"))


# -- +CCLK? (TS 27.007 §8.15) --------------------------------------------------------------------


def test_cclk_vectors():
    # TS 27.007 §8.15: "yy/MM/dd,hh:mm:ss±zz", zz in quarters of an hour
    t = C.parse_cclk(resp('+CCLK: "26/12/01,08:40:45+04"'))
    assert t == datetime(2026, 12, 1, 7, 40, 45, tzinfo=UTC)
    assert t.utcoffset() == timedelta(hours=1)
    # an unset clock (the GPS epoch many modules boot with) reads as 1980, not 2080
    assert C.parse_cclk(resp('+CCLK: "80/01/06,00:00:12"')).year == 1980
    assert C.parse_cclk(resp('+CCLK: "26/06/01,12:00:00-20"')).utcoffset() == timedelta(hours=-5)
    for bad in ('"26/13/01,00:00:00+00"', '"26/12/01 08:40:45"', '"26/12/01,08:40:45+60"'):
        with pytest.raises(ProtocolError):
            C.parse_cclk(resp(f"+CCLK: {bad}"))


@given(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2069, 12, 31)),
    st.integers(-56, 56),
)
def test_cclk_round_trip(t, quarters):
    zone = timezone(timedelta(minutes=15 * quarters))
    t = t.replace(microsecond=0, tzinfo=zone)
    sign = "-" if quarters < 0 else "+"
    line = f'+CCLK: "{t:%y/%m/%d,%H:%M:%S}{sign}{abs(quarters):02d}"'
    assert C.parse_cclk(resp(line)) == t
