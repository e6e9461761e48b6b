"""Text mode of the simulated module (TS 27.005 §3 text mode, TS 27.007 §5.5 +CSCS).

With +CMGF=1 messages are shown and taken as text instead of PDUs:

* the TE character set (TS 27.007 §5.5 +CSCS): GSM, IRA (7-bit ASCII),
  UCS2 (hex of UCS-2 code units), 8859-1, HEX (hex of GSM 7-bit codes);
* the text views of stored and delivered messages (TS 27.005 §3.4.3 +CMGR,
  §3.4.2 +CMGL, §3.4.1 +CMT/+CDS): the header fields, more of them with
  +CSDH=1 (§3.3.3), and <data> (§3.1): GSM 7-bit text in the +CSCS set;
  8-bit, UCS2 and any message with a user data header as hex of its TP-UD;
* the SMS-SUBMIT built from the text typed at the +CMGS/+CMGW prompt with
  the +CSMP parameters (§3.3.2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modem.errors import CmsErrorCode

from . import codec as _codec
from .cmdline import READ, SET, TEST, Command
from .line import _Prompt
from .registry import handler
from .storage import STAT_TEXT, StoredMessage
from .v250 import V250, _Cms

if TYPE_CHECKING:
    from .network import NetworkMessage

__all__ = ["TextMode"]


class TextMode(V250):
    """Text-mode views and the TE character set (see the module docstring)."""

    #: +CSDH (TS 27.005 §3.3.3): show the text-mode header values.
    csdh: int
    #: +CSMP <fo>,<vp>,<pid>,<dcs> (TS 27.005 §3.3.2) for text-mode sends.
    csmp: list[int]

    @handler("+CSCS", pin_free=True)
    def _cmd_cscs(self, cmd: Command) -> None:
        if cmd.form == READ:
            self._info(f'+CSCS: "{self.cscs}"')
        elif cmd.form == TEST:
            self._info('+CSCS: ("GSM","IRA","UCS2","8859-1","HEX")')
        elif cmd.form == SET:
            (a,) = self._need_args(cmd, 1, 1)
            cs = (a or "").upper()
            if cs not in ("GSM", "IRA", "UCS2", "8859-1", "HEX"):
                raise ValueError("charset")
            self.cscs = cs
        else:
            raise ValueError("no exec form")

    def _text_view(self, m: StoredMessage, index: int | None) -> tuple[str, bytes | None]:
        """Text-mode header and data line of a stored message (TS 27.005 §3.4.2/§3.4.3)."""
        stat = STAT_TEXT.get(m.stat, "REC READ")
        prefix = f"+CMGL: {index}," if index is not None else "+CMGR: "
        try:
            d = _codec.describe(m.pdu)
        except _codec.PduError:
            return f'{prefix}"{stat}","",,', m.pdu_hex.encode()
        head = f'{prefix}"{stat}",' + self._text_fields(d, listing=index is not None)
        return head, (None if d.kind == "status-report" else self._data_to_te(d))

    def _text_fields(self, d: _codec.Described, *, listing: bool) -> str:
        """Text-mode fields of a message after <stat>: as +CMGL shows them when
        ``listing``, else as +CMGR (and, the same, +CMT / +CDS) (TS 27.005 §3.4)."""
        addr = self._str_to_te(d.address)
        if d.kind == "status-report":
            return f'{d.fo},{d.mr},"{addr}",{d.toa},"{d.scts_text}","{d.dt_text}",{d.st}'
        if d.kind == "deliver":
            head = f'"{addr}",,"{d.scts_text}"'
        else:
            head = f'"{addr}",,' if listing else f'"{addr}",'  # <alpha> (and <scts>) empty
        if self.csdh:
            sca = f'"{self.smsc}",{self._tosca()}'
            if listing:
                head += f",{d.toa},{d.ud_length}"
            elif d.kind == "deliver":
                head += f",{d.toa},{d.fo},{d.pid},{d.dcs},{sca},{d.ud_length}"
            else:
                head += f",{d.toa},{d.fo},{d.pid},{d.dcs},{d.vp},{sca},{d.ud_length}"
        return head

    def _tosca(self) -> int:
        return 145 if self.smsc.startswith("+") else 129

    def _te_to_str(self, s: str) -> str:
        """A quoted string parameter in the TE character set (+CSCS) -> text."""
        return self._te_bytes_to_str(s.encode("latin-1", "replace"))

    def _te_bytes_to_str(self, raw: bytes) -> str:
        """Text in the TE character set (TS 27.007 §5.5) -> str; ValueError if it is
        not: UCS2 is hex of UCS-2 code units, HEX hex of GSM 7-bit codes ("no
        conversions to the original ME character set"), IRA 7-bit ASCII."""
        cs = self.cscs
        if cs in ("UCS2", "HEX"):
            raw = bytes.fromhex(raw.decode("latin-1"))
            if cs == "UCS2":
                return raw.decode("utf-16-be")
        if cs in ("GSM", "HEX"):
            # ESC (0x1B) ends the prompt, so only the default table can be typed.
            return _codec.gsm_bytes_to_str(raw)
        return raw.decode("ascii" if cs == "IRA" else "latin-1")

    def _str_to_te(self, s: str) -> str:
        if self.cscs == "UCS2":
            return s.encode("utf-16-be").hex().upper()
        if self.cscs == "HEX":
            return _codec.str_to_gsm_bytes(s).hex().upper()
        return s

    def _data_to_te(self, d: _codec.Described) -> bytes:
        """Text-mode <data> (TS 27.005 §3.1): 8-bit and UCS2 coded messages, and
        any with a user data header (TP-UDHI), as hex of their TP-UD octets; GSM
        7-bit text converted to the +CSCS character set."""
        if d.fo & 0x40 and d.kind in ("deliver", "submit"):
            return d.raw_ud.hex().upper().encode()
        if d.text is None:
            return d.data.hex().upper().encode()
        if _codec.alphabet_of_dcs(d.dcs) == "ucs2":
            return d.text.encode("utf-16-be").hex().upper().encode()
        if self.cscs == "UCS2":
            return d.text.encode("utf-16-be").hex().upper().encode()
        if self.cscs == "GSM":
            return _codec.str_to_gsm_bytes(d.text)
        if self.cscs == "HEX":
            return _codec.str_to_gsm_bytes(d.text).hex().upper().encode()
        if self.cscs == "IRA":
            return d.text.encode("ascii", "replace")
        return d.text.encode("latin-1", "replace")

    def _direct_text(self, p: NetworkMessage, urc: str) -> bytes:
        try:
            d = _codec.describe(p.pdu)
        except _codec.PduError:
            return f"{urc}: ,0".encode() + self._crlf() + p.pdu.hex().upper().encode()
        head = f"{urc}: {self._text_fields(d, listing=False)}".encode()
        if urc == "+CDS":
            return head
        return head + self._crlf() + self._data_to_te(d)

    def _prompt_text(self, pr: _Prompt) -> bytes:
        fo, vp, pid, dcs = self.csmp
        raw = bytes(pr.buf)
        alphabet = _codec.alphabet_of_dcs(dcs)
        if alphabet == "gsm7":
            try:
                content: str | bytes = self._te_bytes_to_str(raw)
            except ValueError:
                raise _Cms(CmsErrorCode.INVALID_TEXT_MODE_PARAMETER) from None
        else:
            try:
                content = bytes.fromhex(raw.decode("latin-1").strip())
            except ValueError:
                raise _Cms(CmsErrorCode.INVALID_TEXT_MODE_PARAMETER) from None
        try:
            return _codec.build_submit(pr.da, content, fo=fo, vp=vp, pid=pid, dcs=dcs, smsc=None)
        except _codec.PduError:
            raise _Cms(CmsErrorCode.INVALID_TEXT_MODE_PARAMETER) from None
