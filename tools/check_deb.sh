#!/usr/bin/env bash
# CI step for the Debian package, as root, after the tests (.venv exists):
#   1. apt-get the build tools that are missing; build the package twice from a
#      clean copy of the tree (tools/build_deb.sh): VERSION and VERSION+check1;
#   2. dpkg -i the first; check the installed files, the service user, that
#      the unit is not enabled; run `sms-bridge demo` from the installed files
#      (from /, an empty environment, and as the service user);
#      `systemd-analyze verify` on the installed unit (output must be empty);
#   3. edit /etc/sms-bridge/config.toml, give the bridge a journal in
#      /var/lib/sms-bridge, dpkg -i the newer build, then the older one again
#      (the rollback): the edit and the journal are kept, with no prompt;
#   4. dpkg --remove: config and journal kept, no code left; dpkg --purge:
#      nothing left in /usr/lib/sms-bridge, /etc/sms-bridge, /var/lib/sms-bridge;
#      the user is kept, expired.
# Exits non-zero at the first failure. Leaves the machine as it found it: the
# package purged; the user, the gpio group and the package's directories
# removed if this check created them (build tools it installed stay installed).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "check_deb: $*"; }
fail() { echo "check_deb: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (it installs and purges the package)"
if dpkg-query -W -f='${db:Status-Status}' sms-bridge 2>/dev/null | grep -qv '^not-installed$'; then
    fail "sms-bridge is already installed here; this check would purge it"
fi
had_user=no; getent passwd sms-bridge >/dev/null && had_user=yes
had_group=no; getent group sms-bridge >/dev/null && had_group=yes
had_gpio=no; getent group gpio >/dev/null && had_gpio=yes
# Directories this check may leave behind on a failure: removed at the end
# unless they were here before it.
made_dirs=()
for d in /var/lib/sms-bridge /etc/sms-bridge /usr/lib/sms-bridge; do [ -e "$d" ] || made_dirs+=("$d"); done

WORK=$(mktemp -d /tmp/check-deb.XXXXXX)
cleanup() {
    local rc=$?
    if dpkg-query -W -f='${db:Status-Status}' sms-bridge 2>/dev/null | grep -qv '^not-installed$'; then
        dpkg --purge sms-bridge >/dev/null 2>&1 || rc=1
    fi
    for d in "${made_dirs[@]}"; do rm -rf "$d"; done
    [ "$had_user" = yes ] || ! getent passwd sms-bridge >/dev/null || deluser --quiet --system sms-bridge >/dev/null 2>&1 || true
    [ "$had_group" = yes ] || ! getent group sms-bridge >/dev/null || delgroup --quiet --system sms-bridge >/dev/null 2>&1 || true
    [ "$had_gpio" = yes ] || ! getent group gpio >/dev/null || delgroup --quiet --system gpio >/dev/null 2>&1 || true
    rm -rf "$WORK"
    [ $rc -eq 0 ] && say "ok" || echo "check_deb: failed (exit $rc)" >&2
    exit $rc
}
trap cleanup EXIT

# 1. Build tools, then two builds.
tools=(debhelper dh-python python3 python3-serial dpkg-dev build-essential fakeroot adduser passwd systemd)
missing=()
for p in "${tools[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
VERSION=$(dpkg-parsechangelog -l "$REPO/debian/changelog" -S Version)
NEWER=$VERSION+check1
say "build $VERSION and $NEWER"
DEB1=$("$REPO/tools/build_deb.sh" --out "$WORK/v1")
DEB2=$("$REPO/tools/build_deb.sh" --out "$WORK/v2" --version "$NEWER")

contents=$(dpkg-deb -c "$DEB1" | awk '{print $6}')
for f in ./usr/bin/sms-bridge ./lib/systemd/system/sms-bridge.service \
         ./usr/share/polkit-1/rules.d/50-sms-bridge.rules ./usr/lib/modules-load.d/sms-bridge.conf \
         ./usr/share/sms-bridge/udev/99-sms-bridge.rules.in ./etc/sms-bridge/config.toml \
         ./usr/lib/sms-bridge/bridge/cli.py ./usr/lib/sms-bridge/serial_asyncio_fast/__init__.py \
         ./usr/share/doc/sms-bridge/install.md; do
    grep -qxF "$f" <<<"$contents" || fail "$DEB1 lacks $f"
done
! grep -E '\.so(\.|$)|/__pycache__/|^\./usr/lib/sms-bridge/serial/' <<<"$contents" \
    || fail "$DEB1 holds native code, bytecode or a second pyserial"
[ "$(dpkg-deb --ctrl-tarfile "$DEB1" | tar -xOf - ./conffiles)" = /etc/sms-bridge/config.toml ] \
    || fail "conffiles is not exactly /etc/sms-bridge/config.toml"

# 2. Install; run from the installed files.
say "dpkg -i $(basename "$DEB1")"
dpkg -i "$DEB1" </dev/null >"$WORK/dpkg-i.log" 2>&1 || { cat "$WORK/dpkg-i.log" >&2; fail "dpkg -i"; }
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd sms-bridge) || fail "no user sms-bridge"
[ "$uid" -lt 1000 ] && [ "$home" = /var/lib/sms-bridge ] && [ "$shell" = /usr/sbin/nologin ] \
    || fail "sms-bridge is not a system user (uid $uid, home $home, shell $shell)"
