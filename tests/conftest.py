"""Suite-wide test settings.

Hypothesis: no per-example deadline (timing on a loaded 2-core machine is not
behaviour; speed is measured by tools/bench_*.py), a fixed example budget so
the suite's run time is predictable, and a derandomized "ci" profile so a CI
failure reproduces.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))
