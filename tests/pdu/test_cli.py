"""``python -m pdu``: output, JSON keys, exit codes, stdin mode."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from pdu import JSON_KEYS, decode
from pdu.cli import main

README = "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07"
UCS2 = "00040C9144770009103200084220922100004012041F044004380432043504420020D83DDE00"
STATUS = "06000B910221815716F2709021510121807090215101718000"


def run(*argv: str, stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), stdin=io.StringIO(stdin), stdout=out)
    return code, out.getvalue()


def test_readme_report() -> None:
    code, out = run("decode", README)
    assert code == 0
    lines = dict(line.split(":", 1) for line in out.splitlines())
    assert lines["SMSC"].strip().startswith("+31624000000")
    assert lines["Sender"].strip().startswith("+31641600986")
    assert lines["Timestamp"].strip() == "2002-08-26 19:37:41+00:00"
    assert lines["Text"].strip() == "How are you?"
    assert lines["TP-UDL"].strip() == "12 septets"
    assert "GSM 7-bit" in lines["TP-DCS"]
    assert lines["Class"].strip() == "none"


def test_json_exact_keys_and_values() -> None:
    code, out = run("decode", "--json", README, UCS2)
    assert code == 0
    first, second = (json.loads(line) for line in out.splitlines())
    assert tuple(first) == JSON_KEYS
    assert first == {
        "type": "deliver",
        "smsc": "+31624000000",
        "sender": "+31641600986",
        "recipient": None,
        "encoding": "gsm7",
        "text": "How are you?",
        "data": None,
        "timestamp": "2002-08-26T19:37:41+00:00",
        "concat": None,
        "ports": None,
        "message_class": None,
        "reference": None,
        "status": None,
    }
    assert second["text"] == "Привет 😀"
    assert second["smsc"] is None


def test_no_smsc_status_report() -> None:
    code, out = run("decode", "--json", "--no-smsc", STATUS)
    assert code == 0
    obj = json.loads(out)
    assert (obj["type"], obj["recipient"], obj["status"], obj["reference"]) == (
        "status-report",
        "+20121875612",
        0,
        0,
    )
    code, out = run("decode", "--no-smsc", STATUS)
    assert "received by the SME" in out


def test_stdin_with_bad_line() -> None:
    code, out = run("decode", "--json", "-", stdin=f"{README}\n\nnot-hex\n  {UCS2.lower()}  \n")
    assert code == 1
    lines = [json.loads(x) for x in out.splitlines()]
    assert len(lines) == 3
    assert lines[0]["text"] == "How are you?"
    assert lines[1] == {"input": "not-hex", "error": lines[1]["error"]}
    assert "hexadecimal" in lines[1]["error"]
    assert lines[2]["encoding"] == "ucs2"


def test_text_mode_error_line() -> None:
    code, out = run("decode", "0001", README)
    assert code == 1
    assert out.startswith("error: 0001: TP-MR")
    assert "How are you?" in out


@pytest.mark.parametrize(
    "argv",
    [[], ["decode"], ["frobnicate"], ["encode", "hi"], ["encode", "--to", "1", "--binary", "zz"]],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(*argv)
    assert code == 2


def test_encode_single_and_json() -> None:
    code, out = run("encode", "--to", "+447700900123", "hello")
    assert code == 0
    hexstr, length = out.split()
    assert hexstr.startswith("00") and hexstr == hexstr.upper()
    assert int(length) == len(bytes.fromhex(hexstr)) - 1
    msg = decode(hexstr)
    assert msg.tp_ud.text == "hello"  # type: ignore[union-attr]
    code, out = run("encode", "--json", "--to", "2936", "--binary", "DEADBEEF")
    obj = json.loads(out)
    assert set(obj) == {"pdu", "length"}
    assert decode(obj["pdu"]).tp_ud.data == bytes.fromhex("deadbeef")  # type: ignore[union-attr]
    assert decode(obj["pdu"]).tp_dcs.value == 0x04  # type: ignore[union-attr]


def test_encode_multipart_srr_ucs2() -> None:
    code, out = run("encode", "--to", "2936", "--srr", "--ucs2", "ж" * 100)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2
    texts = []
    for i, line in enumerate(lines, 1):
        hexstr, length = line.split()
        m = decode(hexstr)
        assert m.tp_srr  # type: ignore[union-attr]
        assert m.tp_ud.concat.seq == i  # type: ignore[union-attr]
        assert int(length) == len(bytes.fromhex(hexstr)) - 1
        texts.append(m.tp_ud.text)  # type: ignore[union-attr]
    assert "".join(texts) == "ж" * 100  # type: ignore[arg-type]


def test_encode_failure_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run("encode", "--to", "2936", "--binary", "00" * (134 * 255 + 1))
    assert code == 1
    assert out == ""
    assert "255" in capsys.readouterr().err


def test_subprocess_broken_pipe_no_traceback() -> None:
    args = [sys.executable, "-m", "pdu", "decode", "--json", *([README] * 3000)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert b"Traceback" not in err
    assert proc.returncode in (0, 1)


def test_subprocess_readme_command() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "pdu", "decode", README],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0
    assert "How are you?" in res.stdout
    assert res.stderr == ""


def test_subprocess_stdin_undecodable_bytes() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "pdu", "decode", "--json", "-"],
        input=b"\xff\xfe\n" + README.encode() + b"\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 1
    bad, good = (json.loads(x) for x in res.stdout.decode().splitlines())
    assert "error" in bad and good["text"] == "How are you?"
    assert b"Traceback" not in res.stderr


def test_help_exits_0() -> None:
    code, _out = run("--help")
    assert code == 0


class EndlessLine(io.TextIOBase):
    """stdin whose first line is ``size`` characters long, then a good PDU line.

    Records the largest read it was asked for: reading a line whole (no
    limit) would hold all of it in memory.
    """

    def __init__(self, size: int) -> None:
        self.left = size
        self.tail = README + "\n"
        self.biggest = 0
        self.ended = False

    def readable(self) -> bool:
        return True

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        want = self.left + 1 if size is None or size < 0 else size
        self.biggest = max(self.biggest, want)
        if self.left > 0:
            n = min(want, self.left)
            self.left -= n
            return "A" * n
        if not self.ended:
            self.ended = True
            return "\n"
        tail, self.tail = self.tail, ""
        return tail

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


def test_stdin_endless_line_is_read_in_bounded_pieces_and_skipped() -> None:
    from pdu.cli import MAX_INPUT_LINE

    stdin = EndlessLine(5_000_000)
    out = io.StringIO()
    code = main(["decode", "--json", "-"], stdin=stdin, stdout=out)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert code == 1
    assert stdin.biggest <= MAX_INPUT_LINE + 1  # never asked for the whole line
    assert len(lines) == 2
    assert "longer than" in lines[0]["error"] and len(lines[0]["input"]) <= 100
    assert lines[1]["text"] == "How are you?"  # the next line still decodes


def test_error_line_caps_the_echo_of_a_long_bad_input() -> None:
    bad = "Z" * 3000
    code, out = run("decode", bad)
    assert code == 1
    (line,) = out.splitlines()
    assert line.startswith("error: ZZZ") and len(line) < 400 and "3000 characters" in line
