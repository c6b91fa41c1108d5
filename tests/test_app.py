"""The app through ``streamlit.testing.v1.AppTest``: every page, the main widget paths
with tiny epoch counts, bad uploads, and never an exception on the page."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
TIMEOUT = 180


def new_app(monkeypatch, tmp_path) -> AppTest:
    monkeypatch.setenv("AEVIZ_MODEL_DIR", str(tmp_path / "models"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    return at.run()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at: AppTest) -> list[dict]:
    """The Vega-Lite specs on the page."""
    out = []
    for node in at.get("vega_lite_chart") if hasattr(at, "get") else []:
        proto = getattr(node, "proto", None)
        spec = getattr(proto, "spec", None)
        if spec:
            out.append(json.loads(spec))
    return out


def headline(at: AppTest) -> str:
    """The Anomalies page's "N of M rows flagged" line (in a warning when the flags cannot be trusted)."""
    return next(m.value.split("**But")[0] for m in [*at.markdown, *at.warning] if " flagged (" in m.value)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def train_tiny(at: AppTest, *, epochs=1, period=(0, 3000), window=16, stride=4, model=None, hidden=None,
               latent=None) -> AppTest:
    at.switch_page("pages/2_train.py").run()
    at.number_input(key="train.epochs").set_value(epochs)
    if model is not None:
        at.selectbox(key="train.model").set_value(model)
    if hidden is not None:
        at.text_input(key="train.hidden").set_value(hidden)
    if latent is not None:
        at.number_input(key="train.latent").set_value(latent)
    if at.slider(key="train.period") is not None and period is not None:
        at.slider(key="train.period").set_value(period)
        at.number_input(key="train.window").set_value(window)
        at.number_input(key="train.stride").set_value(stride)
    at.button[0].click()  # the form's Train button
    return ok(at.run())


