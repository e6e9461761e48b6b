"""The @action decorator and the Registry."""

from __future__ import annotations

import sys
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


def _install_plugin(tmp_path, monkeypatch, entry_points, module_text):
    """A real installed distribution on sys.path: dist-info and a module."""
    dist = tmp_path / "bench_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[sms_bridge.actions]\n" + entry_points)
    (tmp_path / "bench_plugin_actions.py").write_text(module_text)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "bench_plugin_actions", raising=False)


_PLUGIN = """
from bridge.actions.registry import action
from bridge.grammar import Level

@action("relay", level=Level.SIGNED)
async def relay(ctx):
    return "clicked"

@action("lamp", level=Level.OPEN, idempotent=True)
async def lamp(ctx):
    return "on"
"""


async def test_entry_points_add_actions_from_installed_packages(tmp_path, monkeypatch):
    _install_plugin(tmp_path, monkeypatch, "all = bench_plugin_actions\n", _PLUGIN)
    reg = Registry()
    added = reg.add_entry_points()
    assert [a.spec.verb for a in added] == ["lamp", "relay"]
    assert await reg.get("relay").fn(None) == "clicked"


def test_entry_point_naming_one_function_and_conflicts(tmp_path, monkeypatch):
    _install_plugin(
        tmp_path,
        monkeypatch,
        "all = bench_plugin_actions\none = bench_plugin_actions:lamp\n",
        _PLUGIN,
    )
    with pytest.raises(RegistryError, match=r"entry point 'one'.*'lamp' is registered twice"):
        Registry().add_entry_points()


def test_broken_entry_point_named(tmp_path, monkeypatch):
    _install_plugin(
        tmp_path, monkeypatch, "bad = bench_plugin_actions\n", "import nowhere_at_all\n"
    )
    with pytest.raises(RegistryError) as e:
        Registry().add_entry_points()
    assert "entry point 'bad' (bench_plugin_actions) of bench-plugin" in str(e.value)
    assert "ModuleNotFoundError" in str(e.value)
