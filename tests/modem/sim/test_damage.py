"""Deterministic damage: the next PDU line damaged, damaged stored records,
arbitrary unsolicited lines (line noise that reads as +CMT)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pdu
from modem.sim.codec import build_delivers
from modem.sim.core import DAMAGE_MODES, damage_pdu_line
from modem.sim.storage import REC_READ

from .conftest import eventually

CMT = re.compile(rb"\+CMT: ,(\d+)\r\n([^\r]*)\r\n")


@given(st.binary(min_size=1, max_size=300))
def test_damage_modes_exact(octets):
    line = octets.hex().upper()
    n = len(octets)
    assert len(damage_pdu_line(line, "drop-octet")) == 2 * (n - 1)
    flipped = damage_pdu_line(line, "flip")
    assert len(flipped) == len(line) and flipped != line
    assert bytes.fromhex(flipped) != octets
    assert damage_pdu_line(line, "truncate") == line[: 2 * (n // 2)]
    nonhex = damage_pdu_line(line, "nonhex")
    assert len(nonhex) == len(line) and "ZZ" in nonhex
    with pytest.raises(ValueError):
        bytes.fromhex(nonhex)


def test_damage_of_an_empty_line_and_unknown_mode():
    for mode in DAMAGE_MODES:
        assert damage_pdu_line("", mode) == ""
    with pytest.raises(ValueError, match="unknown damage mode 'melt'"):
        damage_pdu_line("00", "melt")


def a_deliver(text: str) -> str:
    (raw,) = build_delivers(
        "2936",
        text,
        scts=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        encoding=None,
        ref=0,
        smsc="+15550000000",
    )
    return raw.hex().upper()


@pytest.mark.parametrize("mode", DAMAGE_MODES)
async def test_damage_next_cmt_keeps_the_header_length(sim, dte, mode):
    await dte.cmd("AT+CNMI=2,2,0,0,0")
    good = a_deliver("the same message twice")
    sim.fault("damage-next-pdu", mode)
    sim.deliver(pdu=good)
    sim.deliver(pdu=good)
    out = await dte.wait(lambda b: len(CMT.findall(b)) >= 2)
    (l1, p1), (l2, p2) = CMT.findall(out)
    assert l1 == l2  # <length> as it was
    assert p2.decode() == good
    assert p1.decode() == damage_pdu_line(good, mode) != good


async def test_damage_next_pdu_of_cmgr_and_cmgl_then_intact(sim, dte):
    sim.deliver("stored")
    m = sim.storage().get(1)
    intact = m.pdu_hex
    damaged = damage_pdu_line(intact, "drop-octet")
    sim.fault("damage-next-pdu", "drop-octet", 2)
    assert await dte.cmd("AT+CMGR=1") == f"\r\n+CMGR: 0,,{m.length}\r\n{damaged}\r\n\r\nOK\r\n"
    assert await dte.cmd("AT+CMGL=4") == f"\r\n+CMGL: 1,1,,{m.length}\r\n{damaged}\r\n\r\nOK\r\n"
    assert await dte.cmd("AT+CMGL=4") == f"\r\n+CMGL: 1,1,,{m.length}\r\n{intact}\r\n\r\nOK\r\n"
    assert m.pdu_hex == intact  # the stored record itself is intact


async def test_damage_next_pdu_of_cds(sim, dte):
    await dte.cmd("AT+CNMI=2,1,0,1,0")
    sim.fault("damage-next-pdu", "truncate")
    hexs, n = pdu.cmgs_pdu(pdu.submit_parts("2936", "x", srr=True)[0])
    await dte.cmd(f"AT+CMGS={n}")
    dte.buf.clear()
    dte.write(hexs + "\x1a")
    cds = re.compile(rb"\+CDS: (\d+)\r\n([0-9A-F]*)\r\n")
    out = await dte.wait(lambda b: cds.search(b) is not None)
    length, line = cds.search(out).groups()
    assert sim.unrouted_status_reports == []
    # Truncated to half its octets; the header still gives the full TPDU length.
    assert len(line) // 2 < int(length)


@pytest.mark.parametrize(
    ("record", "length", "shown"),
    [
        (bytes.fromhex("0791551010010201040B915155214365F7000021"), 40, None),  # framing != length
        (b"", 0, ""),  # an empty PDU
        (bytes(300), 292, None),  # over 255 octets
        ("this is not hex", 7, "this is not hex"),  # random text
    ],
)
async def test_store_raw_records_are_printed_as_they_are_every_time(
    sim, dte, record, length, shown
):
    idx = sim.store_raw(record, length=length, stat=REC_READ)
    line = shown if shown is not None else record.hex().upper()
    for _ in range(2):
        assert await dte.cmd(f"AT+CMGR={idx}") == f"\r\n+CMGR: 1,,{length}\r\n{line}\r\n\r\nOK\r\n"
    for _ in range(2):
        assert await dte.cmd("AT+CMGL=4") == f"\r\n+CMGL: {idx},1,,{length}\r\n{line}\r\n\r\nOK\r\n"
    assert await dte.cmd(f"AT+CMGD={idx}") == "\r\nOK\r\n"
    assert sim.storage().used == 0


async def test_store_raw_default_length_notify_and_errors(sim, dte):
    await dte.cmd("AT+CNMI=2,1,0,0,0")
    dte.buf.clear()
    idx = sim.store_raw(bytes.fromhex("00AABB"), notify=True)
    await dte.wait_for(f'+CMTI: "SM",{idx}\r\n'.encode())
    assert sim.storage().get(idx).length == 2  # the octets after the SMSC field
    with pytest.raises(ValueError, match="stat is 0-3"):
        sim.store_raw(b"", stat=4)
    with pytest.raises(ValueError, match="length must be >= 0"):
        sim.store_raw(b"", length=-1)
    sim.fault("storage-full")
    with pytest.raises(ValueError, match="storage SM is full"):
        sim.store_raw(b"")


async def test_urc_fault_injects_line_noise_that_reads_as_cmt(sim, dte):
    dte.buf.clear()
    sim.fault("urc", "+CMT: ,23", "not hex at all")
    assert await dte.wait_for(b"not hex at all\r\n") == b"\r\n+CMT: ,23\r\n\r\nnot hex at all\r\n"
    assert sim.mt_acks == [] and sim.storage().used == 0
    # Held while a command is answered, like every URC.
    sim.fault("delay", 20)
    dte.write("AT+CGMI\r")
    await eventually(lambda: sim.state == "busy")
    sim.fault("urc", '+CMTI: "SM",9')
    out = await dte.wait_for(b'+CMTI: "SM",9\r\n')
    assert out.index(b"OK\r\n") < out.index(b"+CMTI")
