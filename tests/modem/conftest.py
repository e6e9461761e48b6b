"""Fixtures for the modem tests."""

from __future__ import annotations

import pytest

from modem import timing


@pytest.fixture
def fast_timing(monkeypatch):
    """Short timeouts: the simulator answers in microseconds; a lost answer should cost little."""
    for name, value in {
        "SIM_COMMAND_TIMEOUT": 0.5,
        "LIST_COMMAND_TIMEOUT": 1.0,
        "SYNC_ATTEMPT_TIMEOUT": 0.1,
        "SYNC_ATTEMPTS": 5,
        "RETRY_INITIAL": 0.02,
        "RECONNECT_INITIAL": 0.02,
        "ESC_SETTLE": 0.01,
        "RESET_TIMEOUT": 0.5,
    }.items():
        monkeypatch.setattr(timing, name, value)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "soak: long randomized fault-injection run (< 60 s; still part of CI)"
    )
