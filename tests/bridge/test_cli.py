"""``sms-bridge`` / ``python -m bridge``: arguments, one-line errors, the tools."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge import auth, cli
from bridge.config import ConfigError
from bridge.grammar import Level
from bridge.journal import Journal, State

from .test_dispatcher_rig import DEVICE, KEY
from .test_service_rig import ServiceRig, write_key

ROOT = Path(__file__).parents[2]


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = cli.main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    open_key = tmp_path / "open.toml"
    open_key.write_text(auth.format_key_file({1: KEY}, 1))
    open_key.chmod(0o644)
    bad = tmp_path / "bad.toml"
    bad.write_text(
        f'[bridge]\njournal = "{tmp_path}/x.db"\ncolour = "red"\n[[modem]]\nport = "sim://bg96"\n'
    )
    nomodem = tmp_path / "nomodem.toml"
    nomodem.write_text(f'[bridge]\njournal = "{tmp_path}/x.db"\n')
    badhal = tmp_path / "badhal.toml"
    badhal.write_text('[[modem]]\nport = "sim://bg96"\n[hal.gpio.relay1]\nchip = "gpiochip0"\n')
    with Journal.open(tmp_path / "journal.db"):
        pass
    return {
        "key": write_key(tmp_path),
        "open_key": str(open_key),
        "bad": str(bad),
        "nomodem": str(nomodem),
        "badhal": str(badhal),
        "journal": str(tmp_path / "journal.db"),
        "missing": str(tmp_path / "missing.toml"),
        "dir": str(tmp_path),
        "nodir": str(tmp_path / "nodir" / "k.toml"),
        "under_file": str(bad / "state.json"),
    }


BAD = [
    ([], "COMMAND"),
    (["bogus"], "invalid choice"),
    (["run"], "run needs --config FILE, or --port URL"),
    (["run", "--port", "rfc2217://host:1"], "--port: rfc2217:// is refused"),
    (["run", "--port", "ttyUSB2"], "--port: 'ttyUSB2' is not a device path"),
    (["run", "--port", "sim://bg96", "--baud", "12"], "argument --baud: 12 is not in 300..4000000"),
    (["run", "--config", "{bad}", "--port", "sim://bg96"], "--config is used alone"),
    (["run", "--config", "{missing}"], "cannot read"),
    (["run", "--config", "{bad}"], "bridge.colour: unknown key"),
    (["check-config", "{bad}"], "bridge.colour: unknown key"),
    (["check-config", "{nomodem}"], "modem: at least one [[modem]]"),
    (["check-config", "{badhal}"], "hal.gpio.relay1.line: is required"),
    (["journal", "list"], "journal needs --journal PATH or --config FILE"),
    (["journal", "--journal", "{missing}", "counts"], "no such file"),
    (["journal", "--journal", "{journal}", "show", "x"], "argument ID: 'x' is not a whole number"),
    (["journal", "--journal", "{journal}", "list", "--state", "lost"], "invalid choice: 'lost'"),
    (["sign", "--key-file", "{key}", "--device", "a b", "ping"], "argument --device"),
    (["sign", "--key-file", "{open_key}", "--device", "d", "ping"], "chmod 600"),
    (["sign", "--key-file", "{key}", "--device", "d", "--counter", "0", "ping"], "at least 1"),
    (
        ["sign", "--key-file", "{key}", "--device", "d", "--counter", "1", "--binary", "zz"],
        "is not hex",
    ),
    (["sign", "--device", "d", "ping"], "--key-file"),
    (["keygen", "{key}"], "exists; a key file is never overwritten"),
    (["keygen", "{missing}", "--key-version", "16"], "16 is not in 0..15"),
    (["verify", "--key-file", "{key}", "pong"], "--device"),
]

#: Bad input that was not one line and exit 2 (an internal error, exit 1).
BAD_BEFORE = [
    (["run", "--port", "socket://[::1"], "--port: 'socket://[::1': want socket://HOST:PORT"),
    (["status", "--timeout", "-1"], "argument --timeout: -1 is not in (0, 3600] seconds"),
    (["status", "--timeout", "0"], "argument --timeout: 0 is not in (0, 3600] seconds"),
    (["status", "--timeout", "nan"], "argument --timeout: nan is not in (0, 3600] seconds"),
    (["status", "--timeout", "inf"], "argument --timeout: inf is not in (0, 3600] seconds"),
    (["status", "--timeout", "1e400"], "argument --timeout: 1e400 is not in (0, 3600]"),
    (["status", "--timeout", "soon"], "argument --timeout: 'soon' is not a number of seconds"),
    (["keygen", "{nodir}"], "{nodir}: cannot create: No such file or directory"),
    (["keygen", ""], "argument FILE: an empty path"),
    (["run", "--config", ""], "argument --config: an empty path"),
    (["check-config", ""], "argument FILE: an empty path"),
    (["journal", "--config", "", "counts"], "argument --config: an empty path"),
    (["journal", "--journal", "", "counts"], "argument --journal: an empty path"),
    (["status", "--socket", ""], "argument --socket: an empty path"),
    (["status", "--config", ""], "argument --config: an empty path"),
    (["sign", "--key-file", "", "--device", "d", "--counter", "1", "ping"], "--key-file: an empty"),
    (["sign", "--key-file", "{key}", "--device", "d", "--state", "", "ping"], "--state: an empty"),
    (["verify", "--key-file", "", "--device", "d", "pong"], "argument --key-file: an empty path"),
    (["keygen", "{under_file}"], "{under_file}: cannot create: Not a directory"),
    (["sign", "--key-file", "{dir}", "--device", "d", "ping"], "{dir}: not a regular file"),
    (
        ["sign", "--key-file", "{key}", "--device", "d", "--state", "{under_file}", "ping"],
        "--state {under_file}: unusable",
    ),
    (["journal", "--journal", "{journal}", "show", "9" * 25], f"{'9' * 25} is over 2**63 - 1"),
    (["journal", "--journal", "{journal}", "list", "--limit", "9" * 20], "is over 2**63 - 1"),
    (["journal", "--journal", "{dir}", "counts"], "{dir}: a directory, not the journal file"),
]

#: Accepted before, and the device would have refused the result unanswered.
REFUSED_NOW = [
    (
        ["sign", "--key-file", "{key}", "--device", "d", "--counter", "1", "x" * 138],
        "cannot sign: signed, it is 161 GSM 7-bit septets; one SMS holds 160",
    ),
    (
        [
            "sign",
            "--key-file",
            "{key}",
            "--device",
            "d",
            "--counter",
            "1",
            "--binary",
            "a0" + "00" * 123,
        ],
        "cannot sign: signed, it is 141 octets; one SMS holds 140",
    ),
]


@pytest.mark.parametrize(("args", "message"), REFUSED_NOW, ids=["161-septets", "141-octets"])
def test_sign_refuses_a_command_longer_than_one_sms(
    capsys: pytest.CaptureFixture[str], files: dict[str, str], args: list[str], message: str
) -> None:
    rc, out, err = _main(capsys, *(a.format(**files) for a in args))
    assert (rc, out, err) == (2, "", f"error: {message}\n")


@pytest.mark.parametrize(("args", "message"), BAD_BEFORE, ids=[" ".join(a) for a, _ in BAD_BEFORE])
def test_more_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], files: dict[str, str], args: list[str], message: str
) -> None:
    rc, out, err = _main(capsys, *(a.format(**files) for a in args))
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message.format(**files) in err, err
    assert "Traceback" not in err and "internal" not in err and out == ""


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) or "none" for a, _ in BAD])
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], files: dict[str, str], args: list[str], message: str
) -> None:
    rc, out, err = _main(capsys, *(a.format(**files) for a in args))
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert "Traceback" not in err and out == ""


def test_bad_input_as_a_subprocess_no_traceback(files: dict[str, str]) -> None:
    p = _run("check-config", files["bad"])
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == f"error: {files['bad']}: bridge.colour: unknown key\n"


@pytest.mark.parametrize(
    "sub", ["run", "status", "demo", "check-config", "journal", "keygen", "sign", "verify"]
)
def test_help_on_every_subcommand(sub: str) -> None:
    p = _run(sub, "--help")
    assert p.returncode == 0 and p.stdout.startswith(f"usage: sms-bridge {sub}")


def test_keygen_sign_verify_round_trip(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    key = tmp_path / "k.toml"
    state = tmp_path / "state" / "counters.json"
    rc, out, _ = _main(capsys, "keygen", str(key))
    assert rc == 0 and "mode 0600" in out
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ring = auth.load_keyring(key)
    signed = []
    for _ in range(2):
        rc, out, _ = _main(
            capsys,
            "sign",
            "--key-file",
            str(key),
            "--device",
            DEVICE,
            "--state",
            str(state),
            "--json",
            "gpio set relay1 on",
        )
        assert rc == 0
        signed.append(json.loads(out))
    assert [s["counter"] for s in signed] == [1, 2]  # the state file keeps the counter
    assert json.loads(state.read_text()) == {DEVICE: 2}
    v = auth.verify_command(
        signed[1]["message"], keys=ring, device_id=DEVICE, window=auth.ReplayWindow()
    )
    assert v.body == "gpio set relay1 on" and v.counter == 2
    # binary: hex in, hex out, the signed bit set
    rc, out, _ = _main(
        capsys,
        "sign",
        "--key-file",
        str(key),
        "--device",
        DEVICE,
        "--counter",
        "9",
        "--binary",
        "a00100",
    )
    assert rc == 0 and bytes.fromhex(out.strip())[0] == 0xA1
    reply = auth.sign_reply("relay1=on", keys=ring, device_id=DEVICE, counter=4)
    rc, out, _ = _main(capsys, "verify", "--key-file", str(key), "--device", DEVICE, reply)
    assert rc == 0 and out == "ok: counter 4, key version 1: relay1=on\n"
    rc, out, err = _main(
        capsys,
        "verify",
        "--key-file",
        str(key),
        "--device",
        DEVICE,
        "--json",
        reply.replace("on", "of"),
    )
    assert rc == 1 and json.loads(out) == {"ok": False, "reason": "bad-tag"}
    assert err == "error: not verified: bad-tag\n"
    rc, _, err = _main(capsys, "verify", "--key-file", str(key), "--device", "other", reply)
    assert rc == 1 and "bad-tag" in err


def test_check_config_and_journal_views(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cfg = tmp_path / "bridge.toml"
    cfg.write_text(
        f'[bridge]\njournal = "{tmp_path / "j.db"}"\n[[modem]]\nport = "sim://bg96"\n'
        '[hal.gpio.relay1]\nchip = "gpiochip0"\nline = 17\ndirection = "output"\n'
    )
    rc, out, _ = _main(capsys, "check-config", str(cfg), "--json")
    assert rc == 0
    data = json.loads(out)
    assert data["modems"] == [{"name": "modem0", "port": "sim://bg96"}]
    assert data["gpio"] == ["relay1"] and data["key_file"] is None
    with Journal.open(tmp_path / "j.db") as j:
        r = j.receive(modem="modem0", sender="2936", body="ping", identity="a")
        j.reject(r.entry_id, "unknown-sender")
        j.receive(modem="modem0", sender="2936", body="status", identity="b")
    rc, out, _ = _main(capsys, "journal", "--config", str(cfg), "--json", "counts")
    assert rc == 0 and json.loads(out)["rejected"] == 1 and json.loads(out)["received"] == 1
    rc, out, _ = _main(capsys, "journal", "--journal", str(tmp_path / "j.db"), "list", "--json")
    assert [e["state"] for e in json.loads(out)] == ["received", "rejected"]
    assert "body" not in json.loads(out)[0]  # a list never shows bodies
    rc, out, _ = _main(capsys, "journal", "--journal", str(tmp_path / "j.db"), "show", "1")
    assert rc == 0 and "unknown-sender" in out and "ping" in out
    rc, _, err = _main(capsys, "journal", "--journal", str(tmp_path / "j.db"), "show", "9")
    assert rc == 1 and err == "error: no journal entry 9\n"


def test_port_and_journal_stand_in_for_a_file(tmp_path: Path) -> None:
    p = cli.build_parser().parse_args(
        ["run", "--port", "sim://bg96", "--journal", str(tmp_path / "j.db")]
    )
    cfg = cli.run_config(p)
    assert cfg.framing(cfg.modems[0]).wireless_senders == frozenset({"2936"})
    assert cfg.bridge.product.value == "programmable-wireless"
    assert cfg.security.key_file == "" and cfg.hal == {}


async def test_the_no_file_configuration_through_the_service(tmp_path: Path) -> None:
    p = cli.build_parser().parse_args(
        ["run", "--port", "sim://bg96", "--journal", str(tmp_path / "j.db")]
    )
    cfg = cli.run_config(p)
    async with ServiceRig(cfg) as rig:
        assert rig.svc.hal is not None and rig.svc.hal.sim is not None  # the simulated HAL
        for verb in ("ping", "status", "info", "help"):
            assert rig.svc.registry.get(verb).spec.level is Level.OPEN  # type: ignore[union-attr]
            out = await rig.sms(verb)
            assert len(out) == 1 and out[0].to == "2936"
        assert [s.content for s in await rig.sms("help")] == [
            "commands: gpio get, help, info, ping, sensor, status"
        ]
        assert await rig.sms("reboot") == []
        assert (await rig.entry()).reason == "level:reboot"
        assert (
            await rig.sms(
                auth.sign_command("reboot", key=KEY, key_version=1, device_id=DEVICE, counter=1)
            )
            == []
        )
        assert (await rig.entry()).reason == "auth:no-key"
        assert await rig.sms("ping", sender="000") == []
        assert (await rig.entry()).reason == "unknown-sender"
        assert rig.hal.power.requests == []


def test_run_without_a_file_stops_on_sigint(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bridge",
            "run",
            "--port",
            "sim://bg96",
            "--journal",
            str(tmp_path / "j.db"),
        ],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "reply sent to" in line:  # the boot message went out
                break
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        assert proc.wait(timeout=60) == 0
        assert "bridge stopped" in rest and "Traceback" not in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    with Journal.open(tmp_path / "j.db") as j:
        assert j.counts()[State.SENT] == 1


def test_a_world_readable_key_file_is_refused_by_check_config(
    capsys: pytest.CaptureFixture[str], files: dict[str, str], tmp_path: Path
) -> None:
    cfg = tmp_path / "k.toml"
    cfg.write_text(
        f'[security]\nkey_file = "{files["open_key"]}"\n[[modem]]\nport = "sim://bg96"\n'
    )
    rc, _, err = _main(capsys, "check-config", str(cfg))
    assert rc == 2 and err.startswith("error: security.key_file: key file ") and "chmod 600" in err


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_run_port_argument_gives_a_config_or_a_named_error(port: str) -> None:
    args = cli.build_parser().parse_args(["run", f"--port={port or 'x'}", "--journal", "/tmp/j.db"])
    try:
        cfg = cli.run_config(args)
    except (ConfigError, cli.UsageProblem) as exc:
        assert str(exc).startswith("--port") or "run needs" in str(exc)
    else:
        assert cfg.modems[0].port == (port or "x")


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64))
def test_a_damaged_counter_state_file_is_a_usage_error(content: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        state = Path(d) / "c.json"
        state.write_bytes(content)
        try:
            n = cli.next_counter(state, "dev", timestamp=False)
        except cli.UsageProblem as exc:
            assert "unreadable" in str(exc)
        else:
            assert n >= 1 and json.loads(state.read_text())["dev"] == n


@given(st.binary(max_size=160))
def test_the_demo_shows_any_binary_reply(data: bytes) -> None:
    from bridge.demo import _binary_reply

    assert isinstance(_binary_reply(data), str)


@pytest.mark.parametrize(
    "bad", ['{"dev": 1e400}', '{"dev": -5}', '{"dev": "3"}', "[1]", '{"dev": true}']
)
def test_counter_state_values_that_are_no_counter(tmp_path: Path, bad: str) -> None:
    state = tmp_path / "c.json"
    state.write_text(bad)
    with pytest.raises(cli.UsageProblem, match="unreadable"):
        cli.next_counter(state, "dev", timestamp=False)
    assert state.read_text() == bad  # left for the operator to look at


def test_looking_into_the_journal_changes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "j.db"
    with Journal.open(path, window_size=128) as j:
        j.receive(modem="modem0", sender="2936", body="ping", identity="a")
    kept = [f for f in (path, tmp_path / "j.db.counters") if f.exists()]

    before = [f.read_bytes() for f in kept]
    for action in (["list"], ["counts"], ["show", "1"]):
        rc, _, _ = _main(capsys, "journal", "--journal", str(path), *action)
        assert rc == 0
    assert [f.read_bytes() for f in kept] == before
    with Journal.open(path, window_size=128) as j:
        assert j.replay_window().size == 128  # not resized to a default


def test_a_damaged_journal_is_reported_not_moved_aside(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "j.db"
    path.write_bytes(b"this is no SQLite file" * 100)
    rc, out, err = _main(capsys, "journal", "--journal", str(path), "counts")
    assert rc == 1 and out == "" and err.startswith(f"error: journal {path}: ")
    assert [f.name for f in tmp_path.iterdir()] == ["j.db"]  # left where it was


@pytest.mark.parametrize("columns", ["50", "120", "0", "junk", None])
def test_help_is_laid_out_as_argparse_lays_it_out(monkeypatch, columns):
    """The help formatter finds the width without shutil (whose import brings bz2
    and lzma into the service) and lays out exactly what argparse's own would."""
    import argparse

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    ours = [cli.build_parser().format_help()]
    ours += [a.format_help() for a in cli.build_parser()._subparsers._actions[-1].choices.values()]
    monkeypatch.setattr(cli, "_Formatter", argparse.HelpFormatter)
    theirs = [cli.build_parser().format_help()]
    theirs += [
        a.format_help() for a in cli.build_parser()._subparsers._actions[-1].choices.values()
    ]
    assert ours == theirs


