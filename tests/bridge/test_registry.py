"""The @action decorator and the Registry."""

from __future__ import annotations

import types

import pytest

from bridge import grammar
from bridge.actions.registry import ATTRIBUTE, Action, Registry, RegistryError, action
from bridge.grammar import BoolArg, Level, NameArg


@action(
    "gpio set",
    args=(NameArg("line", "gpio"), BoolArg("value")),
    level=Level.SIGNED,
    idempotent=True,
    timeout=5.0,
    binary_id=3,
)
async def gpio_set(ctx, line, value):
    return f"{line}={'on' if value else 'off'}"


@action("ping", level=Level.OPEN, idempotent=True, binary_id=1, help="answers pong")
async def ping(ctx):
    return "pong"


async def test_decorator_attaches_spec_and_keeps_the_function():
    act = getattr(gpio_set, ATTRIBUTE)
    assert isinstance(act, Action) and act.fn is gpio_set
    assert act.spec.verb == "gpio set"
    assert (act.spec.level, act.spec.idempotent, act.spec.timeout) == (Level.SIGNED, True, 5.0)
    assert await gpio_set(None, "relay1", True) == "relay1=on"


async def test_registry_feeds_the_parser_and_runs_the_action():
    reg = Registry([gpio_set, ping])
    (cmd,) = grammar.parse("GPIO SET relay1 off", reg.specs, {"gpio": frozenset({"relay1"})})
    act = reg.get(cmd.verb)
    assert act is not None
    assert await act.fn(None, **cmd.args) == "relay1=off"
    assert reg.by_binary_id(1) is getattr(ping, ATTRIBUTE)


def test_defaults_are_the_safe_ones():
    @action("reboot")
    async def reboot(ctx):
        return None

    spec = getattr(reboot, ATTRIBUTE).spec
    assert (spec.level, spec.idempotent) == (Level.SIGNED, False)


def test_help_lists_only_what_the_level_allows():
    reg = Registry([gpio_set, ping])
    assert [s.verb for s in reg.allowed(Level.OPEN)] == ["ping"]
    assert [s.verb for s in reg.allowed(Level.SIGNED)] == ["gpio set", "ping"]


def test_declaration_errors():
    with pytest.raises(RegistryError, match="not an async function"):

        @action("x")
        def sync(ctx):
            return None

    with pytest.raises(RegistryError, match="no parameter for argument 'line'"):

        @action("y", args=(NameArg("line", "gpio"),))
        async def wrong(ctx):
            return None

    with pytest.raises(RegistryError, match="twice"):
        Registry([ping, ping])

    @action("pong", binary_id=1)
    async def pong(ctx):
        return None

    with pytest.raises(RegistryError, match="binary id 1"):
        Registry([ping, pong])
    with pytest.raises(RegistryError, match="not decorated"):
        Registry([lambda ctx: None])


def test_add_module_collects_decorated_functions():
    mod = types.ModuleType("plugin")
    mod.ping = ping
    mod.gpio_set = gpio_set
    mod.other = lambda: None
    reg = Registry()
    assert [a.spec.verb for a in reg.add_module(mod)] == ["gpio set", "ping"]
    assert len(reg) == 2
