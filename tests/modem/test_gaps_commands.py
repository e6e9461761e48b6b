"""``+CPMS=?`` parser and the client's write-time precondition.

Parser: vectors (TS 27.005 §3.2.2 test form; module manuals), exact bounds,
hypothesis "returns a value or raises ProtocolError, nothing else". Client:
the precondition is evaluated under the lock right before the write, and a
command that fails it never reaches the wire.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modem import commands as C
from modem.client import AtClient, StaleCommand
from modem.commands import Response
from modem.errors import ModemError, ProtocolError
from modem.protocol import FinalResult, ResultKind
from modem.sim import SimModem

from .harness import Wire, recording_connector

OK = FinalResult(ResultKind.OK, "OK")


def resp(*lines: str) -> Response:
    return Response(tuple(lines), OK)


# -- +CPMS=? ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "want"),
    [
        # TS 27.005 §3.2.2 shape; Quectel BG96/EC2x manuals answer this list
        (
            '+CPMS: ("SM","ME","MT"),("SM","ME","MT"),("SM","ME","MT")',
            (("SM", "ME", "MT"),) * 3,
        ),
        # SIMCom SIM800 manual: SM and ME only, with spaces after the commas
        ('+CPMS: ("SM","ME"), ("SM","ME"), ("SM","ME")', (("SM", "ME"),) * 3),
        # a module offering one storage list (only <mem1> given)
        ('+CPMS: ("SM")', (("SM",),)),
        # lower case names are folded
        ('+CPMS: ("sm","me"),("SM"),("SM","SR")', (("SM", "ME"), ("SM",), ("SM", "SR"))),
    ],
)
def test_cpms_test_vectors(line, want):
    assert C.parse_cpms_test(resp(line)) == want


@pytest.mark.parametrize(
    "line",
    [
        "+CPMS: ",  # nothing
        '+CPMS: ("SM","ME"',  # unterminated list
        '+CPMS: "SM","ME"',  # no parentheses (the read form is something else)
        '+CPMS: ("SM"),("ME"),("SM"),("ME")',  # four lists: at most three
        '+CPMS: ("SM"),',  # trailing comma
        '+CPMS: ("S1","ME")',  # not a storage name
        "+CPMS: ()",  # an empty list
        '+CPMS: ("SM") ("ME")',  # lists not separated by a comma
    ],
)
def test_cpms_test_damage_is_protocol_error(line):
    with pytest.raises(ProtocolError):
        C.parse_cpms_test(resp(line))


def test_cpms_test_bounds_one_and_three_lists():
    assert len(C.parse_cpms_test(resp('+CPMS: ("SM")'))) == 1
    assert len(C.parse_cpms_test(resp('+CPMS: ("SM"),("SM"),("SM")'))) == 3
    with pytest.raises(ProtocolError):
        C.parse_cpms_test(resp('+CPMS: ("SM"),("SM"),("SM"),("SM")'))


NAMES = st.lists(st.sampled_from(["SM", "ME", "MT", "BM", "SR", "TA"]), min_size=1, max_size=6)


@given(st.lists(NAMES, min_size=1, max_size=3))
def test_cpms_test_round_trip(lists):
    line = "+CPMS: " + ",".join("(" + ",".join(f'"{n}"' for n in names) + ")" for names in lists)
    assert C.parse_cpms_test(resp(line)) == tuple(tuple(n) for n in lists)


@given(st.text(max_size=200))
def test_cpms_test_any_input_gives_lists_or_protocol_error(payload):
    try:
        out = C.parse_cpms_test(resp("+CPMS: " + payload))
    except ProtocolError:
        return
    assert 1 <= len(out) <= 3
    assert all(names and all(len(n) == 2 and n.isupper() for n in names) for names in out)


def test_command_when_keeps_the_contract():
    cmd = C.cmgd(3)
    gated = cmd.when(lambda: True)
    assert (gated.text, gated.timeout, gated.retry) == (cmd.text, cmd.timeout, cmd.retry)
    assert gated.precondition is not None and cmd.precondition is None


# -- the client checks it right before the write ------------------------------------------


async def _client(wire: Wire) -> tuple[AtClient, SimModem]:
    sim = SimModem("generic")
    client = AtClient(recording_connector(sim, wire))
    await client.connect()
    await client.sync()
    return client, sim


async def test_failed_precondition_writes_nothing_and_raises_stale():
    wire = Wire()
    client, sim = await _client(wire)
    try:
        mark = len(wire.data)
        with pytest.raises(StaleCommand) as ei:
            await client.execute(C.cmgd(1), precondition=lambda: False)
        assert wire.since(mark) == b""
        assert ei.value.command == "AT+CMGD=1"
        assert isinstance(ei.value, ModemError) and ei.value.transient
        with pytest.raises(StaleCommand):
            await client.execute(C.cmgd(1).when(lambda: False))
        assert wire.since(mark) == b""
        # a command whose precondition holds is written as usual
        assert await client.execute(C.simple("AT").when(lambda: True)) is None
        assert wire.since(mark) == b"AT\r"
    finally:
        await client.close()
        sim.close()
    assert client.leftovers() == {"inflight": 0, "subscriptions": 0, "lock_waiters": 0}


async def test_precondition_is_evaluated_when_the_line_is_free_not_when_queued():
    wire = Wire()
    client, sim = await _client(wire)
    try:
        valid = [True]
        calls: list[bool] = []

        def check() -> bool:
            calls.append(valid[0])
            return valid[0]

        sim.fault("delay", 200)  # the first command holds the line
        first = asyncio.create_task(client.execute(C.simple("AT+CSQ")))
        await wire.wait_for(lambda: b"AT+CSQ\r" in bytes(wire.data))
        queued = asyncio.create_task(client.execute(C.cmgd(1), precondition=check))
        await asyncio.sleep(0)  # it waits on the lock now
        assert not calls  # not evaluated while queued
        valid[0] = False  # the world changes while it waits (a reboot noticed)
        await first
        with pytest.raises(StaleCommand):
            await queued
        assert calls == [False]  # once, with the line free
        assert b"AT+CMGD" not in bytes(wire.data)
    finally:
        await client.close()
        sim.close()
