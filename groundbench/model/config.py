"""Model and training configuration: two dataclasses, YAML presets, ``key=value`` overrides.

A preset is a YAML file in ``groundbench/model/configs/`` with a ``model:`` and a ``train:``
section; its name is the file stem with ``_`` spelled ``-`` (``small_cpu.yaml`` is the preset
``small-cpu``). Every key has a default here, so a preset or a ``--config`` file only lists
what it changes, and ``--set train.lr=1e-3`` overrides one key.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from groundbench.errors import GroundbenchError, did_you_mean

_CONFIG_DIR = Path(__file__).with_name("configs")


class ConfigError(GroundbenchError):
    """A model preset, config file or ``--set`` override is unknown or malformed."""


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the grounding model (``docs/model.md`` has the measured choices).

    Attributes:
        image_size: images are resized to ``image_size × image_size`` pixels.
        width: channels of the convolutional token encoder.
        token_stride: pixels per visual token side: 4 gives a 16 × 16 grid on 64 px images;
            8 gives 8 × 8 (an ablation: a coarse grid caps pointing accuracy).
        dim: width of queries and keys.
        value_dim: width of the values the attention pools.
        heads: attention heads; the read-out map is their mean.
        mixing_layers: global self-attention layers over the visual tokens before the
            grounding attention (0 = none, so a token describes only its neighbourhood).
        relations: learn a displacement kernel per relation word that moves a landmark's
            attention onto its target (``the ring left of the star``).
        head: ``typed`` predicts a hidden word among the words of its learned type;
            ``vocabulary`` among all words (an ablation).
        max_phrase_words: words kept per noun phrase (its last ones, so the head noun stays).
        max_pairs_per_image: (phrase, hidden word) pairs trained per image per step; an
            image with more keeps a fixed, seeded subset.
        mask: ``none``, or ``sigmoid``: a non-competing mask ``m = σ(logits + b)`` over the
            tokens (the grounding attention's own logits, ``b`` one learned offset) that
            pools a foreground value ``Σ m v / Σ m`` and a background value
            ``Σ (1 − m) v / Σ (1 − m)`` for the ``loss_foreground``, ``loss_background`` and
            ``loss_area`` terms.
        readout: what ``checkpoint:`` maps are: ``softmax`` (the grounding attention) or
            ``mask`` (the sigmoid mask, in ``[0, 1]``; needs ``mask: sigmoid``).
        readout_temperature: the softmax read-out is ``softmax(logits / T)``; ``T > 1``
            flattens the peak over more of the object. Read-out only: training uses ``T = 1``.
        patch_decoder: self-attention layers of a decoder that reconstructs the hidden
            visual tokens' features from the visible ones (``train.patch_mask``); 0 = none.
            Training only: the read-out never uses it.
        backbone: where the visual tokens come from: ``cnn`` (the small local CNN above),
            ``hf:DIR`` (a ``transformers`` vision model saved with ``save_pretrained`` in a
            local folder) or ``timm:NAME`` (a timm model, weights in ``backbone_weights``);
            see :mod:`groundbench.model.backbone`. With a pretrained backbone
            ``token_stride`` is its own stride (16 for ViT-B/16, 32 for ResNet's last stage)
            and ``width`` the width its tokens are projected to.
        backbone_weights: the local weights file of a ``timm:`` backbone.
        backbone_layer: the feature map read: ``-1`` the model's output (last stage / last
            layer), ``k`` its ``k``-th hidden state (ResNet/ConvNeXt: 0 = stem, 1..4 = stages;
            ViT: 0 = patch embeddings, k = after block k).
        backbone_trainable: train the backbone's weights too (stored in the checkpoint);
            ``false`` keeps them frozen (the checkpoint stores only their fingerprint).
    """

    image_size: int = 64
    width: int = 64
    token_stride: int = 4
    dim: int = 64
    value_dim: int = 64
    heads: int = 1
    mixing_layers: int = 0
    relations: bool = True
    head: str = "typed"
    max_phrase_words: int = 8
    max_pairs_per_image: int = 48
    mask: str = "none"
    readout: str = "softmax"
    readout_temperature: float = 1.0
    patch_decoder: int = 0
    backbone: str = "cnn"
    backbone_weights: str = ""
    backbone_layer: int = -1
    backbone_trainable: bool = False

    @property
    def grid(self) -> int:
        """Visual tokens per side (``h == w``)."""
        return self.image_size // self.token_stride

    @property
    def pretrained(self) -> bool:
        """Whether the tokens come from a pretrained backbone (not the small CNN)."""
        return self.backbone != "cnn"

    @property
    def frozen_backbone(self) -> bool:
        """Whether they come from a pretrained backbone whose weights do not train."""
        return self.pretrained and not self.backbone_trainable


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and loss settings.

    Attributes:
        steps: optimiser steps.
        images_per_step: images per step (per process under DDP), each with all its
            caption pairs; each image is encoded once per step.
        lr: peak AdamW learning rate, after a linear warm-up, then cosine to
            ``lr * min_lr_ratio``.
        min_lr_ratio: final learning rate as a fraction of ``lr``.
        warmup_steps: steps of linear warm-up.
        weight_decay: AdamW weight decay (not applied to norms, biases and embeddings).
        grad_clip: maximum global gradient norm (0 = no clipping).
        seed: seeds initialisation, the image order and pair subsets.
        min_word_count: a word enters the vocabulary after this many training occurrences.
        max_captions: use at most this many training captions (0 = all).
        loss_entropy: weight of the attention entropy: positive sharpens the attention (a
            sparsity term; an ablation), negative is an entropy bonus that spreads it over
            every token that tells the hidden word as well, i.e. over the object's extent.
        loss_contrast: weight of an image-contrast term: the hidden word must be predicted
            worse through the same query on another image of the step (an ablation).
        loss_word: weight of the hidden word's cross-entropy through the softmax attention.
        loss_foreground: weight of the hidden word's cross-entropy through the sigmoid mask's
            foreground value (needs ``model.mask: sigmoid``).
        loss_background: weight of ``−log(1 − p)``, ``p`` the hidden word's probability from
            the mask's background value: the word must not be predictable from the rest of
            the image, so the mask must cover all of the object (needs ``model.mask: sigmoid``).
        loss_area: weight of the mask's mean over the tokens (a size prior: the mask covers
            no more than it must; needs ``model.mask: sigmoid``).
        grayscale_prob: probability that a step's image is shown in grey (the mean of its
            channels): shape evidence must then work without colour, which carries over to
            colour–shape pairs never seen in training.
        loss_consistency: weight of the Jensen–Shannon divergence between the attention maps
            of one phrase's pairs (each hides another word of the phrase, so each query
            holds other words): the phrase should be found in one place whichever word is
            hidden.
        query_drop: probability that each visible query word is hidden as well (the last one
            never, so a query keeps a word): fewer clues, a harder reconstruction.
        query_drop_schedule: ``constant`` (``query_drop`` from the first step) or ``linear``
            (from 0 at the first step to ``query_drop`` at the last: easy to hard).
        patch_mask: fraction of the visual tokens whose pixels are hidden (set to grey) in a
            second view of each image; needs ``model.patch_decoder``.
        loss_patch: weight of the hidden tokens' reconstruction: the decoder's output at each
            hidden token against the unmasked view's token features (normalised, no gradient),
            mean squared error.
        patch_mask_joint: the word is reconstructed from the masked view too (joint word and
            patch masking), instead of from the full image.
        loader: ``memory`` decodes every training image once into one uint8 tensor (the
            synthetic set); ``stream`` reads and resizes each step's images with DataLoader
            workers (sets that do not fit in memory). Both give the same pixels.
        workers: DataLoader worker processes of the ``stream`` loader and of token caching.
        cache_tokens: with a frozen pretrained backbone, encode each training image once and
            train on its cached fp16 tokens (``docs/model.md``, Real photographs); ``false``
            runs the backbone at every step.
        cache_in_memory_gb: a token cache up to this size is held on the training device;
            a larger one is read from its file in the run directory at each step.
        backbone_lr_ratio: a trainable backbone's learning rate as a fraction of ``lr``.
        precision: ``auto`` (bf16 autocast on CUDA, fp32 elsewhere), ``bf16`` or ``fp32``.
        threads: torch intra-op CPU threads for the run (0 = leave torch's default).
            ``threads``, ``log_every`` and ``save_every`` are bookkeeping: a resumed run
            may change them.
        compile: wrap the model's step in ``torch.compile``.
        log_every: steps between scalar log rows.
        save_every: steps between resumable snapshots (0 = every 5% of ``steps``; a
            snapshot is also written at the end and on SIGTERM/SIGINT).
    """

    steps: int = 4000
    images_per_step: int = 32
    lr: float = 2e-3
    min_lr_ratio: float = 0.0
    warmup_steps: int = 100
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    seed: int = 0
    min_word_count: int = 5
    max_captions: int = 0
    loss_entropy: float = 0.0
    loss_contrast: float = 0.0
    loss_word: float = 1.0
    loss_foreground: float = 0.0
    loss_background: float = 0.0
    loss_area: float = 0.0
    grayscale_prob: float = 0.0
    loss_consistency: float = 0.0
    query_drop: float = 0.0
    query_drop_schedule: str = "constant"
    patch_mask: float = 0.0
    loss_patch: float = 0.0
    patch_mask_joint: bool = False
    loader: str = "memory"
    workers: int = 2
    cache_tokens: bool = True
    cache_in_memory_gb: float = 4.0
    backbone_lr_ratio: float = 0.1
    precision: str = "auto"
    threads: int = 0
    compile: bool = False
    log_every: int = 50
    save_every: int = 0


@dataclass(frozen=True)
class Config:
    """A full run configuration: ``model`` architecture and ``train`` settings."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def cached_tokens(self) -> bool:
        """Whether training reads cached backbone tokens (a frozen backbone with
        ``train.cache_tokens``), so no step sees the images' pixels."""
        return self.model.frozen_backbone and self.train.cache_tokens

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as a plain, JSON-serialisable dict."""
        out = dataclasses.asdict(self)
        for section in out.values():
            for key, value in section.items():
                if isinstance(value, tuple):
                    section[key] = list(value)
        return out


_HEADS = ("typed", "vocabulary")
_MASKS = ("none", "sigmoid")
_READOUTS = ("softmax", "mask")
_PRECISIONS = ("auto", "bf16", "fp32")
_SCHEDULES = ("constant", "linear")
_LOADERS = ("memory", "stream")
_BACKBONE_KINDS = ("hf", "timm")
# Inclusive ranges of every numeric field: a checkpoint's stored config is checked against
# them before any tensor is allocated, so a crafted file cannot ask for 51 GB.
_RANGES: dict[str, tuple[float, float]] = {
    "image_size": (8, 1024),
    "width": (1, 1024),
    "token_stride": (1, 64),
    "dim": (1, 2048),
    "value_dim": (1, 2048),
    "heads": (1, 64),
    "mixing_layers": (0, 12),
    "max_phrase_words": (1, 64),
    "max_pairs_per_image": (1, 4096),
    "readout_temperature": (0.01, 1000.0),
    "patch_decoder": (0, 12),
    "backbone_layer": (-1, 64),
    "steps": (1, 10_000_000),
    "images_per_step": (1, 1_000_000),
    "lr": (0.0, 10.0),
    "min_lr_ratio": (0.0, 1.0),
    "warmup_steps": (0, 10_000_000),
    "weight_decay": (0.0, 10.0),
    "grad_clip": (0.0, 1e6),
    "seed": (0, 2**63 - 1),
    "min_word_count": (1, 1_000_000),
    "max_captions": (0, 2**63 - 1),
    "loss_entropy": (-1e3, 1e3),
    "loss_contrast": (0.0, 1e3),
    "loss_word": (0.0, 1e3),
    "loss_foreground": (0.0, 1e3),
    "loss_background": (0.0, 1e3),
    "loss_area": (0.0, 1e3),
    "grayscale_prob": (0.0, 1.0),
    "loss_consistency": (0.0, 1e3),
    "query_drop": (0.0, 1.0),
    "patch_mask": (0.0, 0.95),
    "loss_patch": (0.0, 1e3),
    "workers": (0, 256),
    "cache_in_memory_gb": (0.0, 1e6),
    "backbone_lr_ratio": (0.0, 10.0),
    "threads": (0, 1024),
    "log_every": (1, 10_000_000),
    "save_every": (0, 10_000_000),
}


def list_models() -> list[str]:
    """Return the preset names shipped in ``groundbench/model/configs``, sorted."""
    return sorted(p.stem.replace("_", "-") for p in _CONFIG_DIR.glob("*.yaml"))


def _section(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"{where}: expected a mapping of keys to values, got a {type(values).__name__} "
            f"({values!r:.60}); write it as `{where.rsplit('.', 1)[-1]}: {{key: value}}`"
        )
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            hint = did_you_mean(key, names) or "."
            raise ConfigError(
                f"{where}.{key}: unknown key{hint} Valid keys: {', '.join(sorted(names))}."
            )
        default = getattr(cls(), key)
        kwargs[key] = _coerce(value, default, f"{where}.{key}")
    obj = cls(**kwargs)
    _validate(obj, where)
    return obj


def _coerce(value: Any, default: Any, where: str) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if not isinstance(value, bool):  # 2 or "yes" is not a switch
                raise TypeError(value)
            return value
        if isinstance(value, bool):  # True is not a number of steps
            raise TypeError(value)
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if isinstance(default, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        kind = {bool: "true or false", int: "an integer", float: "a number"}.get(
            type(default), "a string"
        )
        raise ConfigError(
            f"{where}: cannot use {value!r}; expected {kind}, like {default!r}"
        ) from exc


def _validate(obj: Any, where: str) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name in _RANGES and not isinstance(value, bool):
            lo, hi = _RANGES[f.name]
            if not (math.isfinite(value) and lo <= value <= hi):
                raise ConfigError(f"{where}.{f.name}: {value!r} is outside [{lo:g}, {hi:g}]")
    if isinstance(obj, ModelConfig):
        if obj.image_size % obj.token_stride:
            raise ConfigError(
                f"{where}.image_size: {obj.image_size} is not a multiple of token_stride "
                f"{obj.token_stride}; pick sizes that divide"
            )
        _validate_backbone(obj, where)
        if not obj.pretrained and obj.token_stride not in (4, 8):
            raise ConfigError(f"{where}.token_stride: {obj.token_stride} is not one of 4, 8")
        for key in ("dim", "value_dim"):
            if getattr(obj, key) % obj.heads:
                raise ConfigError(
                    f"{where}.{key}: {getattr(obj, key)} must be divisible by heads {obj.heads}"
                )
        for key, allowed in (("head", _HEADS), ("mask", _MASKS), ("readout", _READOUTS)):
            if getattr(obj, key) not in allowed:
                raise ConfigError(
                    f"{where}.{key}: {getattr(obj, key)!r} is not one of {', '.join(allowed)}"
                )
        if obj.readout == "mask" and obj.mask != "sigmoid":
            raise ConfigError(
                f"{where}.readout: 'mask' reads the sigmoid mask; set {where}.mask: sigmoid too"
            )
    if isinstance(obj, TrainConfig):
        for key, allowed in (
            ("precision", _PRECISIONS),
            ("loader", _LOADERS),
            ("query_drop_schedule", _SCHEDULES),
        ):
            if getattr(obj, key) not in allowed:
                raise ConfigError(
                    f"{where}.{key}: {getattr(obj, key)!r} is not one of {', '.join(allowed)}"
                )


def _validate_backbone(m: ModelConfig, where: str) -> None:
    kind, sep, name = m.backbone.partition(":")
    if not m.pretrained:
        if m.backbone_weights:
            raise ConfigError(f"{where}.backbone_weights: set only with a timm: backbone")
        if m.backbone_layer != -1 or m.backbone_trainable:
            raise ConfigError(
                f"{where}.backbone: backbone_layer and backbone_trainable apply to a "
                "pretrained backbone (hf:DIR or timm:NAME), not to cnn"
            )
        return
    if not sep or not name or kind not in _BACKBONE_KINDS:
        raise ConfigError(
            f"{where}.backbone: {m.backbone!r} is not cnn, hf:DIR (a transformers model "
            "saved with save_pretrained) or timm:NAME (with backbone_weights: FILE)"
        )
    if kind == "timm" and not m.backbone_weights:
        raise ConfigError(
            f"{where}.backbone_weights: a timm backbone needs its local weights file "
            "(nothing is downloaded); set backbone_weights: PATH"
        )
    if kind == "hf" and m.backbone_weights:
        raise ConfigError(
            f"{where}.backbone_weights: an hf: backbone reads its weights from its folder; "
            "drop backbone_weights"
        )


def config_from_dict(data: Mapping[str, Any] | None, *, where: str = "config") -> Config:
    """Build a :class:`Config` from a ``{"model": {...}, "train": {...}}`` mapping.

    Raises:
        ConfigError: an unknown section or key (named with its path and the closest valid
            key) or a value of the wrong type.
    """
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(
            f"{where}: expected a mapping with 'model' and 'train' sections, got a "
            f"{type(data).__name__}"
        )
    data = dict(data or {})
    unknown = set(data) - {"model", "train"}
    if unknown:
        raise ConfigError(
            f"{where}: unknown section(s) {sorted(unknown)}; a config has 'model' and 'train'"
        )
    cfg = Config(
        model=_section(ModelConfig, _or_empty(data.get("model")), f"{where}.model"),
        train=_section(TrainConfig, _or_empty(data.get("train")), f"{where}.train"),
    )
    for key, what in (("grayscale_prob", "show an image in grey"), ("patch_mask", "hide patches")):
        if cfg.cached_tokens and getattr(cfg.train, key) > 0:
            raise ConfigError(
                f"{where}.train.{key}: cached backbone tokens are computed once per "
                f"image, so no step can {what}; set it to 0, or "
                f"{where}.train.cache_tokens: false to run the backbone at every step"
            )
    if cfg.model.mask == "none":
        for key in ("loss_foreground", "loss_background", "loss_area"):
            if getattr(cfg.train, key) > 0:
                raise ConfigError(
                    f"{where}.train.{key}: this term trains the sigmoid mask; set "
                    f"{where}.model.mask: sigmoid, or the weight to 0"
                )
    masking = cfg.train.patch_mask > 0 or cfg.train.loss_patch > 0 or cfg.train.patch_mask_joint
    if masking and not (cfg.train.patch_mask > 0 and cfg.model.patch_decoder > 0):
        raise ConfigError(
            f"{where}.train.patch_mask: patch masking needs a hidden fraction and a decoder; "
            f"set {where}.train.patch_mask (e.g. 0.5), {where}.model.patch_decoder (e.g. 1) "
            f"and {where}.train.loss_patch, or leave all three at 0"
        )
    return cfg


def _or_empty(section: Any) -> Any:
    return {} if section is None else section


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping")
    return data or {}


def _merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in base.items()}
    for key, value in update.items():
        if isinstance(value, Mapping) and key in out and not isinstance(out[key], Mapping):
            continue  # a malformed section stays as it is, for _section to name
        if isinstance(value, Mapping):
            out[key] = {**out.get(key, {}), **value}
        else:
            out[key] = value
    return out


def load_config(
    preset: str | None = None,
    *,
    config_file: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> Config:
    """Load a preset, then a config file over it, then ``section.key=value`` overrides.

    Args:
        preset: a name from :func:`list_models` (``tiny``, ``small-cpu``, ``base-gpu``) or None
            for the dataclass defaults.
        config_file: optional YAML file with ``model:``/``train:`` sections.
        overrides: strings like ``train.lr=1e-3``; values are parsed as YAML scalars.

    Raises:
        ConfigError: unknown preset, unreadable file, malformed override or unknown key.

    Example:
        >>> load_config("tiny", overrides=["train.lr=0.01"]).train.lr
        0.01
    """
    data: dict[str, Any] = {}
    if preset is not None:
        if preset not in list_models():
            hint = did_you_mean(preset, list_models())
            raise ConfigError(
                f"unknown model preset {preset!r}{hint} Valid presets: {', '.join(list_models())}."
            )
        data = _read_yaml(_CONFIG_DIR / f"{preset.replace('-', '_')}.yaml")
    if config_file is not None:
        data = _merge(data, _read_yaml(Path(config_file)))
    for item in overrides:
        key, sep, raw = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(
                f"override {item!r}: write it as section.key=value, e.g. train.lr=1e-3"
            )
        data = _merge(data, {section: {name: yaml.safe_load(raw)}})
    return config_from_dict(data, where=f"preset {preset}" if preset else "config")


def create_model(name_or_config: str | Config | ModelConfig, vocab):
    """Build an untrained :class:`~groundbench.model.network.GroundingModel`.

    Args:
        name_or_config: a preset name, a :class:`Config` or a :class:`ModelConfig`.
        vocab: the :class:`~groundbench.model.language.Vocabulary` it reads and predicts.
    """
    from groundbench.model.network import GroundingModel

    cfg = name_or_config
    if isinstance(cfg, str):
        cfg = load_config(cfg)
    if isinstance(cfg, Config):
        cfg = cfg.model
    return GroundingModel(cfg, vocab.types)