def upload(monkeypatch, tmp_path, frame, name: str) -> AppTest:
    """A new session with ``frame`` uploaded as the CSV file ``name``."""
    at = new_app(monkeypatch, tmp_path)
    at.radio(key="data.source").set_value("upload")
    ok(at.run())
    at.file_uploader(key="data.upload").set_value((name, frame.to_csv(index=False).encode(), "text/csv"))
    return ok(at.run())


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One session with a tiny model trained on the pump sample (shared: training costs seconds)."""
    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("app")
    mp.setenv("AEVIZ_MODEL_DIR", str(folder / "models"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    train_tiny(at)
    yield at
    mp.undo()


# --------------------------------------------------------------------------- navigation


def test_opens_on_the_pump_sample(monkeypatch, tmp_path):
    at = ok(new_app(monkeypatch, tmp_path))
    assert at.title[0].value == "Data"
    assert metric(at, "Rows") == "43,200"
    assert metric(at, "Channels") == "7"
    assert metric(at, "Labelled anomalous rows") == "6,761"
    specs = charts(at)
    assert specs and specs[0]["facet"]["row"]["field"] == "channel", "the channels chart: one row per channel"
    assert any("pump_station.csv" in m.value for m in at.sidebar.markdown)


@pytest.mark.parametrize("page,needs_model", [
    ("pages/1_data.py", False), ("pages/2_train.py", False), ("pages/3_latent_explorer.py", True),
    ("pages/4_anomalies.py", True), ("pages/6_compare.py", False)])
def test_every_page_opens_without_models(monkeypatch, tmp_path, page, needs_model):
    at = new_app(monkeypatch, tmp_path)
    ok(at.switch_page(page).run())
    if needs_model:
        assert any("No model fits" in i.value for i in at.info)
        assert len(at.get("page_link")) == 1  # the link to Train


def test_data_page_switches_to_digits(monkeypatch, tmp_path):
    at = new_app(monkeypatch, tmp_path)
    at.radio(key="data.source").set_value("digits")
    ok(at.run())
    assert metric(at, "Images") == "1,797"
    assert len(at.get("image")) >= 1  # the digit thumbnails
    assert at.session_state["dataset"].name == "UCI digits"


def test_mnist_offline_is_a_message(monkeypatch, tmp_path):
    from aeviz_core import mnist_cached

    at = new_app(monkeypatch, tmp_path)
    at.radio(key="data.source").set_value("mnist")
    ok(at.run())
    if mnist_cached():
        assert metric(at, "Images") == "10,000"
    else:
        assert any("MNIST" in e.value for e in at.error)
        assert at.session_state["dataset"].name == "pump_station.csv"


# --------------------------------------------------------------------------- uploads


@pytest.mark.parametrize("name,content,expect", [
    ("broken.csv", b"time,a,b\n2026-01-01 00:00:00,1,2\n2026-01-01 00:00:01,x1,3\n", ["'a'", "row 2"]),
    ("picture.csv", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, ["PNG"]),
    ("empty.csv", b"", ["empty"]),
    ("header_only.csv", b"time,a,b\n", ["no data rows"]),
    ("ragged.csv", b"a,b\n1,2\n3,4,5\n6,7\n", ["row 2"]),
])
def test_bad_uploads_show_a_message_not_a_traceback(monkeypatch, tmp_path, name, content, expect):
    at = new_app(monkeypatch, tmp_path)
    at.radio(key="data.source").set_value("upload")
    ok(at.run())
    at.file_uploader(key="data.upload").set_value((name, content, "text/csv"))
    ok(at.run())
    assert at.error, "a bad upload must show st.error"
    message = at.error[0].value
    assert name in message
    for part in expect:
        assert part in message, message
    # the previous data set is kept
    assert at.session_state["dataset"].name == "pump_station.csv"


def test_reading_options_ignore_a_bad_column(monkeypatch, tmp_path):
    at = new_app(monkeypatch, tmp_path)
    at.radio(key="data.source").set_value("upload")
    ok(at.run())
    csv = b"time,a,b,note\n" + b"".join(
        f"2026-01-01 00:00:{i:02d},{i},{2 * i},{'x' if i == 3 else 'ok'}\n".encode() for i in range(40))
    at.file_uploader(key="data.upload").set_value(("notes.csv", csv, "text/csv"))
    ok(at.run())
    assert any("'note'" in e.value for e in at.error)
    at.text_input(key="data.drop").set_value("note")
    ok(at.run())
    assert not at.error
    assert at.session_state["dataset"].channel_names == ["a", "b"]


def test_good_upload_becomes_the_dataset(monkeypatch, tmp_path):
    at = new_app(monkeypatch, tmp_path)
    at.radio(key="data.source").set_value("upload")
    ok(at.run())
    rows = "\n".join(f"2026-01-01 00:{i // 60:02d}:{i % 60:02d},{np.sin(i / 5):.4f},{np.cos(i / 5):.4f},"
                     f"{'' if i % 50 == 7 else i % 3},{int(i > 250)}" for i in range(300))
    csv = ("time,a,b,c,anomaly\n" + rows).encode()
    at.file_uploader(key="data.upload").set_value(("mine.csv", csv, "text/csv"))
    ok(at.run())
    assert not at.error
    assert metric(at, "Rows") == "300"
    assert at.session_state["dataset"].name == "mine.csv"
    # the missing cells of channel c were interpolated, and the page says so
    assert any("'c'" in w.value for w in at.warning)


# --------------------------------------------------------------------------- train


def test_train_rejects_bad_settings(monkeypatch, tmp_path):
    at = new_app(monkeypatch, tmp_path)
    at.switch_page("pages/2_train.py").run()
    at.text_input(key="train.hidden").set_value("256, lots")
    at.button[0].click()
    ok(at.run())
    assert any("layers" in e.value for e in at.error)
    at.text_input(key="train.hidden").set_value("64")
    at.number_input(key="train.window").set_value(8)
    at.number_input(key="train.stride").set_value(16)
    at.button[0].click()
    ok(at.run())
    assert any("stride" in e.value for e in at.error)
    assert not at.session_state["models"]


def test_conv_vae_on_the_series(monkeypatch, tmp_path):
    at = new_app(monkeypatch, tmp_path)
    train_tiny(at, period=(0, 2000), model="conv-vae", hidden="8, 16", latent=3)
    entry = next(iter(at.session_state["models"].values()))
    assert entry.detector.model == "conv-vae"
    assert "kl_loss" in entry.detector.history_
    ok(at.switch_page("pages/3_latent_explorer.py").run())
    ok(at.switch_page("pages/4_anomalies.py").run())
    assert metric(at, "ROC AUC") != "—"


def test_training_registers_a_model(trained):
    at = trained
    assert any("trained:" in s.value for s in at.success)
    models = at.session_state["models"]
    assert len(models) == 1
    entry = next(iter(models.values()))
    assert entry.detector.window == 16 and len(entry.detector.history_["loss"]) == 1
    assert at.session_state["active_model"] == entry.name
    assert at.session_state["train_job"] is None
    assert len(at.dataframe) >= 1  # the model list


def test_save_and_load_from_the_model_directory(trained):
    at = trained
    at.switch_page("pages/2_train.py").run()
    at.button(key="train.save").click()
    ok(at.run())
    assert any("Saved to" in s.value for s in at.success)
    folder = Path(at.session_state["model_dir"])
    assert any((p / "aeviz.json").is_file() for p in folder.iterdir())
    ok(at.run())
    at.button(key="train.load").click()
    ok(at.run())
    models = at.session_state["models"]
    assert len(models) == 2
    first, loaded = models.values()
    assert loaded.source == "loaded" and loaded.detector.model_id_ == first.detector.model_id_
    # the saved extra brings back the data and the training period
    assert loaded.dataset_key == first.dataset_key and loaded.settings["train_end"] == first.settings["train_end"]
    assert len(at.get("download_button")) == 1


def test_bad_model_zip_is_refused_with_a_message(trained):
    at = trained
    at.switch_page("pages/2_train.py").run()
    at.file_uploader(key="train.upload_zip").set_value(("evil.zip", b"not a zip at all", "application/zip"))
    ok(at.run())
    at.button(key="train.load_zip").click()
    ok(at.run())
    assert any("not a zip" in e.value for e in at.error)


# --------------------------------------------------------------------------- latent explorer


def test_latent_explorer(trained):
    at = trained
    ok(at.switch_page("pages/3_latent_explorer.py").run())
    specs = charts(at)
    scatter = specs[0]
    names = {p["name"] for p in scatter.get("params", [])}
    assert {"pick", "box"} <= names, names
    assert float(metric(at, "Trustworthiness")) > 0.5
    assert metric(at, "5-NN accuracy") != "—"
    # the pump sample is a series: its points carry the anomaly score, and say so
    assert "anomaly score" in at.selectbox(key="latent.colour").options
    assert "reconstruction error" not in at.selectbox(key="latent.colour").options
    for colour in ("anomaly score", "time", "flag"):
        at.selectbox(key="latent.colour").set_value(colour)
        ok(at.run())
    at.radio(key="latent.dims.pca").set_value(3)
    ok(at.run())
    assert "hconcat" in charts(at)[0]  # three axis pairs side by side
    at.radio(key="latent.view3d").set_value("rotating cloud")
    ok(at.run())
    deck = json.loads(at.get("deck_gl_json_chart")[0].proto.json)
    assert deck["views"][0]["@@type"] == "OrbitView"
    assert deck["layers"][0]["@@type"] == "PointCloudLayer"


# --------------------------------------------------------------------------- anomalies


def test_anomalies_threshold_moves_without_retraining(trained):
    at = trained
    ok(at.switch_page("pages/4_anomalies.py").run())
    active = at.session_state["active_model"]
    model_id = at.session_state["models"][active].detector.model_id_
    first = float(metric(at, "Threshold"))
    flagged = headline(at)
    assert metric(at, "Precision") != "" and metric(at, "ROC AUC") != "—"
    at.slider(key="anomalies.param.percentile").set_value(90.0)
    ok(at.run())
    assert float(metric(at, "Threshold")) < first
    assert headline(at) != flagged
    # the cached model is never mutated: the threshold lives in the session
    entry = at.session_state["models"][active]
    assert entry.detector.model_id_ == model_id
    assert entry.detector.threshold_ == pytest.approx(first, rel=1e-3)
    assert at.session_state["thresholds"][entry.name] == ("percentile", 90.0)
    for rule in ("mad", "contamination", "far", "manual"):
        at.selectbox(key="anomalies.rule").set_value(rule)
        ok(at.run())
    at.button(key="anomalies.best").click()
    ok(at.run())
    assert at.selectbox(key="anomalies.rule").value == "manual"
    specs = charts(at)
    assert len(specs) >= 4  # histogram, timeline, contributions, overlay, ROC, PR
    # the pump's rows are scored by their deviation, and the axes say so
    titles = json.dumps(specs)
    assert '"anomaly score' in titles and '"reconstruction error' not in titles


# --------------------------------------------------------------------------- images and compare


def test_digits_train_with_a_held_out_class(monkeypatch, tmp_path):
    at = new_app(monkeypatch, tmp_path)
    at.radio(key="data.source").set_value("digits")
    ok(at.run())
    at.switch_page("pages/2_train.py").run()
    at.number_input(key="train.epochs").set_value(2)
    at.multiselect(key="train.normal").set_value([str(d) for d in range(1, 10)])
    at.button[0].click()
    ok(at.run())
    ok(at.switch_page("pages/4_anomalies.py").run())
    assert metric(at, "ROC AUC") != "—"
    assert len(at.get("image")) >= 1  # the most anomalous digits and their reconstructions
    ok(at.switch_page("pages/3_latent_explorer.py").run())
    assert charts(at)[0]["params"]


def test_compare_trains_its_pair(monkeypatch, tmp_path):
    at = new_app(monkeypatch, tmp_path)
    ok(at.switch_page("pages/6_compare.py").run())
    assert at.segmented_control(key="compare.source").value == "current"  # sensor data loaded: its windows
    at.segmented_control(key="compare.source").set_value("digits")
    ok(at.run())
    at.number_input(key="compare.epochs.digits").set_value(2)
    at.button[0].click()
    ok(at.run())
    table = at.dataframe[0].value
    assert list(table.index) == ["AE", "VAE"]
    assert len(charts(at)) == 2  # the two latent scatters
    assert "divides it by 64" in at.markdown[0].value or "divides the data term by 64" in at.markdown[0].value
    at.radio(key="compare.decode").set_value("prior samples")
    ok(at.run())


def test_compare_trains_a_pair_on_the_current_sensor_data(monkeypatch, tmp_path):
    at = new_app(monkeypatch, tmp_path)
    ok(at.switch_page("pages/6_compare.py").run())
    assert "windows of 32 rows" in at.markdown[0].value
    at.number_input(key="compare.epochs.current").set_value(2)
    at.button[0].click()
    ok(at.run())
    table = at.dataframe[0].value
    assert list(table.index) == ["AE", "VAE"]
    assert {"ROC AUC", "5-NN accuracy", "collapsed"} <= set(table.columns)  # the sample is labelled
    # each model's own threshold (two models, two thresholds), and the page says which rule
    assert table.loc["AE", "threshold"] != table.loc["VAE", "threshold"], table["threshold"]
    assert any("each model's own threshold, percentile" in m.value for m in at.markdown)
    assert len(charts(at)) == 2  # the two latent scatters, one point per window
    assert at.radio(key="compare.colour_series").options == ["class", "anomaly score"]
    at.radio(key="compare.colour_series").set_value("anomaly score")
    ok(at.run())
    assert len(charts(at)) == 2


# --------------------------------------------------------------------------- the training job


def test_training_job_can_be_stopped():
    from aeviz_core import AutoencoderDetector
    from aeviz_app.session import Dataset
    from aeviz_app.training import TrainingJob, TrainSettings

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 64)).astype(np.float32)
    ds = Dataset.from_images(X, np.zeros(2000, int), "noise")
    settings = TrainSettings(model="ae", latent_dim=2, window=None, epochs=500, batch_size=16)
    det = AutoencoderDetector(**settings.detector_params(ds))
    job = TrainingJob(det, X, None, name="stop-me", dataset=ds, settings=settings).start()
    while not job.history:
        time.sleep(0.05)
    job.stop.set()
    assert job.wait(60)
    assert job.error is None
    assert det.interrupted_ and len(det.history_["loss"]) < 500
    assert job.entry().detector is det


def test_events_table_orders_equal_peaks_longest_first():
    import pandas as pd

    from aeviz_app import event_view

    events = pd.DataFrame({"event": [0, 1, 2, 3], "peak_score": [13.8, 13.8, 20.0, 13.8],
                           "start": [0, 10, 50, 70], "end": [3, 40, 51, 80], "n_rows": [4, 31, 2, 11]})
    shown = event_view.events_for_display(events)
    assert shown["event_id"].tolist() == ["50-51", "10-40", "70-80", "0-3"]


def test_an_event_keeps_its_name_when_the_threshold_moves():
    """The table names an event by its span: lowering the threshold adds an earlier event, which
    renumbered the later ones when they were counted in time order (event 0 became event 1)."""
    import numpy as np

    from aeviz_app import event_view
    from aeviz_core import flags_to_events

    scores = np.zeros(400)
    scores[50:55] = 3.0  # a small early event, flagged at the lower threshold only
    scores[200:240] = 9.0  # a sharp-edged one, flagged at both
    scores[300:302] = 6.0
    shown = {}
    for threshold in (5.0, 2.0):
        events = flags_to_events(scores > threshold, scores)
        shown[threshold] = event_view.events_for_display(events)
        big = events[events["start"] == 200]
        assert len(big) == 1
        shown[threshold + 100] = int(big["event"].iloc[0])  # the time-order count
    assert shown[105.0] != shown[102.0]  # what the count did
    assert shown[5.0]["event_id"].iloc[0] == shown[2.0]["event_id"].iloc[0] == "200-239"
    assert set(shown[5.0]["event_id"]) < set(shown[2.0]["event_id"])


# --------------------------------------------------------------------------- trust


def test_pages_say_when_the_flags_cannot_be_trusted(monkeypatch, tmp_path):
    """A temperature that drifts far past its training range after the training period: the
    Anomalies, Review and Latent pages each name the channel and say from when and what to do."""
    from tests.test_real_data import plant

    frame = plant(n=4000)
    frame.insert(0, "time", pd.date_range("2026-01-01", periods=len(frame), freq="min").astype(str))
    at = upload(monkeypatch, tmp_path, frame, "drift.csv")
    train_tiny(at, epochs=2, period=(0, 1999), window=16, stride=4)
    for page in ("pages/4_anomalies.py", "pages/5_review.py", "pages/3_latent_explorer.py"):
        ok(at.switch_page(page).run())
        notes = [w.value for w in at.warning if "flags cannot be trusted" in w.value
                 or "Can these flags be trusted?" in w.value]
        assert len(notes) == 1, notes  # one box, its notes as a list
        if page == "pages/4_anomalies.py":  # the verdict in the headline, beside the count of flags
            assert " rows flagged (" in notes[0] and "**But these flags cannot be trusted here:**" in notes[0]
        drift = [n for n in notes if "Readings outside their training range" in n]
        assert drift, (page, notes)
        assert "'temp' since row 20" in drift[0] and "(2026-01-02 " in drift[0], drift[0]  # the drift starts at row 2000
        assert "its level not scored" in drift[0], drift[0]
        assert not any("'flow'" in n or "'pressure'" in n for n in notes), notes


def test_an_uploaded_file_with_an_outage_is_scored_around_it(monkeypatch, tmp_path):
    """A 40-row outage of every sensor (longer than the interpolation limit) in an upload: the
    Data page names the gap (rows counted from 1, as people read a file), training and every page
    work, and the gap's rows get no score."""
    from tests.test_real_data import plant

    frame = plant(n=3000)
    frame.loc[1500:1539, :] = np.nan
    frame.insert(0, "time", pd.date_range("2026-01-01", periods=len(frame), freq="min").astype(str))
    at = upload(monkeypatch, tmp_path, frame, "outage.csv")
    assert not at.error, [e.value for e in at.error]
    assert any("gap of 40 row(s) at rows 1501-1540" in w.value for w in at.warning), [w.value for w in at.warning]
    train_tiny(at, epochs=2, period=(0, 1400), window=16, stride=4)
    for page in ("pages/4_anomalies.py", "pages/5_review.py", "pages/3_latent_explorer.py"):
        ok(at.switch_page(page).run())
        assert not at.error, (page, [e.value for e in at.error])
    active = at.session_state["active_model"]
    det = at.session_state["models"][active].detector
    scores = det.anomaly_score(at.session_state["dataset"].sensor.channels)
    assert np.isnan(scores[1500:1540]).all() and np.isfinite(scores[:1500]).all() and np.isfinite(scores[1540:]).all()


