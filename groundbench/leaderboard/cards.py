"""An entry's model card: resolved when a report joins the board, checked when it is read.

The card is the report's own (computed for a ``groundbench train`` checkpoint, or a heatmap
file's sidecar) or the ``model_card.yaml`` given to ``leaderboard add --model-card``; the
entry stores it with its sha256. The board marks an entry whose checkpoint was selected on
a test split (or on the split it is evaluated on), or whose training images include
evaluated images; ``compare`` notes when two entries were trained on different data.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from groundbench.leaderboard.validate import SubmissionError
from groundbench.model_card import NO_SPLIT, card_sha256, load_model_card
from groundbench.types import UNDECLARED

MARK_SELECTED_ON_TEST = "selected on test"
MARK_SAW_TEST_IMAGES = "saw evaluated images"


def resolve_card(
    report: Mapping[str, Any], card_file: str | Path | None, where: str
) -> dict[str, Any] | None:
    """The card an entry stores: the report's, or the one ``card_file`` declares.

    Raises:
        SubmissionError: a card file beside a computed or a different declared card, a card
            whose supervision contradicts the report's, or a malformed card.
    """
    own = report.get("model_card")
    if own is not None:
        check_card(own, where)
    if card_file is None:
        return dict(own) if own is not None else None
    try:
        given = load_model_card(card_file)
    except Exception as exc:  # ModelCardError: re-raised as a refusal of the submission
        raise SubmissionError(str(exc)) from None
    given = {**given, "sha256": card_sha256(given)}
    if own is not None and own["sha256"] != given["sha256"]:
        raise SubmissionError(
            f"{where}: the report already carries a {own['source']} model card "
            f"({own['sha256'][:12]}…) and {card_file} differs ({given['sha256'][:12]}…); "
            "drop --model-card, or re-run evaluate with the card beside the maps"
        )
    declared = report["method"]["supervision"]
    if declared != UNDECLARED and declared != given["supervision"]:
        raise SubmissionError(
            f"{where}: method.supervision is {declared!r} but {card_file} declares "
            f"{given['supervision']!r}; make them agree"
        )
    return given


def check_card(card: Any, where: str) -> None:
    """Refuse a stored card that is not a mapping or whose sha256 does not match it."""
    ok = isinstance(card, Mapping) and isinstance(card.get("sha256"), str)
    body = {k: v for k, v in card.items() if k != "sha256"} if ok else None
    if not ok or card_sha256(body) != card["sha256"]:
        raise SubmissionError(
            f"{where}: model_card was changed after it was written (its sha256 does not match); "
            "re-run evaluate or leaderboard add"
        )
    for key in ("supervision", "training_data", "selected_on", "evaluated_images_in_training"):
        if key not in card:
            raise SubmissionError(f"{where}: model_card has no {key!r}")


def card_marks(card: Mapping[str, Any] | None, split: str) -> tuple[str, ...]:
    """The board's warnings for an entry evaluated on ``split``.

    Example:
        >>> card_marks({"selected_on": "test", "evaluated_images_in_training": "yes"}, "test")
        ('selected on test', 'saw evaluated images')
        >>> card_marks({"selected_on": "val", "evaluated_images_in_training": "no"}, "test")
        ()
    """
    if card is None:
        return ()
    marks = []
    chosen = str(card["selected_on"]).lower()
    if chosen not in NO_SPLIT and (chosen == split.lower() or chosen.startswith("test")):
        marks.append(MARK_SELECTED_ON_TEST)
    if card["evaluated_images_in_training"] == "yes":
        marks.append(MARK_SAW_TEST_IMAGES)
    return tuple(marks)


def training_data_key(card: Mapping[str, Any] | None) -> tuple | None:
    """What two entries must share to count as trained on the same data (None: unknown)."""
    if card is None:
        return None
    return tuple(
        tuple(sorted((d["name"], d.get("fingerprint", "")) for d in card[key]))
        for key in ("training_data", "pretraining_data")
    )


def training_data_note(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> str | None:
    """A warning when two entries' cards name different (pre-)training data, else None.

    Example:
        >>> card = lambda n: {"training_data": [{"name": n, "fingerprint": ""}],
        ...                   "pretraining_data": []}
        >>> training_data_note(card("coco"), card("coco")) is None
        True
        >>> training_data_note(card("coco"), card("cc3m"))
        'A and B were trained on different data (A: coco; B: cc3m); the difference mixes method and data effects'
    """
    ka, kb = training_data_key(a), training_data_key(b)
    if ka is not None and ka == kb:
        return None
    if ka is None or kb is None:
        missing = " and ".join(n for n, k in (("A", ka), ("B", kb)) if k is None)
        return (
            f"{missing} {'has' if ' and ' not in missing else 'have'} no model card, so whether "
            "both saw the same training data is unknown"
        )
    return (
        f"A and B were trained on different data (A: {_names(a)}; B: {_names(b)}); the "
        "difference mixes method and data effects"
    )


def _names(card: Mapping[str, Any]) -> str:
    names = [d["name"] for d in card["training_data"]]
    names += [f"pre-trained {d['name']}" for d in card["pretraining_data"]]
    return ", ".join(names) or "nothing"
