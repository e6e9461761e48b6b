"""Long idle, short: a real ``python -m bridge run`` on the standalone simulator, left
alone for 20 s with the systemd watchdog on (``WATCHDOG_USEC`` 4 s: a ping every 2 s,
to a real ``AF_UNIX`` datagram socket standing in for systemd) and the periodic sweep
every 5 s instead of 300 s (``modem.timing.PERIODIC_SWEEP``, set inside the bridge by
the rig). Every event-loop wake-up in the window must be the watchdog's round, the
sweep's named timer (``SmsService._periodic_sweep_due``), or the I/O that answers them;
RSS must stay flat (bounded growth). ``python tools/soak.py --idle 600`` is the long
one (docs/reliability.md, "Long idle")."""

from __future__ import annotations

from pathlib import Path

from .rig_soak import RSS_GROWTH_KIB, SWEEP_TIMER, WATCHDOG_TIMER, classify, run_idle
from .test_soak import _processes_of


def test_classify_names_the_allowed_timers_and_refuses_the_rest() -> None:
    events = [
        (100.0, "timer", WATCHDOG_TIMER),
        (100.1, "io", "socket -> _set_result"),
        (200.0, "timer", SWEEP_TIMER),
        (200.2, "io", "pty -> SerialTransport._read_ready"),
        (250.0, "io", "pty -> SerialTransport._read_ready"),  # long after any timer
        (300.0, "timer", "asyncio.wait timeout in SmsService._work_loop"),
        (301.0, "early", "nothing due"),
    ]
    got = classify(events)
    assert got["not_allowed"] == {
        "io (pty -> SerialTransport._read_ready)": 1,
        "timer asyncio.wait timeout in SmsService._work_loop": 1,
        "early (nothing due)": 1,
    }
    assert got["by_cause"][f"timer {WATCHDOG_TIMER}"] == 1
    assert got["by_cause"][f"io after {WATCHDOG_TIMER} (socket -> _set_result)"] == 1
    assert got["by_cause"][f"io after {SWEEP_TIMER} (pty -> SerialTransport._read_ready)"] == 1


def test_idle_bridge_wakes_only_for_watchdog_and_sweep_and_rss_stays_flat(
    tmp_path: Path,
) -> None:
    r = run_idle(tmp_path, 20.0, sample=2.0, watchdog_usec=4_000_000, sweep_period=5.0)
    assert _processes_of(tmp_path) == []
    assert r["problems"] == []
    assert r["not_allowed"] == {}
    assert r["loop_wakeups"].get("timer", 0) >= 2, r["loop_wakeups"]
    # both allowed causes were seen, and named as what they are
    assert r["timers"].get(WATCHDOG_TIMER, 0) >= 1, r["timers"]
    assert r["timers"].get(SWEEP_TIMER, 0) >= 1, r["timers"]
    assert set(r["timers"]) <= {WATCHDOG_TIMER, SWEEP_TIMER}
    assert r["watchdog_pings"] >= 1
    assert r["rss_growth_kib"] <= RSS_GROWTH_KIB, r["rss_kib"]
    assert r["exit_code"] == 0
