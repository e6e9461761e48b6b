"""National language shift tables (3GPP TS 23.038 §6.2.1.2, annex A)."""

from __future__ import annotations

from .errors import PduError


def locking_shift_table(language: int) -> str:
    """The locking-shift table for ``language``."""
    raise PduError(f"no locking shift table for language {language}", field="TP-UD")


def single_shift_table(language: int) -> dict[int, str]:
    """The single-shift table for ``language``."""
    raise PduError(f"no single shift table for language {language}", field="TP-UD")
