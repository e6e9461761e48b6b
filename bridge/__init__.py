"""The application: journal, dispatcher, Twilio Command semantics, config, CLI, service."""

#: The version of ``pyproject.toml`` (tests/bridge/test_import_diet.py holds them
#: equal). A constant, not ``importlib.metadata.version()``: that import costs the
#: service about 1.8 MB (``email``, ``zipfile``, ``csv``...) for one string, and the
#: source tree, the wheel, the zipapp and the Debian tree all ship this file.
__version__ = "0.1.0"
