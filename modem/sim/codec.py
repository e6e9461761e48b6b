"""The simulator's use of the project codec (:mod:`pdu`), in one place.

The simulated module and its network build and read every PDU with the same
codec the client uses; nothing here encodes bits by hand.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pdu
from pdu import Address, Alphabet, DataCoding, Deliver, PduError, StatusReport, Submit, UserData
from pdu.alphabet import decode_gsm7, encode_gsm7
from pdu.timestamps import relative_to_timedelta

__all__ = [
    "Described",
    "PduError",
    "alphabet_of_dcs",
    "build_delivers",
    "build_status_report",
    "build_submit",
    "decode_with_mr",
    "describe",
    "gsm_bytes_to_str",
    "kind_of",
    "message_class",
    "str_to_gsm_bytes",
    "to_json",
    "tpdu_length",
    "wants_status_report",
    "with_destination",
]

_KINDS = {0: "deliver", 1: "submit", 2: "status-report"}


def tpdu_length(raw: bytes) -> int:
    """TPDU octets after the SMSC field (the <length> of TS 27.005 PDU mode)."""
    if not raw:
        return 0
    return max(0, len(raw) - 1 - raw[0])


def kind_of(raw: bytes, *, strict: bool = False) -> str:
    """ "deliver", "submit" or "status-report" from TP-MTI; strict: decode it all."""
    if strict:
        msg = pdu.decode(raw)
        return _KINDS[msg.tp_mti]
    if not raw or raw[0] + 1 >= len(raw):
        return "deliver"
    return _KINDS.get(raw[raw[0] + 1] & 3, "deliver")


def message_class(raw: bytes) -> int | None:
    """TP-DCS message class of a DELIVER, None when none or undecodable."""
    try:
        msg = pdu.decode(raw)
    except PduError:
        return None
    if isinstance(msg, Deliver):
        return msg.tp_dcs.message_class
    return None


def raw_user_data(raw: bytes) -> bytes:
    """The TP-UD octets (header included) of a DELIVER or SUBMIT, SMSC field first."""
    off = raw[0] + 1
    fo = raw[off]
    off += 1 if fo & 3 == 0 else 2  # SUBMIT: TP-MR follows TP-MTI
    off += 2 + (raw[off] + 1) // 2  # address: length in semi-octets, type, digits
    off += 2  # TP-PID, TP-DCS
    if fo & 3 == 0:
        off += 7  # TP-SCTS
    else:
        off += {0: 0, 2: 1}.get((fo >> 3) & 3, 7)  # TP-VP per TP-VPF
    return raw[off + 1 :]  # after TP-UDL


def alphabet_of_dcs(dcs: int) -> str:
    return str(DataCoding(dcs & 0xFF).alphabet.value)


def _address(number: str | None) -> Address | None:
    return Address.parse(number) if number else None


def build_delivers(
    sender: str,
    content: str | bytes,
    *,
    scts: datetime,
    encoding: str | None,
    ref: int,
    smsc: str | None,
    message_class: int | None = None,
) -> list[bytes]:
    """SMS-DELIVER PDUs (SMSC field first) for ``content``, concatenated if needed."""
    alph = Alphabet(encoding) if encoding is not None else None
    if isinstance(content, bytes) and alph is None:
        alph = Alphabet.DATA8
    parts = pdu.deliver_parts(
        sender,
        content,
        scts=scts,
        encoding=alph,
        ref=ref,
        smsc=_address(smsc),
        message_class=message_class,
    )
    return [pdu.encode(p) for p in parts]


def build_submit(
    da: str,
    content: str | bytes,
    *,
    fo: int,
    vp: int,
    pid: int,
    dcs: int,
    smsc: str | None,
) -> bytes:
    """A text-mode (+CMGF=1) SMS-SUBMIT from +CSMP <fo>,<vp>,<pid>,<dcs> (TS 27.005 §3.3.2)."""
    coding = DataCoding(dcs & 0xFF)
    if coding.alphabet is Alphabet.DATA8:
        ud = UserData(data=content if isinstance(content, bytes) else content.encode("latin-1"))
    elif isinstance(content, bytes):
        try:
            text = content.decode("utf-16-be") if coding.alphabet is Alphabet.UCS2 else ""
        except UnicodeDecodeError:
            raise PduError("bad UCS-2 data", field="TP-UD") from None
        ud = UserData(text=text)
    else:
        ud = UserData(text=content)
    vpf = (fo >> 3) & 3
    tp_vp: timedelta | None = None
    if vpf == 2:
        tp_vp = relative_to_timedelta(vp)
    msg = Submit(
        tp_da=Address.parse(da) if da else Address(""),  # +CMGW without <da>
        tp_ud=ud,
        tp_pid=pid,
        tp_dcs=coding,
        tp_vp=tp_vp,
        tp_srr=bool(fo & 0x20),
        tp_rd=bool(fo & 0x04),
        tp_rp=bool(fo & 0x80),
        smsc=_address(smsc),
    )
    return pdu.encode(msg)


def decode_with_mr(raw: bytes, mr: int) -> Any:
    """The SUBMIT the module sends: TP-MR replaced by the module's reference."""
    msg = pdu.decode(raw)
    if isinstance(msg, Submit):
        return dataclasses.replace(msg, tp_mr=mr)
    return msg


