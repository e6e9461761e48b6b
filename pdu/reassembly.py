"""Reassembly of concatenated SMS-DELIVERs (TS 23.040 §9.2.3.24.1, §9.2.3.24.8).

Parts belong together when they share sender (TP-OA as printed), reference,
reference width (8 or 16 bit) and total. Parts may arrive in any order;
a part whose sequence number is already held is a duplicate and ignored (the
first copy wins). Several messages may be in progress at once.

No clock inside: the caller passes ``now`` (any monotonic float, seconds) to
:meth:`Reassembler.add` and :meth:`Reassembler.expire`.

Bound: at most ``max_pending`` messages in progress. When a part starts a new
message past that bound, the message in progress that started first is
evicted: it is *not* dropped but queued and handed back by the next
:meth:`Reassembler.expire` call (with ``evicted=True``), so the caller still
sees every part it was given. That queue is bounded too (``max_pending``
entries): a caller that never calls :meth:`~Reassembler.expire` loses the
oldest evicted messages, counted in :attr:`Reassembler.dropped`. Memory per
message is bounded by 255 parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .address import Address
from .dcs import Alphabet
from .errors import PduError
from .tpdu import Deliver
from .udh import Ports

_Key = tuple[str, int, int, bool]


@dataclass(frozen=True, slots=True)
class CompletedMessage:
    """A whole message: one unsegmented SMS-DELIVER or all parts joined.

    ``text`` joins the parts' text (GSM 7-bit and UCS-2 parts), ``data`` the
    8-bit parts' data; ``encoding`` is the first part's; ``timestamp`` the
    TP-SCTS of part 1; ``parts`` are in sequence order.
    """

    sender: Address
    text: str | None
    data: bytes | None
    encoding: Alphabet
    parts: tuple[Deliver, ...]
    timestamp: datetime
    ports: Ports | None
    message_class: int | None
    smsc: Address | None


@dataclass(frozen=True, slots=True)
class IncompleteMessage:
    """A message handed back by :meth:`Reassembler.expire` before all parts came."""

    sender: Address
    ref: int
    total: int
    ref16: bool
    parts: tuple[Deliver, ...]
    missing: tuple[int, ...]
    first_seen: float
    evicted: bool = False


def _ucs2_joined(parts: tuple[Deliver, ...]) -> str | None:
    """All-UCS-2 parts decoded as one UTF-16 stream (a surrogate pair split
    across parts is rejoined); None unless every part kept its octets."""
    raws = []
    for p in parts:
        ud = p.tp_ud
        raw = ud.ucs2_octets
        if raw is None or ud.text is None or p.tp_dcs.alphabet is not Alphabet.UCS2:
            return None
        if raw.decode("utf-16-be", "replace") != ud.text:  # replaced since decode
            return None
        raws.append(raw)
    return b"".join(raws).decode("utf-16-be", "replace")


def _complete(parts: tuple[Deliver, ...]) -> CompletedMessage:
    first = parts[0]
    texts = [p.tp_ud.text for p in parts if p.tp_ud.text is not None]
    if len(parts) > 1 and first.tp_dcs.alphabet is Alphabet.UCS2:
        joined = _ucs2_joined(parts)
        if joined is not None:
            texts = [joined]
    datas = [p.tp_ud.data for p in parts if p.tp_ud.data is not None]
    return CompletedMessage(
        sender=first.tp_oa,
        text="".join(texts) if texts else None,
        data=b"".join(datas) if datas else None,
        encoding=first.tp_dcs.alphabet,
        parts=parts,
        timestamp=first.tp_scts,
        ports=first.tp_ud.ports,
        message_class=first.tp_dcs.message_class,
        smsc=first.smsc,
    )


class _Pending:
    __slots__ = ("first_seen", "parts")

    def __init__(self, now: float) -> None:
        self.first_seen = now
        self.parts: dict[int, Deliver] = {}


class Reassembler:
    """Collects concatenated parts; see the module doc for keys and bounds."""

    def __init__(self, max_pending: int = 64) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self.max_pending = max_pending
        self._pending: dict[_Key, _Pending] = {}  # insertion order = start order
        self._evicted: list[IncompleteMessage] = []
        #: Evicted messages lost because expire() was not called in time.
        self.dropped = 0

    def __len__(self) -> int:
        """Messages in progress."""
        return len(self._pending)

    def add(self, msg: Deliver, now: float) -> CompletedMessage | None:
        """Add one SMS-DELIVER; return the whole message when it is complete."""
        if not isinstance(msg, Deliver):
            raise PduError(f"only SMS-DELIVER parts are reassembled, not {type(msg).__name__}")
        c = msg.tp_ud.concat
        if c is None or c.total == 1:
            return _complete((msg,))
        key = (str(msg.tp_oa), c.ref, c.total, c.ref16)
        pending = self._pending.get(key)
        if pending is None:
            if len(self._pending) >= self.max_pending:
                self._evict_oldest()
            pending = _Pending(now)
            self._pending[key] = pending
        if c.seq in pending.parts:
            return None  # duplicate: the first copy wins
        pending.parts[c.seq] = msg
        if len(pending.parts) < c.total:
            return None
        del self._pending[key]
        return _complete(tuple(pending.parts[i] for i in range(1, c.total + 1)))

    def _incomplete(self, key: _Key, p: _Pending, evicted: bool) -> IncompleteMessage:
        _sender, ref, total, ref16 = key
        seqs = sorted(p.parts)
        first = p.parts[seqs[0]]
        return IncompleteMessage(
            sender=first.tp_oa,
            ref=ref,
            total=total,
            ref16=ref16,
            parts=tuple(p.parts[s] for s in seqs),
            missing=tuple(s for s in range(1, total + 1) if s not in p.parts),
            first_seen=p.first_seen,
            evicted=evicted,
        )

    def _evict_oldest(self) -> None:
        key = next(iter(self._pending))
        self._evicted.append(self._incomplete(key, self._pending.pop(key), True))
        if len(self._evicted) > self.max_pending:
            del self._evicted[0]
            self.dropped += 1

    def expire(self, now: float, max_age: float) -> list[IncompleteMessage]:
        """Hand back (and forget) messages started more than ``max_age`` before
        ``now``, plus any evicted since the last call, oldest first."""
        out, self._evicted = self._evicted, []
        for key in [k for k, p in self._pending.items() if now - p.first_seen > max_age]:
            out.append(self._incomplete(key, self._pending.pop(key), False))
        return out
