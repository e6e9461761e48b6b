"""bridge.systemd against a real AF_UNIX datagram socket standing in for systemd.

The stand-in binds the socket, sets SO_PASSCRED as PID 1 does on
/run/systemd/notify, and reads exactly what a service manager would: one
datagram per notification, with the sender's credentials attached by the
kernel. Nothing here needs systemd itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from bridge import systemd

REPO = Path(__file__).resolve().parents[2]

#: Short watchdog timeouts so a window of ten intervals stays around a second.
USEC = 200_000
INTERVAL = USEC * systemd.PING_FRACTION / 1e6

#: Upper bound on waiting for something that must happen (a failure bound,
#: not a timing assertion).
WAIT = 10.0

_CREDS = struct.Struct("iII")  # struct ucred: pid, uid, gid


class Manager:
    """The service manager's end of $NOTIFY_SOCKET."""

    def __init__(self, address: str | bytes, env_value: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(address)
        self.env_value = env_value

    def close(self) -> None:
        self.sock.close()

    def recv(self, timeout: float = WAIT) -> tuple[bytes, int]:
        """One datagram and the sender's PID (SCM_CREDENTIALS)."""
        self.sock.settimeout(timeout)
        data, ancdata, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(_CREDS.size))
        pid = -1
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = _CREDS.unpack(payload[: _CREDS.size])[0]
        return data, pid

    def drain(self) -> list[bytes]:
        """Every datagram queued now, without waiting."""
        self.sock.setblocking(False)
        out = []
        while True:
            try:
                out.append(self.sock.recv(4096))
            except BlockingIOError:
                return out

    async def arecv(self) -> bytes:
        """Wait on the loop for the next datagram."""
        self.sock.setblocking(False)
        async with asyncio.timeout(WAIT):
            return await asyncio.get_running_loop().sock_recv(self.sock, 4096)


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def path_manager(clean_env):
    # AF_UNIX paths are limited to 107 bytes: a short directory, not tmp_path.
    d = tempfile.mkdtemp(prefix="sdn", dir="/tmp")
    path = os.path.join(d, "notify")
    m = Manager(path, path)
    clean_env.setenv("NOTIFY_SOCKET", path)
    yield m
    m.close()
    shutil.rmtree(d)


@pytest.fixture
def abstract_manager(clean_env):
    name = f"/sms-bridge-test/{uuid.uuid4().hex}"
    m = Manager(b"\0" + name.encode(), "@" + name)
    clean_env.setenv("NOTIFY_SOCKET", "@" + name)
    yield m
    m.close()


@pytest.fixture(params=["path", "abstract"])
def manager(request):
    return request.getfixturevalue(f"{request.param}_manager")


@pytest.fixture
def watchdog_env(manager, clean_env):
    clean_env.setenv("WATCHDOG_USEC", str(USEC))
    clean_env.setenv("WATCHDOG_PID", str(os.getpid()))
    return manager


def pings(datagrams: list[bytes]) -> int:
    assert set(datagrams) <= {b"WATCHDOG=1"}, datagrams
    return len(datagrams)


# --- notifications ---------------------------------------------------------------


def test_each_notification_is_one_datagram_from_our_pid(manager):
    assert systemd.status("bg96: registered home, 3 in / 3 out")
    assert systemd.ready()
    assert systemd.notify("STATUS=draining", "EXTEND_TIMEOUT_USEC=5000000")
    assert systemd.stopping()
    got = [manager.recv() for _ in range(4)]
    assert [d for d, _ in got] == [
        b"STATUS=bg96: registered home, 3 in / 3 out",
        b"READY=1",
        b"STATUS=draining\nEXTEND_TIMEOUT_USEC=5000000",
        b"STOPPING=1",
    ]
    # NotifyAccess=main: the kernel-attached sender PID is ours.
    assert {pid for _, pid in got} == {os.getpid()}
    assert manager.drain() == []


def test_ready_is_sent_only_when_told(watchdog_env):
    async def main():
        dog = systemd.Watchdog(lambda: asyncio.sleep(0, True))
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(dog.run())
            systemd.status("starting: journal recovery")
            for _ in range(3):
                await watchdog_env.arecv()
            task.cancel()

    asyncio.run(main())
    before = watchdog_env.drain()
    assert b"READY=1" not in before
    assert systemd.ready()
    assert watchdog_env.drain() == [b"READY=1"]


def test_status_is_one_line_that_cannot_carry_another_assignment(path_manager):
    assert systemd.status("module says\r\nREADY=1\nok")
    assert systemd.status("x" * 500)
    assert path_manager.drain() == [
        b"STATUS=module says READY=1 ok",
        b"STATUS=" + b"x" * systemd.STATUS_MAX_CHARS,
    ]


@pytest.mark.parametrize(
    "fields", [(), ("READY=1\nSTOPPING=1",), ("READY",), ("=1",), ("STATUS=a\0b",)]
)
def test_a_field_that_is_not_one_assignment_is_our_error_and_nothing_is_sent(path_manager, fields):
    with pytest.raises(ValueError, match="NAME=value"):
        systemd.notify(*fields)
    assert path_manager.drain() == []


