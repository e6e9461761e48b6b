"""Pure SMS PDU codec (3GPP TS 23.040, TS 23.038): no I/O, no clock, no global state."""

from .errors import PduError

__all__ = ["PduError"]
