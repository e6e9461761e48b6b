"""Soak the bridge: many Commands, random module faults, SIGKILL and restart.

One standalone simulator (``python -m modem.sim --pty ... --control ...``) lives
through the whole run; a real ``python -m bridge run`` (the rig of
``tests/bridge/rig_e2e.py``) is started on it, killed with SIGKILL (its process
group) at a random journal write, and started again on the same journal, K
times. Meanwhile faults are injected through the simulator's control socket
(docs/simulator.md, "Faults"): module reboots, garbage, dropped bytes,
``+CMS ERROR`` on sends, port disconnects, full storage, unregistered periods.

Every Command is a signed ``run once cN`` whose script is *not* idempotent and
appends ``cN`` to a count file before it answers: the count file survives every
kill, so it counts executions. Every 10th Command is delivered twice by the
network, every 10th again a dozen later as Twilio's retry (same SID).

At the end (a last, unkilled run that drains everything, then SIGTERM) it reports:
Commands sent, executed, answered, duplicated replies (and their window: a kill
while the entry was ``sending``, or a resend after a failed send; the journal must
count each copy in ``resends``), lost. Lost, double-executed and unexplained
duplicates must be 0: the exit code is 1 otherwise.

What it injects (the faults, their arguments, the kill points counted in journal
writes, the Commands) comes from ``--seed``; the interleaving with the bridge's own
timing does not, so two runs with one seed inject the same plan, not the same trace.

``--kill-at script|ack`` places every planned kill in one window on purpose: in a
Command's script, held running (recovery then finds a non-idempotent action
executing: answered 'interrupted', never run again), or after the SMS service
deleted SIM copies while the run's first journal ``receive`` is held (a window only
a broken bridge opens). ``--break rerun-all`` kills in scripts and
``--break ack-before-journal`` at the acknowledgement by default, so each fails
every run, with Commands executed twice and Commands lost respectively.

``--power-cut`` puts the journal on an ext4 image on a loop device of its own
(root, util-linux, e2fsprogs, a free loop device; else a one-line reason and exit
2) and at each kill copies the image as the loop device holds it (no unmount, no
sync: what the bridge wrote and did not fsync is gone), then unmounts, detaches and
continues on the copy, as after a power loss; the copy's journal must open and hold
every Command acknowledged to the module (journaled by a FULL ``receive``, or gone
from the SIM). Nothing is left mounted or attached afterwards (checked, reported as
a problem). SIGTERM and SIGHUP stop the run through the same cleanup.
``--idle SECONDS``: see ``tests/bridge/rig_soak.py``.

    python tools/soak.py                       # 10,000 Commands, 100 kills
    python tools/soak.py --commands 1000 --kills 20 --seed 7 --json
    python tools/soak.py --break rerun-all --commands 20 --kills 3 --no-faults  # fails
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import math
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bridge import auth  # noqa: E402
from tests.bridge.rig_e2e import (  # noqa: E402
    DEVICE,
    JOURNAL_WRITES,
    KEY,
    SimProcess,
    count_lines,
    reap_scripts,
    write_setup,
)
from tests.bridge.rig_soak import SoakBridge  # noqa: E402

#: No line from the bridge for this long: it is stuck, and is killed and started
#: again (not one of the planned kills), at most MAX_STALL_RESTARTS times in all;
#: then the soak ends and what is missing is reported as lost. An SMS whose
#: ``+CMTI`` was lost to dropped bytes, or that the network holds while the storage
#: is full of messages the bridge did not see arrive, waits otherwise for the
#: periodic sweep (``modem.timing.PERIODIC_SWEEP``, 300 s); a start sweeps at once.
STALL = 10.0
MAX_STALL_RESTARTS = 200
#: Commands delivered and not yet answered, at most (a SIM holds 30; the replay
#: window is 64 counters).
BACKLOG = 16
#: In the last run, stall restarts in a row that answer nothing: every start sweeps
#: the SIM at once, so what is still missing after these is not coming (it is lost,
#: and reported so) and the soak ends instead of restarting up to the cap.
BARREN_RESTARTS = 3
RETRY_AFTER = 12
#: Probe lines (journal writes) per Command, about: kill points are drawn in them.
WRITES_PER_COMMAND = 7
#: The faults drawn from, with their weights.
FAULTS = (
    ("reboot", 3),
    ("garbage", 3),
    ("drop", 2),
    ("cms-error", 3),
    ("disconnect", 2),
    ("storage-full", 1),
    ("unregister", 2),
)
#: A fault every this many answered Commands, on average.
FAULT_EVERY = 50


@dataclass
class SoakResult:
    seed: int
    commands: int
    kills_planned: int
    kill_at: str = "random"
    kills: int = 0
    self_exits: int = 0
    deliveries: int = 0  # SMS delivered by the network: Commands, duplicates, retries
    sent: int = 0
    executed: int = 0
    double_executed: int = 0
    answered: int = 0
    interrupted: int = 0
    duplicate_replies: int = 0
    duplicates_by_window: dict[str, int] = field(default_factory=dict)
    unexplained_duplicates: int = 0
    lost: int = 0
    burnt: int = 0  # refused as replayed: its counter was burnt by a kill (see below)
    stalls: int = 0
    lost_sids: list[str] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    boot_reports: int = 0
    power_cuts: int = 0
    power_cut_problems: list[str] = field(default_factory=list)
    power_cut_checked: int = 0  # acknowledged Commands looked for after the cuts, in all
    power_cut_rolled_back: int = 0  # entries whose state or copy count a cut took back
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _sid(i: int) -> str:
    return f"DC{i:032x}"


def _body(i: int) -> str:
    return auth.sign_command(
        f"run once c{i}", key=KEY, key_version=1, device_id=DEVICE, counter=i + 1
    )


def _config(tmp: Path, link: str, journal_dir: Path) -> Path:
    """The rig's configuration, with boot messages on (every restart sends one;
    the rig's budgets are already raised far above what a soak sends) and the
    journal in ``journal_dir``."""
    cfg = write_setup(tmp, link)
    text = cfg.read_text()
    text = text.replace("[reports]\nboot = false", "[reports]\nboot = true")
    text = text.replace(
        f'journal = "{tmp / "journal.db"}"', f'journal = "{journal_dir / "journal.db"}"'
    )
    cfg.write_text(text)
    script = tmp / "scripts" / "once"
    script.write_text(ONCE_SH.format(tmp=tmp))
    return cfg


#: The soak's ``once`` script (rig_e2e's, plus a hold): the effect first (a line in
#: the count file), then the announcement on the bridge's standard error; then, when
#: the file ``hold-scripts`` exists and this is the Command's first execution, it
#: announces ``@@held`` and blocks until killed, so a kill lands while it runs
#: (``kill_at="script"``).
ONCE_SH = """\
#!/bin/sh
echo $$ >> {tmp}/script.pids
first=1
grep -qx "$1" {tmp}/once.count 2>/dev/null && first=0
echo "$1" >> {tmp}/once.count
echo "@@script once $1" > /proc/$PPID/fd/2 2>/dev/null
if [ "$first" = 1 ] && [ -e {tmp}/hold-scripts ]; then
    echo $$ >> {tmp}/held.pids
    echo "@@held once $1" > /proc/$PPID/fd/2 2>/dev/null
    sleep 3600  # not exec: the script (its command line names the work directory) stays
