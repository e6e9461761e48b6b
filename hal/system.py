"""System status read from ``/proc`` and ``/sys`` under a root directory.

Pure parsers for each file (text in, value or :class:`~hal.errors.ParseError`
out) and :class:`LinuxSystem`, which reads them in a worker thread. Sources
(proc(5), sysfs-class-net):

* ``/proc/uptime``: seconds since boot, two decimals ("701.35 1247.76").
* ``/proc/loadavg``: 1, 5 and 15 minute load averages.
* ``/proc/meminfo``: ``MemTotal`` and ``MemAvailable`` in kB (KiB, Linux 3.14+).
* ``/proc/sys/kernel/hostname`` and ``osrelease``: hostname and kernel.
* ``/etc/os-release`` (``/usr/lib/os-release`` as fallback): os-release(5).
* ``/sys/class/net/IF/{operstate,address}`` and ``/proc/net/if_inet6``.
* disks: ``os.statvfs(root + mount)``.

IPv4 addresses have no root-relative file (``/proc/net/fib_trie`` has no
interface names): they come from the ``SIOCGIFADDR``/``SIOCGIFNETMASK``
ioctls on a socket, which see the running kernel whatever the root
directory; only the primary address of each interface is reported. Tests
inject the lookup.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import ipaddress
import os
import re
import shlex
import socket
import struct
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from .config import SystemConfig
from .errors import Fault, ParseError
from .interfaces import DiskUsage, Interface, OsInfo, ProgramInfo, SystemSnapshot
from .sensors import in_daemon_thread, parse_int_attribute, read_text

__all__ = [
    "SNAPSHOT_TIMEOUT_S",
    "LinuxSystem",
    "ioctl_ipv4",
    "parse_if_inet6",
    "parse_loadavg",
    "parse_meminfo",
    "parse_os_release",
    "parse_uptime",
]

_DEC = r"[0-9]{1,15}(?:\.[0-9]{1,9})?"
_UPTIME = re.compile(rf"({_DEC}) ({_DEC})\n?")
_LOADAVG = re.compile(rf"({_DEC}) ({_DEC}) ({_DEC}) [0-9]+/[0-9]+ [0-9]+\n?")
_MEMINFO_LINE = re.compile(r"([A-Za-z0-9_()]+):[ \t]+([0-9]{1,20})(?:[ \t]+kB)?[ \t]*")
_INET6_LINE = re.compile(
    r"([0-9a-f]{32}) ([0-9a-f]{2,8}) ([0-9a-f]{2}) ([0-9a-f]{2}) ([0-9a-f]{2}) +(\S{1,15})"
)
_OS_LINE = re.compile(r"([A-Z][A-Z0-9_]*)=(.*)")

_T = TypeVar("_T")

#: How long a status report may take. Reading /proc is instant; statvfs on a
#: hung network mount is not, and the report must not hang a Command's reply.
SNAPSHOT_TIMEOUT_S = 5.0

#: (interface name) -> ["192.0.2.5/24"]; the default asks the kernel by ioctl.
Ipv4Lookup = Callable[[str], Sequence[str]]


def parse_uptime(text: str) -> Decimal:
    """``/proc/uptime`` -> seconds since boot (exact)."""
    m = _UPTIME.fullmatch(text)
    if not m:
        raise ParseError(Fault.MALFORMED, f"not /proc/uptime: {text[:40]!r}")
    return Decimal(m.group(1))


def parse_loadavg(text: str) -> tuple[Decimal, Decimal, Decimal]:
    """``/proc/loadavg`` -> the 1, 5 and 15 minute averages."""
    m = _LOADAVG.fullmatch(text)
    if not m:
        raise ParseError(Fault.MALFORMED, f"not /proc/loadavg: {text[:40]!r}")
    return Decimal(m.group(1)), Decimal(m.group(2)), Decimal(m.group(3))


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` -> field -> bytes (fields in kB are multiplied by 1024)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        if not line:
            continue
        m = _MEMINFO_LINE.fullmatch(line)
        if not m:
            raise ParseError(Fault.MALFORMED, f"not a /proc/meminfo line: {line[:40]!r}")
        n = int(m.group(2))
        out[m.group(1)] = n * 1024 if line.rstrip().endswith("kB") else n
    for need in ("MemTotal", "MemAvailable"):
        if need not in out:
            raise ParseError(Fault.MALFORMED, f"/proc/meminfo has no {need}")
    return out


def parse_os_release(text: str) -> dict[str, str]:
    """os-release(5): ``KEY=value`` lines, values optionally shell-quoted."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _OS_LINE.fullmatch(line)
        if not m:
            continue  # os-release(5): lines that are not assignments are ignored
        try:
            words = shlex.split(m.group(2))
        except ValueError:
            continue
        out[m.group(1)] = " ".join(words)
    return out


