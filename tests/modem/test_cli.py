"""python -m modem against sim://PROFILE: in-process and as a real subprocess."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import modem.sim
from modem.__main__ import DEMO_COMMANDS, main
from modem.client import open_connector
from modem.errors import UsageError
from modem.sim import SimModem


def run(argv):
    out = io.StringIO()
    rc = main(argv, out)
    return rc, out.getvalue()


@pytest.fixture
def sims(monkeypatch):
    """Every SimModem a sim:// URL creates in this test (to look at its SIM)."""
    made: list[modem.sim.SimModem] = []

    class Captured(modem.sim.SimModem):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append(self)

    monkeypatch.setattr(modem.sim, "SimModem", Captured)
    return made


@pytest.mark.parametrize("profile", ["bg96", "sara-r410m"])
def test_info_json(profile):
    rc, out = run(["--port", f"sim://{profile}", "info", "--json"])
    info = json.loads(out)
    assert rc == 0 and info["imei"] and info["registration"] and info["storage"]["total"]
    assert info["sim"] == "READY" and info["signal"]["rssi"] == 20


def test_info_with_a_sim_problem_still_answers(capsys, caplog):
    rc, out = run(["--port", "sim://bg96?pin=1234", "info", "--json"])
    info = json.loads(out)
    assert rc == 0
    assert info["model"] == "BG96" and info["imei"] == "866425030000001"
    assert info["iccid"] == "8901260000000000025"  # readable without the PIN
    assert info["sim"].startswith("SIM PIN required")
    assert info["imsi"] == "unknown" and info["storage"] == "unknown"
    assert "Traceback" not in capsys.readouterr().err
    assert [r.levelname for r in caplog.records].count("ERROR") == 1  # loud, once


def test_at_and_send(sims):
    rc, out = run(["--port", "sim://generic", "at", "AT+CSQ"])
    assert rc == 0 and out.splitlines() == ["+CSQ: 20,99", "OK"]
    rc, out = run(["--port", "sim://generic", "send", "--to", "2936", "hello"])
    assert rc == 0 and out.strip().isdigit()
    assert sims[-1].mo_log[0].message.tp_ud.text == "hello"
    rc, out = run(["--port", "sim://generic", "send", "--to", "2936", "--binary", "00ff"])
    assert rc == 0 and sims[-1].mo_log[0].message.tp_ud.data == b"\x00\xff"
    rc, out = run(["--port", "sim://generic", "send", "--to", "2936", "--ucs2", "héllo"])
    assert rc == 0 and sims[-1].mo_log[0].message.tp_ud.text == "héllo"


def test_alphanumeric_address_only_when_asked(sims, capsys):
    rc, _ = run(["--port", "sim://generic", "send", "--to", "abc", "hi"])
    assert rc == 2 and "--alphanumeric" in capsys.readouterr().err
    assert not sims  # refused before the port was opened
    rc, _ = run(["--port", "sim://generic", "send", "--alphanumeric", "--to", "abc", "hi"])
    assert rc == 0
    da = sims[-1].mo_log[0].message.tp_da
    assert str(da) == "abc" and da.ton == 5  # TS 23.040 §9.1.2.5 alphanumeric


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--port", "sim://nope", "info"], "unknown simulated module 'nope'"),
        (["--port", "sim://generic?bogus=1", "info"], "unknown option 'bogus'"),
        (["--port", "sim://generic", "send", "--to", "2936", "--binary", "zz"], "hex"),
        (["--port", "sim://generic", "send", "--to", "", "hi"], "1-20 digits"),
        (["--port", "sim://generic", "send", "--to", "1" * 30, "hi"], "1-20 digits"),
        (["--port", "sim://generic", "send", "--to", "2936", "x" * 40_000], "255 parts"),
        (["--port", "sim://generic", "send", "--to", "2936", "a\udc80b"], "lone surrogate"),
        (["--port", "sim://generic", "listen", "--count", "-1"], "--count"),
        (["--port", "sim://generic", "listen", "--count", "many"], "--count"),
        (["--port", "sim://generic", "nope"], "invalid choice"),
        (["--port", "loop://", "info"], "not supported"),
    ],
)
def test_bad_arguments_give_one_error_line_and_exit_2(argv, says, capsys):
    rc, out = run(argv)
    err = capsys.readouterr().err
    assert rc == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and says in err
    assert len(err) < 400 and "Traceback" not in err


