"""A new user on real-shaped files, in a real browser (issue 26): the test writes a test rig's
recording shaped like the files that broke the app (a time column, a TRUE/FALSE ``EVENT`` label
as GECCO's, an outage of missing readings inside a labelled event, a rotor imbalance on one
accelerometer, a flow drop that lasts) and the same rig's readings far outside their training
range; each test is one item of the issue, in order, on one app and one trained model.

Screenshots in ``bench/results/screenshots/10*.png``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from tests.test_browser import (  # noqa: F401  (browser is a fixture)
    ROOT,
    _need_browser,
    browser,
    free_port,
    go,
    no_exception,
    open_app,
    shot,
    start_app,
    start_training,
    stop_app,
    train_pair,
    upload,
    wait_idle,
)

pytestmark = pytest.mark.browser

N = 6000
ROTOR = (4200, 4500)  # acc1 shakes 2.5 times harder
FLOW_DROP = (4800, 5200)  # the flow falls by 4 and stays down; the pressure follows
OUTAGE = (5450, 5650)  # every sensor missing, inside a labelled event (5400-5700)
SENSORS = ["acc1", "acc2", "acc3", "thermo", "flow", "pressure"]


def rig(seed: int = 0, *, shifted: bool = False) -> pd.DataFrame:
    """A minute-by-minute recording of a pump test rig: three accelerometers, a smooth
    thermocouple and flow and pressure that follow the load."""
    rng = np.random.default_rng(seed)
    t = np.arange(N)
    amp = 1 + 0.3 * np.sin(2 * np.pi * t / 3000)
    frame = pd.DataFrame({
        "Time": pd.date_range("2026-11-02", periods=N, freq="min").strftime("%Y-%m-%d %H:%M:%S"),
        "acc1": amp * np.sin(2 * np.pi * t / 25) + 0.1 * rng.normal(size=N),
        "acc2": amp * np.sin(2 * np.pi * t / 25 + 0.7) + 0.1 * rng.normal(size=N),
        "acc3": amp * 0.5 * np.sin(2 * np.pi * t / 50) + 0.1 * rng.normal(size=N),
        "thermo": 60 + 2.0 * (amp - 1) + 0.01 * rng.normal(size=N),
        "flow": 10 + 3 * (amp - 1) + 0.05 * rng.normal(size=N),
    })
    frame["pressure"] = 2 + 0.1 * frame["flow"] + 0.01 * rng.normal(size=N)
    if shifted:  # the rig after a re-calibration nobody told the model about: every channel moved
        for column in SENSORS:
            frame[column] = frame[column] * 1.5 + 20
        return frame
    event = np.zeros(N, dtype=bool)
    a, b = ROTOR
    frame.loc[a : b - 1, "acc1"] *= 2.5
    event[a:b] = True
    a, b = FLOW_DROP
    frame.loc[a : b - 1, "flow"] -= 4
    frame.loc[a : b - 1, "pressure"] -= 0.4
    event[a:b] = True
    a, b = OUTAGE
    frame.loc[a : b - 1, SENSORS] = np.nan
    event[5400:5700] = True
    frame["EVENT"] = np.where(event, "TRUE", "FALSE")
    return frame


@pytest.fixture(scope="module")
def walk(tmp_path_factory, browser):  # noqa: F811
    """The app on its own model folder and review store, one page on it, and the rig's files."""
    _need_browser()
    tmp = tmp_path_factory.mktemp("new_user")
    files = {"rig": tmp / "rig_week_45.csv", "shifted": tmp / "rig_after_calibration.csv"}
    rig().to_csv(files["rig"], index=False)
    rig(1, shifted=True).to_csv(files["shifted"], index=False)
    port = free_port()
    proc = start_app(ROOT / "streamlit_app.py", port, {"AEVIZ_MODEL_DIR": str(tmp / "models"),
                                                       "AEVIZ_DB_URL": f"sqlite:///{tmp / 'reviews.db'}"})
    page = open_app(browser, f"http://127.0.0.1:{port}", width=1400, height=1500, timeout_ms=300_000)
    yield page, files
    page.close()
    stop_app(proc)


def read_as(page) -> str:
    return page.locator('[data-testid="stCaptionContainer"]', has_text="Read as").first.inner_text()


def alerts(page) -> list[str]:
    return [a.inner_text() for a in page.locator('[data-testid="stAlert"]').all()]


def event_header(page) -> str:
    return page.locator('[data-testid="stMarkdownContainer"]', has_text="to blame:").first.inner_text()


def step(page, name: str) -> None:
    """Press Previous or Next on the Review page and wait until another event is open."""
    span = re.search(r"rows \d+–\d+", event_header(page)).group()
    page.get_by_role("button", name=name).click()
    page.wait_for_function("span => [...document.querySelectorAll('[data-testid=stMarkdownContainer]')]"
                           ".some(e => e.innerText.includes('to blame:') && !e.innerText.includes(span))", arg=span)
    wait_idle(page)


def each_event(page):
    """The header of every event of the Review queue, from the first: the open event's line."""
    while page.get_by_role("button", name="Previous").is_enabled():
        step(page, "Previous")
    yield event_header(page)
    while page.get_by_role("button", name="Next").is_enabled():
        step(page, "Next")
        yield event_header(page)