def test_help_follows_the_terminal_width(monkeypatch):
    widths = {}
    for columns in ("50", "120"):
        monkeypatch.setenv("COLUMNS", columns)
        widths[columns] = max(len(line) for line in cli.build_parser().format_help().splitlines())
    assert widths["50"] <= 48 < widths["120"]


def test_the_run_logging_gathers_no_caller_and_puts_everything_back() -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep()
    logging.getLogger("bridge.test").addHandler(keep)
    try:
        with cli._logging(argparse.Namespace(cmd="run", verbose=0)):
            logging.getLogger("bridge.test").info("inside")
        logging.getLogger("bridge.test").warning("after")
    finally:
        logging.getLogger("bridge.test").removeHandler(keep)
    inside, after = seen
    assert (inside.lineno, inside.thread, inside.process) == (0, None, None)
    assert after.lineno > 0 and after.thread is not None and after.process is not None


@pytest.mark.parametrize("value", ["state", "./state", ""], ids=["relative", "dot", "empty"])
def test_a_relative_xdg_state_home_is_ignored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str
) -> None:
    # XDG Base Directory: a relative path in these variables is invalid and ignored;
    # a counter file that moved with the working directory would hand out used counters
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", value)
    assert cli.default_state_file() == tmp_path / ".local/state/sms-bridge/sign-counters.json"


