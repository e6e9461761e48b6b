"""The shipped documents stay readable: bounded in size, no paragraph repeated.

A scripted edit of a figure (a ``str.replace`` with an empty pattern, say) can
multiply a document without anyone reading it; these checks make that fail.
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([*ROOT.joinpath("docs").glob("*.md"), ROOT / "README.md"])
LIMIT = 200_000  # bytes; the largest document is about a quarter of this


def paragraphs(text: str) -> list[str]:
    """Blocks separated by blank lines, of more than one line (tables, prose)."""
    blocks = [b.strip() for b in text.split("\n\n")]
    return [b for b in blocks if b.count("\n") >= 1]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_document_is_bounded(path: Path) -> None:
    size = path.stat().st_size
    assert 0 < size < LIMIT, f"{path.name}: {size} bytes"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_no_paragraph_repeated(path: Path) -> None:
    counts = collections.Counter(paragraphs(path.read_text(encoding="utf-8")))
    repeated = [b.splitlines()[0][:60] for b, n in counts.items() if n > 1]
    assert repeated == [], f"{path.name}: repeated blocks starting {repeated}"


def test_checks_catch_a_multiplied_document() -> None:
    text = "# Title\n\nfirst line\nsecond line\n\n| a | b |\n|---|---|\n"
    block = "| a | b |\n|---|---|\n"
    botched = text.replace("", block)
    assert len(botched) > 10 * len(text)
    assert collections.Counter(paragraphs(botched)).most_common(1)[0][1] > 1
    assert collections.Counter(paragraphs(text)).most_common(1)[0][1] == 1
