"""Checkpoints: one safetensors file holding the weights, with the run's facts as JSON metadata.

The file's safetensors header carries, under the key ``groundbench``, a JSON object:
``format`` (2), ``config`` (the :class:`~groundbench.model.config.Config` as a plain dict),
``vocab`` (the word list, ``<unk>`` first), ``word_types`` (one learned type per word),
``groundbench_version``, ``data_fingerprint`` (sha256 of the training captions' ids and
texts), ``training_data`` (``adapter``, ``options``, ``split`` of the captions, when
``groundbench train`` read them through an adapter; ``{}`` otherwise), ``training_sources``
(the captions' common id prefix, ``synth/train``) and ``training_images`` (the sorted 16-hex
sha256 prefixes of the training image files, which the leaderboard's model card compares
with the evaluated images), and, for a pretrained backbone, ``backbone``: its spec, absolute
location, fingerprint, each file's sha256, its config, mean, std, token channels and grid
(:mod:`groundbench.model.backbone`). A frozen backbone's weights are not stored: loading finds
its files at the recorded location (or where ``backbone=`` says) and verifies every digest
first. Loading parses JSON and tensors only, so it never runs code from the file. The
stored config is range-checked and every tensor's shape in the header is compared with
the model that config describes *before* anything is allocated, so a crafted file cannot
ask for gigabytes; a pickle, a truncated file or weights that do not fit the stored config
raise :class:`~groundbench.errors.CheckpointError` naming the file and the fix.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from groundbench import __version__
from groundbench.errors import CheckpointError
from groundbench.model.backbone import BackboneError, load_backbone, verify_backbone
from groundbench.model.config import Config, ConfigError, config_from_dict
from groundbench.model.language import Vocabulary
from groundbench.model.network import GroundingModel

FORMAT = 2
_KEY = "groundbench"
_MAX_VOCAB = 1_000_000
_FIX = "point to a model.safetensors written by `groundbench train`, or train a new one"


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the model in eval mode with what it was trained with."""

    model: GroundingModel
    config: Config
    vocab: Vocabulary
    groundbench_version: str
    data_fingerprint: str
    training_sources: tuple[str, ...] = ()
    training_images: tuple[str, ...] | None = None


def save_checkpoint(
    path: str | Path,
    model: GroundingModel,
    config: Config,
    vocab: Vocabulary,
    data_fingerprint: str,
    *,
    training_data: dict | None = None,
    training_sources: Sequence[str] = (),
    training_images: Sequence[str] = (),
) -> Path:
    """Write ``model``'s weights and metadata to ``path`` atomically (temp file + rename).

    Args:
        training_data: ``adapter``, ``options``, ``split``: what the captions were.
        training_sources: names of the training data (the captions' common id prefix).
        training_images: 16-hex sha256 prefixes of the training image files.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "config": config.to_dict(),
        "vocab": vocab.words,
        "word_types": vocab.types,
        "groundbench_version": __version__,
        "data_fingerprint": data_fingerprint,
        "training_data": dict(training_data or {}),
        "training_sources": list(training_sources),
        "training_images": sorted(training_images),
    }
    if config.model.pretrained:
        meta["backbone"] = model.encoder.backbone.record
    state = model.trained_state_dict()
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={_KEY: json.dumps(meta, sort_keys=True)})
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the file follows the umask
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Return the JSON metadata of a checkpoint without reading its weights.

    Raises:
        CheckpointError: the file is missing, not safetensors, or lacks groundbench metadata.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(
            f"checkpoint {path} is a folder with no model.safetensors in it; {_FIX}"
        )
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; {_FIX}")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is not a readable safetensors file ({exc}); it may be truncated "
            f"or a pickle, which groundbench never loads; {_FIX}"
        ) from exc
    if _KEY not in header:
        raise CheckpointError(f"checkpoint {path} has no '{_KEY}' metadata; {_FIX}")
    try:
        meta = json.loads(header[_KEY])
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"checkpoint {path}: its metadata is not valid JSON ({exc}); {_FIX}"
        ) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {path} has metadata format {meta.get('format') if isinstance(meta, dict) else None!r}, "
            f"this groundbench reads format {FORMAT}; {_FIX}"
        )
    return meta


def load_checkpoint(
    path: str | Path,
    *,
    device: str | torch.device = "cpu",
    backbone: str | Path | None = None,
) -> Checkpoint:
    """Load a checkpoint into a fresh model (eval mode) on ``device``.

    Args:
        backbone: where a pretrained backbone's files are now (its folder, or a timm
            weights file), when they moved since training; None looks where they were.

    Raises:
        CheckpointError: missing, corrupt, truncated or pickle file; malformed metadata;
            weights whose names or shapes do not match the stored config; or a pretrained
            backbone that is missing or whose files changed.
    """
    path = Path(path)
    meta = read_metadata(path)
    try:
        config = config_from_dict(meta["config"], where=f"checkpoint {path}: config")
        vocab = Vocabulary(meta["vocab"], meta["word_types"])
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise CheckpointError(
            f"checkpoint {path}: malformed config or vocabulary ({exc}); {_FIX}"
        ) from exc
    if len(vocab) > _MAX_VOCAB:
        raise CheckpointError(
            f"checkpoint {path}: a vocabulary of {len(vocab)} words exceeds {_MAX_VOCAB}; {_FIX}"
        )
    pretrained = None
    if config.model.pretrained:
        config, pretrained = _find_backbone(path, meta, config, backbone)
    with torch.device("meta"):  # shapes only: nothing is allocated
        expected = {
            k: tuple(v.shape)
            for k, v in GroundingModel(config.model, vocab.types, pretrained)
            .trained_state_dict()
            .items()
        }
    with safe_open(str(path), framework="pt") as f:
        stored = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    if stored != expected:
        wrong = sorted(set(stored) ^ set(expected)) or sorted(
            k for k in expected if stored[k] != expected[k]
        )
        raise CheckpointError(
            f"checkpoint {path}: weights do not match its config (first mismatch: {wrong[0]!r}, "
            f"stored {stored.get(wrong[0])}, expected {expected.get(wrong[0])}); the file was "
            f"edited or written by another version; {_FIX}"
        )
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path}: weights cannot be read ({exc}); {_FIX}") from exc
    model = GroundingModel(config.model, vocab.types, pretrained)
    model.load_trained_state_dict(state)
    model.to(device).eval()
    return Checkpoint(
        model,
        config,
        vocab,
        str(meta.get("groundbench_version", "")),
        str(meta.get("data_fingerprint", "")),
        tuple(_strings(meta.get("training_sources", []), path, "training_sources")),
        None
        if "training_images" not in meta
        else tuple(_strings(meta["training_images"], path, "training_images")),
    )


def _find_backbone(path: Path, meta: dict, config: Config, location: str | Path | None):
    """Verify the checkpoint's backbone files and load it; return the config pointing at
    them and the loaded backbone."""
    record = meta.get("backbone")
    if not isinstance(record, dict):
        raise CheckpointError(
            f"checkpoint {path}: its config names backbone {config.model.backbone!r} but the "
            f"file has no backbone record; {_FIX}"
        )
    fix = f"give its new location: --method 'checkpoint:{path}?backbone=PATH'"
    try:
        found = verify_backbone(record, location, fix)
        config = replace(config, model=replace(config.model, **found))
        return config, load_backbone(config.model)
    except BackboneError as exc:
        raise CheckpointError(f"checkpoint {path}: {exc}") from None


def _strings(value: Any, path: Path, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CheckpointError(f"checkpoint {path}: metadata {key} must be a list of text; {_FIX}")
    return value
