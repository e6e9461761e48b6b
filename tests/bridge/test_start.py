"""The entry (``bridge.start``): ``run`` keeps OpenSSL out unless ``[bridge] openssl = true``.

Real interpreters, real ``python -m bridge run`` processes: what a process has
mapped (``/proc/PID/maps``) says whether OpenSSL's ``libcrypto`` was loaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bridge import start

from .rig_run import run_until_ready

ROOT = Path(__file__).resolve().parents[2]

_CONFIG = """\
[bridge]
device_id = "89883070000012345678"
journal = "{tmp}/journal.db"
{extra}
[status]
socket = "{tmp}/status.sock"

[hal]
backend = "sim"

[[modem]]
name = "modem0"
port = "sim://bg96"
"""


def _maps_when_ready(tmp: Path, extra: str) -> str:
    """``python -m bridge run --config FILE`` until ready; its memory map then."""
    cfg = tmp / "bridge.toml"
    cfg.write_text(_CONFIG.format(tmp=tmp, extra=extra))
    return run_until_ready(
        [sys.executable, "-m", "bridge", "run", "--config", str(cfg)],
        lambda pid: Path(f"/proc/{pid}/maps").read_text(),
    )


def test_run_does_not_load_openssl_by_default(tmp_path: Path) -> None:
    maps = _maps_when_ready(tmp_path, "")
    assert "libcrypto" not in maps and "libssl" not in maps


def test_run_loads_openssl_when_the_configuration_asks(tmp_path: Path) -> None:
    maps = _maps_when_ready(tmp_path, "openssl = true")
    assert "libcrypto" in maps


def test_without_openssl_hmac_sha256_is_right_and_ssl_says_it_is_absent() -> None:
    code = textwrap.dedent(
        """\
        from bridge import start
        start.keep_openssl_out()
        import asyncio, hashlib, hmac
        try:
            import ssl
        except ImportError:
            print("no ssl")
        # RFC 4231, test case 2
        print(hmac.new(b"Jefe", b"what do ya want for nothing?", hashlib.sha256).hexdigest())
        print("libcrypto" in open("/proc/self/maps").read())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.split() == [
        "no",
        "ssl",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        "False",
    ]


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("[bridge]\nopenssl = true\n", True),
        ("[bridge]\nopenssl = false\n", False),
        ("[bridge]\n", False),
        ("", False),
        ('[bridge]\nopenssl = "yes"\n', False),  # not a boolean: check-config says so
        ("[bridge\nopenssl = true\n", False),  # not TOML: the full check reports it
        ("bridge = 3\n", False),
    ],
)
def test_wants_openssl_reads_the_one_key(tmp_path: Path, text: str, wanted: bool) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    assert start.wants_openssl(["--config", str(cfg)]) is wanted
    assert start.wants_openssl([f"--config={cfg}"]) is wanted


def test_wants_openssl_without_a_file(tmp_path: Path) -> None:
    assert start.wants_openssl(["--config", str(tmp_path / "absent.toml")]) is False
    assert start.wants_openssl(["--port", "sim://bg96"]) is False  # no file at all
    assert start._config_path([]) == start.DEFAULT_CONFIG
    assert start._config_path(["--journal", "j.db", "--port=/dev/ttyUSB2"]) is None
