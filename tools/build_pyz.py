#!/usr/bin/env python3
"""Build ``sms-bridge.pyz``: the bridge and its pure-Python dependencies in one file.

::

    python3 tools/build_pyz.py                       # -> build/sms-bridge.pyz
    python3 tools/build_pyz.py -o /tmp/sms-bridge.pyz
    python3 tools/build_pyz.py --pip                 # dependencies fresh from the index
    python3 tools/build_pyz.py --deps-from DIR       # from `pip install --target DIR`
    python3 tools/build_pyz.py --vendor DIR --exclude pyserial   # deps only (the .deb)
    python3 tools/build_pyz.py --tree DIR            # the project only, unzipped (the .deb)

The archive (a standard library ``zipapp``) holds:

* the packages ``pdu``, ``modem`` (with ``modem.sim``, which ``sms-bridge demo``
  runs on), ``hal`` and ``bridge``, as ``.py`` source from this tree;
* the runtime dependencies of ``pyproject.toml`` and what they require in
  turn (``pyserial``, ``pyserial-asyncio-fast``), each with its
  ``.dist-info`` (licence and metadata; ``RECORD`` and installer files left
  out), taken from the interpreter that runs this script (``importlib.metadata``),
  from ``--deps-from DIR``, or ``--pip`` (``pip install --target`` a
  temporary directory, wheels only);
* a ``.dist-info`` for ``sms-command-bridge`` itself, so ``--version`` tells
  the version of ``pyproject.toml``;
* ``__main__.py``: ``sys.exit(bridge.start.main())``, the ``sms-bridge`` command.

The shebang is ``#!/usr/bin/env python3``. A dependency that is not pure
Python fails the build (zipimport cannot load a C extension from an
archive): a native file (``.so``, ``.pyd``, ``.dylib``...) or a wheel whose
``WHEEL`` says ``Root-Is-Purelib: false``. GPIO's ``gpiod`` binding is
therefore not inside; the bridge imports it lazily from the interpreter's
own ``sys.path`` (Raspberry Pi OS: ``apt install python3-libgpiod``).

Entries are sorted and dated ``SOURCE_DATE_EPOCH`` (default 1980-01-01), so
two builds of one tree are the same bytes. Errors are one line, exit 1.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipapp
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pdu", "modem", "hal", "bridge")
SHEBANG = "/usr/bin/env python3"
DEFAULT_OUTPUT = REPO / "build" / "sms-bridge.pyz"
#: Suffixes of files zipimport cannot load (or that mean compiled code is expected).
NATIVE_SUFFIXES = (".so", ".pyd", ".dylib", ".dll", ".a", ".o")
#: Installer bookkeeping that says nothing true about a copy inside an archive.
SKIPPED_METADATA = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
MAIN_PY = '''\
"""sms-bridge.pyz: the ``sms-bridge`` command (built by tools/build_pyz.py)."""

import sys

from bridge.start import main

sys.exit(main())
'''


class BuildError(Exception):
    """The archive cannot be built as asked: one line for the user."""


def canonical(name: str) -> str:
    """PEP 503 normalised name: ``PySerial_Asyncio.fast`` -> ``pyserial-asyncio-fast``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project() -> tuple[str, str, list[str]]:
    """Name, version and runtime dependencies from ``pyproject.toml``."""
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    p = data["project"]
    return str(p["name"]), str(p["version"]), [str(d) for d in p.get("dependencies", [])]


def requirement_name(req: str) -> tuple[str, str]:
    """``"pyserial>=3.5; extra == 'x'"`` -> ``("pyserial", "extra == 'x'")``."""
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    if m is None:
        raise BuildError(f"cannot read the requirement {req!r}")
    _, _, marker = req.partition(";")
    return canonical(m.group(1)), marker.strip()


def resolve(
    requirements: Iterable[str], path: list[str] | None, exclude: set[str]
) -> list[metadata.Distribution]:
    """The installed distributions for ``requirements`` and everything they require.

    Requirements behind an ``extra`` marker are optional and left out; any
    other marker cannot be judged without a resolver, so it is an error
    (list such a dependency in pyproject.toml without a marker instead).
    """
    todo = list(requirements)
    seen: dict[str, metadata.Distribution] = {}
    while todo:
        name, marker = requirement_name(todo.pop(0))
        if marker:
            if "extra" in marker:
                continue
            raise BuildError(
                f"requirement {name!r} has a marker this script cannot judge: {marker}"
            )
        if name in seen or name in exclude:
            continue
        found = [
            d
            for d in metadata.distributions(**({"path": path} if path is not None else {}))
            if canonical(d.metadata["Name"] or "") == name
        ]
        if not found:
            where = "in " + ":".join(path) if path is not None else f"for {sys.executable}"
            raise BuildError(f"{name} is not installed {where} (pip install it, or use --pip)")
        seen[name] = found[0]
        todo.extend(found[0].requires or [])
    return [seen[n] for n in sorted(seen)]


def distribution_files(dist: metadata.Distribution) -> Iterator[tuple[str, Path]]:
    """``(name in the archive, file on disk)`` of one pure-Python distribution."""
    name = dist.metadata["Name"]
    wheel = dist.read_text("WHEEL") or ""
    if re.search(r"^Root-Is-Purelib:\s*false", wheel, re.MULTILINE | re.IGNORECASE):
        raise BuildError(f"{name} is not pure Python (WHEEL: Root-Is-Purelib: false)")
    if not dist.files:
        raise BuildError(f"{name} lists no files (no RECORD): reinstall it with pip")
    for f in sorted(dist.files, key=str):
        rel = PurePosixPath(str(f))
        if rel.parts[0] == ".." or "__pycache__" in rel.parts or rel.suffix == ".pyc":
            continue  # console scripts outside site-packages, bytecode of this interpreter
        if rel.parts[0].endswith(".dist-info") and rel.name in SKIPPED_METADATA:
            continue
        if rel.suffix in NATIVE_SUFFIXES or ".so." in rel.name:
            raise BuildError(f"{name} is not pure Python: {rel} cannot be loaded from a zip")
        yield str(rel), Path(str(dist.locate_file(f)))


