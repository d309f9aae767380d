"""The scorer refuses maps it cannot evaluate, naming the method and the sample."""

from __future__ import annotations

import pytest
import torch

from groundbench.errors import DataFormatError, MethodError
from groundbench.evaluation.data import load_samples
from groundbench.evaluation.scoring import Scorer
from groundbench.protocol import load_protocol
from groundbench.types import RawMaps


class _Fixed:
    """A method returning one fixed map for every sample."""

    name = "fixed"
    supervision = "training-free"
    needs_images = False

    def __init__(self, m: torch.Tensor) -> None:
        self.m = m

    def fingerprint(self) -> str:
        return "fixed"

    def predict(self, samples, images, *, device):
        return RawMaps(tuple(s.id for s in samples), tuple(self.m for _ in samples))


def _score(tiny, m):
    protocol_path, root = tiny
    protocol = load_protocol(str(protocol_path))
    samples = load_samples(protocol, root)[:2]
    return Scorer(protocol, _Fixed(m), torch.device("cpu")).score(samples, [None] * 2, [None] * 2)


def test_an_empty_map_is_refused(tiny):
    with pytest.raises(MethodError) as exc:
        _score(tiny, torch.zeros(0, 5))
    assert str(exc.value) == (
        "method fixed: the map of sample 'tiny/000' has shape (0, 5) with no element; return "
        "at least a 1×1 map"
    )


def test_finite_float64_beyond_float32_is_refused_not_called_nan(tiny):
    m = torch.tensor([[0.0, 1e300], [1.0, 2.0]], dtype=torch.float64)
    with pytest.raises(MethodError) as exc:
        _score(tiny, m)
    assert str(exc.value) == (
        "method fixed: the map of sample 'tiny/000' holds finite values up to 1e+300, beyond "
        "float32 (±3.4e+38), where maps are evaluated; rescale the maps"
    )


def test_a_batch_scores_into_typed_records(tiny):
    scored = _score(tiny, torch.rand(4, 5, generator=torch.Generator().manual_seed(0)))
    r = scored.records
    assert r.ids == ("tiny/000", "tiny/001") and r.keys == ("pointing[albef]", "box_acc@0.5")
    assert r.values.shape == (2, 2) and r.undefined.dtype.name == "int8"
    assert scored.maps.ids == r.ids


class _Noted(_Fixed):
    """A fixed map, with a note on the first sample."""

    def predict(self, samples, images, *, device):
        raw = super().predict(samples, images, device=device)
        notes = [frozenset({"text:no-referent"})] + [frozenset()] * (len(samples) - 1)
        return RawMaps(raw.ids, raw.maps, notes=tuple(notes))


def test_the_method_notes_join_the_record_tags_and_are_aggregated(tiny):
    protocol_path, root = tiny
    protocol = load_protocol(str(protocol_path))
    samples = load_samples(protocol, root)[:2]
    scorer = Scorer(protocol, _Noted(torch.rand(4, 5)), torch.device("cpu"))
    r = scorer.score(samples, [None] * 2, [None] * 2).records
    assert r.tags == (samples[0].tags | {"text:no-referent"}, samples[1].tags)
    by_tag = r.aggregate(resamples=10, seed=0)["pointing[albef]"]
    assert by_tag["text:no-referent"].n == 1


def test_notes_must_align_with_the_maps():
    with pytest.raises(
        DataFormatError, match="RawMaps has 1 ids but 2 note sets; give one per sample"
    ):
        RawMaps(("a",), (torch.zeros(2, 2),), notes=(frozenset(), frozenset()))


def test_a_report_counts_the_method_notes_and_scores_them_by_tag(tiny, tmp_path):
    from groundbench.evaluate import evaluate

    protocol, root = tiny
    result = evaluate(str(protocol), _Noted(torch.rand(4, 5)), out_dir=tmp_path / "run",
                      data_root=root, batch_size=4, progress=False)  # fmt: skip
    # one note per batch: batches of 4 over the 6 samples
    assert result.report["method"]["notes"] == {"text:no-referent": 2}
    assert result.report["metrics"]["pointing[albef]"]["text:no-referent"]["n"] == 2
    md = (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
    assert "- notes on samples: `text:no-referent` 2 (scored per tag under By tag)" in md
    assert "| text:no-referent \\* | 2 |" in md
