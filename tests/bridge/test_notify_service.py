"""The notifications of `sms-bridge run` against a real AF_UNIX datagram socket
standing in for systemd (SO_PASSCRED, as PID 1 binds /run/systemd/notify).

Two rigs: a real ``python -m bridge run --port sim://bg96`` subprocess (READY
after init, pings, STOPPING on SIGTERM, one FULL heartbeat per ping), and the
in-process Service with :class:`bridge.status.Runtime` where the test must
reach inside: a module whose SIM answers "busy" first (sim_busy_time), and a
journal that stops accepting writes (its SQLite connection switched to
``query_only``: the write is refused by SQLite itself, which works as root;
and the worker thread held as a hung fsync would hold it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from bridge import status as bstatus
from bridge import systemd
from bridge.config import Config, ModemConfig, StatusSection
from bridge.service import Service

from .test_systemd import Manager as SystemdManager

REPO = Path(__file__).resolve().parents[2]
WAIT = 30.0  # a failure bound, never a timing assertion
USEC = 400_000
INTERVAL = USEC * systemd.PING_FRACTION / 1e6


class Manager(SystemdManager):
    """systemd's end of $NOTIFY_SOCKET (an abstract name: no path length limits)."""

    def __init__(self) -> None:
        self.name = f"/sms-bridge-notify-test/{uuid.uuid4().hex}"
        super().__init__(b"\0" + self.name.encode(), "@" + self.name)
        self.env = self.env_value

    def recv(self, timeout: float = WAIT) -> tuple[bytes, int]:
        return super().recv(timeout)


@pytest.fixture
def manager(monkeypatch):
    m = Manager()
    for var in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NOTIFY_SOCKET", m.env)
    yield m
    m.close()


def _heartbeats(journal: Path) -> int:
    db = sqlite3.connect(journal)
    try:
        row = db.execute("SELECT value FROM kv WHERE name = 'heartbeat'").fetchone()
    finally:
        db.close()
    return 0 if row is None else int(row[0])


# --- the real process ----------------------------------------------------------------


