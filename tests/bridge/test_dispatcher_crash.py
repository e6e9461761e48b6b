"""SIGKILL of a real process running the dispatcher and the outbox, again and again.

The child (this module run with ``python -m``) opens the journal file, admits
every Command of the session (as the SMS service re-reads whatever is still
on the SIM: the journal answers "duplicate" for those it holds), runs them
through the real dispatcher, the simulated HAL and real scripts, and "sends"
replies by appending them to a wire file, printing ``sent`` first. The parent
kills it with SIGKILL after its k-th ``sent`` line, for varying k, so kills
land before, during and after actions and between the send and ``mark_sent``;
then it lets one run finish. Afterwards: every Command answered, no
non-idempotent script run twice (the scripts' own count files, which a kill
does not roll back), duplicates on the wire only for entries the journal
counted as resent.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
from pathlib import Path

from bridge import auth
from bridge.journal import Journal, State

from .test_dispatcher_rig import DEVICE, KEY

N_COMMANDS = 24
#: (event, k): SIGKILL right after the child's k-th line of that event this run.
#: "sent": the PDU left, mark_sent not yet run; "script": a script is starting.
KILLS = (
    ("script", 1),
    ("sent", 1),
    ("script", 2),
    ("sent", 3),
    ("script", 1),
    ("sent", 2),
    ("script", 3),
    ("sent", 5),
    ("script", 1),
    ("sent", 1),
)


def commands() -> list[str]:
    out = []
    for i in range(N_COMMANDS):
        verb = ("run once", "run again", "ping", "gpio pulse gate 5")[i % 4]
        text = f"{verb} c{i}" if verb.startswith("run") else verb
        out.append(auth.sign_command(text, key=KEY, key_version=1, device_id=DEVICE, counter=i + 1))
    return out


async def _child(tmp: Path) -> None:
    from bridge.inbound import Incoming
    from pdu.dcs import Alphabet

    from .test_dispatcher_rig import Rig

    wire = (tmp / "wire.log").open("a", buffering=1)

    class WireSender:
        def __init__(self) -> None:
            self.mr = 0

        async def send(self, to: str, content: str | bytes, *, binary: bool) -> tuple[int, ...]:
            wire.write(f"{content!r}\n")
            print("sent", flush=True)  # the PDU left; the parent may kill us now
            self.mr += 1
            return (self.mr,)

    rig = Rig(tmp)
    rig.sender = WireSender()  # type: ignore[assignment]
    real_run = rig.hal.scripts.run

    async def announced_run(name: str, args: object = ()) -> object:
        print("script", flush=True)  # the parent may kill us now, mid-action
        return await real_run(name, args)  # type: ignore[arg-type]

    rig.hal.scripts.run = announced_run  # type: ignore[method-assign,assignment]
    async with rig:
        for i, body in enumerate(commands()):
            await rig.dispatcher.admit(
                Incoming("2936", body, Alphabet.GSM7, f"sms-{i}", (f"sms-{i}/1",), True),
                modem="modem0",
            )
        await rig.settle()
    print("finished", flush=True)


def _run_child(tmp: Path, kill: tuple[str, int] | None) -> bool:
    """Run the child; SIGKILL it after the ``kill`` event. True if it finished."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.bridge.test_dispatcher_crash", str(tmp)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None
    seen: collections.Counter[str] = collections.Counter()
    finished = False
    for line in proc.stdout:
        event = line.strip()
        seen[event] += 1
        if kill is not None and event == kill[0] and seen[event] >= kill[1]:
            proc.send_signal(signal.SIGKILL)
            break
        if event == "finished":
            finished = True
    proc.stdout.close()
    rc = proc.wait(timeout=60)
    assert finished or rc == -signal.SIGKILL, rc
    return finished


def test_sigkill_at_many_points_every_command_answered_none_run_twice(tmp_path: Path) -> None:
    finished = False
    for k in KILLS:
        finished = _run_child(tmp_path, k)
        if finished:
            break
    if not finished:
        assert _run_child(tmp_path, None)
    with Journal.open(tmp_path / "journal.db") as j:
        entries = j.list_entries(limit=1000)
    assert len(entries) == N_COMMANDS
    assert all(e.state is State.SENT for e in entries), [(e.id, e.state) for e in entries]
    # the non-idempotent script: at most once per Command (interrupted ones: zero)
    once = (
        (tmp_path / "once.count").read_text().split() if (tmp_path / "once.count").exists() else []
    )
    assert all(n == 1 for n in collections.Counter(once).values()), once
    for e in entries:
        if e.reason == "interrupted":
            assert e.summary in ("run", "gpio-pulse")
    # every reply reached the wire; a reply twice only where the journal counted it
    wire = collections.Counter((tmp_path / "wire.log").read_text().splitlines())
    for e in entries:
        n = wire[repr(e.reply)]
        assert n >= 1
        if n > 1:
            assert e.resends + e.send_attempts > 1, (e.id, n, e.resends, e.send_attempts)


if __name__ == "__main__":
    asyncio.run(_child(Path(sys.argv[1])))
