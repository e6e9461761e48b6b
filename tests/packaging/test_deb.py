"""The Debian packaging (debian/), checked without building or installing it.

tools/check_deb.sh builds, installs, upgrades and purges the package for real
(CI, as root); here: the control fields, that every file the package installs
exists and lands where docs/install.md says, and the maintainer scripts, parsed
by dash and run for real against stand-ins of the account tools (adduser,
getent, usermod...) and, for purge, a real directory tree under $DPKG_ROOT.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from .conftest import REPO, UNIT

DEBIAN = REPO / "debian"
SCRIPTS = ("postinst", "prerm", "postrm")
SH = shutil.which("dash") or "/bin/sh"


def _paragraphs(path: Path) -> list[dict[str, str]]:
    """deb822 paragraphs: field -> value with continuation lines joined."""
    out: list[dict[str, str]] = []
    for block in path.read_text().strip().split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith((" ", "\t")):
                fields[key] += "\n" + line.strip()
            else:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        out.append(fields)
    return out


def _relations(value: str) -> dict[str, str]:
    """``"a (>= 1), b"`` -> ``{"a": ">= 1", "b": ""}``."""
    rel: dict[str, str] = {}
    for item in value.replace("\n", " ").split(","):
        m = re.fullmatch(r"\s*(\S+)\s*(?:\(([^)]*)\))?\s*", item)
        assert m is not None, item
        rel[m.group(1)] = (m.group(2) or "").strip()
    return rel


def test_control_fields() -> None:
    source, binary = _paragraphs(DEBIAN / "control")
    assert source["Source"] == "sms-bridge"
    assert source["Rules-Requires-Root"] == "no"
    build = _relations(source["Build-Depends"])
    assert build["debhelper-compat"] == "= 13"
    assert {"dh-python", "python3", "python3-serial"} <= build.keys()
    assert binary["Package"] == "sms-bridge"
    assert binary["Architecture"] == "all"
    depends = _relations(binary["Depends"])
    assert depends["python3-serial"] == ">= 3.5"
    assert {"${misc:Depends}", "${python3:Depends}", "adduser", "passwd"} <= depends.keys()
    # Not in Debian: vendored into /usr/lib/sms-bridge instead of depended on.
    assert not any("asyncio" in name for name in depends)
    assert _relations(binary["Recommends"]) == {"python3-libgpiod": ""}


def test_changelog_version_is_the_pyproject_version() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    first = (DEBIAN / "changelog").read_text().splitlines()[0]
    m = re.fullmatch(r"sms-bridge \(([^)]+)\) \S+; urgency=\w+", first)
    assert m is not None, first
    assert m.group(1) == version  # native: no Debian revision
    assert (DEBIAN / "source" / "format").read_text().strip() == "3.0 (native)"


def test_installed_files_exist_and_land_where_the_docs_say() -> None:
    entries = dict(
        line.split() for line in (DEBIAN / "sms-bridge.install").read_text().splitlines() if line
    )
    assert entries == {
        "packaging/systemd/sms-bridge.service": "lib/systemd/system/",
        "packaging/polkit/50-sms-bridge.rules": "usr/share/polkit-1/rules.d/",
        "packaging/modules-load/sms-bridge.conf": "usr/lib/modules-load.d/",
        "packaging/udev/99-sms-bridge.rules.in": "usr/share/sms-bridge/udev/",
    }
    for src in entries:
        assert (REPO / src).is_file(), src
    listed = (DEBIAN / "sms-bridge.docs").read_text().split()
    listed += (DEBIAN / "sms-bridge.examples").read_text().split()
    for doc in listed:
        assert (REPO / doc).is_file(), doc


def test_unit_paths_match_what_the_package_installs() -> None:
    unit = UNIT.read_text()
    rules = (DEBIAN / "rules").read_text()
    assert "ExecStart=/usr/bin/sms-bridge run --config /etc/sms-bridge/config.toml" in unit
    assert "debian/sms-bridge.launcher debian/sms-bridge/usr/bin/sms-bridge" in rules
    assert "docs/bridge.example.toml debian/sms-bridge/etc/sms-bridge/config.toml" in rules
    # Documentation=file:/usr/share/doc/sms-bridge/install.md: installed, not compressed.
    assert "Documentation=file:/usr/share/doc/sms-bridge/install.md" in unit
    assert "docs/install.md" in (DEBIAN / "sms-bridge.docs").read_text().split()
    assert "dh_compress -X.md" in rules
    assert "dh_installsystemd --no-enable --no-start" in rules
    assert "dh_python3 /usr/lib/sms-bridge" in rules
    assert os.access(DEBIAN / "rules", os.X_OK)


def test_launcher_runs_the_cli_isolated_from_the_private_directory() -> None:
    text = (DEBIAN / "sms-bridge.launcher").read_text()
    assert text.splitlines()[0] == "#!/usr/bin/python3 -I"
    assert 'sys.path.insert(0, "/usr/lib/sms-bridge")' in text
    assert "sys.exit(main())" in text
    compile(text, "sms-bridge.launcher", "exec")


@pytest.mark.parametrize("script", SCRIPTS)
def test_maintainer_script_parses_and_keeps_the_debhelper_token(script: str) -> None:
    path = DEBIAN / f"sms-bridge.{script}"
    text = path.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert "\nset -e\n" in text
    assert text.count("\n#DEBHELPER#\n") == 1
    done = subprocess.run([SH, "-n", str(path)], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr) == (0, "")


# --- the scripts, run ----------------------------------------------------------------

STUB = r"""#!/bin/sh
# Stand-in account tool: logs its call; getent answers from the state directory.
echo "$(basename "$0") $*" >> "$STUB_LOG"
name=$(basename "$0")
last=$(eval echo \${$#})
case "$name" in
getent) [ -e "$STUB_STATE/$1/$2" ] ;;
adduser)
    case " $* " in
    *" --system "*) touch "$STUB_STATE/passwd/$last" "$STUB_STATE/group/$last" ;;
    esac ;;
