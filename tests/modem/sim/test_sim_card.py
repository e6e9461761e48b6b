"""The SIM card: PIN and PUK retry counters, no SIM, a SIM busy after boot
(TS 27.007 §8.3 and §9.2.1, ETSI TS 102 221 §9.4)."""

from __future__ import annotations

import asyncio

import pytest

from modem.sim import SimModem

from .conftest import Dte, fast_timing


async def unlock(d: Dte, line: str) -> None:
    """Send a +CPIN that unlocks: OK, then the SIM-ready lines (URCs)."""
    d.buf.clear()
    d.write(line + "\r")
    out = await d.wait_for(b"\r\nOK\r\n")
    assert b"ERROR" not in out
    await d.wait_for(b"SMS Ready\r\n")
    d.buf.clear()


async def test_wrong_pin_counts_down_and_third_blocks_with_puk(make_sim, connect):
    sim = make_sim(pin="1234")
    d = connect(sim)
    await d.cmd("ATE0")
    assert await d.cmd("AT+CPIN?") == "\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n"
    for left in (2, 1, 0):
        assert await d.cmd('AT+CPIN="0000"') == "\r\n+CME ERROR: 16\r\n"
        assert sim.pin_attempts_left == left
    assert await d.cmd("AT+CPIN?") == "\r\n+CPIN: SIM PUK\r\n\r\nOK\r\n"
    # The right PIN no longer helps; SIM commands ask for the PUK.
    assert await d.cmd('AT+CPIN="1234"') == "\r\n+CME ERROR: 12\r\n"
    assert await d.cmd("AT+CIMI") == "\r\n+CME ERROR: 12\r\n"
    assert await d.cmd("AT+CMGL=4") == "\r\n+CMS ERROR: 316\r\n"
    assert sim.sim_state == "puk"
    assert not sim.registered


async def test_right_pin_resets_the_counter(make_sim, connect):
    sim = make_sim(pin="1234")
    d = connect(sim)
    await d.cmd("ATE0")
    await d.cmd('AT+CPIN="0000"')
    await d.cmd('AT+CPIN="0000"')
    assert sim.pin_attempts_left == 1
    await unlock(d, 'AT+CPIN="1234"')
    assert sim.pin_attempts_left == 3
    assert sim.registered


async def test_puk_unblocks_and_sets_the_new_pin(make_sim, connect):
    sim = make_sim(pin="1234", puk="87654321")
    d = connect(sim)
    await d.cmd("ATE0")
    for _ in range(3):
        await d.cmd('AT+CPIN="9999"')
    assert await d.cmd('AT+CPIN="11111111","4321"') == "\r\n+CME ERROR: 16\r\n"
    assert sim.puk_attempts_left == 9
    await unlock(d, 'AT+CPIN="87654321","4321"')
    assert (sim.pin, sim.pin_attempts_left, sim.puk_attempts_left) == ("4321", 3, 10)
    assert await d.cmd("AT+CPIN?") == "\r\n+CPIN: READY\r\n\r\nOK\r\n"
    assert "310260" in await d.cmd("AT+CIMI")
    # After a reboot the new PIN is asked for.
    sim.fault("reboot")
    await d.wait_for(b"+CPIN: SIM PIN\r\n")
    await d.cmd("ATE0")
    assert await d.cmd('AT+CPIN="1234"') == "\r\n+CME ERROR: 16\r\n"
    await unlock(d, 'AT+CPIN="4321"')


async def test_ten_wrong_puks_block_the_sim_for_good(make_sim, connect):
    sim = make_sim(pin="1234")
    d = connect(sim)
    await d.cmd("ATE0")
    for _ in range(3):
        await d.cmd('AT+CPIN="9999"')
    for _ in range(10):
        assert await d.cmd('AT+CPIN="00000000","1111"') == "\r\n+CME ERROR: 16\r\n"
    assert sim.sim_state == "blocked"
    assert await d.cmd("AT+CPIN?") == "\r\n+CME ERROR: 13\r\n"
    assert await d.cmd(f'AT+CPIN="{sim.puk}","1111"') == "\r\n+CME ERROR: 13\r\n"
    assert await d.cmd("AT+CIMI") == "\r\n+CME ERROR: 13\r\n"
    assert await d.cmd("AT+CPMS?") == "\r\n+CMS ERROR: 313\r\n"


