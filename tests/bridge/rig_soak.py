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
  the selector's ``select`` (one call returning = one loop wake-up; with no
  event ready it was a timer that woke it) and ``asyncio.Handle._run`` for
  timer handles, named by what they wake: the task waiting in ``asyncio.sleep``
  / ``wait_for`` (its coroutine's qualified name) or the callback's qualified
  name. The process writes them (monotonic time, label) as JSON when it exits
  (SIGTERM at the end of the window, ``atexit``); only those inside the window
  are counted. ``CLOCK_MONOTONIC`` is one clock for every process.

Allowed in the window: the systemd watchdog's ping task and the SMS service's
periodic sweep (``modem.timing.PERIODIC_SWEEP``). ``NOTIFY_SOCKET`` and
``WATCHDOG_USEC`` are set to a real ``AF_UNIX`` datagram socket read here, so
pings are counted if the process sends them.
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

from .rig_e2e import ROOT, SimProcess, _env, _kill_group, _stop, bridge_run_argv, write_setup

SITECUSTOMIZE = """\
import os
if os.environ.get("E2E_PROBES"):
    from tests.bridge.rig_e2e import install_probes
    install_probes()
if os.environ.get("SOAK_IDLE_LOG"):
    from tests.bridge.rig_soak import install_idle_probe
    install_idle_probe(os.environ["SOAK_IDLE_LOG"])
"""

#: Labels of the timers allowed to wake an idle bridge (substrings of the label).
ALLOWED_TIMERS = ("Watchdog.run", "periodic", "_sweeper", "sweep")


def _label(handle: Any) -> str:
    cb = handle._callback
    name = getattr(cb, "__qualname__", repr(cb))
    if name == "_set_result_unless_cancelled" and handle._args:
        fut = handle._args[0]
        for waiter, _ctx in getattr(fut, "_callbacks", None) or ():
            owner = getattr(waiter, "__self__", None)
            if isinstance(owner, asyncio.Task):
                return f"sleep in {owner.get_coro().__qualname__}"  # type: ignore[union-attr]
    owner = getattr(cb, "__self__", None)
    if isinstance(owner, asyncio.Task):
        return f"task {owner.get_coro().__qualname__}"  # type: ignore[union-attr]
    return name


def install_idle_probe(path: str) -> None:
    """Count loop wake-ups and timer callbacks; write them to ``path`` at exit."""
    events: collections.deque[tuple[float, str]] = collections.deque(maxlen=200_000)
    base = asyncio.events.Handle._run
    timer_cls = asyncio.events.TimerHandle

    def probed_run(self: Any) -> None:
        if type(self) is timer_cls:
            with contextlib.suppress(Exception):
                events.append((time.monotonic(), "timer " + _label(self)))
        base(self)

    asyncio.events.Handle._run = probed_run  # type: ignore[method-assign]
    cls = selectors.DefaultSelector
    orig_select = cls.select

    def probed_select(self: Any, timeout: float | None = None) -> Any:
        ready = orig_select(self, timeout)
        events.append((time.monotonic(), "wake io" if ready else "wake timeout"))
        return ready

    cls.select = probed_select  # type: ignore[method-assign]

    def dump() -> None:
        with open(path, "w") as f:
            json.dump(list(events), f)

    atexit.register(dump)


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


def run_idle(tmp: Path, seconds: float, *, seed: int = 1, sample: float = 10.0) -> dict[str, Any]:
    """Start the simulator and the bridge, wait for ``@@ready`` and the boot
    message's send, then watch for ``seconds``. Every process is gone on return."""
    sim = SimProcess(tmp, seed=seed)
    proc: subprocess.Popen[bytes] | None = None
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_path = tmp / "notify.sock"
    notify.bind(str(notify_path))
    notify.setblocking(False)
    log = tmp / "idle-events.json"
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
            "NOTIFY_SOCKET": str(notify_path),
            "WATCHDOG_USEC": "30000000",
        }
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
        while time.monotonic() < deadline:  # the tool's own wait, not product code
            text = (tmp / "bridge.err").read_text(errors="replace")
            if "@@ready" in text and "@@mark_sent" in text:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"the bridge exited ({proc.returncode}):\n{text[-2000:]}")
            time.sleep(0.2)
        else:
            raise RuntimeError("the bridge did not get ready in 60 s")
        time.sleep(2.0)  # the boot message's last writes settle
        pings = 0
        start_threads = _threads(proc.pid)
        t_start = time.monotonic()
        rss = [(0.0, _rss_kib(proc.pid))]
        while (left := t_start + seconds - time.monotonic()) > 0:
            time.sleep(min(sample, left))
            rss.append((round(time.monotonic() - t_start, 1), _rss_kib(proc.pid)))
            with contextlib.suppress(BlockingIOError):
                while True:
                    pings += b"WATCHDOG=1" in notify.recv(4096).split(b"\n")
        end_threads = _threads(proc.pid)
        t_end = time.monotonic()
        _stop(proc, 20)
        err.close()
    finally:
        if proc is not None:
            _kill_group(proc, 9)
        sim.stop()
        notify.close()
    threads = []
    for tid, (comm, vol, nonvol) in end_threads.items():
        _, v0, n0 = start_threads.get(tid, (comm, 0, 0))
        threads.append(
            {"tid": tid, "name": comm, "voluntary": vol - v0, "nonvoluntary": nonvol - n0}
        )
    gone = [start_threads[t][0] for t in set(start_threads) - set(end_threads)]
    events = [(t, what) for t, what in json.loads(log.read_text())] if log.exists() else []
    inside = [what for t, what in events if t_start <= t <= t_end]
    wakes = collections.Counter(w for w in inside if w.startswith("wake "))
    timers = collections.Counter(w[6:] for w in inside if w.startswith("timer "))
    unexpected = {k: n for k, n in timers.items() if not any(a in k for a in ALLOWED_TIMERS)}
    growth = rss[-1][1] - rss[0][1]
    return {
        "seconds": round(t_end - t_start, 1),
        "loop_wakeups": dict(wakes),
        "timers": dict(timers),
        "unexpected_timers": unexpected,
        "watchdog_pings": pings,
        "threads": threads,
        "threads_gone": gone,
        "context_switches": sum(t["voluntary"] for t in threads),
        "rss_kib": rss,
        "rss_growth_kib": growth,
        "probe_saw_events": bool(events),
        "ok": not unexpected and bool(events) and growth <= 1024,
    }


def idle_report(r: dict[str, Any]) -> str:
    lines = [f"idle {r['seconds']} s: {'OK' if r['ok'] else 'FAILED'}"]
    lines.append(f"event-loop wake-ups: {r['loop_wakeups'] or 'none'}")
    lines.append(f"timers run: {r['timers'] or 'none'}")
    if r["unexpected_timers"]:
        lines.append(f"timers not allowed: {r['unexpected_timers']}")
    lines.append(f"watchdog pings received: {r['watchdog_pings']}")
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
    return "\n".join(lines)
