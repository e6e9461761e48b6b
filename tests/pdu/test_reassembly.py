"""Reassembly of concatenated SMS-DELIVERs."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from pdu import Alphabet, Deliver, Ports, Reassembler, decode, deliver_parts, encode

T = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)


def _parts(sender: str, content: str | bytes, ref: int, **kw: object) -> list[Deliver]:
    # Through the wire and back, as the bridge will see them.
    out = []
    for p in deliver_parts(sender, content, scts=T, ref=ref, **kw):  # type: ignore[arg-type]
        d = decode(encode(p))
        assert isinstance(d, Deliver)
        out.append(d)
    return out


def test_single_part_completes_at_once() -> None:
    r = Reassembler()
    (p,) = _parts("+447700900123", "hello", 0)
    m = r.add(p, 0.0)
    assert m is not None
    assert m.text == "hello" and m.data is None
    assert m.encoding is Alphabet.GSM7
    assert str(m.sender) == "+447700900123"
    assert m.parts == (p,)
    assert m.timestamp == T
    assert len(r) == 0


@pytest.mark.parametrize("seed", range(10))
def test_shuffled_and_duplicated(seed: int) -> None:
    rnd = random.Random(seed)
    text = "".join(rnd.choice("abc€{ ") for _ in range(700))
    parts = _parts("2936", text, ref=rnd.randrange(256))
    feed = parts + rnd.sample(parts, k=len(parts) // 2)
    rnd.shuffle(feed)
    r = Reassembler()
    done = []
    for i, p in enumerate(feed):
        m = r.add(p, float(i))
        if m is not None:
            done.append(m)
    # Duplicates after completion start a new group (the caller dedupes
    # whole messages); before completion they are ignored.
    assert done[0].text == text
    assert [q.tp_ud.concat.seq for q in done[0].parts] == list(  # type: ignore[union-attr]
        range(1, len(parts) + 1)
    )


def test_interleaved_messages_and_16bit_refs() -> None:
    a = _parts("+111", "A" * 400, ref=5)
    b = _parts("+222", "B" * 400, ref=5)  # same ref, other sender
    c = _parts("+111", "C" * 400, ref=5, ref16=True)  # same ref, 16-bit
    d = _parts("+111", b"\x01" * 300, ref=6)
    r = Reassembler()
    done = {}
    for group in zip(a, b, c, d, strict=False):
        for p in group:
            m = r.add(p, 0.0)
            if m is not None:
                done[
                    (
                        str(m.sender),
                        m.parts[0].tp_ud.concat.ref16,  # type: ignore[union-attr]
                        m.encoding,
                    )
                ] = m
    assert done[("+111", False, Alphabet.GSM7)].text == "A" * 400
    assert done[("+222", False, Alphabet.GSM7)].text == "B" * 400
    assert done[("+111", True, Alphabet.GSM7)].text == "C" * 400
    assert done[("+111", False, Alphabet.DATA8)].data == b"\x01" * 300
    assert len(r) == 0


def test_ports_survive() -> None:
    parts = _parts("2936", b"\xff" * 200, ref=1, ports=Ports(src=16000, dst=16001))
    r = Reassembler()
    m = None
    for p in reversed(parts):
        m = r.add(p, 0.0) or m
    assert m is not None and m.ports == Ports(src=16000, dst=16001)


def test_expire_hands_back_incomplete() -> None:
    parts = _parts("+111", "x" * 500, ref=3)
    r = Reassembler()
    r.add(parts[0], 10.0)
    r.add(parts[2], 12.0)
    assert r.expire(now=40.0, max_age=30.0) == []
    (inc,) = r.expire(now=40.5, max_age=30.0)
    assert inc.missing == (2, 4)
    assert [p.tp_ud.concat.seq for p in inc.parts] == [1, 3]  # type: ignore[union-attr]
    assert inc.first_seen == 10.0 and not inc.evicted
    assert (inc.ref, inc.total, str(inc.sender)) == (3, 4, "+111")
    assert len(r) == 0


def test_bound_evicts_oldest_and_hands_it_back() -> None:
    r = Reassembler(max_pending=2)
    groups = [_parts(f"+{i}", "z" * 200, ref=i) for i in range(3)]
    for i, g in enumerate(groups):
        assert r.add(g[0], float(i)) is None
    assert len(r) == 2
    (ev,) = r.expire(now=3.0, max_age=100.0)
    assert ev.evicted and str(ev.sender) == "+0"
    # The two others still complete.
    assert r.add(groups[1][1], 4.0) is not None
    assert r.add(groups[2][1], 4.0) is not None
    with pytest.raises(ValueError):
        Reassembler(max_pending=0)


def test_surrogate_pair_split_by_sender_is_rejoined() -> None:
    from pdu import Address, Concat, DataCoding, UserData

    pair = "😀".encode("utf-16-be")
    halves = (b"\x00A" + pair[:2], pair[2:] + b"\x00B")
    parts = []
    for seq, payload in enumerate(halves, 1):
        d = Deliver(
            tp_oa=Address("2936"),
            tp_scts=T,
            tp_dcs=DataCoding(8),
            tp_ud=UserData((Concat(1, 2, seq).to_ie(),), "placeholder"),
        )
        raw = encode(d)
        # Swap the placeholder for the raw half (each half has a lone surrogate):
        # TP-UDL sits before the 6-octet header, then the payload.
        at = raw.index("placeholder".encode("utf-16-be"))
        raw = raw[: at - 7] + bytes((6 + len(payload),)) + raw[at - 6 : at] + payload
        got = decode(raw)
        assert isinstance(got, Deliver)
        assert "\ufffd" in (got.tp_ud.text or "")
        parts.append(got)
    r = Reassembler()
    assert r.add(parts[1], 0.0) is None
    m = r.add(parts[0], 0.0)
    assert m is not None and m.text == "A😀B"


def test_evicted_queue_is_bounded() -> None:
    r = Reassembler(max_pending=2)
    for i in range(10):
        r.add(_parts(f"+{i}", "q" * 200, ref=i)[0], float(i))
    assert len(r) == 2
    assert r.dropped == 6  # 8 evicted, 2 kept for expire()
    handed = r.expire(now=100.0, max_age=1000.0)
    assert [str(m.sender) for m in handed] == ["+6", "+7"]
    assert all(m.evicted for m in handed)
