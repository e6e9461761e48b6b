"""TP-SCTS / TP-DT (TS 23.040 §9.2.3.11) and TP-VP (§9.2.3.12).

A time stamp is 7 octets of swapped semi-octets: year (two digits: 90-99 read
as 1990-1999, 00-89 as 2000-2089, the pivot Gammu uses; the spec gives no
century), month, day, hour, minute, second, time zone. The time zone is a count
of quarter hours in two swapped BCD digits; bit 3 of the octet (the high bit
of the tens digit) is the sign (1 = negative). Decoded as an aware
:class:`datetime`; date and time digits that are not BCD or a date that does not
exist raise :class:`PduError` (see :func:`decode_scts` for the lenient reading
of the time stamps an SC writes).

Decision (time zone units digit A-F): some networks send a time zone whose
units semi-octet is not decimal (python-gsmmodem issue #15: ``C2``, from an SC
at UTC+7/+8). It is read as tens * 10 + units, as libGammu and python-gsmmodem
do (``C2`` is 2 * 10 + 12 = 32 quarters, +08:00), so every time zone octet
decodes: at most 7 * 10 + 15 = 85 quarter hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from ._bits import BCD, TO_BCD
from .errors import PduError

#: Largest quarter-hour count a time zone octet can carry: tens digit 7 (bit 3
#: is the sign) and a units semi-octet up to F read as 15 (module doc).
_TZ_MAX = 7 * 10 + 15
_TZ = tuple(timezone(timedelta(minutes=15 * q)) for q in range(-_TZ_MAX, _TZ_MAX + 1))


def _tz_of_octet(b: int) -> timezone:
    q = (b & 7) * 10 + (b >> 4)  # low nibble: sign bit and tens digit; high: units
    return _TZ[_TZ_MAX - q if b & 8 else _TZ_MAX + q]


#: Time zone of each of the 256 time zone octets (every one decodes).
_TZ_OF_OCTET = tuple(_tz_of_octet(b) for b in range(256))
#: Full year of each year octet (90-99 → 1990s, 00-89 → 2000s), -1 when not BCD.
_YEAR = tuple(-1 if v < 0 else v + (1900 if v >= 90 else 2000) for v in BCD)


def decode_timestamp(pdu: bytes, o: int, field: str) -> datetime:
    """Seven semi-octet octets at ``o`` as an aware datetime (§9.2.3.11)."""
    if o + 7 > len(pdu):
        raise PduError("time stamp truncated", field=field, offset=o)
    yo, moo, do, ho, mio, so, tzo = pdu[o : o + 7]
    y = _YEAR[yo]
    mo = BCD[moo]
    d = BCD[do]
    h = BCD[ho]
    mi = BCD[mio]
    s = BCD[so]
    tz = _TZ_OF_OCTET[tzo]
    if (y | mo | d | h | mi | s) < 0:
        raise PduError("time stamp has a non-decimal semi-octet", field=field, offset=o)
    try:
        return datetime(y, mo, d, h, mi, s, tzinfo=tz)
    except ValueError as exc:
        raise PduError(f"invalid date or time ({exc})", field=field, offset=o) from None


#: What :func:`decode_scts` gives for a time stamp that is not a date. The
#: last instant the two-digit year can express, so that it re-encodes as
#: itself and never looks older than a real time stamp (a receiver that ages
#: held parts by TP-SCTS falls back to its own clock).
SCTS_UNKNOWN = datetime(2089, 12, 31, 23, 59, 59, tzinfo=UTC)


def decode_scts(pdu: bytes, o: int, field: str) -> datetime:
    """TP-SCTS or TP-DT, the time stamps an SC writes (§9.2.3.11, §9.2.3.13).

    Decision: a time stamp with a non-decimal date or time digit, or one that
    is not a date (month 0, 31 April, all ``F``...), decodes as
    :data:`SCTS_UNKNOWN` instead of failing the whole message: the spec gives
    a receiver no rule for it, and the text must not be lost over a field
    that only informs. A time stamp cut short is still a :class:`PduError`.
    """
    if o + 7 > len(pdu):
        raise PduError("time stamp truncated", field=field, offset=o)
    try:
        return decode_timestamp(pdu, o, field)
    except PduError:
        return SCTS_UNKNOWN


def encode_timestamp(t: datetime, field: str) -> bytes:
    """An aware datetime (year 1990-2089, offset a multiple of 15 min, |offset| <
    20 h) as seven semi-octet octets (§9.2.3.11). Microseconds are dropped."""
    off = t.utcoffset()
    if off is None:
        raise PduError("time stamp must be timezone-aware", field=field)
    if not 1990 <= t.year <= 2089:
        raise PduError(f"year {t.year} outside 1990-2089", field=field)
    minutes, rem = divmod(int(off.total_seconds()), 60)
    q, qrem = divmod(abs(minutes), 15)
    if rem or qrem or q > 79:
        raise PduError(
            f"time zone offset {off} is not a multiple of 15 minutes within ±19:45", field=field
        )
    tz = TO_BCD[q] | (8 if minutes < 0 else 0)
    return bytes(
        (
            TO_BCD[t.year % 100],
            TO_BCD[t.month],
            TO_BCD[t.day],
            TO_BCD[t.hour],
            TO_BCD[t.minute],
            TO_BCD[t.second],
            tz,
        )
    )


# -- TP-VP ------------------------------------------------------------------

#: TP-VPF values (bits 4-3 of the SMS-SUBMIT first octet, §9.2.3.3).
VPF_NONE = 0
VPF_ENHANCED = 1
VPF_RELATIVE = 2
VPF_ABSOLUTE = 3


def relative_to_timedelta(v: int) -> timedelta:
    """Relative TP-VP octet (§9.2.3.12.1) as a duration."""
    if v <= 143:
        return timedelta(minutes=(v + 1) * 5)
    if v <= 167:
        return timedelta(hours=12, minutes=(v - 143) * 30)
    if v <= 196:
        return timedelta(days=v - 166)
    return timedelta(weeks=v - 192)


def timedelta_to_relative(d: timedelta) -> int:
    """The smallest relative TP-VP octet whose period is at least ``d`` (exact
    periods map back to themselves). Longer than 63 weeks → :class:`PduError`."""
    if d <= timedelta(0):
        raise PduError("validity period must be positive", field="TP-VP")
    minutes = -(-d // timedelta(minutes=1))  # rounded up
    if minutes <= 720:
        return max(0, -(-minutes // 5) - 1)
    if minutes <= 1440:
        return 143 + -(-(minutes - 720) // 30)
    days = -(-minutes // 1440)
    if days <= 30:
        return 166 + days
    weeks = -(-days // 7)
    if weeks <= 63:
        return 192 + max(weeks, 5)
    raise PduError(f"validity period {d} exceeds 63 weeks", field="TP-VP")


@dataclass(frozen=True, slots=True)
class EnhancedValidity:
    """Enhanced TP-VP (§9.2.3.12.3): seven octets kept as they are.

    Octet 1: bit 7 extension, bit 6 single-shot SM, bits 2-0 format
    (0 none, 1 relative octet as §9.2.3.12.1, 2 relative seconds 0-255,
    3 relative hh mm ss in semi-octets, others reserved).
    """

    octets: bytes

    @property
    def single_shot(self) -> bool:
        """Bit 6 of the first octet."""
        return bool(self.octets[0] & 0x40) if self.octets else False

    @property
    def period(self) -> timedelta | None:
        """The period the format describes; ``None`` for none or reserved formats."""
        o = self.octets
        if len(o) != 7:
            return None
        fmt = o[0] & 7
        if fmt == 1:
            return relative_to_timedelta(o[1])
        if fmt == 2:
            return timedelta(seconds=o[1])
        if fmt == 3:
            h, m, s = BCD[o[1]], BCD[o[2]], BCD[o[3]]
            if min(h, m, s) < 0:
                return None
            return timedelta(hours=h, minutes=m, seconds=s)
        return None


ValidityPeriod = timedelta | datetime | EnhancedValidity


def vpf_of(vp: ValidityPeriod | None) -> int:
    """TP-VPF for a validity period value."""
    if vp is None:
        return VPF_NONE
    if isinstance(vp, timedelta):
        return VPF_RELATIVE
    if isinstance(vp, datetime):
        return VPF_ABSOLUTE
    if isinstance(vp, EnhancedValidity):
        return VPF_ENHANCED
    raise PduError(f"validity period of type {type(vp).__name__}", field="TP-VP")


def encode_vp(vp: ValidityPeriod | None) -> bytes:
    """The TP-VP field for ``vp`` (empty for none)."""
    if vp is None:
        return b""
    if isinstance(vp, timedelta):
        return bytes((timedelta_to_relative(vp),))
    if isinstance(vp, datetime):
        return encode_timestamp(vp, "TP-VP")
    if len(vp.octets) != 7:
        raise PduError("enhanced validity period must be 7 octets", field="TP-VP")
    return vp.octets
