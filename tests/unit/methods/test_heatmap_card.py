"""A heatmap file's supervision class: declared in the spec or a sidecar card, else undeclared."""

import re

import numpy as np
import pytest

from groundbench.errors import MethodError
from groundbench.methods import resolve_method
from groundbench.model_card import ModelCardError

CARD = "schema: 1\nsupervision: {}\ntraining_data: [cc3m]\nselected_on: val\n"


@pytest.fixture
def maps(tmp_path):
    path = tmp_path / "maps.npz"
    np.savez(path, **{"t/0": np.ones((2, 2), np.float32)})
    return path


def test_undeclared_maps_are_never_box_free(maps):
    m = resolve_method(f"heatmaps:{maps}")
    assert m.supervision == "undeclared" and m.model_card is None


def test_the_spec_declares_the_class(maps):
    m = resolve_method(f"heatmaps:{maps}@box-supervised")
    assert (m.supervision, m.path, m.name) == ("box-supervised", maps, "heatmaps:maps.npz")


def test_a_path_with_an_at_sign_is_still_a_path(tmp_path):
    path = tmp_path / "run@3.npz"
    np.savez(path, **{"t/0": np.ones((2, 2), np.float32)})
    assert resolve_method(f"heatmaps:{path}").path == path


def test_a_sidecar_card_declares_the_class_and_travels_with_the_maps(maps, tmp_path):
    (tmp_path / "maps.model_card.yaml").write_text(CARD.format("detector"))
    m = resolve_method(f"heatmaps:{maps}")
    assert m.supervision == "detector"
    assert m.model_card["training_data"] == [{"name": "cc3m", "fingerprint": ""}]
    assert resolve_method(f"heatmaps:{maps}@detector").supervision == "detector"
    with pytest.raises(MethodError) as err:
        resolve_method(f"heatmaps:{maps}@box-free")
    assert str(err.value) == (
        f"heatmaps:{maps}@box-free: the spec declares 'box-free' but "
        f"{tmp_path / 'maps.model_card.yaml'} declares 'detector'; make them agree"
    )


def test_a_folder_of_npy_files_keeps_its_card_inside(tmp_path):
    np.save(tmp_path / "t__0.npy", np.ones((2, 2), np.float32))
    (tmp_path / "model_card.yaml").write_text(CARD.format("box-free"))
    assert resolve_method(f"heatmaps:{tmp_path}").supervision == "box-free"


def test_a_malformed_sidecar_card_is_refused_by_key(maps, tmp_path):
    card = tmp_path / "maps.model_card.yaml"
    card.write_text(CARD.format("box-free") + "selected_onn: test\n")
    with pytest.raises(
        ModelCardError,
        match=re.escape(
            f"model card {card}: unknown key 'selected_onn'; did you mean 'selected_on'?"
        ),
    ):
        resolve_method(f"heatmaps:{maps}")
    card.write_text(CARD.format("weakly"))
    with pytest.raises(ModelCardError, match="supervision must be one of"):
        resolve_method(f"heatmaps:{maps}")
    card.write_text(CARD.format("box-free") + "selected_on: test\n")
    with pytest.raises(ModelCardError, match="duplicate key 'selected_on'"):
        resolve_method(f"heatmaps:{maps}")
