"""hal.config.parse: typed values, defaults, and every error naming its full key."""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.config import HalConfig, parse
from hal.errors import ConfigError

DOC = Path(__file__).resolve().parents[2] / "docs" / "hal.md"


def docs_example() -> str:
    """The first ```toml block of docs/hal.md: the documented example file."""
    m = re.search(r"```toml\n(.*?)```", DOC.read_text(), re.S)
    assert m, "docs/hal.md has no toml example"
    return m.group(1)


def test_docs_example_parses_with_every_section():
    cfg = parse(tomllib.loads(docs_example()))
    assert cfg.backend == "linux"
    assert set(cfg.gpio) == {"relay1", "door"}
    assert cfg.gpio["relay1"].line == "GPIO17" and cfg.gpio["relay1"].direction == "output"
    assert cfg.gpio["door"].line == 27 and cfg.gpio["door"].bias == "pull-up"
    assert cfg.gpio["door"].debounce_ms == 20
    assert {n: s.type for n, s in cfg.sensors.items()} == {
        "cpu": "thermal",
        "board": "hwmon",
        "water": "ds18b20",
        "tank": "file",
    }
    assert cfg.sensors["tank"].scale == Decimal("0.000805664")
    assert cfg.scripts["restart_vpn"].idempotent is True
    assert cfg.scripts["relay_cycle"].idempotent is False
    assert cfg.power.allow_reboot is True and cfg.power.allow_shutdown is False


def test_defaults():
    cfg = parse({})
    assert cfg == HalConfig()
    assert cfg.backend == "sim" and cfg.root == "/" and cfg.consumer == "sms-bridge"
    assert cfg.system.mounts == ("/",) and cfg.power.allow_reboot is False
    line = parse({"gpio": {"r": {"chip": "gpiochip0", "line": 5, "direction": "output"}}}).gpio["r"]
    assert (line.active_low, line.bias, line.initial, line.max_pulse_ms) == (
        False,
        "as-is",
        0,
        10000,
    )
    sc = parse({"scripts": {"s": {"command": ["/bin/true"]}}}).scripts["s"]
    assert (sc.timeout_s, sc.output_limit, sc.kill_grace_s, sc.idempotent, sc.args) == (
        10.0,
        4096,
        2.0,
        False,
        (),
    )


def test_script_patterns_compiled_and_min_args():
    sc = parse(
        {
            "scripts": {
                "s": {
                    "command": ["/bin/echo", "x"],
                    "args": ["[a-z]+", "[0-9]{1,3}"],
                    "min_args": 1,
                }
            }
        }
    ).scripts["s"]
    assert [p.pattern for p in sc.args] == ["[a-z]+", "[0-9]{1,3}"]
    assert sc.min_args == 1 and sc.command == ("/bin/echo", "x")


GPIO = {"chip": "gpiochip0", "line": "GPIO17", "direction": "output"}

