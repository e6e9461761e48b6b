"""The configuration: one TOML file (:mod:`tomllib`) -> typed, frozen dataclasses.

Pure apart from :func:`load` reading the file. Every error is a
:class:`ConfigError` whose message starts with the full key
(``modem[1].port: ...``) and says what is wrong; unknown keys are errors (a
typo must not silently fall back to a default). ``docs/bridge.example.toml``
lists every key with its default.

Sections: ``[bridge]`` (product, device id, journal, footer markers),
``[twilio]`` (senders, short codes, include_sid), ``[security]`` (key file,
per-verb levels, bench numbers, expiry, replay window), ``[budgets]``
(replies per hour and per day, per sender and global), ``[reports]`` (boot
message, scheduled status, events), ``[status]`` (status socket,
Prometheus textfile), ``[[modem]]`` (one per module, side by side),
``[actions.VERB]`` (verbs that run one allow-listed script each) and
``[hal]``, kept as an opaque mapping here and validated by the HAL's own
parser (``hal.config.parse``).
"""

from __future__ import annotations

import enum
import posixpath
import re
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .framing import (
    SUPER_SIM_ADDRESS,
    WIRELESS_SHORT_CODE,
    FramingConfig,
    ProductSetting,
    SidPosition,
)
from .grammar import Level
from .journal import DEFAULT_PATH

E = TypeVar("E", bound=enum.Enum)
T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is wrong; ``key`` is its full name, ``file`` the file."""

    def __init__(self, key: str, message: str, file: str | None = None) -> None:
        self.key = key
        self.detail = message
        self.file = file
        text = f"{key}: {message}" if key else message
        super().__init__(f"{file}: {text}" if file else text)


@dataclass(frozen=True, slots=True)
class BridgeSection:
    """``[bridge]``: which product, which device identity, where the journal lives."""

    product: ProductSetting = ProductSetting.PROGRAMMABLE_WIRELESS
    device_id: str = ""  # empty: the SIM's ICCID, read from the module
    journal: str = DEFAULT_PATH
    footer_markers: tuple[str, ...] = ()
    #: load OpenSSL in ``run`` (for a plugin's TLS); read before start-up by bridge.start
    openssl: bool = False
    #: the journal in a process of its own (bridge.journal_process): for many
    #: modules on a host with more than one core
    journal_process: bool = False


@dataclass(frozen=True, slots=True)
class TwilioSection:
    """``[twilio]``: the senders Commands come from and the short codes replies go to."""

    wireless_senders: tuple[str, ...] = (WIRELESS_SHORT_CODE,)
    wireless_reply_to: str = WIRELESS_SHORT_CODE
    super_sim_address: str = SUPER_SIM_ADDRESS
    include_sid: tuple[SidPosition, ...] = (SidPosition.START, SidPosition.END)


@dataclass(frozen=True, slots=True)
class SecuritySection:
    """``[security]``: keys, per-verb minimum levels, bench numbers, expiry, window."""

    key_file: str = ""  # empty: no key; verbs that need `signed` are refused
    levels: Mapping[str, Level] = field(default_factory=dict)
    bench_numbers: tuple[str, ...] = ()
    answer_bench_directly: bool = False
    max_age: float = 0.0  # seconds; 0: no expiry check (the clock is not trusted)
    max_skew: float = 300.0
    replay_window: int = 64


@dataclass(frozen=True, slots=True)
class BudgetsSection:
    """``[budgets]``: replies per hour and per day; over budget is journaled, not answered."""

    global_per_hour: int = 60
    global_per_day: int = 500
    sender_per_hour: int = 30
    sender_per_day: int = 200


@dataclass(frozen=True, slots=True)
class Threshold:
    """``[reports.thresholds.SENSOR]``: an event when the sensor's value crosses
    ``above`` (or ``below``), another when it is back past the hysteresis."""

    above: float | None = None
    below: float | None = None
    hysteresis: float = 0.0


@dataclass(frozen=True, slots=True)
class ReportsSection:
    """``[reports]``: device-initiated messages to the product's short code."""

    boot: bool = True
    status_every: int = 0  # seconds; 0: no scheduled status
    events: bool = False
    sensor_every: int = 60  # seconds between reads of the sensors that have a threshold
    signal_lost_after: int = 60  # seconds unregistered before "signal back" is reported
    thresholds: Mapping[str, Threshold] = field(default_factory=dict)


#: Where the service listens for ``sms-bridge status`` (the unit's RuntimeDirectory=).
DEFAULT_STATUS_SOCKET = "/run/sms-bridge/status.sock"


