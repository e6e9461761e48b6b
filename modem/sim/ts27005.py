"""TS 27.005 commands of the simulated module: SMS settings, storage, sending, acks.

3GPP TS 27.005 (PDU mode, and text mode through :mod:`.textmode`) as the
module answers it; every error is +CMS ERROR (§3.2.5), parameter errors of
the message commands 304 (PDU mode) or 305 (text mode):

* settings: +CSMS (§3.2.1, 0/1: phase 2+ needs +CNMA), +CPMS (§3.2.2, SM,
  ME and MT = SM then ME), +CMGF (§3.2.3), +CSCA (§3.3.1), +CSMP (§3.3.2),
  +CSDH (§3.3.3), +CNMI (§3.4.1: <mode> 0-3, <mt> 0-3, <bm> 0/2, <ds> 0-2,
  <bfr>; leaving <mode> 0 flushes or clears the TA buffer);
* storage: +CMGR (§3.4.3), +CMGL (§3.4.2; reading marks REC UNREAD as
  REC READ), +CMGD (§3.5.4, <delflag> 0-4); :meth:`Ts27005Commands.store_raw`
  puts damaged records in for tests;
* sending: +CMGS (§3.5.1), +CMGW (§3.5.3) and +CMSS (§3.5.2): the prompt,
  the PDU length against the TPDU, an SMS-SUBMIT only; the network takes it
  (:mod:`.network`);
* +CNMA (§3.4.4): RP-ACK (+CNMA, +CNMA=0/1) or RP-ERROR (+CNMA=2) for the
  oldest unacknowledged +CMT/+CDS; +CNMA=<n>,<length> takes an
  SMS-DELIVER-REPORT TPDU at the prompt.
"""

from __future__ import annotations

from modem.errors import CmsErrorCode

from . import codec as _codec
from .cmdline import READ, SET, TEST, Command
from .line import _Prompt
from .registry import handler
from .storage import (
    ALL,
    REC_READ,
    REC_UNREAD,
    STAT_FROM_TEXT,
    STAT_TEXT,
    STO_SENT,
    STO_UNSENT,
    Storage,
    StoredMessage,
)
from .textmode import TextMode
from .v250 import _Cms, _ErrorResult, _Plain

__all__ = ["Ts27005Commands"]