def test_run_process_ready_after_init_pings_and_stopping_on_sigterm(manager, tmp_path):
    journal = tmp_path / "journal.db"
    sock = tmp_path / "status.sock"
    env = dict(os.environ, NOTIFY_SOCKET=manager.env, WATCHDOG_USEC=str(USEC))
    cmd = [
        sys.executable, "-m", "bridge", "run", "--port", "sim://bg96",
        "--journal", str(journal), "--status-socket", str(sock),
    ]  # fmt: skip
    # systemd names the main process in WATCHDOG_PID; exec keeps the shell's PID
    proc = subprocess.Popen(
        ["sh", "-c", 'WATCHDOG_PID=$$ exec "$@"', "sh", *cmd],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        before: list[bytes] = []
        while True:
            data, pid = manager.recv()
            assert pid == proc.pid  # NotifyAccess=main accepts each one
            if data == b"READY=1":
                break
            before.append(data)
        at_ready = bstatus.query(sock)
        t0 = time.monotonic()
        pings = 0
        while pings < 4:
            data, pid = manager.recv()
            assert pid == proc.pid
            if data == b"WATCHDOG=1":
                pings += 1
        elapsed = time.monotonic() - t0
        shown = subprocess.run(
            [sys.executable, "-m", "bridge", "status", "--socket", str(sock), "--json"],
            cwd=REPO, capture_output=True, text=True, timeout=WAIT, check=False,
        )  # fmt: skip
        manager.drain()  # what was said before SIGTERM
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        log = proc.stderr.read().decode()
        proc.stderr.close()
    rest = [d for d in manager.drain() if d != b"WATCHDOG=1"]
    notes = [d for d in before if d != b"WATCHDOG=1"]
    # journal recovered -> "starting", module answered -> its status line, then READY
    assert notes[0] == b"STATUS=starting: journal recovered, waiting for the module(s)"
    assert notes[-1].startswith(b"STATUS=modem0 ")
    assert b"initialising" not in notes[-1]
    assert at_ready["state"] == "running" and at_ready["modems"]["modem0"]["ready"] is True
    # at most one ping per interval (a slow machine sends fewer, never more)
    assert pings <= elapsed / INTERVAL + 2
    # shutdown: STOPPING=1, said once; only a status line of a change made
    # before the signal may have been on its way
    assert rest.count(b"STOPPING=1") == 1, rest
    assert all(d.startswith(b"STATUS=") for d in rest[: rest.index(b"STOPPING=1")]), rest
    assert shown.returncode == 0, shown.stderr
    live = json.loads(shown.stdout)
    assert live["modems"]["modem0"]["registration"] in ("home", "roaming")
    assert live["watchdog"]["interval_s"] == INTERVAL
    # one FULL heartbeat commit per watchdog round, no more
    assert live["watchdog"]["withheld"] == 0
    beats = _heartbeats(journal)
    assert beats >= live["watchdog"]["pings"] >= 4
    assert "Traceback" not in log
    assert not sock.exists()  # removed on the way out


# --- in process ----------------------------------------------------------------------


def _config(tmp_path: Path, port: str = "sim://bg96") -> Config:
    # ModemConfig built directly: sim:// options are for tests, not config files
    return dataclasses.replace(
        Config(),
        bridge=dataclasses.replace(Config().bridge, journal=str(tmp_path / "journal.db")),
        modems=(ModemConfig(port=port, name="modem0"),),
        status=StatusSection(socket=str(tmp_path / "status.sock")),
    )


def test_ready_is_not_sent_before_the_busy_sim_answered(manager, tmp_path, monkeypatch):
    sent: list[tuple[str, bool]] = []
    real_notify = systemd.notify
    svc: Service | None = None

    def recording(*fields: str) -> bool:
        assert svc is not None
        ready = svc.links["modem0"].stack.session.ready.is_set()
        sent.extend((f, ready) for f in fields)
        return real_notify(*fields)

    monkeypatch.setattr(systemd, "notify", recording)

    async def main() -> None:
        nonlocal svc
        svc = Service(_config(tmp_path, "sim://bg96?sim_busy_time=1"))
        await svc.start()
        rt = bstatus.Runtime(svc)
        await rt.start()
        try:
            await asyncio.wait_for(rt.ready(), WAIT)
        finally:
            systemd.stopping()
            await svc.stop()
            await rt.close()

    asyncio.run(main())
    got = [d for d in manager.drain() if d != b"WATCHDOG=1"]
    fields = [f for f, _ in sent]
    assert got == [f.encode() for f in fields]  # what reached the socket, in order
    assert fields[0].startswith("STATUS=starting")
    i = fields.index("READY=1")
    assert sent[0][1] is False  # the SIM was still busy when start-up was reported
    assert sent[i][1] is True  # READY only once the module answered
    assert fields[i - 1].startswith("STATUS=modem0 ")
    assert fields[-1] == "STOPPING=1"


@pytest.mark.parametrize("fault", ["read_only", "hung"])
def test_pings_stop_while_the_journal_refuses_writes_and_resume(
    manager, tmp_path, monkeypatch, fault
):
    monkeypatch.setenv("WATCHDOG_USEC", str(USEC))
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    release = threading.Event()

    async def next_ping() -> None:
        while True:
            data, _ = await asyncio.to_thread(manager.recv)
            if data == b"WATCHDOG=1":
                return

    async def withheld(dog: systemd.Watchdog, count: int) -> None:
        async with asyncio.timeout(WAIT):  # a failure bound
            while dog.stats.withheld < count:
                await asyncio.sleep(INTERVAL / 4)

    async def main() -> tuple[int, int, int, str | None, int]:
        svc = Service(_config(tmp_path))
        await svc.start()
        rt = bstatus.Runtime(svc)
        dog = rt.watchdog
        await rt.start()
        try:
            await asyncio.wait_for(rt.ready(), WAIT)
            await asyncio.wait_for(next_ping(), WAIT)
            assert svc.worker is not None
            if fault == "read_only":
                await svc.worker.call(lambda j: j._db.execute("PRAGMA query_only=ON"))
            else:
                # the worker thread stuck as in an fsync that never returns
                fut = asyncio.ensure_future(svc.worker.call(lambda j: release.wait(WAIT)))
            withheld_at = dog.stats.withheld
            await withheld(dog, withheld_at + 3)
            pings_before = dog.stats.pings
            manager.drain()
            # three whole rounds withheld: no ping reached the socket meanwhile
            await withheld(dog, withheld_at + 5)
            during = [d for d in manager.drain() if d == b"WATCHDOG=1"]
            pings_during = dog.stats.pings - pings_before
            failure = dog.stats.last_failure
            if fault == "read_only":
                await svc.worker.call(lambda j: j._db.execute("PRAGMA query_only=OFF"))
            else:
                release.set()
                await fut
            await asyncio.wait_for(next_ping(), WAIT)  # healthy again: pings resume
            rounds = dog.stats.pings + dog.stats.withheld
            beats = await svc.worker.call(
                lambda j: int(j._db.execute("SELECT value FROM kv WHERE name='heartbeat'")
                              .fetchone()[0])
            )  # fmt: skip
            return len(during), pings_during, rounds, failure, beats
        finally:
            release.set()
            await svc.stop()
            await rt.close()

    during, pings_during, rounds, failure, beats = asyncio.run(main())
    assert during == 0 and pings_during == 0
    assert failure is not None
    if fault == "read_only":
        assert "readonly" in failure or "read-only" in failure
    else:
        assert "no answer within" in failure
    # never more than one FULL heartbeat commit per watchdog round
    assert beats <= rounds


def test_a_module_in_recovery_keeps_the_pings(manager, tmp_path, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", str(USEC))
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))

    async def main() -> tuple[int, bool]:
        svc = Service(_config(tmp_path, "sim://bg96?sim_busy_time=30"))
        await svc.start()
        rt = bstatus.Runtime(svc)
        await rt.start()
        try:
            got = 0
            while got < 3:  # the SIM is busy for 30 s: the module is not ready
                data, _ = await asyncio.to_thread(manager.recv)
                got += data == b"WATCHDOG=1"
            return got, svc.links["modem0"].stack.session.ready.is_set()
        finally:
            await svc.stop()
            await rt.close()

    got, ready = asyncio.run(main())
    assert got == 3 and ready is False


def test_stopping_is_sent_before_the_service_begins_to_stop(manager, tmp_path, monkeypatch):
    from bridge import cli

    order: list[str] = []
    real_notify, real_stop = systemd.notify, Service.stop

    def recording(*fields: str) -> bool:
        order.extend(fields)
        return real_notify(*fields)

    async def stop(self: Service) -> None:
        order.append(f"stop() in state {self.state}")
        await real_stop(self)

    monkeypatch.setattr(systemd, "notify", recording)
    monkeypatch.setattr(Service, "stop", stop)

    async def main() -> int:
        serving = asyncio.create_task(cli._serve(_config(tmp_path), ready_line=False))
        async with asyncio.timeout(WAIT):  # a failure bound
            while "READY=1" not in order:
                await asyncio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)  # the loop's handler, as systemd's stop
        return await asyncio.wait_for(serving, WAIT)

    assert asyncio.run(main()) == 0
    i = order.index("STOPPING=1")
    assert order[i + 1] == "stop() in state running"  # nothing finished or journaled yet
    assert order.count("STOPPING=1") == 1
    assert b"STOPPING=1" in manager.drain()
