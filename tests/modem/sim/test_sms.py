"""TS 27.005 SMS commands of the simulated module: storage, routing, sending."""

from __future__ import annotations

import re

import pytest

import pdu
from modem.sim import SimModem

from .conftest import eventually, settle


def submit_hex(text: str = "reply", to: str = "2936", **kw) -> tuple[str, int]:
    return pdu.cmgs_pdu(pdu.submit_parts(to, text, **kw)[0])


def stored_text(sim: SimModem, index: int, mem: str = "SM") -> str:
    m = sim.storage(mem).get(index)
    assert m is not None
    msg = pdu.decode(m.pdu)
    return msg.tp_ud.text


# -- configuration commands ------------------------------------------------------


async def test_cmgf_forms(dte):
    assert await dte.cmd("AT+CMGF=?") == "\r\n+CMGF: (0,1)\r\n\r\nOK\r\n"
    assert await dte.cmd("AT+CMGF?") == "\r\n+CMGF: 0\r\n\r\nOK\r\n"
    assert await dte.cmd("AT+CMGF=2") == "\r\n+CMS ERROR: 303\r\n"


async def test_cpms_forms_and_capacities(sim, dte):
    assert await dte.cmd("AT+CPMS?") == '\r\n+CPMS: "SM",0,30,"SM",0,30,"SM",0,30\r\n\r\nOK\r\n'
    assert await dte.cmd("AT+CPMS=?") == (
        '\r\n+CPMS: ("SM","ME","MT"),("SM","ME","MT"),("SM","ME","MT")\r\n\r\nOK\r\n'
    )
    sim.deliver("one")
    assert await dte.cmd('AT+CPMS="ME","ME","ME"') == "\r\n+CPMS: 0,50,0,50,0,50\r\n\r\nOK\r\n"
    assert await dte.cmd('AT+CPMS="MT"') == "\r\n+CPMS: 1,80,0,50,0,50\r\n\r\nOK\r\n"
    assert await dte.cmd('AT+CPMS="XX"') == "\r\n+CMS ERROR: 302\r\n"


async def test_cnmi_forms(dte):
    assert await dte.cmd("AT+CNMI=?") == "\r\n+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)\r\n\r\nOK\r\n"
    assert await dte.cmd("AT+CNMI?") == "\r\n+CNMI: 0,0,0,0,0\r\n\r\nOK\r\n"
    assert await dte.cmd("AT+CNMI=2,1") == "\r\nOK\r\n"
    assert await dte.cmd("AT+CNMI?") == "\r\n+CNMI: 2,1,0,0,0\r\n\r\nOK\r\n"
    assert await dte.cmd("AT+CNMI=2,4") == "\r\n+CMS ERROR: 303\r\n"


async def test_csms_csca_csmp_csdh(sim, dte):
    assert await dte.cmd("AT+CSMS?") == "\r\n+CSMS: 0,1,1,1\r\n\r\nOK\r\n"
    assert await dte.cmd("AT+CSMS=1") == "\r\n+CSMS: 1,1,1\r\n\r\nOK\r\n"
    assert await dte.cmd("AT+CSMS=?") == "\r\n+CSMS: (0,1)\r\n\r\nOK\r\n"
    assert await dte.cmd("AT+CSCA?") == f'\r\n+CSCA: "{sim.smsc}",145\r\n\r\nOK\r\n'
    assert await dte.cmd('AT+CSCA="+447700900000",145') == "\r\nOK\r\n"
    assert await dte.cmd("AT+CSCA?") == '\r\n+CSCA: "+447700900000",145\r\n\r\nOK\r\n'
    assert await dte.cmd("AT+CSMP?") == "\r\n+CSMP: 17,167,0,0\r\n\r\nOK\r\n"
    assert await dte.cmd("AT+CSMP=49,167,0,8") == "\r\nOK\r\n"
    assert await dte.cmd("AT+CSDH?") == "\r\n+CSDH: 0\r\n\r\nOK\r\n"
    assert await dte.cmd("AT+CSDH=?") == "\r\n+CSDH: (0,1)\r\n\r\nOK\r\n"


