"""python -m modem against sim://PROFILE."""

from __future__ import annotations

import io
import json

import pytest

from modem.__main__ import main


def run(argv):
    out = io.StringIO()
    rc = main(argv, out)
    return rc, out.getvalue()


@pytest.mark.parametrize("profile", ["bg96", "sara-r410m"])
def test_info_json(profile):
    rc, out = run(["--port", f"sim://{profile}", "info", "--json"])
    info = json.loads(out)
    assert rc == 0 and info["imei"] and info["registration"] and info["storage"]["total"]


def test_at_and_send():
    rc, out = run(["--port", "sim://generic", "at", "AT+CSQ"])
    assert rc == 0 and out.splitlines() == ["+CSQ: 20,99", "OK"]
    rc, out = run(["--port", "sim://generic", "send", "--to", "2936", "hello"])
    assert rc == 0 and out.strip().isdigit()
    rc, out = run(["--port", "sim://generic", "send", "--to", "2936", "--binary", "00ff"])
    assert rc == 0
    rc, out = run(["--port", "sim://generic", "send", "--to", "2936", "--ucs2", "héllo"])
    assert rc == 0


def test_listen_demo_json():
    rc, out = run(["--port", "sim://ec25", "listen", "--json", "--demo", "--count", "5"])
    lines = [json.loads(x) for x in out.splitlines()]
    assert rc == 0 and len(lines) == 5
    assert lines[0]["text"] == "ping" and lines[0]["sender"] == "2936" and lines[0]["id"]
    assert lines[-1]["data"] == "010203"


def test_at_error_exit_code():
    rc, _ = run(["--port", "sim://generic", "at", "AT+NOPE"])
    assert rc == 1
