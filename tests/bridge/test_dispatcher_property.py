"""Arbitrary text and bytes through the whole dispatcher: a reply, a rejection or
a journaled error, never an exception escaping, never two replies."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge import auth, grammar
from bridge.actions import builtins
from bridge.journal import State
from pdu.dcs import Alphabet

from .test_dispatcher_rig import DEVICE, KEY, Rig, make_config, signed

_WORDS = st.sampled_from(
    [
        "ping",
        "status",
        "info",
        "help",
        "gpio",
        "get",
        "set",
        "pulse",
        "sensor",
        "run",
        "reboot",
        "relay1",
        "gate",
        "door",
        "water",
        "again",
        "once",
        "on",
        "off",
        "5",
        "-1",
        "1e9",
        ";",
        "#",
        "#BAAAAAB",
        "DC" + "0" * 32,
        "\n",
        "Sent from",
        "  ",
    ]
)
_TEXT = st.one_of(
    st.text(max_size=170),
    st.lists(_WORDS, max_size=12).map(" ".join),
    st.builds(
        lambda t, n: signed(" ".join(t.split()) or "ping", n),
        st.text(alphabet="abcdefgh ;0123456789", max_size=40),
        st.integers(1, 50),
    ),
)
_BYTES = st.one_of(
    st.binary(max_size=150),
    st.binary(max_size=40).map(lambda b: b"\xa0" + b),
    st.builds(
        lambda b, n: auth.sign_command(
            b"\xa0" + b, key=KEY, key_version=1, device_id=DEVICE, counter=n
        ),
        st.binary(max_size=30),
        st.integers(1, 50),
    ),
)
_SENDERS = st.sampled_from(["2936", "000", "+15550001111", "+447700900123", ""])


def test_arbitrary_input_through_the_dispatcher(tmp_path: Path) -> None:
    cfg = make_config(
        tmp_path,
        budgets={
            "global_per_hour": 100_000,
            "global_per_day": 1_000_000,
            "sender_per_hour": 100_000,
            "sender_per_day": 1_000_000,
        },
    )
    loop = asyncio.new_event_loop()
    rig = Rig(tmp_path, cfg=cfg)
    loop.run_until_complete(rig.__aenter__())
    n = iter(range(10**9))

    @settings(
        max_examples=250,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(body=st.one_of(_TEXT, _BYTES), sender=_SENDERS, ucs2=st.booleans())
    def one(body: str | bytes, sender: str, ucs2: bool) -> None:
        coding = None if isinstance(body, bytes) or not ucs2 else Alphabet.UCS2
        before = len(rig.sender.sent)
        dups = rig.counters["duplicates"]
        e = loop.run_until_complete(
            rig.sms(body, sender=sender, coding=coding, identity=f"h{next(n)}")
        )
        replies = len(rig.sender.sent) - before
        if rig.counters["duplicates"] > dups:  # the same SID again: the first entry
            assert replies == 0 and e.sid is not None
        elif e.state is State.REJECTED:
            assert replies == 0 and e.reason
        else:
            assert e.state is State.SENT and replies == 1
            content = rig.sender.sent[-1][1]
            v = auth.verify_reply(content, keys={1: KEY}, device_id=DEVICE)
            if isinstance(v.body, bytes):
                assert len(content) <= 140
            else:
                assert isinstance(content, str) and "\n" not in content
        assert rig.counters["dispatch_errors"] == 0 and rig.counters["journal_errors"] == 0

    try:
        one()
    finally:
        loop.run_until_complete(rig.__aexit__(None, None, None))
        loop.close()


@given(st.lists(st.sampled_from(sorted(builtins().specs)), min_size=1, max_size=6))
def test_binary_form_of_any_argumentless_commands_round_trips(verbs: list[str]) -> None:
    specs = builtins().specs
    cmds = [grammar.Command(v, {}, specs[v]) for v in verbs if not specs[v].args]
    if not cmds:
        return
    data = grammar.encode_binary(cmds)
    assert tuple(c.verb for c in grammar.decode_binary(data, specs)) == tuple(c.verb for c in cmds)
