"""``HFMethod``: a transformers checkpoint read out by a named attribution recipe."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from groundbench.errors import MethodError
from groundbench.methods.hf.load import MODEL_CLASSES, load_checkpoint_dir
from groundbench.methods.hf.preprocess import ImagePrep
from groundbench.methods.hf.spec import parse_hf_spec
from groundbench.types import SUPERVISION_CLASSES, GroundingSample, RawMaps


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def _adapter(loaded, spec: str):
    if loaded.model_type == "blip":
        from groundbench.methods.hf.blip import BlipITM

        return BlipITM(loaded.model, loaded.tokenizer, spec)
    from groundbench.methods.hf.dual import DualEncoder

    return DualEncoder(loaded.model, loaded.tokenizer, loaded.model_type, spec)


class HFMethod:
    """A ``CLIPModel``, ``SiglipModel`` or ``BlipForImageTextRetrieval`` directory + a recipe.

    Args:
        arg: the spec after ``hf:`` (``DIR:RECIPE?knob=value&...``, see
            :mod:`groundbench.methods.hf.spec`).

    The maps are ``(h, w)`` heatmaps over the patch grid (``(size, size)`` for RISE) of the
    squashed model input, i.e. over the whole image; the protocol's pipeline upsamples them.
    """

    needs_images = True

    def __init__(self, arg: str) -> None:
        self.spec = parse_hf_spec(arg)
        shown = f"hf:{arg}"
        loaded = load_checkpoint_dir(self.spec.path)
        self.model = loaded.model
        self.adapter = _adapter(loaded, shown)
        recipe, knobs = self.spec.recipe, dict(self.spec.knobs)
        if recipe not in self.adapter.recipes:
            raise MethodError(
                f"{shown}: recipe {recipe} does not fit {MODEL_CLASSES[loaded.model_type]}; "
                f"it supports {', '.join(self.adapter.recipes)}"
            )
        if knobs["supervision"] not in SUPERVISION_CLASSES:
            raise MethodError(
                f"{shown}: supervision must be one of {', '.join(SUPERVISION_CLASSES)}, got "
                f"{knobs['supervision']!r}"
            )
        if recipe == "occlusion" and knobs["window"] is None:
            knobs["window"] = self.adapter.patch
        self.knobs = self.adapter.resolve(recipe, knobs)
        self.prep = ImagePrep(
            loaded.processor,
            self.adapter.size,
            str(Path(self.spec.path) / "preprocessor_config.json"),
        )
        self.name = f"hf:{Path(self.spec.path).name}:{arg.rpartition(':')[2]}"
        self.supervision = self.knobs["supervision"]
        self._settings = {
            "family": "hf",
            "model_class": MODEL_CLASSES[loaded.model_type],
            "recipe": recipe,
            "preset": self.spec.preset,
            "knobs": self.knobs,
            "files_sha256": loaded.files,
            "libraries": {p: _version(p) for p in ("groundbench", "torch", "transformers")},
            "attn_implementation": self.model.config._attn_implementation,
            "weights_dtype": str(next(self.model.parameters()).dtype).removeprefix("torch."),
            "mode": "eval",
            "text": "phrase",
            "preprocess": self.prep.settings(),
            **self.adapter.settings(),
        }
        self._device: torch.device | None = None

    def settings(self) -> dict[str, Any]:
        """Everything the maps depend on, readable (``report.json`` ``method.settings``)."""
        return json.loads(json.dumps(self._settings))

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON of :meth:`settings`."""
        blob = json.dumps(self._settings, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def randomisation_layers(self) -> dict[str, list[torch.nn.Module]]:
        """Tower (``vision``/``text``/``fusion``) → its parameterised layers, output side first.

        These are the very modules :meth:`predict` runs: resetting their parameters changes
        the maps.
        """
        return self.adapter.randomisation_layers()

    def predict(
        self,
        samples: Sequence[GroundingSample],
        images: Sequence[np.ndarray] | None,
        *,
        device: torch.device,
    ) -> RawMaps:
        """Return one heatmap per sample; each distinct image is preprocessed and encoded once."""
        if images is None:
            raise MethodError(f"{self.name} needs images; the caller passed none")
        if self._device != device:
            self.model.to(device)
            self._device = device
        index: dict[str, int] = {}
        unique: list[torch.Tensor] = []
        for s, im in zip(samples, images, strict=True):
            if s.image_path not in index:
                index[s.image_path] = len(unique)
                unique.append(self.prep(im))
        pair_image = torch.tensor([index[s.image_path] for s in samples], device=device)
        pixels = torch.stack(unique).to(device)
        texts = [self.knobs["prompt"].format(s.phrase) for s in samples]
        dtype = self.knobs["dtype"]
        with torch.autocast(device.type, dtype=getattr(torch, dtype), enabled=dtype != "float32"):
            maps = self.adapter.maps(self.spec.recipe, self.knobs, pixels, pair_image, texts)
        return RawMaps(
            ids=tuple(s.id for s in samples),
            maps=tuple(m.detach().to("cpu", torch.float32) for m in maps),
            kind="heatmap",
        )
