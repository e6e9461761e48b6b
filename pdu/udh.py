"""TP-UD and its user data header (3GPP TS 23.040 §9.2.3.16, §9.2.3.24).

The header is UDHL (one octet, the header length excluding itself) followed by
information elements (IEI, length, data). Elements this codec interprets:

* 0x00 concatenated short messages, 8-bit reference (§9.2.3.24.1)
* 0x08 concatenated short messages, 16-bit reference (§9.2.3.24.8)
* 0x04 application port addressing, 8-bit ports (§9.2.3.24.3)
* 0x05 application port addressing, 16-bit ports (§9.2.3.24.4)
* 0x24 national language single shift, 0x25 locking shift (§9.2.3.24.15/16)

Every other element is kept as a raw :class:`InformationElement` and
re-encoded unchanged. Header costs are named below: a header of ``H`` octets
(UDHL included) takes ``ceil(8H/7)`` septets of a GSM 7-bit message, the last
ones partly fill bits (§9.2.3.24).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import PduError

IEI_CONCAT8 = 0x00
IEI_PORTS8 = 0x04
IEI_PORTS16 = 0x05
IEI_CONCAT16 = 0x08
IEI_SINGLE_SHIFT = 0x24
IEI_LOCKING_SHIFT = 0x25

#: Octets of the UDHL field itself.
UDHL_COST = 1
#: Octets of each element, IEI and length octets included.
CONCAT8_COST = 5
CONCAT16_COST = 6
PORTS8_COST = 4
PORTS16_COST = 6
LANGUAGE_SHIFT_COST = 3

#: TS 23.040 §9.2.3.16: TP-UD is at most 140 octets, i.e. 160 septets.
MAX_UD_OCTETS = 140
MAX_UD_SEPTETS = 160


@dataclass(frozen=True, slots=True)
class InformationElement:
    """One user data header element (§9.2.3.24): identifier and raw data."""

    iei: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Concat:
    """Concatenated short message element (§9.2.3.24.1 8-bit, §9.2.3.24.8 16-bit ref)."""

    ref: int
    total: int
    seq: int
    ref16: bool = False

    def to_ie(self) -> InformationElement:
        """The element encoding this value; :class:`PduError` when out of range."""
        if not (1 <= self.total <= 255 and 1 <= self.seq <= self.total):
            raise PduError(f"bad concatenation {self.seq}/{self.total}", field="TP-UDH")
        if self.ref16:
            if not 0 <= self.ref <= 0xFFFF:
                raise PduError(f"16-bit reference {self.ref} out of range", field="TP-UDH")
            return InformationElement(
                IEI_CONCAT16, bytes((self.ref >> 8, self.ref & 0xFF, self.total, self.seq))
            )
        if not 0 <= self.ref <= 0xFF:
            raise PduError(f"8-bit reference {self.ref} out of range", field="TP-UDH")
        return InformationElement(IEI_CONCAT8, bytes((self.ref, self.total, self.seq)))


@dataclass(frozen=True, slots=True)
class Ports:
    """Application port addressing (§9.2.3.24.3 8-bit, §9.2.3.24.4 16-bit).

    On the wire the destination port comes first, then the originator port.
    """

    src: int
    dst: int
    wide: bool = True

    def to_ie(self) -> InformationElement:
        """The 16-bit (``wide``) or 8-bit element."""
        if self.wide:
            if not (0 <= self.src <= 0xFFFF and 0 <= self.dst <= 0xFFFF):
                raise PduError("port out of range 0-65535", field="TP-UDH")
            return InformationElement(
                IEI_PORTS16, self.dst.to_bytes(2, "big") + self.src.to_bytes(2, "big")
            )
        if not (0 <= self.src <= 0xFF and 0 <= self.dst <= 0xFF):
            raise PduError("8-bit port out of range 0-255", field="TP-UDH")
        return InformationElement(IEI_PORTS8, bytes((self.dst, self.src)))


def language_ie(single: int = 0, locking: int = 0) -> tuple[InformationElement, ...]:
    """National language shift elements (§9.2.3.24.15/16) for non-default tables."""
    ies = []
    if single:
        ies.append(InformationElement(IEI_SINGLE_SHIFT, bytes((single,))))
    if locking:
        ies.append(InformationElement(IEI_LOCKING_SHIFT, bytes((locking,))))
    return tuple(ies)


def concat_of(header: tuple[InformationElement, ...]) -> Concat | None:
    """The concatenation element in force, or None.

    §9.2.3.24: when a non-repeatable element is duplicated, or mutually
    exclusive ones occur (8-bit and 16-bit reference), the *last* one is used.
    §9.2.3.24.1/§9.2.3.24.8: an element with a total of 0, a sequence of 0 or a
    sequence above the total (or a wrong length) is ignored."""
    found = None
    for ie in header:
        d = ie.data
        if ie.iei == IEI_CONCAT8 and len(d) == 3 and 1 <= d[2] <= d[1]:
            found = Concat(d[0], d[1], d[2], False)
        elif ie.iei == IEI_CONCAT16 and len(d) == 4 and 1 <= d[3] <= d[2]:
            found = Concat((d[0] << 8) | d[1], d[2], d[3], True)
    return found


def ports_of(header: tuple[InformationElement, ...]) -> Ports | None:
    """The application port addressing element in force: the last 8-bit or
    16-bit one (§9.2.3.24: mutually exclusive elements, the last is used)."""
    found = None
    for ie in header:
        d = ie.data
        if ie.iei == IEI_PORTS16 and len(d) == 4:
            found = Ports(src=(d[2] << 8) | d[3], dst=(d[0] << 8) | d[1], wide=True)
        elif ie.iei == IEI_PORTS8 and len(d) == 2:
            found = Ports(src=d[1], dst=d[0], wide=False)
    return found


def languages_of(header: tuple[InformationElement, ...]) -> tuple[int, int]:
    """(locking, single) national language identifiers; 0 = default table."""
    locking = single = 0
    for ie in header:
        if ie.iei == IEI_LOCKING_SHIFT and len(ie.data) == 1:
            locking = ie.data[0]
        elif ie.iei == IEI_SINGLE_SHIFT and len(ie.data) == 1:
            single = ie.data[0]
    return locking, single


@dataclass(frozen=True, slots=True)
class UserData:
    """TP-UD (§9.2.3.24): header elements and the payload after the header.

    ``text`` is set for GSM 7-bit and UCS-2 coding, ``data`` for 8-bit data.
    ``ucs2_octets`` is set by the decoder for UCS-2: the payload octets as
    received, so that :class:`pdu.Reassembler` can rejoin a surrogate pair a
    sender split across two parts. It is not compared and not encoded.
    """

    header: tuple[InformationElement, ...] = ()
    text: str | None = None
    data: bytes | None = None
    ucs2_octets: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def concat(self) -> Concat | None:
        """The concatenation element, if any (invalid ones are ignored)."""
        return concat_of(self.header) if self.header else None

    @property
    def ports(self) -> Ports | None:
        """The application port addressing element, if any."""
        return ports_of(self.header) if self.header else None

    @property
    def languages(self) -> tuple[int, int]:
        """(locking, single) national language shift identifiers."""
        return languages_of(self.header) if self.header else (0, 0)


def encode_header(header: tuple[InformationElement, ...]) -> bytes:
    """UDHL and the elements; ``b""`` for an empty header."""
    if not header:
        return b""
    body = bytearray()
    for ie in header:
        if not 0 <= ie.iei <= 0xFF or len(ie.data) > 0xFF:
            raise PduError(f"bad information element {ie.iei!r}", field="TP-UDH")
        body.append(ie.iei)
        body.append(len(ie.data))
        body += ie.data
    if len(body) >= MAX_UD_OCTETS:
        raise PduError("user data header longer than TP-UD", field="TP-UDH")
    return bytes((len(body),)) + body


def header_octets(header: tuple[InformationElement, ...]) -> int:
    """Octets the header takes in TP-UD, UDHL included (0 for none)."""
    if not header:
        return 0
    return UDHL_COST + sum(2 + len(ie.data) for ie in header)


def decode_header(ud: bytes, offset: int) -> tuple[tuple[InformationElement, ...], int]:
    """Parse UDHL and the elements at the start of ``ud``; return them and the
    header length in octets (UDHL included). ``offset`` is for error reports.

    A UDHL beyond the user data is a :class:`PduError` (the text cannot be
    located). Elements that do not exactly fill UDHL (§9.2.3.24: "too few or
    too many octets in the final Information Element") make the *whole* header
    ignored, as the spec requires: no elements are returned, the text after
    UDHL still decodes."""
    if not ud:
        raise PduError("TP-UDHI set but TP-UD is empty", field="TP-UDH", offset=offset)
    end = 1 + ud[0]
    if end > len(ud):
        raise PduError(f"UDHL {ud[0]} exceeds the user data", field="TP-UDH", offset=offset)
    ies = []
    i = 1
    while i < end:
        if i + 2 > end or i + 2 + ud[i + 1] > end:
            return (), end  # malformed final element: whole header ignored
        j = i + 2 + ud[i + 1]
        ies.append(InformationElement(ud[i], ud[i + 2 : j]))
        i = j
    return tuple(ies), end
