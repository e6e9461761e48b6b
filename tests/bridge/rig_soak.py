"""The long-idle rig (no tests here): a real ``python -m bridge run`` on the
standalone simulator, left alone, its wake-ups and memory counted.

Two counts, one from the kernel and one from inside the process:

* **Kernel**: ``voluntary_ctxt_switches`` and ``nonvoluntary_ctxt_switches`` of
  every thread (``/proc/PID/task/TID/status``) at the start and the end of the
  window, and ``VmRSS`` of ``/proc/PID/status`` every ``sample`` seconds.
  Reading ``/proc`` does not wake the process. A voluntary switch is the thread
  going to sleep (in ``epoll_wait``, a futex, a blocking read), so each wake-up
  of a thread that then sleeps again adds one: their sum over the window is the
  number of times the process was woken, whoever woke it.
* **Event loop**: ``sitecustomize`` (``SOAK_IDLE_LOG``) wraps, at class level,
  the selector's ``select`` and ``asyncio.Handle._run``. A wake-up is a
  ``select`` that blocked (``select(0)`` while callbacks are ready is a poll, not
  a wake-up) and returned; its cause is the first timer handle run after it,
  named by what it wakes (the task in ``asyncio.sleep``, the task in an
  ``asyncio.wait`` timeout, or the callback's qualified name), or for I/O the
  ready descriptors (``pty``: the modem line; ``socket``: the loop's self-pipe,
  by which the journal's thread answers) and the first callback. The process
  writes them (monotonic time, kind, cause) as JSON when it exits (SIGTERM at the
  end of the window, ``atexit``); only those inside the window are counted.
  ``CLOCK_MONOTONIC`` is one clock for every process.

Allowed in the window (:data:`ALLOWED_TIMERS`, exact labels): the systemd
watchdog's round (``sleep in Watchdog.run``) and the SMS service's periodic sweep
(its named timer ``SmsService._periodic_sweep_due``), and the I/O that answers
them within :data:`EPISODE` s (the sweep's ``AT+CMGL``, the watchdog's journal
heartbeat). ``NOTIFY_SOCKET`` is a real ``AF_UNIX`` datagram socket bound here
and ``WATCHDOG_USEC`` is set (30 s, the unit's ``WatchdogSec=``, unless given), so
the pings are counted as systemd would receive them.

:class:`SoakBridge` is the e2e rig's bridge process with this rig's probe
``@@deleted`` as well (``tools/soak.py``'s ``kill_at="ack"``).
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import json
import os
import selectors
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from bridge.status import STATUS_MIN_INTERVAL

from .rig_e2e import (
    ROOT,
    BridgeProcess,
    SimProcess,
    _env,
    _kill_group,
    _stop,
    bridge_run_argv,
    write_setup,
)

SITECUSTOMIZE = """\
import os
if os.environ.get("E2E_PROBES"):
    from tests.bridge.rig_e2e import install_probes
    install_probes()
if os.environ.get("SOAK_SWEEP_PERIOD"):
    import modem.timing
    modem.timing.PERIODIC_SWEEP = float(os.environ["SOAK_SWEEP_PERIOD"])
if os.environ.get("SOAK_IDLE_LOG"):
    from tests.bridge.rig_soak import install_idle_probe
    install_idle_probe(os.environ["SOAK_IDLE_LOG"])
if os.environ.get("SOAK_PROBES"):
    from tests.bridge.rig_soak import install_soak_probes
    install_soak_probes()
