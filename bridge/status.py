"""Live state of the running service: the status socket, ``STATUS=``, the
Prometheus textfile, and the systemd notifications of ``sms-bridge run``.

What is sent when (sd_notify(3); :mod:`bridge.systemd`), by :class:`Runtime`:

* ``STATUS=starting: ...`` once the journal has recovered (the dispatcher and
  outbox ran their restart recovery inside :meth:`Service.start`);
* ``READY=1`` only after :meth:`Service.wait_ready`: every module answered
  its initialisation (or its SIM reported a problem a person must fix,
  shown in ``STATUS=``) and the boot message is queued;
* ``STATUS=<one line>`` (:func:`status_line`) whenever a registration
  changes or a counter moves (each Command handled), at most once per
  :data:`STATUS_MIN_INTERVAL`; nothing is sent while nothing changes;
* ``WATCHDOG=1`` from :class:`bridge.systemd.Watchdog` on the event loop,
  each round gated by :meth:`Service.heartbeat` (one FULL journal write);
  a module in recovery is not part of the check;
* ``STOPPING=1`` first thing on SIGTERM/SIGINT, before the service finishes
  or journals its in-flight work.

The status protocol (a local ``AF_UNIX`` stream socket, default
``/run/sms-bridge/status.sock``, mode 0660): the client sends one JSON
object on one line, at most :data:`MAX_REQUEST` bytes, ``{"get": "status"}``;
the service answers one JSON line, ``{"ok": true, "status": {...}}``
(:func:`snapshot`) or ``{"ok": false, "error": "..."}``, and closes. A client
has :data:`CLIENT_TIMEOUT` seconds to send its line and read the answer;
each connection is its own task, and beyond :data:`MAX_CLIENTS` at once a
connection is answered ``busy`` and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import math
import os
import re
import socket
import stat
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modem.errors import SimProblem

from . import systemd
from .journal import Journal, JournalError, Kind

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger("bridge.status")

#: Longest request line accepted (bytes, newline included).
MAX_REQUEST = 1024
#: Longest answer a client reads (bytes).
MAX_ANSWER = 1 << 20
#: Seconds a client has to send its request and take the answer.
CLIENT_TIMEOUT = 2.0
#: Connections served at once; more are answered ``busy``.
MAX_CLIENTS = 8
#: ``STATUS=`` is sent at most this often (seconds).
STATUS_MIN_INTERVAL = 1.0
#: Bound on the journal queries of one snapshot (seconds).
JOURNAL_QUERY_TIMEOUT = 2.0
#: The status socket's mode: the service user and its group (unit UMask is 0077).
SOCKET_MODE = 0o660


class StatusUnavailable(Exception):
    """``sms-bridge status`` got no answer: a one-line reason."""


# --- the figures ----------------------------------------------------------------------


def _journal_bytes(path: str) -> int:
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(OSError):
            total += os.stat(path + suffix).st_size
    return total


def _entry_brief(e: Any) -> dict[str, Any]:
    return {
        "id": e.id,
        "modem": e.modem,
        "state": e.state.value,
        "summary": e.summary,
        "at": e.updated,
    }


def _last(journal: Journal) -> tuple[dict[str, int], dict[str, Any] | None, dict[str, Any] | None]:
    counts = {s.value: n for s, n in journal.counts().items()}
    last_command = last_reply = None
    for e in journal.list_entries(limit=50):
        if last_command is None and e.kind is Kind.COMMAND:
            last_command = _entry_brief(e)
        if last_reply is None and e.tp_mr is not None:
            last_reply = {**_entry_brief(e), "tp_mr": e.tp_mr}
        if last_command is not None and last_reply is not None:
            break
    return counts, last_command, last_reply


async def snapshot(svc: Service, watchdog: systemd.Watchdog | None = None) -> dict[str, Any]:
    """Everything ``sms-bridge status`` shows: :meth:`Service.status` plus the
    outbox queue per module, the journal (bytes, entries per state), the last
    Command and the last reply sent (no bodies), and the watchdog's counts.
    A journal that does not answer within :data:`JOURNAL_QUERY_TIMEOUT` gives
    ``journal_error`` instead of its figures."""
    data = svc.status()
    data["queues"] = svc.queue_depths()
    data["journal_bytes"] = _journal_bytes(svc.config.bridge.journal)
    data["entries"] = None
    data["last_command"] = data["last_reply"] = None
    data["journal_error"] = None
    if svc.worker is not None and not svc.worker.closed:
        try:
            async with asyncio.timeout(JOURNAL_QUERY_TIMEOUT):
                counts, cmd, reply = await svc.worker.call(_last)
            data["entries"], data["last_command"], data["last_reply"] = counts, cmd, reply
        except (JournalError, TimeoutError) as exc:
            data["journal_error"] = f"{type(exc).__name__}: {exc}"
    if watchdog is not None and watchdog.enabled:
        st = watchdog.stats
        data["watchdog"] = {
            "interval_s": watchdog.interval,
            "pings": st.pings,
            "withheld": st.withheld,
            "last_failure": st.last_failure,
        }
    else:
        data["watchdog"] = None
    return data


def _modem_brief(name: str, m: Mapping[str, Any]) -> str:
    if m.get("failure"):
        return f"{name} failed"
    if m.get("sim_problem"):
        return f"{name} SIM {m['sim_problem']}"
    if not m.get("ready"):
        return f"{name} initialising"
    text = f"{name} {m.get('registration') or 'not registered'}"
    if m.get("signal_dbm") is not None:
        text += f" {m['signal_dbm']} dBm"
    return text


def status_line(data: Mapping[str, Any]) -> str:
    """The ``STATUS=`` line: module, registration, signal, counters."""
    c = data.get("counters", {})
    modems = ", ".join(_modem_brief(n, m) for n, m in data.get("modems", {}).items())
    return (
        f"{modems}; {c.get('received', 0)} received, {c.get('executed', 0)} executed, "
        f"{c.get('sent', 0)} replies sent, {c.get('rejected', 0)} rejected"
    )


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def human(data: Mapping[str, Any]) -> str:
    """The default output of ``sms-bridge status``.

    :class:`StatusUnavailable` when ``data`` (the service's answer, parsed
    JSON) does not have the shape :func:`snapshot` gives: another version's
    or another program's answer is one line, never a traceback."""
    try:
        return _human(data)
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise StatusUnavailable(
            f"the answer is not a status this sms-bridge reads ({type(exc).__name__}: {exc})"
        ) from None


