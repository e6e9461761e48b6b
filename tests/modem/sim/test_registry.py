"""The command table: handlers register themselves, docs/simulator.md lists them all."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modem.sim import SimModem
from modem.sim.registry import HANDLERS, ICCID, SREG, command_key, handler

DOCS = Path(__file__).resolve().parents[3] / "docs" / "simulator.md"


def _documented() -> dict[str, str]:
    """{command key: module} from the command table of docs/simulator.md's
    "Architecture" section: rows "| `modem/sim/x.py` | ... | `+CMGR` `+CMGL` |"."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("\n## Architecture", 1)[1].split("\n## ", 1)[0]
    out: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not re.fullmatch(r"`modem/sim/\w+\.py`", cells[0]):
            continue
        module = "modem.sim." + cells[0].strip("`")[len("modem/sim/") : -len(".py")]
        for name in re.findall(r"`([^`]+)`", cells[-1]):
            assert name not in out, f"{name} listed twice in docs/simulator.md"
            out[name] = module
    return out


def test_every_registered_command_is_documented_where_it_lives():
    documented = _documented()
    registered = {name: spec.module for name, spec in HANDLERS.items()}
    assert sorted(set(registered) - set(documented)) == [], "registered, not in the docs"
    assert sorted(set(documented) - set(registered)) == [], "in the docs, not registered"
    wrong = {n: (documented[n], m) for n, m in registered.items() if documented[n] != m}
    assert wrong == {}, "docs name another module (docs, code)"


def test_registry_holds_the_commands_of_each_spec():
    # A sample of each part: the table is not empty or partial.
    for name in (
        "E",
        "&F",
        SREG,
        "+CPIN",
        "+CSQ",
        "+COPS",
        "+CCLK",
        "+CSCS",
        "+CMGR",
        "+CNMA",
        ICCID,
    ):
        assert name in HANDLERS, name
    sms = {n for n, s in HANDLERS.items() if s.sms}
    assert sms == {
        "+CSMS",
        "+CPMS",
        "+CMGF",
        "+CSCA",
        "+CSMP",
        "+CSDH",
        "+CNMI",
        "+CNMA",
        "+CMGS",
        "+CMGW",
        "+CMSS",
        "+CMGR",
        "+CMGL",
        "+CMGD",
    }
    assert {n for n, s in HANDLERS.items() if s.message} == {
        "+CNMA",
        "+CMGS",
        "+CMGW",
        "+CMSS",
        "+CMGR",
        "+CMGL",
        "+CMGD",
    }
    assert {n for n, s in HANDLERS.items() if not s.pin_free} == (sms - {"+CMGF"}) | {"+CIMI"}


def test_a_command_registered_twice_is_refused_at_import():
    with pytest.raises(RuntimeError, match=r"\+CMGR registered twice"):
        handler("+CMGR")(lambda modem, cmd: None)
    assert HANDLERS["+CMGR"].module != __name__


def test_family_keys():
    assert command_key("S3", ()) == SREG
    assert command_key("S", ()) == "S"
    assert command_key("+QCCID", ("+QCCID",)) == ICCID
    assert command_key("+QCCID", ("+CCID",)) == "+QCCID"


def _answer(sim: SimModem, line: bytes) -> bytes:
    out = bytearray()

    class Port:
        def sim_output(self, data: bytes) -> None:
            out.extend(data)

        def sim_hangup(self) -> None:
            pass

    port = Port()
    sim.attach(port)
    sim.receive(line)
    sim.detach(port)
    return bytes(out)


@pytest.mark.parametrize("line", [b"ATS3=200\r", b"ATS3=x\r", b"ATS4=\r"])
def test_bad_s_parameter_value_answers_error(line):
    # V.250 §6.2: a value out of range is an error result, and the module goes on.
    sim = SimModem("generic")
    assert _answer(sim, line) == line + b"\r\nERROR\r\n"
    assert _answer(sim, b"ATS3?\r") == b"ATS3?\r\r\n013\r\n\r\nOK\r\n"


def test_each_call_between_parts_is_implemented_by_exactly_one_part():
    # ModemBase declares the calls between parts as stubs; the MRO puts the
    # parts first, so a stub must never be what SimModem runs.
    from modem.sim.base import ModemBase

    stubs = [n for n, v in vars(ModemBase).items() if callable(v) and n != "_later"]
    assert "_urc" in stubs and "_network_send" in stubs
    for name in stubs:
        owners = [c.__name__ for c in SimModem.__mro__[:-2] if name in vars(c)]
        assert len(owners) == 1, (name, owners)
        assert getattr(SimModem, name) is not getattr(ModemBase, name), name


def test_names_stay_importable_from_modem_sim_core():
    import modem.sim
    from modem.sim import core, faults, network

    for name in (
        "SimModem",
        "SimPort",
        "SimTiming",
        "MoRecord",
        "NetworkMessage",
        "MtAck",
        "FAULTS",
        "FaultSpec",
        "FaultArg",
        "check_fault",
        "fault_help",
        "damage_pdu_line",
        "DAMAGE_MODES",
        "PIN_ATTEMPTS",
        "PUK_ATTEMPTS",
        "CTRL_Z",
        "ESC",
        "_parse_cclk",
    ):
        assert hasattr(core, name), name
    assert core.FAULTS is faults.FAULTS and core.MoRecord is network.MoRecord
    for name in modem.sim.__all__:
        assert hasattr(modem.sim, name), name
