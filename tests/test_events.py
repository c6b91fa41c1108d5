"""Events: one definition, and the events file of ``aeviz score --events`` (streamed)."""

import numpy as np
import pandas as pd
import pytest

from aeviz_core import save_detector
from aeviz_core.cli import main
from aeviz_core.events import EVENT_FILE_COLUMNS, EventWriter, event_key, event_metrics, event_spans, parse_event_key


def test_event_spans_merge_runs_at_most_min_gap_apart():
    flags = np.zeros(40, bool)
    flags[[3, 4, 5, 8, 9, 20, 30, 31]] = True
    assert event_spans(flags) == [(3, 5), (8, 9), (20, 20), (30, 31)]
    assert event_spans(flags, min_gap=2) == [(3, 9), (20, 20), (30, 31)]
    assert event_spans(flags, min_gap=9) == [(3, 9), (20, 31)]  # 10 rows between 9 and 20, 9 between 20 and 30
    assert event_spans(flags, min_gap=10) == [(3, 31)]
    assert event_spans(np.zeros(5)) == []
    assert parse_event_key(event_key(3, 9)) == (3, 9)


def test_the_writer_fed_in_any_pieces_gives_the_same_events(series_detector, faulty_series):
    """Readings and scores arrive in pieces of different sizes (scores lag behind, as a streaming
    scorer returns them): the events, their blame included, equal those of the whole series."""
    det = series_detector
    X = faulty_series.copy()
    X.loc[2600:2640, "c"] = X.loc[2600, "c"]  # a stuck sensor besides the spike on 'b'
    scores = det.anomaly_score(X)
    names = list(X.columns)

    def run(value_pieces, score_pieces):
        writer = EventWriter(det, names, det.threshold_, det.window)
        v = np.array_split(X.to_numpy(), value_pieces)
        s = np.array_split(scores, score_pieces)
        for i in range(max(len(v), len(s))):
            if i < len(v):
                writer.add_values(v[i])
            if i < len(s):
                writer.add_scores(s[i])
        return writer.finish()

    whole = run(1, 1)
    assert list(whole.columns) == list(EVENT_FILE_COLUMNS)
    spans = event_spans(scores > det.threshold_, det.window)
    assert list(zip(whole["start_row"], whole["end_row"])) == spans
    for pieces in ((7, 3), (30, 30), (2, 11)):
        pd.testing.assert_frame_equal(run(*pieces), whole)
    spike = whole[(whole["start_row"] <= 2009) & (whole["end_row"] >= 2000)].iloc[0]
    assert spike["blamed_channel"] == "b" and spike["blame_share"] > 0.5
    assert spike["event_id"] == f"{spike['start_row']}-{spike['end_row']}"
    np.testing.assert_allclose(spike["blame_share"],
                               det.blame(X, spike["start_row"], spike["end_row"]).max(), atol=1e-3)
    stuck = whole[(whole["start_row"] <= 2640) & (whole["end_row"] >= 2600)].iloc[0]
    assert stuck["blamed_channel"] == "c"
    assert spike["area"] > 0 and spike["peak_score"] > det.threshold_
    assert spike["duration"] == spike["end_row"] - spike["start_row"] + 1  # rows, without times


def test_aeviz_score_writes_events_streamed_as_in_memory(series_detector, faulty_series, tmp_path):
    det = series_detector
    frame = faulty_series.copy()
    frame.loc[1380:1420, "c"] += 1.5  # across the chunk boundary at row 1400 (700-row chunks)
    frame.insert(0, "time", pd.date_range("2026-03-01", periods=len(frame), freq="s").astype(str))
    data = tmp_path / "series.csv"
    frame.to_csv(data, index=False)
    model = save_detector(det, tmp_path / "model", extra={"time_col": "time"})
    outs = {}
    for rows in (700, 100_000):
        events = tmp_path / f"events_{rows}.csv"
        assert main(["score", str(data), "--model", str(model), "--out", str(tmp_path / f"s{rows}.csv"),
                     "--events", str(events), "--chunk-rows", str(rows)]) == 0
        outs[rows] = pd.read_csv(events)
    pd.testing.assert_frame_equal(outs[700], outs[100_000])
    table = outs[700]
    assert list(table.columns) == list(EVENT_FILE_COLUMNS)
    scores = pd.read_csv(tmp_path / "s700.csv")
    assert list(zip(table["start_row"], table["end_row"])) == event_spans(scores["flag"].to_numpy(), det.window)
    spike = table[(table["start_row"] <= 2009) & (table["end_row"] >= 2000)].iloc[0]
    assert spike["blamed_channel"] == "b"
    assert spike["start_time"] == frame["time"].iloc[spike["start_row"]]
    assert spike["duration"] == spike["end_row"] - spike["start_row"]  # one row a second
    shifted = table[(table["start_row"] <= 1420) & (table["end_row"] >= 1380)]
    assert len(shifted) >= 1 and (shifted["blamed_channel"] == "c").all()
    # one answer to "which sensor": the file's blame is the app's (its tables, chart and review
    # queue blame their events with explain.blame_events, from the same spans)
    from aeviz_core.explain import blame_events

    shares = blame_events(det, frame.drop(columns="time"), list(zip(table["start_row"], table["end_row"])))
    names = np.asarray(frame.columns[1:])
    assert table["blamed_channel"].tolist() == names[shares.argmax(axis=1)].tolist()
    np.testing.assert_allclose(table["blame_share"], shares.max(axis=1), atol=5e-5)  # the file rounds to 4 places


