"""Precomputed semi-octet tables and hex parsing for the hot paths (internal).

Only immutable module-level tables are kept (no global mutable state).
"""

from __future__ import annotations

from .errors import PduError

#: Nibble swap of every octet: semi-octet fields (TS 23.040 §9.1.2.3) store the
#: first digit in the low nibble.
SWAP = bytes(((b & 0x0F) << 4) | (b >> 4) for b in range(256))

#: Value of a swapped-BCD octet (low nibble = tens digit), or -1 when a nibble
#: is not a decimal digit (TS 23.040 §9.2.3.11).
BCD = tuple(
    (b & 0x0F) * 10 + (b >> 4) if (b & 0x0F) < 10 and (b >> 4) < 10 else -1 for b in range(256)
)

#: Swapped-BCD octet of a value 0-99.
TO_BCD = bytes(((v % 10) << 4) | (v // 10) for v in range(100))


def parse_hex(text: str) -> bytes:
    """Bytes of a hex string; case-insensitive, all whitespace ignored."""
    try:
        return bytes.fromhex(text)  # accepts whitespace between octets
    except ValueError:
        pass
    try:
        return bytes.fromhex("".join(text.split()))
    except ValueError:
        raise PduError("not a hexadecimal string", field="PDU") from None
