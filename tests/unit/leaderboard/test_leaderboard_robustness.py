"""The methods × probes matrix: family matching, probe labels, drops, figure."""

from __future__ import annotations

import numpy as np
import pytest
from leaderboard_reports import canonical_protocol, write_report
from PIL import Image

from groundbench.leaderboard import add_entry, load_entries, robustness_matrices
from groundbench.leaderboard.robustness import (
    family_key,
    plot_robustness,
    pointing_variant,
    probe_label,
)


@pytest.mark.parametrize(
    ("canonical", "label"),
    [
        (canonical_protocol("test"), None),
        (canonical_protocol("relational"), "relational"),
        (canonical_protocol("test", control="blind"), "blind"),
        (canonical_protocol("test", include_tags=["small", "attribute"]), "attribute+small"),
        (canonical_protocol("occlusion", include_tags=["small"]), "occlusion+small"),
        (canonical_protocol("val"), None),
        (canonical_protocol("val", include_tags=["small"]), None),
    ],
)
def test_probe_label(canonical, label):
    assert probe_label(canonical, "test") == label


def test_family_ignores_split_select_control_only():
    base = family_key(canonical_protocol("test"))
    assert family_key(canonical_protocol("small", control="blind", include_tags=["x"])) == base
    assert family_key(canonical_protocol("test", smooth_px=2.0)) != base
    assert family_key(canonical_protocol("test", variant="mg")) != base
    assert pointing_variant(canonical_protocol("test", variant="mg")) == "mg"


def test_matrix_matches_methods_by_fingerprint(board):
    entries = load_entries(board)
    (m,) = robustness_matrices(entries)
    assert (m.dataset, m.variant, m.metric) == ("synth", "albef", "pointing[albef]")
    assert m.probes == ("compositional", "blind")
    assert [name for _, name in m.methods] == ["centre_prior", "model"]
    by = {(e.method_fingerprint, e.protocol_name): e for e in entries}
    for fp, _ in m.methods:
        ref = by[(fp, "synth_test.albef")].aggregate("pointing[albef]")["mean"]
        assert m.reference_means[fp] == ref
        for probe, name in [
            ("compositional", "synth_compositional.albef"),
            ("blind", "synth_test_blind.albef"),
        ]:
            cell = m.cells[(fp, probe)]
            assert cell.mean == by[(fp, name)].aggregate("pointing[albef]")["mean"]
            assert cell.drop == pytest.approx(cell.mean - ref)
            assert cell.protocol_id == by[(fp, name)].protocol_id


def test_method_without_reference_or_probe(tmp_path):
    board = tmp_path / "board"
    values = {"pointing": [1.0, 0.0, 1.0, 0.0]}
    add_entry(write_report(tmp_path / "a", values, method="a"), board)
    add_entry(
        write_report(
            tmp_path / "b",
            {"pointing": [1.0, 1, 1, 0]},
            method="b",
            canonical=canonical_protocol("small"),
            name="synth_small.albef",
        ),
        board,
    )
    (m,) = robustness_matrices(load_entries(board))
    fp_b = next(fp for fp, name in m.methods if name == "b")
    assert m.cells[(fp_b, "small")].drop is None and m.cells[(fp_b, "small")].mean == 0.75
    assert fp_b not in m.reference_means
    fp_a = next(fp for fp, name in m.methods if name == "a")
    assert (fp_a, "small") not in m.cells


def test_no_matrix_without_probes(tmp_path):
    board = tmp_path / "board"
    add_entry(write_report(tmp_path / "a", {"pointing": [1.0, 0.0]}), board)
    assert robustness_matrices(load_entries(board)) == []


def test_figure_is_written(board, tmp_path):
    path = plot_robustness(robustness_matrices(load_entries(board)), tmp_path / "r.png")
    with Image.open(path) as im:
        assert im.width > 200 and im.height > 100
        pixels = np.asarray(im.convert("RGB")).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 10  # not blank