addgroup) touch "$STUB_STATE/group/$last" ;;
esac
"""


class Stubs:
    def __init__(self, tmp: Path) -> None:
        self.bin = tmp / "stubs"
        self.state = tmp / "accounts"
        self.log = tmp / "calls.log"
        self.bin.mkdir()
        for kind in ("passwd", "group"):
            (self.state / kind).mkdir(parents=True)
        for tool in ("getent", "adduser", "addgroup", "usermod", "deb-systemd-invoke", "systemctl"):
            stub = self.bin / tool
            stub.write_text(STUB)
            stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
        self.log.write_text("")

    def exists(self, kind: str, name: str) -> None:
        (self.state / kind / name).touch()

    def run(
        self, script: str, *args: str, root: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{self.bin}:/usr/sbin:/usr/bin:/sbin:/bin",
            "STUB_LOG": str(self.log),
            "STUB_STATE": str(self.state),
        }
        if root is not None:
            env["DPKG_ROOT"] = str(root)
        path = DEBIAN / f"sms-bridge.{script}"
        return subprocess.run(
            [SH, str(path), *args], capture_output=True, text=True, check=False, env=env
        )

    def calls(self, *tools: str) -> list[str]:
        lines = self.log.read_text().splitlines()
        return [line for line in lines if line.split()[0] in tools]


@pytest.fixture
def stubs(tmp_path: Path) -> Stubs:
    return Stubs(tmp_path)


ADD_USER = (
    "adduser --system --group --quiet --no-create-home --home /var/lib/sms-bridge "
    "--gecos SMS command bridge sms-bridge"
)


def test_postinst_first_install_creates_the_system_user_and_a_missing_gpio_group(
    stubs: Stubs,
) -> None:
    stubs.exists("group", "dialout")
    done = stubs.run("postinst", "configure", "")
    assert (done.returncode, done.stderr) == (0, "")
    assert stubs.calls("adduser", "addgroup", "usermod") == [
        ADD_USER,
        "addgroup --system --quiet gpio",
        "adduser --quiet sms-bridge dialout",
        "adduser --quiet sms-bridge gpio",
    ]


def test_postinst_keeps_an_existing_user_and_lifts_the_expiry_of_a_purge(stubs: Stubs) -> None:
    for kind, name in (("passwd", "sms-bridge"), ("group", "dialout"), ("group", "gpio")):
        stubs.exists(kind, name)
    done = stubs.run("postinst", "configure", "0.1.0")
    assert done.returncode == 0, done.stderr
    assert stubs.calls("adduser", "addgroup", "usermod") == [
        "usermod --expiredate  sms-bridge",
        "adduser --quiet sms-bridge dialout",
        "adduser --quiet sms-bridge gpio",
    ]


def test_postinst_without_dialout_does_not_add_to_it(stubs: Stubs) -> None:
    done = stubs.run("postinst", "configure", "")
    assert done.returncode == 0, done.stderr
    assert "adduser --quiet sms-bridge dialout" not in stubs.calls("adduser")


@pytest.mark.parametrize("script", SCRIPTS)
def test_unknown_argument_is_refused(stubs: Stubs, script: str) -> None:
    done = stubs.run(script, "frobnicate")
    assert done.returncode == 1
    assert done.stderr == f"{script} called with unknown argument 'frobnicate'\n"


def _state(root: Path, *names: str) -> Path:
    state = root / "var" / "lib" / "sms-bridge"
    state.mkdir(parents=True)
    for name in names:
        (state / name).write_text("x")
    return state


JOURNAL_FILES = (
    "journal.db",
    "journal.db-wal",
    "journal.db-shm",
    "journal.db.counters",
    "journal.db.counters.tmp",
    "journal.db.lock",
    "journal.db.corrupt-20261201T084000Z",
    "journal.db.corrupt-20261201T084000Z-wal",
)


def test_purge_removes_the_journal_and_the_empty_directories(stubs: Stubs, tmp_path: Path) -> None:
    root = tmp_path / "root"
    state = _state(root, *JOURNAL_FILES)
    (root / "etc" / "sms-bridge").mkdir(parents=True)
    stubs.exists("passwd", "sms-bridge")
    done = stubs.run("postrm", "purge", root=root)
    assert (done.returncode, done.stderr) == (0, "")
    assert not state.exists() and not (root / "etc" / "sms-bridge").exists()
    assert (root / "var" / "lib").is_dir()
    # The user is kept (files it owns may remain elsewhere), expired.
    assert stubs.calls("usermod") == ["usermod --expiredate 1 sms-bridge"]


def test_purge_keeps_and_names_what_the_package_did_not_create(
    stubs: Stubs, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    state = _state(root, *JOURNAL_FILES, "journal-backup.db")
    (state / "notes").mkdir()
    conf = root / "etc" / "sms-bridge"
    conf.mkdir(parents=True)
    (conf / "keys.toml").write_text("secret")
    done = stubs.run("postrm", "purge", root=root)
    assert done.returncode == 0
    assert sorted(p.name for p in state.iterdir()) == ["journal-backup.db", "notes"]
    assert (conf / "keys.toml").read_text() == "secret"
    assert done.stderr == (
        f"sms-bridge: kept {state}, which holds files the package did not create:\n"
        "  journal-backup.db\n  notes\n"
        f"sms-bridge: kept {conf}, which holds files the package did not create:\n"
        "  keys.toml\n"
    )
    assert stubs.calls("usermod") == []  # no such user: nothing to expire


def test_purge_does_not_follow_a_symlinked_state_directory(stubs: Stubs, tmp_path: Path) -> None:
    root = tmp_path / "root"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "journal.db").write_text("keep")
    (root / "var" / "lib").mkdir(parents=True)
    (root / "var" / "lib" / "sms-bridge").symlink_to(elsewhere)
    done = stubs.run("postrm", "purge", root=root)
    assert done.returncode == 0, done.stderr
    assert (elsewhere / "journal.db").read_text() == "keep"


@pytest.mark.parametrize("action", ["remove", "upgrade", "abort-install"])
def test_postrm_other_than_purge_touches_nothing(stubs: Stubs, tmp_path: Path, action: str) -> None:
    root = tmp_path / "root"
    state = _state(root, *JOURNAL_FILES)
    stubs.exists("passwd", "sms-bridge")
    done = stubs.run("postrm", action, root=root)
    assert (done.returncode, done.stderr) == (0, "")
    assert sorted(p.name for p in state.iterdir()) == sorted(JOURNAL_FILES)
    assert stubs.calls("usermod") == []


def test_the_shipped_config_passes_check_config(tmp_path: Path) -> None:
    # debian/rules installs docs/bridge.example.toml as /etc/sms-bridge/config.toml.
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); from bridge.cli import main; "
            "sys.exit(main(sys.argv[2:]))",
            str(REPO),
            "check-config",
            str(REPO / "docs" / "bridge.example.toml"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{REPO / 'docs' / 'bridge.example.toml'}: ok\n")