@dataclass(frozen=True, slots=True)
class StatusSection:
    """``[status]``: the live-state socket and the Prometheus textfile (docs/bridge.md)."""

    socket: str = DEFAULT_STATUS_SOCKET  # empty: no status socket
    prometheus_textfile: str = ""  # empty: no textfile
    prometheus_every: int = 15  # seconds between textfile writes


@dataclass(frozen=True, slots=True)
class ModemConfig:
    """One ``[[modem]]``: a module and how to reach it."""

    port: str
    name: str = ""
    baud: int = 115200
    pin: str = ""
    product: ProductSetting | None = None  # None: [bridge].product
    profile: str = ""  # module profile (quirks); for sim:// the simulated module
    direct_delivery: bool = False  # +CMT with +CNMA instead of stored delivery (+CMTI)


#: How many arguments a Command may pass to a configured action's script.
MAX_ACTION_ARGS = 6


@dataclass(frozen=True, slots=True)
class ActionSection:
    """``[actions.VERB]``: a verb of its own that runs one allow-listed script.

    ``script`` names a script of ``[hal.scripts]`` (its program, argument
    patterns, timeout and idempotency stay there); ``args`` is how many
    arguments a Command may pass (each still checked against the script's
    patterns before anything runs); ``level`` the minimum security level.
    """

    script: str
    level: Level = Level.SIGNED
    args: int = 0
    help: str = ""
    binary_id: int | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration."""

    bridge: BridgeSection = BridgeSection()
    twilio: TwilioSection = TwilioSection()
    security: SecuritySection = SecuritySection()
    budgets: BudgetsSection = BudgetsSection()
    reports: ReportsSection = ReportsSection()
    modems: tuple[ModemConfig, ...] = ()
    hal: Mapping[str, Any] = field(default_factory=dict)
    status: StatusSection = StatusSection()
    actions: Mapping[str, ActionSection] = field(default_factory=dict)

    def framing(self, modem: ModemConfig | None = None) -> FramingConfig:
        """The framing settings for one module (its product, else the bridge's)."""
        product = (modem.product if modem is not None else None) or self.bridge.product
        return FramingConfig(
            product=product,
            wireless_senders=frozenset(self.twilio.wireless_senders),
            wireless_reply_to=self.twilio.wireless_reply_to,
            super_sim_address=self.twilio.super_sim_address,
            sid_positions=frozenset(self.twilio.include_sid),
            bench_numbers=frozenset(self.security.bench_numbers),
            answer_bench_directly=self.security.answer_bench_directly,
        )


_ADDRESS = re.compile(r"\+?[0-9]{1,20}")
_VERB = re.compile(r"[a-z][a-z0-9_-]*( [a-z][a-z0-9_-]*)?")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_NOT_A_VERB = "not a verb (one or two lower-case words)"
_PROFILE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
#: ``HOST:PORT`` of a socket:// URL: a host name or address, or ``[IPv6]``.
_NETLOC = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5}")


