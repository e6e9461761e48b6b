"""The service test rig (no tests here): the real Service on simulated modules.

Real parts: the Service with its ModemStacks on ``sim://`` modules (the SMS
arrives from the simulated network: +CMTI, +CMGR, +CMGD, +CMGS on the
simulated line), a real journal file, a real key file (0600), the simulated
HAL with real scripts. Waiting is on events: the consumer's admissions
(``Service.wait_admitted``), the dispatcher's and outbox's drains
(``Service.settle``) and the simulator's MO log, which signals each send.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bridge import auth, config
from bridge.journal import Entry, Journal
from bridge.service import Service

from .test_dispatcher_rig import DEVICE, KEY, hal_table

SPOOFER = "+447700900123"
#: TP-SCTS offsets: every SMS of a test run its own second
_SECONDS = itertools.count(1)


class MoSignal(list):
    """The simulator's MO log, setting an event on every SMS it records."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__(items)
        self.grew = asyncio.Event()

    def append(self, item: Any) -> None:
        super().append(item)
        self.grew.set()

    async def wait_len(self, n: int) -> None:
        while len(self) < n:
            self.grew.clear()
            await self.grew.wait()


@dataclass
class Sent:
    """One SMS the device sent, decoded from the simulator's MO log."""

    to: str
    content: str | bytes
    dcs: int
    mr: int

    @property
    def body(self) -> str | bytes:
        """The content without its signature (checked as a server would)."""
        return auth.verify_reply(self.content, keys={1: KEY}, device_id=DEVICE).body


def decode(record: Any) -> Sent:
    m = record.message
    content = m.tp_ud.text if m.tp_ud.text is not None else m.tp_ud.data
    return Sent(str(m.tp_da), content, m.tp_dcs.value, record.mr)


def write_key(tmp: Path) -> str:
    path = tmp / "keys.toml"
    if not path.exists():
        auth.write_key_file(path, auth.format_key_file({1: KEY}, 1))
    return str(path)


def service_config(
    tmp: Path,
    *,
    modems: list[dict[str, Any]] | None = None,
    key: bool = True,
    **sections: Mapping[str, Any],
) -> config.Config:
    doc: dict[str, Any] = {
        "bridge": {"device_id": DEVICE, "journal": str(tmp / "journal.db")},
        "security": {"key_file": write_key(tmp)} if key else {},
        "modem": modems or [{"port": "sim://bg96"}],
        "hal": hal_table(tmp),
    }
    for k, v in sections.items():
        doc[k] = {**doc.get(k, {}), **v}
    return config.parse(doc)


class ServiceRig:
    """``async with ServiceRig(cfg) as rig``: started, ready, boot message sent."""

    def __init__(
        self, cfg: config.Config, *, sims: Mapping[str, Any] | None = None, **service_kw: Any
    ) -> None:
        self.cfg = cfg
        self.sims = dict(sims or {})  # modules behind real ports (a pty), by name
        service_kw.setdefault("outbox_options", {"retry_delays": (0.0,)})
        self.svc = Service(cfg, **service_kw)
        self.mo: dict[str, MoSignal] = {}

    async def __aenter__(self) -> ServiceRig:
        await self.svc.start()
        for name, link in self.svc.links.items():
            sim = link.stack.sim_modem or self.sims.get(name)
            if sim is not None:
                self.sims[name] = sim
                sim.mo_log = MoSignal(sim.mo_log)
                self.mo[name] = sim.mo_log
        try:
            await self.svc.wait_ready(30)
            await self.svc.settle()
        except BaseException:
            await self.svc.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.svc.stop()

    def sim(self, modem: str = "modem0") -> Any:
        return self.sims[modem]

    @property
    def hal(self) -> Any:
        assert self.svc.hal is not None and self.svc.hal.sim is not None
        return self.svc.hal.sim

    def sent(self, modem: str = "modem0") -> list[Sent]:
        return [decode(r) for r in self.mo[modem]]

    async def sms(
        self, body: str | bytes, *, modem: str = "modem0", copies: int = 1, **deliver: Any
    ) -> list[Sent]:
        """Deliver one SMS from the simulated network; wait until it is journaled,
        processed and answered (or not); return what the device sent meanwhile."""
        mark = len(self.mo[modem])
        want = self.svc.admitted + copies
        sim = self.sim(modem)
        # each SMS its own TP-SCTS second, as two SMS a network delivers have
        # (the same text, sender and second is one SMS to the SMS service)
        deliver.setdefault("scts", sim.now() + timedelta(seconds=next(_SECONDS)))
        sim.deliver(body, **deliver)
        await self.svc.wait_admitted(want)
        await self.svc.settle()
        return [decode(r) for r in self.mo[modem][mark:]]

    async def entry(self, entry_id: int | None = None) -> Entry:
        """An entry (the newest when no id)."""
        assert self.svc.worker is not None
        if entry_id is None:
            entry_id = (await self.svc.worker.call(Journal.list_entries, limit=1))[0].id
        return await self.svc.worker.call(Journal.get, entry_id)
