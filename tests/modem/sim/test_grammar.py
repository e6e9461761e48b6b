"""Hypothesis: any sequence of valid and invalid lines never crashes the
simulated module and never leaves it unresponsive (unless "hang" was asked).

Runs the module synchronously (no event loop: timers fire at once), which
covers every command path quickly.
"""

from __future__ import annotations

import asyncio
import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

import pdu
from modem.sim import PROFILES, SimModem, SimTiming, create_sim_connection

from .conftest import Dte


class Sink:
    def __init__(self) -> None:
        self.out = bytearray()

    def sim_output(self, data: bytes) -> None:
        self.out += data

    def sim_hangup(self) -> None:
        pass


NAMES = [
    "+CMGF",
    "+CPMS",
    "+CNMI",
    "+CSMS",
    "+CMGL",
    "+CMGR",
    "+CMGD",
    "+CMGS",
    "+CMGW",
    "+CMSS",
    "+CNMA",
    "+CSCA",
    "+CSMP",
    "+CSDH",
    "+CSCS",
    "+CREG",
    "+CGREG",
    "+CEREG",
    "+COPS",
    "+CFUN",
    "+CSQ",
    "+CMEE",
    "+CPIN",
    "+CGMI",
    "+CGMM",
    "+CGMR",
    "+CGSN",
    "+CIMI",
    "+CCID",
    "+QCCID",
    "+CICCID",
    "+NOPE",
    "E",
    "V",
    "Q",
    "Z",
    "&F",
    "I",
    "S0",
    "S7",
    "S3",
    "S4",
    "S5",
    "A/",
]
#: Whole lines that steer the module into the SMS states random arguments rarely reach.
SMS_SETUP = st.sampled_from(
    [
        "AT+CSMS=1",
        "AT+CSMS=0",
        "AT+CNMI=2,2,0,1,0",
        "AT+CNMI=1,2,0,1,0",
        "AT+CNMI=0,1,0,2,1",
        "AT+CNMI=3,3,0,2,0",
        "AT+CNMI=2,1,0,0,0",
        "AT+CNMA",
        "AT+CNMA=2",
        "AT+CNMA=0",
        'AT+CPMS="ME","MT","MT"',
        'AT+CPMS="SM","SM","SM"',
        "AT+CMGF=1",
        "AT+CMGF=0",
        'AT+CSCS="UCS2"',
        'AT+CSCS="IRA"',
        'AT+CSCS="GSM"',
        'AT+CSCS="HEX"',
        "AT+CSDH=1",
        "AT+CSMP=49,167,0,8",
        "AT+CSMP=17,167,0,4",
        "AT+CSMP=17,167,0,0",
        "AT+CMGL=4",
        'AT+CMGL="ALL"',
        "AT+CMGR=0",
        "AT+CMGR=1",
        "AT+CMGD=1,4",
        "AT+CMSS=0",
        "AT+CMSS=1",
        "ATV0",
        "ATQ1",
        "AT+CMEE=2",
        "AT+CFUN=1,1",
        "AT+CFUN=4",
        "AT+CFUN=1",
        "AT+COPS=2",
        "AT+COPS=0",
        "AT+CREG=2",
        "AT+CEREG=1",
        "AT+CPIN=1234",
    ]
).map(lambda line: line.encode() + b"\r")
ARG = st.one_of(
    st.integers(-2, 300).map(str),
    st.sampled_from(
        [
            '"SM"',
            '"ME"',
            '"MT"',
            '"XX"',
            '"ALL"',
            '"REC UNREAD"',
            '"2936"',
            '""',
            '"UCS2"',
            '"GSM"',
            '"IRA"',
            '"1234"',
            "",
            '"unterminated',
        ]
    ),
    st.text(alphabet='0123456789,;"?=+ABCxyz ', max_size=8),
)
FORM = st.sampled_from(["", "?", "=?", "="])


@st.composite
def command_line(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(1, 3))
    parts = []
    for _ in range(n):
        name = draw(st.sampled_from(NAMES))
        form = draw(FORM)
        args = ",".join(draw(st.lists(ARG, max_size=4))) if form == "=" else ""
        if not name.startswith("+") and form == "=":
            form, args = "", str(draw(st.integers(0, 3)))
        parts.append(name + form + args)
    prefix = draw(st.sampled_from(["AT", "at", "At", "xxAT"]))
    return (prefix + ";".join(parts)).encode() + b"\r"


def pdu_body(draw: st.DrawFn) -> bytes:
    text = draw(st.text(max_size=30))
    try:
        hexs, n = pdu.cmgs_pdu(pdu.submit_parts("2936", text, srr=draw(st.booleans()))[0])
    except pdu.PduError:
        hexs, n = "0011", 1
    n = n + draw(st.sampled_from([0, 0, 0, 1, -1]))
    return f"AT+CMGS={n}\r{hexs}".encode() + draw(st.sampled_from([b"\x1a", b"\x1b", b""]))


