"""Device-initiated messages: boot, scheduled reports, events, their budget.

Through the service and the simulated module (what reached the network is
the simulator's MO log); the threshold's hysteresis also by hypothesis.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from bridge.config import Threshold
from bridge.journal import Journal, Kind, State
from bridge.reports import Band, ThresholdWatch

from .test_service_rig import ServiceRig, service_config


async def test_boot_message_signed_to_the_short_code(tmp_path: Path) -> None:
    async with ServiceRig(service_config(tmp_path)) as rig:
        (boot,) = rig.sent()
        assert boot.to == "2936"
        body = boot.body
        assert isinstance(body, str) and body.startswith("boot up=") and "reg=home" in body
        e = await rig.entry(1)
        assert e.kind is Kind.REPORT and e.summary == "boot" and e.state is State.SENT


async def test_boot_message_on_super_sim_goes_to_000(tmp_path: Path) -> None:
    cfg = service_config(tmp_path, bridge={"product": "super-sim"})
    async with ServiceRig(cfg) as rig:
        assert [s.to for s in rig.sent()] == ["000"]


async def test_no_boot_message_when_off(tmp_path: Path) -> None:
    async with ServiceRig(service_config(tmp_path, reports={"boot": False})) as rig:
        assert rig.sent() == []


async def test_under_auto_reports_follow_the_last_commands_product(tmp_path: Path) -> None:
    cfg = service_config(tmp_path, bridge={"product": "auto"})
    async with ServiceRig(cfg) as rig:
        assert [s.to for s in rig.sent()] == ["2936"]  # nothing came in yet
        await rig.sms("ping", sender="000")
    async with ServiceRig(cfg) as rig:
        assert [s.to for s in rig.sent()] == ["000"]


async def test_scheduled_status_report(tmp_path: Path) -> None:
    cfg = service_config(tmp_path)
    # the configuration allows >= 60 s; a test does not wait a minute
    cfg = dataclasses.replace(cfg, reports=dataclasses.replace(cfg.reports, status_every=0.01))  # type: ignore[arg-type]
    async with ServiceRig(cfg) as rig:
        await rig.mo["modem0"].wait_len(3)
        kinds = [str(s.body).split()[0] for s in rig.sent()[:3]]
        assert kinds == ["boot", "report", "report"]


async def test_gpio_input_edge_is_an_event(tmp_path: Path) -> None:
    async with ServiceRig(service_config(tmp_path, reports={"events": True})) as rig:
        rig.hal.drive("door", 1)
        await rig.mo["modem0"].wait_len(2)
        rig.hal.drive("door", 0)
        await rig.mo["modem0"].wait_len(3)
        assert [s.body for s in rig.sent()[1:]] == ["event door=on", "event door=off"]


async def test_no_events_unless_configured(tmp_path: Path) -> None:
    async with ServiceRig(service_config(tmp_path)) as rig:
        rig.hal.drive("door", 1)
        out = await rig.sms("ping")  # anything queued by the edge would be sent by now
        assert [s.body for s in out] == ["pong"]


async def test_sensor_threshold_with_hysteresis(tmp_path: Path) -> None:
    cfg = service_config(
        tmp_path,
        reports={"events": True, "thresholds": {"water": {"above": 30, "hysteresis": 1}}},
    )
    cfg = dataclasses.replace(cfg, reports=dataclasses.replace(cfg.reports, sensor_every=0.001))  # type: ignore[arg-type]
    # 31 enters; 30.5 and 29.5 stay within the hysteresis; 28.0 leaves
    async with ServiceRig(cfg) as rig:
        rig.hal.sensors.script("water", ["31.0", "30.5", "29.5", "28.0", "28.0"])
        await rig.mo["modem0"].wait_len(3)
        bodies = [s.body for s in rig.sent()]
        assert bodies[1:3] == ["event water=31.0°C above 30", "event water=28.0°C normal"]


async def test_signal_lost_and_back_is_one_event(tmp_path: Path) -> None:
    cfg = service_config(tmp_path, reports={"events": True, "signal_lost_after": 0})
    async with ServiceRig(cfg) as rig:
        sim = rig.sim()
        sim.set_registered(False)
        sim.set_registered(True)
        await rig.mo["modem0"].wait_len(2)
        assert rig.sent()[1].body == "event signal back after 0h0m"


async def test_a_report_over_budget_is_journaled_not_sent(tmp_path: Path) -> None:
    cfg = service_config(tmp_path, reports={"events": True}, budgets={"global_per_hour": 1})
    async with ServiceRig(cfg) as rig:
        assert len(rig.sent()) == 1  # the boot message took the hour's budget
        entry = await rig.svc.report("event", [])
        await rig.svc.settle()
        assert len(rig.sent()) == 1
        e = await rig.entry(entry)
        assert e.kind is Kind.REPORT and e.state is State.REJECTED
        assert e.reason == "over-budget:global-hour" and e.reply == "event"
        assert rig.svc.worker is not None
        assert (await rig.svc.worker.call(Journal.counts))[State.REPLY_QUEUED] == 0


# --- the threshold itself ---------------------------------------------------------------


def test_threshold_bands() -> None:
    w = ThresholdWatch(Threshold(above=30, below=10, hysteresis=1))
    assert w.update(20) is None  # normal at first: nothing to say
    assert w.update(30) is Band.ABOVE
    assert w.update(29.5) is None  # within the hysteresis
    assert w.update(29) is Band.NORMAL
    assert w.update(10) is Band.BELOW
    assert w.update(10.9) is None
    assert w.update(11) is Band.NORMAL
    first = ThresholdWatch(Threshold(above=30))
    assert first.update(35) is Band.ABOVE  # out of range at the first read: said once


values = st.floats(min_value=-100, max_value=100, allow_nan=False)


@given(st.lists(values, max_size=60), st.floats(min_value=0, max_value=20))
def test_threshold_never_repeats_a_band_and_never_flaps_inside_the_hysteresis(
    seq: list[float], hyst: float
) -> None:
    w = ThresholdWatch(Threshold(above=30, below=-30, hysteresis=hyst))
    last = None
    for v in seq:
        before = w.band
        band = w.update(v)
        if band is not None:
            assert band is not last or last is None
            assert band is not before
            last = band
        if before is Band.ABOVE and 30 - hyst < v:
            assert w.band is Band.ABOVE  # leaving needs more than the hysteresis
        if before is Band.BELOW and v < -30 + hyst:
            assert w.band is Band.BELOW
