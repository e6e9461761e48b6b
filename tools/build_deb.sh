#!/usr/bin/env bash
# Build the Debian package sms-bridge_VERSION_all.deb with Debian's own tooling
# (dpkg-buildpackage, debhelper, dh-python) from a clean copy of this tree.
#
#   tools/build_deb.sh [--out DIR] [--version VERSION] [--pip]
#
# The copy holds the tracked files and the untracked ones git does not ignore
# (so no build/, .venv or caches), plus vendor/: pyserial-asyncio-fast, which
# Debian does not package, copied by tools/build_pyz.py --vendor from the
# interpreter in $PYTHON (default .venv/bin/python, else python3) or, with
# --pip, fresh from the package index. pyserial comes from Debian
# (python3-serial). --version adds a changelog entry to the copy (a local or
# test build, e.g. 0.1.0+local1); the default is debian/changelog's.
# Needs: debhelper dh-python python3 python3-serial dpkg-dev (tools/check_deb.sh
# installs them). Writes DIR/sms-bridge_VERSION_all.deb (default build/deb/)
# and DIR/build.log.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=$REPO/build/deb
VERSION=""
PIP=()
while [ $# -gt 0 ]; do
    case "$1" in
    --out) OUT=$2; shift 2 ;;
    --version) VERSION=$2; shift 2 ;;
    --pip) PIP=(--pip); shift ;;
    *) echo "build_deb.sh: unknown argument: $1 (see the comment at the top)" >&2; exit 2 ;;
    esac
done

PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x "$REPO/.venv/bin/python" ]; then PY=$REPO/.venv/bin/python; else PY=python3; fi
fi

WORK=$(mktemp -d /tmp/build-deb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
SRC=$WORK/sms-bridge
mkdir -p "$SRC" "$OUT"
OUT=$(cd "$OUT" && pwd)

# A clean copy: what git tracks or would track, as it is in the work tree.
git -C "$REPO" ls-files -z --cached --others --exclude-standard --deduplicate \
    | (cd "$REPO" && xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) \
    | tar -C "$REPO" --null -T - -cf - | tar -C "$SRC" -xf -

"$PY" "$REPO/tools/build_pyz.py" --vendor "$SRC/vendor" --exclude pyserial "${PIP[@]}" >/dev/null

if [ -n "$VERSION" ]; then
    trailer=$(grep -m1 '^ -- ' "$SRC/debian/changelog" | sed 's/  .*//')
    { printf 'sms-bridge (%s) bookworm; urgency=medium\n\n  * Local build.\n\n%s  %s\n\n' \
        "$VERSION" "$trailer" "$(date -R)"
      cat "$SRC/debian/changelog"; } > "$WORK/changelog"
    mv "$WORK/changelog" "$SRC/debian/changelog"
fi
VERSION=$(cd "$SRC" && dpkg-parsechangelog -S Version)

# The system PATH: no pyenv or venv interpreter stands in for /usr/bin/python3.
if ! (cd "$SRC" && env PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg-buildpackage -b -us -uc) > "$OUT/build.log" 2>&1; then
    tail -n 25 "$OUT/build.log" >&2
    echo "build_deb.sh: dpkg-buildpackage failed (whole log: $OUT/build.log)" >&2
    exit 1
fi
DEB=sms-bridge_${VERSION}_all.deb
cp "$WORK/$DEB" "$OUT/$DEB"
echo "$OUT/$DEB"
