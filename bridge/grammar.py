"""The Command grammar: text and binary Commands -> typed :class:`Command` values.

Pure: no I/O, no clock. The verbs and their typed arguments are
:class:`VerbSpec` values (registered by ``bridge.actions.registry``); every
argument is checked here, before anything runs.

Text grammar (docs/bridge.md, "Grammar")::

    sms      = command-line [footer]
    command-line = segment *(";" segment)          ; each segment parsed separately
    segment  = *WSP verb *(1*WSP argument) *WSP    ; empty segments are ignored
    verb     = one or two words (``gpio set``), matched case-insensitively

* Whitespace is any run of spaces or tabs (``str.split``): extra spaces never
  matter.
* Footer (what a phone or a carrier appends): the Command is the first line;
  everything from the first line break (CR or LF) on is footer, and so is
  everything from the first configured footer marker (matched
  case-insensitively, e.g. ``"Sent from"``, ``"--"``). Two spaces are *not*
  a footer marker: people and scripts type them.
* Arguments are positional; optional ones (with a default) come last. Types:
  :class:`IntArg`, :class:`FloatArg`, :class:`BoolArg`, :class:`ChoiceArg`,
  :class:`NameArg` (a name the configuration defines, e.g. a GPIO line),
  :class:`TextArg`. A bad or missing argument raises :class:`UsageError`
  carrying the verb's usage string.

Binary form (8-bit data Commands, TS 23.038 §4 alphabet 01), octet by octet::

    octet 0      0xA0 | S    high nibble 0xA: this format; bits 3-1: version 0;
                             bit 0 (S): an authentication trailer follows (bridge.auth)
    then, per Command, until the payload ends:
    octet        verb id     1-255, VerbSpec.binary_id
    octet        argc        arguments present (required <= argc <= declared)
    argc values, by type:    int    zigzag LEB128 varint (at most 10 octets)
                             float  8 octets, IEEE 754 binary64, big-endian
                             bool   1 octet, 0 or 1
                             choice 1 octet, the index in the choice list
                             name, text  1 octet length n, then n octets UTF-8

The authentication trailer, when S is set, is the last
``bridge.auth.BINARY_TRAILER_OCTETS`` octets and is not part of the payload
given to :func:`decode_binary`.
"""

from __future__ import annotations

import enum
import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

ArgValue = int | float | bool | str

#: Names the configuration defines, by kind: ``{"gpio": {"relay1", ...}, ...}``.
Names = Mapping[str, frozenset[str]]

_NO_NAMES: Names = {}


class Level(enum.IntEnum):
    """Minimum security level of an action (issue: open, allow-listed sender, signed)."""

    OPEN = 0
    ALLOWLISTED = 1
    SIGNED = 2


class GrammarError(ValueError):
    """A Command that does not parse; ``reason`` is a short code for the journal."""

    reason = "grammar"


class EmptyCommand(GrammarError):
    """No Command at all (only spaces, ``;`` or a footer)."""

    reason = "empty"


class UnknownVerb(GrammarError):
    """The first word(s) name no registered verb."""

    reason = "unknown-verb"

    def __init__(self, verb: str) -> None:
        self.verb = verb
        super().__init__(f"unknown command {verb!r}")


class UsageError(GrammarError):
    """A known verb with bad arguments; ``usage`` is what the reply shows."""

    reason = "usage"

    def __init__(self, verb: str, usage: str, detail: str) -> None:
        self.verb = verb
        self.usage = usage
        self.detail = detail
        super().__init__(f"{detail}; usage: {usage}")


class BinaryFormatError(GrammarError):
    """A binary Command that violates the binary form (module docstring)."""

    reason = "binary-format"


class _Missing(enum.Enum):
    MISSING = enum.auto()


MISSING: Final = _Missing.MISSING

_INT_RE = re.compile(r"[+-]?[0-9]{1,19}")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
_TRUE = frozenset({"1", "on", "true", "yes", "high"})
_FALSE = frozenset({"0", "off", "false", "no", "low"})
#: Longest text or name argument, in characters (a Command is one SMS).
MAX_TEXT = 160


