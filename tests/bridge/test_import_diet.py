"""What the service imports: the modules ``sms-bridge run`` never needs stay out.

Every module imported is memory the service keeps for its whole life (its
code objects, its classes, the libraries it pulls in): ``importlib.metadata``
alone cost about 1.8 MB of peak RSS (``email``, ``zipfile``, ``csv``...).
These tests run real interpreters (a fresh process each, the way the unit,
the zipapp and the Debian package start one) and fail when one of the heavy
imports comes back: the simulator, the demo, the JSON view of a PDU, the HAL
backend the configuration does not name, ``importlib.metadata`` and what it
drags in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

import bridge

from .rig_run import run_until_ready

ROOT = Path(__file__).resolve().parents[2]

#: Never imported by the service, whatever the configuration.
NEVER = (
    "importlib.metadata",
    "email",
    "zipfile",
    "csv",
    "tempfile",
    "shutil",
    "bz2",
    "lzma",
    "platform",
    "bridge.demo",
    "pdu.jsonview",
    "pdu.cli",
    "hal.cli",
    "bridge.journal_process",  # only with [bridge] journal_process = true
    "ctypes",
    "pickle",
)
#: The Linux HAL backend's modules (not on ``backend = "sim"``).
LINUX_HAL = ("hal.gpio_linux", "hal.sensors", "hal.system")


def _brought(code: str, *args: str) -> set[str]:
    """The modules ``code`` imports beyond what a bare interpreter had (its own
    ``site``), in a fresh process on this tree; ``code`` prints nothing."""
    probe = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        f"{code}\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_the_version_is_the_pyproject_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert bridge.__version__ == version


@pytest.mark.parametrize("module", ["bridge.service", "bridge.cli", "bridge"])
def test_importing_the_service_loads_nothing_it_does_not_use(module: str) -> None:
    brought = _brought(f"import {module}")
    assert module in brought  # the probe imported something: the check is not empty
    heavy = brought & {*NEVER, "modem.sim", "hal.sim", *LINUX_HAL}
    assert heavy == set()


def test_entry_point_discovery_without_plugins_does_not_import_importlib_metadata() -> None:
    brought = _brought(
        "from bridge.actions.registry import Registry\nassert Registry().add_entry_points() == []"
    )
    assert "bridge.actions.registry" in brought
    assert brought & {"importlib.metadata", "email", "zipfile", "csv"} == set()


def test_the_pdu_json_view_loads_when_asked_for() -> None:
    brought = _brought("import pdu\npdu.to_json\nfrom pdu import JSON_KEYS")
    assert "pdu.jsonview" in brought


_CONFIG = """\
[bridge]
product = "programmable-wireless"
device_id = "89883070000012345678"
journal = "{tmp}/journal.db"

[status]
socket = "{tmp}/status.sock"

[hal]
backend = "{backend}"

[[modem]]
name = "modem0"
port = "sim://bg96"
"""


def _run_until_ready(tmp: Path, backend: str) -> set[str]:
    """``sms-bridge run --config FILE`` in a process of its own on the in-process
    simulated module: ready (journal open, module initialised, status socket
    up), then SIGTERM; the modules it had loaded by then."""
    cfg = tmp / "bridge.toml"
    cfg.write_text(_CONFIG.format(tmp=tmp, backend=backend))
    out = tmp / "modules.json"
    code = textwrap.dedent(
        f"""\
        import atexit, json, sys
        atexit.register(lambda: open({str(out)!r}, "w").write(json.dumps(sorted(sys.modules))))
        from bridge.cli import main
        sys.exit(main(["run", "--config", {str(cfg)!r}]))
        """
    )
    run_until_ready([sys.executable, "-c", code], lambda pid: None)
    return set(json.loads(out.read_text()))


def test_run_on_the_simulated_hal_loads_no_linux_backend(tmp_path: Path) -> None:
    loaded = _run_until_ready(tmp_path, "sim")
    assert {"bridge.service", "bridge.status", "hal.sim", "modem.sim"} <= loaded
    assert loaded & {*NEVER, *LINUX_HAL} == set()


def test_run_on_the_linux_hal_loads_no_simulated_hal(tmp_path: Path) -> None:
    loaded = _run_until_ready(tmp_path, "linux")
    assert {"bridge.service", *LINUX_HAL} <= loaded
    assert loaded & {*NEVER, "hal.sim"} == set()
