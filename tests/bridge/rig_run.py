"""A real ``bridge run`` process until it is ready, then SIGTERM (shared by tests)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def run_until_ready(argv: Sequence[str], on_ready: Callable[[int], T]) -> T:
    """Start ``argv`` (this tree first on the path, a session of its own) and
    wait for its ``ready: admitting Commands`` line; ``on_ready(pid)`` then,
    SIGTERM, and the process must exit 0 with no traceback. ``on_ready``'s
    result is returned."""
    proc = subprocess.Popen(
        list(argv),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "ready: admitting Commands" in line:
                break
        else:
            pytest.fail(f"the bridge never got ready: {''.join(lines)}")
        result = on_ready(proc.pid)
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, "".join(lines) + rest
    assert "Traceback" not in rest, rest
    return result