def test_the_event_summary_counts_the_events_the_table_lists(trained):
    """The detection numbers' event line merges flags with the same gap as the events table, so on
    the rows it evaluates (those after the training period here) it counts the table's events
    that reach them."""
    import re

    at = trained
    ok(at.switch_page("pages/4_anomalies.py").run())
    evaluated = next(c.value for c in at.caption if c.value.startswith("Evaluated on the"))
    first = 43_200 - int(re.search(r"the ([\d,]+) scored rows", evaluated).group(1).replace(",", ""))
    table = next(d.value for d in at.dataframe if "event_id" in d.value.columns)
    title = next(m.value for m in at.markdown if m.value.startswith("**Flagged events**"))
    assert len(table) == int(re.search(r"\(([\d,]+),", title).group(1).replace(",", ""))  # all listed
    summary = next(c.value for c in at.caption if " flagged events; event recall " in c.value)
    flagged = int(re.match(r"([\d,]+) flagged events", summary).group(1).replace(",", ""))
    assert flagged == int((table["end"] >= first).sum()) > 0
    detected, labelled = (int(v) for v in metric(at, "Events found").split(" of "))
    assert int(metric(at, "False events").replace(",", "")) <= flagged and detected <= labelled


def test_anomalies_and_review_list_the_same_events(trained):
    """One merge gap per model: set on the Anomalies page, the Review queue holds the same events."""
    import re

    at = trained
    ok(at.switch_page("pages/4_anomalies.py").run())
    assert at.number_input(key="anomalies.min_gap").value == 16  # the model's window, as the CLI
    counts = {}
    for gap in (0, 400):
        at.number_input(key="anomalies.min_gap").set_value(gap)
        ok(at.run())
        title = next(m.value for m in at.markdown if m.value.startswith("**Flagged events**"))
        counts[gap] = int(re.search(r"\(([\d,]+),", title).group(1).replace(",", ""))
        ok(at.switch_page("pages/5_review.py").run())
        assert at.number_input(key="review.min_gap").value == gap
        caption = next(c.value for c in at.caption if "flagged events at threshold" in c.value)
        assert int(re.search(r"\*\*([\d,]+)\*\* flagged events", caption).group(1).replace(",", "")) == counts[gap]
        ok(at.switch_page("pages/4_anomalies.py").run())
        assert at.number_input(key="anomalies.min_gap").value == gap
    assert counts[400] < counts[0]
    at.number_input(key="anomalies.min_gap").set_value(16)  # the module's shared session, as it was
    ok(at.run())
    # one answer to "which sensor": the events table and the review queue name the same blamed sensor
    table = next(d.value for d in at.dataframe if "blamed_channel" in d.value.columns)
    from aeviz_app import event_view

    blamed = min(len(table), event_view.TABLE_BLAMED)  # the highest events, first in the table
    assert (table["blamed_channel"].iloc[:blamed] != "").all() and (table["blamed_channel"].iloc[blamed:] == "").all()
    assert table["blame_share"].iloc[:blamed].between(0, 1).all()
    ok(at.switch_page("pages/5_review.py").run())
    queue = next(d.value for d in at.dataframe if "blamed sensor" in d.value.columns)
    named = {int(r.split("–")[0]): b.split(" (")[0] for r, b in zip(queue["rows"], queue["blamed sensor"])}
    in_table = dict(zip(table["start"].iloc[:blamed], table["blamed_channel"].iloc[:blamed]))
    assert {start: named[start] for start in in_table} == in_table  # the same answer on both pages
    assert sum(bool(n) for n in named.values()) == min(len(named), event_view.MAX_BLAMED)
    ok(at.switch_page("pages/4_anomalies.py").run())


