"""The HTML board in headless Chromium: tables and charts render, and header clicks sort."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from groundbench.leaderboard import build_board

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (Debian package `chromium`; .ci/run installs it)",
)

BAR_RGB = (0x4C, 0x72, 0xB0)  # html._BAR, the chart bars
HEADER_RGB = (0xF6, 0xF8, 0xFA)  # table header background

# Appended after the page's own script: clicks headers of the first table, records row order.
_SORT_PROBE = """<script>
const t=document.querySelector('table.sortable'), th=t.tHead.rows[0].cells;
const order=()=>Array.from(t.tBodies[0].rows).map(r=>r.cells[1].textContent);
const out={initial:order()};
th[1].click(); out.method_asc=order(); out.method_aria=th[1].getAttribute('aria-sort');
th[3].click(); out.score_asc=order();
th[3].click(); out.score_desc=order(); out.score_aria=th[3].getAttribute('aria-sort');
th[1].click(); out.final=order();
const pre=document.createElement('pre'); pre.id='sort-result'; pre.textContent=JSON.stringify(out);
document.body.append(pre);
</script>"""


def _load_helpers():
    path = Path(__file__).resolve().parents[1] / "unit" / "leaderboard" / "leaderboard_reports.py"
    spec = importlib.util.spec_from_file_location("leaderboard_reports", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--window-size=1100,1500",
        *args,
        page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lb_html")
    board = _load_helpers().populate_board(root)
    return build_board(board).html


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _count(pixels: np.ndarray, rgb: tuple[int, int, int]) -> int:
    return int((np.abs(pixels.astype(int) - rgb).sum(axis=-1) <= 6).sum())


def test_table_and_charts_render(page, tmp_path):
    shot = tmp_path / "board.png"
    _chromium(page, tmp_path / "profile", f"--screenshot={shot}")
    pixels = _pixels(shot)
    assert pixels.shape[:2] == (1500, 1100)
    assert _count(pixels, HEADER_RGB) > 2000, "no table header on the screenshot"
    assert _count(pixels, BAR_RGB) > 2000, "no chart bars on the screenshot"


def test_clicking_a_header_sorts(page, tmp_path):
    sorted_page = tmp_path / "sorted.html"
    sorted_page.write_text(page.read_text().replace("</body>", _SORT_PROBE + "</body>"))
    dom = _chromium(sorted_page, tmp_path / "profile", "--dump-dom").stdout
    match = re.search(r'<pre id="sort-result">(.*?)</pre>', dom)
    assert match, "the sort probe did not run"
    result = json.loads(match.group(1).replace("&quot;", '"'))
    assert result["initial"] == ["model", "centre_prior"]  # ranked by pointing
    assert result["method_asc"] == ["centre_prior", "model"]
    assert result["method_aria"] == "ascending"
    assert result["score_asc"] == ["centre_prior", "model"]  # 0.300 < 0.750
    assert result["score_desc"] == ["model", "centre_prior"]
    assert result["score_aria"] == "descending"
    assert result["final"] == ["centre_prior", "model"]  # a fresh column starts ascending
    # the re-sorted first table shows on the screenshot (the probe's output is below the fold)
    before, after = tmp_path / "before.png", tmp_path / "after.png"
    _chromium(page, tmp_path / "profile", f"--screenshot={before}")
    _chromium(sorted_page, tmp_path / "profile", f"--screenshot={after}")
    assert not np.array_equal(_pixels(before)[:600], _pixels(after)[:600])
