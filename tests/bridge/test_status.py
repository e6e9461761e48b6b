"""bridge.status: the status socket protocol, `sms-bridge status`, the
Prometheus textfile (checked by a strict parser of the text format)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import re
import socket
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge import cli
from bridge import status as bstatus
from bridge.config import Config, ModemConfig, StatusSection
from bridge.service import Service

WAIT = 30.0

SAMPLE = {
    "state": "running",
    "version": "0.1.0",
    "device_id": "8901260000000000001",
    "signed": True,
    "journal": "/var/lib/sms-bridge/journal.db",
    "uptime_s": 12.5,
    "admitted": 3,
    "modems": {
        "modem0": {
            "port": "/dev/ttyUSB2",
            "ready": True,
            "sim_problem": None,
            "registered": True,
            "registration": "home",
            "signal_dbm": -71,
            "profile": "bg96",
            "model": "BG96",
            "imei": None,
            "iccid": None,
            "failure": None,
        },
        'we"ird\\name': {
            "port": "sim://bg96",
            "ready": False,
            "sim_problem": "busy",
            "registered": False,
            "registration": None,
            "signal_dbm": None,
            "profile": "bg96",
            "model": None,
            "imei": None,
            "iccid": None,
            "failure": None,
        },
    },
    "counters": {"executed": 3, "received": 3, "sent": 2},
    "queues": {"modem0": 1, 'we"ird\\name': 0},
    "journal_bytes": 40960,
    "entries": {"sent": 2, "reply_queued": 1},
    "last_command": {"id": 3, "modem": "modem0", "state": "reply_queued", "summary": "ping",
                     "at": 1.0e9},
    "last_reply": {"id": 2, "modem": "modem0", "state": "sent", "summary": "ping", "at": 1.0e9,
                   "tp_mr": 7},
    "journal_error": None,
    "watchdog": {"interval_s": 15.0, "pings": 9, "withheld": 1, "last_failure": None},
}  # fmt: skip


# --- a strict checker of the Prometheus text format (version 0.0.4) -------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
_SAMPLE = re.compile(
    rf"(?P<name>{_NAME})(?:\{{(?P<labels>{_LABEL}(?:,{_LABEL})*)?\}})? "
    r"(?P<value>[+-]?(?:\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|Inf|NaN))"
)
_LABEL_ONE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def parse_prometheus(text: str) -> dict[str, dict]:
    """Families -> {type, help, samples: {labels tuple: value}}; AssertionError
    on anything the text format does not allow (or that node_exporter refuses:
    a sample without HELP/TYPE first, a family split, a duplicate series)."""
    assert text.endswith("\n") and "\r" not in text
    families: dict[str, dict] = {}
    current = None
    for line in text[:-1].split("\n"):
        assert line, "no empty lines"
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert re.fullmatch(_NAME, name) and help_text
            assert name not in families, f"family {name} twice"
            families[name] = {"help": help_text, "type": None, "samples": {}}
            current = name
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name == current and families[name]["type"] is None
            assert kind in ("counter", "gauge", "untyped", "summary", "histogram")
            families[name]["type"] = kind
        else:
            m = _SAMPLE.fullmatch(line)
            assert m, f"not a sample line: {line!r}"
            assert m["name"] == current and families[current]["type"], line
            labels = tuple(
                (k, re.sub(r"\\(.)", lambda e: "\n" if e[1] == "n" else e[1], v))
                for k, v in _LABEL_ONE.findall(m["labels"] or "")
            )
            assert len({k for k, _ in labels}) == len(labels)
            assert labels not in families[current]["samples"], f"duplicate {line}"
            value = float(m["value"])
            if families[current]["type"] == "counter":
                assert value >= 0 and current.endswith("_total")
            families[current]["samples"][labels] = value
    for name, fam in families.items():
        assert name.startswith("sms_bridge_") and fam["type"] and fam["samples"], name
    return families


def test_prometheus_text_has_every_figure_with_help_type_and_labels():
    fams = parse_prometheus(bstatus.prometheus_text(SAMPLE))
    weird = 'we"ird\\name'
    assert fams["sms_bridge_up"]["samples"] == {(): 1.0}
    assert fams["sms_bridge_uptime_seconds"]["samples"] == {(): 12.5}
    assert fams["sms_bridge_modem_ready"]["samples"] == {
        (("modem", "modem0"),): 1.0,
        (("modem", weird),): 0.0,
    }
    assert fams["sms_bridge_modem_registered"]["type"] == "gauge"
    # no signal figure: no sample (not a made-up value)
    assert fams["sms_bridge_modem_signal_dbm"]["samples"] == {(("modem", "modem0"),): -71.0}
    assert fams["sms_bridge_outbox_queue"]["samples"][(("modem", "modem0"),)] == 1.0
    assert fams["sms_bridge_events_total"]["type"] == "counter"
    assert fams["sms_bridge_events_total"]["samples"] == {
        (("event", "executed"),): 3.0,
        (("event", "received"),): 3.0,
        (("event", "sent"),): 2.0,
    }
    assert fams["sms_bridge_journal_bytes"]["samples"] == {(): 40960.0}
    assert fams["sms_bridge_journal_entries"]["samples"][(("state", "sent"),)] == 2.0
    assert fams["sms_bridge_watchdog_pings_total"]["samples"] == {(): 9.0}
    assert fams["sms_bridge_watchdog_withheld_total"]["samples"] == {(): 1.0}
    assert set(fams) == set(bstatus.METRICS)


def test_prometheus_text_without_watchdog_or_journal_figures_stays_valid():
    data = dict(SAMPLE, watchdog=None, entries=None, counters={}, state="stopping")
    fams = parse_prometheus(bstatus.prometheus_text(data))
    assert fams["sms_bridge_up"]["samples"] == {(): 0.0}
    assert "sms_bridge_watchdog_pings_total" not in fams
    assert "sms_bridge_events_total" not in fams


_PRINTABLE = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=12)


@given(st.dictionaries(_PRINTABLE, st.integers(0, 2**53), max_size=5))
def test_any_module_and_event_names_give_a_valid_file(names):
    modems = {n: dict(SAMPLE["modems"]["modem0"]) for n in names}
    data = dict(SAMPLE, modems=modems, queues={}, counters=names)
    fams = parse_prometheus(bstatus.prometheus_text(data))
    got = {labels[0][1] for labels in fams["sms_bridge_modem_ready"]["samples"]} if names else set()
    assert got == set(names)


def test_a_control_character_in_a_label_cannot_split_the_line():
    data = dict(SAMPLE, modems={"a\rb\nc": SAMPLE["modems"]["modem0"]}, queues={})
    fams = parse_prometheus(bstatus.prometheus_text(data))
    assert fams["sms_bridge_modem_ready"]["samples"] == {(("modem", "a\ufffdb\nc"),): 1.0}


def test_textfile_is_replaced_atomically_and_readable(tmp_path):
    target = tmp_path / "sms_bridge.prom"
    target.write_text("old\n")
    old_umask = os.umask(0o077)  # as under the unit's UMask=
    try:
        bstatus.write_textfile(target, "sms_bridge_up 1\n")
    finally:
        os.umask(old_umask)
    assert target.read_text() == "sms_bridge_up 1\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sms_bridge.prom"]  # no temp left


def test_textfile_failure_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "sms_bridge.prom"
    target.write_text("old\n")

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        bstatus.write_textfile(target, "new\n")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sms_bridge.prom"]


# --- the socket protocol ----------------------------------------------------------------


async def _raw(path: Path, data: bytes, *, close_write: bool = True) -> bytes:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(data)
    if close_write:
        writer.write_eof()
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), WAIT)
    writer.close()
    await writer.wait_closed()
    return answer


def _serve(tmp_path, scenario, **kw):
    path = tmp_path / "status.sock"

    async def answer():
        return {"state": "running", "n": 1}

    async def main():
        server = bstatus.StatusServer(path, answer, **kw)
        old = os.umask(0o077)
        try:
            await server.start()
        finally:
            os.umask(old)
        try:
            return await scenario(path, server)
        finally:
            await server.close()

    return asyncio.run(main())


def test_socket_is_0660_and_answers_one_json_line(tmp_path):
    async def scenario(path, server):
        mode = stat.S_IMODE(path.stat().st_mode)
        good = await _raw(path, b'{"get": "status"}\n')
        return mode, good, await asyncio.to_thread(bstatus.query, path)

    mode, good, queried = _serve(tmp_path, scenario)
    assert mode == 0o660  # chmod'ed despite the umask 0077
    assert good.count(b"\n") == 1
    assert json.loads(good) == {"ok": True, "status": {"state": "running", "n": 1}}
    assert queried == {"state": "running", "n": 1}
    assert not (tmp_path / "status.sock").exists()  # removed on close


@pytest.mark.parametrize(
    ("request_bytes", "error"),
    [
        (b"not json\n", "request is not JSON"),
        (b'{"get": "keys"}\n', 'unknown request: want {"get": "status"}'),
        (b"[1]\n", 'unknown request: want {"get": "status"}'),
        (b'{"get": "status"}', "request without a newline"),
        (b"x" * (bstatus.MAX_REQUEST + 10) + b"\n", f"request over {bstatus.MAX_REQUEST} bytes"),
    ],
)
def test_bad_requests_get_an_error_line(tmp_path, request_bytes, error):
    async def scenario(path, server):
        return await _raw(path, request_bytes)

    assert json.loads(_serve(tmp_path, scenario)) == {"ok": False, "error": error}


def test_a_silent_client_is_dropped_and_does_not_block_others(tmp_path):
    async def scenario(path, server):
        reader, writer = await asyncio.open_unix_connection(str(path))  # says nothing
        other = await asyncio.to_thread(bstatus.query, path)  # answered meanwhile
        dropped = await asyncio.wait_for(reader.read(), WAIT)  # closed after the timeout
        writer.close()
        return other, dropped

    other, dropped = _serve(tmp_path, scenario, timeout=0.5)
    assert other == {"state": "running", "n": 1}
    assert dropped == b""


def test_connections_beyond_the_limit_are_answered_busy(tmp_path):
    async def scenario(path, server):
        holders = [await asyncio.open_unix_connection(str(path)) for _ in range(2)]
        while server._active < 2:  # the server took both
            await asyncio.sleep(0.01)
        third = await _raw(path, b'{"get": "status"}\n')
        for _, w in holders:
            w.close()
        return third, server.refused

    third, refused = _serve(tmp_path, scenario, max_clients=2, timeout=WAIT)
    assert json.loads(third) == {"ok": False, "error": "busy"}
    assert refused == 1


def test_query_errors_are_one_line(tmp_path):
    missing = tmp_path / "none.sock"
    with pytest.raises(bstatus.StatusUnavailable, match=r"no status socket: is sms-bridge running"):
        bstatus.query(missing)
    stale = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(stale))  # bound, never listening: what a crashed service leaves
    try:
        with pytest.raises(bstatus.StatusUnavailable, match="connection refused"):
            bstatus.query(stale)
    finally:
        s.close()


def test_a_stale_socket_file_is_replaced_but_another_file_is_not(tmp_path):
    stale = tmp_path / "status.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(stale))
    s.close()

    async def scenario(path, server):
        return await asyncio.to_thread(bstatus.query, path)

    assert _serve(tmp_path, scenario) == {"state": "running", "n": 1}
    plain = tmp_path / "plain"
    plain.write_text("keep me")

    async def refuse():
        server = bstatus.StatusServer(plain, None)
        with pytest.raises(OSError):
            await server.start()

    asyncio.run(refuse())
    assert plain.read_text() == "keep me"


def test_a_live_socket_of_another_service_is_not_taken_over(tmp_path):
    async def scenario(path, server):
        second = bstatus.StatusServer(path, None)
        with pytest.raises(OSError, match="another sms-bridge answers there"):
            await second.start()
        return await asyncio.to_thread(bstatus.query, path)  # the first still answers

    assert _serve(tmp_path, scenario) == {"state": "running", "n": 1}


# --- `sms-bridge status` against a running Service --------------------------------------


def _config(tmp_path: Path, **status) -> Config:
    return dataclasses.replace(
        Config(),
        bridge=dataclasses.replace(Config().bridge, journal=str(tmp_path / "journal.db")),
        modems=(ModemConfig(port="sim://bg96", name="modem0"),),
        status=StatusSection(socket=str(tmp_path / "status.sock"), **status),
    )


def test_cli_status_human_and_json_from_a_live_service(tmp_path, capsys):
    prom = tmp_path / "sms_bridge.prom"
    cfg = _config(tmp_path, prometheus_textfile=str(prom), prometheus_every=1)

    async def main():
        svc = Service(cfg)
        await svc.start()
        rt = bstatus.Runtime(svc)
        await rt.start()
        try:
            await asyncio.wait_for(rt.ready(), WAIT)
            await asyncio.wait_for(svc.settle(), WAIT)  # the boot message sent
            sock = cfg.status.socket
            human = await asyncio.to_thread(cli.main, ["status", "--socket", sock])
            out_h = capsys.readouterr().out
            js = await asyncio.to_thread(cli.main, ["status", "--socket", sock, "--json"])
            out_j = capsys.readouterr().out
            async with asyncio.timeout(WAIT):  # a failure bound
                while 'sms_bridge_events_total{event="sent"} 1' not in (
                    prom.read_text() if prom.exists() else ""
                ):
                    await asyncio.sleep(0.05)
            return human, out_h, js, out_j, prom.read_text()
        finally:
            await svc.stop()
            await rt.close()

    human, out_h, js, out_j, text = asyncio.run(main())
    assert human == 0 and js == 0
    data = json.loads(out_j)
    assert data["state"] == "running"
    assert data["modems"]["modem0"]["ready"] is True
    assert data["queues"] == {"modem0": 0}
    assert data["counters"]["sent"] == 1  # the boot message
    assert data["last_reply"]["state"] == "sent" and data["last_reply"]["tp_mr"] is not None
    assert data["journal_bytes"] > 0
    assert data["entries"]["sent"] == 1
    assert out_h.splitlines()[0].startswith("sms-bridge ")
    assert "  modem0 (sim://bg96): ready, registration home" in out_h
    assert "  last Command: none" in out_h
    fams = parse_prometheus(text)
    assert fams["sms_bridge_modem_ready"]["samples"] == {(("modem", "modem0"),): 1.0}
    assert fams["sms_bridge_events_total"]["samples"][(("event", "sent"),)] == 1.0
    assert not math.isnan(fams["sms_bridge_journal_bytes"]["samples"][()])


def test_cli_status_when_not_running_is_one_line_and_exit_3(tmp_path, capsys):
    code = cli.main(["status", "--socket", str(tmp_path / "status.sock")])
    err = capsys.readouterr().err
    assert code == cli.EXIT_UNAVAILABLE == 3
    assert err == f"error: {tmp_path / 'status.sock'}: no status socket: is sms-bridge running?\n"


def test_cli_status_takes_the_socket_from_the_config(tmp_path, capsys):
    conf = tmp_path / "c.toml"
    conf.write_text(f'[status]\nsocket = "{tmp_path}/x.sock"\n')
    assert cli.main(["status", "--config", str(conf)]) == 3
    assert f"{tmp_path}/x.sock: no status socket" in capsys.readouterr().err
    conf.write_text('[status]\nsocket = ""\n')
    assert cli.main(["status", "--config", str(conf)]) == 2
    assert "status.socket is empty" in capsys.readouterr().err
    assert cli.main(["status", "--config", str(conf), "--socket", "/x"]) == 2
    assert capsys.readouterr().err == (
        "error: status takes --socket PATH or --config FILE, not both\n"
    )


# --- bad input on both ends of the socket --------------------------------------------------


def test_a_deeply_nested_request_is_answered_not_json(tmp_path):
    deep = b"[" * (bstatus.MAX_REQUEST - 2) + b"\n"  # within the line limit, past json's depth

    async def scenario(path, server):
        first = await _raw(path, deep)
        return first, await asyncio.to_thread(bstatus.query, path)

    first, after = _serve(tmp_path, scenario)
    assert json.loads(first) == {"ok": False, "error": "request is not JSON"}
    assert after == {"state": "running", "n": 1}  # the server still answers


def test_query_of_a_regular_file_says_it_is_not_a_socket(tmp_path):
    plain = tmp_path / "status.sock"
    plain.write_text("not a socket")
    with pytest.raises(bstatus.StatusUnavailable) as e:
        bstatus.query(plain)
    assert str(e.value) == f"{plain}: not a socket (a regular file): is the path right?"


class _FakeService:
    """A listener on a real UNIX socket that answers every connection with ``answer``."""

    def __init__(self, path: Path, answer: bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self.answer = answer
        self.thread = threading.Thread(target=self._serve_one)
        self.thread.start()

    def _serve_one(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(self.answer)

    def close(self) -> None:
        self.thread.join(WAIT)
        self.sock.close()


GARBAGE = [
    (b"garbage\n", "the answer is not JSON"),
    (b"\xff\xfe\x00\n", "the answer is not JSON"),
    (b"[" * 5000 + b"\n", "the answer is not JSON"),
    (b'{"ok": false, "error": "busy"}\n', "the service refused: busy"),
    (b'{"ok": true, "status": {"modems": [1, 2]}}\n', "not a status this sms-bridge reads"),
    (b'{"ok": true, "status": {"modems": {"m": 1}}}\n', "not a status this sms-bridge reads"),
    (b'{"ok": true, "status": {"last_command": {"x": 1}}}\n', "not a status this"),
    (b'{"ok": true, "status": {"watchdog": {"interval_s": "x"}}}\n', "not a status this"),
    (
        b'{"ok": true, "status": {"last_reply": {"id": 1, "modem": "m", "state": "s", '
        b'"at": "noon"}}}\n',
        "not a status this",
    ),
]


def _status_against(path, answer: bytes) -> int:
    """``sms-bridge status`` against a fake service that answers ``answer``."""
    fake = _FakeService(path, answer)
    try:
        return cli.main(["status", "--socket", str(path)])
    finally:
        fake.close()


@pytest.mark.parametrize(
    ("answer", "message"),
    GARBAGE,
    ids=[
        "not-json",
        "not-utf8",
        "too-deep",
        "refused",
        "modems-a-list",
        "modem-not-a-table",
        "entry-without-fields",
        "watchdog-interval-text",
        "time-as-text",
    ],
)
def test_cli_status_garbage_answer_is_one_line_and_exit_3(tmp_path, capsys, answer, message):
    path = tmp_path / "status.sock"
    code = _status_against(path, answer)
    out, err = capsys.readouterr()
    assert code == 3 and out == ""
    assert err.startswith(f"error: {path}: ") and err.count("\n") == 1 and message in err, err


_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=12,
)
_status_keys = st.sampled_from(
    [
        "version",
        "state",
        "uptime_s",
        "device_id",
        "signed",
        "queues",
        "modems",
        "last_command",
        "last_reply",
        "counters",
        "entries",
        "journal",
        "journal_bytes",
        "journal_error",
        "watchdog",
    ]
)


@given(st.dictionaries(_status_keys, _json, max_size=6))
def test_human_of_any_answer_is_text_or_status_unavailable(data):
    try:
        text = bstatus.human(data)
    except bstatus.StatusUnavailable as e:
        assert "\n" not in str(e)
        return
    assert isinstance(text, str)


def test_cli_status_shows_network_text_with_control_characters_escaped(tmp_path, capsys):
    # the operator name and registration come from the network through the module
    modem = {"port": "/dev/ttyUSB2", "ready": True, "registration": "home \x1b[2J\x1b]0;x\x07"}
    answer = json.dumps({"ok": True, "status": {"modems": {"m\x9b0": modem}}}).encode() + b"\n"
    code = _status_against(tmp_path / "status.sock", answer)
    out = capsys.readouterr().out
    assert code == 0
    assert not any(c in out for c in "\x1b\x07\x9b")
    assert "  m\\x9b0 (/dev/ttyUSB2): ready, registration home \\x1b[2J\\x1b]0;x\\x07," in out
