"""What made a heatmap file: its supervision class, declared by the spec or a sidecar card.

``heatmaps:PATH@CLASS`` declares the class in the spec (``heatmaps:maps.npz@box-free``). A
sidecar model card, ``<PATH without suffix>.model_card.yaml`` next to a file
(``maps.model_card.yaml`` for ``maps.npz``) or ``model_card.yaml`` inside a folder of
``.npy`` files, declares it with the rest of the card (:mod:`groundbench.model_card`).
Maps declared by neither are reported as ``undeclared``, never as box-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from groundbench.errors import MethodError
from groundbench.model_card import load_model_card
from groundbench.types import SUPERVISION_CLASSES, UNDECLARED


def sidecar_card_path(path: Path) -> Path:
    """Where the model card of the maps at ``path`` lives (it need not exist)."""
    if path.is_dir():
        return path / "model_card.yaml"
    return path.with_name(path.name.rsplit(".", 1)[0] + ".model_card.yaml")


def declared(arg: str) -> tuple[str, str, dict[str, Any] | None]:
    """Split ``PATH[@CLASS]`` and read the sidecar card: ``(path, supervision, card or None)``.

    Raises:
        MethodError: the spec and the card declare different classes.
        ModelCardError: the sidecar card is malformed.
    """
    path, sep, tail = arg.rpartition("@")
    spec_class = tail if sep and tail in SUPERVISION_CLASSES else None
    if spec_class is None:
        path = arg
    card_path = sidecar_card_path(Path(path))
    card = load_model_card(card_path) if card_path.is_file() else None
    if card is not None and spec_class is not None and card["supervision"] != spec_class:
        raise MethodError(
            f"heatmaps:{arg}: the spec declares {spec_class!r} but {card_path} declares "
            f"{card['supervision']!r}; make them agree"
        )
    return path, spec_class or (card["supervision"] if card else UNDECLARED), card
