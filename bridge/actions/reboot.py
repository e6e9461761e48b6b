"""``reboot``: the reply goes out first, the reboot after it is confirmed sent.

Signed, not idempotent (a crash while it is executing is answered
``interrupted``; it never runs twice). The action only checks that the
configuration allows a reboot (``hal`` Power ``allowed()``; refused: an
error reply) and returns a deferred effect; the outbox runs the effect --
``power.request("reboot")`` then ``run()`` -- only after ``mark_sent``
recorded the reply's TP-MR. A reply that cannot be sent cancels the reboot.
A request the system refuses then (systemd not running, polkit) is logged
and counted (``effects_failed``): the reply has already gone.
"""

from __future__ import annotations

from hal.errors import PowerError

from ..grammar import Level
from ..reply import Field
from .context import ActionContext, ActionResult
from .registry import action


@action("reboot", level=Level.SIGNED, idempotent=False, timeout=10.0, binary_id=9, help="reboot")
async def reboot(ctx: ActionContext) -> ActionResult:
    power = ctx.hal.power
    if "reboot" not in power.allowed():
        raise PowerError("reboot", "not allowed by configuration (power.allow_reboot = false)")

    async def reboot_now() -> None:
        await power.request("reboot").run()

    return ActionResult((Field("rebooting", 9),), effect=reboot_now)
