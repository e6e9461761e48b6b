"""The soak, shorter: ``tools/soak.py``'s core with 500 Commands and 10 kills.

The issue asks for 1,000 and 20: that run passed here in about 60 s once and hit
the 120 s per-test timeout once when the shared machine was busy, so the suite
runs half of it (``python tools/soak.py --commands 1000 --kills 20`` is the
full one).

A standalone simulator, a real ``python -m bridge run`` killed with SIGKILL at
random journal writes and started again 20 times, faults injected at random
through the simulator's control socket (reboots, garbage, dropped bytes,
``+CMS ERROR``, disconnects, full storage, unregistered periods), every Command
a non-idempotent ``run once cN`` counted by its script in a file that outlives
the kills. Afterwards: nothing lost, nothing executed twice, every duplicate
reply counted by the journal as a resend (docs/reliability.md).

A fault every 50 answered Commands on average (the tool's default) and a stall
time of 5 s (a URC lost to dropped bytes is otherwise found by the 300 s periodic
sweep; the soak kills the bridge instead, whose start sweeps at once) keep it
under two minutes on the 2-core machine.

Breaking a guarantee makes the soak fail, from the command line (not here: a
random kill lands while a script runs in some runs only, so such a test would be
flaky): ``python tools/soak.py --break rerun-all --commands 200 --kills 10
--no-faults`` (every action journaled as idempotent) failed with 1-2 Commands
executed twice in the runs tried, and passed in one of them. ``no-dedupe`` and
``ack-before-journal`` did not make it fail: the SMS service's in-memory part
groups and the replay window still stop the network's duplicates, and a kill at
a random journal write lands too rarely between the SIM delete and the journal
write (``test_crash_e2e`` places kills there exactly). No process the soak
started is left afterwards (checked here: each runs in a process group of its
own, killed in ``finally``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak_tool", ROOT / "tools" / "soak.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["soak_tool"] = mod
    spec.loader.exec_module(mod)
    return mod


soak = _soak()


def _processes_of(tmp: Path) -> list[str]:
    """Command lines of live processes that name ``tmp`` (the bridge's config, the
    simulator's pty, the scripts all live there)."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(tmp) in cmd:
            out.append(f"{p.name}: {cmd}")
    return out


def test_soak_500_commands_10_kills_none_lost_none_run_twice(tmp_path: Path) -> None:
    res = soak.run_soak(
        tmp_path, commands=500, kills=10, seed=20261201, stall=5.0, max_stall_restarts=5
    )
    assert _processes_of(tmp_path) == []
    assert res.problems == []
    assert res.sent == 500
    assert res.kills == 10
    assert sum(res.faults.values()) >= 3, res.faults
    assert res.double_executed == 0
    assert res.lost == 0
    # each Command answered once at least, except one refused as replayed after a
    # kill burnt its counter (a Command interrupted mid-run is answered 'interrupted')
    assert res.answered == 500 - res.burnt
    assert res.burnt <= res.kills
    assert res.executed <= 500
    assert res.executed >= 500 - res.interrupted - res.burnt
    assert res.unexplained_duplicates == 0
    assert sum(res.duplicates_by_window.values()) == res.duplicate_replies
