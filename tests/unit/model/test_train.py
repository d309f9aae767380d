from __future__ import annotations

import csv
import math
from dataclasses import replace

import pytest
import torch

from groundbench.errors import CheckpointError
from groundbench.model import load_config
from groundbench.model.checkpoint import load_checkpoint
from groundbench.model.data import build_training_data
from groundbench.model.language import Vocabulary
from groundbench.model.network import GroundingModel, PairOutput
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
    assert list(rows[0]) == ["step", "lr", "word", "loss", "images_per_s"]  # as documented
    assert (tmp_path / "run" / "loss.png").stat().st_size > 0


def test_optional_terms_are_logged(square_records, tmp_path):
    cfg = load_config(
        "tiny", overrides=["train.steps=2", "train.loss_entropy=0.1", "train.loss_contrast=0.5"]
    )
    train(cfg, square_records[:16], tmp_path / "run", progress=False)
    with (tmp_path / "run" / "log.csv").open() as f:
        row = next(csv.DictReader(f))
    assert float(row["entropy"]) > 0 and float(row["contrast"]) > 0


def test_extent_terms_are_the_documented_formulas_and_are_logged(square_records, tmp_path):
    weights = ["train.loss_word=0.5", "train.loss_foreground=2", "train.loss_background=3"]
    cfg = load_config("tiny", overrides=["model.mask=sigmoid", *weights, "train.loss_area=4"])
    data = build_training_data(square_records[:8], cfg, progress=False)
    batch = data.batch(torch.arange(4))
    torch.manual_seed(0)
    model = GroundingModel(cfg.model, data.vocab.types)
    with torch.no_grad():
        model.mask_bias.fill_(-1.0)
    loss, parts = compute_loss(model, batch, cfg)
    out = model(
        batch["images"], batch["query"], batch["target"], batch["partner"], batch["relation"]
    )
    real = batch["target"] > 0
    t = batch["target"][real]
    p_bg = out.background_logits[real].softmax(-1)[torch.arange(len(t)), t]
    ce_fg = -out.foreground_logits[real].log_softmax(-1)[torch.arange(len(t)), t]
    torch.testing.assert_close(parts["background"], -torch.log(1 - p_bg).mean())
    torch.testing.assert_close(parts["foreground"], ce_fg.mean())
    torch.testing.assert_close(parts["area"], out.mask[real].mean())
    expected = (
        0.5 * parts["word"] + 2 * parts["foreground"] + 3 * parts["background"] + 4 * parts["area"]
    )
    torch.testing.assert_close(loss.detach(), expected)
    loss.backward()
    assert model.mask_bias.grad is not None and model.mask_bias.grad != 0
    train(replace(cfg, train=replace(cfg.train, steps=2)), square_records[:16], tmp_path / "run",
          progress=False)  # fmt: skip
    with (tmp_path / "run" / "log.csv").open() as f:
        row = next(csv.DictReader(f))
    assert {"foreground", "background", "area"} <= set(row) and 0 < float(row["area"]) < 1


def test_a_negative_entropy_weight_is_a_bonus_that_flattens_the_attention(square_records):
    cfg = load_config("tiny", overrides=["train.loss_entropy=-0.5"])
    data = build_training_data(square_records[:8], cfg, progress=False)
    batch = data.batch(torch.arange(4))
    torch.manual_seed(0)
    model = GroundingModel(cfg.model, data.vocab.types)
    loss, parts = compute_loss(model, batch, cfg)
    torch.testing.assert_close(loss.detach(), parts["word"] - 0.5 * parts["entropy"])
    bonus = replace(cfg, train=replace(cfg.train, loss_word=0.0))  # the bonus alone
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    before = float(parts["entropy"])
    for _ in range(3):
        loss, _ = compute_loss(model, batch, bonus)
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert float(compute_loss(model, batch, bonus)[1]["entropy"]) > before


