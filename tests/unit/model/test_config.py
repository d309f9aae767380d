from __future__ import annotations

import pytest

from groundbench.model import ConfigError, create_model, list_models, load_config
from groundbench.model.language import Vocabulary


def test_presets_are_listed_and_load():
    assert {"tiny", "small-cpu", "base-gpu"} <= set(list_models())
    for name in list_models():
        cfg = load_config(name)
        assert cfg.model.image_size % cfg.model.token_stride == 0
    assert load_config("small-cpu").model.grid >= 16  # a coarser grid caps pointing


def test_overrides_are_typed():
    cfg = load_config("tiny", overrides=["train.lr=0.01", "model.relations=false", "train.steps=7"])
    assert cfg.train.lr == 0.01
    assert cfg.model.relations is False
    assert cfg.train.steps == 7 and isinstance(cfg.train.steps, int)


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


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "model.image_size=34",
            "preset tiny.model.image_size: 34 is not a multiple of token_stride 4; pick sizes that divide",
        ),
        ("model.token_stride=2", "preset tiny.model.token_stride: 2 is not one of 4, 8"),
        ("model.head=gated", "preset tiny.model.head: 'gated' is not one of typed, vocabulary"),
        ("model.dim=65536", "preset tiny.model.dim: 65536 is outside [1, 2048]"),
        ("model.dim=-32", "preset tiny.model.dim: -32 is outside [1, 2048]"),
        ("train.lr=.nan", "preset tiny.train.lr: nan is outside [0, 10]"),
        ("model.heads=3", "preset tiny.model.dim: 16 must be divisible by heads 3"),
        (
            "train.precision=fp8",
            "preset tiny.train.precision: 'fp8' is not one of auto, bf16, fp32",
        ),
        ("model.mask=hard", "preset tiny.model.mask: 'hard' is not one of none, sigmoid"),
        ("model.readout=max", "preset tiny.model.readout: 'max' is not one of softmax, mask"),
        (
            "model.readout=mask",
            "preset tiny.model.readout: 'mask' reads the sigmoid mask; set preset "
            "tiny.model.mask: sigmoid too",
        ),
        (
            "model.readout_temperature=0",
            "preset tiny.model.readout_temperature: 0.0 is outside [0.01, 1000]",
        ),
        (
            "train.loss_background=1",
            "preset tiny.train.loss_background: this term trains the sigmoid mask; set "
            "preset tiny.model.mask: sigmoid, or the weight to 0",
        ),
    ],
)
def test_invalid_values_are_refused(override, message):
    with pytest.raises(ConfigError) as err:
        load_config("tiny", overrides=[override])
    assert str(err.value) == message


def test_a_config_without_the_extent_keys_keeps_the_old_behaviour():
    from groundbench.model.config import config_from_dict

    old = load_config("tiny").to_dict()
    for key in ("mask", "readout", "readout_temperature"):
        del old["model"][key]
    for key in ("loss_word", "loss_foreground", "loss_background", "loss_area"):
        del old["train"][key]
    cfg = config_from_dict(old)
    assert (cfg.model.mask, cfg.model.readout, cfg.model.readout_temperature) == (
        "none",
        "softmax",
        1.0,
    )
    assert (cfg.train.loss_word, cfg.train.loss_foreground, cfg.train.loss_background) == (
        1.0,
        0.0,
        0.0,
    )


def test_create_model_from_name():
    vocab = Vocabulary(["<unk>", "red", "blue", "square"], [0, 1, 1, 2])
    model = create_model("tiny", vocab)
    assert model.head[-1].out_features == 4
    assert model.word_types.tolist() == [0, 1, 1, 2]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "model.relations=2",
            "preset tiny.model.relations: cannot use 2; expected true or false, like True",
        ),
        (
            "train.steps=true",
            "preset tiny.train.steps: cannot use True; expected an integer, like 4000",
        ),
        ("train.lr=false", "preset tiny.train.lr: cannot use False; expected a number, like 0.002"),
    ],
)
def test_bools_and_numbers_are_not_mixed(override, message):
    with pytest.raises(ConfigError) as err:
        load_config("tiny", overrides=[override])
    assert str(err.value) == message


def test_a_list_where_a_section_belongs_is_a_config_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  - steps: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config("tiny", config_file=path, overrides=["train.lr=0.1"])
    assert str(err.value) == (
        "preset tiny.train: expected a mapping of keys to values, got a list "
        "([{'steps': 3}]); write it as `train: {key: value}`"
    )
