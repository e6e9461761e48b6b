"""Crash safety end to end: kill -9 of a real ``python -m bridge run``, again and again.

One standalone simulator (``python -m modem.sim --pty ... --control ...``, its
own process) lives through the whole test: its SIM storage, the messages the
network holds and its MO log (what reached the wire) survive every kill. The
bridge runs as a real process on the pty, with a real SQLite journal, real
scripts and the simulated HAL, and is killed with SIGKILL (its process group)
at points chosen by a seeded plan, then started again on the same journal:

* exactly at a point, through the probes of ``rig_e2e`` (the process blocks
  there and the test kills it): before and after the inbound journal write
  (before the SIM copy is deleted), after ``executing`` is journaled, mid-action
  (a script announced its effect and is still running; a GPIO pulse is
  active), before and after the reply is queued, after ``sending`` is durable,
  between ``+CMGS`` and ``mark_sent``, after ``mark_sent``;
* at a random moment of the run: after a random number of probe lines, the
  process running on meanwhile.

Commands (all signed, each with its own SID, injected through the control
socket, half before a start and half once the bridge is up; every 10th one
delivered twice by the network at once, every 10th one again a dozen
Commands later, as a retry with a new timestamp): ``ping``,
``run once cN`` (not idempotent: its script appends ``cN`` to a count file
before it announces itself), ``run again cN`` (idempotent, same script),
``gpio pulse gate MS`` (not idempotent, a distinct MS each). Pulses are
counted by the probe on the simulated HAL's output writes, appended to a
file before the write takes effect, so the record outlives the process.

Afterwards: every Command journaled once and answered (its reply on the
wire), no non-idempotent action run twice (an interrupted one at most once,
answered ``interrupted``), and a reply on the wire more than once only for an
entry that was between ``sending`` and ``sent`` at a kill and whose journal
counts the resend.

``E2E_CRASH_COMMANDS`` / ``E2E_CRASH_KILLS`` / ``E2E_CRASH_SEED`` make a
longer run (e.g. 600 and 60); ``E2E_CRASH_POINTS`` (comma-separated) replaces
the points, e.g. with ``rig_e2e.EXTRA_POINTS``; ``E2E_BREAK`` (see
``rig_e2e``) breaks one guarantee on purpose, and the test must then fail.
"""

from __future__ import annotations

import collections
import math
import os
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bridge import auth
from bridge.journal import Journal, Kind, State

from .rig_e2e import (
    DEVICE,
    KEY,
    POINTS,
    BridgeProcess,
    SimProcess,
    count_lines,
    reap_scripts,
    write_setup,
)

N_COMMANDS = int(os.environ.get("E2E_CRASH_COMMANDS", "200"))
N_KILLS = int(os.environ.get("E2E_CRASH_KILLS", "24"))
SEED = int(os.environ.get("E2E_CRASH_SEED", "20261201"))
BROKEN = os.environ.get("E2E_BREAK") or None
#: No line from the bridge for this long: it is stuck, the test fails.
STALL = 15.0
#: Commands injected and not yet answered, at most.
BACKLOG = 16
#: Every 10th Command is delivered again this many Commands later (a retry).
RETRY_AFTER = 12


@dataclass(frozen=True)
class Cmd:
    index: int
    verb: str  # ping | once | again | pulse
    text: str
    sid: str
    ms: int = 0

    @property
    def body(self) -> str:
        return auth.sign_command(
            self.text, key=KEY, key_version=1, device_id=DEVICE, counter=self.index + 1
        )


