"""Model cards: what a method's model saw (docs/leaderboard.md, "Model cards").

A card is a small YAML file, loaded with the protocol's duplicate-refusing safe loader::

    schema: 1
    model: ALBEF-14M, Grad-CAM on the ITM head    # optional prose
    supervision: box-free                         # box-free | detector | box-supervised | training-free
    training_data:                                # what the grounding model was trained on
      - {name: coco-captions-2014-train, fingerprint: sha256-or-url-of-the-list}
    pretraining_data:                             # what its backbones were pre-trained on
      - {name: imagenet-1k}
    selected_on: val                              # split the checkpoint was chosen on; none; unknown
    evaluated_images_in_training: unknown         # yes | no | unknown
    notes: free text                              # optional

It is validated into a canonical dict (every default filled) whose sha256 (canonical JSON,
as protocols are hashed) goes into the leaderboard entry. For checkpoints that
``groundbench train`` wrote, the card is computed instead (``source: computed``), with the
overlap between the training images and the evaluated images counted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from groundbench.errors import GroundbenchError, ProtocolError, did_you_mean
from groundbench.protocol import parse_yaml
from groundbench.types import SUPERVISION_CLASSES

CARD_SCHEMA = 1
_KEYS = (
    "schema", "model", "supervision", "training_data", "pretraining_data", "selected_on",
    "evaluated_images_in_training", "notes",
)  # fmt: skip
_DATA_KEYS = ("name", "fingerprint")
_SEEN = ("yes", "no", "unknown")
#: ``selected_on`` values that name no split.
NO_SPLIT = ("none", "unknown")


class ModelCardError(GroundbenchError):
    """A model card is malformed, or contradicts the report it is given with."""


def load_model_card(path: str | Path) -> dict[str, Any]:
    """Read and validate a ``model_card.yaml``; return its canonical dict (``source: declared``).

    Raises:
        ModelCardError: unreadable file, invalid YAML, an unknown key, or a wrong value
            (the message names the file and the key).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelCardError(f"model card {path}: cannot be read ({exc})") from exc
    try:
        raw = parse_yaml(text, str(path))
    except ProtocolError as exc:
        raise ModelCardError(str(exc).replace("protocol YAML", "model card YAML")) from None
    return canonical_card(raw, str(path))


def canonical_card(raw: Any, where: str) -> dict[str, Any]:
    """Validate a card mapping into its canonical dict (every default filled).

    Example:
        >>> card = canonical_card({"schema": 1, "supervision": "box-free",
        ...     "training_data": [{"name": "cc3m"}], "selected_on": "val"}, "card")
        >>> card["pretraining_data"], card["evaluated_images_in_training"]
        ([], 'unknown')
    """
    if not isinstance(raw, Mapping):
        raise ModelCardError(f"model card {where}: must be a mapping of the keys {list(_KEYS)}")
    for key in raw:
        if key not in _KEYS:
            raise ModelCardError(
                f"model card {where}: unknown key {key!r}{did_you_mean(key, _KEYS)}"
            )
    if raw.get("schema") != CARD_SCHEMA:
        raise ModelCardError(
            f"model card {where}: schema must be {CARD_SCHEMA}, got {raw.get('schema')!r}"
        )
    for key in ("supervision", "training_data", "selected_on"):
        if key not in raw:
            raise ModelCardError(f"model card {where}: {key} is required")
    if raw["supervision"] not in SUPERVISION_CLASSES:
        raise ModelCardError(
            f"model card {where}: supervision must be one of {list(SUPERVISION_CLASSES)}, "
            f"got {raw['supervision']!r}"
        )
    seen = raw.get("evaluated_images_in_training", "unknown")
    if seen not in _SEEN:
        raise ModelCardError(
            f"model card {where}: evaluated_images_in_training must be one of {list(_SEEN)}, "
            f"got {seen!r}"
        )
    return {
        "schema": CARD_SCHEMA,
        "source": "declared",
        "model": _text(raw.get("model", ""), where, "model"),
        "supervision": raw["supervision"],
        "training_data": _data(raw["training_data"], where, "training_data"),
        "pretraining_data": _data(raw.get("pretraining_data", []), where, "pretraining_data"),
        "selected_on": _text(raw["selected_on"], where, "selected_on") or "unknown",
        "evaluated_images_in_training": seen,
        "notes": _text(raw.get("notes", ""), where, "notes"),
    }


def _text(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str):
        raise ModelCardError(f"model card {where}: {key} must be text, got {value!r}")
    return value.strip()


def _data(value: Any, where: str, key: str) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise ModelCardError(
            f"model card {where}: {key} must be a list of {{name, fingerprint}}, got {value!r}"
        )
    out = []
    for i, item in enumerate(value):
        item = {"name": item} if isinstance(item, str) else item
        if not isinstance(item, Mapping) or set(item) - set(_DATA_KEYS) or "name" not in item:
            raise ModelCardError(
                f"model card {where}: {key}[{i}] must be a name or {{name, fingerprint}}, "
                f"got {item!r}"
            )
        out.append({k: _text(item.get(k, ""), where, f"{key}[{i}].{k}") for k in _DATA_KEYS})
    return out


def card_sha256(card: Mapping[str, Any]) -> str:
    """sha256 of a card's canonical JSON (sorted keys, compact, UTF-8), as protocols are hashed."""
    blob = json.dumps(card, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def card_summary(card: Mapping[str, Any] | None) -> str:
    """One line: training data, selection split and what of the evaluated images was seen.

    Example:
        >>> card_summary({"source": "declared", "supervision": "box-free",
        ...     "training_data": [{"name": "cc3m", "fingerprint": ""}], "pretraining_data": [],
        ...     "selected_on": "val", "evaluated_images_in_training": "unknown"})
        'trained on cc3m; selected on val; evaluated images in training: unknown (declared card)'
    """
    if card is None:
        return "no model card"
    names = ", ".join(
        d["name"] + (f" ({d['fingerprint'][:12]})" if d.get("fingerprint") else "")
        for d in card["training_data"]
    )
    pre = ", ".join(d["name"] for d in card["pretraining_data"])
    overlap = card.get("overlap")
    if overlap:
        seen = (
            f"{overlap['shared_images']} of {overlap['evaluated_images']} "
            f"({overlap['shared_samples']} samples)"
        )
    else:
        seen = card["evaluated_images_in_training"]
    return (
        f"trained on {names or 'nothing'}"
        + (f", pre-trained on {pre}" if pre else "")
        + f"; selected on {card['selected_on']}; evaluated images in training: {seen} "
        + f"({card['source']} card)"
    )