def test_two_probes_with_one_label_stay_apart(tmp_path):
    board = tmp_path / "board"
    add_entry(write_report(tmp_path / "ref", {"pointing": [1.0, 0.0]}), board)
    for i, tags in enumerate((["small"], ["small", "attribute"])):
        canonical = canonical_protocol("small", include_tags=tags[:1])
        canonical["select"]["min_area_fraction"] = 0.01 * i  # same label, different protocol
        add_entry(
            write_report(
                tmp_path / f"p{i}",
                {"pointing": [1.0, 1.0]},
                canonical=canonical,
                name=f"synth_small{i}.albef",
            ),
            board,
        )
    (m,) = robustness_matrices(load_entries(board))
    assert len(m.probes) == 2 and all(p.startswith("small+small (") for p in m.probes)


def test_ambiguous_reference_is_skipped_with_a_warning(tmp_path, caplog):
    board = tmp_path / "board"
    for i in range(2):
        canonical = canonical_protocol("test")
        canonical["select"]["exclude_tags"] = ["x"] * i
        add_entry(
            write_report(tmp_path / f"r{i}", {"pointing": [1.0, 0.0]}, canonical=canonical), board
        )
    add_entry(
        write_report(
            tmp_path / "p", {"pointing": [1.0, 1.0]}, canonical=canonical_protocol("small")
        ),
        board,
    )
    assert robustness_matrices(load_entries(board)) == []
    assert "all look in-distribution for one family; skipping it" in caplog.text


def test_figure_says_difference_and_has_a_colour_bar(board):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from groundbench.leaderboard.robustness import _draw

    fig, ax = plt.subplots()
    try:
        _draw(ax, robustness_matrices(load_entries(board))[0])
        title = ax.get_title()
        colour_bars = [a for a in fig.axes if a is not ax]
        assert len(colour_bars) == 1
        assert "difference" in colour_bars[0].get_ylabel()
    finally:
        plt.close(fig)
    assert "difference from" in title and "drop" not in title


def test_a_development_split_is_no_probe(tmp_path):
    from leaderboard_reports import write_report as write

    from groundbench.leaderboard.tables import protocol_tables, table_heading

    board = tmp_path / "board"
    for name, canonical in [
        ("synth_test.albef", canonical_protocol("test")),
        ("synth_small.albef", canonical_protocol("small")),
        ("synth_val.albef", canonical_protocol("val")),
    ]:
        run = write(tmp_path / name, {"pointing": [1.0, 0.0] * 5}, canonical=canonical, name=name)
        add_entry(run, board)
    entries = load_entries(board)
    (m,) = robustness_matrices(entries)
    assert m.probes == ("small",)
    headings = [table_heading(t) for t in protocol_tables(entries)]
    assert headings[-1].startswith("synth_val.albef ·")
    assert headings[-1].endswith("split `val` (development split)")


def test_the_blind_control_stands_apart_with_its_own_colour_direction(board):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from groundbench.leaderboard.build import render_markdown
    from groundbench.leaderboard.html import _drop_colour, render_html
    from groundbench.leaderboard.robustness import _draw
    from groundbench.leaderboard.tables import protocol_tables

    entries = load_entries(board)
    (m,) = robustness_matrices(entries)
    assert m.controls == ("blind",) and m.shifts == ("compositional",)
    # a drop on a probe is red (bad); the same drop on the control is green (good)
    assert _drop_colour(-0.3) == "rgb(255,135,135)"
    assert _drop_colour(-0.3, control=True) == "rgb(135,255,135)"
    assert _drop_colour(0.3, control=True) == "rgb(255,135,255)"
    tables = protocol_tables(entries)
    html = render_html(tables, [m], n_entries=len(entries))
    assert "blind (control)" in html and "rgb(135,255,135)" in html
    md = render_markdown(tables, [m], n_entries=len(entries))
    assert "| method | in-distribution | compositional | blind (control) |" in md
    fig, ax = plt.subplots()
    try:
        _draw(ax, m, controls=True)
        assert [t.get_text() for t in ax.get_xticklabels()] == ["blind"]
        assert "a drop is good" in ax.get_title()
        assert ax.images[0].get_cmap().name == "PiYG_r"
    finally:
        plt.close(fig)
    path = plot_robustness([m], tmp_png := board.parent / "robustness.png")
    with Image.open(path) as im:
        assert im.size[0] > 600
    tmp_png.unlink()
