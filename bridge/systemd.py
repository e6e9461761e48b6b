"""Talking to systemd from the process itself: sd_notify and the watchdog.

The protocol (sd_notify(3), NOTES; part of systemd's interface stability
promise) is one ``AF_UNIX`` ``SOCK_DGRAM`` datagram per notification, sent to
the socket named by ``$NOTIFY_SOCKET``: a file system path, or, when the value
starts with ``@``, a name in Linux's abstract namespace (the ``@`` stands for
the leading NUL byte). The payload is newline-separated ``NAME=value``
assignments. The receiver sets ``SO_PASSCRED`` on its socket, so the kernel
attaches our PID, UID and GID (``SCM_CREDENTIALS``) to every datagram without
us sending them: that is what ``NotifyAccess=main`` (systemd.service(5))
checks. Explicit credentials are only needed to speak for another process
(``sd_pid_notify``), which this bridge never does.

Why our own function rather than a package: the protocol is one datagram.
The bindings (``systemd-python``, ``cysystemd``) are C or Cython extensions
that cannot load from the zipapp. Of the pure-Python ones, ``sdnotify`` has
had no release since 2017, ``systemd-watchdog`` is synchronous and leaves the
timer and the health gating -- most of the work here -- to the caller, and
``systemd-watchdog-thread`` pings from a thread, which keeps pinging while the
event loop is stuck: the one fault the watchdog exists to catch. See
``docs/install.md``.

Assignments used (systemd.service(5) ``Type=notify``, sd_notify(3)):

``READY=1``
    start-up finished; systemd holds ``systemctl start`` and ordered units
    until it arrives (``TimeoutStartSec=``). The service sends it only after
    the journal has recovered and the module answered its initialisation.
``STATUS=...``
    one free-form line shown by ``systemctl status``.
``STOPPING=1``
    shutdown has begun (``TimeoutStopSec=`` runs).
``WATCHDOG=1``
    keep-alive; without one within ``WATCHDOG_USEC`` systemd treats the
    service as hung (``WatchdogSec=``; with ``Restart=on-failure`` it is
    killed with ``SIGABRT`` and restarted).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

__all__ = [
    "HealthCheck",
    "Watchdog",
    "WatchdogStats",
    "notify",
    "ready",
    "status",
    "stopping",
    "watchdog_usec",
]

#: ``sd_watchdog_enabled(3)``: ping at half of ``WATCHDOG_USEC``, so one late
#: ping still arrives in time.
PING_FRACTION = 0.5

#: The health check of one round must answer within this share of the ping
#: interval, so a ping that follows a slow but healthy check still lands well
#: inside ``WATCHDOG_USEC`` (interval + bound <= 0.75 * ``WATCHDOG_USEC``).
HEALTH_TIMEOUT_FRACTION = 0.5

#: ``STATUS=`` is one line for ``systemctl status``; longer text is cut.
STATUS_MAX_CHARS = 200

#: An async health check: True means healthy. False, an exception or no
#: answer within the bound all mean "do not ping this round".
HealthCheck = Callable[[], Awaitable[bool]]


def _socket_address(value: str) -> str | bytes | None:
    """The ``sendto`` address for a ``$NOTIFY_SOCKET`` value (sd_notify(3)).

    ``/path`` is a file system socket, ``@name`` an abstract one (NUL byte
    first). Anything else (``vsock:`` addresses of VM guests) is not ours to
    reach: None.
    """
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return b"\0" + os.fsencode(value[1:])
    return None


def notify(*fields: str) -> bool:
    """Send ``fields`` (``NAME=value`` each) to systemd in one datagram.

    sd_notify(3): the assignments are joined by newlines and sent to
    ``$NOTIFY_SOCKET``. Returns True when the datagram was sent, False when
    there is no service manager to tell (no ``$NOTIFY_SOCKET``, or an address
    family we do not speak) or the send failed (logged: the service goes on,
    systemd then sees it as it would without notifications).

    Raises ValueError for a field that is not one ``NAME=value`` line: a
    newline would smuggle in another assignment (our misuse, not the
    manager's).
    """
    if not fields:
        raise ValueError("notify() needs at least one NAME=value field")
    for field in fields:
        name, eq, _ = field.partition("=")
        if not eq or not name or "\n" in field or "\0" in field:
            raise ValueError(f"not a single NAME=value line: {field!r}")
    value = os.environ.get("NOTIFY_SOCKET", "")
    if not value:
        return False
    address = _socket_address(value)
    if address is None:
        log.warning("NOTIFY_SOCKET=%s: unsupported address, not notifying", value)
        return False
    payload = "\n".join(fields).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            # Never block the event loop on a full manager queue (systemd's
            # receive buffer is 8 MiB: full only when PID 1 is wedged).
            sock.sendto(payload, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL, address)
    except OSError as exc:
        log.warning("sd_notify to %s failed: %s", value, exc)
        return False
    return True


def ready() -> bool:
    """``READY=1``: start-up is finished (systemd.service(5), ``Type=notify``)."""
    return notify("READY=1")


def status(line: str) -> bool:
    """``STATUS=line``: a short human line for ``systemctl status`` (sd_notify(3)).

    Line breaks become spaces and the line is cut at :data:`STATUS_MAX_CHARS`,
    so a status built from module or network text can never carry another
    assignment.
    """
    one_line = " ".join(line.replace("\0", " ").splitlines())
    return notify("STATUS=" + one_line[:STATUS_MAX_CHARS])


def stopping() -> bool:
    """``STOPPING=1``: shutdown has begun (sd_notify(3))."""
    return notify("STOPPING=1")


def watchdog_usec() -> int | None:
    """The watchdog timeout systemd asks of this process, in microseconds.

    sd_watchdog_enabled(3): ``$WATCHDOG_USEC`` is set when the unit has
    ``WatchdogSec=``; when ``$WATCHDOG_PID`` is set too, the request is for
    that process only (a child that inherited the environment must not ping
    for its parent). None when there is no watchdog for us, or either value
    is not a positive decimal number (logged).
    """
    raw = os.environ.get("WATCHDOG_USEC", "")
    if not raw:
        return None
    pid = os.environ.get("WATCHDOG_PID", "")
    if pid:
        if _decimal(pid, 2**63 - 1) is None:
            log.warning("WATCHDOG_PID=%r is not a PID: watchdog off", pid[:40])
            return None
        if int(pid) != os.getpid():
            return None
    usec = _decimal(raw, USEC_INFINITY - 1)
    if usec is None:
        log.warning("WATCHDOG_USEC=%r is not a positive number: watchdog off", raw[:40])
        return None
    return usec


#: systemd's usec_t is 64-bit; all ones means "infinity" (no timeout).
USEC_INFINITY = 2**64 - 1


def _decimal(text: str, most: int) -> int | None:
    """``text`` as a number 1..``most`` written in ASCII digits, else None
    (``str.isdecimal`` takes other scripts' digits, and ``int()`` refuses
    more than 4300 digits with ValueError)."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(most)):
        return None
    n = int(text)
    return n if 0 < n <= most else None


@dataclass
class WatchdogStats:
    """What the watchdog did, for ``sms-bridge status`` and the logs."""

    pings: int = 0
    withheld: int = 0
    last_failure: str | None = None


class Watchdog:
    """Pings ``WATCHDOG=1`` at half of ``WATCHDOG_USEC`` while the bridge is healthy.

    systemd.service(5) ``WatchdogSec=``: a service that does not ping within
    the timeout is considered hung and, with ``Restart=on-failure``,
    restarted. So a ping here means exactly two things:

    * the event loop turns: the ping is sent by a task on the loop itself
      (no thread), so a blocked or hung loop sends none;
    * the injected ``health`` check answered True within ``health_timeout``
      (the service passes "the journal accepts a write"). False, an
      exception or a check that hangs withholds the ping of that round.

    Health is the caller's definition: a module in recovery, an unplugged
    modem or a lost registration are the bridge's to handle and must not be
    part of the check, or systemd would restart a service that is doing its
    job.

    One timer per interval, on a fixed cadence from the start (a round that
    ran late does not make the next one early; missed rounds are skipped,
    never sent in a burst). :meth:`run` returns at once when systemd asked
    for no watchdog (see :func:`watchdog_usec`). systemd arms the watchdog
    once start-up is complete (systemd.service(5), ``WatchdogSec=``), so
    starting :meth:`run` before or after ``READY=1`` both work.
    """

    def __init__(
        self,
        health: HealthCheck | None = None,
        *,
        usec: int | None = None,
        health_timeout: float | None = None,
    ) -> None:
        """``usec`` defaults to :func:`watchdog_usec` (read now);
        ``health_timeout`` (seconds) to :data:`HEALTH_TIMEOUT_FRACTION` of
        the ping interval."""
        self._usec = watchdog_usec() if usec is None else usec
        if self._usec is not None and self._usec <= 0:
            raise ValueError(f"watchdog timeout must be positive, not {self._usec} us")
        self._health = health
        self.interval: float | None = (
            None if self._usec is None else self._usec * PING_FRACTION / 1e6
        )
        if health_timeout is not None and health_timeout <= 0:
            raise ValueError(f"health_timeout must be positive, not {health_timeout}")
        self.health_timeout: float | None = (
            health_timeout
            if health_timeout is not None or self.interval is None
            else self.interval * HEALTH_TIMEOUT_FRACTION
        )
        self.stats = WatchdogStats()

    @property
    def enabled(self) -> bool:
        """True when systemd asked this process for watchdog pings."""
        return self.interval is not None

    async def _healthy(self) -> bool:
        """One health check, bounded by :attr:`health_timeout`."""
        if self._health is None:
            return True
        try:
            async with asyncio.timeout(self.health_timeout):
                ok = await self._health()
        except TimeoutError:
            reason = f"health check gave no answer within {self.health_timeout:g} s"
        except Exception as exc:
            reason = f"health check raised {type(exc).__name__}: {exc}"
        else:
            if ok:
                return True
            reason = "health check failed"
        self.stats.withheld += 1
        if reason != self.stats.last_failure:
            log.error("watchdog ping withheld: %s", reason)
        self.stats.last_failure = reason
        return False

    async def run(self) -> None:
        """Ping until cancelled (run it in the service's TaskGroup)."""
        interval = self.interval
        if interval is None:
            return
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            if await self._healthy():
                if self.stats.last_failure is not None:
                    log.warning("watchdog pings resumed")
                    self.stats.last_failure = None
                if notify("WATCHDOG=1"):
                    self.stats.pings += 1
            due += interval
            now = loop.time()
            if due <= now:
                late = now - due
                skipped = int(late // interval) + 1
                log.warning("event loop %.3f s late: %d watchdog round(s) skipped", late, skipped)
                due += skipped * interval
            await asyncio.sleep(due - now)
