"""The ``checkpoint:PATH`` method: the reference model's grounding-attention read-out.

Example spec: ``checkpoint:runs/small/model.safetensors``, or the run folder
``checkpoint:runs/small`` (its ``model.safetensors`` is read). The method is box-free (trained
on captions only), reads pixels, and its fingerprint is the sha256 of the checkpoint bytes
(which include the config and the vocabulary). ``checkpoint:PATH:gradcam`` reads the same
weights out by a gradient attribution instead of the attention
(:func:`groundbench.model.infer.gradcam_read_out`), so the two can be compared.

Each map carries the model's reading notes on its phrase (``RawMaps.notes``:
``text:no-referent``, ``text:no-known-word``, ``text:location-unused``; see
:func:`groundbench.model.language.reading_notes`), which the report counts and scores as tags.
``checkpoint:PATH?readout_temperature=6`` (or ``?readout=mask``) reads the attention out with
another setting than the one stored in the checkpoint, without retraining; the setting is
part of the fingerprint. ``checkpoint:PATH?backbone=DIR`` says where a pretrained backbone's
files are when they moved since training (they are verified against the checkpoint's
digests, so the location is not part of the fingerprint).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from groundbench.errors import MethodError, did_you_mean
from groundbench.methods.base import METHODS
from groundbench.types import GroundingSample, RawMaps

RECIPES = ("attention", "gradcam")
#: Read-out settings of the checkpoint's ``model`` config that ``?key=value`` may override.
READOUT_KNOBS = ("readout", "readout_temperature")


class CheckpointMethod:
    """A trained :mod:`groundbench.model` checkpoint used as an evaluation method.

    Args:
        path: the ``model.safetensors`` file written by ``groundbench train``, or the run
            folder holding it.
        passes: ``full`` (one query with every referent word) or ``masked`` (the mean of
            passes that each hide one word); see :func:`groundbench.model.infer.read_out`.
        recipe: ``attention`` (the grounding attention, the default) or ``gradcam`` (Grad-CAM
            of the training objective over the visual tokens).
        readout: overrides of the stored :data:`READOUT_KNOBS` (``{"readout_temperature":
            "6"}``), checked like the config they replace; attention recipe only.
        backbone: where a pretrained backbone's files are now, if they moved.
    """

    supervision = "box-free"
    needs_images = True

    def __init__(
        self,
        path: str | Path,
        *,
        passes: str = "full",
        recipe: str = "attention",
        readout: Mapping[str, str] | None = None,
        backbone: str | None = None,
    ) -> None:
        from groundbench.model.checkpoint import load_checkpoint
        from groundbench.model.config import ConfigError, config_from_dict

        if recipe not in RECIPES:
            raise MethodError(
                f"checkpoint recipe must be one of {', '.join(RECIPES)}, got {recipe!r}"
            )
        self.path = Path(path)
        if (self.path / "model.safetensors").is_file():  # a run folder
            self.path = self.path / "model.safetensors"
        self.recipe = recipe
        self.name = "checkpoint" if recipe == "attention" else f"checkpoint:{recipe}"
        self.passes = passes
        self._ckpt = load_checkpoint(self.path, backbone=backbone)
        # what the model saw, for the report's computed model card
        self.data_fingerprint = self._ckpt.data_fingerprint
        self.training_data = self._ckpt.training_sources
        self.training_images = self._ckpt.training_images
        self._devices: dict[str, torch.nn.Module] = {}
        self.readout = dict(sorted((readout or {}).items()))
        if self.readout:
            if recipe != "attention":
                raise MethodError(
                    f"checkpoint {self.path}: read-out settings apply to the attention, "
                    f"not to {recipe}; drop ?{'&'.join(self.readout)}"
                )
            stored = self._ckpt.config.to_dict()
            stored["model"].update(self.readout)
            try:
                cfg = config_from_dict(stored, where="checkpoint")
            except ConfigError as exc:
                raise MethodError(f"{self.path}: read-out setting refused: {exc}") from None
            self._ckpt.model.cfg = cfg.model

    def fingerprint(self) -> str:
        """Return the sha256 hex of the checkpoint file's bytes, the read-out settings and the
        version of the chunking rules that pick each phrase's words."""
        from groundbench.model.language import PARSE_RULES

        h = hashlib.sha256()
        with self.path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        h.update(f"passes={self.passes};parse_rules={PARSE_RULES}".encode())
        for key, value in self.readout.items():
            h.update(f";{key}={value}".encode())
        if self.recipe != "attention":
            h.update(f";recipe={self.recipe}".encode())
        return h.hexdigest()

    def randomisation_layers(self) -> dict[str, list[torch.nn.Module]]:
        """Tower → parameterised layers, output side first, for the randomisation probe.

        ``vision``: the token encoder (its mixing blocks if any, then its convolutions and
        batch norms, last first); ``text``: the word embeddings that form the query;
        ``grounding``: the hidden-word head (output side), the value path, then the keys.
        The read-out attention depends on the keys, the query and the image tokens only,
        so resetting the head and the values leaves it unchanged by construction.
        """
        model = self._ckpt.model
        enc, g = model.encoder, model.grounding
        vision = [*reversed(list(enc.mixing.blocks))] if enc.mixing is not None else []
        if hasattr(enc, "project"):  # a pretrained backbone: the projection, then its layers
            inner = [
                m
                for m in enc.backbone.model.modules()
                if any(True for _ in m.parameters(recurse=False))
            ]
            vision += [enc.project, *reversed(inner)]
        else:
            vision += [m for m in reversed(list(enc.net)) if any(True for _ in m.parameters())]
        head = [m for m in reversed(list(model.head)) if any(True for _ in m.parameters())]
        return {
            "vision": vision,
            "text": [g.embed],
            "grounding": [*head, g.value_norm, g.value, g.key],
        }

    def predict(
        self,
        samples: Sequence[GroundingSample],
        images: Sequence[np.ndarray] | None,
        *,
        device: torch.device,
    ) -> RawMaps:
        """Return ``(1, H, h, w)`` attention per sample (``(P, 1, H, h, w)`` with masked passes),
        with the reading notes of each phrase."""
        from groundbench.model.infer import gradcam_read_out, read_out
        from groundbench.model.language import reading_notes

        if images is None:
            raise MethodError("checkpoint method needs images; the caller passed none")
        key = str(device)
        if key not in self._devices:
            self._devices[key] = self._ckpt.model.to(device)
        vocab = self._ckpt.vocab
        if self.recipe == "gradcam":
            raw = gradcam_read_out(self._devices[key], vocab, samples, images, device=device)
        else:
            raw = read_out(
                self._devices[key], vocab, samples, images, device=device, passes=self.passes
            )
        words = self._ckpt.model.cfg.max_phrase_words
        notes = tuple(reading_notes(s.phrase, vocab, words) for s in samples)
        return dataclasses.replace(raw, notes=notes)


