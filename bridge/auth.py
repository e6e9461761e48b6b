"""Signed Commands and replies: HMAC tags, the replay window, key versions, key files.

Pure apart from :func:`load_keyring` and :func:`write_key_file` (the key file).
The format (docs/bridge.md, "Security format", has the worked example that
``tests/bridge/test_auth.py`` pins):

Text trailer, appended to the Command or reply text, 23 characters::

    " #" H CCCCCC TTTTTTTTTTTTTT
    ' '  one space (0x20), then '#' (0x23): the marker
    H    1 base64url digit (6 bits): bit 5 = the counter is a timestamp,
         bit 4 = 0 (reserved), bits 3-0 = key version 0-15
    C    6 base64url digits: the counter, 36 bits, big-endian
    T    14 base64url digits: the tag, the first 84 bits of the HMAC

Every character is in the GSM 7-bit default alphabet's basic set (TS 23.038
§6.2.1: ``A-Z a-z 0-9 - _ # space``; none needs the escape to the extension
table), so the trailer costs exactly 23 septets, or 23 UCS-2 code units.

Binary trailer, appended to the binary payload (``bridge.grammar`` octet 0
has its signed bit set), 17 octets: H (1 octet, same bits), the counter (5
octets, big-endian, below 2**36), the tag (11 octets: the first 88 bits).

MAC input: ``HMAC-SHA256(key, M)`` with M, octet by octet::

    0-3   "SMSB"              domain separation
    4     0x01                format version
    5     direction           0x44 'D' to the device (a Command), 0x55 'U' from it
    6     H                   flags and key version, as in the trailer
    7-11  counter             5 octets, big-endian
    12    n                   length of the device identity, 1-64
    13..  device identity     ASCII (the ICCID, or the configured id)
    next  kind                0x54 'T' text, 0x42 'B' binary
    rest  body                text: bridge.grammar.canonical(body) in UTF-8;
                              binary: the payload, octet 0 included

Replay protection: a counter as in SIM OTA security (3GPP TS 31.115 §5.1,
ETSI TS 102 225 §5.1.1: a 5-octet counter CNTR that must rise), kept as a
sliding window in the manner of the IPsec anti-replay window (RFC 4303
§3.4.3), so that Commands SMS delivers out of order are not lost: the
highest counter accepted and a bitmap of the ``size`` counters below it
(:class:`ReplayWindow`). A counter above the highest is accepted and the
window slides; one inside the window is accepted once; one at or below
``highest - size`` is refused as too old. The window is a value: the journal
stores it in the same transaction as the dedupe record, before execution.

Expiry, when the device clock is trusted: with the timestamp bit set, the
counter is seconds since :data:`TIMESTAMP_EPOCH` (2025-01-01T00:00:00Z);
a device configured with ``max_age`` refuses a Command older than that or
more than ``max_skew`` in its future, and refuses counters that are not
timestamps (an attacker must not skip the expiry by clearing the bit).
The server's helper :func:`timestamp_counter` keeps such counters strictly
increasing.

Two key versions may be active at once (rotation): a Command signed with
either verifies; the device signs with ``Keyring.signing``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import os
import secrets
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import overload

from pdu import alphabet as _alphabet
from pdu.segment import SINGLE_OCTETS, SINGLE_SEPTETS, SINGLE_UCS2_UNITS

from . import grammar

#: base64url digits (RFC 4648 §5), value order.
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64VAL = {c: i for i, c in enumerate(B64URL)}
MARKER = " #"
COUNTER_DIGITS = 6
TAG_DIGITS = 14
#: Characters the text trailer adds: 2 + 1 + 6 + 14.
TEXT_TRAILER_CHARS = len(MARKER) + 1 + COUNTER_DIGITS + TAG_DIGITS
TAG_BITS_TEXT = TAG_DIGITS * 6  # 84
TAG_OCTETS_BINARY = 11  # 88 bits
BINARY_TRAILER_OCTETS = 1 + 5 + TAG_OCTETS_BINARY  # 17
MAX_COUNTER = 2**36 - 1
MAX_KEY_VERSION = 15
FLAG_TIMESTAMP = 0x20
RESERVED = 0x10
#: Unix time of 2025-01-01T00:00:00Z, the origin of timestamp counters.
TIMESTAMP_EPOCH = 1_735_689_600
MIN_KEY_OCTETS = 16
MAX_DEVICE_ID = 64
DEFAULT_WINDOW = 64
DEFAULT_MAX_SKEW = 300.0

TO_DEVICE = b"D"
FROM_DEVICE = b"U"

assert all(_alphabet.septet_cost(c) == 1 for c in B64URL + MARKER)  # static table check


class AuthFailure(enum.StrEnum):
    """Why a signature was refused (journaled; never answered)."""

    UNSIGNED = "unsigned"
    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown-key"
    BAD_TAG = "bad-tag"
    REPLAYED = "replayed"
    TOO_OLD = "too-old"
    EXPIRED = "expired"
    FUTURE = "future"
    NO_TIMESTAMP = "no-timestamp"


class AuthError(ValueError):
    """A signature refused; ``reason`` is an :class:`AuthFailure`."""

    def __init__(self, reason: AuthFailure, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason.value}: {detail}")


class KeyFileError(ValueError):
    """The key file cannot be used; the message names the file and the fault."""


@dataclass(frozen=True, slots=True)
class Keyring:
    """At most two active key versions (rotation); ``signing`` signs replies."""

    keys: Mapping[int, bytes]
    signing: int

    def __post_init__(self) -> None:
        if not 1 <= len(self.keys) <= 2:
            raise ValueError(f"{len(self.keys)} key versions: one or two may be active")
        for v, k in self.keys.items():
            if not 0 <= v <= MAX_KEY_VERSION:
                raise ValueError(f"key version {v} is not 0-{MAX_KEY_VERSION}")
            if len(k) < MIN_KEY_OCTETS:
                raise ValueError(f"key version {v}: {len(k)} octets, at least {MIN_KEY_OCTETS}")
        if self.signing not in self.keys:
            raise ValueError(f"signing key version {self.signing} is not among the keys")


@dataclass(frozen=True, slots=True)
class Trailer:
    """The authentication fields of one signed message."""

    key_version: int
    counter: int
    timestamp: bool
    tag: bytes

    @property
    def header(self) -> int:
        """The H field: timestamp flag and key version."""
        return (FLAG_TIMESTAMP if self.timestamp else 0) | self.key_version


@dataclass(frozen=True, slots=True)
class ReplayWindow:
    """Highest counter accepted and a bitmap of the last ``size`` (bit i: highest - i)."""

    highest: int = 0
    bitmap: int = 0
    size: int = DEFAULT_WINDOW

    def __post_init__(self) -> None:
        if not 1 <= self.size <= 4096:
            raise ValueError(f"replay window size {self.size} is not 1-4096")
        if self.highest < 0 or self.bitmap < 0 or self.bitmap >> self.size:
            raise ValueError("replay window: negative or oversized fields")

    @classmethod
    def after_loss(cls, highest: int, size: int = DEFAULT_WINDOW) -> ReplayWindow:
        """A window for a journal started afresh: every counter up to ``highest`` used."""
        return cls(highest, (1 << size) - 1 if highest else 0, size)

    def seen(self, counter: int) -> bool:
        """True when ``counter`` was accepted or is too old to accept."""
        if counter > self.highest:
            return False
        d = self.highest - counter
        return d >= self.size or bool(self.bitmap >> d & 1)

    def check(self, counter: int) -> ReplayWindow:
        """The window after accepting ``counter``; :class:`AuthError` if it was used."""
        if not 1 <= counter <= MAX_COUNTER:
            raise AuthError(AuthFailure.MALFORMED, f"counter {counter} is not 1-{MAX_COUNTER}")
        mask = (1 << self.size) - 1
        if counter > self.highest:
            shift = counter - self.highest
            bitmap = ((self.bitmap << shift) | 1) & mask if shift < self.size else 1
            return ReplayWindow(counter, bitmap, self.size)
        d = self.highest - counter
        if d >= self.size:
            raise AuthError(
                AuthFailure.TOO_OLD, f"counter {counter} is below the window ({self.highest})"
            )
        if self.bitmap >> d & 1:
            raise AuthError(AuthFailure.REPLAYED, f"counter {counter} was already used")
        return ReplayWindow(self.highest, self.bitmap | 1 << d, self.size)

    def to_text(self) -> str:
        """``size:highest:bitmap-hex``, what the journal stores."""
        return f"{self.size}:{self.highest}:{self.bitmap:x}"

    @classmethod
    def from_text(cls, text: str) -> ReplayWindow:
        """Inverse of :meth:`to_text`; ValueError for anything else."""
        parts = text.split(":")
        if len(parts) != 3 or not all(p.isascii() and p.isalnum() for p in parts):
            raise ValueError(f"not a replay window: {text!r}")
        return cls(int(parts[1], 10), int(parts[2], 16), int(parts[0], 10))


@dataclass(frozen=True, slots=True)
class Verified:
    """A message whose signature checked: its body without the trailer, and the
    replay window after its counter (``None`` when no window was given)."""

    body: str | bytes
    trailer: Trailer
    window: ReplayWindow | None

    @property
    def counter(self) -> int:
        return self.trailer.counter


# --- encoding ---------------------------------------------------------------


def _digits(value: int, n: int) -> str:
    return "".join(B64URL[value >> (6 * (n - 1 - i)) & 63] for i in range(n))


def _undigits(text: str) -> int:
    v = 0
    for c in text:
        v = v << 6 | _B64VAL[c]
    return v


def _device(device_id: str) -> bytes:
    if not (device_id.isascii() and device_id.isprintable() and 1 <= len(device_id) <= 64):
        raise ValueError(f"device identity {device_id!r}: 1-{MAX_DEVICE_ID} printable ASCII")
    return device_id.encode("ascii")


def mac_input(
    direction: bytes, header: int, counter: int, device_id: str, body: str | bytes
) -> bytes:
    """The octets the HMAC covers (module doc, "MAC input")."""
    dev = _device(device_id)
    if isinstance(body, str):
        kind, payload = b"T", grammar.canonical(body).encode("utf-8", "surrogatepass")
    else:
        kind, payload = b"B", bytes(body)
    return b"".join(
        (
            b"SMSB\x01",
            direction,
            bytes((header,)),
            counter.to_bytes(5, "big"),
            bytes((len(dev),)),
            dev,
            kind,
            payload,
        )
    )


def _mac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _text_tag(mac: bytes) -> bytes:
    """The first 84 bits, as the 11 octets whose last low nibble is zero."""
    return mac[:10] + bytes((mac[10] & 0xF0,))


def _check_fields(key_version: int, counter: int) -> None:
    if not 0 <= key_version <= MAX_KEY_VERSION:
        raise ValueError(f"key version {key_version} is not 0-{MAX_KEY_VERSION}")
    if not 1 <= counter <= MAX_COUNTER:
        raise ValueError(f"counter {counter} is not 1-{MAX_COUNTER}")


def encode_text_trailer(t: Trailer) -> str:
    """The 23-character text trailer (module doc)."""
    tag84 = int.from_bytes(t.tag[:11], "big") >> 4
    return MARKER + B64URL[t.header] + _digits(t.counter, COUNTER_DIGITS) + _digits(tag84, 14)


def encode_binary_trailer(t: Trailer) -> bytes:
    """The 17-octet binary trailer (module doc)."""
    return bytes((t.header,)) + t.counter.to_bytes(5, "big") + t.tag[:TAG_OCTETS_BINARY]


def _header_fields(h: int) -> tuple[int, bool]:
    if h & ~(FLAG_TIMESTAMP | 0x0F):
        raise AuthError(AuthFailure.MALFORMED, f"header {h:#04x} has reserved bits set")
    return h & 0x0F, bool(h & FLAG_TIMESTAMP)


def split_text(text: str) -> tuple[str, Trailer | None]:
    """(body, trailer): the trailer taken off a text message.

    A message is signed when its last word starts with ``#``; that word must be a
    whole trailer, else :class:`AuthError` (``malformed``). Trailing spaces after
    it are ignored; the body keeps everything before the marker's space.
    """
    stripped = text.rstrip()
    words = stripped.split()
    if not words or not words[-1].startswith("#"):
        return text, None
    token = words[-1]
    body = stripped[: len(stripped) - len(token)]
    if len(token) != TEXT_TRAILER_CHARS - 1 or not all(c in _B64VAL for c in token[1:]):
        raise AuthError(AuthFailure.MALFORMED, f"trailer of {len(token)} characters, not 22")
    if body and not body[-1].isspace():
        raise AuthError(AuthFailure.MALFORMED, "no space before the trailer")
    key_version, timestamp = _header_fields(_B64VAL[token[1]])
    counter = _undigits(token[2 : 2 + COUNTER_DIGITS])
    tag84 = _undigits(token[2 + COUNTER_DIGITS :])
    return body.rstrip(), Trailer(key_version, counter, timestamp, (tag84 << 4).to_bytes(11, "big"))


def split_binary(data: bytes) -> tuple[bytes, Trailer]:
    """(payload, trailer): the last 17 octets taken off; :class:`AuthError` if shorter."""
    if len(data) < BINARY_TRAILER_OCTETS + 1:
        raise AuthError(AuthFailure.MALFORMED, f"{len(data)} octets: too short for a trailer")
    t = data[-BINARY_TRAILER_OCTETS:]
    key_version, timestamp = _header_fields(t[0])
    counter = int.from_bytes(t[1:6], "big")
    if counter > MAX_COUNTER:
        raise AuthError(AuthFailure.MALFORMED, f"counter {counter} above 2**36 - 1")
    return data[:-BINARY_TRAILER_OCTETS], Trailer(key_version, counter, timestamp, t[6:])


# --- sign and verify ----------------------------------------------------------


def _sign(
    direction: bytes,
    body: str | bytes,
    *,
    key: bytes,
    key_version: int,
    device_id: str,
    counter: int,
    timestamp: bool,
) -> str | bytes:
    _check_fields(key_version, counter)
    if len(key) < MIN_KEY_OCTETS:
        raise ValueError(f"key of {len(key)} octets, at least {MIN_KEY_OCTETS}")
    header = (FLAG_TIMESTAMP if timestamp else 0) | key_version
    if isinstance(body, str):
        if any(c in "\r\n" for c in body):
            raise ValueError("a signed text is one line (the grammar cuts at a line break)")
        if grammar.segments(body) and body.split()[-1].startswith("#"):
            raise ValueError("the body's last word starts with '#', the trailer marker")
        if not body.strip():
            raise ValueError("nothing to sign")
        mac = _mac(key, mac_input(direction, header, counter, device_id, body))
        return body.rstrip() + encode_text_trailer(
            Trailer(key_version, counter, timestamp, _text_tag(mac))
        )
    if direction == TO_DEVICE:
        if not body or body[0] & 0xFE != grammar.BINARY_MAGIC:
            raise ValueError("not a binary Command payload (octet 0 must be 0xA0/0xA1)")
        body = bytes((body[0] | grammar.BINARY_SIGNED,)) + body[1:]
    mac = _mac(key, mac_input(direction, header, counter, device_id, body))
    return body + encode_binary_trailer(
        Trailer(key_version, counter, timestamp, mac[:TAG_OCTETS_BINARY])
    )


def _verify(
    direction: bytes,
    message: str | bytes,
    *,
    keys: Mapping[int, bytes],
    device_id: str,
    window: ReplayWindow | None,
    now: float | None,
    max_age: float | None,
    max_skew: float,
) -> Verified:
    if isinstance(message, str):
        body: str | bytes
        body, trailer = split_text(message)
        if trailer is None:
            raise AuthError(AuthFailure.UNSIGNED, "no trailer")
    else:
        body, trailer = split_binary(message)
    key = keys.get(trailer.key_version)
    if key is None:
        raise AuthError(AuthFailure.UNKNOWN_KEY, f"key version {trailer.key_version} not active")
    if trailer.counter < 1:
        raise AuthError(AuthFailure.MALFORMED, "counter 0")
    try:
        mac = _mac(key, mac_input(direction, trailer.header, trailer.counter, device_id, body))
    except ValueError as exc:  # bad device id is our misuse, but report it as declared
        raise AuthError(AuthFailure.MALFORMED, str(exc)) from None
    expect = _text_tag(mac) if isinstance(body, str) else mac[:TAG_OCTETS_BINARY]
    if not hmac.compare_digest(expect, trailer.tag):
        raise AuthError(AuthFailure.BAD_TAG, "tag does not match")
    if max_age is not None and now is not None:
        if not trailer.timestamp:
            raise AuthError(AuthFailure.NO_TIMESTAMP, "expiry is required, counter is no time")
        signed_at = TIMESTAMP_EPOCH + trailer.counter
        if now - signed_at > max_age:
            raise AuthError(AuthFailure.EXPIRED, f"signed {now - signed_at:.0f} s ago")
        if signed_at - now > max_skew:
            raise AuthError(AuthFailure.FUTURE, f"signed {signed_at - now:.0f} s in the future")
    after = window.check(trailer.counter) if window is not None else None
    return Verified(body, trailer, after)


def verify_command(
    message: str | bytes,
    *,
    keys: Keyring,
    device_id: str,
    window: ReplayWindow,
    now: float | None = None,
    max_age: float | None = None,
    max_skew: float = DEFAULT_MAX_SKEW,
) -> Verified:
    """Device side: check a signed Command (text, or the binary form's whole octets).

    ``now`` (Unix seconds) and ``max_age`` only when the clock is trusted.
    Raises :class:`AuthError` with the reason; nothing else for any input.
    """
    return _verify(
        TO_DEVICE,
        message,
        keys=keys.keys,
        device_id=device_id,
        window=window,
        now=now,
        max_age=max_age,
        max_skew=max_skew,
    )


@overload
def sign_reply(body: str, *, keys: Keyring, device_id: str, counter: int) -> str: ...
@overload
def sign_reply(body: bytes, *, keys: Keyring, device_id: str, counter: int) -> bytes: ...
def sign_reply(body: str | bytes, *, keys: Keyring, device_id: str, counter: int) -> str | bytes:
    """Device side: sign a reply or a device-initiated message (direction 'U')."""
    key = keys.keys[keys.signing]
    return _sign(
        FROM_DEVICE,
        body,
        key=key,
        key_version=keys.signing,
        device_id=device_id,
        counter=counter,
        timestamp=False,
    )


@overload
def sign_command(
    body: str, *, key: bytes, key_version: int, device_id: str, counter: int, timestamp: bool = ...
) -> str: ...
@overload
def sign_command(
    body: bytes,
    *,
    key: bytes,
    key_version: int,
    device_id: str,
    counter: int,
    timestamp: bool = ...,
) -> bytes: ...
def sign_command(
    body: str | bytes,
    *,
    key: bytes,
    key_version: int,
    device_id: str,
    counter: int,
    timestamp: bool = False,
) -> str | bytes:
    """Server side: the Command to send, ``body`` + trailer (direction 'D').

    A binary ``body`` is a ``bridge.grammar`` payload; its signed bit is set
    here. ``timestamp=True`` marks ``counter`` as a :func:`timestamp_counter`.
    Raises ValueError for a body or field the format cannot carry, and for a
    signed Command that does not fit one SMS (a Command is one SMS; the
    device refuses a longer body unanswered, TS 23.040 §9.2.3.16): 160 GSM
    7-bit septets (an extension character costs two), else 70 UCS-2 code
    units, or 140 octets of 8-bit data; the trailer takes 23 septets or 17
    octets of that.
    """
    signed = _sign(
        TO_DEVICE,
        body,
        key=key,
        key_version=key_version,
        device_id=device_id,
        counter=counter,
        timestamp=timestamp,
    )
    _fits_one_sms(signed)
    return signed


def _fits_one_sms(message: str | bytes) -> None:
    """ValueError when ``message`` is longer than one SMS can carry."""
    if isinstance(message, bytes):
        units, limit, what = len(message), SINGLE_OCTETS, "octets"
    else:
        septets = _alphabet.gsm7_length(message)
        if septets is not None:
            units, limit, what = septets, SINGLE_SEPTETS, "GSM 7-bit septets"
        else:
            units = len(message.encode("utf-16-be", "surrogatepass")) // 2
            limit, what = SINGLE_UCS2_UNITS, "UCS-2 code units"
    if units > limit:
        raise ValueError(f"signed, it is {units} {what}; one SMS holds {limit}")


def verify_reply(
    message: str | bytes,
    *,
    keys: Mapping[int, bytes] | Keyring,
    device_id: str,
    window: ReplayWindow | None = None,
) -> Verified:
    """Server side: check a reply or device-initiated message from ``device_id``.

    ``keys`` maps key version -> key. With ``window`` (the server's state for
    this device) a replayed reply is refused and the new window returned.
    """
    table = keys.keys if isinstance(keys, Keyring) else keys
    return _verify(
        FROM_DEVICE,
        message,
        keys=table,
        device_id=device_id,
        window=window,
        now=None,
        max_age=None,
        max_skew=0.0,
    )


def timestamp_counter(now: float, last: int = 0) -> int:
    """A timestamp counter for ``now`` (Unix seconds), strictly above ``last``."""
    return max(int(now) - TIMESTAMP_EPOCH, last + 1, 1)


# --- key file -----------------------------------------------------------------


def generate_key() -> bytes:
    """A fresh 256-bit key."""
    return secrets.token_bytes(32)


def format_key_file(keys: Mapping[int, bytes], sign_with: int) -> str:
    """The key file's TOML text (see :func:`load_keyring`)."""
    Keyring(dict(keys), sign_with)
    lines = [
        "# sms-bridge keys: keep mode 0600, owned by the service's user",
        f"sign_with = {sign_with}",
        "",
        "[keys]",
    ]
    for v in sorted(keys):
        lines.append(f'{v} = "{base64.urlsafe_b64encode(keys[v]).decode().rstrip("=")}"')
    return "\n".join(lines) + "\n"


def write_key_file(path: str | Path, text: str) -> None:
    """Create ``path`` with mode 0600 (refuses to overwrite)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def load_keyring(path: str | Path) -> Keyring:
    """Read the key file: TOML ``sign_with = N`` and ``[keys]`` ``N = "base64url"``.

    Refuses (:class:`KeyFileError`, naming the file and its mode) a file that
    group or others may read or write, that is not a regular file, or whose
    content is not one or two keys of at least 16 octets.
    """
    p = str(path)
    if "\0" in p:
        raise KeyFileError(f"key file {p!r}: a path cannot contain NUL")
    try:
        # O_NONBLOCK: a FIFO put there opens at once (and is refused below)
        # instead of holding the service until something writes to it
        fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise KeyFileError(f"key file {p}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # before reading: a directory gives EISDIR
            raise KeyFileError(f"key file {p}: not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise KeyFileError(
                f"key file {p} has mode {mode:04o}: group or others may read it; "
                f"it must be readable by the service only (chmod 600 {p})"
            )
        with os.fdopen(os.dup(fd), "rb") as f:
            raw = f.read(65536)
    except OSError as exc:
        raise KeyFileError(f"key file {p}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise KeyFileError(f"key file {p}: not TOML ({exc})") from None
    unknown = set(doc) - {"sign_with", "keys"}
    if unknown:
        raise KeyFileError(f"key file {p}: unknown key {sorted(unknown)[0]!r}")
    table = doc.get("keys")
    if not isinstance(table, dict) or not table:
        raise KeyFileError(f"key file {p}: no [keys] table")
    keys: dict[int, bytes] = {}
    for name, value in table.items():
        if not (name.isascii() and name.isdigit()) or not isinstance(value, str):
            raise KeyFileError(f'key file {p}: keys.{name}: want VERSION = "base64url"')
        try:
            padded = value + "=" * (-len(value) % 4)
            keys[int(name)] = base64.b64decode(padded, altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise KeyFileError(f"key file {p}: keys.{name}: not base64url") from None
    sign_with = doc.get("sign_with", max(keys))
    if not isinstance(sign_with, int) or isinstance(sign_with, bool):
        raise KeyFileError(f"key file {p}: sign_with: want a key version number")
    try:
        return Keyring(keys, sign_with)
    except ValueError as exc:
        raise KeyFileError(f"key file {p}: {exc}") from None
