#!/usr/bin/env bash
# Set up a fresh machine for running and testing the bridge:
#   - Debian packages the test suite uses (gammu and libgammu for the interop
#     and differential tests, pkg-config and gcc to build python-gammu;
#     systemd and udev for systemd-analyze / udevadm checks of the unit and
#     the udev rule; nodejs to check the polkit rule);
#   - a virtual environment in .venv with the project and its test extras.
# Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(gammu gammu-smsd libgammu-dev pkg-config gcc systemd udev nodejs)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
