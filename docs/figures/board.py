"""Draw docs/figures/board.png: the top of an HTML board, as a 1,400 px wide window shows it.

Run from the repository root: ``python docs/figures/board.py``. It runs ``groundbench demo``
with the ``tiny`` preset on a small synthetic set in a temporary folder (about a minute; the
scores mean nothing, the figure shows the page) and photographs ``leaderboard.html`` with
headless Chromium (Debian package ``chromium``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

from groundbench.demo import run_demo
from groundbench.synthetic import PROBE_SPLITS, generate

OUT = Path(__file__).with_name("board.png")


def main() -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("headless Chromium is needed: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        scenes = {"train": 40, "val": 1, "test": 12} | {name: 6 for name in PROBE_SPLITS}
        data = generate(tmp / "synth", {"scenes": scenes}, seed=0, progress=False)
        board = run_demo(tmp / "demo", preset="tiny", data_root=data, announce=print).board
        shot = tmp / "board.png"
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={tmp / 'profile'}",
                "--window-size=1400,900",
                f"--screenshot={shot}",
                board.html.as_uri(),
            ],
            check=True,
            capture_output=True,
        )
        with Image.open(shot) as im:
            im.convert("RGB").quantize(colors=64).save(OUT, optimize=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
