"""The Review page through ``AppTest``: a tiny model on a 4,000-row slice of the pump
sample, its flagged events in a queue backed by a temporary SQLite review store."""

from __future__ import annotations

import copy
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
PAGE = "pages/5_review.py"
TIMEOUT = 180


@pytest.fixture(scope="module")
def pump_slice():
    """Rows 20,000-23,999 of the pump sample: 2,132 normal rows, then labelled faults."""
    from aeviz_core import load_sensor_table
    from aeviz_app.session import Dataset

    frame = pd.read_csv(ROOT / "sample_data" / "pump_station.csv", skiprows=range(1, 20_001), nrows=4000)
    frame.attrs["name"] = "pump_slice.csv"
    return Dataset.from_sensor(load_sensor_table(frame), "pump_slice.csv")


@pytest.fixture(scope="module")
def tiny(pump_slice):
    """A dense AE (window 16, 2 epochs) trained on the slice's first 2,000 rows (28 minutes at 1 Hz).
    Scored with version 3 (``series_score="smooth"``): the desk needs a queue of several events, and
    the default policy's threshold, fitted on so short a period, flags only this weak model's
    largest fault."""
    from aeviz_core import AutoencoderDetector
    from aeviz_app.session import ModelEntry

    det = AutoencoderDetector(window=16, stride=4, latent_dim=4, hidden=(32,), epochs=2, batch_size=64,
                              random_state=0, series_score="smooth")
    det.fit(pump_slice.sensor.channels.iloc[:2000], anomalous=pump_slice.anomaly[:2000])
    return ModelEntry(name="tiny", detector=det, dataset_key=pump_slice.key, dataset_name=pump_slice.name,
                      settings={"train_end": 2000})


