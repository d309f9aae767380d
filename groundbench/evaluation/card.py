"""The report's ``model_card``: declared by the method, or computed for a trained checkpoint.

A method with a ``model_card`` (a heatmap file's sidecar card) reports it as declared. A
method that knows its training images (``training_images``: a ``groundbench train``
checkpoint) gets a computed card: the training data it names, no selection split (the
checkpoint is the last step) and the overlap between the training images and the evaluated
images, by the sha256 of their bytes, so a copy under another name still counts.
Other methods (the baselines, plug-ins) report ``null``; a card can then be given to
``groundbench leaderboard add --model-card``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from groundbench.evaluation.data import file_sha256
from groundbench.methods import Method
from groundbench.model_card import CARD_SCHEMA, card_sha256
from groundbench.types import GroundingSample

#: Sample ids of shared images the card lists.
EXAMPLES = 5


def model_card_section(method: Method, samples: Sequence[GroundingSample]) -> dict[str, Any] | None:
    """The report's ``model_card`` dict (with its ``sha256``), or None when nothing is known."""
    declared = getattr(method, "model_card", None)
    if declared is not None:
        return {**declared, "sha256": card_sha256(declared)}
    trained = getattr(method, "training_images", False)
    if trained is False:
        return None
    overlap = None if trained is None else _overlap(set(trained), samples)
    seen = "unknown" if overlap is None else ("yes" if overlap["shared_images"] else "no")
    card = {
        "schema": CARD_SCHEMA,
        "source": "computed",
        "model": method.name,
        "supervision": method.supervision,
        "training_data": [
            {"name": name, "fingerprint": method.data_fingerprint} for name in method.training_data
        ],
        "pretraining_data": [],
        "selected_on": "none",
        "evaluated_images_in_training": seen,
        "notes": "computed from the checkpoint: the last training step, selected on no split"
        + ("" if overlap else "; it lists no training images (written before they were kept)"),
        "overlap": overlap,
    }
    return {**card, "sha256": card_sha256(card)}


def _overlap(trained: set[str], samples: Sequence[GroundingSample]) -> dict[str, Any]:
    digests = {s.image_path: file_sha256(s.image_path)[:16] for s in samples}
    evaluated = {d for d in digests.values() if d != "missing"}
    shared = [s.id for s in samples if digests[s.image_path] in trained]
    return {
        "training_images": len(trained),
        "evaluated_images": len(evaluated),
        "shared_images": len(evaluated & trained),
        "shared_samples": len(shared),
        "examples": shared[:EXAMPLES],
    }
