"""``python -m hal`` as a subprocess, with real configuration files and real trees."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hal.cli import EXIT_ACCESS, EXIT_CONFIG, EXIT_FAILED, EXIT_OK, EXIT_USAGE

from .trees import Tree, w1_slave_text

REPO = Path(__file__).resolve().parents[2]


def run(config: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hal", "--config", str(config), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def no_traceback(p: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in p.stderr and "Traceback" not in p.stdout


SIM = """
backend = "sim"
[gpio.relay1]
chip = "gpiochip0"
line = "GPIO17"
direction = "output"
[gpio.door]
chip = "gpiochip0"
line = 27
direction = "input"
[sensors.cpu]
type = "thermal"
zone = 0
[power]
allow_reboot = true
[scripts.hello]
command = ["/bin/echo", "hello"]
args = ["[a-z]{1,8}"]
idempotent = true
[sim.inputs]
door = 1
[sim.sensors]
cpu = "48.250"
"""


@pytest.fixture
def sim_config(tmp_path) -> Path:
    p = tmp_path / "hal.toml"
    p.write_text(SIM)
    return p


def test_info_sim_human_and_json(sim_config):
    p = run(sim_config, "info")
    assert p.returncode == EXIT_OK, p.stderr
    assert "relay1  output" in p.stdout and "cpu  48.250 °C" in p.stdout
    assert "no problems found" in p.stdout
    p = run(sim_config, "--json", "info")
    doc = json.loads(p.stdout)
    assert doc["backend"] == "sim" and doc["problems"] == []
    assert [g["name"] for g in doc["gpio"]] == ["relay1", "door"]
    assert doc["gpio"][1]["value"] == 1
    assert doc["sensors"] == [
        {"sensor": "cpu", "value": "48.250", "unit": "°C", "key": "sensors.cpu", "error": None}
    ]
    assert doc["power"]["allowed"] == ["reboot"]
    assert doc["scripts"][0]["idempotent"] is True


def test_json_after_the_command_too(sim_config):
    p = run(sim_config, "sensor", "--json")
    assert json.loads(p.stdout)[0]["value"] == "48.250"


def test_gpio_write_pulse_and_read(sim_config):
    p = run(sim_config, "gpio", "relay1", "on")
    assert (p.returncode, p.stdout) == (EXIT_OK, "relay1 1\n")
    p = run(sim_config, "gpio", "relay1", "--pulse", "5")
    assert (p.returncode, p.stdout) == (EXIT_OK, "relay1 0\n")
    p = run(sim_config, "--json", "gpio", "door")
    assert json.loads(p.stdout) == {"name": "door", "value": 1}
    p = run(sim_config, "gpio", "door", "1")
    assert p.returncode == EXIT_FAILED
    assert p.stderr == "error: gpio door: is an input; it cannot be written\n"
    p = run(sim_config, "gpio", "nothere")
    assert p.returncode == EXIT_FAILED and "no line named 'nothere'" in p.stderr


def test_run_script(sim_config):
    p = run(sim_config, "run", "hello", "world")
    assert (p.returncode, p.stdout) == (EXIT_OK, "hello world\nexit code 0\n")
    p = run(sim_config, "run", "hello", "World!")
    assert p.returncode == EXIT_FAILED
    assert p.stderr.startswith("error: script hello: refused-argument: argument 1 'World!'")
    no_traceback(p)


def test_system_json(sim_config):
    doc = json.loads(run(sim_config, "--json", "system").stdout)
    assert doc["hostname"] == "sim-gateway" and doc["load"] == ["0.10", "0.05", "0.01"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[gpio.relay1]\nchip = "gpiochip0"\nline = true\ndirection = "output"\n',
            "configuration error: gpio.relay1.line: "
            "must be a line name or an offset, not a boolean\n",
        ),
        ("backend = 'linux'\nbogus = 1\n", "configuration error: bogus: unknown key\n"),
        (
            "[sensors.t]\ntype = 'ds18b20'\ndevice = 'nope'\n",
            "configuration error: sensors.t.device: "
            "must be a 1-Wire id such as 28-0000075e8a2b, not 'nope'\n",
        ),
    ],
)
def test_bad_configuration_names_the_key(tmp_path, text, message):
    cfg = tmp_path / "hal.toml"
    cfg.write_text(text)
    for cmd in ("info", "sensor", "system"):
        p = run(cfg, cmd)
        assert p.returncode == EXIT_CONFIG
        assert p.stderr == message
        assert p.stdout == ""
        no_traceback(p)


def test_unreadable_or_invalid_file(tmp_path):
    p = run(tmp_path / "missing.toml", "info")
    assert p.returncode == EXIT_CONFIG
    assert (
        p.stderr
        == f"configuration error: cannot read {tmp_path}/missing.toml: No such file or directory\n"
    )
    bad = tmp_path / "bad.toml"
    bad.write_text("[gpio\n")
    p = run(bad, "info")
    assert p.returncode == EXIT_CONFIG and "is not valid TOML" in p.stderr
    assert p.stderr.count("\n") == 1
    no_traceback(p)


def test_usage_error():
    p = subprocess.run(
        [sys.executable, "-m", "hal", "info"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert p.returncode == EXIT_USAGE and "--config" in p.stderr


def linux_config(tmp_path: Path, extra: str = "") -> Path:
    t = Tree(tmp_path / "root")
    t.proc()
    t.thermal(0, "45123\n")
    t.w1("28-000000000001", w1_slave=w1_slave_text(0x0550))  # 85 °C: no conversion
    script = tmp_path / "report.sh"
    script.write_text("#!/bin/sh\necho report\n")  # not executable
    cfg = tmp_path / "hal.toml"
    cfg.write_text(
        f"""