def _human(data: Mapping[str, Any]) -> str:
    lines = [
        f"sms-bridge {data.get('version')} {data.get('state')}, up {data.get('uptime_s')} s, "
        f"device {data.get('device_id') or '?'}" + ("" if data.get("signed") else " (no key)")
    ]
    queues = data.get("queues") or {}
    for name, m in (data.get("modems") or {}).items():
        sig = m.get("signal_dbm")
        lines.append(
            f"  {name} ({m.get('port')}): {'ready' if m.get('ready') else 'not ready'}, "
            f"registration {m.get('registration') or '-'}, "
            f"signal {'-' if sig is None else f'{sig} dBm'}, outbox {queues.get(name, 0)}"
            + (f", SIM {m['sim_problem']}" if m.get("sim_problem") else "")
            + (f", failed: {m['failure']}" if m.get("failure") else "")
        )
    for key, label in (("last_command", "last Command"), ("last_reply", "last reply")):
        e = data.get(key)
        if e is None:
            lines.append(f"  {label}: none")
        else:
            what = f" {e['summary']}" if e.get("summary") else ""
            lines.append(
                f"  {label}: #{e['id']}{what} on {e['modem']}, {e['state']}, {_when(e.get('at'))}"
            )
    counters = data.get("counters") or {}
    lines.append("  counters: " + (", ".join(f"{k} {v}" for k, v in counters.items()) or "none"))
    entries = data.get("entries")
    journal = f"  journal: {data.get('journal')}, {data.get('journal_bytes')} bytes"
    if entries:
        journal += ", " + ", ".join(f"{k} {v}" for k, v in entries.items())
    if data.get("journal_error"):
        journal += f", error: {data['journal_error']}"
    lines.append(journal)
    wd = data.get("watchdog")
    if wd:
        lines.append(
            f"  watchdog: every {wd['interval_s']:g} s, {wd['pings']} pings, "
            f"{wd['withheld']} withheld"
        )
    return "\n".join(lines)