# -- MT storage and reading ------------------------------------------------------------


async def test_deliver_store_and_cmti(sim, dte):
    await dte.cmd("AT+CNMI=2,1,0,0,0")
    assert sim.deliver("hello") == [1]
    await dte.wait_for(b'\r\n+CMTI: "SM",1\r\n')
    out = await dte.cmd("AT+CMGR=1")
    m = re.fullmatch(r"\r\n\+CMGR: 0,,(\d+)\r\n([0-9A-F]+)\r\n\r\nOK\r\n", out)
    assert m, out
    msg = pdu.decode(m.group(2))
    assert isinstance(msg, pdu.Deliver)
    assert str(msg.tp_oa) == "2936"
    assert msg.tp_ud.text == "hello"
    assert int(m.group(1)) == len(bytes.fromhex(m.group(2))) - 1 - bytes.fromhex(m.group(2))[0]
    # Reading marked it read.
    assert (await dte.cmd("AT+CMGR=1")).startswith("\r\n+CMGR: 1,,")


async def test_cmgl_stats_pdu_mode(sim, dte):
    sim.deliver("a")
    sim.deliver("b")
    await dte.cmd("AT+CMGR=1")
    out = await dte.cmd("AT+CMGL")  # default: REC UNREAD
    assert out.count("+CMGL:") == 1 and "+CMGL: 2,0,," in out
    out = await dte.cmd("AT+CMGL=4")
    assert "+CMGL: 1,1,," in out and "+CMGL: 2,1,," in out
    assert await dte.cmd("AT+CMGL=0") == "\r\nOK\r\n"
    assert await dte.cmd("AT+CMGL=5") == "\r\n+CMS ERROR: 304\r\n"
    assert await dte.cmd('AT+CMGL="ALL"') == "\r\n+CMS ERROR: 304\r\n"
    assert await dte.cmd("AT+CMGL=?") == "\r\n+CMGL: (0-4)\r\n\r\nOK\r\n"


async def test_cmgl_text_mode(sim, dte):
    sim.deliver("héllo")  # GSM 7-bit has é
    await dte.cmd("AT+CMGF=1")
    out = await dte.cmd('AT+CMGL="REC UNREAD"')
    m = re.fullmatch(
        r'\r\n\+CMGL: 1,"REC UNREAD","2936",,"\d\d/\d\d/\d\d,\d\d:\d\d:\d\d[+-]\d\d"\r\n'
        r"(.*)\r\n\r\nOK\r\n",
        out,
        re.S,
    )
    assert m, out
    assert m.group(1) == "h\x05llo"  # "GSM" TE character set: é is 0x05
    await dte.cmd('AT+CSCS="UCS2"')
    out = await dte.cmd('AT+CMGL="ALL"')
    assert "0068006900E9006C006C006F" not in out
    assert "006800E9006C006C006F" in out
    assert await dte.cmd("AT+CMGL=4") == "\r\n+CMS ERROR: 305\r\n"
    assert "REC UNREAD" in await dte.cmd("AT+CMGL=?")


async def test_cmgr_text_mode_with_csdh(sim, dte):
    sim.deliver(b"\x01\x02\xff", sender="+447700900123")
    await dte.cmd("AT+CMGF=1;+CSDH=1")
    out = await dte.cmd("AT+CMGR=1")
    assert out.startswith('\r\n+CMGR: "REC UNREAD","+447700900123",,"')
    assert ",145,4,0,4," in out  # toa, fo, pid, dcs
    assert "\r\n0102FF\r\n\r\nOK\r\n" in out


async def test_cmgr_empty_and_invalid(sim, dte):
    assert await dte.cmd("AT+CMGR=1") == "\r\n+CMS ERROR: 321\r\n"
    assert await dte.cmd("AT+CMGR=0") == "\r\n+CMS ERROR: 321\r\n"  # generic is 1-based
    assert await dte.cmd("AT+CMGR=31") == "\r\n+CMS ERROR: 321\r\n"
    assert await dte.cmd("AT+CMGR") == "\r\n+CMS ERROR: 304\r\n"


