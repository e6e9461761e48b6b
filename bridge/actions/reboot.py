"""``reboot``: the reply goes out first, the reboot after it is confirmed sent.

Signed, not idempotent (a crash while it is executing is answered
``interrupted``; it never runs twice). The power request is checked now
(``hal`` Power: allowed by configuration, systemd running) and returned as a
deferred effect: the outbox runs it only after ``mark_sent`` recorded the
reply's TP-MR. A reply that cannot be sent cancels the reboot.
"""

from __future__ import annotations

from ..grammar import Level
from ..reply import Field
from .context import ActionContext, ActionResult
from .registry import action


@action("reboot", level=Level.SIGNED, idempotent=False, timeout=10.0, binary_id=9, help="reboot")
async def reboot(ctx: ActionContext) -> ActionResult:
    request = ctx.hal.power.request("reboot")  # PowerError when not allowed: error reply
    return ActionResult((Field("rebooting", 9),), effect=request.run)