class _Table:
    """A TOML table being read: typed getters, and unknown keys reported at the end."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(where, f"must be a table, not {_kind(data)}")
        self.data: dict[str, object] = data
        self.where = where
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def get(self, name: str) -> object:
        self.used.add(name)
        return self.data.get(name)

    def text(self, name: str, default: str, pattern: re.Pattern[str] | None = None) -> str:
        v = self.get(name)
        if v is None:
            return default
        if not isinstance(v, str):
            raise ConfigError(self.key(name), f"must be a string, not {_kind(v)}")
        if "\0" in v:  # no path, address or text of ours can carry one (open(2) refuses it)
            raise ConfigError(self.key(name), "must not contain NUL")
        if pattern is not None and v and not pattern.fullmatch(v):
            raise ConfigError(self.key(name), f"{v!r} is not valid")
        return v

    def flag(self, name: str, default: bool) -> bool:
        v = self.get(name)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise ConfigError(self.key(name), f"must be true or false, not {_kind(v)}")
        return v

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        v = self.get(name)
        if v is None:
            return default
        if not isinstance(v, int) or isinstance(v, bool):
            raise ConfigError(self.key(name), f"must be an integer, not {_kind(v)}")
        if not lo <= v <= hi:
            raise ConfigError(self.key(name), f"{v} is not in {lo}..{hi}")
        return v

    def number(self, name: str, default: float, lo: float, hi: float) -> float:
        v = self.get(name)
        if v is None:
            return default
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise ConfigError(self.key(name), f"must be a number, not {_kind(v)}")
        if not lo <= v <= hi:
            raise ConfigError(self.key(name), f"{v} is not in {lo:.15g}..{hi:.15g}")
        return float(v)

    def strs(
        self, name: str, default: tuple[str, ...], pattern: re.Pattern[str] | None = None
    ) -> tuple[str, ...]:
        v = self.get(name)
        if v is None:
            return default
        if not isinstance(v, list):
            raise ConfigError(self.key(name), f"must be a list of strings, not {_kind(v)}")
        out = []
        for i, item in enumerate(v):
            if not isinstance(item, str):
                raise ConfigError(f"{self.key(name)}[{i}]", f"must be a string, not {_kind(item)}")
            if "\0" in item:
                raise ConfigError(f"{self.key(name)}[{i}]", "must not contain NUL")
            if pattern is not None and not pattern.fullmatch(item):
                raise ConfigError(f"{self.key(name)}[{i}]", f"{item!r} is not valid")
            out.append(item)
        return tuple(out)

    def choice(self, name: str, default: E, enum: type[E]) -> E:
        v = self.get(name)
        if v is None:
            return default
        return _enum(self.key(name), v, enum)

    def named(
        self, name: str, pattern: re.Pattern[str], what: str, read: Callable[[object, str], T]
    ) -> dict[str, T]:
        """A sub-table of entries the user names (``[security.levels]``,
        ``[reports.thresholds.SENSOR]``, ``[actions.VERB]``): each name must
        match ``pattern`` (else ``what`` is the error), each value is ``read``."""
        sub = _Table(_or_empty(self.get(name)), self.key(name))
        out: dict[str, T] = {}
        for key in list(sub.data):
            if not pattern.fullmatch(key):
                raise ConfigError(sub.key(key), what)
            out[key] = read(sub.get(key), sub.key(key))
        sub.done()
        return out

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(self.key(unknown[0]), "unknown key")


def _or_empty(v: object) -> object:
    """An absent table reads as an empty one (a present non-table is an error)."""
    return {} if v is None else v


def _kind(v: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(v), type(v).__name__)


def _enum(key: str, v: object, enum: type[E]) -> E:
    allowed = ", ".join(str(m.value) for m in enum)
    if isinstance(v, str):
        for m in enum:
            if str(m.value) == v.lower() or m.name.lower() == v.lower():
                return m
    raise ConfigError(key, f"{v!r} is not one of {allowed}")


def check_port(key: str, url: str) -> str:
    """A serial device path, ``socket://HOST:PORT`` or ``sim://PROFILE``; else ConfigError."""
    if "\0" in url:
        raise ConfigError(key, "must not contain NUL")
    if url.startswith("/"):
        return url
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(
            key, f"{url!r} is not a device path (/dev/ttyUSB2), socket://HOST:PORT or sim://PROFILE"
        )
    if scheme in ("rfc2217", "loop"):
        raise ConfigError(
            key,
            f"{scheme}:// is refused: the asyncio serial transport needs a file descriptor; "
            "share the port with ser2net or socat and use socket://HOST:PORT",
        )
    if scheme == "sim":
        if not rest:
            raise ConfigError(key, f"{url!r}: sim:// needs a profile name (sim://bg96)")
        if not _PROFILE.fullmatch(rest):
            raise ConfigError(
                key,
                f"{url!r}: sim:// takes a profile name only, lower-case, no options (sim://bg96)",
            )
        return url
    if scheme == "socket":
        # urlsplit raises ValueError for an unbalanced "[" and, before Python
        # 3.12, takes "[::1]x:7" as host ::1; the netloc is checked whole here
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if (
            parts is None
            or port is None
            or not 1 <= port <= 65535
            or parts.path
            or not _NETLOC.fullmatch(parts.netloc)
        ):
            raise ConfigError(key, f"{url!r}: want socket://HOST:PORT with a port 1-65535")
        return url
    raise ConfigError(key, f"{url!r}: unknown scheme {scheme!r} (socket://, sim:// or a path)")


def _modem(data: object, i: int, seen: set[str]) -> ModemConfig:
    t = _Table(data, f"modem[{i}]")
    port_v = t.get("port")
    if port_v is None:
        raise ConfigError(t.key("port"), "is required")
    if not isinstance(port_v, str):
        raise ConfigError(t.key("port"), f"must be a string, not {_kind(port_v)}")
    port = check_port(t.key("port"), port_v)
    name = t.text("name", f"modem{i}", _NAME) or f"modem{i}"
    if name in seen:
        raise ConfigError(t.key("name"), f"{name!r} is used by another [[modem]]")
    seen.add(name)
    pin = t.text("pin", "")
    if pin and not re.fullmatch(r"[0-9]{4,8}", pin):
        raise ConfigError(t.key("pin"), "a SIM PIN is 4 to 8 digits")
    product_v = t.get("product")
    product = (
        None
        if product_v is None or product_v == ""
        else _enum(t.key("product"), product_v, ProductSetting)
    )
    m = ModemConfig(
        port=port,
        name=name,
        baud=t.integer("baud", 115200, 300, 4_000_000),
        pin=pin,
        product=product,
        profile=t.text("profile", "", _PROFILE),
        direct_delivery=t.flag("direct_delivery", False),
    )
    t.done()
    return m