async def test_cmgd_index_and_flags(sim, dte):
    for t in "abcd":
        sim.deliver(t)
    await dte.cmd("AT+CMGR=1")
    await dte.cmd("AT+CMGR=2")
    assert await dte.cmd("AT+CMGD=?") == "\r\n+CMGD: (1,2,3,4),(0-4)\r\n\r\nOK\r\n"
    assert await dte.cmd("AT+CMGD=3") == "\r\nOK\r\n"
    assert await dte.cmd("AT+CMGD=3") == "\r\nOK\r\n"  # already empty: OK
    assert await dte.cmd("AT+CMGD=99") == "\r\n+CMS ERROR: 321\r\n"
    assert await dte.cmd("AT+CMGD=1,1") == "\r\nOK\r\n"  # all read
    assert [m.index for m in sim.storage("SM")] == [4]
    assert await dte.cmd("AT+CMGD=0,4") == "\r\nOK\r\n"
    assert len(sim.storage("SM")) == 0


async def test_cmgw_cmss_and_delflags(sim, dte):
    hexs, n = submit_hex("stored")
    assert await dte.cmd(f"AT+CMGW={n}") == "\r\n> "
    assert await dte.send_body(hexs + "\x1a") == "\r\n+CMGW: 1\r\n\r\nOK\r\n"
    sim.deliver("incoming")
    out = await dte.cmd("AT+CMSS=1")
    assert out == "\r\n+CMSS: 0\r\n\r\nOK\r\n"
    assert sim.mo_log[0].message.tp_ud.text == "stored"
    assert sim.storage().get(1).stat == 3  # STO SENT
    assert await dte.cmd("AT+CMSS=2") == "\r\n+CMS ERROR: 321\r\n"  # a DELIVER
    await dte.cmd("AT+CMGD=1,2")  # read + sent: the unread DELIVER stays
    assert [m.index for m in sim.storage()] == [2]


# -- +CNMI routing matrix -------------------------------------------------------------


@pytest.mark.parametrize(
    ("mt", "cls", "stored", "urc"),
    [
        (0, None, True, None),
        (1, None, True, b'+CMTI: "SM",1'),
        (2, None, False, b"+CMT: ,"),
        (2, 2, True, b'+CMTI: "SM",1'),
        (3, None, True, b'+CMTI: "SM",1'),
        (3, 3, False, b"+CMT: ,"),
    ],
)
async def test_cnmi_mt_matrix(sim, dte, mt, cls, stored, urc):
    await dte.cmd(f"AT+CNMI=2,{mt},0,0,0")
    raw = pdu.encode(pdu.deliver_parts("2936", "x", scts=sim._now(), message_class=cls)[0]).hex()
    idx = sim.deliver(pdu=raw)
    assert (idx == [1]) is stored
    if urc is None:
        assert await dte.cmd("AT") == "\r\nOK\r\n"
    else:
        out = await dte.wait_for(urc)
        if urc.startswith(b"+CMT:"):
            await dte.wait_for(raw.upper().encode() + b"\r\n")
            out = bytes(dte.buf)
            assert out == b"\r\n+CMT: ," + str(len(raw) // 2 - 1).encode() + b"\r\n" + (
                raw.upper().encode() + b"\r\n"
            )


async def test_cnmi_mode0_buffers_until_mode2(sim, dte):
    await dte.cmd("AT+CNMI=0,1")
    sim.deliver("a")
    assert await dte.cmd("AT") == "\r\nOK\r\n"
    dte.write("AT+CNMI=2,1,0,0,0\r")
    await dte.wait_for(b'OK\r\n\r\n+CMTI: "SM",1\r\n')


async def test_urc_held_while_command_line_typed(sim, dte):
    await dte.cmd("AT+CNMI=2,1")
    dte.write("AT+CS")
    await settle()
    sim.deliver("a")
    dte.write("Q\r")
    out = await dte.wait_for(b"+CMTI")
    assert out == b'\r\n+CSQ: 20,99\r\n\r\nOK\r\n\r\n+CMTI: "SM",1\r\n'


