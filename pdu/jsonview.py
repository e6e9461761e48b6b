"""A JSON-ready view of a decoded message (the CLI's ``--json`` output).

Every message gives exactly the keys of :data:`JSON_KEYS`, ``None`` where a
key does not apply: ``sender`` for SMS-DELIVER, ``recipient`` for SMS-SUBMIT
and SMS-STATUS-REPORT (TP-DA / TP-RA), ``text`` for GSM 7-bit and UCS-2,
``data`` (hex) for 8-bit data, ``timestamp`` (TP-SCTS, ISO 8601 with offset)
for SMS-DELIVER and SMS-STATUS-REPORT (``None`` when the wire held no date:
:data:`pdu.SCTS_UNKNOWN`), ``reference`` (TP-MR) for SMS-SUBMIT
and SMS-STATUS-REPORT, ``status`` (TP-ST) for SMS-STATUS-REPORT.
International numbers carry a leading ``+``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .dcs import DataCoding
from .errors import PduError
from .timestamps import SCTS_UNKNOWN
from .tpdu import Deliver, Message, StatusReport, Submit
from .udh import UserData

JSON_KEYS = (
    "type",
    "smsc",
    "sender",
    "recipient",
    "encoding",
    "text",
    "data",
    "timestamp",
    "concat",
    "ports",
    "message_class",
    "reference",
    "status",
)


def _ud_fields(d: dict[str, Any], ud: UserData | None, dcs: DataCoding | None) -> None:
    if ud is None:
        if dcs is not None:
            d["encoding"] = dcs.alphabet.value
            d["message_class"] = dcs.message_class
        return
    dcs = dcs if dcs is not None else DataCoding(0)
    d["encoding"] = dcs.alphabet.value
    d["message_class"] = dcs.message_class
    d["text"] = ud.text
    d["data"] = ud.data.hex() if ud.data is not None else None
    c = ud.concat
    if c is not None:
        d["concat"] = {"ref": c.ref, "total": c.total, "seq": c.seq}
    p = ud.ports
    if p is not None:
        d["ports"] = {"src": p.src, "dst": p.dst}


def _stamp(t: datetime) -> str | None:
    return None if t == SCTS_UNKNOWN else t.isoformat()


def to_json(msg: Message) -> dict[str, Any]:
    """The message as a dict with exactly :data:`JSON_KEYS`."""
    d: dict[str, Any] = dict.fromkeys(JSON_KEYS)
    d["smsc"] = str(msg.smsc) if msg.smsc is not None else None
    if isinstance(msg, Deliver):
        d["type"] = "deliver"
        d["sender"] = str(msg.tp_oa)
        d["timestamp"] = _stamp(msg.tp_scts)
        _ud_fields(d, msg.tp_ud, msg.tp_dcs)
    elif isinstance(msg, Submit):
        d["type"] = "submit"
        d["recipient"] = str(msg.tp_da)
        d["reference"] = msg.tp_mr
        _ud_fields(d, msg.tp_ud, msg.tp_dcs)
    elif isinstance(msg, StatusReport):
        d["type"] = "status-report"
        d["recipient"] = str(msg.tp_ra)
        d["timestamp"] = _stamp(msg.tp_scts)
        d["reference"] = msg.tp_mr
        d["status"] = msg.tp_st
        _ud_fields(d, msg.tp_ud, msg.tp_dcs)
    else:
        raise PduError(f"cannot describe {type(msg).__name__}")
    return d