def _absolute(key: str, path: str) -> None:
    """A path the service opens must not depend on its working directory:
    ``check-config`` runs in the operator's, the service under systemd in
    ``/``, so a relative journal would be another file (with its replay
    counters and deduplication gone) and a relative key file no key."""
    if not path.startswith("/"):
        raise ConfigError(
            key, f"{path!r} is not an absolute path (the service's working directory is not yours)"
        )


def _module_of(port: str) -> str | None:
    """What identifies the module behind ``port``: a normalised device path or
    ``host:port`` (lower-case host); None for ``sim://`` (each is a simulator
    of its own)."""
    if port.startswith("/"):
        return posixpath.normpath(port)
    if port.startswith("socket://"):
        parts = urllib.parse.urlsplit(port)
        return f"socket://{(parts.hostname or '').lower()}:{parts.port}"
    return None


def _one_section_per_module(modems: tuple[ModemConfig, ...]) -> None:
    """Two ``[[modem]]`` sections on one port would be two readers of one
    line: each takes the other's answers, and a Command one reads the other
    may delete. Symbolic links (``/dev/serial/by-id/...``) are the service's
    to resolve (:func:`bridge.service.check`); this compares the spelling."""
    first: dict[str, int] = {}
    for i, m in enumerate(modems):
        ident = _module_of(m.port)
        if ident is None:
            continue
        j = first.setdefault(ident, i)
        if j != i:
            raise ConfigError(
                f"modem[{i}].port",
                f"{m.port!r} is {modems[j].name}'s port too: one [[modem]] per module",
            )


def _threshold(data: object, where: str) -> Threshold:
    t = _Table(data, where)
    th = Threshold(
        above=t.number("above", 0.0, -1e12, 1e12) if "above" in t.data else None,
        below=t.number("below", 0.0, -1e12, 1e12) if "below" in t.data else None,
        hysteresis=t.number("hysteresis", 0.0, 0.0, 1e12),
    )
    t.done()
    if th.above is None and th.below is None:
        raise ConfigError(where, "needs above, below or both")
    if th.above is not None and th.below is not None and th.below >= th.above:
        raise ConfigError(t.key("below"), f"{th.below:g} must be less than above ({th.above:g})")
    return th


def _action(data: object, where: str) -> ActionSection:
    t = _Table(data, where)
    script = t.text("script", "", _NAME)
    if not script:
        raise ConfigError(t.key("script"), "required: the name of a script in [hal.scripts]")
    binary_id = t.integer("binary_id", 0, 0, 255)
    section = ActionSection(
        script=script,
        level=t.choice("level", Level.SIGNED, Level),
        args=t.integer("args", 0, 0, MAX_ACTION_ARGS),
        help=t.text("help", ""),
        binary_id=binary_id or None,
    )
    t.done()
    return section