@pytest.fixture
def db_url(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    monkeypatch.setenv("AEVIZ_DB_URL", url)
    monkeypatch.setenv("AEVIZ_MODEL_DIR", str(tmp_path / "models"))
    return url


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def review_app(dataset, entries=(), thresholds=None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["dataset"] = dataset
    at.session_state["models"] = {e.name: e for e in entries}
    at.session_state["active_model"] = entries[-1].name if entries else None
    if thresholds:
        at.session_state["thresholds"] = dict(thresholds)
    ok(at.run())  # the router's first run (the Data page) registers the pages
    return ok(at.switch_page(PAGE).run())


def queue(at: AppTest) -> pd.DataFrame:
    return at.dataframe[0].value


def open_key(at: AppTest) -> str:
    return at.selectbox(key="review.open").value


def decide(at: AppTest, action: str, *, reviewer="ana", note="") -> AppTest:
    at.text_input(key="review.reviewer").set_value(reviewer)
    if note:
        at.text_area(key=f"review.note.{open_key(at)}.0").set_value(note)
    at.button(key=f"review.do.{action}").click()
    return ok(at.run())


def keys_of(entry, dataset):
    """What the store keys the entry's reviews of ``dataset`` by."""
    return entry.detector.model_id_, dataset.sensor.fingerprint()


# --------------------------------------------------------------------------- without a model


def test_without_a_model_the_page_says_what_to_do(db_url, pump_slice):
    at = review_app(pump_slice)
    assert at.title[0].value == "Review"
    assert any("No model fits" in i.value for i in at.info)
    assert len(at.get("page_link")) == 1


def test_images_are_not_reviewed(db_url):
    from aeviz_app.session import Dataset

    images = Dataset.from_images(np.random.default_rng(0).random((20, 8, 8)), np.zeros(20, int), "noise")
    at = review_app(images)
    assert any("sensor data" in i.value for i in at.info)


# --------------------------------------------------------------------------- the queue


def test_queue_lists_the_flagged_events(db_url, pump_slice, tiny):
    from aeviz_core import ReviewStore, flags_to_events

    at = review_app(pump_slice, [tiny])
    det = tiny.detector
    errors, _ = det.score_parts(pump_slice.sensor.channels)
    events = flags_to_events(errors > det.threshold_, errors, time=pump_slice.time, min_gap=det.window)
    table = queue(at)
    assert len(events) >= 3
    assert len(table) == len(events)
    assert list(table["peak score"]) == sorted(table["peak score"], reverse=True)  # highest first
    assert set(table["status"]) == {"open"}
    assert {"blamed sensor", "duration", "start"} <= set(table.columns)
    # the queue names the sensor the detector blames, the events table's answer too
    from aeviz_core.explain import blame_events

    shares = blame_events(det, pump_slice.sensor.channels, list(zip(events["start"], events["end"])))
    names = np.asarray(pump_slice.channel_names)
    by_start = dict(zip(events["start"], names[shares.argmax(axis=1)]))
    stored_rows = {int(r.split("–")[0]): b for r, b in zip(table["rows"], table["blamed sensor"])}
    assert all(stored_rows[s].startswith(by_start[s] + " (") for s in by_start), (stored_rows, by_start)
    # the events were recorded in the store, the open one is the highest
    model_id, fingerprint = keys_of(tiny, pump_slice)
    stored = ReviewStore(db_url).queue(model_id, fingerprint, events)
    assert stored["version"].eq(0).all()
    assert open_key(at) == table["rows"].iloc[0].replace("–", "-")
    # the open event's charts: scores strip, overlay, contributions, latent scatter
    assert len(at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")) == 4
    assert at.metric[0].value == str(len(events))


def test_sorting_by_time(db_url, pump_slice, tiny):
    at = review_app(pump_slice, [tiny])
    at.segmented_control(key="review.sort").set_value("time")
    ok(at.run())
    starts = pd.to_datetime(queue(at)["start"])
    assert starts.is_monotonic_increasing


def test_confirming_writes_an_audited_review_and_moves_on(db_url, pump_slice, tiny):
    from aeviz_core import ReviewStore

    at = review_app(pump_slice, [tiny])
    first = open_key(at)
    second = queue(at)["rows"].iloc[1].replace("–", "-")
    decide(at, "confirmed", note="bearing noise, told maintenance")
    assert any("saved by ana" in s.value for s in at.success)
    assert any("saved by ana" in t.value for t in at.toast)  # also where the operator is looking
    assert open_key(at) == second  # "then open the next event"
    store = ReviewStore(db_url)
    model_id, fingerprint = keys_of(tiny, pump_slice)
    start, end = map(int, first.split("-"))
    review = store.get_review(model_id, fingerprint, start, end)
    assert (review.status, review.reviewer, review.note, review.version) == (
        "confirmed", "ana", "bearing noise, told maintenance", 1)
    audit = store.audit(model_id, fingerprint)
    assert len(audit) == 1 and audit["new_status"].iloc[0] == "confirmed"
    assert queue(at)["status"].iloc[0] == "confirmed anomaly"
    assert at.metric[2].label == "Confirmed anomaly" and at.metric[2].value == "1"
    # the reviewer's name stays for the next decision
    assert at.text_input(key="review.reviewer").value == "ana"


def test_a_decision_needs_a_name(db_url, pump_slice, tiny):
    at = review_app(pump_slice, [tiny])
    decide(at, "dismissed", reviewer="  ")
    assert any("Enter your name" in w.value for w in at.warning)
    assert set(queue(at)["status"]) == {"open"}


def test_next_and_previous(db_url, pump_slice, tiny):
    at = review_app(pump_slice, [tiny])
    keys = [r.replace("–", "-") for r in queue(at)["rows"]]
    assert open_key(at) == keys[0]
    assert at.button(key="review.prev").disabled
    at.button(key="review.next").click()
    ok(at.run())
    assert open_key(at) == keys[1]
    assert any("Event 2 of" in h.value for h in at.subheader)
    at.button(key="review.next").click()
    ok(at.run())
    at.button(key="review.prev").click()
    ok(at.run())
    assert open_key(at) == keys[1]
    at.selectbox(key="review.open").set_value(keys[-1])
    ok(at.run())
    assert at.button(key="review.next").disabled


def test_status_filter(db_url, pump_slice, tiny):
    at = review_app(pump_slice, [tiny])
    n = len(queue(at))
    decide(at, "confirmed")
    decide(at, "dismissed")
    decide(at, "follow_up")
    at.pills(key="review.statuses").set_value(["confirmed"])
    ok(at.run())
    assert list(queue(at)["status"]) == ["confirmed anomaly"]
    at.pills(key="review.statuses").set_value(["open", "follow_up"])
    ok(at.run())
    assert len(queue(at)) == n - 2
    assert set(queue(at)["status"]) == {"open", "needs follow-up"}
    at.pills(key="review.statuses").set_value([])
    ok(at.run())
    assert any("No event has the statuses" in i.value for i in at.info)
    # precision of the flags: one confirmed, one dismissed
    assert next(m.value for m in at.metric if m.label == "Precision") == "50%"


def test_confirming_in_an_open_only_queue_opens_the_next_open_event(db_url, pump_slice, tiny):
    at = review_app(pump_slice, [tiny])
    at.pills(key="review.statuses").set_value(["open"])
    ok(at.run())
    keys = [r.replace("–", "-") for r in queue(at)["rows"]]
    at.checkbox(key="review.advance").uncheck()
    decide(at, "dismissed")
    assert open_key(at) == keys[1]  # the dismissed event left; the next one took its place
    assert len(queue(at)) == len(keys) - 1


@pytest.fixture
def served(monkeypatch):
    """File name -> bytes of every file a download button serves."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    files = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def keep(self, data, mimetype, kind, filename=None):
        files[filename] = data
        return original(self, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    return files


def test_export_gives_csv(db_url, pump_slice, tiny, served):
    at = review_app(pump_slice, [tiny])
    decide(at, "confirmed", note="a note, with a comma")
    assert f"Export {len(queue(at))} (CSV)" == at.get("download_button")[0].proto.label
    name, data = next((n, d) for n, d in served.items() if n and n.endswith(".csv"))
    assert name == "reviews_tiny_pump_slice.csv", name  # the data's extension is not doubled
    table = pd.read_csv(io.BytesIO(data))
    assert len(table) == len(queue(at))
    # an event's rows named as in the events file of aeviz score (aeviz refit reads either)
    assert {"start_row", "end_row", "peak_score", "status", "note", "reviewer", "reviewed_at", "model_id",
            "data_fingerprint"} <= set(table.columns)
    assert (table["status"] == "confirmed anomaly").sum() == 1  # the page's labels
    assert set(table["status"]) <= {"open", "confirmed anomaly", "false alarm", "needs follow-up"}
    assert "a note, with a comma" in set(table["note"].dropna())
    assert {"tags", "comments"} <= set(table.columns)


def test_tags_and_a_comment_thread_are_saved_filtered_and_exported(db_url, pump_slice, tiny, served):
    from aeviz_core import ReviewStore

    at = review_app(pump_slice, [tiny])
    first = open_key(at)
    assert "sensor fault" in at.multiselect(key=f"review.tags.{first}.0").options  # the common tags
    at.multiselect(key=f"review.tags.{first}.0").set_value(["sensor fault", "pump 2"])  # one typed anew
    at.text_input(key="review.reviewer").set_value("ana")
    at.button(key="review.do.confirmed").click()
    ok(at.run())
    assert "tagged pump 2, sensor fault" in at.toast[0].value
    second = open_key(at)
    assert second != first  # the next event opened
    # a comment on the open event: signed, stored, shown in its thread, counted in the queue
    def thread_box():
        return [e.proto.expanded for e in at.expander if e.label.startswith("Comments (0)")]

    assert thread_box() == [False]  # an empty thread starts closed
    at.text_area(key="review.comment").set_value("bearing noise, ask maintenance")
    ok(at.run())  # written, not yet posted (Ctrl+Enter reruns the page): the thread stays open
    assert thread_box() == [True]
    at.button(key="review.post").click()
    ok(at.run())
    model_id, fingerprint = keys_of(tiny, pump_slice)
    store = ReviewStore(db_url)
    start, end = (int(v) for v in second.split("-"))
    thread = store.comments(fingerprint, start, end)
    assert thread[["author", "body"]].values.tolist() == [["ana", "bearing noise, ask maintenance"]]
    assert "bearing noise, ask maintenance" in [t.value for t in at.text]
    assert at.text_area(key="review.comment").value == ""  # posted: the box is empty again
    table = queue(at)
    assert table.loc[table["rows"] == second.replace("-", "–"), "comments"].tolist() == [1]
    whole = pd.read_csv(io.BytesIO(served["reviews_tiny_pump_slice.csv"]), keep_default_na=False)
    text = whole.loc[whole["start_row"] == start, "comment_text"].iloc[0]  # the export carries the thread's text
    assert text.startswith("ana (") and text.endswith("UTC): bearing noise, ask maintenance")
    assert store.get_review(model_id, fingerprint, *map(int, first.split("-"))).tags == ("pump 2", "sensor fault")
    # the tag filter: the queue and its export hold the tagged event alone
    assert "pump 2" in at.selectbox(key="review.tag").options
    at.selectbox(key="review.tag").set_value("pump 2")
    ok(at.run())
    assert queue(at)["rows"].tolist() == [first.replace("-", "–")]
    assert queue(at)["tags"].tolist() == ["pump 2, sensor fault"]
    assert at.get("download_button")[0].proto.label == "Export 1 (CSV)"
    exported = pd.read_csv(io.BytesIO(served["reviews_tiny_pump_slice_pump_2.csv"]))
    assert exported["tags"].tolist() == ["pump 2, sensor fault"]


def test_a_conflicting_change_shows_a_warning_and_reloads(db_url, pump_slice, tiny):
    from aeviz_core import ReviewStore

    at = review_app(pump_slice, [tiny])
    key = open_key(at)
    start, end = map(int, key.split("-"))
    model_id, fingerprint = keys_of(tiny, pump_slice)
    # someone else dismisses the event while "ana" has it open
    ReviewStore(db_url).set_review(model_id, fingerprint, start, end, "dismissed", reviewer="bob",
                                   note="sensor test", expected_version=0)
    decide(at, "confirmed")
    warning = " ".join(w.value for w in at.warning)
    assert "Not saved" in warning and "bob" in warning and "false alarm" in warning
    review = ReviewStore(db_url).get_review(model_id, fingerprint, start, end)
    assert (review.status, review.reviewer, review.version) == ("dismissed", "bob", 1)
    assert open_key(at) == key  # reloaded, not moved on
    assert queue(at)["status"].iloc[0] == "false alarm"
    assert any("bob" in m.value and "sensor test" in m.value for m in at.markdown)
    # deciding again on the reloaded event overrules it
    at.text_input(key="review.reviewer").set_value("ana")
    at.button(key="review.do.confirmed").click()
    ok(at.run())
    assert ReviewStore(db_url).get_review(model_id, fingerprint, start, end).status == "confirmed"


def test_a_new_model_shows_old_decisions_as_stale(db_url, pump_slice, tiny):
    at = review_app(pump_slice, [tiny])
    decide(at, "confirmed", note="real")
    retrained = copy.copy(tiny)
    retrained.name = "retrained"
    retrained.detector = copy.copy(tiny.detector)
    retrained.detector.model_id_ = "0123456789abcdef"  # what a retraining gives: other weights
    at2 = review_app(pump_slice, [tiny, retrained])
    assert "confirmed anomaly (stale)" in set(queue(at2)["status"])
    at2.selectbox(key="review.open").set_value(
        queue(at2)["rows"][queue(at2)["status"] == "confirmed anomaly (stale)"].iloc[0].replace("–", "-"))
    ok(at2.run())
    assert any("under another model" in w.value for w in at2.warning)
    assert next(m.value for m in at2.metric if m.label == "Precision") == "—"


def test_uses_the_threshold_chosen_on_the_anomalies_page(db_url, pump_slice, tiny):
    at = review_app(pump_slice, [tiny], thresholds={"tiny": ("percentile", 95.0)})
    expected = tiny.detector.with_threshold("percentile", 95.0).threshold_
    caption = next(c.value for c in at.caption if "flagged events at threshold" in c.value)
    assert f"{expected:.4g}" in caption and "set on the Anomalies page" in caption
    assert tiny.detector.threshold_ != expected  # the shared detector is not touched


def test_the_store_url_comes_from_the_secrets(db_url, pump_slice, tiny, tmp_path):
    from aeviz_core import ReviewStore

    secret_url = f"sqlite:///{tmp_path / 'from_secrets.db'}"
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets["connections"] = {"reviews": {"url": secret_url}}
    at.session_state["dataset"] = pump_slice
    at.session_state["models"] = {"tiny": tiny}
    at.session_state["active_model"] = "tiny"
    ok(at.run())
    ok(at.switch_page(PAGE).run())
    assert any("from_secrets.db" in c.value for c in at.caption)
    decide(at, "follow_up")
    model_id, fingerprint = keys_of(tiny, pump_slice)
    assert len(ReviewStore(secret_url).audit(model_id, fingerprint)) == 1
    assert ReviewStore(db_url).audit(model_id, fingerprint).empty  # not the $AEVIZ_DB_URL one


def test_an_unreachable_database_is_a_message(monkeypatch, pump_slice, tiny):
    pytest.importorskip("psycopg2")
    monkeypatch.setenv("AEVIZ_DB_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/none?connect_timeout=2")
    at = review_app(pump_slice, [tiny])
    assert any("Cannot open the review store" in e.value for e in at.error)


def test_another_model_opens_its_queue_at_the_first_open_event(db_url, pump_slice, tiny):
    """Not at the position the last queue was left at ("Event 2 of N")."""
    at = review_app(pump_slice, [tiny])
    first = open_key(at)
    decide(at, "confirmed")
    decide(at, "dismissed")  # two decided: the page moved on to the third event
    third = open_key(at)
    assert third != first
    other = copy.copy(tiny)
    other.name = "other"
    other.detector = copy.copy(tiny.detector)
    other.detector.model_id_ = "fedcba9876543210"
    at2 = review_app(pump_slice, [tiny, other])  # opens on "other": its decisions are stale ones
    assert open_key(at2) == queue(at2)["rows"].iloc[0].replace("–", "-")
    at2.selectbox(key="review.model").set_value("tiny")
    ok(at2.run())
    assert open_key(at2) == third  # tiny's queue opens at its first event still open


def test_similar_events_are_listed_and_one_click_applies_a_decision(db_url, pump_slice, tiny):
    from aeviz_core import ReviewStore

    at = review_app(pump_slice, [tiny])
    first = open_key(at)
    at.multiselect(key=f"review.tags.{first}.0").set_value(["sensor fault"])
    decide(at, "confirmed", note="stuck bearing sensor")
    likes = [b for b in at.button if b.key and b.key.startswith("review.like.")]
    assert len(likes) == 3  # the three nearest events of the one now open
    applicable = [b for b in likes if not b.disabled]
    if not applicable:  # the decided event is not among this one's nearest: open one it is near
        at.selectbox(key="review.open").set_value(likes[0].key.removeprefix("review.like."))
        ok(at.run())
        applicable = [b for b in at.button if b.key and b.key.startswith("review.like.") and not b.disabled]
    target = open_key(at)
    assert applicable and applicable[0].label == "Apply: confirmed anomaly"
    source = applicable[0].key.removeprefix("review.like.")
    applicable[0].click()
    ok(at.run())
    model_id, fingerprint = keys_of(tiny, pump_slice)
    review = ReviewStore(db_url).get_review(model_id, fingerprint, *map(int, target.split("-")))
    assert review.status == "confirmed" and review.tags == ("sensor fault",)
    assert review.note.startswith(f"as rows {source.replace('-', '–')}")
    assert any("as rows" in t.value for t in at.toast)


def test_a_decision_on_earlier_data_is_offered_for_the_same_kind_of_event(db_url, pump_slice, tiny):
    """An operator's decision on yesterday's file is offered, with one click to apply it, for the
    event of today's file that looks like it: the store keeps each queue's event looks."""
    from aeviz_core import ReviewStore, load_sensor_table
    from aeviz_app.session import Dataset, ModelEntry

    at = review_app(pump_slice, [tiny])
    first = open_key(at)
    assert not any(m.value == "**Decided in earlier data**" for m in at.markdown)  # nothing decided yet
    at.multiselect(key=f"review.tags.{first}.0").set_value(["sensor fault"])
    decide(at, "confirmed", note="stuck bearing sensor")
    assert not any(b.key and b.key.startswith("review.past.") for b in at.button)  # its own data is not "earlier"

    frame = pd.read_csv(ROOT / "sample_data" / "pump_station.csv", skiprows=range(1, 20_001), nrows=4000)
    frame.loc[3, "flow"] += 0.01  # the next file: another fingerprint, the same events
    frame.attrs["name"] = "pump_day2.csv"
    day2 = Dataset.from_sensor(load_sensor_table(frame), "pump_day2.csv")
    entry = ModelEntry(name="tiny", detector=tiny.detector, dataset_key=day2.key, dataset_name=day2.name,
                       settings=tiny.settings)
    at2 = review_app(day2, [entry])
    assert open_key(at2) == first
    assert any(m.value == "**Decided in earlier data**" for m in at2.markdown)
    line = next(m.value for m in at2.markdown if m.value.startswith("pump\\_slice\\.csv · "))  # shown as text
    assert "**confirmed anomaly** by ana" in line and "sensor fault" in line and "distance 0.00" in line
    apply = at2.button(key="review.past.0")
    assert apply.label == "Apply: confirmed anomaly"
    at2.text_input(key="review.reviewer").set_value("ben")  # today's operator, who has decided nothing yet
    apply.click()
    ok(at2.run())
    model_id, fingerprint = keys_of(entry, day2)
    assert fingerprint != keys_of(tiny, pump_slice)[1]
    review = ReviewStore(db_url).get_review(model_id, fingerprint, *map(int, first.split("-")))
    assert review.status == "confirmed" and review.tags == ("sensor fault",)
    assert review.note.startswith(f"as rows {first.replace('-', '–')} of pump_slice.csv: stuck bearing sensor")


def test_a_stale_decisions_tags_are_shown_not_carried(db_url, pump_slice, tiny):
    from aeviz_core import ReviewStore

    at = review_app(pump_slice, [tiny])
    first = open_key(at)
    _, fingerprint = keys_of(tiny, pump_slice)
    start, end = map(int, first.split("-"))
    ReviewStore(db_url).set_review("ae-older", fingerprint, start, end, "dismissed", reviewer="bo",
                                   tags=["maintenance"])
    ok(at.run())
    assert any("with tags maintenance" in w.value for w in at.warning)  # the stale notice says them
    assert at.multiselect(key=f"review.tags.{first}.0").value == []  # not pre-filled into this decision


def test_a_new_model_takes_the_queue_with_a_notice_not_silently(db_url, pump_slice, tiny):
    from aeviz_core import AutoencoderDetector, ReviewStore
    from aeviz_app.session import ModelEntry

    det = AutoencoderDetector(window=16, stride=4, latent_dim=4, hidden=(32,), epochs=2, batch_size=64,
                              random_state=1).fit(pump_slice.sensor.channels.iloc[:2000],
                                                  anomalous=pump_slice.anomaly[:2000])
    newer = ModelEntry(name="newer", detector=det, dataset_key=pump_slice.key, dataset_name=pump_slice.name,
                       settings={"train_end": 2000})
    at = review_app(pump_slice, [newer, tiny])  # opens on tiny, the active model
    assert at.selectbox(key="review.model").value == "tiny"
    assert not any("queue (it was" in i.value for i in at.info)  # the first queue: nothing to say
    decide(at, "confirmed")
    at.session_state["active_model"] = "newer"  # e.g. a training that just finished
    at.selectbox(key="review.model").set_value("newer")
    ok(at.run())
    notice = [i.value for i in at.info if "queue (it was" in i.value]
    assert notice and "**newer**'s queue (it was **tiny**'s)" in notice[0]
    confirmed = next(m.value for m in at.metric if m.label == "Confirmed anomaly")
    assert confirmed == "0"  # the counters count this model's decisions only (tiny's shows as stale)
    assert ReviewStore(db_url).audit()["model_id"].tolist() == [tiny.detector.model_id_]
    decide(at, "dismissed")
    assert not any("queue (it was" in i.value for i in at.info)  # gone after the first decision


# --------------------------------------------------------------------------- teaching the model


def test_an_event_like_a_dismissed_one_of_earlier_data_says_so_and_the_queue_filters_by_it(db_url, pump_slice, tiny):
    """A dismissal on yesterday's file marks today's events that look like it, in the queue's last
    column; the queue filters and sorts by it; nothing is dismissed automatically."""
    from aeviz_core import load_sensor_table
    from aeviz_app.session import Dataset, ModelEntry

    at = review_app(pump_slice, [tiny])
    first = open_key(at)
    at.multiselect(key=f"review.tags.{first}.0").set_value(["start-up"])
    decide(at, "dismissed")
    table = queue(at)
    assert "like a dismissed event" in table.columns

    frame = pd.read_csv(ROOT / "sample_data" / "pump_station.csv", skiprows=range(1, 20_001), nrows=4000)
    frame.loc[3, "flow"] += 0.01  # the next file: the same events, another fingerprint
    day2 = Dataset.from_sensor(load_sensor_table(frame), "pump_day2.csv")
    entry = ModelEntry(name="tiny", detector=tiny.detector, dataset_key=day2.key, dataset_name=day2.name,
                       settings=tiny.settings)
    at2 = review_app(day2, [entry])
    table = queue(at2)
    a, b = first.split("-")
    own = table[table["rows"] == f"{a}–{b}"]
    assert own["like a dismissed event"].iloc[0] == f"like rows {a}–{b} of pump_slice.csv, dismissed by ana (start-up)"
    assert (table["status"] == "open").all()  # a hint, never a decision
    liked = int(table["like a dismissed event"].astype(bool).sum())
    assert 1 <= liked
    at2.toggle(key="review.like_only").set_value(True)
    ok(at2.run())
    assert len(queue(at2)) == liked and queue(at2)["like a dismissed event"].astype(bool).all()
    at2.toggle(key="review.like_only").set_value(False)
    at2.segmented_control(key="review.sort").set_value("like")
    ok(at2.run())
    assert queue(at2)["rows"].iloc[0] == f"{a}–{b}"  # the nearest look (distance 0) first


def update_the_model(at):
    """Click "Update the model", wait for the refit, show its result: ``(job, metrics by label)``."""
    at.button(key="review.refit").click()
    ok(at.run())
    job = at.session_state["review.refit_job"]
    assert job.wait(120) and job.error is None, job.error
    ok(at.run())
    return job, {m.label: m.value for m in at.metric}


def test_decisions_teach_a_new_version_that_is_adopted_with_its_queue(db_url, pump_slice, tiny):
    """Dismiss and confirm, update the model: the page shows what it used, then the new version's
    figures beside the model's; adopting it makes it the active model, records the version with the
    decisions it used, and carries the decisions to its queue."""
    from aeviz_core import ReviewStore

    at = review_app(pump_slice, [tiny])
    n_events = len(queue(at))
    assert n_events >= 3
    decide(at, "dismissed", note="start-up")
    decide(at, "dismissed")
    decide(at, "confirmed", note="real")
    teach = next(e for e in at.expander if e.label.startswith("Teach the model"))
    assert teach.label == "Teach the model: 3 decision(s) to learn from"
    assert any("**2** dismissed event(s) become normal rows" in m.value for m in at.markdown)
    job, metrics = update_the_model(at)
    assert metrics["Confirmed events still flagged"].endswith("of 1")
    assert metrics["Dismissed events' rows still flagged"].endswith("%")
    assert metrics["Rows flagged"].endswith("%")
    result = job.result
    assert result.n_dismissed == 2 and result.n_confirmed == 1
    adopt = at.button(key="review.adopt")
    assert adopt.label == "Adopt tiny v2"
    adopt.click()
    ok(at.run())
    assert at.session_state["active_model"] == "tiny v2"
    new = at.session_state["models"]["tiny v2"]
    assert new.source == "refit" and new.settings["parent"] == "tiny"
    assert new.detector.model_id_ != tiny.detector.model_id_
    assert at.session_state["models"]["tiny"].detector is tiny.detector  # the parent stays, unchanged
    store = ReviewStore(db_url)
    fingerprint = pump_slice.sensor.fingerprint()
    made = store.versions(fingerprint)
    assert list(made["model_id"]) == [new.detector.model_id_]
    assert made["parent_model_id"].iloc[0] == tiny.detector.model_id_ and made["created_by"].iloc[0] == "ana"
    assert sorted(d["status"] for d in made["decisions"].iloc[0]) == ["confirmed", "dismissed", "dismissed"]
    audit = store.audit(new.detector.model_id_, fingerprint)
    assert len(audit) == 3 and audit["reviewer"].str.startswith("carried by ana from").all()
    assert any("tiny v2" in m.value and "from tiny" in m.value for m in at.markdown)  # the versions note
    assert any("adopted" in t.value for t in at.toast)


def test_a_model_taught_by_confirmed_events_alone_says_none_was_dismissed(db_url, pump_slice, tiny):
    """With no dismissed event the page names that, rather than a share of no rows ("nan%")."""
    at = review_app(pump_slice, [tiny])
    decide(at, "confirmed", note="real")
    job, metrics = update_the_model(at)
    assert metrics["Dismissed events' rows still flagged"] == "none dismissed"
    assert metrics["Confirmed events still flagged"].endswith("of 1")


def test_similar_events_are_numbered_as_the_page_counts_events(db_url, pump_slice, tiny):
    """"Event 1 of N" counts the queue as listed; the table and the similar events use the same
    numbers (never the detector's 0-based event ids)."""
    at = review_app(pump_slice, [tiny])
    table = queue(at)
    assert table["event"].tolist() == list(range(1, len(table) + 1))
    listed = {row: i + 1 for i, row in enumerate(table["rows"])}
    lines = [m.value for m in at.markdown if " · " in m.value and "distance " in m.value]
    assert lines
    for line in lines:
        if line.startswith("#"):
            number = int(line.split(" ")[0][1:])
            assert 1 <= number <= len(table)
    assert "#0 " not in " ".join(lines)
    assert at.subheader[1].value.startswith("Event 1 of ") or any(h.value.startswith("Event 1 of ") for h in at.subheader)
    assert listed


def test_what_people_type_is_shown_as_text_never_as_markdown(db_url, pump_slice, tiny):
    """A note written as an image, a name in bold, a tag with a dollar: other operators' pages show
    the characters (no image fetched, no link, no bold, no formula)."""
    at = review_app(pump_slice, [tiny])
    first = open_key(at)
    at.multiselect(key=f"review.tags.{first}.0").set_value(["$x$"])
    decide(at, "confirmed", reviewer="**bob**", note="![x](https://host.example/pixel.png) [link](https://e.example)")
    at.selectbox(key="review.open").set_value(first)
    ok(at.run())
    status = next(m.value for m in at.markdown if m.value.startswith("Status: "))
    assert "by \\*\\*bob\\*\\*" in status and "\\$x\\$" in status
    assert "\\!\\[x\\]\\(https\\://host\\.example/pixel\\.png\\)" in status and "\\[link\\]" in status
    assert "](https://" not in status and "![" not in status
    flashes = [s.value for s in at.success] + [t.value for t in at.toast]
    assert not any("**bob**" in f for f in flashes)
    similar = [m.value for m in at.markdown if "distance " in m.value]
    assert not any("![" in line or "](http" in line or "**bob**" in line for line in similar)