async def test_status_report_routing(sim, dte):
    hexs, n = submit_hex("srr", srr=True)
    # ds=1: +CDS direct.
    await dte.cmd("AT+CNMI=2,1,0,1,0")
    await dte.cmd(f"AT+CMGS={n}")
    dte.buf.clear()
    dte.write(hexs + "\x1a")
    out = await dte.wait(lambda b: re.search(rb"\+CDS: \d+\r\n[0-9A-F]+\r\n$", b) is not None)
    assert out.startswith(b"\r\n+CMGS: 0\r\n\r\nOK\r\n\r\n+CDS: ")
    rep = pdu.decode(out.split(b"\r\n")[-2].decode())
    assert isinstance(rep, pdu.StatusReport)
    assert rep.tp_mr == 0 and str(rep.tp_ra) == "2936" and rep.tp_st == 0
    # ds=2: stored, +CDSI.
    await dte.cmd("AT+CNMI=2,1,0,2,0")
    await dte.cmd(f"AT+CMGS={n}")
    dte.buf.clear()
    dte.write(hexs + "\x1a")
    await dte.wait_for(b'+CDSI: "SM",1\r\n')
    assert isinstance(pdu.decode(sim.storage().get(1).pdu), pdu.StatusReport)
    # ds=0: not routed.
    await dte.cmd("AT+CNMI=2,1,0,0,0")
    await dte.cmd(f"AT+CMGS={n}")
    assert await dte.send_body(hexs + "\x1a") == "\r\n+CMGS: 2\r\n\r\nOK\r\n"
    assert await dte.cmd("AT") == "\r\nOK\r\n"
    assert len(sim.unrouted_status_reports) == 1


async def test_cnma_ack_and_timeout(sim, dte):
    await dte.cmd("AT+CSMS=1;+CNMI=2,2,0,0,0")
    assert await dte.cmd("AT+CNMA") == "\r\n+CMS ERROR: 340\r\n"
    sim.deliver("ack me")
    await dte.wait_for(b"+CMT: ,")
    assert await dte.cmd("AT+CNMA") == "\r\nOK\r\n"
    assert sim.pending_mt == []
    # No ack: RP-ERROR to the network, <mt>/<ds> reset (TS 27.005 §3.4.1), the
    # network retries and the message is stored this time.
    sim.deliver("ignored")
    await dte.wait_for(b"+CMT: ,")
    await eventually(lambda: len(sim.storage()) == 1)
    assert await dte.cmd("AT+CNMI?") == "\r\n+CNMI: 2,0,0,0,0\r\n\r\nOK\r\n"
    assert stored_text(sim, 1) == "ignored"


# -- sending ---------------------------------------------------------------------------


async def test_cmgs_pdu_mode_and_mr(sim, dte):
    hexs, n = submit_hex("reply ok")
    for expected_mr in (0, 1):
        assert await dte.cmd(f"AT+CMGS={n}") == "\r\n> "
        assert await dte.send_body(hexs + "\x1a") == f"\r\n+CMGS: {expected_mr}\r\n\r\nOK\r\n"
    assert [r.mr for r in sim.mo_log] == [0, 1]
    rec = sim.mo_log[1]
    assert rec.message.tp_mr == 1
    assert rec.message.tp_ud.text == "reply ok"
    assert rec.pdu == hexs
    j = rec.to_json()
    assert j["mr"] == 1 and j["text"] == "reply ok"
    sim.clear_mo()
    assert sim.mo_log == []


async def test_mr_wraps_mod_256(sim, dte):
    sim._mr = 255
    hexs, n = submit_hex()
    await dte.cmd(f"AT+CMGS={n}")
    assert await dte.send_body(hexs + "\x1a") == "\r\n+CMGS: 255\r\n\r\nOK\r\n"
    await dte.cmd(f"AT+CMGS={n}")
    assert await dte.send_body(hexs + "\x1a") == "\r\n+CMGS: 0\r\n\r\nOK\r\n"


