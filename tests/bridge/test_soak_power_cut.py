"""Power loss stand-in: the soak with its journal on a loop-mounted ext4 image that is
cut at every kill (tools/soak.py ``--power-cut``): the image is copied as the loop
device holds it (no sync, no unmount: what the bridge wrote and did not fsync is not
in the copy), the file system unmounted and its loop device detached, and the copy
attached and mounted in its place (ext4 replays its own journal), as after a power
loss. After each cut the journal must open (``Journal.open``) and hold every Command
acknowledged to the module (its SIM copy deleted, or its ``receive`` committed).

Needs root, util-linux (``losetup``, ``mount``), e2fsprogs (``mkfs.ext4``) and a free
loop device (in a container: ``/dev/loop*`` and ``CAP_SYS_ADMIN``). Where the
machine cannot give them the test FAILS with the reason: a power-cut check that
did not run must not look like one that passed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bridge.journal import Journal

from .test_soak import _processes_of, soak

KILLS = 5


def test_power_cut_at_every_kill_journal_opens_nothing_acknowledged_missing(
    tmp_path: Path,
) -> None:
    why = soak.power_cut_unavailable()
    if why:
        pytest.fail(f"power-cut stand-in cannot run on this machine: {why}")
    res = soak.run_soak(
        tmp_path,
        commands=100,
        kills=KILLS,
        seed=11,
        power_cut=True,
        stall=5.0,
        max_stall_restarts=5,
    )
    # nothing left behind: processes, the mount, the loop device
    assert _processes_of(tmp_path) == []
    mounts = Path("/proc/self/mounts").read_text()
    assert str(tmp_path) not in mounts
    loops = subprocess.run(
        ["losetup", "-j", str(tmp_path / "journal.img")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert loops.stdout.strip() == ""
    assert res.problems == []
    assert res.power_cut_problems == []
    assert res.power_cuts == res.kills + res.stalls  # every SIGKILL, stall restarts too
    assert res.kills == KILLS
    assert res.power_cut_checked > 0  # acknowledged Commands were looked for
    assert res.lost == 0
    assert res.double_executed == 0
    assert res.sent == 100


def test_power_cut_unavailable_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(soak.os, "geteuid", lambda: 1000)
    assert soak.power_cut_unavailable() == "--power-cut needs root (loop devices and mount)"
    monkeypatch.setattr(soak.os, "geteuid", lambda: 0)
    monkeypatch.setattr(soak.shutil, "which", lambda tool: None if tool == "losetup" else tool)
    assert soak.power_cut_unavailable() == "--power-cut needs losetup (util-linux, e2fsprogs)"


def test_journal_image_opens_after_the_soak(tmp_path: Path) -> None:
    """The last image, mounted again read-only after the soak: the journal opens and
    holds every Command, each answered."""
    why = soak.power_cut_unavailable()
    if why:
        pytest.fail(f"power-cut stand-in cannot run on this machine: {why}")
    res = soak.run_soak(
        tmp_path, commands=30, kills=2, seed=5, power_cut=True, faults=False, stall=5.0
    )
    assert res.problems == []
    mnt = tmp_path / "check"
    mnt.mkdir()
    subprocess.run(
        ["mount", "-o", "loop,ro,noload", str(tmp_path / "journal.img"), str(mnt)], check=True
    )
    try:
        copy = tmp_path / "journal-copy.db"
        copy.write_bytes((mnt / "state" / "journal.db").read_bytes())
        for extra in ("-wal",):
            src = mnt / "state" / f"journal.db{extra}"
            if src.exists():
                (tmp_path / f"journal-copy.db{extra}").write_bytes(src.read_bytes())
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    with Journal.open(copy) as j:
        sids = {e.sid for e in j.list_entries(limit=10_000) if e.sid}
    assert {f"DC{i:032x}" for i in range(30)} <= sids
