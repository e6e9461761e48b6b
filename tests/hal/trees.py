"""Real directory trees laid out like /sys and /proc, for the Linux backends.

Content follows what the kernel writes: w1_therm's ``w1_slave`` (two lines of
nine hex bytes, ``: crc=XX YES`` and ``t=``), thermal and hwmon integer
attributes with a newline, proc(5) formats.
"""

from __future__ import annotations

from pathlib import Path

from hal.sensors import dallas_crc8


def ds18b20_scratchpad(raw: int) -> bytes:
    """Nine scratchpad bytes for a DS18B20 temperature register value (1/16 °C)."""
    body = (raw & 0xFFFF).to_bytes(2, "little") + bytes([0x4B, 0x46, 0x7F, 0xFF, 0x0C, 0x10])
    return body + bytes([dallas_crc8(body)])


def w1_slave_text(raw: int, *, verdict: str = "YES", scratch: bytes | None = None) -> str:
    """``w1_slave`` as w1_therm prints it (t = raw * 1000 / 16, truncated as in C)."""
    raw = raw - 0x10000 if raw >= 0x8000 else raw  # the register is signed 16-bit
    sp = scratch if scratch is not None else ds18b20_scratchpad(raw)
    hexes = "".join(f"{b:02x} " for b in sp)
    mc = int(raw * 1000 / 16)
    return f"{hexes}: crc={sp[8]:02x} {verdict}\n{hexes}t={mc}\n"


class Tree:
    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, text: str) -> Path:
        p = self.root / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        return p

    def thermal(self, zone: int, text: str, type_: str = "cpu-thermal") -> Path:
        self.write(f"sys/class/thermal/thermal_zone{zone}/type", type_ + "\n")
        return self.write(f"sys/class/thermal/thermal_zone{zone}/temp", text)

    def hwmon(self, index: int, name: str, attrs: dict[str, str]) -> Path:
        base = f"sys/class/hwmon/hwmon{index}"
        self.write(f"{base}/name", name + "\n")
        for k, v in attrs.items():
            self.write(f"{base}/{k}", v)
        return self.root / base

    def w1(
        self, device: str, *, w1_slave: str | None = None, temperature: str | None = None
    ) -> Path:
        base = f"sys/bus/w1/devices/{device}"
        (self.root / base).mkdir(parents=True, exist_ok=True)
        if w1_slave is not None:
            self.write(f"{base}/w1_slave", w1_slave)
        if temperature is not None:
            self.write(f"{base}/temperature", temperature)
        return self.root / base

    def proc(self) -> None:
        """A plausible small system."""
        self.write("proc/uptime", "701.35 1247.76\n")
        self.write("proc/loadavg", "0.05 0.12 0.08 2/87 7070\n")
        self.write(
            "proc/meminfo",
            "MemTotal:         948280 kB\nMemFree:          101220 kB\n"
            "MemAvailable:     512000 kB\nBuffers:           30000 kB\nHugePages_Total:       0\n",
        )
        self.write("proc/sys/kernel/hostname", "gateway-7\n")
        self.write("proc/sys/kernel/osrelease", "6.6.31+rpt-rpi-v8\n")
        self.write(
            "etc/os-release",
            'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
            'VERSION_ID="12"\nID=debian\n# a comment\n',
        )
        self.write(
            "proc/net/if_inet6",
            "00000000000000000000000000000001 01 80 10 80       lo\n"
            "20010db8000000000000000000000005 03 40 00 80     eth0\n"
            "fe800000000000000000000000000001 03 40 20 80     eth0\n",
        )
        for name, state, mac in (
            ("lo", "unknown", "00:00:00:00:00:00"),
            ("eth0", "up", "dc:a6:32:01:02:03"),
            ("wwan0", "down", ""),
        ):
            self.write(f"sys/class/net/{name}/operstate", state + "\n")
            self.write(f"sys/class/net/{name}/address", mac + "\n")