async def test_cmgs_with_echo_on(sim, connect):
    d = connect(sim)
    hexs, n = submit_hex()
    assert await d.cmd(f"AT+CMGS={n}") == f"AT+CMGS={n}\r\r\n> "
    out = await d.send_body(hexs + "\x1a")
    assert out == hexs + "\r\n+CMGS: 0\r\n\r\nOK\r\n"


async def test_cmgs_errors(sim, dte):
    hexs, n = submit_hex()
    await dte.cmd(f"AT+CMGS={n + 1}")
    assert await dte.send_body(hexs + "\x1a") == "\r\n+CMS ERROR: 304\r\n"
    await dte.cmd(f"AT+CMGS={n}")
    assert await dte.send_body("ZZ" + hexs[2:] + "\x1a") == "\r\n+CMS ERROR: 304\r\n"
    bad = "0001000481926300000BE8329BFD06DDDF7236"  # UDL says 11 septets, data short
    await dte.cmd(f"AT+CMGS={len(bad) // 2 - 1}")
    assert await dte.send_body(bad + "\x1a") == "\r\n+CMS ERROR: 304\r\n"
    deliver_hex = pdu.encode(pdu.deliver_parts("1", "x", scts=sim._now())[0]).hex()
    await dte.cmd(f"AT+CMGS={len(deliver_hex) // 2 - 1}")
    assert await dte.send_body(deliver_hex + "\x1a") == "\r\n+CMS ERROR: 304\r\n"
    assert await dte.cmd("AT+CMGS=0") == "\r\n+CMS ERROR: 304\r\n"
    assert await dte.cmd("AT+CMGS=165") == "\r\n+CMS ERROR: 304\r\n"
    # ESC cancels.
    await dte.cmd(f"AT+CMGS={n}")
    assert await dte.send_body(hexs[:6] + "\x1b") == "\r\nOK\r\n"
    assert sim.mo_log == []
    # Unregistered: no network service.
    sim.set_registered(False)
    await dte.cmd(f"AT+CMGS={n}")
    assert await dte.send_body(hexs + "\x1a") == "\r\n+CMS ERROR: 331\r\n"
    # No SMSC in the PDU and none configured.
    sim.set_registered(True)
    await dte.cmd('AT+CSCA=""')
    await dte.cmd(f"AT+CMGS={n}")
    assert await dte.send_body(hexs + "\x1a") == "\r\n+CMS ERROR: 330\r\n"
    assert await dte.cmd("AT") == "\r\nOK\r\n"


async def test_cmgs_text_mode(sim, dte):
    await dte.cmd("AT+CMGF=1")
    assert await dte.cmd('AT+CMGS="2936"') == "\r\n> "
    assert await dte.send_body("hi there\x1a") == "\r\n+CMGS: 0\r\n\r\nOK\r\n"
    msg = sim.mo_log[0].message
    assert str(msg.tp_da) == "2936" and msg.tp_ud.text == "hi there"
    # UCS2 via +CSMP dcs 8: the body is hex.
    await dte.cmd("AT+CSMP=17,167,0,8")
    await dte.cmd('AT+CMGS="+447700900123",145')
    assert await dte.send_body("043F04400438\x1a") == "\r\n+CMGS: 1\r\n\r\nOK\r\n"
    assert sim.mo_log[1].message.tp_ud.text == "при"
    assert await dte.cmd("AT+CMGS") == "\r\n+CMS ERROR: 305\r\n"


async def test_full_storage(sim, dte):
    await dte.cmd("AT+CNMI=2,1")
    sim.fault("storage-full")
    assert await dte.cmd("AT+CPMS?") == '\r\n+CPMS: "SM",30,30,"SM",30,30,"SM",30,30\r\n\r\nOK\r\n'
    hexs, n = submit_hex()
    await dte.cmd(f"AT+CMGW={n}")
    assert await dte.send_body(hexs + "\x1a") == "\r\n+CMS ERROR: 322\r\n"
    # MT refused to the network: kept network-side, delivered when space frees.
    assert sim.deliver("waiting") == []
    assert len(sim.pending_mt) == 1
    dte.buf.clear()
    dte.write("AT+CMGD=5\r")
    await dte.wait_for(b'+CMTI: "SM",5\r\n')
    assert stored_text(sim, 5) == "waiting"
    assert sim.pending_mt == []


