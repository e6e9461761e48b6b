"""Segmentation: count before you encode (TS 23.040 §9.2.3.24.1, TS 23.038 §6).

:func:`plan` computes, before any packing, the encoding, the header each part
needs, how many units (GSM 7-bit septets, 8-bit octets or UTF-16 code units)
each part holds and where the content is cut; :func:`submit_parts` and
:func:`deliver_parts` then build the TPDUs from that plan.

Capacity of one part whose user data header takes ``H`` octets (UDHL
included, 0 = no header), TP-UD being 140 octets (§9.2.3.16):

* GSM 7-bit: ``160 - ceil(8H / 7)`` septets (the header is padded with fill
  bits to a septet boundary, §9.2.3.24);
* 8-bit data: ``140 - H`` octets;
* UCS-2: ``(140 - H) // 2`` UTF-16 code units.

So one unsegmented message holds 160 / 140 / 70; a part with an 8-bit
reference concatenation header (6 octets) 153 / 134 / 67, with a 16-bit one
(7 octets) 152 / 133 / 66. Port and national language elements add their own
octets. An extension-table character (escape + code, two septets) and a
UTF-16 surrogate pair are never split across parts. At most 255 parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from . import alphabet
from .address import Address
from .dcs import Alphabet, DataCoding
from .errors import PduError
from .timestamps import ValidityPeriod
from .tpdu import Deliver, Submit
from .udh import (
    CONCAT8_COST,
    CONCAT16_COST,
    MAX_UD_OCTETS,
    MAX_UD_SEPTETS,
    UDHL_COST,
    Concat,
    InformationElement,
    Ports,
    UserData,
    header_octets,
    language_ie,
)

#: TS 23.040 §9.2.3.24.1: the sequence number is one octet.
MAX_PARTS = 255

#: Units per part with no header, with an 8-bit and a 16-bit reference
#: concatenation header (derived from the rules above; checked by tests).
SINGLE_SEPTETS = 160
SINGLE_OCTETS = 140
SINGLE_UCS2_UNITS = 70


def capacity(encoding: Alphabet, header_octets: int) -> int:
    """Units one part holds when its user data header takes ``header_octets``
    octets, UDHL included (0 = no header)."""
    if encoding is Alphabet.GSM7:
        return MAX_UD_SEPTETS - (header_octets * 8 + 6) // 7
    if encoding is Alphabet.DATA8:
        return MAX_UD_OCTETS - header_octets
    return (MAX_UD_OCTETS - header_octets) // 2


CONCAT8_SEPTETS = capacity(Alphabet.GSM7, UDHL_COST + CONCAT8_COST)  # 153
CONCAT16_SEPTETS = capacity(Alphabet.GSM7, UDHL_COST + CONCAT16_COST)  # 152


@dataclass(frozen=True, slots=True)
class Plan:
    """How content will be sent (computed before encoding).

    ``units`` is the content's cost in septets, octets or UTF-16 code units;
    ``units_per_part`` what each part holds (the single-message capacity when
    ``parts == 1``); ``units_left`` what is still free in the last part;
    ``cuts`` the start index in the content of each part (characters for text,
    octets for bytes); ``header`` the elements every part carries besides the
    concatenation element.
    """

    encoding: Alphabet
    parts: int
    units: int
    units_per_part: int
    units_left: int
    cuts: tuple[int, ...]
    header: tuple[InformationElement, ...]
    header_octets: int
    locking: int = 0
    single: int = 0
    ref16: bool = False

    @property
    def fill_bits(self) -> int:
        """GSM 7-bit fill bits after the header (TS 23.040 §9.2.3.24); 0 otherwise."""
        if self.encoding is not Alphabet.GSM7 or not self.header_octets:
            return 0
        return (7 - (self.header_octets * 8) % 7) % 7

    @property
    def fits_in_one_sms(self) -> bool:
        """True when the content goes out as one unsegmented message."""
        return self.parts == 1

    def slices(self, content: str | bytes) -> list[str | bytes]:
        """The content of each part."""
        ends = (*self.cuts[1:], len(content))
        return [content[a:b] for a, b in zip(self.cuts, ends, strict=True)]


_new = object.__new__
_parse_address = Address.parse
_PLAN_SET = tuple(
    Plan.__dict__[f].__set__
    for f in (
        "encoding",
        "parts",
        "units",
        "units_per_part",
        "units_left",
        "cuts",
        "header",
        "header_octets",
        "locking",
        "single",
        "ref16",
    )
)
_UD_SET = tuple(UserData.__dict__[f].__set__ for f in ("header", "text", "data", "ucs2_octets"))
_SUBMIT_SET = tuple(
    Submit.__dict__[f].__set__
    for f in (
        "tp_da",
        "tp_ud",
        "tp_mr",
        "tp_pid",
        "tp_dcs",
        "tp_vp",
        "tp_rd",
        "tp_srr",
        "tp_rp",
        "smsc",
    )
)
_GSM7 = Alphabet.GSM7
_DATA8 = Alphabet.DATA8
_UCS2 = Alphabet.UCS2
#: DataCoding without a message class, per alphabet (immutable values).
_DCS_GSM7 = DataCoding(0x00)
_DCS_DATA8 = DataCoding(0x04)
_DCS_UCS2 = DataCoding(0x08)
_ZERO_CUTS = (0,)
#: The default alphabet's characters (read only; alphabet's precomputed table).
_GSM7_CHARSET = alphabet.tables(0, 0).charset


def _single_plan(enc: Alphabet, units: int, cap: int, ref16: bool) -> Plan:
    """A one-part :class:`Plan` with no header, built through the slot setters
    (hot path; same frozen value as ``Plan(enc, 1, units, cap, ...)``)."""
    p = _new(Plan)
    s_enc, s_parts, s_units, s_upp, s_left, s_cuts, s_hdr, s_hoct, s_lock, s_single, s_r16 = (
        _PLAN_SET
    )
    s_enc(p, enc)
    s_parts(p, 1)
    s_units(p, units)
    s_upp(p, cap)
    s_left(p, cap - units)
    s_cuts(p, _ZERO_CUTS)
    s_hdr(p, ())
    s_hoct(p, 0)
    s_lock(p, 0)
    s_single(p, 0)
    s_r16(p, ref16)
    return p


def _make_user_data(
    header: tuple[InformationElement, ...], text: str | None, data: bytes | None
) -> UserData:
    """``UserData(header, text, data)`` through the slot setters (hot path)."""
    ud = _new(UserData)
    u_header, u_text, u_data, u_raw = _UD_SET
    u_header(ud, header)
    u_text(ud, text)
    u_data(ud, data)
    u_raw(ud, None)
    return ud


def _make_submit(
    ud: UserData,
    mr: int,
    rest: tuple[Address, int, DataCoding, ValidityPeriod | None, bool, Address | None],
) -> Submit:
    """``Submit(tp_da=da, tp_ud=ud, tp_mr=mr, tp_pid=pid, tp_dcs=dcs, tp_vp=vp,
    tp_srr=srr, smsc=smsc)`` with ``rest = (da, pid, dcs, vp, srr, smsc)``,
    through the slot setters (hot path; the same frozen value)."""
    da, pid, dcs, vp, srr, smsc = rest
    m = _new(Submit)
    s_da, s_ud, s_mr, s_pid, s_dcs, s_vp, s_rd, s_srr, s_rp, s_smsc = _SUBMIT_SET
    s_da(m, da)
    s_ud(m, ud)
    s_mr(m, mr)
    s_pid(m, pid)
    s_dcs(m, dcs)
    s_vp(m, vp)
    s_rd(m, False)
    s_srr(m, srr)
    s_rp(m, False)
    s_smsc(m, smsc)
    return m


def _fast_single(content: str | bytes, encoding: Alphabet | None) -> tuple[Alphabet, int] | None:
    """(encoding, units) of content that goes out as one part with no header
    element (the caller checked: no ports, no national tables), or ``None``
    when the general path must decide (several parts, errors, unusual types)."""
    if type(content) is str:
        if encoding is None:
            # the precheck gsm7_length starts with, without its table lookup
            if content.isascii() or _GSM7_CHARSET.issuperset(content):
                septets = alphabet.gsm7_length(content)
                if septets is not None:
                    return (_GSM7, septets) if septets <= SINGLE_SEPTETS else None
        elif encoding is _GSM7:
            septets = alphabet.gsm7_length(content)
            if septets is not None and septets <= SINGLE_SEPTETS:
                return _GSM7, septets
            return None
        elif encoding is not _UCS2:
            return None
        try:
            units = len(content.encode("utf-16-be")) >> 1
        except UnicodeEncodeError:
            raise PduError("text has a lone surrogate", field="TP-UD") from None
        return (_UCS2, units) if units <= SINGLE_UCS2_UNITS else None
    if type(content) is bytes and (encoding is None or encoding is _DATA8):
        n = len(content)
        if n <= SINGLE_OCTETS:
            return _DATA8, n
    return None


def _gsm7_costs(text: str, locking: int, single: int, septets: int | None) -> list[int] | None:
    """Septets per character (1, or 2 for escape + code), or None when every
    character costs 1. ``septets`` is the text's length when already counted."""
    if septets is None:
        septets = alphabet.gsm7_length(text, locking=locking, single=single)
    if septets is None:  # PduError naming the first character the tables lack
        septets = len(alphabet.encode_gsm7(text, locking=locking, single=single))
    if septets == len(text):
        return None
    t = alphabet.tables(locking, single).encode_map
    return [len(t[ch]) for ch in text]