@METHODS.register(
    "checkpoint",
    supervision="box-free",
    arg="PATH to model.safetensors or its run folder[:gradcam][?readout_temperature=T]"
    "[&backbone=DIR]",
)
def checkpoint_method(arg: str | None) -> CheckpointMethod:
    """Build the method from ``checkpoint:PATH``.

    Raises:
        MethodError: no path was given.
        CheckpointError: the file is missing, corrupt or mismatched.
    """
    if not arg:
        raise MethodError(
            "the checkpoint method needs a path: --method checkpoint:RUN_DIR/model.safetensors"
        )
    head, _, query = arg.partition("?")
    readout: dict[str, str] = {}
    backbone = None
    for item in filter(None, query.split("&")):
        key, eq, value = item.partition("=")
        if key == "backbone" and eq and value:
            backbone = value
            continue
        if key not in READOUT_KNOBS:
            raise MethodError(
                f"checkpoint:{arg}: {key!r} is not a read-out setting"
                f"{did_you_mean(key, READOUT_KNOBS)}; settings: {', '.join(READOUT_KNOBS)} "
                "(e.g. ?readout_temperature=6)"
            )
        if not eq:
            raise MethodError(f"checkpoint:{arg}: {key!r} needs a value ({key}=...)")
        readout[key] = value
    path, sep, recipe = head.rpartition(":")
    if sep and recipe in RECIPES:
        return CheckpointMethod(path, recipe=recipe, readout=readout, backbone=backbone)
    return CheckpointMethod(head, readout=readout, backbone=backbone)
