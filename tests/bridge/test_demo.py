"""``python -m bridge demo`` as a user runs it: a subprocess, exit 0, each case's outcome."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", "demo", *args],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def test_demo_plays_every_case_through_the_real_path() -> None:
    p = _demo("--json")
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    lines = [json.loads(line) for line in p.stdout.splitlines()]
    cases = {d["case"]: d for d in lines}
    assert list(cases) == [
        "plain",
        "signed",
        "include_sid",
        "binary",
        "duplicate",
        "spoofed",
        "bad-signature",
        "reboot",
        "journal",
    ]

    def answers(name: str) -> list[str]:
        return [a["content"] for a in cases[name]["answers"]]

    def states(name: str) -> list[tuple[str, str | None]]:
        return [(e["state"], e["reason"]) for e in cases[name]["entries"]]

    assert [a.split(" #")[0] for a in answers("plain")] == ["pong"]
    assert [a.split(" #")[0] for a in answers("signed")] == ["relay1=on"]
    assert cases["signed"]["entries"][0]["counter"] is not None
    assert cases["include_sid"]["entries"][0]["sid"].startswith("DC")
    assert answers("include_sid")[0].startswith("up=")
    (binary,) = cases["binary"]["answers"]
    assert binary["binary"] is True and binary["dcs"] == "0x04" and binary["shown"] == "ok: pong"
    assert states("duplicate") == [("sent", None)] and len(answers("duplicate")) == 1
    assert states("spoofed") == [("rejected", "unknown-sender")] and answers("spoofed") == []
    assert states("bad-signature") == [("rejected", "auth:bad-tag")]
    assert answers("bad-signature") == []
    assert [a.split(" #")[0] for a in answers("reboot")] == ["rebooting"]
    for name in ("plain", "signed", "include_sid", "binary", "duplicate", "reboot"):
        assert all(a["check"].startswith("signature verified") for a in cases[name]["answers"])
    j = cases["journal"]
    assert j["rebooted"] == ["reboot"]
    assert len(j["boot_after_reboot"]) == 1 and j["boot_after_reboot"][0].startswith("boot ")
    assert j["counts"]["rejected"] == 2 and j["counts"]["sent"] == 8
    assert sum(j["counts"].values()) == 10


def test_demo_human_output_names_each_case_and_its_outcome() -> None:
    p = _demo()
    assert p.returncode == 0, p.stderr
    out = p.stdout
    for title in (
        "A plain Command",
        "A signed Command",
        "A Command with include_sid",
        "A binary Command",
        "A duplicate",
        "A spoofed sender",
        "A bad signature",
        "A signed reboot",
    ):
        assert title in out
    assert out.count("outcome   ok") == 8 and "WRONG" not in out
    assert "rejected (unknown-sender)" in out and "rejected (auth:bad-tag)" in out
    assert "after the reboot (reboot run by the simulated HAL)" in out
    assert "the journal holds:" in out and "demo: every case behaved as designed" in out
