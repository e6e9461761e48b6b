"""Module behaviour nobody here wrote: transcripts built from public AT manuals, replayed.

Each transcript is a list of (what the client writes, what the module answers),
in the byte framing the manual documents (V.250 <CR><LF>text<CR><LF>). The
replay peer checks every write byte for byte and answers with the manual's
bytes; the client must produce the expected values. Sources are named per
transcript; response formats are the manuals', message contents are our own
(an SMS-DELIVER from the classic "How are you?" example whose TPDU length is
30 octets).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from modem import commands as C
from modem.client import AtClient
from modem.errors import CmsError, CmsErrorCode

DELIVER = "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07"
DELIVER_LEN = 30


@dataclass
class Step:
    write: bytes
    reply: bytes


class Replay(asyncio.Transport):
    def __init__(self, steps: list[Step]) -> None:
        super().__init__()
        self.steps = list(steps)
        self.protocol: asyncio.Protocol | None = None
        self.buf = b""
        self.mismatch: list[tuple[bytes, bytes]] = []

    def write(self, data: bytes) -> None:
        self.buf += data
        while self.steps and len(self.buf) >= len(self.steps[0].write):
            step = self.steps.pop(0)
            got, self.buf = self.buf[: len(step.write)], self.buf[len(step.write) :]
            if got != step.write:
                self.mismatch.append((step.write, got))
            assert self.protocol is not None
            asyncio.get_running_loop().call_soon(self.protocol.data_received, step.reply)

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


async def replay_client(steps: list[Step]) -> tuple[AtClient, Replay]:
    t = Replay(steps)

    async def connector(factory):
        proto = factory()
        t.protocol = proto
        proto.connection_made(t)
        return t, proto

    client = AtClient(connector)
    await client.connect()
    return client, t


def crlf(*lines: str) -> bytes:
    return b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines)


async def test_simcom_sim7600_cmgl_pdu_with_cmti_inside():
    # SIM7500_SIM7600 Series AT Command Manual V1.07, AT+CMGL (PDU mode):
    # +CMGL: <index>,<stat>,[<alpha>],<length><CR><LF><pdu>... OK; indexes start with zero.
    client, t = await replay_client(
        [
            Step(
                b"AT+CMGL=4\r",
                crlf(f"+CMGL: 0,1,,{DELIVER_LEN}")[:-2]
                + b"\r\n"
                + DELIVER.encode()
                + b'\r\n\r\n+CMTI: "SM",2\r\n'
                + crlf(f"+CMGL: 1,0,,{DELIVER_LEN}")[2:]
                + DELIVER.encode()
                + b"\r\n\r\nOK\r\n",
            )
        ]
    )
    sub = client.subscribe()
    listed = await client.execute(C.cmgl())
    assert [(x.index, x.stat) for x in listed] == [(0, 1), (1, 0)]
    assert (await sub.get(1)).line == '+CMTI: "SM",2'
    assert not t.mismatch
    await client.close()


async def test_simcom_cmgr_pdu_and_empty():
    # SIM7500_SIM7600 manual V1.07, AT+CMGR PDU mode: +CMGR: <stat>,[<alpha>],<length><CR><LF><pdu>
    client, t = await replay_client(
        [
            Step(
                b"AT+CMGR=0\r",
                crlf(f"+CMGR: 1,,{DELIVER_LEN}")[:-2]
                + b"\r\n"
                + DELIVER.encode()
                + b"\r\n"
                + crlf("OK"),
            ),
            Step(b"AT+CMGR=5\r", crlf("OK")),
        ]
    )
    stored = await client.execute(C.cmgr(0))
    assert stored is not None and stored.pdu == DELIVER and stored.stat == 1
    assert await client.execute(C.cmgr(5)) is None
    assert not t.mismatch
    await client.close()


async def test_huawei_mu509_cmgr_framing():
    # HUAWEI MU509 AT Command Interface Specification, 6.15 +CMGR (PDU mode):
    # <CR><LF>+CMGR: <stat>,[<reserved>],<length><CR><LF><pdu><CR><LF><CR><LF>OK<CR><LF>
    reply = (
        b"\r\n+CMGR: 0,,"
        + str(DELIVER_LEN).encode()
        + b"\r\n"
        + DELIVER.encode()
        + b"\r\n\r\nOK\r\n"
    )
    client, _ = await replay_client([Step(b"AT+CMGR=1\r", reply)])
    stored = await client.execute(C.cmgr(1))
    assert stored is not None and stored.length == DELIVER_LEN
    await client.close()


async def test_telit_cmgr_without_alpha():
    # Telit GM862 AT Commands Reference Guide 80000ST10025a, +CMGR (PDU mode):
    # +CMGR: <stat>,<length><CR><LF><pdu>  (no <alpha> field)
    reply = crlf(f"+CMGR: 0,{DELIVER_LEN}")[:-2] + b"\r\n" + DELIVER.encode() + crlf("OK")
    client, _ = await replay_client([Step(b"AT+CMGR=1\r", reply)])
    stored = await client.execute(C.cmgr(1))
    assert stored is not None and stored.pdu == DELIVER
    await client.close()


async def test_nordic_cmgs_example():
    # Nordic nRF91 AT Commands Reference, +CMGS (PDU mode) example:
    # AT+CMGS=42<CR>069144888888F811...<ctrl-z> -> +CMGS: 2, OK
    pdu = (
        "069144888888F811000C9153481032547600000B20D4F29C9E769F4161"
        "D0BC3D07B5CBF379F89C769F416F7B590E62D3CB"
    )
    client, t = await replay_client(
        [Step(b"AT+CMGS=42\r", b"\r\n> "), Step(pdu.encode() + b"\x1a", crlf("+CMGS: 2", "OK"))]
    )
    assert await client.execute(C.cmgs(pdu, 42)) == 2
    assert not t.mismatch
    await client.close()


async def test_fibocom_g510_cmgs_example_and_error():
    # Fibocom G5/G6-Family AT Commands User Manual, +CMGS PDU example:
    # AT+CMGS=24 > 0791795212010095 11FF0B91... <CTRL+Z> -> +CMGS: 128 OK
    pdu = "079179521201009511FF0B917962543940F20008001400410042004300440045"
    client, t = await replay_client(
        [
            Step(b"AT+CMGS=24\r", b"\r\n> "),
            Step(pdu.encode() + b"\x1a", crlf("+CMGS: 128", "OK")),
            Step(b"AT+CMGS=24\r", b"\r\n> "),
            Step(pdu.encode() + b"\x1a", crlf("+CMS ERROR: 42")),
        ]
    )
    assert await client.execute(C.cmgs(pdu, 24)) == 128
    with pytest.raises(CmsError) as ei:
        await client.execute(C.cmgs(pdu, 24))
    assert ei.value.code is CmsErrorCode.CONGESTION and ei.value.transient
    assert not t.mismatch
    await client.close()


async def test_telit_prompt_four_characters_and_echo():
    # Telit LE910C AT Commands Reference Guide, +CMGS: after the command line the module
    # sends the four-character prompt <CR><LF><greater_than><space>; with echo on (ATE1),
    # the typed PDU is echoed back.
    pdu = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
    client, t = await replay_client(
        [
            Step(b"AT+CMGS=23\r", b"AT+CMGS=23\r\r\n> "),
            Step(pdu.encode() + b"\x1a", pdu.encode() + b"\x1a" + crlf("+CMGS: 7", "OK")),
        ]
    )
    assert await client.execute(C.cmgs(pdu, 23)) == 7
    assert not t.mismatch
    await client.close()


async def test_ublox_sara_r4_prompt_with_line_end():
    # u-blox SARA-R4 AT Commands Manual (UBX-17003787), +CMGS: the prompt shows as '>'
    # followed by a line end before the PDU is typed.
    pdu = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
    client, t = await replay_client(
        [Step(b"AT+CMGS=23\r", b"\r\n>\r\n"), Step(pdu.encode() + b"\x1a", crlf("+CMGS: 9", "OK"))]
    )
    assert await client.execute(C.cmgs(pdu, 23)) == 9
    assert not t.mismatch
    await client.close()


async def test_quectel_bg96_startup_urcs_and_cpms():
    # Quectel BG96 AT Commands Manual V2.1: after power-on RDY, +CFUN: 1, +CPIN: READY,
    # +QUSIM: 1, +QIND: SMS DONE are reported; AT+CPMS? answers the read form.
    client, _ = await replay_client(
        [Step(b"AT+CPMS?\r", crlf('+CPMS: "SM",2,50,"SM",2,50,"SM",2,50', "OK"))]
    )
    sub = client.subscribe()
    client._on_data(crlf("RDY", "+CFUN: 1", "+CPIN: READY", "+QUSIM: 1", "+QIND: SMS DONE"))
    names = [(await sub.get(1)).name for _ in range(5)]
    assert names == ["RDY", "+CFUN", "+CPIN", "+QUSIM", "+QIND"]
    st = await client.execute(C.cpms_query())
    assert st.total == (50, 50, 50) and st.used == (2, 2, 2)
    await client.close()


async def test_quectel_ec25_cme_verbose_after_cmee2():
    # Quectel EC2x AT Commands Manual: with AT+CMEE=2 errors are verbose texts.
    client, _ = await replay_client([Step(b"AT+CPIN?\r", crlf("+CME ERROR: SIM not inserted"))])
    from modem.errors import CmeError, CmeErrorCode

    with pytest.raises(CmeError) as ei:
        await client.execute(C.cpin_query())
    assert ei.value.code is CmeErrorCode.SIM_NOT_INSERTED
    await client.close()