def test_train_page_shows_only_the_chosen_kinds_fields(monkeypatch, tmp_path):
    at = new_app(monkeypatch, tmp_path)
    ok(at.switch_page("pages/2_train.py").run())
    keys = {w.key for w in at.number_input} | {w.key for w in at.selectbox}
    assert at.selectbox(key="train.model").value == "ae"
    assert "train.beta" not in keys and "train.weighting" not in keys  # VAE-only fields
    at.selectbox(key="train.model").set_value("vae")
    ok(at.run())
    keys = {w.key for w in at.number_input} | {w.key for w in at.selectbox}
    assert {"train.beta", "train.weighting"} <= keys


def test_threshold_typed_exactly_and_both_operating_points_marked(trained):
    at = trained
    ok(at.switch_page("pages/4_anomalies.py").run())
    at.selectbox(key="anomalies.rule").set_value("percentile")
    ok(at.run())
    at.number_input(key="anomalies.exact.percentile").set_value(99.73)
    ok(at.run())
    assert at.slider(key="anomalies.param.percentile").value == pytest.approx(99.73)
    at.slider(key="anomalies.param.percentile").set_value(97.5)
    ok(at.run())
    assert at.number_input(key="anomalies.exact.percentile").value == pytest.approx(97.5)  # follows the slider
    specs = json.dumps(charts(at))
    assert '"threshold in use"' in specs and '"best F1"' in specs
    assert any("flags" in b.label and "of these rows" in b.label for b in at.button)
    events = next(c.value for c in at.caption if " flagged events; event recall " in c.value)
    assert ", F1 " in events and "Rows caught per labelled event: " in events
    assert metric(at, "Event precision") and metric(at, "False events")
    at.slider(key="anomalies.param.percentile").set_value(99.5)  # the module's shared session, as it was
    ok(at.run())


