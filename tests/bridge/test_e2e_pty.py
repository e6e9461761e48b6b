"""The bridge over real OS ports: a pty in-process, and real subprocesses.

* the service on a real pty (``modem.sim.endpoints.PtyEndpoint``), two
  profiles (bg96 and the quirk composite ``minimal``);
* restart on the same module and the same journal: what arrived while the
  bridge was down is answered once, never again;
* ``python -m bridge run`` as a subprocess against ``python -m modem.sim
  --pty`` (a subprocess too), stopped by SIGTERM: exit 0, nothing left
  half-done in the journal, a reply queued at the stop sent at the next
  start.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bridge.dispatcher import Dispatcher
from bridge.journal import Journal, State
from modem.sim import SimModem
from modem.sim.control import control_request
from modem.sim.endpoints import PtyEndpoint

from .test_dispatcher_rig import DEVICE, signed
from .test_service_rig import ServiceRig, service_config, write_key

ROOT = Path(__file__).parents[2]


@pytest.fixture
async def pty_sim(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[SimModem, str]]:
    sim = SimModem(getattr(request, "param", "bg96"))
    link = str(tmp_path / "ttySIM0")
    pty = PtyEndpoint(sim, link)
    pty.start()
    try:
        yield sim, link
    finally:
        pty.close()
        sim.close()


@pytest.mark.parametrize("pty_sim", ["bg96", "minimal"], indirect=True)
async def test_commands_over_a_real_pty(tmp_path: Path, pty_sim: tuple[SimModem, str]) -> None:
    sim, link = pty_sim
    cfg = service_config(tmp_path, modems=[{"port": link}])
    async with ServiceRig(cfg, sims={"modem0": sim}) as rig:
        assert [s.body.split()[0] for s in rig.sent()] == ["boot"]  # type: ignore[union-attr]
        assert [s.body for s in await rig.sms("ping")] == ["pong"]
        assert [s.body for s in await rig.sms(signed("gpio set relay1 on", 1))] == ["relay1=on"]
        assert [s.body for s in await rig.sms("ping", include_sid="end")] == ["pong"]
        out = await rig.sms(bytes.fromhex("a00100"))
        assert out[0].dcs == 0x04 and out[0].body == bytes.fromhex("b10004") + b"pong"
        assert await rig.sms("ping", sender="+15550009999") == []


async def test_restart_on_the_same_module_and_journal(
    tmp_path: Path, pty_sim: tuple[SimModem, str]
) -> None:
    sim, link = pty_sim
    cfg = service_config(tmp_path, modems=[{"port": link}])
    async with ServiceRig(cfg, sims={"modem0": sim}) as rig:
        assert [s.body for s in await rig.sms("ping")] == ["pong"]
    sim.deliver("sensor water")  # while the bridge is down: stored on the SIM
    assert sim.storage().used == 1
    async with ServiceRig(cfg, sims={"modem0": sim}) as rig:
        await rig.svc.wait_admitted(1)
        await rig.svc.settle()
        assert [s.body for s in rig.sent()].count("water=21.5°C") == 1
    async with ServiceRig(cfg, sims={"modem0": sim}) as rig:
        bodies = [str(s.body) for s in rig.sent()]
        assert bodies.count("water=21.5°C") == 1 and bodies.count("pong") == 1  # never again
        assert sum(b.startswith("boot ") for b in bodies) == 3


# --- real subprocesses ----------------------------------------------------------------


async def _line_with(stream: asyncio.StreamReader, text: str, seen: list[str]) -> str:
    while True:
        raw = await stream.readline()
        if not raw:
            raise AssertionError(f"stream ended before {text!r}; saw {seen[-10:]}")
        line = raw.decode(errors="replace").rstrip("\n")
        seen.append(line)
        if text in line:
            return line


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=str(ROOT),
    )


async def _reap(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


def _config_file(tmp: Path, port: str) -> Path:
    script = tmp / "slow"
    script.write_text("#!/bin/sh\nsleep 0.3\necho slept\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    path = tmp / "bridge.toml"
    path.write_text(
        f"""
