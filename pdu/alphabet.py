"""GSM 7-bit default alphabet and its extension table (3GPP TS 23.038 §6.2.1).

Text is converted to *septet values* (one byte each, 0-127) here; packing the
septets into octets is :mod:`pdu.septets`. A character of the extension table
(§6.2.1.1) costs two septets: the escape 0x1B and its code.

National language tables (§6.2.1.2 locking shift, §6.2.1.2.x single shift)
are selected by language identifier: ``locking`` replaces the default table,
``single`` replaces the extension table. Identifier 0 is the default
alphabet / default extension table.
"""

from __future__ import annotations

from .errors import PduError

ESC = 0x1B

#: TS 23.038 §6.2.1, Figure/Table 6.2.1: the default alphabet, septet -> character.
DEFAULT_ALPHABET = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
assert len(DEFAULT_ALPHABET) == 128  # noqa: S101 - static table check, not input

#: TS 23.038 §6.2.1.1: the default extension table, septet after ESC -> character.
DEFAULT_EXTENSION = {
    0x0A: "\x0c",  # form feed (page break)
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


class _Tables:
    """Precomputed encode/decode maps for one (locking, single) language pair."""

    __slots__ = ("basic", "decode_basic", "decode_ext", "encode_map", "encode_translate", "ext")

    def __init__(self, basic: str, ext: dict[int, str]) -> None:
        self.basic = basic
        self.ext = ext
        # Decode: septet -> str; ESC itself handled by the decoder.
        self.decode_basic = {i: c for i, c in enumerate(basic) if i != ESC}
        self.decode_ext = dict(ext)
        # Encode: character -> septet bytes (1 or 2). The basic table wins when a
        # character is in both (TS 23.038: prefer the single-septet form).
        enc: dict[str, bytes] = {}
        for code, ch in ext.items():
            enc[ch] = bytes((ESC, code))
        for i, ch in enumerate(basic):
            if i != ESC and ch != " " or i == 0x20:
                enc[ch] = bytes((i,))
        self.encode_map = enc
        # str.translate table: every mapped character becomes its septets as
        # chr() values; every unmapped ASCII character becomes U+0080, so a
        # non-ASCII result marks an unencodable character.
        tr: dict[int, str] = {ord(ch): v.decode("latin-1") for ch, v in enc.items()}
        for o in range(128):
            tr.setdefault(o, "\x80")
        self.encode_translate = tr


_cache: dict[tuple[int, int], _Tables] = {}


def locking_shift_table(language: int) -> str:
    """The 128-character table for a locking-shift language (0 = default)."""
    if language == 0:
        return DEFAULT_ALPHABET
    from . import national  # late import: the tables are large and rarely needed

    return national.locking_shift_table(language)


def single_shift_table(language: int) -> dict[int, str]:
    """The extension table for a single-shift language (0 = default)."""
    if language == 0:
        return DEFAULT_EXTENSION
    from . import national

    return national.single_shift_table(language)


def tables(locking: int = 0, single: int = 0) -> _Tables:
    """Cached tables for a language pair; :class:`PduError` for an unknown language."""
    key = (locking, single)
    t = _cache.get(key)
    if t is None:
        t = _Tables(locking_shift_table(locking), single_shift_table(single))
        _cache[key] = t
    return t


def encode_gsm7(text: str, *, locking: int = 0, single: int = 0) -> bytes:
    """Encode ``text`` to septet values (TS 23.038 §6.2.1).

    Raises :class:`PduError` naming the first character that neither table holds.
    """
    t = tables(locking, single)
    out = text.translate(t.encode_translate)
    if out.isascii():
        return out.encode("ascii")
    for pos, ch in enumerate(text):
        if ch not in t.encode_map:
            raise PduError(
                f"character {ch!r} (U+{ord(ch):04X}) at position {pos} is not in the "
                f"GSM 7-bit alphabet (locking={locking}, single={single})",
                field="TP-UD",
            )
    raise AssertionError("unreachable: translate and encode_map disagree")  # pragma: no cover


def gsm7_length(text: str, *, locking: int = 0, single: int = 0) -> int | None:
    """Septets ``text`` needs, or ``None`` when it is not GSM 7-bit encodable."""
    try:
        return len(encode_gsm7(text, locking=locking, single=single))
    except PduError:
        return None


def septet_cost(ch: str, *, locking: int = 0, single: int = 0) -> int | None:
    """Septets one character costs: 1, 2 (escape + code), or ``None`` if unencodable."""
    v = tables(locking, single).encode_map.get(ch)
    return None if v is None else len(v)


def decode_gsm7(septets: bytes, *, locking: int = 0, single: int = 0) -> str:
    """Decode septet values to text (TS 23.038 §6.2.1, note to table 6.2.1.1).

    ESC followed by a code the extension table lacks shows the default-table
    character for that code; two ESCs in a row show a space (the code reserved
    for a further extension table). A lone ESC at the end decodes to nothing.
    Septet values above 127 raise :class:`PduError`.
    """
    t = tables(locking, single)
    if ESC not in septets:
        if not septets.isascii():
            raise PduError("septet value above 127", field="TP-UD")
        return septets.decode("ascii").translate(t.decode_basic)
    out: list[str] = []
    basic = t.basic
    ext = t.ext
    escaped = False
    for s in septets:
        if s > 0x7F:
            raise PduError("septet value above 127", field="TP-UD")
        if escaped:
            escaped = False
            if s == ESC:
                out.append(" ")
            else:
                c = ext.get(s)
                out.append(basic[s] if c is None else c)
        elif s == ESC:
            escaped = True
        else:
            out.append(basic[s])
    return "".join(out)