BAD = [
    ({"backend": "windows"}, "hal.backend", "must be one of sim, linux"),
    ({"root": "relative"}, "hal.root", "absolute path"),
    ({"nonsense": 1}, "hal.nonsense", "unknown key"),
    (
        {"gpio": {"relay1": {**GPIO, "line": True}}},
        "hal.gpio.relay1.line",
        "line name or an offset",
    ),
    ({"gpio": {"relay1": {**GPIO, "line": -1}}}, "hal.gpio.relay1.line", "between 0 and 65535"),
    (
        {"gpio": {"relay1": {"chip": "gpiochip0", "direction": "output"}}},
        "hal.gpio.relay1.line",
        "is required",
    ),
    (
        {"gpio": {"relay1": {**GPIO, "direction": "sideways"}}},
        "hal.gpio.relay1.direction",
        "one of",
    ),
    ({"gpio": {"relay1": {**GPIO, "bias": "pull-sideways"}}}, "hal.gpio.relay1.bias", "one of"),
    (
        {"gpio": {"relay1": {**GPIO, "active_low": "yes"}}},
        "hal.gpio.relay1.active_low",
        "true or false",
    ),
    ({"gpio": {"relay1": {**GPIO, "chip": "../x"}}}, "hal.gpio.relay1.chip", "chip name"),
    (
        {"gpio": {"relay1": {**GPIO, "debounce_ms": 5}}},
        "hal.gpio.relay1.debounce_ms",
        "unknown key",
    ),
    ({"gpio": {"relay1": {**GPIO, "initial": 2}}}, "hal.gpio.relay1.initial", "between 0 and 1"),
    ({"gpio": {"relay1": {**GPIO, "colour": 1}}}, "hal.gpio.relay1.colour", "unknown key"),
    ({"gpio": {"-x": GPIO}}, "hal.gpio.-x", "a name is"),
    ({"gpio": {"a": GPIO, "b": GPIO}}, "hal.gpio.b.line", "also used by gpio.a"),
    ({"gpio": {"relay1": 5}}, "hal.gpio.relay1", "must be a table"),
    ({"sensors": {"t": {"type": "laser"}}}, "hal.sensors.t.type", "one of"),
    ({"sensors": {"t": {"type": "thermal"}}}, "hal.sensors.t.zone", "is required"),
    ({"sensors": {"t": {"type": "thermal", "zone": "cpu"}}}, "hal.sensors.t.zone", "thermal_zoneN"),
    (
        {"sensors": {"t": {"type": "thermal", "zone": 0, "unit": "K"}}},
        "hal.sensors.t.unit",
        "fixed",
    ),
    (
        {"sensors": {"t": {"type": "hwmon", "device": "x", "input": "temp1"}}},
        "hal.sensors.t.input",
        "hwmon input",
    ),
    (
        {"sensors": {"t": {"type": "hwmon", "device": "../x", "input": "temp1_input"}}},
        "hal.sensors.t.device",
        "hwmon name",
    ),
    (
        {"sensors": {"t": {"type": "ds18b20", "device": "28-xyz"}}},
        "hal.sensors.t.device",
        "1-Wire id",
    ),
    (
        {"sensors": {"t": {"type": "ds18b20", "device": "28-0000075e8a2b", "attribute": "x"}}},
        "hal.sensors.t.attribute",
        "one of",
    ),
    ({"sensors": {"t": {"type": "file", "path": "rel"}}}, "hal.sensors.t.path", "absolute path"),
    (
        {"sensors": {"t": {"type": "file", "path": "/x", "scale": "abc"}}},
        "hal.sensors.t.scale",
        "decimal number",
    ),
    (
        {"sensors": {"t": {"type": "file", "path": "/x", "scale": "NaN"}}},
        "hal.sensors.t.scale",
        "finite",
    ),
    (
        {"sensors": {"t": {"type": "thermal", "zone": 0, "timeout_s": 0}}},
        "hal.sensors.t.timeout_s",
        "more than 0",
    ),
    ({"system": {"mounts": ["data"]}}, "hal.system.mounts[0]", "absolute path"),
    ({"system": {"mounts": "/"}}, "hal.system.mounts", "list of strings"),
    ({"system": {"cpu_zone": "cpu"}}, "hal.system.cpu_zone", "thermal_zoneN"),
    ({"power": {"allow_reboot": 1}}, "hal.power.allow_reboot", "true or false"),
    ({"power": {"reboot": True}}, "hal.power.reboot", "unknown key"),
    ({"scripts": {"s": {}}}, "hal.scripts.s.command", "is required"),
    ({"scripts": {"s": {"command": ["restart.sh"]}}}, "hal.scripts.s.command[0]", "absolute path"),
    (
        {"scripts": {"s": {"command": ["/bin/true", 3]}}},
        "hal.scripts.s.command[1]",
        "must be a string",
    ),
    (
        {"scripts": {"s": {"command": ["/bin/true"], "args": ["("]}}},
        "hal.scripts.s.args[0]",
        "bad pattern",
    ),
    (
        {"scripts": {"s": {"command": ["/bin/true"], "args": ["a"], "min_args": 2}}},
        "hal.scripts.s.min_args",
        "between 0 and 1",
    ),
    (
        {"scripts": {"s": {"command": ["/bin/true"], "timeout_s": "10"}}},
        "hal.scripts.s.timeout_s",
        "number of seconds",
    ),
    (
        {"scripts": {"s": {"command": ["/bin/true"], "output_limit": -1}}},
        "hal.scripts.s.output_limit",
        "between",
    ),
    (
        {"scripts": {"s": {"command": ["/bin/true"], "env": {"1X": "v"}}}},
        "hal.scripts.s.env.1X",
        "environment variable",
    ),
    (
        {"scripts": {"s": {"command": ["/bin/true"], "idempotent": "no"}}},
        "hal.scripts.s.idempotent",
        "true or false",
    ),
    ({"sim": {"sensors": {"ghost": "1"}}}, "hal.sim.sensors.ghost", "names no sensor"),
    ({"sim": {"inputs": {"ghost": 1}}}, "hal.sim.inputs.ghost", "names no input"),
]


@pytest.mark.parametrize(("table", "key", "fragment"), BAD, ids=[b[1] for b in BAD])
def test_errors_name_the_full_key(table, key, fragment):
    with pytest.raises(ConfigError) as e:
        parse(table, where="hal")
    assert e.value.key == key
    assert fragment in e.value.message
    assert str(e.value) == f"{key}: {e.value.message}"
    assert "\n" not in str(e.value)


