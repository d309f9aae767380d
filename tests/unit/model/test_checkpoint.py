from __future__ import annotations

import json
import pickle
import re

import pytest
import torch
from safetensors.torch import load_file, save_file

from groundbench.errors import CheckpointError
from groundbench.model import load_config
from groundbench.model.checkpoint import load_checkpoint, read_metadata, save_checkpoint
from groundbench.model.language import Vocabulary
from groundbench.model.network import GroundingModel

FIX = "point to a model.safetensors written by `groundbench train`, or train a new one"


@pytest.fixture
def saved(tmp_path):
    cfg = load_config("tiny")
    vocab = Vocabulary(["<unk>", "blue", "circle", "red", "square"], [0, 1, 2, 1, 2])
    torch.manual_seed(0)
    model = GroundingModel(cfg.model, vocab.types).eval()
    path = save_checkpoint(tmp_path / "model.safetensors", model, cfg, vocab, "f" * 64)
    return path, model, cfg, vocab


def test_round_trip_gives_the_same_model(saved):
    path, model, cfg, vocab = saved
    ckpt = load_checkpoint(path)
    assert ckpt.config == cfg
    assert ckpt.vocab.words == vocab.words and ckpt.vocab.types == vocab.types
    assert ckpt.data_fingerprint == "f" * 64
    images = torch.rand(2, 3, 32, 32)
    query = torch.tensor([[[3, 0, 0, 0]], [[1, 0, 0, 0]]])
    pairs = (query, torch.tensor([[4], [2]]), torch.zeros_like(query), torch.tensor([[0], [-1]]))
    a = model(images, *pairs)
    b = ckpt.model(images, *pairs)
    torch.testing.assert_close(a.attention, b.attention, rtol=0, atol=0)
    torch.testing.assert_close(a.word_logits, b.word_logits, rtol=0, atol=0)


def test_written_file_follows_the_umask(tmp_path, saved):
    import os

    old = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "m.safetensors", saved[1], saved[2], saved[3], "0" * 64)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_truncated_file_is_refused(saved):
    path = saved[0]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert re.fullmatch(
        rf"checkpoint {re.escape(str(path))}: weights cannot be read \(.*\); {re.escape(FIX)}",
        str(err.value),
        re.S,
    ) or str(err.value).startswith(f"checkpoint {path} is not a readable safetensors file (")


def test_pickle_file_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "model.safetensors"

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('executed')",))

    path.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert message.startswith(f"checkpoint {path} is not a readable safetensors file (")
    assert message.endswith(
        f"it may be truncated or a pickle, which groundbench never loads; {FIX}"
    )


def test_torch_save_file_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="is not a readable safetensors file"):
        load_checkpoint(path)


def test_missing_file_and_missing_metadata(tmp_path):
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "nope.safetensors")
    assert str(err.value) == f"checkpoint {tmp_path / 'nope.safetensors'} does not exist; {FIX}"
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(CheckpointError) as err:
        read_metadata(plain)
    assert str(err.value) == f"checkpoint {plain} has no 'groundbench' metadata; {FIX}"


def test_weights_that_do_not_fit_the_config_are_refused(saved):
    path = saved[0]
    tensors = load_file(str(path))
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["groundbench"])
    meta["config"]["model"]["dim"] = 32  # the stored weights are 16 wide
    save_file(tensors, str(path), metadata={"groundbench": json.dumps(meta)})
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(err.value) == (
        f"checkpoint {path}: weights do not match its config (first mismatch: "
        "'grounding.embed.weight', stored (5, 16), expected (5, 32)); the file was edited or "
        f"written by another version; {FIX}"
    )


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("dim", 65536, "config.model.dim: 65536 is outside [1, 2048]"),
        ("width", -32, "config.model.width: -32 is outside [1, 1024]"),
        ("mixing_layers", 64, "config.model.mixing_layers: 64 is outside [0, 12]"),
    ],
)
def test_crafted_configs_are_refused_before_anything_is_built(
    saved, monkeypatch, key, value, problem
):
    path = saved[0]
    tensors = load_file(str(path))
    from safetensors import safe_open

    import groundbench.model.checkpoint as ckpt_mod

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["groundbench"])
    meta["config"]["model"][key] = value
    save_file(tensors, str(path), metadata={"groundbench": json.dumps(meta)})

    def never(*args, **kwargs):
        raise AssertionError("a model was built from a crafted config")

    monkeypatch.setattr(ckpt_mod, "GroundingModel", never)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(err.value) == (
        f"checkpoint {path}: malformed config or vocabulary (checkpoint {path}: {problem}); {FIX}"
    )