fi
echo "ran $1"
"""
#: Where the planned kills land: ``random`` (after a seeded number of journal
#: writes), ``script`` (in a Command's script, held running: the window of a
#: non-idempotent action found executing by recovery), ``ack`` (the first ``receive``
#: of the run held in the journal's thread, the kill after the SMS service next
#: deletes SIM copies: the window between the module's acknowledgement and the
#: journal write, which only a broken bridge opens; when no delete comes within the
#: stall time the kill lands there anyway).
KILL_AT = ("random", "script", "ack")
#: The kill placement each broken guarantee is shown with (``--break``).
KILL_AT_FOR_BREAK = {"rerun-all": "script", "ack-before-journal": "ack", "no-dedupe": "random"}


def _release_held(tmp: Path) -> None:
    """Kill the scripts held by ``hold-scripts`` (each in a session of its own)."""
    p = tmp / "held.pids"
    if not p.exists():
        return
    for pid in {int(x) for x in p.read_text().split()}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    p.unlink()


def _journal_rows(
    journal: Path,
) -> list[tuple[int, str, str | None, str, str | None, int, str | None]]:
    """(id, kind, sid, state, reply, copies counted, reason) of every entry, read-only;
    copies counted: resends after a kill plus sends after a failed send."""
    if not journal.exists():
        return []
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        return [
            (int(r[0]), str(r[1]), r[2], str(r[3]), r[4], int(r[5]), r[6])
            for r in db.execute(
                "SELECT id, kind, sid, state, reply_text,"
                " resends + MAX(send_attempts - 1, 0), reason FROM entry"
            )
        ]
    finally:
        db.close()


def _burnt(journal: Path) -> set[int]:
    """The counter high-water mark of the side file when no entry holds it: a kill
    came after the side file was written and before ``authenticate`` committed
    (docs/bridge.md, "Corruption and the counters that never go back"); that
    Command is then refused as replayed when recovery runs it."""
    side = journal.with_name("journal.db.counters")
    if not side.exists() or not journal.exists():
        return set()
    mark = int(json.loads(side.read_text())["command_counter"])
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        held = db.execute("SELECT 1 FROM entry WHERE counter = ?", (mark,)).fetchone()
    finally:
        db.close()
    return set() if held or not mark else {mark}


def _on_sim(sim: SimProcess) -> set[str]:
    """SIDs of the Commands still on the simulated SIM (not yet acknowledged)."""
    import pdu

    out = set()
    for rec in sim.request("storage", name="SM"):
        with contextlib.suppress(pdu.PduError, AttributeError):
            text = str(pdu.decode(rec["pdu"]).tp_ud.text)  # type: ignore[union-attr]
            if text.startswith("DC"):
                out.add(text[:34])
    return out


def power_cut_unavailable() -> str | None:
    """Why ``--power-cut`` cannot run here (one line), or None when it can: it needs
    root, ``losetup``, ``mkfs.ext4``, ``mount``/``umount`` and a free loop device
    (``losetup --find``; in a container, ``/dev/loop*`` and ``CAP_SYS_ADMIN``)."""
    if os.geteuid() != 0:
        return "--power-cut needs root (loop devices and mount)"
    for tool in ("losetup", "mkfs.ext4", "mount", "umount"):
        if shutil.which(tool) is None:
            return f"--power-cut needs {tool} (util-linux, e2fsprogs)"
    r = subprocess.run(["losetup", "--find"], capture_output=True, text=True, check=False)
    if r.returncode or not r.stdout.strip():
        why = r.stderr.strip() or "no free loop device"
        return f"--power-cut needs a free loop device: losetup --find: {why}"
    return None


class _LoopJournal:
    """The journal's directory on an ext4 image attached to a loop device of its own
    and mounted; ``cut()`` replaces it by a copy of what the loop device held at
    that moment (a power cut); ``close()`` unmounts and detaches, and checks that
    nothing is left (no mount, no loop device on the image)."""

    def __init__(self, tmp: Path) -> None:
        why = power_cut_unavailable()
        if why:
            raise RuntimeError(why)
        self.image = tmp / "journal.img"
        self.mnt = tmp / "jfs"
        self.mnt.mkdir()
        self.dev: str | None = None
        self.mounted = False
        subprocess.run(["truncate", "-s", "64M", str(self.image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(self.image)], check=True)
        try:
            self._attach()
            self.dir = self.mnt / "state"
            self.dir.mkdir()
        except BaseException:
            self.close()
            raise

    def _run(self, *argv: str) -> str:
        r = subprocess.run(argv, capture_output=True, text=True, check=False)
        if r.returncode:
            raise RuntimeError(f"{' '.join(argv)}: {r.stderr.strip() or r.returncode}")
        return r.stdout.strip()

    def _attach(self) -> None:
        self.dev = self._run("losetup", "--find", "--show", str(self.image))
        self._run("mount", "-t", "ext4", self.dev, str(self.mnt))
        self.mounted = True  # ext4 replays its own journal, as after a power loss

    def _detach(self) -> None:
        if self.mounted:
            if subprocess.run(["umount", str(self.mnt)], check=False).returncode:
                subprocess.run(["umount", "-l", str(self.mnt)], check=False)
            self.mounted = False
        if self.dev is not None:
            subprocess.run(["losetup", "-d", self.dev], check=False)
            self.dev = None

    def cut(self) -> None:
        snap = self.image.with_suffix(".cut")
        # what the loop device has received: the mounted file system's dirty pages
        # (written, not fsynced) are not in the image yet and are lost with the copy
        shutil.copyfile(self.image, snap)
        self._detach()
        snap.replace(self.image)
        self._attach()

    def close(self) -> None:
        self._detach()

    def leftovers(self) -> list[str]:
        """Mounts on the mount point and loop devices on the image still there."""
        out = []
        mounts = Path("/proc/self/mounts").read_text().split("\n")
        out += [f"mounted: {m}" for m in mounts if f" {self.mnt} " in m]
        r = subprocess.run(
            ["losetup", "-j", str(self.image)], capture_output=True, text=True, check=False
        )
        out += [f"loop device: {line}" for line in r.stdout.splitlines() if line.strip()]
        return out


def _check_after_cut(journal: Path, acked: set[str], highest_sent: int) -> list[str]:
    """The journal opens after the cut and holds every Command the module deleted."""
    from bridge.journal import Journal

    problems = []
    try:
        with Journal.open(journal) as j:
            sids = {e.sid for e in j.list_entries(limit=1_000_000)}
            marks = j.marks() if hasattr(j, "marks") else None
    except Exception as e:
        return [f"journal does not open after a cut: {type(e).__name__}: {e}"]
    moved = sorted(p.name for p in journal.parent.glob("journal.db.corrupt-*"))
    if moved:
        problems.append(f"moved aside as corrupt: {moved}")
    missing = acked - sids
    if missing and not moved:
        problems.append(f"{len(missing)} acknowledged Commands missing: {sorted(missing)[:5]}")
    side = journal.with_name("journal.db.counters")
    if side.exists() and highest_sent:
        hw = json.loads(side.read_text())["command_counter"]
        if moved and hw < highest_sent:
            problems.append(f"counter high-water mark went back: {hw} < {highest_sent}")
    del marks
    return problems


def run_soak(
    tmp: Path,
    *,
    commands: int = 10_000,
    kills: int = 100,
    seed: int = 1,
    faults: bool | tuple[str, ...] = True,
    broken: str | None = None,
    power_cut: bool = False,
    backlog: int = BACKLOG,
    fault_every: float = FAULT_EVERY,
    stall: float = STALL,
    max_stall_restarts: int = MAX_STALL_RESTARTS,
    progress: Callable[[SoakResult, int], None] | None = None,
    kill_at: str | None = None,
    network_repeats: bool = True,
) -> SoakResult:
    """The soak (module docstring) in ``tmp``; every process it starts is gone
    when it returns or raises. ``kill_at``: where the planned kills land
    (:data:`KILL_AT`; by default the one :data:`KILL_AT_FOR_BREAK` gives for
    ``broken``, else ``random``). ``network_repeats=False``: no network duplicates
    nor Twilio retries (a lost Command is then not found again by a retry)."""
    if kill_at is None:
        kill_at = KILL_AT_FOR_BREAK.get(broken or "", "random")
    if kill_at not in KILL_AT:
        raise ValueError(f"kill_at must be one of {KILL_AT}, not {kill_at!r}")
    rng = random.Random(seed)
    res = SoakResult(seed=seed, commands=commands, kills_planned=kills, kill_at=kill_at)
    t0 = time.monotonic()
    per_run = math.ceil(commands / (kills + 1))
    # the plan, drawn up front: where each kill lands (in journal writes of its run)
    # and which fault comes after which answered Command
    kill_after = [rng.randint(1, 2 * WRITES_PER_COMMAND * per_run) for _ in range(kills)]
    chosen = [(n, w) for n, w in FAULTS if faults is True or (faults and n in faults)]
    names = [n for n, _ in chosen]
    weights = [w for _, w in chosen]
    plan: dict[int, tuple[str, list[Any], float]] = {}
    if chosen:
        for a in range(commands):
            if rng.random() < 1 / fault_every:
                name = rng.choices(names, weights)[0]
                args: list[Any] = {
                    "reboot": [],
                    "garbage": [rng.randint(1, 64)],
                    "drop": [round(rng.uniform(0.005, 0.05), 3)],
                    "cms-error": [rng.choice([500, 331, 42]), 1],
                    "disconnect": [rng.randint(50, 500)],
                    "storage-full": [],
                    "unregister": [],
                }[name]
                plan[a] = (name, args, round(rng.uniform(0.3, 3.0), 2))  # how long it lasts

    ids_to_sid: dict[int, str] = {}
    sent_ids: set[int] = set()
    in_window: set[int] = set()  # command entries `sending` at a kill
    burnt: set[int] = set()  # counters the side file holds and no entry does, after a kill
    injected = 0
    answered_seen = 0
    undo: list[tuple[float, str, dict[str, Any]]] = []
    fault_count: collections.Counter[str] = collections.Counter()
    loopfs: _LoopJournal | None = None
    if power_cut and (why := power_cut_unavailable()):
        raise RuntimeError(why)
    sim = SimProcess(tmp, seed=seed)
    bridge: SoakBridge | None = None
    hold = tmp / "hold-scripts"
    try:
        if power_cut:
            loopfs = _LoopJournal(tmp)
            jdir = loopfs.dir
        else:
            jdir = tmp
        journal = jdir / "journal.db"
        cfg = _config(tmp, sim.link, jdir)

        def inject(k: int) -> None:
            nonlocal injected
            k = min(k, backlog - (injected - len(sent_ids & set(ids_to_sid))), commands - injected)
            for i in range(injected, injected + max(k, 0)):
                dup = network_repeats and i % 10 == 9
                sim.deliver(_body(i), sid=_sid(i), duplicate=dup)
                res.deliveries += 2 if dup else 1
                if network_repeats and i % 10 == 7 and i >= RETRY_AFTER:
                    j = i - RETRY_AFTER
                    sim.deliver(_body(j), sid=_sid(j))
                    res.deliveries += 1
            injected += max(k, 0)

        def fault_due(a: int) -> None:
            if a not in plan:
                return
            name, args, lasts = plan[a]
            fault_count[name] += 1
            if name == "unregister":
                sim.request("set_registered", registered=False)
                undo.append((time.monotonic() + lasts, "set_registered", {"registered": True}))
            else:
                sim.request("fault", name=name, args=args)
                if name == "drop":
                    undo.append((time.monotonic() + lasts, "fault", {"name": "clear", "args": []}))

        def run_undo(now: float) -> None:
            for item in [u for u in undo if u[0] <= now]:
                undo.remove(item)
                sim.request(item[1], **item[2])

        run = 0
        stall_restarts = 0
        barren = 0  # stall restarts in a row with nothing answered in between
        answered_at_stall = -1
        while run <= kills:
            final = run == kills
            if kill_at == "script" and not final:
                hold.touch()
            else:
                hold.unlink(missing_ok=True)
            pause = "receive:before:1" if kill_at == "ack" and not final else None
            bridge = SoakBridge(tmp, cfg, pause=pause, broken=broken)
            writes = 0
            limit = None if final or kill_at != "random" else kill_after[run]
            paused_at: float | None = None  # kill_at="ack": the receive held since
            outcome = ""
            last_line = time.monotonic()
            while not outcome:
                until = last_line + stall
                if paused_at is not None:
                    until = min(until, paused_at + stall)
                if undo:
                    until = min(until, *(u[0] for u in undo))
                for line in bridge.events(until):
                    last_line = time.monotonic()
                    run_undo(last_line)
                    if not line.startswith("@@"):
                        continue
                    what, *rest = line[2:].split()
                    if what == "held" and not final:  # kill_at="script"
                        outcome = "kill"
                        break
                    if what == "pause" and rest[:1] == ["receive:before"]:
                        paused_at = time.monotonic()
                    elif what == "deleted" and paused_at is not None:  # kill_at="ack"
                        outcome = "kill"
                        break
                    if what == "ready":
                        inject(per_run if not final else backlog)
                    elif what == "receive":
                        ids_to_sid[int(rest[0])] = rest[1]
                    elif what == "mark_sent":
                        eid = int(rest[0])
                        if eid in ids_to_sid and eid not in sent_ids:
                            sent_ids.add(eid)
                            fault_due(answered_seen)
                            answered_seen += 1
                            if progress is not None and answered_seen % 100 == 0:
                                res.kills = run
                                progress(res, answered_seen)
                        inject(1 if not final else backlog)
                    if what in JOURNAL_WRITES:
                        writes += 1
                        if limit is not None and writes >= limit:
                            outcome = "kill"
                            break
                    if injected >= commands and len(sent_ids) >= commands:
                        outcome = "done" if final else "kill"  # nothing left to kill it in
                        break
                if outcome:
                    break
                now = time.monotonic()
                run_undo(now)
                if bridge.proc.poll() is not None:
                    outcome = "exit"
                elif paused_at is not None and now - paused_at >= stall:
                    outcome = "kill"  # held in receive and no SIM copy deleted meanwhile
                elif now - last_line >= stall:
                    outcome = "stalled"
            if outcome == "exit":  # exit 1 after a stack failure: restart, as systemd does
                res.self_exits += 1
                bridge.drain()
                bridge = None
                continue
            if outcome == "done":
                bridge.stop()
                bridge = None
                break
            if outcome == "stalled":  # killed and started again; the planned kill is still due
                res.stalls += 1
                stall_restarts += 1
                barren = barren + 1 if answered_seen == answered_at_stall else 1
                answered_at_stall = answered_seen
                if stall_restarts > max_stall_restarts or (final and barren > BARREN_RESTARTS):
                    bridge.stop()
                    bridge = None
                    break
            assert bridge is not None
            rest = bridge.kill()
            bridge = None
            _release_held(tmp)
            if outcome == "kill":
                res.kills += 1
                run += 1
            for line in rest:
                if line.startswith("@@receive "):
                    _, eid, sid, *_ = line[2:].split()
                    ids_to_sid[int(eid)] = sid
            rows = _journal_rows(journal)
            if power_cut and loopfs is not None:
                # acknowledged: journaled by a FULL commit (its @@receive line came,
                # or an entry holds it), and, when the network holds nothing back,
                # every Command no longer on the SIM (deleted: the module was told)
                acked = set(ids_to_sid.values()) & {_sid(i) for i in range(injected)}
                if not sim.request("status")["pending_mt"]:
                    acked |= {_sid(i) for i in range(injected)} - _on_sim(sim)
                loopfs.cut()
                res.power_cuts += 1
                res.power_cut_checked += len(acked)
                for p in _check_after_cut(journal, acked, injected):
                    res.power_cut_problems.append(f"cut {res.power_cuts}: {p}")
                before = {(r[0], r[3], r[5]) for r in rows}
                rows = _journal_rows(journal)
                # what the cut took back (written, not yet fsynced): the stand-in bites
                res.power_cut_rolled_back += len(before - {(r[0], r[3], r[5]) for r in rows})
            for eid, kind, sid, state, *_ in rows:
                if kind == "command" and sid:
                    ids_to_sid[eid] = sid
                    if state == "sending":
                        in_window.add(eid)
            sent_ids = {
                eid for eid, kind, _s, state, *_ in rows if kind == "command" and state == "sent"
            }
            burnt.update(_burnt(journal))
        # let anything still undone (registration back, drop cleared) be undone
        for _, op, args in undo:
            sim.request(op, **args)
        rows = _journal_rows(journal)
    finally:
        if bridge is not None:
            bridge.kill()
        wire = (
            collections.Counter(sim.sent_texts())
            if sim.proc.poll() is None
            else collections.Counter()
        )
        sim.stop()
        reap_scripts(tmp)
        if loopfs is not None:
            with contextlib.suppress(Exception):
                rows = _journal_rows(journal)
            loopfs.close()
            res.power_cut_problems += [f"left behind: {x}" for x in loopfs.leftovers()]
    # -- the figures ------------------------------------------------------------------
    res.seconds = round(time.monotonic() - t0, 1)
    res.faults = dict(fault_count)
    res.sent = injected
    once = count_lines(tmp / "once.count")
    res.executed = len(once)
    res.double_executed = sum(1 for n in once.values() if n > 1)
    delivered = {_sid(i) for i in range(injected)}
    commands_rows = [r for r in rows if r[1] == "command"]
    res.boot_reports = sum(1 for r in rows if r[1] == "report")
    by_sid: dict[str, list[Any]] = collections.defaultdict(list)
    for r in commands_rows:
        by_sid[r[2] or ""].append(r)
    answered = {s for s, rs in by_sid.items() if any(r[3] == "sent" and wire[r[4]] for r in rs)}
    res.answered = len(answered & delivered)
    res.interrupted = sum(1 for r in commands_rows if r[6] == "interrupted")
    burnt_sids = {
        r[2]
        for r in commands_rows
        if r[6] == "auth:replayed" and r[2] in delivered and int(r[2][2:], 16) + 1 in burnt
    }
    res.burnt = len(burnt_sids)
    lost = sorted(delivered - answered - burnt_sids)
    res.lost = len(lost)
    res.lost_sids = lost[:20]
    windows: collections.Counter[str] = collections.Counter()
    for eid, _k, _s, _st, reply, resends, _r in commands_rows:
        n = wire[reply] if reply else 0
        if n > 1:
            res.duplicate_replies += n - 1
            if resends < n - 1:
                res.unexplained_duplicates += n - 1
                windows["unexplained"] += n - 1
            elif eid in in_window:
                windows["killed while sending"] += n - 1
            else:
                windows["resent after a failed send"] += n - 1
    res.duplicates_by_window = dict(windows)
    journaled_twice = [s for s, rs in by_sid.items() if len(rs) > 1 and s in delivered]
    extra = set(once) - {f"c{i}" for i in range(injected)}
    if injected < commands:
        res.problems.append(
            f"only {injected} of {commands} Commands sent (the backlog stopped draining)"
        )
    if res.lost:
        res.problems.append(f"{res.lost} Commands lost (not answered): {res.lost_sids[:5]}")
    if res.double_executed:
        twice = [c for c, n in once.items() if n > 1]
        res.problems.append(f"{res.double_executed} Commands executed more than once: {twice[:5]}")
    if journaled_twice:
        res.problems.append(
            f"{len(journaled_twice)} Commands journaled twice: {journaled_twice[:5]}"
        )
    if res.unexplained_duplicates:
        res.problems.append(
            f"{res.unexplained_duplicates} duplicate replies the journal did not count"
        )
    if extra:
        res.problems.append(f"effects without a Command: {sorted(extra)[:5]}")
    res.problems.extend(res.power_cut_problems)
    return res


# -- output -----------------------------------------------------------------------------


def table(res: SoakResult) -> str:
    rows = [
        ("Commands sent", res.sent),
        ("  SMS delivered (with network duplicates, retries)", res.deliveries),
        ("executed (count file)", res.executed),
        ("  executed more than once", res.double_executed),
        ("answered (reply on the wire)", res.answered),
        ("  of which 'interrupted'", res.interrupted),
        ("duplicate replies", res.duplicate_replies),
        *[(f"  {w}", n) for w, n in sorted(res.duplicates_by_window.items())],
        ("lost", res.lost),
        ("refused as replayed: counter burnt by a kill", res.burnt),
        ("stalls (no progress for the stall time: restarted)", res.stalls),
        (f"SIGKILLs (at: {res.kill_at})", res.kills),
        ("exits by itself (restarted)", res.self_exits),
        ("boot messages journaled", res.boot_reports),
        ("faults injected", sum(res.faults.values())),
        *[(f"  {n}", c) for n, c in sorted(res.faults.items())],
    ]
    if res.power_cuts:
        rows.append(("power cuts (journal image snapshots)", res.power_cuts))
        rows.append(("  acknowledged Commands checked after them", res.power_cut_checked))
        rows.append(("  entry states the cuts took back (not fsynced)", res.power_cut_rolled_back))
    rows.append(("seconds", res.seconds))
    w = max(len(k) for k, _ in rows)
    out = [f"soak seed={res.seed}: {'OK' if res.ok else 'FAILED'}"]
    out += [f"{k:<{w}}  {v:>8}" for k, v in rows]
    out += [f"problem: {p}" for p in res.problems]
    return "\n".join(out)


def _progress(res: SoakResult, answered: int) -> None:
    print(f"\rsoak: {answered}/{res.commands} answered, {res.kills} kills", end="", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="soak", description=__doc__.split("\n\n")[0])
    ap.add_argument("--commands", type=int, default=10_000)
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-faults", action="store_true", help="kills only, no module faults")
    ap.add_argument(
        "--faults",
        type=lambda v: tuple(v.split(",")),
        help="comma-separated names, from: " + ", ".join(n for n, _ in FAULTS),
    )
    ap.add_argument(
        "--power-cut", action="store_true", help="journal on a loop-mounted image (root)"
    )
    ap.add_argument("--backlog", type=int, default=BACKLOG, help="Commands in flight at most")
    ap.add_argument(
        "--break", dest="broken", choices=["no-dedupe", "ack-before-journal", "rerun-all"]
    )
    ap.add_argument(
        "--kill-at",
        choices=KILL_AT,
        help="where planned kills land (default: random; script for --break rerun-all,"
        " ack for --break ack-before-journal)",
    )
    ap.add_argument(
        "--no-repeats",
        action="store_true",
        help="no network duplicates nor Twilio retries of the Commands",
    )
    ap.add_argument("--idle", type=float, metavar="SECONDS", help="idle wake-ups and RSS instead")
    ap.add_argument("--stall", type=float, default=STALL, help="seconds without progress: restart")
    ap.add_argument(
        "--fault-every", type=float, default=FAULT_EVERY, help="answered Commands a fault"
    )
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args(argv)
    if a.faults and set(a.faults) - {n for n, _ in FAULTS}:
        ap.error(f"--faults: unknown {sorted(set(a.faults) - {n for n, _ in FAULTS})}")
    if a.commands < 1 or a.kills < 0 or a.backlog < 1:
        ap.error("--commands and --backlog must be >= 1, --kills >= 0")
    if a.power_cut and (why := power_cut_unavailable()):
        print(f"soak: {why}", file=sys.stderr)
        return 2

    def terminated(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # the finally clauses stop what was started

    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGHUP, terminated)
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    try:
        if a.idle is not None:
            from tests.bridge.rig_soak import idle_report, run_idle

            idle = run_idle(tmp, a.idle, seed=a.seed)
            print(json.dumps(idle, indent=1) if a.json else idle_report(idle))
            return 0 if idle["ok"] else 1
        res = run_soak(
            tmp,
            commands=a.commands,
            kills=a.kills,
            seed=a.seed,
            faults=False if a.no_faults else (a.faults or True),
            broken=a.broken,
            power_cut=a.power_cut,
            backlog=a.backlog,
            fault_every=a.fault_every,
            stall=a.stall,
            progress=_progress,
            kill_at=a.kill_at,
            network_repeats=not a.no_repeats,
        )
        print(file=sys.stderr)
        print(json.dumps({**asdict(res), "ok": res.ok}, indent=1) if a.json else table(res))
        return 0 if res.ok else 1
    finally:
        if a.keep:
            print(f"work directory: {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