"""


def install_soak_probes() -> None:
    """Inside the bridge: ``@@deleted INDEXES`` on standard error each time the SMS
    service has deleted acknowledged SIM copies (``SmsService._delete`` returned:
    the module answered every ``+CMGD``), so a kill can be placed after it."""
    from modem import sms

    orig = sms.SmsService._delete

    async def probed_delete(self: Any, locs: list[Any]) -> None:
        await orig(self, locs)
        idx = ",".join(f"{loc.mem}{loc.index}" for loc in locs)
        os.write(2, f"@@deleted {idx or '-'}\n".encode())

    sms.SmsService._delete = probed_delete  # type: ignore[method-assign]


class SoakBridge(BridgeProcess):
    """:class:`rig_e2e.BridgeProcess` with this rig's probes loaded as well
    (``@@deleted``, see :func:`install_soak_probes`)."""

    SITECUSTOMIZE = SITECUSTOMIZE
    PROBES = "probes-soak"
    EXTRA_ENV = (("SOAK_PROBES", "1"),)
    DROP_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "SOAK_IDLE_LOG")


#: The timers allowed to wake an idle bridge, by their probe label (exact): the
#: systemd watchdog's ping round (``bridge.systemd.Watchdog.run`` sleeping to its
#: next due time) and the SMS service's periodic sweep (``modem.sms``'s named
#: timer, ``modem.timing.PERIODIC_SWEEP``).
WATCHDOG_TIMER = "sleep in Watchdog.run"
SWEEP_TIMER = "SmsService._periodic_sweep_due"
ALLOWED_TIMERS = (WATCHDOG_TIMER, SWEEP_TIMER)
#: An I/O wake-up this soon after an allowed timer's is that timer's work (the
#: sweep's ``AT+CMGL`` answers, the watchdog's journal heartbeat finishing in the
#: journal's thread); later ones are counted as not allowed.
EPISODE = 5.0


def _task_name(task: Any) -> str:
    return str(task.get_coro().__qualname__)


def _label(handle: Any) -> str:
    """What a handle runs, named for a person: the task a timer wakes (``asyncio.sleep``)
    or the callback's qualified name."""
    cb = handle._callback
    name = getattr(cb, "__qualname__", repr(cb))
    if name == "_set_result_unless_cancelled" and handle._args:
        fut = handle._args[0]
        for waiter, _ctx in getattr(fut, "_callbacks", None) or ():
            owner = getattr(waiter, "__self__", None)
            if isinstance(owner, asyncio.Task):
                return f"sleep in {_task_name(owner)}"
    if name == "_release_waiter" and handle._args:  # asyncio.wait(..., timeout=)
        for waiter, _ctx in getattr(handle._args[0], "_callbacks", None) or ():
            owner = getattr(waiter, "__self__", None)
            if isinstance(owner, asyncio.Task):
                return f"asyncio.wait timeout in {_task_name(owner)}"
    owner = getattr(cb, "__self__", None)
    if isinstance(owner, asyncio.Task):
        return f"task {_task_name(owner)}"
    return str(name)


def _fd_name(fd: int) -> str:
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return f"fd {fd}"
    return "pty" if target.startswith("/dev/pts/") else target.split(":")[0]


def install_idle_probe(path: str) -> None:
    """Count the event loop's wake-ups, each with its cause; write them to ``path``
    at exit as JSON ``[monotonic time, "timer"|"io"|"early", cause]``.

    A wake-up is a return of the selector's ``select`` that had blocked (timeout
    None or positive; ``select(0)``, a poll while callbacks are ready, is not one).
    Its cause: for a timeout, the label of the first timer handle run after it
    (``early`` when none was due); for I/O, the file descriptors ready and the first
    callback run (the journal thread's answers come through the loop's self-pipe,
    a ``socket``)."""
    events: collections.deque[list[Any]] = collections.deque(maxlen=200_000)
    base = asyncio.events.Handle._run
    timer_cls = asyncio.events.TimerHandle
    current: list[Any] = [None]  # the wake-up whose cause is not known yet

    def probed_run(self: Any) -> None:
        ev = current[0]
        if ev is not None:
            with contextlib.suppress(Exception):
                if ev[1] == "early" and type(self) is timer_cls:
                    ev[1], ev[2] = "timer", _label(self)
                    current[0] = None
                elif ev[1] == "io":
                    ev[2] = f"{ev[2]} -> {_label(self)}"
                    current[0] = None
        base(self)

    asyncio.events.Handle._run = probed_run  # type: ignore[method-assign]
    cls = selectors.DefaultSelector
    orig_select = cls.select

    def probed_select(self: Any, timeout: float | None = None) -> Any:
        current[0] = None
        ready = orig_select(self, timeout)
        if timeout is None or timeout > 0:
            if ready:
                fds = sorted({_fd_name(key.fd) for key, _ in ready})
                ev = [time.monotonic(), "io", "+".join(fds)]
            else:
                ev = [time.monotonic(), "early", "nothing due"]
            events.append(ev)
            current[0] = ev
        return ready

    cls.select = probed_select  # type: ignore[method-assign]

    def dump() -> None:
        with open(path, "w") as f:
            json.dump(list(events), f)

    atexit.register(dump)


