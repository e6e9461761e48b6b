"""Fault arguments are validated from one table (FAULTS) that also makes
``python -m modem.sim fault --help``."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modem.sim.control import ControlServer, control_request
from modem.sim.core import FAULTS, check_fault, fault_help


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("garbage", ["-1"], "fault garbage: N must be a whole number >= 0, not '-1'"),
        ("garbage", ["x"], "fault garbage: N must be a whole number >= 0, not 'x'"),
        ("delay", ["-5"], "fault delay: MS must be >= 0, not '-5'"),
        ("delay", ["soon"], "fault delay: MS must be a number, not 'soon'"),
        ("delay", ["nan"], "fault delay: MS must be >= 0, not 'nan'"),
        ("delay", [], "fault delay: MS missing (usage: delay MS)"),
        ("drop", ["1.5"], "fault drop: RATE is a probability 0..1, not '1.5'"),
        ("corrupt", ["-0.1"], "fault corrupt: RATE must be >= 0, not '-0.1'"),
        ("reboot", ["-3"], "fault reboot: MS|next must be >= 0, not '-3'"),
        ("reset", ["later"], "fault reboot: MS|next must be a number, not 'later'"),
        ("disconnect", ["-1"], "fault disconnect: MS must be >= 0, not '-1'"),
        ("cms-error", ["500", "-2"], "fault cms-error: COUNT must be a whole number >= 0"),
        ("cms-error", [], "fault cms-error: CODE missing"),
        ("cms-error", ["999"], "fault cms-error: CODE is 0-511, not 999"),
        ("storage-full", ["XX"], "fault storage-full: MEM is one of SM, ME, MT, not 'XX'"),
        ("damage-next-pdu", ["melt"], "fault damage-next-pdu: MODE is one of drop-octet"),
        ("damage-next-pdu", ["flip", "-1"], "fault damage-next-pdu: COUNT must be a whole"),
        ("hang", ["1"], "fault hang: too many arguments (usage: hang)"),
        ("urc", [], "fault urc: LINE missing"),
        ("meteor", [], "unknown fault 'meteor'; known: "),
    ],
)
def test_bad_arguments_name_the_fault_and_argument(sim, name, args, message):
    with pytest.raises(ValueError) as info:
        sim.fault(name, *args)
    assert str(info.value).startswith(message)


def test_valid_arguments_pass():
    assert check_fault("RESET", ["next"]) == ("reboot", ["next"])
    assert check_fault("storage-full", ["me"]) == ("storage-full", ["me"])
    assert check_fault("urc", ["a", "b", "c"]) == ("urc", ["a", "b", "c"])
    assert check_fault("drop", ["0"]) == ("drop", ["0"])


def test_a_refused_fault_changes_nothing(sim):
    sim.fault("delay", "10")
    with pytest.raises(ValueError):
        sim.fault("delay", "-10")
    assert sim._delay == 0.01


async def test_control_socket_reports_a_clean_error(sim, tmp_path):
    server = ControlServer(sim, str(tmp_path / "c.sock"))
    await server.start()
    try:
        with pytest.raises(RuntimeError) as info:
            await control_request(server.address, {"op": "fault", "name": "garbage", "args": [-4]})
        assert str(info.value) == (
            "ValueError: fault garbage: N must be a whole number >= 0, not '-4'"
        )
    finally:
        await server.close()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modem.sim", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_fault_help_lists_every_fault_with_its_arguments():
    r = _cli("fault", "--help")
    assert r.returncode == 0
    for spec in FAULTS.values():
        assert spec.usage() in r.stdout, spec.name
    assert fault_help() in r.stdout


def test_cli_bad_fault_argument_exits_2_with_one_line(tmp_path):
    r = _cli("fault", "--control", str(tmp_path / "none.sock"), "delay", "-5")
    assert r.returncode == 2
    assert r.stderr == "error: fault delay: MS must be >= 0, not '-5'\n"
    assert r.stdout == ""


@given(st.sampled_from(sorted(FAULTS)), st.lists(st.text(max_size=8), max_size=4))
def test_check_fault_accepts_or_raises_value_error(name, args):
    try:
        canonical, checked = check_fault(name, args)
    except ValueError as exc:
        assert str(exc).startswith(f"fault {name}:")
    else:
        assert canonical == name and checked == args