class _Bad(Exception):
    """Internal: one argument is wrong (turned into UsageError with the usage)."""


@dataclass(frozen=True, slots=True)
class IntArg:
    """An integer (ASCII decimal digits, optional sign) in ``[min, max]``."""

    name: str
    min: int = -(2**63)
    max: int = 2**63 - 1
    default: int | _Missing = MISSING

    def usage(self) -> str:
        return f"<{self.name}>"

    def parse(self, token: str, names: Names) -> int:
        if not _INT_RE.fullmatch(token):
            raise _Bad(f"{self.name}: {token!r} is not an integer")
        return self.check(int(token))

    def check(self, value: int) -> int:
        if not self.min <= value <= self.max:
            raise _Bad(f"{self.name}: {value} is not in {self.min}..{self.max}")
        return value


@dataclass(frozen=True, slots=True)
class FloatArg:
    """A finite decimal number in ``[min, max]``."""

    name: str
    min: float = -math.inf
    max: float = math.inf
    default: float | _Missing = MISSING

    def usage(self) -> str:
        return f"<{self.name}>"

    def parse(self, token: str, names: Names) -> float:
        if not _FLOAT_RE.fullmatch(token):
            raise _Bad(f"{self.name}: {token!r} is not a number")
        return self.check(float(token))

    def check(self, value: float) -> float:
        if not math.isfinite(value) or not self.min <= value <= self.max:
            raise _Bad(f"{self.name}: {value} is not in {self.min}..{self.max}")
        return value


@dataclass(frozen=True, slots=True)
class BoolArg:
    """``on``/``off``, ``true``/``false``, ``yes``/``no``, ``high``/``low``, ``1``/``0``."""

    name: str
    default: bool | _Missing = MISSING

    def usage(self) -> str:
        return "<on|off>"

    def parse(self, token: str, names: Names) -> bool:
        t = token.lower()
        if t in _TRUE:
            return True
        if t in _FALSE:
            return False
        raise _Bad(f"{self.name}: {token!r} is not on or off")


@dataclass(frozen=True, slots=True)
class ChoiceArg:
    """One of fixed words, matched case-insensitively; the declared spelling is returned."""

    name: str
    choices: tuple[str, ...]
    default: str | _Missing = MISSING

    def usage(self) -> str:
        return "<" + "|".join(self.choices) + ">"

    def parse(self, token: str, names: Names) -> str:
        t = token.casefold()
        for c in self.choices:
            if c.casefold() == t:
                return c
        raise _Bad(f"{self.name}: {token!r} is not one of {', '.join(self.choices)}")


@dataclass(frozen=True, slots=True)
class NameArg:
    """A name of kind ``kind`` that the configuration defines (a GPIO line, a sensor,
    a script). Matched exactly, else case-insensitively; the configured spelling
    is returned."""

    name: str
    kind: str
    default: str | _Missing = MISSING

    def usage(self) -> str:
        return f"<{self.name}>"

    def parse(self, token: str, names: Names) -> str:
        known = names.get(self.kind, frozenset())
        if token in known:
            return token
        t = token.casefold()
        for n in sorted(known):
            if n.casefold() == t:
                return n
        listed = ", ".join(sorted(known)) or "none configured"
        raise _Bad(f"{self.name}: {token!r} is not a configured {self.kind} ({listed})")


@dataclass(frozen=True, slots=True)
class TextArg:
    """One word, as typed, at most ``max_length`` characters."""

    name: str
    max_length: int = 64
    default: str | _Missing = MISSING

    def usage(self) -> str:
        return f"<{self.name}>"

    def parse(self, token: str, names: Names) -> str:
        if len(token) > self.max_length:
            raise _Bad(f"{self.name}: longer than {self.max_length} characters")
        return token


ArgSpec = IntArg | FloatArg | BoolArg | ChoiceArg | NameArg | TextArg


