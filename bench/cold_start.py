"""Cold start of ``streamlit run streamlit_app.py`` to the first page drawn.

Starts the app on a free local port, opens it in headless Debian chromium and
times (1) the server answering /_stcore/health and (2) the Data page's title
and channel chart drawn. Baseline in the same run: a bare Streamlit script
that draws one title, started and opened the same way.

Run: ``python bench/cold_start.py [--runs N]`` -> bench/results/cold_start.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import write_results  # noqa: E402
from tests.test_browser import ROOT, free_port, launch_chromium, start_app, stop_app  # noqa: E402


def cold_start(script: Path, ready_selector: str, browser) -> dict:
    port = free_port()
    t0 = time.perf_counter()
    proc = start_app(script, port, {"AEVIZ_MODEL_DIR": tempfile.mkdtemp()}, cwd=script.parent)
    healthy = time.perf_counter() - t0
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}")
        page.wait_for_selector(ready_selector, timeout=180_000)
        drawn = time.perf_counter() - t0
        page.close()
    finally:
        stop_app(proc)
    return {"server_ready_s": round(healthy, 2), "first_page_drawn_s": round(drawn, 2)}


def main(runs: int) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "bare.py"
        bare.write_text("import streamlit as st\nst.title('bare')\n")
        app, base = [], []
        with sync_playwright() as p:
            browser = launch_chromium(p)
            for _ in range(runs):  # alternate, so both see the same load
                base.append(cold_start(bare, 'h1:has-text("bare")', browser))
                app.append(cold_start(ROOT / "streamlit_app.py",
                                      '[data-testid="stVegaLiteChart"], [data-testid="stArrowVegaLiteChart"]',
                                      browser))
            browser.close()
    med = {k: statistics.median(r[k] for r in app) for k in app[0]}
    bmed = {k: statistics.median(r[k] for r in base) for k in base[0]}
    result = {"runs": runs, "app": app, "bare_streamlit": base, "app_median": med, "bare_median": bmed,
              "first_page_ratio_app_over_bare": round(med["first_page_drawn_s"] / bmed["first_page_drawn_s"], 2)}
    write_results("cold_start", result, show=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    main(parser.parse_args().runs)
