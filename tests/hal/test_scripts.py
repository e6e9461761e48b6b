"""Scripts: real executables in a temporary directory, real process groups."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import stat
from pathlib import Path

import pytest

from hal.config import parse
from hal.errors import ScriptError, ScriptErrorKind
from hal.scripts import ScriptRunner


def program(tmp_path: Path, name: str, body: str) -> str:
    p = tmp_path / name
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(p)


def runner(**scripts) -> ScriptRunner:
    return ScriptRunner(parse({"scripts": scripts}).scripts)


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (zombie or reaped), waiting on its pidfd, not a timer.

    The timeout only bounds a failing test; a dead process answers at once.
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], 10.0)
        return bool(ready)
    finally:
        os.close(fd)


async def test_exit_code_stdout_stderr(tmp_path):
    p = program(tmp_path, "s", 'echo "out $1"; echo "err $2" >&2; exit 3\n')
    r = runner(s={"command": [p], "args": ["[a-z]+", "[0-9]+"]})
    res = await r.run("s", ["abc", "42"])
    assert (res.exit_code, res.stdout, res.stderr) == (3, b"out abc\n", b"err 42\n")
    assert not res.stdout_truncated and not res.stderr_truncated


async def test_fixed_leading_arguments_and_no_shell(tmp_path):
    marker = tmp_path / "pwned"
    p = program(tmp_path, "s", 'printf "%s|" "$@"\n')
    r = runner(s={"command": [p, "--fixed"], "args": [".*"]})
    res = await r.run("s", [f"$(touch {marker}); `touch {marker}`"])
    assert res.stdout == f"--fixed|$(touch {marker}); `touch {marker}`|".encode()
    assert not marker.exists()


async def test_argument_outside_its_pattern_is_refused_before_anything_runs(tmp_path):
    marker = tmp_path / "ran"
    p = program(tmp_path, "s", f"touch {marker}\n")
    r = runner(s={"command": [p], "args": ["[0-9]{1,3}"]})
    for bad in (["1234"], ["12 "], ["1\n"], ["x"], ["1\x00"]):
        with pytest.raises(ScriptError) as e:
            await r.run("s", bad)
        assert e.value.kind is ScriptErrorKind.REFUSED_ARGUMENT
        assert "argument 1" in e.value.detail
    with pytest.raises(ScriptError) as e:
        await r.run("s", ["1", "2"])
    assert e.value.kind is ScriptErrorKind.REFUSED_ARGUMENT
    assert e.value.detail == "takes 1 arguments, not 2"
    with pytest.raises(ScriptError):
        await r.run("s", [])
    assert not marker.exists()
    await r.run("s", ["123"])
    assert marker.exists()


async def test_optional_arguments(tmp_path):
    p = program(tmp_path, "s", 'echo "$#"\n')
    r = runner(s={"command": [p], "args": ["a", "b"], "min_args": 1})
    assert (await r.run("s", ["a"])).stdout == b"1\n"
    assert (await r.run("s", ["a", "b"])).stdout == b"2\n"
    with pytest.raises(ScriptError, match="takes 1 to 2 arguments, not 0"):
        await r.run("s", [])


async def test_not_executable_and_missing_and_unknown(tmp_path):
    p = tmp_path / "plain"
    p.write_text("#!/bin/sh\necho hi\n")
    r = runner(
        plain={"command": [str(p)]},
        missing={"command": [str(tmp_path / "nope")]},
        d={"command": [str(tmp_path)]},
    )
    for name in ("plain", "missing", "d"):
        with pytest.raises(ScriptError) as e:
            await r.run(name)
        assert e.value.kind is ScriptErrorKind.NOT_EXECUTABLE
        assert e.value.script == name
    with pytest.raises(ScriptError) as e:
        await r.run("other")
    assert e.value.kind is ScriptErrorKind.UNKNOWN_SCRIPT


async def test_timeout_kills_the_program_and_its_children(tmp_path):
    # timeout_s leaves the script ample time to fork and write its pid on a loaded machine
    pidfile = tmp_path / "child.pid"
    p = program(tmp_path, "s", f"sleep 300 &\necho $! > {pidfile}\necho started\nwait\n")
    r = runner(s={"command": [p], "timeout_s": 2.0, "kill_grace_s": 0.5})
    with pytest.raises(ScriptError) as e:
        await r.run("s")
    assert e.value.kind is ScriptErrorKind.TIMEOUT
    assert e.value.stdout == b"started\n"
    child = int(pidfile.read_text())
    assert gone(child)


async def test_a_program_ignoring_sigterm_is_killed_after_the_grace(tmp_path):
    pidfile = tmp_path / "pids"
    p = program(
        tmp_path,
        "s",
        f"trap '' TERM\n(trap '' TERM; sleep 300) &\necho $$ $! > {pidfile}\n"
        "while :; do sleep 1; done\n",
    )
    r = runner(s={"command": [p], "timeout_s": 2.0, "kill_grace_s": 0.2})
    with pytest.raises(ScriptError) as e:
        await r.run("s")
    assert e.value.kind is ScriptErrorKind.TIMEOUT
    for pid in pidfile.read_text().split():
        assert gone(int(pid))


async def test_cancelling_the_caller_kills_the_group(tmp_path):
    fifo = tmp_path / "child.pid"
    os.mkfifo(fifo)
    p = program(tmp_path, "s", f"sleep 300 &\necho $! > {fifo}\nwait\n")
    r = runner(s={"command": [p], "timeout_s": 60, "kill_grace_s": 0.2})
    task = asyncio.create_task(r.run("s"))
    # the read returns when the script has written its child's pid: an event, not a timer
    child = int(await asyncio.to_thread(fifo.read_text))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gone(child)


async def test_output_is_capped_and_marked_truncated(tmp_path):
    p = program(
        tmp_path,
        "s",
        "head -c 300000 /dev/zero | tr '\\0' a\nhead -c 10 /dev/zero | tr '\\0' b >&2\n",
    )
    r = runner(s={"command": [p], "output_limit": 1000})
    res = await r.run("s")
    assert res.stdout == b"a" * 1000 and res.stdout_truncated
    assert res.stderr == b"b" * 10 and not res.stderr_truncated
    assert res.exit_code == 0


async def test_environment_is_not_inherited(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN", "leak")
    p = program(tmp_path, "s", 'echo "[$SECRET_TOKEN][$EXTRA][$LANG]"; pwd\n')
    r = runner(s={"command": [p], "env": {"EXTRA": "x"}, "cwd": str(tmp_path)})
    res = await r.run("s")
    assert res.stdout == f"[][x][C.UTF-8]\n{tmp_path}\n".encode()


async def test_killed_by_signal_gives_negative_exit_code(tmp_path):
    p = program(tmp_path, "s", "kill -KILL $$\n")
    res = await runner(s={"command": [p]}).run("s")
    assert res.exit_code == -9


def test_info_lists_idempotence(tmp_path):
    r = runner(
        a={"command": ["/bin/true"], "idempotent": True},
        b={"command": ["/bin/true"], "args": ["x"]},
    )
    assert [(i.name, i.idempotent, i.patterns) for i in r.scripts()] == [
        ("a", True, ()),
        ("b", False, ("x",)),
    ]


async def test_cancelled_while_the_spawn_returns_still_kills_the_group(tmp_path, monkeypatch):
    # The program runs (and forks) before create_subprocess_exec returns to us;
    # a cancellation in that window must not leave the group behind.
    fifo = tmp_path / "child.pid"
    os.mkfifo(fifo)
    p = program(tmp_path, "s", f"sleep 300 &\necho $! > {fifo}\nwait\n")
    r = runner(s={"command": [p], "timeout_s": 60, "kill_grace_s": 0.2})
    real = asyncio.create_subprocess_exec
    gate = asyncio.Event()

    async def slow_return(*a, **k):
        proc = await real(*a, **k)
        await gate.wait()  # the event loop has not handed the process back yet
        return proc

    monkeypatch.setattr(asyncio, "create_subprocess_exec", slow_return)
    task = asyncio.create_task(r.run("s"))
    child = int(await asyncio.to_thread(fifo.read_text))
    task.cancel()
    await asyncio.sleep(0)
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gone(child)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def test_a_program_that_left_its_group_holding_the_pipes_leaks_no_fd(tmp_path, monkeypatch):
    # setsid puts the child out of reach of killpg; it keeps stdout and stderr open.
    # After the bounded wait the pipes must be closed on our side all the same.
    monkeypatch.setattr("hal.scripts.REAP_BOUND_S", 0.2)
    pidfile = tmp_path / "child.pid"
    p = program(tmp_path, "s", f"setsid sleep 300 &\necho $! > {pidfile}\nwait\n")
    r = runner(s={"command": [p], "timeout_s": 1.0, "kill_grace_s": 0.1})
    before = open_fds()
    try:
        with pytest.raises(ScriptError) as e:
            await r.run("s")
        assert e.value.kind is ScriptErrorKind.TIMEOUT
        assert open_fds() <= before
    finally:
        escaped = int(pidfile.read_text())
        os.kill(escaped, signal.SIGKILL)
    assert gone(escaped)


@pytest.mark.parametrize(("size", "truncated"), [(999, False), (1000, False), (1001, True)])
async def test_output_limit_is_exact(tmp_path, size, truncated):
    p = program(tmp_path, "s", f"head -c {size} /dev/zero | tr '\\0' a\n")
    res = await runner(s={"command": [p], "output_limit": 1000}).run("s")
    assert res.stdout == b"a" * min(size, 1000) and res.stdout_truncated is truncated


async def test_spawn_failures_name_what_failed(tmp_path):
    ok = program(tmp_path, "ok", "echo hi\n")
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00\x01\x02 not a program")
    junk.chmod(0o755)
    interp = program(tmp_path, "interp", "")
    Path(interp).write_text("#!/nonexistent/interpreter\n")
    r = runner(
        cwd={"command": [ok], "cwd": str(tmp_path / "gone")},
        junk={"command": [str(junk)]},
        interp={"command": [interp]},
    )
    details = {}
    for name in ("cwd", "junk", "interp"):
        with pytest.raises(ScriptError) as e:
            await r.run(name)
        assert e.value.kind is ScriptErrorKind.SPAWN_FAILED
        details[name] = e.value.detail
    assert details == {
        "cwd": f"working directory {tmp_path / 'gone'}: No such file or directory",
        "junk": f"{junk}: Exec format error",
        "interp": f"{interp}: No such file or directory (its #! interpreter?)",
    }


async def test_arguments_given_as_one_string_are_refused_not_split_into_letters(tmp_path):
    marker = tmp_path / "ran"
    p = program(tmp_path, "s", f"touch {marker}\n")
    r = runner(s={"command": [p], "args": ["[0-9]", "[0-9]"]})
    with pytest.raises(ScriptError) as e:
        await r.run("s", "12")  # a str is a Sequence[str]: ("1", "2") would match
    assert e.value.kind is ScriptErrorKind.REFUSED_ARGUMENT
    assert e.value.detail == "arguments must be a list of strings, not one string"
    assert not marker.exists()
