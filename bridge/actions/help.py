"""``help``: the verbs this sender may use at its level (and no others). Open."""

from __future__ import annotations

from ..grammar import Level
from ..reply import Field
from .context import ActionContext
from .registry import action


@action(
    "help",
    level=Level.OPEN,
    idempotent=True,
    timeout=5.0,
    binary_id=10,
    help="the commands you may use",
)
async def help_(ctx: ActionContext) -> list[Field]:
    verbs = ctx.allowed_verbs()
    return [Field("commands: " + ", ".join(verbs) if verbs else "no commands", 1)]
