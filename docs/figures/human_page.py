"""Draw docs/figures/human_page.png: the study page at 1,280 × 800 after three keyboard answers.

Run from the repository root: ``python docs/figures/human_page.py``. It generates a small
synthetic set in a temporary folder, evaluates two baselines (the centre prior and the
oracle box), prepares a pairwise study, serves it, and answers by keyboard in headless
Chromium driven by Playwright (Debian package ``chromium``; ``pip install playwright``).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from groundbench.evaluate import evaluate
from groundbench.human.prepare import prepare
from groundbench.synthetic import PROBE_SPLITS, generate

OUT = Path(__file__).with_name("human_page.png")


def main() -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("headless Chromium is needed: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        scenes = {"train": 1, "val": 1, "test": 8} | {name: 1 for name in PROBE_SPLITS}
        data = generate(tmp / "synth", {"scenes": scenes}, seed=0, progress=False)
        reports = []
        for method in ("centre_prior", "oracle_box"):
            out = tmp / "reports" / method
            evaluate("synth_test.albef", method, out_dir=out, data_root=data, progress=False)
            reports.append(str(out))
        spec = {"schema": 1, "type": "pairwise", "methods": reports, "annotators": 2,
                "per_item": 1, "sample": {"n": 12}, "data_root": str(data)}  # fmt: skip
        (tmp / "study.yaml").write_text(json.dumps(spec))
        study = prepare(tmp / "study.yaml", tmp / "S")
        server = subprocess.Popen(
            [sys.executable, "-m", "groundbench", "human", "serve", str(study), "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            url = server.stdout.readline().strip().split("\t")[1]
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(url)
                for i, key in enumerate(("2", "1", "ArrowRight")):
                    expect(page.locator("#progress")).to_contain_text(f"({i} answered)")
                    page.keyboard.press(key)
                expect(page.locator("#progress")).to_contain_text("(3 answered)")
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(OUT))
                browser.close()
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=10)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