def _check_default(verb: str, a: ArgSpec) -> None:
    """A declared default must be a value its own argument accepts."""
    d = a.default
    ok: bool
    if isinstance(a, BoolArg):
        ok = isinstance(d, bool)
    elif isinstance(a, IntArg):
        ok = isinstance(d, int) and not isinstance(d, bool) and a.min <= d <= a.max
    elif isinstance(a, FloatArg):
        ok = isinstance(d, int | float) and not isinstance(d, bool) and a.min <= d <= a.max
    elif isinstance(a, ChoiceArg):
        ok = d in a.choices
    else:
        ok = isinstance(d, str)
    if not ok:
        raise ValueError(f"verb {verb!r}: default {d!r} of {a.name!r} is not a valid value")


@dataclass(frozen=True, slots=True)
class VerbSpec:
    """What the dispatcher and the parser know of one verb.

    ``verb`` is one or two lower-case words; ``args`` are positional, the
    optional ones (with a default) last; ``level`` the minimum security level;
    ``idempotent`` whether crash recovery may run it again; ``timeout`` in
    seconds; ``binary_id`` its id in the binary form (None: text only).
    """

    verb: str
    args: tuple[ArgSpec, ...] = ()
    level: Level = Level.SIGNED
    idempotent: bool = False
    timeout: float = 10.0
    binary_id: int | None = None
    help: str = ""

    def __post_init__(self) -> None:
        words = self.verb.split(" ")
        if not 1 <= len(words) <= 2 or not all(re.fullmatch(r"[a-z][a-z0-9_-]*", w) for w in words):
            raise ValueError(f"verb {self.verb!r}: one or two lower-case words")
        seen_optional = False
        names: set[str] = set()
        for a in self.args:
            if a.name in names or not a.name.isidentifier():
                raise ValueError(f"verb {self.verb!r}: bad or repeated argument name {a.name!r}")
            names.add(a.name)
            if a.default is MISSING and seen_optional:
                raise ValueError(f"verb {self.verb!r}: required {a.name!r} after an optional one")
            seen_optional = seen_optional or a.default is not MISSING
            if a.default is not MISSING:
                _check_default(self.verb, a)
        if self.binary_id is not None and not 1 <= self.binary_id <= 255:
            raise ValueError(f"verb {self.verb!r}: binary_id must be 1-255")
        if not self.timeout > 0:
            raise ValueError(f"verb {self.verb!r}: timeout must be positive")

    @property
    def required(self) -> int:
        """How many arguments must be given."""
        return sum(1 for a in self.args if a.default is MISSING)

    @property
    def usage(self) -> str:
        """``gpio set <line> <on|off>``; optional arguments in brackets."""
        parts = [self.verb]
        for a in self.args:
            parts.append(a.usage() if a.default is MISSING else f"[{a.usage()}]")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Command:
    """One parsed, fully checked Command: its verb, typed arguments and spec."""

    verb: str
    args: Mapping[str, ArgValue] = field(default_factory=dict)
    spec: VerbSpec | None = field(default=None, compare=False)


# --- text ----------------------------------------------------------------


def split_footer(text: str, markers: Sequence[str] = ()) -> tuple[str, str]:
    """(command line, footer): the first line, cut before the first footer marker.

    Markers match case-insensitively in the text itself (a regular expression,
    so the cut never shifts when case folding changes a string's length).
    """
    cut = len(text)
    for i, ch in enumerate(text):
        if ch in "\r\n":
            cut = i
            break
    for m in markers:
        if m:
            found = re.search(re.escape(m), text[:cut], re.IGNORECASE)
            if found is not None:
                cut = found.start()
    return text[:cut], text[cut:]


def segments(text: str) -> list[str]:
    """The ``;``-separated segments, whitespace collapsed, empty ones dropped."""
    out = []
    for seg in text.split(";"):
        words = seg.split()
        if words:
            out.append(" ".join(words))
    return out


def canonical(text: str) -> str:
    """The canonical form a signature covers (bridge.auth): the segments joined by
    ``;``, each with its words separated by one space. Case is kept."""
    return ";".join(segments(text))


def _lookup(words: list[str], verbs: Mapping[str, VerbSpec]) -> tuple[VerbSpec, int]:
    if len(words) >= 2:
        spec = verbs.get(f"{words[0].lower()} {words[1].lower()}")
        if spec is not None:
            return spec, 2
    spec = verbs.get(words[0].lower())
    if spec is not None:
        return spec, 1
    raise UnknownVerb(words[0])


