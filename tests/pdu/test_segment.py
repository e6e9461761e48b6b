"""Segmentation: plan bounds, boundary vectors, parts built from the plan."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pdu import (
    Address,
    Alphabet,
    Deliver,
    PduError,
    Ports,
    Submit,
    UserData,
    capacity,
    decode,
    deliver_parts,
    encode,
    plan,
    submit_parts,
)
from pdu.alphabet import encode_gsm7
from pdu.segment import CONCAT8_SEPTETS, CONCAT16_SEPTETS, MAX_PARTS
from pdu.udh import CONCAT8_COST, CONCAT16_COST, PORTS8_COST, PORTS16_COST, UDHL_COST

T = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
CYR = "ж"  # UCS-2 only, one code unit
EMOJI = "😀"  # outside the BMP: a surrogate pair, two code units


def _units(part: Submit | Deliver) -> int:
    ud = part.tp_ud
    if part.tp_dcs.alphabet is Alphabet.GSM7:
        assert ud.text is not None
        return len(encode_gsm7(ud.text))
    if part.tp_dcs.alphabet is Alphabet.UCS2:
        assert ud.text is not None
        return len(ud.text.encode("utf-16-be")) // 2
    assert ud.data is not None
    return len(ud.data)


def test_named_capacities() -> None:
    assert CONCAT8_SEPTETS == 153
    assert CONCAT16_SEPTETS == 152
    for enc, single, c8, c16 in (
        (Alphabet.GSM7, 160, 153, 152),
        (Alphabet.DATA8, 140, 134, 133),
        (Alphabet.UCS2, 70, 67, 66),
    ):
        assert capacity(enc, 0) == single
        assert capacity(enc, UDHL_COST + CONCAT8_COST) == c8
        assert capacity(enc, UDHL_COST + CONCAT16_COST) == c16
    # Port headers: 16-bit ports alone 7 octets, with concatenation 12.
    assert capacity(Alphabet.GSM7, UDHL_COST + PORTS16_COST) == 152
    assert capacity(Alphabet.GSM7, UDHL_COST + PORTS16_COST + CONCAT8_COST) == 146
    assert capacity(Alphabet.DATA8, UDHL_COST + PORTS8_COST) == 135
    assert capacity(Alphabet.UCS2, UDHL_COST + PORTS16_COST + CONCAT8_COST) == 64


@pytest.mark.parametrize(
    ("content", "encoding", "parts", "per_part", "left"),
    [
        ("a" * 160, Alphabet.GSM7, 1, 160, 0),
        ("a" * 161, Alphabet.GSM7, 2, 153, 145),
        ("a" * 306, Alphabet.GSM7, 2, 153, 0),
        ("a" * 307, Alphabet.GSM7, 3, 153, 152),
        ("a" * 159 + "€", Alphabet.GSM7, 2, 153, 153 - 8),  # 161 septets
        ("a" * 158 + "€", Alphabet.GSM7, 1, 160, 0),  # exactly 160
        (b"\x00" * 140, Alphabet.DATA8, 1, 140, 0),
        (b"\x00" * 141, Alphabet.DATA8, 2, 134, 127),
        (b"\x00" * 268, Alphabet.DATA8, 2, 134, 0),
        (b"\x00" * 269, Alphabet.DATA8, 3, 134, 133),
        (CYR * 70, Alphabet.UCS2, 1, 70, 0),
        (CYR * 71, Alphabet.UCS2, 2, 67, 63),
        (CYR * 134, Alphabet.UCS2, 2, 67, 0),
        (EMOJI * 35, Alphabet.UCS2, 1, 70, 0),
        (EMOJI * 36, Alphabet.UCS2, 2, 67, 67 - 6),  # pairs never split: 33 + 3
        ("", Alphabet.GSM7, 1, 160, 160),
    ],
)
def test_plan_bounds(
    content: str | bytes, encoding: Alphabet, parts: int, per_part: int, left: int
) -> None:
    p = plan(content)
    assert p.encoding is encoding
    assert p.parts == parts
    assert p.units_per_part == per_part
    assert p.units_left == left
    assert p.fits_in_one_sms is (parts == 1)


def test_plan_16bit_ref_and_ports() -> None:
    assert plan("a" * 161, ref16=True).units_per_part == 152
    assert plan(b"x" * 141, ref16=True).units_per_part == 133
    assert plan(CYR * 71, ref16=True).units_per_part == 66
    p = plan("a" * 152, ports=Ports(1, 2))
    assert (p.parts, p.units_per_part, p.header_octets) == (1, 152, 7)
    p = plan("a" * 153, ports=Ports(1, 2))
    assert (p.parts, p.units_per_part, p.header_octets) == (2, 146, 12)
    p = plan(b"x" * 135, ports=Ports(1, 2, wide=False))
    assert (p.parts, p.units_per_part) == (1, 135)


def test_plan_units_count_extension_chars() -> None:
    p = plan("{}[]")
    assert p.units == 8
    assert p.units_left == 152


def test_forced_encodings() -> None:
    assert plan("abc", encoding=Alphabet.UCS2).units_per_part == 70
    with pytest.raises(PduError):
        plan("ж", encoding=Alphabet.GSM7)
    with pytest.raises(PduError):
        plan("abc", encoding=Alphabet.DATA8)
    with pytest.raises(PduError):
        plan(b"abc", encoding=Alphabet.GSM7)
    with pytest.raises(PduError):
        plan("\ud800")  # lone surrogate cannot be sent


def test_max_parts() -> None:
    assert plan("a" * 153 * MAX_PARTS).parts == MAX_PARTS
    with pytest.raises(PduError):
        plan("a" * (153 * MAX_PARTS + 1))
    with pytest.raises(PduError):
        plan("€" * (76 * MAX_PARTS + 1))


def _check_parts(parts: list[Submit], content: str | bytes) -> None:
    """Parts join to the content, each within capacity and maximal."""
    p = plan(content)
    assert len(parts) == p.parts
    joined: str | bytes = (
        "".join(x.tp_ud.text or "" for x in parts)
        if isinstance(content, str)
        else b"".join(x.tp_ud.data or b"" for x in parts)
    )
    assert joined == content
    for i, part in enumerate(parts):
        assert decode(encode(part)) == part
        assert _units(part) <= p.units_per_part
        if len(parts) > 1:
            c = part.tp_ud.concat
            assert c is not None
            assert (c.total, c.seq) == (len(parts), i + 1)
        if i < len(parts) - 1:
            nxt = parts[i + 1]
            first = (nxt.tp_ud.text or "")[:1] if isinstance(content, str) else b"x"
            cost = 1
            if isinstance(first, str):
                cost = (
                    len(encode_gsm7(first))
                    if p.encoding is Alphabet.GSM7
                    else len(first.encode("utf-16-be")) // 2
                )
            assert _units(part) + cost > p.units_per_part, "part not maximal"


@pytest.mark.parametrize("pos", range(145, 162))
def test_escape_at_every_boundary_position(pos: int) -> None:
    text = "a" * pos + "€" + "b" * 200
    parts = submit_parts("+15551234567", text)
    _check_parts(parts, text)
    for part in parts:
        assert not (part.tp_ud.text or "").endswith("\x1b")


@pytest.mark.parametrize("pos", range(60, 72))
def test_surrogate_pair_at_every_boundary_position(pos: int) -> None:
    text = CYR * pos + EMOJI + CYR * 80
    parts = submit_parts("+15551234567", text)
    _check_parts(parts, text)
    for part in parts:
        raw = encode(part)
        assert decode(raw).tp_ud.text == part.tp_ud.text  # no U+FFFD: pair not split
        assert "\ufffd" not in (decode(raw).tp_ud.text or "")


@pytest.mark.parametrize("n", [1, 133, 134, 135, 140, 141, 268, 269, 1000])
def test_binary_parts(n: int) -> None:
    data = bytes(i & 0xFF for i in range(n))
    _check_parts(submit_parts("2936", data), data)


@pytest.mark.parametrize("n", [1, 152, 153, 154, 159, 160, 161, 306, 307, 459, 460])
def test_gsm7_parts(n: int) -> None:
    text = ("0123456789" * 50)[:n]
    _check_parts(submit_parts("2936", text), text)


@pytest.mark.parametrize("n", [66, 67, 68, 69, 70, 71, 134, 135])
def test_ucs2_parts(n: int) -> None:
    text = CYR * n
    _check_parts(submit_parts("2936", text), text)


def test_submit_parts_fields() -> None:
    parts = submit_parts("+447700900123", "x" * 200, srr=True, mr=255, ref=7)
    assert [p.tp_mr for p in parts] == [255, 0]
    assert all(p.tp_srr for p in parts)
    assert {p.tp_ud.concat.ref for p in parts if p.tp_ud.concat} == {7}
    assert str(parts[0].tp_da) == "+447700900123"
    with pytest.raises(PduError):
        submit_parts("2936", "x" * 200, ref=256)
    wide = submit_parts("2936", "x" * 200, ref=0xBEEF, ref16=True)
    assert wide[1].tp_ud.concat is not None and wide[1].tp_ud.concat.ref16


def test_deliver_parts_round_trip() -> None:
    parts = deliver_parts("000", "y" * 400, scts=T, ref=9)
    assert len(parts) == 3
    for p in parts:
        assert decode(encode(p)) == p
        assert p.tp_scts == T


# -- fill bits, 39/40 septets ------------------------------------------------


@pytest.mark.parametrize("extra", range(7))
def test_every_fill_bit_count(extra: int) -> None:
    """Headers of 3..9 octets give fill bits 4,3,2,1,0,6,5: all seven counts."""
    from pdu import InformationElement
    from pdu.septets import pack_septets

    h = 3 + extra
    fill = (7 - (h * 8) % 7) % 7
    ie = InformationElement(0x70, bytes(range(extra)))
    text = "Fill@test{}"
    msg = Submit(tp_da=Address("2936"), tp_ud=UserData((ie,), text))
    raw = encode(msg, smsc=False)
    sept = encode_gsm7(text)
    header_septets = (h * 8 + fill) // 7
    # TP-UDL counts header septets (fill included) plus text septets.
    udl_at = len(raw) - (h + len(pack_septets(sept, fill))) - 1
    assert raw[udl_at] == header_septets + len(sept)
    assert raw[udl_at + 1 + h :] == pack_septets(sept, fill)
    assert decode(raw, smsc=False) == msg


def test_39_and_40_septets_same_octets() -> None:
    a = Submit(tp_da=Address("2936"), tp_ud=UserData(text="x" * 39))
    b = Submit(tp_da=Address("2936"), tp_ud=UserData(text="x" * 39 + "@"))
    ra, rb = encode(a), encode(b)
    assert len(ra) == len(rb)
    assert ra[-36] == 39 and rb[-36] == 40  # TP-UDL, then 35 octets of TP-UD
    assert decode(rb) == b
    assert decode(ra) == a


# -- national language shift tables (TS 23.038 §6.2.1.2.4, TS 23.040 §9.2.3.24.15/16) --


def test_turkish_shift_tables_plan_and_round_trip() -> None:
    text = "Şişli'de ğüzel çay"  # needs the Turkish tables
    assert plan(text).encoding is Alphabet.UCS2
    p = plan(text, locking=1, single=1)
    assert p.encoding is Alphabet.GSM7
    # Two language elements: UDHL 1 + 3 + 3 = 7 octets -> 152 septets in one part.
    assert (p.header_octets, p.units_per_part) == (7, 152)
    (part,) = submit_parts("2936", text, locking=1, single=1)
    assert part.tp_ud.languages == (1, 1)
    assert decode(encode(part)) == part
    long = submit_parts("2936", text * 10, locking=1, single=1)
    assert plan(text * 10, locking=1, single=1).units_per_part == 160 - (12 * 8 + 6) // 7
    assert "".join(x.tp_ud.text or "" for x in long) == text * 10
    for x in long:
        assert decode(encode(x)) == x


def test_unknown_language_falls_back_on_decode_and_fails_on_encode() -> None:
    from pdu import InformationElement

    # Same-sized placeholder elements, then patched to language shifts 0x7F.
    ies = (InformationElement(0x70, b"\x01"), InformationElement(0x71, b"\x02"))
    raw = encode(Submit(tp_da=Address("1"), tp_ud=UserData(ies, "abc")))
    at = raw.index(bytes((0x70, 1, 1, 0x71, 1, 2)))
    pdu_ = raw[:at] + bytes((0x25, 1, 0x7F, 0x24, 1, 0x7F)) + raw[at + 6 :]
    msg = decode(pdu_)
    assert msg.tp_ud.text == "abc"  # type: ignore[union-attr]
    assert msg.tp_ud.languages == (0x7F, 0x7F)  # type: ignore[union-attr]
    with pytest.raises(PduError):
        encode(msg)
    with pytest.raises(PduError):
        plan("abc", locking=0x7F)


def test_plan_fill_bits() -> None:
    assert plan("a" * 10).fill_bits == 0  # no header
    assert plan("a" * 200).fill_bits == 1  # 6-octet header: 48 bits + 1 = 7 septets
    assert plan("a" * 200, ref16=True).fill_bits == 0  # 7 octets = 8 septets exactly
    assert plan(b"x" * 200).fill_bits == 0