async def test_unregistered_mt_held_until_registered(sim, dte):
    await dte.cmd("AT+CNMI=2,1")
    sim.fault("unregister")
    assert sim.deliver("later") == []
    sim.fault("register")
    await dte.wait_for(b'+CMTI: "SM",1')


async def test_deliver_variants(sim, dte):
    assert sim.deliver("x" * 200) == [1, 2]  # concatenated
    a, b = (pdu.decode(sim.storage().get(i).pdu) for i in (1, 2))
    assert a.tp_ud.concat.ref == b.tp_ud.concat.ref
    assert sim.deliver("дом", encoding="ucs2") == [3]
    assert pdu.decode(sim.storage().get(3).pdu).tp_dcs.alphabet == pdu.Alphabet.UCS2
    assert sim.deliver(b"\x00\x01") == [4]
    assert pdu.decode(sim.storage().get(4).pdu).tp_ud.data == b"\x00\x01"
    assert sim.deliver("twice", duplicate=True) == [5, 6]
    assert sim.storage().get(5).pdu == sim.storage().get(6).pdu
    assert sim.deliver("start", include_sid="start") == [7]
    assert re.fullmatch(r"DC[0-9a-f]{32} start", stored_text(sim, 7))
    assert sim.deliver("end", include_sid="end", sender="000") == [8]
    assert re.fullmatch(r"end HC[0-9a-f]{32}", stored_text(sim, 8))
    sid = "DC" + "0" * 32
    sim.deliver("given", include_sid="start", sid=sid)
    assert stored_text(sim, 9) == sid + " given"
    sim.deliver("from", sender="+15551234567")
    assert str(pdu.decode(sim.storage().get(10).pdu).tp_oa) == "+15551234567"
    # A raw PDU is passed on as it is, even when it does not decode.
    assert sim.deliver(pdu="0004") == [11]
    out = await dte.cmd("AT+CMGR=11")
    assert out == "\r\n+CMGR: 0,,1\r\n0004\r\n\r\nOK\r\n"


async def test_text_mode_byte_outside_gsm_charset(sim, dte):
    # Found by the grammar test: a byte above 0x7F typed in the "GSM" charset.
    await dte.cmd('AT+CMGF=1;+CMGS="2936"')
    assert await dte.send_body("\x80\x1a") == "\r\n+CMS ERROR: 305\r\n"
    assert await dte.cmd("AT") == "\r\nOK\r\n"


async def test_text_mode_ucs2_message_is_hex_whatever_cscs(sim, dte):
    # TS 27.005 §3.1 <data>: UCS2-coded messages are shown as hex octets.
    sim.deliver("дом", encoding="ucs2")
    await dte.cmd("AT+CMGF=1")
    out = await dte.cmd("AT+CMGR=1")
    assert out.endswith("\r\n04340086043C\r\n\r\nOK\r\n".replace("0086", "043E"))


async def test_text_mode_listing_of_stored_submit(sim, dte):
    await dte.cmd('AT+CMGF=1;+CSDH=1;+CMGW="2936"')
    assert await dte.send_body("draft\x1a") == "\r\n+CMGW: 1\r\n\r\nOK\r\n"
    out = await dte.cmd('AT+CMGL="ALL"')
    assert out == '\r\n+CMGL: 1,"STO UNSENT","2936",,,129,5\r\ndraft\r\n\r\nOK\r\n'


async def test_deliver_message_class(sim, dte):
    await dte.cmd("AT+CNMI=2,2,0,0,0")
    assert sim.deliver("to the SIM", message_class=2) == [1]  # class 2: always stored
    assert pdu.decode(sim.storage().get(1).pdu).tp_dcs.message_class == 2
    assert sim.deliver("direct") == []
    await dte.wait_for(b"+CMT: ,")


