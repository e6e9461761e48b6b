"""sms-bridge.pyz (tools/build_pyz.py): built for real, run by a bare interpreter.

The archive is built once per module with the test interpreter (its
dependencies from this venv), then run by the system's Python in isolated
mode (``-I``, and ``-S`` where nothing but the standard library may be seen)
from a directory where the project is not importable.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO

BUILD = REPO / "tools" / "build_pyz.py"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def _bare_python() -> str:
    """The system interpreter (Raspberry Pi OS's is /usr/bin/python3), else this venv's base."""
    for candidate in ("/usr/bin/python3", getattr(sys, "_base_executable", ""), sys.executable):
        if not candidate or not os.path.exists(candidate):
            continue
        done = subprocess.run(
            [candidate, "-I", "-c", "import sys; print(sys.version_info >= (3, 11))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.stdout.strip() == "True":
            return candidate
    pytest.fail("no Python 3.11+ interpreter found")


PY = _bare_python()


def _build(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BUILD), "-o", str(out), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pyz") / "sms-bridge.pyz"
    done = _build(out)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory that is not the repository."""
    d = tmp_path / "cwd"
    d.mkdir()
    return d


def _run(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run(
        cmd, capture_output=True, text=True, check=False, cwd=cwd, env={**base, **(env or {})}
    )


def test_archive_holds_the_project_and_pure_python_dependencies_only(pyz: Path) -> None:
    with zipfile.ZipFile(pyz) as z:
        names = set(z.namelist())
    tree = {
        p.relative_to(REPO).as_posix()
        for pkg in ("pdu", "modem", "hal", "bridge")
        for p in (REPO / pkg).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert tree <= names, sorted(tree - names)
    for dep in ("serial/__init__.py", "serial/serialposix.py", "serial_asyncio_fast/__init__.py"):
        assert dep in names
    assert "modem/sim/__init__.py" in names  # the demo runs on the simulator
    assert "__main__.py" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE.txt") for n in names)
    assert f"sms_command_bridge-{VERSION}.dist-info/METADATA" in names
    native = [n for n in names if n.endswith((".so", ".pyd", ".dylib")) or ".so." in n]
    assert native == []
    assert [n for n in names if "__pycache__" in n or n.endswith(".pyc")] == []
    assert [n for n in names if n.startswith("tests/") or n.endswith("/RECORD")] == []


def test_shebang_is_env_python3_and_the_file_is_executable(pyz: Path) -> None:
    assert pyz.read_bytes().split(b"\n", 1)[0] == b"#!/usr/bin/env python3"
    assert pyz.stat().st_mode & 0o111 == 0o111


def test_version_is_the_pyproject_version(pyz: Path, elsewhere: Path) -> None:
    done = _run([PY, "-I", str(pyz), "--version"], elsewhere)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"sms-bridge {VERSION}\n", "")


def test_demo_runs_on_a_bare_interpreter_in_isolated_mode(pyz: Path, elsewhere: Path) -> None:
    # Without the archive, this interpreter has neither the project nor its dependencies.
    for module in ("bridge", "modem", "serial", "serial_asyncio_fast"):
        probe = _run([PY, "-I", "-S", "-c", f"import {module}"], elsewhere)
        assert probe.returncode == 1 and "ModuleNotFoundError" in probe.stderr, module
    done = _run([PY, "-I", "-S", str(pyz), "demo"], elsewhere)
    assert done.returncode == 0, done.stderr
    assert "demo: every case behaved as designed" in done.stdout
    assert "Traceback" not in done.stderr
    assert list(elsewhere.iterdir()) == []  # nothing written where it ran


def test_the_journal_process_starts_from_the_archive(
    pyz: Path, elsewhere: Path, tmp_path: Path
) -> None:
    """``[bridge] journal_process``: the child imports the journal from the
    same archive, on a bare interpreter."""
    script = (
        "import asyncio, sys\n"
        f"sys.path.insert(0, {str(pyz)!r})\n"
        "from bridge.journal import Journal\n"
        "from bridge.journal_process import JournalProcess\n"
        "async def main():\n"
        f"    jp = await JournalProcess.start({str(tmp_path / 'journal.db')!r})\n"
        "    argv = open(f'/proc/{jp.pid}/cmdline').read().split(chr(0))\n"
        "    print(argv[3], sorted(set((await jp.call(Journal.counts)).values())))\n"
        "    await jp.close()\n"
        "asyncio.run(main())\n"
    )
    done = _run([PY, "-I", "-S", "-c", script], elsewhere)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(pyz), "[0]"]
    assert "Traceback" not in done.stderr


def test_runs_through_its_shebang(pyz: Path, elsewhere: Path, tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3").symlink_to(PY)
    done = _run([str(pyz), "--version"], elsewhere, {"PATH": f"{bindir}:/usr/bin:/bin"})
    assert (done.returncode, done.stdout) == (0, f"sms-bridge {VERSION}\n")


def test_bad_argument_is_one_line_exit_2(pyz: Path, elsewhere: Path) -> None:
    done = _run([PY, "-I", str(pyz), "frobnicate"], elsewhere)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "frobnicate" in done.stderr and "Traceback" not in done.stderr


def test_bundled_dependencies_win_over_the_systems(
    pyz: Path, elsewhere: Path, tmp_path: Path
) -> None:
    # A broken 'serial' ahead of site-packages (Raspberry Pi OS may have python3-serial):
    # the archive is sys.path[0], so its own copy is the one imported.
    shadow = tmp_path / "shadow" / "serial"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('the system serial was imported')\n")
    done = _run([PY, str(pyz), "demo"], elsewhere, {"PYTHONPATH": str(shadow.parent)})
    assert done.returncode == 0, done.stderr
    assert "the system serial" not in done.stderr


def test_gpiod_is_imported_from_outside_the_archive(
    pyz: Path, elsewhere: Path, tmp_path: Path
) -> None:
    # A C extension cannot load from a zip: hal.gpio_linux imports gpiod lazily from the
    # interpreter's sys.path (python3-libgpiod in dist-packages; here a fake on PYTHONPATH).
    fake = tmp_path / "site" / "gpiod"
    fake.mkdir(parents=True)
    mark = tmp_path / "imported"
    (fake / "__init__.py").write_text(f"open({str(mark)!r}, 'w').write(__file__)\n")
    root = tmp_path / "root"
    (root / "dev").mkdir(parents=True)
    (root / "dev" / "gpiochip0").touch()
    cfg = tmp_path / "bridge.toml"
    cfg.write_text(
        f'[bridge]\njournal = "{tmp_path / "journal.db"}"\n'
        '[[modem]]\nport = "sim://bg96"\n'
        f'[hal]\nbackend = "linux"\nroot = "{root}"\n'
        '[hal.gpio.relay1]\nchip = "gpiochip0"\nline = 17\ndirection = "output"\n'
    )
    done = _run(
        [PY, str(pyz), "run", "--config", str(cfg)], elsewhere, {"PYTHONPATH": str(fake.parent)}
    )
    assert mark.read_text() == str(fake / "__init__.py")
    # The fake has neither libgpiod API: the bridge says so in one line, naming that file.
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: gpio relay1: the gpiod module at {fake / '__init__.py'} is neither API v1 nor v2"
    )


def _fake_dist(
    site: Path,
    name: str,
    version: str,
    files: dict[str, str],
    *,
    requires: str = "",
    purelib: bool = True,
) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if requires:
        meta += f"Requires-Dist: {requires}\n"
    (info / "METADATA").write_text(meta)
    (info / "WHEEL").write_text(f"Wheel-Version: 1.0\nRoot-Is-Purelib: {str(purelib).lower()}\n")
    record = [f"{info.name}/METADATA,,", f"{info.name}/WHEEL,,", f"{info.name}/RECORD,,"]
    for rel, text in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
        record.append(f"{rel},,")
    (info / "RECORD").write_text("\n".join(record) + "\n")


def _fake_site(tmp_path: Path, serial_files: dict[str, str], purelib: bool = True) -> Path:
    site = tmp_path / "site"
    _fake_dist(site, "pyserial", "3.5", serial_files, purelib=purelib)
    _fake_dist(
        site,
        "pyserial-asyncio-fast",
        "0.16",
        {"serial_asyncio_fast/__init__.py": "MARK = 'from --deps-from'\n"},
        requires="pyserial",
    )
    return site


def test_dependencies_come_from_deps_from(tmp_path: Path) -> None:
    site = _fake_site(tmp_path, {"serial/__init__.py": "", "serial/tools/x.py": ""})
    out = tmp_path / "out.pyz"
    done = _build(out, "--deps-from", str(site))
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(out) as z:
        assert z.read("serial_asyncio_fast/__init__.py") == b"MARK = 'from --deps-from'\n"
        assert "serial/tools/x.py" in z.namelist()
        assert "pyserial-3.5.dist-info/METADATA" in z.namelist()


@pytest.mark.parametrize(
    ("native", "purelib"),
    [
        ("serial/_speedups.so", True),
        ("serial/_x.cpython-311-x86_64-linux-gnu.so", True),
        ("serial/libfoo.so.1", True),
        ("serial/_win.pyd", True),
        ("", False),
    ],
)
def test_native_code_fails_the_build(tmp_path: Path, native: str, purelib: bool) -> None:
    if native:
        message = f"pyserial is not pure Python: {native} cannot be loaded from a zip"
    else:
        message = "pyserial is not pure Python (WHEEL: Root-Is-Purelib: false)"
    files = {"serial/__init__.py": ""} | ({native: "\x7fELF"} if native else {})
    site = _fake_site(tmp_path, files, purelib=purelib)
    out = tmp_path / "out.pyz"
    done = _build(out, "--deps-from", str(site))
    assert (done.returncode, done.stderr) == (1, f"build_pyz: error: {message}\n")
    assert not out.exists() and not out.with_name("out.pyz.tmp").exists()


def test_a_missing_dependency_is_named(tmp_path: Path) -> None:
    site = tmp_path / "empty"
    site.mkdir()
    done = _build(tmp_path / "out.pyz", "--deps-from", str(site))
    assert done.returncode == 1
    assert done.stderr.startswith("build_pyz: error: pyserial")
    assert f"is not installed in {site}" in done.stderr


def test_two_builds_are_the_same_bytes(pyz: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.pyz"
    assert _build(again).returncode == 0
    assert again.read_bytes() == pyz.read_bytes()


def test_vendor_copies_dependencies_without_the_excluded(tmp_path: Path) -> None:
    dest = tmp_path / "vendor"
    done = subprocess.run(
        [sys.executable, str(BUILD), "--vendor", str(dest), "--exclude", "pyserial"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    top = sorted(p.name for p in dest.iterdir())
    assert "serial_asyncio_fast" in top and "serial" not in top
    assert not list(dest.rglob("__pycache__")) and not list(dest.rglob("RECORD"))
