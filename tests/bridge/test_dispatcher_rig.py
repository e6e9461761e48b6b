"""The test rig of the dispatcher and action tests (no tests here).

Real parts where they exist: a real SQLite journal in ``tmp_path`` behind the
real worker thread, the simulated HAL (``hal.build`` with ``backend = "sim"``),
real executable scripts; fakes only for what the service will supply later
(the modem's status and the reply sender).
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hal
from bridge import auth, config
from bridge.actions import builtins
from bridge.actions.context import ModemFigures, ModemIdentity
from bridge.actions.registry import Registry
from bridge.dispatcher import Dispatcher
from bridge.inbound import Incoming
from bridge.journal import Entry, Journal
from bridge.outbox import Outbox
from bridge.worker import JournalWorker
from pdu.dcs import Alphabet

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
DEVICE = "89883070000012345678"
MODEM = "modem0"
BENCH = "+15550001111"


class FakeModem:
    """ModemStatus as the service will supply it."""

    def __init__(self) -> None:
        self.fail = False

    async def figures(self) -> ModemFigures:
        if self.fail:
            raise TimeoutError("AT+CSQ")
        return ModemFigures(-71, 0, "home", "Twilio", "LTE-M")

    async def identity(self) -> ModemIdentity:
        if self.fail:
            raise TimeoutError("AT+CGSN")
        return ModemIdentity("860000000000001", DEVICE, "Quectel", "BG96", "BG96MAR02A07M1G")


class FakeSender:
    """ReplySender that records what reached the wire; can fail, hang, or raise
    after the PDU left (the outcome-unknown case)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str | bytes, bool]] = []
        self.calls = 0
        self.fail_next = 0
        self.raise_after_next = 0
        self.hang_next = 0
        self.on_send: list[Any] = []
        self._mr = itertools.count(1)

    async def send(self, to: str, content: str | bytes, *, binary: bool) -> tuple[int, ...]:
        self.calls += 1
        for hook in self.on_send:
            hook(to, content)
        if self.hang_next:
            self.hang_next -= 1
            await asyncio.Event().wait()
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("+CMS ERROR: 500")
        self.sent.append((to, content, binary))
        if self.raise_after_next:
            self.raise_after_next -= 1
            raise ConnectionError("line lost after the PDU left")
        return (next(self._mr),)


def hal_table(tmp: Path) -> dict[str, Any]:
    scripts = tmp / "scripts"
    scripts.mkdir(exist_ok=True)
    for name in ("again", "once"):
        p = scripts / name
        p.write_text(
            "#!/bin/sh\n"
            f'echo "$@" >> {tmp}/{name}.count\n'
            'echo "ran $# args: $*"\n'
            'if [ "$1" = fail ]; then echo "it broke" >&2; exit 3; fi\n'
        )
        p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return {
        "backend": "sim",
        "gpio": {
            "relay1": {"chip": "gpiochip0", "line": 17, "direction": "output"},
            "gate": {"chip": "gpiochip0", "line": 18, "direction": "output", "max_pulse_ms": 50},
            "door": {"chip": "gpiochip0", "line": 27, "direction": "input"},
        },
        "sensors": {
            "water": {"type": "ds18b20", "device": "28-0000075e8a2b"},
            "cpu": {"type": "thermal", "zone": 0},
        },
        "power": {"allow_reboot": True},
        "scripts": {
            "again": {
                "command": [str(scripts / "again")],
                "args": ["[a-z0-9]{1,8}", "[a-z0-9]{1,8}"],
                "min_args": 0,
                "idempotent": True,
            },
            "once": {
                "command": [str(scripts / "once")],
                "args": ["[a-z0-9]{1,8}"],
                "min_args": 0,
                "idempotent": False,
            },
        },
    }


def script_runs(tmp: Path, name: str) -> int:
    p = tmp / f"{name}.count"
    return len(p.read_text().splitlines()) if p.exists() else 0


def make_config(tmp: Path, **overrides: Mapping[str, Any]) -> config.Config:
    doc: dict[str, Any] = {
        "bridge": {"product": "auto", "device_id": DEVICE, "footer_markers": ["Sent from"]},
        "security": {"bench_numbers": [BENCH]},
        "hal": hal_table(tmp),
    }
    for k, v in overrides.items():
        doc[k] = {**doc.get(k, {}), **v}
    return config.parse(doc)


