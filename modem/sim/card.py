"""The SIM card of the simulated module: PIN, PUK and their retry counters.

The SIM as TS 27.007 §8.3 (+CPIN) sees it, with the retry counters that
ETSI TS 102 221 §9.4 and TS 31.102 keep on the card: 3 wrong PINs block the
PIN (the PUK is needed), 10 wrong PUKs block the SIM for good; a correct
entry restores the counter. The counters and the PIN live on the card, so
they survive a reboot of the module; only "PIN verified" is lost. A card
may be missing, or busy initialising for a while after each power-up (as
Quectel and SIMCom modules report, +CME ERROR: 14).
"""

from __future__ import annotations

__all__ = ["PIN_ATTEMPTS", "PUK_ATTEMPTS", "SimCard"]

#: SIM retry counters after a correct entry (ETSI TS 102 221 §9.4, TS 31.102).
PIN_ATTEMPTS = 3
PUK_ATTEMPTS = 10


class SimCard:
    """One SIM card (see the module docstring); its state is :attr:`state`."""

    def __init__(
        self,
        pin: str | None = None,
        puk: str = "12345678",
        *,
        inserted: bool = True,
        busy_time: float = 0.0,
    ) -> None:
        if busy_time < 0:
            raise ValueError(f"sim_busy_time must be >= 0 seconds, not {busy_time!r}")
        #: The SIM's PIN (None: PIN check disabled); a PUK unblock replaces it.
        self.pin = pin
        #: The SIM's PUK (TS 31.102 / ETSI TS 102 221 unblock key).
        self.puk = puk
        #: Retry counters kept on the SIM (ETSI TS 102 221 §9.4): they survive reboots.
        self.pin_attempts_left = PIN_ATTEMPTS
        self.puk_attempts_left = PUK_ATTEMPTS
        #: False: no SIM in the holder (+CPIN? answers +CME ERROR: 10).
        self.inserted = inserted
        #: Seconds the SIM stays busy (+CME ERROR: 14) after each power-up.
        self.busy_time = busy_time
        #: Initialising now (set by the module at power-up, for ``busy_time``).
        self.busy = False
        #: The PIN was given since power-up (or none is needed).
        self.pin_ok = pin is None

    @property
    def state(self) -> str:
        """TS 27.007 §8.3: "absent", "busy", "blocked" (PUK retries exhausted),
        "puk" (PIN retries exhausted), "pin" or "ready"."""
        if not self.inserted:
            return "absent"
        if self.busy:
            return "busy"
        if self.puk_attempts_left == 0:
            return "blocked"
        if self.pin_attempts_left == 0:
            return "puk"
        return "ready" if self.pin_ok else "pin"

    def power_up(self) -> None:
        """The module restarted: the PIN must be given again, nothing is busy yet."""
        self.pin_ok = self.pin is None
        self.busy = False

    def verify_pin(self, pin: str | None) -> bool:
        """``+CPIN=<pin>``: True and the counter restored when right; a retry
        used up when wrong."""
        if pin != self.pin:
            self.pin_attempts_left -= 1
            return False
        self.pin_attempts_left = PIN_ATTEMPTS
        self.pin_ok = True
        return True

    def unblock(self, puk: str | None, new_pin: str) -> bool:
        """``+CPIN=<puk>,<newpin>``: True, both counters restored and ``new_pin``
        set when the PUK is right; a PUK retry used up when wrong."""
        if puk != self.puk:
            self.puk_attempts_left -= 1
            return False
        self.puk_attempts_left = PUK_ATTEMPTS
        self.pin_attempts_left = PIN_ATTEMPTS
        self.pin = new_pin
        self.pin_ok = True
        return True
