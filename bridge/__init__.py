"""The application: journal, dispatcher, Twilio Command semantics, config, CLI, service."""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("sms-command-bridge")
except _metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0.1.0"