def test_send_while_unregistered_says_so(capsys):
    argv = ["--port", "sim://generic?registered=0", "send", "--registration-timeout", "0.2"]
    rc, _ = run([*argv, "--to", "2936", "hi"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: not registered within 0.2 s")


def test_send_waits_for_coverage_coming_back(sims):
    # the URC wakes the send; a query every REGISTRATION_QUERY_INTERVAL (30 s) could not
    argv = ["--port", "sim://generic?register_after=1", "send", "--registration-timeout", "20"]
    rc, out = run([*argv, "--to", "2936", "hi"])
    assert rc == 0 and out.strip().isdigit() and sims[-1].mo_log


def test_listen_demo_json():
    rc, out = run(["--port", "sim://ec25", "listen", "--json", "--demo", "--count", "5"])
    lines = [json.loads(x) for x in out.splitlines()]
    assert rc == 0 and len(lines) == 5
    assert [x["text"] for x in lines[:4]] == DEMO_COMMANDS  # in order, whole
    assert all(x["sender"] == "2936" and x["type"] == "deliver" for x in lines)
    assert lines[-1]["data"] == "010203" and lines[-1]["text"] is None
    assert len({x["id"] for x in lines}) == 5  # one identity each


class ClosesAfter(io.StringIO):
    """An output whose reader goes away after ``n`` flushed lines."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.left = n

    def flush(self) -> None:
        if self.left == 0:
            raise BrokenPipeError(32, "Broken pipe")
        self.left -= 1


def test_listen_keeps_a_message_whose_line_was_not_flushed(sims, capsys):
    out = ClosesAfter(1)
    rc = main(["--port", "sim://generic", "listen", "--demo"], out)
    assert rc == 141 and "Traceback" not in capsys.readouterr().err
    assert out.getvalue().splitlines()[0].endswith("2936: ping")
    stored = [m.pdu_hex for m in sims[-1].storage("SM").messages()]
    assert len(stored) >= 4  # "status" (flush failed) and the rest stay on the SIM


def test_at_error_exit_code():
    rc, _ = run(["--port", "sim://generic", "at", "AT+NOPE"])
    assert rc == 1


# -- as a user runs it: a real subprocess, a real pipe ---------------------------------


@pytest.fixture
def spawn():
    """Start ``python -m modem ARGS``; whatever the test does, the process ends with it."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*argv: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modem", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()


@pytest.mark.parametrize("read", [1, 5])
def test_listen_piped_into_head_exits_when_the_reader_is_gone(read, spawn):
    # read=5: every demo line is out; nothing more will be written, so only
    # watching the pipe (not a failed write) can tell that the reader left
    proc = spawn("--port", "sim://ec25", "listen", "--demo")
    assert proc.stdout is not None and proc.stderr is not None
    lines = [proc.stdout.readline() for _ in range(read)]
    proc.stdout.close()  # `head -N` exits
    rc = proc.wait(timeout=60)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert lines[0].decode().rstrip().endswith("2936: ping")
    assert rc == 141 and "Traceback" not in err and "Exception ignored" not in err


def test_sigterm_stops_listen_cleanly(spawn):
    proc = spawn("-v", "--port", "sim://ec25", "listen", "--json", "--demo")
    assert proc.stdout is not None and proc.stderr is not None
    err = b""
    while b": ready (" not in err:  # -v logs readiness; the SIGTERM handler is set by then
        line = proc.stderr.readline()
        assert line, err
        err += line
    lines = [json.loads(proc.stdout.readline()) for _ in range(5)]
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=60)
    err += proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    assert [x["text"] for x in lines[:4]] == DEMO_COMMANDS
    assert rc == 143 and b"Traceback" not in err


# -- argument parsers: a result or our one declared error, for any input --------------


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_sim_url_parser_returns_or_raises_usage_error(tail):
    try:
        connector = open_connector("sim://" + tail)
    except UsageError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert connector.sim_modem is not None


@settings(max_examples=200, deadline=None)
@given(
    to=st.text(max_size=30),
    text=st.text(max_size=400),
    binary=st.booleans(),
    alphanumeric=st.booleans(),
)
def test_send_arguments_are_checked_or_refused_with_one_error(to, text, binary, alphanumeric):
    import argparse

    from modem.__main__ import _ArgError, _content

    args = argparse.Namespace(
        to=to, text=text, binary=binary, ucs2=False, alphanumeric=alphanumeric
    )
    try:
        content, _ = _content(args)
    except _ArgError as exc:
        assert str(exc) and "\n" not in str(exc) and len(str(exc)) < 400
    else:
        assert isinstance(content, bytes if binary else str)


async def test_one_shot_command_recovers_a_module_left_at_the_prompt(tmp_path):
    import serial

    from modem.sim.endpoints import PtyEndpoint

    sim = SimModem("generic")
    link = str(tmp_path / "ttyUSB2")
    pty = PtyEndpoint(sim, link)
    pty.start()
    try:
        # another program typed AT+CMGS=<n> and was killed at the prompt
        killed = serial.serial_for_url(link, timeout=0)
        killed.write(b"AT+CMGS=23\r")
        killed.close()
        await asyncio.sleep(0.05)
        assert sim.state == "prompt"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "modem",
            "--port",
            link,
            "at",
            "AT+CSQ",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    finally:
        pty.close()
    assert proc.returncode == 0, err
    assert out.decode().splitlines() == ["+CSQ: 20,99", "OK"] and not sim.mo_log
