"""Signed Commands and replies, the replay window, key versions, the key file."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge import auth, grammar
from bridge.auth import AuthError, AuthFailure, KeyFileError, Keyring, ReplayWindow
from pdu import alphabet

KEY = bytes(range(32))
KEY2 = bytes(range(100, 132))
DEV = "89883070000012345678"
RING = Keyring({1: KEY}, 1)
ROTATING = Keyring({1: KEY, 2: KEY2}, 2)


def verify(msg, window=None, keys=RING, **kw):
    return auth.verify_command(msg, keys=keys, device_id=DEV, window=window or ReplayWindow(), **kw)


def test_worked_example_pinned():
    """The example of docs/bridge.md, "Security format", byte by byte."""
    m = auth.mac_input(auth.TO_DEVICE, 0x01, 1, DEV, "gpio set relay1 on")
    assert m.hex(" ") == (
        "53 4d 53 42 01"  # "SMSB", format 1
        " 44"  # 'D': to the device
        " 01"  # H: key version 1, no timestamp
        " 00 00 00 00 01"  # counter 1
        " 14"  # 20 octets of device identity
        " 38 39 38 38 33 30 37 30 30 30 30 30 31 32 33 34 35 36 37 38"
        " 54"  # 'T': text
        " 67 70 69 6f 20 73 65 74 20 72 65 6c 61 79 31 20 6f 6e"  # canonical body
    )
    mac = hmac.new(KEY, m, hashlib.sha256).hexdigest()
    assert mac == "6ce1096813a166455e9447c0e03f31a455b4876085540b50e20c95f38746b184"
    # the tag is the first 84 bits: 6ce1096813a166455e944 -> 14 base64url digits
    signed = auth.sign_command(
        "gpio set relay1 on", key=KEY, key_version=1, device_id=DEV, counter=1
    )
    assert signed == "gpio set relay1 on #BAAAAABbOEJaBOhZkVelE"
    assert auth._undigits("bOEJaBOhZkVelE") == int(mac[:21], 16)
    v = verify(signed)
    assert (v.body, v.counter, v.trailer.key_version) == ("gpio set relay1 on", 1, 1)
    assert v.window == ReplayWindow(1, 1, 64)


def test_reply_and_binary_and_timestamp_examples_pinned():
    reply = auth.sign_reply("relay1=on", keys=RING, device_id=DEV, counter=7)
    assert reply == "relay1=on #BAAAAAH7NH2jjJKU2JA4X"
    payload = bytes.fromhex("a00302067265 6c617931 01".replace(" ", ""))
    signed = auth.sign_command(payload, key=KEY, key_version=1, device_id=DEV, counter=2)
    assert signed.hex(" ") == (
        "a1 03 02 06 72 65 6c 61 79 31 01"  # payload, signed bit set
        " 01 00 00 00 00 02"  # H, counter 2
        " 81 a4 50 cd 0c 4a 26 90 7a e3 17"  # 88-bit tag
    )
    stamp = auth.timestamp_counter(1_764_578_400)  # 2025-12-01T08:40:00Z
    assert stamp == 28_888_800
    t = auth.sign_command(
        "reboot", key=KEY2, key_version=2, device_id=DEV, counter=stamp, timestamp=True
    )
    assert t == "reboot #iABuM7go6MRTPnz9Oq-6S"


def test_trailer_is_23_basic_set_characters():
    signed = auth.sign_command("ping", key=KEY, key_version=15, device_id=DEV, counter=2**36 - 1)
    trailer = signed[len("ping") :]
    assert len(trailer) == auth.TEXT_TRAILER_CHARS == 23 <= 24
    assert alphabet.septet_costs(trailer) == b"\x01" * 23
    assert auth.TAG_BITS_TEXT == 84 >= 80 and auth.TAG_OCTETS_BINARY * 8 == 88


def test_carrier_whitespace_changes_do_not_break_the_tag():
    signed = auth.sign_command(
        "gpio set relay1 on", key=KEY, key_version=1, device_id=DEV, counter=3
    )
    mangled = "  gpio   set relay1\ton " + signed[len("gpio set relay1 on") :] + "  "
    assert verify(mangled).counter == 3


def test_rotation_two_key_versions():
    old = auth.sign_command("ping", key=KEY, key_version=1, device_id=DEV, counter=1)
    new = auth.sign_command("ping", key=KEY2, key_version=2, device_id=DEV, counter=2)
    w = verify(old, keys=ROTATING).window
    assert verify(new, window=w, keys=ROTATING).counter == 2
    with pytest.raises(AuthError) as e:
        verify(new, keys=RING)
    assert e.value.reason is AuthFailure.UNKNOWN_KEY
    # the device signs replies with the signing version
    assert auth.sign_reply("ok", keys=ROTATING, device_id=DEV, counter=1)[4] == "C"


def _refused(msg, reason, **kw):
    with pytest.raises(AuthError) as e:
        verify(msg, **kw)
    assert e.value.reason is reason, e.value
    return e.value


def test_altered_truncated_wrong_key_wrong_device_refused():
    signed = auth.sign_command(
        "gpio set relay1 on", key=KEY, key_version=1, device_id=DEV, counter=5
    )
    _refused(signed.replace("on #", "off #"), AuthFailure.BAD_TAG)
    _refused(signed[:-1], AuthFailure.MALFORMED)
    _refused(signed[:-1] + ("A" if signed[-1] != "A" else "B"), AuthFailure.BAD_TAG)
    _refused(signed.replace("#BAAAAAF", "#BAAAAAG"), AuthFailure.BAD_TAG)  # counter altered
    _refused(signed, AuthFailure.BAD_TAG, keys=Keyring({1: KEY2}, 1))
    with pytest.raises(AuthError) as e:
        auth.verify_command(signed, keys=RING, device_id="other", window=ReplayWindow())
    assert e.value.reason is AuthFailure.BAD_TAG
    _refused("gpio set relay1 on", AuthFailure.UNSIGNED)
    _refused("ping #", AuthFailure.MALFORMED)
    _refused("ping #BAAAAAB" + "!" * 14, AuthFailure.MALFORMED)
    # the reserved bit of H: 'R' is 17
    _refused("ping #RAAAAAB" + "A" * 14, AuthFailure.MALFORMED)
    # counter 0 is never issued
    _refused("ping #BAAAAAA" + "A" * 14, AuthFailure.MALFORMED)


def test_direction_is_bound():
    """A reply the device sent cannot be played back to it as a Command."""
    reply = auth.sign_reply("gpio set relay1 on", keys=RING, device_id=DEV, counter=9)
    _refused(reply, AuthFailure.BAD_TAG)
    cmd = auth.sign_command("ping", key=KEY, key_version=1, device_id=DEV, counter=9)
    with pytest.raises(AuthError) as e:
        auth.verify_reply(cmd, keys={1: KEY}, device_id=DEV)
    assert e.value.reason is AuthFailure.BAD_TAG
    assert auth.verify_reply(reply, keys={1: KEY}, device_id=DEV).body == "gpio set relay1 on"


def test_text_and_binary_never_collide():
    """The kind octet: a text tag moved onto the same octets sent as binary fails."""
    text = auth.sign_command("ping", key=KEY, key_version=1, device_id=DEV, counter=4)
    _, trailer = auth.split_text(text)
    assert trailer is not None
    forged = b"ping" + auth.encode_binary_trailer(trailer)
    with pytest.raises(AuthError) as e:
        verify(forged)
    assert e.value.reason is AuthFailure.BAD_TAG
    bsig = auth.sign_command(b"\xa0ping", key=KEY, key_version=1, device_id=DEV, counter=4)
    assert verify(bsig).body == b"\xa1ping"


def test_replayed_and_too_old():
    s5 = auth.sign_command("ping", key=KEY, key_version=1, device_id=DEV, counter=5)
    s100 = auth.sign_command("ping", key=KEY, key_version=1, device_id=DEV, counter=100)
    w = verify(s5).window
    _refused(s5, AuthFailure.REPLAYED, window=w)
    w = verify(s100, window=w).window
    _refused(s5, AuthFailure.TOO_OLD, window=w)  # 100 - 5 >= 64


def test_expiry_when_the_clock_is_trusted():
    t0 = 1_764_578_400
    c = auth.timestamp_counter(t0)
    s = auth.sign_command("ping", key=KEY, key_version=1, device_id=DEV, counter=c, timestamp=True)
    assert verify(s, now=t0 + 3600, max_age=3600).counter == c
    _refused(s, AuthFailure.EXPIRED, now=t0 + 3601, max_age=3600)
    _refused(s, AuthFailure.FUTURE, now=t0 - 301, max_age=3600)
    assert verify(s, now=t0 - 300, max_age=3600)
    plain = auth.sign_command("ping", key=KEY, key_version=1, device_id=DEV, counter=7)
    _refused(plain, AuthFailure.NO_TIMESTAMP, now=t0, max_age=3600)
    assert verify(plain).counter == 7  # no trusted clock: plain counters are fine
    assert auth.timestamp_counter(t0, last=c) == c + 1


def test_sign_refuses_what_the_format_cannot_carry():
    for body, match in [
        ("ping\nstatus", "one line"),
        ("run #1", "'#'"),
        ("   ", "nothing"),
    ]:
        with pytest.raises(ValueError, match=match):
            auth.sign_command(body, key=KEY, key_version=1, device_id=DEV, counter=1)
    with pytest.raises(ValueError, match="counter"):
        auth.sign_command("ping", key=KEY, key_version=1, device_id=DEV, counter=2**36)
    with pytest.raises(ValueError, match="key version"):
        auth.sign_command("ping", key=KEY, key_version=16, device_id=DEV, counter=1)
    with pytest.raises(ValueError, match="at least 16"):
        auth.sign_command("ping", key=b"short", key_version=1, device_id=DEV, counter=1)
    with pytest.raises(ValueError, match="device identity"):
        auth.sign_command("ping", key=KEY, key_version=1, device_id="", counter=1)
    with pytest.raises(ValueError, match="binary Command payload"):
        auth.sign_command(b"\x00", key=KEY, key_version=1, device_id=DEV, counter=1)


def test_keyring_bounds():
    with pytest.raises(ValueError, match="one or two"):
        Keyring({1: KEY, 2: KEY, 3: KEY}, 1)
    with pytest.raises(ValueError, match="signing"):
        Keyring({1: KEY}, 2)


# --- replay window ---------------------------------------------------------


def test_window_exact_bounds():
    w = ReplayWindow(100, 1, 64)
    assert w.check(37).seen(37)  # 100 - 63: the oldest inside
    with pytest.raises(AuthError) as e:
        w.check(36)
    assert e.value.reason is AuthFailure.TOO_OLD
    w2 = w.check(164)  # slides by 64: only 164 remains marked
    assert (w2.highest, w2.bitmap) == (164, 1)
    assert not w2.seen(101) and w2.seen(100)  # 100 is now below the window


def test_window_after_loss_counts_everything_up_to_the_mark_as_used():
    w = ReplayWindow.after_loss(500)
    for c in (1, 437, 499, 500):
        assert w.seen(c)
    assert w.check(501).highest == 501


@given(st.lists(st.integers(1, 300), max_size=80), st.integers(1, 128))
def test_window_accepts_each_counter_at_most_once(counters, size):
    w = ReplayWindow(size=size)
    accepted: list[int] = []
    for c in counters:
        try:
            w = w.check(c)
        except AuthError as e:
            assert e.reason in (AuthFailure.REPLAYED, AuthFailure.TOO_OLD)
            assert c in accepted or c <= w.highest - size
            continue
        assert c not in accepted
        accepted.append(c)
        assert w.seen(c)
    assert ReplayWindow.from_text(w.to_text()) == w


@given(st.text(max_size=40))
def test_window_from_text_result_or_value_error(text):
    with contextlib.suppress(ValueError):
        ReplayWindow.from_text(text)


# --- arbitrary input --------------------------------------------------------


@given(st.text(max_size=200))
def test_arbitrary_text_verifies_or_raises_auth_error(text):
    try:
        v = verify(text)
    except AuthError as e:
        assert isinstance(e.reason, AuthFailure)
        return
    assert v.counter >= 1  # pragma: no cover - a forged tag is a 2**-84 event


@given(
    st.text(
        alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\r\n#"),
        min_size=0,
        max_size=40,
    ),
    st.integers(0, 22),
    st.text(alphabet=auth.B64URL + "#! ", max_size=3),
)
def test_altered_or_truncated_signatures_refused(body, cut, noise):
    if not grammar.segments(body):
        return
    signed = auth.sign_command(body, key=KEY, key_version=1, device_id=DEV, counter=42)
    assert verify(signed).counter == 42
    damaged = signed[: len(signed) - cut] + noise if cut or noise else signed
    if damaged.rstrip() == signed:
        return
    with pytest.raises(AuthError) as e:
        verify(damaged)
    assert e.value.reason in (AuthFailure.MALFORMED, AuthFailure.BAD_TAG, AuthFailure.UNSIGNED)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_verify_or_raise_auth_error(data):
    try:
        verify(data)
    except AuthError as e:
        assert isinstance(e.reason, AuthFailure)


@given(st.binary(min_size=1, max_size=100), st.integers(0, 200))
def test_binary_bit_flip_refused(payload, where):
    body = bytes((0xA0,)) + payload
    signed = auth.sign_command(body, key=KEY, key_version=1, device_id=DEV, counter=3)
    i = where % len(signed)
    flipped = signed[:i] + bytes((signed[i] ^ 0x01,)) + signed[i + 1 :]
    with pytest.raises(AuthError):
        verify(flipped)


# --- key file ---------------------------------------------------------------


def test_key_file_round_trip_and_mode(tmp_path):
    path = tmp_path / "keys.toml"
    auth.write_key_file(path, auth.format_key_file({1: KEY, 2: KEY2}, 2))
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert auth.load_keyring(path) == ROTATING
    with pytest.raises(FileExistsError):
        auth.write_key_file(path, "x")
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError) as e:
        auth.load_keyring(path)
    assert str(path) in str(e.value) and "mode 0644" in str(e.value)
    os.chmod(path, 0o640)
    with pytest.raises(KeyFileError, match="mode 0640"):
        auth.load_keyring(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("x = 1\n[keys]\n1 = 'AAAA'\n", "unknown key 'x'"),
        ("sign_with = 1\n", "no \\[keys\\]"),
        ("[keys]\n1 = 'AAAA'\n", "at least 16"),
        ("[keys]\none = 'AAAA'\n", "keys.one"),
        ("[keys]\n1 = '!!!!'\n", "not base64url"),
        ("[keys\n", "not TOML"),
        ("sign_with = 3\n[keys]\n1 = 'AAAAAAAAAAAAAAAAAAAAAA'\n", "signing key version 3"),
        ("sign_with = true\n[keys]\n1 = 'AAAAAAAAAAAAAAAAAAAAAA'\n", "sign_with"),
    ],
)
def test_key_file_errors_name_the_file(tmp_path, text, match):
    path = tmp_path / "k.toml"
    auth.write_key_file(path, text)
    with pytest.raises(KeyFileError, match=match) as e:
        auth.load_keyring(path)
    assert str(path) in str(e.value)


def test_key_file_missing_or_not_regular(tmp_path):
    with pytest.raises(KeyFileError, match="No such file"):
        auth.load_keyring(tmp_path / "absent")
    os.symlink(tmp_path / "absent", tmp_path / "link")
    with pytest.raises(KeyFileError):
        auth.load_keyring(tmp_path / "link")


@given(
    st.integers(0, 15),
    st.integers(1, 2**36 - 1),
    st.booleans(),
    st.binary(min_size=32, max_size=32),
)
def test_trailer_round_trips(key_version, counter, timestamp, mac):
    text_t = auth.Trailer(key_version, counter, timestamp, auth._text_tag(mac))
    body, got = auth.split_text("ping" + auth.encode_text_trailer(text_t))
    assert (body, got) == ("ping", text_t)
    bin_t = auth.Trailer(key_version, counter, timestamp, mac[: auth.TAG_OCTETS_BINARY])
    payload, got_b = auth.split_binary(b"\xa1" + auth.encode_binary_trailer(bin_t))
    assert (payload, got_b) == (b"\xa1", bin_t)


def test_key_file_that_is_a_directory_is_refused_by_name(tmp_path):
    with pytest.raises(KeyFileError) as e:
        auth.load_keyring(tmp_path)
    assert str(e.value) == f"key file {tmp_path}: not a regular file"


def test_key_file_that_is_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "keys.toml"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(KeyFileError) as e:
        auth.load_keyring(fifo)  # before: open(2) waited for a writer, for ever
    assert str(e.value) == f"key file {fifo}: not a regular file"


def test_key_file_path_with_nul_is_a_key_file_error():
    with pytest.raises(KeyFileError, match="a path cannot contain NUL"):
        auth.load_keyring("/etc/sms-bridge/keys\0.toml")


@pytest.mark.parametrize(
    ("body", "fits", "message"),
    [
        ("x" * 137, True, ""),  # 137 + 23 = 160 septets
        ("x" * 138, False, "signed, it is 161 GSM 7-bit septets; one SMS holds 160"),
        ("{" * 68, True, ""),  # 136 + 23 = 159 septets: an extension character costs two
        ("{" * 69, False, "signed, it is 161 GSM 7-bit septets; one SMS holds 160"),
        ("\U0001f600" * 23, True, ""),  # 46 + 23 = 69 UCS-2 code units
        ("\U0001f600" * 24, False, "signed, it is 71 UCS-2 code units; one SMS holds 70"),
        (b"\xa0" + bytes(122), True, ""),  # 123 + 17 = 140 octets
        (b"\xa0" + bytes(123), False, "signed, it is 141 octets; one SMS holds 140"),
    ],
    ids=[
        "160-septets",
        "161-septets",
        "159-escaped",
        "161-escaped",
        "69-ucs2",
        "71-ucs2",
        "140-octets",
        "141-octets",
    ],
)
def test_a_signed_command_must_fit_one_sms(body, fits, message):
    def sign():
        return auth.sign_command(body, key=KEY, key_version=1, device_id=DEV, counter=9)

    if fits:
        assert verify(sign()).counter == 9
    else:
        with pytest.raises(ValueError) as e:
            sign()
        assert str(e.value) == message
