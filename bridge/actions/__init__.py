"""Device actions: the registry, the action context and the built-in actions.

:func:`builtins` returns a :class:`~bridge.actions.registry.Registry` with
every built-in (``ping``, ``status``, ``info``, ``gpio get|set|pulse``,
``sensor``, ``run``, ``reboot``, ``help``); the service adds third-party
actions to it with :meth:`~bridge.actions.registry.Registry.add_entry_points`.
"""

from __future__ import annotations

from types import ModuleType

from . import gpio, help, info, ping, reboot, run, sensor, status
from .registry import Registry


def builtin_modules() -> tuple[ModuleType, ...]:
    """The modules of the built-in actions, one verb family each."""
    return (ping, status, info, gpio, sensor, run, reboot, help)


def builtins() -> Registry:
    """A registry holding every built-in action."""
    reg = Registry()
    for m in builtin_modules():
        reg.add_module(m)
    return reg
