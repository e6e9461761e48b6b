"""Every built-in action through the dispatcher, on the simulated HAL."""

from __future__ import annotations

import dataclasses
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from bridge.actions import builtins
from bridge.actions.gpio import restore_outputs
from bridge.actions.registry import Registry, RegistryError, action
from bridge.grammar import Level
from bridge.journal import Journal, State
from hal.errors import Fault

from .test_dispatcher_rig import BENCH, Rig, script_runs, signed


def test_every_builtin_declares_level_idempotency_timeout_and_binary_id() -> None:
    table = {s.verb: (s.level, s.idempotent, s.binary_id) for s in builtins().specs.values()}
    assert table == {
        "ping": (Level.OPEN, True, 1),
        "status": (Level.OPEN, True, 2),
        "info": (Level.OPEN, True, 3),
        "gpio get": (Level.ALLOWLISTED, True, 4),
        "gpio set": (Level.SIGNED, True, 5),
        "gpio pulse": (Level.SIGNED, False, 6),
        "sensor": (Level.ALLOWLISTED, True, 7),
        "run": (Level.SIGNED, False, 8),
        "reboot": (Level.SIGNED, False, 9),
        "help": (Level.OPEN, True, 10),
    }
    assert all(s.timeout > 0 for s in builtins().specs.values())