def parse_command(segment: str, verbs: Mapping[str, VerbSpec], names: Names = _NO_NAMES) -> Command:
    """Parse one segment; :class:`EmptyCommand`, :class:`UnknownVerb` or :class:`UsageError`."""
    words = segment.split()
    if not words:
        raise EmptyCommand("no command")
    spec, used = _lookup(words, verbs)
    tokens = words[used:]
    if len(tokens) < spec.required:
        missing = spec.args[len(tokens)].name
        raise UsageError(spec.verb, spec.usage, f"{missing} is missing")
    if len(tokens) > len(spec.args):
        raise UsageError(spec.verb, spec.usage, f"too many arguments ({len(tokens)})")
    args: dict[str, ArgValue] = {}
    try:
        for a, tok in zip(spec.args, tokens, strict=False):
            args[a.name] = a.parse(tok, names)
    except _Bad as exc:
        raise UsageError(spec.verb, spec.usage, str(exc)) from None
    for a in spec.args[len(tokens) :]:
        assert a.default is not MISSING  # VerbSpec orders required arguments first
        args[a.name] = a.default
    return Command(spec.verb, args, spec)


def parse(
    text: str, verbs: Mapping[str, VerbSpec], names: Names = _NO_NAMES
) -> tuple[Command | GrammarError, ...]:
    """Parse every ``;``-separated Command of ``text`` (footer already split off).

    Each segment is parsed on its own: the result has, in order, a
    :class:`Command` or the :class:`GrammarError` of that segment, so the
    dispatcher can answer each. No segment at all raises :class:`EmptyCommand`.
    """
    segs = segments(text)
    if not segs:
        raise EmptyCommand("no command")
    out: list[Command | GrammarError] = []
    for seg in segs:
        try:
            out.append(parse_command(seg, verbs, names))
        except GrammarError as exc:
            out.append(exc)
    return tuple(out)


def format_command(command: Command) -> str:
    """The text form of a Command (``gpio set relay1 on``); parses back to it."""
    spec = command.spec
    words = [command.verb]
    for a in spec.args if spec is not None else ():
        v = command.args[a.name]
        if isinstance(v, bool):
            words.append("on" if v else "off")
        elif isinstance(v, float):
            words.append(repr(v))
        else:
            words.append(str(v))
    return " ".join(words)


# --- binary ---------------------------------------------------------------

#: Octet 0 of the binary form: format nibble 0xA, version 0; bit 0 = signed.
BINARY_MAGIC = 0xA0
BINARY_SIGNED = 0x01
_FLOAT = struct.Struct(">d")


def binary_signed(data: bytes) -> bool:
    """True when a binary Command says an authentication trailer follows."""
    return bool(data) and data[0] & 0xFE == BINARY_MAGIC and bool(data[0] & BINARY_SIGNED)


def _varint(n: int) -> bytes:
    z = -2 * n - 1 if n < 0 else 2 * n  # zigzag: 0, -1, 1, -2 ... -> 0, 1, 2, 3 ...
    out = bytearray()
    while True:
        b = z & 0x7F
        z >>= 7
        if z:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(data: bytes, o: int) -> tuple[int, int]:
    z = 0
    for i in range(10):
        if o + i >= len(data):
            raise BinaryFormatError(f"octet {o}: integer runs past the end")
        b = data[o + i]
        z |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            if i and not b:
                raise BinaryFormatError(f"octet {o}: integer not in its shortest form")
            return (z >> 1) ^ -(z & 1), o + i + 1
    raise BinaryFormatError(f"octet {o}: integer longer than 10 octets")


def _encode_value(a: ArgSpec, v: ArgValue) -> bytes:
    if isinstance(a, BoolArg):
        return bytes((1 if v else 0,))
    if isinstance(a, IntArg):
        assert isinstance(v, int)
        return _varint(v)
    if isinstance(a, FloatArg):
        assert isinstance(v, int | float)
        return _FLOAT.pack(float(v))
    if isinstance(a, ChoiceArg):
        return bytes((a.choices.index(str(v)),))
    raw = str(v).encode("utf-8")
    if len(raw) > 255:
        raise ValueError(f"{a.name}: {len(raw)} octets, the binary form holds 255")
    return bytes((len(raw),)) + raw


