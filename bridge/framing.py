"""Twilio framing of a Command: product, ``include_sid``, body limits, reply address.

Pure: no I/O, no clock. Sources: Twilio's Programmable Wireless *Commands*
and Super SIM *SMS Commands* documentation, summarised in
``shared/twilio-commands.md``:

* Programmable Wireless: Commands reach the SIM from a sender set Twilio does
  not document (configurable, ``2936`` by default); the device answers to the
  short code ``2936``; ``text`` (at most 160 characters) and ``binary`` (at
  most 140 octets of 8-bit data) modes.
* Super SIM: Commands come from ``000`` and the device answers to ``000``;
  text only, at most 160 characters.
* ``include_sid`` (Programmable Wireless, text mode): ``start`` puts the
  Command SID before the body, ``end`` after it, separated by one space. A
  SID is ``DC`` (Programmable Wireless) or ``HC`` (Super SIM) followed by 32
  hexadecimal digits. Both positions and both prefixes are recognised; the SID
  is taken off the body and kept for deduplication and the reply's reference.
* A Command is one SMS (no concatenation is documented for Commands), so a
  body over one SMS -- 160 GSM 7-bit septets (TS 23.038 §6.2.1, an extension
  character costing two), 70 UCS-2 code units, 140 octets of 8-bit data (TS
  23.040 §9.2.3.16) -- cannot come from Twilio and is refused with
  :class:`BodyTooLong`. Septets are counted by the codec
  (:func:`pdu.alphabet.gsm7_length`), never by a copy of its tables.

Decisions where Twilio says nothing:

* ``auto`` accepts both products and answers on the product the Command came
  from: ``000`` is Super SIM, a sender of the Programmable Wireless set is
  Programmable Wireless.
* An allow-listed bench number (configuration ``security.bench_numbers``) is
  framed as the configured product (Programmable Wireless under ``auto``); its
  replies go to the product's short code unless ``answer_bench_directly`` is
  set, then to the bench number itself.
* Sender addresses are compared with a leading ``+`` removed (an
  international-format ``+2936`` is the short code ``2936``).
* When a SID is found at both ends, the one at the start is taken (the other
  stays in the body, where the grammar will refuse it).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from pdu import alphabet as _alphabet
from pdu.dcs import Alphabet
from pdu.segment import SINGLE_OCTETS, SINGLE_SEPTETS, SINGLE_UCS2_UNITS

#: Twilio: the Programmable Wireless short code the device sends to.
WIRELESS_SHORT_CODE = "2936"
#: Twilio: the Super SIM address Commands come from and replies go to.
SUPER_SIM_ADDRESS = "000"
#: ``DC`` or ``HC`` and 32 hexadecimal digits (Twilio's Command SID format).
SID_LENGTH = 34
_SID = r"(?:DC|HC)[0-9a-fA-F]{32}"
_SID_RE = re.compile(_SID)
_SID_START = re.compile(rf"({_SID}) ")
_SID_END = re.compile(rf" ({_SID})")


class Product(enum.StrEnum):
    """The Twilio product a Command belongs to."""

    PROGRAMMABLE_WIRELESS = "programmable-wireless"
    SUPER_SIM = "super-sim"


class ProductSetting(enum.StrEnum):
    """The configuration's choice: one product, or ``auto`` (both, by sender)."""

    PROGRAMMABLE_WIRELESS = "programmable-wireless"
    SUPER_SIM = "super-sim"
    AUTO = "auto"


class SidPosition(enum.StrEnum):
    """Where Twilio put the SID (``include_sid``)."""

    START = "start"
    END = "end"


class FramingError(ValueError):
    """A Command that cannot be from Twilio as configured; ``reason`` is a short code."""

    reason = "framing"


class UnknownSender(FramingError):
    """The sender is neither a configured Twilio sender nor a bench number."""

    reason = "unknown-sender"


class BodyTooLong(FramingError):
    """The body exceeds one SMS: Twilio cannot have sent it."""

    reason = "body-too-long"


class BinaryNotAllowed(FramingError):
    """8-bit data on a product that is text only (Super SIM)."""

    reason = "binary-not-allowed"


@dataclass(frozen=True, slots=True)
class FramingConfig:
    """What the framing needs of the configuration (``[twilio]`` and bench numbers)."""

    product: ProductSetting = ProductSetting.PROGRAMMABLE_WIRELESS
    wireless_senders: frozenset[str] = frozenset({WIRELESS_SHORT_CODE})
    wireless_reply_to: str = WIRELESS_SHORT_CODE
    super_sim_address: str = SUPER_SIM_ADDRESS
    sid_positions: frozenset[SidPosition] = frozenset(SidPosition)
    bench_numbers: frozenset[str] = frozenset()
    answer_bench_directly: bool = False


