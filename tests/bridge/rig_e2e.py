"""The end-to-end rig (no tests here): a standalone simulator process, a real
bridge process, and the probes the tests put inside the bridge.

* :class:`SimProcess` runs ``python -m modem.sim --pty LINK --control SOCKET``
  in a session of its own; it outlives every bridge process and keeps the SIM
  storage, the network's held messages and the MO log (what reached the
  wire). Requests go through its control socket (JSON lines).
* :class:`BridgeProcess` runs ``python -m bridge run --config FILE`` in a
  session of its own, with this directory's ``sitecustomize`` probes loaded
  (``PYTHONPATH``), its standard error read line by line.
* :func:`install_probes` (run inside the bridge by ``sitecustomize``) wraps, at
  class level, the journal methods that gate an irreversible step, the
  simulated HAL's output writes and the service's start. Each wrapped call
  prints an ``@@`` line on standard error (one ``write(2)``, so whole lines
  reach the pipe even when the process is killed right after). With
  ``E2E_PAUSE=POINT:K`` the K-th time POINT is reached the probe prints
  ``@@pause POINT ID`` and blocks that thread for ever: the test kills the
  process there, so a kill lands exactly at a chosen point (before or after a
  journal write, mid-action, between ``+CMGS`` and ``mark_sent``).
* Output writes of the simulated HAL are appended to ``E2E_GPIO_LOG`` before
  they take effect: the record outlives a kill of the process (the HAL
  itself lives in the bridge's memory and dies with it).
* ``E2E_BREAK`` breaks one guarantee on purpose, to show the test notices:
  ``ack-before-journal`` (the consumer returns, so the SIM copy is deleted,
  before the journal write), ``no-dedupe`` (the journal never finds a
  duplicate and the SMS service's ``known`` hook never knows a part),
  ``rerun-all`` (every action journaled as idempotent, so recovery runs
  again whatever it finds executing).

Every process started here is in a process group of its own and is killed
by :meth:`stop` / :meth:`kill` (the tests call them in ``finally``).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import os
import selectors
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
KEY = bytes(range(32))
DEVICE = "89883070000012345678"

#: Points a kill can be placed at (``E2E_PAUSE``). ``script:mid`` is announced
#: by the script itself (after its effect, while it runs); ``pulse:mid`` is
#: the simulated output going active.
JOURNAL_POINTS = (
    "receive:before",
    "receive:after",
    "start:after",
    "complete:before",
    "complete:after",
    "complete_and_claim:before",
    "complete_and_claim:after",
    "mark_sending:after",
    "mark_sent:before",
    "mark_sent:after",
)
#: ``write_marks:after``: the replay counters' side file just written (after
#: ``authenticate``'s commit, before ``next_reply_counter``'s): a kill there
#: once made the Command being authenticated look replayed after the restart.
POINTS = (*JOURNAL_POINTS, "write_marks:after", "script:mid", "pulse:mid")
#: Also available: ``authenticate`` itself.
EXTRA_POINTS = ("authenticate:before", "authenticate:after")
#: The journal's writes, as their probe lines name them (``@@receive ...``;
#: ``write_marks`` is the counters' side file): the soak counts them to place kills.
JOURNAL_WRITES = (
    "receive",
    "start",
    "finish",
    "queue_reply",
    "complete",
    "complete_and_claim",
    "mark_sending",
    "mark_sent",
    "mark_sent_and_claim",
    "unclaim",
    "authenticate",
    "write_marks",
)
_WRAPPED = (
    *(w if w != "write_marks" else "_write_marks" for w in JOURNAL_WRITES),
    "recovery",
)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def _kill_group(proc: subprocess.Popen[Any], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _stop(proc: subprocess.Popen[Any], grace: float) -> int:
    """SIGTERM to its group, SIGKILL after ``grace`` s; its exit code."""
    if proc.poll() is None:
        _kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            _kill_group(proc, signal.SIGKILL)
            proc.wait(10)
    _kill_group(proc, signal.SIGKILL)  # anything left in its group
    return proc.returncode


# -- the simulator -------------------------------------------------------------------


class SimProcess:
    """``python -m modem.sim`` on a pty with a control socket, as its own process."""

    def __init__(self, tmp: Path, *, profile: str = "bg96", seed: int = 0) -> None:
        self.link = str(tmp / "ttySIM")
        self.control = str(tmp / "sim.ctl")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modem.sim",
                "--pty",
                self.link,
                "--control",
                self.control,
                "--profile",
                profile,
                "--seed",
                str(seed),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            env=_env(),
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        seen = []
        for line in self.proc.stdout:
            seen.append(line)
            if line.startswith("ready:"):
                break
        else:
            self.stop()
            raise RuntimeError(f"the simulator did not start: {''.join(seen)}")

    def request(self, op: str, **args: Any) -> Any:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(self.control)
            s.sendall(json.dumps({"op": op, **args}).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                buf += chunk
        answer = json.loads(buf)
        if not answer.get("ok"):
            raise RuntimeError(f"simulator {op}: {answer.get('error')}")
        return answer.get("result")

    def deliver(self, text: str, *, sid: str, duplicate: bool = False) -> Any:
        return self.request(
            "deliver", text=text, sender="2936", include_sid="start", sid=sid, duplicate=duplicate
        )

    def sent_texts(self) -> list[str]:
        return [str(m.get("text")) for m in self.request("sent")]

    def stop(self) -> None:
        _stop(self.proc, 10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# -- the bridge ------------------------------------------------------------------------


def bridge_run_argv(config: Path) -> list[str]:
    """``python -m bridge run --config FILE``, this checkout's."""
    return [sys.executable, "-m", "bridge", "run", "--config", str(config)]


