"""The worked vector table, decoded and re-encoded."""

from __future__ import annotations

import pytest

import pdu
from pdu import JSON_KEYS, decode, encode, to_json

from .vectors import VECTORS, Vector

_ids = [v.name for v in VECTORS]


@pytest.mark.parametrize("v", VECTORS, ids=_ids)
def test_decode_fields(v: Vector) -> None:
    msg = decode(v.hex, smsc=v.smsc)
    j = to_json(msg)
    assert tuple(j) == JSON_KEYS
    for key, want in v.expect.items():
        assert j[key] == want, key


@pytest.mark.parametrize("v", VECTORS, ids=_ids)
def test_encode_round_trip(v: Vector) -> None:
    msg = decode(v.hex, smsc=v.smsc)
    again = encode(msg, smsc=v.smsc)
    if v.canonical:
        assert again.hex().upper() == v.hex.upper()
    # Whatever the wire form, the decoded value survives a round trip.
    assert decode(again, smsc=v.smsc) == msg


@pytest.mark.parametrize("v", VECTORS, ids=_ids)
def test_decode_input_forms(v: Vector) -> None:
    raw = bytes.fromhex(v.hex)
    want = decode(raw, smsc=v.smsc)
    assert decode(v.hex.lower(), smsc=v.smsc) == want
    spaced = " ".join(v.hex[i : i + 2] for i in range(0, len(v.hex), 2))
    assert decode(f"\n {spaced}\r\n", smsc=v.smsc) == want
    assert decode(bytearray(raw), smsc=v.smsc) == want
    assert decode(memoryview(raw), smsc=v.smsc) == want


_WITH_SMSC = [v for v in VECTORS if v.smsc]


@pytest.mark.parametrize("v", _WITH_SMSC, ids=[v.name for v in _WITH_SMSC])
def test_bare_tpdu_equals_smsc_stripped(v: Vector) -> None:
    raw = bytes.fromhex(v.hex)
    tpdu = raw[1 + raw[0] :]
    bare = decode(tpdu, smsc=False)
    assert bare.smsc is None
    assert to_json(bare) | {"smsc": None} == to_json(decode(raw)) | {"smsc": None}


_TRUNCATABLE = [v for v in VECTORS if v.smsc and v.expect.get("type") != "status-report"]


@pytest.mark.parametrize("v", _TRUNCATABLE, ids=[v.name for v in _TRUNCATABLE])
def test_truncations_raise_pdu_error(v: Vector) -> None:
    raw = bytes.fromhex(v.hex)
    for n in range(len(raw)):
        try:
            decode(raw[:n])
        except pdu.PduError:
            continue
        # (A status report cut after TP-ST would still be valid: not listed.)
        pytest.fail(f"prefix of {n} octets decoded")
