"""The output side of an evaluation: which ``--out`` may be written, its lock and work folder.

``OUT`` is always either absent, a complete report or left as it was: an existing ``OUT``
is replaced only when it is a report directory (or empty); anything else is refused
before any work starts and nothing in it is touched. While a run is in progress it holds
an exclusive lock on ``OUT.partial/lock`` (released by the kernel if the process dies), so
a second run into the same ``OUT`` stops at once with a message naming the holder.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
from datetime import datetime, timezone
from pathlib import Path

from groundbench.errors import GroundbenchError

#: What a report directory written by ``groundbench evaluate`` may contain.
REPORT_ENTRIES = frozenset({"report.json", "samples.csv", "report.md", "figures"})


class OutputDirError(GroundbenchError):
    """``--out`` names something that must not be replaced, or another run is writing it."""


def work_dir(out_dir: Path) -> Path:
    """The work folder of a report directory (``OUT.partial``)."""
    return out_dir.with_name(out_dir.name + ".partial")


def check_out_dir(out_dir: str | Path) -> Path:
    """Return ``out_dir`` made absolute, or raise when writing it could destroy other files.

    Raises:
        OutputDirError: ``out_dir`` is the working directory or one of its parents, a file,
            or a directory that is not a report (it would be deleted when replaced).
    """
    given = str(out_dir)
    out = Path(os.path.abspath(out_dir))
    cwd = Path(os.path.abspath(os.getcwd()))
    if out == cwd or out in cwd.parents or out.name in ("", ".", ".."):
        raise OutputDirError(
            f"--out {given}: is the working directory or one of its parents; name a new "
            "report directory, e.g. --out runs/my-method"
        )
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise OutputDirError(
            f"--out {given}: exists and is not a directory; remove it or choose another --out"
        )
    if out.is_dir() and not is_report_dir(out):
        raise OutputDirError(
            f"--out {given}: exists and is not a report directory written by groundbench "
            "evaluate, so it is left untouched; choose a new --out (or an empty folder)"
        )
    return out


def is_report_dir(folder: Path) -> bool:
    """True for an empty folder or one holding only report files, with a report.json."""
    names = {p.name for p in folder.iterdir()}
    if not names:
        return True
    if not names <= REPORT_ENTRIES or "report.json" not in names:
        return False
    try:
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(report, dict) and {"schema", "protocol", "metrics"} <= set(report)


class RunLock:
    """An exclusive, non-blocking lock on ``OUT.partial/lock`` naming its holder.

    Raises:
        OutputDirError: on :meth:`acquire` when another process holds the lock.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.path = work_dir(out_dir) / "lock"
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock and write this process's pid, host and start time into it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise OutputDirError(
                f"--out {self.out_dir}: another groundbench evaluate is writing it ({holder}); "
                "wait for it to finish or choose another --out"
            ) from None
        started = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        text = f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, text, 0)
        self._fd = fd
        return self

    @property
    def held(self) -> bool:
        """True while this process holds the lock."""
        return self._fd is not None

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def remove_if_unused(work: Path) -> None:
    """Remove the work folder of a failed run when it holds no record to resume from."""
    if (
        work.is_dir()
        and not (work / "previous").exists()
        and not any(p.stat().st_size for p in work.glob("records.*.jsonl"))
    ):
        shutil.rmtree(work, ignore_errors=True)


def replace_out_dir(out_dir: Path, final: Path, work: Path) -> None:
    """Move the finished report ``final`` to ``out_dir``; an older report there is replaced.

    Raises:
        OutputDirError: ``out_dir`` changed into something that is not a report meanwhile.
    """
    if out_dir.exists() or out_dir.is_symlink():
        check_out_dir(out_dir)
        old = work / "previous"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out_dir, old)
    os.replace(final, out_dir)