def signed(text: str, counter: int, *, key: bytes = KEY, version: int = 1) -> str:
    return auth.sign_command(text, key=key, key_version=version, device_id=DEVICE, counter=counter)


def signed_binary(payload: bytes, counter: int, *, key: bytes = KEY) -> bytes:
    return auth.sign_command(payload, key=key, key_version=1, device_id=DEVICE, counter=counter)


class Rig:
    """A dispatcher and an outbox over a real journal file and the simulated HAL."""

    def __init__(
        self,
        tmp: Path,
        *,
        cfg: config.Config | None = None,
        keys: auth.Keyring | str | None = "default",
        registry: Registry | None = None,
        clock: Any = None,
        send_timeout: float | None = None,
        max_attempts: int | None = None,
        stop_grace: float | None = None,
        modems: tuple[str, ...] = (MODEM,),
    ) -> None:
        self.tmp = tmp
        self.modem_names = modems
        self.path = tmp / "journal.db"
        self.cfg = cfg or make_config(tmp)
        self.keys = auth.Keyring({1: KEY}, 1) if keys == "default" else keys
        self.registry = registry or builtins()
        self.clock = clock
        self.send_timeout = send_timeout
        self.max_attempts = max_attempts
        self.stop_grace = stop_grace
        #: each module's reply sender (``sender``: the first module's)
        self.senders = {name: FakeSender() for name in modems}
        self.sender = self.senders[modems[0]]
        self.modem = FakeModem()
        self.hal = hal.build(hal.parse(self.cfg.hal, where="hal"))
        assert self.hal.sim is not None
        self.sim = self.hal.sim
        self._ids = itertools.count(1)

    async def __aenter__(self) -> Rig:
        kw: dict[str, Any] = {} if self.clock is None else {"clock": self.clock}
        self.journal = Journal.open(self.path, **kw)
        self.worker = JournalWorker(self.journal)
        self.outbox = Outbox(
            self.worker,
            # ``sender`` may have been replaced since __init__ (the crash test's wire)
            {**self.senders, self.modem_names[0]: self.sender},
            retry_delays=(0.0,),
            send_timeout=self.send_timeout,
            max_attempts=self.max_attempts,
            stop_grace=self.stop_grace,
        )
        self.dispatcher = Dispatcher(
            self.worker,
            self.registry,
            config=self.cfg,
            device=self.hal,
            outbox=self.outbox,
            device_id=DEVICE,
            keys=self.keys if not isinstance(self.keys, str) else None,
            framing_configs={name: self.cfg.framing() for name in self.modem_names},
            modems={name: self.modem for name in self.modem_names},
            counters=self.outbox.counters,
            version="0.1.0",
            stop_grace=self.stop_grace,
            **kw,
        )
        await self.outbox.start()
        await self.dispatcher.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.dispatcher.stop()
        await self.outbox.stop()
        await self.worker.close()

    @property
    def counters(self) -> Any:
        return self.dispatcher.counters

    async def settle(self) -> None:
        await self.dispatcher.drain()
        await self.outbox.drain()

    async def sms(
        self,
        body: str | bytes,
        *,
        sender: str = "2936",
        identity: str | None = None,
        coding: Alphabet | None = None,
        complete: bool = True,
    ) -> Entry:
        """One SMS through admit, the dispatcher and the outbox; its journal entry."""
        if coding is None:
            coding = Alphabet.DATA8 if isinstance(body, bytes) else Alphabet.GSM7
        ident = identity or f"id-{next(self._ids)}"
        msg = Incoming(sender, body, coding, ident, (f"{ident}/1",), complete)
        receipt = await self.dispatcher.admit(msg, modem=MODEM)
        await self.settle()
        return await self.worker.call(Journal.get, receipt.entry_id)

    def replies(self) -> list[str | bytes]:
        return [c for _, c, _ in self.sender.sent]

    def last_reply_body(self) -> str:
        """The last text reply, its signature checked and taken off."""
        content = self.sender.sent[-1][1]
        assert isinstance(content, str)
        if self.keys is None or isinstance(self.keys, str):
            return content
        v = auth.verify_reply(content, keys={1: KEY}, device_id=DEVICE)
        assert isinstance(v.body, str)
        return v.body


def entry_state(path: Path, entry_id: int) -> str:
    """An entry's state read through a separate connection (what is on disk now)."""
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT state FROM entry WHERE id = ?", (entry_id,)).fetchone()
        return str(row[0])
    finally:
        db.close()
