"""TP-ST, the status of a status report (3GPP TS 23.040 §9.2.3.15)."""

from __future__ import annotations

import enum


class StatusCategory(enum.StrEnum):
    """The four ranges of TP-ST (§9.2.3.15)."""

    COMPLETED = "completed"  # 0x00-0x1F: short message transaction completed
    TEMPORARY_RETRYING = "temporary-error-retrying"  # 0x20-0x3F: SC still trying
    PERMANENT = "permanent-error"  # 0x40-0x5F: SC is not making any more attempts
    TEMPORARY_STOPPED = "temporary-error-stopped"  # 0x60-0x7F: SC is not making any more attempts
    RESERVED = "reserved"  # 0x80-0xFF (1xxxxxxx): reserved


_MEANINGS = {
    0x00: "short message received by the SME",
    0x01: "short message forwarded by the SC to the SME but the SC is unable to confirm delivery",
    0x02: "short message replaced by the SC",
    0x20: "congestion",
    0x21: "SME busy",
    0x22: "no response from SME",
    0x23: "service rejected",
    0x24: "quality of service not available",
    0x25: "error in SME",
    0x40: "remote procedure error",
    0x41: "incompatible destination",
    0x42: "connection rejected by SME",
    0x43: "not obtainable",
    0x44: "quality of service not available",
    0x45: "no interworking available",
    0x46: "SM validity period expired",
    0x47: "SM deleted by originating SME",
    0x48: "SM deleted by SC administration",
    0x49: "SM does not exist",
    0x60: "congestion",
    0x61: "SME busy",
    0x62: "no response from SME",
    0x63: "service rejected",
    0x64: "quality of service not available",
    0x65: "error in SME",
}


def status_category(st: int) -> StatusCategory:
    """The range TP-ST falls in (§9.2.3.15). Reserved or SC-specific values
    inside a range keep that range's category; values with bit 7 set are
    :attr:`StatusCategory.RESERVED` (not a delivery: callers should treat them
    as a failure they cannot retry)."""
    if st & 0x80:
        return StatusCategory.RESERVED
    return (
        StatusCategory.COMPLETED,
        StatusCategory.TEMPORARY_RETRYING,
        StatusCategory.PERMANENT,
        StatusCategory.TEMPORARY_STOPPED,
    )[st >> 5]


def status_meaning(st: int) -> str:
    """A readable meaning of TP-ST."""
    m = _MEANINGS.get(st)
    if m is not None:
        return m
    if st & 0x80:
        return "reserved"
    if (st & 0x1F) >= 0x10:
        return "values specific to each SC"
    return "reserved"


def is_delivered(st: int) -> bool:
    """TP-ST says the transaction completed (0x00-0x1F)."""
    return st < 0x20
