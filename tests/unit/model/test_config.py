from __future__ import annotations

import pytest

from groundbench.model import ConfigError, create_model, list_models, load_config


def test_presets_are_listed_and_load():
    assert {"tiny", "small-cpu", "base-gpu"} <= set(list_models())
    for name in list_models():
        cfg = load_config(name)
        assert cfg.model.image_size % cfg.model.patch_size == 0


def test_overrides_are_typed():
    cfg = load_config(
        "tiny", overrides=["train.lr=0.01", "train.word_rate=[0.1, 0.2]", "train.curriculum=false"]
    )
    assert cfg.train.lr == 0.01
    assert cfg.train.word_rate == (0.1, 0.2)
    assert cfg.train.curriculum is False


def test_unknown_key_names_path_and_closest_match():
    with pytest.raises(ConfigError) as err:
        load_config("tiny", overrides=["train.lrr=0.1"])
    assert str(err.value).startswith(
        "preset tiny.train.lrr: unknown key; did you mean 'lr'? Valid keys: "
    )


def test_unknown_preset_and_bad_override():
    with pytest.raises(
        ConfigError, match=r"unknown model preset 'small_cpu'; did you mean 'small-cpu'\?"
    ):
        load_config("small_cpu")
    with pytest.raises(ConfigError, match=r"override 'lr=1': write it as section.key=value"):
        load_config("tiny", overrides=["lr=1"])


def test_invalid_values_are_refused():
    with pytest.raises(ConfigError, match="not a multiple of patch_size"):
        load_config("tiny", overrides=["model.image_size=33"])
    with pytest.raises(ConfigError, match="masking: 'both' is not one of joint, language, visual"):
        load_config("tiny", overrides=["train.masking=both"])


def test_create_model_from_name():
    model = create_model("tiny", vocab_size=10)
    assert model.gate.weights().shape == (2, 2)
