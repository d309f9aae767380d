"""Training images that shipped protocols evaluate."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

from adapter_files import write_mg_splits, write_vg  # noqa: E402

from dataset_adapters import open_dataset  # noqa: E402
from groundbench.overlap import ProtocolOverlap, protocol_overlaps  # noqa: E402


def test_visual_genome_all_overlaps_the_mg_test_split_and_train_does_not(tmp_path):
    root = write_vg(tmp_path / "vg")
    write_mg_splits(root / "data_splits.pickle", train={3}, test={1, 2})
    every = [c.image_path for c in open_dataset("visual_genome", root).load_captions("all")]
    assert protocol_overlaps("visual_genome", root, every) == [
        ProtocolOverlap("visual_genome_test.mg", "test", 2, 3, 2)
    ]
    split = open_dataset("visual_genome", root, test_image_ids="data_splits.pickle")
    train = [c.image_path for c in split.load_captions("train")]
    assert protocol_overlaps("visual_genome", root, train) == []


def test_a_protocol_whose_data_is_absent_is_skipped(tmp_path):
    root = write_vg(tmp_path / "vg")
    (root / "data_splits.pickle").unlink()  # the MG test split cannot be read here
    every = [c.image_path for c in open_dataset("visual_genome", root).load_captions("all")]
    assert protocol_overlaps("visual_genome", root, every) == []
