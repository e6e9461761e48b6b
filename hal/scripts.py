"""Allow-listed programs with validated arguments (both backends run real programs).

Before anything runs, each caller argument must ``fullmatch`` its pattern
from the configuration (one pattern per position; ``min_args`` of them
required), contain no NUL, and the program must be an executable file. Then:

* no shell: ``command + args`` go to execve as they are;
* stdin is ``/dev/null``; the environment is a fixed ``PATH``, ``LANG=C.UTF-8``
  and the script's own ``env`` table, nothing inherited;
* the program starts a new session (``start_new_session``), so it leads its
  own process group; on timeout or cancellation the whole group gets SIGTERM,
  then SIGKILL after ``kill_grace_s``;
* stdout and stderr are each captured up to ``output_limit`` bytes; the rest is
  read and dropped (so the program never blocks on a full pipe) and the
  result is marked truncated.

The deadline covers the program *and* its output pipes: a child left behind
holding stdout open keeps the script running until it is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from .config import DEFAULT_PATH, ScriptConfig
from .errors import ScriptError, ScriptErrorKind
from .interfaces import ScriptInfo, ScriptResult

__all__ = ["REAP_BOUND_S", "ScriptRunner", "check_program"]

_CHUNK = 65536
#: After SIGKILL to the group, how long to wait for the pipes to close. Only a
#: program that left its group (setsid) can keep them open past this.
REAP_BOUND_S = 5.0


class _Capture:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(_CHUNK):
            room = self.limit - len(self.data)
            if room > 0:
                self.data += chunk[:room]
            self.dropped += max(0, len(chunk) - max(room, 0))


def check_program(cfg: ScriptConfig) -> None:
    """Refuse a program that is missing or not an executable file (``not-executable``)."""
    program = cfg.command[0]
    if not os.path.isfile(program) or not os.access(program, os.X_OK):
        raise ScriptError(
            cfg.name, ScriptErrorKind.NOT_EXECUTABLE, f"{program} is not an executable file"
        )


class ScriptRunner:
    """Runs the configured scripts; the same class serves the sim and Linux backends."""

    def __init__(self, scripts: Mapping[str, ScriptConfig]) -> None:
        self._cfg = dict(scripts)

    def scripts(self) -> Sequence[ScriptInfo]:
        return [self.info(n) for n in self._cfg]

    def info(self, name: str) -> ScriptInfo:
        cfg = self._config(name)
        return ScriptInfo(
            cfg.name,
            cfg.command,
            tuple(p.pattern for p in cfg.args),
            cfg.min_args,
            cfg.idempotent,
            cfg.timeout_s,
        )

    def _config(self, name: str) -> ScriptConfig:
        try:
            return self._cfg[name]
        except KeyError:
            raise ScriptError(
                name, ScriptErrorKind.UNKNOWN_SCRIPT, "no script of that name is configured"
            ) from None

    def check(self, name: str, args: Sequence[str] = ()) -> None:
        """Refuse bad arguments or a missing program; raises :class:`ScriptError`."""
        cfg = self._config(name)
        refused = ScriptErrorKind.REFUSED_ARGUMENT
        if isinstance(args, str | bytes):
            raise ScriptError(name, refused, "arguments must be a list of strings, not one string")
        if not cfg.min_args <= len(args) <= len(cfg.args):
            want = (
                f"{len(cfg.args)}"
                if cfg.min_args == len(cfg.args)
                else f"{cfg.min_args} to {len(cfg.args)}"
            )
            raise ScriptError(name, refused, f"takes {want} arguments, not {len(args)}")
        for i, (arg, pattern) in enumerate(zip(args, cfg.args, strict=False)):
            if not isinstance(arg, str) or "\x00" in arg or not pattern.fullmatch(arg):
                raise ScriptError(
                    name, refused, f"argument {i + 1} {arg!r} does not match {pattern.pattern!r}"
                )
        check_program(cfg)

    async def run(self, name: str, args: Sequence[str] = ()) -> ScriptResult:
        """Run one script to completion; see the module docstring for the rules."""
        self.check(name, args)
        cfg = self._config(name)
        env = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8", **dict(cfg.env)}
        # The spawn is shielded: the program runs (and may start children) before
        # create_subprocess_exec returns, so a caller cancelled in that window must
        # still see the whole group killed, not just the leader (what asyncio does).
        spawn = asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                *cfg.command,
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                env=env,
                cwd=cfg.cwd,
            )
        )
        try:
            proc = await asyncio.shield(spawn)
        except OSError as exc:
            raise ScriptError(name, ScriptErrorKind.SPAWN_FAILED, _spawn_detail(cfg, exc)) from None
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                started = await spawn
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(started.pid, signal.SIGKILL)
                await started.wait()
                await _close_pipes(started)
            raise
        assert proc.stdout is not None and proc.stderr is not None  # both are PIPE
        out, err = _Capture(cfg.output_limit), _Capture(cfg.output_limit)
        work = asyncio.gather(out.drain(proc.stdout), err.drain(proc.stderr), proc.wait())
        finished = False
        try:
            await asyncio.wait_for(asyncio.shield(work), cfg.timeout_s)
            finished = True
        except TimeoutError:
            pass
        finally:
            if not finished:
                await self._kill_group(proc, work, cfg.kill_grace_s)
        if not finished:
            raise ScriptError(
                name,
                ScriptErrorKind.TIMEOUT,
                f"still running after {cfg.timeout_s:g} s; its process group was killed",
                stdout=bytes(out.data),
                stderr=bytes(err.data),
            )
        assert proc.returncode is not None  # proc.wait() returned
        return ScriptResult(
            name,
            proc.returncode,
            bytes(out.data),
            bytes(err.data),
            out.dropped > 0,
            err.dropped > 0,
        )

    @staticmethod
    async def _kill_group(
        proc: asyncio.subprocess.Process, work: asyncio.Future[Any], grace_s: float
    ) -> None:
        """SIGTERM the group, SIGKILL it after ``grace_s``, then reap (also when cancelled)."""
        pgid = proc.pid  # start_new_session: the program leads a group of its own id
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(asyncio.shield(work), grace_s)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        # Every member of the group is gone now, so the pipes close and work ends
        # (a program that left its group with setsid is out of reach: bound the wait).
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(asyncio.shield(work), REAP_BOUND_S)
        if not work.done():
            work.cancel()
            with contextlib.suppress(BaseException):
                await work
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            await _close_pipes(proc)


async def _close_pipes(proc: asyncio.subprocess.Process) -> None:
    """Close our ends of the pipes a program that left its group (setsid) still holds.

    asyncio closes a subprocess transport only once every pipe has reached EOF;
    without this its file descriptors would stay open for the life of the process.
    """
    transport = getattr(proc, "_transport", None)  # asyncio keeps no public handle on it
    if transport is not None:
        transport.close()
        await asyncio.sleep(0)  # the pipes' fds are closed by a callback the loop runs next


def _spawn_detail(cfg: ScriptConfig, exc: OSError) -> str:
    """What could not be started: the working directory, the program, or its interpreter."""
    program = cfg.command[0]
    what = exc.filename or program
    if what == cfg.cwd and what != program:
        return f"working directory {what}: {exc.strerror or exc}"
    detail = f"{what}: {exc.strerror or exc}"
    if exc.errno == errno.ENOENT and what == program and os.path.exists(program):
        detail += " (its #! interpreter?)"  # execve gives ENOENT for a missing interpreter
    return detail
