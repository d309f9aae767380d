"""Progress bars: tqdm on stderr, refreshed rarely when stderr is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm


def progress_bar(iterable: Iterable | None = None, **kwargs: Any) -> tqdm:
    """Return a tqdm bar on stderr that writes one line per 30 s into a log file.

    On a terminal it refreshes every 0.5 s; keyword arguments go to tqdm unchanged.
    """
    kwargs.setdefault("mininterval", 0.5 if sys.stderr.isatty() else 30.0)
    return tqdm(iterable, **kwargs)