def _ucs2_costs(text: str) -> list[int] | None:
    """UTF-16 code units per character (2 for a surrogate pair, outside the
    BMP), or None when every character is one unit."""
    try:
        units = len(text.encode("utf-16-be")) >> 1  # C speed; also refuses lone surrogates
    except UnicodeEncodeError:
        raise PduError("text has a lone surrogate", field="TP-UD") from None
    if units == len(text):
        return None
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def plan(
    content: str | bytes,
    *,
    encoding: Alphabet | None = None,
    locking: int = 0,
    single: int = 0,
    ports: Ports | None = None,
    ref16: bool = False,
) -> Plan:
    """Plan the parts for ``content`` (see module doc for the capacities).

    ``encoding=None`` picks GSM 7-bit when every character fits the (given
    national) tables, else UCS-2; bytes are always 8-bit data. ``locking`` and
    ``single`` select national language tables (TS 23.038 §6.2.1.2.4) and add
    their header elements; ``ports`` adds an application port element.
    Raises :class:`PduError` when the content cannot be coded as asked or
    needs more than 255 parts.
    """
    if not (locking or single) and ports is None:
        fast = _fast_single(content, encoding)
        if fast is not None:
            enc, units = fast
            if enc is _GSM7:
                return _single_plan(enc, units, SINGLE_SEPTETS, ref16)
            if enc is _UCS2:
                return _single_plan(enc, units, SINGLE_UCS2_UNITS, ref16)
            return _single_plan(enc, units, SINGLE_OCTETS, ref16)
    return _plan_general(
        content, encoding=encoding, locking=locking, single=single, ports=ports, ref16=ref16
    )


