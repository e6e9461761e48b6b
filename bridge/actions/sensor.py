"""``sensor [name]``: one configured sensor, or all. Allow-listed, idempotent.

A failed read answers ``name=error(fault)`` (``hal`` never makes a value up).
"""

from __future__ import annotations

from hal.errors import SensorError

from ..grammar import Level, NameArg
from ..reply import Field
from .context import ActionContext
from .registry import action


@action(
    "sensor",
    args=(NameArg("name", "sensor", default=""),),
    level=Level.ALLOWLISTED,
    idempotent=True,
    timeout=10.0,
    binary_id=7,
    help="read one sensor or all",
)
async def sensor(ctx: ActionContext, name: str = "") -> list[Field]:
    names = [name] if name else list(ctx.hal.sensors.names())
    if not names:
        return [Field("no sensors configured", 9)]
    out = []
    for i, n in enumerate(names):
        try:
            r = await ctx.hal.sensors.read(n)
            text = f"{n}={r.value}{r.unit}"
        except SensorError as exc:
            text = f"{n}=error({exc.fault.value})"
        out.append(Field(text, 9 if name else len(names) - i))
    return out
