"""A small checker and evaluator for udev rules files (udev(7), "Rules files").

Used where ``udevadm verify`` (systemd 253 and newer) is not installed, and to
evaluate what a rule does for a given device's properties, which no udevadm
subcommand does without the device being present.

Syntax checked: one rule per logical line (backslash continues a line),
comma-separated ``KEY[{attr}]OP"value"`` pairs; each key used with operators
it accepts (match ``==`` ``!=``, assignment ``=`` ``+=`` ``-=`` ``:=``);
every ``GOTO`` has its ``LABEL``; a rule does something (has an assignment);
``ATTRS{}`` of one rule belong to one parent device, so ``bInterfaceNumber``
(on the interface) with ``idVendor`` / ``idProduct`` (on the USB device) in
one rule never matches and is refused.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

MATCH_OPS = frozenset({"==", "!="})
ASSIGN_OPS = frozenset({"=", "+=", "-=", ":="})

#: udev(7): key -> (takes {attr}, may match, may assign)
KEYS: dict[str, tuple[bool, bool, bool]] = {
    "ACTION": (False, True, False),
    "DEVPATH": (False, True, False),
    "KERNEL": (False, True, False),
    "KERNELS": (False, True, False),
    "SUBSYSTEM": (False, True, False),
    "SUBSYSTEMS": (False, True, False),
    "DRIVER": (False, True, False),
    "DRIVERS": (False, True, False),
    "ATTRS": (True, True, False),
    "CONST": (True, True, False),
    "TAGS": (False, True, False),
    "TEST": (True, True, False),
    "RESULT": (False, True, False),
    "PROGRAM": (False, True, True),
    "NAME": (False, True, True),
    "SYMLINK": (False, True, True),
    "ATTR": (True, True, True),
    "SYSCTL": (True, True, True),
    "ENV": (True, True, True),
    "TAG": (False, True, True),
    "OWNER": (False, False, True),
    "GROUP": (False, False, True),
    "MODE": (False, False, True),
    "SECLABEL": (True, False, True),
    "RUN": (True, False, True),
    "IMPORT": (True, False, True),
    "OPTIONS": (False, False, True),
    "LABEL": (False, False, True),
    "GOTO": (False, False, True),
}

#: Attributes of the USB interface versus the USB device (sysfs).
_USB_INTERFACE_ATTRS = frozenset({"bInterfaceNumber", "bInterfaceClass", "bInterfaceSubClass"})
_USB_DEVICE_ATTRS = frozenset({"idVendor", "idProduct", "serial", "manufacturer", "product"})

_PAIR = re.compile(
    r'\s*(?P<key>[A-Z_]+)(?:\{(?P<attr>[^{}"]*)\})?\s*(?P<op>==|!=|\+=|-=|:=|=)\s*'
    r'"(?P<value>(?:[^"\\]|\\.)*)"\s*(?:,|$)'
)


class RulesError(ValueError):
    """A rules file that udev would reject or warn about; names the line."""


@dataclass(frozen=True)
class Pair:
    key: str
    attr: str | None
    op: str
    value: str


@dataclass(frozen=True)
class Rule:
    line: int
    pairs: tuple[Pair, ...]

    @property
    def matches(self) -> tuple[Pair, ...]:
        return tuple(p for p in self.pairs if p.op in MATCH_OPS)

    @property
    def assignments(self) -> tuple[Pair, ...]:
        return tuple(p for p in self.pairs if p.op in ASSIGN_OPS)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        if not buf:
            start = n
            if raw.lstrip().startswith("#") or not raw.strip():
                continue
        if raw.endswith("\\"):
            buf += raw[:-1]
            continue
        out.append((start, buf + raw))
        buf = ""
    if buf:
        raise RulesError(f"line {start}: the file ends inside a continued line")
    return out


def parse(text: str) -> list[Rule]:
    """Rules of ``text``, or RulesError naming the first bad line."""
    rules: list[Rule] = []
    for n, line in _logical_lines(text):
        pos, pairs = 0, []
        stripped = line.rstrip()
        while pos < len(stripped):
            m = _PAIR.match(stripped, pos)
            if m is None or m.end() == pos:
                raise RulesError(f"line {n}: cannot parse {stripped[pos:][:40]!r}")
            key, attr, op = m["key"], m["attr"], m["op"]
            if key not in KEYS:
                raise RulesError(f"line {n}: unknown key {key}")
            takes_attr, can_match, can_assign = KEYS[key]
            if takes_attr != (attr is not None):
                need = "needs" if takes_attr else "takes no"
                raise RulesError(f"line {n}: {key} {need} {{attr}}")
            if op in MATCH_OPS and not can_match:
                raise RulesError(f"line {n}: {key} cannot be matched with {op}")
            if op in ASSIGN_OPS and not can_assign:
                raise RulesError(f"line {n}: {key} is a match key, not assigned with {op}")
            pairs.append(Pair(key, attr, op, m["value"]))
            pos = m.end()
        rule = Rule(n, tuple(pairs))
        if not rule.assignments:
            raise RulesError(f"line {n}: the rule assigns nothing")
        attrs = {p.attr for p in rule.matches if p.key == "ATTRS"}
        if attrs & _USB_INTERFACE_ATTRS and attrs & _USB_DEVICE_ATTRS:
            raise RulesError(
                f"line {n}: ATTRS{{}} of the USB interface and of the USB device in one rule"
                " never match together (use ENV{ID_USB_INTERFACE_NUM})"
            )
        rules.append(rule)
    labels = {p.value for r in rules for p in r.pairs if p.key == "LABEL"}
    for r in rules:
        for p in r.pairs:
            if p.key == "GOTO" and p.value not in labels:
                raise RulesError(f"line {r.line}: GOTO {p.value!r} has no LABEL")
    return rules


@dataclass
class Device:
    """What a rule sees of one device event (properties of the tty device)."""

    action: str
    subsystem: str
    parent_subsystems: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    attrs: dict[str, str] = field(default_factory=dict)
    symlinks: list[str] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)


def _glob(pattern: str, value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, alt) for alt in pattern.split("|"))


def _matches(p: Pair, dev: Device) -> bool:
    if p.key == "ACTION":
        ok = _glob(p.value, dev.action)
    elif p.key == "SUBSYSTEM":
        ok = _glob(p.value, dev.subsystem)
    elif p.key == "SUBSYSTEMS":
        ok = any(_glob(p.value, s) for s in (dev.subsystem, *dev.parent_subsystems))
    elif p.key == "ENV":
        assert p.attr is not None
        ok = _glob(p.value, dev.env.get(p.attr, ""))
    elif p.key in ("ATTR", "ATTRS"):
        assert p.attr is not None
        ok = _glob(p.value, dev.attrs.get(p.attr, ""))
    else:
        raise NotImplementedError(f"evaluating {p.key} matches")
    return ok if p.op == "==" else not ok


def evaluate(rules: list[Rule], dev: Device) -> Device:
    """Apply ``rules`` to ``dev`` in order (GOTO skips to its LABEL)."""
    skip_to: str | None = None
    for rule in rules:
        if skip_to is not None:
            if any(p.key == "LABEL" and p.value == skip_to for p in rule.pairs):
                skip_to = None
            continue
        if not all(_matches(p, dev) for p in rule.matches):
            continue
        for p in rule.assignments:
            if p.key == "GOTO":
                skip_to = p.value
            elif p.key == "ENV":
                assert p.attr is not None
                dev.env[p.attr] = p.value
            elif p.key == "SYMLINK":
                dev.symlinks[:] = ([] if p.op in ("=", ":=") else dev.symlinks) + p.value.split()
            elif p.key == "TAG":
                dev.tags.add(p.value)
            # IMPORT, LABEL and the rest change nothing this evaluator models.
    return dev


def render(template: str, values: Mapping[str, str]) -> str:
    """``@NAME@`` placeholders replaced; an unknown or missing one is an error."""
    names = set(re.findall(r"@([A-Z_]+)@", template))
    if names != set(values):
        raise KeyError(f"template has {sorted(names)}, values for {sorted(values)}")
    for name, value in values.items():
        template = template.replace(f"@{name}@", value)
    return template
