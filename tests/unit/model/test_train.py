from __future__ import annotations

import csv

import pytest
import torch

from groundbench.model import load_config
from groundbench.model.checkpoint import load_checkpoint
from groundbench.model.data import CaptionDataset, collate
from groundbench.model.network import GroundingModel
from groundbench.model.objective import compute_loss
from groundbench.model.text import Vocabulary
from groundbench.model.train import lr_factor, train


def _fixed_loss(model, vocab, records, cfg) -> float:
    """The objective on a fixed batch with fixed masks (lower = better reconstruction)."""
    ds = CaptionDataset(records, vocab, cfg.model.image_size, cfg.model.max_words)
    batch = collate([ds[i] for i in range(len(ds))])
    model.eval()
    with torch.no_grad():
        _, parts = compute_loss(
            model,
            batch,
            cfg,
            progress=1.0,
            generator=torch.Generator().manual_seed(123),
            device=torch.device("cpu"),
            autocast_dtype=None,
        )
    return parts["word"] + parts["gate"]


def test_training_tiny_lowers_the_loss(square_records, tmp_path):
    records = square_records[:32]
    cfg = load_config("tiny", overrides=["train.epochs=4", "train.lr=5e-3"])
    vocab = Vocabulary.build(r.text for r in records)
    torch.manual_seed(cfg.train.seed)  # the initialisation train() starts from
    untrained = GroundingModel(cfg.model, len(vocab))
    trained = train(cfg, records, tmp_path / "run", progress=False)
    after = load_checkpoint(trained.checkpoint)
    assert after.vocab.words == vocab.words
    loss_before = _fixed_loss(untrained, vocab, records, cfg)
    loss_after = _fixed_loss(after.model, after.vocab, records, cfg)
    assert loss_after < 0.7 * loss_before
    assert trained.steps == 4 * (32 // 8)
    with (tmp_path / "run" / "log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == trained.steps
    assert {"loss", "word", "gate", "patch", "lr", "images_per_s"} <= set(rows[0])
    assert (tmp_path / "run" / "loss.png").stat().st_size > 0


def test_resume_after_interruption_matches_an_uninterrupted_run(square_records, tmp_path):
    cfg = load_config("tiny", overrides=["train.epochs=2", "train.save_every=3"])
    full = train(cfg, square_records[:32], tmp_path / "full", progress=False)

    class Interrupt(Exception):
        pass

    import groundbench.model.train as train_mod

    original = train_mod.save_checkpoint
    calls = []

    def save_then_crash(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:  # crash while snapshotting at step 4 (the epoch end)
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
    from groundbench.errors import CheckpointError

    train(load_config("tiny"), square_records[:16], tmp_path / "run", progress=False)
    with pytest.raises(
        CheckpointError, match="it was trained with a different config or different captions"
    ):
        train(
            load_config("tiny", overrides=["train.lr=0.1"]),
            square_records[:16],
            tmp_path / "run",
            resume=True,
            progress=False,
        )


def test_bf16_autocast_path_runs_on_cpu(square_records, tmp_path):
    cfg = load_config("tiny", overrides=["train.precision=bf16", "train.accumulation=2"])
    result = train(cfg, square_records[:32], tmp_path / "bf16", progress=False)
    assert result.steps == 2 and torch.isfinite(torch.tensor(result.final_loss))


def test_lr_schedule_warms_up_then_decays():
    factors = [lr_factor(s, 100, 10, 0.1) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))
    assert lr_factor(100, 100, 10, 0.1) == pytest.approx(0.1)