def encode_binary(commands: Sequence[Command], *, signed: bool = False) -> bytes:
    """The binary payload for checked Commands (each spec needs a ``binary_id``).

    With ``signed`` octet 0 announces the trailer ``bridge.auth`` appends.
    Raises ValueError for a Command its spec cannot carry in binary.
    """
    out = bytearray((BINARY_MAGIC | (BINARY_SIGNED if signed else 0),))
    for c in commands:
        spec = c.spec
        if spec is None or spec.binary_id is None:
            raise ValueError(f"verb {c.verb!r} has no binary id")
        given = [a for a in spec.args if a.name in c.args]
        out += bytes((spec.binary_id, len(given)))
        for a in given:
            out += _encode_value(a, c.args[a.name])
    return bytes(out)


def _decode_value(a: ArgSpec, data: bytes, o: int, names: Names) -> tuple[ArgValue, int]:
    if o >= len(data):
        raise BinaryFormatError(f"octet {o}: argument {a.name} missing")
    if isinstance(a, BoolArg):
        if data[o] > 1:
            raise BinaryFormatError(f"octet {o}: {a.name} is {data[o]}, not 0 or 1")
        return bool(data[o]), o + 1
    if isinstance(a, IntArg):
        n, o2 = _read_varint(data, o)
        return a.check(n), o2
    if isinstance(a, FloatArg):
        if o + 8 > len(data):
            raise BinaryFormatError(f"octet {o}: {a.name} needs 8 octets")
        return a.check(_FLOAT.unpack_from(data, o)[0]), o + 8
    if isinstance(a, ChoiceArg):
        if data[o] >= len(a.choices):
            raise BinaryFormatError(f"octet {o}: {a.name} choice {data[o]} out of range")
        return a.choices[data[o]], o + 1
    n = data[o]
    if o + 1 + n > len(data):
        raise BinaryFormatError(f"octet {o}: {a.name} length {n} runs past the end")
    try:
        text = data[o + 1 : o + 1 + n].decode("utf-8")
    except UnicodeDecodeError:
        raise BinaryFormatError(f"octet {o}: {a.name} is not UTF-8") from None
    return a.parse(text, names), o + 1 + n


def decode_binary(
    payload: bytes, verbs: Mapping[str, VerbSpec], names: Names = _NO_NAMES
) -> tuple[Command, ...]:
    """Decode a binary payload (the trailer already taken off) to checked Commands.

    Raises :class:`BinaryFormatError` for a malformed payload, :class:`UnknownVerb`
    for an unknown verb id, :class:`UsageError` for a value out of its bounds,
    :class:`EmptyCommand` for a payload with no Command.
    """
    if not payload or payload[0] & 0xFE != BINARY_MAGIC:
        raise BinaryFormatError("octet 0: not a binary Command (expected 0xA0 or 0xA1)")
    by_id = {s.binary_id: s for s in verbs.values() if s.binary_id is not None}
    out: list[Command] = []
    o = 1
    while o < len(payload):
        spec = by_id.get(payload[o])
        if spec is None:
            raise UnknownVerb(f"#{payload[o]}")
        if o + 1 >= len(payload):
            raise BinaryFormatError(f"octet {o + 1}: argument count missing")
        argc = payload[o + 1]
        if not spec.required <= argc <= len(spec.args):
            raise UsageError(spec.verb, spec.usage, f"{argc} arguments in binary")
        o += 2
        args: dict[str, ArgValue] = {}
        try:
            for a in spec.args[:argc]:
                args[a.name], o = _decode_value(a, payload, o, names)
        except _Bad as exc:
            raise UsageError(spec.verb, spec.usage, str(exc)) from None
        for a in spec.args[argc:]:
            assert a.default is not MISSING
            args[a.name] = a.default
        out.append(Command(spec.verb, args, spec))
    if not out:
        raise EmptyCommand("binary Command holds no command")
    return tuple(out)
