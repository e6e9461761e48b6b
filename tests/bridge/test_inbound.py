"""From the SMS service's ReceivedMessage through framing into the journal."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import pdu
from bridge import framing
from bridge.inbound import incoming
from bridge.journal import Journal, State
from modem.sms import Location, ReceivedMessage, message_identity, part_identity
from pdu.address import NPI_ISDN, NPI_UNKNOWN, TON_ALPHANUMERIC, TON_UNKNOWN, make_address
from pdu.dcs import Alphabet

SCTS = datetime(2026, 12, 1, 8, 40, tzinfo=UTC)
SID = "DC" + "1" * 32


def received(content, sender="2936", **kw):
    parts = tuple(pdu.deliver_parts(sender, content, scts=SCTS, **kw))
    locs = tuple(Location("SM", i) for i in range(len(parts)))
    return ReceivedMessage(message_identity(parts), parts, locs)


@pytest.mark.parametrize(
    ("content", "encoding", "coding"),
    [
        (f"{SID} gpio set relay1 on", None, Alphabet.GSM7),
        ("température ж", None, Alphabet.UCS2),
        (b"\xa0\x01\x00", None, Alphabet.DATA8),
        ("ping", Alphabet.UCS2, Alphabet.UCS2),
    ],
)
def test_received_message_frames_and_journals(tmp_path, content, encoding, coding):
    msg = received(content, encoding=encoding)
    inc = incoming(msg)
    assert (inc.sender, inc.body, inc.coding, inc.identity) == (
        "2936",
        content,
        coding,
        msg.identity,
    )
    f = framing.frame(inc.sender, inc.body, framing.FramingConfig(), coding=inc.coding)
    with Journal.open(tmp_path / "j.db") as j:
        r = j.receive(
            modem="m0",
            sender=inc.sender,
            body=f.body,
            identity=inc.identity,
            part_ids=inc.part_ids,
            sid=f.sid,
            product=f.product.value,
            coding=inc.coding.value,
        )
        e = j.get(r.entry_id)
        assert (e.state, e.body, e.coding) == (State.RECEIVED, f.body, coding.value)
        # the same SMS delivered again by the network is a duplicate
        again = j.receive(modem="m0", sender="2936", body=f.body, identity=incoming(msg).identity)
        assert again.duplicate and again.entry_id == r.entry_id
        assert j.counts()[State.RECEIVED] == 1


def test_ucs2_body_limit_uses_the_alphabet_it_came_in():
    msg = received("ж" * 71)  # two parts: a bench phone, not Twilio
    inc = incoming(msg)
    assert inc.coding is Alphabet.UCS2 and len(msg.parts) == 2
    with pytest.raises(framing.BodyTooLong, match="71 UCS-2"):
        framing.frame(inc.sender, inc.body, framing.FramingConfig(), coding=inc.coding)


def test_part_ids_are_the_services_one_per_part():
    single = received("ping")
    assert incoming(single).part_ids == (part_identity(single.parts[0]),)
    long = received("ж" * 71)  # two parts
    ids = incoming(long).part_ids
    assert ids == tuple(part_identity(p) for p in long.parts)
    assert len(set(ids)) == 2


@pytest.mark.parametrize(
    ("text", "product"),
    [("2936", framing.ProductSetting.PROGRAMMABLE_WIRELESS), ("000", framing.ProductSetting.AUTO)],
    ids=["2936", "000"],
)
def test_an_alphanumeric_sender_spelling_the_short_code_is_not_twilio(text, product):
    # TS 23.040 §9.1.2.5: type of number 101 is free text any bulk sender may set;
    # Twilio's short codes arrive as numbers
    oa = make_address(text, TON_ALPHANUMERIC, NPI_UNKNOWN)
    msg = received("ping", sender=oa)
    assert msg.parts[0].tp_oa.is_alphanumeric and msg.sender == text
    inc = incoming(msg)
    assert inc.sender == f"alphanumeric:{text}"
    with pytest.raises(framing.UnknownSender):
        framing.frame(inc.sender, inc.body, framing.FramingConfig(product=product))


def test_a_numeric_short_code_sender_is_still_twilio():
    inc = incoming(received("ping", sender=make_address("2936", TON_UNKNOWN, NPI_ISDN)))
    assert inc.sender == "2936"
    assert framing.frame(inc.sender, inc.body, framing.FramingConfig()).reply_to == "2936"