def test_an_absolute_xdg_state_home_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "st"))
    assert cli.default_state_file() == tmp_path / "st/sms-bridge/sign-counters.json"


def test_run_with_the_journal_naming_the_config_file_leaves_it_alone(tmp_path: Path) -> None:
    conf = tmp_path / "bridge.toml"
    text = f'[bridge]\njournal = "{conf}"\n[status]\nsocket = ""\n[[modem]]\nport = "sim://bg96"\n'
    conf.write_text(text)
    p = _run("run", "--config", str(conf))
    assert p.returncode == 2, p.stderr
    last = p.stderr.splitlines()[-1]  # one line, cut at cli.MAX_ERROR_LINE
    assert last.startswith(f"error: bridge.journal: journal {conf}: not an SQLite database")
    assert sum("error:" in line for line in p.stderr.splitlines()) == 1
    assert "Traceback" not in p.stderr
    assert conf.read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bridge.toml"]  # no .lock beside it


LEVEL_TYPO = (
    "security.levels.gpio: no verb 'gpio' (gpio get, gpio pulse, gpio set, help, info, "
    "ping, reboot, run, sensor, status, x)"
)


@pytest.mark.parametrize("sub", ["check-config", "run --config"])
def test_a_level_for_no_verb_is_a_config_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, sub: str
) -> None:
    # "gpio" is no verb ("gpio set" is): the override silently did nothing
    script = tmp_path / "x.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    conf = tmp_path / "bridge.toml"
    conf.write_text(
        f'[bridge]\njournal = "{tmp_path / "j.db"}"\n[status]\nsocket = ""\n'
        '[[modem]]\nport = "sim://bg96"\n'
        f'[hal.scripts.x]\ncommand = ["{script}"]\n[actions.x]\nscript = "x"\n'
        '[security.levels]\n"gpio set" = "signed"\nx = "allowlisted"\ngpio = "open"\n'
    )
    rc, out, err = _main(capsys, *sub.split(), str(conf))
    assert (rc, out) == (2, "")
    assert err == f"error: {LEVEL_TYPO}\n"  # as every [hal] and cross-section error
    assert not (tmp_path / "j.db").exists()  # refused before the journal was opened