def classify(events: list[tuple[float, str, str]]) -> dict[str, Any]:
    """Wake-ups by cause; the ones not allowed. A timer wake-up is allowed when its
    timer is; an I/O wake-up when it comes within :data:`EPISODE` s of an allowed
    timer's wake-up (and is named after it)."""
    by_cause: collections.Counter[str] = collections.Counter()
    bad: collections.Counter[str] = collections.Counter()
    last: tuple[float, str] | None = None
    for t, kind, cause in sorted(events):
        if kind == "timer":
            key = f"timer {cause}"
            if cause in ALLOWED_TIMERS:
                last = (t, cause)
            else:
                bad[key] += 1
        elif last is not None and t - last[0] <= EPISODE:
            key = f"{kind} after {last[1]} ({cause})"
        else:
            key = f"{kind} ({cause})"
            bad[key] += 1
        by_cause[key] += 1
    return {"by_cause": dict(by_cause), "not_allowed": dict(bad)}


def _threads(pid: int) -> dict[int, tuple[str, int, int]]:
    out = {}
    for t in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            comm = (t / "comm").read_text().strip()
            fields = dict(
                line.split(":\t", 1)
                for line in (t / "status").read_text().splitlines()
                if ":\t" in line
            )
            out[int(t.name)] = (
                comm,
                int(fields["voluntary_ctxt_switches"]),
                int(fields["nonvoluntary_ctxt_switches"]),
            )
    return out


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run_idle(
    tmp: Path,
    seconds: float,
    *,
    seed: int = 1,
    sample: float = 10.0,
    watchdog_usec: int = 30_000_000,
    sweep_period: float | None = None,
) -> dict[str, Any]:
    """Start the simulator and the bridge (``NOTIFY_SOCKET`` a real ``AF_UNIX``
    datagram socket bound here, ``WATCHDOG_USEC`` as the unit's ``WatchdogSec=30s``
    unless given), wait for ``READY=1``, the boot message's send and one watchdog
    ping, then watch for ``seconds``. ``sweep_period`` replaces
    ``modem.timing.PERIODIC_SWEEP`` (300 s) in the bridge. Every process is gone on
    return."""
    sim = SimProcess(tmp, seed=seed)
    proc: subprocess.Popen[bytes] | None = None
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_path = tmp / "notify.sock"
    notify.bind(str(notify_path))
    log = tmp / "idle-events.json"
    err = None
    messages: list[tuple[float, bytes]] = []

    def receive(until: float) -> None:
        while (left := until - time.monotonic()) > 0:
            notify.settimeout(left)
            try:
                messages.append((time.monotonic(), notify.recv(4096)))
            except TimeoutError:
                return

    def seen(text: bytes) -> bool:
        return any(text in m.split(b"\n") for _, m in messages)

    try:
        cfg = write_setup(tmp, sim.link)
        cfg.write_text(cfg.read_text().replace("[reports]\nboot = false", "[reports]\nboot = true"))
        probes = tmp / "probes-idle"
        probes.mkdir(exist_ok=True)
        (probes / "sitecustomize.py").write_text(SITECUSTOMIZE)
        env = {
            **_env(),
            "PYTHONPATH": f"{probes}{os.pathsep}{ROOT}",
            "E2E_PROBES": "1",
            "E2E_GPIO_LOG": str(tmp / "gpio.log"),
            "SOAK_IDLE_LOG": str(log),
            "SOAK_SWEEP_PERIOD": "" if sweep_period is None else str(sweep_period),
            "NOTIFY_SOCKET": str(notify_path),
            "WATCHDOG_USEC": str(watchdog_usec),
        }
        env.pop("WATCHDOG_PID", None)
        err = open(tmp / "bridge.err", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            bridge_run_argv(cfg),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:  # READY=1, the boot message sent, a first ping after them
            receive(min(deadline, time.monotonic() + 0.5))
            text = (tmp / "bridge.err").read_text(errors="replace")
            if seen(b"READY=1") and "@@mark_sent" in text:
                n = sum(seen_ping(m) for _, m in messages)
                if n >= 2 or (n and watchdog_usec > 4_000_000):
                    break
            if proc.poll() is not None:
                raise RuntimeError(f"the bridge exited ({proc.returncode}):\n{text[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bridge did not get ready in 60 s:\n{text[-2000:]}")
        # start-up's tail settles: the boot message's last writes, and the STATUS=
        # line that follows its counters (then held STATUS_MIN_INTERVAL s, a timer)
        receive(time.monotonic() + SETTLE)
        before = len(messages)
        start_threads = _threads(proc.pid)
        t_start = time.monotonic()
        rss = [(0.0, _rss_kib(proc.pid))]
        while (left := t_start + seconds - time.monotonic()) > 0:
            receive(time.monotonic() + min(sample, left))
            rss.append((round(time.monotonic() - t_start, 1), _rss_kib(proc.pid)))
        end_threads = _threads(proc.pid)
        t_end = time.monotonic()
        pings = sum(seen_ping(m) for t, m in messages[before:] if t <= t_end)
        code = _stop(proc, 20)
    finally:
        if proc is not None:
            _kill_group(proc, 9)
        if err is not None:
            err.close()
        sim.stop()
        notify.close()
    threads = []
    for tid, (comm, vol, nonvol) in end_threads.items():
        _, v0, n0 = start_threads.get(tid, (comm, 0, 0))
        threads.append(
            {"tid": tid, "name": comm, "voluntary": vol - v0, "nonvoluntary": nonvol - n0}
        )
    gone = [start_threads[t][0] for t in set(start_threads) - set(end_threads)]
    events = [tuple(e) for e in json.loads(log.read_text())] if log.exists() else []
    inside = [e for e in events if t_start <= e[0] <= t_end]
    kinds = collections.Counter(e[1] for e in inside)
    causes = classify(inside)  # type: ignore[arg-type]
    timers = collections.Counter(e[2] for e in inside if e[1] == "timer")
    growth = rss[-1][1] - rss[0][1]
    problems = []
    if not events:
        problems.append("the probe recorded nothing (not loaded?)")
    if causes["not_allowed"]:
        problems.append(f"wake-ups not allowed: {causes['not_allowed']}")
    if growth > RSS_GROWTH_KIB:
        problems.append(f"RSS grew {growth} KiB (> {RSS_GROWTH_KIB})")
    if code != 0:
        problems.append(f"the bridge exited {code} on SIGTERM")
    return {
        "seconds": round(t_end - t_start, 1),
        "watchdog_usec": watchdog_usec,
        "sweep_period": timing_sweep() if sweep_period is None else sweep_period,
        "loop_wakeups": dict(kinds),
        "wakeups_by_cause": causes["by_cause"],
        "not_allowed": causes["not_allowed"],
        "not_allowed_at": [
            (round(t - t_start, 3), f"{kind} {cause}")
            for t, kind, cause in inside
            if classify([(t, kind, cause)])["not_allowed"] and kind == "timer"
        ][:20],
        "timers": dict(timers),
        "watchdog_pings": pings,
        "threads": threads,
        "threads_gone": gone,
        "context_switches": sum(t["voluntary"] for t in threads),
        "rss_kib": rss,
        "rss_growth_kib": growth,
        "exit_code": code,
        "problems": problems,
        "ok": not problems,
    }


#: Seconds after READY=1, the boot message's send and a first ping before the
#: window opens: the status line's rate limit (``bridge.status.STATUS_MIN_INTERVAL``)
#: after the boot message's counters is start-up, not idle.
SETTLE = 2.0 + STATUS_MIN_INTERVAL
#: RSS growth over an idle window that still counts as flat.
RSS_GROWTH_KIB = 1024


def seen_ping(datagram: bytes) -> bool:
    return b"WATCHDOG=1" in datagram.split(b"\n")


def timing_sweep() -> float:
    from modem import timing

    return timing.PERIODIC_SWEEP


def idle_report(r: dict[str, Any]) -> str:
    lines = [f"idle {r['seconds']} s: {'OK' if r['ok'] else 'FAILED'}"]
    lines.append(
        f"watchdog: WATCHDOG_USEC={r['watchdog_usec']}, {r['watchdog_pings']} pings received;"
        f" periodic sweep every {r['sweep_period']:g} s"
    )
    lines.append(f"event-loop wake-ups: {r['loop_wakeups'] or 'none'}")
    for cause, n in sorted(r["wakeups_by_cause"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  {n:>5}  {cause}")
    lines.append(f"voluntary context switches, all threads: {r['context_switches']}")
    for t in r["threads"]:
        lines.append(
            f"  thread {t['name']} ({t['tid']}): "
            f"{t['voluntary']} voluntary, {t['nonvoluntary']} not"
        )
    rss = r["rss_kib"]
    lines.append(
        f"RSS: {rss[0][1]} KiB at the start, {rss[-1][1]} KiB at the end "
        f"({r['rss_growth_kib']:+d} KiB), "
        f"min {min(v for _, v in rss)} max {max(v for _, v in rss)}"
    )
    lines += [f"problem: {p}" for p in r["problems"]]
    return "\n".join(lines)
