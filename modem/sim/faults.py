"""Faults: what a real module, line or network does wrong, on request.

One table, :data:`FAULTS`, drives the faults, their validation
(:func:`check_fault`) and ``python -m modem.sim fault --help``
(:func:`fault_help`), so they cannot drift. :class:`Faults` owns the state
of the faults in force (output drop and corruption, the answer delay,
pending +CMS errors and PDU damage, "reboot next"); :class:`FaultInjection`
is the part of :class:`~modem.sim.core.SimModem` that injects them
(:meth:`FaultInjection.fault`). The faults model what the field shows:
line noise (V.250 has no checksum), a module reset between commands, a
module that stops answering, a serial link that goes away, a full SIM
(TS 27.005 §3.2.5 +CMS ERROR 322 and the RP-ERROR "memory capacity
exceeded" of TS 24.011), lost coverage (TS 27.007 §7.2 +CREG), network
errors on sends (+CMS ERROR <n>, TS 27.005 §3.2.5) and damaged PDU lines.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from . import codec as _codec
from .base import ModemBase
from .storage import REC_READ

__all__ = [
    "DAMAGE_MODES",
    "FAULTS",
    "FaultArg",
    "FaultInjection",
    "FaultSpec",
    "Faults",
    "check_fault",
    "damage_pdu_line",
    "fault_help",
]


@dataclass(frozen=True)
class FaultArg:
    """One argument of a fault: ``kind`` says what it accepts."""

    name: str
    #: "count" (integer >= 0), "ms" (number >= 0), "rate" (0..1), "code"
    #: (integer 0-511), "choice" (one of ``choices``), "text" (anything).
    kind: str
    optional: bool = True
    choices: tuple[str, ...] = ()
    #: The last argument may repeat (one or more).
    repeat: bool = False

    def usage(self) -> str:
        text = self.name + ("..." if self.repeat else "")
        return f"[{text}]" if self.optional else text

    def check(self, fault: str, value: str) -> None:
        """ValueError naming ``fault`` and the argument when ``value`` is not accepted."""
        where = f"fault {fault}: {self.name}"
        if self.kind == "choice":
            if value not in self.choices and value.upper() not in self.choices:
                raise ValueError(f"{where} is one of {', '.join(self.choices)}, not {value!r}")
        elif self.kind in ("count", "code"):
            if not (value.isascii() and value.isdigit()):
                raise ValueError(f"{where} must be a whole number >= 0, not {value!r}")
            if self.kind == "code" and int(value) > 511:
                raise ValueError(f"{where} is 0-511, not {value}")
        elif self.kind in ("ms", "rate"):
            try:
                v = float(value)
            except ValueError:
                raise ValueError(f"{where} must be a number, not {value!r}") from None
            if not v >= 0 or v == float("inf"):  # NaN fails too
                raise ValueError(f"{where} must be >= 0, not {value!r}")
            if self.kind == "rate" and v > 1:
                raise ValueError(f"{where} is a probability 0..1, not {value!r}")


@dataclass(frozen=True)
class FaultSpec:
    """A fault, its arguments and what it does (one table for the code, the
    validation and ``python -m modem.sim fault --help``)."""

    name: str
    args: tuple[FaultArg, ...]
    help: str
    aliases: tuple[str, ...] = ()

    def usage(self) -> str:
        return " ".join(["|".join((self.name, *self.aliases)), *(x.usage() for x in self.args)])


#: Modes of the damage-next-pdu fault.
DAMAGE_MODES = ("drop-octet", "flip", "truncate", "nonhex")


def damage_pdu_line(text: str, mode: str) -> str:
    """``text`` (a hex PDU line) damaged by ``mode``, deterministically:
    drop-octet removes the middle octet, flip inverts every bit of it,
    truncate keeps the first half of the octets, nonhex puts "ZZ" in place of
    the middle octet. A line of no whole octet is returned unchanged."""
    octets = len(text) // 2
    if octets == 0:
        return text
    mid = 2 * (octets // 2)
    if mode == "drop-octet":
        return text[:mid] + text[mid + 2 :]
    if mode == "flip":
        try:
            flipped = f"{int(text[mid : mid + 2], 16) ^ 0xFF:02X}"
        except ValueError:
            flipped = text[mid : mid + 2]
        return text[:mid] + flipped + text[mid + 2 :]
    if mode == "truncate":
        return text[: 2 * (octets // 2)]
    if mode == "nonhex":
        return text[:mid] + "ZZ" + text[mid + 2 :]
    raise ValueError(f"unknown damage mode {mode!r}; known: {', '.join(DAMAGE_MODES)}")


_MS = FaultArg("MS", "ms")
FAULTS: dict[str, FaultSpec] = {
    f.name: f
    for f in (
        FaultSpec(
            "reboot",
            (FaultArg("MS|next", "ms"),),
            "reset now, after MS, or instead of answering the next command line",
            aliases=("reset",),
        ),
        FaultSpec(
            "garbage", (FaultArg("N", "count"),), "N (default 16) random bytes to the DTE now"
        ),
        FaultSpec(
            "drop",
            (FaultArg("RATE", "rate", optional=False),),
            "drop each output byte with probability RATE (0 stops)",
        ),
        FaultSpec(
            "corrupt",
            (FaultArg("RATE", "rate", optional=False),),
            "change each output byte with probability RATE (0 stops)",
        ),
        FaultSpec("delay", (FaultArg("MS", "ms", optional=False),), "every answer comes MS later"),
        FaultSpec("hang", (), "no answer, no echo, no URC until reboot"),
        FaultSpec(
            "cms-error",
            (FaultArg("CODE", "code", optional=False), FaultArg("COUNT", "count")),
            "the next COUNT (default 1) sends answer +CMS ERROR: CODE",
        ),
        FaultSpec(
            "storage-full",
            (FaultArg("MEM", "choice", choices=("SM", "ME", "MT")),),
            "fill MEM (default <mem3>) with read filler messages",
        ),
        FaultSpec("disconnect", (_MS,), "the port goes away for MS (default 200) ms"),
        FaultSpec("unregister", (), "coverage lost"),
        FaultSpec(
            "register",
            (FaultArg("roaming", "choice", choices=("roaming",)),),
            "coverage back (roaming: +CREG 5)",
        ),
        FaultSpec(
            "damage-next-pdu",
            (
                FaultArg("MODE", "choice", optional=False, choices=DAMAGE_MODES),
                FaultArg("COUNT", "count"),
            ),
            "damage the next COUNT (default 1) PDU lines printed; <length> stays",
        ),
        FaultSpec(
            "urc",
            (FaultArg("LINE", "text", optional=False, repeat=True),),
            "send each LINE as an unsolicited line",
        ),
        FaultSpec(
            "error-on",
            (
                FaultArg("CMD", "text", optional=False),
                FaultArg("CODE", "code", optional=False),
                FaultArg("COUNT", "count"),
            ),
            "the next COUNT (default 1) runs of CMD (+CMGL...) answer +CMS ERROR: CODE "
            "(an SMS command) or +CME ERROR: CODE",
        ),
        FaultSpec(
            "glitch",
            (FaultArg("N", "count"),),
            "N (default 4) 0xFF bytes inside the next line the module sends, before its "
            "text (a UART that glitched at power-up or a USB re-enumeration)",
        ),
        FaultSpec(
            "urc-in-answer",
            (FaultArg("CMD", "text", optional=False), FaultArg("LINE", "text", optional=False)),
            "the next answer to CMD (+CREG...) with an information response sends LINE "
            "as an unsolicited line before that response (not held until the final result)",
        ),
        FaultSpec(
            "clear",
            (),
            "stop drop, corrupt, delay, glitch, cms-errors, PDU damage, URCs in answers",
        ),
    )
}
_FAULT_NAMES = {alias: f.name for f in FAULTS.values() for alias in (f.name, *f.aliases)}


def check_fault(name: str, args: list[str]) -> tuple[str, list[str]]:
    """(canonical name, args) of a valid fault; ValueError naming the fault and
    the argument otherwise (unknown, missing, extra, negative, not a number)."""
    canonical = _FAULT_NAMES.get(name.lower())
    if canonical is None:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(_FAULT_NAMES))}")
    spec = FAULTS[canonical]
    required = sum(1 for x in spec.args if not x.optional)
    if len(args) < required:
        missing = spec.args[len(args)]
        raise ValueError(f"fault {canonical}: {missing.name} missing (usage: {spec.usage()})")
    if len(args) > len(spec.args) and not (spec.args and spec.args[-1].repeat):
        raise ValueError(f"fault {canonical}: too many arguments (usage: {spec.usage()})")
    for i, value in enumerate(args):
        arg = spec.args[min(i, len(spec.args) - 1)]
        if canonical == "reboot" and value == "next":
            continue
        arg.check(canonical, value)
    return canonical, args


def fault_help() -> str:
    """The fault table as text (``python -m modem.sim fault --help``)."""
    rows = []
    for f in FAULTS.values():
        choices = [f"{a.name}: {', '.join(a.choices)}" for a in f.args if a.kind == "choice"]
        rows.append((f.usage(), f.help + "".join(f" ({c})" for c in choices)))
    width = max(len(u) for u, _ in rows)
    return "faults (MS: milliseconds >= 0, RATE: 0..1, N/COUNT: whole numbers >= 0):\n" + "\n".join(
        f"  {u.ljust(width)}  {h}" for u, h in rows
    )


def _rate(a: list[str]) -> float:
    return float(a[0]) if a else 0.0


class Faults:
    """The faults in force (seeded: the same seed injects the same damage)."""

    def __init__(self, seed: int = 0) -> None:
        #: Drives drop, corrupt and garbage (seed + 1: the network's RNG is seed).
        self.rng = random.Random(seed + 1)
        #: Probability that each output byte is dropped ("drop").
        self.drop_rate = 0.0
        #: Probability that each output byte is changed ("corrupt").
        self.corrupt_rate = 0.0
        #: Seconds every answer comes late ("delay").
        self.delay = 0.0
        #: +CMS ERROR codes the next sends answer, oldest first ("cms-error").
        self.cms_errors: list[int] = []
        #: Damage for the next PDU lines printed, oldest first ("damage-next-pdu").
        self.pdu_damage: list[str] = []
        #: Reset instead of answering the next command line ("reboot next").
        self.reboot_on_next_line = False
        #: Error codes the next runs of a command answer ("error-on"), oldest first.
        self.error_on: dict[str, list[int]] = {}
        #: 0xFF bytes to put before the text of the next line sent ("glitch").
        self.glitch = 0
        #: (command name, line) pairs: the next answer to that command with an
        #: information response carries the line before it ("urc-in-answer").
        self.urc_in_answer: list[tuple[str, bytes]] = []

    def filter_output(self, data: bytes) -> bytes:
        """``data`` as the noisy line carries it (glitch, drop and corrupt)."""
        if self.glitch:
            # after the line's leading CR LF (V.250 §5.7.1 framing), before its text
            start = len(data) - len(data.lstrip(b"\r\n"))
            data = data[:start] + b"\xff" * self.glitch + data[start:]
            self.glitch = 0
        if not (self.drop_rate or self.corrupt_rate):
            return data
        out = bytearray()
        for byte in data:
            if self.drop_rate and self.rng.random() < self.drop_rate:
                continue
            if self.corrupt_rate and self.rng.random() < self.corrupt_rate:
                byte ^= self.rng.randrange(1, 256)  # noqa: PLW2901
            out.append(byte)
        return bytes(out)

    def garbage(self, count: int) -> bytes:
        """``count`` random bytes ("garbage")."""
        return bytes(self.rng.randrange(256) for _ in range(count))

    def take_cms_error(self) -> int | None:
        """The +CMS ERROR code the next send answers, if one is pending."""
        return self.cms_errors.pop(0) if self.cms_errors else None

    def damage(self, text: str) -> str:
        """The PDU line ``text`` about to be printed, damaged if damage is pending."""
        if not self.pdu_damage:
            return text
        return damage_pdu_line(text, self.pdu_damage.pop(0))

    def clear(self) -> None:
        """The "clear" fault: no drop, corruption, delay, pending errors, damage
        or URCs in answers."""
        self.drop_rate = self.corrupt_rate = self.delay = 0.0
        self.cms_errors = []
        self.pdu_damage = []
        self.urc_in_answer = []
        self.glitch = 0
        self.error_on = {}


class FaultInjection(ModemBase):
    """The part of the module that injects faults (:data:`FAULTS`)."""

    def fault(self, name: str, *args: str | int | float) -> None:
        """Inject a fault (:data:`FAULTS` lists them; docs/simulator.md).

        ValueError naming the fault and the argument when ``name`` is unknown
        or an argument is missing, extra, negative or not a number."""
        n, a = check_fault(name, [str(x) for x in args])
        if n == "reboot":
            if not a:
                self._reboot()
            elif a[0] == "next":
                self.faults.reboot_on_next_line = True
            else:
                self._later(float(a[0]) / 1000.0, self._reboot)
        elif n == "garbage":
            count = int(a[0]) if a else 16
            state, self._state = self._state, "cmd"
            self._write(self.faults.garbage(count))
            self._state = state
        elif n == "drop":
            self.faults.drop_rate = _rate(a)
        elif n == "corrupt":
            self.faults.corrupt_rate = _rate(a)
        elif n == "delay":
            self.faults.delay = float(a[0]) / 1000.0 if a else 0.0
        elif n == "hang":
            if self._busy_handle is not None:
                self._busy_handle.cancel()
                self._busy_handle = None
            self._state = "hung"
        elif n == "cms-error":
            count = int(a[1]) if len(a) > 1 else 1
            self.faults.cms_errors = [int(a[0])] * count
        elif n == "damage-next-pdu":
            count = int(a[1]) if len(a) > 1 else 1
            self.faults.pdu_damage += [a[0]] * count
        elif n == "error-on":
            cmd = a[0].strip().upper()
            if not cmd.startswith(("+", "^")):
                cmd = "+" + cmd
            count = int(a[2]) if len(a) > 2 else 1
            self.faults.error_on.setdefault(cmd, []).extend([int(a[1])] * count)
        elif n == "glitch":
            self.faults.glitch = int(a[0]) if a else 4
        elif n == "urc-in-answer":
            # an extended command's name, "+CREG" or "CREG"
            name = a[0].strip().upper()
            if not name.startswith(("+", "^")):
                name = "+" + name
            self.faults.urc_in_answer.append((name, a[1].encode("latin-1", "replace")))
        elif n == "urc":
            for line in a:
                self._urc(line.encode("latin-1", "replace"))
        elif n == "storage-full":
            self._fill_storage(a[0].upper() if a else self.cpms[2])
        elif n == "disconnect":
            self._disconnect(float(a[0]) / 1000.0 if a else self.timing.reconnect_delay)
        elif n == "unregister":
            self.set_registered(False)
        elif n == "register":
            self.set_registered(True, roaming=bool(a and a[0] == "roaming"))
        else:
            assert n == "clear", n
            self.faults.clear()

    def _fill_storage(self, mem: str) -> None:
        store = self._stores[mem]
        n = 0
        while not store.full:
            n += 1
            (raw,) = _codec.build_delivers(
                "+15550001111",
                f"filler {n}",
                scts=self._now(),
                encoding=None,
                ref=0,
                smsc=self.smsc,
            )
            if store.add(REC_READ, raw, _codec.tpdu_length(raw), "deliver") is None:
                break

    def _disconnect(self, down: float) -> None:
        self.connectable = False
        for port in list(self._ports):
            port.sim_hangup()
        self._ports.clear()

        def back() -> None:
            self.connectable = True
            for cb in list(self._reconnect_listeners):
                cb()

        self._later(down, back)

    def _pdu_line(self, text: str) -> str:
        """The PDU line about to be printed, damaged if a damage-next-pdu fault
        is pending (the header's <length> is left as it was)."""
        return self.faults.damage(text)
