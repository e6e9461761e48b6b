"""TP-DCS, the data coding scheme (3GPP TS 23.038 §4, TS 23.040 §9.2.3.10).

Coding groups (bits 7-4):

* ``00xx`` general data coding: bit 5 = compressed (TS 23.042), bit 4 = bits
  1-0 carry a message class, bits 3-2 = alphabet (00 GSM 7-bit, 01 8-bit data,
  10 UCS-2, 11 reserved).
* ``01xx`` message marked for automatic deletion; otherwise as ``00xx``.
* ``1000``-``1011`` reserved coding groups.
* ``1100`` message waiting indication, discard message (GSM 7-bit);
  ``1101`` MWI, store message (GSM 7-bit); ``1110`` MWI, store message (UCS-2).
  Bit 3 = indication active, bits 1-0 = type (voicemail, fax, e-mail, other).
* ``1111`` data coding / message class: bit 2 = 8-bit data (else GSM 7-bit),
  bits 1-0 = message class.

Decision (TS 23.038 §4, last paragraph: "Any reserved codings shall be assumed
to be the GSM 7 bit default alphabet (the same as codepoint 00000000) by a
receiving entity"): reserved groups 1000-1011 and the reserved alphabet 11 of
the general groups decode as GSM 7-bit, no class. Compressed text is refused
with :class:`PduError` when the user data is decoded.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .errors import PduError


class Alphabet(enum.StrEnum):
    """The three character sets of TS 23.038 §4 (bits 3-2 of the general group)."""

    GSM7 = "gsm7"
    DATA8 = "8bit"
    UCS2 = "ucs2"


#: Message waiting indication types (TS 23.038 §4, groups 1100-1110, bits 1-0).
MWI_TYPES = ("voicemail", "fax", "email", "other")
#: Message classes (TS 23.038 §4): meaning of class 0-3.
CLASS_MEANINGS = (
    "class 0 (flash, immediate display)",
    "class 1 (ME specific)",
    "class 2 (SIM/USIM specific)",
    "class 3 (TE specific)",
)

_NAMES = {
    Alphabet.GSM7: "GSM 7-bit default alphabet",
    Alphabet.DATA8: "8-bit data",
    Alphabet.UCS2: "UCS-2 (UTF-16)",
}
_ALPHABET_BITS = {Alphabet.GSM7: 0x00, Alphabet.DATA8: 0x04, Alphabet.UCS2: 0x08}
_ALPHABETS = (Alphabet.GSM7, Alphabet.DATA8, Alphabet.UCS2, Alphabet.GSM7)


def _info(v: int) -> tuple[Alphabet, int | None, bool]:
    group = v >> 4
    if group < 8:  # 00xx and 01xx
        cls = v & 3 if v & 0x10 else None
        return _ALPHABETS[(v >> 2) & 3], cls, bool(v & 0x20)
    if group in (0xC, 0xD):
        return Alphabet.GSM7, None, False
    if group == 0xE:
        return Alphabet.UCS2, None, False
    if group == 0xF:
        return (Alphabet.DATA8 if v & 4 else Alphabet.GSM7), v & 3, False
    return Alphabet.GSM7, None, False  # reserved 1000-1011: as GSM 7-bit default


#: (alphabet, message class, compressed) for each of the 256 DCS values.
DCS_INFO: tuple[tuple[Alphabet, int | None, bool], ...] = tuple(_info(v) for v in range(256))


@dataclass(frozen=True, slots=True)
class MessageWaiting:
    """Message waiting indication of DCS groups 1100-1110 (TS 23.038 §4)."""

    active: bool
    kind: int
    store: bool

    @property
    def kind_name(self) -> str:
        """``voicemail``, ``fax``, ``email`` or ``other``."""
        return MWI_TYPES[self.kind & 3]


@dataclass(frozen=True, slots=True)
class DataCoding:
    """A TP-DCS octet (TS 23.038 §4); every property is derived from ``value``."""

    value: int

    @classmethod
    def for_alphabet(cls, alphabet: Alphabet, message_class: int | None = None) -> DataCoding:
        """General data coding group: 0x00/0x04/0x08, or 0x10-0x1B with a class."""
        code = _ALPHABET_BITS[Alphabet(alphabet)]
        if message_class is None:
            return cls(code)
        if not 0 <= message_class <= 3:
            raise PduError(f"message class {message_class} is not 0-3", field="TP-DCS")
        return cls(0x10 | code | message_class)

    @property
    def alphabet(self) -> Alphabet:
        """The character set; reserved codings read as GSM 7-bit (see module doc)."""
        return DCS_INFO[self.value & 0xFF][0]

    @property
    def message_class(self) -> int | None:
        """Message class 0-3, or ``None`` when the DCS gives none."""
        return DCS_INFO[self.value & 0xFF][1]

    @property
    def compressed(self) -> bool:
        """Bit 5 of the general groups: text compressed per TS 23.042."""
        return DCS_INFO[self.value & 0xFF][2]

    @property
    def group(self) -> int:
        """The coding group, bits 7-4."""
        return (self.value >> 4) & 0x0F

    @property
    def auto_delete(self) -> bool:
        """Group 01xx: message marked for automatic deletion."""
        return (self.value & 0xC0) == 0x40

    @property
    def reserved(self) -> bool:
        """A reserved coding (group 1000-1011, or alphabet bits 11 in 00xx/01xx)."""
        v = self.value
        return 0x80 <= v < 0xC0 or (v < 0x80 and (v & 0x0C) == 0x0C)

    @property
    def message_waiting(self) -> MessageWaiting | None:
        """The indication of groups 1100 (discard), 1101 and 1110 (store)."""
        v = self.value
        if not 0xC0 <= v < 0xF0:
            return None
        return MessageWaiting(active=bool(v & 8), kind=v & 3, store=v >= 0xD0)

    def describe(self) -> str:
        """A human-readable meaning, for reports."""
        parts = [_NAMES[self.alphabet]]
        if self.compressed:
            parts.append("compressed")
        if self.message_class is not None:
            parts.append(f"class {self.message_class}")
        if self.auto_delete:
            parts.append("auto-delete")
        mwi = self.message_waiting
        if mwi is not None:
            parts.append(
                f"message waiting {mwi.kind_name} {'active' if mwi.active else 'inactive'}, "
                f"{'store' if mwi.store else 'discard'} message"
            )
        if self.reserved:
            parts.append("reserved coding, read as GSM 7-bit")
        return ", ".join(parts)
