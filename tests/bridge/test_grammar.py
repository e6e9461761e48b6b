"""The Command grammar: text and binary forms, typed arguments, usage errors."""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge import grammar
from bridge.grammar import (
    BinaryFormatError,
    BoolArg,
    ChoiceArg,
    Command,
    EmptyCommand,
    FloatArg,
    GrammarError,
    IntArg,
    Level,
    NameArg,
    TextArg,
    UnknownVerb,
    UsageError,
    VerbSpec,
)

SPECS = [
    VerbSpec("ping", level=Level.OPEN, idempotent=True, binary_id=1),
    VerbSpec("status", level=Level.OPEN, idempotent=True, binary_id=2),
    VerbSpec(
        "gpio set",
        (NameArg("line", "gpio"), BoolArg("value")),
        idempotent=True,
        binary_id=3,
    ),
    VerbSpec("gpio get", (NameArg("line", "gpio"),), level=Level.ALLOWLISTED, binary_id=4),
    VerbSpec(
        "gpio pulse", (NameArg("line", "gpio"), IntArg("ms", 1, 60000, default=500)), binary_id=5
    ),
    VerbSpec("sensor", (ChoiceArg("which", ("all", "temp", "hum"), default="all"),), binary_id=6),
    VerbSpec("set", (FloatArg("threshold", -50.0, 150.0), TextArg("label", 8)), binary_id=7),
    VerbSpec("int", (IntArg("n"),), binary_id=8),
    VerbSpec("reboot"),
]
VERBS = {s.verb: s for s in SPECS}
NAMES = {"gpio": frozenset({"relay1", "LED"})}


def one(text):
    (c,) = grammar.parse(text, VERBS, NAMES)
    return c


def test_case_insensitive_verbs_and_extra_spaces():
    assert one("  GPIO   Set\trelay1   ON ") == Command(
        "gpio set", {"line": "relay1", "value": True}
    )
    assert one("Ping") == Command("ping", {})


def test_names_matched_exactly_then_ignoring_case():
    assert one("gpio get led").args == {"line": "LED"}
    assert one("gpio get RELAY1").args == {"line": "relay1"}


def test_optional_argument_defaults():
    assert one("gpio pulse relay1").args == {"line": "relay1", "ms": 500}
    assert one("gpio pulse relay1 20").args == {"line": "relay1", "ms": 20}
    assert one("sensor").args == {"which": "all"}
    assert one("sensor TEMP").args == {"which": "temp"}


def test_several_commands_each_parsed_separately():
    got = grammar.parse("ping; gpio set relay1 maybe ;; status;nope", VERBS, NAMES)
    assert got[0] == Command("ping", {})
    assert isinstance(got[1], UsageError)
    assert got[1].usage == "gpio set <line> <on|off>"
    assert "maybe" in got[1].detail
    assert got[2] == Command("status", {})
    assert isinstance(got[3], UnknownVerb) and got[3].verb == "nope"


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("gpio set relay1", "value is missing"),
        ("gpio set relay1 on off", "too many arguments"),
        ("gpio set relay9 on", "'relay9' is not a configured gpio (LED, relay1)"),
        ("gpio pulse relay1 0", "0 is not in 1..60000"),
        ("gpio pulse relay1 60001", "60001 is not in 1..60000"),
        ("gpio pulse relay1 1.5", "not an integer"),
        ("gpio pulse relay1 1_000", "not an integer"),
        ("gpio pulse relay1 ١٢", "not an integer"),  # Arabic-Indic digits are not ASCII
        ("set nan x", "not a number"),
        ("set 1e999 x", "not in"),
        ("set 150.1 x", "not in"),
        ("set 20 toolonglabel", "longer than 8"),
        ("sensor wind", "not one of all, temp, hum"),
    ],
)
def test_usage_errors_carry_the_usage(text, detail):
    with pytest.raises(UsageError) as e:
        grammar.parse_command(text, VERBS, NAMES)
    assert detail in e.value.detail
    assert e.value.usage == VERBS[e.value.verb].usage
    assert str(e.value).endswith("usage: " + e.value.usage)


