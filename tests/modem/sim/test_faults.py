"""Fault injection: reboot, garbage, drop, corrupt, delay, hang, cms-error, full, registration."""

from __future__ import annotations

import asyncio

import pytest

import pdu

from .conftest import eventually, settle


async def test_reboot_resets_volatile_keeps_sim_storage(make_sim, connect):
    sim = make_sim("bg96")
    d = connect(sim)
    await d.cmd("ATE0")
    await d.cmd("AT+CMGF=1;+CMEE=2")
    sim.deliver("kept")
    await d.wait_for(b'+CMTI: "SM",0\r\n')
    d.buf.clear()
    sim.fault("reboot")
    out = await d.wait_for(b"+QIND: SMS DONE\r\n")
    assert out == (
        b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\n+QUSIM: 1\r\n\r\n+QIND: SMS DONE\r\n"
    )
    out = await d.cmd("AT+CMGF?;+CMEE?")
    assert out == "AT+CMGF?;+CMEE?\r\r\n+CMGF: 0\r\n\r\n+CMEE: 1\r\n\r\nOK\r\n"
    assert len(sim.storage("SM")) == 1


async def test_reboot_drops_pending_command(sim, dte):
    sim.fault("delay", 200)
    dte.write("AT+CGMI\r")
    await settle()
    assert sim.state == "busy"
    sim.fault("reboot")
    await dte.wait_for(b"SMS Ready\r\n")
    assert b"SIMULATED" not in dte.buf
    sim.fault("delay", 0)
    assert "OK" in await dte.cmd("AT")


async def test_reboot_on_next_line_and_input_ignored_while_booting(sim, dte):
    sim.fault("reboot", "next")
    dte.write("AT+CGMI\r")
    await dte.wait_for(b"RDY\r\n")
    assert b"SIMULATED" not in dte.buf
    await dte.wait_for(b"SMS Ready\r\n")


async def test_reboot_after_ms(sim, dte):
    sim.fault("reboot", 20)
    assert await dte.cmd("AT") == "\r\nOK\r\n"
    await dte.wait_for(b"RDY\r\n")


async def test_garbage(sim, dte):
    dte.buf.clear()
    sim.fault("garbage", 10)
    await dte.wait(lambda b: len(b) >= 10)
    assert len(dte.buf) == 10
    assert "OK" in await dte.cmd("AT")


async def test_drop_and_corrupt_are_seeded(make_sim, connect):
    async def run(kind: str) -> bytes:
        sim = make_sim(seed=3)
        d = connect(sim)
        sim.fault(kind, 0.5)
        for _ in range(4):
            d.write("AT+CGMI\r")
        await settle(100)  # every hop is one loop callback
        return bytes(d.buf)

    clean = b"AT+CGMI\r\r\nSIMULATED\r\n\r\nOK\r\n" * 4
    dropped = await run("drop")
    assert len(dropped) < len(clean)
    assert dropped == await run("drop")
    corrupted = await run("corrupt")
    assert len(corrupted) == len(clean) and corrupted != clean


async def test_delay_before_answers(sim, dte):
    sim.fault("delay", 50)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await dte.cmd("AT") == "\r\nOK\r\n"
    assert loop.time() - t0 >= 0.045
    # Input during the delay is processed after the answer.
    dte.write("AT+CGMI\rAT+CGMM\r")
    await dte.wait_for(b"SIM-MODEM\r\n\r\nOK\r\n")
    assert bytes(dte.buf) == b"\r\nSIMULATED\r\n\r\nOK\r\n\r\nSIM-MODEM\r\n\r\nOK\r\n"


async def test_hang_until_reboot(sim, dte):
    sim.fault("hang")
    dte.write("AT\r")
    await asyncio.sleep(0.02)
    assert dte.buf == b""
    sim.deliver("silent")  # stored, nothing said
    sim.fault("reboot")
    await dte.wait_for(b"SMS Ready")
    assert "OK" in await dte.cmd("ATE0")


async def test_cms_error_on_next_sends(sim, dte):
    sim.fault("cms-error", 500, 2)
    hexs, n = pdu.cmgs_pdu(pdu.submit_parts("2936", "x")[0])
    for _ in range(2):
        await dte.cmd(f"AT+CMGS={n}")
        assert await dte.send_body(hexs + "\x1a") == "\r\n+CMS ERROR: 500\r\n"
    await dte.cmd(f"AT+CMGS={n}")
    assert await dte.send_body(hexs + "\x1a") == "\r\n+CMGS: 0\r\n\r\nOK\r\n"
    assert len(sim.mo_log) == 1


async def test_unregister_register_faults(sim, dte):
    await dte.cmd("AT+CREG=1")
    sim.fault("unregister")
    await dte.wait_for(b"+CREG: 2\r\n")
    sim.fault("register")
    await dte.wait_for(b"+CREG: 1\r\n")


async def test_storage_full_fault_on_me(sim, dte):
    sim.fault("storage-full", "ME")
    assert sim.storage("ME").full
    assert not sim.storage("SM").full


