"""Hypothesis: round trips, exact and maximal bounds, and "returns or raises PduError"."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pdu import (
    Address,
    Alphabet,
    Concat,
    DataCoding,
    Deliver,
    InformationElement,
    PduError,
    Ports,
    Reassembler,
    StatusReport,
    Submit,
    UserData,
    capacity,
    decode,
    deliver_parts,
    encode,
    plan,
    submit_parts,
)
from pdu.alphabet import DEFAULT_ALPHABET, DEFAULT_EXTENSION, encode_gsm7
from pdu.timestamps import relative_to_timedelta

GSM_CHARS = sorted({c for c in DEFAULT_ALPHABET if c != "\x1b"} | set(DEFAULT_EXTENSION.values()))
gsm7_text = st.text(alphabet=st.sampled_from(GSM_CHARS))
any_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))
digits = st.text(alphabet="0123456789*#abc", min_size=0, max_size=20)

addresses = st.one_of(
    st.builds(Address, digits, st.sampled_from([0, 1, 2, 3, 4, 6]), st.sampled_from([0, 1, 8])),
    st.builds(
        lambda t: Address(t, 5, 0),
        st.text(alphabet=st.sampled_from(GSM_CHARS), max_size=11).filter(
            lambda t: len(encode_gsm7(t)) <= 11
        ),
    ),
)
smsc_addresses = st.none() | st.builds(
    Address, st.text(alphabet="0123456789", min_size=1, max_size=20), st.just(1), st.just(1)
)
timestamps = st.builds(
    lambda dt, q: dt.replace(tzinfo=timezone(timedelta(minutes=15 * q))),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2089, 12, 31)).map(
        lambda d: d.replace(microsecond=0)
    ),
    st.integers(-79, 79),
)
_RESERVED_IEIS = {0x24, 0x25}  # language shifts need tables: covered elsewhere
unknown_ies = st.builds(
    InformationElement,
    st.integers(0, 255).filter(lambda i: i not in _RESERVED_IEIS),
    st.binary(max_size=6),
)
headers = st.lists(unknown_ies, max_size=3).map(tuple)


@st.composite
def user_data(draw: st.DrawFn) -> tuple[UserData, DataCoding]:
    header = draw(headers)
    h = sum(2 + len(ie.data) for ie in header) + (1 if header else 0)
    kind = draw(st.sampled_from(list(Alphabet)))
    cls = draw(st.none() | st.integers(0, 3))
    dcs = DataCoding.for_alphabet(kind, cls)
    room = capacity(kind, h)
    if kind is Alphabet.GSM7:
        text = draw(gsm7_text)
        assume(len(encode_gsm7(text)) <= room)
        return UserData(header, text, None), dcs
    if kind is Alphabet.UCS2:
        text = draw(any_text)
        assume(len(text.encode("utf-16-be")) // 2 <= room)
        return UserData(header, text, None), dcs
    return UserData(header, None, draw(st.binary(max_size=room))), dcs


@st.composite
def messages(draw: st.DrawFn) -> Deliver | Submit | StatusReport:
    kind = draw(st.sampled_from(["deliver", "submit", "status"]))
    sc = draw(smsc_addresses)
    if kind == "deliver":
        ud, dcs = draw(user_data())
        return Deliver(
            tp_oa=draw(addresses),
            tp_scts=draw(timestamps),
            tp_ud=ud,
            tp_dcs=dcs,
            tp_pid=draw(st.integers(0, 255)),
            tp_mms=draw(st.booleans()),
            tp_lp=draw(st.booleans()),
            tp_sri=draw(st.booleans()),
            tp_rp=draw(st.booleans()),
            smsc=sc,
        )
    if kind == "submit":
        ud, dcs = draw(user_data())
        vp = draw(st.none() | st.integers(0, 255).map(relative_to_timedelta) | timestamps)
        return Submit(
            tp_da=draw(addresses),
            tp_ud=ud,
            tp_dcs=dcs,
            tp_mr=draw(st.integers(0, 255)),
            tp_pid=draw(st.integers(0, 255)),
            tp_vp=vp,
            tp_rd=draw(st.booleans()),
            tp_srr=draw(st.booleans()),
            tp_rp=draw(st.booleans()),
            smsc=sc,
        )
    with_ud = draw(st.booleans())
    ud, dcs = draw(user_data()) if with_ud else (None, None)
    return StatusReport(
        tp_mr=draw(st.integers(0, 255)),
        tp_ra=draw(addresses),
        tp_scts=draw(timestamps),
        tp_dt=draw(timestamps),
        tp_st=draw(st.integers(0, 255)),
        tp_mms=draw(st.booleans()),
        tp_lp=draw(st.booleans()),
        tp_srq=draw(st.booleans()),
        tp_pid=draw(st.none() | st.integers(0, 255)),
        tp_dcs=dcs if with_ud else draw(st.none() | st.just(DataCoding(0))),
        tp_ud=ud,
        smsc=sc,
    )


@given(messages(), st.booleans())
def test_round_trip(msg: Deliver | Submit | StatusReport, with_smsc: bool) -> None:
    raw = encode(msg, smsc=with_smsc)
    back = decode(raw, smsc=with_smsc)
    if not with_smsc:
        msg = type(msg)(**{f: getattr(msg, f) for f in msg.__dataclass_fields__} | {"smsc": None})
    assert back == msg
    assert encode(back, smsc=with_smsc) == raw  # canonical
    assert decode(raw.hex(), smsc=with_smsc) == back


@given(st.binary(max_size=300), st.booleans())
def test_arbitrary_bytes_decode_or_pdu_error(data: bytes, with_smsc: bool) -> None:
    try:
        msg = decode(data, smsc=with_smsc)
    except PduError:
        return
    with contextlib.suppress(PduError):  # whatever decodes re-encodes or says why not
        encode(msg, smsc=with_smsc)


@given(messages(), st.data())
@settings(max_examples=300)
def test_mutated_pdus_decode_or_pdu_error(
    msg: Deliver | Submit | StatusReport, data: st.DataObject
) -> None:
    raw = bytearray(encode(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        i = data.draw(st.integers(0, max(len(raw) - 1, 0)))
        if op == "flip" and raw:
            raw[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut":
            del raw[i:]
        elif op == "insert":
            raw[i:i] = bytes([data.draw(st.integers(0, 255))])
        elif raw:
            del raw[i]
    try:
        back = decode(bytes(raw))
    except PduError:
        return
    with contextlib.suppress(PduError):
        encode(back)


# -- segmentation ------------------------------------------------------------------


def _units(enc: Alphabet, chunk: str | bytes) -> int:
    if isinstance(chunk, bytes):
        return len(chunk)
    if enc is Alphabet.GSM7:
        return len(encode_gsm7(chunk))
    return len(chunk.encode("utf-16-be")) // 2


@given(
    st.one_of(gsm7_text, any_text, st.binary()).filter(lambda c: len(c) < 2000),
    st.booleans(),
    st.none() | st.builds(Ports, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
)
def test_parts_exact_and_maximal(content: str | bytes, ref16: bool, ports: Ports | None) -> None:
    p = plan(content, ref16=ref16, ports=ports)
    chunks = p.slices(content)
    assert len(chunks) == p.parts
    units = [_units(p.encoding, c) for c in chunks]
    assert sum(units) == p.units
    assert all(u <= p.units_per_part for u in units)
    assert p.units_left == p.units_per_part - units[-1]
    for i in range(len(chunks) - 1):  # maximal: the next character would not fit
        nxt = chunks[i + 1][:1]
        assert units[i] + _units(p.encoding, nxt) > p.units_per_part
    if p.parts == 1:
        assert p.units_per_part == capacity(p.encoding, p.header_octets)
    parts = submit_parts("+15551234567", content, ref16=ref16, ports=ports, ref=77)
    assert len(parts) == p.parts
    joined: list[str | bytes] = []
    for part in parts:
        raw = encode(part)
        back = decode(raw)
        assert back == part
        joined.append(part.tp_ud.text if part.tp_ud.text is not None else part.tp_ud.data)  # type: ignore[arg-type]
        if p.parts > 1:
            assert part.tp_ud.concat == Concat(77, p.parts, len(joined), ref16)
        assert part.tp_ud.ports == ports
    assert ("" if isinstance(content, str) else b"").join(joined) == content  # type: ignore[attr-defined]


@given(
    st.one_of(gsm7_text, any_text, st.binary()).filter(lambda c: len(c) < 1500),
    st.randoms(use_true_random=False),
    st.integers(0, 255),
)
def test_reassembly_shuffled_duplicated(content: str | bytes, rnd: object, ref: int) -> None:
    import random

    assert isinstance(rnd, random.Random)
    t = datetime(2026, 1, 1, tzinfo=UTC)
    parts = [decode(encode(p)) for p in deliver_parts("2936", content, scts=t, ref=ref)]
    feed = parts + [rnd.choice(parts) for _ in range(rnd.randrange(len(parts) + 1))]
    rnd.shuffle(feed)
    r = Reassembler()
    done = None
    for i, part in enumerate(feed):
        assert isinstance(part, Deliver)
        m = r.add(part, float(i))
        if m is not None and done is None:
            done = m
    assert done is not None
    got = done.data if isinstance(content, bytes) else done.text
    assert got == content or (content in ("", b"") and got in ("", b"", None))


@given(st.text(max_size=200), st.booleans())
def test_arbitrary_text_decode_or_pdu_error(text: str, with_smsc: bool) -> None:
    with contextlib.suppress(PduError):
        decode(text, smsc=with_smsc)


def _languages_available() -> list[tuple[int, int]]:
    from pdu.alphabet import tables

    out = []
    for pair in ((1, 0), (0, 1), (1, 1), (0, 2), (3, 0), (3, 3)):
        try:
            tables(*pair)
        except PduError:
            continue
        out.append(pair)
    return out


_LANGS = _languages_available()


@given(st.data())
def test_national_language_round_trip(data: st.DataObject) -> None:
    from pdu.alphabet import tables

    if not _LANGS:
        return
    locking, single = data.draw(st.sampled_from(_LANGS))
    chars = sorted(tables(locking, single).encode_map)
    text = data.draw(st.text(alphabet=st.sampled_from(chars), max_size=400))
    p = plan(text, encoding=Alphabet.GSM7, locking=locking, single=single)
    parts = submit_parts("2936", text, encoding=Alphabet.GSM7, locking=locking, single=single)
    assert len(parts) == p.parts
    for part in parts:
        assert part.tp_ud.languages == (locking, single)
        assert decode(encode(part)) == part
    assert "".join(x.tp_ud.text or "" for x in parts) == text