def test_exact_numeric_bounds_accepted():
    assert grammar.parse_command("gpio pulse relay1 1", VERBS, NAMES).args["ms"] == 1
    assert grammar.parse_command("gpio pulse relay1 60000", VERBS, NAMES).args["ms"] == 60000
    assert grammar.parse_command("set -50 x", VERBS, NAMES).args["threshold"] == -50.0
    assert grammar.parse_command("set 1.5e2 x", VERBS, NAMES).args["threshold"] == 150.0


def test_usage_strings():
    assert VERBS["gpio pulse"].usage == "gpio pulse <line> [<ms>]"
    assert VERBS["sensor"].usage == "sensor [<all|temp|hum>]"


def test_empty_and_unknown():
    for text in ("", "   ", ";;", " ; "):
        with pytest.raises(EmptyCommand):
            grammar.parse(text, VERBS, NAMES)
    with pytest.raises(UnknownVerb):
        grammar.parse_command("gpio", VERBS, NAMES)  # only two-word gpio verbs exist


@pytest.mark.parametrize(
    ("sms", "command", "footer"),
    [
        ("ping\nSent from my phone", "ping", "\nSent from my phone"),
        ("ping\r\n--\r\nCarrier", "ping", "\r\n--\r\nCarrier"),
        ("status  -- FreeMsg: ad", "status  ", "-- FreeMsg: ad"),
        ("status SENT FROM x", "status ", "SENT FROM x"),
        ("ping  status", "ping  status", ""),  # two spaces are not a footer
        ("ßping SENT from", "ßping ", "SENT from"),  # casefold would shift the cut
    ],
)
def test_footer_rule(sms, command, footer):
    assert grammar.split_footer(sms, ["--", "sent from"]) == (command, footer)


def test_canonical_form_collapses_whitespace_and_keeps_case():
    assert grammar.canonical("  GPIO  set relay1\ton ;; ping ;") == "GPIO set relay1 on;ping"


def test_verb_spec_declaration_errors():
    with pytest.raises(ValueError, match="lower-case"):
        VerbSpec("Gpio")
    with pytest.raises(ValueError, match="after an optional"):
        VerbSpec("x", (IntArg("a", default=1), IntArg("b")))
    with pytest.raises(ValueError, match="repeated"):
        VerbSpec("x", (IntArg("a"), IntArg("a")))
    with pytest.raises(ValueError, match="binary_id"):
        VerbSpec("x", binary_id=256)
    with pytest.raises(ValueError, match="timeout"):
        VerbSpec("x", timeout=0)
    with pytest.raises(ValueError, match="default 0 of 'ms'"):
        VerbSpec("x", (IntArg("ms", 1, 10, default=0),))
    with pytest.raises(ValueError, match="default 'x'"):
        VerbSpec("x", (ChoiceArg("c", ("a", "b"), default="x"),))
    with pytest.raises(ValueError, match="default 1"):
        VerbSpec("x", (BoolArg("b", default=1),))


# --- binary ----------------------------------------------------------------


def test_binary_form_octet_by_octet():
    cmds = (
        Command("gpio set", {"line": "relay1", "value": True}, VERBS["gpio set"]),
        Command("int", {"n": -3}, VERBS["int"]),
        Command("sensor", {"which": "hum"}, VERBS["sensor"]),
    )
    data = grammar.encode_binary(cmds)
    assert data.hex(" ") == (
        "a0 03 02 06 72 65 6c 61 79 31 01"  # gpio set, 2 args, "relay1", on
        " 08 01 05"  # int, 1 arg, zigzag(-3) = 5
        " 06 01 02"  # sensor, 1 arg, choice index 2
    )
    assert grammar.decode_binary(data, VERBS, NAMES) == cmds
    assert grammar.encode_binary(cmds, signed=True)[0] == 0xA1
    assert grammar.binary_signed(b"\xa1") and not grammar.binary_signed(b"\xa0")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", BinaryFormatError),
        (b"\x00\x01\x00", BinaryFormatError),
        (b"\xa0", EmptyCommand),
        (b"\xa0\x63\x00", UnknownVerb),
        (b"\xa0\x01", BinaryFormatError),  # argc missing
        (b"\xa0\x03\x01\x06relay1", UsageError),  # one argument, two required
        (b"\xa0\x03\x02\x06relay1\x02", BinaryFormatError),  # bool 2
        (b"\xa0\x03\x02\x07relay1", BinaryFormatError),  # length past the end
        (b"\xa0\x03\x02\x02\xff\xfe\x01", BinaryFormatError),  # not UTF-8
        (b"\xa0\x08\x01\x80", BinaryFormatError),  # varint runs past the end
        (b"\xa0\x08\x01\x80\x00", BinaryFormatError),  # not shortest form
        (b"\xa0\x08\x01" + b"\xff" * 10 + b"\x01", BinaryFormatError),  # > 10 octets
        (b"\xa0\x06\x01\x03", BinaryFormatError),  # choice out of range
        (b"\xa0\x07\x02\x7f\xf8\x00\x00\x00\x00\x00\x00\x01x", UsageError),  # NaN
        (b"\xa0\x07\x02\x00\x00", BinaryFormatError),  # float short
    ],
)
def test_binary_malformed(data, error):
    with pytest.raises(error):
        grammar.decode_binary(data, VERBS, NAMES)