def test_output_the_terminal_cannot_encode_is_one_line_and_json_still_works(
    files: dict[str, str],
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "ascii"}
    args = ["sign", "--key-file", files["key"], "--device", DEVICE, "--counter", "3", "ping é"]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bridge", *args, *extra],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env=env,
            check=False,
        )

    p = run()
    assert (p.returncode, p.stdout) == (2, "")
    assert p.stderr == (
        "error: standard output (ascii) cannot show '\\xe9': use --json, or a UTF-8 locale\n"
    )
    p = run("--json")
    assert p.returncode == 0
    message = json.loads(p.stdout)["message"]
    v = auth.verify_command(
        message, keys=auth.Keyring({1: KEY}, 1), device_id=DEVICE, window=auth.ReplayWindow()
    )
    assert v.body == "ping é" and v.counter == 3


def test_run_port_takes_a_relative_journal_and_key_file_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = cli.build_parser().parse_args(
        ["run", "--port", "sim://bg96", "--journal", "j.db", "--key-file", "keys/k.toml"]
    )
    cfg = cli.run_config(args)
    assert cfg.bridge.journal == str(tmp_path / "j.db")
    assert cfg.security.key_file == str(tmp_path / "keys" / "k.toml")


HOSTILE = "\x1b]0;owned\x07\x1b[2J\rgpio set relay1 on\n\u202e\x9b31m"


def test_journal_human_output_shows_control_characters_escaped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # a Command body and an alphanumeric sender come from anyone who can send an
    # SMS: raw, they drive the operator's terminal (title, clear screen, overwrite)
    path = tmp_path / "journal.db"
    with Journal.open(path) as j:
        r = j.receive(modem="m0", sender="alphanumeric:\rroot", body=HOSTILE, identity="x")
        j.reject(r.entry_id, "unknown-sender")
    rc, out, _ = _main(capsys, "journal", "--journal", str(path), "show", "1")
    assert rc == 0
    assert not any(c in out for c in "\x1b\x07\r\x9b\u202e")
    assert (
        "body          \\x1b]0;owned\\x07\\x1b[2J\\rgpio set relay1 on\\n\\u202e\\x9b31m\n" in out
    )
    assert "sender        alphanumeric:\\rroot\n" in out
    rc, out, _ = _main(capsys, "journal", "--journal", str(path), "list")
    assert rc == 0 and out.count("\n") == 1 and "alphanumeric:\\rroot" in out
    rc, out, _ = _main(capsys, "journal", "--journal", str(path), "--json", "show", "1")
    assert json.loads(out)["body"] == HOSTILE  # JSON carries it exactly (escaped by JSON)