def test_training_on_too_few_rows_says_what_was_done_instead(monkeypatch, tmp_path):
    from tests.conftest import make_series

    frame = make_series(60)
    at = upload(monkeypatch, tmp_path, frame, "short.csv")
    train_tiny(at, epochs=3, period=(0, 60), window=16, stride=4)
    notes = [w.value for w in at.warning if "Too few rows to hold any out" in w.value]
    assert notes and "threshold was fitted on the training rows" in notes[0], [w.value for w in at.warning]
    assert any("no validation rows" in s.value for s in at.success)
    table = at.dataframe[0].value
    assert table["threshold from"].tolist() == ["training"]


def test_stopped_early_means_early_stopping_ended_the_fit():
    from types import SimpleNamespace

    from aeviz_app.session import stopped_early

    def det(epochs_run, interrupted=False):
        return SimpleNamespace(interrupted_=interrupted, training_plan=lambda: SimpleNamespace(epochs=20),
                               history_={"loss": [1.0] * epochs_run})

    assert stopped_early(det(18)) and not stopped_early(det(20))
    assert not stopped_early(det(7, interrupted=True))  # stopped by the user, not by early stopping


def test_a_file_with_true_false_labels_and_an_outage_gets_figures_not_a_traceback(monkeypatch, tmp_path):
    """GECCO's shape: a TRUE/FALSE ``EVENT`` column (a label, never a sensor) and an outage of every
    sensor that leaves rows without a score; the Anomalies page evaluates the scored rows and says
    how many it left out."""
    from tests.test_real_data import plant

    frame = plant(n=3000)
    frame.loc[2000:2059, :] = np.nan
    event = np.zeros(len(frame), dtype=bool)
    event[2300:2360] = True
    frame.loc[2300:2359, frame.columns[0]] += 4.0
    frame.insert(0, "time", pd.date_range("2026-01-01", periods=len(frame), freq="min").astype(str))
    frame["EVENT"] = np.where(event, "TRUE", "FALSE")
    at = upload(monkeypatch, tmp_path, frame, "water_quality.csv")
    dataset = at.session_state["dataset"]
    assert "EVENT" not in dataset.channel_names and int(dataset.anomaly.sum()) == 60
    assert any("'EVENT' holds only true/false: read as a label" in w.value for w in at.warning)
    train_tiny(at, epochs=2, period=(0, 1800), window=16, stride=4)
    ok(at.switch_page("pages/4_anomalies.py").run())
    assert not at.error, [e.value for e in at.error]
    assert any("rows without a score" in c.value for c in at.caption), [c.value for c in at.caption]
    assert metric(at, "ROC AUC") != "—"
    # row and event figures side by side; an event's recall with how much of it was caught
    assert metric(at, "Events found").endswith("of 1")
    caught = metric(at, "Rows caught")
    assert caught == "—" or caught.endswith("%")
    assert any("Rows caught per labelled event: " in c.value for c in at.caption)


