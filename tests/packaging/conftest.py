"""Shared paths for the packaging checks."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"
UNIT = PACKAGING / "systemd" / "sms-bridge.service"
POLKIT_RULE = PACKAGING / "polkit" / "50-sms-bridge.rules"
UDEV_TEMPLATE = PACKAGING / "udev" / "99-sms-bridge.rules.in"