def test_word_types_that_do_not_fit_the_vocabulary_are_refused(saved):
    path = saved[0]
    tensors = load_file(str(path))
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["groundbench"])
    meta["word_types"] = [0, 1]
    save_file(tensors, str(path), metadata={"groundbench": json.dumps(meta)})
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(err.value) == (
        f"checkpoint {path}: malformed config or vocabulary (a vocabulary needs one "
        f"non-negative type per word: 5 words, 2 types); {FIX}"
    )


def test_unknown_config_key_in_metadata_is_refused(saved):
    path = saved[0]
    tensors = load_file(str(path))
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["groundbench"])
    meta["config"]["model"]["dims"] = 64
    save_file(tensors, str(path), metadata={"groundbench": json.dumps(meta)})
    with pytest.raises(
        CheckpointError,
        match=r"malformed config or vocabulary \(checkpoint .*: config\.model\.dims: unknown key",
    ):
        load_checkpoint(path)


def test_a_list_for_a_config_section_in_metadata_is_refused(saved):
    path = saved[0]
    tensors = load_file(str(path))
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["groundbench"])
    meta["config"]["train"] = [1, 2]
    save_file(tensors, str(path), metadata={"groundbench": json.dumps(meta)})
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(err.value) == (
        f"checkpoint {path}: malformed config or vocabulary (checkpoint {path}: config.train: "
        "expected a mapping of keys to values, got a list ([1, 2]); write it as "
        f"`train: {{key: value}}`); {FIX}"
    )


def test_a_run_folder_is_accepted_by_the_method_and_named_when_empty(saved, tmp_path):
    from groundbench.methods.base import METHODS

    path = saved[0]
    method = METHODS.get("checkpoint")(str(path.parent))
    assert method.path == path
    empty = tmp_path / "empty_run"
    empty.mkdir()
    with pytest.raises(CheckpointError) as err:
        METHODS.get("checkpoint")(str(empty))
    assert (
        str(err.value) == f"checkpoint {empty} is a folder with no model.safetensors in it; {FIX}"
    )


def test_training_images_and_data_round_trip(saved, tmp_path):
    _, model, cfg, vocab = saved
    path = save_checkpoint(
        tmp_path / "m2.safetensors", model, cfg, vocab, "f" * 64,
        training_images=["b" * 16, "a" * 16], training_sources=["synth/train"],
    )  # fmt: skip
    ckpt = load_checkpoint(path)
    assert ckpt.training_images == ("a" * 16, "b" * 16)
    assert ckpt.training_sources == ("synth/train",)


def test_a_checkpoint_without_training_images_says_unknown(saved, tmp_path):
    path = saved[0]
    tensors = load_file(str(path))
    meta = read_metadata(path)
    del meta["training_images"]
    old = tmp_path / "old.safetensors"
    save_file(tensors, str(old), metadata={"groundbench": json.dumps(meta)})
    assert load_checkpoint(old).training_images is None


def test_a_masked_model_round_trips_with_its_read_out(tmp_path):
    over = ["model.mask=sigmoid", "model.readout=mask", "train.loss_background=1"]
    cfg = load_config("tiny", overrides=over)
    vocab = Vocabulary(["<unk>", "blue", "circle", "red", "square"], [0, 1, 2, 1, 2])
    torch.manual_seed(0)
    model = GroundingModel(cfg.model, vocab.types).eval()
    with torch.no_grad():
        model.mask_bias.fill_(-1.25)
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "m.safetensors", model, cfg, vocab, "f" * 64))
    assert ckpt.config == cfg and float(ckpt.model.mask_bias.detach()) == -1.25


def test_the_method_overrides_the_stored_read_out_and_fingerprints_it(saved):
    from groundbench.errors import MethodError
    from groundbench.methods.base import METHODS

    path = saved[0]
    plain = METHODS.get("checkpoint")(str(path))
    hot = METHODS.get("checkpoint")(f"{path}?readout_temperature=6")
    assert plain._ckpt.model.cfg.readout_temperature == 1.0
    assert hot._ckpt.model.cfg.readout_temperature == 6.0
    assert hot.fingerprint() != plain.fingerprint()
    assert (
        hot.fingerprint()
        == METHODS.get("checkpoint")(f"{path}?readout_temperature=6").fingerprint()
    )
    with pytest.raises(MethodError, match="'temperature' is not a read-out setting; did you mean"):
        METHODS.get("checkpoint")(f"{path}?temperature=6")
    with pytest.raises(
        MethodError,
        match=r"read-out setting refused: checkpoint.model.readout: 'mask' reads the sigmoid mask",
    ):
        METHODS.get("checkpoint")(f"{path}?readout=mask")  # this model has no mask
    with pytest.raises(
        MethodError, match="read-out settings apply to the attention, not to gradcam"
    ):
        METHODS.get("checkpoint")(f"{path}:gradcam?readout_temperature=6")