def test_the_background_term_rewards_a_mask_that_covers_the_object():
    """Hiding a coloured square's colour: a mask over the whole square leaves a background
    that cannot tell the colour; a mask over half of it leaves the rest telling it."""
    from groundbench.model.objective import compute_loss as loss_of

    cfg = load_config("tiny", overrides=["model.mask=sigmoid", "train.loss_word=0",
                                         "train.loss_background=1"])  # fmt: skip
    N = cfg.model.grid**2  # candidates: <unk>, red, blue
    square = torch.zeros(N, dtype=torch.bool)
    square[: N // 4] = True
    values = torch.where(square[:, None], torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))

    class Fixed(torch.nn.Module):  # values: red inside the square, background elsewhere
        def __init__(self, covered):
            super().__init__()
            self.cfg = cfg.model
            self.covered = covered

        def forward(self, images, query, target, partner, relation, contrast=False):
            m = torch.where(self.covered, 0.999, 0.001)[None, None, None].float()
            pools = [(w / w.sum(-1, keepdim=True)) @ values for w in (m, 1 - m)]
            head = torch.tensor([[0.0, 0.0], [8.0, 0.0], [0.0, 0.0]])  # red ← first channel
            logits = [(p[:, :, 0] @ head.T) for p in pools]
            return PairOutput(logits[0], m[:, :, 0:1].expand(1, 1, 1, N), None, m, *logits)

    half = square.clone()
    half[: N // 8] = False
    batch = {"images": torch.zeros(1, 3, 8, 8), "query": torch.zeros(1, 1, 2, dtype=torch.long),
             "target": torch.tensor([[1]]), "partner": torch.zeros(1, 1, 2, dtype=torch.long),
             "relation": torch.tensor([[-1]])}  # fmt: skip
    _, whole = loss_of(Fixed(square), batch, cfg)
    _, part = loss_of(Fixed(half), batch, cfg)
    assert float(whole["background"]) < 0.75 < float(part["background"])


def test_resume_after_interruption_matches_an_uninterrupted_run(square_records, tmp_path):
    cfg = load_config("tiny", overrides=["train.steps=8", "train.save_every=4"])
    full = train(cfg, square_records[:32], tmp_path / "full", progress=False)

    class Interrupt(Exception):
        pass

    import groundbench.model.rundir as train_mod  # where snapshots are written

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


def test_resume_names_the_differing_keys_before_decoding(square_records, tmp_path, monkeypatch):
    run = tmp_path / "run"
    train(
        load_config("tiny", overrides=["train.steps=2"]), square_records[:16], run, progress=False
    )
    import groundbench.model.train as train_mod

    def never(*args, **kwargs):
        raise AssertionError("images were decoded before the config check")

    monkeypatch.setattr(train_mod, "build_training_data", never)
    with pytest.raises(CheckpointError) as err:
        train(
            load_config(
                "tiny", overrides=["train.steps=2", "train.lr=0.1", "model.relations=false"]
            ),
            square_records[:16],
            run,
            resume=True,
            progress=False,
        )
    assert str(err.value) == (
        f"cannot resume from {run / 'train_state.pt'}: it was trained with other settings "
        "(model.relations True → False; train.lr 0.003 → 0.1); use the same settings, or a new "
        "--out (or --overwrite)"
    )
    with pytest.raises(CheckpointError, match=r"other settings \(other training captions\)"):
        train(load_config("tiny", overrides=["train.steps=2"]), square_records[:15], run,
              resume=True, progress=False)  # fmt: skip
    # bookkeeping keys may change; a complete run says so without decoding anything
    done = train(
        load_config("tiny", overrides=["train.steps=2", "train.log_every=5", "train.save_every=7"]),
        square_records[:16],
        run,
        resume=True,
        progress=False,
    )
    assert (done.steps, done.start, done.steps_run) == (2, 2, 0)


def test_resume_extends_a_finished_run_without_repeating_log_rows(square_records, tmp_path):
    run = tmp_path / "run"
    train(
        load_config("tiny", overrides=["train.steps=4"]), square_records[:16], run, progress=False
    )
    (run / "log.csv").write_text(
        (run / "log.csv").read_text() + "5,0.1,9,9,999\n"  # a row after the snapshot
    )
    more = train(
        load_config("tiny", overrides=["train.steps=6"]),
        square_records[:16],
        run,
        resume=True,
        progress=False,
    )
    assert (more.steps, more.start, more.steps_run) == (6, 4, 2)
    with (run / "log.csv").open() as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4, 5, 6]
    assert load_checkpoint(more.checkpoint).config.train.steps == 6


def test_a_run_directory_is_continued_or_replaced_never_mixed(square_records, tmp_path):
    from groundbench.model.rundir import RunDirError

    run = tmp_path / "run"
    cfg = load_config("tiny", overrides=["train.steps=2"])
    with pytest.raises(RunDirError) as err:
        train(cfg, square_records[:16], run, resume=True, progress=False)
    assert str(err.value) == (
        f"nothing to resume in {run}: no train_state.pt (it is empty or missing); the run "
        "stopped before its first snapshot or never ran: drop --resume and pass --overwrite "
        "to start it again"
    )
    train(cfg, square_records[:16], run, progress=False)
    with pytest.raises(RunDirError) as err:
        train(cfg, square_records[:16], run, progress=False)
    assert str(err.value) == (
        f"{run} already holds files (log.csv, loss.png, model.safetensors, train_state.pt); "
        "pass --resume to continue that run, --overwrite to replace it, or choose a new --out"
    )
    (run / "notes.txt").write_text("mine")
    (run / "tensorboard").mkdir(exist_ok=True)
    (run / "tensorboard" / "old").write_text("x")
    (run / "loss.png").unlink()

    def crash(step, model, data):
        raise KeyboardInterrupt  # killed before the first snapshot of the new run

    cfg3 = load_config("tiny", overrides=["train.steps=3", "train.save_every=2"])
    with pytest.raises(KeyboardInterrupt):
        train(cfg3, square_records[:16], run, overwrite=True, progress=False, on_step=crash)
    # the old run's files are gone together; nothing of it sits beside the new log
    assert sorted(p.name for p in run.iterdir()) == ["log.csv", "notes.txt"]


