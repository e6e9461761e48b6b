"""``ping``: answers ``pong``. Open, idempotent."""

from __future__ import annotations

from ..grammar import Level
from .context import ActionContext
from .registry import action


@action("ping", level=Level.OPEN, idempotent=True, timeout=5.0, binary_id=1, help="answers pong")
async def ping(ctx: ActionContext) -> str:
    return "pong"
