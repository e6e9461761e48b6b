"""Session supervision against modem.sim and a hand-driven line: SIM problems,
escalation, sync, registration, timing read when used, no idle timers."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from modem import commands as C
from modem import timing
from modem.client import AtClient
from modem.errors import (
    CmeError,
    CmsError,
    CommandFailed,
    CommandTimeout,
    Fault,
    NotRegistered,
    SimProblem,
    SimProblemKind,
)
from modem.session import Session, SessionConfig
from modem.sim import SimModem, create_sim_connection
from modem.stack import ModemStack

from .harness import Wire, recording_connector
from .test_client import pipe_client


def sim_stack(sim: SimModem, config: SessionConfig | None = None, **kw) -> tuple[ModemStack, Wire]:
    wire = Wire()
    return ModemStack(AtClient(recording_connector(sim, wire)), session=config, **kw), wire


def error_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# -- SIM problems are the operator's: reported once, never retried ---------------------


async def test_wrong_pin_is_entered_once_never_again_with_the_same_configuration(caplog):
    sim = SimModem("generic", pin="1234")
    stack, wire = sim_stack(sim, SessionConfig(pin="0000"))
    async with stack:
        session = stack.session
        with pytest.raises(SimProblem) as ei:
            await stack.wait_ready(10)
        assert ei.value.kind is SimProblemKind.PIN_REJECTED
        assert ei.value.fault is Fault.OPERATOR and not ei.value.transient
        assert session.sim_problem is ei.value
        assert wire.count(b'AT+CPIN="0000"\r') == 1
        # the module reboots: the session looks at the SIM again, but does not
        # spend another of the SIM's attempts on the same PIN
        changed = asyncio.ensure_future(session.wait_changed())
        sim.fault("reboot")
        await asyncio.wait_for(changed, 10)
        assert wire.count(b"AT+CPIN?\r") >= 2
        assert wire.count(b'AT+CPIN="0000"\r') == 1
        assert session.sim_problem is not None
        assert session.sim_problem.kind is SimProblemKind.PIN_REJECTED
        assert not stack.failure  # the process stays up
        assert len(error_lines(caplog)) == 1  # loud, but once
        assert "refused" in error_lines(caplog)[0]
        # a person fixes the configuration: the new PIN goes in, once
        session.configure(SessionConfig(pin="1234"))
        await stack.wait_ready(10)
        assert wire.count(b'AT+CPIN="1234"\r') == 1
        assert session.sim_problem is None and session.pin_state is C.PinState.READY
    assert sim.pin_attempts_left == 3  # the right PIN resets the SIM's counter


async def test_wrong_pin_spends_one_attempt_across_reboots():
    sim = SimModem("bg96", pin="1234")
    stack, wire = sim_stack(sim, SessionConfig(pin="9999"))
    async with stack:
        for _ in range(3):
            changed = asyncio.ensure_future(stack.session.wait_changed())
            if stack.session.sim_problem is not None:
                sim.fault("reboot")
            await asyncio.wait_for(changed, 10)
        assert stack.session.sim_problem is not None
        assert stack.session.sim_problem.kind is SimProblemKind.PIN_REJECTED
    assert wire.count(b"AT+CPIN=") == 1
    assert sim.pin_attempts_left == 2 and sim.sim_state == "pin"  # never blocked


async def test_sim_blocked_behind_its_puk_is_reported_and_nothing_is_entered(caplog):
    sim = SimModem("ec25", pin="1234")
    sim.pin_attempts_left = 0  # three wrong PINs earlier: the SIM wants its PUK
    stack, wire = sim_stack(sim, SessionConfig(pin="1234"))
    async with stack:
        with pytest.raises(SimProblem) as ei:
            await stack.wait_ready(10)
        assert ei.value.kind is SimProblemKind.PUK_REQUIRED
        assert stack.session.pin_state is C.PinState.SIM_PUK
    assert wire.count(b"AT+CPIN=") == 0 and sim.puk_attempts_left == 10
    assert len(error_lines(caplog)) == 1 and "PUK" in error_lines(caplog)[0]


async def test_no_sim_is_reported_once_and_the_session_stays_up(caplog):
    sim = SimModem("bg96", sim_inserted=False)
    stack, wire = sim_stack(sim, SessionConfig(pin="1234"))
    async with stack:
        with pytest.raises(SimProblem) as ei:
            await stack.wait_ready(10)
        assert ei.value.kind is SimProblemKind.NOT_INSERTED
        changed = asyncio.ensure_future(stack.session.wait_changed())
        sim.fault("reboot")  # still no SIM after a reboot: seen again, not shouted again
        await asyncio.wait_for(changed, 10)
        assert stack.session.sim_problem is not None and not stack.failure
        assert (await stack.client.execute(C.csq())).rssi >= 0  # still answers
    assert wire.count(b"AT+CPIN=") == 0 and wire.count(b"AT+CFUN=1,1") == 0
    assert len(error_lines(caplog)) == 1 and "not inserted" in error_lines(caplog)[0]


async def test_sim_busy_after_boot_is_waited_for_not_escalated(monkeypatch):
    monkeypatch.setattr(timing, "RETRY_INITIAL", 0.05)
    sim = SimModem("bg96", sim_busy_time=1.0)  # +CME ERROR: 14 for a second after boot
    stack, wire = sim_stack(sim)
    async with stack:
        await stack.wait_ready(30)
        assert wire.count(b"AT+CPIN?\r") >= 2  # asked again, patiently
        assert stack.session.stats["escalations"] == 0 and wire.count(b"AT+CFUN") == 0
        assert stack.session.registered


async def test_sim_busy_wait_is_bounded_by_its_budget(monkeypatch):
    from modem.errors import CmeErrorCode

    monkeypatch.setattr(timing, "SIM_BUSY_BUDGET", 0.2)
    monkeypatch.setattr(timing, "RETRY_INITIAL", 0.02)
    sim = SimModem("bg96", sim_busy_time=3600.0)
    wire = Wire()
    client = AtClient(recording_connector(sim, wire))
    await client.connect()
    session = Session(client)
    with pytest.raises(CmeError) as ei:  # transient: the supervisor backs off, no reset
        await session.initialize()
    assert ei.value.code == CmeErrorCode.SIM_BUSY and ei.value.transient
    assert wire.count(b"AT+CFUN") == 0
    session.close()
    await client.close()
    sim.close()


# -- minimal modules -------------------------------------------------------------------


async def test_minimal_module_without_cmee_and_bare_at_error_initialises():
    sim = SimModem("minimal")
    stack, wire = sim_stack(sim)
    async with stack:
        await stack.wait_ready(10)
        session = stack.session
        assert not session.numeric_errors  # +CMEE=1 refused: plain ERROR from now on
        assert session.identity.imei == sim.profile.imei and session.registered
        assert session.storage is not None and session.storage.total[0] == 20
        with pytest.raises(CommandFailed) as ei:
            await stack.client.execute(C.cmgr(7))  # empty: ERROR, then a stray OK
        assert type(ei.value) is CommandFailed and ei.value.result == "ERROR"
        assert (await stack.client.execute(C.csq())).rssi == 20
    assert wire.count(b"AT+CFUN") == 0  # answering ERROR to AT is alive: never reset


async def test_missing_pin_is_reported_and_info_queries_still_answer(caplog):
    sim = SimModem("bg96", pin="1234")
    stack, wire = sim_stack(sim)
    async with stack:
        with pytest.raises(SimProblem) as ei:
            await stack.wait_ready(10)
        assert ei.value.kind is SimProblemKind.PIN_REQUIRED
        assert wire.count(b"AT+CPIN=") == 0  # nothing guessed
        ident = stack.session.identity
        assert ident.imei == sim.profile.imei and ident.iccid == sim.profile.iccid
        assert (await stack.client.execute(C.identity("AT+CGMM"))) == "BG96"
        assert len(error_lines(caplog)) == 1


# -- escalation: growing backoff, a rare power cycle, never reset a module that answers --


@pytest.fixture
def quick_escalation(monkeypatch):
    for name, value in {
        "SYNC_ATTEMPT_TIMEOUT": 0.01,
        "SYNC_ATTEMPTS": 2,
        "ESC_SETTLE": 0.001,
        "SYNC_QUIET": 0.001,
        "RESET_TIMEOUT": 0.02,
        "REBOOT_WAIT": 0.001,
        "ESCALATION_INITIAL": 0.01,
        "ESCALATION_MAX": 0.04,
        "POWER_CYCLE_INTERVAL": 3600.0,
        "RETRY_INITIAL": 0.01,
    }.items():
        monkeypatch.setattr(timing, name, value)


async def test_dead_module_is_escalated_with_backoff_and_power_cycled_rarely(
    quick_escalation, caplog
):
    cycles: list[int] = []

    async def power_cycle() -> None:
        cycles.append(1)

    sim = SimModem("generic")
    stack, wire = sim_stack(sim, SessionConfig(power_cycle=power_cycle))
    async with stack:
        await stack.wait_ready(10)
        sim.fault("hang")  # dead for good: nothing ever answers again
        quick = C.Command("AT+CSQ", C.parse_csq, prefixes=("+CSQ",), timeout=0.01)
        for _ in range(timing.HUNG_AFTER_TIMEOUTS):
            with contextlib.suppress(CommandTimeout):
                await stack.client.execute(quick)
        await wire.wait_for(lambda: wire.count(b"AT+CFUN=1,1\r") >= 5)
    assert len(cycles) == 1  # not on every escalation: POWER_CYCLE_INTERVAL
    pauses = [
        float(r.getMessage().rsplit(" ", 2)[1])
        for r in caplog.records
        if "next escalation in" in r.getMessage()
    ]
    assert pauses[:4] == [0.01, 0.02, 0.04, 0.04]  # doubling, then the ceiling


async def test_a_failing_power_cycle_hook_does_not_stop_the_supervisor(quick_escalation):
    calls: list[int] = []

    async def power_cycle() -> None:
        calls.append(1)
        raise OSError("relay driver gone")

    sim = SimModem("generic")
    stack, wire = sim_stack(sim, SessionConfig(power_cycle=power_cycle))
    async with stack:
        await stack.wait_ready(10)
        sim.fault("hang")
        quick = C.Command("AT+CSQ", C.parse_csq, prefixes=("+CSQ",), timeout=0.01)
        for _ in range(timing.HUNG_AFTER_TIMEOUTS):
            with contextlib.suppress(CommandTimeout):
                await stack.client.execute(quick)
        await wire.wait_for(lambda: wire.count(b"AT+CFUN=1,1\r") >= 2)
        assert calls == [1] and stack.failure is None  # still supervising


async def test_module_answering_error_to_bare_at_is_in_sync_and_never_reset():
    client, pipe = pipe_client()
    await client.connect()

    def on_write(data: bytes) -> None:
        if data == b"AT\r":
            asyncio.get_running_loop().call_soon(pipe.feed, b"\r\nERROR\r\n")

    pipe.on_write = on_write
    await client.sync()  # any final result proves the module alive and in sync
    assert bytes(pipe.written) == b"\x1bAT\r"  # ESC, one probe, no reset
    await client.close()


async def test_sync_recovers_a_module_left_at_the_prompt_by_a_killed_sender():
    sim = SimModem("generic")

    class Killed(asyncio.Protocol):  # a sender that typed AT+CMGS=<n> and died at the prompt
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            pass

        def connection_lost(self, exc):
            pass

    transport, _ = await create_sim_connection(Killed, sim)
    transport.write(b"AT+CMGS=23\r")
    await asyncio.sleep(0.01)
    transport.close()

    async def connector(factory):
        return await create_sim_connection(factory, sim)

    client = AtClient(connector)
    await client.connect()
    session = Session(client)
    await session.initialize()  # ESC first: the prompt is quit, nothing is sent
    assert session.ready.is_set() and not sim.mo_log
    session.close()
    await client.close()


async def test_plain_error_then_stray_ok_is_not_the_next_commands_answer():
    client, pipe = pipe_client()
    await client.connect()
    loop = asyncio.get_running_loop()

    def on_write(data: bytes) -> None:
        if data == b"AT+CMGR=3\r":
            # empty index: ERROR, then a stray OK a moment later
            loop.call_soon(pipe.feed, b"\r\nERROR\r\n")
            loop.call_later(0.02, pipe.feed, b"\r\nOK\r\n")
        elif data == b"AT+CSQ\r":
            loop.call_later(0.05, pipe.feed, b"\r\n+CSQ: 7,99\r\n\r\nOK\r\n")

    pipe.on_write = on_write
    with pytest.raises(CommandFailed):
        await client.execute(C.simple("AT+CMGR=3"))
    assert (await client.execute(C.csq())).rssi == 7
    assert client.stats["stray_results"] == 1
    await client.close()


# -- registration: woken by the URC; a clear error when it does not come --------------


async def test_send_waits_for_registration_woken_by_the_urc():
    sim = SimModem("ec25")
    sim.set_registered(False)
    stack, wire = sim_stack(sim)
    async with stack:
        await stack.wait_ready(10)
        assert not stack.session.registered
        send = asyncio.ensure_future(stack.sms.send("2936", "hello", registration_timeout=30))
        await asyncio.sleep(0.05)
        assert not send.done()
        mark = len(wire.data)
        sim.set_registered(True)
        result = await asyncio.wait_for(send, 10)
        assert len(result.mrs) == 1 and sim.mo_log
        assert b"REG?" not in wire.since(mark)  # the URC woke it, not a query


async def test_not_registered_error_says_what_happened():
    sim = SimModem("generic")
    sim.set_registered(False)
    stack, _ = sim_stack(sim)
    async with stack:
        await stack.wait_ready(10)
        with pytest.raises(NotRegistered) as ei:
            await stack.session.wait_registered(0.05)
    assert isinstance(ei.value, TimeoutError) and ei.value.transient
    assert str(ei.value).startswith("not registered within 0.05 s")


# -- design debts: timing read when used; no idle wake-ups -----------------------------


def test_timing_defaults_are_read_when_used(monkeypatch):
    monkeypatch.setattr(timing, "RETRY_INITIAL", 0.123)
    monkeypatch.setattr(timing, "DEFAULT_COMMAND_TIMEOUT", 7.5)
    monkeypatch.setattr(timing, "PROMPT_TIMEOUT", 2.5)
    monkeypatch.setattr(timing, "INTER_COMMAND_PAUSE", 0.25)
    monkeypatch.setattr(timing, "REBOOT_WAIT", 42.0)
    assert C.RETRY_TRANSIENT.delay(1) == 0.123
    assert C.NO_RETRY.delay(2) == 0.246
    cmd = C.Command("AT+X", C.parse_csq)
    assert cmd.timeout == 7.5 and cmd.prompt_timeout == 2.5
    assert C.simple("ATE0").timeout == 7.5

    async def connector(factory):  # never called
        raise OSError

    client = AtClient(connector)
    assert client.pause == 0.25
    session = Session(client)
    assert session._reboot_wait() == 42.0
    session.close()


async def test_idle_session_has_no_timer_pending():
    """No busy polling: once ready, the supervisor waits on events only."""
    sim = SimModem("generic")
    stack, _ = sim_stack(sim)
    loop = asyncio.get_running_loop()
    async with stack:
        await stack.wait_ready(10)
        for _ in range(20):
            await asyncio.sleep(0)
        timers = [
            h
            for h in loop._scheduled  # type: ignore[attr-defined]
            if not h.cancelled() and "modem/sim" not in repr(h)
        ]
        assert timers == []


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (CmeError(10), SimProblemKind.NOT_INSERTED),
        (CmeError(12), SimProblemKind.PUK_REQUIRED),
        (CmeError(13), SimProblemKind.FAILURE),
        (CmeError(16), SimProblemKind.PIN_REJECTED),
        (CmsError(310), SimProblemKind.NOT_INSERTED),
        (CmsError(316), SimProblemKind.PUK_REQUIRED),
    ],
)
def test_sim_error_codes_are_operator_problems(error, kind):
    problem = SimProblem.from_error(error)
    assert problem is not None and problem.kind is kind and problem.fault is Fault.OPERATOR


def test_sim_busy_and_network_errors_are_not_sim_problems():
    assert SimProblem.from_error(CmeError(14)) is None
    assert SimProblem.from_error(CmsError(314)) is None
    assert SimProblem.from_error(CmeError(30)) is None


async def test_pin_entry_with_unknown_outcome_is_not_repeated(monkeypatch):
    # the module goes mute right after the PIN line: the SIM may have counted it
    monkeypatch.setattr(timing, "SIM_COMMAND_TIMEOUT", 0.05)
    sim = SimModem("generic", pin="1234")
    wire = Wire()
    client = AtClient(recording_connector(sim, wire))
    await client.connect()
    session = Session(client, SessionConfig(pin="4321"))
    real_receive = sim.receive

    def receive(data: bytes) -> None:
        real_receive(data)
        if b'AT+CPIN="4321"' in bytes(wire.data):
            sim.fault("hang")

    monkeypatch.setattr(sim, "receive", receive)
    with pytest.raises(CommandTimeout):
        await session.initialize()
    sim.fault("reboot")
    monkeypatch.setattr(sim, "receive", real_receive)
    await asyncio.sleep(0.05)
    with pytest.raises(SimProblem) as ei:
        await session.initialize()
    assert ei.value.kind is SimProblemKind.PIN_REJECTED
    assert wire.count(b'AT+CPIN="4321"') == 1
    session.close()
    await client.close()


async def test_a_sim_urc_after_a_missing_sim_makes_the_session_look_again():
    sim = SimModem("generic", sim_inserted=False)
    stack, _ = sim_stack(sim)
    async with stack:
        with pytest.raises(SimProblem):
            await stack.wait_ready(10)
        sim.sim_inserted = True  # a person inserts the SIM; the module says so
        changed = stack.session.wait_changed()
        stack.client._on_data(b"\r\n+CPIN: READY\r\n")
        await asyncio.wait_for(changed, 10)
        await stack.wait_ready(10)
        assert stack.session.sim_problem is None and stack.session.identity.imsi


async def test_no_sim_on_a_module_without_error_codes_is_reported_after_the_budget(
    monkeypatch, caplog
):
    monkeypatch.setattr(timing, "SIM_BUSY_BUDGET", 0.3)
    monkeypatch.setattr(timing, "RETRY_INITIAL", 0.02)
    sim = SimModem("minimal", sim_inserted=False)  # +CPIN? answers a plain ERROR
    stack, wire = sim_stack(sim)
    async with stack:
        with pytest.raises(SimProblem) as ei:
            await stack.wait_ready(10)
        assert ei.value.kind is SimProblemKind.UNREADABLE
        asked = wire.count(b"AT+CPIN?\r")
        assert asked >= 2  # patient within the budget
        await asyncio.sleep(0.5)
        assert wire.count(b"AT+CPIN?\r") == asked  # then no retry loop, no flood
    assert len(error_lines(caplog)) == 1


async def test_sim_removed_under_a_ready_session_is_reported():
    sim = SimModem("bg96")
    stack, _ = sim_stack(sim)
    async with stack:
        await stack.wait_ready(10)
        changed = stack.session.wait_changed()
        sim.sim_inserted = False
        stack.client._on_data(b"\r\n+CPIN: NOT READY\r\n")  # hot-plug: the SIM is gone
        await asyncio.wait_for(changed, 10)
        problem = stack.session.sim_problem
        assert problem is not None and problem.kind is SimProblemKind.NOT_INSERTED
        assert not stack.session.ready.is_set() and stack.failure is None