def test_default_snapshots_every_five_percent_and_a_crash_keeps_them(square_records, tmp_path):
    from groundbench.model.train import save_interval

    assert save_interval(load_config("small-cpu")) == 200
    assert save_interval(load_config("tiny", overrides=["train.steps=40"])) == 2
    assert save_interval(load_config("tiny", overrides=["train.save_every=3"])) == 3

    def crash(step, model, data):
        if step == 7:
            raise RuntimeError("killed")

    cfg = load_config("tiny", overrides=["train.steps=40"])
    with pytest.raises(RuntimeError):
        train(cfg, square_records[:16], tmp_path / "run", progress=False, on_step=crash)
    state = torch.load(tmp_path / "run" / "train_state.pt", weights_only=True)
    assert state["step"] == 6


def test_sigterm_writes_a_snapshot_and_the_resumed_run_matches(square_records, tmp_path):
    import os
    import signal

    from groundbench.model.rundir import TrainingInterrupted

    cfg = load_config("tiny", overrides=["train.steps=6", "train.save_every=100"])
    full = train(cfg, square_records[:16], tmp_path / "full", progress=False)

    def term(step, model, data):
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    run = tmp_path / "run"
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted) as err:
        train(cfg, square_records[:16], run, progress=False, on_step=term)
    assert str(err.value) == (
        f"training stopped by SIGTERM at step 3 of 6; a snapshot of that step is in {run}: "
        "continue with --resume"
    )
    assert signal.getsignal(signal.SIGTERM) == before
    assert torch.load(run / "train_state.pt", weights_only=True)["step"] == 3
    resumed = train(cfg, square_records[:16], run, resume=True, progress=False)
    assert (resumed.start, resumed.steps_run) == (3, 3)
    a = load_checkpoint(full.checkpoint).model.state_dict()
    b = load_checkpoint(resumed.checkpoint).model.state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


def test_a_batch_without_pairs_has_zero_loss_and_logs_no_nan(square_records):
    from groundbench.model.train import _window_means

    cfg = load_config("tiny")
    data = build_training_data(square_records[:8], cfg, progress=False)
    batch = data.batch(torch.arange(4))
    batch["target"].zero_()
    torch.manual_seed(0)
    model = GroundingModel(cfg.model, data.vocab.types)
    loss, parts = compute_loss(model, batch, cfg)
    assert float(loss.detach()) == 0.0 and int(parts["pairs"]) == 0
    loss.backward()  # nothing to learn, but nothing breaks
    none = _window_means({"loss": torch.tensor(0.0)}, torch.tensor(0.0), 1)
    assert none == {"loss": None}
    two = _window_means({"loss": torch.tensor(3.0)}, torch.tensor(2.0), 1)
    assert two == {"loss": 1.5}


def test_chance_loss_is_the_mean_log_of_the_candidates(square_records):
    from groundbench.model.objective import chance_loss

    cfg = load_config("tiny")
    data = build_training_data(square_records[:8], cfg, progress=False)
    # the 5 words (4 colours and "square") share one type here; <unk> is never a candidate
    assert data.vocab.words[0] == "<unk>" and len(set(data.vocab.types)) == 1
    assert chance_loss(data, cfg) == pytest.approx(math.log(5))
    types = [0] + [2 if w == "square" else 1 for w in data.vocab.words[1:]]
    typed = replace(data, vocab=Vocabulary(data.vocab.words, types))
    targets = data.target[data.target > 0]
    expected = sum(math.log(1 if data.vocab.words[t] == "square" else 4) for t in targets.tolist())
    assert chance_loss(typed, cfg) == pytest.approx(expected / len(targets))


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
    from groundbench.model.augment import grey_some

    images = torch.rand(64, 3, 4, 4)
    out = grey_some(images, 0.25, seed=0, step=3)
    grey = (out == out.mean(1, keepdim=True)).flatten(1).all(1)
    assert 5 <= int(grey.sum()) <= 30
    torch.testing.assert_close(out[grey], images[grey].mean(1, keepdim=True).expand(-1, 3, -1, -1))
    assert torch.equal(out[~grey], images[~grey])
    assert torch.equal(out, grey_some(images, 0.25, seed=0, step=3))
    assert not torch.equal(out, grey_some(images, 0.25, seed=0, step=4))
