"""hal stands alone: no other project package, standard library only, runs from a zipapp."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_hal_imports_nothing_else_of_the_project_nor_gpiod():
    code = (
        "import sys, hal, hal.cli, hal.sim, hal.gpio_linux;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pdu', 'modem', 'bridge', 'gpiod', 'serial', 'serial_asyncio_fast'));"
        "print(bad)"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert p.stdout.strip() == "[]"


def test_runs_from_a_zipapp_with_the_standard_library_only(tmp_path):
    pyz = tmp_path / "hal.pyz"
    with zipfile.ZipFile(pyz, "w") as z:
        for f in sorted((REPO / "hal").rglob("*.py")):
            z.write(f, f.relative_to(REPO).as_posix())
        z.writestr("__main__.py", "import sys\nfrom hal.cli import main\nsys.exit(main())\n")
    cfg = tmp_path / "hal.toml"
    cfg.write_text('[sensors.cpu]\ntype = "thermal"\nzone = 0\n[sim.sensors]\ncpu = "40.5"\n')
    # -I: isolated mode, no site-packages and no current directory on the path
    p = subprocess.run(
        [sys.executable, "-I", str(pyz), "--config", str(cfg), "sensor"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (p.returncode, p.stdout, p.stderr) == (0, "cpu  40.5 °C\n", "")
