"""The protocols and list commands."""

from __future__ import annotations

import json

from click.testing import CliRunner

from groundbench.cli import main
from groundbench.protocol import list_protocols, load_protocol


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_protocols_list_names_every_shipped_protocol():
    out = run("protocols", "list", "--json")
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [r["name"] for r in rows] == list_protocols()
    assert rows[0]["id"] == load_protocol(rows[0]["name"]).id


def test_protocols_show_and_hash_agree_with_the_library():
    p = load_protocol("synth_test.albef", ["pipeline.smooth.sigma_px=2"])
    shown = run("protocols", "show", "synth_test.albef", "--set", "pipeline.smooth.sigma_px=2")
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.output)
    assert doc["canonical"] == p.canonical and doc["hash"] == p.hash
    hashed = run("protocols", "hash", "synth_test.albef", "--set", "pipeline.smooth.sigma_px=2")
    assert hashed.output == p.hash + "\n"


def test_protocols_errors_exit_1_with_the_message():
    out = run("protocols", "hash", "synth_test.albef", "--set", "pipeline.threshold.methd=otsu")
    assert out.exit_code == 1
    assert (
        "unknown key pipeline.threshold.methd; valid keys under pipeline.threshold: " in out.output
    )


def test_list_commands():
    for what, expected in [
        ("metrics", "box_acc    params: iou=0.5"),
        ("methods", "uniform"),
        ("adapters", "refcoco"),
        ("steps", "upsample   pipeline.upsample"),
    ]:
        out = run("list", what)
        assert out.exit_code == 0, out.output
        assert expected in out.output, (what, out.output)