SITECUSTOMIZE = """\
import os
if os.environ.get("E2E_PROBES"):
    from tests.bridge.rig_e2e import install_probes
    install_probes()
"""


class BridgeProcess:
    """A real bridge process; its ``@@`` probe lines read as events."""

    #: the probes' start-up hook, written as ``sitecustomize.py`` in :attr:`PROBES`
    SITECUSTOMIZE = SITECUSTOMIZE
    PROBES = "probes"
    #: environment the probes need beside this rig's (a subclass's own switches)
    EXTRA_ENV: tuple[tuple[str, str], ...] = ()
    #: environment taken away (a subclass that must not inherit the caller's)
    DROP_ENV: tuple[str, ...] = ()

    def __init__(
        self, tmp: Path, config: Path, *, pause: str | None = None, broken: str | None = None
    ) -> None:
        probes = tmp / self.PROBES
        probes.mkdir(exist_ok=True)
        (probes / "sitecustomize.py").write_text(self.SITECUSTOMIZE)
        env = {
            **_env(),
            "PYTHONPATH": f"{probes}{os.pathsep}{ROOT}",
            "E2E_PROBES": "1",
            **dict(self.EXTRA_ENV),
            "E2E_PAUSE": pause or "",
            "E2E_GPIO_LOG": str(tmp / "gpio.log"),
            "E2E_BREAK": broken or "",
        }
        for var in self.DROP_ENV:
            env.pop(var, None)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            bridge_run_argv(config),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        assert self.proc.stderr is not None
        self._fd = self.proc.stderr.fileno()
        os.set_blocking(self._fd, False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._fd, selectors.EVENT_READ)
        self._buf = b""
        self._eof = False
        self.log: collections.deque[str] = collections.deque(maxlen=60)

    def events(self, until: float) -> Iterator[str]:
        """Each line of standard error as it comes, until EOF or the monotonic
        time ``until`` (then the iterator ends; the caller decides)."""
        while True:
            while b"\n" in self._buf:
                raw, _, self._buf = self._buf.partition(b"\n")
                line = raw.decode(errors="replace")
                self.log.append(line)
                yield line
            if self._eof:
                return
            left = until - time.monotonic()
            if left <= 0 or not self._sel.select(left):
                return
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                self._eof = True
                if self._buf:
                    self._buf += b"\n"
            self._buf += chunk

    def drain(self) -> list[str]:
        """Every line left, once the process is gone."""
        return list(self.events(time.monotonic() + 10))

    def kill(self) -> list[str]:
        """SIGKILL (its whole group); the lines it wrote before dying."""
        _kill_group(self.proc, signal.SIGKILL)
        self.proc.wait(10)
        return self._close()

    def stop(self) -> list[str]:
        """SIGTERM, as systemd stops it; SIGKILL after 20 s."""
        _stop(self.proc, 20)
        return self._close()

    def _close(self) -> list[str]:
        rest = self.drain()
        self._sel.close()
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return rest

    def tail(self) -> str:
        return "\n".join(self.log)