# --- Prometheus text format -----------------------------------------------------------


_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def _label(value: str) -> str:
    """A label value in the text exposition format: backslash, quote and
    newline escaped (the format's only escapes); other control characters
    (a carriage return would split the line for many readers) become U+FFFD."""
    value = _CONTROL.sub("\ufffd", value)
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


#: name -> (type, help); every metric this module writes.
METRICS: dict[str, tuple[str, str]] = {
    "sms_bridge_up": ("gauge", "1 while the bridge service is running."),
    "sms_bridge_uptime_seconds": ("gauge", "Seconds since the service started."),
    "sms_bridge_modem_ready": ("gauge", "1 when the module answered its initialisation."),
    "sms_bridge_modem_registered": ("gauge", "1 when the module is registered (TS 27.007 7.2)."),
    "sms_bridge_modem_signal_dbm": ("gauge", "Received signal strength of +CSQ in dBm."),
    "sms_bridge_outbox_queue": ("gauge", "Replies waiting in the outbox, per module."),
    "sms_bridge_events_total": ("counter", "Bridge events since the start, by event."),
    "sms_bridge_journal_bytes": ("gauge", "Size of the journal file and its WAL in bytes."),
    "sms_bridge_journal_entries": ("gauge", "Journal entries per state."),
    "sms_bridge_watchdog_pings_total": ("counter", "WATCHDOG=1 pings sent to systemd."),
    "sms_bridge_watchdog_withheld_total": ("counter", "Watchdog pings withheld (unhealthy)."),
}


