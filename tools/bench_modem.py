#!/usr/bin/env python3
"""Benchmark the modem layer with an echo consumer against the simulated module.

The consumer receives a Command and replies to 2936 with the same text.

1. ``throughput``: N messages through the in-process transport with 115200-baud
   line emulation. The headline is messages per second; beside it the bytes on
   the line per message (both directions), which is what a leaner exchange
   improves. The share of the wall time the line was busy (10 bits a byte) is
   kept for reference only: it rewards redundant traffic.
2. ``latency``: no line emulation, one message at a time; from the ``+CMTI``
   bytes arriving at the client to the reply's ``AT+CMGS`` leaving it
   (median, p99) and CPU time per message (process time, includes the
   simulator, which runs in the same thread).
3. ``idle``: CPU time of a started, idle client + session + SMS service over
   ``--idle`` seconds (default 5; use 60 for the documented figure).
4. ``gsmmodem``: the same echo with python-gsmmodem-new (threads, blocking
   pyserial) against the same simulator over a pty, both clients in the same
   run: end-to-end latency (delivery to the reply reaching the simulator, one
   message at a time) and burst throughput (``--burst`` messages at once, the
   module's output paced at 115200 baud), with the ratio of the two. The
   benchmark waits for each echo on an event the simulator's MO log sets (no
   polling loop). python-gsmmodem's CPU per message is the CPU of its own
   threads: the process's CPU time minus the main thread's (which runs the
   event loop, the simulator and the benchmark).

Every stack of this project's runs through :class:`modem.stack.ModemStack`.

Usage: ``python tools/bench_modem.py [--messages 200] [--idle 5] [--json]``.
Numbers are for comparison on one machine, never assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import selectors
import statistics
import sys
import tempfile
import threading
import time
from typing import ClassVar

from modem.client import AtClient
from modem.protocol import Urc
from modem.sim import SimModem, create_sim_connection
from modem.sms import ReceivedMessage
from modem.stack import ModemStack

BAUD = 115200


class _CountingSelector(selectors.SelectSelector):
    """select() with microsecond timeouts that counts how often the loop wakes.

    Only selects that block count: a select(0) is the loop running callbacks
    already due (a task woken by the previous wake-up), not a new wake-up.
    """

    wakeups: ClassVar[list[float]] = []

    def select(self, timeout=None):
        ready = super().select(timeout)
        if timeout is None or timeout > 0:
            _CountingSelector.wakeups.append(time.monotonic())
        return ready


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[k]


class _MoSignal(list):
    """The simulator's MO log that sets an event on every message sent to it."""

    def __init__(self) -> None:
        super().__init__()
        self.grew = asyncio.Event()

    def append(self, item) -> None:
        super().append(item)
        self.grew.set()

    async def wait_len(self, n: int, timeout: float) -> bool:
        """Wait (on the event) until ``n`` messages were sent; False after ``timeout``
        without progress."""
        while len(self) < n:
            self.grew.clear()
            try:
                await asyncio.wait_for(self.grew.wait(), timeout)
            except TimeoutError:
                return False
        return True


def _watch_mo(sim: SimModem) -> _MoSignal:
    log = _MoSignal()
    sim.mo_log = log
    return log


def _echo_stack(client: AtClient, on_reply=None) -> ModemStack:
    """The stack with a consumer that replies to 2936 with the text it got."""
    stack: ModemStack

    async def echo(item):
        if isinstance(item, ReceivedMessage):
            await stack.sms.send("2936", item.text or "")
            if on_reply is not None:
                on_reply()

    stack = ModemStack(client, consumer=echo)
    return stack


def _sim_client(sim: SimModem, **conn) -> AtClient:
    async def connector(factory):
        return await create_sim_connection(factory, sim, **conn)

    return AtClient(connector)


async def bench_throughput(n: int) -> dict:
    sim = SimModem("bg96")
    client = _sim_client(sim, baud=BAUD)
    done = asyncio.Event()
    count = 0

    def replied() -> None:
        nonlocal count
        count += 1
        if count >= n:
            done.set()

    async with _echo_stack(client, replied) as stack:
        await stack.wait_ready(30)
        b_in, b_out = client.stats["bytes_in"], client.stats["bytes_out"]
        t0 = time.perf_counter()
        for i in range(n):
            sim.deliver(f"cmd {i:05d} status please")
        await stack.guard(asyncio.wait_for(done.wait(), 600))
        wall = time.perf_counter() - t0
    rx = client.stats["bytes_in"] - b_in
    tx = client.stats["bytes_out"] - b_out
    line_time = max(rx, tx) * 10 / BAUD
    return {
        "messages_per_s": round(n / wall, 1),
        "line_bytes_per_message": round((rx + tx) / n, 1),
        "messages": n,
        "wall_s": round(wall, 3),
        "bytes_module_to_host": rx,
        "bytes_host_to_module": tx,
        # for reference only: a share of the line rewards redundant traffic
        "line_time_s": round(line_time, 3),
        "line_utilisation_pct": round(100 * line_time / wall, 1),
        # AT is half duplex in practice (command, then answer): both directions in turn
        "half_duplex_utilisation_pct": round(100 * (rx + tx) * 10 / BAUD / wall, 1),
    }


