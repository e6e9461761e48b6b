"""Actions a configuration file adds: ``[actions.VERB]`` runs one allow-listed script.

A verb of its own (``backup``, ``modem reset``) instead of ``run backup``, so
that its security level, help and binary id are set per verb, as router
vendors' SMS rules allow ("custom script"). Everything about the program
itself stays in ``[hal.scripts.NAME]``: the command line, each argument's
pattern (checked before anything runs), the timeout and whether it is
idempotent (crash recovery runs an idempotent script again and answers
``interrupted`` for any other)::

    [actions.backup]
    script = "backup"      # a script of [hal.scripts]
    level = "signed"       # open | allowlisted | signed
    args = 1               # arguments a Command may pass (0-6)
    help = "back up the logger now"
"""

from __future__ import annotations

from collections.abc import Mapping

from hal.errors import ScriptError

from ..config import ActionSection
from ..grammar import ArgValue, TextArg, VerbSpec
from ..reply import Field
from .context import ActionContext
from .registry import Action
from .run import RUN_TIMEOUT, run_script

__all__ = ["configured"]


def configured(verb: str, section: ActionSection) -> Action:
    """The :class:`Action` of one ``[actions.VERB]`` section."""
    script = section.script
    names = [f"arg{i}" for i in range(1, section.args + 1)]
    spec = VerbSpec(
        verb,
        tuple(TextArg(n, default="") for n in names),
        level=section.level,
        idempotent=False,
        timeout=RUN_TIMEOUT,
        binary_id=section.binary_id,
        help=section.help or f"run the script {script}",
    )

    async def fn(ctx: ActionContext, **args: str) -> list[Field]:
        return await run_script(ctx, script, [args[n] for n in names if args.get(n)])

    def idempotent(ctx: ActionContext, args: Mapping[str, ArgValue]) -> bool:
        try:
            return ctx.hal.scripts.info(script).idempotent
        except ScriptError:
            return False

    return Action(spec, fn, idempotent)