# --- properties --------------------------------------------------------------

_token = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters=";"), min_size=1
).filter(lambda t: t.split() == [t])


@st.composite
def commands(draw):
    spec = draw(st.sampled_from([s for s in SPECS if s.binary_id is not None]))
    args = {}
    n = draw(st.integers(spec.required, len(spec.args)))
    for a in spec.args[:n]:
        if isinstance(a, IntArg):
            args[a.name] = draw(st.integers(a.min, a.max))
        elif isinstance(a, FloatArg):
            args[a.name] = draw(st.floats(a.min, a.max, allow_nan=False))
        elif isinstance(a, BoolArg):
            args[a.name] = draw(st.booleans())
        elif isinstance(a, ChoiceArg):
            args[a.name] = draw(st.sampled_from(a.choices))
        elif isinstance(a, NameArg):
            args[a.name] = draw(st.sampled_from(sorted(NAMES[a.kind])))
        else:
            args[a.name] = draw(_token.filter(lambda t, a=a: len(t) <= a.max_length))
    for a in spec.args[n:]:
        args[a.name] = a.default
    return Command(spec.verb, args, spec)


@given(st.lists(commands(), min_size=1, max_size=5))
def test_text_round_trip(cmds):
    text = " ; ".join(grammar.format_command(c) for c in cmds)
    assert grammar.parse(text, VERBS, NAMES) == tuple(cmds)


@given(st.lists(commands(), min_size=1, max_size=5), st.booleans())
def test_binary_round_trip(cmds, signed):
    data = grammar.encode_binary(cmds, signed=signed)
    assert grammar.binary_signed(data) is signed
    assert grammar.decode_binary(data, VERBS, NAMES) == tuple(cmds)


@given(st.integers(-(2**69), 2**69 - 1))
def test_varint_exact(n):
    raw = grammar._varint(n)
    assert grammar._read_varint(raw, 0) == (n, len(raw))
    assert len(raw) <= 10


@given(st.text(max_size=300), st.lists(st.text(max_size=5), max_size=3))
def test_arbitrary_text_parses_or_raises_grammar_error(text, markers):
    line, footer = grammar.split_footer(text, markers)
    assert line + footer == text and "\n" not in line and "\r" not in line
    try:
        got = grammar.parse(line, VERBS, NAMES)
    except GrammarError:
        return
    assert len(got) == len(grammar.segments(line))
    for c in got:
        assert isinstance(c, Command | GrammarError)
        if isinstance(c, Command):
            for a in VERBS[c.verb].args:
                v = c.args[a.name]
                if isinstance(a, IntArg):
                    assert a.min <= v <= a.max
                if isinstance(a, FloatArg):
                    assert math.isfinite(v) and a.min <= v <= a.max


@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_grammar_error(data):
    try:
        got = grammar.decode_binary(data, VERBS, NAMES)
    except GrammarError:
        return
    assert got and all(isinstance(c, Command) for c in got)
    # what decodes re-encodes to the same octets (one encoding per value)
    assert grammar.encode_binary(got, signed=bool(data[0] & 1)) == data


@given(st.binary(max_size=40))
def test_arbitrary_bytes_after_a_valid_prefix(tail):
    with contextlib.suppress(GrammarError):
        grammar.decode_binary(b"\xa0\x01\x00" + tail, VERBS, NAMES)