def project_files() -> Iterator[tuple[str, Path]]:
    """The ``.py`` files of the project's packages, from this tree."""
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*")):
            rel = path.relative_to(REPO)
            if "__pycache__" in rel.parts or not path.is_file():
                continue
            if path.suffix in NATIVE_SUFFIXES or ".so." in path.name:
                raise BuildError(f"native file in the project tree: {rel}")
            if path.suffix == ".py":
                yield rel.as_posix(), path


def project_metadata(name: str, version: str) -> dict[str, bytes]:
    """A minimal ``.dist-info`` so ``importlib.metadata.version`` answers inside the archive."""
    info = f"{re.sub(r'[-.]+', '_', name)}-{version}.dist-info"
    text = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    return {
        f"{info}/METADATA": text.encode(),
        f"{info}/top_level.txt": "\n".join(PACKAGES).encode(),
    }


def pip_target(requirements: list[str], tmp: Path) -> list[str]:
    """``pip install --target`` the requirements (wheels only) into ``tmp``; its path."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    cmd += ["--only-binary", ":all:", "--no-compile", "--target", str(tmp), *requirements]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BuildError(f"pip install --target failed: {last}")
    return [str(tmp)]


def date_time() -> tuple[int, int, int, int, int, int]:
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))  # 1980-01-01, zip's first day
    return time.gmtime(max(epoch, 315532800))[:6]


def collect(deps_path: list[str] | None, exclude: set[str]) -> dict[str, Path | bytes]:
    """Every archive member: name -> file on disk, or content."""
    requirements = project()[2]
    members: dict[str, Path | bytes] = {}
    for dist in resolve(requirements, deps_path, exclude):
        for arcname, src in distribution_files(dist):
            if arcname.split("/")[0] in PACKAGES:
                raise BuildError(f"{dist.metadata['Name']} installs {arcname}, a project package")
            members[arcname] = src
    return members


def write_zip(members: dict[str, Path | bytes], out: io.BufferedIOBase) -> None:
    stamp = date_time()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for arcname in sorted(members):
            src = members[arcname]
            data = src if isinstance(src, bytes) else src.read_bytes()
            info = zipfile.ZipInfo(arcname, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)


def build(output: Path, deps_path: list[str] | None, interpreter: str = SHEBANG) -> list[str]:
    """Write the archive to ``output``; the names of its members."""
    name, version, _ = project()
    members = collect(deps_path, set())
    for arcname, src in project_files():
        members[arcname] = src
    members.update(project_metadata(name, version))
    members["__main__.py"] = MAIN_PY.encode()
    buf = io.BytesIO()
    write_zip(members, buf)
    buf.seek(0)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    zipapp.create_archive(buf, str(tmp), interpreter=interpreter)
    tmp.chmod(0o755)
    os.replace(tmp, output)
    return sorted(members)


def _write_tree(dest: Path, members: dict[str, Path | bytes]) -> list[str]:
    for arcname, src in sorted(members.items()):
        target = dest / arcname
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(src, bytes):
            target.write_bytes(src)
        else:
            shutil.copyfile(src, target)
        target.chmod(0o644)
    return sorted(members)


def tree(dest: Path) -> list[str]:
    """Write the project's packages and its ``.dist-info`` (no dependencies) under ``dest``."""
    name, version, _ = project()
    members: dict[str, Path | bytes] = dict(project_files())
    members.update(project_metadata(name, version))
    return _write_tree(dest, members)


def vendor(dest: Path, deps_path: list[str] | None, exclude: set[str]) -> list[str]:
    """Copy the dependencies (not the project) into ``dest``, as an installed tree."""
    return _write_tree(dest, collect(deps_path, {canonical(e) for e in exclude}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="build_pyz.py", description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, help="the .pyz to write")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--deps-from", type=Path, help="dependencies from this directory")
    src.add_argument("--pip", action="store_true", help="pip install --target a temporary dir")
    p.add_argument("--vendor", type=Path, help="copy the dependencies only into this directory")
    p.add_argument("--exclude", action="append", default=[], help="with --vendor: leave this out")
    p.add_argument(
        "--tree", type=Path, help="write the project's packages only into this directory"
    )
    args = p.parse_args(argv)
    try:
        if args.tree is not None:
            names = tree(args.tree)
            print(f"wrote {len(names)} files into {args.tree}")
            return 0
        with tempfile.TemporaryDirectory(prefix="build-pyz-") as tmp:
            deps_path: list[str] | None = None
            if args.deps_from is not None:
                if not args.deps_from.is_dir():
                    raise BuildError(f"--deps-from {args.deps_from}: not a directory")
                deps_path = [str(args.deps_from)]
            elif args.pip:
                deps_path = pip_target(project()[2], Path(tmp))
            if args.vendor is not None:
                names = vendor(args.vendor, deps_path, set(args.exclude))
                print(f"vendored {len(names)} files into {args.vendor}")
                return 0
            if args.exclude:
                raise BuildError("--exclude is for --vendor only")
            names = build(args.output, deps_path)
    except BuildError as exc:
        print(f"build_pyz: error: {exc}", file=sys.stderr)
        return 1
    size = args.output.stat().st_size
    print(f"wrote {args.output} ({len(names)} files, {size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
