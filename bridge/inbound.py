"""What the SMS service hands over, as framing and the journal take it. Pure.

``modem.sms`` delivers :class:`modem.sms.ReceivedMessage` (one DELIVER, or
every part of a concatenated one; TS 23.040 §9.2.3.24.1) and
:class:`modem.sms.Undecodable` (a PDU the codec refused, as raw hex).
:func:`incoming` reduces a received message to the fields the bridge uses:
sender, body (text for GSM 7-bit and UCS-2, octets for 8-bit data), the
alphabet it came in (TP-DCS, TS 23.038 §4, which sets the body limit), the
service's message identity (deduplication) and one identity per part (the
journal's :meth:`~bridge.journal.Journal.has_part`).
"""

from __future__ import annotations

from dataclasses import dataclass

from modem.sms import ReceivedMessage
from pdu.dcs import Alphabet

#: Put before an alphanumeric sender (TP-OA type of number 101, TS 23.040
#: §9.1.2.5): free text that any bulk-SMS sender may set, so "2936" in it is
#: not the short code 2936. With it, no configured sender (digits only) matches.
ALPHANUMERIC_PREFIX = "alphanumeric:"


@dataclass(frozen=True, slots=True)
class Incoming:
    """One received SMS as the bridge sees it."""

    sender: str
    body: str | bytes
    coding: Alphabet
    identity: str
    part_ids: tuple[str, ...]
    complete: bool


def incoming(msg: ReceivedMessage) -> Incoming:
    """The bridge's view of a received message.

    An alphanumeric sender keeps its text behind :data:`ALPHANUMERIC_PREFIX`,
    so framing refuses it as an unknown sender whatever it spells.
    The body is the joined text, else the joined 8-bit data; a message with
    neither (parts of mixed codings) has an empty text body, which the
    grammar refuses as empty. ``part_ids`` are the SMS service's
    ``ReceivedMessage.part_ids`` (one per part): the journal keeps them so the
    service's ``known`` hook can have a leftover part of a journaled message
    deleted instead of held.
    """
    text = msg.text
    sender = msg.sender
    if msg.first.tp_oa.is_alphanumeric:
        sender = ALPHANUMERIC_PREFIX + sender
    body: str | bytes
    if text is not None:
        body = text
    else:
        data = msg.data
        body = data if data is not None else ""
    return Incoming(
        sender=sender,
        body=body,
        coding=msg.first.tp_dcs.alphabet,
        identity=msg.identity,
        part_ids=msg.part_ids,
        complete=msg.complete,
    )
