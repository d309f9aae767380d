"""Pretrained backbones: visual tokens from a local ``transformers`` or timm vision model.

``model.backbone: hf:DIR`` reads a folder written by ``save_pretrained`` (ResNet, ConvNeXt,
ViT, DINOv2, the vision tower of CLIP/SigLIP, …) with its ``preprocessor_config.json``;
``model.backbone: timm:NAME`` builds a timm model and loads ``model.backbone_weights``
(timm is imported only then). Nothing is downloaded.

Images enter as ``(B, 3, S, S)`` float in ``[0, 1]`` at ``image_size`` pixels, are normalised
with the backbone's own mean and std, and leave as ``N = h * w`` tokens in row-major grid
order at the backbone's stride: a convolutional feature map is flattened; a transformer's
class and register tokens are dropped and its patch tokens kept. ``model.backbone_layer``
picks a hidden state instead of the output. :class:`BackboneEncoder` projects the tokens to
``model.width`` with one linear layer, so the grounding attention is the same as with the
small CNN. The backbone runs in eval mode always (batch-norm statistics and dropout fixed);
it is frozen unless ``model.backbone_trainable``.

A backbone's identity is the sha256 of its files (:func:`fingerprint_files`): checkpoints
record it with its config, and loading one verifies it (:func:`verify_backbone`).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from groundbench.digest import file_sha256
from groundbench.errors import GroundbenchError
from groundbench.model.config import ModelConfig
from groundbench.model.vision import GlobalMixing

#: state_dict prefix of the backbone's own weights inside a GroundingModel
BACKBONE_PREFIX = "encoder.backbone.model."


class BackboneError(GroundbenchError):
    """A pretrained backbone is missing, malformed, changed or does not fit the config."""


def backbone_path(spec: str) -> tuple[str, str]:
    """Split ``hf:DIR`` / ``timm:NAME`` into its kind and the rest.

    Example:
        >>> backbone_path("hf:models/vit")
        ('hf', 'models/vit')
    """
    kind, _, rest = spec.partition(":")
    return kind, rest


def folder_files(root: Path) -> dict[str, Path]:
    """Every file of an ``hf:`` backbone folder by its ``/``-separated relative name, sorted
    (dot-files and dot-folders at the top aside)."""
    found = {
        p.relative_to(root).as_posix(): p
        for p in root.rglob("*")
        if p.is_file() and not p.relative_to(root).parts[0].startswith(".")
    }
    return dict(sorted(found.items()))


def fingerprint_files(cfg: ModelConfig) -> tuple[str, dict[str, str]]:
    """Return the backbone's fingerprint and the sha256 of each of its files.

    The fingerprint is the sha256 of the spec (``hf`` or the timm name) and each file's
    name and sha256, in name order.

    Raises:
        BackboneError: the folder or weights file does not exist.
    """
    kind, rest = backbone_path(cfg.backbone)
    where = Path(cfg.backbone_weights if kind == "timm" else rest)
    if not where.exists():
        raise BackboneError(
            f"backbone {cfg.backbone}: {where} does not exist; "
            + (
                "save the model there with save_pretrained (and its image processor, for "
                "preprocessor_config.json)"
                if kind == "hf"
                else "point model.backbone_weights to the timm weights file"
            )
        )
    found = {where.name: where} if kind == "timm" else folder_files(where)
    files = {name: file_sha256(p) for name, p in found.items()}
    h = hashlib.sha256((kind if kind == "hf" else cfg.backbone).encode())
    for name, digest in sorted(files.items()):
        h.update(b"\x00" + name.encode() + b"\x00" + digest.encode())
    return h.hexdigest(), files


class Backbone(nn.Module):
    """A pretrained vision model as a token source: ``(B, 3, S, S)`` in ``[0, 1]`` →
    ``(B, N, channels)`` float32.

    Attributes:
        model: the wrapped ``transformers`` or timm module.
        channels: the width of its tokens.
        grid: ``(h, w)`` tokens per side at ``image_size``.
        trainable: whether its weights train.
        record: what a checkpoint stores about it (spec, absolute location, fingerprint,
            file digests, its config, mean, std, channels, grid, layer).
    """

    def __init__(
        self,
        model: nn.Module,
        run,
        mean: list[float],
        std: list[float],
        cfg: ModelConfig,
        record: dict[str, Any],
    ) -> None:
        super().__init__()
        self.model = model
        self._run = run  # (model, normalised pixels) → B C h w or B T C features
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.trainable = cfg.backbone_trainable
        self.patch_size = record.get("patch_size")
        self.record = record
        self.model.requires_grad_(self.trainable)
        self.model.eval()
        with torch.no_grad():
            probe = self._tokens(torch.zeros(1, 3, cfg.image_size, cfg.image_size))
        self.channels = probe.shape[-1]
        side = math.isqrt(probe.shape[1])
        self.grid = (side, side)
        if side != cfg.grid:
            raise BackboneError(
                f"backbone {cfg.backbone} gives a {side} × {side} token grid at "
                f"{cfg.image_size} px, but model.token_stride {cfg.token_stride} asks for "
                f"{cfg.grid} × {cfg.grid}; set model.token_stride: {cfg.image_size // side}"
            )
        record.update(channels=self.channels, grid=list(self.grid))

    def train(self, mode: bool = True) -> Backbone:
        super().train(mode)
        self.model.eval()  # batch-norm statistics and dropout stay as pretrained
        return self

    def _tokens(self, images: torch.Tensor) -> torch.Tensor:
        x = (images - self.mean) / self.std
        feats = self._run(self.model, x)
        if feats.ndim == 4:
            return feats.flatten(2).transpose(1, 2)  # B N C
        B, T, _ = feats.shape
        if self.patch_size:
            n = (images.shape[-2] // self.patch_size) * (images.shape[-1] // self.patch_size)
        else:
            n = math.isqrt(T) ** 2
        if n > T or n != math.isqrt(n) ** 2:
            raise BackboneError(
                f"backbone {self.record['spec']}: {T} output tokens cannot hold a square "
                f"grid of {n} patches"
            )
        return feats[:, T - n :]  # class and register tokens come first: dropped

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.trainable:
            return self._tokens(images).float()
        with torch.no_grad():
            return self._tokens(images).float()


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackboneError(f"backbone: {path} is missing ({what})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise BackboneError(f"backbone: {path} cannot be read as JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise BackboneError(f"backbone: {path} must hold a JSON object ({what})")
    return data


def _mean_std(values: Any, where: str) -> list[float]:
    if (
        not isinstance(values, list)
        or len(values) != 3
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    ):
        raise BackboneError(f"backbone: {where} must be three numbers, got {values!r:.60}")
    return [float(v) for v in values]


def _load_hf(cfg: ModelConfig, folder: Path) -> tuple[nn.Module, Any, list, list, dict]:
    import transformers

    config_json = _read_json(folder / "config.json", "the model's save_pretrained config")
    pre = _read_json(
        folder / "preprocessor_config.json",
        "the image processor's mean and std; save it beside the model with "
        "AutoImageProcessor.from_pretrained(NAME).save_pretrained(DIR)",
    )
    mean = _mean_std(pre.get("image_mean"), f"{folder}/preprocessor_config.json image_mean")
    std = _mean_std(pre.get("image_std"), f"{folder}/preprocessor_config.json image_std")
    hf_log = transformers.utils.logging
    verbosity, bars = hf_log.get_verbosity(), hf_log.is_progress_bar_enabled()
    hf_log.set_verbosity_error()  # its unused pooler or text tower is not news
    hf_log.disable_progress_bar()
    try:
        model = transformers.AutoModel.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise BackboneError(
            f"backbone hf:{folder} cannot be loaded by transformers.AutoModel ({exc}); "
            "save a vision model there with save_pretrained"
        ) from exc
    finally:
        hf_log.set_verbosity(verbosity)
        if bars:
            hf_log.enable_progress_bar()
    model = getattr(model, "vision_model", model)  # CLIP, SigLIP, BLIP: the vision tower
    model = model.float()
    vision_cfg = getattr(model, "config", None)
    patch = getattr(vision_cfg, "patch_size", None)
    params = inspect.signature(model.forward).parameters
    layer = cfg.backbone_layer

    def run(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        kwargs: dict[str, Any] = {}
        if "interpolate_pos_encoding" in params:
            kwargs["interpolate_pos_encoding"] = True  # any configured image size
        if layer >= 0:
            out = m(pixel_values=x, output_hidden_states=True, **kwargs)
            states = out.hidden_states
            if layer >= len(states):
                raise BackboneError(
                    f"backbone hf:{folder}: model.backbone_layer {layer} is past its "
                    f"{len(states)} hidden states (0 .. {len(states) - 1})"
                )
            return states[layer]
        return m(pixel_values=x, **kwargs).last_hidden_state

    record = {"config": config_json, "patch_size": patch if isinstance(patch, int) else None}
    return model, run, mean, std, record


def _load_timm(cfg: ModelConfig, name: str) -> tuple[nn.Module, Any, list, list, dict]:
    try:
        import timm
    except ImportError as exc:
        raise BackboneError(
            f"backbone timm:{name} needs the timm package, which does not import here "
            f"({exc}); install it (pip install timm), or use an hf: backbone"
        ) from exc
    weights = Path(cfg.backbone_weights)
    try:
        model = timm.create_model(name, pretrained=False, num_classes=0)
    except RuntimeError as exc:
        raise BackboneError(f"backbone timm:{name}: timm has no such model ({exc})") from exc
    if weights.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(weights))
    else:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    missing, _ = model.load_state_dict(state, strict=False)  # the classifier is dropped
    if missing:
        raise BackboneError(
            f"backbone timm:{name}: {weights} lacks {len(missing)} of the model's weights "
            f"(first: {missing[0]!r}); is it the weights file of {name}?"
        )
    pretrained = getattr(model, "pretrained_cfg", {}) or {}
    mean = _mean_std(list(pretrained.get("mean", ())), f"timm:{name} pretrained_cfg mean")
    std = _mean_std(list(pretrained.get("std", ())), f"timm:{name} pretrained_cfg std")
    prefix = int(getattr(model, "num_prefix_tokens", 0))
    layer = cfg.backbone_layer

    def run(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if layer >= 0:
            return m.forward_intermediates(x, indices=[layer], intermediates_only=True)[0]
        feats = m.forward_features(x)
        return feats[:, prefix:] if feats.ndim == 3 else feats

    return model, run, mean, std, {"config": {"name": name}, "patch_size": None}


def load_backbone(cfg: ModelConfig) -> Backbone:
    """Load the pretrained backbone ``cfg.backbone`` names, fingerprinted and checked.

    Raises:
        BackboneError: its files are missing or malformed, timm does not import, or its
            token grid at ``cfg.image_size`` differs from ``cfg.grid`` (the message gives
            the ``token_stride`` to set).
    """
    kind, rest = backbone_path(cfg.backbone)
    fingerprint, files = fingerprint_files(cfg)
    if kind == "hf":
        model, run, mean, std, record = _load_hf(cfg, Path(rest))
        location = str(Path(rest).resolve())
    elif kind == "timm":
        model, run, mean, std, record = _load_timm(cfg, rest)
        location = str(Path(cfg.backbone_weights).resolve())
    else:
        raise BackboneError(f"model.backbone {cfg.backbone!r} is not hf:DIR or timm:NAME")
    record.update(
        spec=cfg.backbone,
        location=location,
        fingerprint=fingerprint,
        files=files,
        mean=mean,
        std=std,
        layer=cfg.backbone_layer,
        trainable=cfg.backbone_trainable,
    )
    return Backbone(model, run, mean, std, cfg, record)


def verify_backbone(
    record: dict[str, Any], location: str | Path | None, fix: str
) -> dict[str, str]:
    """Find a checkpoint's backbone and check its files against the stored digests.

    Args:
        record: the checkpoint's ``backbone`` metadata.
        location: where to look instead of the recorded location (a moved folder), or None.
        fix: how to point the loader elsewhere, for the messages.

    Returns:
        The model config keys that load it from the verified location (``backbone: hf:DIR``,
        or ``backbone_weights: FILE`` for timm).

    Raises:
        BackboneError: the folder or a file is missing, a file differs, or one is extra.
    """
    spec = str(record.get("spec", ""))
    kind, rest = backbone_path(spec)
    where = Path(location) if location is not None else Path(str(record.get("location", "")))
    stored = record.get("files")
    if not isinstance(stored, dict):
        raise BackboneError(f"the checkpoint's backbone record has no file digests ({spec})")
    if not where.exists():
        raise BackboneError(
            f"backbone {spec} is missing: {where} does not exist; put its files "
            f"({', '.join(sorted(stored))}) there, or {fix}"
        )
    if kind == "hf":
        found = folder_files(where)
    else:
        found = {where.name: where} if where.is_file() else {}
    for name, digest in sorted(stored.items()):
        if name not in found:
            raise BackboneError(
                f"backbone {spec}: {where / name if kind == 'hf' else where} is missing; "
                f"restore the file the model was trained with, or {fix}"
            )
        if file_sha256(found[name]) != digest:
            raise BackboneError(
                f"backbone {spec}: {found[name]} changed since training (sha256 "
                f"{digest[:12]}… expected); restore the file the model was trained with, "
                f"or {fix}"
            )
    extra = sorted(set(found) - set(stored))
    if extra:
        raise BackboneError(
            f"backbone {spec}: {where / extra[0]} was not there in training; remove it, or {fix}"
        )
    return {"backbone": f"hf:{where}"} if kind == "hf" else {"backbone_weights": str(where)}


class BackboneEncoder(nn.Module):
    """A pretrained backbone's tokens projected to ``width``: images ``(B, 3, S, S)`` →
    tokens ``(B, N, width)``; :meth:`project_features` does the same from cached backbone
    tokens ``(B, N, channels)``."""

    def __init__(self, cfg: ModelConfig, backbone: Backbone) -> None:
        super().__init__()
        self.backbone = backbone
        self.project = nn.Linear(backbone.channels, cfg.width)
        self.mixing = (
            GlobalMixing(cfg.width, cfg.grid, cfg.mixing_layers) if cfg.mixing_layers > 0 else None
        )

    def project_features(self, features: torch.Tensor) -> torch.Tensor:
        tokens = self.project(features.to(self.project.weight.dtype))  # B N C
        return tokens if self.mixing is None else self.mixing(tokens)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.project_features(self.backbone(images))
