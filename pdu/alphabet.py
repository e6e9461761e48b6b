"""GSM 7-bit default alphabet, its extension table and the national language
tables (3GPP TS 23.038 §6.2.1, §6.2.1.1, §6.2.1.2 and annex A).

Text is converted to *septet values* (one byte each, 0-127) here; packing the
septets into octets is :mod:`pdu.septets`. A character of the extension table
(§6.2.1.1) costs two septets: the escape 0x1B and its code.

National language tables are selected by language identifier (§6.2.1.2.4):
``locking`` replaces the default table (locking shift, annex A.3),
``single`` replaces the extension table (single shift, annex A.2). Identifier
0 is the default alphabet / default extension table; the others this codec
carries are in :mod:`pdu.national` (Turkish 1, Spanish 2 -- single shift
only --, Portuguese 3); any other raises :class:`PduError`.

Encoding prefers the one-septet form when a character is in both tables.
Decoding follows the note to table 6.2.1.1 (see :func:`decode_gsm7`).

Speed: each language pair's maps are built once (:func:`tables`). Encoding is
one ``str.translate`` (characters to septet values as code points < 0x80);
decoding is ``codecs.charmap_decode`` per run of septets between escapes,
so both run in C; non-encodable text is rejected with a ``frozenset`` test
before any translation.
"""

from __future__ import annotations

from codecs import charmap_decode as _charmap_decode

from . import national
from .errors import PduError

ESC = 0x1B

#: TS 23.038 §6.2.1, Figure/Table 6.2.1: the default alphabet, septet -> character.
DEFAULT_ALPHABET = national.DEFAULT_ALPHABET
assert len(DEFAULT_ALPHABET) == 128  # static table check, not input

#: TS 23.038 §6.2.1.1: the default extension table, septet after ESC -> character.
DEFAULT_EXTENSION = national.DEFAULT_EXTENSION


class _Tables:
    """Precomputed encode/decode maps for one (locking, single) language pair."""

    __slots__ = (
        "basic",
        "charset",
        "cost_translate",
        "decode_basic",
        "decode_escaped",
        "encode_map",
        "encode_translate",
        "ext",
    )

    def __init__(self, basic: str, ext: dict[int, str]) -> None:
        if len(basic) != 128:  # pragma: no cover - guards the static tables
            raise ValueError("a locking shift table has 128 positions")
        self.basic = basic
        self.ext = ext
        # Decode, no escape: a charmap table for codecs.charmap_decode (C speed);
        # septets above 0x7F fall outside it and fail. Position 0x1B is never
        # looked up (the decoder splits on ESC first).
        self.decode_basic = basic[:ESC] + "\ufffe" + basic[ESC + 1 :]
        # Decode, after ESC: the single shift table, else the locking table's
        # character at that code (note to table 6.2.1.1); ESC ESC is a space
        # (0x1B is reserved for a further extension table, shown as a space).
        self.decode_escaped = tuple(
            " " if code == ESC else ext.get(code, basic[code]) for code in range(128)
        )
        # Encode: character -> septet bytes (1 or 2). The locking (basic) table
        # wins when a character is in both: the single-septet form is cheaper
        # and is what TS 23.038 annex A intends (a shift table repeating a
        # character of the active locking table is never needed).
        enc: dict[str, bytes] = {}
        for code, ch in ext.items():
            if code != ESC:
                enc.setdefault(ch, bytes((ESC, code)))
        for i, ch in enumerate(basic):
            if i != ESC:
                enc[ch] = bytes((i,))
        self.encode_map = enc
        # Every encodable character: a quick "no" for text that is not GSM
        # 7-bit (str.translate is slow once it meets non-ASCII characters).
        self.charset = frozenset(enc)
        # str.translate table: every mapped character becomes its septets as
        # chr() values; every unmapped ASCII character becomes U+0080, so a
        # non-ASCII result marks an unencodable character (unmapped non-ASCII
        # characters pass through translate unchanged).
        tr: dict[int, str] = {ord(ch): v.decode("latin-1") for ch, v in enc.items()}
        for o in range(128):
            tr.setdefault(o, "\x80")
        self.encode_translate = tr
        # The same shape for septet_costs: each character becomes chr(cost).
        cost: dict[int, str] = {ord(ch): chr(len(v)) for ch, v in enc.items()}
        for o in range(128):
            cost.setdefault(o, "\x80")
        self.cost_translate = cost


