"""docs/CONTRACT.md extends the shared contract and never drops any of it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def headings_and_names(text: str) -> set[str]:
    """Section headings and every `code` name (commands, options, files) a contract mentions."""
    return set(re.findall(r"^#+ .*$", text, flags=re.MULTILINE)) | set(re.findall(r"`([^`]+)`", text))


def test_the_project_contract_holds_everything_the_shared_one_names():
    shared = REPO.parent / "shared" / "docs" / "CONTRACT.md"
    if not shared.is_file():
        pytest.skip("needs ../shared/docs/CONTRACT.md")
    missing = headings_and_names(shared.read_text()) - headings_and_names(
        (REPO / "docs" / "CONTRACT.md").read_text()
    )
    assert missing == set()
