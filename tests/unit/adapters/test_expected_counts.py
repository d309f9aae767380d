"""Every shipped real-dataset protocol states its expected count: table, about and docs agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataset_adapters.expected_counts import EXPECTED_COUNTS
from groundbench.protocol import list_protocols, load_protocol

REAL = sorted(name for name in list_protocols() if not name.startswith("synth_"))
DOCS = Path(__file__).resolve().parents[3] / "docs" / "adapters.md"


def test_every_real_protocol_has_an_expected_count():
    assert sorted(EXPECTED_COUNTS) == REAL


@pytest.mark.parametrize("name", REAL)
def test_about_states_the_expected_count(name):
    expected = EXPECTED_COUNTS[name]
    about = load_protocol(name).about
    if expected.count is None:
        assert "No published" in about
    else:
        assert f"{expected.count:,}" in about


@pytest.mark.parametrize("name", REAL)
def test_docs_table_lists_the_count_and_source(name):
    expected = EXPECTED_COUNTS[name]
    count = "not published" if expected.count is None else f"{expected.count:,} {expected.unit}"
    row = f"| `{name}` | {count} | {expected.source} |"
    assert row in DOCS.read_text().splitlines()