backend = "linux"
root = "{tmp_path / "root"}"
[sensors.cpu]
type = "thermal"
zone = 0
[sensors.water]
type = "ds18b20"
device = "28-000000000001"
[sensors.gone]
type = "ds18b20"
device = "28-000000000002"
[scripts.report]
command = ["{script}"]
[power]
allow_reboot = true
{extra}"""
    )
    return cfg


def test_info_linux_reports_each_problem_with_its_key(tmp_path):
    cfg = linux_config(tmp_path)
    p = run(cfg, "info")
    assert p.returncode == EXIT_CONFIG
    assert "cpu    45.123 °C" in p.stdout
    assert (
        "  sensors.water: power-on-reset: "
        "85.000 °C is the power-on value: no conversion took place\n" in p.stdout
    )
    assert (
        f"  sensors.gone: missing: {tmp_path}/root/sys/bus/w1/devices/28-000000000002/w1_slave"
        in p.stdout
    )
    assert (
        f"  scripts.report.command[0]: {tmp_path}/report.sh is not an executable file\n" in p.stdout
    )
    assert "  power: reboot/shutdown are allowed but systemd is not running" in p.stdout
    doc = json.loads(run(cfg, "--json", "info").stdout)
    assert [x["key"] for x in doc["problems"]] == [
        "sensors.water",
        "sensors.gone",
        "scripts.report.command[0]",
        "power",
    ]
    # fixed on the device: the same file now checks clean
    (tmp_path / "report.sh").chmod(0o755 | stat.S_IXUSR)
    (tmp_path / "root/run/systemd/system").mkdir(parents=True)
    Tree(tmp_path / "root").w1("28-000000000002", w1_slave=w1_slave_text(0x0157))
    Tree(tmp_path / "root").w1("28-000000000001", w1_slave=w1_slave_text(0x0157))
    p = run(cfg, "info")
    assert p.returncode == EXIT_OK, p.stdout
    assert "reboot: systemctl --no-ask-password reboot" in p.stdout


def test_sensor_linux(tmp_path):
    cfg = linux_config(tmp_path)
    p = run(cfg, "sensor", "cpu")
    assert (p.returncode, p.stdout) == (EXIT_OK, "cpu  45.123 °C\n")
    p = run(cfg, "sensor", "water")
    assert p.returncode == EXIT_FAILED
    assert "water  ERROR power-on-reset:" in p.stdout and "[sensors.water]" in p.stdout


def test_system_linux_tree(tmp_path):
    doc = json.loads(run(linux_config(tmp_path), "--json", "system").stdout)
    assert doc["hostname"] == "gateway-7" and doc["cpu_temp_c"] == "45.123"
    assert doc["os"]["kernel"] == "6.6.31+rpt-rpi-v8"


def test_linux_gpio_without_gpiod_module_exit_code(tmp_path):
    dev = tmp_path / "root/dev"
    dev.mkdir(parents=True)
    (dev / "gpiochip0").touch()
    cfg = linux_config(
        tmp_path, '[gpio.relay1]\nchip = "gpiochip0"\nline = "GPIO17"\ndirection = "output"\n'
    )
    p = run(cfg, "gpio")
    assert p.returncode == EXIT_ACCESS
    assert "Python gpiod is not installed" in p.stderr
    no_traceback(p)


def test_linux_gpio_unknown_chip_names_the_key(tmp_path):
    cfg = linux_config(
        tmp_path, '[gpio.relay1]\nchip = "gpiochip7"\nline = 3\ndirection = "output"\n'
    )
    p = run(cfg, "info")
    assert p.returncode == EXIT_CONFIG
    assert p.stderr == (
        f"configuration error: gpio.relay1.chip: no such GPIO chip: {tmp_path}/root/dev/gpiochip7\n"
    )


def test_a_file_that_is_not_utf8_is_a_configuration_error(tmp_path):
    cfg = tmp_path / "hal.toml"
    cfg.write_bytes(b'backend = "sim"\n# caf\xe9 in Latin-1\n')
    p = run(cfg, "info")
    no_traceback(p)
    assert p.returncode == EXIT_CONFIG
    assert p.stderr.startswith(f"configuration error: {cfg} is not valid TOML: not UTF-8")
    assert p.stderr.count("\n") == 1


def test_run_of_a_program_that_is_not_executable_names_its_key(tmp_path):
    cfg = linux_config(tmp_path)  # scripts.report points at a file without the x bit
    p = run(cfg, "run", "report")
    no_traceback(p)
    assert p.returncode == EXIT_CONFIG
    assert p.stderr == (
        f"configuration error: scripts.report.command[0]: "
        f"{tmp_path}/report.sh is not an executable file\n"
    )


def test_info_reads_each_sensor_once(sim_config, monkeypatch):
    # A DS18B20 read is a 750 ms conversion, and two reads can disagree: the row
    # shown and the problem listed must come from the same single read.
    import io

    import hal.cli

    built = []
    real_build = hal.cli.build

    def spy(config):
        built.append(real_build(config))
        return built[-1]

    monkeypatch.setattr(hal.cli, "build", spy)
    out = io.StringIO()
    assert hal.cli.main(["--config", str(sim_config), "info"], out=out) == EXIT_OK
    assert built[0].sim.sensors.reads == ["cpu"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: --config, COMMAND"),
        (["--config", "x.toml", "bogus"], "argument COMMAND: invalid choice: 'bogus'"),
        (["--config", "x.toml", "gpio", "relay1", "--pulse", "x"], "argument --pulse: invalid"),
        (["--config", "x.toml", "gpio", "relay1", "2"], "argument value: invalid choice: '2'"),
        (["--config", "x.toml", "run"], "the following arguments are required: name"),
    ],
    ids=["nothing", "bad-command", "pulse-not-a-number", "bad-value", "run-no-name"],
)
def test_a_bad_command_line_is_one_line_and_exit_2(args, message):
    p = subprocess.run(
        [sys.executable, "-m", "hal", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert p.returncode == EXIT_USAGE and p.stdout == ""
    assert p.stderr.startswith("error: ") and p.stderr.count("\n") == 1, p.stderr
    assert message in p.stderr and p.stderr.endswith(" (see --help)\n"), p.stderr


def test_help_still_prints_usage():
    p = subprocess.run(
        [sys.executable, "-m", "hal", "gpio", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert p.returncode == EXIT_OK and p.stdout.startswith("usage: python -m hal gpio")
