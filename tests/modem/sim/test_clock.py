"""The module's clock (+CCLK, TS 27.007 §8.15) and old service-centre timestamps."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pdu
from modem.sim.codec import scts_text
from modem.sim.control import handle
from modem.sim.core import _parse_cclk

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


async def test_cclk_reads_the_fixed_clock_in_quarter_hours(sim, dte):
    sim.set_clock(T0)
    assert await dte.cmd("AT+CCLK?") == '\r\n+CCLK: "26/03/04,05:06:07+00"\r\n\r\nOK\r\n'
    sim.set_clock(T0, tz_quarters=-14)  # UTC-3:30
    assert await dte.cmd("AT+CCLK?") == '\r\n+CCLK: "26/03/04,01:36:07-14"\r\n\r\nOK\r\n'


async def test_cclk_offset_runs_from_real_time(sim, dte):
    sim.set_clock(offset=timedelta(days=-400))
    out = await dte.cmd("AT+CCLK?")
    shown = datetime.strptime(out.split('"')[1][:-3], "%y/%m/%d,%H:%M:%S").replace(tzinfo=UTC)
    real = datetime.now(UTC)
    assert real - timedelta(days=400, minutes=5) < shown < real - timedelta(days=399)
    sim.set_clock()
    assert abs(sim.now() - datetime.now(UTC)) < timedelta(minutes=5)


async def test_cclk_set_moves_the_module_clock_only(sim, dte):
    sim.set_clock(T0)
    assert await dte.cmd('AT+CCLK="27/01/01,00:00:00+04"') == "\r\nOK\r\n"
    assert await dte.cmd("AT+CCLK?") == '\r\n+CCLK: "27/01/01,00:00:00+04"\r\n\r\nOK\r\n'
    assert sim.now() == T0  # the network's clock did not move
    assert await dte.cmd('AT+CCLK="27/13/01,00:00:00+00"') == "\r\n+CME ERROR: 50\r\n"
    assert await dte.cmd("AT+CCLK=27") == "\r\n+CME ERROR: 50\r\n"


async def test_cclk_needs_no_sim(make_sim, connect):
    sim = make_sim(sim_inserted=False)
    sim.set_clock(T0)
    d = connect(sim)
    await d.cmd("ATE0")
    assert await d.cmd("AT+CCLK?") == '\r\n+CCLK: "26/03/04,05:06:07+00"\r\n\r\nOK\r\n'


async def test_deliver_scts_and_clock_stamp_the_parts(sim, dte):
    sim.set_clock(T0)
    sim.deliver("now")
    old = datetime(2025, 12, 31, 23, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    sim.deliver("x" * 200, scts=old)  # two parts, both stamped old
    stamps = [pdu.decode(m.pdu.hex()).tp_scts for m in sim.storage()]
    assert stamps == [T0, old, old]
    with pytest.raises(ValueError, match="timezone-aware"):
        sim.deliver("naive", scts=datetime(2026, 1, 1))


def test_set_clock_validates():
    from modem.sim import SimModem

    sim = SimModem()
    with pytest.raises(ValueError, match="not both"):
        sim.set_clock(T0, offset=timedelta(1))
    with pytest.raises(ValueError, match="timezone-aware"):
        sim.set_clock(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match=r"tz_quarters is -48\.\.48"):
        sim.set_clock(tz_quarters=49)


def test_control_ops_set_clock_and_deliver_scts(sim):
    assert handle(sim, {"op": "set_clock", "fixed": "2026-03-04T05:06:07+00:00"}) == (
        "2026-03-04T05:06:07+00:00"
    )
    handle(sim, {"op": "deliver", "text": "old", "scts": "2020-01-01T00:00:00+00:00"})
    assert pdu.decode(sim.storage().get(1).pdu.hex()).tp_scts == datetime(2020, 1, 1, tzinfo=UTC)


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2068, 12, 31),
        timezones=st.sampled_from([timezone(timedelta(minutes=15 * q)) for q in range(-48, 49)]),
    )
)
def test_cclk_time_round_trips(t):
    t = t.replace(microsecond=0)
    assert _parse_cclk(scts_text(t)) == t
    assert _parse_cclk(scts_text(t)).utcoffset() == t.utcoffset()


@given(st.text(max_size=40))
def test_cclk_parser_gives_a_time_or_value_error(text):
    with contextlib.suppress(ValueError):
        assert _parse_cclk(text).utcoffset() is not None
