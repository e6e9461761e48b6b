"""``run <script> [<arg>...]``: an allow-listed script through ``hal`` Scripts.

Signed. Idempotency is the script's own configuration
(``hal.scripts.NAME.idempotent``): crash recovery runs an idempotent script
again and answers ``interrupted`` for any other. Each argument must match
its configured pattern (``hal`` checks before anything runs). The reply is
``NAME exit=N`` and the first line of stdout (or of stderr on failure).
"""

from __future__ import annotations

from collections.abc import Mapping

from hal.errors import ScriptError

from ..grammar import ArgValue, Level, NameArg, TextArg
from ..reply import Field
from .context import ActionContext
from .registry import action

#: How many arguments a Command may pass to a script.
MAX_SCRIPT_ARGS = 6
#: The action's own bound; each script's ``timeout_s`` (at most 3600 s) ends it first.
RUN_TIMEOUT = 3600.0 + 70.0


def _idempotent(ctx: ActionContext, args: Mapping[str, ArgValue]) -> bool:
    try:
        return ctx.hal.scripts.info(str(args["script"])).idempotent
    except ScriptError:
        return False


@action(
    "run",
    args=(
        NameArg("script", "script"),
        *(TextArg(f"arg{i}", default="") for i in range(1, MAX_SCRIPT_ARGS + 1)),
    ),
    level=Level.SIGNED,
    idempotent=False,
    timeout=RUN_TIMEOUT,
    binary_id=8,
    help="run a configured script",
    idempotent_when=_idempotent,
)
async def run(ctx: ActionContext, script: str, **args: str) -> list[Field]:
    argv = [args[f"arg{i}"] for i in range(1, MAX_SCRIPT_ARGS + 1) if args.get(f"arg{i}")]
    return await run_script(ctx, script, argv)


async def run_script(ctx: ActionContext, script: str, argv: list[str]) -> list[Field]:
    """Run ``script`` with ``argv`` through ``hal`` Scripts: the reply fields
    (``NAME exit=N`` and the first line of stdout, or of stderr on failure)."""
    try:
        result = await ctx.hal.scripts.run(script, argv)
    except ScriptError as exc:
        return [Field(f"{script} {exc.kind.value}", 9), Field(exc.detail, 1)]
    stream = result.stdout if result.exit_code == 0 or not result.stderr else result.stderr
    lines = stream.decode("utf-8", "replace").strip().splitlines()
    out = [Field(f"{script} exit={result.exit_code}", 9)]
    if lines:
        out.append(Field(" ".join(lines[0].split()), 2))
    return out
