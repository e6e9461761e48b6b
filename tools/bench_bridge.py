#!/usr/bin/env python3
"""Benchmark the bridge (``python -m bridge run``) beside gammu-smsd, same simulator, same run.

Both programs run as real processes against ``modem.sim`` modules on real
ptys; the simulated modules live in this process, so what is measured at a
module is measured at its pins, and the CPU and memory figures are the
program's own (read from ``/proc``), never the simulator's.

The job is the same for both: a Twilio Command ``ping`` arrives from 2936
(``include_sid`` at the start, so every Command is distinct, as from Twilio)
and is answered ``pong`` to 2936. The bridge does it through its whole path
(journal on a real SQLite file in a temporary directory, dispatcher, outbox).
gammu-smsd (Debian's, files backend) does it with a ``RunOnReceive`` script
that writes the reply into its outbox directory.

1. ``throughput`` (the headline): ``--commands`` Commands per module with
   115200-baud line emulation in both directions (a byte is handed over when
   its 10th bit would have crossed the wire; each direction its own line),
   at most ``--window`` outstanding per module (a SIM holds 30). Commands
   answered per second, bytes on the line per Command (both directions), and
   the share of what the line allows: AT is half duplex in practice (a
   command, then its answer), so the line is busy for (bytes in + bytes out)
   x 10 / baud seconds. ``--modules N`` runs N modules in one bridge process,
   each on its own pty and line; each module's share is reported. The line's
   time per Command is split into busy, waiting for the host (its turnaround
   after the module spoke) and waiting for the module (the simulator's).
2. ``latency``: no line emulation, one Command at a time: from the ``+CMTI``
   leaving the module to the reply's ``AT+CMGS=`` reaching it (median, p99),
   CPU per Command (user + system of the process and of the children it
   waited for, the RunOnReceive scripts for gammu-smsd) and RSS (VmRSS, peak
   VmHWM).

gammu-smsd polls; the bridge does not. Its polling options are set to the
fastest that is not a busy loop (see ``GAMMU_SMSDRC``): ``ReceiveFrequency =
0`` (look for SMS on every loop), ``CommTimeout = 0`` (look at the outbox on
every loop), ``LoopSleep = 1`` (its default and least non-zero value, in
whole seconds; 0 is a busy loop), status and battery/signal/network/security
checks off (no AT traffic the bridge does not do either). ``--gammu-loopsleep 0``
shows its busy-loop best case. One gammu-smsd serves one module.

The event loop here runs on ``select()`` (bench_modem's selector): the line
emulation hands bytes over by loop timers, and epoll rounds timer waits up to
whole milliseconds.

Usage::

    python tools/bench_bridge.py [--commands 200] [--modules 1] [--json]
    python tools/bench_bridge.py --modules 16 --only throughput
    python tools/bench_bridge.py --only gammu --gammu-commands 20

Numbers are for comparison on one machine, never assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: this checkout's packages, not an installed copy
    sys.path.insert(0, str(ROOT))
if str(ROOT / "tools") not in sys.path:
    sys.path.insert(0, str(ROOT / "tools"))

from bench_modem import BAUD, _CountingSelector, _MoSignal, _watch_mo, pct  # noqa: E402

from modem.sim import SimModem  # noqa: E402
from modem.sim.endpoints import PtyEndpoint  # noqa: E402
from modem.sim.transport import _Line  # noqa: E402

#: The Command and the reply both programs give.
COMMAND = "ping"
REPLY = "pong"
SHORT_CODE = "2936"
#: The issue's aims.
AIM_LINE_SHARE_PCT = 90.0
AIM_P99_MS = 10.0
AIM_RSS_MB = 30.0

_CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- the module at its pins -------------------------------------------------------------


class LinePty(PtyEndpoint):
    """A simulated module on a pty, with honest line emulation and timestamps at its pins.

    The pty endpoint's own ``baud`` paces bursts of the module's output only;
    here each direction is a :class:`modem.sim.transport._Line` (the
    in-process transport's line model): a chunk is handed over when its last
    byte would have crossed a ``baud`` line, 10 bits a byte, and a chunk
    waits for the one before it. Counts the bytes each way, and records when
    each ``+CMTI`` leaves the module and each ``AT+CMGS=`` reaches it.

    With line emulation it also splits the line's idle time by whom the line
    waits for: from the module's last bytes arriving at the host until the
    host writes again (``host_wait_s``: the host's turnaround), and from the
    host's bytes arriving at the module until the module's answer starts to
    cross the line (``module_wait_s``: the simulator's own turnaround).
    """

    def __init__(self, modem: SimModem, link: str, *, baud: int | None = None) -> None:
        super().__init__(modem, link, baud=None)
        self.line_baud = baud
        self.bytes_to_host = 0
        self.bytes_to_module = 0
        self.cmti_at: list[float] = []
        self.cmgs_at: list[float] = []
        self._tail = b""
        self.host_wait_s = 0.0
        self.module_wait_s = 0.0
        self._spoke_at: float | None = None  # the module's last bytes reached the host
        self._taken_at: float | None = None  # the host's last bytes reached the module
        self._down: _Line | None = None
        self._up: _Line | None = None

    def start(self) -> None:
        super().start()
        if self.line_baud:
            loop = asyncio.get_running_loop()
            self._down = _Line(loop, 0.0, self.line_baud)
            self._up = _Line(loop, 0.0, self.line_baud)

    def reset_counters(self) -> None:
        self.bytes_to_host = self.bytes_to_module = 0
        self.host_wait_s = self.module_wait_s = 0.0
        self._spoke_at = self._taken_at = None
        self.cmti_at.clear()
        self.cmgs_at.clear()

    # module -> host
    def sim_output(self, data: bytes) -> None:
        if self._master is None:
            return
        self.bytes_to_host += len(data)
        if self._down is not None:
            self._down.send(data, self._emit)
        else:
            self._emit(data)

    def _emit(self, data: bytes) -> None:
        if self.line_baud:
            now = time.perf_counter()
            if self._taken_at is not None:
                crossing = len(data) * 10 / self.line_baud
                self.module_wait_s += max(0.0, now - crossing - self._taken_at)
                self._taken_at = None
            self._spoke_at = now
        if b"+CMTI" in data:
            self.cmti_at.extend([time.perf_counter()] * data.count(b"+CMTI"))
        self._write(data)

    # host -> module
    def _readable(self) -> None:
        if self._master is None:
            return
        try:
            data = os.read(self._master, 4096)
        except OSError:
            return  # BlockingIOError, or EIO with no slave open (ours stays open: rare)
        if not data:
            return
        self.bytes_to_module += len(data)
        if self._spoke_at is not None:
            self.host_wait_s += time.perf_counter() - self._spoke_at
            self._spoke_at = None
        if self._up is not None:
            self._up.send(data, self._take)
        else:
            self._take(data)

    def _take(self, data: bytes) -> None:
        if self.line_baud:
            self._taken_at = time.perf_counter()
        seen = self._tail + data
        n = seen.count(b"AT+CMGS=")
        if n:
            self.cmgs_at.extend([time.perf_counter()] * n)
        self._tail = seen[-7:]
        self.modem.receive(data)

    def close(self) -> None:
        for line in (self._down, self._up):
            if line is not None:
                line.cancel()
        super().close()


@dataclass
class Module:
    """One simulated module on its pty."""

    sim: SimModem
    pty: LinePty
    mo: _MoSignal
    link: str

    @classmethod
    def open(cls, link: str, *, baud: int | None, seed: int) -> Module:
        sim = SimModem("bg96", seed=seed)
        mo = _watch_mo(sim)
        pty = LinePty(sim, link, baud=baud)
        pty.start()
        return cls(sim, pty, mo, link)

    def deliver(self) -> None:
        self.sim.deliver(COMMAND, sender=SHORT_CODE, include_sid="start")

    def replies(self) -> int:
        return sum(1 for r in self.mo if str(r.to_json().get("text") or "").startswith(REPLY))

    def close(self) -> None:
        self.pty.close()
        self.sim.close()


# -- the process under test ------------------------------------------------------------


def proc_cpu_s(pid: int) -> float:
    """User + system CPU of ``pid`` and of the children it waited for, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # fields[0] is field 3 (state): utime, stime, cutime, cstime are fields 14-17
    return sum(int(x) for x in fields[11:15]) / _CLK_TCK


def proc_threads_cpu_s(pid: int) -> dict[str, float]:
    """User + system CPU of ``pid``'s main thread (the event loop) and of its other
    live threads together (the journal worker; Python 3.11 does not name OS threads)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            name = "main" if task.name == str(pid) else "other_threads"
            fields = (task / "stat").read_text().rpartition(")")[2].split()
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return out


def proc_rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MB (10^6 bytes)."""
    got = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            got[key] = int(value.split()[0]) * 1024 / 1e6
    return got.get("VmRSS", float("nan")), got.get("VmHWM", float("nan"))


class Subject:
    """A program that answers Commands on the modules' ptys, as a process of its own."""

    name = "?"

    def __init__(self, tmp: Path, links: list[str]) -> None:
        self.tmp = tmp
        self.links = links
        self.procs: list[asyncio.subprocess.Process] = []
        self.logs: list[Path] = []

    async def start(self) -> None:
        raise NotImplementedError

    @property
    def pids(self) -> list[int]:
        """The processes and their live children (the bridge's journal process)."""
        out = []
        for p in self.procs:
            out.append(p.pid)
            with contextlib.suppress(OSError):
                kids = Path(f"/proc/{p.pid}/task/{p.pid}/children").read_text().split()
                out.extend(int(k) for k in kids)
        return out

    def cpu_s(self) -> float:
        return sum(proc_cpu_s(pid) for pid in self.pids)

    def threads_cpu_s(self) -> dict[str, float]:
        out: dict[str, float] = {}
        own = {p.pid for p in self.procs}
        for pid in self.pids:
            if pid in own:
                for name, v in proc_threads_cpu_s(pid).items():
                    out[name] = out.get(name, 0.0) + v
            else:
                with contextlib.suppress(OSError):
                    out["journal_process"] = out.get("journal_process", 0.0) + proc_cpu_s(pid)
        return out

    def rss_mb(self) -> tuple[float, float]:
        rss = [proc_rss_mb(pid) for pid in self.pids]
        return sum(r for r, _ in rss), sum(h for _, h in rss)

    def died(self) -> str | None:
        for p, log in zip(self.procs, self.logs, strict=True):
            if p.returncode is not None:
                tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
                return f"{self.name} exited with {p.returncode}: {tail}"
        return None

    async def _spawn(self, argv: list[str], log: Path, **kw: Any) -> None:
        out = log.open("wb")
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole
                **kw,
            )
        finally:
            out.close()
        self.procs.append(proc)
        self.logs.append(log)

    async def stop(self) -> None:
        for p in self.procs:
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                await asyncio.wait_for(p.wait(), 20)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                await p.wait()


def bridge_config(tmp: Path, links: list[str], *, journal_process: bool = False) -> str:
    """The bridge's configuration: one ``[[modem]]`` per pty, a real journal in
    ``tmp`` (in a process of its own with ``journal_process``)."""
    modems = "".join(
        f'\n[[modem]]\nname = "modem{i}"\nport = "{link}"\nprofile = "bg96"\n'
        for i, link in enumerate(links)
    )
    return (
        textwrap.dedent(
            f"""\
        [bridge]
        product = "programmable-wireless"
        device_id = "89883070000012345678"
        journal = "{tmp / "journal.db"}"
        journal_process = {"true" if journal_process else "false"}

        [budgets]
        global_per_hour = 100000
        global_per_day = 1000000
        sender_per_hour = 100000
        sender_per_day = 1000000

        [reports]
        boot = false

        [hal]
        backend = "sim"
        """
        )
        + modems
    )


class Bridge(Subject):
    """``python -m bridge run --config FILE`` from this checkout."""

    name = "bridge"
    #: ``--profile PATH``: the bridge runs under cProfile, its stats written there at exit.
    profile: str | None = None

    #: ``--no-bytecode``: run from source, compiled at each start (the zipapp's case).
    bytecode: bool = True
    #: ``--journal-process``: ``[bridge] journal_process = true``.
    journal_process: bool = False

    def _code(self) -> str:
        """Where the bridge's packages are imported from: by default a copy of this
        checkout's with its bytecode compiled, as pip and the Debian package install
        them (compiling at start costs about 2.7 MB of RSS that stays); the
        checkout itself with ``--no-bytecode``."""
        if not self.bytecode:
            return str(ROOT)
        import compileall

        code = self.tmp / "code"
        for pkg in ("pdu", "modem", "hal", "bridge"):
            shutil.copytree(ROOT / pkg, code / pkg, ignore=shutil.ignore_patterns("__pycache__"))
            compileall.compile_dir(code / pkg, quiet=1)  # writes whatever dont_write_bytecode says
        return str(code)

    async def start(self) -> None:
        cfg = self.tmp / "bridge.toml"
        cfg.write_text(bridge_config(self.tmp, self.links, journal_process=self.journal_process))
        code = self._code()
        env = {**os.environ, "PYTHONPATH": code}
        profile = ["-m", "cProfile", "-o", self.profile] if self.profile else []
        await self._spawn(
            [sys.executable, *profile, "-m", "bridge", "run", "--config", str(cfg)],
            self.tmp / "bridge.log",
            cwd=code,  # ``-m`` puts the working directory first on sys.path
            env=env,
        )


#: gammu-smsd's configuration (gammu-smsdrc(5)); see the module docstring for the choices.
GAMMU_SMSDRC = """\
[gammu]
device = {link}
connection = at

[smsd]
service = files
logfile = {dir}/smsd.log
debuglevel = 0
inboxpath = {dir}/inbox/
outboxpath = {dir}/outbox/
sentsmspath = {dir}/sent/
errorsmspath = {dir}/error/
inboxformat = standard
outboxformat = standard
transmitformat = auto
runonreceive = {dir}/reply.sh
receivefrequency = 0
commtimeout = 0
loopsleep = {loopsleep}
statusfrequency = 0
checksecurity = 0
checkbattery = 0
checksignal = 0
checknetwork = 0
"""

#: The RunOnReceive script: for each message file it is given, queue the reply.
#: Written beside the outbox and renamed into it, so gammu-smsd never reads half
#: a file; named OUT<priority>_<recipient>_<serial>.txt (gammu-smsd-files(7)).
REPLY_SH = """\
#!/bin/sh
for id in "$@"; do
    serial=$(printf '%s' "${{id%.txt}}" | tr -cd 'A-Za-z0-9')
    printf '%s' '{reply}' > "{dir}/tmp.$serial"
    mv "{dir}/tmp.$serial" "{dir}/outbox/OUTA_{to}_$serial.txt"
done
"""


class Gammu(Subject):
    """Debian's gammu-smsd, files backend, one process per module."""

    name = "gammu-smsd"

    def __init__(self, tmp: Path, links: list[str], *, loopsleep: int = 1) -> None:
        super().__init__(tmp, links)
        self.loopsleep = loopsleep

    async def start(self) -> None:
        exe = shutil.which("gammu-smsd")
        if exe is None:
            raise RuntimeError("gammu-smsd is not installed (Debian: apt-get install gammu-smsd)")
        for i, link in enumerate(self.links):
            d = self.tmp / f"smsd{i}"
            for sub in ("inbox", "outbox", "sent", "error"):
                (d / sub).mkdir(parents=True, exist_ok=True)
            script = d / "reply.sh"
            script.write_text(REPLY_SH.format(dir=d, reply=REPLY, to=SHORT_CODE))
            script.chmod(0o755)
            rc = d / "smsdrc"
            rc.write_text(GAMMU_SMSDRC.format(link=link, dir=d, loopsleep=self.loopsleep))
            await self._spawn([exe, "-c", str(rc)], d / "stdout.log")


# -- measuring ------------------------------------------------------------------------


async def _until(subject: Subject, aw: Any, timeout: float) -> bool:
    """Await ``aw`` (True/False) unless the subject dies first (RuntimeError) or
    ``timeout`` passes (False)."""
    waiter = asyncio.ensure_future(aw)
    deaths = [asyncio.ensure_future(p.wait()) for p in subject.procs]
    try:
        done, _ = await asyncio.wait(
            [waiter, *deaths], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for f in deaths:
            f.cancel()
    if waiter in done:
        return bool(waiter.result())
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    if any(d in done for d in deaths):
        raise RuntimeError(subject.died() or f"{subject.name} exited")
    return False


async def _warm_up(subject: Subject, modules: list[Module], timeout: float = 60.0) -> None:
    """One Command on each module, answered: the program is up and has swept the SIM."""
    befores = [len(m.mo) for m in modules]
    for m in modules:
        m.deliver()
    for m, before in zip(modules, befores, strict=True):
        if not await _until(subject, m.mo.wait_len(before + 1, timeout), timeout):
            raise RuntimeError(f"{subject.name}: no answer to the warm-up Command in {timeout} s")
    await asyncio.sleep(0.2)  # let the post-send bookkeeping settle (both programs alike)
    for m in modules:
        m.mo.clear()
        m.pty.reset_counters()


async def _drive(module: Module, n: int, window: int, stall: float) -> dict[str, Any]:
    """Deliver ``n`` Commands keeping at most ``window`` outstanding; until all are
    answered or none for ``stall`` s."""
    delivered = 0
    t0 = time.perf_counter()
    last_t = t0
    while True:
        answered = len(module.mo)
        while delivered < n and delivered - answered < window:
            module.deliver()
            delivered += 1
        if answered >= n:
            break
        if not await module.mo.wait_len(answered + 1, stall):
            break
        last_t = time.perf_counter()
    answered = len(module.mo)
    wall = (last_t if answered >= n else time.perf_counter()) - t0
    line_s = (module.pty.bytes_to_host + module.pty.bytes_to_module) * 10 / BAUD
    per = 1000 / max(answered, 1)
    return {
        "answered": f"{answered}/{n}",
        "wall_s": round(wall, 3),
        "commands_per_s": round(answered / wall, 2) if wall > 0 else 0.0,
        "line_bytes_per_command": round(
            (module.pty.bytes_to_host + module.pty.bytes_to_module) / max(answered, 1), 1
        ),
        "bytes_module_to_host": module.pty.bytes_to_host,
        "bytes_host_to_module": module.pty.bytes_to_module,
        "line_share_pct": round(100 * line_s / wall, 1) if wall > 0 else 0.0,
        # per Command: the line busy, and idle waiting for the host or for the module
        "line_busy_ms_per_command": round(line_s * per, 2),
        "host_turnaround_ms_per_command": round(module.pty.host_wait_s * per, 2),
        "module_turnaround_ms_per_command": round(module.pty.module_wait_s * per, 2),
        "replies_ok": module.replies() == answered,
    }


@contextlib.asynccontextmanager
async def _running(kind: str, tmp: Path, n_modules: int, *, baud: int | None, opts: Any):
    modules = [
        Module.open(str(tmp / f"tty{i}"), baud=baud, seed=opts.seed + i) for i in range(n_modules)
    ]
    subject: Subject = (
        Bridge(tmp, [m.link for m in modules])
        if kind == "bridge"
        else Gammu(tmp, [m.link for m in modules], loopsleep=opts.gammu_loopsleep)
    )
    try:
        await subject.start()
        await _warm_up(subject, modules)
        yield subject, modules
    finally:
        await subject.stop()
        for m in modules:
            m.close()


async def bench_throughput(kind: str, n: int, n_modules: int, window: int, opts: Any) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as t:
        async with _running(kind, Path(t), n_modules, baud=BAUD, opts=opts) as (subject, mods):
            cpu0, w0, sim0 = subject.cpu_s(), time.perf_counter(), time.process_time()
            threads0 = subject.threads_cpu_s()
            stall = 30.0 if kind == "gammu" else 10.0
            rows = await asyncio.gather(*(_drive(m, n, window, stall) for m in mods))
            cpu, wall = subject.cpu_s() - cpu0, time.perf_counter() - w0
            sim_cpu = time.process_time() - sim0
            threads = subject.threads_cpu_s()
            rss, hwm = subject.rss_mb()
    answered = sum(int(r["answered"].split("/")[0]) for r in rows)
    out: dict[str, Any] = {
        "modules": n_modules,
        "commands_per_module": n,
        "window": window,
        "commands_per_s": round(answered / wall, 2),
        "commands_per_s_per_module": round(statistics.mean(r["commands_per_s"] for r in rows), 2),
        "line_bytes_per_command": round(
            statistics.mean(r["line_bytes_per_command"] for r in rows), 1
        ),
        "line_share_pct_min": min(r["line_share_pct"] for r in rows),
        "line_share_pct_mean": round(statistics.mean(r["line_share_pct"] for r in rows), 1),
        **{
            key: round(statistics.mean(r[key] for r in rows), 2)
            for key in (
                "line_busy_ms_per_command",
                "host_turnaround_ms_per_command",
                "module_turnaround_ms_per_command",
            )
        },
        "cpu_ms_per_command": round(cpu * 1000 / max(answered, 1), 3),
        "cpu_pct_of_one_core": round(100 * cpu / wall, 1),
        # the program's main thread (the event loop) and its other threads (the journal's)
        "cpu_ms_per_command_by_thread": {
            k: round((v - threads0.get(k, 0.0)) * 1000 / max(answered, 1), 3)
            for k, v in sorted(threads.items())
            if v - threads0.get(k, 0.0) > 0
        },
        # this process: the simulated modules and their lines (not the program's CPU)
        "simulator_cpu_pct_of_one_core": round(100 * sim_cpu / wall, 1),
        "rss_mb": round(rss, 1),
        "rss_peak_mb": round(hwm, 1),
    }
    if n_modules == 1:
        out.update({k: v for k, v in rows[0].items() if k not in out})
    else:
        out["per_module"] = rows
    return out


async def bench_latency(kind: str, n: int, opts: Any) -> dict:
    lost = 0
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as t:
        async with _running(kind, Path(t), 1, baud=None, opts=opts) as (subject, mods):
            m = mods[0]
            timeout = 10.0 if kind == "bridge" else 30.0
            # A poller answers according to where in its loop a Command lands: each
            # Command comes a random 0-LoopSleep s after the previous reply (seeded).
            # The bridge waits on the line, not a timer: back to back, its worst
            # case (the previous reply's bookkeeping still running).
            rng = random.Random(opts.seed)
            gap = float(opts.gammu_loopsleep) if kind == "gammu" else 0.0
            cpu0 = subject.cpu_s()
            for _ in range(n):
                if gap:
                    await asyncio.sleep(rng.uniform(0, gap))
                before = len(m.mo)
                m.deliver()
                if not await _until(subject, m.mo.wait_len(before + 1, timeout), timeout + 1):
                    lost += 1
            cpu = subject.cpu_s() - cpu0
            rss, hwm = subject.rss_mb()
            lat = [(b - a) * 1000 for a, b in zip(m.pty.cmti_at, m.pty.cmgs_at, strict=False)]
    return {
        "commands": n,
        "random_gap_before_each_s": f"0-{gap:g}" if gap else 0,
        "answered": f"{n - lost}/{n}",
        "cmti_to_cmgs_median_ms": round(statistics.median(lat), 3) if lat else None,
        "cmti_to_cmgs_p99_ms": round(pct(lat, 99), 3) if lat else None,
        "cmti_to_cmgs_max_ms": round(max(lat), 3) if lat else None,
        "cpu_ms_per_command": round(cpu * 1000 / max(n - lost, 1), 3),
        "rss_mb": round(rss, 1),
        "rss_peak_mb": round(hwm, 1),
    }


def bench_disk(n: int = 200) -> dict:
    """What one ``synchronous=FULL`` SQLite commit costs on the temporary directory's
    disk (WAL mode, as the journal): context for the latency, whose path has four
    of them (receive, start, queue_reply, mark_sending)."""
    import sqlite3

    with tempfile.TemporaryDirectory(prefix="bench-disk-") as t:
        db = sqlite3.connect(Path(t) / "probe.db", isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
            times = []
            for i in range(n):
                t0 = time.perf_counter()
                db.execute("BEGIN IMMEDIATE")
                db.execute("INSERT INTO t (v) VALUES (?)", (f"entry {i}",))
                db.execute("COMMIT")
                times.append((time.perf_counter() - t0) * 1000)
        finally:
            db.close()
    return {
        "commits": n,
        "full_commit_median_ms": round(statistics.median(times), 3),
        "full_commit_p99_ms": round(pct(times, 99), 3),
    }


def _against_aims(ours: dict) -> dict:
    out = {}
    tp, lat = ours.get("throughput_115200"), ours.get("latency_no_line_emulation")
    if tp:
        share = tp["line_share_pct_min"]
        out["line_share"] = f"{share} % (aim >= {AIM_LINE_SHARE_PCT} %): " + (
            "met" if share >= AIM_LINE_SHARE_PCT else "NOT met"
        )
    if lat and lat["cmti_to_cmgs_p99_ms"] is not None:
        p99 = lat["cmti_to_cmgs_p99_ms"]
        out["p99"] = f"{p99} ms (aim < {AIM_P99_MS} ms): " + (
            "met" if p99 < AIM_P99_MS else "NOT met"
        )
    peaks = [s["rss_peak_mb"] for s in (tp, lat) if s]
    if peaks:
        rss = max(peaks)
        out["rss"] = f"{rss} MB peak (aim < {AIM_RSS_MB} MB): " + (
            "met" if rss < AIM_RSS_MB else "NOT met"
        )
    return out


async def main_async(opts: Any) -> dict:
    results: dict[str, Any] = {}
    if "throughput" in opts.only or "latency" in opts.only:
        ours: dict[str, Any] = {}
        if "throughput" in opts.only:
            ours["throughput_115200"] = await bench_throughput(
                "bridge", opts.commands, opts.modules, opts.window, opts
            )
        if "latency" in opts.only:
            ours["latency_no_line_emulation"] = await bench_latency("bridge", opts.commands, opts)
        ours["bytecode"] = (
            "compiled before the start (as pip and the Debian package install it)"
            if Bridge.bytecode
            else "none: compiled from source at the start (the zipapp's case)"
        )
        ours["against_aims"] = _against_aims(ours)
        ours["disk_sqlite_full_commit"] = bench_disk()
        results["bridge"] = ours
    if "gammu" in opts.only:
        g: dict[str, Any] = {"loopsleep_s": opts.gammu_loopsleep}
        try:
            g["throughput_115200"] = await bench_throughput(
                "gammu", opts.gammu_commands, 1, opts.window, opts
            )
            g["latency_no_line_emulation"] = await bench_latency("gammu", opts.gammu_commands, opts)
        except RuntimeError as exc:  # a third-party program: report, do not crash the bench
            g["error"] = str(exc)
        results["gammu_smsd"] = g
        ours_tp = results.get("bridge", {}).get("throughput_115200", {}).get("commands_per_s")
        theirs_tp = g.get("throughput_115200", {}).get("commands_per_s")
        if ours_tp and theirs_tp:
            results["throughput_ratio_bridge_vs_gammu"] = round(ours_tp / theirs_tp, 1)
        ours_l = results.get("bridge", {}).get("latency_no_line_emulation", {})
        theirs_l = g.get("latency_no_line_emulation", {})
        if ours_l.get("cmti_to_cmgs_median_ms") and theirs_l.get("cmti_to_cmgs_median_ms"):
            results["median_latency_ratio_gammu_vs_bridge"] = round(
                theirs_l["cmti_to_cmgs_median_ms"] / ours_l["cmti_to_cmgs_median_ms"], 1
            )
    return results


def _print_table(results: dict, indent: str = "") -> None:
    for key, value in results.items():
        if isinstance(value, dict):
            print(f"{indent}[{key}]")
            _print_table(value, indent + "  ")
        elif isinstance(value, list):
            print(f"{indent}{key}:")
            for i, row in enumerate(value):
                cells = ", ".join(f"{k}={v}" for k, v in row.items())
                print(f"{indent}  #{i}: {cells}")
        else:
            print(f"{indent}{key}: {value}")


def _summary(results: dict) -> list[str]:
    """The headline table: one row a measure, one column a program."""
    cols = [
        (name, results[key])
        for name, key in (("bridge", "bridge"), ("gammu-smsd", "gammu_smsd"))
        if key in results
    ]

    def cell(r: dict, section: str, *keys: str, unit: str = "") -> str:
        sec = r.get(section) or {}
        vals = [sec.get(k) for k in keys]
        if any(v is None for v in vals):
            return "-"
        return " / ".join(f"{v:g}" for v in vals) + unit

    tp, lat = "throughput_115200", "latency_no_line_emulation"
    rows = [
        ("Commands answered per s, 115200 baud", lambda r: cell(r, tp, "commands_per_s")),
        ("bytes on the line per Command", lambda r: cell(r, tp, "line_bytes_per_command")),
        (
            "share of the line (least module)",
            lambda r: cell(r, tp, "line_share_pct_min", unit=" %"),
        ),
        (
            "+CMTI -> AT+CMGS median / p99",
            lambda r: cell(r, lat, "cmti_to_cmgs_median_ms", "cmti_to_cmgs_p99_ms", unit=" ms"),
        ),
        (
            "CPU per Command (no line emulation)",
            lambda r: cell(r, lat, "cpu_ms_per_command", unit=" ms"),
        ),
        ("RSS peak", lambda r: cell(r, tp, "rss_peak_mb", unit=" MB")),
    ]
    width = max(len(name) for name, _ in rows) + 2
    out = ["".join([" " * width, *(f"{n:>22}" for n, _ in cols)])]
    for name, get in rows:
        out.append("".join([name.ljust(width), *(f"{get(r):>22}" for _, r in cols)]))
    per_module = (results.get("bridge", {}).get(tp) or {}).get("per_module")
    if per_module:
        out.append("")
        out.append("module  Commands/s  share of its line")
        out += [
            f"{i:>6}  {row['commands_per_s']:>10}  {row['line_share_pct']:>15} %"
            for i, row in enumerate(per_module)
        ]
    aims = results.get("bridge", {}).get("against_aims") or {}
    if aims:
        out.append("")
        out += [f"aim, {k}: {v}" for k, v in aims.items()]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--commands", type=int, default=200, help="Commands per module (bridge)")
    p.add_argument("--modules", type=int, default=1, help="modules in one bridge process")
    p.add_argument("--window", type=int, default=10, help="Commands outstanding per module")
    p.add_argument("--gammu-commands", type=int, default=20, help="Commands for gammu-smsd")
    p.add_argument("--gammu-loopsleep", type=int, default=1, help="gammu-smsd LoopSleep (s)")
    p.add_argument(
        "--only",
        nargs="*",
        default=["throughput", "latency", "gammu"],
        choices=["throughput", "latency", "gammu"],
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--profile",
        metavar="PATH",
        help="run the bridge under cProfile, stats to PATH (one phase: use --only)",
    )
    p.add_argument(
        "--no-bytecode",
        action="store_true",
        help="run the bridge from source compiled at start (the zipapp's case)",
    )
    p.add_argument(
        "--journal-process",
        action="store_true",
        help="the bridge with [bridge] journal_process = true (its journal in a process)",
    )
    p.add_argument("--json", action="store_true")
    opts = p.parse_args()
    for name in ("commands", "modules", "window", "gammu_commands"):
        if getattr(opts, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if opts.gammu_loopsleep < 0:
        p.error("--gammu-loopsleep must be 0 or more")
    if opts.profile:
        Bridge.profile = str(Path(opts.profile).resolve())
    Bridge.bytecode = not opts.no_bytecode
    Bridge.journal_process = opts.journal_process
    loop = asyncio.SelectorEventLoop(_CountingSelector())
    try:
        results = loop.run_until_complete(main_async(opts))
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        loop.close()
    results["when"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if opts.json:
        print(json.dumps(results, indent=2))
    else:
        print("\n".join(_summary(results)))
        print()
        _print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