def test_merge_gap_needs_events_and_is_checked(series_detector, faulty_series, tmp_path, capsys):
    data = tmp_path / "series.csv"
    frame = faulty_series.copy()
    frame.loc[2600:2640, "c"] = frame.loc[2600, "c"]  # a stuck sensor besides the spike: two events
    frame.to_csv(data, index=False)
    model = save_detector(series_detector, tmp_path / "model")
    assert main(["score", str(data), "--model", str(model), "--out", str(tmp_path / "s.csv"),
                 "--merge-gap", "5"]) == 2
    assert "--merge-gap needs --events" in capsys.readouterr().err
    assert main(["score", str(data), "--model", str(model), "--out", str(tmp_path / "s.csv"),
                 "--events", str(tmp_path / "e.csv"), "--merge-gap", "-1"]) == 2
    assert "--merge-gap must be >= 0" in capsys.readouterr().err
    default, wide = tmp_path / "e.csv", tmp_path / "wide.csv"
    for path, extra in ((default, []), (wide, ["--merge-gap", "2000"])):
        assert main(["score", str(data), "--model", str(model), "--out", str(tmp_path / "s.csv"),
                     "--events", str(path), *extra]) == 0
    assert 1 <= len(pd.read_csv(wide)) < len(pd.read_csv(default))


@pytest.mark.parametrize("gap", [0, 16])
def test_no_flag_no_event(series_detector, series, gap):
    writer = EventWriter(series_detector, list(series.columns), np.inf, gap)
    writer.add_values(series.to_numpy())
    writer.add_scores(series_detector.anomaly_score(series))
    assert writer.finish().empty


def test_the_models_event_gap_is_saved_and_used_by_default(series_detector, faulty_series, tmp_path):
    from sklearn.base import clone

    from aeviz_core import AutoencoderDetector, load_detector

    assert series_detector.event_gap == "auto" and series_detector.event_gap_rows() == series_detector.window
    wide = clone(series_detector).set_params(event_gap=400)
    wide.__dict__.update({k: v for k, v in series_detector.__dict__.items() if k.endswith("_")})  # same fit
    model = save_detector(wide, tmp_path / "model")
    assert load_detector(model).event_gap_rows() == 400
    data = tmp_path / "series.csv"
    noisy = faulty_series.copy()
    noisy.loc[2300:2310, "a"] += 3.0  # a second fault 290 rows after the first
    noisy.to_csv(data, index=False)
    counts = {}
    for name, extra in (("model", []), ("zero", ["--merge-gap", "0"])):
        assert main(["score", str(data), "--model", str(model), "--out", str(tmp_path / "s.csv"),
                     "--events", str(tmp_path / f"{name}.csv"), *extra]) == 0
        counts[name] = pd.read_csv(tmp_path / f"{name}.csv")
    merged = counts["model"]
    assert ((merged["start_row"] <= 2000) & (merged["end_row"] >= 2310)).sum() == 1  # one event, gap 400
    assert len(counts["zero"]) > len(merged)
    with pytest.raises(ValueError, match="event_gap must be 'auto' or an integer >= 0"):
        AutoencoderDetector(window=8, event_gap=-1, epochs=1).fit(faulty_series)


def test_equal_peaks_order_by_area_then_length_then_start():
    from aeviz_core.events import order_events

    events = pd.DataFrame({"start": [50, 10, 30, 70], "end": [60, 12, 45, 80],
                           "peak_score": [5.0, 5.0, 5.0, 9.0], "area": [3.0, 7.0, 3.0, 1.0]})
    assert order_events(events)["start"].tolist() == [70, 10, 30, 50]  # peak, then area, then length
    shuffled = events.sample(frac=1.0, random_state=1)
    assert order_events(shuffled)["start"].tolist() == [70, 10, 30, 50]  # deterministic, any input order
    without_area = events.drop(columns="area")
    assert order_events(without_area)["start"].tolist() == [70, 30, 50, 10]  # the longest first


def test_event_metrics_say_how_much_of_each_labelled_event_was_caught():
    labels = np.zeros(100, dtype=int)
    labels[10:30] = 1
    labels[60:70] = 1
    one_row = event_metrics(pd.DataFrame({"start": [12], "end": [12]}), labels)
    assert one_row["event_recall"] == 0.5  # "detected" by one row of twenty
    assert one_row["caught_shares"] == [0.05, 0.0] and one_row["median_caught_share"] == pytest.approx(0.025)
    whole = event_metrics(pd.DataFrame({"start": [5, 60], "end": [40, 69]}), labels)
    assert whole["caught_shares"] == [1.0, 1.0]
    assert np.isnan(event_metrics(pd.DataFrame({"start": [], "end": []}), np.zeros(5))["median_caught_share"])
