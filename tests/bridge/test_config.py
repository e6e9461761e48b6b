"""The configuration: typed sections, errors named by key, the example file."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge import config
from bridge.config import Config, ConfigError, ModemConfig
from bridge.framing import Product, ProductSetting, SidPosition, frame
from bridge.grammar import Level
from bridge.service import check

EXAMPLE = Path(__file__).parents[2] / "docs" / "bridge.example.toml"


def test_empty_file_is_the_defaults():
    assert config.loads("") == Config()
    assert Config().bridge.journal == "/var/lib/sms-bridge/journal.db"


def test_example_parses_to_the_defaults():
    cfg = config.load(EXAMPLE)
    assert dataclasses.replace(cfg, modems=()) == Config()
    assert cfg.modems == (ModemConfig(port="/dev/ttyUSB2", name="modem0"),)


def _fields(cls):
    return [f.name for f in dataclasses.fields(cls)]


def test_example_has_every_key():
    doc = tomllib.loads(EXAMPLE.read_text())
    sections = {
        "bridge": config.BridgeSection,
        "twilio": config.TwilioSection,
        "security": config.SecuritySection,
        "budgets": config.BudgetsSection,
        "reports": config.ReportsSection,
        "status": config.StatusSection,
    }
    for name, cls in sections.items():
        assert set(doc[name]) == set(_fields(cls)), name
    assert set(doc["modem"][0]) == set(_fields(ModemConfig))
    assert set(doc) == {*sections, "modem", "hal", "actions"}
    assert {f.name for f in dataclasses.fields(Config)} == {*sections, "modems", "hal", "actions"}
    # [actions.VERB] is a table of the user's verbs: its keys are shown commented
    text = EXAMPLE.read_text()
    for key in _fields(config.ActionSection):
        assert f"\n# {key} = " in text, key


def test_full_configuration():
    cfg = config.loads(
        """
        [bridge]
        product = "auto"
        device_id = "bench-7"
        footer_markers = ["Sent from", "--"]
        [twilio]
        wireless_senders = ["2936", "+12025550100"]
        include_sid = ["end"]
        [security]
        key_file = "/etc/sms-bridge/keys.toml"
        bench_numbers = ["+447700900123"]
        answer_bench_directly = true
        max_age = 86400
        [security.levels]
        ping = "open"
        "gpio set" = "Allowlisted"
        [budgets]
        sender_per_day = 5
        [reports]
        status_every = 21600
        [[modem]]
        port = "socket://127.0.0.1:7000"
        product = "super-sim"
        [[modem]]
        port = "sim://bg96"
        name = "bench"
        pin = "1234"
        [hal.gpio.relay1]
        line = 17
        """
    )
    assert cfg.bridge.product is ProductSetting.AUTO
    assert cfg.security.levels == {"ping": Level.OPEN, "gpio set": Level.ALLOWLISTED}
    assert cfg.security.max_age == 86400.0
    assert cfg.twilio.include_sid == (SidPosition.END,)
    assert [m.name for m in cfg.modems] == ["modem0", "bench"]
    assert cfg.modems[0].product is ProductSetting.SUPER_SIM and cfg.modems[1].product is None
    assert cfg.hal == {"gpio": {"relay1": {"line": 17}}}
    # framing per module: its product, else the bridge's
    assert frame("000", "ping", cfg.framing(cfg.modems[0])).product is Product.SUPER_SIM
    with pytest.raises(ValueError):
        frame("2936", "ping", cfg.framing(cfg.modems[0]))
    f = frame("+447700900123", "ping", cfg.framing(cfg.modems[1]))
    assert f.reply_to == "+447700900123"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[bridge]\nprodcut = 'auto'", "bridge.prodcut: unknown key"),
        ("colour = 1", "colour: unknown key"),
        ("[bridge]\nproduct = 'wireless'", "bridge.product: 'wireless' is not one of"),
        ("[bridge]\nproduct = 3", "bridge.product: 3 is not one of"),
        ("[bridge]\nfooter_markers = ['']", "bridge.footer_markers: an empty marker"),
        ("[bridge]\nfooter_markers = [1]", "bridge.footer_markers[0]: must be a string"),
        ("bridge = 1", "bridge: must be a table, not an integer"),
        ("bridge = false", "bridge: must be a table, not a boolean"),
        ("[security]\nlevels = []", "security.levels: must be a table, not a list"),
        ("[twilio]\nwireless_senders = 'x'", "twilio.wireless_senders: must be a list"),
        ("[twilio]\nwireless_senders = ['29 36']", "twilio.wireless_senders[0]: '29 36'"),
        ("[twilio]\ninclude_sid = ['middle']", "twilio.include_sid[0]: 'middle' is not one"),
        ("[security]\nmax_age = -1", "security.max_age: -1 is not in 0..31622400"),
        ("[security]\nmax_age = true", "security.max_age: must be a number, not a boolean"),
        ("[security]\nreplay_window = 0", "security.replay_window: 0 is not in 1..4096"),
        ("[security]\nreplay_window = 1.5", "security.replay_window: must be an integer"),
        ("[security]\nanswer_bench_directly = 'yes'", "security.answer_bench_directly: must be"),
        ("[security.levels]\nGPIO = 'open'", "security.levels.GPIO: not a verb"),
        ("[security.levels]\nping = 'public'", "security.levels.ping: 'public' is not one of"),
        ("[budgets]\nsender_per_day = -1", "budgets.sender_per_day: -1 is not in"),
        ("[reports]\nstatus_every = 5", "reports.status_every: 0 (off) or at least 60"),
        ("[[modem]]\nbaud = 9600", "modem[0].port: is required"),
        ("[[modem]]\nport = '/dev/x'\n[[modem]]\nport = 7", "modem[1].port: must be a string"),
        ("[[modem]]\nport = 'COM3'", "modem[0].port: 'COM3' is not a device path"),
        ("[[modem]]\nport = 'rfc2217://h:1'", "modem[0].port: rfc2217:// is refused"),
        ("[[modem]]\nport = 'loop://'", "modem[0].port: loop:// is refused"),
        ("[[modem]]\nport = 'socket://host'", "modem[0].port: 'socket://host': want"),
        ("[[modem]]\nport = 'socket://host:99999'", "modem[0].port: 'socket://host:99999'"),
        ("[[modem]]\nport = 'socket://:7000'", "modem[0].port: 'socket://:7000'"),
        ("[[modem]]\nport = 'sim://'", "modem[0].port: 'sim://': sim:// needs a profile"),
        ("[[modem]]\nport = 'http://x'", "modem[0].port: 'http://x': unknown scheme 'http'"),
        ("[[modem]]\nport = '/dev/x'\npin = '12'", "modem[0].pin: a SIM PIN is 4 to 8 digits"),
        ("[[modem]]\nport = '/dev/x'\nbaud = 0", "modem[0].baud: 0 is not in 300..4000000"),
        ("[[modem]]\nport = '/dev/x'\nspeed = 1", "modem[0].speed: unknown key"),
        ("[[modem]]\nport = '/dev/x'\nproduct = 'x'", "modem[0].product: 'x' is not one of"),
        (
            "[[modem]]\nport = '/dev/a'\nname = 'm'\n[[modem]]\nport = '/dev/b'\nname = 'm'",
            "modem[1].name: 'm' is used by another",
        ),
        ("[modem]\nport = '/dev/x'", "modem: use [[modem]] sections"),
        ("hal = 1", "hal: must be a table"),
        ("[bridge\n", "not valid TOML"),
    ],
)
def test_errors_name_the_key(text, message):
    with pytest.raises(ConfigError) as e:
        config.loads(text)
    assert str(e.value).startswith(message), str(e.value)
    assert "\n" not in str(e.value)


def test_file_errors_name_the_file(tmp_path):
    p = tmp_path / "bridge.toml"
    p.write_text("[[modem]]\nport = 'loop://'\n")
    with pytest.raises(ConfigError) as e:
        config.load(p)
    assert str(e.value).startswith(f"{p}: modem[0].port: loop://")
    assert e.value.key == "modem[0].port"
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "absent.toml")


_value = st.recursive(
    st.one_of(st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_keys = st.sampled_from(["bridge", "twilio", "security", "budgets", "reports", "modem", "hal", "x"])


@given(st.dictionaries(_keys, _value, max_size=4))
def test_arbitrary_documents_parse_or_raise_config_error(doc):
    try:
        cfg = config.parse(doc)
    except ConfigError as e:
        assert str(e)
        return
    assert isinstance(cfg, Config)


@given(
    st.sampled_from(["bridge", "twilio", "security", "budgets", "reports"]),
    st.text(min_size=1, max_size=10),
    _value,
)
def test_arbitrary_key_in_a_section(section, key, value):
    try:
        config.parse({section: {key: value}})
    except ConfigError as e:
        assert e.key.startswith(section)


def test_reports_thresholds():
    cfg = config.loads(
        """
        [reports]
        events = true
        sensor_every = 30
        signal_lost_after = 0
        [reports.thresholds.water]
        above = 30
        hysteresis = 0.5
        [reports.thresholds.tank]
        below = 1.5
        """
    )
    r = cfg.reports
    assert r.sensor_every == 30 and r.signal_lost_after == 0
    assert r.thresholds == {
        "water": config.Threshold(above=30.0, hysteresis=0.5),
        "tank": config.Threshold(below=1.5),
    }


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("[reports.thresholds.water]\nhysteresis = 1", "reports.thresholds.water", "needs above"),
        (
            "[reports.thresholds.water]\nabove = 10\nbelow = 20",
            "reports.thresholds.water.below",
            "must be less than above",
        ),
        (
            "[reports.thresholds.water]\nabove = 10\nbelo = 2",
            "reports.thresholds.water.belo",
            "unknown",
        ),
        ("[reports.thresholds.water]\nabove = '10'", "reports.thresholds.water.above", "number"),
        (
            "[reports.thresholds.water]\nabove = 1\nhysteresis = -1",
            "reports.thresholds.water.hysteresis",
            "not in",
        ),
        ("[reports]\nsensor_every = 0", "reports.sensor_every", "not in 1..86400"),
        ("[reports]\nthresholds = 3", "reports.thresholds", "must be a table"),
    ],
)
def test_reports_threshold_errors_name_the_key(text, key, message):
    with pytest.raises(ConfigError) as e:
        config.loads(text)
    assert e.value.key == key and message in str(e.value)


def test_status_section_keys_and_their_errors():
    cfg = config.loads(
        '[status]\nsocket = "/tmp/s.sock"\nprometheus_textfile = "/tmp/b.prom"\n'
        "prometheus_every = 5\n"
    )
    assert cfg.status == config.StatusSection("/tmp/s.sock", "/tmp/b.prom", 5)
    assert config.loads('[status]\nsocket = ""').status.socket == ""
    for text, message in [
        ('socket = "run/s.sock"', "status.socket: 'run/s.sock' is not an absolute path"),
        ('prometheus_textfile = "x.prom"', "status.prometheus_textfile: 'x.prom' is not"),
        ('socket = "/' + "a" * 107 + '"', "status.socket: longer than the 107 bytes"),
        ("prometheus_every = 0", "status.prometheus_every"),
        ("sockets = 1", "status.sockets"),
    ]:
        with pytest.raises(ConfigError) as info:
            config.loads("[status]\n" + text)
        assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[modem]]\nport = 'socket://[::1'", "modem[0].port: 'socket://[::1': want"),
        ("[[modem]]\nport = 'socket://[::1]x:7'", "modem[0].port: 'socket://[::1]x:7': want"),
        ('[[modem]]\nport = "/dev/tty\\u0000USB2"', "modem[0].port: must not contain NUL"),
        ('[bridge]\njournal = "/tmp/j\\u0000.db"', "bridge.journal: must not contain NUL"),
        ('[security]\nkey_file = "/k\\u0000"', "security.key_file: must not contain NUL"),
        ('[status]\nsocket = "/run/s\\u0000"', "status.socket: must not contain NUL"),
        ('[status]\nprometheus_textfile = "/p\\u0000"', "status.prometheus_textfile: must not"),
        ('[bridge]\nfooter_markers = ["a\\u0000"]', "bridge.footer_markers[0]: must not contain"),
        (
            "[[modem]]\nport = '/dev/ttyUSB2'\n[[modem]]\nport = '/dev/ttyUSB2'",
            "modem[1].port: '/dev/ttyUSB2' is modem0's port too",
        ),
        (
            "[[modem]]\nport = '/dev/ttyUSB2'\n[[modem]]\nport = '/dev/../dev/ttyUSB2'",
            "modem[1].port: '/dev/../dev/ttyUSB2' is modem0's port too",
        ),
        (
            "[[modem]]\nport = 'socket://Host:7000'\nname = 'a'\n"
            "[[modem]]\nport = 'socket://host:7000'\nname = 'b'",
            "modem[1].port: 'socket://host:7000' is a's port too",
        ),
    ],
    ids=[
        "ipv6-unclosed",
        "ipv6-junk",
        "nul-port",
        "nul-journal",
        "nul-key-file",
        "nul-socket",
        "nul-textfile",
        "nul-footer",
        "same-device-twice",
        "same-device-by-another-spelling",
        "same-socket-twice",
    ],
)
def test_bad_ports_paths_and_duplicate_modules_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        config.loads(text)
    assert str(e.value).startswith(message), str(e.value)
    assert "\n" not in str(e.value)


def test_two_simulated_modules_of_one_profile_are_two_modules() -> None:
    cfg = config.loads("[[modem]]\nport = 'sim://bg96'\n[[modem]]\nport = 'sim://bg96'")
    assert [m.port for m in cfg.modems] == ["sim://bg96", "sim://bg96"]


@given(
    st.one_of(
        st.text(max_size=40),
        st.builds(
            str.__add__,
            st.sampled_from(["socket://", "sim://", "/dev/", "rfc2217://", "tcp://"]),
            st.text(alphabet="[]:.@?#%/0123456789abcdefhost\0 ", max_size=20),
        ),
    )
)
def test_arbitrary_port_is_a_port_or_config_error(url: str) -> None:
    try:
        port = config.check_port("modem[0].port", url)
    except ConfigError as e:
        assert e.key == "modem[0].port" and "\n" not in e.detail
        return
    assert port == url and "\0" not in port


def test_a_device_named_through_a_link_and_directly_is_one_module(tmp_path: Path) -> None:
    device = tmp_path / "ttyUSB2"
    device.touch()
    link = tmp_path / "by-id-usb-Quectel_BG96-if02"
    link.symlink_to(device)
    cfg = config.parse({"modem": [{"port": str(device)}, {"port": str(link), "name": "other"}]})
    with pytest.raises(ConfigError) as e:
        check(cfg)
    assert e.value.key == "modem[1].port"
    assert str(e.value) == (
        f"modem[1].port: {str(link)!r} is {device}, modem0's port too: one [[modem]] per module"
    )


@pytest.mark.parametrize(
    "text",
    [
        "[twilio]\nwireless_senders = []\n[[modem]]\nport = '/dev/x'",
        "[bridge]\nproduct = 'auto'\n[twilio]\nwireless_senders = []\n[[modem]]\nport = '/dev/x'",
        "[bridge]\nproduct = 'super-sim'\n[twilio]\nwireless_senders = []\n"
        "[[modem]]\nport = '/dev/x'\nproduct = 'programmable-wireless'",
    ],
    ids=["wireless", "auto", "one-wireless-module"],
)
def test_no_wireless_sender_for_a_wireless_module_is_an_error(text: str) -> None:
    # every Programmable Wireless Command would be refused as an unknown sender
    with pytest.raises(ConfigError) as e:
        config.loads(text)
    assert str(e.value) == (
        "twilio.wireless_senders: empty, so no Programmable Wireless Command would be "
        "accepted (leave the key out for 2936)"
    )


def test_no_wireless_sender_is_fine_for_super_sim_or_a_bench_number() -> None:
    cfg = config.loads(
        "[bridge]\nproduct = 'super-sim'\n[twilio]\nwireless_senders = []\n[[modem]]\nport = '/x'"
    )
    assert cfg.twilio.wireless_senders == ()
    cfg = config.loads(
        "[twilio]\nwireless_senders = []\n[security]\nbench_numbers = ['+447700900123']\n"
        "[[modem]]\nport = '/x'"
    )
    assert cfg.security.bench_numbers == ("+447700900123",)


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("[bridge]\njournal = 'journal.db'", "bridge.journal", "journal.db"),
        ("[bridge]\njournal = './var/j.db'", "bridge.journal", "./var/j.db"),
        ("[security]\nkey_file = 'keys.toml'", "security.key_file", "keys.toml"),
    ],
    ids=["journal", "journal-dot", "key-file"],
)
def test_a_relative_journal_or_key_file_is_an_error(text: str, key: str, value: str) -> None:
    # check-config resolves it in the operator's directory, the service under
    # systemd in /: another journal (its replay counters gone) or no key
    with pytest.raises(ConfigError) as e:
        config.loads(text + "\n[[modem]]\nport = '/dev/x'")
    assert str(e.value) == (
        f"{key}: {value!r} is not an absolute path (the service's working directory is not yours)"
    )


@pytest.mark.parametrize(
    "url", ["sim://bg96?unknown=1", "sim://BG96", "sim://bg96/x"], ids=["options", "upper", "path"]
)
def test_a_sim_url_with_a_profile_the_bridge_cannot_take_says_why(url: str) -> None:
    with pytest.raises(ConfigError) as e:
        config.check_port("--port", url)
    assert str(e.value) == (
        f"--port: {url!r}: sim:// takes a profile name only, lower-case, no options (sim://bg96)"
    )