def test_item_2_a_true_false_column_is_read_as_a_label(walk):
    page, files = walk
    upload(page, files["rig"])
    said = read_as(page)
    assert "labels: EVENT" in said and "6 channel(s): acc1, acc2, acc3, thermo, flow, pressure" in said, said
    assert any("'EVENT' holds only true/false: read as a label" in a for a in alerts(page)), alerts(page)
    shot(page, "10a_new_user_data")


def test_item_3_reading_options_apply_to_the_last_upload(walk):
    page, files = walk
    go(page, "Train")
    go(page, "Data")  # the uploader has emptied; the file is kept
    page.get_by_text("Reading options", exact=True).click()
    box = page.get_by_label("Columns to ignore (comma-separated)")
    box.fill("pressure")
    box.press("Enter")
    wait_idle(page)
    assert page.get_by_text(re.compile(f"Reading options apply to {files['rig'].name}")).count() == 1
    assert "5 channel(s): acc1, acc2, acc3, thermo, flow." in read_as(page), read_as(page)
    box.fill("")
    box.press("Enter")
    wait_idle(page)
    assert "6 channel(s)" in read_as(page), read_as(page)
    no_exception(page)


def test_item_1_and_7_anomalies_with_an_outage_inside_a_labelled_event(walk):
    """No traceback where a labelled event's rows have no score; rows and events side by side,
    with how much of each labelled event was caught."""
    page, _ = walk
    start_training(page, 4)
    page.wait_for_selector("text=trained:", timeout=900_000)
    wait_idle(page)
    go(page, "Anomalies")
    page.wait_for_selector("text=Rows caught", timeout=120_000)
    wait_idle(page)
    no_exception(page)
    assert page.get_by_text(re.compile(r"rows without a score \(gaps in the readings")).count() == 1
    for label in ("Precision", "ROC AUC", "Events found", "Rows caught", "False events"):
        assert page.locator('[data-testid="stMetricLabel"]', has_text=label).count() >= 1, label
    found = page.locator('[data-testid="stMetric"]', has_text="Events found").inner_text()
    assert re.search(r"\d of 3", found), found  # the rotor imbalance, the flow drop, the outage's event
    assert page.get_by_text("Rows caught per labelled event:").count() == 1
    shot(page, "10b_new_user_anomalies", scroll_to=page.get_by_text("Events: runs of labelled rows"))


def test_item_5_blame_names_the_shaking_accelerometer_and_no_advice_drops_the_faulty_flow(walk):
    page, _ = walk
    text = "\n".join(alerts(page))
    assert not re.search(r"\b(drop|ignore|remove)\b[^.]*\bflow\b", text, re.I), text
    go(page, "Review")
    page.wait_for_selector('h3:has-text("Event 1 of")', timeout=120_000)
    wait_idle(page)
    seen = []
    for header in each_event(page):
        seen.append(header)
        first, last = map(int, re.search(r"rows (\d+)–(\d+)", header).groups())
        if last >= ROTOR[0] and first < ROTOR[1]:
            break
    else:
        shot(page, "10c_new_user_blame")
        pytest.fail(f"no event overlaps the rotor imbalance: {seen}")
    assert "to blame: acc1" in header, header
    shot(page, "10c_new_user_blame")


def test_item_6_a_manual_threshold_set_on_another_file_is_said_and_undone(walk):
    page, files = walk
    caption = page.locator('[data-testid="stCaptionContainer"]', has_text="flagged events at threshold").first
    assert "the model's own" in caption.inner_text()  # nobody set one: the Review page says so
    go(page, "Anomalies")
    page.locator('[data-testid="stSelectbox"]', has_text="Threshold rule").click()
    page.get_by_role("option", name="manual").click()
    wait_idle(page)
    box = page.get_by_label(re.compile(r"Threshold \("))
    box.fill("0.5")
    box.press("Enter")
    wait_idle(page)
    upload(page, files["shifted"])
    go(page, "Anomalies")
    wait_idle(page)
    notice = page.get_by_text(f"was set on {files['rig'].name}, not on {files['shifted'].name}")
    assert notice.count() == 1
    shot(page, "10d_new_user_manual_elsewhere")
    page.get_by_role("button", name="Use the model's own threshold").click()
    wait_idle(page)
    assert page.get_by_text(re.compile("was set on")).count() == 0
    no_exception(page)


def test_item_4_the_verdict_is_in_the_headline_in_one_box(walk):
    """The file is unlike the training rows: whatever share is flagged, the headline says the flags
    cannot be trusted, and every channel out of range is one line of one box."""
    page, _ = walk
    boxes = [a for a in alerts(page) if "cannot be trusted" in a or "training range" in a]
    assert len(boxes) == 1, boxes
    verdict = boxes[0]
    assert re.search(r"[\d,]+ of [\d,]+ rows flagged", verdict) and "cannot be trusted" in verdict, verdict
    assert all(name in verdict for name in SENSORS), verdict
    shot(page, "10e_new_user_out_of_range")


def test_item_8_compare_shows_each_models_own_threshold(walk):
    page, files = walk
    upload(page, files["rig"])
    go(page, "Compare AE vs VAE")
    train_pair(page, 2)
    said = page.get_by_text(re.compile("each model's own threshold")).first.inner_text()
    assert "fitted on its own scores" in said, said
    shot(page, "10f_new_user_compare", scroll_to=page.get_by_text("Quality and detection numbers"))
