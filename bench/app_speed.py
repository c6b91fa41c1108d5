"""How fast and how big the app is: latent-scatter draw and selection times in headless
chromium (plain Altair vs the app's display sample), the server time of a threshold
rerun at 100,000 rows, and the peak RSS of a ``streamlit run`` session that trains the
default model on the pump sample.

    python bench/app_speed.py                 # everything (about 5 minutes, plain 1M included)
    python bench/app_speed.py --skip-plain-1m # without the slowest case (plain Altair, 1M points)
    python bench/app_speed.py --only rss      # one part: draw | rerun | rss

Writes ``bench/results/app_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tests.test_browser import free_port, launch_chromium, open_app, start_app, stop_app, wait_idle

RESULTS = ROOT / "bench" / "results" / "app_speed.json"
MAX_POINTS = 20_000  # the app's default "points drawn at most"

# A page that draws n latent points with the app's own chart builder, either all of
# them (plain Altair) or the app's display sample, and answers a box selection.
SCATTER_APP = '''
import numpy as np, pandas as pd, streamlit as st
from aeviz_core import charts

n = int(st.query_params.get("n", 1000)); mode = st.query_params.get("mode", "sampled")

@st.cache_data
def points(n):
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4, size=(10, 2))
    cls = rng.integers(0, 10, n)
    xy = centres[cls] + rng.normal(0, 1, size=(n, 2))
    err = rng.gamma(2.0, 0.05, n)
    return pd.DataFrame({"idx": np.arange(n), "x": xy[:, 0].astype("float32"), "y": xy[:, 1].astype("float32"),
                         "class": cls.astype(str), "error": err,
                         "flag": np.where(err > np.quantile(err, 0.995), "flagged", "normal")})

frame = points(n)
shown = frame if mode == "plain" else charts.display_sample(
    frame, MAX_POINTS, keep_mask=(frame["flag"] == "flagged").to_numpy())
st.session_state["runs"] = st.session_state.get("runs", 0) + 1
event = st.altair_chart(charts.latent_scatter(shown, "class", tooltip=["idx", "class"]),
                        on_select="rerun", selection_mode=["pick", "box"], key="scatter")
picked = charts.selected_indices(event.selection, shown)
st.markdown(f"drawn {len(shown)} of {n}; selected {len(picked)}; run {st.session_state['runs']}")
'''.replace("MAX_POINTS", str(MAX_POINTS))


def measure_draw(cases, timeout_s=180):
    """Draw time (navigation to a painted chart, script idle) and box-selection time
    (mouse up to the rerun's answer on the page) per (n, mode)."""
    from playwright.sync_api import sync_playwright

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "scatter_app.py"
        script.write_text(SCATTER_APP)
        port = free_port()
        proc = start_app(script, port, {"PYTHONPATH": str(ROOT)}, cwd=ROOT)
        try:
            with sync_playwright() as p:
                browser = launch_chromium(p)
                for n, mode in cases:
                    page = browser.new_page(viewport={"width": 1200, "height": 900})
                    page.set_default_timeout(timeout_s * 1000)
                    # warm the server cache for this n, so the draw time is the browser's
                    page.goto(f"http://127.0.0.1:{port}/?n={n}&mode=sampled")
                    page.wait_for_selector("text=/run 1/")
                    page.close()
                    page = browser.new_page(viewport={"width": 1200, "height": 900})
                    page.set_default_timeout(timeout_s * 1000)
                    t0 = time.perf_counter()
                    try:
                        page.goto(f"http://127.0.0.1:{port}/?n={n}&mode={mode}")
                        page.wait_for_selector('[data-testid="stVegaLiteChart"] canvas, '
                                               '[data-testid="stVegaLiteChart"] svg.marks')
                        page.wait_for_selector("text=/run 1/")
                        page.evaluate("() => new Promise(r => requestAnimationFrame(() => "
                                      "requestAnimationFrame(r)))")
                        draw = time.perf_counter() - t0
                        chart = page.locator('[data-testid="stVegaLiteChart"]').first.bounding_box()
                        x0 = chart["x"] + chart["width"] * 0.35
                        y0 = chart["y"] + chart["height"] * 0.3
                        page.mouse.move(x0, y0)
                        page.mouse.down()
                        page.mouse.move(x0 + chart["width"] * 0.2, y0 + chart["height"] * 0.3, steps=5)
                        t1 = time.perf_counter()
                        page.mouse.up()
                        page.wait_for_selector("text=/run 2/")
                        select = time.perf_counter() - t1
                        text = page.locator("text=/run 2/").first.inner_text()
                        out.append({"n_points": n, "mode": mode, "draw_s": round(draw, 2),
                                    "selection_s": round(select, 2), "page": text})
                    except Exception as exc:  # noqa: BLE001  (a timeout is a result here)
                        out.append({"n_points": n, "mode": mode, "error": type(exc).__name__,
                                    "gave_up_after_s": round(time.perf_counter() - t0, 1)})
                    print(out[-1], flush=True)
                    page.close()
                browser.close()
        finally:
            stop_app(proc)
    return out


def measure_rerun(n_rows=100_000, repeats=5):
    """Server time of the Anomalies page rerun after a threshold change, at n_rows rows
    (AppTest runs the whole page, so this bounds the fragment's own rerun)."""
    import numpy as np
    from streamlit.testing.v1 import AppTest

    from aeviz_core import AutoencoderDetector, load_sensor_table, make_pump_station
    from aeviz_app.session import Dataset, ModelEntry

    frame = make_pump_station(n_rows=n_rows, seed=1)
    data = load_sensor_table(frame.to_csv(index=False).encode())
    ds = Dataset.from_sensor(data, f"pump_{n_rows}")
    ds.source = "bench"
    det = AutoencoderDetector(window=32, stride=4, latent_dim=16, epochs=2, random_state=0).fit(
        data.channels.iloc[:5000])
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=300)
    at.session_state["dataset"] = ds
    at.session_state["models"] = {"bench": ModelEntry("bench", det, ds.key, ds.name,
                                                      {"train_end": 5000})}
    at.session_state["active_model"] = "bench"
    at.run()
    at.switch_page("pages/4_anomalies.py").run()  # scores once (cached)
    assert not at.exception, at.exception
    times, fragment = [], []
    for value in np.linspace(99.0, 95.0, repeats):
        at.slider(key="anomalies.param.percentile").set_value(float(round(value, 2)))
        t = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t)
        fragment.append(at.session_state["anomalies.rerun_s"])
        assert not at.exception, at.exception
    return {"n_rows": n_rows,
            "what": "Anomalies page, percentile slider moved; fragment_s = the threshold fragment's own "
                    "server time (what a browser rerun runs), page_s = the whole page in AppTest",
            "fragment_s": [round(t, 3) for t in fragment], "fragment_median_s": round(float(np.median(fragment)), 3),
            "page_s": [round(t, 3) for t in times], "page_median_s": round(float(np.median(times)), 3)}


