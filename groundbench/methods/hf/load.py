"""Load a Hugging Face checkpoint directory safely: checks first, no code from the files.

A directory in ``save_pretrained`` layout: ``config.json``; ``model.safetensors`` (or a
sharded ``model.safetensors.index.json``; a pickled ``pytorch_model.bin`` is read only
through ``torch.load(weights_only=True)``); tokenizer files; ``preprocessor_config.json``.
``trust_remote_code`` is never set, the config's sizes are checked before any allocation,
and every weight must load (a missing or unexpected key is an error, never a random init).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundbench.digest import file_sha256
from groundbench.errors import CheckpointError, MethodError

# model_type → the one transformers class this family loads
MODEL_CLASSES = {
    "clip": "CLIPModel",
    "siglip": "SiglipModel",
    "blip": "BlipForImageTextRetrieval",
}
# the largest value of each size field a checkpoint may ask for (refused before allocation)
SIZE_LIMITS = {
    "hidden_size": 16384,
    "intermediate_size": 131072,
    "num_hidden_layers": 256,
    "num_attention_heads": 256,
    "image_size": 4096,
    "patch_size": 4096,
    "max_position_embeddings": 65536,
    "vocab_size": 2_000_000,
    "projection_dim": 16384,
    "encoder_hidden_size": 16384,
}
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
)


@dataclass
class Loaded:
    """A loaded checkpoint and what its maps depend on.

    Attributes:
        model: the transformers model, eval mode, no parameter requires grad.
        tokenizer: its tokenizer.
        model_type: ``clip``, ``siglip`` or ``blip``.
        processor: ``preprocessor_config.json`` as a dict.
        files: file name → sha256 of every file read.
    """

    model: Any
    tokenizer: Any
    model_type: str
    processor: dict[str, Any]
    files: dict[str, str]


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; {what}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def check_sizes(config: dict[str, Any], where: str, key: str = "") -> None:
    """Refuse a config whose size fields exceed :data:`SIZE_LIMITS` (sub-configs included)."""
    for name, value in config.items():
        path = f"{key}.{name}" if key else name
        if isinstance(value, dict):
            check_sizes(value, where, path)
        elif (
            name in SIZE_LIMITS and isinstance(value, (int, float)) and not isinstance(value, bool)
        ):
            if not 0 < value <= SIZE_LIMITS[name]:
                raise CheckpointError(
                    f"{where}: {path} = {value} is outside (0, {SIZE_LIMITS[name]}]; refusing "
                    "to build such a model (is this the right config.json?)"
                )


def _weights(root: Path) -> tuple[list[Path], bool]:
    """The weight files and whether they are safetensors."""
    single = root / "model.safetensors"
    if single.is_file():
        return [single], True
    index = root / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(_read_json(index, "").get("weight_map", {}).values()))
        missing = [s for s in shards if not (root / s).is_file()]
        if not shards or missing:
            raise CheckpointError(f"{index}: shards missing: {missing or 'none listed'}")
        return [root / s for s in shards], True
    pickled = root / "pytorch_model.bin"
    if pickled.is_file():
        return [pickled], False
    raise CheckpointError(
        f"{root}: no weights (model.safetensors, model.safetensors.index.json or "
        "pytorch_model.bin); save the model with model.save_pretrained(DIR)"
    )


def load_checkpoint_dir(path: str | Path) -> Loaded:
    """Load the model, tokenizer and preprocessing of a ``save_pretrained`` directory.

    Raises:
        CheckpointError: a missing or malformed file, absurd sizes, weights that do not fit.
        MethodError: a model type this family does not load, or transformers not installed.
    """
    root = Path(path)
    if not root.is_dir():
        raise CheckpointError(
            f"{root}: not a directory; pass a local save_pretrained directory (download a hub "
            "model once with huggingface_hub.snapshot_download(repo, local_dir=DIR))"
        )
    config = _read_json(root / "config.json", "a save_pretrained directory holds config.json")
    model_type = config.get("model_type")
    if model_type not in MODEL_CLASSES:
        raise MethodError(
            f"{root / 'config.json'}: model_type {model_type!r} is not one the hf method loads "
            f"({', '.join(f'{k} → {v}' for k, v in MODEL_CLASSES.items())})"
        )
    cls_name = MODEL_CLASSES[model_type]
    archs = config.get("architectures") or [cls_name]
    if cls_name not in archs:
        raise MethodError(
            f"{root / 'config.json'}: architectures {archs} do not include {cls_name}; the hf "
            f"method needs {cls_name} (for BLIP the image–text matching checkpoint, e.g. "
            "blip-itm-base-coco)"
        )
    check_sizes(config, str(root / "config.json"))
    processor = _read_json(
        root / "preprocessor_config.json",
        "save the image processor too: processor.save_pretrained(DIR)",
    )
    weights, safe = _weights(root)
    files = {
        p.name: file_sha256(p)
        for p in [root / "config.json", root / "preprocessor_config.json", *weights]
    }
    files.update({n: file_sha256(root / n) for n in _TOKENIZER_FILES if (root / n).is_file()})
    try:
        import transformers
    except ImportError as exc:
        raise MethodError(
            'the hf method needs transformers: pip install "groundbench[vlm]"'
        ) from exc
    cls = getattr(transformers, cls_name)
    extra: dict[str, Any] = {}
    if not safe:
        import torch

        try:
            extra["state_dict"] = torch.load(weights[0], map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle refused or corrupt: name the file
            raise CheckpointError(
                f"{weights[0]}: cannot be read with torch.load(weights_only=True) ({exc}); "
                "convert it to model.safetensors"
            ) from None
    try:
        if not safe:  # the tensors read above, with the directory's config
            extra["config"] = cls.config_class.from_pretrained(root, local_files_only=True)
        model, info = cls.from_pretrained(
            None if not safe else root,
            local_files_only=True,
            trust_remote_code=False,
            attn_implementation="eager",
            output_loading_info=True,
            use_safetensors=safe,
            **extra,
        )
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{root}: transformers cannot load {cls_name} ({exc})") from None
    bad = {
        k: v
        for k, v in info.items()
        if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v
    }
    if bad:
        raise CheckpointError(
            f"{root}: the weights do not fit {cls_name}: "
            + "; ".join(f"{k} {sorted(map(str, v))[:5]}" for k, v in bad.items())
        )
    model.eval().requires_grad_(False)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(root, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"{root}: no usable tokenizer ({exc}); save it with tokenizer.save_pretrained(DIR)"
        ) from None
    return Loaded(model, tokenizer, model_type, processor, files)