def test_unknown_fault(sim):
    with pytest.raises(ValueError, match="unknown fault"):
        sim.fault("meteor")
    with pytest.raises(ValueError):
        sim.fault("drop", 3)


async def test_clear_faults(sim, dte):
    sim.fault("delay", 100)
    sim.fault("clear")
    await eventually(lambda: sim.state == "cmd")
    assert await dte.cmd("AT") == "\r\nOK\r\n"


async def test_delay_echoes_on_arrival(sim, connect):
    d = connect(sim)
    sim.fault("delay", 30)
    d.write("AT\rAT\r")
    out = await d.wait_for(b"OK\r\n\r\nOK\r\n")
    assert out == b"AT\rAT\r\r\nOK\r\n\r\nOK\r\n"


async def test_reboot_mid_cmgs_prompt_sends_nothing(sim, dte):
    """Review check: a reset while the "> " prompt is open drops the message;
    the PDU typed after the reset is command-state noise (echoed: echo is on
    again after power-up), nothing reaches the network, AT answers OK."""
    hexs, n = pdu.cmgs_pdu(pdu.submit_parts("2936", "lost")[0])
    assert (await dte.cmd(f"AT+CMGS={n}")).endswith("> ")
    dte.write(hexs[:10])
    await settle()
    sim.fault("reboot")
    await dte.wait_for(b"SMS Ready\r\n")
    assert sim.state == "cmd"
    dte.buf.clear()
    dte.write(hexs[10:] + "\x1a")
    await dte.wait_for(hexs[10:].encode())  # echoed: echo is on after power-up
    assert await dte.cmd("AT") == "AT\r\r\nOK\r\n"
    assert sim.mo_log == []


async def test_reboot_next_also_catches_a_slash_repeat(sim, dte):
    """Review fix: "reboot next" resets instead of answering the next command
    line; a line repeated with A/ (V.250 §6.2.10) was answered normally."""
    await dte.cmd("AT+CGMI")
    sim.fault("reboot", "next")
    dte.buf.clear()
    dte.write("A/")
    await dte.wait_for(b"SMS Ready\r\n")
    assert b"SIMULATED" not in dte.buf


async def test_urc_in_answer_goes_before_the_information_response(make_sim, connect):
    sim = make_sim("generic")
    d = connect(sim)
    await d.cmd("ATE0")
    await d.cmd("AT+CREG=2")
    sim.fault("urc-in-answer", "CREG", '+CREG: 1,"00C3","0010ABCD",7')
    # a command of another name, and a +CREG answer with no information response,
    # leave it pending
    assert await d.cmd("AT+CSQ") == "\r\n+CSQ: 20,99\r\n\r\nOK\r\n"
    assert await d.cmd("AT+CREG=2") == "\r\nOK\r\n"
    assert sim.faults.urc_in_answer
    out = await d.cmd("AT+CREG?")
    assert out.startswith('\r\n+CREG: 1,"00C3","0010ABCD",7\r\n\r\n+CREG: 2,1,')
    assert out.endswith("\r\nOK\r\n")
    assert not sim.faults.urc_in_answer
    assert (await d.cmd("AT+CREG?")).startswith("\r\n+CREG: 2,1,")  # once only
    sim.fault("urc-in-answer", "+CEREG", "+CEREG: 2")
    sim.fault("clear")
    assert (await d.cmd("AT+CEREG?")).startswith("\r\n+CEREG: 0,")


async def test_glitch_puts_0xff_before_the_text_of_the_next_line(make_sim, connect):
    sim = make_sim("generic")
    d = connect(sim)
    await d.cmd("ATE0")
    sim.fault("glitch", 3)
    d.buf.clear()
    d.write("AT\r")
    assert await d.wait_for(b"OK\r\n") == b"\r\n\xff\xff\xffOK\r\n"
    d.buf.clear()
    assert await d.cmd("AT") == "\r\nOK\r\n"  # the next line only
    sim.fault("glitch")
    sim.fault("clear")
    assert await d.cmd("AT") == "\r\nOK\r\n"


async def test_error_on_answers_the_next_runs_of_a_command(make_sim, connect):
    sim = make_sim("generic")
    d = connect(sim)
    await d.cmd("ATE0")
    sim.fault("error-on", "CMGL", 500, 2)
    sim.fault("error-on", "+CSQ", 100)
    assert await d.cmd("AT+CMGL=4") == "\r\n+CMS ERROR: 500\r\n"  # an SMS command: +CMS
    assert await d.cmd("AT+CSQ") == "\r\n+CME ERROR: 100\r\n"  # any other: +CME
    assert await d.cmd("AT+CMGL=4") == "\r\n+CMS ERROR: 500\r\n"
    assert await d.cmd("AT+CMGL=4") == "\r\nOK\r\n"  # COUNT runs only
    sim.fault("error-on", "+CMGL", 500, 5)
    sim.fault("clear")
    assert await d.cmd("AT+CMGL=4") == "\r\nOK\r\n"