def plan_commands(n: int) -> list[Cmd]:
    out = []
    for i in range(n):
        sid = f"DC{i:032x}"
        kind = ("ping", "once", "again", "pulse")[i % 4]
        if kind == "ping":
            out.append(Cmd(i, kind, "ping", sid))
        elif kind == "pulse":
            ms = 10 + (i // 4) % 150
            out.append(Cmd(i, kind, f"gpio pulse gate {ms}", sid, ms))
        else:
            out.append(Cmd(i, kind, f"run {kind} c{i}", sid))
    return out


@dataclass
class Tracker:
    """What the probe lines said, over every run."""

    sending: set[int] = field(default_factory=set)
    sent: set[int] = field(default_factory=set)
    in_window: set[int] = field(default_factory=set)  # sending, not sent, at a kill
    kills: collections.Counter[str] = field(default_factory=collections.Counter)

    def see(self, line: str) -> None:
        if not line.startswith("@@"):
            return
        what, *rest = line[2:].split()
        if what == "mark_sending":
            self.sending.add(int(rest[0]))
        elif what == "mark_sent":
            self.sent.add(int(rest[0]))

    def killed(self, at: str, rest: list[str], journal: Path) -> None:
        """After a kill: what the journal on disk holds is what counts (a probe line
        may not have been written before the kill)."""
        for line in rest:
            self.see(line)
        self.kills[at] += 1
        states = on_disk(journal)
        self.sent = {i for i, s in states.items() if s == State.SENT}
        self.in_window |= {i for i, s in states.items() if s == State.SENDING}


def on_disk(journal: Path) -> dict[int, str]:
    """Each Command entry's state as committed (read-only; no bridge is running)."""
    if not journal.exists():
        return {}
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT id, state FROM entry WHERE kind = 'command'").fetchall()
    finally:
        db.close()
    return {int(i): str(s) for i, s in rows}


def _run(
    bridge: BridgeProcess,
    tracker: Tracker,
    *,
    done: Callable[[], bool],
    stop_on: str | None,
    kill_after: int | None,
    on_ready: Callable[[], None],
    on_progress: Callable[[], None],
) -> str:
    """Read the bridge's lines until: its pause point or script announcement
    (``"point"``), its ``kill_after``-th probe line (``"random"``: the process
    runs on meanwhile, so the kill lands wherever it then is), ``done()`` after the
    bridge is up (``"done"``), or no line for ``STALL`` s (``"stalled"``: work
    is missing, which the checks afterwards name). Fails when it exits by itself."""
    ready = False
    probe_lines = 0
    while True:
        until = time.monotonic() + STALL
        got_line = False
        for line in bridge.events(until):
            got_line = True
            tracker.see(line)
            probe_lines += line.startswith("@@")
            if kill_after is not None and probe_lines >= kill_after:
                return "random"
            if line == "@@ready":
                ready = True
                on_ready()
            if line.startswith("@@pause "):
                return "point"
            if stop_on == "script:mid" and line.startswith("@@script "):
                return "point"
            if line.startswith("@@mark_sent "):
                on_progress()
            if ready and done():
                return "done"
        code = bridge.proc.poll()
        assert code is None, f"the bridge exited by itself ({code}):\n{bridge.tail()}"
        if not got_line and time.monotonic() >= until:
            return "stalled"  # the checks afterwards say what is missing


def test_kill9_of_bridge_run_every_command_answered_none_run_twice(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    cmds = plan_commands(N_COMMANDS)
    by_sid = {c.sid: c for c in cmds}
    # every point at least once, in a seeded order, then random moments
    kinds = (os.environ.get("E2E_CRASH_POINTS") or ",".join([*POINTS, "random"])).split(",")
    order = [kinds[i % len(kinds)] for i in range(N_KILLS)]
    rng.shuffle(order)
    per_run = math.ceil(N_COMMANDS / (N_KILLS + 1))
    tracker = Tracker()
    injected = 0
    paused_at: collections.Counter[str] = collections.Counter()

    sim = SimProcess(tmp_path, seed=SEED)
    bridge: BridgeProcess | None = None
    try:
        cfg = write_setup(tmp_path, sim.link)

        def inject(k: int) -> None:
            # never more than BACKLOG unanswered: a SIM holds 30, a larger backlog
            # comes back reordered (the network holds the rest, storage indexes are
            # reused), and a signed Command more than the replay window (64) behind
            # the highest counter seen is refused as too old
            nonlocal injected
            k = min(k, BACKLOG - (injected - len(tracker.sent)))
            for c in cmds[injected : injected + max(k, 0)]:
                sim.deliver(c.body, sid=c.sid, duplicate=c.index % 10 == 9)
                if c.index % 10 == 7 and c.index >= RETRY_AFTER:
                    # Twilio's retry of an earlier Command: the same SID and body, a
                    # later timestamp (only the journal's SID key recognises it)
                    old = cmds[c.index - RETRY_AFTER]
                    sim.deliver(old.body, sid=old.sid)
            injected = min(N_COMMANDS, injected + k)

        def feed() -> None:  # the last run: more as the backlog shrinks
            inject(BACKLOG)

        def hold_the_outbox(point: str | None) -> None:
            # the plain ``complete`` runs only when a reply already waits in the
            # module's queue (with nothing queued the reply is claimed as it is
            # queued, ``complete_and_claim``): a send that fails with an unknown
            # outcome (+CMS ERROR 500, sent again 5 s later) holds the outbox while
            # the run's other Commands complete behind it
            if point in ("complete:before", "complete:after"):
                sim.request("fault", name="cms-error", args=[500, 1])

        # a run whose point did not come (the work of that run did not pass it:
        # ``complete`` only when a reply already waits, say) tries it again
        # later, at its first occurrence, four times at most; None: the last run
        plan: collections.deque[str | None] = collections.deque([*order, None])
        tries: collections.Counter[str] = collections.Counter()
        while plan:
            point = plan.popleft()
            final = point is None
            inject(per_run // 2 if not final else per_run)
            later = 0 if final else per_run - per_run // 2
            slow = tmp_path / "slow-scripts"
            if point == "script:mid":
                slow.touch()
            else:
                slow.unlink(missing_ok=True)
            pause = None
            if point not in (None, "random", "script:mid"):
                # a point tried again pauses at its first occurrence
                nth = 1 if point == "pulse:mid" or tries[point] else rng.randint(1, 2)
                pause = f"{point}:{nth}"
            bridge = BridgeProcess(tmp_path, cfg, pause=pause, broken=BROKEN)
            kill_after = rng.randint(1, 60) if point == "random" else None
            outcome = _run(
                bridge,
                tracker,
                done=lambda f=final: len(tracker.sent) >= (N_COMMANDS if f else injected),
                stop_on=point,
                kill_after=kill_after,
                on_ready=lambda k=later, p=point: hold_the_outbox(p) or inject(k),
                on_progress=feed if final else lambda: None,
            )
            if final:
                rest = bridge.stop()
                for line in rest:
                    tracker.see(line)
                assert bridge.proc.returncode == 0, bridge.tail()
            else:
                rest = bridge.kill()
                tracker.killed(
                    point if outcome == "point" else f"{point}/{outcome}",
                    rest,
                    tmp_path / "journal.db",
                )
                if outcome == "point":
                    paused_at[point] += 1
                elif point != "random" and paused_at[point] == 0 and tries[point] < 4:
                    tries[point] += 1
                    plan.insert(len(plan) - 1, point)  # before the last run
            bridge = None
    finally:
        if bridge is not None:
            bridge.kill()
        wire = collections.Counter(sim.sent_texts())
        sim.stop()
        reap_scripts(tmp_path)

    # -- the plan happened: every Command was sent in, the kills landed where planned ----
    if injected < N_COMMANDS:  # the backlog never drained: say what the journal holds
        db = sqlite3.connect(f"file:{tmp_path / 'journal.db'}?mode=ro", uri=True)
        try:
            stuck = db.execute(
                "SELECT id, state, reason FROM entry WHERE state != 'sent' ORDER BY id"
            ).fetchall()
        finally:
            db.close()
        raise AssertionError(
            f"only {injected} of {N_COMMANDS} Commands injected: the backlog stopped "
            f"draining; entries not sent: {stuck}"
        )
    assert sum(tracker.kills.values()) >= min(20, N_KILLS), tracker.kills
    assert set(paused_at) == set(order) - {"random"}, (paused_at, tracker.kills)

    # -- first of all: nothing that must run once ran twice --------------------------
    once = count_lines(tmp_path / "once.count")
    assert max(once.values(), default=0) <= 1, [c for c, n in once.items() if n > 1]
    pulses = collections.Counter(
        int(line.split()[2])
        for line in count_lines(tmp_path / "gpio.log").elements()
        if line.startswith("gate 1 ")
    )
    per_ms = collections.Counter(c.ms for c in cmds if c.verb == "pulse")
    assert all(n <= per_ms[ms] for ms, n in pulses.items()), pulses - per_ms

    with Journal.open(tmp_path / "journal.db") as j:
        entries = [e for e in j.list_entries(limit=10 * N_COMMANDS) if e.kind is Kind.COMMAND]
    # -- journaled once each, every one answered ------------------------------------------
    journaled = collections.Counter(e.sid or "" for e in entries)
    assert journaled == collections.Counter(list(by_sid)), (
        "a Command journaled more or less than once",
        journaled - collections.Counter(list(by_sid)),
        collections.Counter(list(by_sid)) - journaled,
    )
    unsent = [(e.id, e.state, e.reason) for e in entries if e.state is not State.SENT]
    assert not unsent, unsent
    replies = {e.reply for e in entries}
    assert set(wire) <= replies, set(wire) - replies
    for e in entries:
        n = wire[e.reply]
        assert n >= 1, (e.id, e.sid, "never reached the wire")
        if n > 1:  # a duplicate: only where a kill fell between sending and sent
            assert e.id in tracker.in_window, (e.id, n)
            assert e.resends >= n - 1, (e.id, n, e.resends)
    # -- what each answer says, and what ran -------------------------------------------
    again = count_lines(tmp_path / "again.count")
    interrupted = 0
    pulses_ok: collections.Counter[int] = collections.Counter()  # by MS: ran, answered
    pulses_cut: collections.Counter[int] = collections.Counter()  # by MS: interrupted
    for e in entries:
        c = by_sid[e.sid or ""]
        assert isinstance(e.reply, str)
        body = str(auth.verify_reply(e.reply, keys={1: KEY}, device_id=DEVICE).body)
        if e.reason == "interrupted":
            interrupted += 1
            assert c.verb in ("once", "pulse"), (c, body)
            assert "interrupted" in body, (c, body)
            if c.verb == "once":
                assert once[f"c{c.index}"] <= 1, (c, once[f"c{c.index}"])
            else:
                pulses_cut[c.ms] += 1
            continue
        # "done": it ran, and the kill came before its reply was queued (recovery
        # answers from the journal, docs/bridge.md "Restart recovery")
        recovered = body == "done"
        if c.verb == "ping":
            assert recovered or body == "pong", (c, body)
        elif c.verb == "pulse":
            assert recovered or f"pulsed {c.ms}ms" in body, (c, body)
            pulses_ok[c.ms] += 1
        else:
            assert recovered or ("exit=0" in body and f"ran c{c.index}" in body), (c, body)
            if c.verb == "once":
                assert once[f"c{c.index}"] == 1, (c, once[f"c{c.index}"])
            else:
                assert again[f"c{c.index}"] >= 1, (c, again[f"c{c.index}"])
    # each answered pulse pulsed once, an interrupted one at most once (MS tells them
    # apart: distinct for up to 600 Commands, else counted together)
    for ms in set(pulses) | set(pulses_ok) | set(pulses_cut):
        assert pulses_ok[ms] <= pulses[ms] <= pulses_ok[ms] + pulses_cut[ms], (
            ms,
            pulses[ms],
            pulses_ok[ms],
            pulses_cut[ms],
        )
    # no effect without its Command
    assert set(once) <= {f"c{c.index}" for c in cmds if c.verb == "once"}
    print(
        f"{N_COMMANDS} Commands, {sum(tracker.kills.values())} kills {dict(tracker.kills)}, "
        f"{interrupted} interrupted, {sum(n - 1 for n in wire.values() if n > 1)} duplicate "
        f"replies, resends journaled {sum(e.resends for e in entries)}"
    )