def prometheus_text(data: Mapping[str, Any]) -> str:
    """The figures of :func:`snapshot` in the Prometheus text exposition
    format (version 0.0.4): one HELP and one TYPE line per metric family,
    then its samples; module figures labelled ``modem``."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {name: [] for name in METRICS}
    samples["sms_bridge_up"].append(({}, data.get("state") == "running"))
    samples["sms_bridge_uptime_seconds"].append(({}, float(data.get("uptime_s") or 0.0)))
    queues = data.get("queues") or {}
    for name, m in (data.get("modems") or {}).items():
        lab = {"modem": name}
        samples["sms_bridge_modem_ready"].append((lab, bool(m.get("ready"))))
        samples["sms_bridge_modem_registered"].append((lab, bool(m.get("registered"))))
        if m.get("signal_dbm") is not None:
            samples["sms_bridge_modem_signal_dbm"].append((lab, int(m["signal_dbm"])))
        samples["sms_bridge_outbox_queue"].append((lab, int(queues.get(name, 0))))
    for event, n in (data.get("counters") or {}).items():
        samples["sms_bridge_events_total"].append(({"event": event}, int(n)))
    samples["sms_bridge_journal_bytes"].append(({}, int(data.get("journal_bytes") or 0)))
    for state, n in (data.get("entries") or {}).items():
        samples["sms_bridge_journal_entries"].append(({"state": state}, int(n)))
    wd = data.get("watchdog")
    if wd:
        samples["sms_bridge_watchdog_pings_total"].append(({}, int(wd["pings"])))
        samples["sms_bridge_watchdog_withheld_total"].append(({}, int(wd["withheld"])))
    out: list[str] = []
    for name, (kind, help_text) in METRICS.items():
        if not samples[name]:
            continue
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples[name]:
            lab_text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            out.append(
                f"{name}{{{lab_text}}} {_number(value)}" if lab_text else f"{name} {_number(value)}"
            )
    return "\n".join(out) + "\n"


def write_textfile(path: str | Path, text: str) -> None:
    """Write ``text`` atomically for node_exporter's textfile collector: a
    temporary file in the same directory (mode 0644, so the exporter can read
    it despite the unit's UMask), then ``rename(2)`` over ``path``; a reader
    sees the old file or the new one, never a part."""
    import tempfile  # noqa: PLC0415  (here: it brings shutil, bz2, lzma; only a textfile needs it)

    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix="." + target.name + ".", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --- the status socket ----------------------------------------------------------------


def _answers(path: Path) -> bool:
    """True when something listens on the socket at ``path`` (a UNIX stream
    connect succeeds or fails at once: ``ECONNREFUSED`` when nobody listens)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(CLIENT_TIMEOUT)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


class StatusServer:
    """The service's end of the status socket (module doc, "status protocol")."""

    def __init__(
        self,
        path: str | Path,
        answer: Any,
        *,
        max_clients: int = MAX_CLIENTS,
        timeout: float = CLIENT_TIMEOUT,
    ) -> None:
        """``answer`` is an async callable returning the status mapping."""
        self.path = Path(path)
        self._answer = answer
        self._max = max_clients
        self._timeout = timeout
        self._active = 0
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[Any]] = set()
        self.refused = 0

    async def start(self) -> None:
        """Bind (replacing a stale socket file, never a live one or another
        kind of file: OSError), chmod 0660."""
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(self.path.lstat().st_mode):
                if _answers(self.path):
                    raise OSError(errno.EADDRINUSE, "another sms-bridge answers there")
                self.path.unlink()  # stale: left by a service that was killed
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=MAX_REQUEST
        )
        os.chmod(self.path, SOCKET_MODE)  # the unit's UMask=0077 would leave 0600

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        conns = list(self._conns)
        for t in conns:
            t.cancel()
        for t in conns:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self._server.wait_closed()
        self._server = None

    async def _reply(self, writer: asyncio.StreamWriter, doc: Mapping[str, Any]) -> None:
        writer.write(json.dumps(doc, sort_keys=True).encode() + b"\n")
        await writer.drain()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
            task.add_done_callback(self._conns.discard)
        try:
            await self._handle(reader, writer)
        except asyncio.CancelledError:
            # only close() cancels a connection; ending normally keeps
            # asyncio's stream callback from logging the cancelled task
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self._active >= self._max:
                self.refused += 1
                with contextlib.suppress(OSError, TimeoutError, ValueError, EOFError):
                    async with asyncio.timeout(self._timeout):
                        # take the request line first: closing on unread data
                        # resets the connection and the client would not see why
                        with contextlib.suppress(asyncio.IncompleteReadError):
                            await reader.readuntil(b"\n")
                        await self._reply(writer, {"ok": False, "error": "busy"})
                return
            self._active += 1
            try:
                async with asyncio.timeout(self._timeout):
                    await self._one(reader, writer)
            except (OSError, TimeoutError):
                pass  # a slow or vanished client: nothing to answer
            finally:
                self._active -= 1
        finally:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(self._timeout):
                    await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            await self._reply(writer, {"ok": False, "error": f"request over {MAX_REQUEST} bytes"})
            return
        except asyncio.IncompleteReadError:
            await self._reply(writer, {"ok": False, "error": "request without a newline"})
            return
        try:
            req = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." within the limit
            await self._reply(writer, {"ok": False, "error": "request is not JSON"})
            return
        if not isinstance(req, dict) or req.get("get") != "status":
            await self._reply(
                writer, {"ok": False, "error": 'unknown request: want {"get": "status"}'}
            )
            return
        await self._reply(writer, {"ok": True, "status": await self._answer()})