def wants_status_report(msg: Any) -> bool:
    return isinstance(msg, Submit) and msg.tp_srr


def build_status_report(submit: Submit, mr: int, now: datetime, *, smsc: str | None) -> bytes:
    """SMS-STATUS-REPORT "received by the SME" (TP-ST 0) for a SUBMIT."""
    report = StatusReport(
        tp_mr=mr, tp_ra=submit.tp_da, tp_scts=now, tp_dt=now, tp_st=0, smsc=_address(smsc)
    )
    return pdu.encode(report)


def with_destination(raw: bytes, da: str) -> bytes:
    msg = pdu.decode(raw)
    if not isinstance(msg, Submit):
        raise PduError("not a SUBMIT", field="TP-MTI")
    return pdu.encode(dataclasses.replace(msg, tp_da=Address.parse(da)))


def gsm_bytes_to_str(raw: bytes) -> str:
    """Bytes typed in the "GSM" TE character set (septet values) -> text."""
    return decode_gsm7(raw)


def str_to_gsm_bytes(text: str) -> bytes:
    """Text -> "GSM" TE character set bytes; characters outside it become "?"."""
    out = bytearray()
    for ch in text:
        try:
            out += encode_gsm7(ch)
        except PduError:
            out += b"?"
    return bytes(out)


def scts_text(t: datetime) -> str:
    """TS 27.005 text-mode time: "yy/MM/dd,hh:mm:ss±zz" (zz in quarter hours)."""
    off = t.utcoffset() or timedelta(0)
    q = int(off.total_seconds() // 900)
    sign = "+" if q >= 0 else "-"
    return f"{t:%y/%m/%d,%H:%M:%S}{sign}{abs(q):02d}"


@dataclass
class Described:
    """What text mode shows of a stored or routed message."""

    kind: str
    address: str
    toa: int
    fo: int
    pid: int = 0
    dcs: int = 0
    vp: int = 167
    mr: int = 0
    st: int = 0
    scts_text: str = ""
    dt_text: str = ""
    text: str | None = None
    data: bytes = b""
    ud_length: int = 0
    #: TP-UD as sent, header included (text mode shows it as hex when TP-UDHI is set).
    raw_ud: bytes = b""


def describe(raw: bytes) -> Described:
    msg = pdu.decode(raw)
    fo = raw[raw[0] + 1]
    if isinstance(msg, StatusReport):
        return Described(
            "status-report",
            str(msg.tp_ra),
            msg.tp_ra.type_octet,
            fo,
            mr=msg.tp_mr,
            st=msg.tp_st,
            scts_text=scts_text(msg.tp_scts),
            dt_text=scts_text(msg.tp_dt),
        )
    ud = msg.tp_ud
    text = ud.text if msg.tp_dcs.alphabet is not Alphabet.DATA8 else None
    data = ud.data or b""
    if msg.tp_dcs.alphabet is Alphabet.UCS2 and text is not None:
        ud_len = len(text.encode("utf-16-be"))
    else:
        ud_len = len(text) if text is not None else len(data)
    if isinstance(msg, Deliver):
        return Described(
            "deliver",
            str(msg.tp_oa),
            msg.tp_oa.type_octet,
            fo,
            pid=msg.tp_pid,
            dcs=msg.tp_dcs.value,
            scts_text=scts_text(msg.tp_scts),
            text=text,
            data=data,
            ud_length=ud_len,
            raw_ud=raw_user_data(raw),
        )
    return Described(
        "submit",
        str(msg.tp_da),
        msg.tp_da.type_octet,
        fo,
        pid=msg.tp_pid,
        dcs=msg.tp_dcs.value,
        mr=msg.tp_mr,
        text=text,
        data=data,
        ud_length=ud_len,
        raw_ud=raw_user_data(raw),
    )


def to_json(msg: Any) -> dict[str, Any]:
    """The codec's JSON form of a message (:func:`pdu.to_json`)."""
    return dict(pdu.to_json(msg))
