"""Model and training configuration: two dataclasses, YAML presets, ``key=value`` overrides.

A preset is a YAML file in ``groundbench/model/configs/`` with a ``model:`` and a ``train:``
section; its name is the file stem with ``_`` spelled ``-`` (``small_cpu.yaml`` is the preset
``small-cpu``). Every key has a default here, so a preset or a ``--config`` file only lists
what it changes, and ``--set train.lr=1e-3`` overrides one key.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from groundbench.errors import GroundbenchError

_CONFIG_DIR = Path(__file__).with_name("configs")


class ConfigError(GroundbenchError):
    """A model preset, config file or ``--set`` override is unknown or malformed."""


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the grounding model.

    Attributes:
        image_size: images are resized to ``image_size × image_size`` pixels.
        patch_size: side of a visual token's patch in pixels; the grid is
            ``image_size // patch_size`` tokens per side.
        stem_channels: channels of the convolutional stem run before patchifying (0 = none);
            a local stem keeps visual tokens about their own patch, which keeps attention local.
        dim: width of every token embedding.
        heads: attention heads in every attention layer.
        vision_layers: transformer blocks over the visual tokens.
        text_layers: transformer blocks over the word tokens.
        decoder_layers: cross-attention blocks (text queries, visual keys); their attention
            maps are the grounding read-out (``L`` in RawMaps).
        mlp_ratio: hidden width of every MLP as a multiple of ``dim``.
        max_words: longest caption in word tokens; longer captions are truncated.
        local_values: cross-attention (and the gate's read-out) pools *local* visual features
            (each patch's own embedding through a per-token MLP, no mixing between patches)
            while keys stay contextual, so what a word reads is only what lies where it
            attends: naming an object pays only when the attention is on it.
        attend_hidden: cross-attention may attend to the tokens of masked patches (all
            identical mask tokens). False excludes them, which closes a channel through which
            a visible word can spell itself by where it puts its mass (``docs/model.md``).
    """

    image_size: int = 64
    patch_size: int = 8
    stem_channels: int = 32
    dim: int = 128
    heads: int = 4
    vision_layers: int = 1
    text_layers: int = 1
    decoder_layers: int = 2
    mlp_ratio: float = 2.0
    max_words: int = 24
    local_values: bool = False
    attend_hidden: bool = True

    @property
    def grid(self) -> int:
        """Visual tokens per side (``h == w``)."""
        return self.image_size // self.patch_size


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, masking and loss settings.

    Attributes:
        epochs: passes over the training captions.
        batch_size: captions per optimiser micro-batch (per process under DDP).
        accumulation: micro-batches per optimiser step.
        lr: peak AdamW learning rate, reached after the warm-up, then cosine to ``lr * min_lr_ratio``.
        min_lr_ratio: final learning rate as a fraction of ``lr``.
        warmup_fraction: fraction of the optimiser steps spent in linear warm-up.
        weight_decay: AdamW weight decay (not applied to norms, biases and embeddings).
        grad_clip: maximum global gradient norm (0 = no clipping).
        seed: seeds initialisation, shuffling and masking.
        compile: wrap the model in ``torch.compile``.
        num_workers: DataLoader worker processes.
        max_captions: use at most this many training captions (0 = all).
        masking: ``joint`` (words and patches), ``language`` (words only) or ``visual``
            (patches only; word targets are then whole phrases masked at the same rate).
        word_rate: ``[start, end]`` fraction of words masked, annealed start → end.
        patch_rate: ``[start, end]`` fraction of patches masked, annealed start → end.
        curriculum: anneal the rates easy → hard over training; if False the ``end`` rates
            are used from the first step.
        target_weights: relative probability of masking a word of each class
            (``content``: attribute and noun words, ``relation``, ``other``).
        group_prob: probability that a caption hides one whole noun phrase's content words
            instead of words drawn at ``word_rate`` (inference hides whole phrases).
        gate_on_visible: also train the gated read-out on visible content words, so the
            attention of a word that is shown points at its object too.
        loss_word: weight of the masked-word cross-entropy.
        loss_gate: weight of the gated read-out cross-entropy (trains the head gate).
        loss_patch: weight of the masked-patch MSE on normalised patches.
        loss_entropy: weight of the attention entropy of masked words (sparsity).
        loss_head_consistency: weight of the heads' disagreement with their mean map.
        loss_mask_consistency: weight of the gated-map divergence between two maskings of
            the same pair (costs a second forward pass when > 0).
        loss_distractor: weight of the attention overlap between masked words of different
            noun phrases of one caption (each phrase names a different object).
        loss_contrast: weight of the image contrast of the gated read-out: a word must be
            predicted better from its own image than from another image of the batch seen
            through the same query (costs a second forward pass when > 0). It leaves a query
            nothing to gain from spelling its word by where it attends, since that works on
            any image.
        log_every: optimiser steps between scalar log rows.
        save_every: optimiser steps between resumable snapshots (0 = at epoch ends only).
        precision: ``auto`` (bf16 autocast on CUDA, fp32 elsewhere), ``bf16`` or ``fp32``.
        threads: torch intra-op CPU threads for the run (0 = leave torch's default); on a
            busy machine 1 thread avoids OpenMP oversubscription, which can cost 10×.
    """

    epochs: int = 4
    batch_size: int = 64
    accumulation: int = 1
    lr: float = 2e-3
    min_lr_ratio: float = 0.05
    warmup_fraction: float = 0.05
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    seed: int = 0
    compile: bool = False
    num_workers: int = 0
    max_captions: int = 0
    masking: str = "joint"
    word_rate: tuple[float, float] = (0.15, 0.3)
    patch_rate: tuple[float, float] = (0.15, 0.4)
    curriculum: bool = True
    group_prob: float = 0.5
    gate_on_visible: bool = True
    target_weights: dict[str, float] = field(
        default_factory=lambda: {"content": 1.0, "relation": 0.2, "other": 0.02}
    )
    loss_word: float = 1.0
    loss_gate: float = 1.0
    loss_patch: float = 0.5
    loss_entropy: float = 0.01
    loss_head_consistency: float = 0.0
    loss_mask_consistency: float = 0.0
    loss_distractor: float = 0.1
    loss_contrast: float = 0.0
    log_every: int = 10
    save_every: int = 0
    precision: str = "auto"
    threads: int = 0


@dataclass(frozen=True)
class Config:
    """A full run configuration: ``model`` architecture and ``train`` settings."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as a plain, JSON-serialisable dict."""
        out = dataclasses.asdict(self)
        for section in out.values():
            for key, value in section.items():
                if isinstance(value, tuple):
                    section[key] = list(value)
        return out


_MASKINGS = ("joint", "language", "visual")


def list_models() -> list[str]:
    """Return the preset names shipped in ``groundbench/model/configs``, sorted."""
    return sorted(p.stem.replace("_", "-") for p in _CONFIG_DIR.glob("*.yaml"))


def _section(cls: type, values: Mapping[str, Any], where: str) -> Any:
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
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
            if isinstance(value, str):
                if value.lower() not in ("true", "false"):
                    raise ValueError(value)
                return value.lower() == "true"
            return bool(value)
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            if isinstance(value, str):
                value = yaml.safe_load(value)
            out = tuple(float(v) for v in value)
            if len(out) != len(default):
                raise ValueError(value)
            return out
        if isinstance(default, dict):
            if isinstance(value, str):
                value = yaml.safe_load(value)
            return {str(k): float(v) for k, v in dict(value).items()}
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{where}: cannot use {value!r}; expected a value like {default!r}"
        ) from exc


