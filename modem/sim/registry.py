"""The simulated module's command table, filled by the handlers themselves.

Each command handler is a method of one spec part of :class:`~modem.sim.core.SimModem`
(V.250, TS 27.007, TS 27.005, text mode) and carries ``@handler("+CMGR", ...)``:
the decorator records it in :data:`HANDLERS` when its module is imported, so
the table is whatever the parts define and cannot drift from them. The flags
say what the dispatcher needs to know about a command:

* ``pin_free``: it works whatever the SIM's state (TS 27.007 §8.3: commands
  that need no SIM: V.250, the module's identity, +CFUN, +CSQ, ...);
* ``sms``: a TS 27.005 command, whose errors are ``+CMS ERROR`` (§3.2.5);
* ``message``: a TS 27.005 command that carries message data, whose
  parameter errors are 304 (PDU mode) or 305 (text mode).

Two keys stand for a family of names (:func:`command_key`): ``S<n>`` for the
S-parameters (V.250 §5.3.2, ``ATS3?``, ``ATS7=60``) and ``<ICCID>`` for the
profile's ICCID spellings (``Profile.iccid_commands``: ``+CCID``, ``+QCCID``,
``+CICCID``). docs/simulator.md lists every key; a test compares the two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["HANDLERS", "ICCID", "SREG", "CommandSpec", "command_key", "handler"]

#: The key of the S-parameter family (V.250 §5.3.2): ``S`` followed by digits.
SREG = "S<n>"
#: The key of the profile's ICCID commands (``Profile.iccid_commands``).
ICCID = "<ICCID>"

_F = TypeVar("_F", bound=Callable[..., None])


@dataclass(frozen=True)
class CommandSpec:
    """One registered command."""

    #: The key: an upper-case command name ("+CMGR", "&F", "E") or a family.
    name: str
    #: The handler, ``fn(modem, command)``; raises an error result or ValueError.
    fn: Callable[[Any, Any], None]
    #: Works in every SIM state (no SIM PIN check before it runs).
    pin_free: bool = False
    #: TS 27.005: errors are +CMS ERROR.
    sms: bool = False
    #: TS 27.005 message command: parameter errors are +CMS ERROR 304 / 305.
    message: bool = False

    @property
    def module(self) -> str:
        """The module that defines the handler ("modem.sim.ts27005")."""
        return str(self.fn.__module__)


#: Every command the module knows, by key (filled as the parts are imported).
HANDLERS: dict[str, CommandSpec] = {}


def handler(
    *names: str, pin_free: bool = False, sms: bool = False, message: bool = False
) -> Callable[[_F], _F]:
    """Register the decorated method as the handler of ``names``.

    A name registered twice is a RuntimeError at import: two parts must not
    both claim a command."""

    def register(fn: _F) -> _F:
        for name in names:
            if name in HANDLERS:
                other = HANDLERS[name].fn
                raise RuntimeError(
                    f"{name} registered twice: {other.__qualname__} and {fn.__qualname__}"
                )
            HANDLERS[name] = CommandSpec(
                name, fn, pin_free=pin_free, sms=sms or message, message=message
            )
        return fn

    return register


def command_key(name: str, iccid_commands: Iterable[str]) -> str:
    """The :data:`HANDLERS` key of the command ``name`` (upper case)."""
    if name.startswith("S") and name[1:].isdigit():
        return SREG
    if name in iccid_commands:
        return ICCID
    return name
