"""Report figures: the gallery shows the image untinted, names its marks, and never invents a peak."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from groundbench.evaluation.gallery import _phrase_line
from groundbench.report.figures import GalleryItem, map_peak, plot_gallery, shorten
from groundbench.types import GroundingSample

YELLOW = (255, 255, 0)


def _item(heatmap, title="best pointing=1.00\n“the yellow square”"):
    image = np.zeros((40, 40, 3), np.uint8)
    image[...] = YELLOW
    return GalleryItem(image, heatmap, np.array([[5.0, 5.0, 20.0, 20.0]]), title)


def _pixels(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(int)


def _count(pixels, rgb, tolerance=4):
    return int((np.abs(pixels - rgb).sum(axis=-1) <= tolerance).sum())


def test_gallery_keeps_the_image_colours(tmp_path):
    yy, xx = np.mgrid[:40, :40]
    smooth = np.exp(-((yy - 30) ** 2 + (xx - 10) ** 2) / 50.0)
    path = plot_gallery(tmp_path / "g.png", [_item(smooth), _item(smooth)], columns=2)
    pixels = _pixels(path)
    # the untinted panels: pure yellow, as in the image (a full-image overlay tints it all)
    assert _count(pixels, YELLOW) > 2 * 0.5 * 40 * 40
    # a colour bar: a vertical strip of many distinct colours at the right edge
    right = pixels[:, int(pixels.shape[1] * 0.9) :]
    assert len({tuple(p) for p in right.reshape(-1, 3)}) > 100


def test_gallery_draws_no_peak_for_a_constant_map(tmp_path):
    constant = plot_gallery(tmp_path / "c.png", [_item(np.full((40, 40), 0.25))], columns=1)
    peaked = np.zeros((40, 40))
    peaked[0, 0] = 1.0
    marked = plot_gallery(tmp_path / "p.png", [_item(peaked)], columns=1)
    # the peak marker is white with a black outline; the constant map gets a note instead
    white = (255, 255, 255)
    corner = (slice(0, 200), slice(0, 300))
    assert _count(_pixels(marked)[corner], white, 0) > _count(_pixels(constant)[corner], white, 0)


def test_map_peak():
    hm = np.zeros((4, 5))
    hm[2, 3] = 1.0
    assert map_peak(hm) == (2, 3)
    assert map_peak(np.full((4, 5), 1 / 20)) is None  # uniform: no peak, not (0, 0)
    assert map_peak(np.array([[np.nan, 1.0], [1.0, 1.0]])) is None
    assert map_peak(np.array([[np.nan, 0.0], [2.0, 1.0]])) == (1, 0)
    assert map_peak(np.full((2, 2), np.nan)) is None


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [("the red ball", 40, "the red ball"), ("the cup next to the book", 12, "the cup nex…")],
)
def test_shorten_marks_a_cut(text, limit, expected):
    assert shorten(text, limit) == expected
    assert len(shorten(text, limit)) <= limit


def _sample(phrase, tags=frozenset()):
    return GroundingSample(
        id="synth/test/0/p0",
        image_path="/nonexistent.png",
        width=8,
        height=8,
        text=phrase,
        phrase=phrase,
        span=(0, len(phrase)),
        boxes=np.array([[0.0, 0.0, 4.0, 4.0]]),
        mask=None,
        tags=frozenset(tags),
        meta={},
    )


def test_gallery_titles_say_when_the_phrase_was_swapped():
    long = "the small cyan cross between the two large checkered squares on the left"
    assert _phrase_line(_sample("the heart")) == "“the heart”"
    assert _phrase_line(_sample(long)).endswith("…”")
    blind = _phrase_line(_sample("the yellow ring", {"blind"}))
    assert blind == "blind control, phrase swapped in: “the yellow ring”"


@pytest.mark.parametrize(("low", "high"), [(2.8, 3.1), (0.02, 6.0)])
def test_loss_curve_ticks_are_plain_numbers(tmp_path, monkeypatch, low, high):
    import matplotlib.pyplot as plt

    from groundbench.model.runlog import plot_loss_curve

    log = tmp_path / "log.csv"
    losses = np.geomspace(high, low, 30)
    log.write_text(
        "step,lr,word,loss,images_per_s\n"
        + "".join(f"{i + 1},0.001,{v},{v},100.0\n" for i, v in enumerate(losses))
    )
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    assert plot_loss_curve(log, tmp_path / "loss.png") == tmp_path / "loss.png"
    (fig,) = figures
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    shown = [float(t) for t in labels]  # plain numbers: "3.05", "0.05", not "3 × 10^0"
    assert sum(low * 0.9 <= v <= high * 1.1 for v in shown) >= 2
    assert not [t.get_text() for t in ax.get_yticklabels(minor=True) if t.get_text()]
    assert [line.get_label() for line in ax.get_lines()] == ["loss"]  # word == loss: drawn once
    plt.close(fig)


def test_loss_curve_draws_distinct_terms_chance_and_skips_empty_rows(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from groundbench.model.runlog import plot_loss_curve

    log = tmp_path / "log.csv"
    log.write_text(
        "step,lr,word,entropy,loss,images_per_s\n"
        "1,0.001,2.0,1.0,2.1,100\n2,0.001,,,,100\n3,0.001,1.5,0.5,1.55,100\n"
    )
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    plot_loss_curve(log, tmp_path / "loss.png", chance=2.5)
    (fig,) = figures
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert sorted(lines) == ["chance (2.50)", "entropy", "loss", "word"]
    assert list(lines["loss"].get_xdata()) == [1.0, 3.0]  # the row without a pair is a gap
    assert list(lines["chance (2.50)"].get_ydata()) == [2.5, 2.5]
    plt.close(fig)
