"""Per-sample record cache: append-only JSONL files that survive a crash and allow resume.

The cache of an output directory ``OUT`` lives in ``OUT.partial/``. Each rank appends its
records (:meth:`Records.to_json_lines`) to ``records.<key>.rank<r>.jsonl``, flushed and
fsynced per batch, where ``key`` hashes the protocol, the method and the dataset
fingerprints: records of another configuration are never reused. A line cut short by a
crash is ignored when read, and cut off before the file is appended to again, so it is
recomputed and cannot swallow the next record.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from groundbench.evaluation.workdir import work_dir
from groundbench.report.records import Records, parse_record_line

log = logging.getLogger(__name__)

cache_dir = work_dir


def cache_key(protocol_hash: str, method_fingerprint: str, dataset_fingerprint: str) -> str:
    """16 hex characters naming one (protocol, method, data) configuration."""
    blob = f"{protocol_hash}\0{method_fingerprint}\0{dataset_fingerprint}".encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def record_files(folder: Path, key: str) -> list[Path]:
    """The record files of ``key`` in ``folder`` (every rank), sorted."""
    return sorted(folder.glob(f"records.{key}.rank*.jsonl"))


def read_records(folder: Path, key: str, metric_keys: Sequence[str]) -> Records:
    """Return every complete record cached for ``key`` (all ranks); the last copy of an id wins."""
    good: list[dict] = []
    for path in record_files(folder, key):
        with path.open("r", encoding="utf-8") as f:
            lines = f.readlines()
        if lines and not lines[-1].endswith("\n"):
            log.info("%s: ignoring a record cut short by an interruption", path)
            lines.pop()
        for line in lines:
            try:
                good.append(parse_record_line(line, len(metric_keys)))
            except ValueError:
                log.info("%s: ignoring an unreadable record line", path)
    merged = Records.from_dicts(metric_keys, good)
    last = {sid: i for i, sid in enumerate(merged.ids)}
    return merged.take(sorted(last.values(), key=lambda i: merged.ids[i]))


class RecordWriter:
    """Appends records of one rank, durably, one batch at a time.

    Opening cuts off a last line left incomplete by a crash, so appended records start on
    a line of their own.
    """

    def __init__(self, folder: Path, key: str, rank: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"records.{key}.rank{rank}.jsonl"
        self._file = self.path.open("a+b")
        _cut_torn_tail(self._file)

    def write(self, records: Records) -> None:
        """Append ``records`` and make them durable before returning."""
        self._file.write(records.to_json_lines().encode("utf-8"))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def _cut_torn_tail(f) -> None:
    size = f.seek(0, os.SEEK_END)
    if not size:
        return
    # Scan back for the last newline, in blocks, and truncate after it.
    pos, block = size, 1 << 16
    while pos > 0:
        start = max(0, pos - block)
        f.seek(start)
        chunk = f.read(pos - start)
        if start + len(chunk) == size and chunk.endswith(b"\n"):
            return
        nl = chunk.rfind(b"\n")
        if nl >= 0:
            f.truncate(start + nl + 1)
            f.seek(0, os.SEEK_END)
            log.info("%s: cut off a record left incomplete by an interruption", f.name)
            return
        pos = start
    f.truncate(0)
    f.seek(0, os.SEEK_END)