def test_without_where_keys_start_at_the_table():
    with pytest.raises(ConfigError) as e:
        parse({"gpio": {"relay1": {**GPIO, "line": True}}})
    assert e.value.key == "gpio.relay1.line"


def test_same_line_on_the_same_chip_named_two_ways_is_still_a_conflict():
    with pytest.raises(ConfigError, match=re.escape("gpio.b.line: is also used by gpio.a")):
        parse({"gpio": {"a": GPIO, "b": {**GPIO, "chip": "/dev/gpiochip0"}}})


toml_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 70000)
    | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
keys = st.sampled_from(
    ["backend", "root", "gpio", "sensors", "system", "power", "scripts", "sim", "consumer", "x"]
)


@given(st.dictionaries(keys, toml_values, max_size=4))
def test_arbitrary_tables_give_a_config_or_a_config_error(table):
    try:
        cfg = parse(table, where="hal")
    except ConfigError as e:
        assert e.key == "hal" or e.key.startswith("hal.")
    else:
        assert isinstance(cfg, HalConfig)


line_tables = st.fixed_dictionaries(
    {"chip": st.sampled_from(["gpiochip0", "gpiochip1", "/dev/gpiochip0", "bad/chip", ""])},
    optional={
        "line": st.one_of(st.integers(-2, 70000), st.text(max_size=6), st.booleans()),
        "direction": st.sampled_from(["input", "output", "in"]),
        "active_low": st.one_of(st.booleans(), st.integers(0, 1)),
        "bias": st.sampled_from(["as-is", "pull-up", "pull-down", "disabled", "up"]),
        "debounce_ms": st.integers(-1, 20000),
        "initial": st.integers(-1, 2),
    },
)


@given(st.dictionaries(st.sampled_from(["relay1", "door", "x-y", "-bad"]), line_tables, max_size=3))
def test_arbitrary_gpio_tables(gpio):
    try:
        cfg = parse({"gpio": gpio}, where="hal")
    except ConfigError as e:
        assert e.key.startswith("hal.gpio.")
    else:
        for name, line in cfg.gpio.items():
            assert line.key == f"hal.gpio.{name}"
            assert line.direction in ("input", "output")


@pytest.mark.parametrize(
    "pattern",
    ["x{99999999999}", "(" * 2000 + ")" * 2000],
    ids=["repetition-overflow", "nesting-too-deep"],
)
def test_a_pattern_re_cannot_compile_is_a_config_error(pattern):
    # re.compile raises OverflowError or RecursionError for these, not re.error
    with pytest.raises(ConfigError) as e:
        parse({"scripts": {"s": {"command": ["/bin/true"], "args": [pattern]}}}, where="hal")
    assert e.value.key == "hal.scripts.s.args[0]" and "bad pattern" in e.value.message


@pytest.mark.parametrize("zone", [-1, 10_000, 10**30])
def test_thermal_zone_number_out_of_range_says_so(zone):
    with pytest.raises(ConfigError) as e:
        parse({"sensors": {"t": {"type": "thermal", "zone": zone}}}, where="hal")
    assert e.value.key == "hal.sensors.t.zone"
    assert e.value.message == f"must be thermal_zoneN or N (0 to 9999), not {zone}"


@pytest.mark.parametrize("chip", ["/dev/", "/dev/../etc/passwd", "..", "."])
def test_chip_must_name_a_device_file(chip):
    with pytest.raises(ConfigError) as e:
        parse({"gpio": {"r": {**GPIO, "chip": chip}}}, where="hal")
    assert e.value.key == "hal.gpio.r.chip"


script_values = st.one_of(
    st.text(max_size=20),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(st.one_of(st.text(max_size=12), st.integers()), max_size=4),
    st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3),
)
script_tables = st.dictionaries(
    st.sampled_from(
        ["command", "args", "min_args", "timeout_s", "kill_grace_s", "output_limit", "env", "cwd"]
    ),
    script_values,
    max_size=5,
)


@given(script_tables, st.lists(st.text(max_size=30), max_size=3))
def test_arbitrary_script_tables_give_a_config_or_a_config_error(table, patterns):
    if "args" not in table:
        table = {**table, "args": patterns}  # regular expressions of every shape
    try:
        cfg = parse({"scripts": {"s": table}}, where="hal")
    except ConfigError as e:
        assert e.key.startswith("hal.scripts.s")
    else:
        assert cfg.scripts["s"].command[0].startswith("/")


sensor_tables = st.fixed_dictionaries(
    {"type": st.sampled_from(["thermal", "hwmon", "ds18b20", "file", "x"])},
    optional={
        "zone": st.one_of(st.integers(-(10**20), 10**20), st.text(max_size=16)),
        "device": st.text(max_size=20),
        "input": st.text(max_size=16),
        "path": st.text(max_size=16),
        "scale": st.one_of(st.text(max_size=24), st.integers(), st.floats()),
        "offset": st.one_of(st.text(max_size=24), st.integers(), st.floats()),
        "timeout_s": st.one_of(st.floats(), st.integers()),
        "unit": st.text(max_size=4),
    },
)


