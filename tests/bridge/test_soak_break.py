"""A broken guarantee makes the soak fail, every run, with that problem named.

The soak's planned kills land where the broken guarantee shows (``kill_at``,
tools/soak.py): ``script`` holds each Command's first execution of its script
running (the script announces ``@@held`` and blocks) and kills the bridge there;
``ack`` holds the run's first journal ``receive`` in the journal's thread and kills
the bridge once the SMS service has next deleted SIM copies (``@@deleted``).
With the guarantee intact the same kills must pass: the controls below.
"""

from __future__ import annotations

from pathlib import Path

from .test_soak import _processes_of, soak

KILLS = 3


def test_rerun_all_is_reported_as_commands_executed_twice(tmp_path: Path) -> None:
    res = soak.run_soak(
        tmp_path, commands=20, kills=KILLS, seed=3, faults=False, broken="rerun-all", stall=5.0
    )
    assert _processes_of(tmp_path) == []
    assert res.kill_at == "script"
    assert res.kills == KILLS
    # every kill landed in a script, recovery ran each of those Commands again
    assert res.double_executed == KILLS
    assert len(res.problems) == 1, res.problems
    assert res.problems[0].startswith(f"{KILLS} Commands executed more than once: ")
    assert res.lost == 0


def test_ack_before_journal_is_reported_as_commands_lost(tmp_path: Path) -> None:
    res = soak.run_soak(
        tmp_path,
        commands=20,
        kills=KILLS,
        seed=3,
        faults=False,
        broken="ack-before-journal",
        network_repeats=False,  # no retry finds a lost Command again
        stall=3.0,
    )
    assert _processes_of(tmp_path) == []
    assert res.kill_at == "ack"
    assert res.kills == KILLS
    # each kill came after a SIM copy was deleted and before its journal write
    assert res.lost >= KILLS
    assert len(res.problems) == 1, res.problems
    assert res.problems[0].startswith(f"{res.lost} Commands lost (not answered): ")
    assert res.double_executed == 0


def test_the_same_kills_pass_with_the_guarantees_intact(tmp_path: Path) -> None:
    (tmp_path / "script").mkdir()
    (tmp_path / "ack").mkdir()
    script = soak.run_soak(
        tmp_path / "script", commands=20, kills=KILLS, seed=3, faults=False, kill_at="script"
    )
    assert script.problems == []
    assert script.kills == KILLS
    assert script.interrupted == KILLS  # found executing after the kill: not run again
    assert script.double_executed == 0
    ack = soak.run_soak(
        tmp_path / "ack",
        commands=20,
        kills=KILLS,
        seed=3,
        faults=False,
        kill_at="ack",
        network_repeats=False,
        stall=3.0,
    )
    assert ack.problems == []
    assert ack.kills == KILLS
    assert ack.lost == 0
    assert _processes_of(tmp_path) == []
