"""The SMS-SUBMIT encode fast paths give exactly what the general paths give.

``pdu.segment.submit_parts`` and ``pdu.segment.plan`` take a lean path for a
one-part message with no header element (values built through the slot
setters); ``pdu.segment._submit_parts_general`` / ``_plan_general`` are the
unshortened paths. ``Address.parse`` and ``encode_address`` have a plain
digits fast path. Equal objects, identical bytes, same errors.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pdu
from pdu import segment
from pdu.address import (
    MAX_ADDRESS_SEMI_OCTETS,
    Address,
    _digits_to_semi_octets,
    encode_address,
)
from pdu.dcs import Alphabet
from pdu.errors import PduError

# Text: mostly GSM 7-bit (with extension characters), some BMP, astral and
# (rarely) lone surrogates; short and long enough to need several parts.
_GSM_CHARS = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCXYZ^{}\\[~]|€"
_chars = st.one_of(
    st.sampled_from(_GSM_CHARS),
    st.characters(),
    st.sampled_from("Кирилл中文😀\U0001f600"),
    st.sampled_from("\ud800\udc00"),  # lone surrogates (one at a time)
)
_texts = st.one_of(
    st.text(_chars, max_size=80),
    st.text(_chars, min_size=60, max_size=200),
    st.text(st.sampled_from(_GSM_CHARS), min_size=150, max_size=170),
    st.text(st.sampled_from("Жж😀a"), min_size=60, max_size=80),
)
_binary = st.one_of(st.binary(max_size=150), st.binary(min_size=130, max_size=150).map(bytearray))
_contents = st.one_of(_texts, _binary)
_encodings = st.sampled_from(
    [None, None, Alphabet.GSM7, Alphabet.UCS2, Alphabet.DATA8, "ucs2", "gsm7"]
)
_recipients = st.one_of(
    st.sampled_from(
        [
            "+447700900123",
            "+15551234567",
            "2936",
            "000",
            "+1 (555) 010-0000",
            " +4477 ",
            "Alpha",
            "+",
            "+١٢٣",
            "+123456789012345678901",
            "*#21#",
        ]
    ),
    st.text("+0123456789", min_size=1, max_size=22),
    st.builds(
        Address, st.text("0123456789", max_size=21), st.sampled_from([0, 1, 2, 5]), st.just(1)
    ),
)
_kwargs = st.fixed_dictionaries(
    {
        "encoding": _encodings,
        "srr": st.booleans(),
        "mr": st.integers(0, 600),
        "ref": st.integers(-1, 70000),
        "vp": st.one_of(st.none(), st.just(timedelta(hours=1))),
        "message_class": st.one_of(st.none(), st.integers(-1, 4)),
        "ref16": st.booleans(),
        "pid": st.integers(0, 300),
        "smsc": st.one_of(st.none(), st.just(Address("31624000000", 1, 1))),
    }
)


def _outcome(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args, **kwargs)
    except PduError as exc:
        return "error", (type(exc), exc.reason, exc.field)
    except (TypeError, ValueError) as exc:
        return "error", (type(exc), str(exc))


def _encoded(parts: list[pdu.Submit]) -> tuple[str, Any]:
    return _outcome(lambda: [(pdu.encode(m), pdu.cmgs_pdu(m)) for m in parts])


def _same_values(a: object, b: object) -> None:
    """Equal, same types, field by field (ucs2_octets is not compared by ==)."""
    assert type(a) is type(b)
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            _same_values(getattr(a, f.name), getattr(b, f.name))
    else:
        assert a == b


@settings(max_examples=400, deadline=None)
@given(_recipients, _contents, _kwargs)
def test_submit_parts_fast_path_equals_general(
    recipient: str | Address, content: str | bytes, kwargs: dict[str, Any]
) -> None:
    fast = _outcome(segment.submit_parts, recipient, content, **kwargs)
    general = _outcome(segment._submit_parts_general, recipient, content, **kwargs)
    assert fast[0] == general[0]
    if fast[0] == "error":
        assert fast[1] == general[1]
        return
    assert fast[1] == general[1]
    for a, b in zip(fast[1], general[1], strict=True):
        _same_values(a, b)
        assert hash(a) == hash(b)
        with pytest.raises(dataclasses.FrozenInstanceError):
            a.tp_mr = 1  # type: ignore[misc]
    assert _encoded(fast[1]) == _encoded(general[1])


@settings(max_examples=300, deadline=None)
@given(
    _contents,
    _encodings,
    st.booleans(),
    st.sampled_from([(0, 0), (0, 0), (1, 0), (0, 2)]),
    st.one_of(st.none(), st.just(pdu.Ports(1000, 2000))),
)
def test_plan_fast_path_equals_general(
    content: str | bytes,
    encoding: Alphabet | None,
    ref16: bool,
    langs: tuple[int, int],
    ports: pdu.Ports | None,
) -> None:
    locking, single = langs
    kw: dict[str, Any] = {
        "encoding": encoding,
        "ref16": ref16,
        "locking": locking,
        "single": single,
        "ports": ports,
    }
    fast = _outcome(segment.plan, content, **kw)
    general = _outcome(segment._plan_general, content, **kw)
    assert fast == general
    if fast[0] == "ok":
        _same_values(fast[1], general[1])
        assert hash(fast[1]) == hash(general[1])


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text("0123456789", max_size=24).map(lambda d: "+" + d),
        st.text("+0123456789 -#*a", max_size=24),
        st.text(max_size=10),
        st.text("0123456789", min_size=1, max_size=24),
        st.sampled_from(["2936", "000", " 2936 ", "+١٢٣", "١٢٣", "+", "+ 1", "12-34"]),
    )
)
def test_address_parse_fast_path(s: str) -> None:
    got = _outcome(Address.parse, s)
    digits = s[1:]
    if s[:1] == "+" and digits.isascii() and digits.isdigit():
        assert got == ("ok", Address(digits, 1, 1))
    if s.isascii() and s.isdigit():
        assert got == ("ok", Address(s, 0, 1))
    if got[0] == "ok":
        a = got[1]
        assert type(a) is Address and a == Address(a.number, a.ton, a.npi)


@settings(max_examples=300, deadline=None)
@given(
    st.text("0123456789", max_size=24) | st.text("0123456789*#abc+", max_size=24),
    st.integers(0, 7),
    st.integers(0, 15),
)
def test_encode_address_fast_path(number: str, ton: int, npi: int) -> None:
    addr = Address(number, ton, npi)
    got = _outcome(encode_address, addr, "TP-DA")
    if ton == 5:
        return  # alphanumeric: the general path only
    count = len(number) - number.startswith("+")

    def reference() -> bytes:
        value = _digits_to_semi_octets(number, "TP-DA")
        if count > MAX_ADDRESS_SEMI_OCTETS:
            raise PduError(f"address {number!r} longer than 20 digits", field="TP-DA")
        return bytes((count, addr.type_octet)) + value

    assert got == _outcome(reference)
