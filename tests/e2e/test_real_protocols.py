"""Every shipped real-dataset protocol runs end to end on a root laid out the standard way.

The roots are the adapters' small fixtures, written in the exact on-disk formats (REFER
pickles + COCO instances, Flickr30k Entities Sentences/Annotations, Visual Genome JSON).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

from adapter_files import (  # noqa: E402
    write_flickr,
    write_mg_splits,
    write_refclef,
    write_refcoco,
    write_vg,
)

from groundbench.evaluate import evaluate  # noqa: E402
from groundbench.protocol import list_protocols, load_protocol  # noqa: E402

REAL = [name for name in list_protocols() if not name.startswith("synth_")]


def _write_root(protocol, root: Path) -> Path:
    dataset = protocol.dataset
    options = dict(dataset.options or {})
    if dataset.adapter == "refcoco" and options["dataset"] == "refclef":
        return write_refclef(root)
    if dataset.adapter == "refcoco":
        return write_refcoco(root, options["dataset"], options["split_by"])
    if dataset.adapter == "flickr30k_entities":
        return write_flickr(root)
    if dataset.adapter == "visual_genome":
        write_vg(root)
        write_mg_splits(root / options["test_image_ids"], train={3}, test={1, 2})
        return root
    raise AssertionError(f"no fixture for adapter {dataset.adapter!r}")


def test_every_adapter_has_a_shipped_protocol():
    adapters = {load_protocol(name).dataset.adapter for name in REAL}
    assert adapters == {"refcoco", "flickr30k_entities", "visual_genome"}


@pytest.mark.parametrize("name", REAL)
def test_shipped_protocol_runs_on_a_standard_root(name, tmp_path):
    protocol = load_protocol(name)
    root = _write_root(protocol, tmp_path / "data")
    result = evaluate(
        protocol, "centre_prior", out_dir=tmp_path / "report", data_root=root, progress=False
    )
    report = result.report
    assert report["protocol"]["id"] == protocol.id
    assert report["dataset"]["split"] == protocol.dataset.split
    assert report["dataset"]["n_samples"] >= 1
    assert (tmp_path / "report" / "samples.csv").is_file()