groups=" $(id -nG sms-bridge) "
for g in sms-bridge dialout gpio; do [[ $groups == *" $g "* ]] || fail "sms-bridge is not in group $g"; done
[ ! -e /var/lib/sms-bridge ] || fail "/var/lib/sms-bridge exists before the first start"
[ "$(systemctl is-enabled sms-bridge.service 2>/dev/null || true)" = disabled ] \
    || fail "the unit is enabled on install"

clean_env=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8)
out=$(cd / && "${clean_env[@]}" sms-bridge --version)
[ "$out" = "sms-bridge ${VERSION%%[-+]*}" ] || fail "sms-bridge --version said: $out"
origin=$(cd / && "${clean_env[@]}" /usr/bin/python3 -I -c \
    'import sys; sys.path.insert(0, "/usr/lib/sms-bridge"); import bridge, serial, serial_asyncio_fast as f; print(bridge.__file__, serial.__file__, f.__file__)')
[ "$origin" = "/usr/lib/sms-bridge/bridge/__init__.py /usr/lib/python3/dist-packages/serial/__init__.py /usr/lib/sms-bridge/serial_asyncio_fast/__init__.py" ] \
    || fail "modules come from: $origin"
[ -d /usr/lib/sms-bridge/bridge/__pycache__ ] || fail "py3compile did not byte-compile /usr/lib/sms-bridge"
say "sms-bridge demo (root, then the service user)"
(cd / && "${clean_env[@]}" sms-bridge demo) >"$WORK/demo.log" 2>&1 || { cat "$WORK/demo.log" >&2; fail "sms-bridge demo"; }
grep -q "demo: every case behaved as designed" "$WORK/demo.log" || fail "demo: $(tail -n1 "$WORK/demo.log")"
(cd / && runuser -u sms-bridge -- "${clean_env[@]}" sms-bridge demo) >"$WORK/demo-user.log" 2>&1 \
    || { cat "$WORK/demo-user.log" >&2; fail "sms-bridge demo as user sms-bridge"; }
(cd / && "${clean_env[@]}" sms-bridge check-config /etc/sms-bridge/config.toml) >/dev/null \
    || fail "the shipped configuration does not pass check-config"
say "systemd-analyze verify /lib/systemd/system/sms-bridge.service"
verify=$(systemd-analyze verify /lib/systemd/system/sms-bridge.service 2>&1) || fail "systemd-analyze verify: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify said: $verify"

# 3. A changed conffile and the journal survive an upgrade.
echo "# changed by check_deb" >>/etc/sms-bridge/config.toml
install -d -o sms-bridge -g sms-bridge -m 0700 /var/lib/sms-bridge   # as StateDirectory= does
runuser -u sms-bridge -- /usr/bin/python3 -I -c \
    'import sys; sys.path.insert(0, "/usr/lib/sms-bridge"); from bridge.journal import Journal; Journal.open("/var/lib/sms-bridge/journal.db").close()'
