"""``status``: uptime, signal, registration, operator, temperature, load,
memory, disk and the bridge's counters. Open, idempotent.

Radio figures come from the :class:`~bridge.actions.context.ModemStatus` of
the module the Command came in on (TS 27.007 §8.5 ``+CSQ``, §7.2
``+CREG``/``+CEREG``, §7.3 ``+COPS``); the rest from ``hal`` System. A part
that cannot be read is left out; the fields are ordered so that the SMS
keeps the most useful ones when it is full (uptime, signal, registration
first; interfaces last).
"""

from __future__ import annotations

import logging
from decimal import Decimal

from ..grammar import Level
from ..reply import Field
from .context import ActionContext, ModemFigures
from .registry import action

log = logging.getLogger("bridge.actions")


def _duration(seconds: float | Decimal) -> str:
    s = int(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, _ = divmod(s, 60)
    return f"{d}d{h}h" if d else f"{h}h{m}m"


def _size(n: int) -> str:
    for unit in ("B", "K", "M", "G"):
        if n < 1024 or unit == "G":
            return f"{n}{unit}" if unit == "B" else f"{n:.0f}{unit}"
        n //= 1024
    return f"{n}G"  # pragma: no cover


@action("status", level=Level.OPEN, idempotent=True, timeout=15.0, binary_id=2, help="health")
async def status(ctx: ActionContext) -> list[Field]:
    fig = ModemFigures()
    if ctx.modem is not None:
        try:
            fig = await ctx.modem.figures()
        except Exception as exc:
            log.warning("status: modem figures unavailable: %s", type(exc).__name__)
    out = [Field(f"up={_duration(ctx.uptime)}", 10)]
    if fig.rssi_dbm is not None:
        out.append(Field(f"sig={fig.rssi_dbm}dBm", 9))
    if fig.registration is not None:
        out.append(Field(f"reg={fig.registration}", 9))
    if fig.operator is not None:
        op = fig.operator + (f"/{fig.access}" if fig.access else "")
        out.append(Field(f"op={op}", 6))
    try:
        snap = await ctx.hal.system.snapshot()
    except Exception as exc:
        log.warning("status: system snapshot unavailable: %s", type(exc).__name__)
        snap = None
    if snap is not None:
        if snap.uptime_s is not None:
            out.append(Field(f"sys={_duration(snap.uptime_s)}", 5))
        if snap.cpu_temp_c is not None:
            out.append(Field(f"temp={snap.cpu_temp_c.quantize(Decimal('0.1'))}C", 7))
        if snap.load is not None:
            out.append(Field(f"load={snap.load[0]}", 6))
        if snap.mem_total_bytes and snap.mem_available_bytes is not None:
            out.append(
                Field(f"mem={_size(snap.mem_available_bytes)}/{_size(snap.mem_total_bytes)}", 4)
            )
        for d in snap.disks:
            out.append(Field(f"disk{d.mount}={_size(d.available_bytes)}", 3))
    c = ctx.counters
    out.append(
        Field(f"rx={c['received']} run={c['executed']} tx={c['sent']} rej={c['rejected']}", 2)
    )
    return out