def _not_a_socket(path: str) -> str | None:
    """What ``path`` is when it is there but not a socket (``connect(2)``
    says ECONNREFUSED for a regular file too); None for a socket or nothing."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISSOCK(mode):
        return None
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "another kind of file"


def query(path: str | Path, timeout: float = 5.0) -> dict[str, Any]:
    """The client: ask the service at ``path`` for its status (blocking).
    :class:`StatusUnavailable` with a one-line reason when it cannot."""
    where = str(path)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(where)
            sock.sendall(b'{"get": "status"}\n')
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
                if len(data) > MAX_ANSWER:
                    raise StatusUnavailable(f"{where}: answer over {MAX_ANSWER} bytes")
    except FileNotFoundError:
        raise StatusUnavailable(f"{where}: no status socket: is sms-bridge running?") from None
    except ConnectionRefusedError:
        kind = _not_a_socket(where)
        if kind is not None:
            raise StatusUnavailable(f"{where}: not a socket ({kind}): is the path right?") from None
        raise StatusUnavailable(
            f"{where}: connection refused: sms-bridge is not running (stale socket)"
        ) from None
    except PermissionError:
        raise StatusUnavailable(
            f"{where}: permission denied (run as the service user or a member of its group)"
        ) from None
    except TimeoutError:
        raise StatusUnavailable(f"{where}: no answer within {timeout:g} s") from None
    except OSError as exc:
        raise StatusUnavailable(f"{where}: {exc.strerror or exc}") from None
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise StatusUnavailable(f"{where}: the answer is not JSON") from None
    if not isinstance(doc, dict) or not doc.get("ok") or not isinstance(doc.get("status"), dict):
        err = doc.get("error") if isinstance(doc, dict) else None
        raise StatusUnavailable(f"{where}: the service refused: {err or 'bad answer'}")
    status: dict[str, Any] = doc["status"]
    return status


# --- the run-time side of `sms-bridge run` -------------------------------------------


class Runtime:
    """The notifications, the watchdog, the status socket and the textfile of
    a started :class:`Service` (module doc, "what is sent when")."""

    def __init__(self, svc: Service, *, watchdog: systemd.Watchdog | None = None) -> None:
        self.svc = svc
        self.watchdog = watchdog if watchdog is not None else systemd.Watchdog(svc.heartbeat)
        self.server: StatusServer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def answer(self) -> dict[str, Any]:
        return await snapshot(self.svc, self.watchdog)

    async def start(self) -> None:
        """After :meth:`Service.start` (the journal recovered): the watchdog,
        the status socket, the textfile; ``STATUS=starting``."""
        cfg = self.svc.config.status
        self._tasks.append(asyncio.create_task(self.watchdog.run(), name="watchdog"))
        if cfg.socket:
            server = StatusServer(cfg.socket, self.answer)
            try:
                await server.start()
                self.server = server
            except OSError as exc:
                log.warning(
                    "status socket %s: %s: `sms-bridge status` unavailable",
                    cfg.socket,
                    exc.strerror or exc,
                )
        if cfg.prometheus_textfile:
            self._tasks.append(asyncio.create_task(self._textfile(), name="prometheus"))
        systemd.status("starting: journal recovered, waiting for the module(s)")

    async def ready(self) -> None:
        """Wait for :meth:`Service.wait_ready`, then ``READY=1`` and the
        ``STATUS=`` follower."""
        try:
            await self.svc.wait_ready()
        except SimProblem as exc:
            log.error("a SIM needs a person (%s): ready without it", exc.kind)
        systemd.status(status_line(self.svc.status()))
        systemd.ready()
        self._tasks.append(asyncio.create_task(self._follow(), name="status-line"))

    async def _follow(self) -> None:
        last = status_line(self.svc.status())
        while True:
            await self.svc.changed.wait()
            self.svc.changed.clear()
            line = status_line(self.svc.status())
            if line != last:
                systemd.status(line)
                last = line
            await asyncio.sleep(STATUS_MIN_INTERVAL)  # changes meanwhile: one line after

    async def _textfile(self) -> None:
        cfg = self.svc.config.status
        failing = False
        while True:
            try:
                text = prometheus_text(await self.answer())
                await asyncio.to_thread(write_textfile, cfg.prometheus_textfile, text)
                failing = False
            except OSError as exc:
                if not failing:
                    log.warning("prometheus textfile %s: %s", cfg.prometheus_textfile, exc)
                failing = True
            await asyncio.sleep(cfg.prometheus_every)

    async def close(self) -> None:
        """Stop the tasks and the socket (after :meth:`Service.stop`)."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        if self.server is not None:
            await self.server.close()


__all__ = [
    "METRICS",
    "Runtime",
    "StatusServer",
    "StatusUnavailable",
    "human",
    "prometheus_text",
    "query",
    "snapshot",
    "status_line",
    "write_textfile",
]