def test_a_manual_threshold_set_for_another_file_is_said_and_can_be_undone(monkeypatch, tmp_path):
    """Nobody set a threshold: the pages say the model's own. A manual one set on the pump sample,
    then another file opened: the Anomalies page says where it was set and what it flags here, and
    one click goes back to the model's own."""
    from aeviz_core import load_sensor_table
    from aeviz_app.session import Dataset

    at = new_app(monkeypatch, tmp_path)
    train_tiny(at)
    ok(at.switch_page("pages/4_anomalies.py").run())
    name = at.session_state["active_model"]
    assert name not in at.session_state["thresholds"]  # opening the page sets nothing
    ok(at.switch_page("pages/3_latent_explorer.py").run())
    assert any("the model's own)" in c.value for c in at.caption)
    ok(at.switch_page("pages/4_anomalies.py").run())
    own = float(metric(at, "Threshold"))
    at.selectbox(key="anomalies.rule").set_value("manual")
    ok(at.run())
    at.number_input(key="anomalies.param.manual").set_value(round(own / 3, 4))
    ok(at.run())
    assert at.session_state["thresholds"][name] == ("manual", round(own / 3, 4))
    assert not any("was set on" in i.value for i in at.info)  # set on this very file
    frame = pd.read_csv(ROOT / "sample_data" / "pump_station.csv", nrows=6000)
    at.session_state["dataset"] = Dataset.from_sensor(load_sensor_table(frame), "tuesday.csv")
    ok(at.run())
    notice = next(i.value for i in at.info if "was set on" in i.value)
    assert "was set on **pump_station.csv**, not on tuesday.csv" in notice and "% of the rows" in notice
    ok(at.switch_page("pages/3_latent_explorer.py").run())
    assert any("set on the Anomalies page for pump_station.csv" in c.value for c in at.caption)
    ok(at.switch_page("pages/4_anomalies.py").run())
    at.button(key="anomalies.own").click()
    ok(at.run())
    assert float(metric(at, "Threshold")) == pytest.approx(own, rel=1e-3)
    assert name not in at.session_state["thresholds"] and not any("was set on" in i.value for i in at.info)