# -- configuration ---------------------------------------------------------------------


ONCE_SH = """\
#!/bin/sh
# Not idempotent: the effect (a line in the count file) comes first, then the
# announcement on the bridge's standard error (the parent's fd 2), then, when
# the test asks for it, a pause while the action is still running.
echo $$ >> {tmp}/script.pids
echo "$1" >> {tmp}/{name}.count
echo "@@script {name} $1" > /proc/$PPID/fd/2 2>/dev/null
[ -e {tmp}/slow-scripts ] && sleep 0.4
echo "ran $1"
"""


def write_setup(tmp: Path, link: str) -> Path:
    """Key file, scripts and configuration for a bridge on ``link``; the config's path."""
    from bridge import auth

    keys = tmp / "keys.toml"
    if not keys.exists():
        auth.write_key_file(keys, auth.format_key_file({1: KEY}, 1))
    scripts = tmp / "scripts"
    scripts.mkdir(exist_ok=True)
    for name in ("once", "again"):
        p = scripts / name
        p.write_text(ONCE_SH.format(tmp=tmp, name=name))
        p.chmod(p.stat().st_mode | stat.S_IXUSR)
    cfg = tmp / "bridge.toml"
    cfg.write_text(
        f"""\
[bridge]
product = "programmable-wireless"
device_id = "{DEVICE}"
journal = "{tmp / "journal.db"}"

[security]
key_file = "{keys}"

[budgets]
global_per_hour = 100000
global_per_day = 1000000
sender_per_hour = 100000
sender_per_day = 1000000

[reports]
boot = false

[[modem]]
name = "modem0"
port = "{link}"
profile = "bg96"

[hal]
backend = "sim"

[hal.gpio.gate]
chip = "gpiochip0"
line = 18
direction = "output"
max_pulse_ms = 200

[hal.scripts.once]
command = ["{scripts / "once"}"]
args = ["[a-z0-9]{{1,8}}"]
idempotent = false

[hal.scripts.again]
command = ["{scripts / "again"}"]
args = ["[a-z0-9]{{1,8}}"]
idempotent = true
"""
    )
    return cfg


def count_lines(path: Path) -> collections.Counter[str]:
    if not path.exists():
        return collections.Counter()
    return collections.Counter(path.read_text().split("\n")[:-1])


def reap_scripts(tmp: Path) -> None:
    """Kill any script still running (they run in sessions of their own and
    outlive a killed bridge)."""
    p = tmp / "script.pids"
    if not p.exists():
        return
    for pid in {int(x) for x in p.read_text().split()}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


# -- the probes (run inside the bridge process) -----------------------------------------


def _say(line: str) -> None:
    os.write(2, f"@@{line}\n".encode())


