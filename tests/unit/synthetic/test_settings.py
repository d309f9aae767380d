"""Generator settings: defaults, coercion, and clear errors for unknown or impossible ones."""

from __future__ import annotations

import pytest

from groundbench.synthetic import Settings, SynthesisError


def test_defaults_fill_every_key_and_round_trip() -> None:
    s = Settings.from_mapping({"height": 48, "scenes": {"val": 7}})
    d = s.to_dict()
    assert d["height"] == 48 and d["width"] == 64
    assert d["scenes"]["val"] == 7 and d["scenes"]["train"] == 8000
    assert Settings.from_mapping(d) == s


def test_unknown_setting_names_the_closest_key() -> None:
    with pytest.raises(SynthesisError) as err:
        Settings.from_mapping({"heigth": 32})
    assert str(err.value).startswith("unknown synthetic setting 'heigth'; did you mean 'height'?")


def test_unknown_split_in_scenes() -> None:
    with pytest.raises(SynthesisError, match=r"setting scenes\.tset: unknown split"):
        Settings.from_mapping({"scenes": {"tset": 3}})


def test_more_objects_than_fit_is_refused() -> None:
    with pytest.raises(SynthesisError) as err:
        Settings.from_mapping({"max_objects": 12})
    assert str(err.value) == (
        "max_objects=12 large objects (19 px) do not fit in 64×64 px; at most 9 fit: lower "
        "max_objects or large_size, or raise the image size"
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"height": "big"}, "setting height='big' has the wrong type"),
        ({"min_objects": 1}, "need 2 <= min_objects <= max_objects"),
        ({"shapes": ["circle", "blob"]}, "unknown: ['blob']"),
        ({"small_size": [0.2, 0.3]}, "sizes must satisfy"),
        ({"heldout_pairs": ["red blob"]}, "heldout pair 'red blob'"),
        ({"scenes": {"val": -1}}, "scene counts must be >= 0"),
    ],
)
def test_bad_settings_are_explained(values: dict, message: str) -> None:
    with pytest.raises(SynthesisError) as err:
        Settings.from_mapping(values)
    assert message in str(err.value)
