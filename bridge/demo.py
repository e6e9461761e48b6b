"""``sms-bridge demo``: a scripted session through the real path, no hardware.

The service (:class:`bridge.service.Service`) runs on the in-process
simulated module ``sim://bg96`` and the simulated HAL, with a temporary
journal and key file. Each case is delivered by the simulated *network*
(``SimModem.deliver``), so it takes the whole path: ``+CMTI`` -> ``+CMGR`` ->
the SMS service -> the journal -> ``+CMGD`` -> the dispatcher -> the action
-> the outbox -> ``AT+CMGS``. What was answered is read back from the
simulator's MO log (what reached the network) and decoded; the signatures
are checked the way a server checks them (:func:`bridge.auth.verify_reply`).

Cases: a plain Command, a signed one, one with ``include_sid``, a binary
one, a duplicate delivery, a spoofed sender, a bad signature and a signed
``reboot`` (the reply goes first; after the restart the boot message).
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from . import auth, config
from .journal import Entry, Journal, State
from .service import Service

log = logging.getLogger("bridge.demo")

#: The whole demo must end within this (it takes about a second).
DEMO_TIMEOUT = 60.0
SPOOFER = "+447700900123"


@dataclass
class Case:
    """One scripted SMS and what the demo saw of it."""

    name: str
    title: str
    body: str | bytes
    sender: str = "2936"
    include_sid: str | None = None
    duplicate: bool = False
    shown: str = ""
    entries: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = ""


def _hal_table() -> dict[str, Any]:
    return {
        "backend": "sim",
        "gpio": {
            "relay1": {"chip": "gpiochip0", "line": 17, "direction": "output"},
            "door": {"chip": "gpiochip0", "line": 27, "direction": "input"},
        },
        "sensors": {"water": {"type": "ds18b20", "device": "28-0000075e8a2b"}},
        "power": {"allow_reboot": True},
    }


def _binary_reply(data: bytes) -> str:
    """A binary reply (docs/bridge.md, "Binary replies") in words."""
    if not data or data[0] & 0xF0 != 0xB0:
        return data.hex()
    names = {0: "ok", 1: "failed", 2: "usage", 3: "timeout", 4: "interrupted"}
    body = data[: -auth.BINARY_TRAILER_OCTETS] if data[0] & 1 else data
    out, o = [], 1
    while o + 2 <= len(body):
        status, n = body[o], body[o + 1]
        out.append(
            f"{names.get(status, status)}: {body[o + 2 : o + 2 + n].decode('utf-8', 'replace')}"
        )
        o += 2 + n
    return "; ".join(out)


class Demo:
    def __init__(self, tmp: Path, out: TextIO, *, as_json: bool) -> None:
        self.tmp = tmp
        self.out = out
        self.as_json = as_json
        self.key = auth.generate_key()
        key_file = tmp / "keys.toml"
        auth.write_key_file(key_file, auth.format_key_file({1: self.key}, 1))
        self.cfg = config.parse(
            {
                "bridge": {"journal": str(tmp / "journal.db")},
                "security": {"key_file": str(key_file)},
                "modem": [{"port": "sim://bg96"}],
                "hal": _hal_table(),
            }
        )
        self.counter = 0
        self.last_entry = 0
        self.server_window = auth.ReplayWindow()

    def say(self, text: str = "") -> None:
        if not self.as_json:
            self.out.write(text + "\n")
            self.out.flush()

    def sign(self, text: str | bytes, device: str) -> Any:
        self.counter += 1
        return auth.sign_command(
            text, key=self.key, key_version=1, device_id=device, counter=self.counter
        )

    async def new_entries(self, svc: Service) -> list[Entry]:
        assert svc.worker is not None
        found = await svc.worker.call(Journal.list_entries, limit=100)
        new = sorted((e for e in found if e.id > self.last_entry), key=lambda e: e.id)
        if new:
            self.last_entry = new[-1].id
        return [await svc.worker.call(Journal.get, e.id) for e in new]

    def answer(self, record: Any, device: str) -> dict[str, Any]:
        msg = record.message
        text, data = msg.tp_ud.text, msg.tp_ud.data
        content: str | bytes = text if text is not None else (data or b"")
        shown = content if isinstance(content, str) else _binary_reply(content)
        try:
            v = auth.verify_reply(
                content, keys={1: self.key}, device_id=device, window=self.server_window
            )
            assert v.window is not None
            self.server_window = v.window
            check = f"signature verified, counter {v.counter}"
        except auth.AuthError as exc:
            check = f"signature NOT verified ({exc.reason.value})"
        return {
            "to": str(msg.tp_da),
            "dcs": f"0x{msg.tp_dcs.value:02x}",
            "binary": data is not None and text is None,
            "content": content.hex() if isinstance(content, bytes) else content,
            "shown": shown,
            "mr": record.mr,
            "check": check,
        }

    async def play(self, svc: Service, case: Case) -> None:
        sim = svc.links["modem0"].stack.sim_modem
        device = svc.device_id
        mark = len(sim.mo_log)
        copies = 2 if case.duplicate else 1
        want = svc.admitted + copies
        sim.deliver(
            case.body, sender=case.sender, include_sid=case.include_sid, duplicate=case.duplicate
        )
        await svc.wait_admitted(want)
        await svc.settle()
        case.entries = [
            {
                "id": e.id,
                "state": e.state.value,
                "summary": e.summary,
                "reason": e.reason,
                "sid": e.sid,
                "counter": e.counter,
            }
            for e in await self.new_entries(svc)
        ]
        case.answers = [self.answer(r, device) for r in sim.mo_log[mark:]]

    def show(self, n: int, case: Case) -> None:
        body = case.body.hex() if isinstance(case.body, bytes) else case.body
        copies = " (delivered twice by the network)" if case.duplicate else ""
        sid = f", include_sid={case.include_sid}" if case.include_sid else ""
        self.say(f"{n}. {case.title}")
        self.say(f"   arrived   from {case.sender}{sid}{copies}: {body}")
        for e in case.entries:
            extra = f", sid {e['sid']}" if e["sid"] else ""
            extra += f", counter {e['counter']}" if e["counter"] is not None else ""
            if e["state"] == State.REJECTED.value:
                self.say(f"   ran       nothing: entry {e['id']} rejected ({e['reason']}){extra}")
            else:
                self.say(
                    f"   ran       entry {e['id']}: {e['summary'] or '-'}, now {e['state']}{extra}"
                )
        if case.duplicate:
            self.say("   ran       once: the second copy was a duplicate of the journaled entry")
        if not case.answers:
            self.say("   answered  nothing: no reply (a reply costs money and is an oracle)")
        for a in case.answers:
            kind = f"binary, DCS {a['dcs']}" if a["binary"] else "text"
            self.say(f"   answered  to {a['to']} ({kind}, mr={a['mr']}): {a['content']}")
            if a["binary"]:
                self.say(f"             decoded: {a['shown']}")
            self.say(f"             {a['check']}")
        self.say(f"   outcome   {case.outcome}")
        self.say()
        if self.as_json:
            self.out.write(
                json.dumps(
                    {
                        "case": case.name,
                        "outcome": case.outcome,
                        "entries": case.entries,
                        "answers": case.answers,
                    },
                    sort_keys=True,
                )
                + "\n"
            )

    async def run(self) -> int:
        self.say("sms-bridge demo: the simulated module sim://bg96, the simulated HAL,")
        self.say(f"a temporary journal and key ({self.tmp}).")
        self.say()
        svc = Service(self.cfg)
        await svc.start()
        try:
            await svc.wait_ready(DEMO_TIMEOUT)
            await svc.settle()  # the boot message sent
            device = svc.device_id
            sim = svc.links["modem0"].stack.sim_modem
            boot = [self.answer(r, device) for r in sim.mo_log]
            await self.new_entries(svc)
            self.say(f"started: device {device} (the SIM's ICCID), signed replies")
            for a in boot:
                self.say(f"   boot message to {a['to']}: {a['content']}")
            self.say()
            plain = Case("plain", "A plain Command", "ping")
            signed = Case("signed", "A signed Command", self.sign("gpio set relay1 on", device))
            with_sid = Case(
                "include_sid", "A Command with include_sid", "status", include_sid="start"
            )
            binary = Case("binary", "A binary Command (ping, 8-bit data)", bytes.fromhex("a00100"))
            dup = Case(
                "duplicate", "A duplicate", self.sign("gpio get relay1", device), duplicate=True
            )
            spoofed = Case(
                "spoofed",
                "A spoofed sender",
                self.sign("gpio set relay1 off", device),
                sender=SPOOFER,
            )
            good = self.sign("gpio set relay1 off", device)
            assert isinstance(good, str)
            bad = Case("bad-signature", "A bad signature", good.replace("relay1 off", "relay1 of"))
            reboot = Case("reboot", "A signed reboot", self.sign("reboot", device))
            cases = [plain, signed, with_sid, binary, dup, spoofed, bad, reboot]
            for n, case in enumerate(cases, 1):
                await self.play(svc, case)
                self.judge(case, svc)
                self.show(n, case)
            assert svc.hal is not None and svc.hal.sim is not None
            rebooted = list(svc.hal.sim.power.executed)
        finally:
            await svc.stop()
        # the device "reboots": the service starts again on the same journal
        svc2 = Service(self.cfg)
        await svc2.start()
        try:
            await svc2.wait_ready(DEMO_TIMEOUT)
            await svc2.settle()
            sim2 = svc2.links["modem0"].stack.sim_modem
            boot2 = [self.answer(r, svc2.device_id) for r in sim2.mo_log]
            self.say(
                f"after the reboot ({', '.join(rebooted) or 'none'} run by the simulated HAL):"
            )
            for a in boot2:
                self.say(f"   boot message to {a['to']}: {a['content']}")
                self.say(f"             {a['check']}")
            self.say()
            assert svc2.worker is not None
            counts = await svc2.worker.call(Journal.counts)
            entries = await svc2.worker.call(Journal.list_entries, limit=100)
        finally:
            await svc2.stop()
        self.say("the journal holds:")
        for state, n in counts.items():
            if n:
                self.say(f"   {state.value:12} {n}")
        for e in sorted(entries, key=lambda e: e.id):
            tail = f" ({e.reason})" if e.reason else ""
            self.say(
                f"   entry {e.id:2}: {e.kind.value:7} {e.sender or '-':14} "
                f"{e.summary or '-':16} {e.state.value}{tail}"
            )
        if self.as_json:
            self.out.write(
                json.dumps(
                    {
                        "case": "journal",
                        "counts": {s.value: n for s, n in counts.items()},
                        "boot_after_reboot": [a["content"] for a in boot2],
                        "rebooted": rebooted,
                    },
                    sort_keys=True,
                )
                + "\n"
            )
        ok = all(c.outcome.startswith("ok") for c in cases) and bool(boot2) and bool(rebooted)
        self.say()
        self.say("demo: every case behaved as designed" if ok else "demo: a case went WRONG")
        self.say()
        return 0 if ok else 1

    def judge(self, case: Case, svc: Service) -> None:
        """Say whether what happened is what the bridge promises for this case."""
        states = [e["state"] for e in case.entries]
        reasons = [e["reason"] for e in case.entries]
        answered = len(case.answers)
        verified = all(a["check"].startswith("signature verified") for a in case.answers)
        if case.name in ("spoofed", "bad-signature"):
            want = "unknown-sender" if case.name == "spoofed" else "auth:bad-tag"
            good = states == [State.REJECTED.value] and reasons == [want] and answered == 0
            case.outcome = f"ok: rejected ({want}), journaled, not answered" if good else "WRONG"
            return
        if case.name == "duplicate":
            good = states == [State.SENT.value] and answered == 1 and verified
            n = svc.counters["duplicates"]
            case.outcome = (
                f"ok: run once, answered once ({n} duplicate counted)" if good else "WRONG"
            )
            return
        good = states == [State.SENT.value] and answered == 1 and verified
        if case.name == "binary":
            good = good and case.answers[0]["binary"]
        if case.name == "include_sid":
            good = good and bool(case.entries[0]["sid"])
        if case.name == "reboot":
            assert svc.hal is not None and svc.hal.sim is not None
            good = good and list(svc.hal.sim.power.executed) == ["reboot"]
            case.outcome = "ok: answered first, then rebooted" if good else "WRONG"
            return
        case.outcome = "ok: run, answered once, signed" if good else "WRONG"


async def run_demo(out: TextIO, *, as_json: bool = False) -> int:
    """Play the demo; 0 when every case behaved as designed."""
    with tempfile.TemporaryDirectory(prefix="sms-bridge-demo-") as tmp:
        demo = Demo(Path(tmp), out, as_json=as_json)
        async with asyncio.timeout(DEMO_TIMEOUT):
            return await demo.run()
