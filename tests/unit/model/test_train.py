from __future__ import annotations

import csv

import pytest
import torch

from groundbench.errors import CheckpointError
from groundbench.model import load_config
from groundbench.model.checkpoint import load_checkpoint
from groundbench.model.data import build_training_data
from groundbench.model.network import GroundingModel
from groundbench.model.objective import compute_loss
from groundbench.model.train import lr_factor, step_images, train


def _fixed_loss(model, data, cfg) -> float:
    """The word loss on every training image at once (lower = better reconstruction)."""
    model.eval()
    with torch.no_grad():
        _, parts = compute_loss(model, data.batch(torch.arange(len(data))), cfg)
    return float(parts["word"])


def test_training_tiny_lowers_the_loss(square_records, tmp_path):
    records = square_records[:32]
    cfg = load_config("tiny", overrides=["train.steps=40", "train.lr=1e-2"])
    data = build_training_data(records, cfg, progress=False)
    torch.manual_seed(cfg.train.seed)  # the initialisation train() starts from
    untrained = GroundingModel(cfg.model, data.vocab.types)
    trained = train(cfg, records, tmp_path / "run", progress=False)
    after = load_checkpoint(trained.checkpoint)
    assert after.vocab.words == data.vocab.words
    assert _fixed_loss(after.model, data, cfg) < 0.5 * _fixed_loss(untrained, data, cfg)
    assert trained.steps == 40
    with (tmp_path / "run" / "log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 40
    assert {"loss", "word", "lr", "images_per_s"} <= set(rows[0])
    assert (tmp_path / "run" / "loss.png").stat().st_size > 0


def test_optional_terms_are_logged(square_records, tmp_path):
    cfg = load_config(
        "tiny", overrides=["train.steps=2", "train.loss_entropy=0.1", "train.loss_contrast=0.5"]
    )
    train(cfg, square_records[:16], tmp_path / "run", progress=False)
    with (tmp_path / "run" / "log.csv").open() as f:
        row = next(csv.DictReader(f))
    assert float(row["entropy"]) > 0 and float(row["contrast"]) > 0


def test_resume_after_interruption_matches_an_uninterrupted_run(square_records, tmp_path):
    cfg = load_config("tiny", overrides=["train.steps=8", "train.save_every=4"])
    full = train(cfg, square_records[:32], tmp_path / "full", progress=False)

    class Interrupt(Exception):
        pass

    import groundbench.model.train as train_mod

    original = train_mod.save_checkpoint
    calls = []

    def save_then_crash(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:  # crash right after the step-4 snapshot
            raise Interrupt
        return out

    train_mod.save_checkpoint = save_then_crash
    try:
        with pytest.raises(Interrupt):
            train(cfg, square_records[:32], tmp_path / "resumed", progress=False)
    finally:
        train_mod.save_checkpoint = original
    resumed = train(cfg, square_records[:32], tmp_path / "resumed", resume=True, progress=False)
    assert resumed.steps == full.steps == 8
    a = load_checkpoint(full.checkpoint).model.state_dict()
    b = load_checkpoint(resumed.checkpoint).model.state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


def test_resume_refuses_another_config(square_records, tmp_path):
    train(
        load_config("tiny", overrides=["train.steps=2"]),
        square_records[:16],
        tmp_path / "run",
        progress=False,
    )
    with pytest.raises(CheckpointError) as err:
        train(
            load_config("tiny", overrides=["train.steps=2", "train.lr=0.1"]),
            square_records[:16],
            tmp_path / "run",
            resume=True,
            progress=False,
        )
    assert str(err.value) == (
        f"cannot resume from {tmp_path / 'run' / 'train_state.pt'}: it was trained with a "
        "different config or different captions; use a new --out directory or the same settings"
    )


def test_bf16_autocast_path_runs_on_cpu(square_records, tmp_path):
    cfg = load_config("tiny", overrides=["train.precision=bf16", "train.steps=2"])
    result = train(cfg, square_records[:32], tmp_path / "bf16", progress=False)
    assert result.steps == 2 and torch.isfinite(torch.tensor(result.final_loss))


def test_step_images_are_seeded_and_disjoint_across_ranks():
    a = step_images(3, 100, 10, 0, 2, seed=1)
    b = step_images(3, 100, 10, 1, 2, seed=1)
    assert torch.equal(a, step_images(3, 100, 10, 0, 2, seed=1))
    assert not set(a.tolist()) & set(b.tolist())
    epoch = torch.cat([step_images(s, 100, 10, r, 2, seed=1) for s in range(5) for r in range(2)])
    assert sorted(epoch.tolist()) == list(range(100))


def test_lr_schedule_warms_up_then_decays():
    factors = [lr_factor(s, 100, 10, 0.1) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))
    assert lr_factor(100, 100, 10, 0.1) == pytest.approx(0.1)


def test_grey_some_greys_whole_images_seeded_by_step():
    from groundbench.model.train import grey_some

    images = torch.rand(64, 3, 4, 4)
    out = grey_some(images, 0.25, seed=0, step=3)
    grey = (out == out.mean(1, keepdim=True)).flatten(1).all(1)
    assert 5 <= int(grey.sum()) <= 30
    torch.testing.assert_close(out[grey], images[grey].mean(1, keepdim=True).expand(-1, 3, -1, -1))
    assert torch.equal(out[~grey], images[~grey])
    assert torch.equal(out, grey_some(images, 0.25, seed=0, step=3))
    assert not torch.equal(out, grey_some(images, 0.25, seed=0, step=4))
