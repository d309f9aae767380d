"""Pinned hashes of the shipped protocols: a change must be intentional (pytest --update-golden)."""

from __future__ import annotations

import json
from pathlib import Path

from groundbench.protocol import list_protocols, load_protocol

GOLDEN = Path(__file__).with_name("protocol_hashes.json")


def test_shipped_protocol_hashes_are_pinned(update_golden):
    hashes = {name: load_protocol(name).hash for name in list_protocols()}
    if update_golden:
        GOLDEN.write_text(json.dumps(hashes, indent=2, sort_keys=True) + "\n")
    pinned = json.loads(GOLDEN.read_text())
    changed = sorted(n for n in hashes.keys() | pinned.keys() if hashes.get(n) != pinned.get(n))
    assert not changed, (
        f"protocol hashes changed for {changed}; if intended, run pytest --update-golden and "
        "review the diff of tests/golden/protocol_hashes.json"
    )
