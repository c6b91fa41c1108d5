"""Speed of the review desk with 10,000 reviewed events in the store.

The store is seeded with 10,000 decided events on the bundled pump sample (the data the
app opens with) under eight earlier models, with statuses, tags and notes, so every queue
read matches the current events against all of them (the stale decisions), and with 10,000
decided events of an earlier recording with their looks, among which the page finds the
open event's similar ones (``--earlier``). Then:

* **server**: the Review page through ``AppTest`` (a 2-epoch model on the sample): the first
  open, and ten decisions, each "Confirm anomaly" and the next event drawn; the seconds of
  each script run;
* **browser**: the app in headless chromium (``streamlit run``, a 2-epoch model trained on the
  Train page): ten decisions, from the click to the next event's heading and to the end of
  the run.

Goal (issue 16): a decision saved and the next event drawn in under 1 s of server time.
Prints and writes ``bench/results/desk_speed.json``.

Run: python bench/desk_speed.py [--reviews 10000] [--skip-browser]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import machine, write_results  # noqa: E402

SAMPLE = ROOT / "sample_data" / "pump_station.csv"


def seed(url: str, fingerprint: str, n: int, n_rows: int) -> None:
    """``n`` decided events with random spans, statuses, tags and notes on ``fingerprint``."""
    from sqlalchemy import insert

    from aeviz_core import ReviewStore
    from aeviz_core.reviews import COMMON_TAGS, _reviews

    rng = np.random.default_rng(0)
    starts = rng.permutation(n_rows - 400)[:n]  # distinct starts: every key is new
    ends = starts + rng.integers(4, 300, n)
    now = datetime.now(UTC)
    rows = [{"model_id": f"ae-archive-{i % 8}", "data_fingerprint": fingerprint, "start_row": int(a),
             "end_row": int(b), "status": str(rng.choice(["confirmed", "dismissed", "follow_up"])),
             "note": f"archived decision {i}", "reviewer": "archive", "version": 1,
             "reviewed_at": now - timedelta(minutes=int(rng.integers(1, 500_000))),
             "tags": ",".join(sorted(set(rng.choice(COMMON_TAGS, 2))))}
            for i, (a, b) in enumerate(zip(starts, ends, strict=True))]
    store = ReviewStore(url)
    store._run(lambda conn: conn.execute(insert(_reviews), rows), write=True)
    store.close()


def seed_earlier(url: str, n: int) -> None:
    """``n`` decided events of another recording, with made-up looks (event signatures)."""
    import json

    from sqlalchemy import insert

    from aeviz_core import ReviewStore
    from aeviz_core.explain import SIGNATURE
    from aeviz_core.reviews import _reviews, _signatures

    rng = np.random.default_rng(1)
    keys = [("ae-archive-0", "sha1:an-earlier-recording", 10 * i, 10 * i + 5) for i in range(n)]
    reviews = [{"model_id": m, "data_fingerprint": f, "start_row": a, "end_row": b, "version": 1,
                "status": str(rng.choice(["confirmed", "dismissed", "follow_up"])), "reviewer": "archive",
                "note": f"earlier decision {i}", "reviewed_at": datetime.now(UTC), "tags": "maintenance"}
               for i, (m, f, a, b) in enumerate(keys)]
    looks = [{"model_id": m, "data_fingerprint": f, "start_row": a, "end_row": b, "data_name": "line_3_november.csv",
              "signature": json.dumps({name: float(v) for name, v in zip(SIGNATURE, rng.normal(size=len(SIGNATURE)),
                                                                         strict=True)})}
             for m, f, a, b in keys]
    store = ReviewStore(url)
    store._run(lambda conn: (conn.execute(insert(_reviews), reviews), conn.execute(insert(_signatures), looks)),
               write=True)
    store.close()


def server_figures(url: str, decisions: int) -> dict:
    """Seconds of the Review page's script runs through AppTest: the first open, then each
    decision (saved, the next event drawn)."""
    from streamlit.testing.v1 import AppTest

    from aeviz_core import AutoencoderDetector, load_sensor_table
    from aeviz_app.session import Dataset, ModelEntry

    ds = Dataset.from_sensor(load_sensor_table(SAMPLE), SAMPLE.name)
    det = AutoencoderDetector(window=16, stride=4, latent_dim=4, hidden=(32,), epochs=2, random_state=0)
    det.fit(ds.sensor.channels.iloc[:20_000], anomalous=ds.anomaly[:20_000])
    entry = ModelEntry(name="tiny", detector=det, dataset_key=ds.key, dataset_name=ds.name, settings={})
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=600)
    at.session_state["dataset"] = ds
    at.session_state["models"] = {"tiny": entry}
    at.session_state["active_model"] = "tiny"
    at.run()
    started = time.perf_counter()
    at.switch_page("pages/5_review.py").run()
    first_open = time.perf_counter() - started
    assert not at.exception, [e.value for e in at.exception]
    seconds = []
    for _ in range(decisions):
        at.text_input(key="review.reviewer").set_value("bench")
        at.button(key="review.do.confirmed").click()
        started = time.perf_counter()
        at.run()
        seconds.append(time.perf_counter() - started)
        assert not at.exception, [e.value for e in at.exception]
    return {"first_open_s": round(first_open, 2), "decision_s": [round(s, 3) for s in seconds],
            "decision_median_s": round(statistics.median(seconds), 3), "events": len(at.dataframe[0].value)}


def browser_figures(url: str, decisions: int, tmp: Path) -> dict:
    """Seconds from each "Confirm anomaly" click to the next event's heading, and to the end of
    the run, in headless chromium."""
    from tests.test_browser import review_desk

    heading, idle = [], []
    with review_desk(tmp, reviewer="bench", db_url=url) as page:  # a trained model, the Review page open
        for k in range(decisions):
            shown = page.locator("h3", has_text="Event ").first.inner_text()  # "Event k of n"
            number, total = int(shown.split()[1]), int(shown.split()[3])
            if number == total:  # the last event: no next one to draw
                break
            started = time.perf_counter()
            page.get_by_role("button", name="Confirm anomaly").click()
            page.wait_for_selector(f'h3:has-text("Event {number + 1} of")', timeout=120_000)
            heading.append(time.perf_counter() - started)
            # the run has ended when no element of the previous run is left stale (Streamlit marks
            # them) and the status widget is gone; a click before that may hit the last event's form
            page.wait_for_function("!document.querySelector('[data-stale=\"true\"]')", timeout=120_000)
            page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=120_000)
            idle.append(time.perf_counter() - started)
            page.wait_for_timeout(500)
    return {"to_next_heading_s": [round(s, 3) for s in heading], "to_run_end_s": [round(s, 3) for s in idle],
            "to_next_heading_median_s": round(statistics.median(heading), 3),
            "to_run_end_median_s": round(statistics.median(idle), 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=10_000)
    parser.add_argument("--earlier", type=int, default=10_000,
                        help="decided events of an earlier recording, with their looks")
    parser.add_argument("--decisions", type=int, default=10)
    parser.add_argument("--skip-browser", action="store_true")
    args = parser.parse_args(argv)
    from aeviz_core import load_sensor_table

    data = load_sensor_table(SAMPLE)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        url = f"sqlite:///{tmp / 'reviews.db'}"
        seed(url, data.fingerprint(), args.reviews, len(data.channels))
        if args.earlier:
            seed_earlier(url, args.earlier)
        result = {"reviews_in_store": args.reviews, "earlier_decisions_in_store": args.earlier,
                  "server": server_figures(url, args.decisions)}
        print(f"server (AppTest): {result['server']}")
        if not args.skip_browser:
            result["browser"] = browser_figures(url, args.decisions, tmp)
            print(f"browser (chromium): {result['browser']}")
    result["machine"] = machine()
    write_results("desk_speed", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
