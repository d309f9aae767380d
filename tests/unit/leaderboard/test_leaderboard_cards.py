"""Entries say what the model saw: model cards, board marks, and compare's training-data note."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from leaderboard_reports import write_report

from groundbench.cli import main
from groundbench.leaderboard import add_entry, load_entries, read_entry
from groundbench.leaderboard.validate import SubmissionError
from groundbench.model_card import card_sha256

VALUES = {"pointing": [1.0, 0.0, 1.0, 1.0]}


def _card(tmp_path, name="card.yaml", supervision="box-free", selected_on="val", data="cc3m"):
    path = tmp_path / name
    path.write_text(
        f"schema: 1\nsupervision: {supervision}\ntraining_data: [{data}]\n"
        f"pretraining_data: [{{name: imagenet-1k}}]\nselected_on: {selected_on}\n"
    )
    return path


def _with_card(report_dir, card):
    path = report_dir / "report.json"
    report = json.loads(path.read_text())
    report["model_card"] = {**card, "sha256": card_sha256(card)}
    path.write_text(json.dumps(report))
    return report_dir


def _board(tmp_path) -> str:
    result = CliRunner().invoke(main, ["leaderboard", "build", "--board", str(tmp_path / "lb")])
    assert result.exit_code == 0, result.output
    return (tmp_path / "lb" / "README.md").read_text()


def test_undeclared_maps_stay_undeclared_until_a_card_declares_them(tmp_path):
    lb = tmp_path / "lb"
    plain = write_report(tmp_path / "a", VALUES, method="heatmaps:a.npz", supervision="undeclared")
    add_entry(plain, lb)
    carded = write_report(tmp_path / "b", VALUES, method="heatmaps:b.npz", supervision="undeclared")
    result = CliRunner().invoke(
        main,
        ["leaderboard", "add", str(carded), "--board", str(lb),
         "--model-card", str(_card(tmp_path, selected_on="test"))],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    board = _board(tmp_path)
    assert "| heatmaps:a.npz | undeclared |" in board
    assert "| heatmaps:b.npz (! selected on test) | box-free |" in board
    entry = next(e for e in load_entries(lb) if e.method_name == "heatmaps:b.npz")
    assert entry.model_card["pretraining_data"] == [{"name": "imagenet-1k", "fingerprint": ""}]
    assert entry.model_card["sha256"] == card_sha256(
        {k: v for k, v in entry.model_card.items() if k != "sha256"}
    )
    csv = (lb / "leaderboard.csv").read_text().splitlines()
    assert csv[0].endswith(",model_card_marks")
    assert any(line.endswith(",selected on test") for line in csv)


def test_a_computed_overlap_marks_the_entry(tmp_path):
    card = {
        "schema": 1, "source": "computed", "model": "checkpoint", "supervision": "box-free",
        "training_data": [{"name": "synth/train", "fingerprint": "f" * 64}],
        "pretraining_data": [], "selected_on": "none", "evaluated_images_in_training": "yes",
        "notes": "", "overlap": {"training_images": 9, "evaluated_images": 4,
                                 "shared_images": 2, "shared_samples": 2, "examples": []},
    }  # fmt: skip
    report = _with_card(write_report(tmp_path / "c", VALUES, method="checkpoint",
                                     supervision="box-free"), card)  # fmt: skip
    add_entry(report, tmp_path / "lb")
    assert "| checkpoint (! saw evaluated images) | box-free |" in _board(tmp_path)
    with pytest.raises(SubmissionError, match="already carries a computed model card"):
        add_entry(report, tmp_path / "lb2", model_card=_card(tmp_path))


def test_a_card_contradicting_the_report_or_edited_later_is_refused(tmp_path):
    report = write_report(tmp_path / "a", VALUES, method="plug", supervision="box-free")
    with pytest.raises(SubmissionError) as err:
        add_entry(report, tmp_path / "lb", model_card=_card(tmp_path, supervision="detector"))
    assert str(err.value) == (
        f"{report / 'report.json'}: method.supervision is 'box-free' but "
        f"{tmp_path / 'card.yaml'} declares 'detector'; make them agree"
    )
    path = add_entry(report, tmp_path / "lb", model_card=_card(tmp_path))
    payload = json.loads(path.read_text())
    payload["model_card"]["selected_on"] = "val-but-really-test"
    path.write_text(json.dumps(payload))
    with pytest.raises(SubmissionError, match="model_card was changed after it was written"):
        read_entry(path)


def test_compare_notes_different_training_data(tmp_path):
    a = write_report(tmp_path / "a", VALUES, method="a", supervision="box-free")
    b = write_report(tmp_path / "b", VALUES, method="b", supervision="box-free")
    ea = add_entry(a, tmp_path / "lb", model_card=_card(tmp_path, "ca.yaml", data="coco"))
    eb = add_entry(b, tmp_path / "lb", model_card=_card(tmp_path, "cb.yaml", data="cc3m"))
    result = CliRunner().invoke(main, ["compare", str(ea), str(eb), "--resamples", "10",
                                       "--permutations", "10"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        "note: A and B were trained on different data (A: coco, pre-trained imagenet-1k; "
        "B: cc3m, pre-trained imagenet-1k); the difference mixes method and data effects"
    ) in result.stderr
    same = CliRunner().invoke(main, ["compare", str(ea), str(ea), "--json", "--resamples", "10",
                                     "--permutations", "10"])  # fmt: skip
    assert json.loads(same.stdout)["training_data_note"] is None
    unknown = CliRunner().invoke(main, ["compare", str(ea), str(a), "--resamples", "10",
                                        "--permutations", "10"])  # fmt: skip
    assert "note: B has no model card, so whether both saw the same training data" in (
        unknown.stderr
    )