def parse_if_inet6(text: str) -> list[tuple[str, str]]:
    """``/proc/net/if_inet6`` -> [(interface, "address/prefix")], in file order."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _INET6_LINE.fullmatch(line.strip())
        if not m:
            raise ParseError(Fault.MALFORMED, f"not a /proc/net/if_inet6 line: {line[:60]!r}")
        prefix = int(m.group(3), 16)
        if prefix > 128:
            raise ParseError(Fault.MALFORMED, f"prefix length {prefix} > 128")
        addr = ipaddress.IPv6Address(bytes.fromhex(m.group(1)))
        out.append((m.group(6), f"{addr}/{prefix}"))
    return out


_SIOCGIFADDR = 0x8915
_SIOCGIFNETMASK = 0x891B


def ioctl_ipv4(name: str) -> list[str]:
    """The primary IPv4 address of an interface, asked of the running kernel."""
    if not 0 < len(name.encode()) < 16:
        return []
    req = struct.pack("256s", name.encode())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            addr = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, req)[20:24]
            mask = fcntl.ioctl(s.fileno(), _SIOCGIFNETMASK, req)[20:24]
        except OSError:
            return []  # no IPv4 address (EADDRNOTAVAIL) or no such interface
    prefix = bin(int.from_bytes(mask, "big")).count("1")
    return [f"{socket.inet_ntoa(addr)}/{prefix}"]


class LinuxSystem:
    """The status report of a Linux system under ``root``."""

    def __init__(
        self,
        config: SystemConfig,
        root: str = "/",
        *,
        ipv4: Ipv4Lookup = ioctl_ipv4,
        timeout_s: float | None = None,
    ) -> None:
        self._cfg = config
        self._root = root
        self._ipv4 = ipv4
        # None: SNAPSHOT_TIMEOUT_S, read now (not frozen into the signature at import)
        self._timeout_s = SNAPSHOT_TIMEOUT_S if timeout_s is None else timeout_s
        self._inflight: asyncio.Future[SystemSnapshot] | None = None

    def _p(self, path: str) -> str:
        return os.path.join(self._root, path.lstrip("/"))

    def _read(self, path: str) -> str:
        return read_text(self._p(path))

    async def snapshot(self, program: ProgramInfo | None = None) -> SystemSnapshot:
        """One report; ``program`` is the caller's own version and uptime.

        The files are read in a worker thread. If that thread does not answer
        within ``timeout_s`` (a hung network mount in ``statvfs``), the report
        says so in ``errors`` with every value ``None``; a later call waits for
        the same thread rather than starting another.
        """
        if self._inflight is None:
            fut = in_daemon_thread(self.snapshot_sync, "hal-system-snapshot")
            self._inflight = fut
            fut.add_done_callback(self._done)
        try:
            snap = await asyncio.wait_for(asyncio.shield(self._inflight), self._timeout_s)
        except TimeoutError:
            return SystemSnapshot(
                hostname=None,
                os=None,
                uptime_s=None,
                load=None,
                mem_total_bytes=None,
                mem_available_bytes=None,
                cpu_temp_c=None,
                disks=(),
                interfaces=(),
                program=program,
                errors=(f"no answer within {self._timeout_s:g} s (a hung mount?)",),
            )
        return dataclasses.replace(snap, program=program)

    def _done(self, fut: asyncio.Future[SystemSnapshot]) -> None:
        if self._inflight is fut:
            self._inflight = None
        if not fut.cancelled():
            fut.exception()

    def snapshot_sync(self, program: ProgramInfo | None = None) -> SystemSnapshot:
        errors: list[str] = []

        def part(what: str, fn: Callable[[], _T]) -> _T | None:
            try:
                return fn()
            except (OSError, ParseError, ValueError) as exc:
                errors.append(f"{what}: {getattr(exc, 'strerror', None) or exc}")
                return None

        hostname = part("hostname", lambda: self._read("/proc/sys/kernel/hostname").strip())
        os_info = part("os", self._os)
        uptime = part("uptime", lambda: parse_uptime(self._read("/proc/uptime")))
        load = part("load", lambda: parse_loadavg(self._read("/proc/loadavg")))
        mem = part("memory", lambda: parse_meminfo(self._read("/proc/meminfo")))
        cpu = part("cpu temperature", self._cpu_temp)
        disks = []
        for mount in self._cfg.mounts:
            d = part(f"disk {mount}", lambda m=mount: self._disk(m))  # type: ignore[misc]
            if d is not None:
                disks.append(d)
        ifaces = part("network", self._interfaces) or ()
        return SystemSnapshot(
            hostname=hostname,
            os=os_info,
            uptime_s=uptime,
            load=load,
            mem_total_bytes=mem["MemTotal"] if mem else None,
            mem_available_bytes=mem["MemAvailable"] if mem else None,
            cpu_temp_c=cpu,
            disks=tuple(disks),
            interfaces=tuple(ifaces),
            program=program,
            errors=tuple(errors),
        )

    def _os(self) -> OsInfo:
        try:
            text = self._read("/etc/os-release")
        except FileNotFoundError:
            text = self._read("/usr/lib/os-release")
        rel = parse_os_release(text)
        kernel = self._read("/proc/sys/kernel/osrelease").strip()
        return OsInfo(
            name=rel.get("PRETTY_NAME", rel.get("NAME", "Linux")),
            id=rel.get("ID", "linux"),
            version_id=rel.get("VERSION_ID", ""),
            kernel=kernel,
        )

    def _cpu_temp(self) -> Decimal | None:
        zone = self._cfg.cpu_zone
        if not zone:
            base = Path(self._p("/sys/class/thermal"))
            zones = sorted(
                (p.name for p in base.glob("thermal_zone*") if p.name[12:].isdigit()),
                key=lambda n: int(n[12:]),
            )
            if not zones:
                return None  # no thermal zone at all: not an error, nothing to report
            zone = zones[0]
        mc = parse_int_attribute(self._read(f"/sys/class/thermal/{zone}/temp"))
        return Decimal(mc).scaleb(-3)

    def _disk(self, mount: str) -> DiskUsage:
        st = os.statvfs(self._p(mount))
        total = st.f_blocks * st.f_frsize
        free = st.f_bfree * st.f_frsize
        return DiskUsage(mount, total, total - free, st.f_bavail * st.f_frsize)

    def _interfaces(self) -> list[Interface]:
        base = Path(self._p("/sys/class/net"))
        names = sorted(p.name for p in base.iterdir())
        wanted = self._cfg.interfaces
        names = [n for n in names if n in wanted] if wanted else [n for n in names if n != "lo"]
        try:
            v6 = parse_if_inet6(self._read("/proc/net/if_inet6"))
        except FileNotFoundError:
            v6 = []  # kernel without IPv6
        out = []
        for n in names:
            try:
                state = self._read(f"/sys/class/net/{n}/operstate").strip()
            except (OSError, ParseError):
                state = "unknown"
            try:
                mac = self._read(f"/sys/class/net/{n}/address").strip()
            except (OSError, ParseError):
                mac = ""
            out.append(
                Interface(
                    name=n,
                    state=state,
                    mac=mac,
                    ipv4=tuple(self._ipv4(n)),
                    ipv6=tuple(a for i, a in v6 if i == n),
                )
            )
        return out