runuser -u sms-bridge -- sms-bridge journal --journal /var/lib/sms-bridge/journal.db counts >/dev/null \
    || fail "the service user cannot read its journal"
say "dpkg -i $(basename "$DEB2") over it"
dpkg -i "$DEB2" </dev/null >"$WORK/dpkg-u.log" 2>&1 || { cat "$WORK/dpkg-u.log" >&2; fail "upgrade"; }
[ "$(dpkg-query -W -f='${Version}' sms-bridge)" = "$NEWER" ] || fail "not upgraded to $NEWER"
[ "$(tail -n1 /etc/sms-bridge/config.toml)" = "# changed by check_deb" ] || fail "upgrade lost the changed config"
[ ! -e /etc/sms-bridge/config.toml.dpkg-new ] && [ ! -e /etc/sms-bridge/config.toml.dpkg-dist ] \
    || fail "upgrade left a .dpkg-new/.dpkg-dist copy"
[ -f /var/lib/sms-bridge/journal.db ] || fail "upgrade lost the journal"
(cd / && "${clean_env[@]}" sms-bridge --version) >/dev/null || fail "sms-bridge after the upgrade"
say "dpkg -i $(basename "$DEB1") again: the rollback"
dpkg -i "$DEB1" </dev/null >"$WORK/dpkg-d.log" 2>&1 || { cat "$WORK/dpkg-d.log" >&2; fail "rollback"; }
[ "$(dpkg-query -W -f='${Version}' sms-bridge)" = "$VERSION" ] || fail "not rolled back to $VERSION"
[ "$(tail -n1 /etc/sms-bridge/config.toml)" = "# changed by check_deb" ] || fail "rollback lost the changed config"
[ -f /var/lib/sms-bridge/journal.db ] || fail "rollback lost the journal"
(cd / && "${clean_env[@]}" sms-bridge demo) >/dev/null 2>&1 || fail "sms-bridge demo after the rollback"

# 4. Remove keeps the configuration and the journal, and no code; then purge.
say "dpkg --remove sms-bridge"
dpkg --remove sms-bridge </dev/null >"$WORK/dpkg-r.log" 2>&1 || { cat "$WORK/dpkg-r.log" >&2; fail "remove"; }
[ "$(tail -n1 /etc/sms-bridge/config.toml)" = "# changed by check_deb" ] || fail "remove lost the config"
[ -f /var/lib/sms-bridge/journal.db ] || fail "remove lost the journal"
for d in /usr/lib/sms-bridge /usr/bin/sms-bridge /lib/systemd/system/sms-bridge.service; do
    [ ! -e "$d" ] || fail "left after remove: $d ($(find "$d" | head -n 5 | tr '\n' ' '))"
done
say "dpkg --purge sms-bridge"
dpkg --purge sms-bridge </dev/null >"$WORK/dpkg-p.log" 2>&1 || { cat "$WORK/dpkg-p.log" >&2; fail "purge"; }
for d in /usr/lib/sms-bridge /etc/sms-bridge /var/lib/sms-bridge /usr/share/sms-bridge /usr/share/doc/sms-bridge \
         /usr/bin/sms-bridge /lib/systemd/system/sms-bridge.service /usr/share/polkit-1/rules.d/50-sms-bridge.rules \
         /usr/lib/modules-load.d/sms-bridge.conf; do
    [ ! -e "$d" ] || fail "left after purge: $d ($(find "$d" | head -n 5 | tr '\n' ' '))"
done
if grep -qs . "$WORK/dpkg-p.log" && grep -q "warning" "$WORK/dpkg-p.log"; then
    fail "purge warned: $(grep warning "$WORK/dpkg-p.log")"
fi
[ "$(getent shadow sms-bridge | cut -d: -f8)" = 1 ] || fail "the kept user sms-bridge is not expired after purge"
