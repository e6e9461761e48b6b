"""National language shift tables (3GPP TS 23.038 §6.2.1.2, annex A).

Carried here: Turkish (language identifier 1: locking shift table A.3.1 and
single shift table A.2.1), Spanish (2: single shift table A.2.2 only; A.3.2 is
void, so there is no Spanish locking shift table) and Portuguese (3: locking
shift table A.3.3, single shift table A.2.3). Any other identifier raises
:class:`PduError`.

Each locking shift table is written as the default alphabet (§6.2.1) with the
positions where the national table differs replaced, so the code values that
change are visible and reviewable one by one. Position 0x1B stays the escape
to the single shift table in every locking table.

Single shift tables are ``{septet after ESC: character}``. Positions that a
table leaves undefined are simply absent (decoding falls back to the locking
table character, TS 23.038 note to table 6.2.1.1). Two code points are never
characters in any single shift table and are absent too: 0x1B (reserved for a
further extension table; ESC ESC decodes to a space) and 0x0D (CR2, a
reserved control character).

Cross-checked against two independent transcriptions of TS 23.038 annex A:
the CSV tables of the ``gsmcodecs`` project (from V18.0.0) and the
``PDU_NL_*_SHIFT_TABLES`` of Mozilla's B2G RIL (``ril_consts.js``), plus the
Turkish and Portuguese locking tables of CyberChef (from V16.0.0).
"""

from __future__ import annotations

from .errors import PduError

#: TS 23.038 §6.2.1: the default alphabet, septet -> character; the base the
#: locking shift tables are built on. (:mod:`pdu.alphabet` exports it.)
DEFAULT_ALPHABET = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)

#: TS 23.038 §6.2.1.1: the default extension table, septet after ESC ->
#: character. Annex A repeats these entries at the same positions in every
#: Latin-script single shift table. (:mod:`pdu.alphabet` exports it.)
DEFAULT_EXTENSION = {
    0x0A: "\x0c",  # page break (form feed)
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}


def _overlay(changes: dict[int, str]) -> str:
    table = list(DEFAULT_ALPHABET)
    for code, ch in changes.items():
        table[code] = ch
    return "".join(table)


#: A.3.1 Turkish National Language Locking Shift Table: the default alphabet
#: except at these code values.
_TURKISH_LOCKING = _overlay(
    {
        0x04: "€",  # default: è
        0x07: "ı",  # U+0131 dotless i; default: ì
        0x0B: "Ğ",  # default: Ø
        0x0C: "ğ",  # default: ø
        0x1C: "Ş",  # default: Æ
        0x1D: "ş",  # default: æ
        0x40: "İ",  # U+0130 capital I with dot above; default: ¡
        0x60: "ç",  # default: ¿
    }
)

#: A.3.3 Portuguese National Language Locking Shift Table.
_PORTUGUESE_LOCKING = _overlay(
    {
        0x04: "ê",  # default: è
        0x06: "ú",  # default: ù
        0x07: "í",  # default: ì
        0x08: "ó",  # default: ò
        0x09: "ç",  # default: Ç
        0x0B: "Ô",  # default: Ø
        0x0C: "ô",  # default: ø
        0x0E: "Á",  # default: Å
        0x0F: "á",  # default: å
        0x12: "ª",  # U+00AA feminine ordinal; default: Φ
        0x13: "Ç",  # default: Γ
        0x14: "À",  # default: Λ
        0x15: "∞",  # U+221E infinity; default: Ω
        0x16: "^",  # default: Π
        0x17: "\\",  # default: Ψ
        0x18: "€",  # default: Σ
        0x19: "Ó",  # default: Θ
        0x1A: "|",  # default: Ξ
        0x1C: "Â",  # default: Æ
        0x1D: "â",  # default: æ
        0x1E: "Ê",  # default: ß
        0x24: "º",  # U+00BA masculine ordinal; default: ¤
        0x40: "Í",  # default: ¡
        0x5B: "Ã",  # default: Ä
        0x5C: "Õ",  # default: Ö
        0x5D: "Ú",  # default: Ñ
        0x60: "~",  # default: ¿
        0x7B: "ã",  # default: ä
        0x7C: "õ",  # default: ö
        0x7D: "`",  # default: ñ
    }
)

_LOCKING: dict[int, str] = {1: _TURKISH_LOCKING, 3: _PORTUGUESE_LOCKING}

#: A.2.1 Turkish National Language Single Shift Table.
_TURKISH_SINGLE = {
    **DEFAULT_EXTENSION,
    0x47: "Ğ",
    0x49: "İ",  # U+0130
    0x53: "Ş",
    0x63: "ç",
    0x67: "ğ",
    0x69: "ı",  # U+0131
    0x73: "ş",
}

#: A.2.2 Spanish National Language Single Shift Table.
_SPANISH_SINGLE = {
    **DEFAULT_EXTENSION,
    0x09: "ç",
    0x41: "Á",
    0x49: "Í",
    0x4F: "Ó",
    0x55: "Ú",
    0x61: "á",
    0x69: "í",
    0x6F: "ó",
    0x75: "ú",
}

#: A.2.3 Portuguese National Language Single Shift Table.
_PORTUGUESE_SINGLE = {
    **DEFAULT_EXTENSION,
    0x05: "ê",
    0x09: "ç",
    0x0B: "Ô",
    0x0C: "ô",
    0x0E: "Á",
    0x0F: "á",
    0x12: "Φ",
    0x13: "Γ",
    0x15: "Ω",
    0x16: "Π",
    0x17: "Ψ",
    0x18: "Σ",
    0x19: "Θ",
    0x1F: "Ê",
    0x41: "À",
    0x49: "Í",
    0x4F: "Ó",
    0x55: "Ú",
    0x5B: "Ã",
    0x5C: "Õ",
    0x61: "Â",
    0x69: "í",
    0x6F: "ó",
    0x75: "ú",
    0x7B: "ã",
    0x7C: "õ",
    0x7F: "â",
}

_SINGLE: dict[int, dict[int, str]] = {
    1: _TURKISH_SINGLE,
    2: _SPANISH_SINGLE,
    3: _PORTUGUESE_SINGLE,
}

#: Language identifiers (TS 23.038 §6.2.1.2.4) with a table here.
LOCKING_LANGUAGES = frozenset(_LOCKING)
SINGLE_LANGUAGES = frozenset(_SINGLE)


def locking_shift_table(language: int) -> str:
    """The 128-character locking-shift table for ``language`` (TS 23.038 annex A.3).

    Index = septet value; index 0x1B is ``"\\x1b"`` (the escape, not a
    character). Raises :class:`PduError` for a language with no locking shift
    table here (Spanish, 2, has none in the spec).
    """
    table = _LOCKING.get(language)
    if table is None:
        raise PduError(f"no locking shift table for language {language}", field="TP-UD")
    return table


def single_shift_table(language: int) -> dict[int, str]:
    """The single-shift table for ``language`` (TS 23.038 annex A.2), a fresh copy.

    Maps the septet that follows ESC to its character; undefined positions
    are absent. Raises :class:`PduError` for a language with no table here.
    """
    table = _SINGLE.get(language)
    if table is None:
        raise PduError(f"no single shift table for language {language}", field="TP-UD")
    return dict(table)
