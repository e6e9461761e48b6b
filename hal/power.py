"""Reboot and shutdown through systemd (``systemctl reboot`` / ``systemctl poweroff``).

Why ``systemctl`` and not logind's D-Bus ``Reboot``/``PowerOff`` calls: the
same policy applies either way (as a non-root user ``systemctl`` asks
logind over D-Bus, and polkit decides), but ``systemctl`` needs no D-Bus
library, which ``hal`` cannot carry (standard library only, and it must run
from a zipapp). ``--no-ask-password`` keeps polkit from waiting for a
password nobody will type on an unattended device.

Nothing runs when a Command is accepted: :meth:`LinuxPower.request` checks
that the action is allowed by configuration and that systemd runs
(``/run/systemd/system`` exists, sd_booted(3)), and returns a
:class:`~hal.interfaces.PowerRequest`. The caller sends its reply, then
awaits ``request.run()``; a refusal (polkit, not root) is a
:class:`~hal.errors.PowerError` with the exit code and stderr of systemctl.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence

from .config import PowerConfig
from .errors import PowerError
from .interfaces import CommandResult, CommandRunner, PowerAction, PowerRequest

__all__ = [
    "SYSTEMCTL_VERB",
    "LinuxPower",
    "allowed_actions",
    "check_allowed",
    "run_command",
]

SYSTEMCTL_VERB: dict[PowerAction, str] = {"reboot": "reboot", "shutdown": "poweroff"}
_STDERR_LIMIT = 2000


def allowed_actions(config: PowerConfig) -> list[PowerAction]:
    """The actions ``[power]`` allows, in a fixed order."""
    out: list[PowerAction] = []
    if config.allow_reboot:
        out.append("reboot")
    if config.allow_shutdown:
        out.append("shutdown")
    return out


def check_allowed(config: PowerConfig, action: PowerAction) -> None:
    """Refuse an unknown action, or one ``[power]`` does not allow (both backends)."""
    if action not in SYSTEMCTL_VERB:
        raise PowerError(str(action), "unknown power action")
    if action not in allowed_actions(config):
        key = "allow_reboot" if action == "reboot" else "allow_shutdown"
        raise PowerError(action, f"not allowed by configuration (power.{key} = false)")


async def run_command(argv: Sequence[str], timeout_s: float) -> CommandResult:
    """Run ``argv`` (no shell), wait at most ``timeout_s``; kill it if it is late."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None  # communicate() waited for it
    return CommandResult(
        proc.returncode,
        out.decode("utf-8", "replace")[:_STDERR_LIMIT],
        err.decode("utf-8", "replace")[:_STDERR_LIMIT],
    )


class LinuxPower:
    """Power actions on a systemd host under ``root``; ``runner`` runs the command line."""

    def __init__(
        self, config: PowerConfig, root: str = "/", *, runner: CommandRunner = run_command
    ) -> None:
        self._cfg = config
        self._root = root
        self._runner = runner

    def allowed(self) -> Sequence[PowerAction]:
        return allowed_actions(self._cfg)

    def command(self, action: PowerAction) -> tuple[str, ...]:
        """The command line that would run."""
        return (self._cfg.systemctl, "--no-ask-password", SYSTEMCTL_VERB[action])

    def systemd_running(self) -> bool:
        return os.path.isdir(os.path.join(self._root, "run/systemd/system"))

    def request(self, action: PowerAction) -> PowerRequest:
        check_allowed(self._cfg, action)
        if not self.systemd_running():
            raise PowerError(action, "systemd is not running here (/run/systemd/system is absent)")
        argv = self.command(action)

        async def run() -> None:
            try:
                res = await self._runner(argv, self._cfg.timeout_s)
            except FileNotFoundError:
                raise PowerError(action, f"{argv[0]} not found") from None
            except TimeoutError:
                raise PowerError(
                    action, f"{argv[0]} did not return in {self._cfg.timeout_s:g} s"
                ) from None
            except OSError as exc:
                raise PowerError(action, f"{argv[0]} could not run: {exc.strerror}") from None
            if res.returncode != 0:
                detail = res.stderr.strip().splitlines()
                raise PowerError(
                    action,
                    f"{' '.join(argv)} exited with {res.returncode}"
                    + (f": {detail[-1]}" if detail else ""),
                    returncode=res.returncode,
                    stderr=res.stderr,
                )

        return PowerRequest(action, argv, run)