def measure_rss(timeout_s=600):
    """Peak RSS of a ``streamlit run`` session (server and children) that opens the app,
    trains the default model on the pump sample and visits the explorer and anomalies."""
    import psutil
    from playwright.sync_api import sync_playwright

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_app(ROOT / "streamlit_app.py", port, {"AEVIZ_MODEL_DIR": tmp})
        server = psutil.Process(proc.pid)
        peak = {"rss": 0}
        samples = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    rss = server.memory_info().rss + sum(c.memory_info().rss for c in server.children(True))
                except psutil.Error:
                    rss = 0
                peak["rss"] = max(peak["rss"], rss)
                samples.append(rss)
                time.sleep(0.2)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        marks = {"after_start_mb": server.memory_info().rss / 2**20}
        try:
            with sync_playwright() as p:
                browser = launch_chromium(p)
                page = open_app(browser, f"http://127.0.0.1:{port}", height=1200, timeout_ms=timeout_s * 1000)
                marks["data_page_mb"] = max(samples[-5:]) / 2**20
                page.locator('[data-testid="stSidebarNav"] a', has_text="Train").first.click()
                page.wait_for_selector('h1:has-text("Train")')
                wait_idle(page)
                t = time.perf_counter()
                page.get_by_role("button", name="Train", exact=True).click()
                page.wait_for_selector("text=trained:", timeout=timeout_s * 1000)
                wait_idle(page)
                train_s = time.perf_counter() - t
                summary = page.locator("text=trained:").first.inner_text()
                marks["after_training_mb"] = max(samples[-5:]) / 2**20
                for title in ("Latent explorer", "Anomalies"):
                    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
                    page.wait_for_selector(f'h1:has-text("{title}")')
                    wait_idle(page, timeout=timeout_s * 1000)
                marks["after_pages_mb"] = max(samples[-5:]) / 2**20
                browser.close()
        finally:
            stop.set()
            thread.join()
            stop_app(proc)
    return {"peak_rss_mb": round(peak["rss"] / 2**20, 1),
            **{k: round(v, 1) for k, v in marks.items()},
            "train_wall_s": round(train_s, 1), "train_summary": summary,
            "what": "streamlit run streamlit_app.py; Data -> Train (defaults: the 43,200 rows, labelled anomalies left out, window 32, "
                    "stride 4, latent 16, 20 epochs, early stopping) -> Latent explorer -> Anomalies"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["draw", "rerun", "rss"])
    parser.add_argument("--skip-plain-1m", action="store_true")
    args = parser.parse_args(argv)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "browser": "Debian chromium, headless",
                          "note": "2 cores shared with other jobs: compare cases run in the same session only"}
    load_before = os.getloadavg()[0]
    part = {}
    if args.only in (None, "draw"):
        # 1,000 points: the page's own load time, the floor under every draw time
        cases = [(1_000, "plain"), (100_000, "plain"), (100_000, "sampled"), (1_000_000, "sampled")]
        if not args.skip_plain_1m:
            cases.append((1_000_000, "plain"))
        results["latent_scatter"] = part["latent_scatter"] = {"max_points": MAX_POINTS,
                                                              "cases": measure_draw(cases)}
    if args.only in (None, "rerun"):
        results["threshold_rerun"] = part["threshold_rerun"] = measure_rerun()
        print(results["threshold_rerun"], flush=True)
    if args.only in (None, "rss"):
        results["memory"] = part["memory"] = measure_rss()
        print(results["memory"], flush=True)
    goals = {"latent_scatter": "1,000,000 points drawn in < 10 s, a box selection answered in < 1 s",
             "threshold_rerun": "< 0.5 s on the server at 100,000 rows",
             "memory": "peak RSS < 1.5 GB"}
    for name, value in part.items():
        value["goal"] = goals[name]
    for value in part.values():  # how busy the shared machine was while this part ran
        value["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        value["measured_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
