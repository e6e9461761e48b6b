"""The @action decorator and the Registry."""

from __future__ import annotations

import sys
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# --- finding plugins without importlib.metadata ------------------------------------------
#
# may_offer_entry_points() only proves that no distribution declares the group, so
# the service can skip importlib.metadata (about 1.8 MB) on a device without plugins.
# importlib.metadata stays the authority: whenever it would find an entry point,
# the scan must say True.

GROUP = "sms_bridge.actions"


def _found_by_importlib(path):
    import importlib.metadata

    return [
        ep
        for d in importlib.metadata.distributions(path=path)
        for ep in d.entry_points
        if ep.group == GROUP
    ]


def _dist_info(site, text, name="lamp_plugin-1.0.dist-info"):
    info = site / name
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lamp-plugin\nVersion: 1.0\n")
    if text is not None:
        (info / "entry_points.txt").write_text(text)
    return info


_LINES = st.sampled_from(
    [
        f"[{GROUP}]",
        f"  [{GROUP}]  ",
        f"[[{GROUP}]]",
        f"[ {GROUP} ]",
        f"[{GROUP.upper()}]",
        "[console_scripts]",
        "[sms_bridge]",
        "lamp = lamp_plugin_actions",
        "one = lamp_plugin_actions:lamp",
        "# [sms_bridge.actions]",
        "",
        "   ",
    ]
)


@settings(max_examples=150)
@given(lines=st.lists(_LINES, max_size=6), newline=st.sampled_from(["\n", "\r\n"]))
def test_the_scan_never_misses_what_importlib_metadata_finds(lines, newline):
    import tempfile
    from pathlib import Path

    from bridge.actions.registry import may_offer_entry_points

    with tempfile.TemporaryDirectory() as t:
        site = Path(t)
        _dist_info(site, newline.join(lines))
        found = _found_by_importlib([str(site)])
        says = may_offer_entry_points(GROUP, [str(site)])
        assert says or not found, (lines, found)
        # and it is no blanket "maybe": without the section line it says no
        section = any(
            line.strip().startswith("[")
            and line.strip().endswith("]")
            and line.strip().strip("[]") == GROUP
            for line in lines
        )
        assert says == section


def test_the_scan_says_no_without_plugins_and_yes_with_one(tmp_path):
    from bridge.actions.registry import may_offer_entry_points

    empty = tmp_path / "empty"
    empty.mkdir()
    other = tmp_path / "other"
    _dist_info(other, "[console_scripts]\nlamp = lamp:main\n")
    _dist_info(other, None, name="bare-2.0.dist-info")  # no entry_points.txt at all
    (other / "odd.egg-info").write_text("Metadata-Version: 1.0\n")  # a file, not a directory
    missing = tmp_path / "not-there"
    for path in ([str(empty)], [str(other)], [str(missing)], []):
        assert may_offer_entry_points(GROUP, path) is False, path
        assert _found_by_importlib(path) == []
    plugin = tmp_path / "plugin"
    _dist_info(plugin, f"[{GROUP}]\nlamp = lamp_plugin_actions\n")
    assert may_offer_entry_points(GROUP, [str(empty), str(plugin)]) is True
    assert may_offer_entry_points("console_scripts", [str(other)]) is True


def test_the_scan_reads_egg_info_and_eggs(tmp_path):
    from bridge.actions.registry import may_offer_entry_points

    egg_info = tmp_path / "site"
    (egg_info / "lamp_plugin.egg-info").mkdir(parents=True)
    (egg_info / "lamp_plugin.egg-info" / "entry_points.txt").write_text(f"[{GROUP}]\nl = m\n")
    egg = tmp_path / "lamp_plugin-1.0-py3.11.egg"
    (egg / "EGG-INFO").mkdir(parents=True)
    (egg / "EGG-INFO" / "entry_points.txt").write_text(f"[{GROUP}]\nl = m\n")
    for path in ([str(egg_info)], [str(egg)]):
        assert len(_found_by_importlib(path)) == 1
        assert may_offer_entry_points(GROUP, path) is True


def test_the_scan_reads_a_zip_on_the_path(tmp_path):
    import zipfile

    from bridge.actions.registry import may_offer_entry_points

    with_plugin, without = tmp_path / "with.pyz", tmp_path / "without.pyz"
    with zipfile.ZipFile(with_plugin, "w") as z:
        z.writestr("__main__.py", "")
        z.writestr("lamp_plugin-1.0.dist-info/entry_points.txt", f"[{GROUP}]\nl = m\n")
    with zipfile.ZipFile(without, "w") as z:
        z.writestr("__main__.py", "")
        z.writestr("sms_command_bridge-0.1.0.dist-info/METADATA", "Name: sms-command-bridge\n")
        z.writestr("pyserial-3.5.dist-info/entry_points.txt", "[console_scripts]\nx = y\n")
    not_a_zip = tmp_path / "plain.txt"
    not_a_zip.write_text("hello")
    assert len(_found_by_importlib([str(with_plugin)])) == 1
    assert may_offer_entry_points(GROUP, [str(with_plugin)]) is True
    for path in (without, not_a_zip):
        assert _found_by_importlib([str(path)]) == []
        assert may_offer_entry_points(GROUP, [str(path)]) is False


def test_what_the_scan_cannot_judge_goes_to_importlib_metadata(tmp_path, monkeypatch):
    from bridge.actions.registry import may_offer_entry_points

    site = tmp_path / "site"
    (_dist_info(site, None) / "entry_points.txt").write_bytes(b"[\xff\xfe]\n")  # not UTF-8
    assert may_offer_entry_points(GROUP, [str(site)]) is True
    assert may_offer_entry_points(GROUP, [tmp_path]) is True  # not a string

    class Finder:  # a meta-path finder of its own that finds distributions
        @staticmethod
        def find_spec(*args):
            return None

        @staticmethod
        def find_distributions(*args, **kwargs):
            return iter(())

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Finder])
    assert may_offer_entry_points(GROUP, []) is True


async def test_a_plugin_inside_a_zip_on_the_path_is_loaded(tmp_path, monkeypatch):
    """The zipapp's case: the archive is a sys.path entry."""
    import zipfile

    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zip_plugin_actions.py", _PLUGIN)
        z.writestr(
            "zip_plugin-1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: zip-plugin\nVersion: 1.0\n",
        )
        z.writestr(
            "zip_plugin-1.0.dist-info/entry_points.txt", f"[{GROUP}]\nall = zip_plugin_actions\n"
        )
    monkeypatch.syspath_prepend(str(archive))
    monkeypatch.delitem(sys.modules, "zip_plugin_actions", raising=False)
    reg = Registry()
    assert [a.spec.verb for a in reg.add_entry_points()] == ["lamp", "relay"]
    assert await reg.get("lamp").fn(None) == "on"