def test_the_percentile_slider_starts_where_percentiles_differ(trained):
    at = trained
    ok(at.switch_page("pages/4_anomalies.py").run())
    at.selectbox(key="anomalies.rule").set_value("percentile")
    ok(at.run())
    det = at.session_state["models"][at.session_state["active_model"]].detector
    fit = np.asarray(det.fit_errors_)
    floor = 100 * np.mean(fit <= fit.min())
    slider = at.slider(key="anomalies.param.percentile")
    if floor > 50:  # the default policy's scores sit at 0 on most normal rows
        assert slider.min == pytest.approx(np.floor(floor * 100) / 100)
        assert any("lower percentiles would all give that value" in c.value for c in at.caption)
    else:
        assert slider.min == 50.0


def test_reading_options_apply_to_the_last_upload_and_the_page_says_what_each_column_became(monkeypatch, tmp_path):
    """A label column typed after the upload, once the uploader has emptied (the page was left):
    the options apply to the file uploaded last; the page says which columns became time, labels and
    channels."""
    from tests.test_real_data import plant

    frame = plant(n=2400)
    frame.insert(0, "time", pd.date_range("2026-01-01", periods=len(frame), freq="min").astype(str))
    frame["status_flag"] = (np.arange(len(frame)) % 400 == 0).astype(int)  # 0/1 under another name
    at = upload(monkeypatch, tmp_path, frame, "plant.csv")
    assert "status_flag" in at.session_state["dataset"].channel_names
    read_as = next(c.value for c in at.caption if c.value.startswith("Read as "))
    assert "time: **time**" in read_as and "labels: none" in read_as and "status_flag" in read_as
    at.file_uploader(key="data.upload").set_value(None)  # what leaving the page does to the uploader
    ok(at.run())
    at.text_input(key="data.labels").set_value("status_flag")
    ok(at.run())
    ds = at.session_state["dataset"]
    assert ds.name == "plant.csv" and "status_flag" not in ds.channel_names and int(ds.anomaly.sum()) == 6
    assert any("Reading options apply to **plant.csv**" in c.value for c in at.caption)
    assert "labels: **status_flag**" in next(c.value for c in at.caption if c.value.startswith("Read as "))
