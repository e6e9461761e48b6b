"""Pure SMS PDU codec (3GPP TS 23.040, TS 23.038): no I/O, no clock, no global state.

See docs/pdu.md for the API and the decisions taken where the specs leave room.
"""

from typing import TYPE_CHECKING, Any

from .address import Address
from .dcs import Alphabet, DataCoding, MessageWaiting
from .errors import PduError
from .reassembly import CompletedMessage, IncompleteMessage, Reassembler
from .segment import Plan, capacity, deliver_parts, plan, submit_parts
from .status import StatusCategory, status_category, status_meaning
from .timestamps import SCTS_UNKNOWN, EnhancedValidity
from .tpdu import Deliver, Message, StatusReport, Submit, cmgs_pdu, decode, encode
from .udh import Concat, InformationElement, Ports, UserData

if TYPE_CHECKING:
    from .jsonview import JSON_KEYS, to_json

__all__ = [
    "JSON_KEYS",
    "SCTS_UNKNOWN",
    "Address",
    "Alphabet",
    "CompletedMessage",
    "Concat",
    "DataCoding",
    "Deliver",
    "EnhancedValidity",
    "IncompleteMessage",
    "InformationElement",
    "Message",
    "MessageWaiting",
    "PduError",
    "Plan",
    "Ports",
    "Reassembler",
    "StatusCategory",
    "StatusReport",
    "Submit",
    "UserData",
    "capacity",
    "cmgs_pdu",
    "decode",
    "deliver_parts",
    "encode",
    "plan",
    "status_category",
    "status_meaning",
    "submit_parts",
    "to_json",
]


def __getattr__(name: str) -> Any:
    """``pdu.to_json`` and ``pdu.JSON_KEYS`` load :mod:`pdu.jsonview` when first
    used (PEP 562): the SMS service decodes and encodes without it."""
    if name in ("JSON_KEYS", "to_json"):
        from . import jsonview  # noqa: PLC0415

        return getattr(jsonview, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