@st.composite
def send(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return pdu_body(draw)
    body = draw(st.text(alphabet="abc 123\r\n@\x7f\x00\xe9", max_size=20)).encode("latin-1")
    cmd = draw(st.sampled_from([b'+CMGS="2936"', b'+CMGW="+15551234567"', b"+CMGW", b"+CMGW=10,2"]))
    end = draw(st.sampled_from([b"\x1a", b"\x1b", b""]))
    return b"AT+CMGF=1;" + cmd + b"\r" + body + end


ACTION = st.one_of(
    command_line(),
    SMS_SETUP,
    send(),
    st.binary(max_size=40),
    st.text(alphabet='ATat+=?;,"\r\n\x08/0123456789', max_size=60).map(str.encode),
    st.just(b"A/"),
    st.integers(500, 700).map(lambda n: b"AT" + b"X" * n + b"\r"),
    st.tuples(st.just("deliver"), st.text(max_size=200), st.sampled_from([None, "start", "end"])),
    st.tuples(
        st.just("deliver-kind"),
        st.sampled_from(
            [
                {"message_class": 0},
                {"message_class": 2},
                {"message_class": 3},
                {"encoding": "ucs2"},
                {"encoding": "8bit"},
                {"duplicate": True},
                {"pdu": "00"},
                {"pdu": "0004"},
                {"pdu": "07911326040000F0040B911346610089F60000"},
            ]
        ),
    ),
    st.tuples(
        st.just("fault"),
        st.sampled_from(
            [
                "reboot",
                "garbage",
                "cms-error",
                "storage-full",
                "unregister",
                "register",
                "hang",
                "disconnect",
                "drop",
                "corrupt",
                "clear",
            ]
        ),
    ),
    st.just(("retry",)),
)


@given(st.lists(ACTION, max_size=25), st.sampled_from(sorted(PROFILES)))
def test_never_crashes_and_stays_responsive(actions, profile):
    sim = SimModem(profile, timing=SimTiming(boot_delay=0, status_report_delay=0))
    sink = Sink()
    sim.attach(sink)
    hung = False
    for action in actions:
        if isinstance(action, bytes):
            sim.receive(action)
        elif action[0] == "deliver":
            _, text, sid = action
            # Text no alphabet can carry: the codec says so with PduError.
            with contextlib.suppress(pdu.PduError):
                sim.deliver(text, include_sid=sid)
        elif action[0] == "deliver-kind":
            kw = dict(action[1])
            content = b"\x01\x02" if kw.get("encoding") == "8bit" else "hi"
            sim.deliver(None if "pdu" in kw else content, **kw)
        elif action[0] == "retry":
            sim.retry_pending()
        else:
            name = action[1]
            args = {"cms-error": ("310",), "drop": ("0.2",), "corrupt": ("0.2",)}.get(name, ())
            sim.fault(name, *args)
            if name == "hang":
                hung = True
            if name == "reboot":
                hung = False
    # Close any prompt, end any partial line, reset V/Q/E, then probe.
    sim.fault("clear")
    sim.attach(sink)  # a "disconnect" detached it (no loop: the port is back at once)
    sim.receive(b"\x1b")
    sim.receive(bytes([sim.s3]))
    sim.receive(b"ATZ" + bytes([sim.s3]))
    sink.out.clear()
    sim.receive(b"AT+CGMI\r")
    if hung:
        assert sink.out == b""
        sim.fault("reboot")
        sink.out.clear()
        sim.receive(b"AT+CGMI\r")
    assert sink.out.endswith(b"\r\nOK\r\n"), bytes(sink.out)
    sim.close()


ASYNC_ACTION = st.one_of(
    command_line(),
    SMS_SETUP,
    send(),
    st.binary(max_size=20),
    st.tuples(
        st.just("fault"),
        st.sampled_from(
            [
                "delay",
                "drop",
                "corrupt",
                "garbage",
                "reboot",
                "disconnect",
                "unregister",
                "register",
            ]
        ),
    ),
    st.tuples(
        st.just("deliver"),
        st.text(alphabet="abc {}€", max_size=200),
        st.sampled_from([None, "start"]),
    ),
)


@settings(max_examples=40)
@given(
    st.lists(ASYNC_ACTION, max_size=12),
    st.sampled_from(["whole", "bytewise", "lossy"]),
    st.integers(0, 3),
)
def test_async_never_unresponsive(actions, delivery, seed):
    """The same with timers on a real loop, through the in-process transport."""
    asyncio.run(_async_run(actions, delivery, seed))


async def _async_run(actions, delivery, seed) -> None:
    timing = SimTiming(
        boot_delay=0.001,
        status_report_delay=0.0,
        network_retry_delay=0.001,
        reconnect_delay=0.005,
        cnma_timeout=0.01,
    )
    sim = SimModem("bg96", seed=seed, timing=timing)
    opts = {"delivery": delivery, "loss": 0.2, "seed": seed}
    t, p = create_sim_connection(Dte, sim, **opts)
    try:
        for action in actions:
            if isinstance(action, bytes):
                t.write(action)
            elif action[0] == "deliver":
                sim.deliver(action[1], include_sid=action[2])
            else:
                name = action[1]
                arg = {"delay": ("5",), "drop": ("0.3",), "corrupt": ("0.3",)}.get(name, ())
                sim.fault(name, *arg)
            await asyncio.sleep(0)
        # Faults off, wait for a possible reboot/reconnect, then probe on a clean line.
        sim.fault("clear")
        async with asyncio.timeout(2):
            while not sim.connectable or sim.state in ("boot", "busy"):
                await asyncio.sleep(0.001)
        t.close()
        t, p = create_sim_connection(Dte, sim)
        p.write("\x1b\r")
        p.write("ATZ\r")
        out = await p.wait(lambda b: b.endswith(b"OK\r\n"), timeout=2)
        assert out.endswith(b"OK\r\n")
    finally:
        t.close()
        await asyncio.sleep(0)
        sim.close()
