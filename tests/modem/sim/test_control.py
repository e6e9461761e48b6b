"""The JSON-lines control interface (in-process) and the CLI (subprocesses)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import pytest

import pdu
from modem.sim.control import ControlServer, control_request, parse_address


@pytest.fixture
async def ctl(sim, tmp_path):
    server = ControlServer(sim, str(tmp_path / "ctl.sock"))
    await server.start()
    yield server
    await server.close()


def test_parse_address():
    assert parse_address("/tmp/x.sock") == ("unix", "/tmp/x.sock")
    assert parse_address("unix:rel.sock") == ("unix", "rel.sock")
    assert parse_address("127.0.0.1:7001") == ("tcp", 7001)
    with pytest.raises(ValueError, match="loopback"):
        parse_address("0.0.0.0:7001")
    with pytest.raises(ValueError):
        parse_address("nonsense")


async def test_control_operations(sim, ctl, dte):
    addr = ctl.address
    assert await control_request(addr, {"op": "deliver", "text": "hi"}) == [1]
    assert await control_request(addr, {"op": "deliver", "hex": "0102"}) == [2]
    assert await control_request(
        addr, {"op": "deliver", "text": "x", "include_sid": "end", "sender": "000"}
    ) == [3]
    stored = await control_request(addr, {"op": "storage", "name": "SM"})
    assert [s["index"] for s in stored] == [1, 2, 3]
    assert pdu.decode(stored[0]["pdu"]).tp_ud.text == "hi"
    hexs, n = pdu.cmgs_pdu(pdu.submit_parts("2936", "ok")[0])
    await dte.cmd(f"AT+CMGS={n}")
    await dte.send_body(hexs + "\x1a")
    sent = await control_request(addr, {"op": "sent"})
    assert sent[0]["mr"] == 0 and sent[0]["text"] == "ok"
    await control_request(addr, {"op": "clear_mo"})
    assert await control_request(addr, {"op": "sent"}) == []
    await control_request(addr, {"op": "set_signal", "rssi": 9, "ber": 1})
    assert await dte.cmd("AT+CSQ") == "\r\n+CSQ: 9,1\r\n\r\nOK\r\n"
    await control_request(addr, {"op": "set_registered", "registered": False})
    assert not sim.registered
    await control_request(addr, {"op": "fault", "name": "register", "args": []})
    status = await control_request(addr, {"op": "status"})
    assert status["registered"] and status["profile"] == "generic"
    assert (status["sim"], status["pin_attempts_left"], status["puk_attempts_left"]) == (
        "ready",
        3,
        10,
    )
    with pytest.raises(RuntimeError, match="unknown fault"):
        await control_request(addr, {"op": "fault", "name": "nope"})
    with pytest.raises(RuntimeError, match="unknown op"):
        await control_request(addr, {"op": "nope"})


async def test_control_tcp_and_bad_json(sim):
    server = ControlServer(sim, "127.0.0.1:0")
    await server.start()
    try:
        r, w = await asyncio.open_connection("127.0.0.1", int(server.where))
        w.write(b"{not json\n[1]\n")
        a = json.loads(await r.readline())
        b = json.loads(await r.readline())
        assert not a["ok"] and not b["ok"]
        w.close()
        await w.wait_closed()
        assert await control_request(server.address, {"op": "status"})
    finally:
        await server.close()


# -- CLI (subprocesses, short-lived) ------------------------------------------------------


def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modem.sim", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def cli_sim(tmp_path):
    link = str(tmp_path / "ttySIM0")
    ctl = str(tmp_path / "ctl.sock")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modem.sim",
            "--pty",
            link,
            "--tcp",
            "127.0.0.1:0",
            "--profile",
            "bg96",
            "--control",
            ctl,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        while True:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "no output"
            lines.append(line.strip())
            if line.startswith("ready"):
                break
        tcp = next(x for x in lines if x.startswith("tcp:")).split("socket://")[1]
        yield {"link": link, "ctl": ctl, "tcp": tcp, "proc": proc}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert "stopped" in out
    assert not os.path.exists(link) and not os.path.exists(ctl)


def test_cli_session(cli_sim):
    import serial

    ctl = cli_sim["ctl"]
    r = run_cli("deliver", "--control", ctl, "--include-sid", "start", "hello")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [0]
    assert run_cli("deliver", "--control", ctl, "--ucs2", "--from", "+15551234567", "дом").stdout
    port = serial.serial_for_url(f"socket://{cli_sim['tcp']}", timeout=2)
    try:
        port.write(b"ATE0\r")
        assert port.read_until(b"OK\r\n").endswith(b"OK\r\n")
        port.write(b"AT+CMGL=4\r")
        listing = port.read_until(b"OK\r\n").decode()
        assert listing.count("+CMGL:") == 2
        hexs, n = pdu.cmgs_pdu(pdu.submit_parts("2936", "pong")[0])
        port.write(f"AT+CMGS={n}\r".encode())
        assert port.read_until(b"> ").endswith(b"> ")
        port.write(hexs.encode() + b"\x1a")
        assert b"+CMGS: 0" in port.read_until(b"OK\r\n")
    finally:
        port.close()
    r = run_cli("sent", "--control", ctl, "--json")
    item = json.loads(r.stdout.splitlines()[0])
    assert item["text"] == "pong" and item["mr"] == 0 and item["recipient"] == "2936"
    assert "mr=0 to=2936 pong" in run_cli("sent", "--control", ctl).stdout
    assert run_cli("fault", "--control", ctl, "unregister").returncode == 0
    assert '"registered": false' in run_cli("status", "--control", ctl).stdout
    bad = run_cli("fault", "--control", ctl, "meteor")
    assert bad.returncode == 2 and "unknown fault" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_needs_an_endpoint():
    r = run_cli()
    assert r.returncode == 2 and "--pty" in r.stderr


def test_cli_baud_alone_means_115200():
    """Review fix: line-rate emulation is 115200 baud by default when enabled;
    --baud needed a number."""
    from modem.sim.__main__ import _serve_parser

    assert _serve_parser().parse_args(["--pty", "/tmp/x", "--baud"]).baud == 115200
    assert _serve_parser().parse_args(["--pty", "/tmp/x", "--baud", "9600"]).baud == 9600
    assert _serve_parser().parse_args(["--pty", "/tmp/x"]).baud is None
