"""Field-level behaviour of the TPDU codec (TS 23.040 §9.1.2.5, §9.2.2, §9.2.3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pdu import (
    Address,
    Alphabet,
    DataCoding,
    Deliver,
    EnhancedValidity,
    InformationElement,
    PduError,
    StatusCategory,
    StatusReport,
    Submit,
    UserData,
    cmgs_pdu,
    decode,
    encode,
    status_category,
    status_meaning,
)
from pdu.address import decode_address, decode_smsc, encode_address, encode_smsc
from pdu.timestamps import (
    decode_timestamp,
    encode_timestamp,
    relative_to_timedelta,
    timedelta_to_relative,
)

T = datetime(2026, 11, 22, 0, 0, 1, tzinfo=UTC)


# -- addresses -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number", "ton", "npi", "shown"),
    [
        ("+447700900123", "447700900123", 1, 1, "+447700900123"),
        (" +1 ".strip(), "1", 1, 1, "+1"),
        ("2936", "2936", 0, 1, "2936"),
        ("000", "000", 0, 1, "000"),
        ("*100#", "*100#", 0, 1, "*100#"),
        ("Twilio", "Twilio", 5, 0, "Twilio"),
        ("+", "+", 5, 0, "+"),
        ("+1 (555) 010-0000", "15550100000", 1, 1, "+15550100000"),
        ("0800 123 456", "0800123456", 0, 1, "0800123456"),
        ("abc", "abc", 5, 0, "abc"),
        ("My Shop", "My Shop", 5, 0, "My Shop"),
    ],
)
def test_address_parse(text: str, number: str, ton: int, npi: int, shown: str) -> None:
    a = Address.parse(text)
    assert (a.number, a.ton, a.npi) == (number, ton, npi)
    assert str(a) == shown


def test_address_parse_empty() -> None:
    with pytest.raises(PduError):
        Address.parse("  ")


@pytest.mark.parametrize(
    ("addr", "wire"),
    [
        (Address("2936"), "04819263"),
        (Address("000"), "038100F0"),  # odd count: F filler
        (Address("31641600986", 1, 1), "0B911346610089F6"),
        (Address("0505282824", 2, 1), "0AA15050828242"),  # national
        (Address("*#abc", 0, 1), "0581BADCFE"),  # A-E, then F filler
        (Address("Twilio", 5, 0), "0BD0D47B9A9D7E03"),  # 6 septets -> 11 semi-octets
        (Address("", 0, 1), "0081"),
    ],
)
def test_address_wire(addr: Address, wire: str) -> None:
    raw = bytes.fromhex(wire)
    assert encode_address(addr) == raw
    assert decode_address(raw + b"rest", 0, "TP-OA") == (addr, len(raw))


def test_address_errors() -> None:
    # TS 23.040 §9.1.2.3: an F before the last semi-octet is skipped, not an error.
    assert decode_address(bytes.fromhex("0481F963"), 0, "TP-OA") == (Address("936"), 4)
    with pytest.raises(PduError):
        decode_address(bytes.fromhex("15911111111111111111111111"), 0, "TP-OA")  # 21 digits
    with pytest.raises(PduError):
        decode_address(bytes.fromhex("0B9113"), 0, "TP-OA")  # truncated
    with pytest.raises(PduError):
        encode_address(Address("12-34"))
    with pytest.raises(PduError):
        encode_address(Address("1" * 21))
    with pytest.raises(PduError):
        encode_address(Address("A very long sender", 5, 0))


def test_smsc_field() -> None:
    assert encode_smsc(None) == b"\x00"
    assert decode_smsc(b"\x00\x04") == (None, 1)
    a = Address("31624000000", 1, 1)
    raw = bytes.fromhex("07911326040000F0")
    assert encode_smsc(a) == raw
    assert decode_smsc(raw + b"\x04") == (a, 8)
    with pytest.raises(PduError):
        encode_smsc(Address("Twilio", 5, 0))
    with pytest.raises(PduError):
        decode_smsc(bytes.fromhex("0D91"))  # longer than 12 octets
    with pytest.raises(PduError):
        decode_smsc(bytes.fromhex("0791"))  # truncated


# -- DCS -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "alphabet", "cls", "compressed"),
    [
        (0x00, Alphabet.GSM7, None, False),
        (0x04, Alphabet.DATA8, None, False),
        (0x08, Alphabet.UCS2, None, False),
        (0x0C, Alphabet.GSM7, None, False),  # reserved alphabet: as GSM 7-bit
        (0x10, Alphabet.GSM7, 0, False),
        (0x15, Alphabet.DATA8, 1, False),
        (0x1A, Alphabet.UCS2, 2, False),
        (0x20, Alphabet.GSM7, None, True),
        (0x48, Alphabet.UCS2, None, False),  # automatic deletion group
        (0x80, Alphabet.GSM7, None, False),  # reserved group
        (0xB7, Alphabet.GSM7, None, False),
        (0xC0, Alphabet.GSM7, None, False),
        (0xD9, Alphabet.GSM7, None, False),
        (0xE8, Alphabet.UCS2, None, False),
        (0xF0, Alphabet.GSM7, 0, False),
        (0xF4, Alphabet.DATA8, 0, False),
        (0xF7, Alphabet.DATA8, 3, False),
    ],
)
def test_dcs_groups(value: int, alphabet: Alphabet, cls: int | None, compressed: bool) -> None:
    d = DataCoding(value)
    assert (d.alphabet, d.message_class, d.compressed) == (alphabet, cls, compressed)
    assert d.describe()


def test_dcs_message_waiting_and_flags() -> None:
    mwi = DataCoding(0xC8).message_waiting
    assert mwi is not None and (mwi.active, mwi.kind_name, mwi.store) == (True, "voicemail", False)
    mwi = DataCoding(0xE3).message_waiting
    assert mwi is not None and (mwi.active, mwi.kind_name, mwi.store) == (False, "other", True)
    assert DataCoding(0xD1).message_waiting.kind_name == "fax"  # type: ignore[union-attr]
    assert DataCoding(0x00).message_waiting is None
    assert DataCoding(0x40).auto_delete and not DataCoding(0x00).auto_delete
    assert DataCoding(0x8F).reserved and DataCoding(0x0C).reserved
    assert not DataCoding(0xF0).reserved


def test_for_alphabet() -> None:
    assert DataCoding.for_alphabet(Alphabet.GSM7).value == 0x00
    assert DataCoding.for_alphabet(Alphabet.DATA8).value == 0x04
    assert DataCoding.for_alphabet(Alphabet.UCS2).value == 0x08
    assert DataCoding.for_alphabet(Alphabet.GSM7, 0).value == 0x10
    assert DataCoding.for_alphabet(Alphabet.DATA8, 1).value == 0x15
    assert DataCoding.for_alphabet("ucs2", 3).value == 0x1B  # type: ignore[arg-type]
    with pytest.raises(PduError):
        DataCoding.for_alphabet(Alphabet.GSM7, 4)


def test_compressed_refused_both_ways() -> None:
    m = Deliver(tp_oa=Address("1"), tp_scts=T, tp_ud=UserData(text="x"))
    raw = bytearray(encode(m, smsc=False))
    raw[5] = 0x20  # TP-DCS (after first octet, 3-octet TP-OA, TP-PID): compressed
    with pytest.raises(PduError, match="compressed") as e:
        decode(bytes(raw), smsc=False)
    assert e.value.field == "TP-DCS"
    with pytest.raises(PduError, match="compressed"):
        encode(Deliver(tp_oa=Address("1"), tp_scts=T, tp_dcs=DataCoding(0x20)))


def test_reserved_dcs_decodes_as_gsm7() -> None:
    m = Deliver(tp_oa=Address("1"), tp_scts=T, tp_ud=UserData(text="hi"), tp_dcs=DataCoding(0x84))
    assert decode(encode(m)) == m


# -- time stamps ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "iso"),
    [
        ("20806291731408", "2002-08-26T19:37:41+00:00"),  # "-0"
        ("62111232950380", "2026-11-21T23:59:30+02:00"),
        ("62111232950388", "2026-11-21T23:59:30-02:00"),
        ("6211123295039F", "2026-11-21T23:59:30-19:45"),
        ("62111232950397", "2026-11-21T23:59:30+19:45"),
        ("99211332959500", "1999-12-31T23:59:59+00:00"),
        # time zone units digit A-F: tens * 10 + units (timestamps module doc)
        ("621112329503A0", "2026-11-21T23:59:30+02:30"),
        ("621112329503C2", "2026-11-21T23:59:30+08:00"),
        ("621112329503FF", "2026-11-21T23:59:30-21:15"),
    ],
)
def test_timestamp_decode(wire: str, iso: str) -> None:
    assert decode_timestamp(bytes.fromhex(wire), 0, "TP-SCTS").isoformat() == iso


def test_timestamp_year_pivot() -> None:
    assert decode_timestamp(bytes.fromhex("98211332959500"), 0, "x").year == 2089
    assert decode_timestamp(bytes.fromhex("09211332959500"), 0, "x").year == 1990


@pytest.mark.parametrize(
    "wire",
    [
        "62311232950300",  # month 13
        "62113332950300",  # day 33
        "62111252950300",  # hour 25
        "6211123295A300",  # seconds digit A
        "621112329503",  # truncated: 6 octets
        "22209200000000",  # 29 Feb 2022 does not exist
    ],
)
def test_timestamp_invalid(wire: str) -> None:
    raw = bytes.fromhex(wire)
    with pytest.raises(PduError):
        decode_timestamp(raw, 0, "TP-SCTS")


def test_timestamp_encode() -> None:
    t = datetime(2026, 11, 21, 23, 59, 30, tzinfo=timezone(timedelta(hours=-2)))
    assert encode_timestamp(t, "x").hex().upper() == "62111232950388"
    assert encode_timestamp(t.replace(microsecond=999), "x") == encode_timestamp(t, "x")
    for bad in (
        datetime(2026, 1, 1),  # naive
        datetime(2026, 1, 1, tzinfo=timezone(timedelta(minutes=10))),
        datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=20))),
        datetime(2090, 1, 1, tzinfo=UTC),
        datetime(1989, 1, 1, tzinfo=UTC),
    ):
        with pytest.raises(PduError):
            encode_timestamp(bad, "x")


# -- validity period -------------------------------------------------------------


def test_relative_vp_table() -> None:
    assert relative_to_timedelta(0) == timedelta(minutes=5)
    assert relative_to_timedelta(143) == timedelta(hours=12)
    assert relative_to_timedelta(144) == timedelta(hours=12, minutes=30)
    assert relative_to_timedelta(167) == timedelta(hours=24)
    assert relative_to_timedelta(168) == timedelta(days=2)
    assert relative_to_timedelta(196) == timedelta(days=30)
    assert relative_to_timedelta(197) == timedelta(weeks=5)
    assert relative_to_timedelta(255) == timedelta(weeks=63)
    for v in range(256):
        assert timedelta_to_relative(relative_to_timedelta(v)) == v
    assert timedelta_to_relative(timedelta(seconds=1)) == 0  # rounded up to 5 min
    assert timedelta_to_relative(timedelta(hours=25)) == 168  # -> 2 days
    with pytest.raises(PduError):
        timedelta_to_relative(timedelta(weeks=64))
    with pytest.raises(PduError):
        timedelta_to_relative(timedelta(0))


@pytest.mark.parametrize(
    "vp",
    [
        None,
        timedelta(days=4),
        datetime(2026, 12, 1, 12, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        EnhancedValidity(bytes.fromhex("4105000000000000")[:7]),
    ],
)
def test_submit_vp_round_trip(vp: object) -> None:
    m = Submit(tp_da=Address("2936"), tp_vp=vp, tp_ud=UserData(text="x"))  # type: ignore[arg-type]
    raw = encode(m)
    assert (raw[1] >> 3) & 3 == m.tp_vpf
    assert decode(raw) == m


def test_enhanced_vp_formats() -> None:
    assert EnhancedValidity(bytes.fromhex("01AA0000000000")).period == timedelta(days=4)
    assert EnhancedValidity(bytes.fromhex("023C0000000000")).period == timedelta(seconds=60)
    assert EnhancedValidity(bytes.fromhex("03103254000000")).period == timedelta(
        hours=1, minutes=23, seconds=45
    )
    assert EnhancedValidity(bytes.fromhex("40000000000000")).single_shot
    assert EnhancedValidity(bytes.fromhex("07000000000000")).period is None
    with pytest.raises(PduError):
        encode(Submit(tp_da=Address("1"), tp_vp=EnhancedValidity(b"\x01")))


# -- first octet, MTI, optional fields ---------------------------------------------


def test_first_octet_flags() -> None:
    m = Deliver(
        tp_oa=Address("1"),
        tp_scts=T,
        tp_mms=True,
        tp_lp=True,
        tp_sri=True,
        tp_rp=True,
        tp_ud=UserData((InformationElement(0x70, b""),), "x"),
    )
    raw = encode(m, smsc=False)
    assert raw[0] == 0x00 | 0x08 | 0x20 | 0x40 | 0x80  # MMS bit 0 = more messages
    assert decode(raw, smsc=False) == m
    s = Submit(tp_da=Address("1"), tp_rd=True, tp_srr=True, tp_rp=True, tp_mr=200)
    raw = encode(s, smsc=False)
    assert raw[0] == 0x01 | 0x04 | 0x20 | 0x80 and raw[1] == 200
    assert decode(raw, smsc=False) == s
    assert (m.tp_mti, s.tp_mti) == (0, 1)
    assert m.tp_udhi and not s.tp_udhi


def test_reserved_mti_and_empty() -> None:
    # §9.2.3.1: a reserved TP-MTI (11) is processed as an SMS-DELIVER.
    deliver = encode(Deliver(tp_oa=Address("2936"), tp_scts=T, tp_ud=UserData(text="hi")))
    reserved = deliver[:1] + bytes((deliver[1] | 0x03,)) + deliver[2:]
    assert decode(reserved) == decode(deliver)
    with pytest.raises(PduError) as e:
        decode("0003")  # reserved TP-MTI, then nothing: truncated SMS-DELIVER
    assert e.value.field == "TP-OA" and e.value.offset == 2
    with pytest.raises(PduError) as e:
        decode("00")
    assert e.value.field == "TP-MTI" and e.value.offset == 1
    with pytest.raises(PduError):
        decode("")
    with pytest.raises(PduError):
        decode("00")
    with pytest.raises(PduError, match="hexadecimal"):
        decode("0G")


def test_status_report_optional_fields() -> None:
    base = dict(tp_mr=7, tp_ra=Address("2936"), tp_scts=T, tp_dt=T, tp_st=0x00)
    plain = StatusReport(**base)  # type: ignore[arg-type]
    raw = encode(plain)
    assert decode(raw) == plain
    assert decode(raw + b"\x00") == plain  # TP-PI with nothing present
    only_pid = StatusReport(**base, tp_pid=0x7F)  # type: ignore[arg-type]
    assert encode(only_pid)[len(raw) :] == b"\x01\x7f"
    assert decode(encode(only_pid)) == only_pid
    ud_no_dcs = StatusReport(**base, tp_ud=UserData(text="ok"))  # type: ignore[arg-type]
    assert decode(encode(ud_no_dcs)) == ud_no_dcs
    ucs = StatusReport(**base, tp_dcs=DataCoding(8), tp_ud=UserData(text="ж"))  # type: ignore[arg-type]
    assert decode(encode(ucs)) == ucs
    # TP-PI extension octets are skipped.
    assert decode(raw + bytes((0x81, 0x00, 0x7F))).tp_pid == 0x7F  # type: ignore[union-attr]
    with pytest.raises(PduError):
        decode(raw + b"\x02")  # TP-DCS announced, missing
    with pytest.raises(PduError):
        decode(raw + b"\x80")  # extension announced, missing


def test_status_meanings() -> None:
    assert status_category(0x00) is StatusCategory.COMPLETED
    assert status_category(0x21) is StatusCategory.TEMPORARY_RETRYING
    assert status_category(0x46) is StatusCategory.PERMANENT
    assert status_category(0x63) is StatusCategory.TEMPORARY_STOPPED
    assert status_category(0x80) is StatusCategory.RESERVED
    assert status_meaning(0x00) == "short message received by the SME"
    assert status_meaning(0x46) == "SM validity period expired"
    assert "SC" in status_meaning(0x15)
    assert status_meaning(0x0A) == "reserved"


# -- user data -------------------------------------------------------------------


def test_ucs2_lone_surrogate_and_odd_length_become_replacement() -> None:
    m = Deliver(tp_oa=Address("1"), tp_scts=T, tp_dcs=DataCoding(8), tp_ud=UserData(text="ab"))
    raw = bytearray(encode(m, smsc=False))
    raw[-4:] = bytes.fromhex("D83D0062")  # high surrogate then 'b'
    assert decode(bytes(raw), smsc=False).tp_ud.text == "\ufffdb"  # type: ignore[union-attr]
    odd = bytes(raw[:-5]) + bytes((3,)) + bytes.fromhex("006100")
    assert decode(odd, smsc=False).tp_ud.text == "a\ufffd"  # type: ignore[union-attr]
    with pytest.raises(PduError):
        encode(
            Deliver(
                tp_oa=Address("1"), tp_scts=T, tp_dcs=DataCoding(8), tp_ud=UserData(text="\udc00")
            )
        )


def test_trailing_escape_and_double_escape() -> None:
    # Septets: 'a' ESC  -> lone trailing ESC decodes to nothing.
    from pdu.septets import pack_septets

    tpdu = encode(Deliver(tp_oa=Address("1"), tp_scts=T, tp_ud=UserData(text="ab")), smsc=False)
    raw = tpdu[:-2] + pack_septets(bytes((0x61, 0x1B)))
    assert decode(raw, smsc=False).tp_ud.text == "a"  # type: ignore[union-attr]


def test_udh_errors() -> None:
    m = Deliver(
        tp_oa=Address("1"),
        tp_scts=T,
        tp_dcs=DataCoding(4),
        tp_ud=UserData((InformationElement(0, b"\x01\x02\x01"),), data=b"xyz"),
    )
    raw = bytearray(encode(m, smsc=False))
    udh_at = len(raw) - 3 - 6
    raw[udh_at] = 0x09  # UDHL beyond TP-UD
    with pytest.raises(PduError):
        decode(bytes(raw), smsc=False)
    raw[udh_at] = 0x05
    raw[udh_at + 2] = 0x09  # IE overruns the header: §9.2.3.24, whole UDH ignored
    ud = decode(bytes(raw), smsc=False).tp_ud
    assert ud is not None and ud.header == () and ud.data == b"xyz"


def test_invalid_concat_ignored() -> None:
    for data in (b"\x01\x00\x01", b"\x01\x02\x00", b"\x01\x02\x03"):
        ud = UserData((InformationElement(0, data),), "x")
        assert ud.concat is None
    ud = UserData((InformationElement(0, b"\x01\x02"), InformationElement(8, b"\x12\x34\x02\x01")))
    c = ud.concat
    assert c is not None and (c.ref, c.total, c.seq, c.ref16) == (0x1234, 2, 1, True)


def test_unknown_ies_kept() -> None:
    ies = (InformationElement(0x70, b""), InformationElement(0xA0, b"\x01\x02\x03"))
    m = Submit(tp_da=Address("1"), tp_ud=UserData(ies, "kept"))
    assert decode(encode(m)).tp_ud.header == ies  # type: ignore[union-attr]


def test_udl_limits_on_encode() -> None:
    with pytest.raises(PduError):
        encode(Submit(tp_da=Address("1"), tp_ud=UserData(text="a" * 161)))
    with pytest.raises(PduError):
        encode(Submit(tp_da=Address("1"), tp_dcs=DataCoding(4), tp_ud=UserData(data=b"a" * 141)))
    with pytest.raises(PduError):
        encode(Submit(tp_da=Address("1"), tp_dcs=DataCoding(8), tp_ud=UserData(text="ж" * 71)))
    with pytest.raises(PduError):
        encode(Submit(tp_da=Address("1"), tp_dcs=DataCoding(4), tp_ud=UserData(text="x")))
    with pytest.raises(PduError):
        encode(Submit(tp_da=Address("1"), tp_ud=UserData(data=b"x")))
    with pytest.raises(PduError):
        encode(Submit(tp_da=Address("1"), tp_mr=256))
    with pytest.raises(PduError):
        encode("not a message")  # type: ignore[arg-type]


def test_cmgs_pdu() -> None:
    s = Submit(tp_da=Address("2936"), tp_ud=UserData(text="ok"))
    hexstr, n = cmgs_pdu(s)
    assert hexstr == "00010004819263000002EF35"
    assert hexstr.startswith("00") and hexstr == hexstr.upper()
    assert n == len(bytes.fromhex(hexstr)) - 1
    s2 = Submit(tp_da=Address("2936"), smsc=Address("12063130004", 1, 1))
    hexstr2, n2 = cmgs_pdu(s2)
    assert hexstr2.startswith("07912160130300F4")
    assert n2 == len(bytes.fromhex(hexstr2)) - 8


def test_decode_wrong_type_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        decode(12345)  # type: ignore[arg-type]