_cache: dict[tuple[int, int], _Tables] = {}


def locking_shift_table(language: int) -> str:
    """The 128-character table for a locking-shift language (0 = default)."""
    if language == 0:
        return DEFAULT_ALPHABET
    return national.locking_shift_table(language)


def single_shift_table(language: int) -> dict[int, str]:
    """The extension table for a single-shift language (0 = default), a fresh copy."""
    if language == 0:
        return dict(DEFAULT_EXTENSION)
    return national.single_shift_table(language)


def tables(locking: int = 0, single: int = 0) -> _Tables:
    """Cached tables for a language pair; :class:`PduError` for an unknown language."""
    key = (locking, single)
    t = _cache.get(key)
    if t is None:
        t = _Tables(locking_shift_table(locking), single_shift_table(single))
        _cache[key] = t
    return t


def encode_gsm7(text: str, locking: int = 0, single: int = 0) -> bytes:
    """Encode ``text`` to septet values, one per byte (TS 23.038 §6.2.1).

    A character of the locking table costs one septet, one only in the single
    shift table two (ESC + code). Raises :class:`PduError` naming the first
    character that neither table holds, or for an unknown language.
    """
    t = tables(locking, single)
    if text.isascii() or t.charset.issuperset(text):
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


def gsm7_length(text: str, locking: int = 0, single: int = 0) -> int | None:
    """Septets ``text`` needs, or ``None`` when it is not GSM 7-bit encodable.

    Raises :class:`PduError` only for an unknown language.
    """
    t = tables(locking, single)
    if not (text.isascii() or t.charset.issuperset(text)):
        return None
    out = text.translate(t.encode_translate)
    return len(out) if out.isascii() else None


def septet_costs(text: str, locking: int = 0, single: int = 0) -> bytes | None:
    """The septet cost (1 or 2) of each character of ``text``, one byte per
    character, or ``None`` when some character is not encodable. For
    segmentation: a part boundary never falls inside an ESC + code pair."""
    t = tables(locking, single)
    if not (text.isascii() or t.charset.issuperset(text)):
        return None
    out = text.translate(t.cost_translate)
    return out.encode("ascii") if out.isascii() else None


def septet_cost(ch: str, locking: int = 0, single: int = 0) -> int | None:
    """Septets one character costs: 1, 2 (escape + code), or ``None`` if unencodable."""
    v = tables(locking, single).encode_map.get(ch)
    return None if v is None else len(v)


def decode_gsm7(septets: bytes, locking: int = 0, single: int = 0) -> str:
    """Decode septet values (one per byte) to text (TS 23.038 §6.2.1).

    Escape handling (note to table 6.2.1.1):

    - ESC + a code in the single shift table gives that character;
    - ESC + a code the single shift table lacks gives the locking (default)
      table character for that code;
    - ESC ESC gives a space (0x1B is reserved for a further extension table);
    - a lone ESC as the last septet gives nothing: it escapes no character,
      and showing a space for it would add a character the sender never
      typed (a segment of a concatenated message never ends in a lone ESC
      when the sender follows TS 23.040 §9.2.3.24.1).

    Septet values above 0x7F raise :class:`PduError`, as does an unknown
    language.
    """
    t = tables(locking, single)
    try:
        if ESC not in septets:
            return _charmap_decode(septets, "strict", t.decode_basic)[0]
        basic = t.decode_basic
        escaped = t.decode_escaped
        parts = bytes(septets).split(b"\x1b")
        out = [_charmap_decode(parts[0], "strict", basic)[0]]
        n = len(parts)
        i = 1
        # parts[i] follows an ESC. Its first septet is the escaped code; an
        # empty part means the next septet was ESC (ESC ESC -> space, and the
        # part after that second ESC is plain text), or the input ended.
        while i < n:
            part = parts[i]
            if part:
                code = part[0]
                if code > 0x7F:
                    break  # reported below by charmap_decode
                out.append(escaped[code])
                out.append(_charmap_decode(part[1:], "strict", basic)[0])
                i += 1
            elif i + 1 < n:
                out.append(" ")
                out.append(_charmap_decode(parts[i + 1], "strict", basic)[0])
                i += 2
            else:
                i += 1  # trailing lone ESC: nothing
        else:
            return "".join(out)
    except UnicodeDecodeError:
        pass
    bad = next(s for s in septets if s > 0x7F)
    raise PduError(f"septet value {bad:#x} above 0x7F", field="TP-UD")
