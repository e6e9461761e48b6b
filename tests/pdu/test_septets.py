"""Septet packing (3GPP TS 23.038 §6.1.2.1.1) and fill bits (TS 23.040 §9.2.3.24)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdu.alphabet import decode_gsm7, encode_gsm7
from pdu.errors import PduError
from pdu.septets import pack_septets, packed_length, unpack_septets


def reference_pack(septets: bytes, fill_bits: int = 0) -> bytes:
    """Bit-by-bit packing, least significant bit first, straight from §6.1.2.1.1."""
    bits = [0] * fill_bits
    for s in septets:
        bits.extend((s >> i) & 1 for i in range(7))
    bits.extend([0] * (-len(bits) % 8))
    return bytes(sum(bits[i + j] << j for j in range(8)) for i in range(0, len(bits), 8))


septet_values = st.binary(max_size=300).map(lambda b: bytes(x & 0x7F for x in b))


# (text, fill bits, packed hex, source)
VECTORS = [
    # The classic worked example of the §6.1.2.1.1 packing rule, reproduced in
    # many PDU guides (and in smspdudecoder's doctests).
    ("hellohello", 0, "E8329BFD4697D9EC37", "'hellohello', 10 septets -> 9 octets"),
    # 'H' is 0x48: only the first octet differs from the 'hello' example.
    ("Hello", 0, "C8329BFD06", "'Hello', 5 septets -> 5 octets"),
    # Also a doctest vector of smspdudecoder ('1234567' is 31D98C56B3DD00).
    ("12345678", 0, "31D98C56B3DD70", "8 septets fill exactly 7 octets"),
    ("1234567", 0, "31D98C56B3DD00", "7 septets leave 7 spare bits"),
    # After a 6-octet concatenation UDH: 48 bits + 1 fill bit = 7 septets.
    ("Hello", 1, "906536FB0D", "'Hello' after 1 fill bit (by hand: C8329BFD06 << 1)"),
    ("@", 6, "0000", "one zero septet after 6 fill bits: 13 bits -> 2 octets"),
]


@pytest.mark.parametrize(("text", "fill", "packed", "what"), VECTORS, ids=[v[3] for v in VECTORS])
def test_vectors(text, fill, packed, what):
    septets = encode_gsm7(text)
    expected = bytes.fromhex(packed)
    assert pack_septets(septets, fill) == expected
    assert pack_septets(septets, fill) == reference_pack(septets, fill)
    assert decode_gsm7(unpack_septets(expected, len(septets), fill)) == text


@pytest.mark.parametrize(
    ("count", "fill", "octets"),
    [
        (0, 0, 0),
        (1, 0, 1),
        (7, 0, 7),
        (8, 0, 7),
        (9, 0, 8),
        (39, 0, 35),
        (40, 0, 35),
        (41, 0, 36),
        (153, 1, 134),  # + 6-octet concatenation UDH = 140
        (152, 0, 133),  # + 7-octet UDH (16-bit concatenation reference) = 140
        (142, 6, 125),  # + 15-octet UDH: 120 bits + 6 fill bits = 18 septets
        (160, 0, 140),
        (0, 1, 1),
        (1, 1, 1),
        (1, 2, 2),
    ],
)
def test_packed_length(count, fill, octets):
    assert packed_length(count, fill) == octets
    assert len(pack_septets(bytes(count), fill)) == octets


def test_39_and_40_septets_share_35_octets():
    s39 = encode_gsm7("a" * 39)
    s40 = encode_gsm7("a" * 40)
    p39 = pack_septets(s39)
    p40 = pack_septets(s40)
    assert len(p39) == len(p40) == 35
    # The 7 spare bits of the 39-septet form are zero, so read as 40 septets
    # they show an extra '@' (0x00): only TP-UDL tells the two apart (TS 23.038
    # §6.1.2.3.1 pads with CR for channels that have no length, e.g. USSD).
    assert p39[-1] >> 1 == 0
    assert unpack_septets(p39, 39) == s39
    assert unpack_septets(p39, 40) == s39 + b"\x00"
    assert unpack_septets(p40, 40) == s40


@pytest.mark.parametrize("fill", range(7))
@given(septets=septet_values)
def test_round_trip_all_fill_bits(fill, septets):
    packed = pack_septets(septets, fill)
    assert packed == reference_pack(septets, fill)
    assert len(packed) == packed_length(len(septets), fill)
    assert unpack_septets(packed, len(septets), fill) == septets
    # The fill bits are zero.
    if packed:
        assert packed[0] & ((1 << fill) - 1) == 0


@pytest.mark.parametrize("fill", range(7))
@given(septets=septet_values, junk=st.binary(max_size=4), high=st.integers(0, 255))
def test_unpack_ignores_unused_bits_and_trailing_octets(fill, septets, junk, high):
    packed = bytearray(pack_septets(septets, fill))
    used = (len(septets) * 7 + fill) % 8
    if packed and used:
        packed[-1] |= (high << used) & 0xFF  # garbage in the spare high bits
    if packed and fill:
        packed[0] |= high & ((1 << fill) - 1)  # garbage in the fill bits
    assert unpack_septets(bytes(packed) + junk, len(septets), fill) == septets


@pytest.mark.parametrize("fill", range(7))
@given(data=st.binary(max_size=160), count=st.integers(0, 200))
def test_unpack_arbitrary_octets_returns_or_raises_pdu_error(fill, data, count):
    try:
        septets = unpack_septets(data, count, fill)
    except PduError:
        assert packed_length(count, fill) > len(data)
    else:
        assert len(septets) == count
        assert septets.isascii()


@pytest.mark.parametrize(
    ("count", "fill", "have"), [(8, 0, 6), (9, 0, 7), (1, 0, 0), (8, 1, 7), (160, 0, 139)]
)
def test_unpack_too_short_raises(count, fill, have):
    with pytest.raises(PduError, match="need"):
        unpack_septets(bytes(have), count, fill)


def test_unpack_bad_arguments_raise():
    with pytest.raises(PduError):
        unpack_septets(b"\x00", -1)
    for fill in (-1, 7, 8):
        with pytest.raises(PduError):
            unpack_septets(b"\x00" * 10, 1, fill)
        with pytest.raises(PduError):
            pack_septets(b"a", fill)


def test_pack_rejects_eight_bit_values():
    with pytest.raises(PduError, match="0x80"):
        pack_septets(b"ab\x80")
    with pytest.raises(PduError, match="0xff"):
        pack_septets(b"\xff")


def test_accepts_bytearray_and_memoryview():
    septets = encode_gsm7("hellohello")
    packed = pack_septets(bytearray(septets))
    assert packed == bytes.fromhex("E8329BFD4697D9EC37")
    assert unpack_septets(memoryview(packed), 10) == septets
    assert unpack_septets(bytearray(packed), 10) == septets