class _Probes:
    def __init__(self) -> None:
        point, _, k = os.environ.get("E2E_PAUSE", "").rpartition(":")
        self.pause_at = (point, int(k)) if point else None
        self.seen: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.gpio_log = os.environ.get("E2E_GPIO_LOG") or os.devnull
        self.broken = os.environ.get("E2E_BREAK", "")
        self.pulse_ms = 0  # the pulse in progress (one Command at a time), 0: a plain write

    def point(self, name: str, ident: object) -> None:
        with self.lock:
            self.seen[name] += 1
            hit = self.pause_at == (name, self.seen[name])
        if hit:
            _say(f"pause {name} {ident}")
            threading.Event().wait()  # until the test kills the process

    def record_gpio(self, line: str, value: int) -> None:
        fd = os.open(self.gpio_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{line} {value} {self.pulse_ms}\n".encode())
        finally:
            os.close(fd)


def install_probes() -> None:
    """Wrap the bridge's irreversible steps (see the module docstring)."""
    import hal.sim
    from bridge import dispatcher as _dispatcher
    from bridge import journal as _journal
    from bridge import service as _service

    probes = _Probes()
    journal_cls = _journal.Journal

    def wrap(name: str) -> None:
        orig = getattr(journal_cls, name)

        label = name.lstrip("_")

        @functools.wraps(orig)
        def probed(self: Any, *args: Any, **kwargs: Any) -> Any:
            ident = args[0] if args else kwargs.get("sid", "")
            if name == "_write_marks":
                ident = f"{args[0].command_counter}/{args[0].reply_counter}"
            probes.point(f"{label}:before", ident)
            result = orig(self, *args, **kwargs)
            if name == "receive":
                ident = result.entry_id
                line = f"receive {ident} {kwargs.get('sid')} dup={int(result.duplicate)}"
            elif name == "recovery":
                line = "recovery"
            elif name == "mark_sent_and_claim":
                # one transaction, said as the two steps it makes: this reply sent,
                # and the next one claimed when there was one to claim
                line = f"mark_sent {ident}"
                if result is not None:
                    next_id = args[2] if len(args) > 2 else kwargs["next_id"]
                    line += f"\n@@mark_sending {next_id}"
            else:
                line = f"{label} {ident}"
            if name != "_write_marks" and getattr(self, "_grouped", False):
                # inside a group commit: said once the group's commit is made (never,
                # should it roll back), as the calls' results leave the worker; the
                # side file is written (fsynced) at once
                self._after_commit.append(functools.partial(_say, line))
            else:
                _say(line)
            probes.point(f"{label}:after", ident)
            return result

        setattr(journal_cls, name, probed)

    for name in _WRAPPED:
        wrap(name)

    sim_gpio = hal.sim.SimGpio
    orig_set = sim_gpio._set

    def probed_set(self: Any, cfg: Any, value: int) -> None:
        probes.record_gpio(cfg.name, value)  # before the effect: a kill cannot lose it
        orig_set(self, cfg, value)
        if value:
            _say(f"gpio {cfg.name} {value}")
            probes.point("pulse:mid", cfg.name)

    sim_gpio._set = probed_set  # type: ignore[method-assign]
    orig_pulse = sim_gpio.pulse

    async def probed_pulse(self: Any, name: str, ms: int) -> None:
        probes.pulse_ms = ms
        try:
            await orig_pulse(self, name, ms)
        finally:
            probes.pulse_ms = 0

    sim_gpio.pulse = probed_pulse  # type: ignore[method-assign]

    orig_start = _service.Service.start

    async def probed_start(self: Any) -> None:
        await orig_start(self)
        _say("ready")

    _service.Service.start = probed_start  # type: ignore[method-assign]

    if probes.broken == "no-dedupe":  # neither the journal nor the SMS service's hook
        journal_cls._duplicate_of = lambda self, keys: None  # type: ignore[method-assign]
        journal_cls.has_part = lambda self, part_id: False  # type: ignore[method-assign]
    elif probes.broken == "rerun-all":  # every action journaled as idempotent
        probed_start = journal_cls.start

        def all_idempotent(self: Any, entry_id: int, **kwargs: Any) -> Any:
            return probed_start(self, entry_id, **{**kwargs, "idempotent": True})

        journal_cls.start = all_idempotent  # type: ignore[method-assign]
    elif probes.broken == "ack-before-journal":
        orig_admit = _dispatcher.Dispatcher.admit
        pending: set[Any] = set()

        async def early_admit(self: Any, msg: Any, *, modem: str) -> Any:
            import asyncio

            task = asyncio.ensure_future(orig_admit(self, msg, modem=modem))
            pending.add(task)
            task.add_done_callback(pending.discard)
            return None  # the SMS service deletes the SIM copy now

        _dispatcher.Dispatcher.admit = early_admit  # type: ignore[method-assign]