@given(sensor_tables)
def test_arbitrary_sensor_tables_give_a_config_or_a_config_error(table):
    try:
        cfg = parse({"sensors": {"s": table}}, where="hal")
    except ConfigError as e:
        assert e.key.startswith("hal.sensors.s")
    else:
        s = cfg.sensors["s"]
        assert s.scale.is_finite() and s.offset.is_finite() and 0 < s.timeout_s <= 60


def docs_key_table() -> list[tuple[str, str]]:
    """(key, default) of every row of the configuration table in docs/hal.md."""
    body = DOC.read_text().split("| key | default | meaning |")[1].split("\n\n")[0]
    rows = []
    for line in body.splitlines()[2:]:
        key, default = (c.strip() for c in line.strip().strip("|").split("|")[:2])
        keys = re.findall(r"`([^`]+)`", key)
        defaults = re.findall(r"`([^`]+)`", default) or [default]
        if keys[0].endswith(".scale"):  # "`sensors.NAME.scale` / `offset`"
            keys[1] = keys[0].rsplit(".", 1)[0] + "." + keys[1]
        rows += zip(
            keys, defaults if len(defaults) == len(keys) else defaults * len(keys), strict=True
        )
    return rows


# the smallest valid table each documented key can be left out of (or set in)
_BASE = {
    "gpio": {"chip": "gpiochip0", "line": 1, "direction": "output"},
    "gpio-input": {"chip": "gpiochip0", "line": 1, "direction": "input"},
    "thermal": {"type": "thermal", "zone": 0},
    "ds18b20": {"type": "ds18b20", "device": "28-0000075e8a2b"},
    "file": {"type": "file", "path": "/x"},
    "scripts": {"command": ["/bin/true"]},
}


def _where(key: str) -> tuple[dict, object]:
    """A config table without ``key``, and a function giving the parsed field."""
    parts = key.split(".")
    attr = parts[-1]
    if parts[0] == "gpio":
        base = _BASE["gpio-input" if attr == "debounce_ms" else "gpio"]
        return {"gpio": {"x": base}}, lambda c: getattr(c.gpio["x"], attr)
    if parts[0] == "sensors":
        kind = {"attribute": "ds18b20", "unit": "file", "scale": "file", "offset": "file"}
        base = _BASE[kind.get(attr, "thermal")]
        return {"sensors": {"x": base}}, lambda c: getattr(c.sensors["x"], attr)
    if parts[0] == "scripts":
        return {"scripts": {"x": _BASE["scripts"]}}, lambda c: getattr(c.scripts["x"], attr)
    if parts[0] in ("system", "power"):
        return {}, lambda c: getattr(getattr(c, parts[0]), attr)
    return {}, lambda c: getattr(c, attr)


def _plain(v: object) -> object:
    if isinstance(v, dict):
        return sorted(v.items())
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
    if isinstance(v, Decimal):
        return v.normalize()
    return v


DOC_KEYS = [(k, d) for k, d in docs_key_table() if not k.startswith("sim.") and "required" not in d]


@pytest.mark.parametrize(("key", "default"), DOC_KEYS, ids=[k for k, _ in DOC_KEYS])
def test_every_documented_default_is_the_parsed_default(key, default):
    table, get = _where(key)
    got = get(parse(table))
    if default == "len(args)":  # min_args: every argument required
        assert got == len(parse(table).scripts["x"].args)
        return
    literal = tomllib.loads(f"v = {default}")["v"]
    want = Decimal(str(literal)) if isinstance(got, Decimal) else literal
    assert _plain(got) == _plain(want), f"{key}: docs say {default}, parse gives {got!r}"
    # the key is accepted when given its documented default
    section = dict(table)
    parts = key.split(".")
    if parts[0] in ("gpio", "sensors", "scripts"):
        section[parts[0]] = {"x": {**next(iter(table[parts[0]].values())), parts[-1]: literal}}
    elif len(parts) == 2:
        section[parts[0]] = {parts[1]: literal}
    else:
        section[parts[0]] = literal
    assert _plain(get(parse(section))) == _plain(got)


def test_every_key_parse_accepts_is_documented():
    documented = {k for k, _ in docs_key_table()}
    example = tomllib.loads(docs_example())
    seen = set()
    for top, v in example.items():
        if top in ("gpio", "sensors", "scripts"):
            seen |= {f"{top}.NAME.{k}" for t in v.values() for k in t}
        elif isinstance(v, dict):
            seen |= {f"{top}.{k}" for k in v}
        else:
            seen.add(top)
    assert seen <= documented, seen - documented
