"""Fit a reply in one SMS, least important field first. Pure.

A Twilio ``from_sim`` Command is one SMS (shared/twilio-commands.md): a
reply is never split. One SMS holds (TS 23.040 §9.2.3.16, TS 23.038 §6.2.1):

* 160 GSM 7-bit septets, an extension-table character (``{ } [ ] ~ \\ | ^ €``)
  costing two (escape + code);
* 70 UCS-2 code units when some character is not GSM 7-bit, a character
  outside the BMP (a surrogate pair) costing two;
* 140 octets of 8-bit data (binary replies).

Counting is the codec's (:func:`pdu.alphabet.gsm7_length`,
:func:`pdu.alphabet.septet_costs`; capacities from :mod:`pdu.segment`).

A reply is a list of :class:`Field` values with priorities. While the joined
text does not fit, the field of lowest priority is dropped (the later one
among equals). When one field is left and it still does not fit, it is cut
at a character boundary -- never inside an escape pair or a surrogate pair,
since a character is the unit cut -- and ``...`` is appended. ``reserve``
keeps room (septets, or UCS-2 units: the trailer is in the basic set, one
unit a character) for the reply's signature (``bridge.auth``, 23).

Lone surrogates (not encodable in UCS-2) are replaced by U+FFFD first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pdu import alphabet as _alphabet
from pdu.dcs import Alphabet
from pdu.segment import SINGLE_OCTETS, SINGLE_SEPTETS, SINGLE_UCS2_UNITS

ELLIPSIS = "..."


class ReplyTooLong(ValueError):
    """A binary reply whose most important field alone does not fit one SMS."""


@dataclass(frozen=True, slots=True)
class Field:
    """One part of a reply; a higher ``priority`` is kept longer."""

    text: str
    priority: int = 0


@dataclass(frozen=True, slots=True)
class BinaryField:
    """One part of a binary reply; a higher ``priority`` is kept longer."""

    data: bytes
    priority: int = 0


@dataclass(frozen=True, slots=True)
class Fitted:
    """The reply as it goes out: its text (or data), coding and cost.

    ``units`` is what the text costs (septets, UCS-2 units or octets),
    ``capacity`` what one SMS holds less the reserve; ``dropped`` the indexes
    of the fields left out; ``truncated`` when the last field was cut.
    """

    content: str | bytes
    alphabet: Alphabet
    units: int
    capacity: int
    dropped: tuple[int, ...] = ()
    truncated: bool = False


def clean(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD."""
    try:
        text.encode("utf-16-be")
    except UnicodeEncodeError:
        return text.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "replace")
    return text


def measure(text: str) -> tuple[Alphabet, int, int]:
    """(alphabet, units, one-SMS capacity) of ``text`` as the codec would send it."""
    septets = _alphabet.gsm7_length(text)
    if septets is not None:
        return Alphabet.GSM7, septets, SINGLE_SEPTETS
    return Alphabet.UCS2, len(text.encode("utf-16-be")) // 2, SINGLE_UCS2_UNITS


def _prefix_fitting(costs: Sequence[int], budget: int) -> int:
    total = 0
    for i, c in enumerate(costs):
        if total + c > budget:
            return i
        total += c
    return len(costs)


def _truncate(text: str, reserve: int) -> str:
    """The longest ``prefix + ELLIPSIS`` that fits with ``reserve`` kept."""
    # GSM 7-bit: the prefix before the first character the tables lack.
    costs = _alphabet.septet_costs(text)
    if costs is None:
        stop = next(i for i, ch in enumerate(text) if _alphabet.septet_cost(ch) is None)
        costs = _alphabet.septet_costs(text[:stop]) or b""
    gsm_len = _prefix_fitting(costs, SINGLE_SEPTETS - reserve - len(ELLIPSIS))
    ucs_costs = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    ucs_len = _prefix_fitting(ucs_costs, SINGLE_UCS2_UNITS - reserve - len(ELLIPSIS))
    return text[: max(gsm_len, ucs_len)] + ELLIPSIS


def fit(fields: Sequence[Field | str], *, reserve: int = 0, separator: str = " ") -> Fitted:
    """The reply text that fits one SMS with ``reserve`` units kept (module doc)."""
    if not 0 <= reserve <= SINGLE_UCS2_UNITS - len(ELLIPSIS) - 1:
        raise ValueError(f"reserve {reserve} leaves no room for a reply")
    items = [f if isinstance(f, Field) else Field(f) for f in fields]
    texts = [clean(f.text) for f in items]
    sep = clean(separator)
    kept = list(range(len(items)))
    while True:
        text = sep.join(texts[i] for i in kept)
        enc, units, cap = measure(text)
        if units <= cap - reserve:
            dropped = tuple(i for i in range(len(items)) if i not in kept)
            return Fitted(text, enc, units, cap - reserve, dropped)
        if len(kept) == 1:
            break
        # least important, the later among equals
        victim = min(reversed(kept), key=lambda i: items[i].priority)
        kept.remove(victim)
    cut = _truncate(text, reserve)
    enc, units, cap = measure(cut)
    dropped = tuple(i for i in range(len(items)) if i not in kept)
    return Fitted(cut, enc, units, cap - reserve, dropped, truncated=True)


def fit_binary(fields: Sequence[BinaryField | bytes], *, reserve: int = 0) -> Fitted:
    """The binary reply (fields concatenated) within 140 octets less ``reserve``.

    Fields are dropped least important first; binary data is never cut, so
    :class:`ReplyTooLong` when the most important field alone is too long.
    """
    items = [f if isinstance(f, BinaryField) else BinaryField(f) for f in fields]
    cap = SINGLE_OCTETS - reserve
    if cap < 1:
        raise ValueError(f"reserve {reserve} leaves no room for a reply")
    kept = list(range(len(items)))
    while True:
        data = b"".join(items[i].data for i in kept)
        if len(data) <= cap:
            dropped = tuple(i for i in range(len(items)) if i not in kept)
            return Fitted(data, Alphabet.DATA8, len(data), cap, dropped)
        if len(kept) == 1:
            break
        kept.remove(min(reversed(kept), key=lambda i: items[i].priority))
    raise ReplyTooLong(f"binary reply field of {len(items[kept[0]].data)} octets; {cap} fit")