async def test_ping(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        await rig.sms("ping")
        assert rig.last_reply_body() == "pong"


async def test_status_reports_every_figure(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        await rig.sms("ping")
        await rig.sms("status")
        body = rig.last_reply_body()
        assert body.startswith("up=0h0m sig=-71dBm reg=home op=Twilio/LTE-M sys=1h0m temp=45.0C")
        assert "load=0.10 mem=384M/512M disk/=6G" in body
        assert body.endswith("rx=2 run=1 tx=1 rej=0")


async def test_status_without_the_modem_still_answers(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        rig.modem.fail = True
        await rig.sms("status")
        body = rig.last_reply_body()
        assert body.startswith("up=") and "sig=" not in body and "temp=45.0C" in body


async def test_info(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        await rig.sms("info")
        body = rig.last_reply_body()
        assert body.startswith(
            "imei=860000000000001 iccid=89883070000012345678 model=Quectel BG96"
            " fw=BG96MAR02A07M1G bridge=0.1.0"
        )
        assert f"python={sys.version_info.major}.{sys.version_info.minor}" in body
        assert "os=sim 1" in body


async def test_info_without_the_modem(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        rig.modem.fail = True
        await rig.sms("info")
        assert rig.last_reply_body().startswith("imei=? iccid=? model=? fw=?")


async def test_gpio_get_set_and_desired_state_persisted(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        await rig.sms("gpio get door")
        assert rig.last_reply_body() == "door=off"
        rig.sim.drive("door", 1)
        await rig.sms("GPIO GET Door")
        assert rig.last_reply_body() == "door=on"
        await rig.sms(signed("gpio set relay1 on", 1))
        assert rig.last_reply_body() == "relay1=on"
        assert await rig.worker.call(Journal.desired_outputs) == {"relay1": 1}
    # after a restart, the output is restored from the journal
    async with Rig(tmp_path) as rig:
        assert rig.sim.gpio.value("relay1") == 0  # a fresh device starts at `initial`
        skipped = await restore_outputs(rig.hal, lambda: rig.worker.call(Journal.desired_outputs))
        assert skipped == [] and rig.sim.gpio.value("relay1") == 1


async def test_gpio_set_refuses_an_input_before_anything_runs(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        e = await rig.sms(signed("gpio set door on", 1))
        assert e.reason == "usage"
        assert rig.last_reply_body() == "usage: gpio set <line> <on|off>"
        assert rig.sim.gpio.writes == [] and await rig.worker.call(Journal.desired_outputs) == {}


async def test_gpio_pulse(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        await rig.sms(signed("gpio pulse gate", 1))
        assert (
            rig.last_reply_body()
            == "gpio pulse: error gpio gate: pulse must be 1 to 50 ms, not 500"
        )
        await rig.sms(signed("gpio pulse gate 20", 2))
        assert rig.last_reply_body() == "gate pulsed 20ms"
        assert rig.sim.gpio.writes == [("gate", 1), ("gate", 0)]
        e = await rig.worker.call(Journal.get, 2)
        assert e.idempotent is False


async def test_sensor_one_and_all_and_a_failed_read(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        rig.sim.sensors.set("water", Decimal("18.125"))
        await rig.sms("sensor WATER")
        assert rig.last_reply_body() == "water=18.125°C"
        rig.sim.sensors.fail("cpu", Fault.TIMEOUT)
        await rig.sms("sensor")
        assert rig.last_reply_body() == "water=18.125°C cpu=error(timeout)"


async def test_run_a_script_idempotency_from_its_configuration(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        e = await rig.sms(signed("run again a1 b2", 1))
        assert rig.last_reply_body() == "again exit=0 ran 2 args: a1 b2"
        assert e.idempotent is True
        e = await rig.sms(signed("run once", 2))
        assert rig.last_reply_body() == "once exit=0 ran 0 args:"
        assert e.idempotent is False
        await rig.sms(signed("run once fail", 3))
        assert rig.last_reply_body() == "once exit=3 it broke"
        await rig.sms(signed("run again BAD!", 4))
        assert rig.last_reply_body().startswith("again refused-argument")
        assert script_runs(tmp_path, "again") == 1 and script_runs(tmp_path, "once") == 2


async def test_run_unknown_script_is_a_usage_error(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        e = await rig.sms(signed("run rm -rf", 1))
        assert e.reason == "usage" and rig.last_reply_body().startswith("usage: run <script>")


async def test_reboot(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        e = await rig.sms(signed("reboot", 1))
        assert rig.last_reply_body() == "rebooting" and e.idempotent is False
        assert rig.sim.power.executed == ["reboot"]


async def test_help_lists_only_what_this_sender_may_use(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        await rig.sms("help", sender=BENCH)
        assert rig.last_reply_body() == "commands: gpio get, help, info, ping, sensor, status"
        await rig.sms(signed("help", 1))
        assert rig.last_reply_body() == (
            "commands: gpio get, gpio pulse, gpio set, help, info, ping, reboot, run,"
            " sensor, status"
        )


async def test_help_follows_level_overrides(tmp_path: Path) -> None:
    from .test_dispatcher_rig import make_config

    cfg = make_config(tmp_path, security={"levels": {"sensor": "signed", "gpio pulse": "open"}})
    async with Rig(tmp_path, cfg=cfg) as rig:
        await rig.sms("help")
        assert rig.last_reply_body() == "commands: gpio get, gpio pulse, help, info, ping, status"


async def test_a_third_party_action_with_the_context(tmp_path: Path) -> None:
    pkg = tmp_path / "site" / "acme_relays"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            """
            from bridge.actions.context import ActionContext
            from bridge.actions.registry import action
            from bridge.grammar import IntArg, Level
            from bridge.reply import Field


            @action("relay cycle", args=(IntArg("times", 1, 5, default=1),),
                    level=Level.ALLOWLISTED, idempotent=False, timeout=5.0, binary_id=200)
            async def relay_cycle(ctx: ActionContext, times: int = 1) -> list[Field]:
                for _ in range(times):
                    await ctx.hal.gpio.write("relay1", 1)
                    await ctx.hal.gpio.write("relay1", 0)
                return [Field(f"cycled {times}", 9), Field(f"from {ctx.sender}", 1)]
            """
        )
    )
    sys.path.insert(0, str(pkg.parent))
    try:
        import acme_relays

        reg = builtins()
        reg.add_module(acme_relays)
        async with Rig(tmp_path, registry=reg) as rig:
            e = await rig.sms("relay cycle 2")
            assert rig.last_reply_body() == "cycled 2 from 2936"
            assert rig.sim.gpio.writes == [("relay1", 1), ("relay1", 0)] * 2
            assert e.idempotent is False
    finally:
        sys.path.remove(str(pkg.parent))
        sys.modules.pop("acme_relays", None)


def test_idempotent_when_must_not_break_the_registry() -> None:
    @action("x", idempotent_when=lambda ctx, args: bool(args.get("n")))
    async def x(ctx: object) -> str:
        return ""

    act = Registry([x]).get("x")
    assert act is not None and dataclasses.is_dataclass(act)
    assert act.idempotent(None, {"n": 1}) is True and act.idempotent(None, {}) is False
    with pytest.raises(RegistryError):
        Registry([x, x])


async def test_outputs_restore_skips_lines_no_longer_outputs(tmp_path: Path) -> None:
    async with Rig(tmp_path) as rig:
        await rig.worker.call(Journal.set_desired_output, "gone", 1)
        await rig.worker.call(Journal.set_desired_output, "relay1", 1)
        skipped = await restore_outputs(rig.hal, lambda: rig.worker.call(Journal.desired_outputs))
        assert skipped == ["gone"] and rig.sim.gpio.value("relay1") == 1
        assert (await rig.worker.call(Journal.counts))[State.RECEIVED] == 0
