"""JSON-lines control interface of a running simulator.

One JSON object a line each way, over a unix socket (``unix:/path`` or any
address with a ``/``) or TCP on the loopback (``127.0.0.1:PORT``). A request
names an ``op`` and its arguments; the answer is ``{"ok": true, "result":
...}`` or ``{"ok": false, "error": "..."}``. Operations (the same as the
:class:`SimModem` Python API):

=================  ===========================================================
op                 arguments -> result
=================  ===========================================================
deliver            text | hex (8-bit data) | pdu, sender, encoding,
                   include_sid, sid, duplicate, message_class, scts (ISO 8601
                   with a zone) -> list of storage indexes
sent               -> list of MO messages (codec JSON keys plus "mr")
clear_mo           -> null
storage            name ("SM"/"ME"/"MT") -> [{index, stat, length, pdu}]
store_raw          record (printed as is), length, stat, mem, notify -> index
set_registered     registered (bool), roaming (bool) -> null
set_signal         rssi, ber -> null
set_clock          fixed (ISO 8601 with a zone) | offset (seconds), tz_quarters
                   -> the clock now (ISO 8601)
fault              name, args (list) -> null
retry              -> indexes stored by the network's retry
status             -> {profile, state, registered, pending_mt, sent, sim,
                   pin_attempts_left, puk_attempts_left}
=================  ===========================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from datetime import datetime, timedelta
from typing import Any

from .core import SimModem

__all__ = ["ControlServer", "control_request", "parse_address"]

_MAX_LINE = 1 << 20


def parse_address(addr: str) -> tuple[str, str | int]:
    """("unix", path) or ("tcp", port) for an address; TCP is loopback only."""
    if addr.startswith("unix:"):
        return "unix", addr[5:]
    if "/" in addr:
        return "unix", addr
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"control address is unix:PATH, a path, or 127.0.0.1:PORT: {addr!r}")
    if host not in ("127.0.0.1", "localhost", ""):
        raise ValueError("the control interface listens on the loopback only")
    return "tcp", int(port)


def handle(modem: SimModem, req: dict[str, Any]) -> Any:
    """Run one control request against ``modem``; the result (JSON-able)."""
    op = req.get("op")
    if op == "deliver":
        content: str | bytes | None = req.get("text")
        if req.get("hex") is not None:
            content = bytes.fromhex(str(req["hex"]))
        return modem.deliver(
            content,
            sender=str(req.get("sender") or "2936"),
            encoding=req.get("encoding"),
            pdu=req.get("pdu"),
            include_sid=req.get("include_sid"),
            sid=req.get("sid"),
            duplicate=bool(req.get("duplicate", False)),
            message_class=req.get("message_class"),
            scts=None if req.get("scts") is None else datetime.fromisoformat(str(req["scts"])),
        )
    if op == "sent":
        return [r.to_json() for r in modem.mo_log]
    if op == "clear_mo":
        modem.clear_mo()
        return None
    if op == "storage":
        store = modem.storage(str(req.get("name", "SM")))
        return [
            {"index": i, "stat": m.stat, "length": m.length, "pdu": m.pdu_hex}
            for i, m in store.items()
        ]
    if op == "store_raw":
        length = req.get("length")
        return modem.store_raw(
            str(req["record"]),
            length=None if length is None else int(length),
            stat=int(req.get("stat", 0)),
            mem=str(req.get("mem", "SM")),
            notify=bool(req.get("notify", False)),
        )
    if op == "set_registered":
        modem.set_registered(bool(req.get("registered", True)), roaming=bool(req.get("roaming")))
        return None
    if op == "set_clock":
        fixed = req.get("fixed")
        offset = req.get("offset")
        tzq = req.get("tz_quarters")
        modem.set_clock(
            None if fixed is None else datetime.fromisoformat(str(fixed)),
            offset=None if offset is None else timedelta(seconds=float(offset)),
            tz_quarters=None if tzq is None else int(tzq),
        )
        return modem.now().isoformat()
    if op == "set_signal":
        modem.set_signal(int(req["rssi"]), int(req.get("ber", 99)))
        return None
    if op == "fault":
        args = req.get("args") or []
        if not isinstance(args, list):
            raise ValueError("args is a list")
        modem.fault(str(req["name"]), *[str(a) for a in args])
        return None
    if op == "retry":
        return modem.retry_pending()
    if op == "status":
        return {
            "profile": modem.profile.name,
            "state": modem.state,
            "registered": modem.registered,
            "pending_mt": len(modem.pending_mt),
            "sent": len(modem.mo_log),
            "sim": modem.sim_state,
            "pin_attempts_left": modem.pin_attempts_left,
            "puk_attempts_left": modem.puk_attempts_left,
        }
    raise ValueError(f"unknown op {op!r}")


class ControlServer:
    """Serves :func:`handle` as JSON lines on ``address``."""

    def __init__(self, modem: SimModem, address: str) -> None:
        self.modem = modem
        self.kind, self.where = parse_address(address)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.where}"
        return f"127.0.0.1:{self.where}"

    async def start(self) -> None:
        if self.kind == "unix":
            path = str(self.where)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            self._server = await asyncio.start_unix_server(self._client, path, limit=_MAX_LINE)
        else:
            self._server = await asyncio.start_server(
                self._client, "127.0.0.1", int(self.where), limit=_MAX_LINE, reuse_address=True
            )
            self.where = int(self._server.sockets[0].getsockname()[1])

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, ConnectionError):
                    break
                if not line:
                    break
                try:
                    req = json.loads(line)
                    if not isinstance(req, dict):
                        raise ValueError("a request is a JSON object")
                    answer = {"ok": True, "result": handle(self.modem, req)}
                except Exception as exc:  # every failure is reported to the client
                    answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def close(self) -> None:
        server, self._server = self._server, None
        for w in list(self._writers):
            w.close()
        if server is not None:
            server.close()
            await server.wait_closed()
        if self.kind == "unix":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(str(self.where))


async def control_request(address: str, request: dict[str, Any], timeout: float = 5.0) -> Any:
    """Send one request to a running simulator; its result, or RuntimeError."""
    kind, where = parse_address(address)
    async with asyncio.timeout(timeout):
        if kind == "unix":
            reader, writer = await asyncio.open_unix_connection(str(where), limit=_MAX_LINE)
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", int(where), limit=_MAX_LINE)
        try:
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    if not line:
        raise RuntimeError("the simulator closed the control connection")
    answer = json.loads(line)
    if not answer.get("ok"):
        raise RuntimeError(str(answer.get("error")))
    return answer.get("result")
