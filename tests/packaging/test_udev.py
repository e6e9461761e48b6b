"""The udev rule template: renders for each documented module, is valid udev
syntax, and names only the AT port of that module."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.packaging import udev_rules
from tests.packaging.conftest import REPO, UDEV_TEMPLATE
from tests.packaging.udev_rules import Device, RulesError

#: (module, VENDOR_ID, PRODUCT_ID, AT port interface). Sources:
#: ModemManager's 77-mm-quectel-port-types.rules and 77-mm-simtech-port-types.rules
#: (interface 02 = AT primary for all three), the Quectel Linux USB driver
#: guide's VID/PID table.
MODULES = [
    ("Quectel BG96", "2c7c", "0296", "02"),
    ("Quectel EC25 / EG25", "2c7c", "0125", "02"),
    ("SIMCom SIM7600 (PID 9001)", "1e0e", "9001", "02"),
]


def rendered(vendor: str, product: str, ifnum: str) -> str:
    return udev_rules.render(
        UDEV_TEMPLATE.read_text(),
        {"VENDOR_ID": vendor, "PRODUCT_ID": product, "INTERFACE_NUM": ifnum},
    )


def tty(vendor: str, product: str, ifnum: str, action: str = "add") -> Device:
    """What udev knows of a ttyUSB port after 60-serial.rules ran usb_id."""
    return Device(
        action=action,
        subsystem="tty",
        parent_subsystems=("usb-serial", "usb", "usb", "pci"),
        env={"ID_VENDOR_ID": vendor, "ID_MODEL_ID": product, "ID_USB_INTERFACE_NUM": ifnum},
    )


def test_the_template_has_exactly_three_placeholders_and_lists_every_module():
    text = UDEV_TEMPLATE.read_text()
    assert set(re.findall(r"@([A-Z_]+)@", text)) == {"VENDOR_ID", "PRODUCT_ID", "INTERFACE_NUM"}
    header = [ln for ln in text.splitlines() if ln.startswith("#   ")]
    for name, vendor, product, ifnum in MODULES:
        row = [ln for ln in header if ln.startswith(f"#   {name}")]
        assert len(row) == 1, name
        assert row[0].split()[-4:-1] == [vendor, product, ifnum], row
    docs = (REPO / "docs" / "install.md").read_text()
    for name, vendor, product, ifnum in MODULES:
        assert re.search(
            rf"\|\s*{re.escape(name)}\s*\|\s*`?{vendor}`?\s*\|\s*`?{product}`?\s*\|"
            rf"\s*`?{ifnum}`?\s*\|",
            docs,
        ), name


@pytest.mark.parametrize(("name", "vendor", "product", "ifnum"), MODULES)
def test_rendered_rule_names_only_that_modules_at_port(name, vendor, product, ifnum):
    rules = udev_rules.parse(rendered(vendor, product, ifnum))
    at = udev_rules.evaluate(rules, tty(vendor, product, ifnum))
    assert at.symlinks == ["sms-bridge-at"]
    assert at.env["ID_MM_PORT_IGNORE"] == "1"
    assert "systemd" in at.tags
    # The other ports of the same module (DIAG, NMEA, the second AT port, audio)
    for other in ("00", "01", "03", "04"):
        dev = udev_rules.evaluate(rules, tty(vendor, product, other))
        assert (dev.symlinks, "ID_MM_PORT_IGNORE" in dev.env) == ([], False), other
    # another module on the same interface number, and a removal
    stranger = udev_rules.evaluate(rules, tty("0403", "6001", ifnum))
    assert (stranger.symlinks, "ID_MM_PORT_IGNORE" in stranger.env) == ([], False)
    gone = udev_rules.evaluate(rules, tty(vendor, product, ifnum, action="remove"))
    assert gone.symlinks == []


def _udevadm_has_verify() -> bool:
    if shutil.which("udevadm") is None:
        return False
    p = subprocess.run(["udevadm", "verify", "--help"], capture_output=True, check=False)
    return p.returncode == 0


@pytest.mark.skipif(
    not _udevadm_has_verify(),
    reason="udevadm verify needs systemd 253 or newer (Debian bookworm has 252); "
    "the syntax is checked by tests/packaging/udev_rules.py instead",
)
@pytest.mark.parametrize(("name", "vendor", "product", "ifnum"), MODULES)
def test_udevadm_verify_accepts_the_rendered_rule(tmp_path, name, vendor, product, ifnum):
    f = tmp_path / "99-sms-bridge.rules"
    f.write_text(rendered(vendor, product, ifnum))
    p = subprocess.run(["udevadm", "verify", str(f)], capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize(("name", "vendor", "product", "ifnum"), MODULES)
def test_commented_whole_device_ignore_is_valid_once_uncommented(name, vendor, product, ifnum):
    text = rendered(vendor, product, ifnum).replace("#SUBSYSTEM==", "SUBSYSTEM==")
    rules = udev_rules.parse(text)
    usb = Device(
        action="add",
        subsystem="usb",
        env={"DEVTYPE": "usb_device"},
        attrs={"idVendor": vendor, "idProduct": product},
    )
    assert udev_rules.evaluate(rules, usb).env.get("ID_MM_DEVICE_IGNORE") == "1"


# --- the checker itself ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('KERNEL=="ttyUSB*", SYMLINKS+="x"', "unknown key SYMLINKS"),
        ('SUBSYSTEMS="usb", SYMLINK+="x"', "SUBSYSTEMS is a match key"),
        ('ENV{A}=!"1", SYMLINK+="x"', "cannot parse"),
        ('ENV{A}==1, SYMLINK+="x"', "cannot parse"),
        ('ENV{A}=="1" SYMLINK+="x"', "cannot parse"),
        ('ENV=="1", SYMLINK+="x"', "ENV needs {attr}"),
        ('KERNEL=="ttyUSB*"', "assigns nothing"),
        ('GOTO="nowhere"', "has no LABEL"),
        ('OWNER=="root", MODE="0600"', "OWNER cannot be matched"),
        ('ATTRS{idVendor}=="2c7c", ATTRS{bInterfaceNumber}=="02", SYMLINK+="x"', "never match"),
        ('ENV{A}=="1", \\', "ends inside"),
    ],
)
def test_checker_names_what_udev_would_reject(text, message):
    with pytest.raises(RulesError, match=re.escape(message)):
        udev_rules.parse(text + "\n")


def test_checker_reads_continued_lines_and_comments():
    rules = udev_rules.parse('# c\n\nENV{A}=="1", \\\n  SYMLINK+="x"\nLABEL="end"\n')
    assert [(r.line, len(r.pairs)) for r in rules] == [(3, 2), (5, 1)]


@given(st.text())
def test_checker_on_arbitrary_text_gives_rules_or_its_error(text):
    try:
        rules = udev_rules.parse(text)
    except RulesError as exc:
        assert str(exc).startswith("line ")
    else:
        assert all(r.assignments for r in rules)
