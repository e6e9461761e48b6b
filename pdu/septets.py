"""Packing of 7-bit septets into octets (3GPP TS 23.038 §6.1.2.1.1).

Septets are packed least-significant bit first. When a user data header
precedes GSM 7-bit text, the text starts on a septet boundary counted from
the start of TP-UD, so ``fill_bits`` (0-6) padding bits come first
(TS 23.040 §9.2.3.24).
"""

from __future__ import annotations

from .errors import PduError


def packed_length(septet_count: int, fill_bits: int = 0) -> int:
    """Octets needed for ``septet_count`` septets after ``fill_bits`` fill bits."""
    return (septet_count * 7 + fill_bits + 7) // 8


def pack_septets(septets: bytes, fill_bits: int = 0) -> bytes:
    """Pack septet values (each 0-127) into octets, after ``fill_bits`` zero bits."""
    if not 0 <= fill_bits <= 6:
        raise PduError(f"fill bits must be 0-6, not {fill_bits}", field="TP-UD")
    acc = 0
    nbits = fill_bits
    out = bytearray()
    for s in septets:
        if s > 0x7F:
            raise PduError(f"septet value {s:#x} exceeds 7 bits", field="TP-UD")
        acc |= s << nbits
        nbits += 7
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack_septets(data: bytes, septet_count: int, fill_bits: int = 0) -> bytes:
    """Unpack ``septet_count`` septets from ``data``, skipping ``fill_bits`` first.

    Raises :class:`PduError` when ``data`` is too short for the count.
    """
    if not 0 <= fill_bits <= 6:
        raise PduError(f"fill bits must be 0-6, not {fill_bits}", field="TP-UD")
    if septet_count < 0:
        raise PduError("negative septet count", field="TP-UDL")
    need = packed_length(septet_count, fill_bits)
    if need > len(data):
        raise PduError(
            f"{septet_count} septets need {need} octets, only {len(data)} present", field="TP-UD"
        )
    # One big integer is the fastest pure-Python bit reader for short inputs.
    acc = int.from_bytes(data[:need], "little") >> fill_bits
    out = bytearray(septet_count)
    for i in range(septet_count):
        out[i] = acc & 0x7F
        acc >>= 7
    return bytes(out)