def _validate(obj: Any, where: str) -> None:
    if isinstance(obj, ModelConfig):
        if obj.image_size % obj.patch_size:
            raise ConfigError(
                f"{where}.image_size: {obj.image_size} is not a multiple of patch_size "
                f"{obj.patch_size}; pick sizes that divide"
            )
        if obj.dim % obj.heads:
            raise ConfigError(f"{where}.dim: {obj.dim} must be divisible by heads {obj.heads}")
        if obj.decoder_layers < 1:
            raise ConfigError(f"{where}.decoder_layers: need at least 1, got {obj.decoder_layers}")
    if isinstance(obj, TrainConfig):
        if obj.masking not in _MASKINGS:
            raise ConfigError(
                f"{where}.masking: {obj.masking!r} is not one of {', '.join(_MASKINGS)}"
            )
        for key in ("word_rate", "patch_rate"):
            lo, hi = getattr(obj, key)
            if not 0.0 <= lo <= 1.0 or not 0.0 <= hi <= 1.0:
                raise ConfigError(f"{where}.{key}: rates must lie in [0, 1], got {[lo, hi]}")
        if obj.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(
                f"{where}.precision: {obj.precision!r} is not one of auto, bf16, fp32"
            )
        if obj.epochs < 1 or obj.batch_size < 1 or obj.accumulation < 1:
            raise ConfigError(f"{where}: epochs, batch_size and accumulation must be >= 1")


def config_from_dict(data: Mapping[str, Any] | None, *, where: str = "config") -> Config:
    """Build a :class:`Config` from a ``{"model": {...}, "train": {...}}`` mapping.

    Raises:
        ConfigError: an unknown section or key (named with its path and the closest valid
            key) or a value of the wrong type.
    """
    data = dict(data or {})
    unknown = set(data) - {"model", "train"}
    if unknown:
        raise ConfigError(
            f"{where}: unknown section(s) {sorted(unknown)}; a config has 'model' and 'train'"
        )
    return Config(
        model=_section(ModelConfig, data.get("model") or {}, f"{where}.model"),
        train=_section(TrainConfig, data.get("train") or {}, f"{where}.train"),
    )


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
            close = difflib.get_close_matches(preset, list_models(), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
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


def create_model(name_or_config: str | Config | ModelConfig, vocab_size: int):
    """Build an untrained :class:`~groundbench.model.network.GroundingModel`.

    Args:
        name_or_config: a preset name, a :class:`Config` or a :class:`ModelConfig`.
        vocab_size: number of word ids (from the :class:`~groundbench.model.text.Vocabulary`).
    """
    from groundbench.model.network import GroundingModel

    cfg = name_or_config
    if isinstance(cfg, str):
        cfg = load_config(cfg)
    if isinstance(cfg, Config):
        cfg = cfg.model
    return GroundingModel(cfg, vocab_size)
