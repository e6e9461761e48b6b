"""Direct delivery (+CNMI <mt>=2, +CMT) and its acknowledgement, TS 27.005
§3.4.1 and §3.4.4: RP-ACK, RP-ERROR (+CNMA=2), a missing or late +CNMA."""

from __future__ import annotations

import re

import pdu

from .conftest import eventually

CMT = re.compile(rb"\+CMT: ,(\d+)\r\n([0-9A-F]+)\r\n")


async def next_cmt(dte, n: int = 1) -> str:
    out = await dte.wait(lambda b: len(CMT.findall(b)) >= n)
    return CMT.findall(out)[n - 1][1].decode()


async def test_cnma_ack_is_recorded_and_not_delivered_again(sim, dte):
    await dte.cmd("AT+CSMS=1;+CNMI=2,2,0,0,0")
    sim.deliver("once")
    line = await next_cmt(dte)
    assert await dte.cmd("AT+CNMA=1") == "\r\nOK\r\n"
    assert [(a.result, a.pdu.hex().upper()) for a in sim.mt_acks] == [("ack", line)]
    assert sim.pending_mt == []
    assert sim.retry_pending() == []
    assert await dte.cmd("AT") == "\r\nOK\r\n"  # no +CMT came again


async def test_cnma_2_negative_ack_makes_the_network_deliver_again(sim, dte):
    await dte.cmd("AT+CSMS=1;+CNMI=2,2,0,0,0")
    sim.deliver("nack me")
    first = await next_cmt(dte)
    dte.buf.clear()
    dte.write("AT+CNMA=2\r")
    again = await next_cmt(dte)  # the network retries after network_retry_delay
    assert again == first
    assert pdu.decode(again).tp_ud.text == "nack me"
    assert [a.result for a in sim.mt_acks] == ["nack"]
    # Routing stays (an explicit RP-ERROR is no missed acknowledgement).
    assert await dte.cmd("AT+CNMI?") == "\r\n+CNMI: 2,2,0,0,0\r\n\r\nOK\r\n"
    assert await dte.cmd("AT+CNMA") == "\r\nOK\r\n"
    assert [a.result for a in sim.mt_acks] == ["nack", "ack"]
    assert len(sim.storage()) == 0


async def test_cnma_with_deliver_report_pdu(sim, dte):
    await dte.cmd("AT+CSMS=1;+CNMI=2,2,0,0,0")
    sim.deliver("report")
    await next_cmt(dte)
    # SMS-DELIVER-REPORT for RP-ERROR: TP-MTI 0, TP-FCS 0xD2 ("error in MS"), TP-PI 0.
    assert await dte.cmd("AT+CNMA=2,3") == "\r\n> "
    dte.buf.clear()
    dte.write("00D200\x1a")
    again = await next_cmt(dte)
    assert pdu.decode(again).tp_ud.text == "report"
    assert sim.mt_acks[0].result == "nack" and sim.mt_acks[0].report == bytes.fromhex("00D200")
    # A report of the wrong length is refused and acknowledges nothing.
    assert await dte.cmd("AT+CNMA=0,2") == "\r\n> "
    assert await dte.send_body("0000FF\x1a") == "\r\n+CMS ERROR: 304\r\n"
    assert len(sim.mt_acks) == 1
    assert await dte.cmd("AT+CNMA=0,2") == "\r\n> "
    assert await dte.send_body("0000\x1a") == "\r\nOK\r\n"
    assert sim.mt_acks[1].result == "ack" and sim.mt_acks[1].report == b"\x00\x00"


async def test_cnma_n_is_pdu_mode_only(sim, dte):
    await dte.cmd("AT+CSMS=1;+CNMI=2,2,0,0,0;+CMGF=1")
    sim.deliver("text")
    await dte.wait_for(b"+CMT: ")
    assert await dte.cmd("AT+CNMA=2") == "\r\n+CMS ERROR: 305\r\n"
    assert await dte.cmd("AT+CNMA") == "\r\nOK\r\n"
    assert [a.result for a in sim.mt_acks] == ["ack"]


async def test_missing_ack_resets_routing_and_the_network_delivers_again(sim, dte):
    await dte.cmd("AT+CSMS=1;+CNMI=2,2,0,0,0")
    sim.deliver("no ack")
    line = await next_cmt(dte)
    await eventually(lambda: len(sim.storage()) == 1)
    assert [(a.result, a.pdu.hex().upper()) for a in sim.mt_acks] == [("timeout", line)]
    # TS 27.005 §3.4.1: <mt> and <ds> are 0 now; the retry was stored silently.
    assert await dte.cmd("AT+CNMI?") == "\r\n+CNMI: 2,0,0,0,0\r\n\r\nOK\r\n"
    assert sim.storage().get(1).pdu.hex().upper() == line
    # The late +CNMA finds nothing to acknowledge.
    assert await dte.cmd("AT+CNMA") == "\r\n+CMS ERROR: 340\r\n"
