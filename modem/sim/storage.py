"""Message storages of the simulated module (TS 27.005 §3.1 <mem1>/<mem2>/<mem3>).

``SM`` (SIM) and ``ME`` (module flash) are real storages with a capacity;
``MT`` is their union (TS 27.005: "all storages associated with ME"), SM
indexes first, ME after. Stored PDUs are kept exactly as on the AT interface
(SMSC address field first, then the TPDU).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

#: <stat> values, TS 27.005 §3.1 (PDU mode integers, text mode strings).
REC_UNREAD, REC_READ, STO_UNSENT, STO_SENT, ALL = 0, 1, 2, 3, 4
STAT_TEXT = {
    REC_UNREAD: "REC UNREAD",
    REC_READ: "REC READ",
    STO_UNSENT: "STO UNSENT",
    STO_SENT: "STO SENT",
    ALL: "ALL",
}
STAT_FROM_TEXT = {v: k for k, v in STAT_TEXT.items()}


@dataclass
class StoredMessage:
    """One occupied storage slot."""

    index: int
    stat: int
    #: The PDU as the AT interface shows it: SMSC address field, then the TPDU.
    pdu: bytes
    #: TPDU length in octets (the <length> of +CMGR/+CMGL/+CMTI PDU mode).
    length: int
    #: "deliver", "submit" or "status-report" (from TP-MTI; "deliver" if unknown).
    kind: str = "deliver"
    #: A damaged record (``SimModem.store_raw``): the PDU line exactly as printed.
    raw_text: str | None = None

    @property
    def pdu_hex(self) -> str:
        """The PDU line of +CMGR/+CMGL (``raw_text`` as it is when set)."""
        if self.raw_text is not None:
            return self.raw_text
        return self.pdu.hex().upper()


class Storage:
    """A fixed-capacity storage with indexes ``base .. base + capacity - 1``."""

    def __init__(self, name: str, capacity: int, base: int, *, cyclic: bool = False) -> None:
        self.name = name
        self.capacity = capacity
        self.base = base
        #: Allocate after the last allocated index (wrapping, skipping occupied
        #: slots) instead of the lowest free one (profile ``indexes_never_reused``).
        self.cyclic = cyclic
        self._last: int | None = None
        self._slots: dict[int, StoredMessage] = {}

    @property
    def used(self) -> int:
        return len(self._slots)

    @property
    def full(self) -> bool:
        return len(self._slots) >= self.capacity

    def valid_index(self, index: int) -> bool:
        return self.base <= index < self.base + self.capacity

    def get(self, index: int) -> StoredMessage | None:
        return self._slots.get(index)

    def add(
        self, stat: int, pdu: bytes, length: int, kind: str, *, raw_text: str | None = None
    ) -> int | None:
        """Store in the lowest free slot (or, ``cyclic``, the next free one after
        the last allocated); the index, or None when full."""
        start = 0
        if self.cyclic and self._last is not None:
            start = self._last - self.base + 1
        for off in range(self.capacity):
            index = self.base + (start + off) % self.capacity
            if index not in self._slots:
                self._slots[index] = StoredMessage(index, stat, pdu, length, kind, raw_text)
                self._last = index
                return index
        return None

    def delete(self, index: int) -> bool:
        return self._slots.pop(index, None) is not None

    def messages(self) -> list[StoredMessage]:
        """The stored messages, by index."""
        return [self._slots[i] for i in sorted(self._slots)]

    def items(self) -> list[tuple[int, StoredMessage]]:
        """(index as the AT interface shows it, message), by index."""
        return [(m.index, m) for m in self.messages()]

    def __iter__(self) -> Iterator[StoredMessage]:
        return iter(self.messages())

    def __len__(self) -> int:
        return len(self._slots)


class UnionStorage(Storage):
    """``MT``: SM then ME under one index range (read/write through to both)."""

    def __init__(self, sm: Storage, me: Storage) -> None:
        super().__init__("MT", sm.capacity + me.capacity, sm.base)
        self._sm = sm
        self._me = me

    def _locate(self, index: int) -> tuple[Storage, int] | None:
        if not self.valid_index(index):
            return None
        off = index - self.base
        if off < self._sm.capacity:
            return self._sm, self._sm.base + off
        return self._me, self._me.base + off - self._sm.capacity

    def _outer(self, store: Storage, index: int) -> int:
        off = index - store.base
        return self.base + off + (0 if store is self._sm else self._sm.capacity)

    @property
    def used(self) -> int:
        return self._sm.used + self._me.used

    @property
    def full(self) -> bool:
        return self._sm.full and self._me.full

    def get(self, index: int) -> StoredMessage | None:
        loc = self._locate(index)
        return None if loc is None else loc[0].get(loc[1])

    def add(
        self, stat: int, pdu: bytes, length: int, kind: str, *, raw_text: str | None = None
    ) -> int | None:
        for store in (self._sm, self._me):
            idx = store.add(stat, pdu, length, kind, raw_text=raw_text)
            if idx is not None:
                return self._outer(store, idx)
        return None

    def delete(self, index: int) -> bool:
        loc = self._locate(index)
        return loc is not None and loc[0].delete(loc[1])

    def messages(self) -> list[StoredMessage]:
        # The same objects: changes of stat write through; items() gives MT's indexes.
        return self._sm.messages() + self._me.messages()

    def items(self) -> list[tuple[int, StoredMessage]]:
        return [(self.outer_index(m), m) for m in self.messages()]

    def outer_index(self, m: StoredMessage) -> int:
        """The MT index of a message stored in SM or ME."""
        store = self._sm if self._sm.get(m.index) is m else self._me
        return self._outer(store, m.index)

    def __len__(self) -> int:
        return self.used
