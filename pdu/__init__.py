"""Pure SMS PDU codec (3GPP TS 23.040, TS 23.038): no I/O, no clock, no global state.

See docs/pdu.md for the API and the decisions taken where the specs leave room.
"""

from .address import Address
from .dcs import Alphabet, DataCoding, MessageWaiting
from .errors import PduError
from .jsonview import JSON_KEYS, to_json
from .reassembly import CompletedMessage, IncompleteMessage, Reassembler
from .segment import Plan, capacity, deliver_parts, plan, submit_parts
from .status import StatusCategory, status_category, status_meaning
from .timestamps import EnhancedValidity
from .tpdu import Deliver, Message, StatusReport, Submit, cmgs_pdu, decode, encode
from .udh import Concat, InformationElement, Ports, UserData

__all__ = [
    "JSON_KEYS",
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