@dataclass(frozen=True, slots=True)
class Framed:
    """A Command as Twilio framed it: who, which product, its SID, its body.

    ``body`` is the text with the SID taken off, or the 8-bit data;
    ``reply_to`` where the one reply goes; ``bench`` when the sender is a
    bench number rather than Twilio.
    """

    product: Product
    sender: str
    reply_to: str
    body: str | bytes
    sid: str | None = None
    sid_position: SidPosition | None = None
    bench: bool = False
    alphabet: Alphabet = field(default=Alphabet.GSM7)

    @property
    def binary(self) -> bool:
        """True for an 8-bit data Command (its reply is binary too)."""
        return isinstance(self.body, bytes)

    @property
    def binary_replies(self) -> bool:
        """Whether this product can carry a binary reply (Super SIM: text only)."""
        return self.binary and self.product is Product.PROGRAMMABLE_WIRELESS


def normalise_address(address: str) -> str:
    """The address compared against configured senders: no leading ``+``, no spaces."""
    return address.strip().removeprefix("+")


def body_units(body: str | bytes, coding: Alphabet) -> tuple[int, int]:
    """(units, limit) of a body in one SMS for the alphabet it arrived in.

    GSM 7-bit: septets from the codec (an extension character costs two); text
    the default tables cannot encode (a national table was used) counts one
    septet a character, the least it can have cost. UCS-2: UTF-16 code units (a
    surrogate pair counts two). 8-bit data: octets.
    """
    if isinstance(body, bytes):
        return len(body), SINGLE_OCTETS
    if coding is Alphabet.UCS2:
        return len(body.encode("utf-16-be", "surrogatepass")) // 2, SINGLE_UCS2_UNITS
    septets = _alphabet.gsm7_length(body)
    return (len(body) if septets is None else septets), SINGLE_SEPTETS


def split_sid(
    text: str, positions: frozenset[SidPosition] = frozenset(SidPosition)
) -> tuple[str, str | None, SidPosition | None]:
    """(body, sid, position): the SID taken off ``text`` when Twilio put one there.

    ``start``: the text begins with the SID and exactly one space; ``end``: it
    ends with one space and the SID. A text that is only a SID has no
    separator and is left as it is.
    """
    if SidPosition.START in positions:
        m = _SID_START.match(text)
        if m:
            return text[m.end() :], m.group(1), SidPosition.START
    if SidPosition.END in positions and len(text) > SID_LENGTH:
        m = _SID_END.search(text, len(text) - SID_LENGTH - 1)
        if m and m.end() == len(text):
            return text[: m.start()], m.group(1), SidPosition.END
    return text, None, None


def is_sid(value: str) -> bool:
    """True for a Twilio Command SID (``DC``/``HC`` + 32 hex digits)."""
    return _SID_RE.fullmatch(value) is not None


def product_of(sender: str, config: FramingConfig) -> tuple[Product, bool]:
    """(product, bench) for a sender; :class:`UnknownSender` when it is neither."""
    s = normalise_address(sender)
    setting = config.product
    super_sim = normalise_address(config.super_sim_address)
    if setting is not ProductSetting.PROGRAMMABLE_WIRELESS and s == super_sim:
        return Product.SUPER_SIM, False
    wireless = {normalise_address(w) for w in config.wireless_senders}
    if setting is not ProductSetting.SUPER_SIM and s in wireless:
        return Product.PROGRAMMABLE_WIRELESS, False
    if s in {normalise_address(b) for b in config.bench_numbers}:
        if setting is ProductSetting.SUPER_SIM:
            return Product.SUPER_SIM, True
        return Product.PROGRAMMABLE_WIRELESS, True
    raise UnknownSender(f"sender {sender!r} is not a Twilio sender for {setting.value}")


def reply_address(product: Product, config: FramingConfig) -> str:
    """The short code a reply or a device-initiated message goes to."""
    if product is Product.SUPER_SIM:
        return config.super_sim_address
    return config.wireless_reply_to


def frame(
    sender: str,
    body: str | bytes,
    config: FramingConfig,
    *,
    coding: Alphabet | None = None,
) -> Framed:
    """Frame one received Command.

    ``coding`` is the alphabet the SMS arrived in (TP-DCS, TS 23.038 §4);
    ``None`` means GSM 7-bit for text and 8-bit data for bytes. Raises
    :class:`UnknownSender`, :class:`BinaryNotAllowed` or :class:`BodyTooLong`
    (checked on the whole body, SID included, as it travelled).
    """
    product, bench = product_of(sender, config)
    if coding is None:
        coding = Alphabet.DATA8 if isinstance(body, bytes) else Alphabet.GSM7
    if isinstance(body, bytes) and product is Product.SUPER_SIM:
        raise BinaryNotAllowed("Super SIM Commands are text only; 8-bit data refused")
    units, limit = body_units(body, coding)
    if units > limit:
        what = {Alphabet.GSM7: "septets", Alphabet.UCS2: "UCS-2 code units"}.get(coding, "octets")
        raise BodyTooLong(f"body is {units} {what}, one SMS holds {limit}")
    to = reply_address(product, config)
    if bench and config.answer_bench_directly:
        to = sender.strip()
    if isinstance(body, bytes):
        return Framed(product, sender, to, body, bench=bench, alphabet=coding)
    text, sid, where = split_sid(body, config.sid_positions)
    return Framed(product, sender, to, text, sid, where, bench, coding)
