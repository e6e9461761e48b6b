"""What the parts of the simulated module share: its state and the calls between parts.

:class:`~modem.sim.core.SimModem` is assembled from one part per spec area
(the line discipline, V.250, TS 27.007, TS 27.005, text mode, the network
side, faults), each a mixin over :class:`ModemBase`. The state that is
clearly separable lives in components that own it (:class:`~.card.SimCard`,
:class:`~.network.Network`, :class:`~.faults.Faults`); the settings of the
TA that several parts read (+CMGF, +CNMI, S3/S4, ...) are attributes
declared here. A part calls the parts it builds on (:class:`~.v250.V250`,
:class:`~.textmode.TextMode`) directly and any other only through the
stubs declared below, each implemented by exactly one part (the MRO puts
the parts before this class, so a stub here is never reached).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .card import SimCard
    from .faults import Faults
    from .line import _Prompt
    from .network import Network
    from .profiles import Profile
    from .storage import Storage
    from .v250 import _ErrorResult


@dataclass
class SimTiming:
    """Every delay of the simulator, in seconds (short defaults suit tests)."""

    #: Power-on / reset until the start-up lines and the module answers.
    boot_delay: float = 0.05
    #: TS 27.005 §3.4.1: the network's wait for +CNMA (TS 24.011 TR2M, ~12-20 s).
    cnma_timeout: float = 15.0
    #: MO message accepted -> SMS-STATUS-REPORT arrives.
    status_report_delay: float = 0.02
    #: A refused / unacknowledged MT message -> the network tries again.
    network_retry_delay: float = 0.1
    #: Default down time of the "disconnect" fault before the port comes back.
    reconnect_delay: float = 0.2
    #: Registration after boot / "register".
    registration_delay: float = 0.0


class SimPort(Protocol):
    """Where the module's output goes (an endpoint or the in-process transport)."""

    def sim_output(self, data: bytes) -> None:
        """Bytes from the module to the DTE."""

    def sim_hangup(self) -> None:
        """The port was closed by the module side (disconnect fault)."""


class ModemBase:
    """State and cross-part calls of the simulated module (see the module docstring)."""

    profile: Profile
    timing: SimTiming
    _timers: set[asyncio.TimerHandle]
    _stores: dict[str, Storage]
    faults: Faults
    _ports: list[SimPort]
    #: "cmd", "prompt", "busy", "boot" or "hung".
    _state: str
    _busy_handle: asyncio.TimerHandle | None
    connectable: bool
    _reconnect_listeners: list[Callable[[], None]]
    #: The answer being built for the current command line (V.250 §5.7).
    _resp: list[bytes]
    #: The prompt is open for this command's text (TS 27.005 §3.5.1).
    _prompt: _Prompt | None
    #: What runs right after the answer is sent (a reboot, the SIM's start-up URCs).
    _after_commit: Callable[[], None] | None
    #: Counts boots, so that a timer of an earlier boot is ignored.
    _boot_gen: int
    #: The module is registered (TS 27.007 §7.2 <stat> 1 or 5).
    _registered: bool
    card: SimCard
    network: Network
    # TS 27.007 settings.
    cfun: int
    cops_mode: int
    creg_n: int
    cgreg_n: int
    cereg_n: int
    cscs: str
    #: The module's +CCLK time zone, in quarter hours (TS 27.007 §8.15).
    clock_tz_quarters: int
    #: What +CCLK=<time> set: the module's clock minus the simulator's.
    _cclk_skew: timedelta
    # V.250 settings (§6.2: E, V, Q; S3, S4, S5).
    echo: bool
    verbose: bool
    quiet: bool
    s3: int
    s4: int
    s5: int
    #: +CMEE (TS 27.007 §9.1): 0 ERROR, 1 numeric, 2 verbose.
    cmee: int
    # TS 27.005 settings that several parts read.
    #: +CNMI <mode>,<mt>,<bm>,<ds>,<bfr> (§3.4.1).
    cnmi: list[int]
    cmgf: int
    cpms: list[str]
    smsc: str

    # -------------------------------------------------------------- timers
    def _later(self, delay: float, fn: Callable[[], None]) -> None:
        """``fn()`` after ``delay`` seconds on the running loop (at once without one)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            fn()  # no loop (plain synchronous use): happen now
            return
        handle: asyncio.TimerHandle

        def run() -> None:
            self._timers.discard(handle)
            fn()

        handle = loop.call_later(max(0.0, delay), run)
        self._timers.add(handle)

    # ------------------------------------------ calls between parts (stubs)
    # Implemented by the module (core.py).
    def _reboot(self) -> None:
        """Reset and boot again."""
        raise NotImplementedError

    def _reset_settings(self) -> None:
        """The settings ATZ / AT&F restore (V.250 §6.1.1, §6.1.2)."""
        raise NotImplementedError

    # Implemented by the line discipline (line.py).
    def _write(self, data: bytes) -> None:
        """Bytes to every attached port."""
        raise NotImplementedError

    def _urc(self, line: bytes, *, sms: bool = False) -> bool:
        """An unsolicited line, now or when the link is free."""
        raise NotImplementedError

    def _commit(self, next_state: str = "cmd") -> None:
        """Send the answer built in ``_resp`` and go to ``next_state``."""
        raise NotImplementedError

    def _release_ta_buffer(self, *, flush: bool) -> None:
        """+CNMI left <mode> 0: flush or clear the TA buffer."""
        raise NotImplementedError

    def _urc_inside_answer(self, names: list[str]) -> None:
        """The "urc-in-answer" fault: a pending line goes before the answer."""
        raise NotImplementedError

    # Implemented by TS 27.007 (ts27007.py).
    def _sim_error(self, name: str) -> _ErrorResult | None:
        """Why a SIM-dependent command cannot run now (TS 27.007 §8.3, §9.2.1)."""
        raise NotImplementedError

    # Implemented by TS 27.005 (ts27005.py).
    def _run_prompt(self, pr: _Prompt) -> None:
        """Answer the text given at the prompt."""
        raise NotImplementedError

    def _mem(self, i: int) -> Storage:
        """The storage of +CPMS <mem1..3> (``i`` 0-2; TS 27.005 §3.2.2)."""
        raise NotImplementedError

    # Implemented by the network side (network.py).
    def now(self) -> datetime:
        """The simulator's clock (UTC, whole seconds)."""
        raise NotImplementedError

    def _now(self) -> datetime:
        """The simulator's clock (UTC, whole seconds)."""
        raise NotImplementedError

    def set_registered(self, registered: bool, *, roaming: bool = False) -> None:
        """Coverage lost or back."""
        raise NotImplementedError

    def _update_registration(self) -> None:
        """Register or deregister as coverage, SIM and settings allow."""
        raise NotImplementedError

    def _reg_stat(self) -> int:
        """The <stat> of +CREG (TS 27.007 §7.2)."""
        raise NotImplementedError

    def _loc_suffix(self) -> str:
        """The <lac>,<ci>,<AcT> of +CREG n=2."""
        raise NotImplementedError

    def _network_send(self, pdu: bytes) -> int:
        """The network takes an SMS-SUBMIT; its TP-MR."""
        raise NotImplementedError

    def _acknowledge(self, n: int, report: bytes | None) -> None:
        """+CNMA <n> for the oldest unacknowledged +CMT/+CDS."""
        raise NotImplementedError

    def _schedule_retry(self) -> None:
        """The network tries again soon to deliver what it holds."""
        raise NotImplementedError

    # Implemented by faults (faults.py).
    def _pdu_line(self, text: str) -> str:
        """A PDU line about to be printed, damaged if a fault asks."""
        raise NotImplementedError
