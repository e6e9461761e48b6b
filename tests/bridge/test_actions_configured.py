"""``[actions.VERB]``: a verb of the configuration that runs one allow-listed script."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from bridge import config
from bridge.actions.configured import configured
from bridge.grammar import Level
from bridge.journal import State
from bridge.service import check

from .test_dispatcher_rig import hal_table, script_runs, signed
from .test_service_rig import ServiceRig, service_config


async def test_a_configured_verb_runs_its_script_once_through_the_service(tmp_path: Path) -> None:
    cfg = service_config(
        tmp_path,
        actions={
            "backup": {"script": "once", "args": 1, "help": "back up now"},
            "door check": {"script": "again", "level": "open"},
        },
    )
    async with ServiceRig(cfg) as rig:
        out = await rig.sms(signed("backup abc", 1))
        assert [s.body for s in out] == ["once exit=0 ran 1 args: abc"]
        assert script_runs(tmp_path, "once") == 1
        # signed level: an unsigned Command is refused before anything runs, no reply
        assert await rig.sms("backup abc") == []
        assert (await rig.entry()).state is State.REJECTED
        assert script_runs(tmp_path, "once") == 1
        # an argument outside the script's pattern is refused by hal before it runs
        out = await rig.sms(signed("backup ABC", 2))
        assert len(out) == 1 and isinstance(out[0].body, str)
        assert out[0].body.startswith("once ") and "exit=" not in out[0].body
        assert script_runs(tmp_path, "once") == 1
        # a two-word verb open to the allow-listed sender, no arguments
        out = await rig.sms("door check")
        assert [s.body for s in out] == ["again exit=0 ran 0 args:"]
        help_open = await rig.sms("help")
        assert help_open[0].body == (
            "commands: door check, gpio get, help, info, ping, sensor, status"
        )


def test_idempotency_comes_from_the_scripts_configuration(tmp_path: Path) -> None:
    class Ctx:
        class hal:
            class scripts:
                @staticmethod
                def info(name: str) -> Any:
                    return type("Info", (), {"idempotent": name == "again"})()

    again = configured("poll", config.ActionSection(script="again"))
    once = configured("fire", config.ActionSection(script="once", level=Level.OPEN, args=2))
    assert again.idempotent(Ctx, {}) is True
    assert once.idempotent(Ctx, {}) is False
    assert once.spec.level is Level.OPEN and [a.name for a in once.spec.args] == ["arg1", "arg2"]
    assert again.spec.help == "run the script again"


def _cfg(tmp: Path, actions: dict[str, Any]) -> config.Config:
    return config.parse(
        {"modem": [{"port": "sim://bg96"}], "hal": hal_table(tmp), "actions": actions}
    )


@pytest.mark.parametrize(
    ("actions", "key", "message"),
    [
        ({"backup": {}}, "actions.backup.script", "required"),
        ({"backup": {"script": "once", "args": 7}}, "actions.backup.args", "not in 0..6"),
        ({"backup": {"script": "once", "level": "root"}}, "actions.backup.level", "root"),
        ({"backup": {"script": "once", "colour": 1}}, "actions.backup.colour", "unknown key"),
        ({"Backup": {"script": "once"}}, "actions.Backup", "not a verb"),
        ({"backup": "once"}, "actions.backup", "must be a table"),
    ],
)
def test_bad_action_sections_name_their_key(
    tmp_path: Path, actions: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(config.ConfigError) as err:
        _cfg(tmp_path, actions)
    assert err.value.key == key and message in str(err.value)


@pytest.mark.parametrize(
    ("actions", "key", "message"),
    [
        ({"backup": {"script": "nope"}}, "actions.backup.script", "no script 'nope'"),
        ({"ping": {"script": "once"}}, "actions.ping", "built-in verb"),
        ({"backup": {"script": "once", "binary_id": 1}}, "actions.backup.binary_id", "'ping'"),
    ],
)
def test_actions_are_checked_against_hal_and_the_built_ins(
    tmp_path: Path, actions: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(config.ConfigError) as err:
        check(_cfg(tmp_path, actions))
    assert err.value.key == key and message in str(err.value)


async def test_a_script_that_is_not_executable_is_named_at_start_and_answered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = service_config(tmp_path, actions={"backup": {"script": "once", "args": 1}})
    program = tmp_path / "scripts" / "once"
    program.chmod(0o644)  # installed without its x bit
    with caplog.at_level(logging.WARNING, logger="bridge.service"):
        async with ServiceRig(cfg) as rig:
            warned = [r.getMessage() for r in caplog.records if r.name == "bridge.service"]
            assert warned == [
                f"hal.scripts.once.command[0]: {program} is not an executable file: "
                "Commands that run it will fail"
            ]
            out = await rig.sms(signed("backup abc", 1))
            assert len(out) == 1 and isinstance(out[0].body, str)
            assert out[0].body == f"once not-executable {program} is not an executable file"
            assert script_runs(tmp_path, "once") == 0
            assert [s.body for s in await rig.sms("ping")] == ["pong"]  # still serving
