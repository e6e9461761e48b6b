"""Every timing constant of the modem layer, in one place, named and explained.

All values are seconds. Command-specific timeouts live on the command values
(:mod:`modem.commands`) but are taken from here, so the whole timing budget of
the layer can be read (and tuned for a slow module) in one file.

Every user reads these *when it uses them* (``timing.X`` at call time, ``None``
defaults resolved then), never binds them at import: setting
``modem.timing.SIM_COMMAND_TIMEOUT = 20`` before (or while) a stack runs tunes
every command built after that.
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

#: ``+CMGS`` after the PDU: TS 27.005 leaves it open (network round trip,
#: RP-ACK). Quectel BG96/EC2x and SIMCom SIM7600 manuals give 120 s as the
#: maximum response time; the u-blox SARA-R4/N4 AT Commands Manual
#: (UBX-17003787, +CMGS "Response time") gives up to 3 min. The longest: a
#: deadline that passes while the module still waits for the network turns a
#: send into an unknown outcome (the PDU is out) and counts towards the
#: hung-module escalation of a module that is only slow.
SEND_TIMEOUT = 180.0

#: ``+CFUN=1,1`` reset: the module answers OK and reboots; boot takes 5-15 s.
RESET_TIMEOUT = 15.0

#: After ``+CFUN=1,1`` or the power-cycle hook, wait this long before probing
#: (BG96: ``RDY`` 5-10 s after reset; SIM7600 up to 15 s).
#: ``SessionConfig.reboot_wait`` overrides it.
REBOOT_WAIT = 15.0

#: Pause between the final result of one command and the next command line.
#: V.250 §5.2.4 hints some DCEs need a moment; SIM800 documents 0.1 s.
INTER_COMMAND_PAUSE = 0.0

#: After ESC (cancelling a stuck ``> `` prompt) the module needs a moment
#: before it takes the next command. Every sync starts with ESC and this pause.
ESC_SETTLE = 0.1

#: After a sync probe's final result, the line must stay quiet this long: a
#: further final result means the first was a late answer of an aborted
#: command (probe again).
SYNC_QUIET = 0.1

#: After a plain ``ERROR`` some modules send a second, stray final result (an
#: ``OK`` for an empty index). The next command line waits this long, so the
#: stray arrives with no command in flight and is discarded, not taken as the
#: next command's answer.
STRAY_RESULT_WINDOW = 0.1

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

#: A module that stays dead is escalated again after a growing pause: first
#: this, doubling up to ESCALATION_MAX (a dead module is not reset every 35 s
#: for ever; one that answers again is never reset).
ESCALATION_INITIAL = 5.0
ESCALATION_MAX = 600.0

#: The application's power-cycle hook runs at most once per this interval at
#: first, the interval doubling up to POWER_CYCLE_MAX while the module stays
#: dead (a relay or USB hub port is not switched on every escalation).
POWER_CYCLE_INTERVAL = 120.0
POWER_CYCLE_MAX = 3600.0

#: A SIM answers ``+CME ERROR: 14`` (SIM busy, TS 27.007 §9.2.1) while it
#: initialises after power-on: Quectel and SIMCom manuals advise waiting for
#: ``+CPIN: READY``/``SMS DONE``, which takes 2-20 s. The session waits up to
#: this budget (asking again after SIM_BUSY_RETRY_MAX at most, sooner when a
#: SIM URC arrives) before it treats the busy SIM as a transient failure to
#: back off from; a busy SIM is never escalated as a hung module.
SIM_BUSY_BUDGET = 60.0
SIM_BUSY_RETRY_MAX = 2.0

#: A module that refused registration URCs (``+CREG=2``) is asked
#: (``+CREG?``) this often while something waits for registration.
REGISTRATION_QUERY_INTERVAL = 30.0

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

# -- SMS service

#: Parts of a concatenated message held on the SIM longer than this (counted
#: from the oldest part's TP-SCTS on the module's clock, or from when this
#: process first read it, whichever is older) are handed over as an incomplete
#: message and their slots freed. TS 23.040 sets no limit. The parts of one
#: message are submitted back to back and an SC retries a failed part within
#: minutes; a part that is an hour late is most likely lost, and each part
#: held takes one of 20-50 slots that every later SMS needs.
HOLD_MAX_AGE = 3600.0

#: Parts belong to one message only when their TP-SCTS (TS 23.040 §9.2.3.11,
#: the time the SC received each part) are at most this far apart: the
#: originator submits the parts back to back, while another message that
#: reuses the 8-bit reference comes minutes or days later.
CONCAT_SCTS_WINDOW = 120.0

#: Storage pressure: when fewer than this many slots of the receive storage
#: are free, the oldest held parts are handed over as incomplete messages.
HOLD_FREE_SLOTS = 2

#: A status report matches a send only within this long after the send (the
#: SC reports when it delivers or gives up: within its validity period).
STATUS_REPORT_WINDOW = 24 * 3600.0

#: After an acknowledgement failure the routing (+CNMI?) is checked at once and
#: again this long after the +CMT arrived: the module resets it only when its
#: own RP timer (TS 24.011 TR2M, 12-20 s) runs out.
ROUTING_RECHECK_AFTER = 30.0

#: Consecutive +CMT/+CDS acknowledgement failures after which the service falls
#: back to stored delivery (+CMTI) for good.
ACK_FAILURES_BEFORE_STORED = 3

#: Time kept for the +CNMA itself before CNMA_DEADLINE: the consumer of a
#: direct delivery gets the rest.
CNMA_MARGIN = 2.0

#: The module's clock (+CCLK?) is read again after this long (held parts age by it).
MODULE_CLOCK_REFRESH = 3600.0

#: A stored record whose PDU line never arrives (not hex: the line discipline
#: drops it as noise, so nothing of it is left to compare) is reported as
#: undecodable only after this many sweeps in a row found it so; a record
#: whose damaged content arrives is reported once two reads agree.
DAMAGED_CONFIRM_ROUNDS = 3
