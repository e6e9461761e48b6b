"""Fitting a reply in one SMS: exact bounds, dropping order, never cutting a pair."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pdu
from bridge import auth, reply
from bridge.reply import BinaryField, Field, ReplyTooLong, fit, fit_binary
from pdu import alphabet
from pdu.dcs import Alphabet


def one_sms(text):
    """The codec's own verdict: one part, no header."""
    return pdu.plan(text).parts == 1


def test_exact_gsm7_bound():
    f = fit(["a" * 160])
    assert (f.content, f.alphabet, f.units, f.truncated) == ("a" * 160, Alphabet.GSM7, 160, False)
    f = fit(["a" * 161])
    assert f.truncated and f.units == 160 and f.content == "a" * 157 + "..."


def test_extension_characters_cost_two_and_are_never_cut():
    f = fit(["{" * 80])
    assert f.units == 160 and not f.truncated
    f = fit(["{" * 81])
    # 157 septets for the prefix: 78 whole escapes (156), never half of the 79th
    assert f.content == "{" * 78 + "..." and f.units == 159
    assert alphabet.gsm7_length(f.content) == 159


def test_exact_ucs2_bound_and_surrogate_pairs():
    f = fit(["é" * 50 + "ж" * 20])
    assert (f.alphabet, f.units, f.truncated) == (Alphabet.UCS2, 70, False)
    f = fit(["ж" * 71])
    assert (f.units, f.truncated) == (70, True) and f.content == "ж" * 67 + "..."
    f = fit(["\U0001f600" * 35])  # 70 units exactly
    assert (f.units, f.truncated) == (70, False)
    f = fit(["\U0001f600" * 36])
    assert f.content == "\U0001f600" * 33 + "..."  # 66 + 3 units; the 34th pair would be 69+2


def test_least_important_dropped_first_never_split():
    fields = [
        Field("relay1=on", 10),
        Field("uptime 3d4h", 5),
        Field("signal -71dBm", 3),
        Field("x" * 130, 1),
    ]
    f = fit(fields)
    assert f.content == "relay1=on uptime 3d4h signal -71dBm"
    assert f.dropped == (3,)
    f = fit(fields, reserve=auth.TEXT_TRAILER_CHARS)
    assert f.units + 23 <= 160 and f.capacity == 137


def test_equal_priorities_drop_the_later_one():
    f = fit([Field("a" * 100), Field("b" * 50), Field("c" * 50)])
    assert f.content == "a" * 100 + " " + "b" * 50 and f.dropped == (2,)


def test_dropping_a_ucs2_field_brings_back_gsm7():
    f = fit([Field("a" * 100, 2), Field("ж", 1)])
    assert (f.alphabet, f.content, f.dropped) == (Alphabet.GSM7, "a" * 100, (1,))


def test_reserve_for_the_signature():
    f = fit(["a" * 137], reserve=23)
    assert not f.truncated
    f = fit(["a" * 138], reserve=23)
    assert f.truncated and f.units == 137
    signed = auth.sign_reply(
        f.content, keys=auth.Keyring({1: bytes(32)}, 1), device_id="dev", counter=1
    )
    assert alphabet.gsm7_length(signed) == 160 and one_sms(signed)


def test_lone_surrogates_replaced():
    f = fit(["ok \ud800"])
    assert f.content == "ok \ufffd" and f.alphabet is Alphabet.UCS2


def test_reserve_bounds():
    with pytest.raises(ValueError, match="reserve"):
        fit(["x"], reserve=67)


def test_binary_exact_bound_and_dropping():
    assert fit_binary([bytes(140)]).units == 140
    f = fit_binary([BinaryField(bytes(100), 2), BinaryField(bytes(41), 1)])
    assert (f.content, f.dropped) == (bytes(100), (1,))
    assert fit_binary([bytes(123)], reserve=auth.BINARY_TRAILER_OCTETS).units == 123
    with pytest.raises(ReplyTooLong):
        fit_binary([bytes(124)], reserve=auth.BINARY_TRAILER_OCTETS)
    assert fit_binary([]).content == b""


_fields = st.lists(
    st.builds(
        Field,
        st.text(
            alphabet=st.one_of(
                st.sampled_from("ab {}[]~\\|^€é"),
                st.characters(),
            ),
            max_size=120,
        ),
        st.integers(0, 3),
    ),
    min_size=1,
    max_size=6,
)


@given(_fields, st.integers(0, 40))
def test_always_fits_one_sms(fields, reserve):
    f = fit(fields, reserve=reserve)
    text = f.content
    assert isinstance(text, str)
    enc, units, cap = reply.measure(text)
    assert (enc, units) == (f.alphabet, f.units)
    assert units + reserve <= cap
    assert one_sms(text)
    pdu.submit_parts("2936", text)  # the codec encodes it (no lone surrogate left)
    kept = [i for i in range(len(fields)) if i not in f.dropped]
    if not f.truncated:
        assert text == " ".join(reply.clean(fields[i].text) for i in kept)
    else:
        assert len(kept) == 1 and text.endswith("...")
        assert reply.clean(fields[kept[0]].text).startswith(text[:-3])
    # nothing dropped that matters more than something kept
    if f.dropped and kept:
        assert max(fields[i].priority for i in f.dropped) <= min(fields[i].priority for i in kept)


@given(_fields)
def test_nothing_dropped_when_it_fits(fields):
    joined = " ".join(reply.clean(x.text) for x in fields)
    _enc, units, cap = reply.measure(joined)
    f = fit(fields)
    assert (f.content == joined) is (units <= cap)


@given(st.text(alphabet="a{€", min_size=150, max_size=200))
def test_gsm7_truncation_is_the_longest_prefix(text):
    f = fit([text])
    if alphabet.gsm7_length(text) <= 160:
        assert f.content == text
        return
    prefix = f.content[:-3]
    assert alphabet.gsm7_length(prefix) <= 157
    assert alphabet.gsm7_length(text[: len(prefix) + 1]) > 157


@given(st.lists(st.builds(BinaryField, st.binary(max_size=100), st.integers(0, 3)), max_size=5))
def test_binary_fits_or_raises(fields):
    try:
        f = fit_binary(fields, reserve=17)
    except ReplyTooLong:
        assert max(len(x.data) for x in fields) > 123
        return
    assert len(f.content) <= 123
