"""``groundbench data export``: a protocol's samples as a task file any model can read.

One JSON object per line, in sample-id order, holding what a model may see and nothing it
must not (no box, no mask, no tag)::

    {"id": "synth/test/00012/e1", "image": "/abs/path/images/test/00012.png",
     "width": 64, "height": 64, "text": "the circle left of the blue square",
     "phrase": "the circle left of the blue square", "span": [0, 34]}

A model writes one map per ``id`` (docs/formats.md, "Heatmap files") and
``groundbench evaluate --method heatmaps:PATH`` scores them under the same protocol.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from groundbench.evaluation.data import load_samples
from groundbench.protocol import Protocol

#: The fields of a task line, in order.
TASK_FIELDS = ("id", "image", "width", "height", "text", "phrase", "span")


def export_tasks(
    protocol: Protocol,
    out: str | Path,
    *,
    data_root: str | Path | None = None,
    limit: int | None = None,
) -> int:
    """Write the protocol's samples (selected, controlled, sorted, limited) to ``out``.

    Args:
        protocol: the loaded protocol.
        out: the ``.jsonl`` file to write (atomically: a temp file, then renamed).
        data_root: the dataset folder (default: the generated synthetic set for synth).
        limit: only the first N samples by id (as ``evaluate --limit``).

    Returns:
        The number of lines written.
    """
    samples = load_samples(protocol, data_root, limit)
    lines = [
        json.dumps(
            {
                "id": s.id,
                "image": os.path.abspath(s.image_path),
                "width": s.width,
                "height": s.height,
                "text": s.text,
                "phrase": s.phrase,
                "span": list(s.span),
            },
            ensure_ascii=False,
        )
        + "\n"
        for s in samples
    ]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(lines)
        os.replace(tmp, out)
    except BaseException:
        os.unlink(tmp)
        raise
    return len(lines)