async def test_the_counter_survives_a_reboot(make_sim, connect):
    sim = make_sim(pin="1234")
    d = connect(sim)
    await d.cmd("ATE0")
    await d.cmd('AT+CPIN="0000"')
    await d.cmd('AT+CPIN="0000"')
    sim.fault("reboot")
    await d.wait_for(b"+CPIN: SIM PIN\r\n")
    await d.cmd("ATE0")
    assert sim.pin_attempts_left == 1
    assert await d.cmd('AT+CPIN="0000"') == "\r\n+CME ERROR: 16\r\n"
    sim.fault("reboot")
    await d.wait_for(b"+CPIN: SIM PUK\r\n")
    await d.cmd("ATE0")
    assert await d.cmd("AT+CPIN?") == "\r\n+CPIN: SIM PUK\r\n\r\nOK\r\n"


async def test_puk_needs_a_new_pin(make_sim, connect):
    sim = make_sim(pin="1234")
    d = connect(sim)
    await d.cmd("ATE0")
    for _ in range(3):
        await d.cmd('AT+CPIN="9999"')
    assert await d.cmd(f'AT+CPIN="{sim.puk}"') == "\r\n+CME ERROR: 12\r\n"
    assert await d.cmd(f'AT+CPIN="{sim.puk}","12"') == "\r\n+CME ERROR: 50\r\n"
    assert sim.puk_attempts_left == 10


async def test_no_sim_inserted(make_sim, connect):
    sim = make_sim(sim_inserted=False)
    d = connect(sim)
    await d.cmd("ATE0")
    assert await d.cmd("AT+CPIN?") == "\r\n+CME ERROR: 10\r\n"
    assert await d.cmd("AT+CIMI") == "\r\n+CME ERROR: 10\r\n"
    assert await d.cmd("AT+CCID") == "\r\n+CME ERROR: 10\r\n"
    assert await d.cmd("AT+CMGL=4") == "\r\n+CMS ERROR: 310\r\n"
    assert await d.cmd("AT+CGMI") == "\r\nSIMULATED\r\n\r\nOK\r\n"
    assert not sim.registered
    assert sim.sim_state == "absent"


async def test_sim_busy_after_each_boot(make_sim, connect):
    sim = make_sim("bg96", sim_busy_time=0.05)
    d = connect(sim)
    await d.cmd("ATE0")
    assert sim.sim_state == "busy"
    assert await d.cmd("AT+CPIN?") == "\r\n+CME ERROR: 14\r\n"
    assert await d.cmd("AT+CIMI") == "\r\n+CME ERROR: 14\r\n"
    assert await d.cmd("AT+CPMS?") == "\r\n+CMS ERROR: 314\r\n"
    assert await d.cmd("AT+CGMM") == "\r\nBG96\r\n\r\nOK\r\n"
    await d.wait_for(b"+QIND: SMS DONE\r\n")
    assert await d.cmd("AT+CPIN?") == "\r\n+CPIN: READY\r\n\r\nOK\r\n"
    assert sim.registered
    sim.fault("reboot")
    await d.wait_for(b"RDY\r\n")
    await d.wait(lambda b: sim.state == "cmd")
    await d.cmd("ATE0")
    assert await d.cmd("AT+CIMI") == "\r\n+CME ERROR: 14\r\n"
    await d.wait_for(b"+QIND: SMS DONE\r\n")
    assert "310260" in await d.cmd("AT+CIMI")


def test_negative_busy_time_is_refused():
    with pytest.raises(ValueError, match="sim_busy_time"):
        SimModem(sim_busy_time=-1, timing=fast_timing())


def test_busy_sim_without_a_loop_is_ready_at_once():
    sim = SimModem(sim_busy_time=1.0, timing=fast_timing())
    assert sim.sim_state == "ready" and sim.registered


async def test_reboot_restarts_the_busy_time(make_sim, connect):
    """A SIM-initialisation timer of an earlier boot does not end the busy
    time of the next one (loop timers never fire early: a lower bound only)."""
    loop = asyncio.get_running_loop()
    sim = make_sim(sim_busy_time=0.2, timing=fast_timing(boot_delay=0.0))
    d = connect(sim)
    await d.cmd("ATE0")
    rebooted = asyncio.Event()
    sim._later(0.1, rebooted.set)  # half way through the first busy time
    await rebooted.wait()
    sim.fault("reboot")
    t_reboot = loop.time()
    await d.wait_for(b"RDY\r\n")
    d.buf.clear()
    out = await d.wait_for(b"SMS Ready\r\n", timeout=3)
    assert loop.time() - t_reboot >= 0.2  # the first boot's timer (due at 0.1) was ignored
    assert out.count(b"+CPIN: READY") == 1
    assert sim.sim_state == "ready"
