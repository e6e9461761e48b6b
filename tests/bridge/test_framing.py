"""Twilio framing: products, senders, include_sid, body limits, reply address."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge import framing
from bridge.framing import (
    BinaryNotAllowed,
    BodyTooLong,
    FramingConfig,
    FramingError,
    Product,
    ProductSetting,
    SidPosition,
    UnknownSender,
    frame,
)
from pdu import alphabet
from pdu.dcs import Alphabet

SID = "DC" + "0123456789abcdef" * 2
HSID = "HC" + "ABCDEF0123456789" * 2
PW = FramingConfig()
SUPER = FramingConfig(product=ProductSetting.SUPER_SIM)
AUTO = FramingConfig(product=ProductSetting.AUTO)


def test_programmable_wireless_from_2936_replies_to_2936():
    f = frame("2936", "ping", PW)
    assert (f.product, f.reply_to, f.body, f.sid, f.bench) == (
        Product.PROGRAMMABLE_WIRELESS,
        "2936",
        "ping",
        None,
        False,
    )


def test_international_form_of_the_short_code_is_the_short_code():
    assert frame("+2936", "ping", PW).product is Product.PROGRAMMABLE_WIRELESS


def test_configured_senders_compared_without_plus():
    cfg = FramingConfig(wireless_senders=frozenset({"+12025550100"}))
    assert frame("12025550100", "ping", cfg).product is Product.PROGRAMMABLE_WIRELESS
    assert frame("+12025550100", "ping", cfg).reply_to == "2936"


def test_configurable_sender_set():
    cfg = FramingConfig(wireless_senders=frozenset({"2936", "12345"}))
    assert frame("12345", "ping", cfg).reply_to == "2936"
    with pytest.raises(UnknownSender):
        frame("12345", "ping", PW)


def test_super_sim_from_and_to_000():
    f = frame("000", "ping", SUPER)
    assert (f.product, f.reply_to) == (Product.SUPER_SIM, "000")
    with pytest.raises(UnknownSender):
        frame("2936", "ping", SUPER)
    with pytest.raises(UnknownSender):
        frame("000", "ping", PW)


def test_super_sim_refuses_binary():
    with pytest.raises(BinaryNotAllowed) as e:
        frame("000", b"\xa0\x01\x00", SUPER)
    assert e.value.reason == "binary-not-allowed"


def test_auto_answers_on_the_product_the_command_came_from():
    assert frame("000", "ping", AUTO).reply_to == "000"
    assert frame("2936", "ping", AUTO).reply_to == "2936"
    assert frame("2936", b"\xa0", AUTO).binary_replies
    with pytest.raises(BinaryNotAllowed):
        frame("000", b"\xa0", AUTO)


def test_spoofed_or_unknown_sender_refused():
    with pytest.raises(UnknownSender) as e:
        frame("+447700900123", "reboot", AUTO)
    assert e.value.reason == "unknown-sender"
    assert "+447700900123" in str(e.value)


def test_bench_number_answered_at_short_code_unless_configured():
    cfg = FramingConfig(bench_numbers=frozenset({"+447700900123"}))
    f = frame("+447700900123", "ping", cfg)
    assert (f.bench, f.reply_to) == (True, "2936")
    direct = FramingConfig(bench_numbers=frozenset({"447700900123"}), answer_bench_directly=True)
    f = frame("+447700900123", "ping", direct)
    assert (f.bench, f.reply_to, f.product) == (
        True,
        "+447700900123",
        Product.PROGRAMMABLE_WIRELESS,
    )


def test_include_sid_start_and_end_taken_off():
    f = frame("2936", f"{SID} gpio set relay1 on", PW)
    assert (f.body, f.sid, f.sid_position) == ("gpio set relay1 on", SID, SidPosition.START)
    f = frame("2936", f"gpio set relay1 on {SID}", PW)
    assert (f.body, f.sid, f.sid_position) == ("gpio set relay1 on", SID, SidPosition.END)
    f = frame("000", f"{HSID} ping", SUPER)
    assert (f.body, f.sid) == ("ping", HSID)


@pytest.mark.parametrize(
    "text",
    [
        f"{SID}  ping",  # two spaces: the body keeps one (the grammar ignores it)
        f"{SID}ping",  # no separator
        f"ping {SID[:-1]}",  # 31 hex digits
        f"ping XC{SID[2:]}",  # wrong prefix
        f"ping {SID}x",
        SID,  # a SID alone has no separator
    ],
)
def test_not_a_sid_or_not_exactly_one_space(text):
    body, sid, _ = framing.split_sid(text)
    if text.startswith(SID + "  "):
        assert (body, sid) == (" ping", SID)
    else:
        assert (body, sid) == (text, None)


def test_sid_positions_configurable():
    only_end = FramingConfig(sid_positions=frozenset({SidPosition.END}))
    assert frame("2936", f"{SID} ping", only_end).sid is None
    assert frame("2936", f"ping {SID}", only_end).sid == SID


def test_sid_at_both_ends_takes_the_start():
    body, sid, where = framing.split_sid(f"{SID} ping {HSID}")
    assert (body, sid, where) == (f"ping {HSID}", SID, SidPosition.START)


def test_body_limits_exact():
    assert frame("2936", "a" * 160, PW).body == "a" * 160
    with pytest.raises(BodyTooLong, match="161 septets"):
        frame("2936", "a" * 161, PW)
    # extension characters cost two septets (TS 23.038 §6.2.1.1)
    assert frame("2936", "{" * 80, PW)
    assert frame("2936", "{" * 79 + "aa", PW)
    with pytest.raises(BodyTooLong, match="161 septets"):
        frame("2936", "{" * 80 + "a", PW)
    assert frame("2936", bytes(140), PW).binary
    with pytest.raises(BodyTooLong, match="141 octets"):
        frame("2936", bytes(141), PW)
    assert frame("2936", "é" * 70, PW, coding=Alphabet.UCS2)
    with pytest.raises(BodyTooLong, match="71 UCS-2"):
        frame("2936", "é" * 71, PW, coding=Alphabet.UCS2)
    # a surrogate pair is two UCS-2 units
    with pytest.raises(BodyTooLong, match="72 UCS-2"):
        frame("2936", "\U0001f600" * 36, PW, coding=Alphabet.UCS2)


def test_limit_counts_the_sid_as_it_travelled():
    body = "a" * (160 - 35)
    assert frame("2936", f"{SID} {body}", PW).body == body
    with pytest.raises(BodyTooLong):
        frame("2936", f"{SID} {body}a", PW)


@given(st.text(max_size=200), st.sampled_from(list(Alphabet)))
def test_body_units_is_the_codecs_count(text, coding):
    units, limit = framing.body_units(text, coding)
    if coding is Alphabet.UCS2:
        assert (units, limit) == (len(text.encode("utf-16-be", "surrogatepass")) // 2, 70)
    else:
        n = alphabet.gsm7_length(text)
        assert (units, limit) == ((len(text) if n is None else n), 160)


@given(
    st.sampled_from(["2936", "+2936", "000", "12345", "+447700900123", ""]),
    st.one_of(st.text(max_size=200), st.binary(max_size=200)),
    st.sampled_from([PW, SUPER, AUTO, FramingConfig(bench_numbers=frozenset({"12345"}))]),
)
def test_arbitrary_input_frames_or_raises_framing_error(sender, body, cfg):
    try:
        f = frame(sender, body, cfg)
    except FramingError:
        return
    assert f.reply_to in {"2936", "000"}
    if isinstance(body, str):
        assert f.body in body
        if f.sid is not None:
            assert framing.is_sid(f.sid) and len(f.sid) == 34
            assert len(f.body) == len(body) - 35
    else:
        assert f.body == body


@given(
    st.text(alphabet=st.characters(codec="ascii", exclude_characters="\r\n"), max_size=125),
    st.sampled_from(["DC", "HC"]),
    st.text(alphabet="0123456789abcdefABCDEF", min_size=32, max_size=32),
    st.sampled_from(list(SidPosition)),
)
def test_sid_round_trip(body, prefix, digits, where):
    sid = prefix + digits
    text = f"{sid} {body}" if where is SidPosition.START else f"{body} {sid}"
    got_body, got_sid, got_where = framing.split_sid(text)
    if where is SidPosition.END and framing.split_sid(text, frozenset({SidPosition.START}))[1]:
        return  # the body itself starts with a SID and a space: the start one wins
    assert (got_body, got_sid, got_where) == (body, sid, where)


@given(st.text(alphabet="ab{€ ", max_size=200))
def test_gsm7_bound_exact(text):
    septets = alphabet.gsm7_length(text)
    try:
        frame("2936", text, PW)
    except BodyTooLong:
        assert septets > 160
    else:
        assert septets <= 160


@given(st.binary(max_size=200))
def test_octet_bound_exact(data):
    try:
        frame("2936", data, PW)
    except BodyTooLong:
        assert len(data) > 140
    else:
        assert len(data) <= 140