def _plan_general(
    content: str | bytes,
    *,
    encoding: Alphabet | None = None,
    locking: int = 0,
    single: int = 0,
    ports: Ports | None = None,
    ref16: bool = False,
) -> Plan:
    """:func:`plan` without the one-part fast path (the reference for tests)."""
    if isinstance(content, bytes | bytearray):
        if encoding not in (None, Alphabet.DATA8):
            raise PduError(f"bytes can only be sent as 8-bit data, not {encoding}", field="TP-DCS")
        enc = Alphabet.DATA8
        costs: list[int] | None = None
    else:
        if locking or single:
            alphabet.tables(locking, single)  # PduError for a language we lack
        septets: int | None = None
        if encoding is None:
            septets = alphabet.gsm7_length(content, locking=locking, single=single)
            enc = Alphabet.GSM7 if septets is not None else Alphabet.UCS2
        else:
            enc = Alphabet(encoding)
            if enc is Alphabet.DATA8:
                raise PduError("8-bit data must be given as bytes", field="TP-DCS")
        if enc is Alphabet.UCS2:
            costs = _ucs2_costs(content)
        else:
            costs = _gsm7_costs(content, locking, single, septets)
    header: tuple[InformationElement, ...] = ()
    if ports is not None:
        header += (ports.to_ie(),)
    if enc is Alphabet.GSM7:
        header += language_ie(single=single, locking=locking)
    else:
        locking = single = 0
    base = header_octets(header)
    units = len(content) if costs is None else sum(costs)
    cap1 = capacity(enc, base)
    if units <= cap1:
        return Plan(enc, 1, units, cap1, cap1 - units, (0,), header, base, locking, single, ref16)
    concat_octets = (CONCAT16_COST if ref16 else CONCAT8_COST) + (0 if base else UDHL_COST)
    hdr_octets = base + concat_octets
    cap = capacity(enc, hdr_octets)
    if costs is None:
        cuts = tuple(range(0, len(content), cap))
        last = units - cap * (len(cuts) - 1)
    else:
        cut_list = [0]
        used = 0
        for i, c in enumerate(costs):
            if used + c > cap:
                cut_list.append(i)
                used = 0
                if len(cut_list) > MAX_PARTS:
                    break
            used += c
        cuts = tuple(cut_list)
        last = used
    if len(cuts) > MAX_PARTS:
        raise PduError(
            f"content needs more than {MAX_PARTS} parts ({units} {enc.value} units)",
            field="TP-UD",
        )
    return Plan(
        enc, len(cuts), units, cap, cap - last, cuts, header, hdr_octets, locking, single, ref16
    )


def _user_data(p: Plan, content: str | bytes, ref: int) -> list[UserData]:
    chunks = p.slices(content)
    out = []
    for seq, chunk in enumerate(chunks, 1):
        header = p.header
        if p.parts > 1:
            header = (Concat(ref, p.parts, seq, p.ref16).to_ie(), *header)
        if isinstance(chunk, str):
            out.append(_make_user_data(header, chunk, None))
        else:
            out.append(_make_user_data(header, None, bytes(chunk)))
    return out


