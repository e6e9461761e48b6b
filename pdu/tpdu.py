"""SMS-DELIVER, SMS-SUBMIT and SMS-STATUS-REPORT (3GPP TS 23.040 §9.2.2).

Both directions of each: :func:`decode` turns the octets a module prints for
``AT+CMGR``/``AT+CMGL``/``+CMT``/``+CDS`` into frozen dataclasses, and
:func:`encode` does the reverse. With ``smsc=True`` the PDU starts with the
SMSC field of TS 27.005 §3.1 (``00`` = none).

TP-MTI (bits 1-0 of the first octet, §9.2.3.1) selects the TPDU as the mobile
station sees it: 00 SMS-DELIVER (network to MS), 01 SMS-SUBMIT (MS to
network: messages the MS stored or sent), 10 SMS-STATUS-REPORT, 11 reserved:
decoded as an SMS-DELIVER, as §9.2.3.1 tells a receiving MS to (re-encoding
gives TP-MTI 00; storing the PDU exactly as received is the module's job).

Error policy: any malformed input raises :class:`PduError` with the field and
octet offset; nothing else escapes. Decoding is lenient where the spec asks
receivers to be (reserved DCS values, invalid concatenation elements, an F
among an address's semi-octets, octets after the last user data octet are
ignored) and where real SCs send what the spec has no rule for and the text
is still whole: a time zone units digit A-F, a TP-SCTS/TP-DT that is not a
date (:data:`~pdu.timestamps.SCTS_UNKNOWN`), a GSM 7-bit header with no text
whose TP-UDL falls short of it. Encoding is strict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from . import septets as _septets
from ._bits import parse_hex
from .address import Address, decode_address, decode_smsc, encode_address, encode_smsc
from .alphabet import decode_gsm7, encode_gsm7
from .dcs import DCS_INFO, Alphabet, DataCoding
from .errors import PduError
from .national import LOCKING_LANGUAGES, SINGLE_LANGUAGES
from .timestamps import (
    VPF_ABSOLUTE,
    VPF_ENHANCED,
    VPF_RELATIVE,
    EnhancedValidity,
    ValidityPeriod,
    decode_scts,
    decode_timestamp,
    encode_timestamp,
    encode_vp,
    relative_to_timedelta,
    vpf_of,
)
from .udh import (
    MAX_UD_OCTETS,
    MAX_UD_SEPTETS,
    InformationElement,
    UserData,
    decode_header,
    encode_header,
    languages_of,
)

_GSM7 = Alphabet.GSM7
_DATA8 = Alphabet.DATA8
_UCS2 = Alphabet.UCS2
_DCS = tuple(DataCoding(v) for v in range(256))  # immutable, shared
_DCS0 = _DCS[0]
_EMPTY_TEXT = UserData(text="")
_unpack = _septets.unpack_septets
_pack = _septets.pack_septets

#: TP-MTI values (§9.2.3.1).
MTI_DELIVER = 0
MTI_SUBMIT = 1
MTI_STATUS_REPORT = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Deliver:
    """SMS-DELIVER (TS 23.040 §9.2.2.1), network to mobile station.

    ``tp_mms`` is True when more messages are waiting in the SC (the bit is 0
    on the wire, §9.2.3.2); the usual value is False (first octet 0x04).
    """

    tp_oa: Address
    tp_scts: datetime
    tp_ud: UserData = _EMPTY_TEXT
    tp_pid: int = 0
    tp_dcs: DataCoding = _DCS0
    tp_mms: bool = False
    tp_lp: bool = False
    tp_sri: bool = False
    tp_rp: bool = False
    smsc: Address | None = None

    @property
    def tp_mti(self) -> int:
        """Message type indicator: 0."""
        return MTI_DELIVER

    @property
    def tp_udhi(self) -> bool:
        """TP-UDHI: TP-UD starts with a header."""
        return bool(self.tp_ud.header)


@dataclass(frozen=True, slots=True, kw_only=True)
class Submit:
    """SMS-SUBMIT (TS 23.040 §9.2.2.2), mobile station to network.

    ``tp_vp`` is ``None`` (no TP-VP), a :class:`~datetime.timedelta` (relative
    format, rounded up to the next representable period), an aware
    :class:`~datetime.datetime` (absolute) or :class:`EnhancedValidity`;
    TP-VPF follows from its type.
    """

    tp_da: Address
    tp_ud: UserData = _EMPTY_TEXT
    tp_mr: int = 0
    tp_pid: int = 0
    tp_dcs: DataCoding = _DCS0
    tp_vp: ValidityPeriod | None = None
    tp_rd: bool = False
    tp_srr: bool = False
    tp_rp: bool = False
    smsc: Address | None = None

    @property
    def tp_mti(self) -> int:
        """Message type indicator: 1."""
        return MTI_SUBMIT

    @property
    def tp_udhi(self) -> bool:
        """TP-UDHI: TP-UD starts with a header."""
        return bool(self.tp_ud.header)

    @property
    def tp_vpf(self) -> int:
        """TP-VPF (§9.2.3.3): 0 none, 1 enhanced, 2 relative, 3 absolute."""
        return vpf_of(self.tp_vp)


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusReport:
    """SMS-STATUS-REPORT (TS 23.040 §9.2.2.3).

    ``tp_mr`` is the reference of the SUBMIT it reports on, ``tp_ra`` that
    SUBMIT's recipient, ``tp_dt`` the discharge time, ``tp_st`` the status
    (see :mod:`pdu.status`). TP-PID, TP-DCS and TP-UD are optional (TP-PI,
    §9.2.3.27): ``None`` when absent. ``tp_srq`` is True when the report is
    about an SMS-COMMAND.
    """

    tp_mr: int
    tp_ra: Address
    tp_scts: datetime
    tp_dt: datetime
    tp_st: int
    tp_mms: bool = False
    tp_lp: bool = False
    tp_srq: bool = False
    tp_pid: int | None = None
    tp_dcs: DataCoding | None = None
    tp_ud: UserData | None = None
    smsc: Address | None = None

    @property
    def tp_mti(self) -> int:
        """Message type indicator: 2."""
        return MTI_STATUS_REPORT

    @property
    def tp_udhi(self) -> bool:
        """TP-UDHI: TP-UD starts with a header."""
        return self.tp_ud is not None and bool(self.tp_ud.header)


Message = Deliver | Submit | StatusReport

# Decode hot path: build the frozen values through their slot setters (C
# calls) instead of the generated ``__init__`` (one ``object.__setattr__``
# per field); the objects are identical and stay frozen.
_new = object.__new__
_UD_SET = tuple(UserData.__dict__[f].__set__ for f in ("header", "text", "data", "ucs2_octets"))
_DELIVER_FIELDS = (
    "tp_oa",
    "tp_scts",
    "tp_ud",
    "tp_pid",
    "tp_dcs",
    "tp_mms",
    "tp_lp",
    "tp_sri",
    "tp_rp",
    "smsc",
)
_DELIVER_SET = tuple(Deliver.__dict__[f].__set__ for f in _DELIVER_FIELDS)


def _user_data(
    header: tuple[InformationElement, ...],
    text: str | None,
    data: bytes | None,
    ucs2_octets: bytes | None = None,
) -> UserData:
    u = _new(UserData)
    s_header, s_text, s_data, s_raw = _UD_SET
    s_header(u, header)
    s_text(u, text)
    s_data(u, data)
    s_raw(u, ucs2_octets)
    return u


# -- user data ----------------------------------------------------------------


def _gsm7_text(sept: bytes, locking: int, single: int) -> str:
    """Decode septets with the national language tables the header selects
    (TS 23.040 §9.2.3.24.15/16). Decision: a table this codec lacks falls back
    to the default one, so the rest of the message still reads."""
    if locking not in LOCKING_LANGUAGES:
        locking = 0
    if single not in SINGLE_LANGUAGES:
        single = 0
    return decode_gsm7(sept, locking=locking, single=single)


def _decode_ud(pdu: bytes, o: int, dcs: int, udhi: int, dcs_at: int) -> UserData:
    """TP-UDL at ``o`` and TP-UD after it (§9.2.3.16, §9.2.3.24); ``dcs_at`` is
    the offset of TP-DCS, for the error about compressed text."""
    if o >= len(pdu):
        raise PduError("TP-UDL missing", field="TP-UDL", offset=o)
    udl = pdu[o]
    o += 1
    alph, _cls, compressed = DCS_INFO[dcs]
    if compressed:
        raise PduError(
            f"compressed user data (TS 23.042) is not supported (TP-DCS {dcs:#04x})",
            field="TP-DCS",
            offset=dcs_at,
        )
    ud = pdu[o:]
    if alph is _GSM7:
        need = (udl * 7 + 7) >> 3
        if not udhi:
            if need > len(ud):
                raise PduError(
                    f"TP-UDL {udl} septets need {need} octets, {len(ud)} present",
                    field="TP-UD",
                    offset=o,
                )
            return _user_data((), decode_gsm7(_unpack(ud, udl)), None)
        hdr7, h = decode_header(ud[:need], o)
        fill = (7 - (h << 3) % 7) % 7
        n = udl - ((h << 3) + fill) // 7
        if n <= 0:
            # No text after the header. A TP-UDL short of the header's septets
            # (the sender counted the header in octets, or left out the fill
            # bits) reads as an empty text, as Android (count < 0 -> 0),
            # libGammu, python-gsmmodem and smspdudecoder read it; so does a
            # missing last octet that would hold only fill bits.
            return _user_data(hdr7, "", None)
        if need > len(ud):
            raise PduError(
                f"TP-UDL {udl} septets need {need} octets, {len(ud)} present",
                field="TP-UD",
                offset=o,
            )
        locking, single = languages_of(hdr7)
        return _user_data(hdr7, _gsm7_text(_unpack(ud[h:], n, fill), locking, single), None)
    if udl > len(ud):
        raise PduError(f"TP-UDL {udl} octets, {len(ud)} present", field="TP-UD", offset=o)
    ud = ud[:udl]
    header: tuple[InformationElement, ...] = ()
    if udhi:
        header, h = decode_header(ud, o)
        ud = ud[h:]
    if alph is _DATA8:
        return _user_data(header, None, ud)
    # UCS-2 read as UTF-16-BE; a lone surrogate or an odd trailing octet
    # becomes U+FFFD (decision documented in docs/pdu.md).
    return _user_data(header, ud.decode("utf-16-be", "replace"), None, ud)


def encode_user_data(ud: UserData, dcs: int) -> bytes:
    """TP-UDL and TP-UD for ``ud`` coded as ``dcs`` (§9.2.3.16, §9.2.3.24)."""
    alph, _cls, compressed = DCS_INFO[dcs & 0xFF]
    if compressed:
        raise PduError("compressed user data (TS 23.042) is not supported", field="TP-DCS")
    if alph is _UCS2 and not ud.header:  # hot path: UCS-2, no header
        text = ud.text
        if text is None:
            raise PduError("UCS-2 coding needs text", field="TP-UD")
        try:
            payload = text.encode("utf-16-be")
        except UnicodeEncodeError:
            raise PduError("text has a lone surrogate", field="TP-UD") from None
        udl = len(payload)
        if udl > MAX_UD_OCTETS:
            raise PduError(f"{udl} octets exceed {MAX_UD_OCTETS}", field="TP-UDL")
        return bytes((udl,)) + payload
    hdr = encode_header(ud.header) if ud.header else b""
    h = len(hdr)
    if alph is _GSM7:
        if ud.text is None:
            raise PduError("GSM 7-bit coding needs text", field="TP-UD")
        if h:
            locking, single = languages_of(ud.header)
            sept = encode_gsm7(ud.text, locking=locking, single=single)
            fill = (7 - (h << 3) % 7) % 7
            udl = ((h << 3) + fill) // 7 + len(sept)
            body = hdr + _pack(sept, fill)
        else:
            sept = encode_gsm7(ud.text)
            udl = len(sept)
            body = _pack(sept)
        if udl > MAX_UD_SEPTETS:
            raise PduError(f"{udl} septets exceed {MAX_UD_SEPTETS}", field="TP-UDL")
        return bytes((udl,)) + body
    if alph is _DATA8:
        if ud.data is None:
            raise PduError("8-bit coding needs data bytes", field="TP-UD")
        payload = bytes(ud.data)
    else:
        if ud.text is None:
            raise PduError("UCS-2 coding needs text", field="TP-UD")
        try:
            payload = ud.text.encode("utf-16-be")
        except UnicodeEncodeError:
            raise PduError("text has a lone surrogate", field="TP-UD") from None
    udl = h + len(payload)
    if udl > MAX_UD_OCTETS:
        raise PduError(f"{udl} octets exceed {MAX_UD_OCTETS}", field="TP-UDL")
    return bytes((udl,)) + hdr + payload


# -- decode -------------------------------------------------------------------


def _decode_deliver(pdu: bytes, o: int, fo: int, sc: Address | None) -> Deliver:
    oa, p = decode_address(pdu, o + 1, "TP-OA")
    if p + 9 > len(pdu):
        raise PduError("SMS-DELIVER truncated before TP-UDL", field="TP-PID", offset=p)
    dcs = pdu[p + 1]
    scts = decode_scts(pdu, p + 2, "TP-SCTS")
    ud = _decode_ud(pdu, p + 9, dcs, fo & 0x40, p + 1)
    m = _new(Deliver)
    s_oa, s_scts, s_ud, s_pid, s_dcs, s_mms, s_lp, s_sri, s_rp, s_smsc = _DELIVER_SET
    s_oa(m, oa)
    s_scts(m, scts)
    s_ud(m, ud)
    s_pid(m, pdu[p])
    s_dcs(m, _DCS[dcs])
    s_mms(m, not fo & 0x04)
    s_lp(m, bool(fo & 0x08))
    s_sri(m, bool(fo & 0x20))
    s_rp(m, bool(fo & 0x80))
    s_smsc(m, sc)
    return m


def _decode_submit(pdu: bytes, o: int, fo: int, sc: Address | None) -> Submit:
    if o + 2 > len(pdu):
        raise PduError("SMS-SUBMIT truncated", field="TP-MR", offset=o + 1)
    mr = pdu[o + 1]
    da, p = decode_address(pdu, o + 2, "TP-DA")
    if p + 2 > len(pdu):
        raise PduError("SMS-SUBMIT truncated", field="TP-PID", offset=p)
    pid = pdu[p]
    dcs = pdu[p + 1]
    dcs_at = p + 1
    p += 2
    vpf = (fo >> 3) & 3
    vp: ValidityPeriod | None = None
    if vpf == VPF_RELATIVE:
        if p >= len(pdu):
            raise PduError("TP-VP missing", field="TP-VP", offset=p)
        vp = relative_to_timedelta(pdu[p])
        p += 1
    elif vpf == VPF_ABSOLUTE:
        vp = decode_timestamp(pdu, p, "TP-VP")
        p += 7
    elif vpf == VPF_ENHANCED:
        if p + 7 > len(pdu):
            raise PduError("TP-VP truncated", field="TP-VP", offset=p)
        vp = EnhancedValidity(pdu[p : p + 7])
        p += 7
    return Submit(
        tp_da=da,
        tp_ud=_decode_ud(pdu, p, dcs, fo & 0x40, dcs_at),
        tp_mr=mr,
        tp_pid=pid,
        tp_dcs=_DCS[dcs],
        tp_vp=vp,
        tp_rd=bool(fo & 0x04),
        tp_srr=bool(fo & 0x20),
        tp_rp=bool(fo & 0x80),
        smsc=sc,
    )


def _decode_status_report(pdu: bytes, o: int, fo: int, sc: Address | None) -> StatusReport:
    if o + 2 > len(pdu):
        raise PduError("SMS-STATUS-REPORT truncated", field="TP-MR", offset=o + 1)
    mr = pdu[o + 1]
    ra, p = decode_address(pdu, o + 2, "TP-RA")
    scts = decode_scts(pdu, p, "TP-SCTS")
    dt = decode_scts(pdu, p + 7, "TP-DT")
    p += 14
    if p >= len(pdu):
        raise PduError("TP-ST missing", field="TP-ST", offset=p)
    st = pdu[p]
    p += 1
    pid: int | None = None
    dcs: DataCoding | None = None
    ud: UserData | None = None
    pi = pdu[p] if p < len(pdu) else 0
    p += 1
    if pi & 0x78:
        # §9.2.3.27: reserved bits 3-6 set. Some SCs send FF or 7F for "no
        # parameters"; the indicator is then not processed (as Android's
        # SmsMessage does) rather than the whole report lost.
        pi = 0
    if pi:
        ext = pi
        while ext & 0x80:  # further TP-PI octets (§9.2.3.27): skipped
            if p >= len(pdu):
                raise PduError("TP-PI extension truncated", field="TP-PI", offset=p)
            ext = pdu[p]
            p += 1
        if pi & 1:
            if p >= len(pdu):
                raise PduError("TP-PID missing", field="TP-PID", offset=p)
            pid = pdu[p]
            p += 1
        if pi & 2:
            if p >= len(pdu):
                raise PduError("TP-DCS missing", field="TP-DCS", offset=p)
            dcs = _DCS[pdu[p]]
            p += 1
        if pi & 4:
            dcs_value = dcs.value if dcs is not None else 0
            ud = _decode_ud(pdu, p, dcs_value, fo & 0x40, p - 1)
    return StatusReport(
        tp_mr=mr,
        tp_ra=ra,
        tp_scts=scts,
        tp_dt=dt,
        tp_st=st,
        tp_mms=not fo & 0x04,
        tp_lp=bool(fo & 0x08),
        tp_srq=bool(fo & 0x20),
        tp_pid=pid,
        tp_dcs=dcs,
        tp_ud=ud,
        smsc=sc,
    )


def decode(pdu: bytes | bytearray | memoryview | str, *, smsc: bool = True) -> Message:
    """Decode a PDU (bytes, or hex text: case-insensitive, whitespace ignored).

    With ``smsc=True`` (what ``AT+CMGR``/``AT+CMGL`` print) the SMSC field
    comes first; ``smsc=False`` for a bare TPDU. Returns a :class:`Deliver`,
    :class:`Submit` or :class:`StatusReport` (TP-MTI 11, reserved, reads as
    an SMS-DELIVER per §9.2.3.1), or raises :class:`PduError`.
    """
    if isinstance(pdu, str):
        pdu = parse_hex(pdu)
    elif not isinstance(pdu, bytes):
        if not isinstance(pdu, bytearray | memoryview):
            raise TypeError(f"decode() takes bytes or a hex str, not {type(pdu).__name__}")
        pdu = bytes(pdu)
    if smsc:
        sc, o = decode_smsc(pdu)
    else:
        sc, o = None, 0
    if o >= len(pdu):
        raise PduError("no TPDU", field="TP-MTI", offset=o)
    fo = pdu[o]
    mti = fo & 3
    if mti == MTI_SUBMIT:
        return _decode_submit(pdu, o, fo, sc)
    if mti == MTI_STATUS_REPORT:
        return _decode_status_report(pdu, o, fo, sc)
    # 00 SMS-DELIVER, and 11: §9.2.3.1 "If an MS receives a TPDU with a
    # 'Reserved' value in the TP-MTI it shall process the message as if it
    # were an 'SMS-DELIVER'".
    return _decode_deliver(pdu, o, fo, sc)


# -- encode -------------------------------------------------------------------


def _octet(v: int, field: str) -> int:
    if not 0 <= v <= 0xFF:
        raise PduError(f"{v} is not an octet value", field=field)
    return v


def _encode_submit(msg: Submit) -> bytes:
    dcs = msg.tp_dcs.value
    if not 0 <= dcs <= 0xFF:
        _octet(dcs, "TP-DCS")
    ud = msg.tp_ud
    vp = msg.tp_vp
    fo = (
        0x01
        | (0x04 if msg.tp_rd else 0)
        | (0x20 if msg.tp_srr else 0)
        | (0x40 if ud.header else 0)
        | (0x80 if msg.tp_rp else 0)
    )
    if vp is not None:
        fo |= vpf_of(vp) << 3
    mr = msg.tp_mr
    if not 0 <= mr <= 0xFF:
        _octet(mr, "TP-MR")
    da = encode_address(msg.tp_da, "TP-DA")
    pid = msg.tp_pid
    if not 0 <= pid <= 0xFF:
        _octet(pid, "TP-PID")
    if vp is None:
        return bytes((fo, mr)) + da + bytes((pid, dcs)) + encode_user_data(ud, dcs)
    return bytes((fo, mr)) + da + bytes((pid, dcs)) + encode_vp(vp) + encode_user_data(ud, dcs)


def encode_tpdu(msg: Message) -> bytes:
    """The TPDU alone (no SMSC field)."""
    if type(msg) is Submit:  # hot path (AT+CMGS)
        return _encode_submit(msg)
    if isinstance(msg, Deliver):
        dcs = _octet(msg.tp_dcs.value, "TP-DCS")
        ud = msg.tp_ud
        fo = (
            (0 if msg.tp_mms else 0x04)
            | (0x08 if msg.tp_lp else 0)
            | (0x20 if msg.tp_sri else 0)
            | (0x40 if ud.header else 0)
            | (0x80 if msg.tp_rp else 0)
        )
        return b"".join(
            (
                bytes((fo,)),
                encode_address(msg.tp_oa, "TP-OA"),
                bytes((_octet(msg.tp_pid, "TP-PID"), dcs)),
                encode_timestamp(msg.tp_scts, "TP-SCTS"),
                encode_user_data(ud, dcs),
            )
        )
    if isinstance(msg, Submit):
        return _encode_submit(msg)
    if isinstance(msg, StatusReport):
        sud = msg.tp_ud
        fo = (
            0x02
            | (0 if msg.tp_mms else 0x04)
            | (0x08 if msg.tp_lp else 0)
            | (0x20 if msg.tp_srq else 0)
            | (0x40 if sud is not None and sud.header else 0)
        )
        out = [
            bytes((fo, _octet(msg.tp_mr, "TP-MR"))),
            encode_address(msg.tp_ra, "TP-RA"),
            encode_timestamp(msg.tp_scts, "TP-SCTS"),
            encode_timestamp(msg.tp_dt, "TP-DT"),
            bytes((_octet(msg.tp_st, "TP-ST"),)),
        ]
        pi = (
            (1 if msg.tp_pid is not None else 0)
            | (2 if msg.tp_dcs is not None else 0)
            | (4 if sud is not None else 0)
        )
        if pi:
            out.append(bytes((pi,)))
            if msg.tp_pid is not None:
                out.append(bytes((_octet(msg.tp_pid, "TP-PID"),)))
            if msg.tp_dcs is not None:
                out.append(bytes((_octet(msg.tp_dcs.value, "TP-DCS"),)))
            if sud is not None:
                out.append(encode_user_data(sud, msg.tp_dcs.value if msg.tp_dcs is not None else 0))
        return b"".join(out)
    raise PduError(f"cannot encode {type(msg).__name__}", field="TP-MTI")


def encode(msg: Message, *, smsc: bool = True) -> bytes:
    """Encode a message; with ``smsc=True`` the SMSC field comes first (``00``
    when ``msg.smsc`` is None), as ``AT+CMGS``/``AT+CMGW`` take it in PDU mode."""
    tpdu = encode_tpdu(msg)
    return encode_smsc(msg.smsc) + tpdu if smsc else tpdu


def cmgs_pdu(msg: Submit) -> tuple[str, int]:
    """Upper-case hex for ``AT+CMGS`` in PDU mode (SMSC field first) and the
    ``<length>`` parameter: TPDU octets, excluding the SMSC field (TS 27.005 §3.5.1)."""
    tpdu = _encode_submit(msg) if type(msg) is Submit else encode_tpdu(msg)
    sc = msg.smsc
    if sc is None:
        return "00" + tpdu.hex().upper(), len(tpdu)
    return (encode_smsc(sc) + tpdu).hex().upper(), len(tpdu)