async def test_cnma_next_cmt_waits_for_ack_of_previous(sim, dte):
    """Review fix: TS 27.005 §3.4.1 (+CNMI <mt>=2): "TA shall not send another
    +CMT or +CDS result code to TE before previous one is acknowledged"; the
    simulator sent them back to back."""
    await dte.cmd("AT+CSMS=1;+CNMI=2,2,0,0,0")
    sim.deliver("first")
    sim.deliver("second")
    await dte.wait_for(b"+CMT: ,")
    assert await dte.cmd("AT") == "\r\nOK\r\n"  # no second +CMT meanwhile
    assert len(sim.pending_mt) == 1
    dte.write("AT+CNMA\r")
    out = await dte.wait(lambda b: re.search(rb"\+CMT: ,\d+\r\n[0-9A-F]+\r\n", b) is not None)
    assert out.startswith(b"\r\nOK\r\n\r\n+CMT: ,")
    second = pdu.decode(out.split(b"\r\n")[-2].decode())
    assert second.tp_ud.text == "second"
    assert await dte.cmd("AT+CNMA") == "\r\nOK\r\n"
    assert sim.pending_mt == [] and len(sim.storage()) == 0


async def test_cnmi_mode1_busy_link_rejects_direct_message_network_retries(sim, dte):
    """Review fix: with +CNMI <mode>=1 a +CMT that meets a reserved TA-TE link
    is discarded and the message rejected (TS 27.005 §3.4.1); the simulator
    dropped the indication but kept the message acknowledged, so it was lost.
    Now the network gets an error and delivers it again."""
    await dte.cmd("AT+CNMI=1,2,0,0,0")
    dte.write("AT+CS")  # the DTE is typing: link reserved
    await settle()
    sim.deliver("not lost")
    assert len(sim.pending_mt) == 1
    dte.write("Q\r")
    out = await dte.wait(lambda b: re.search(rb"\+CMT: ,\d+\r\n[0-9A-F]+\r\n", b) is not None)
    assert out.startswith(b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n\r\n+CMT: ,")
    assert pdu.decode(out.split(b"\r\n")[-2].decode()).tp_ud.text == "not lost"
    assert sim.pending_mt == []


async def test_cmgl_entries_follow_each_other_without_empty_lines(sim, dte):
    """Review fix: TS 27.005 §3.4.2 (and the Quectel/Telit manuals) list
    entries as "<pdu>[<CR><LF>+CMGL: ...": one information response. The
    simulator wrapped every line in its own <CR><LF> pair, so an empty line
    stood between the entries (and between the lines of ATI)."""
    sim.deliver("one")
    sim.deliver("two")
    a, b = (sim.storage().get(i).pdu_hex for i in (1, 2))
    la, lb = (sim.storage().get(i).length for i in (1, 2))
    assert await dte.cmd("AT+CMGL=4") == (
        f"\r\n+CMGL: 1,0,,{la}\r\n{a}\r\n+CMGL: 2,0,,{lb}\r\n{b}\r\n\r\nOK\r\n"
    )
    assert await dte.cmd("AT+CMGR=1") == f"\r\n+CMGR: 1,,{la}\r\n{a}\r\n\r\nOK\r\n"
    await dte.cmd("AT+CMGF=1")
    out = await dte.cmd('AT+CMGL="ALL"')
    assert re.fullmatch(
        r'\r\n\+CMGL: 1,"REC READ","2936",,"[^"]+"\r\none\r\n'
        r'\+CMGL: 2,"REC READ","2936",,"[^"]+"\r\ntwo\r\n\r\nOK\r\n',
        out,
    )


async def test_text_mode_shows_messages_with_udh_as_hex(sim, dte):
    """Review fix: TS 27.005 §3.1 <data>: when <fo> has TP-UDHI set the TA
    "converts each 8-bit octet into hexadecimal numbers" (the TP-UD, header
    included); the simulator printed the text of each part, dropping the
    concatenation header, so a text-mode client could not join the parts."""
    idx = sim.deliver("x" * 200)
    assert idx == [1, 2]
    await dte.cmd("AT+CMGF=1")
    out = await dte.cmd("AT+CMGR=1")
    data = out.split("\r\n")[2]
    raw = sim.storage().get(1).pdu
    assert data.startswith("050003") and bytes.fromhex(data) == raw[-len(bytes.fromhex(data)) :]
    msg = pdu.decode(raw)
    assert (msg.tp_ud.text or "") in ("x" * 153, "x" * 47)
    # Direct delivery too, while a plain message stays text.
    await dte.cmd("AT+CNMI=2,2,0,0,0")
    sim.deliver("x" * 170)
    out2 = await dte.wait(lambda b: b.count(b"+CMT:") == 2 and b.endswith(b"\r\n"))
    assert re.search(rb'\+CMT: "2936",,"[^"]+"\r\n050003[0-9A-F]+\r\n', out2)
    dte.buf.clear()
    sim.deliver("plain")
    assert (await dte.wait_for(b"plain\r\n")).endswith(b'"\r\nplain\r\n')


async def test_text_mode_hex_and_ira_character_sets(sim, dte):
    """Review fix: TS 27.007 §5.5 +CSCS "HEX": strings are hex of the ME's own
    (GSM 7-bit) codes, "no conversions"; the simulator took HEX text typed at
    the prompt literally and showed stored text unconverted. "IRA" is 7-bit:
    a byte over 0x7F is not IRA (it was taken as Latin-1)."""
    await dte.cmd('AT+CMGF=1;+CSCS="HEX"')
    assert (await dte.cmd('AT+CMGS="32393336"')).endswith("> ")
    assert await dte.send_body("48656C6C6F00\x1a") == "\r\n+CMGS: 0\r\n\r\nOK\r\n"
    sent = sim.mo_log[-1].message
    assert sent.tp_ud.text == "Hello@" and str(sent.tp_da) == "2936"
    sim.deliver("Hi@")
    out = await dte.cmd("AT+CMGR=1")
    assert out.startswith('\r\n+CMGR: "REC UNREAD","32393336",,"')
    assert "\r\n486900\r\n" in out
    await dte.cmd('AT+CSCS="IRA"')
    assert (await dte.cmd('AT+CMGS="2936"')).endswith("> ")
    assert await dte.send_body("caf\xe9\x1a") == "\r\n+CMS ERROR: 305\r\n"
    assert len(sim.mo_log) == 1


async def test_cnma_timeout_keeps_network_order(sim, dte):
    """Review fix: with a second message held behind an unacknowledged +CMT,
    the timeout put the first one behind the second; the network delivers
    them again oldest first."""
    await dte.cmd("AT+CSMS=1;+CNMI=2,2,0,0,0")
    sim.deliver("first")
    sim.deliver("second")
    await dte.wait_for(b"+CMT: ,")
    await eventually(lambda: len(sim.storage()) == 2)
    assert [stored_text(sim, i) for i in (1, 2)] == ["first", "second"]


async def test_text_mode_cmgw_without_address(sim, dte):
    """Review fix: TS 27.005 §3.5.3 +CMGW[=<oa/da>...]: the address is
    optional (a draft); the simulator answered +CMS ERROR: 305. Sending the
    draft needs a <da> in +CMSS; without one the SC refuses it (RP cause 1)."""
    await dte.cmd("AT+CMGF=1")
    assert (await dte.cmd("AT+CMGW")).endswith("> ")
    assert await dte.send_body("draft\x1a") == "\r\n+CMGW: 1\r\n\r\nOK\r\n"
    assert await dte.cmd("AT+CMGR=1") == '\r\n+CMGR: "STO UNSENT","",\r\ndraft\r\n\r\nOK\r\n'
    assert await dte.cmd("AT+CMSS=1") == "\r\n+CMS ERROR: 1\r\n"
    assert await dte.cmd('AT+CMSS=1,"2936"') == "\r\n+CMSS: 0\r\n\r\nOK\r\n"
    assert str(sim.mo_log[-1].message.tp_da) == "2936"