class Ts27005Commands(TextMode):
    """TS 27.005 commands (see the module docstring)."""

    #: +CSMS <service> (§3.2.1): 1 means +CMT/+CDS need +CNMA.
    csms: int

    @handler("+CSMS", sms=True)
    def _cmd_csms(self, cmd: Command) -> None:
        if cmd.form == READ:
            self._info(f"+CSMS: {self.csms},1,1,1")
        elif cmd.form == TEST:
            self._info("+CSMS: (0,1)")
        elif cmd.form == SET:
            (a,) = self._need_args(cmd, 1, 1)
            self.csms = self._int(a, 0, 1)
            self._info("+CSMS: 1,1,1")
        else:
            raise ValueError("no exec form")

    def _cpms_counts(self) -> str:
        parts = []
        for mem in self.cpms:
            st = self._stores[mem]
            parts.append(f"{st.used},{st.capacity}")
        return ",".join(parts)

    @handler("+CPMS", sms=True)
    def _cmd_cpms(self, cmd: Command) -> None:
        if cmd.form == READ:
            if self.profile.cpms_query_refused:
                raise _Plain()
            parts = []
            for mem in self.cpms:
                st = self._stores[mem]
                parts.append(f'"{mem}",{st.used},{st.capacity}')
            self._info("+CPMS: " + ",".join(parts))
        elif cmd.form == TEST:
            mems = '("SM","ME","MT")'
            self._info(f"+CPMS: {mems},{mems},{mems}")
        elif cmd.form == SET:
            args = self._need_args(cmd, 1, 3)
            new = list(self.cpms)
            for i, a in enumerate(args):
                if a is None:
                    continue
                mem = a.upper()
                if mem not in self._stores:
                    raise _Cms(CmsErrorCode.OPERATION_NOT_ALLOWED)
                new[i] = mem
            self.cpms = new
            self._info("+CPMS: " + self._cpms_counts())
            self._schedule_retry()
        else:
            raise ValueError("no exec form")

    @handler("+CMGF", pin_free=True, sms=True)
    def _cmd_cmgf(self, cmd: Command) -> None:
        self._setting(cmd, "cmgf", 1)

    @handler("+CSCA", sms=True)
    def _cmd_csca(self, cmd: Command) -> None:
        if cmd.form == READ:
            self._info(f'+CSCA: "{self.smsc}",{self._tosca()}')
        elif cmd.form == TEST:
            return
        elif cmd.form == SET:
            args = self._need_args(cmd, 1, 2)
            sca = self._te_to_str(args[0] or "")
            if sca and not sca.lstrip("+").isdigit():
                raise ValueError("address")
            if len(args) > 1:
                self._int(args[1], 0, 255)
            self.smsc = sca
        else:
            raise ValueError("no exec form")

    @handler("+CSMP", sms=True)
    def _cmd_csmp(self, cmd: Command) -> None:
        if cmd.form == READ:
            fo, vp, pid, dcs = self.csmp
            self._info(f"+CSMP: {fo},{vp},{pid},{dcs}")
        elif cmd.form == TEST:
            return
        elif cmd.form == SET:
            args = self._need_args(cmd, 1, 4)
            new = list(self.csmp)
            for i, a in enumerate(args):
                if a is not None:
                    new[i] = self._int(a, 0, 255)
            self.csmp = new
        else:
            raise ValueError("no exec form")

    @handler("+CSDH", sms=True)
    def _cmd_csdh(self, cmd: Command) -> None:
        self._setting(cmd, "csdh", 1)

    @handler("+CNMI", sms=True)
    def _cmd_cnmi(self, cmd: Command) -> None:
        if cmd.form == READ:
            self._info("+CNMI: " + ",".join(str(v) for v in self.cnmi))
        elif cmd.form == TEST:
            self._info("+CNMI: " + ",".join(_value_list(v) for v in self.profile.cnmi_values))
        elif cmd.form == SET:
            args = self._need_args(cmd, 1, 5)
            new = list(self.cnmi)
            for i, a in enumerate(args):
                if a is not None:
                    new[i] = self._int(a, 0, 9)
                    if new[i] not in self.profile.cnmi_values[i]:
                        raise ValueError(f"+CNMI value {new[i]} not supported")
            old_mode = self.cnmi[0]
            self.cnmi = new
            if new[0] != 0 and old_mode == 0:
                self._release_ta_buffer(flush=new[4] == 0)
        else:
            self.cnmi = [0, 0, 0, 0, 0]

    def _mem(self, i: int) -> Storage:
        return self._stores[self.cpms[i]]

    def _check_index(self, store: Storage, index: int) -> None:
        if not store.valid_index(index):
            raise _Cms(CmsErrorCode.INVALID_MEMORY_INDEX)

    @handler("+CMGR", message=True)
    def _cmd_cmgr(self, cmd: Command) -> None:
        if cmd.form == TEST:
            return
        if cmd.form != SET:
            raise ValueError("set only")
        (a,) = self._need_args(cmd, 1, 1)
        index = self._int(a, 0, 100000)
        store = self._mem(0)
        self._check_index(store, index)
        m = store.get(index)
        if m is None:
            if self.profile.stray_ok_after_error:
                # Plain ERROR, then a stray OK line: the line's own final result
                # code follows as the "second" answer.
                self._resp.append(self._fmt_final("ERROR", 4))
                return
            if self.profile.cmgr_empty_error is not None:
                raise _Cms(self.profile.cmgr_empty_error)
            return
        self._info_lines(self._message_lines(m, index, listing=False))
        if m.stat == REC_UNREAD:
            m.stat = REC_READ

    def _message_lines(self, m: StoredMessage, index: int, *, listing: bool) -> list[bytes]:
        """Header (and data line) of a stored message for +CMGR / +CMGL."""
        if self.cmgf == 0:
            head = (
                f"+CMGL: {index},{m.stat},,{m.length}"
                if listing
                else (f"+CMGR: {m.stat},,{m.length}")
            )
            return [head.encode(), self._pdu_line(m.pdu_hex).encode("latin-1")]
        text_head, body = self._text_view(m, index if listing else None)
        return [text_head.encode()] + ([body] if body is not None else [])

    @handler("+CMGL", message=True)
    def _cmd_cmgl(self, cmd: Command) -> None:
        if cmd.form == TEST:
            if self.cmgf:
                self._info('+CMGL: ("REC UNREAD","REC READ","STO UNSENT","STO SENT","ALL")')
            else:
                self._info("+CMGL: (0-4)")
            return
        if cmd.form == READ:
            raise ValueError("no read form")
        stat = REC_UNREAD
        if cmd.form == SET:
            args = self._need_args(cmd, 1, 2)
            a = args[0]
            if self.cmgf:
                if a is None or not cmd.quoted(0) or a.upper() not in STAT_FROM_TEXT:
                    raise ValueError("stat")
                stat = STAT_FROM_TEXT[a.upper()]
            else:
                stat = self._int(a, 0, 4, REC_UNREAD)
                if cmd.quoted(0):
                    raise ValueError("stat")
        store = self._mem(0)
        shown = [(i, m) for i, m in store.items() if stat in (ALL, m.stat)]
        if not shown and self.profile.cmgl_empty_error is not None:
            raise _Cms(self.profile.cmgl_empty_error)
        lines: list[bytes] = []
        for i, m in shown:
            lines += self._message_lines(m, i, listing=True)
            if m.stat == REC_UNREAD:
                m.stat = REC_READ
        if lines:
            self._info_lines(lines)

    @handler("+CMGD", message=True)
    def _cmd_cmgd(self, cmd: Command) -> None:
        store = self._mem(0)
        if cmd.form == TEST:
            used = ",".join(str(i) for i, _ in store.items())
            self._info(f"+CMGD: ({used}),(0-4)")
            return
        if cmd.form != SET:
            raise ValueError("set only")
        args = self._need_args(cmd, 1, 2)
        if len(args) > 1 and self.profile.cmgd_flag_refused:
            raise _Plain()
        flag = self._int(args[1], 0, 4, 0) if len(args) > 1 else 0
        if flag == 0:
            index = self._int(args[0], 0, 100000)
            self._check_index(store, index)
            store.delete(index)
        else:
            if args[0] is not None:
                self._int(args[0], 0, 100000)
            doomed = {
                1: (REC_READ,),
                2: (REC_READ, STO_SENT),
                3: (REC_READ, STO_SENT, STO_UNSENT),
                4: (REC_READ, STO_SENT, STO_UNSENT, REC_UNREAD),
            }[flag]
            for i, m in store.items():
                if m.stat in doomed:
                    store.delete(i)
        self._schedule_retry()

    @handler("+CMGS", message=True)
    def _cmd_cmgs(self, cmd: Command) -> None:
        self._open_prompt(cmd, "+CMGS")

    @handler("+CMGW", message=True)
    def _cmd_cmgw(self, cmd: Command) -> None:
        self._open_prompt(cmd, "+CMGW")

    def _open_prompt(self, cmd: Command, which: str) -> None:
        if cmd.form == TEST:
            return
        if cmd.form == READ:
            raise ValueError("no read form")
        if self.cmgf == 0:
            if cmd.form != SET:
                raise ValueError("length needed")
            args = self._need_args(cmd, 1, 2 if which == "+CMGW" else 1)
            length = self._int(args[0], 1, 164)
            stat = STO_UNSENT
            if len(args) > 1:
                stat = self._int(args[1], 0, 3, STO_UNSENT)
            self._prompt = _Prompt(which, True, length=length, stat=stat)
        else:
            da, toda, stat = "", 129, STO_UNSENT
            if cmd.form == SET:
                args = self._need_args(cmd, 1, 3)
                da = self._te_to_str(args[0] or "")
                if not da or not da.lstrip("+").isalnum():
                    raise ValueError("address")
                toda = 145 if da.startswith("+") else 129
                if len(args) > 1 and args[1] is not None:
                    toda = self._int(args[1], 128, 255)
                if len(args) > 2 and args[2] is not None:
                    if args[2].upper() not in STAT_FROM_TEXT:
                        raise ValueError("stat")
                    stat = STAT_FROM_TEXT[args[2].upper()]
            elif which == "+CMGS":
                raise ValueError("address needed")
            self._prompt = _Prompt(which, False, da=da, toda=toda, stat=stat)
        self._resp.append(self.profile.prompt)

    def _run_prompt(self, pr: _Prompt) -> None:
        self._resp = []
        self._after_commit = None
        self._answering = True
        try:
            if pr.overflow:
                raise self._bad_param(pr.command)
            if pr.command == "+CNMA":
                report = self._prompt_report(pr)
                if not self.network.acks:  # timed out while the prompt was open
                    raise _Cms(CmsErrorCode.NO_CNMA_EXPECTED)
                self._acknowledge(pr.stat, report)
            elif pr.command == "+CMGS":
                pdu = self._prompt_pdu(pr) if pr.pdu_mode else self._prompt_text(pr)
                mr = self._network_send(pdu)
                self._info(f"+CMGS: {mr}")
            else:
                pdu = self._prompt_pdu(pr) if pr.pdu_mode else self._prompt_text(pr)
                store = self._mem(1)
                length = _codec.tpdu_length(pdu)
                idx = store.add(pr.stat, pdu, length, _codec.kind_of(pdu))
                if idx is None:
                    raise _Cms(CmsErrorCode.MEMORY_FULL)
                self._info(f"+CMGW: {idx}")
            self._resp.append(self._fmt_final("OK", 0))
        except _ErrorResult as err:
            self._resp.append(self._fmt_error(err))
        self._urc_inside_answer([pr.command])
        self._commit()

    def _prompt_pdu(self, pr: _Prompt) -> bytes:
        text = bytes(pr.buf).decode("latin-1").strip().replace(" ", "")
        try:
            data = bytes.fromhex(text)
        except ValueError:
            raise _Cms(CmsErrorCode.INVALID_PDU_MODE_PARAMETER) from None
        if not data or data[0] + 1 > len(data):
            raise _Cms(CmsErrorCode.INVALID_PDU_MODE_PARAMETER)
        if len(data) - 1 - data[0] != pr.length:
            raise _Cms(CmsErrorCode.INVALID_PDU_MODE_PARAMETER)
        try:
            kind = _codec.kind_of(data, strict=True)
        except _codec.PduError:
            raise _Cms(CmsErrorCode.INVALID_PDU_MODE_PARAMETER) from None
        if pr.command == "+CMGS" and kind != "submit":
            raise _Cms(CmsErrorCode.INVALID_PDU_MODE_PARAMETER)
        return data

    def _prompt_report(self, pr: _Prompt) -> bytes:
        """The SMS-DELIVER-REPORT TPDU of +CNMA=<n>,<length> (TS 23.040 §9.2.2.1a)."""
        text = bytes(pr.buf).decode("latin-1").strip().replace(" ", "")
        try:
            data = bytes.fromhex(text)
        except ValueError:
            raise _Cms(CmsErrorCode.INVALID_PDU_MODE_PARAMETER) from None
        if len(data) != pr.length or data[0] & 0x03 != 0:
            raise _Cms(CmsErrorCode.INVALID_PDU_MODE_PARAMETER)
        return data

    @handler("+CMSS", message=True)
    def _cmd_cmss(self, cmd: Command) -> None:
        if cmd.form == TEST:
            return
        if cmd.form != SET:
            raise ValueError("set only")
        args = self._need_args(cmd, 1, 3)
        index = self._int(args[0], 0, 100000)
        store = self._mem(1)
        self._check_index(store, index)
        m = store.get(index)
        if m is None or m.kind != "submit":
            raise _Cms(CmsErrorCode.INVALID_MEMORY_INDEX)
        pdu = m.pdu
        if len(args) > 1 and args[1]:
            pdu = _codec.with_destination(pdu, self._te_to_str(args[1]))
        mr = self._network_send(pdu)
        m.stat = STO_SENT
        self._info(f"+CMSS: {mr}")

    @handler("+CNMA", message=True)
    def _cmd_cnma(self, cmd: Command) -> None:
        """TS 27.005 §3.4.4. Text mode: ``+CNMA`` only. PDU mode: ``+CNMA=<n>``
        with <n> 0/1 RP-ACK, 2 RP-ERROR (the network keeps the message and
        delivers it again); ``+CNMA=<n>,<length>`` then takes the
        SMS-DELIVER-REPORT TPDU at the prompt (no SMSC field)."""
        if cmd.form == TEST:
            if self.cmgf == 0:
                self._info("+CNMA: (0-2)")
            return
        if cmd.form == READ:
            raise ValueError("no read form")
        n = length = 0
        if cmd.form == SET:
            if self.cmgf:
                raise ValueError("<n> is PDU mode only")
            args = self._need_args(cmd, 1, 2)
            n = self._int(args[0], 0, 2, 0)
            if len(args) > 1:
                length = self._int(args[1], 0, 175, 0)
        if self.csms != 1 or not self.network.acks:
            raise _Cms(CmsErrorCode.NO_CNMA_EXPECTED)
        if length:
            self._prompt = _Prompt("+CNMA", True, length=length, stat=n)
            self._resp.append(self.profile.prompt)
            return
        self._acknowledge(n, None)

    def storage(self, name: str = "SM") -> Storage:
        """The storage ``name`` ("SM", "ME" or "MT")."""
        return self._stores[name.upper()]

    def store_raw(
        self,
        record: str | bytes,
        *,
        length: int | None = None,
        stat: int = REC_UNREAD,
        mem: str = "SM",
        notify: bool = False,
    ) -> int:
        """Put a (possibly damaged) record into storage ``mem``; its index.

        ``record`` as bytes is printed by +CMGR/+CMGL as its hex; as str it is
        printed exactly as given (non-hex text, odd length, empty). ``length``
        is the header's <length> (default: the TPDU length the octets imply,
        right or not), so framing that disagrees with it, an empty PDU, over
        255 octets or random bytes are kept and shown the same way every
        time. ``notify`` sends +CMTI when +CNMI routes indications.
        ValueError when the storage is full or an argument is out of range.
        """
        if stat not in STAT_TEXT or stat == ALL:
            raise ValueError(f"store_raw: stat is 0-3, not {stat!r}")
        store = self.storage(mem)
        if isinstance(record, bytes):
            raw, text = record, None
        else:
            text = record
            try:
                raw = bytes.fromhex(record)
            except ValueError:
                raw = b""
        if length is None:
            length = len(raw) - 1 - raw[0] if raw and raw[0] < len(raw) else len(raw)
        if length < 0:
            raise ValueError(f"store_raw: length must be >= 0, not {length}")
        idx = store.add(stat, raw, length, "deliver", raw_text=text)
        if idx is None:
            raise ValueError(f"store_raw: storage {store.name} is full")
        if notify and self.cnmi[1] in (1, 2, 3):
            self._urc(f'+CMTI: "{store.name}",{idx}'.encode(), sms=True)
        return idx


def _value_list(values: tuple[int, ...]) -> str:
    """``(0-3)`` for a run of three or more, else ``(0,2)`` (TS 27.005 test forms)."""
    v = sorted(values)
    if len(v) >= 3 and v == list(range(v[0], v[-1] + 1)):
        return f"({v[0]}-{v[-1]})"
    return "(" + ",".join(str(x) for x in v) + ")"
