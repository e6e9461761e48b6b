"""The line discipline of the simulated module: bytes in, bytes out (ITU-T V.250 §5).

What a TA does with the bytes on its DTE link, before and after any command
means anything:

* the command-line state machine (V.250 §5.2): bytes collect until S3
  (carriage return), S5 (backspace) removes the last one, S4 (line feed)
  before anything is ignored, characters before ``AT`` are ignored and a line
  without it is dropped; ``A/`` repeats the last line at once (§5.2.4); a line
  over the profile's cap answers ``ERROR``;
* echo (V.250 §6.2.4, E1): each byte goes straight back as it arrives, before
  the line is complete, in command state and at the prompt;
* the ``> `` prompt of +CMGS / +CMGW / +CNMA=<n>,<length> (TS 27.005
  §3.5.1, §3.4.4): text collects until Ctrl-Z, ESC quits with OK, in text
  mode each carriage return gives a new prompt;
* unsolicited result codes held while a line is typed, a command is answered
  or the prompt is open, and sent right after the final result code (TS
  27.005 §3.4.1 +CNMI <mode> 2; <mode> 0 keeps SMS indications in the TA
  buffer, <mode> 1 discards them while the link is reserved);
* pacing of the answers: the "delay" fault holds an answer back, input
  meanwhile is echoed on arrival and handled, in order, after it.

What the lines mean is up to the dispatcher (:mod:`.v250`) and the text
after the prompt up to TS 27.005 (:meth:`_run_prompt`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from modem.errors import CmeErrorCode

from .base import SimPort
from .cmdline import CommandLineError, parse_line
from .storage import STO_UNSENT
from .v250 import V250, _Cme, _ErrorResult, _Plain

__all__ = ["CTRL_Z", "ESC", "LineDiscipline"]

CTRL_Z = 0x1A
ESC = 0x1B

#: Longest text a prompt collects (hex PDU of the largest SUBMIT is 2*(12+164)).
_PROMPT_MAX = 1024


@dataclass
class _Prompt:
    command: str  # "+CMGS" / "+CMGW"
    pdu_mode: bool
    length: int = 0
    da: str = ""
    toda: int = 129
    stat: int = STO_UNSENT
    buf: bytearray = field(default_factory=bytearray)
    overflow: bool = False


class LineDiscipline(V250):
    """The module's side of the DTE link: ports, echo, lines, prompt, URCs, pacing."""

    # The state of the link (set at power-up by the module, SimModem._reset_volatile).
    _line: bytearray
    _line_overflow: bool
    _pending_in: bytearray
    _echo_decided: int
    _urc_queue: list[bytes]
    _ta_buffer: list[bytes]
    _answering: bool
    _last_line: str

    def attach(self, port: SimPort) -> None:
        """Send the module's output to ``port`` from now on."""
        if port not in self._ports:
            self._ports.append(port)

    def detach(self, port: SimPort) -> None:
        if port in self._ports:
            self._ports.remove(port)

    def add_reconnect_listener(self, cb: Callable[[], None]) -> None:
        """``cb()`` runs when a port comes back after the "disconnect" fault."""
        self._reconnect_listeners.append(cb)

    def remove_reconnect_listener(self, cb: Callable[[], None]) -> None:
        if cb in self._reconnect_listeners:
            self._reconnect_listeners.remove(cb)

    def _write(self, data: bytes) -> None:
        if not data or self._state == "hung":
            return
        data = self.faults.filter_output(data)
        if not data:
            return
        for port in list(self._ports):
            port.sim_output(data)

    def receive(self, data: bytes) -> None:
        """Bytes the DTE wrote to the module."""
        # Leading bytes already echoed (or not) when they arrived during a busy spell.
        decided, self._echo_decided = self._echo_decided, 0
        for i, b in enumerate(data):
            st = self._state
            if st == "busy":
                # Echo at once (the TA echoes on arrival); handle after the answer.
                rest = data[i:]
                fresh = rest[decided:]
                if fresh and self.echo:
                    self._write(fresh)
                self._pending_in += rest
                return
            echo = self.echo and not decided
            if decided:
                decided -= 1
            if st in ("hung", "boot"):
                continue
            if st == "prompt":
                self._prompt_byte(b, echo)
            else:
                self._cmd_byte(b, echo)

    def _cmd_byte(self, b: int, echo: bool) -> None:
        if echo:
            self._write(bytes([b]))
        if b == self.s3:
            self._line_complete()
            return
        if b == self.s5:
            if self._line:
                self._line.pop()
            return
        if b == self.s4 and not self._line:
            return
        if len(self._line) >= self.profile.max_line:
            self._line_overflow = True
            return
        self._line.append(b)
        # V.250 §5.2.4: "A/" repeats the last command line at once, no S3 needed.
        if b == ord("/") and bytes(self._line).strip().upper() == b"A/":
            self._line.clear()
            self._run_line(self._last_line)

    def _line_complete(self) -> None:
        raw = bytes(self._line)
        overflow = self._line_overflow
        self._line.clear()
        self._line_overflow = False
        text = raw.decode("latin-1")
        # V.250 §5.2.1: characters before "AT" are ignored; a line without it too.
        pos = text.upper().find("AT")
        if overflow:
            if pos >= 0 or len(text) >= self.profile.max_line:
                self._resp = [self._fmt_error(_Plain())]
                self._commit()
            return
        if pos < 0:
            self._flush_urcs()
            return
        body = text[pos + 2 :]
        self._last_line = body
        self._run_line(body)

    def _run_line(self, body: str) -> None:
        if self.faults.reboot_on_next_line:  # the "reboot next" fault: reset instead of answering
            self._reboot()
            return
        self._resp = []
        self._after_commit = None
        self._answering = True
        next_state = "cmd"
        if self.profile.bare_at_error and not body.strip():
            self._resp.append(self._fmt_final("ERROR", 4))
            self._commit()
            return
        try:
            cmds = parse_line(body)
        except CommandLineError:
            cmds = None
        if cmds is None:
            self._resp.append(self._fmt_error(_Cme(CmeErrorCode.OPERATION_NOT_SUPPORTED)))
        else:
            ok = True
            for cmd in cmds:
                try:
                    self._dispatch(cmd)
                except _ErrorResult as err:
                    self._resp.append(self._fmt_error(err))
                    ok = False
                    break
                if self._prompt is not None:
                    next_state = "prompt"
                    break
            if ok and next_state == "cmd":
                self._resp.append(self._fmt_final("OK", 0))
            self._urc_inside_answer([c.name for c in cmds])
        self._commit(next_state)

    def _urc_inside_answer(self, names: list[str]) -> None:
        """The "urc-in-answer" fault: real firmware does not hold every URC
        while it answers (Quectel, SIMCom: a ``+CREG``/``+CMTI`` can come
        between the echo and the information response, or between a
        ``+CMGR`` header and its PDU). The first pending line for a command of
        this line goes out before the answer's first information response."""
        pending = self.faults.urc_in_answer
        if not pending or len(self._resp) < 2:  # an information response, then the final result
            return
        for i, (name, line) in enumerate(pending):
            if name in names:
                del pending[i]
                self._resp.insert(0, self._fmt_info(line))
                return

    def _commit(self, next_state: str = "cmd") -> None:
        out = b"".join(self._resp)
        self._resp = []
        after = self._after_commit
        self._after_commit = None
        self._answering = False
        loop: asyncio.AbstractEventLoop | None = None
        if self.faults.delay > 0:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None  # synchronous use: no delay without a loop
        if loop is not None:
            self._state = "busy"

            def done() -> None:
                self._busy_handle = None
                if self._state != "busy":
                    return
                self._state = next_state
                self._write(out)
                if after is not None:
                    after()
                self._resume()

            self._busy_handle = loop.call_later(self.faults.delay, done)
            return
        self._state = next_state
        self._write(out)
        if after is not None:
            after()
        self._resume()

    def _resume(self) -> None:
        if self._state == "cmd":
            self._flush_urcs()
        if self._state in ("cmd", "prompt") and self._pending_in:
            data = bytes(self._pending_in)
            self._pending_in.clear()
            self._echo_decided = len(data)
            self.receive(data)

    def _urc(self, line: bytes, *, sms: bool = False) -> bool:
        """Send an unsolicited line now, or hold it until the DTE link is free.

        False when it was discarded (+CNMI <mode> 1 with the link reserved).
        """
        chunk = self._fmt_info(line)
        if sms and self.cnmi[0] == 0:
            self._ta_buffer.append(chunk)
            return True
        if self._state == "hung":
            return True
        if self._state != "cmd" or self._line or self._answering:
            if sms and self.cnmi[0] == 1:
                return False  # <mode> 1: discard when the link is reserved
            self._urc_queue.append(chunk)
            return True
        self._write(chunk)
        return True

    def _release_ta_buffer(self, *, flush: bool) -> None:
        """+CNMI left <mode> 0 (TS 27.005 §3.4.1): the indications buffered in
        the TA go to the TE after the answer (<bfr> 0, ``flush``) or are
        cleared (<bfr> 1)."""
        if self._ta_buffer:
            if flush:
                self._urc_queue.extend(self._ta_buffer)
            self._ta_buffer.clear()

    def _flush_urcs(self) -> None:
        if self._urc_queue and self._state == "cmd" and not self._line and not self._answering:
            out = b"".join(self._urc_queue)
            self._urc_queue.clear()
            self._write(out)

    def _prompt_byte(self, b: int, echo: bool) -> None:
        pr = self._prompt
        assert pr is not None
        if b == CTRL_Z:
            self._prompt = None
            self._run_prompt(pr)
            return
        if b == ESC:
            # TS 27.005 §3.5.1: ESC quits without sending.
            self._prompt = None
            self._resp = [self._fmt_final("OK", 0)]
            self._commit()
            return
        if echo:
            self._write(bytes([b]))
        if b in (self.s3, self.s4):
            if not pr.pdu_mode and b == self.s3:
                pr.buf += b"\n"
                self._write(self.profile.prompt)
            return
        if len(pr.buf) >= _PROMPT_MAX:
            pr.overflow = True
            return
        pr.buf.append(b)

    @property
    def state(self) -> str:
        """ "cmd", "prompt", "busy", "boot" or "hung"."""
        return self._state
