"""The ``hf:`` method spec: ``hf:DIR:RECIPE?knob=value&knob=value``.

``DIR`` is a local directory in ``save_pretrained`` layout (``config.json``, weights,
tokenizer files, ``preprocessor_config.json``); ``RECIPE`` names an attribution recipe;
knobs after ``?`` override the recipe's defaults (URL-query style, ``&``-separated). The
last ``:`` before the recipe separates it from the directory, so ``DIR`` may hold colons.
Example: ``hf:models/blip-itm-base-coco:itm-gradcam?variant=lavis&block=7``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from groundbench.errors import MethodError, did_you_mean

# knob → default per recipe; None = resolved from the model (documented in docs/methods.md)
RECIPES: dict[str, dict[str, Any]] = {
    "itm-gradcam": {"variant": "albef", "block": None, "tokens": None, "first_token": None},
    "relevance": {"start_layer": "last"},
    "gradcam": {"block": -1, "relu": True},
    "patchsim": {},
    "rise": {"num_masks": 8000, "num_cells": 7, "p": 0.5, "seed": 0, "output": "sigmoid"},
    "occlusion": {"window": None, "baseline": 0.0},
}
# every recipe also takes the text prompt template, the declared supervision class and the
# compute dtype (autocast: float32 = none; bfloat16/float16 = torch.autocast on the device)
COMMON = {"prompt": "{}", "supervision": "box-free", "dtype": "float32"}
DTYPES = ("float32", "bfloat16", "float16")
# named presets: a recipe name that stands for another recipe with knobs preset
PRESETS = {"rise-paper": ("rise", {"num_masks": 6000, "num_cells": 8, "p": 0.1})}


@dataclass(frozen=True)
class HFSpec:
    """A parsed ``hf:`` spec.

    Attributes:
        path: the model directory (or file) as written.
        recipe: the recipe name (a preset resolved to its recipe).
        preset: the preset name, or None.
        knobs: every knob of the recipe with its value (defaults filled; None where the
            model decides).
    """

    path: str
    recipe: str
    preset: str | None
    knobs: dict[str, Any]


def _coerce(value: str, default: Any, where: str) -> Any:
    if isinstance(default, bool):
        if value.lower() in ("1", "true", "yes"):
            return True
        if value.lower() in ("0", "false", "no"):
            return False
        raise MethodError(f"{where}: expected true or false, got {value!r}")
    kind = type(default) if default is not None else None
    try:
        if kind is int:
            return int(value)
        if kind is float:
            return float(value)
    except ValueError:
        raise MethodError(f"{where}: expected {kind.__name__}, got {value!r}") from None
    if kind is None:  # model-resolved knob: an integer when it looks like one
        try:
            return int(value)
        except ValueError:
            return value
    return value


def parse_hf_spec(arg: str | None) -> HFSpec:
    """Parse the part of ``hf:DIR:RECIPE?k=v&...`` after ``hf:``.

    Raises:
        MethodError: no directory or recipe, an unknown recipe or knob, a malformed value.

    Example:
        >>> s = parse_hf_spec("models/clip:rise?num_masks=100")
        >>> s.path, s.recipe, s.knobs["num_masks"], s.knobs["num_cells"]
        ('models/clip', 'rise', 100, 7)
    """
    usage = "--method hf:DIR:RECIPE?knob=value (e.g. hf:models/clip-vit-b16:relevance)"
    if not arg or ":" not in arg:
        raise MethodError(f"the hf method needs a model directory and a recipe: {usage}")
    head, _, query = arg.partition("?")
    path, _, name = head.rpartition(":")
    if not path:
        raise MethodError(f"hf:{arg}: no model directory before the recipe; {usage}")
    names = sorted([*RECIPES, *PRESETS])
    if name in PRESETS:
        recipe, preset_knobs = PRESETS[name]
        preset = name
    elif name in RECIPES:
        recipe, preset_knobs, preset = name, {}, None
    else:
        raise MethodError(
            f"hf:{arg}: unknown recipe {name!r}{did_you_mean(name, names)}; "
            f"recipes: {', '.join(names)}"
        )
    defaults = {**RECIPES[recipe], **COMMON}
    knobs = {**defaults, **preset_knobs}
    for item in filter(None, query.split("&")):
        key, eq, value = item.partition("=")
        if key not in defaults:
            raise MethodError(
                f"hf:{arg}: recipe {recipe} has no knob {key!r}{did_you_mean(key, defaults)}; "
                f"knobs: {', '.join(sorted(defaults))}"
            )
        if not eq:
            raise MethodError(f"hf:{arg}: knob {key!r} needs a value ({key}=...)")
        knobs[key] = _coerce(value, defaults[key], f"hf:{arg}: knob {key}")
    if knobs["dtype"] not in DTYPES:
        raise MethodError(
            f"hf:{arg}: knob dtype must be one of {', '.join(DTYPES)}, got {knobs['dtype']!r}"
        )
    if "{}" not in knobs["prompt"]:
        raise MethodError(f"hf:{arg}: prompt must contain {{}} where the phrase goes")
    return HFSpec(path=path, recipe=recipe, preset=preset, knobs=knobs)