[bridge]
device_id = "{DEVICE}"
journal = "{tmp / "journal.db"}"
[security]
key_file = "{write_key(tmp)}"
[[modem]]
port = "{port}"
[hal.gpio.relay1]
chip = "gpiochip0"
line = 17
direction = "output"
[hal.scripts.slow]
command = ["{script}"]
"""
    )
    return path


async def test_sigterm_stops_a_real_bridge_run_cleanly(tmp_path: Path) -> None:
    link, ctl = str(tmp_path / "ttySIM0"), str(tmp_path / "sim.ctl")
    sim = await _spawn("-m", "modem.sim", "--pty", link, "--profile", "bg96", "--control", ctl)
    bridge: Any = None
    try:
        assert sim.stdout is not None
        await _line_with(sim.stdout, "ready:", [])
        cfg = _config_file(tmp_path, link)
        bridge = await _spawn("-m", "bridge", "run", "--config", str(cfg))
        assert bridge.stderr is not None
        log: list[str] = []
        await _line_with(bridge.stderr, "ready: admitting", log)
        await _line_with(bridge.stderr, "entry 1: reply sent to 2936", log)  # the boot message
        await control_request(ctl, {"op": "deliver", "text": "ping"})
        await _line_with(bridge.stderr, "entry 2: ping done, reply sent to 2936", log)
        # a Command in flight at the stop: it finishes within the grace, its
        # reply is journaled; nothing is left executing or half-sent
        await control_request(ctl, {"op": "deliver", "text": signed("run slow", 1)})
        await _line_with(bridge.stderr, "entry 3: received", log)
        bridge.send_signal(signal.SIGTERM)
        rest = (await bridge.stderr.read()).decode()
        assert await bridge.wait() == 0
        log += rest.splitlines()
        assert "bridge stopped" in rest and "Traceback" not in rest
        assert all("signature" not in line and "#B" not in line for line in log)
        with Journal.open(tmp_path / "journal.db") as j:
            # finished within the grace (reply queued or sent), or, if the stop came
            # before the dispatcher took it, still received: never half-done
            e = j.get(3)
            assert e.state in (State.RECEIVED, State.REPLY_QUEUED, State.SENT), e.state
            counts = j.counts()
            assert counts[State.EXECUTING] == counts[State.SENDING] == 0
        # the next start sends whatever was queued; entry 3 answered exactly once
        bridge = await _spawn("-m", "bridge", "run", "--config", str(cfg))
        await _line_with(bridge.stderr, "ready: admitting", log)
        await _line_with(bridge.stderr, "boot report queued", log)
        sent = await control_request(ctl, {"op": "sent"})
        while not any("slept" in (s.get("text") or "") for s in sent):
            await _line_with(bridge.stderr, "reply sent to", log)
            sent = await control_request(ctl, {"op": "sent"})
        bridge.send_signal(signal.SIGTERM)
        await bridge.stderr.read()
        assert await bridge.wait() == 0
        texts = [str(s.get("text")) for s in await control_request(ctl, {"op": "sent"})]
        assert sum("slow exit=0 slept" in t for t in texts) == 1
        assert sum(t.startswith("pong ") for t in texts) == 1
    finally:
        if bridge is not None:
            await _reap(bridge)
        sim.send_signal(signal.SIGTERM)
        await sim.communicate()
        await _reap(sim)


async def test_sigterm_while_waiting_for_the_module_at_start(
    tmp_path: Path, pty_sim: tuple[SimModem, str]
) -> None:
    sim, link = pty_sim
    sim.fault("hang")  # the module answers nothing: its ICCID never comes
    cfg = tmp_path / "bridge.toml"
    cfg.write_text(
        f'[bridge]\njournal = "{tmp_path / "journal.db"}"\n'
        f'[security]\nkey_file = "{write_key(tmp_path)}"\n[[modem]]\nport = "{link}"\n'
    )
    bridge = await _spawn("-m", "bridge", "run", "--config", str(cfg))
    try:
        assert bridge.stderr is not None
        log: list[str] = []
        await _line_with(bridge.stderr, "modem: connected", log)
        bridge.send_signal(signal.SIGTERM)
        rest = (await bridge.stderr.read()).decode()
        assert await bridge.wait() == 0
        assert "stopped while starting" in rest and "Traceback" not in rest
    finally:
        await _reap(bridge)


async def test_a_part_of_a_journaled_message_left_on_the_sim_is_deleted_not_held(
    tmp_path: Path, pty_sim: tuple[SimModem, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sim, link = pty_sim
    cfg = service_config(tmp_path, modems=[{"port": link}])
    sim.deliver("ping " + "x" * 200)  # two parts (a Command is one SMS: refused, journaled)
    parts = [m.pdu for m in sim.storage().messages()]
    assert len(parts) == 2
    async with ServiceRig(cfg, sims={"modem0": sim}) as rig:
        await rig.svc.wait_admitted(1)
        await rig.svc.settle()
        assert (await rig.entry(1)).reason == "body-too-long"
    # a crash between the journal write and the second +CMGD leaves one part behind
    sim.store_raw(parts[0])
    asked = asyncio.Event()
    real = Dispatcher.known

    async def known(self: Dispatcher, part_id: str) -> bool:
        have = await real(self, part_id)
        asked.set()
        return have

    monkeypatch.setattr(Dispatcher, "known", known)
    async with ServiceRig(cfg, sims={"modem0": sim}) as rig:
        await asyncio.wait_for(asked.wait(), 30)
        # the SMS service works in order: once a later SMS is admitted, the part's fate is done
        assert [s.body for s in await rig.sms("ping")] == ["pong"]
        stack = rig.svc.links["modem0"].stack
        assert stack.sms.stats["known_parts"] == 1
        assert sim.storage().used <= 1  # the ping itself may still be being deleted
        assert all(m.pdu != parts[0] for m in sim.storage().messages())