def parse(doc: Mapping[str, object]) -> Config:
    """The configuration from a parsed TOML document; :class:`ConfigError` if wrong."""
    top = _Table(dict(doc), "")

    b = _Table(_or_empty(top.get("bridge")), "bridge")
    bridge = BridgeSection(
        product=b.choice("product", ProductSetting.PROGRAMMABLE_WIRELESS, ProductSetting),
        device_id=b.text("device_id", "", re.compile(r"[\x21-\x7e]{1,64}")),
        journal=b.text("journal", DEFAULT_PATH) or DEFAULT_PATH,
        footer_markers=b.strs("footer_markers", ()),
        openssl=b.flag("openssl", False),
        journal_process=b.flag("journal_process", False),
    )
    _absolute("bridge.journal", bridge.journal)
    if any(not m for m in bridge.footer_markers):
        raise ConfigError("bridge.footer_markers", "an empty marker would cut every Command")
    b.done()

    t = _Table(_or_empty(top.get("twilio")), "twilio")
    include_v = t.strs("include_sid", ("start", "end"))
    twilio = TwilioSection(
        wireless_senders=t.strs("wireless_senders", (WIRELESS_SHORT_CODE,), _ADDRESS),
        wireless_reply_to=t.text("wireless_reply_to", WIRELESS_SHORT_CODE, _ADDRESS),
        super_sim_address=t.text("super_sim_address", SUPER_SIM_ADDRESS, _ADDRESS),
        include_sid=tuple(
            _enum(f"twilio.include_sid[{i}]", v, SidPosition) for i, v in enumerate(include_v)
        ),
    )
    if not twilio.wireless_reply_to or not twilio.super_sim_address:
        raise ConfigError("twilio", "the short codes must not be empty")
    t.done()

    s = _Table(_or_empty(top.get("security")), "security")
    levels = s.named("levels", _VERB, _NOT_A_VERB, lambda v, key: _enum(key, v, Level))
    security = SecuritySection(
        key_file=s.text("key_file", ""),
        levels=levels,
        bench_numbers=s.strs("bench_numbers", (), _ADDRESS),
        answer_bench_directly=s.flag("answer_bench_directly", False),
        max_age=s.number("max_age", 0.0, 0.0, 366 * 86400.0),
        max_skew=s.number("max_skew", 300.0, 0.0, 86400.0),
        replay_window=s.integer("replay_window", 64, 1, 4096),
    )
    if security.key_file:
        _absolute("security.key_file", security.key_file)
    s.done()

    g = _Table(_or_empty(top.get("budgets")), "budgets")
    budgets = BudgetsSection(
        global_per_hour=g.integer("global_per_hour", 60, 0, 100_000),
        global_per_day=g.integer("global_per_day", 500, 0, 1_000_000),
        sender_per_hour=g.integer("sender_per_hour", 30, 0, 100_000),
        sender_per_day=g.integer("sender_per_day", 200, 0, 1_000_000),
    )
    g.done()

    r = _Table(_or_empty(top.get("reports")), "reports")
    thresholds = r.named("thresholds", _NAME, "not a sensor name", _threshold)
    reports = ReportsSection(
        boot=r.flag("boot", True),
        status_every=r.integer("status_every", 0, 0, 366 * 86400),
        events=r.flag("events", False),
        sensor_every=r.integer("sensor_every", 60, 1, 86400),
        signal_lost_after=r.integer("signal_lost_after", 60, 0, 86400),
        thresholds=thresholds,
    )
    if 0 < reports.status_every < 60:
        raise ConfigError("reports.status_every", "0 (off) or at least 60 seconds")
    r.done()

    st = _Table(_or_empty(top.get("status")), "status")
    status = StatusSection(
        socket=st.text("socket", DEFAULT_STATUS_SOCKET),
        prometheus_textfile=st.text("prometheus_textfile", ""),
        prometheus_every=st.integer("prometheus_every", 15, 1, 3600),
    )
    for key in ("socket", "prometheus_textfile"):
        value = getattr(status, key)
        if value and not value.startswith("/"):
            raise ConfigError(f"status.{key}", f"{value!r} is not an absolute path")
    if len(status.socket.encode()) > 107:  # sun_path is 108 bytes with its NUL (unix(7))
        raise ConfigError("status.socket", "longer than the 107 bytes a socket path may have")
    st.done()

    modems_v = top.get("modem")
    if modems_v is None:
        modems_v = []
    if not isinstance(modems_v, list):
        raise ConfigError("modem", "use [[modem]] sections (a list of tables)")
    seen: set[str] = set()
    modems = tuple(_modem(m, i, seen) for i, m in enumerate(modems_v))
    _one_section_per_module(modems)
    products = {m.product or bridge.product for m in modems} or {bridge.product}
    if (
        not twilio.wireless_senders
        and not security.bench_numbers
        and products != {ProductSetting.SUPER_SIM}
    ):
        raise ConfigError(
            "twilio.wireless_senders",
            "empty, so no Programmable Wireless Command would be accepted "
            f"(leave the key out for {WIRELESS_SHORT_CODE})",
        )

    actions = top.named("actions", _VERB, _NOT_A_VERB, _action)

    hal_v = top.get("hal")
    if hal_v is not None and not isinstance(hal_v, dict):
        raise ConfigError("hal", f"must be a table, not {_kind(hal_v)}")
    top.done()
    return Config(
        bridge,
        twilio,
        security,
        budgets,
        reports,
        modems,
        dict(hal_v or {}),
        status,
        actions=actions,
    )


def loads(text: str) -> Config:
    """Parse TOML text; a syntax error is a :class:`ConfigError` with its line."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"not valid TOML: {exc}") from None
    return parse(doc)


def load(path: str | Path) -> Config:
    """Read and parse the configuration file; errors name the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("", f"cannot read: {exc.__class__.__name__}: {exc}", str(p)) from None
    try:
        return loads(text)
    except ConfigError as exc:
        raise ConfigError(exc.key, exc.detail, str(p)) from None
