"""``gpio get|set|pulse``: configured lines only.

* ``gpio get <line>``: any configured line; allow-listed, idempotent.
* ``gpio set <line> <on|off>``: outputs only; signed, idempotent (setting
  the same value again is harmless). The desired value is recorded in the
  journal (``Journal.set_desired_output``, FULL) *before* the line is
  driven, so :func:`restore_outputs` re-applies it after a restart whatever
  moment the power went.
* ``gpio pulse <line> [<ms>]``: outputs only, active for ``ms`` (default
  500, at most the line's ``max_pulse_ms``), then inactive; signed, not
  idempotent (a crash mid-pulse is answered ``interrupted``).

Values are logical (1 = active, ``active_low`` applied by ``hal``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import hal

from ..grammar import BoolArg, IntArg, Level, NameArg
from .context import ActionContext
from .registry import action

#: The longest pulse the grammar accepts (hal's ``max_pulse_ms`` bounds each line).
MAX_PULSE_MS = 3_600_000


def _onoff(v: int) -> str:
    return "on" if v else "off"


@action(
    "gpio get",
    args=(NameArg("line", "gpio"),),
    level=Level.ALLOWLISTED,
    idempotent=True,
    timeout=5.0,
    binary_id=4,
    help="read a line",
)
async def gpio_get(ctx: ActionContext, line: str) -> str:
    return f"{line}={_onoff(await ctx.hal.gpio.read(line))}"


@action(
    "gpio set",
    args=(NameArg("line", "output"), BoolArg("value")),
    level=Level.SIGNED,
    idempotent=True,
    timeout=5.0,
    binary_id=5,
    help="set an output",
)
async def gpio_set(ctx: ActionContext, line: str, value: bool) -> str:
    await ctx.outputs.set_desired(line, int(value))
    await ctx.hal.gpio.write(line, int(value))
    return f"{line}={_onoff(await ctx.hal.gpio.read(line))}"


@action(
    "gpio pulse",
    args=(NameArg("line", "output"), IntArg("ms", 1, MAX_PULSE_MS, default=500)),
    level=Level.SIGNED,
    idempotent=False,
    timeout=MAX_PULSE_MS / 1000 + 10,
    binary_id=6,
    help="pulse an output",
)
async def gpio_pulse(ctx: ActionContext, line: str, ms: int = 500) -> str:
    await ctx.hal.gpio.pulse(line, ms)
    return f"{line} pulsed {ms}ms"


async def restore_outputs(
    device: hal.Hal, desired: Callable[[], Awaitable[dict[str, int]]]
) -> list[str]:
    """Re-apply the desired outputs at start-up; returns the names skipped
    (no longer configured outputs). ``desired`` reads them from the journal
    (``lambda: worker.call(Journal.desired_outputs)``)."""
    return await device.gpio.restore(await desired())
