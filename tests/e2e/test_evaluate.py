"""End-to-end ``groundbench evaluate`` on a tiny synthetic dataset.

Covers the guarantees of the command: a complete report directory, byte-for-byte
reproducibility whatever the batch size, resume after SIGKILL without recomputing finished
samples, and clear failures on bad input.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from groundbench.cli import main
from groundbench.synthetic import PROBE_SPLITS, generate

pytestmark = pytest.mark.slow

PROTOCOL = """\
schema: 1
about: tiny end-to-end protocol
dataset: {adapter: native, name: synth-tiny, split: test}
region: boxes
pipeline:
  normalise: minmax
  upsample: {mode: bilinear}
  threshold: {method: fraction_of_max, value: 0.5}
  regions: largest_component
metrics:
  - {name: pointing, variant: albef}
  - {name: box_acc, iou: 0.5}
  - {name: soft_iou}
bootstrap: {resamples: 200, seed: 0}
"""

# A plugin method whose maps depend only on the sample id; it logs the ids of every call (one
# line per call) and can be slowed down so that a run can be killed part-way.
PLUGIN = '''\
"""Deterministic per-id bumps, for the end-to-end tests."""
import os
import time
import zlib

import torch

from groundbench.types import RawMaps


def bumps(samples, images):
    time.sleep(float(os.environ.get("BUMPS_SLEEP_S", "0")))
    with open(os.environ["BUMPS_LOG"], "a", encoding="utf-8") as f:
        f.write(" ".join(s.id for s in samples) + "\\n")
    maps = []
    for s in samples:
        c = zlib.crc32(s.id.encode())
        y0, x0 = (c % 13) / 13.0, (c // 13 % 13) / 13.0
        ys = torch.linspace(0, 1, 16)[:, None]
        xs = torch.linspace(0, 1, 16)[None, :]
        maps.append(torch.exp(-((ys - y0) ** 2 + (xs - x0) ** 2) / 0.02))
    return RawMaps(ids=tuple(s.id for s in samples), maps=tuple(maps))


bumps.supervision = "training-free"
bumps.needs_images = False
bumps.depends_on = []  # no weights: the code is everything the maps depend on


def nan_maps(samples, images):
    maps = tuple(torch.full((8, 8), float("nan")) for _ in samples)
    return RawMaps(ids=tuple(s.id for s in samples), maps=maps)


nan_maps.supervision = "training-free"
nan_maps.needs_images = False
nan_maps.depends_on = []
'''


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict[str, Path]:
    """A 16-sample synthetic test split, a protocol file and a plugin module."""
    root = tmp_path_factory.mktemp("evaluate")
    scenes = {"train": 1, "val": 1, "test": 6} | {name: 1 for name in PROBE_SPLITS}
    data = generate(root / "synth", {"scenes": scenes}, seed=0, progress=False)
    (root / "tiny.yaml").write_text(PROTOCOL, encoding="utf-8")
    plugins = root / "plugins"
    plugins.mkdir()
    (plugins / "gb_e2e_bumps.py").write_text(PLUGIN, encoding="utf-8")
    return {"root": root, "data": data, "protocol": root / "tiny.yaml", "plugins": plugins}


def _cli(ws, out: Path, method: str, *extra: str):
    args = ["evaluate", "--protocol", str(ws["protocol"]), "--method", method]
    args += ["--out", str(out), "--data-root", str(ws["data"]), *extra]
    return CliRunner().invoke(main, args, catch_exceptions=False)


def _subprocess(ws, out: Path, method: str, log: Path, sleep_s: float = 0.0, *extra: str):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ws["plugins"]), os.environ.get("PYTHONPATH", "")]),
        "BUMPS_LOG": str(log),
        "BUMPS_SLEEP_S": str(sleep_s),
        "OMP_NUM_THREADS": "1",
    }
    cmd = [sys.executable, "-m", "groundbench", "evaluate", "--protocol", str(ws["protocol"])]
    cmd += ["--method", method, "--out", str(out), "--data-root", str(ws["data"]), *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _semantic(report_dir: Path) -> dict:
    """report.json without the operational environment block (time, batch size, workers)."""
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    report.pop("environment")
    return report


def test_report_directory_is_complete_and_consistent(workspace, tmp_path):
    out = tmp_path / "centre"
    result = _cli(workspace, out, "centre_prior:0.25", "--batch-size", "5")
    assert result.exit_code == 0, result.output

    assert sorted(p.name for p in out.iterdir()) == [
        "figures",
        "report.json",
        "report.md",
        "samples.csv",
    ]
    assert not (tmp_path / "centre.partial").exists()
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["schema"] == 1
    assert report["dataset"]["n_samples"] == report["samples"]["n"] == 16
    assert report["method"]["name"] == "centre_prior"
    assert report["method"]["supervision"] == "training-free"
    assert len(report["protocol"]["hash"]) == 64
    assert report["protocol"]["id"] == report["protocol"]["hash"][:12]
    assert set(report["metrics"]) == {"pointing[albef]", "box_acc@0.5", "soft_iou"}
    for by_tag in report["metrics"].values():
        assert by_tag["all"]["n"] == 16
        assert {"relational", "small"} <= set(by_tag)
        assert by_tag["all"]["ci_low"] <= by_tag["all"]["mean"] <= by_tag["all"]["ci_high"]

    import hashlib

    csv_bytes = (out / "samples.csv").read_bytes()
    assert hashlib.sha256(csv_bytes).hexdigest() == report["samples"]["sha256"]
    header, *rows = csv_bytes.decode().splitlines()
    assert header.split(",")[:3] == ["id", "tags", "pointing[albef]"]
    ids = [row.split(",")[0] for row in rows]
    assert ids == sorted(ids) and len(ids) == 16

    # the headline table goes to stdout, one line per metric and tag
    assert "pointing[albef]  tag=all  n=16" in result.output
    assert "pointing[albef]  tag=all  n=16" in (out / "report.md").read_text(encoding="utf-8")
    pngs = sorted((out / "figures").glob("*.png"))
    assert any(p.name == "gallery.png" for p in pngs) and len(pngs) >= 2
    for png in pngs:
        with Image.open(png) as im:
            assert im.size[0] > 100 and im.size[1] > 100


def test_same_bytes_whatever_the_batch_size(workspace, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _cli(workspace, a, "random:3", "--batch-size", "16").exit_code == 0
    assert _cli(workspace, b, "random:3", "--batch-size", "3").exit_code == 0
    assert (a / "samples.csv").read_bytes() == (b / "samples.csv").read_bytes()
    assert _semantic(a) == _semantic(b)
    # a rerun over a finished report rewrites it identically
    assert _cli(workspace, a, "random:3", "--no-resume").exit_code == 0
    assert (a / "samples.csv").read_bytes() == (b / "samples.csv").read_bytes()


def test_oracle_box_reaches_the_upper_bound(workspace, tmp_path):
    out = tmp_path / "oracle"
    assert _cli(workspace, out, "oracle_box").exit_code == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["method"]["supervision"] == "box-supervised"
    assert report["metrics"]["pointing[albef]"]["all"]["mean"] == 1.0
    assert report["metrics"]["box_acc@0.5"]["all"]["mean"] == 1.0


def test_sigkill_then_resume_equals_an_uninterrupted_run(workspace, tmp_path):
    method = "plugin:gb_e2e_bumps:bumps"
    full = _subprocess(workspace, tmp_path / "full", method, tmp_path / "full.log")
    _, err = full.communicate(timeout=300)
    assert full.returncode == 0, err.decode()[-3000:]

    out = tmp_path / "killed"
    proc = _subprocess(workspace, out, method, tmp_path / "first.log", 1.0, "--batch-size", "2")
    cache = tmp_path / "killed.partial"
    deadline = time.monotonic() + 240
    done_before: list[str] = []
    while time.monotonic() < deadline and proc.poll() is None:
        files = list(cache.glob("records.*.jsonl")) if cache.exists() else []
        lines = files[0].read_text(encoding="utf-8").splitlines(keepends=True) if files else []
        done_before = [json.loads(x)["id"] for x in lines if x.endswith("\n")]
        if len(done_before) >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not out.exists(), "a killed run must not leave a report directory"
    assert len(done_before) >= 4

    rerun = _subprocess(workspace, out, method, tmp_path / "second.log", 0.0, "--batch-size", "2")
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()[-3000:]
    calls = [line.split() for line in (tmp_path / "second.log").read_text().splitlines()]
    # batches of two are scoring; single maps are also recomputed for the gallery figure
    assert {i for ids in calls if len(ids) == 2 for i in ids}.isdisjoint(done_before)
    all_ids = set((tmp_path / "full.log").read_text(encoding="utf-8").split())
    assert all_ids - set(done_before) <= {i for ids in calls for i in ids}
    assert (out / "samples.csv").read_bytes() == (tmp_path / "full" / "samples.csv").read_bytes()
    assert _semantic(out) == _semantic(tmp_path / "full")


def test_unknown_method_is_a_clear_error(workspace, tmp_path):
    result = CliRunner().invoke(
        main,
        ["evaluate", "--protocol", str(workspace["protocol"]), "--method", "centre_prio"]
        + ["--out", str(tmp_path / "x"), "--data-root", str(workspace["data"])],
    )
    assert result.exit_code != 0
    assert "centre_prio" in result.output and "centre_prior" in result.output
    assert not (tmp_path / "x").exists()


def test_empty_selection_is_a_clear_error(workspace, tmp_path):
    result = CliRunner().invoke(
        main,
        ["evaluate", "--protocol", str(workspace["protocol"]), "--method", "uniform"]
        + ["--set", "select.include_tags=[relational, attribute]", "--out", str(tmp_path / "x")]
        + ["--data-root", str(workspace["data"])],
    )
    assert result.exit_code != 0
    assert "no sample" in result.output
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("key", "typo", "tag"),
    [("include_tags", "relationl", "relational"), ("exclude_tags", "smal", "small")],
)
def test_a_misspelt_select_tag_is_one_line_with_the_closest_tag(
    workspace, tmp_path, key, typo, tag
):
    result = CliRunner().invoke(
        main,
        ["evaluate", "--protocol", str(workspace["protocol"]), "--method", "uniform"]
        + ["--set", f"select.{key}=[{typo}]", "--out", str(tmp_path / "x")]
        + ["--data-root", str(workspace["data"])],
    )
    assert result.exit_code == 1
    (line,) = result.output.splitlines()
    assert line.startswith(
        f"Error: protocol tiny (synth-tiny/test): select.{key}: no sample carries the tag "
        f"{typo!r}; did you mean {tag!r}? (tags of the split: "
    )
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("device", "message"),
    [
        (
            "gpu",
            "--device 'gpu' is not a torch device; use cpu, cuda (or cuda:N) or mps; did you mean 'cuda'?",
        ),
        ("cuda", None),
    ],
)
def test_a_bad_or_missing_device_is_one_line(workspace, tmp_path, device, message):
    import torch

    if device == "cuda":
        if torch.cuda.is_available():
            pytest.skip("this machine has a CUDA GPU")
        message = (
            f"--device cuda: this torch ({torch.__version__}) is built without CUDA; install a "
            "CUDA build of torch (pytorch.org) or use --device cpu"
            if not torch.backends.cuda.is_built()
            else "--device cuda: torch sees no CUDA GPU here (check the driver and "
            "CUDA_VISIBLE_DEVICES); use --device cpu"
        )
    result = CliRunner().invoke(
        main,
        ["evaluate", "--protocol", str(workspace["protocol"]), "--method", "uniform"]
        + ["--device", device, "--out", str(tmp_path / "x"), "--data-root", str(workspace["data"])],
    )
    assert result.exit_code == 1
    assert result.output == f"Error: {message}\n"
    assert not (tmp_path / "x").exists()


def test_nan_maps_are_counted_undefined_not_averaged(workspace, tmp_path):
    log = tmp_path / "nan.log"
    proc = _subprocess(workspace, tmp_path / "nan", "plugin:gb_e2e_bumps:nan_maps", log)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-3000:]
    report = json.loads((tmp_path / "nan" / "report.json").read_text(encoding="utf-8"))
    for by_tag in report["metrics"].values():
        agg = by_tag["all"]
        assert agg["mean"] is None  # no defined value: no mean
        assert agg["n_defined"] == 0 and agg["undefined"] == {"nan_input": 16}
    rows = (tmp_path / "nan" / "samples.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert all(",nan_input" in row for row in rows)


def test_limited_run_is_marked_and_kept_off_the_board(workspace, tmp_path):
    out = tmp_path / "limited"
    assert _cli(workspace, out, "uniform", "--limit", "5").exit_code == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["dataset"]["limit"] == 5 and report["dataset"]["n_samples"] == 5
    assert "`--limit 5` scored only the first samples" in (out / "report.md").read_text()
    full = tmp_path / "full"
    assert _cli(workspace, full, "uniform").exit_code == 0
    assert json.loads((full / "report.json").read_text())["dataset"]["limit"] is None
    board = str(tmp_path / "board")
    refused = CliRunner().invoke(main, ["leaderboard", "add", str(out), "--board", board])
    assert refused.exit_code == 1
    assert refused.output == (
        f"Error: {out / 'report.json'}: dataset.limit is 5: the report was made with --limit 5 "
        "and scores only the first samples of the split, so it is not comparable with full "
        "runs; evaluate again without --limit and add that report\n"
    )
    assert (
        CliRunner().invoke(main, ["leaderboard", "add", str(full), "--board", board]).exit_code == 0
    )


def test_set_overrides_and_the_split_are_in_the_report_and_its_titles(workspace, tmp_path):
    out = tmp_path / "val"
    result = _cli(workspace, out, "uniform", "--set", "dataset.split=val")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["protocol"]["overrides"] == ["dataset.split=val"]
    assert report["dataset"]["split"] == "val"
    assert result.stdout.startswith(
        f"uniform on tiny --set dataset.split=val ({report['protocol']['id']}), split val, "
    )
    md = (out / "report.md").read_text(encoding="utf-8").splitlines()
    assert md[0] == "# uniform on tiny --set dataset.split=val (split val)"
    assert "  - overrides: `--set dataset.split=val`" in md
    plain = tmp_path / "plain"
    assert _cli(workspace, plain, "uniform").exit_code == 0
    assert json.loads((plain / "report.json").read_text())["protocol"]["overrides"] == []
    assert (plain / "report.md").read_text().startswith("# uniform on tiny (split test)\n")


def test_clustered_intervals_are_written_and_pass_the_board(workspace, tmp_path):
    out = tmp_path / "clustered"
    result = _cli(workspace, out, "centre_prior", "--set", "bootstrap.cluster=image")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["protocol"]["canonical"]["bootstrap"]["cluster"] == "image"
    kinds = {m: by_tag["all"]["interval"] for m, by_tag in report["metrics"].items()}
    assert kinds == {
        "pointing[albef]": "wilson_cluster",
        "box_acc@0.5": "wilson_cluster",
        "soft_iou": "cluster_bootstrap",
    }
    header, *rows = (out / "samples.csv").read_text(encoding="utf-8").splitlines()
    assert "cluster:image" in header.split(",")
    column = header.split(",").index("cluster:image")
    # 6 test scenes, each image's expressions share one id, numbered in order of first use
    assert [float(r.split(",")[column]) for r in rows] == sorted(
        float(r.split(",")[column]) for r in rows
    )
    assert len({r.split(",")[column] for r in rows}) == 6
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "samples clustered by image" in md
    board = str(tmp_path / "board")
    added = CliRunner().invoke(main, ["leaderboard", "add", str(out), "--board", board])
    assert added.exit_code == 0, added.output


def test_blind_control_reports_how_many_donors_describe_their_target(workspace, tmp_path):
    out = tmp_path / "blind"
    result = _cli(workspace, out, "uniform", "--set", "control=blind")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    control = report["dataset"]["control"]
    assert control["name"] == "blind" and isinstance(control["donors_describing_target"], int)
    k = control["donors_describing_target"]
    md = (out / "report.md").read_text(encoding="utf-8")
    assert f"  - blind control: {k} of 16 donor phrases" in md
    tagged = report["metrics"]["soft_iou"].get("blind:donor-describes-target", {"n": 0})["n"]
    assert tagged == k
    plain = tmp_path / "plain"
    assert _cli(workspace, plain, "uniform").exit_code == 0
    assert json.loads((plain / "report.json").read_text())["dataset"]["control"] is None
