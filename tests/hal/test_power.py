"""Power: the command line that would run, refusals, and the simulated recorder.

Nothing here can reboot the machine: the Linux backend's runner is injected.
"""

from __future__ import annotations

import pytest

from hal.config import parse
from hal.errors import PowerError
from hal.interfaces import CommandResult
from hal.power import LinuxPower, run_command
from hal.sim import SimPower


class Recorder:
    def __init__(self, result: CommandResult | None = None) -> None:
        self.calls: list[tuple[tuple[str, ...], float]] = []
        self.result = result or CommandResult(0, "", "")

    async def __call__(self, argv, timeout_s):
        self.calls.append((tuple(argv), timeout_s))
        return self.result


def systemd_root(tmp_path):
    (tmp_path / "run/systemd/system").mkdir(parents=True)
    return str(tmp_path)


def power(tmp_path, runner, **table):
    return LinuxPower(parse({"power": table}).power, str(tmp_path), runner=runner)


async def test_reboot_runs_systemctl_only_when_the_caller_runs_the_request(tmp_path):
    rec = Recorder()
    p = power(systemd_root(tmp_path), rec, allow_reboot=True, allow_shutdown=True, timeout_s=12)
    req = p.request("reboot")
    assert req.action == "reboot"
    assert req.command == ("systemctl", "--no-ask-password", "reboot")
    assert rec.calls == []  # nothing ran yet: the caller sends its reply first
    await req.run()
    assert rec.calls == [(("systemctl", "--no-ask-password", "reboot"), 12.0)]
    shut = p.request("shutdown")
    assert shut.command == ("systemctl", "--no-ask-password", "poweroff")


async def test_configured_systemctl_path(tmp_path):
    rec = Recorder()
    p = power(systemd_root(tmp_path), rec, allow_reboot=True, systemctl="/bin/systemctl")
    await p.request("reboot").run()
    assert rec.calls[0][0] == ("/bin/systemctl", "--no-ask-password", "reboot")


def test_not_allowed_by_configuration(tmp_path):
    p = power(systemd_root(tmp_path), Recorder(), allow_reboot=True)
    with pytest.raises(PowerError) as e:
        p.request("shutdown")
    assert str(e.value) == "shutdown: not allowed by configuration (power.allow_shutdown = false)"
    assert list(p.allowed()) == ["reboot"]


def test_no_systemd(tmp_path):
    p = power(tmp_path, Recorder(), allow_reboot=True)
    with pytest.raises(
        PowerError, match=r"systemd is not running here \(/run/systemd/system is absent\)"
    ):
        p.request("reboot")


async def test_refused_by_systemctl_carries_exit_code_and_stderr(tmp_path):
    err = "Failed to reboot system via logind: Interactive authentication required.\n"
    rec = Recorder(CommandResult(1, "", err))
    req = power(systemd_root(tmp_path), rec, allow_reboot=True).request("reboot")
    with pytest.raises(PowerError) as e:
        await req.run()
    assert e.value.returncode == 1 and e.value.stderr == err
    assert str(e.value) == (
        "reboot: systemctl --no-ask-password reboot exited with 1: "
        "Failed to reboot system via logind: Interactive authentication required."
    )


async def test_missing_systemctl_binary(tmp_path):
    async def missing(argv, timeout_s):
        raise FileNotFoundError(2, "No such file or directory")

    req = power(systemd_root(tmp_path), missing, allow_reboot=True).request("reboot")
    with pytest.raises(PowerError, match="systemctl not found"):
        await req.run()


async def test_real_runner_runs_a_real_command():
    res = await run_command(["/bin/sh", "-c", "echo out; echo err >&2; exit 4"], 10)
    assert res == CommandResult(4, "out\n", "err\n")


async def test_sim_records_requests_and_runs():
    p = SimPower(parse({"power": {"allow_reboot": True}}).power)
    req = p.request("reboot")
    assert p.requests == ["reboot"] and p.executed == []
    await req.run()
    assert p.executed == ["reboot"]
    with pytest.raises(PowerError):
        p.request("shutdown")
    p.refuse_with = PowerError("reboot", "refused in the test")
    with pytest.raises(PowerError, match="refused in the test"):
        await p.request("reboot").run()
    assert p.executed == ["reboot"]


async def test_real_runner_kills_a_command_past_its_timeout():
    with pytest.raises(TimeoutError):
        await run_command(["sleep", "300"], 0.2)


async def test_a_systemctl_that_does_not_return_is_a_power_error(tmp_path):
    async def hangs(argv, timeout_s):
        raise TimeoutError

    req = power(systemd_root(tmp_path), hangs, allow_reboot=True, timeout_s=7).request("reboot")
    with pytest.raises(PowerError) as e:
        await req.run()
    assert str(e.value) == "reboot: systemctl did not return in 7 s"


@pytest.mark.parametrize("backend", ["sim", "linux"])
def test_both_backends_refuse_alike(tmp_path, backend):
    cfg = parse({"power": {"allow_shutdown": True}}).power
    p = SimPower(cfg) if backend == "sim" else LinuxPower(cfg, systemd_root(tmp_path))
    assert list(p.allowed()) == ["shutdown"]
    for action, message in (
        ("reboot", "reboot: not allowed by configuration (power.allow_reboot = false)"),
        ("hibernate", "hibernate: unknown power action"),
    ):
        with pytest.raises(PowerError) as e:
            p.request(action)
        assert str(e.value) == message
    assert p.request("shutdown").command[-1] == "poweroff"
