"""The simulated module: a V.250 / TS 27.007 / TS 27.005 peer with a network behind it.

Sans-I/O-ish: :meth:`SimModem.receive` takes the bytes a DTE wrote; every byte
the module sends goes to the attached ports (:class:`SimPort`), which are the
in-process transport, the pty and the TCP endpoints. Timers (answer delays,
the +CNMA timeout, boot, reconnect) use the running asyncio loop.

:class:`SimModem` is assembled here from one part per thing it models, each
in its own module (docs/simulator.md, "Architecture"):

* :mod:`.line`: the line discipline (V.250 §5: bytes, echo, the command-line
  state machine, the ``> `` prompt bytes, URCs held while a line is answered,
  answer pacing);
* :mod:`.v250`: V.250 basic commands, S-parameters, result codes and errors
  per +CMEE, and the dispatcher over :mod:`.registry`, where every handler
  registers itself with ``@handler``;
* :mod:`.ts27007`: TS 27.007 commands (identity, +CPIN with the
  :class:`~.card.SimCard`, +CSQ, registration queries, +COPS, +CFUN, +CCLK,
  +CMEE);
* :mod:`.ts27005`: TS 27.005 commands (settings, storage, sending, +CNMA);
* :mod:`.textmode`: text mode (+CSCS, text views of messages, text sends);
* :mod:`.network`: the network side (:class:`~.network.Network`: MT arrival,
  storage or direct routing, acks and retries, the MO log, status reports,
  registration, the clock);
* :mod:`.faults`: faults (:data:`FAULTS`, the :class:`~.faults.Faults` in
  force, :meth:`~.faults.FaultInjection.fault`).

This module holds what spans them: construction, power-up, reboot, ATZ/&F
and switching off. Every name that was importable from here still is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from .base import SimPort, SimTiming
from .card import PIN_ATTEMPTS, PUK_ATTEMPTS, SimCard  # noqa: F401  (also from here)
from .faults import (
    DAMAGE_MODES,
    FAULTS,
    FaultArg,
    FaultInjection,
    Faults,
    FaultSpec,
    check_fault,
    damage_pdu_line,
    fault_help,
)
from .line import CTRL_Z, ESC, LineDiscipline, _Prompt  # noqa: F401  (also from here)
from .network import MoRecord, MtAck, Network, NetworkMessage, NetworkSide
from .profiles import PROFILES, Profile
from .storage import Storage, UnionStorage
from .ts27005 import Ts27005Commands
from .ts27007 import (
    Ts27007Commands,
    _parse_cclk,  # noqa: F401  (imported from modem.sim.core)
)

__all__ = [
    "DAMAGE_MODES",
    "FAULTS",
    "FaultArg",
    "FaultSpec",
    "MoRecord",
    "MtAck",
    "NetworkMessage",
    "SimModem",
    "SimPort",
    "SimTiming",
    "check_fault",
    "damage_pdu_line",
    "fault_help",
]


class SimModem(LineDiscipline, Ts27005Commands, Ts27007Commands, NetworkSide, FaultInjection):
    """A simulated cellular module (see the module docstring).

    The parts are mixins over :class:`~.base.ModemBase`; the state that is
    clearly separable lives in components: :attr:`card` (the SIM),
    :attr:`network` (the network side), :attr:`faults` (faults in force).
    """

    def __init__(
        self,
        profile: str | Profile = "generic",
        *,
        pin: str | None = None,
        puk: str = "12345678",
        sim_inserted: bool = True,
        sim_busy_time: float = 0.0,
        seed: int = 0,
        timing: SimTiming | None = None,
    ) -> None:
        if isinstance(profile, Profile):
            self.profile: Profile = profile
        elif profile in PROFILES:
            self.profile = PROFILES[profile]
        else:
            raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
        if any(m not in ("SM", "ME", "MT") for m in self.profile.cpms_default):
            raise ValueError(f"cpms_default names SM, ME or MT: {self.profile.cpms_default!r}")
        #: The SIM card (its PIN, PUK and retry counters survive reboots).
        self.card = SimCard(pin, puk, inserted=sim_inserted, busy_time=sim_busy_time)
        self.timing = timing or SimTiming()
        self.faults = Faults(seed)
        self._ports: list[SimPort] = []
        self._reconnect_listeners: list[Callable[[], None]] = []
        self.connectable = True
        p = self.profile
        sm = Storage("SM", p.sm_capacity, p.index_base, cyclic=p.indexes_never_reused)
        me = Storage("ME", p.me_capacity, p.index_base, cyclic=p.indexes_never_reused)
        self._stores: dict[str, Storage] = {"SM": sm, "ME": me, "MT": UnionStorage(sm, me)}
        self.smsc = p.smsc
        #: The network behind the module (what it holds, logs and acknowledges).
        self.network = Network(seed)
        #: The module's +CCLK time zone, in quarter hours (TS 27.007 §8.15).
        self.clock_tz_quarters = 0
        #: What +CCLK=<time> set: the module's clock minus the simulator's.
        self._cclk_skew = timedelta(0)
        # Timers.
        self._timers: set[asyncio.TimerHandle] = set()
        self._busy_handle: asyncio.TimerHandle | None = None
        self._reset_volatile()
        self._state = "cmd"
        self._registered = self.card.pin_ok and sim_inserted and sim_busy_time == 0
        self._last_line = ""
        #: A command line (or prompt text) is being answered: URCs wait for its end.
        self._answering = False
        self._after_commit: Callable[[], None] | None = None
        #: Counts boots, so that a SIM-initialisation timer of an earlier boot is ignored.
        self._boot_gen = 0
        if sim_busy_time > 0 and sim_inserted:
            self._start_sim_init()

    # ---------------------------------------------------------------- power
    def close(self) -> None:
        """Cancel every timer (the module is switched off for good)."""
        for h in list(self._timers):
            h.cancel()
        self._timers.clear()
        if self._busy_handle is not None:
            self._busy_handle.cancel()
            self._busy_handle = None
        for _, h2 in self.network.acks:
            if h2 is not None:
                h2.cancel()
        self.network.acks.clear()

    # ------------------------------------------------------ settings, power
    def _reset_settings(self) -> None:
        """The settings ATZ / AT&F restore (V.250 §6.1.1, §6.1.2)."""
        p = self.profile
        self.echo, self.verbose, self.quiet = not p.echo_fixed_off, True, False
        self.s3, self.s4, self.s5 = 13, 10, 8
        self.cmee = p.cmee_default
        self.cmgf, self.cscs, self.csdh = 0, "GSM", 0
        self.cnmi = list(p.cnmi_default)
        self.csmp = [17, 167, 0, 0]
        self.creg_n = self.cgreg_n = self.cereg_n = 0

    def _reset_volatile(self) -> None:
        """Power-up state: every setting, and nothing typed, buffered or pending."""
        self._reset_settings()
        self.csms = 0
        self.cpms = list(self.profile.cpms_default)
        self.cfun = 1
        self.cops_mode = 0
        self._line = bytearray()
        self._line_overflow = False
        self._prompt = None
        self._pending_in = bytearray()
        self._echo_decided = 0
        self._urc_queue = []
        self._ta_buffer = []
        self._resp = []

    def _reboot(self) -> None:
        """Reset: drop the pending command, reset volatile settings, boot again."""
        if self._busy_handle is not None:
            self._busy_handle.cancel()
            self._busy_handle = None
        for pend, h in self.network.acks:
            if h is not None:
                h.cancel()
            self.network.pending_mt.append(pend)
        self.network.acks.clear()
        self.faults.reboot_on_next_line = False
        self._reset_volatile()
        self._state = "boot"
        self._registered = False
        self.card.power_up()
        self._boot_gen += 1
        self._later(self.timing.boot_delay, self._boot_done)

    def _boot_done(self) -> None:
        if self._state != "boot":
            return
        self._state = "cmd"
        for line in self.profile.startup_urcs:
            self._urc(line.encode())
        if self.card.inserted and self.card.busy_time > 0:
            self._start_sim_init()
        else:
            self._sim_init_done(self._boot_gen)

    @property
    def _delay(self) -> float:
        """The answer delay of the "delay" fault (kept for tests that read it)."""
        return self.faults.delay
