"""``info``: IMEI, ICCID, model, firmware and versions. Open, idempotent.

Module figures come from the :class:`~bridge.actions.context.ModemStatus`
of the module the Command came in on (TS 27.007 §5.1-5.4 ``+CGMI``,
``+CGMM``, ``+CGMR``, ``+CGSN``); the OS and kernel from ``hal`` System.
"""

from __future__ import annotations

import logging

from ..grammar import Level
from ..reply import Field
from .context import ActionContext, ModemIdentity
from .registry import action

log = logging.getLogger("bridge.actions")


@action("info", level=Level.OPEN, idempotent=True, timeout=10.0, binary_id=3, help="identities")
async def info(ctx: ActionContext) -> list[Field]:
    import platform  # noqa: PLC0415  (here: the service needs it only when asked for info)

    ident = ModemIdentity()
    if ctx.modem is not None:
        try:
            ident = await ctx.modem.identity()
        except Exception as exc:  # the module is busy or gone: answer what we have
            log.warning("info: modem identity unavailable: %s", type(exc).__name__)
    fields = [
        Field(f"imei={ident.imei or '?'}", 9),
        Field(f"iccid={ident.iccid or '?'}", 9),
        Field(f"model={' '.join(x for x in (ident.manufacturer, ident.model) if x) or '?'}", 7),
        Field(f"fw={ident.firmware or '?'}", 6),
        Field(f"bridge={ctx.version or '?'}", 5),
        Field(f"python={platform.python_version()}", 2),
    ]
    try:
        snap = await ctx.hal.system.snapshot()
        if snap.os is not None:
            fields.append(Field(f"os={snap.os.id} {snap.os.version_id}".rstrip(), 3))
            fields.append(Field(f"kernel={snap.os.kernel}", 1))
    except Exception as exc:
        log.warning("info: system snapshot unavailable: %s", type(exc).__name__)
    return fields