def test_no_notify_socket_is_a_noop(clean_env):
    assert systemd.notify("READY=1") is False
    assert systemd.ready() is False
    assert systemd.status("x") is False
    assert systemd.stopping() is False
    assert systemd.watchdog_usec() is None
    dog = systemd.Watchdog()
    assert not dog.enabled
    asyncio.run(asyncio.wait_for(dog.run(), WAIT))  # returns at once
    assert dog.stats.pings == 0


def test_an_address_we_cannot_reach_is_not_an_error(clean_env, caplog):
    clean_env.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert systemd.ready() is False
    d = tempfile.mkdtemp(prefix="sdn", dir="/tmp")
    try:
        clean_env.setenv("NOTIFY_SOCKET", os.path.join(d, "gone"))
        assert systemd.ready() is False
    finally:
        shutil.rmtree(d)
    assert "unsupported address" in caplog.text
    assert "sd_notify to" in caplog.text


# --- watchdog_usec -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("200000", None, 200000),
        ("200000", "self", 200000),
        ("200000", "parent", None),
        ("0", None, None),
        ("-5", None, None),
        ("2e5", None, None),
        ("200000", "x1", None),
        (None, "self", None),
    ],
)
def test_watchdog_usec_honours_watchdog_pid(clean_env, usec, pid, expected):
    if usec is not None:
        clean_env.setenv("WATCHDOG_USEC", usec)
    if pid is not None:
        clean_env.setenv(
            "WATCHDOG_PID",
            {"self": str(os.getpid()), "parent": str(os.getppid())}.get(pid, pid),
        )
    assert systemd.watchdog_usec() == expected


def test_watchdog_of_another_process_sends_no_pings(manager, clean_env):
    # A child that inherited its parent's environment must not ping for it.
    other = subprocess.Popen(["sleep", "60"])
    try:
        clean_env.setenv("WATCHDOG_USEC", str(USEC))
        clean_env.setenv("WATCHDOG_PID", str(other.pid))
        dog = systemd.Watchdog()
        assert not dog.enabled
        asyncio.run(asyncio.wait_for(dog.run(), WAIT))
    finally:
        other.kill()
        other.wait()
    assert manager.drain() == []


# --- Watchdog -------------------------------------------------------------------


def test_interval_is_half_the_timeout_and_bad_values_are_refused(clean_env):
    dog = systemd.Watchdog(usec=30_000_000)
    assert (dog.interval, dog.health_timeout) == (15.0, 7.5)
    assert systemd.Watchdog(usec=30_000_000, health_timeout=2).health_timeout == 2
    with pytest.raises(ValueError, match="positive"):
        systemd.Watchdog(usec=0)
    with pytest.raises(ValueError, match="positive"):
        systemd.Watchdog(usec=USEC, health_timeout=0)


def test_pings_come_once_per_half_timeout(watchdog_env):
    """Over ten intervals: about ten pings -- twice systemd's minimum, far from a busy loop."""
    window = 10 * INTERVAL
    calls = 0

    async def health():
        nonlocal calls
        calls += 1
        return True

    async def main():
        dog = systemd.Watchdog(health)
        task = asyncio.create_task(dog.run())
        await asyncio.sleep(window)
        task.cancel()
        return dog

    dog = asyncio.run(main())
    n = pings(watchdog_env.drain())
    # At most one per interval (plus the one at the start); at least the
    # WATCHDOG_USEC minimum with room for a loaded machine's late timers.
    assert window / (USEC / 1e6) < n - 2
    assert n <= window / INTERVAL + 1
    assert calls == n == dog.stats.pings
    assert dog.stats.withheld == 0


def test_a_blocked_event_loop_sends_no_ping(watchdog_env):
    async def main():
        dog = systemd.Watchdog(lambda: asyncio.sleep(0, True))
        task = asyncio.create_task(dog.run())
        await watchdog_env.arecv()
        watchdog_env.drain()
        time.sleep(3 * USEC / 1e6)  # the loop is stuck: three whole timeouts
        during = watchdog_env.drain()
        after = await watchdog_env.arecv()  # and pings resume when it turns
        for _ in range(20):  # let every ready callback run: no timer is due
            await asyncio.sleep(0)
        burst = watchdog_env.drain()
        task.cancel()
        return during, after, burst

    during, after, burst = asyncio.run(main())
    assert during == []
    assert after == b"WATCHDOG=1"
    assert burst == []  # missed rounds are skipped, not made up in a burst


