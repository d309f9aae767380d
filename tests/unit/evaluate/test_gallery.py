"""The gallery's maps are kept while scoring: the method does not run again for it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from groundbench.evaluate import evaluate
from groundbench.evaluation.gallery import GalleryKeeper, gallery_choice
from groundbench.evaluation.scoring import Scorer
from groundbench.postprocess import ProcessedMaps
from groundbench.report.records import Records


def _records(values, codes):
    n = len(values)
    ids = tuple(f"s{i:03d}" for i in range(n))
    return Records(("m",), ids, np.array(values)[:, None], np.array(codes, np.int8)[:, None],
                   (frozenset(),) * n)  # fmt: skip


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("batch", [1, 4, 7])
def test_the_keeper_holds_every_sample_the_gallery_picks(seed, batch):
    rng = np.random.default_rng(seed)
    n = 40
    values = rng.integers(0, 5, n).astype(float) / 4  # many ties
    codes = (rng.random(n) < 0.2).astype(np.int8)
    values[codes == 1] = np.nan
    records = _records(values, codes)
    keeper = GalleryKeeper("m", True, seed)
    for start in range(0, n, batch):
        rows = list(range(start, min(n, start + batch)))
        part = records.take(rows)
        maps = ProcessedMaps(part.ids, torch.full((len(rows), 2, 2), float(start)),
                             torch.ones(len(rows), 2, 2, dtype=torch.bool), None, None)  # fmt: skip
        keeper.offer(part, maps)
    chosen = gallery_choice(records, "m", True, seed)
    assert len(chosen) == 9
    assert all(keeper.get(records.ids[i]) is not None for i, _ in chosen)
    assert len(keeper._maps) <= 15


def test_a_fresh_run_runs_the_method_once_per_batch(tiny, tmp_path, monkeypatch):
    # The gallery used to re-run the method and the pipeline for each of its samples.
    protocol, root = tiny
    calls = []
    maps = Scorer._maps  # every run of the method and the pipeline goes through it

    def counted(self, samples, images):
        calls.append(len(samples))
        return maps(self, samples, images)

    monkeypatch.setattr(Scorer, "_maps", counted)
    evaluate(str(protocol), "centre_prior", out_dir=tmp_path / "run", data_root=root,
             batch_size=4, progress=False)  # fmt: skip
    assert calls == [4, 2]
    assert (tmp_path / "run" / "figures" / "gallery.png").is_file()


def test_the_keeper_holds_photo_sized_maps_small_with_their_peak():
    # It kept up to 15 full-resolution float32 maps: 720 MB at 12 MP.
    from groundbench.evaluation.gallery import GALLERY_SIDE_PX
    from groundbench.report.figures import map_peak

    records = _records([0.5, 1.0], [0, 0])
    heat = torch.zeros(2, 1500, 2000)
    heat[0, 1234, 1717] = 1.0
    valid = torch.zeros(2, 1500, 2000, dtype=torch.bool)
    valid[0] = True
    valid[1, :900, :1200] = True  # a smaller image, padded in the batch
    keeper = GalleryKeeper("m", True, 0)
    keeper.offer(records, ProcessedMaps(records.ids, heat, valid, None, None))
    big, small = keeper.get("s000"), keeper.get("s001")
    assert max(big.shape) <= GALLERY_SIDE_PX and max(small.shape) <= GALLERY_SIDE_PX
    assert big.shape == (250, 334) and small.shape == (225, 300)  # factors 6 and 4
    assert map_peak(big) == (1234 // 6, 1717 // 6)
    assert big.dtype == np.float32


def test_a_capped_resolution_run_draws_its_gallery(tiny, tmp_path):
    protocol, root = tiny
    result = evaluate(str(protocol), "centre_prior", out_dir=tmp_path / "run", data_root=root,
                      overrides=("resolution={max_side: 20}",), progress=False)  # fmt: skip
    assert result.report["protocol"]["canonical"]["resolution"] == {"max_side": 20}
    assert (tmp_path / "run" / "figures" / "gallery.png").is_file()
