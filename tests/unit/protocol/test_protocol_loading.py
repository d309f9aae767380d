"""Loading protocols: duplicate keys, unknown keys, extends, presets, overrides, refusals."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

import pytest

from groundbench.errors import ProtocolError
from groundbench.protocol import list_protocols, load_protocol, protocol_from_mapping

BASE = """\
schema: 1
about: a small test protocol
dataset: {adapter: native, name: synth, split: test}
metrics:
  - {name: pointing, variant: albef}
  - {name: box_acc, iou: 0.5}
"""


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def error_of(path: Path | str, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ProtocolError) as info:
        load_protocol(str(path), overrides)
    return str(info.value)


def test_minimal_protocol_fills_every_default(tmp_path):
    p = load_protocol(str(write(tmp_path, BASE)))
    c = p.canonical
    assert p.name == "p" and p.about == "a small test protocol"
    assert c["select"] == {"include_tags": [], "exclude_tags": [], "min_area_fraction": 0.0}
    assert (c["resolution"], c["region"], c["control"]) == ("image", "boxes", None)
    assert c["bootstrap"] == {"resamples": 1000, "seed": 0, "cluster": None}
    assert c["pipeline"]["threshold"] == {"method": "fraction_of_max", "value": 0.5}
    assert c["metrics"] == [
        {
            "name": "pointing",
            "variant": "albef",
            "tolerance_px": 0.0,
            "coords": "index",
            "ties": "first",
            "box_convention": "xyxy",
        },
        {"name": "box_acc", "iou": 0.5},
    ]
    assert "about" not in c
    assert p.dataset.options == {} and p.select.include_tags == ()
    assert len(p.id) == 12 and p.hash.startswith(p.id)


def test_protocol_is_frozen_and_pickles(tmp_path):
    p = load_protocol(str(write(tmp_path, BASE)))
    p.canonical["region"] = "mask"
    p.pipeline["normalise"] = "none"
    assert p.canonical["region"] == "boxes" and p.pipeline["normalise"] == "minmax"
    with pytest.raises(AttributeError):
        p.region = "mask"
    again = pickle.loads(pickle.dumps(p))
    assert again.hash == p.hash and again.canonical == p.canonical


def test_duplicate_key_names_file_and_lines(tmp_path):
    path = write(tmp_path, BASE + "region: boxes\nregion: mask\n")
    assert error_of(path) == (
        f"{path}:8: duplicate key 'region' (first at line 7); remove one of them"
    )


def test_duplicate_nested_key(tmp_path):
    path = write(tmp_path, BASE + "pipeline:\n  normalise: minmax\n  normalise: none\n")
    assert error_of(path) == (
        f"{path}:9: duplicate key 'normalise' (first at line 8); remove one of them"
    )


def test_python_tags_are_refused(tmp_path):
    path = write(tmp_path, BASE + "region: !!python/object/apply:os.system ['true']\n")
    assert error_of(path).startswith(f"{path}: not valid protocol YAML: could not determine")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "regoin: boxes\n",
            "unknown key regoin; valid keys at the top level: schema, about, dataset, select, "
            "resolution, region, pipeline, metrics, bootstrap, control, proposals, split_metrics; "
            "did you mean "
            "'region'?",
        ),
        (
            "select: {include_tag: [small]}\n",
            "unknown key select.include_tag; valid keys under select: include_tags, "
            "exclude_tags, min_area_fraction; did you mean 'include_tags'?",
        ),
        (
            "pipeline: {threshold: {methd: otsu}}\n",
            "unknown key pipeline.threshold.methd; valid keys under pipeline.threshold: "
            "method, value; did you mean 'method'?",
        ),
        (
            "bootstrap: {resample: 10}\n",
            "unknown key bootstrap.resample; valid keys under bootstrap: resamples, seed, cluster; "
            "did you mean 'resamples'?",
        ),
    ],
)
def test_unknown_keys_at_every_depth(tmp_path, extra, message):
    path = write(tmp_path, BASE + extra)
    assert error_of(path) == f"{path}: {message}"


def test_unknown_metric_parameter_names_the_list_index(tmp_path):
    path = write(
        tmp_path,
        BASE.replace("{name: box_acc, iou: 0.5}", "{name: box_acc, iuo: 0.5}"),
    )
    assert error_of(path) == (
        f"{path}: unknown key metrics.1.iuo; valid keys under metrics.1: name, iou; "
        "did you mean 'iou'?"
    )


def test_unknown_dataset_option(tmp_path):
    path = write(
        tmp_path,
        BASE.replace(
            "{adapter: native, name: synth, split: test}",
            "{adapter: refcoco, split: val, options: {dataset: refcoco, split_bi: unc}}",
        ),
    )
    assert error_of(path) == (
        f"{path}: unknown key dataset.options.split_bi; valid keys under dataset.options: "
        "dataset, split_by, image_dir, image_list; did you mean 'split_by'?"
    )


def test_unknown_metric_and_bad_variant(tmp_path):
    path = write(tmp_path, BASE.replace("name: box_acc, iou: 0.5", "name: box_accuracy"))
    assert error_of(path) == (
        f"unknown metrics 'box_accuracy' (asked for by {path} metrics.1.name); did you mean "
        "'box_acc'? Valid names: auc, box_acc, box_iou, cc, kl, miou, nss, pointing, "
        "proposal_rank, rank_acc, sim, soft_iou, spearman."
    )
    path = write(tmp_path, BASE.replace("variant: albef", "variant: albeff"))
    assert error_of(path) == (
        f"{path}: metrics.0.variant: unknown value 'albeff'; valid values: None, "
        "'zhang2016', 'mg', 'albef'"
    )


def test_duplicate_metric_columns_are_refused(tmp_path):
    path = write(tmp_path, BASE + "  - {name: box_acc}\n")
    assert error_of(path) == (
        f"{path}: metrics.2 repeats metrics.1 (both report as 'box_acc@0.5'); remove one"
    )


def test_box_metric_without_regions_step(tmp_path):
    path = write(tmp_path, BASE + "pipeline: {regions: null}\n")
    assert error_of(path) == (
        f"{path}: metrics.1: metric 'box_acc' reads the predicted box, but pipeline.regions "
        "is null; set a regions rule or drop the metric"
    )


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        ("device: cuda\n", "--device"),
        ("batch_size: 8\n", "--batch-size"),
        ("num_workers: 2\n", "--num-workers"),
        ("out_dir: reports\n", "--out"),
        ("data_root: /data\n", "--data-root"),
    ],
)
def test_operational_settings_are_refused(tmp_path, extra, flag):
    path = write(tmp_path, BASE + extra)
    key = extra.split(":")[0]
    assert error_of(path) == (
        f"{path}: {key} is an operational setting, not part of a protocol (it cannot change a "
        f"number and is never hashed); remove it and use the CLI flag {flag}"
    )


def test_dataset_root_is_refused(tmp_path):
    path = write(tmp_path, BASE.replace("split: test}", "split: test, root: /data/synth}"))
    assert error_of(path) == (
        f"{path}: dataset.root is an operational setting, not part of a protocol (it cannot "
        "change a number and is never hashed); remove it and use the CLI flag --data-root"
    )


def test_extends_deep_merges_one_level(tmp_path):
    write(tmp_path, BASE + "pipeline: {smooth: {sigma_px: 2}, normalise: none}\n", "_base.yaml")
    child = write(
        tmp_path,
        "extends: _base.yaml\nabout: child\npipeline: {smooth: {sigma_px: 3}}\n",
        "child.yaml",
    )
    p = load_protocol(str(child))
    assert p.about == "child"
    assert p.pipeline["smooth"] == {"sigma_px": 3.0}
    assert p.pipeline["normalise"] == "none"  # kept from the base by the deep merge
    assert [m["name"] for m in p.metrics] == ["pointing", "box_acc"]


def test_extends_is_one_level_only(tmp_path):
    write(tmp_path, BASE, "_a.yaml")
    write(tmp_path, "extends: _a.yaml\n", "_b.yaml")
    child = write(tmp_path, "extends: _b.yaml\n", "c.yaml")
    assert error_of(child) == (
        f"{child} -> extends _b.yaml: a base protocol cannot extend another (one level only); "
        "merge the two bases into one file"
    )


def test_mg_preset_is_made_explicit(tmp_path):
    implicit = write(tmp_path, BASE.replace("albef", "mg"), "implicit.yaml")
    explicit = write(
        tmp_path,
        BASE.replace("albef", "mg")
        + "select: {exclude_tags: [notvisual], min_area_fraction: 0.05}\n",
        "explicit.yaml",
    )
    a, b = load_protocol(str(implicit)), load_protocol(str(explicit))
    assert a.canonical["select"] == {
        "include_tags": [],
        "exclude_tags": ["notvisual"],
        "min_area_fraction": 0.05,
    }
    assert a.hash == b.hash
    # written keys win over the preset
    c = load_protocol(str(implicit), ["select.min_area_fraction=0.1"])
    assert c.select.min_area_fraction == 0.1 and c.select.exclude_tags == ("notvisual",)


def test_overrides_change_the_hash_and_parse_as_yaml(tmp_path):
    path = str(write(tmp_path, BASE))
    plain = load_protocol(path)
    p = load_protocol(path, ["pipeline.smooth.sigma_px=4", "metrics.1.iou=0.3", "control=blind"])
    assert p.pipeline["smooth"] == {"sigma_px": 4.0}
    assert p.metrics[1] == {"name": "box_acc", "iou": 0.3}
    assert p.control == "blind" and p.hash != plain.hash
    same = load_protocol(
        path, ["pipeline.smooth.sigma_px=4.0", "metrics.1.iou=0.3", "control=blind"]
    )
    assert same.hash == p.hash
    assert load_protocol(path, ["resolution=[224, 224]"]).resolution == (224, 224)
    capped = load_protocol(path, ["resolution={max_side: 1024}"])
    assert capped.canonical["resolution"] == {"max_side": 1024} and capped.hash != plain.hash
    assert capped.evaluation_size(3000, 4000) == (768, 1024)
    assert capped.evaluation_size(4000, 3) == (1024, 1)  # the short side keeps one pixel
    assert capped.evaluation_size(1000, 1024) == (1000, 1024)  # never enlarged


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "pipeline.smooth.sigm=4",
            "unknown key pipeline.smooth.sigm; valid keys under pipeline.smooth: sigma_px; "
            "did you mean 'sigma_px'?",
        ),
        ("metrics.5.iou=0.3", None),
        ("region.x=1", None),
        ("no_equals_sign", None),
    ],
)
def test_bad_override_paths(tmp_path, override, message):
    path = write(tmp_path, BASE + "region: boxes\n")
    got = error_of(path, (override,))
    expected = {
        "metrics.5.iou=0.3": f"{path}: override 'metrics.5.iou=0.3': metrics is a list of 2 "
        "items; use an index 0..1 at metrics.5",
        "no_equals_sign": f"{path}: override 'no_equals_sign' is not KEY.PATH=VALUE, e.g. "
        "pipeline.smooth.sigma_px=4",
        "region.x=1": f"{path}: override 'region.x=1': region is 'boxes', not a mapping, so it "
        "has no key 'x'",
    }
    if message is not None:
        assert got == f"{path} (with --set {override}): {message}"
    else:
        assert got == expected[override]


def test_wrong_values(tmp_path):
    path = write(tmp_path, BASE + "select: {min_area_fraction: 1.5}\n")
    assert error_of(path) == (
        f"{path}: select.min_area_fraction: 1.5 is out of range; use a value in [0, 1)"
    )
    path = write(tmp_path, BASE + "resolution: [0, 224]\n")
    assert error_of(path) == (
        f"{path}: resolution must be 'image', [height, width] in positive pixels or "
        "{max_side: N}, got [0, 224]"
    )
    path = write(tmp_path, BASE + "resolution: {max_side: 0}\n")
    assert error_of(path) == f"{path}: resolution.max_side must be an integer >= 1, got 0"
    path = write(tmp_path, BASE + "resolution: {max_sid: 1024}\n")
    assert error_of(path).startswith(
        f"{path}: unknown key resolution.max_sid; valid keys under resolution: max_side"
    )
    path = write(tmp_path, BASE + "control: deaf\n")
    assert error_of(path) == f"{path}: control: 'deaf' is not a valid value; valid values: blind"
    path = write(tmp_path, BASE.replace("schema: 1", "schema: 2"))
    assert error_of(path) == (
        f"{path}: schema must be 1 (this groundbench reads protocol schema 1), got 2"
    )


def test_unknown_shipped_name():
    assert error_of("synth_tst.albef") == (
        "unknown protocol 'synth_tst.albef'; did you mean 'synth_test.albef', "
        "'synth_small.albef', 'synth_val.albef'? Give a shipped name (groundbench protocols "
        "list) or a path to a .yaml file."
    )


def test_every_shipped_protocol_loads():
    names = list_protocols()
    assert len(names) == 42 and not any(n.startswith("_") for n in names)
    for name in names:
        p = load_protocol(name)
        if name.endswith((".rank", ".rank_gt")):  # region ranking: its own metrics
            rule = ">" if name.endswith("_gt") else ">="
            assert [(m["name"], m["rule"]) for m in p.metrics] == [
                ("rank_acc", rule),
                ("proposal_rank", rule),
            ]
            assert (p.proposals == "gt") == name.endswith("_gt"), name
            continue
        keys = [m.get("variant") for m in p.metrics if m["name"] == "pointing"]
        if name.endswith(".wsol"):  # synth_test.albef's metrics plus MaxBoxAccV2 on val
            assert keys == ["albef"] and p.split_metrics["maxboxacc"]["calibration_split"]
        else:
            assert name.rsplit(".", 1)[1] in keys or name.endswith(".blind"), name
        assert {m["name"] for m in p.metrics} >= {"box_acc", "miou", "soft_iou", "auc", "nss"}


def test_shipped_lineage_protocols_use_their_codes_rule():
    for name in list_protocols():
        p = load_protocol(name)
        for m in p.metrics:
            if m["name"] == "pointing" and m["variant"] in ("mg", "albef"):
                assert (m["coords"], m["ties"]) == ("index", "first"), name
        if name.startswith("synth_") and not name.endswith(".zhang2016"):
            # 15 px is a quarter of a 64 px image: not shipped as a second grounding score
            assert all(m.get("tolerance_px", 0) == 0 for m in p.metrics), name
    flickr = [m for m in load_protocol("flickr30k_test.mg").metrics if m.get("variant") == "mg"]
    assert flickr[0]["box_convention"] == "corners_1based"
    flickr = [m for m in load_protocol("flickr30k_test.albef").metrics if m.get("variant")]
    assert flickr[0]["box_convention"] == "corners_0based"


def test_protocol_from_mapping_matches_the_file(tmp_path):
    import yaml

    path = write(tmp_path, BASE)
    assert protocol_from_mapping(yaml.safe_load(BASE)).hash == load_protocol(str(path)).hash


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            # used to fail only after every sample was scored, in the bootstrap
            "bootstrap: {resamples: 100000000000000000000}\n",
            "bootstrap.resamples: 100000000000000000000 is too large; use at most 1000000",
        ),
        (
            # used to try to allocate 160 GB while upsampling the first batch
            "resolution: [100000, 100000]\n",
            "resolution [100000, 100000] is too large; each side must be at most 8192 pixels",
        ),
    ],
)
def test_settings_that_cannot_fit_in_memory_are_refused_at_load(tmp_path, extra, message):
    path = write(tmp_path, BASE + extra)
    assert error_of(path) == f"{path}: {message}"


def test_a_huge_pointing_tolerance_is_refused_without_running_the_metric(tmp_path):
    path = write(
        tmp_path,
        BASE.replace("{name: box_acc, iou: 0.5}", "{name: pointing, tolerance_px: 1000000}"),
    )
    assert error_of(path) == (
        f"{path}: metrics.1.tolerance_px: 1000000.0 is out of range; use a distance in pixels "
        "in [0, 4096]"
    )


def test_bootstrap_cluster_is_image_or_null_and_part_of_the_hash(tmp_path):
    plain = load_protocol(str(write(tmp_path, BASE)))
    clustered = load_protocol(
        str(write(tmp_path, BASE + "bootstrap: {cluster: image}\n", "c.yaml"))
    )
    assert plain.bootstrap.cluster is None and clustered.bootstrap.cluster == "image"
    assert clustered.canonical["bootstrap"] == {"resamples": 1000, "seed": 0, "cluster": "image"}
    assert clustered.hash != plain.hash
    path = write(tmp_path, BASE + "bootstrap: {cluster: images}\n", "d.yaml")
    assert error_of(path) == (
        f"{path}: bootstrap.cluster: 'images' is not a valid value; valid values: image; "
        "did you mean 'image'?"
    )


def test_on_size_mismatch_is_refuse_or_undefined_and_part_of_the_hash(tmp_path):
    plain = load_protocol(str(write(tmp_path, BASE)))
    said = BASE.replace("split: test}", "split: test, on_size_mismatch: refuse}")
    refuse = load_protocol(str(write(tmp_path, said, "r.yaml")))
    lenient = load_protocol(str(write(tmp_path, BASE)), ["dataset.on_size_mismatch=undefined"])
    assert plain.dataset.on_size_mismatch == refuse.dataset.on_size_mismatch == "refuse"
    assert "on_size_mismatch" not in plain.canonical["dataset"]  # shipped hashes hold
    assert refuse.hash == plain.hash
    assert lenient.dataset.on_size_mismatch == "undefined"
    assert lenient.canonical["dataset"]["on_size_mismatch"] == "undefined"
    assert lenient.hash != plain.hash
    path = write(tmp_path, BASE)
    assert error_of(path, ("dataset.on_size_mismatch=skip",)) == (
        f"{path} (with --set dataset.on_size_mismatch=skip): dataset.on_size_mismatch: 'skip' "
        "is not a valid value; valid values: refuse, undefined"
    )


RANKING = BASE + "  - {name: rank_acc}\n"


def test_proposals_are_a_named_source_and_absent_when_unused(tmp_path):
    plain = load_protocol(str(write(tmp_path, BASE)))
    assert "proposals" not in plain.canonical and plain.proposals is None
    gt = load_protocol(str(write(tmp_path, RANKING + "proposals: gt\n")))
    det = load_protocol(str(write(tmp_path, RANKING + "proposals: {file: dets/a.json}\n")))
    assert gt.proposals == "gt" and det.proposals == {"file": "dets/a.json"}
    assert gt.hash != det.hash


@pytest.mark.parametrize("bad", ["detections", "{file: ../x.json}", "{file: /x.json}", "{path: x}"])
def test_bad_proposal_sources_are_refused(tmp_path, bad):
    path = write(tmp_path, RANKING + f"proposals: {bad}\n")
    assert error_of(path).startswith(
        f"{path}: proposals must be gt or {{file: NAME}} with NAME a path under the dataset root"
    )


def test_a_ranking_metric_needs_proposals(tmp_path):
    path = write(tmp_path, RANKING)
    assert error_of(path) == (
        f"{path}: metrics.2: metric 'rank_acc' ranks candidate boxes, but the protocol has no "
        "proposals; set proposals: {file: NAME} (a detector file) or proposals: gt"
    )
