"""Validation and canonicalisation of the ``pipeline`` config."""

from __future__ import annotations

import json

import pytest

from groundbench.errors import ProtocolError
from groundbench.postprocess import DEFAULT_CONFIG, Pipeline, canonical_config


def test_defaults_fill_every_key():
    assert Pipeline.from_config(None).config == DEFAULT_CONFIG
    assert Pipeline.from_config({}).config == {
        "average": {"passes": "mean"},
        "aggregate": {"layers": "all", "heads": "mean", "reduce": "mean"},
        "normalise": "minmax",
        "upsample": {"mode": "bilinear", "align": "patch"},
        "smooth": {"sigma_px": 0.0},
        "threshold": {"method": "fraction_of_max", "value": 0.5},
        "regions": "largest_component",
    }


def test_partial_sections_keep_other_defaults():
    cfg = Pipeline.from_config(
        {"upsample": {"mode": "bicubic"}, "aggregate": {"heads": [0, 2]}}
    ).config
    assert cfg["upsample"] == {"mode": "bicubic", "align": "patch"}
    assert cfg["aggregate"] == {"layers": "all", "heads": [0, 2], "reduce": "mean"}


def test_canonical_is_idempotent_and_json_plain():
    cfg = {"smooth": {"sigma_px": 2}, "threshold": {"method": "top_k_percent", "value": 5}}
    once = canonical_config(cfg)
    assert canonical_config(once) == once
    assert json.loads(json.dumps(once, allow_nan=False)) == once


def test_int_and_float_canonicalise_alike():
    a = canonical_config({"smooth": {"sigma_px": 2}})
    b = canonical_config({"smooth": {"sigma_px": 2.0}})
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_config_property_is_a_copy():
    pipe = Pipeline.from_config(None)
    pipe.config["smooth"]["sigma_px"] = 9.0
    assert pipe.config["smooth"]["sigma_px"] == 0.0


@pytest.mark.parametrize(
    ("method", "value"),
    [("fraction_of_max", 0.5), ("top_k_percent", 10.0), ("mean", None), ("otsu", None)],
)
def test_threshold_value_defaults_per_method(method, value):
    cfg = canonical_config({"threshold": {"method": method}})
    assert cfg["threshold"] == {"method": method, "value": value}


def test_null_threshold_and_regions_turn_them_off():
    cfg = canonical_config({"threshold": None, "regions": None})
    assert cfg["threshold"] is None and cfg["regions"] is None


def test_unknown_step_names_path_valid_keys_and_closest():
    with pytest.raises(ProtocolError) as err:
        canonical_config({"smoth": {"sigma_px": 1}})
    assert str(err.value) == (
        "unknown key pipeline.smoth; valid keys under pipeline: average, aggregate, normalise, "
        "upsample, smooth, threshold, regions; did you mean 'smooth'?"
    )


def test_unknown_nested_key():
    with pytest.raises(ProtocolError) as err:
        canonical_config({"threshold": {"methd": "otsu"}})
    assert str(err.value) == (
        "unknown key pipeline.threshold.methd; valid keys under pipeline.threshold: "
        "method, value; did you mean 'method'?"
    )


def test_bad_choice_lists_valid_values():
    with pytest.raises(ProtocolError) as err:
        canonical_config({"normalise": "minmx"})
    assert str(err.value) == (
        "pipeline.normalise: 'minmx' is not a valid value; valid values: minmax, softmax, none; "
        "did you mean 'minmax'?"
    )


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (
            {"smooth": {"sigma_px": -1}},
            "pipeline.smooth.sigma_px: -1 is out of range; use a value in [0.0, 10000.0]",
        ),
        ({"smooth": {"sigma_px": True}}, "pipeline.smooth.sigma_px: expected a number, got True"),
        (
            {"threshold": {"method": "fraction_of_max", "value": 1.5}},
            "pipeline.threshold.value: 1.5 is out of range; use a value in [0.0, 1.0]",
        ),
        (
            {"threshold": {"method": "top_k_percent", "value": 0}},
            "pipeline.threshold.value: 0 is out of range; use a value in (0.0, 100.0]",
        ),
        (
            {"threshold": {"method": "fixed"}},
            "pipeline.threshold.value: method 'fixed' needs a value (the level to keep)",
        ),
        (
            {"threshold": {"method": "otsu", "value": 0.3}},
            "pipeline.threshold.value: method 'otsu' takes no value; remove it",
        ),
        (
            {"aggregate": {"heads": [1, 1]}},
            "pipeline.aggregate.heads: indices must be unique, got [1, 1]",
        ),
        (
            {"aggregate": {"layers": []}},
            "pipeline.aggregate.layers: expected one of all or a non-empty list of integer "
            "indices, got []",
        ),
        (
            {"aggregate": {"heads": "gate", "reduce": "max"}},
            "pipeline.aggregate.reduce: heads 'gate' takes a weighted mean over layers and "
            "heads, so reduce must be 'mean'",
        ),
        (
            {"threshold": None},
            "pipeline.regions: 'largest_component' needs a thresholded mask, but "
            "pipeline.threshold is null; set a threshold or set regions to null",
        ),
        (
            {"upsample": "bicubic"},
            "pipeline.upsample: expected a mapping with keys mode, align, clip, got 'bicubic'",
        ),
        ([1, 2], "pipeline: expected a mapping of steps, got [1, 2]"),
    ],
)
def test_bad_values_are_clear_errors(cfg, message):
    with pytest.raises(ProtocolError) as err:
        canonical_config(cfg)
    assert str(err.value) == message


def test_upsample_clip_joins_the_canonical_form_only_when_set():
    assert (
        "clip" not in canonical_config({"upsample": {"mode": "bicubic", "clip": False}})["upsample"]
    )
    on = canonical_config({"upsample": {"mode": "bicubic", "clip": True}})
    assert on["upsample"] == {"mode": "bicubic", "align": "patch", "clip": True}
    with pytest.raises(ProtocolError, match=r"pipeline.upsample.clip: expected true or false"):
        canonical_config({"upsample": {"clip": "yes"}})
