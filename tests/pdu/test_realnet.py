"""What real networks send that the specs' happy path does not show.

Each test names the clause or the capture it comes from (the captures are in
the shared table, tests/pdu/vectors.py). Oracles as in test_differential.py:
libGammu (python-gammu) where it follows the spec, the spec where it does not.
"""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime, timedelta, timezone

import gammu
import gsmmodem.pdu as gsmpdu
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdu import (
    SCTS_UNKNOWN,
    Address,
    DataCoding,
    Deliver,
    PduError,
    StatusReport,
    Submit,
    UserData,
    decode,
    encode,
    to_json,
)
from pdu.address import decode_address, decode_smsc
from pdu.cli import main, report
from pdu.timestamps import decode_timestamp

EXAMPLES = settings(
    max_examples=int(os.environ.get("SMS_DIFF_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# SMS-DELIVER from +31641600986, DCS 0, "How are you?"; {tz} is the TP-SCTS
# time zone octet and {oa} the whole TP-OA field.
_DELIVER = "00{fo}{oa}0000208062917314{tz}0CC8F71D14969741F977FD07"
_OA = "0B911346610089F6"
_SWAP = bytes(((b & 0x0F) << 4) | (b >> 4) for b in range(256))


def _semi(nibbles: str) -> str:
    """Hex of semi-octets in wire order (first digit in the low nibble), F-padded."""
    if len(nibbles) % 2:
        nibbles += "F"
    return bytes.fromhex(nibbles).translate(_SWAP).hex().upper()


# -- TS 23.040 §9.2.3.11 time zone: a units semi-octet A-F ------------------------


def test_every_time_zone_octet_decodes_as_libgammu_reads_it() -> None:
    # python-gsmmodem issue #15 (vector gsmmodem-issue15-status-report): an SC
    # at UTC+7/+8 sent the zone octet C2. The units semi-octet C reads as 12
    # (2 * 10 + 12 = 32 quarters, +08:00), as libGammu and python-gsmmodem do;
    # before, 96 of the 256 octets made the whole message undecodable.
    for tz in range(256):
        raw = bytes.fromhex(_DELIVER.format(fo="04", oa=_OA, tz=f"{tz:02X}"))
        msg = decode(raw)
        assert isinstance(msg, Deliver)
        ours = msg.tp_scts
        theirs = gammu.DecodePDU(raw)["DateTime"]
        assert ours.utcoffset() == theirs.utcoffset(), f"{tz:02X}"
        assert ours.replace(tzinfo=None) == datetime(2002, 8, 26, 19, 37, 41)
        quarters = (tz & 7) * 10 + (tz >> 4)
        assert ours.utcoffset() == timedelta(minutes=15 * quarters) * (-1 if tz & 8 else 1)


def test_non_decimal_time_zone_in_status_report_and_python_gsmmodem() -> None:
    raw = "0006230E9126983575169498610103409544C26101034095448200"
    msg = decode(raw)
    assert isinstance(msg, StatusReport)
    assert msg.tp_scts.utcoffset() == timedelta(hours=8)
    assert msg.tp_dt.utcoffset() == timedelta(hours=7)
    assert (msg.tp_mr, str(msg.tp_ra), msg.tp_st) == (35, "+62895357614989", 0)
    # python-gsmmodem (after its fix for that issue) reads the same zone.
    d = gsmpdu.decodeSmsPdu(_DELIVER.format(fo="04", oa=_OA, tz="C2"))
    assert d["time"].utcoffset() == timedelta(hours=8)


def test_largest_time_zone_does_not_re_encode() -> None:
    # 85 quarter hours (octet FF) decodes, but TS 23.040 has no BCD form for
    # it: encoding says so instead of writing a different zone.
    msg = decode(_DELIVER.format(fo="04", oa=_OA, tz="FF"))
    assert isinstance(msg, Deliver)
    assert msg.tp_scts.utcoffset() == -timedelta(hours=21, minutes=15)
    with pytest.raises(PduError) as e:
        encode(msg)
    assert e.value.field == "TP-SCTS"


# -- TS 23.040 §9.1.2.3: an F among the counted semi-octets is ignored -----------


@pytest.mark.parametrize(
    ("field", "number"),
    [
        ("0C914477009001F3", "+44770009103"),  # the length counts the filler
        ("0C914477F0900123", "+44770091032"),  # an F inside the number
        ("0481F963", "936"),  # the F first
        ("0581FFFFF1", "1"),  # only one digit is not F
        ("0481FFFF", ""),  # nothing but F
        ("0581A1B2F3", "1*2#3"),  # with the * and # semi-octets
    ],
)
def test_address_f_among_counted_digits_is_skipped(field: str, number: str) -> None:
    raw = bytes.fromhex(_DELIVER.format(fo="04", oa=field, tz="00"))
    msg = decode(raw)
    assert isinstance(msg, Deliver)
    assert str(msg.tp_oa) == number
    assert msg.tp_ud.text == "How are you?"
    # The same digits once re-encoded: the F is gone, the length counts digits.
    again = decode(encode(msg))
    assert again == msg


def test_f_skipped_in_every_address_field() -> None:
    # TP-DA of a SUBMIT, TP-RA of a STATUS-REPORT and the SMSC field (TS 24.011
    # §8.2.5.1 codes it as TS 24.008 called party BCD: F is the end mark).
    submit = decode("0001000C914477009001F30000" + "02C834")
    assert isinstance(submit, Submit) and str(submit.tp_da) == "+44770009103"
    report = decode("0006050C914477009001F3" + "20806291731400" * 2 + "00")
    assert isinstance(report, StatusReport) and str(report.tp_ra) == "+44770009103"
    assert decode_smsc(bytes.fromhex("0791447758F01006")) == (Address("44778500160", 1, 1), 8)
    deliver = decode("0791447758F01006" + "04" + _OA + "0000208062917314000548656C6C6F")
    assert deliver.smsc == Address("44778500160", 1, 1)


_digits = st.text(alphabet="0123456789", min_size=0, max_size=18)


@EXAMPLES
@given(
    digits=_digits,
    fillers=st.lists(st.integers(0, 20), max_size=2),
    toa=st.sampled_from([0x81, 0x91, 0xA1]),
)
def test_f_in_address_matches_libgammu(digits: str, fillers: list[int], toa: int) -> None:
    nibbles = digits
    for at in fillers:
        nibbles = nibbles[:at] + "F" + nibbles[at:]
    nibbles = nibbles[:20]
    field = f"{len(nibbles):02X}{toa:02X}" + _semi(nibbles)
    raw = bytes.fromhex(_DELIVER.format(fo="04", oa=field, tz="00"))
    ours = decode(raw)
    assert isinstance(ours, Deliver)
    want = nibbles.replace("F", "")
    assert ours.tp_oa.number == want
    assert decode_address(bytes.fromhex(field), 0, "TP-OA")[0].number == want
    g = gammu.DecodePDU(raw)["Number"]
    assert g.lstrip("+") == want
    assert str(ours.tp_oa) == (g if want else "")


def test_empty_text_deliver_still_round_trips() -> None:
    # Guard: the F rule does not touch an address without F.
    m = Deliver(
        tp_oa=Address("2936"), tp_scts=datetime(2026, 1, 1, tzinfo=UTC), tp_ud=UserData(text="")
    )
    assert decode(encode(m)) == m


# -- TS 23.040 §9.2.3.11: a TP-SCTS / TP-DT that is not a date ---------------------


@pytest.mark.parametrize(
    "scts",
    [
        "00000000000000",  # month 0, day 0
        "FFFFFFFFFFFFFF",  # every semi-octet F
        "2080629173F408",  # seconds tens digit F
        "22209200000000",  # 29 February 2022
        "22111332950300",  # 31 November
    ],
)
def test_deliver_with_a_time_stamp_that_is_no_date_still_decodes(scts: str) -> None:
    raw = "00040B911346610089F60000" + scts + "0CC8F71D14969741F977FD07"
    msg = decode(raw)
    assert isinstance(msg, Deliver)
    assert msg.tp_scts == SCTS_UNKNOWN
    assert (str(msg.tp_oa), msg.tp_ud.text) == ("+31641600986", "How are you?")
    assert decode(encode(msg)) == msg  # the stand-in re-encodes as itself


def test_status_report_with_a_discharge_time_that_is_no_date() -> None:
    good = "20806291731408"
    msg = decode("0006050B911346610089F6" + good + "00000000000000" + "00")
    assert isinstance(msg, StatusReport)
    assert msg.tp_scts == datetime(2002, 8, 26, 19, 37, 41, tzinfo=UTC)
    assert msg.tp_dt == SCTS_UNKNOWN
    assert (msg.tp_mr, msg.tp_st) == (5, 0)


def test_truncated_time_stamp_is_still_an_error() -> None:
    with pytest.raises(PduError) as e:
        decode("0006050B911346610089F6" + "20806291731408" + "208062917314")
    assert (e.value.field, e.value.offset) == ("TP-DT", 18)


def test_absolute_validity_period_stays_strict() -> None:
    # TP-VP is ours to write (and a stored SUBMIT's): no stand-in there.
    with pytest.raises(PduError) as e:
        decode("0019000481926300000000000000000000" + "02C834")
    assert e.value.field == "TP-VP"


@EXAMPLES
@given(scts=st.binary(min_size=7, max_size=7))
def test_any_time_stamp_octets_decode(scts: bytes) -> None:
    raw = (
        bytes.fromhex("00040B911346610089F60000") + scts + bytes.fromhex("0CC8F71D14969741F977FD07")
    )
    msg = decode(raw)
    assert isinstance(msg, Deliver) and msg.tp_ud.text == "How are you?"
    try:
        strict = decode_timestamp(scts, 0, "TP-SCTS")
    except PduError:
        assert msg.tp_scts == SCTS_UNKNOWN
    else:
        assert msg.tp_scts == strict
        theirs = gammu.DecodePDU(raw)["DateTime"]  # libGammu agrees on every real date
        if theirs is not None and strict.second == theirs.second:
            assert theirs == strict


# -- TS 23.040 §9.2.3.16 / §9.2.3.24: GSM 7-bit header with no text after it ------

_UDH_DELIVER = "00440B911346610089F6000020806291731400"  # TP-UDHI, DCS 0; TP-UDL follows


@pytest.mark.parametrize(
    "ud",
    [
        "07050003420201" + "00",  # by the book: 7 septets, the fill octet present
        "07050003420201",  # the last octet, only fill bits, left out
        "06050003420201",  # TP-UDL counts the header in octets
        "0605000342020100",  # ... with the fill octet
    ],
)
def test_header_only_gsm7_user_data_is_an_empty_text(ud: str) -> None:
    # Android (count < 0 -> 0), libGammu, python-gsmmodem and smspdudecoder
    # all read these as an empty text with the header; before, three of the
    # four were a PduError ("user data header longer than TP-UDL", or the fill
    # octet missing).
    raw = bytes.fromhex(_UDH_DELIVER + ud)
    msg = decode(raw)
    assert isinstance(msg, Deliver)
    assert msg.tp_ud.text == ""
    assert msg.tp_ud.concat is not None
    assert (msg.tp_ud.concat.ref, msg.tp_ud.concat.total, msg.tp_ud.concat.seq) == (0x42, 2, 1)
    assert gammu.DecodePDU(raw)["Text"] == ""
    assert decode(encode(msg)) == msg


def test_header_then_text_cut_short_is_still_an_error() -> None:
    # One text septet promised (TP-UDL 8) but only the header is there.
    with pytest.raises(PduError) as e:
        decode(_UDH_DELIVER + "08050003420201")
    assert (e.value.field, e.value.offset) == ("TP-UD", 20)


# -- TS 23.040 §9.2.2.3: STATUS-REPORT with and without the TP-PI fields ----------

_zone = st.integers(-47, 56).map(lambda q: timezone(timedelta(minutes=15 * q)))
_stamp = st.builds(
    lambda d, z: d.replace(tzinfo=z),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2089, 12, 31)).map(
        lambda d: d.replace(microsecond=0)
    ),
    _zone,
)


@EXAMPLES
@given(
    mr=st.integers(0, 255),
    ra=st.from_regex(r"\+[1-9][0-9]{5,14}", fullmatch=True),
    scts=_stamp,
    dt=_stamp,
    status=st.integers(0, 255),
    optional=st.sampled_from(["none", "pid", "pid+dcs", "all", "dcs+ud", "ud"]),
    text=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 ", max_size=40),
)
def test_our_status_report_decodes_the_same_in_libgammu(
    mr: int, ra: str, scts: datetime, dt: datetime, status: int, optional: str, text: str
) -> None:
    pid = 0 if "pid" in optional else None
    dcs = DataCoding(0) if "dcs" in optional or optional == "all" else None
    ud = UserData(text=text) if "ud" in optional or optional == "all" else None
    ra_addr = Address.parse(ra)
    msg = StatusReport(
        tp_mr=mr,
        tp_ra=ra_addr,
        tp_scts=scts,
        tp_dt=dt,
        tp_st=status,
        tp_pid=pid,
        tp_dcs=dcs,
        tp_ud=ud,
    )
    raw = encode(msg)
    assert decode(raw) == msg
    g = gammu.DecodePDU(raw)
    assert g["Type"] == "Status_Report"
    assert (g["Number"], g["MessageReference"], g["DeliveryStatus"]) == (ra, mr, status)
    # libGammu's names: DateTime is TP-SCTS, SMSCDateTime is TP-DT.
    assert g["DateTime"] == scts and g["DateTime"].utcoffset() == scts.utcoffset()
    assert g["SMSCDateTime"] == dt and g["SMSCDateTime"].utcoffset() == dt.utcoffset()
    if ud is not None:
        assert g["Text"] == text


def test_unknown_time_stamp_shows_as_unknown_in_json_and_report() -> None:
    raw = "00040B911346610089F60000" + "00000000000000" + "0CC8F71D14969741F977FD07"
    msg = decode(raw)
    assert to_json(msg)["timestamp"] is None
    assert "Timestamp: unknown (not a date on the wire)" in report(msg)
    report_sr = report(decode("0006050B911346610089F6" + "20806291731408" + "FF" * 7 + "00"))
    assert "Discharge: unknown (not a date on the wire)" in report_sr
    assert "Timestamp: 2002-08-26 19:37:41+00:00" in report_sr
    out = io.StringIO()
    assert main(["decode", "--json", raw], stdin=io.StringIO(), stdout=out) == 0
    assert json.loads(out.getvalue())["timestamp"] is None


# -- TS 23.038 §4: every TP-DCS value, decoded as the coding groups say ----------


def _spec_coding(dcs: int) -> tuple[str, int | None, bool]:
    """(alphabet, class, compressed) straight from the TS 23.038 §4 table."""
    group = dcs >> 4
    if group <= 0b0111:  # general data coding (00xx) and automatic deletion (01xx)
        alphabet = ("gsm7", "8bit", "ucs2", "gsm7")[(dcs >> 2) & 3]  # 11 reserved -> GSM 7
        return alphabet, (dcs & 3) if dcs & 0x10 else None, bool(dcs & 0x20)
    if group <= 0b1011:  # reserved coding groups: "assumed to be the GSM 7 bit default"
        return "gsm7", None, False
    if group in (0b1100, 0b1101):  # message waiting, discard / store, GSM 7-bit
        return "gsm7", None, False
    if group == 0b1110:  # message waiting, store, UCS2
        return "ucs2", None, False
    return ("8bit" if dcs & 4 else "gsm7"), dcs & 3, False  # 1111: bit 3 reserved


def test_every_dcs_value_decodes_as_ts_23_038_says() -> None:
    # Real captures back the two groups the oracles read differently: FB is
    # GSM 7-bit (gammu-issue483-dcs-fb), C8 GSM 7-bit (node-pdu-issue2-vivo-mwi).
    payload = bytes.fromhex("00680069")  # UCS-2 "hi", or 4 octets, or 4 septets
    for dcs in range(256):
        alphabet, cls, compressed = _spec_coding(dcs)
        raw = bytes.fromhex(f"00040B911346610089F600{dcs:02X}20806291731400") + bytes((4,))
        raw += payload
        if compressed:
            with pytest.raises(PduError) as e:
                decode(raw)
            assert e.value.field == "TP-DCS"
            continue
        msg = decode(raw)
        assert isinstance(msg, Deliver)
        assert (msg.tp_dcs.alphabet.value, msg.tp_dcs.message_class) == (alphabet, cls), hex(dcs)
        if alphabet == "ucs2":
            assert msg.tp_ud.text == "hi"
        elif alphabet == "8bit":
            assert msg.tp_ud.data == payload
        else:
            assert msg.tp_ud.text is not None and len(msg.tp_ud.text) == 4