async def bench_latency(n: int) -> dict:
    sim = SimModem("bg96")
    client = _sim_client(sim)
    cmti_at: list[float] = []
    cmgs_at: list[float] = []
    orig_dispatch = client._dispatch
    orig_write = client._write

    def dispatch(event):
        if isinstance(event, Urc) and event.name == "+CMTI":
            cmti_at.append(time.perf_counter())
        orig_dispatch(event)

    def write(data: bytes):
        if data.startswith(b"AT+CMGS="):
            cmgs_at.append(time.perf_counter())
        orig_write(data)

    client._dispatch = dispatch  # type: ignore[method-assign]
    client._write = write  # type: ignore[method-assign]
    replied = asyncio.Event()
    async with _echo_stack(client, replied.set) as stack:
        await stack.wait_ready(30)
        await asyncio.sleep(0.05)  # the start-up sweep is done
        cmti_at.clear()
        cmgs_at.clear()
        cpu0 = time.process_time()
        for i in range(n):
            replied.clear()
            sim.deliver(f"ping {i}")
            await stack.guard(asyncio.wait_for(replied.wait(), 10))
        cpu = time.process_time() - cpu0
    lat = [(b - a) * 1000 for a, b in zip(cmti_at, cmgs_at, strict=False)]
    return {
        "messages": n,
        "cmti_to_cmgs_median_ms": round(statistics.median(lat), 3),
        "cmti_to_cmgs_p99_ms": round(pct(lat, 99), 3),
        "cpu_ms_per_message": round(cpu * 1000 / n, 3),
    }


async def bench_idle(seconds: float) -> dict:
    sim = SimModem("bg96")

    async def sink(item):
        return None

    async with ModemStack(_sim_client(sim), consumer=sink) as stack:
        await stack.wait_ready(30)
        await asyncio.sleep(0.1)
        cpu0, t0 = time.process_time(), time.perf_counter()
        start = time.monotonic()
        await asyncio.sleep(seconds)
        # The window's own closing timer wakes the loop at its end (select() may
        # return a few microseconds early and wait once more): only wake-ups
        # before the last 10 ms count.
        wakeups = sum(1 for t in _CountingSelector.wakeups if start < t < start + seconds - 0.01)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    return {
        "seconds": round(wall, 2),
        "cpu_ms": round(cpu * 1000, 3),
        "cpu_pct": round(100 * cpu / wall, 4),
        "loop_wakeups": wakeups,
    }


async def _e2e(sim: SimModem, mo: _MoSignal, n: int, lost: list[int]) -> list[float]:
    """Deliver one message at a time; wait (5 s at most) for the echo to reach the sim."""
    lat = []
    for i in range(n):
        before = len(mo)
        t0 = time.perf_counter()
        sim.deliver(f"e2e {i}")
        if not await mo.wait_len(before + 1, 5.0):
            lost.append(i)
            continue
        lat.append((time.perf_counter() - t0) * 1000)
    return lat


@contextlib.asynccontextmanager
async def _ours_over_pty(sim: SimModem, link: str):
    """This project's stack with the echo consumer on ``link``; yields when ready."""
    async with _echo_stack(AtClient.from_url(link)) as stack:
        await stack.wait_ready(30)
        yield {}


@contextlib.asynccontextmanager
async def _gsmmodem_over_pty(sim: SimModem, link: str):
    """python-gsmmodem-new with the same echo on ``link``; yields its error counters."""
    from gsmmodem.modem import GsmModem

    info: dict = {"thread_exceptions": 0, "first_exception": None}
    old_hook = threading.excepthook

    def count_thread_error(exc_args) -> None:
        info["thread_exceptions"] += 1
        if info["first_exception"] is None:
            info["first_exception"] = f"{exc_args.exc_type.__name__}: {exc_args.exc_value}"[:160]

    holder: dict = {}

    def on_sms(sms):
        holder["modem"].sendSms("2936", sms.text)

    threading.excepthook = count_thread_error
    gm = GsmModem(link, 115200, smsReceivedCallbackFunc=on_sms)
    holder["modem"] = gm
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, gm.connect)
        await asyncio.sleep(0.2)
        yield info
    finally:
        with contextlib.suppress(Exception):
            await loop.run_in_executor(None, gm.close)
        threading.excepthook = old_hook


async def _burst(sim: SimModem, mo: _MoSignal, n: int, stall: float = 5.0) -> dict:
    """Deliver ``n`` messages at once; count echoes until all arrive or none for ``stall`` s."""
    before = len(mo)
    t0 = time.perf_counter()
    for i in range(n):
        sim.deliver(f"burst {i:03d} status please")
    last, last_t = 0, t0
    while True:
        progressed = await mo.wait_len(before + last + 1, stall)
        got = len(mo) - before
        now = time.perf_counter()
        if got != last:
            last, last_t = got, now
        if got >= n or not progressed:
            break
    # All answered: the window ends with the last echo. Some never answered: the
    # window ends when the client was given up on (``stall`` s without progress),
    # since the messages it lost are what its user sees.
    wall = (last_t if last >= n else now) - t0
    return {
        "replies": f"{last}/{n}",
        "wall_s": round(wall, 3),
        "replies_per_s": round(last / wall, 2) if wall > 0 else 0.0,
    }


