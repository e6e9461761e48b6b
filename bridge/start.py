"""The entry of ``sms-bridge`` and ``python -m bridge``: choices made before heavy imports.

``sms-bridge run`` keeps OpenSSL out of its process unless the configuration
asks for it (``[bridge] openssl = true``): nothing the service does needs it
(HMAC-SHA256 is done by the interpreter's own SHA-256, ``hashlib``'s
fallback), and loading it costs about 4.6 MB of resident memory (``libcrypto``
initialised by ``ssl``, which :mod:`asyncio` imports, and by ``_hashlib``):
an eighth of the service on a small device (docs/performance.md, "Bridge").
Without it, :mod:`ssl` cannot be imported in the service and :mod:`hashlib`
offers only the built-in algorithms; a plugin that needs TLS (an HTTPS call)
or an OpenSSL-only hash sets ``openssl = true``.

The choice has to be made before :mod:`asyncio` is first imported (it
imports :mod:`ssl` once, at its own import), so this module imports nothing
of the bridge's and reads only the one key from the configuration file named
by ``--config`` (or the default file); any trouble reading it leaves OpenSSL
out, and the full configuration check that follows reports it. Every other
subcommand starts as it is.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

#: The configuration file ``run`` reads without ``--config`` (bridge.config's default).
DEFAULT_CONFIG = "/etc/sms-bridge/config.toml"
#: Modules that load OpenSSL; ``None`` in :data:`sys.modules` makes their import fail.
OPENSSL_MODULES = ("ssl", "_ssl", "_hashlib")


def _config_path(args: Sequence[str]) -> str | None:
    """The file ``run --config FILE`` names; the default file when ``run`` has
    no ``--port`` (which stands in for a file); None when there is none."""
    for i, a in enumerate(args):
        if a == "--config" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--config="):
            return a.split("=", 1)[1]
    if any(a == "--port" or a.startswith("--port=") for a in args):
        return None
    return DEFAULT_CONFIG


def wants_openssl(args: Sequence[str]) -> bool:
    """``[bridge] openssl`` of the configuration ``run`` will read (False when
    it is absent, not a boolean, or the file cannot be read or parsed)."""
    path = _config_path(args)
    if path is None:
        return False
    import tomllib  # noqa: PLC0415 - only here: nothing heavy before the choice

    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except (OSError, ValueError):
        return False
    section = doc.get("bridge")
    return isinstance(section, dict) and section.get("openssl") is True


def keep_openssl_out() -> None:
    """Make :mod:`ssl` and ``_hashlib`` unimportable in this process (before
    :mod:`asyncio` and :mod:`hashlib` are imported)."""
    for name in OPENSSL_MODULES:
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]


def main(argv: Sequence[str] | None = None) -> int:
    """The console script ``sms-bridge``; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["run"] and not wants_openssl(args[1:]):
        keep_openssl_out()
    from .cli import main as cli_main  # noqa: PLC0415 - after the choice above

    return cli_main(argv)
