#!/usr/bin/env python3
"""Benchmark the modem layer with an echo consumer against the simulated module.

The consumer receives a Command and replies to 2936 with the same text.

1. ``throughput``: N messages through the in-process transport with 115200-baud
   line emulation; the bytes exchanged need a known line time (10 bits a byte);
   reported as % of the wall time the line allows (100% = the line is the limit).
2. ``latency``: no line emulation, one message at a time; from the ``+CMTI``
   bytes arriving at the client to the reply's ``AT+CMGS`` leaving it
   (median, p99) and CPU time per message (process time, includes the
   simulator, which runs in the same process).
3. ``idle``: CPU time of a started, idle client + session + SMS service over
   ``--idle`` seconds (default 5; use 60 for the documented figure).
4. ``gsmmodem``: the same echo with python-gsmmodem-new (threads, blocking
   pyserial) against the same simulator over a pty; end-to-end latency from
   delivery to the reply reaching the simulator, for both clients, same run.

Usage: ``python tools/bench_modem.py [--messages 200] [--idle 5] [--json]``.
Numbers are for comparison on one machine, never assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time

from modem.client import AtClient
from modem.protocol import Urc
from modem.session import Session
from modem.sim import SimModem, create_sim_connection
from modem.sms import ReceivedMessage, SmsService

BAUD = 115200


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[k]


async def _stack(sim: SimModem, **conn):
    async def connector(factory):
        return await create_sim_connection(factory, sim, **conn)

    client = AtClient(connector)
    session = Session(client)
    return client, session


async def bench_throughput(n: int) -> dict:
    sim = SimModem("bg96")
    client, session = await _stack(sim, baud=BAUD)
    await client.connect()
    done = asyncio.Event()
    count = 0
    service: SmsService

    async def echo(item):
        nonlocal count
        if isinstance(item, ReceivedMessage):
            await service.send("2936", item.text or "")
            count += 1
            if count >= n:
                done.set()

    service = SmsService(session, echo)
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(session.run()), tg.create_task(service.run())]
        await session.ready.wait()
        b_in, b_out = client.stats["bytes_in"], client.stats["bytes_out"]
        t0 = time.perf_counter()
        for i in range(n):
            sim.deliver(f"cmd {i:05d} status please")
        await asyncio.wait_for(done.wait(), 600)
        wall = time.perf_counter() - t0
        for t in tasks:
            t.cancel()
    service.close()
    session.close()
    await client.close()
    rx = client.stats["bytes_in"] - b_in
    tx = client.stats["bytes_out"] - b_out
    line_time = max(rx, tx) * 10 / BAUD
    return {
        "messages": n,
        "wall_s": round(wall, 3),
        "bytes_module_to_host": rx,
        "bytes_host_to_module": tx,
        "line_time_s": round(line_time, 3),
        "line_utilisation_pct": round(100 * line_time / wall, 1),
        # AT is half duplex in practice (command, then answer): both directions in turn
        "half_duplex_line_time_s": round((rx + tx) * 10 / BAUD, 3),
        "half_duplex_utilisation_pct": round(100 * (rx + tx) * 10 / BAUD / wall, 1),
        "messages_per_s": round(n / wall, 1),
    }


async def bench_latency(n: int) -> dict:
    sim = SimModem("bg96")
    client, session = await _stack(sim)
    await client.connect()
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
    service: SmsService

    async def echo(item):
        if isinstance(item, ReceivedMessage):
            await service.send("2936", item.text or "")
            replied.set()

    service = SmsService(session, echo)
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(session.run()), tg.create_task(service.run())]
        await session.ready.wait()
        await asyncio.sleep(0.05)
        cmti_at.clear()
        cmgs_at.clear()
        cpu0 = time.process_time()
        for i in range(n):
            replied.clear()
            sim.deliver(f"ping {i}")
            await asyncio.wait_for(replied.wait(), 10)
        cpu = time.process_time() - cpu0
        for t in tasks:
            t.cancel()
    service.close()
    session.close()
    await client.close()
    lat = [(b - a) * 1000 for a, b in zip(cmti_at, cmgs_at, strict=False)]
    return {
        "messages": n,
        "cmti_to_cmgs_median_ms": round(statistics.median(lat), 3),
        "cmti_to_cmgs_p99_ms": round(pct(lat, 99), 3),
        "cpu_ms_per_message": round(cpu * 1000 / n, 3),
    }


async def bench_idle(seconds: float) -> dict:
    sim = SimModem("bg96")
    client, session = await _stack(sim)
    await client.connect()

    async def sink(item):
        return None

    service = SmsService(session, sink)
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(session.run()), tg.create_task(service.run())]
        await session.ready.wait()
        await asyncio.sleep(0.1)
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        for t in tasks:
            t.cancel()
    service.close()
    session.close()
    await client.close()
    return {
        "seconds": round(wall, 2),
        "cpu_ms": round(cpu * 1000, 3),
        "cpu_pct": round(100 * cpu / wall, 4),
    }


async def _e2e(sim: SimModem, n: int, reply_seen, lost: list[int]) -> list[float]:
    """Deliver one message at a time; wait (5 s at most) for the echo to reach the sim."""
    lat = []
    for i in range(n):
        before = len(sim.mo_log)
        t0 = time.perf_counter()
        sim.deliver(f"e2e {i}")
        try:
            async with asyncio.timeout(5):
                while len(sim.mo_log) <= before:
                    await reply_seen()
        except TimeoutError:
            lost.append(i)
            continue
        lat.append((time.perf_counter() - t0) * 1000)
    return lat


async def bench_side_by_side(n: int) -> dict:
    from modem.sim.endpoints import PtyEndpoint

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        # ours over the pty
        sim = SimModem("generic")
        link = os.path.join(tmp, "ttySIMa")
        pty = PtyEndpoint(sim, link)
        pty.start()
        client = AtClient.from_url(link)
        await client.connect()
        session = Session(client)
        service: SmsService

        async def echo(item):
            if isinstance(item, ReceivedMessage):
                await service.send("2936", item.text or "")

        service = SmsService(session, echo)
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(session.run()), tg.create_task(service.run())]
            await session.ready.wait()
            cpu0 = time.process_time()
            lost: list[int] = []
            lat = await _e2e(sim, n, lambda: asyncio.sleep(0.0005), lost)
            cpu = time.process_time() - cpu0
            for t in tasks:
                t.cancel()
        service.close()
        session.close()
        await client.close()
        pty.close()
        out["modem (this project)"] = {
            "median_ms": round(statistics.median(lat), 2),
            "p99_ms": round(pct(lat, 99), 2),
            "cpu_ms_per_message": round(cpu * 1000 / n, 3),
            "replies": f"{len(lat)}/{n}",
        }

        # python-gsmmodem-new over a pty to the same kind of simulated module
        try:
            from gsmmodem.modem import GsmModem
        except ImportError:  # pragma: no cover
            out["python-gsmmodem-new"] = {"error": "not installed"}
            return out
        sim2 = SimModem("generic")
        link2 = os.path.join(tmp, "ttySIMb")
        pty2 = PtyEndpoint(sim2, link2)
        pty2.start()
        holder: dict = {}
        thread_errors: list[str] = []
        old_hook = threading.excepthook

        def count_thread_error(exc_args) -> None:
            thread_errors.append(f"{exc_args.exc_type.__name__}: {exc_args.exc_value}"[:160])

        threading.excepthook = count_thread_error

        def on_sms(sms):
            holder["modem"].sendSms("2936", sms.text)

        gm = GsmModem(link2, 115200, smsReceivedCallbackFunc=on_sms)
        holder["modem"] = gm
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, gm.connect)
            await asyncio.sleep(0.2)
            cpu0 = time.process_time()
            lost2: list[int] = []
            lat2 = await _e2e(sim2, n, lambda: asyncio.sleep(0.0005), lost2)
            cpu2 = time.process_time() - cpu0
            out["python-gsmmodem-new"] = {
                "median_ms": round(statistics.median(lat2), 2) if lat2 else None,
                "p99_ms": round(pct(lat2, 99), 2) if lat2 else None,
                "cpu_ms_per_message": round(cpu2 * 1000 / n, 3),
                "replies": f"{len(lat2)}/{n}",
                "first_lost": lost2[:5],
            }
        except Exception as exc:  # a third-party client: report, do not crash the bench
            out["python-gsmmodem-new"] = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            with contextlib.suppress(Exception):
                await loop.run_in_executor(None, gm.close)
            pty2.close()
            threading.excepthook = old_hook
        out["python-gsmmodem-new"]["thread_exceptions"] = len(thread_errors)
        if thread_errors:
            out["python-gsmmodem-new"]["first_exception"] = thread_errors[0]
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
        results["side_by_side_pty_end_to_end"] = await bench_side_by_side(min(args.messages, 50))
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=200)
    p.add_argument(
        "--idle", type=float, default=5.0, help="idle measurement seconds (60 documented)"
    )
    p.add_argument("--only", nargs="*", default=["throughput", "latency", "idle", "gsmmodem"])
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    results = asyncio.run(main_async(args))
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
