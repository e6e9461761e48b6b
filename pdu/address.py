"""Address fields: TP-OA, TP-DA, TP-RA and the SMSC address.

TS 23.040 §9.1.2.5: an address field is a length octet, a type-of-address
octet (bit 7 = 1, type of number in bits 6-4, numbering plan in bits 3-0) and
the address value in semi-octets (§9.1.2.3: first digit in the low nibble,
``F`` filler when the digit count is odd). For TP addresses the length counts
*useful semi-octets*; an alphanumeric address (type of number 101) holds GSM
7-bit packed text and its length is the number of semi-octets it occupies.
The SMSC address that ``AT+CMGR``/``AT+CMGL`` put before the TPDU (TS 27.005
§3.1, TS 24.011 §8.2.5.1 RP address) counts *octets*, including the
type-of-address octet; a length of 0 means no SMSC address.

Semi-octet values 0-9 are digits, A-E are ``* # a b c`` (§9.1.2.3); F is the
filler. §9.1.2.3: "If a mobile receives 1111 in a position prior to the last
semi-octet then processing shall commence with the next semi-octet and the
intervening semi-octet shall be ignored": an F among the counted semi-octets
(an address length that counts the filler, or an F inside the number) is
skipped, as libGammu does, instead of failing the whole message.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import alphabet, septets
from ._bits import SWAP
from .errors import PduError

#: Type of number (TS 23.040 §9.1.2.5, bits 6-4 of the type-of-address octet).
TON_UNKNOWN = 0
TON_INTERNATIONAL = 1
TON_NATIONAL = 2
TON_NETWORK_SPECIFIC = 3
TON_SUBSCRIBER = 4
TON_ALPHANUMERIC = 5
TON_ABBREVIATED = 6

#: Numbering plan identification (bits 3-0).
NPI_UNKNOWN = 0
NPI_ISDN = 1

#: TS 23.040 §9.1.2.5: a TP address field is at most 12 octets, i.e. 20 semi-octets.
MAX_ADDRESS_SEMI_OCTETS = 20
#: TS 24.011 §8.2.5.1: RP address value at most 11 octets (plus the type octet: 12).
MAX_SMSC_OCTETS = 12

_HEX_TO_DIGIT = str.maketrans("abcde", "*#abc")
_DIGIT_TO_HEX = str.maketrans("*#abcABC", "abcdecde")
_DIGITS = frozenset("0123456789*#abcABC")
_DIALABLE = frozenset("0123456789*#")
_SEPARATORS = str.maketrans("", "", " -.()")


@dataclass(frozen=True, slots=True)
class Address:
    """An SMS address (TS 23.040 §9.1.2.5).

    ``number`` holds the digits (``0-9 * # a b c``) without any ``+``, or the
    text of an alphanumeric address (``ton == 5``). ``str()`` gives ``+`` and
    the digits for an international number.
    """

    number: str
    ton: int = TON_UNKNOWN
    npi: int = NPI_ISDN

    @classmethod
    def parse(cls, s: str) -> Address:
        """``"+447..."`` → international/ISDN; digits, ``*`` and ``#`` → unknown
        TON/ISDN (short codes such as ``2936`` and ``000``); anything else →
        alphanumeric. Spaces, dashes, dots and parentheses between digits are
        ignored (``"+1 (555) 010-0000"``). The semi-octet letters ``a b c`` are
        accepted by :class:`Address` itself, not by ``parse`` (``"abc"`` is a
        name)."""
        if type(s) is str:  # hot paths: only ASCII digits, no separators
            if s[:1] == "+":  # "+4477..."
                digits = s[1:]
                if digits.isascii() and digits.isdigit():
                    return make_address(digits, TON_INTERNATIONAL, NPI_ISDN)
            elif s.isdigit() and s.isascii():  # short code "2936"
                return make_address(s, TON_UNKNOWN, NPI_ISDN)
        s = s.strip()
        if not s:
            raise PduError("empty address", field="TP-DA")
        compact = s.translate(_SEPARATORS)
        if compact[:1] == "+" and len(compact) > 1 and _DIALABLE.issuperset(compact[1:]):
            return make_address(compact[1:], TON_INTERNATIONAL, NPI_ISDN)
        if compact and _DIALABLE.issuperset(compact):
            return make_address(compact, TON_UNKNOWN, NPI_ISDN)
        return make_address(s, TON_ALPHANUMERIC, NPI_UNKNOWN)

    @property
    def type_octet(self) -> int:
        """The type-of-address octet (bit 7 always set)."""
        return 0x80 | (self.ton & 7) << 4 | (self.npi & 0x0F)

    @property
    def is_alphanumeric(self) -> bool:
        """Type of number 101: GSM 7-bit text (§9.1.2.5)."""
        return self.ton == TON_ALPHANUMERIC

    def __str__(self) -> str:
        if self.ton == TON_INTERNATIONAL and self.number:
            return "+" + self.number
        return self.number


_new = object.__new__
_set_number = Address.__dict__["number"].__set__
_set_ton = Address.__dict__["ton"].__set__
_set_npi = Address.__dict__["npi"].__set__


def make_address(number: str, ton: int, npi: int) -> Address:
    """Build an :class:`Address` without the dataclass ``__init__`` (decode hot
    path: the slot setters are C calls; the result is the same frozen value)."""
    a = _new(Address)
    _set_number(a, number)
    _set_ton(a, ton)
    _set_npi(a, npi)
    return a


def _digits_to_semi_octets(number: str, field: str) -> bytes:
    if number.startswith("+"):
        number = number[1:]
    if not _DIGITS.issuperset(number):
        raise PduError(f"address {number!r} has characters other than 0-9 * # a b c", field=field)
    h = number.translate(_DIGIT_TO_HEX)
    if len(h) & 1:
        h += "f"
    return bytes.fromhex(h).translate(SWAP)


def _semi_octets_to_digits(raw: bytes, count: int) -> str:
    """The first ``count`` semi-octets of ``raw`` as digits; an F among them is
    skipped (§9.1.2.3, module doc)."""
    s = raw.translate(SWAP).hex()[:count]
    if not s.isdigit():
        s = s.replace("f", "").translate(_HEX_TO_DIGIT)
    return s


def encode_address(addr: Address, field: str = "TP-DA") -> bytes:
    """A TP address field (§9.1.2.5): length in semi-octets, type, value."""
    number = addr.number
    ton = addr.ton
    if type(number) is str and number.isdigit() and number.isascii() and ton != TON_ALPHANUMERIC:
        # hot path: plain digits (no '+', no '*#abc'): no translation needed
        count = len(number)
        if count > MAX_ADDRESS_SEMI_OCTETS:
            raise PduError(f"address {number!r} longer than 20 digits", field=field)
        value = bytes.fromhex(number + "f" if count & 1 else number).translate(SWAP)
        return bytes((count, 0x80 | (ton & 7) << 4 | (addr.npi & 0x0F))) + value
    if ton == TON_ALPHANUMERIC:
        try:
            sept = alphabet.encode_gsm7(addr.number)
        except PduError as exc:  # name the address field, not TP-UD
            raise PduError(f"alphanumeric address: {exc.reason}", field=field) from None
        semi = (len(sept) * 7 + 3) // 4
        if semi > MAX_ADDRESS_SEMI_OCTETS:
            raise PduError(f"alphanumeric address {addr.number!r} too long", field=field)
        return bytes((semi, addr.type_octet)) + septets.pack_septets(sept)
    value = _digits_to_semi_octets(addr.number, field)
    count = len(addr.number) - addr.number.startswith("+")
    if count > MAX_ADDRESS_SEMI_OCTETS:
        raise PduError(f"address {addr.number!r} longer than 20 digits", field=field)
    return bytes((count, addr.type_octet)) + value


def decode_address(pdu: bytes, offset: int, field: str) -> tuple[Address, int]:
    """Decode a TP address field at ``offset``; return it and the offset after it."""
    if offset + 2 > len(pdu):
        raise PduError("address field truncated", field=field, offset=offset)
    count = pdu[offset]
    toa = pdu[offset + 1]
    if count > MAX_ADDRESS_SEMI_OCTETS:
        raise PduError(f"address length {count} exceeds 20 semi-octets", field=field, offset=offset)
    start = offset + 2
    end = start + ((count + 1) >> 1)
    if end > len(pdu):
        raise PduError("address value truncated", field=field, offset=offset)
    ton = (toa >> 4) & 7
    if ton == TON_ALPHANUMERIC:
        n = count * 4 // 7
        text = alphabet.decode_gsm7(septets.unpack_septets(pdu[start:end], n))
        return make_address(text, ton, toa & 0x0F), end
    number = _semi_octets_to_digits(pdu[start:end], count)
    return make_address(number, ton, toa & 0x0F), end


def encode_smsc(addr: Address | None) -> bytes:
    """The SMSC field (TS 24.011 §8.2.5.1 / TS 27.005 §3.1): length in octets; ``00`` = none."""
    if addr is None:
        return b"\x00"
    if addr.ton == TON_ALPHANUMERIC:
        raise PduError("an SMSC address cannot be alphanumeric", field="SMSC")
    value = _digits_to_semi_octets(addr.number, "SMSC")
    if len(value) + 1 > MAX_SMSC_OCTETS:
        raise PduError(f"SMSC address {addr.number!r} too long", field="SMSC")
    return bytes((len(value) + 1, addr.type_octet)) + value


def decode_smsc(pdu: bytes) -> tuple[Address | None, int]:
    """Decode the SMSC field at the start of ``pdu``; return it and the TPDU offset."""
    if not pdu:
        raise PduError("empty PDU", field="SMSC", offset=0)
    n = pdu[0]
    if n == 0:
        return None, 1
    if n > MAX_SMSC_OCTETS:
        raise PduError(f"SMSC length {n} exceeds {MAX_SMSC_OCTETS} octets", field="SMSC", offset=0)
    if n + 1 > len(pdu):
        raise PduError("SMSC field truncated", field="SMSC", offset=0)
    toa = pdu[1]
    raw = pdu[2 : n + 1]
    count = 2 * len(raw)
    if raw and (raw[-1] & 0xF0) == 0xF0:
        count -= 1
    number = _semi_octets_to_digits(raw, count)
    return make_address(number, (toa >> 4) & 7, toa & 0x0F), n + 1