class Health:
    """A health check the test steers; counts calls and signals each one."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.calls = 0
        self.cancelled = 0
        self.called = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self) -> bool:
        self.calls += 1
        self.called.set()
        if self.mode == "ok":
            return True
        if self.mode == "raise":
            raise OSError(28, "No space left on device")
        if self.mode == "hang":
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return self.mode == "ok"  # a hung check released after the fix

    async def wait_calls(self, n: int) -> None:
        async with asyncio.timeout(WAIT):
            while self.calls < n:
                self.called.clear()
                await self.called.wait()


@pytest.mark.parametrize("mode", ["fail", "raise", "hang"])
def test_an_unhealthy_bridge_gets_no_ping_until_healthy_again(watchdog_env, mode, caplog):
    async def main():
        health = Health(mode)
        dog = systemd.Watchdog(health, health_timeout=INTERVAL / 4)
        task = asyncio.create_task(dog.run())
        await health.wait_calls(4)  # four rounds, every one unhealthy
        during = watchdog_env.drain()
        health.mode = "ok"
        health.release.set()
        after = await watchdog_env.arecv()
        task.cancel()
        return health, dog, during, after

    health, dog, during, after = asyncio.run(main())
    assert during == []
    assert after == b"WATCHDOG=1"
    assert dog.stats.withheld >= (3 if mode == "hang" else 4)
    assert dog.stats.last_failure is None  # cleared when pings resumed
    if mode == "hang":
        # Each hung check was bounded and cancelled, not left behind (the
        # fourth was still running when it was released).
        assert health.cancelled >= 3
    # One log line when pings stop, one when they resume, not one per round.
    assert caplog.text.count("watchdog ping withheld") == 1
    assert caplog.text.count("watchdog pings resumed") == 1
    expected = {"fail": "health check failed", "raise": "OSError", "hang": "no answer within"}
    assert expected[mode] in caplog.text


def test_a_module_in_recovery_does_not_stop_pings(watchdog_env):
    """Health is the caller's: a long module recovery on the loop leaves pings alone."""

    async def recover_module(stop: asyncio.Event):
        attempts = 0
        while not stop.is_set():
            attempts += 1  # reopen the port, AT, wait for +CPIN: READY ...
            await asyncio.sleep(INTERVAL / 7)
        return attempts

    async def main():
        stop = asyncio.Event()
        dog = systemd.Watchdog(lambda: asyncio.sleep(0, True))
        recovery = asyncio.create_task(recover_module(stop))
        task = asyncio.create_task(dog.run())
        got = [await watchdog_env.arecv() for _ in range(4)]
        stop.set()
        task.cancel()
        return got, await recovery

    got, attempts = asyncio.run(main())
    assert got == [b"WATCHDOG=1"] * 4
    assert attempts > 4


# --- a real process under SIGTERM ---------------------------------------------------

CHILD = textwrap.dedent(
    """
    import asyncio, signal, sys
    from bridge import systemd

    async def main():
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        dog = systemd.Watchdog(lambda: asyncio.sleep(0, True))
        async with asyncio.TaskGroup() as tg:
            pinger = tg.create_task(dog.run())
            systemd.status("journal recovered, module ready")
            systemd.ready()
            await stop.wait()
            systemd.stopping()
            pinger.cancel()
            # in-flight work would be finished or journaled here
        systemd.status("stopped cleanly")

    asyncio.run(main())
    sys.exit(0)
    """
)


def test_a_service_process_killed_with_sigterm_sends_stopping(watchdog_env):
    env = dict(os.environ)
    # systemd names the main process in WATCHDOG_PID; a shell that execs the
    # child keeps its PID, so $$ is the child's PID as systemd would set it.
    proc = subprocess.Popen(
        ["sh", "-c", 'WATCHDOG_PID=$$ exec "$0" -c "$1"', sys.executable, CHILD],
        cwd=REPO,
        env=env,
    )
    try:
        seen: list[bytes] = []
        while b"READY=1" not in seen or b"WATCHDOG=1" not in seen:
            data, pid = watchdog_env.recv()
            assert pid == proc.pid  # NotifyAccess=main would accept each one
            seen.append(data)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rest = [d for d in watchdog_env.drain() if d != b"WATCHDOG=1"]
    assert [d for d in seen if d != b"WATCHDOG=1"] == [
        b"STATUS=journal recovered, module ready",
        b"READY=1",
    ]
    assert rest == [b"STOPPING=1", b"STATUS=stopped cleanly"]


@pytest.mark.parametrize(
    ("usec", "pid"),
    [
        ("9" * 5000, None),  # int() refuses more than 4300 digits: was a ValueError
        (str(2**64), None),  # over systemd's usec_t
        ("\u0661\u0662\u0663\u0664\u0665\u0666", None),  # Arabic-Indic digits pass isdecimal()
        ("200000", "9" * 5000),
        ("200000", "\u0661\u0662"),
    ],
    ids=["5000-digits", "over-usec_t", "non-ascii-digits", "pid-5000-digits", "pid-non-ascii"],
)
def test_a_garbled_watchdog_variable_turns_the_watchdog_off_with_a_warning(
    clean_env, caplog, usec, pid
):
    clean_env.setenv("WATCHDOG_USEC", usec)
    if pid is not None:
        clean_env.setenv("WATCHDOG_PID", pid)
    with caplog.at_level(logging.WARNING, logger="bridge.systemd"):
        assert systemd.watchdog_usec() is None
        assert not systemd.Watchdog().enabled
    assert caplog.records and "watchdog off" in caplog.records[0].getMessage()