async def bench_side_by_side(n: int, burst: int) -> dict:
    """Both clients over a real pty to the same simulated module, in one run.

    ``latency``: one message at a time, delivery to the echo reaching the module.
    ``throughput``: a burst of ``burst`` messages with 115200-baud pacing of the
    module's output, echoes per second until all are answered (or progress
    stops: a client that loses notifications never answers some).
    """
    from modem.sim.endpoints import PtyEndpoint

    out: dict = {}
    clients = {"modem (this project)": _ours_over_pty, "python-gsmmodem-new": _gsmmodem_over_pty}
    with tempfile.TemporaryDirectory() as tmp:
        for name, harness in clients.items():
            row: dict = {}
            for kind in ("latency", "throughput"):
                sim = SimModem("generic")
                mo = _watch_mo(sim)
                link = os.path.join(tmp, f"tty-{kind}")
                pty = PtyEndpoint(sim, link, baud=BAUD if kind == "throughput" else None)
                pty.start()
                try:
                    async with harness(sim, link) as info:
                        if kind == "latency":
                            cpu0, main0 = time.process_time(), time.thread_time()
                            w0 = time.perf_counter()
                            lost: list[int] = []
                            lat = await _e2e(sim, mo, n, lost)
                            cpu = time.process_time() - cpu0
                            # the main thread runs the loop, the simulator and the
                            # benchmark; a threaded client's own work is the rest
                            others = cpu - (time.thread_time() - main0)
                            row["sequential_replies_per_s"] = round(
                                len(lat) / (time.perf_counter() - w0), 1
                            )
                            row["median_ms"] = round(statistics.median(lat), 2) if lat else None
                            row["p99_ms"] = round(pct(lat, 99), 2) if lat else None
                            row["process_cpu_ms_per_message"] = round(cpu * 1000 / n, 3)
                            if info:  # python-gsmmodem: its threads only
                                row["client_threads_cpu_ms_per_message"] = round(
                                    others * 1000 / n, 3
                                )
                            row["replies"] = f"{len(lat)}/{n}"
                        else:
                            row["burst"] = await _burst(sim, mo, burst)
                        if info:
                            row.setdefault("thread_exceptions", 0)
                            row["thread_exceptions"] += info["thread_exceptions"]
                            if info["first_exception"]:
                                row["first_exception"] = info["first_exception"]
                except Exception as exc:  # a third-party client: report, do not crash the bench
                    row[f"{kind}_error"] = f"{type(exc).__name__}: {exc}"
                finally:
                    pty.close()
            out[name] = row
    a, b = out["modem (this project)"], out["python-gsmmodem-new"]
    for key, ours, theirs in (
        ("burst", a.get("burst", {}).get("replies_per_s"), b.get("burst", {}).get("replies_per_s")),
        ("sequential", a.get("sequential_replies_per_s"), b.get("sequential_replies_per_s")),
    ):
        if ours and theirs:
            out[f"{key}_throughput_ratio_ours_vs_gsmmodem"] = round(ours / theirs, 1)
    out["threads_left"] = threading.active_count()
    return out


async def main_async(args) -> dict:
    results = {}
    if "throughput" in args.only:
        results["throughput_115200"] = await bench_throughput(args.messages)
    if "latency" in args.only:
        results["latency_no_line_emulation"] = await bench_latency(args.messages)
    if "idle" in args.only:
        results["idle"] = await bench_idle(args.idle)
    if "gsmmodem" in args.only:
        results["side_by_side_pty"] = await bench_side_by_side(min(args.messages, 50), args.burst)
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=200)
    p.add_argument(
        "--idle", type=float, default=5.0, help="idle measurement seconds (60 documented)"
    )
    p.add_argument("--only", nargs="*", default=["throughput", "latency", "idle", "gsmmodem"])
    p.add_argument("--burst", type=int, default=20, help="messages in the pty throughput burst")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    # The line emulation delivers each chunk by a loop timer when its last byte
    # would have crossed the wire. epoll's timeout is in whole milliseconds
    # (rounded up), which would add up to 1 ms of artificial line time to every
    # command/answer turn; select() takes microseconds. A real UART wakes the
    # client through fd readiness, never a timer, so this loop measures the
    # client, not the emulator's timer granularity. No busy-waiting is involved.
    loop = asyncio.SelectorEventLoop(_CountingSelector())
    try:
        results = loop.run_until_complete(main_async(args))
    finally:
        loop.close()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for section, values in results.items():
            print(f"[{section}]")
            for k, v in values.items():
                print(f"  {k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
