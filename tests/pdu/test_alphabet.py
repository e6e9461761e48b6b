"""GSM 7-bit alphabet and national language tables (3GPP TS 23.038 §6.2.1, annex A).

Spot-check vectors cite the table and position in TS 23.038 (V18.0.0 numbering:
A.2.x single shift tables, A.3.x locking shift tables). They were checked
against two independent transcriptions of the spec (the gsmcodecs CSV tables
and Mozilla B2G's ril_consts.js), see pdu/national.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pdu import alphabet, national
from pdu.alphabet import (
    DEFAULT_EXTENSION,
    ESC,
    decode_gsm7,
    encode_gsm7,
    gsm7_length,
    septet_cost,
    septet_costs,
    tables,
)
from pdu.errors import PduError

LOCKING_LANGUAGES = (0, 1, 3)
SINGLE_LANGUAGES = (0, 1, 2, 3)
PAIRS = [(lk, ss) for lk in LOCKING_LANGUAGES for ss in SINGLE_LANGUAGES]

# (table, septet value, character, where in TS 23.038)
LOCKING_VECTORS = [
    # 6.2.1 GSM 7 bit default alphabet
    (0, 0x00, "@", "6.2.1 col 0 row 0"),
    (0, 0x01, "£", "6.2.1 col 0 row 1"),
    (0, 0x04, "è", "6.2.1 col 0 row 4"),
    (0, 0x07, "ì", "6.2.1 col 0 row 7"),
    (0, 0x09, "Ç", "6.2.1 col 0 row 9 (capital C cedilla)"),
    (0, 0x0A, "\n", "6.2.1 col 0 row A (LF)"),
    (0, 0x0D, "\r", "6.2.1 col 0 row D (CR)"),
    (0, 0x10, "Δ", "6.2.1 col 1 row 0"),
    (0, 0x11, "_", "6.2.1 col 1 row 1"),
    (0, 0x1C, "Æ", "6.2.1 col 1 row C"),
    (0, 0x24, "¤", "6.2.1 col 2 row 4"),
    (0, 0x40, "¡", "6.2.1 col 4 row 0"),
    (0, 0x5F, "§", "6.2.1 col 5 row F"),
    (0, 0x60, "¿", "6.2.1 col 6 row 0"),
    (0, 0x7F, "à", "6.2.1 col 7 row F"),
    # A.3.1 Turkish National Language Locking Shift Table
    (1, 0x04, "€", "A.3.1 col 0 row 4"),
    (1, 0x05, "é", "A.3.1 col 0 row 5 (as default)"),
    (1, 0x07, "\u0131", "A.3.1 col 0 row 7 (dotless i)"),
    (1, 0x09, "Ç", "A.3.1 col 0 row 9 (as default)"),
    (1, 0x0B, "Ğ", "A.3.1 col 0 row B"),
    (1, 0x0C, "ğ", "A.3.1 col 0 row C"),
    (1, 0x1C, "Ş", "A.3.1 col 1 row C"),
    (1, 0x1D, "ş", "A.3.1 col 1 row D"),
    (1, 0x1E, "ß", "A.3.1 col 1 row E (as default)"),
    (1, 0x40, "\u0130", "A.3.1 col 4 row 0 (capital I with dot above)"),
    (1, 0x5B, "Ä", "A.3.1 col 5 row B"),
    (1, 0x60, "ç", "A.3.1 col 6 row 0"),
    (1, 0x7F, "à", "A.3.1 col 7 row F"),
    # A.3.3 Portuguese National Language Locking Shift Table
    (3, 0x04, "ê", "A.3.3 col 0 row 4"),
    (3, 0x06, "ú", "A.3.3 col 0 row 6"),
    (3, 0x09, "ç", "A.3.3 col 0 row 9"),
    (3, 0x0E, "Á", "A.3.3 col 0 row E"),
    (3, 0x12, "ª", "A.3.3 col 1 row 2"),
    (3, 0x13, "Ç", "A.3.3 col 1 row 3"),
    (3, 0x15, "∞", "A.3.3 col 1 row 5"),
    (3, 0x16, "^", "A.3.3 col 1 row 6"),
    (3, 0x17, "\\", "A.3.3 col 1 row 7"),
    (3, 0x18, "€", "A.3.3 col 1 row 8"),
    (3, 0x1A, "|", "A.3.3 col 1 row A"),
    (3, 0x24, "º", "A.3.3 col 2 row 4"),
    (3, 0x40, "Í", "A.3.3 col 4 row 0"),
    (3, 0x5D, "Ú", "A.3.3 col 5 row D"),
    (3, 0x60, "~", "A.3.3 col 6 row 0"),
    (3, 0x7D, "`", "A.3.3 col 7 row D"),
]

SINGLE_VECTORS = [
    # 6.2.1.1 GSM 7 bit default alphabet extension table
    (0, 0x0A, "\x0c", "6.2.1.1 col 0 row A (page break)"),
    (0, 0x14, "^", "6.2.1.1 col 1 row 4"),
    (0, 0x28, "{", "6.2.1.1 col 2 row 8"),
    (0, 0x2F, "\\", "6.2.1.1 col 2 row F"),
    (0, 0x3D, "~", "6.2.1.1 col 3 row D"),
    (0, 0x40, "|", "6.2.1.1 col 4 row 0"),
    (0, 0x65, "€", "6.2.1.1 col 6 row 5"),
    # A.2.1 Turkish National Language Single Shift Table
    (1, 0x0A, "\x0c", "A.2.1 col 0 row A"),
    (1, 0x3C, "[", "A.2.1 col 3 row C"),
    (1, 0x40, "|", "A.2.1 col 4 row 0"),
    (1, 0x47, "Ğ", "A.2.1 col 4 row 7"),
    (1, 0x49, "\u0130", "A.2.1 col 4 row 9"),
    (1, 0x53, "Ş", "A.2.1 col 5 row 3"),
    (1, 0x63, "ç", "A.2.1 col 6 row 3"),
    (1, 0x65, "€", "A.2.1 col 6 row 5"),
    (1, 0x67, "ğ", "A.2.1 col 6 row 7"),
    (1, 0x69, "\u0131", "A.2.1 col 6 row 9"),
    (1, 0x73, "ş", "A.2.1 col 7 row 3"),
    # A.2.2 Spanish National Language Single Shift Table
    (2, 0x09, "ç", "A.2.2 col 0 row 9"),
    (2, 0x28, "{", "A.2.2 col 2 row 8"),
    (2, 0x41, "Á", "A.2.2 col 4 row 1"),
    (2, 0x49, "Í", "A.2.2 col 4 row 9"),
    (2, 0x4F, "Ó", "A.2.2 col 4 row F"),
    (2, 0x55, "Ú", "A.2.2 col 5 row 5"),
    (2, 0x61, "á", "A.2.2 col 6 row 1"),
    (2, 0x65, "€", "A.2.2 col 6 row 5"),
    (2, 0x69, "í", "A.2.2 col 6 row 9"),
    (2, 0x6F, "ó", "A.2.2 col 6 row F"),
    (2, 0x75, "ú", "A.2.2 col 7 row 5"),
    # A.2.3 Portuguese National Language Single Shift Table
    (3, 0x05, "ê", "A.2.3 col 0 row 5"),
    (3, 0x09, "ç", "A.2.3 col 0 row 9"),
    (3, 0x0B, "Ô", "A.2.3 col 0 row B"),
    (3, 0x0F, "á", "A.2.3 col 0 row F"),
    (3, 0x12, "Φ", "A.2.3 col 1 row 2"),
    (3, 0x19, "Θ", "A.2.3 col 1 row 9"),
    (3, 0x1F, "Ê", "A.2.3 col 1 row F"),
    (3, 0x41, "À", "A.2.3 col 4 row 1"),
    (3, 0x5B, "Ã", "A.2.3 col 5 row B"),
    (3, 0x5C, "Õ", "A.2.3 col 5 row C"),
    (3, 0x61, "Â", "A.2.3 col 6 row 1"),
    (3, 0x65, "€", "A.2.3 col 6 row 5"),
    (3, 0x7B, "ã", "A.2.3 col 7 row B"),
    (3, 0x7F, "â", "A.2.3 col 7 row F"),
]

# Entries per single shift table: the 10 of 6.2.1.1 plus the national ones.
SINGLE_SIZES = {0: 10, 1: 17, 2: 19, 3: 37}


def _ids(vectors: list[tuple[int, int, str, str]]) -> list[str]:
    return [v[3] for v in vectors]


def reference_decode(septets: bytes, locking: int = 0, single: int = 0) -> str:
    """Character-by-character decoder straight from the note to table 6.2.1.1."""
    basic = alphabet.locking_shift_table(locking)
    ext = alphabet.single_shift_table(single)
    out = []
    i = 0
    while i < len(septets):
        s = septets[i]
        if s != ESC:
            out.append(basic[s])
            i += 1
        elif i + 1 == len(septets):
            i += 1  # trailing lone ESC: nothing
        else:
            code = septets[i + 1]
            out.append(" " if code == ESC else ext.get(code, basic[code]))
            i += 2
    return "".join(out)


# --- spec vectors -------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "code", "ch", "where"), LOCKING_VECTORS, ids=_ids(LOCKING_VECTORS)
)
def test_locking_table_positions(lang, code, ch, where):
    assert alphabet.locking_shift_table(lang)[code] == ch
    assert decode_gsm7(bytes([code]), locking=lang) == ch
    assert encode_gsm7(ch, locking=lang) == bytes([code])


@pytest.mark.parametrize(("lang", "code", "ch", "where"), SINGLE_VECTORS, ids=_ids(SINGLE_VECTORS))
def test_single_shift_table_positions(lang, code, ch, where):
    assert alphabet.single_shift_table(lang)[code] == ch
    assert decode_gsm7(bytes([ESC, code]), single=lang) == ch


def test_spanish_accents_cost_two_septets():
    # A.2.2: "Buenos días" needs the single shift for í (ESC 0x69).
    assert encode_gsm7("días", single=2) == b"d\x1bias"
    assert decode_gsm7(b"d\x1bias", single=2) == "días"
    assert gsm7_length("días", single=2) == 5
    assert gsm7_length("días") is None


def test_turkish_text_with_locking_and_single_shift():
    text = "Işık ğüzel Ş"
    septets = encode_gsm7(text, locking=1, single=1)
    # 'I' stays 0x49 in the locking table; ı is 0x07 (A.3.1), ş 0x1D, ğ 0x0C, Ş 0x1C.
    assert septets == b"I\x1d\x07k \x0c~zel \x1c"
    assert decode_gsm7(septets, locking=1, single=1) == text


def test_table_sizes():
    for lang, size in SINGLE_SIZES.items():
        assert len(alphabet.single_shift_table(lang)) == size
    for lang in LOCKING_LANGUAGES:
        table = alphabet.locking_shift_table(lang)
        assert len(table) == 128
        assert table[ESC] == "\x1b"
        assert len(set(table)) == 128  # no character twice


def test_single_shift_tables_repeat_the_default_extension_entries():
    # TS 23.038 annex A: each Latin-script single shift table keeps the default
    # extension table's characters at the same codes (page break, ^ { } \ [ ~ ] | €).
    assert len(DEFAULT_EXTENSION) == 10
    for lang in SINGLE_LANGUAGES:
        table = alphabet.single_shift_table(lang)
        assert {k: table[k] for k in DEFAULT_EXTENSION} == DEFAULT_EXTENSION, lang


def test_single_shift_tables_never_define_reserved_codes():
    # 0x0D is CR2 (reserved control), 0x1B the escape to a further table.
    for lang in SINGLE_LANGUAGES:
        table = alphabet.single_shift_table(lang)
        assert 0x0D not in table
        assert ESC not in table
        assert all(0 <= code <= 0x7F for code in table)


def test_tables_are_copies():
    national.single_shift_table(1)[0x47] = "X"
    alphabet.single_shift_table(0)[0x65] = "X"
    assert national.single_shift_table(1)[0x47] == "Ğ"
    assert alphabet.single_shift_table(0)[0x65] == "€"


# --- unknown languages ------------------------------------------------------------


def test_spanish_has_no_locking_table():
    # A.3.2 is void: language 2 has a single shift table only.
    with pytest.raises(PduError):
        national.locking_shift_table(2)
    with pytest.raises(PduError):
        tables(2, 0)
    with pytest.raises(PduError):
        encode_gsm7("a", locking=2)
    with pytest.raises(PduError):
        decode_gsm7(b"a", locking=2)
    assert encode_gsm7("a", single=2) == b"a"


@pytest.mark.parametrize("lang", [-1, 4, 13, 14, 255])
def test_unknown_languages_raise(lang):
    with pytest.raises(PduError):
        tables(lang, 0)
    with pytest.raises(PduError):
        tables(0, lang)
    with pytest.raises(PduError):
        national.locking_shift_table(lang)
    with pytest.raises(PduError):
        national.single_shift_table(lang)


# --- every character round-trips ------------------------------------------------


@pytest.mark.parametrize(("locking", "single"), PAIRS)
def test_every_character_round_trips(locking, single):
    basic = alphabet.locking_shift_table(locking)
    ext = alphabet.single_shift_table(single)
    for code, ch in enumerate(basic):
        if code == ESC:
            continue
        assert encode_gsm7(ch, locking, single) == bytes([code]), (code, ch)
        assert decode_gsm7(bytes([code]), locking, single) == ch
        assert septet_cost(ch, locking, single) == 1
    for code, ch in ext.items():
        assert decode_gsm7(bytes([ESC, code]), locking, single) == ch
        septets = encode_gsm7(ch, locking, single)
        if ch in basic:
            # Present in both: the single-septet form wins.
            assert septets == bytes([basic.index(ch)]), (code, ch)
            assert septet_cost(ch, locking, single) == 1
        else:
            assert septets == bytes([ESC, code]), (code, ch)
            assert septet_cost(ch, locking, single) == 2
        assert decode_gsm7(septets, locking, single) == ch


@pytest.mark.parametrize(
    ("ch", "locking", "single", "septets"),
    [
        ("Φ", 0, 3, b"\x12"),  # default 0x12, also A.2.3 0x12
        ("Ω", 0, 3, b"\x15"),
        ("ç", 1, 1, b"\x60"),  # A.3.1 0x60, also A.2.1 0x63
        ("€", 1, 0, b"\x04"),  # A.3.1 0x04, also 6.2.1.1 0x65
        ("Ğ", 1, 1, b"\x0b"),  # A.3.1 0x0B, also A.2.1 0x47
        ("^", 3, 0, b"\x16"),  # A.3.3 0x16, also 6.2.1.1 0x14
        ("\\", 3, 3, b"\x17"),
        ("|", 3, 2, b"\x1a"),
        ("€", 3, 3, b"\x18"),
        ("ç", 3, 2, b"\x09"),  # A.3.3 0x09, also A.2.2 0x09
        ("Ç", 0, 2, b"\x09"),  # default 0x09 capital; ç is ESC 0x09 in A.2.2
        ("ç", 0, 2, b"\x1b\x09"),
    ],
)
def test_single_septet_form_preferred(ch, locking, single, septets):
    assert encode_gsm7(ch, locking, single) == septets


def test_unencodable_character_names_position():
    with pytest.raises(PduError, match=r"'Ж' \(U\+0416\) at position 2"):
        encode_gsm7("abЖ")
    with pytest.raises(PduError, match="position 0"):
        encode_gsm7("\x1b")  # the escape is not a character
    with pytest.raises(PduError):
        encode_gsm7("ı")  # dotless i needs a Turkish table
    assert gsm7_length("ı") is None
    assert septet_cost("ı") is None
    assert septet_cost("ı", single=1) == 2
    assert septet_cost("ı", locking=1) == 1


def test_unmapped_ascii_is_rejected():
    for ch in "`\t\x00\x7f":
        with pytest.raises(PduError):
            encode_gsm7(ch)
    assert encode_gsm7("`", locking=3) == b"\x7d"  # A.3.3 col 7 row D


def test_septet_costs():
    assert septet_costs("") == b""
    assert septet_costs("a{€b") == b"\x01\x02\x02\x01"
    assert septet_costs("€", locking=1) == b"\x01"
    assert septet_costs("aЖ") is None
    assert septet_costs("a`") is None  # unmapped ASCII


def test_lengths():
    assert gsm7_length("") == 0
    assert gsm7_length("{}") == 4
    assert gsm7_length("abc€") == 5
    assert gsm7_length("€", locking=1) == 1


# --- escape decoding rules (note to table 6.2.1.1) -----------------------------------


@pytest.mark.parametrize(
    ("septets", "text", "single"),
    [
        (b"\x1b\x65", "€", 0),
        (b"\x1b\x41", "A", 0),  # undefined in 6.2.1.1: the default table character
        (b"\x1b\x41", "Á", 2),  # defined in A.2.2
        (b"\x1b\x47", "G", 2),  # undefined in A.2.2
        (b"\x1b\x0d", "\r", 0),  # CR2 undefined: the default table CR
        (b"\x1b\x00", "@", 1),
        (b"\x1b\x1b", " ", 0),  # ESC ESC: a space
        (b"\x1b\x1b\x1b\x28", " {", 0),
        (b"a\x1b\x1bb", "a b", 0),
        (b"a\x1b", "a", 0),  # trailing lone ESC: nothing
        (b"\x1b", "", 0),
        (b"\x1b\x1b\x1b", " ", 0),
        (b"\x1b\x28\x1b\x29", "{}", 0),
        (b"", "", 0),
    ],
)
def test_escape_rules(septets, text, single):
    assert decode_gsm7(septets, single=single) == text
    assert reference_decode(septets, single=single) == text


def test_undefined_escape_uses_locking_table():
    # ESC 0x07 is undefined in A.2.2; with the Turkish locking table 0x07 is ı.
    assert decode_gsm7(b"\x1b\x07", locking=1, single=2) == "\u0131"
    assert decode_gsm7(b"\x1b\x07", locking=0, single=2) == "ì"


@pytest.mark.parametrize(
    "septets",
    [b"\x80", b"abc\xff", b"\x1b\x80", b"a\x1b\x1b\x90", b"\x1bA\xfe", b"\x1b\x1b\x1b\xff"],
)
def test_septets_above_127_raise(septets):
    with pytest.raises(PduError, match="above 0x7F"):
        decode_gsm7(septets)


# --- properties -------------------------------------------------------------------


def _alphabet_text(locking: int, single: int) -> st.SearchStrategy[str]:
    chars = sorted(tables(locking, single).encode_map)
    return st.lists(st.sampled_from(chars), max_size=200).map("".join)


@pytest.mark.parametrize(("locking", "single"), PAIRS)
@given(data=st.data())
def test_text_round_trip(locking, single, data):
    text = data.draw(_alphabet_text(locking, single))
    septets = encode_gsm7(text, locking, single)
    assert septets.isascii()
    assert len(septets) == gsm7_length(text, locking, single)
    assert len(septets) == sum(septet_cost(c, locking, single) or 0 for c in text)
    assert septet_costs(text, locking, single) == bytes(
        septet_cost(c, locking, single) or 0 for c in text
    )
    assert decode_gsm7(septets, locking, single) == text


@pytest.mark.parametrize(("locking", "single"), [(0, 0), (1, 1), (3, 2)])
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_pdu_error(locking, single, raw):
    try:
        text = decode_gsm7(raw, locking, single)
    except PduError:
        assert not raw.isascii()
    else:
        assert raw.isascii()
        assert text == reference_decode(raw, locking, single)


@given(septets=st.lists(st.sampled_from([0x1B, 0x1B, 0x28, 0x41, 0x65, 0x0D, 0x00])).map(bytes))
def test_escape_heavy_sequences_match_reference(septets):
    for single in SINGLE_LANGUAGES:
        assert decode_gsm7(septets, single=single) == reference_decode(septets, single=single)


@given(text=st.text(max_size=50))
def test_any_text_encodes_or_raises_pdu_error(text):
    try:
        septets = encode_gsm7(text)
    except PduError:
        assert gsm7_length(text) is None
        assert septet_costs(text) is None
    else:
        assert gsm7_length(text) == len(septets)
        assert decode_gsm7(septets) == text
