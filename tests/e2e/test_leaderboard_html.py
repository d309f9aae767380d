"""The HTML board in headless Chromium: tables render and scroll in their box, headers sort."""

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

# Appended after the page's own script: presses header buttons of the first table and of
# the robustness table, records row order, sort state and focus.
_SORT_PROBE = """<script>
const tables=document.querySelectorAll('table.sortable');
const t=tables[0], th=t.tHead.rows[0].cells, press=i=>th[i].querySelector('button').click();
const order=(tb=t)=>Array.from(tb.tBodies[0].rows).map(r=>r.cells[1].textContent);
const out={initial:order(), rank_aria:th[0].getAttribute('aria-sort')};
press(1); out.method_asc=order(); out.method_aria=th[1].getAttribute('aria-sort');
out.rank_aria_after=th[0].getAttribute('aria-sort');
press(3); out.score_first=order(); out.score_first_aria=th[3].getAttribute('aria-sort');
press(3); out.score_second=order(); out.score_aria=th[3].getAttribute('aria-sort');
press(1); out.final=order();
const buttons=Array.from(document.querySelectorAll('table.sortable th'));
out.headers_with_buttons=buttons.filter(h=>h.querySelector('button[type=button]')).length;
out.headers=buttons.length;
out.tab_stops=buttons.filter(h=>h.querySelector('button').tabIndex===0).length;
const b=th[4].querySelector('button'); b.focus(); out.focused=document.activeElement===b;
const r=tables[tables.length-1], rth=r.tHead.rows[0].cells;
const names=()=>Array.from(r.tBodies[0].rows).map(x=>x.cells[0].textContent);
out.robust_initial=names();
const col=Array.from(rth).findIndex(h=>h.textContent.startsWith('compositional'));
rth[col].querySelector('button').click(); out.robust_probe=names();
out.robust_scores=Array.from(r.tBodies[0].rows).map(x=>x.cells[col].firstChild.textContent);
const pre=document.createElement('pre'); pre.id='sort-result'; pre.textContent=JSON.stringify(out);
document.body.append(pre);
</script>"""

# Appended after the page's own script: does the page or a table box overflow sideways?
_WIDTH_PROBE = """<script>
const boxes=Array.from(document.querySelectorAll('.scroll'));
const out={page:document.documentElement.scrollWidth, window:window.innerWidth,
  boxes_scroll:boxes.filter(b=>b.scrollWidth>b.clientWidth).length,
  boxes_scrollable:boxes.filter(b=>getComputedStyle(b).overflowX==='auto').length,
  tables:document.querySelectorAll('table.sortable').length,
  wrapped:Array.from(document.querySelectorAll('table.sortable')).filter(
    t=>t.parentElement.classList.contains('scroll')).length};
const pre=document.createElement('pre'); pre.id='width-result'; pre.textContent=JSON.stringify(out);
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


def _probe(page: Path, tmp_path: Path, probe: str, result_id: str, *args: str) -> dict:
    probed = tmp_path / f"{result_id}.html"
    probed.write_text(page.read_text().replace("</body>", probe + "</body>"))
    dom = _chromium(probed, tmp_path / "profile", *args, "--dump-dom").stdout
    match = re.search(rf'<pre id="{result_id}">(.*?)</pre>', dom)
    assert match, "the probe did not run"
    return json.loads(match.group(1).replace("&quot;", '"'))


def test_clicking_a_header_sorts_best_first(page, tmp_path):
    result = _probe(page, tmp_path, _SORT_PROBE, "sort-result")
    assert result["initial"] == ["model", "centre_prior"]  # ranked by pointing
    assert result["rank_aria"] == "ascending"  # the ranking is the initial sort
    assert result["method_asc"] == ["centre_prior", "model"]
    assert result["method_aria"] == "ascending"
    assert result["rank_aria_after"] is None  # one sorted column at a time
    # the first press on a metric puts the best rows first (higher is better: 0.750 > 0.300)
    assert result["score_first"] == ["model", "centre_prior"]
    assert result["score_first_aria"] == "descending"
    assert result["score_second"] == ["centre_prior", "model"]
    assert result["score_aria"] == "ascending"
    assert result["final"] == ["centre_prior", "model"]  # a text column starts A–Z


def test_headers_are_buttons_reachable_by_keyboard(page, tmp_path):
    result = _probe(page, tmp_path, _SORT_PROBE, "sort-result")
    assert result["headers"] > 10
    assert result["headers_with_buttons"] == result["headers"]
    assert result["tab_stops"] == result["headers"]
    assert result["focused"]


def test_probe_columns_sort_by_the_shown_score(page, tmp_path):
    result = _probe(page, tmp_path, _SORT_PROBE, "sort-result")
    assert result["robust_initial"] == ["centre_prior", "model"]
    # model scores higher on compositional but drops more from in-distribution: the column
    # sorts by the score shown, best first
    scores = [float(x) for x in result["robust_scores"]]
    assert result["robust_probe"] == ["model", "centre_prior"]
    assert scores == sorted(scores, reverse=True)


def test_tables_scroll_in_their_own_box(page, tmp_path):
    wide = _probe(page, tmp_path, _WIDTH_PROBE, "width-result", "--window-size=1400,900")
    assert wide["page"] <= wide["window"] == 1400
    assert wide["wrapped"] == wide["tables"] == wide["boxes_scrollable"]
    narrow = _probe(page, tmp_path, _WIDTH_PROBE, "width-result", "--window-size=500,900")
    assert narrow["page"] <= narrow["window"] == 500  # the page itself never scrolls sideways
    assert narrow["boxes_scroll"] >= 1  # the wide tables scroll inside their box


def test_sorting_shows_on_the_screenshot(page, tmp_path):
    sorted_page = tmp_path / "sorted.html"
    sorted_page.write_text(page.read_text().replace("</body>", _SORT_PROBE + "</body>"))
    before, after = tmp_path / "before.png", tmp_path / "after.png"
    _chromium(page, tmp_path / "profile", f"--screenshot={before}")
    _chromium(sorted_page, tmp_path / "profile", f"--screenshot={after}")
    assert not np.array_equal(_pixels(before)[:600], _pixels(after)[:600])