def _check_ref(ref: int, ref16: bool) -> None:
    if not 0 <= ref <= (0xFFFF if ref16 else 0xFF):
        raise PduError(f"concatenation reference {ref} out of range", field="TP-UDH")


def submit_parts(
    recipient: str | Address,
    content: str | bytes,
    *,
    encoding: Alphabet | None = None,
    srr: bool = False,
    mr: int = 0,
    ref: int = 0,
    vp: ValidityPeriod | None = None,
    message_class: int | None = None,
    locking: int = 0,
    single: int = 0,
    ports: Ports | None = None,
    ref16: bool = False,
    pid: int = 0,
    smsc: Address | None = None,
) -> list[Submit]:
    """SMS-SUBMITs for ``content``: one when it fits, else concatenated parts
    with reference ``ref``; TP-MR of part ``i`` (from 0) is ``(mr + i) % 256``."""
    if not (locking or single) and ports is None:
        _check_ref(ref, ref16)
        if not isinstance(recipient, Address):
            recipient = _parse_address(recipient)
        fast = _fast_single(content, encoding)
        if fast is not None:
            # One part, no header: build the values through their slot setters
            # (same frozen objects as the general path, see test_fastpath).
            enc = fast[0]
            if message_class is not None:
                dcs = DataCoding.for_alphabet(enc, message_class)
            elif enc is _GSM7:
                dcs = _DCS_GSM7
            elif enc is _UCS2:
                dcs = _DCS_UCS2
            else:
                dcs = _DCS_DATA8
            if isinstance(content, str):
                ud = _make_user_data((), content, None)
            else:
                ud = _make_user_data((), None, bytes(content))
            m = _new(Submit)
            s_da, s_ud, s_mr, s_pid, s_dcs, s_vp, s_rd, s_srr, s_rp, s_smsc = _SUBMIT_SET
            s_da(m, recipient)
            s_ud(m, ud)
            s_mr(m, mr & 0xFF)
            s_pid(m, pid)
            s_dcs(m, dcs)
            s_vp(m, vp)
            s_rd(m, False)
            s_srr(m, srr)
            s_rp(m, False)
            s_smsc(m, smsc)
            return [m]
    return _submit_parts_general(
        recipient,
        content,
        encoding=encoding,
        srr=srr,
        mr=mr,
        ref=ref,
        vp=vp,
        message_class=message_class,
        locking=locking,
        single=single,
        ports=ports,
        ref16=ref16,
        pid=pid,
        smsc=smsc,
    )


def _submit_parts_general(
    recipient: str | Address,
    content: str | bytes,
    *,
    encoding: Alphabet | None = None,
    srr: bool = False,
    mr: int = 0,
    ref: int = 0,
    vp: ValidityPeriod | None = None,
    message_class: int | None = None,
    locking: int = 0,
    single: int = 0,
    ports: Ports | None = None,
    ref16: bool = False,
    pid: int = 0,
    smsc: Address | None = None,
) -> list[Submit]:
    """:func:`submit_parts` without the one-part fast path (the reference for tests)."""
    _check_ref(ref, ref16)
    da = recipient if isinstance(recipient, Address) else Address.parse(recipient)
    p = plan(content, encoding=encoding, locking=locking, single=single, ports=ports, ref16=ref16)
    dcs = DataCoding.for_alphabet(p.encoding, message_class)
    rest = (da, pid, dcs, vp, srr, smsc)
    return [
        _make_submit(ud, (mr + i) & 0xFF, rest) for i, ud in enumerate(_user_data(p, content, ref))
    ]


def deliver_parts(
    sender: str | Address,
    content: str | bytes,
    *,
    scts: datetime,
    encoding: Alphabet | None = None,
    ref: int = 0,
    smsc: Address | None = None,
    message_class: int | None = None,
    locking: int = 0,
    single: int = 0,
    ports: Ports | None = None,
    ref16: bool = False,
    pid: int = 0,
    sri: bool = False,
) -> list[Deliver]:
    """SMS-DELIVERs for ``content`` (what a network builds for an MT message)."""
    _check_ref(ref, ref16)
    oa = sender if isinstance(sender, Address) else Address.parse(sender)
    p = plan(content, encoding=encoding, locking=locking, single=single, ports=ports, ref16=ref16)
    dcs = DataCoding.for_alphabet(p.encoding, message_class)
    return [
        Deliver(tp_oa=oa, tp_scts=scts, tp_ud=ud, tp_pid=pid, tp_dcs=dcs, tp_sri=sri, smsc=smsc)
        for ud in _user_data(p, content, ref)
    ]
