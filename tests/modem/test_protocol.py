"""The sans-I/O AT core on a table of byte streams, fed whole, byte by byte and with junk."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from modem.errors import CmeErrorCode, CmsErrorCode
from modem.protocol import (
    AtProtocol,
    Discarded,
    DiscardReason,
    Echo,
    Event,
    FinalResult,
    Intermediate,
    Prompt,
    Request,
    ResultKind,
    Urc,
)

OK = FinalResult(ResultKind.OK, "OK")
PDU = "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07"

# (name, request or None, stream, expected events)
TABLE: list[tuple[str, Request | None, bytes, list[Event]]] = [
    (
        "csq echo off",
        Request("AT+CSQ", ("+CSQ",)),
        b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n",
        [Intermediate("+CSQ: 20,99"), OK],
    ),
    (
        "csq echo on",
        Request("AT+CSQ", ("+CSQ",)),
        b"AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n",
        [Echo("AT+CSQ"), Intermediate("+CSQ: 20,99"), OK],
    ),
    (
        "cmti inside cmgl listing",
        Request("AT+CMGL=4", ("+CMGL",), pdu_lines=True),
        (
            b"\r\n+CMGL: 0,0,,39\r\n" + PDU.encode() + b'\r\n+CMTI: "SM",1\r\n'
            b"+CMGL: 1,1,,39\r\n" + PDU.encode() + b"\r\n\r\nOK\r\n"
        ),
        [
            Intermediate("+CMGL: 0,0,,39"),
            Intermediate(PDU),
            Urc('+CMTI: "SM",1'),
            Intermediate("+CMGL: 1,1,,39"),
            Intermediate(PDU),
            OK,
        ],
    ),
    (
        "two-line +CMT inside a response",
        Request("AT+CSQ", ("+CSQ",)),
        b"\r\n+CMT: ,39\r\n" + PDU.encode() + b"\r\n+CSQ: 5,0\r\nOK\r\n",
        [Urc("+CMT: ,39", PDU), Intermediate("+CSQ: 5,0"), OK],
    ),
    (
        "two-line +CDS idle",
        None,
        b"\r\n+CDS: 25\r\n0006D60B911326880736F4111011719551401110117195714000\r\n",
        [Urc("+CDS: 25", "0006D60B911326880736F4111011719551401110117195714000")],
    ),
    (
        "prompt then send",
        Request("AT+CMGS=23", ("+CMGS",), prompt=True),
        b"\r\n> ",
        [Prompt()],
    ),
    (
        "prompt with CRLF (SARA quirk)",
        Request("AT+CMGS=23", ("+CMGS",), prompt=True),
        b"AT+CMGS=23\r\r\n>\r\n",
        [Echo("AT+CMGS=23"), Prompt()],
    ),
    (
        "cme numeric",
        Request("AT+CPIN?", ("+CPIN",)),
        b"\r\n+CME ERROR: 10\r\n",
        [
            FinalResult(
                ResultKind.CME_ERROR,
                "+CME ERROR: 10",
                CmeErrorCode.SIM_NOT_INSERTED,
                "SIM not inserted",
            )
        ],
    ),
    (
        "cms verbose",
        Request("AT+CMGS=23", ("+CMGS",), prompt=True),
        b"\r\n+CMS ERROR: SIM busy\r\n",
        [
            FinalResult(
                ResultKind.CMS_ERROR, "+CMS ERROR: SIM busy", CmsErrorCode.SIM_BUSY, "SIM busy"
            )
        ],
    ),
    (
        "cms unknown number kept",
        Request("AT+CMGR=1", ("+CMGR",), pdu_lines=True),
        b"\r\n+CMS ERROR: 777\r\n",
        [FinalResult(ResultKind.CMS_ERROR, "+CMS ERROR: 777", 777, "777")],
    ),
    (
        "numeric V0 ok",
        Request("AT", numeric=True),
        b"0\r",
        [FinalResult(ResultKind.OK, "0")],
    ),
    (
        "stray second OK",
        None,
        b"\r\nOK\r\n",
        [Discarded(DiscardReason.STRAY_RESULT, "OK")],
    ),
    (
        "boot lines idle",
        None,
        b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n",
        [Urc("RDY"), Urc("+CFUN: 1"), Urc("+CPIN: READY")],
    ),
    (
        "registration URC in raw response",
        Request("AT+CGSN", raw=True),
        b'\r\n+CREG: 1,"1A2B","01C3D4E5",7\r\n866425030000001\r\n\r\nOK\r\n',
        [Urc('+CREG: 1,"1A2B","01C3D4E5",7'), Intermediate("866425030000001"), OK],
    ),
    (
        "huawei rssi in response",
        Request("AT+CPMS?", ("+CPMS",)),
        b'\r\n^RSSI: 17\r\n+CPMS: "SM",1,30,"SM",1,30,"SM",1,30\r\n\r\nOK\r\n',
        [Urc("^RSSI: 17"), Intermediate('+CPMS: "SM",1,30,"SM",1,30,"SM",1,30'), OK],
    ),
    (
        "noise bytes",
        Request("AT", numeric=True),
        b"\x00\xff\x00\r\n\x00OK\r\n",
        None,  # checked separately: ends with OK
    ),
    (
        "pdu echo",
        Request("AT+CMGS=23", ("+CMGS",), prompt=True),
        b"AT+CMGS=23\r\r\n> 0011\x1a\r\n+CMGS: 7\r\n\r\nOK\r\n",
        [Echo("AT+CMGS=23"), Prompt(), Echo("0011"), Intermediate("+CMGS: 7"), OK],
    ),
]


def _run(req: Request | None, chunks: list[bytes], pdu_echo: str | None = None) -> list[Event]:
    p = AtProtocol()
    if req is not None:
        p.start(req)
        if pdu_echo:
            p.sent_pdu(pdu_echo)
    out: list[Event] = []
    for c in chunks:
        out.extend(p.feed(c))
    return out


@pytest.mark.parametrize(("name", "req", "stream", "expected"), TABLE, ids=[t[0] for t in TABLE])
@pytest.mark.parametrize("mode", ["whole", "bytewise", "junk"])
def test_table(name, req, stream, expected, mode):
    echo = "0011" if name == "pdu echo" else None
    if mode == "whole":
        chunks = [stream]
    elif mode == "bytewise":
        chunks = [bytes([b]) for b in stream]
    else:
        # junk lines before the stream (NUL noise + a blank line) and after
        chunks = [b"\x00\x00\r\n", stream, b"\x00"]
    events = _run(req, chunks, echo)
    events = (
        [e for e in events if not isinstance(e, Discarded)]
        if expected is None or not any(isinstance(e, Discarded) for e in expected)
        else events
    )
    if expected is None:
        assert events[-1].kind is ResultKind.OK
    else:
        assert events == expected


def test_overlong_line_dropped_then_recovers():
    p = AtProtocol(max_line=64)
    p.start(Request("AT+CSQ", ("+CSQ",)))
    events = p.feed(b"\r\n" + b"A" * 500 + b"\r\n+CSQ: 1,2\r\nOK\r\n")
    assert isinstance(events[0], Discarded)
    assert events[1:] == [Intermediate("+CSQ: 1,2"), OK]
    assert p.buffered == 0


def test_final_result_ends_request_and_second_ok_is_stray():
    p = AtProtocol()
    p.start(Request("AT"))
    events = p.feed(b"\r\nOK\r\n\r\nOK\r\n")
    assert events[0] == OK
    assert isinstance(events[1], Discarded)
    assert p.request is None


def test_prompt_not_emitted_without_prompt_request():
    p = AtProtocol()
    p.start(Request("AT+CSQ", ("+CSQ",)))
    events = p.feed(b"> \r\nOK\r\n")
    assert Prompt() not in events
    assert events[-1] == OK


def test_two_line_urc_followed_by_final_loses_second_line():
    p = AtProtocol()
    p.start(Request("AT"))
    events = p.feed(b"+CMT: ,20\r\nOK\r\n")
    assert events == [Urc("+CMT: ,20", None), OK]


def test_urc_name_args():
    u = Urc('+CMTI: "SM",3')
    assert u.name == "+CMTI"
    assert u.args == '"SM",3'
    assert Urc("RDY").args == ""


ALLOWED = (Echo, Intermediate, Prompt, FinalResult, Urc, Discarded)


@given(
    st.lists(st.binary(max_size=300), max_size=20),
    st.sampled_from(
        [
            None,
            Request("AT+CMGL=4", ("+CMGL",), pdu_lines=True),
            Request("AT+CMGS=9", ("+CMGS",), prompt=True),
            Request("ATI", raw=True),
        ]
    ),
)
def test_arbitrary_bytes_only_declared_events_bounded(chunks, req):
    p = AtProtocol(max_line=256)
    if req is not None:
        p.start(req)
    for c in chunks:
        for e in p.feed(c):
            assert isinstance(e, ALLOWED)
        assert p.buffered <= 256


@given(
    st.lists(
        st.sampled_from(
            [
                b"OK",
                b"ERROR",
                b'+CMTI: "SM",1',
                b"+CMT: ,3",
                b"00AB",
                b"> ",
                b"RDY",
                b"+CMS ERROR: 500",
                b"+CME ERROR: SIM busy",
                b"\r",
                b"\n",
                b"\r\n",
                b"\x00",
                b"+CSQ: 1,2",
                b"0",
            ]
        ),
        max_size=60,
    )
)
def test_arbitrary_token_streams(tokens):
    p = AtProtocol()
    p.start(Request("AT+CSQ", ("+CSQ",), prompt=True, numeric=True))
    for t in tokens:
        for e in p.feed(t):
            assert isinstance(e, ALLOWED)


@given(st.data())
def test_any_chunking_gives_the_same_events(data):
    name, req, stream, _expected = data.draw(st.sampled_from(TABLE))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    echo = "0011" if name == "pdu echo" else None
    assert _run(req, chunks, echo) == _run(req, [stream], echo)


def test_urc_between_cmgr_header_and_pdu_line_keeps_the_pdu():
    pdu_line = "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07"
    p = AtProtocol()
    p.start(Request("AT+CMGR=1", ("+CMGR",), pdu_lines=True))
    stream = b'\r\n+CMGR: 0,,23\r\n+CMTI: "SM",4\r\n' + pdu_line.encode() + b"\r\n\r\nOK\r\n"
    events = p.feed(stream)
    assert events[:3] == [
        Intermediate("+CMGR: 0,,23"),
        Urc('+CMTI: "SM",4'),
        Intermediate(pdu_line),
    ]
    assert isinstance(events[3], FinalResult) and events[3].success


class _ByteByByte(AtProtocol):
    """The reference: every byte through :meth:`AtProtocol._feed_bytes`."""

    def feed(self, data: bytes) -> list:
        events: list = []
        self._feed_bytes(data, events)
        return events


_TOKENS = st.sampled_from(
    [
        b"OK",
        b"ERROR",
        b'+CMTI: "SM",1',
        b"+CMT: ,3",
        b"+CMGS: 12",
        b"+CMGR: 0,,23",
        b"00AB",
        b"AT+CMGS=9",
        b">",
        b"> ",
        b" ",
        b"\r",
        b"\n",
        b"\r\n",
        b"\x00",
        b"\x1a",
        b"\t",
        b"\x07",
        b"\x1b",
        b"\xff",
        b"RDY",
        b"+CMS ERROR: 500",
        b"x" * 30,
        b"0",
    ]
)
_REQUESTS = st.sampled_from(
    [
        None,
        Request("AT+CSQ", ("+CSQ",)),
        Request("AT+CMGR=1", ("+CMGR",), pdu_lines=True),
        Request("AT+CMGS=9", ("+CMGS",), prompt=True),
        Request("AT+CMGS=9", ("+CMGS",), prompt=True, numeric=True),
        Request("ATI", raw=True),
    ]
)


def _state(p: AtProtocol) -> tuple:
    s = p._s
    return (
        bytes(p._buf),
        s.overlong,
        s.skip_prompt_tail,
        s.prompt_seen,
        s.echo_pending,
        s.after_header,
        s.urc_header,
        s.request,
    )


@given(
    st.lists(
        st.tuples(
            st.lists(st.one_of(_TOKENS, st.binary(max_size=12)), max_size=12),
            st.one_of(st.none(), _REQUESTS),
        ),
        max_size=12,
    ),
    st.sampled_from([8, 40, 64, 1024]),
)
@example(  # a ">" buffered before the prompt's request starts, its space after
    [([b">"], None), ([b" ", b"00AB"], Request("AT+CMGS=9", ("+CMGS",), prompt=True))], 1024
)
def test_feed_equals_the_byte_by_byte_reference(steps, max_line):
    """Line by line or byte by byte: the same events, the same state left,
    over prompts, prompt tails, noise, over-long lines (any ``max_line``,
    also under the 40-byte preview) and requests started between chunks."""
    fast, ref = AtProtocol(max_line=max_line), _ByteByByte(max_line=max_line)
    for tokens, req in steps:
        if req is not None:
            for p in (fast, ref):
                p.start(req)
                if req.prompt:
                    p.sent_pdu("00AB")
        chunk = b"".join(tokens)
        assert fast.feed(chunk) == ref.feed(chunk)
        assert _state(fast) == _state(ref)
