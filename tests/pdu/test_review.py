"""Regression tests from the adversarial review of ``pdu`` (one per finding).

Each test names the clause the behaviour comes from. These failed before the
fixes: last concatenation/port element, malformed final IE, ``--ref`` range,
compressed-DCS offset, alphanumeric address field name, validity period type,
TP-PI reserved bits, empty international address. The others guard
simplifications (the 1990s years, header costs) and check the
decode-or-PduError contract exhaustively on every truncation and octet value.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pdu import (
    Address,
    Concat,
    DataCoding,
    Deliver,
    InformationElement,
    PduError,
    Ports,
    Reassembler,
    UserData,
    decode,
    encode,
    to_json,
)
from pdu.cli import main
from pdu.timestamps import decode_timestamp, encode_timestamp

from .vectors import VECTORS

T = datetime(2024, 5, 17, 9, 30, 15, tzinfo=UTC)
IE = InformationElement


def _deliver(ud: UserData, dcs: int = 0) -> bytes:
    return encode(Deliver(tp_oa=Address("2936"), tp_scts=T, tp_dcs=DataCoding(dcs), tp_ud=ud))


# -- TS 23.040 §9.2.3.24: duplicated / mutually exclusive elements: the last wins --


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ((IE(0, b"\x01\x02\x01"), IE(0, b"\x07\x03\x02")), Concat(7, 3, 2)),
        ((IE(0, b"\x01\x02\x01"), IE(8, b"\x12\x34\x02\x02")), Concat(0x1234, 2, 2, True)),
        ((IE(8, b"\x12\x34\x02\x02"), IE(0, b"\x01\x02\x01")), Concat(1, 2, 1)),
        # an invalid last element is ignored (§9.2.3.24.1): the last usable one counts
        ((IE(0, b"\x01\x02\x01"), IE(0, b"\x09\x00\x01")), Concat(1, 2, 1)),
    ],
)
def test_last_concat_element_wins(header: tuple[IE, ...], expected: Concat) -> None:
    assert UserData(header, "x").concat == expected
    msg = decode(_deliver(UserData(header, "x")))
    assert msg.tp_ud is not None and msg.tp_ud.concat == expected
    c = to_json(msg)["concat"]
    assert c == {"ref": expected.ref, "total": expected.total, "seq": expected.seq}


def test_last_ports_element_wins() -> None:
    p16 = Ports(src=1000, dst=2000)
    p8 = Ports(src=1, dst=2, wide=False)
    assert UserData((p16.to_ie(), p8.to_ie()), data=b"").ports == p8
    assert UserData((p8.to_ie(), p16.to_ie()), data=b"").ports == p16
    assert UserData((p16.to_ie(), Ports(5, 6).to_ie()), data=b"").ports == Ports(5, 6)


def test_reassembly_uses_the_last_concat_element() -> None:
    # A stale 8-bit element first, the real 16-bit one last (§9.2.3.24).
    r = Reassembler()
    out = None
    for seq, text in ((2, "world"), (1, "hello ")):
        header = (IE(0, b"\x01\x02\x01"), IE(8, bytes((0x12, 0x34, 2, seq))))
        out = r.add(decode(_deliver(UserData(header, text))), now=0.0)  # type: ignore[arg-type]
    assert out is not None and out.text == "hello world"


# -- TS 23.040 §9.2.3.24: "too few or too many octets in the final Information
# -- Element": the whole header is ignored, the message still decodes ---------


@pytest.mark.parametrize("dcs", [0x00, 0x04, 0x08])
@pytest.mark.parametrize("overrun", [1, 5, 200])
def test_malformed_final_ie_ignores_whole_header(dcs: int, overrun: int) -> None:
    header = (IE(0x70, b"\xaa\xbb"), IE(0, b"\x01\x02\x01"))  # UDHL 9
    ud = UserData(header, data=b"xyz") if dcs == 0x04 else UserData(header, "hello")
    raw = bytearray(_deliver(ud, dcs))
    udh_at = raw.index(bytes((9, 0x70, 2, 0xAA)))
    raw[udh_at + 5 + 1] = 3 + overrun  # concat element claims more than UDHL holds
    msg = decode(bytes(raw))
    assert msg.tp_ud is not None and msg.tp_ud.header == () and msg.tp_ud.concat is None
    if dcs == 0x04:
        assert msg.tp_ud.data == b"xyz"
    else:
        assert msg.tp_ud.text == "hello"


def test_final_ie_without_length_octet_ignores_header() -> None:
    # UDHL 4: a 2-octet element and a lone IEI (too few octets in the final IE).
    raw = bytearray(_deliver(UserData((IE(0x70, b""), IE(0x71, b"")), data=b"ab"), 0x04))
    udh_at = raw.index(bytes((4, 0x70, 0, 0x71, 0)))
    raw[udh_at] = 3
    raw[udh_at + 4 :] = b"ab"
    raw[udh_at - 1] = 6  # TP-UDL: UDHL + 3 header octets + "ab"
    msg = decode(bytes(raw))
    assert msg.tp_ud is not None and msg.tp_ud.header == () and msg.tp_ud.data == b"ab"


def test_udhl_beyond_user_data_is_still_an_error() -> None:
    raw = bytearray(_deliver(UserData((IE(0x70, b"\x01"),), data=b"ab"), 0x04))
    udh_at = raw.index(bytes((3, 0x70, 1, 1)))
    raw[udh_at] = 9
    with pytest.raises(PduError) as e:
        decode(bytes(raw))
    assert e.value.field == "TP-UDH" and e.value.offset is not None


# -- TS 23.040 §9.2.3.11: the 1990s (two-digit years 90-99) ------------------------


@pytest.mark.parametrize("year", [1990, 1999, 2000, 2089])
def test_timestamp_year_round_trip(year: int) -> None:
    t = datetime(year, 2, 28, 23, 59, 59, tzinfo=timezone(timedelta(hours=-3)))
    wire = encode_timestamp(t, "TP-SCTS")
    assert wire[0] == ((year % 10) << 4) | (year // 10 % 10)
    assert decode_timestamp(wire, 0, "TP-SCTS") == t


# -- exhaustive damage: every prefix and every octet value at every position --------


@pytest.mark.parametrize("name", ["dreamfabric-deliver", "dreamfabric-submit"])
def test_every_truncation_and_octet_substitution(name: str) -> None:
    v = next(v for v in VECTORS if v.name == name)
    good = bytes.fromhex(v.hex)
    cases = [good[:n] for n in range(len(good))]
    for i in range(len(good)):
        for b in range(256):
            cases.append(good[:i] + bytes((b,)) + good[i + 1 :])
    for raw in cases:
        for smsc in (True, False):
            try:
                msg = decode(raw, smsc=smsc)
            except PduError:
                continue
            to_json(msg)
            try:
                again = encode(msg, smsc=smsc)
            except PduError:
                continue
            assert decode(again, smsc=smsc) == msg


# -- CLI: an out-of-range option value is bad usage (exit 2) ---------------------


@pytest.mark.parametrize("ref", ["256", "-1", "x"])
def test_cli_bad_ref_is_usage_error(ref: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    code = main(["encode", "--to", "2936", "--ref", ref, "hi"], stdin=io.StringIO(), stdout=out)
    assert code == 2 and out.getvalue() == ""
    assert "--ref" in capsys.readouterr().err


# -- one PduError naming field *and* offset (compressed text had no offset) -------


def test_compressed_error_names_the_dcs_offset() -> None:
    from pdu import StatusReport, Submit

    deliver = bytearray(_deliver(UserData(text="hi")))
    dcs_at = 1 + 1 + 4 + 1  # SMSC 00, first octet, TP-OA "2936" (4 octets), TP-PID
    assert deliver[dcs_at] == 0x00
    deliver[dcs_at] = 0x20  # general group, compressed, GSM 7-bit
    with pytest.raises(PduError) as e:
        decode(bytes(deliver))
    assert (e.value.field, e.value.offset) == ("TP-DCS", dcs_at)

    submit = bytearray(encode(Submit(tp_da=Address("2936"), tp_ud=UserData(text="hi"))))
    dcs_at = 1 + 2 + 4 + 1  # SMSC, first octet + TP-MR, TP-DA, TP-PID
    submit[dcs_at] = 0x60  # auto-deletion group, compressed
    with pytest.raises(PduError) as e:
        decode(bytes(submit))
    assert (e.value.field, e.value.offset) == ("TP-DCS", dcs_at)

    sr = StatusReport(
        tp_mr=1, tp_ra=Address("2936"), tp_scts=T, tp_dt=T, tp_st=0,
        tp_dcs=DataCoding(0), tp_ud=UserData(text="hi"),
    )  # fmt: skip
    raw = bytearray(encode(sr))
    dcs_at = 1 + 2 + 4 + 14 + 1 + 1  # ..., TP-RA, TP-SCTS, TP-DT, TP-ST, TP-PI
    assert raw[dcs_at - 1] == 0x06
    raw[dcs_at] = 0x24
    with pytest.raises(PduError) as e:
        decode(bytes(raw))
    assert (e.value.field, e.value.offset) == ("TP-DCS", dcs_at)


def test_bad_alphanumeric_address_names_the_address_field() -> None:
    with pytest.raises(PduError) as e:
        encode(Deliver(tp_oa=Address.parse("Ab✓"), tp_scts=T))
    assert e.value.field == "TP-OA"
    with pytest.raises(PduError) as e:
        encode(Deliver(tp_oa=Address("x" * 12, ton=5), tp_scts=T))  # 84 bits > 20 semi-octets
    assert e.value.field == "TP-OA"


def test_unsupported_validity_period_type_is_a_pdu_error() -> None:
    # TS 23.040 §9.2.3.12 has three formats; anything else used to escape as
    # AttributeError from encode().
    from pdu import Submit

    bad = Submit(tp_da=Address("2936"), tp_vp=300)  # type: ignore[arg-type]
    with pytest.raises(PduError) as e:
        encode(bad)
    assert e.value.field == "TP-VP"


# -- national language shifts and ports: header cost, capacity, fill bits -----------


@pytest.mark.parametrize("locking", [0, 1, 3])
@pytest.mark.parametrize("single", [0, 1, 2, 3])
@pytest.mark.parametrize("ports", [None, Ports(1, 2, wide=False), Ports(1000, 2000)])
@pytest.mark.parametrize("ref16", [False, True])
def test_plan_header_costs_with_language_shifts(
    locking: int, single: int, ports: Ports | None, ref16: bool
) -> None:
    from pdu import plan, submit_parts

    base = 3 * bool(locking) + 3 * bool(single) + (0 if ports is None else 4 + 2 * ports.wide)
    base += 1 if base else 0  # UDHL
    one = plan("a", locking=locking, single=single, ports=ports, ref16=ref16)
    assert one.header_octets == base
    assert one.units_per_part == (140 - base) * 8 // 7
    multi_octets = base + (6 if ref16 else 5) + (0 if base else 1)
    text = "a" * 400
    p = plan(text, locking=locking, single=single, ports=ports, ref16=ref16)
    assert p.parts > 1 and p.header_octets == multi_octets
    assert p.units_per_part == (140 - multi_octets) * 8 // 7
    assert p.fill_bits == (7 - multi_octets * 8 % 7) % 7
    parts = submit_parts("2936", text, locking=locking, single=single, ports=ports, ref16=ref16)
    for part in parts[:-1]:  # every full part uses all 160 septets, 140 octets
        tpdu = encode(part, smsc=False)
        assert tpdu[8] == 160  # TP-UDL after first octet, TP-MR, TP-DA (4), TP-PID, TP-DCS
        assert len(tpdu) - 9 == 140
        assert decode(tpdu, smsc=False) == part


# -- §9.2.3.27: a TP-PI with reserved bits set is not processed -------------------

_SR = "06050B911346610089F6208062917314082080629173140800"  # ... TP-ST 00, no TP-PI


@pytest.mark.parametrize("tail", ["FF", "7F", "78", "7F4142", "FF00", "C7"])
def test_status_report_tp_pi_with_reserved_bits_is_ignored(tail: str) -> None:
    from pdu import StatusReport

    msg = decode(_SR + tail, smsc=False)
    assert isinstance(msg, StatusReport)
    assert (msg.tp_pid, msg.tp_dcs, msg.tp_ud) == (None, None, None)
    assert (msg.tp_mr, str(msg.tp_ra), msg.tp_st) == (5, "+31641600986", 0)
    assert to_json(msg)["status"] == 0


@pytest.mark.parametrize(("tail", "field"), [("01", "TP-PID"), ("06", "TP-DCS"), ("81", "TP-PI")])
def test_status_report_tp_pi_promising_absent_fields_is_an_error(tail: str, field: str) -> None:
    with pytest.raises(PduError) as e:
        decode(_SR + tail, smsc=False)
    assert e.value.field == field and e.value.offset == len(_SR) // 2 + 1


def test_empty_international_address_prints_empty() -> None:
    # §9.1.2.5: an address length of 0 is legal; "+" alone is not a number.
    msg = decode("04" + "0091" + "0000" + "20806291731408" + "00", smsc=False)
    assert isinstance(msg, Deliver) and msg.tp_oa == Address("", 1, 1)
    assert str(msg.tp_oa) == "" and to_json(msg)["sender"] == ""
    assert str(Address("447700900123", 1, 1)) == "+447700900123"
