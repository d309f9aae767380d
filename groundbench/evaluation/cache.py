"""Per-sample record cache: append-only JSONL files that survive a crash and allow resume.

The cache of an output directory ``OUT`` lives in ``OUT.partial/``. Each rank appends its
records to ``records.<key>.rank<r>.jsonl`` (flushed and fsynced per batch), where ``key``
hashes the protocol, the method and the dataset fingerprints: records of another
configuration are never reused. A line cut short by a crash is ignored and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def cache_dir(out_dir: Path) -> Path:
    """The work folder of a report directory (``OUT.partial``)."""
    return out_dir.with_name(out_dir.name + ".partial")


def cache_key(protocol_hash: str, method_fingerprint: str, dataset_fingerprint: str) -> str:
    """16 hex characters naming one (protocol, method, data) configuration."""
    blob = f"{protocol_hash}\0{method_fingerprint}\0{dataset_fingerprint}".encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def read_records(folder: Path, key: str) -> dict[str, dict[str, Any]]:
    """Return every complete record cached for ``key`` (all ranks), by sample id."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob(f"records.{key}.rank*.jsonl")):
        with path.open("r", encoding="utf-8") as f:
            for line in f:
                if not line.endswith("\n"):
                    log.info("%s: ignoring a record cut short by an interruption", path)
                    break
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    log.info("%s: ignoring an unreadable record line", path)
                    continue
                out[rec["id"]] = rec
    return out


class RecordWriter:
    """Appends records of one rank, durably, one batch at a time."""

    def __init__(self, folder: Path, key: str, rank: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"records.{key}.rank{rank}.jsonl"
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        """Append ``records`` and make them durable before returning."""
        self._file.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file."""
        self._file.close()
