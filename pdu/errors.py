"""The codec's one declared error.

Every failure to decode bytes that came from a network or a module, and every
request to encode something the SMS formats cannot carry, raises
:class:`PduError` (a :class:`ValueError`). Nothing else escapes the codec for
bad input: no ``IndexError``, ``StopIteration`` or ``UnicodeError``.
"""

from __future__ import annotations


class PduError(ValueError):
    """A PDU (or a request to build one) violates 3GPP TS 23.040 / 23.038.

    ``field`` names the TPDU element at fault using the spec's names
    (``"TP-DCS"``, ``"TP-OA"``, ``"TP-UD"``...); ``offset`` is the octet
    offset in the input where the fault was found, when decoding.
    """

    def __init__(
        self, message: str, *, field: str | None = None, offset: int | None = None
    ) -> None:
        self.reason = message
        self.field = field
        self.offset = offset
        where = []
        if field is not None:
            where.append(field)
        if offset is not None:
            where.append(f"at octet {offset}")
        super().__init__(f"{' '.join(where)}: {message}" if where else message)
