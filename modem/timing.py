"""Every timing constant of the modem layer, in one place, named and explained.

All values are seconds. Command-specific timeouts live on the command values
(:mod:`modem.commands`) but are taken from here, so the whole timing budget of
the layer can be read (and tuned for a slow module) in one file.
"""

from __future__ import annotations

#: Default timeout of a simple command (``AT``, ``ATE0``, ``+CSQ``...): V.250
#: modules answer these within a few hundred ms; 5 s covers a busy module.
DEFAULT_COMMAND_TIMEOUT = 5.0

#: ``AT`` during synchronisation (autobaud / resync): short, retried many times.
SYNC_ATTEMPT_TIMEOUT = 0.5

#: How many ``AT`` attempts a sync makes before declaring the module dead.
SYNC_ATTEMPTS = 10

#: SIM-touching commands (``+CPIN``, ``+CMGR``, ``+CMGD``, ``+CPMS``): the SIM
#: file system is slow, Quectel documents up to 5 s for +CPIN, SIMCom 5 s for
#: +CMGR/+CMGD. Twice that.
SIM_COMMAND_TIMEOUT = 10.0

#: ``+CMGL``: listing a full SIM (up to 255 entries) takes long on some modules.
LIST_COMMAND_TIMEOUT = 30.0

#: Wait for the ``> `` prompt after ``AT+CMGS=<len>``.
PROMPT_TIMEOUT = 5.0

#: ``+CMGS`` after the PDU: TS 27.005 leaves it open; Quectel and u-blox
#: document 120 s (network round trip, RP-ACK) for +CMGS.
SEND_TIMEOUT = 120.0

#: ``+COPS=?``-style network operations (Quectel: 180 s). Used by ``+COPS`` set.
NETWORK_COMMAND_TIMEOUT = 180.0

#: ``+CFUN=1,1`` reset: the module answers OK and reboots; boot takes 5-15 s.
RESET_TIMEOUT = 15.0

#: Pause between the final result of one command and the next command line.
#: V.250 §5.2.4 hints some DCEs need a moment; SIM800 documents 0.1 s.
INTER_COMMAND_PAUSE = 0.0

#: After ESC (cancelling a stuck ``> `` prompt) the module needs a moment
#: before it takes the next command.
ESC_SETTLE = 0.1

#: Retry backoff for transient errors: first delay, factor, ceiling.
RETRY_INITIAL = 0.5
RETRY_FACTOR = 2.0
RETRY_MAX = 30.0

#: Reconnect backoff after the port vanished (USB re-enumeration takes 1-10 s).
RECONNECT_INITIAL = 0.2
RECONNECT_MAX = 10.0

#: Registration / signal values older than this are queried again on demand.
STATUS_STALE_AFTER = 60.0

#: Start-up lines within this window after the first one (RDY, +CFUN: 1,
#: +CPIN: READY, SMS DONE, PB DONE arrive over 1-10 s) belong to the same boot.
BOOT_GRACE = 10.0

#: Consecutive command timeouts that make the supervisor treat the module as
#: hung and escalate (ESC, resync, +CFUN=1,1, power-cycle hook).
HUNG_AFTER_TIMEOUTS = 3

#: A concatenated message whose parts have not all arrived within this is
#: handed over as incomplete parts (TS 23.040 sets no limit; operators keep
#: parts a few hours at most; we keep a day).
REASSEMBLY_MAX_AGE = 24 * 3600.0

#: Sweep storage at least this often after the last sweep, cues or not (a +CMTI
#: may have been lost on a noisy line). 0 disables the periodic sweep.
PERIODIC_SWEEP = 300.0

#: After the line dropped a noise line (it may have been a damaged +CMTI),
#: sweep once this much later; further noise within the delay joins that sweep.
NOISE_SWEEP_DELAY = 1.0

#: +CNMA must follow +CMT within about 17 s (TS 27.005 §3.4.4, the network's
#: RP timer TR2M); the SMS service acknowledges well within that.
CNMA_DEADLINE = 15.0

#: How long a send waits for registration before failing as transient.
REGISTRATION_WAIT = 60.0
