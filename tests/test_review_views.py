"""The Review page's pure helpers: the queue table, moving through it, what the
reviews say about the threshold, and the open event's chart builders."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import pytest

from aeviz_core import flags_to_events
from aeviz_app import event_view as E
from aeviz_app import review_views as R
from aeviz_core.feedback import threshold_summary


@pytest.fixture(scope="module")
def events():
    """Three events on 60 rows at 1 s, channel 'b' driving the second."""
    rng = np.random.default_rng(0)
    scores = rng.random(60) * 0.5
    flags = np.zeros(60, bool)
    flags[[5, 6, 7, 30, 31, 50]] = True
    scores[flags] = [2.0, 3.0, 2.5, 9.0, 8.0, 4.0]
    E = rng.random((60, 3)) * 0.1
    E[30:32, 1] = 5.0
    time = pd.date_range("2026-01-05", periods=60, freq="s")
    return flags_to_events(flags, scores, channel_errors=E, channel_names=["a", "b", "c"], time=time)


def as_queue(events, statuses, stale=None, reviewers=None):
    q = events.copy()
    q["status"] = statuses
    q["note"] = ""
    q["reviewer"] = reviewers or [None] * len(q)
    q["reviewed_at"] = pd.NaT
    q["version"] = [0 if s == "open" else 1 for s in statuses]
    q["stale"] = stale or [False] * len(q)
    q["review_model_id"] = None
    return q


# --------------------------------------------------------------------------- keys and moving


def test_event_keys_round_trip():
    assert R.event_key(np.int64(120), 131) == "120-131"
    assert R.parse_event_key("120-131") == (120, 131)
    for bad in ("120", "a-b", "9-3", "-1-4"):
        with pytest.raises(ValueError, match="event key"):
            R.parse_event_key(bad)


def test_neighbour_stops_at_the_ends():
    keys = ["0-1", "5-9", "20-20"]
    assert R.neighbour(keys, "5-9", 1) == "20-20"
    assert R.neighbour(keys, "5-9", -1) == "0-1"
    assert R.neighbour(keys, "20-20", 1) is None
    assert R.neighbour(keys, "0-1", -1) is None
    assert R.neighbour(keys, "3-4", 1) is None


def test_pick_current_hands_over_to_the_event_that_took_the_place():
    keys = ["0-1", "5-9", "20-20"]
    assert R.pick_current(keys, "20-20") == ("20-20", 2)
    # "5-9" was reviewed and left an open-only queue: the next one is now at position 1
    assert R.pick_current(["0-1", "20-20"], "5-9", last_position=1) == ("20-20", 1)
    assert R.pick_current(keys, None) == ("0-1", 0)
    assert R.pick_current(keys, "gone", last_position=99) == ("20-20", 2)
    assert R.pick_current([], "0-1") == (None, 0)


def test_filter_queue_keeps_order(events):
    q = as_queue(events, ["confirmed", "open", "dismissed"])
    assert R.filter_queue(q, ["open", "dismissed"])["start"].tolist() == [30, 50]
    assert R.filter_queue(q, None)["start"].tolist() == [5, 30, 50]
    assert R.filter_queue(q, []).empty


# --------------------------------------------------------------------------- the table


def test_format_duration():
    assert R.format_duration(float("nan"), 1) == "1 row"
    assert R.format_duration(None, 3) == "3 rows"
    assert R.format_duration(0.0, 1) == "1 row, 0 s"
    assert R.format_duration(125, 126) == "126 rows, 2 min 5 s"
    assert R.format_duration(2 * 3600 + 5 * 60, 7501) == "7,501 rows, 2 h 05 min"
    assert R.format_duration(3 * 86400, 10) == "10 rows, 3.0 days"
    assert R.format_seconds(860) == "14 min 20 s"
    with pytest.raises(ValueError, match="seconds"):
        R.format_seconds(float("nan"))


def test_queue_table_is_readable(events):
    from aeviz_core.events import with_blame

    shares = np.array([[0.2, 0.7, 0.1], [0.05, 0.9, 0.05], [np.nan] * 3])  # the third not blamed yet
    q = as_queue(with_blame(events, shares, ["a", "b", "c"]), ["confirmed", "open", "follow_up"],
                 stale=[True, False, False], reviewers=["ana", None, "bob"])
    table = R.queue_table(q)
    assert list(table.columns) == ["event", "status", "blamed sensor", "start", "duration", "tags", "peak score",
                                   "reviewer", "note", "comments", "rows"]
    assert table["status"].tolist() == ["confirmed anomaly (stale)", "open", "needs follow-up"]
    assert table["start"].iloc[1] == "2026-01-05 00:00:30"
    assert table["rows"].tolist() == ["5–7", "30–31", "50–50"]
    assert table["duration"].tolist() == ["2 s", "1 s", "0 s"]
    assert table["blamed sensor"].tolist() == ["b (70%)", "b (90%)", ""]
    assert R.queue_table(as_queue(events, ["open"] * 3))["blamed sensor"].tolist() == ["", "", ""]
    assert table["reviewer"].tolist() == ["ana", "", "bob"]


def test_queue_table_without_time_shows_rows():
    ev = flags_to_events([0, 1, 1, 0], [0, 2, 3, 0])
    table = R.queue_table(as_queue(ev, ["open"]))
    assert table["start"].tolist() == ["1"] and table["duration"].tolist() == ["2 rows"]
    assert R.queue_table(as_queue(ev, ["open"]).iloc[:0]).empty


def test_event_label(events):
    q = as_queue(events, ["open", "dismissed", "open"])
    assert R.event_label(q.iloc[1]) == "#1 · 2026-01-05 00:00:30 · peak 9 · false alarm"


# --------------------------------------------------------------------------- the threshold


def test_threshold_advice_follows_the_store_summary(events):
    q = as_queue(events, ["dismissed", "confirmed", "confirmed"])
    summary = threshold_summary(q)
    text = R.threshold_advice(summary, threshold=1.0)
    assert "67%" in text and f"{summary['threshold']:.4g}" in text and "raising it" in text
    none = R.threshold_advice(threshold_summary(as_queue(events, ["open"] * 3)), 1.0)
    assert "No event is confirmed or dismissed" in none
    only = R.threshold_advice(threshold_summary(as_queue(events, ["confirmed", "open", "open"])), 1.0)
    assert "100%" in only and "dismissed event" in only
    stale = as_queue(events, ["confirmed", "open", "open"], stale=[True, False, False])
    assert "another model" in R.threshold_advice(threshold_summary(stale), 1.0)


def test_review_scores_chart(events):
    q = as_queue(events, ["dismissed", "confirmed", "open"])
    chart = R.review_scores_chart(q, threshold=1.0, suggested=3.5)
    assert isinstance(chart, alt.LayerChart)
    spec = chart.to_dict()
    ticks, rules = spec["layer"]
    assert ticks["mark"]["type"] == "tick"
    assert spec["datasets"][rules["data"]["name"]] == [{"value": 1.0, "which": "in use"},
                                                       {"value": 3.5, "which": "suggested"}]
    assert ticks["encoding"]["y"]["scale"]["domain"] == list(R.STATUS_LABELS.values())
    # without a suggestion: only the threshold in use
    one = R.review_scores_chart(q, threshold=1.0).to_dict()
    assert len(one["datasets"][one["layer"][1]["data"]["name"]]) == 1
    assert one["layer"][1]["encoding"]["color"]["scale"]["domain"] == ["in use"]  # no "suggested" in the legend
    assert rules["encoding"]["color"]["scale"]["domain"] == ["in use", "suggested"]


# --------------------------------------------------------------------------- the open event


def test_context_rows_and_channel_errors():
    assert E.context_rows(5, 6, 10, 3).tolist() == list(range(2, 10))
    assert E.context_rows(0, 0, 3, 0).tolist() == [0]
    with pytest.raises(ValueError, match="n_rows"):
        E.context_rows(5, 12, 10, 1)
    with pytest.raises(ValueError, match="pad"):
        E.context_rows(1, 2, 10, -1)
    errors = np.array([[1.0, 0.0], [np.nan, 2.0], [3.0, 4.0]])
    assert E.event_channel_errors(errors, 1, 2).tolist() == [3.0, 6.0]


def test_event_overlay_frame_thins_long_contexts_but_keeps_spikes():
    n = 5000
    x = np.arange(n)
    actual = pd.DataFrame({"a": np.sin(x / 50), "b": np.zeros(n)})
    actual.loc[3333, "b"] = 7.0
    recon = np.c_[np.sin(x / 50) * 0.9, np.zeros(n)]
    recon[1234, 1] = -5.0
    frame = E.event_overlay_frame(x, actual, recon, np.arange(n), channels=["b", "a"], x_name="row",
                                  max_points=300)
    assert list(pd.unique(frame["channel"])) == ["b", "a"]
    assert set(frame["kind"]) == {"actual", "reconstruction"}
    b = frame[frame["channel"] == "b"]
    assert len(b) < 2 * 700
    assert b["value"].max() == 7.0 and b["value"].min() == -5.0  # neither spike thinned away
    short = E.event_overlay_frame(x, actual, recon, np.arange(10, 20), x_name="row")
    assert len(short) == 2 * 2 * 10 and short["row"].min() == 10


def test_event_overlay_chart_shades_the_span():
    time = pd.date_range("2026-01-05", periods=40, freq="s")
    actual = pd.DataFrame({"b": np.arange(40.0), "a": np.ones(40)})
    frame = E.event_overlay_frame(time.to_numpy(), actual, actual.to_numpy(), np.arange(40))
    spec = E.event_overlay_chart(frame, (time[10], time[15])).to_dict()
    row = spec["facet"]["row"]
    assert row["field"] == "channel" and row["sort"] == ["b", "a"]  # one row per channel, in the frame's order
    assert spec["resolve"]["scale"]["y"] == "independent"
    shade, lines = spec["spec"]["layer"]
    assert shade["mark"]["type"] == "rect" and shade["encoding"]["x"]["type"] == "temporal"
    # the shade's ends in epoch milliseconds, as the frame's times reach the chart
    assert (shade["encoding"]["x"]["datum"], shade["encoding"]["x2"]["datum"]) == (
        time[10].value // 10**6, time[15].value // 10**6)
    assert {"aggregate": [{"op": "count", "as": "points"}]} in shade["transform"]  # one shade per channel
    assert lines["encoding"]["strokeDash"]["field"] == "kind"
    rows = E.event_overlay_frame(np.arange(40), actual, actual.to_numpy(), np.arange(40), x_name="row")
    by_row = E.event_overlay_chart(rows, (10, 15), x="row").to_dict()["spec"]["layer"][0]["encoding"]
    assert by_row["x"] == {"type": "quantitative", "datum": 10.0} and by_row["x2"] == {"datum": 15.0}


def test_latent_event_frame_roles():
    starts = np.array([0, 4, 8, 12, 16])  # windows of 8 rows, stride 4, on 24 rows
    coords = np.c_[np.arange(5.0), np.arange(5.0)]
    flags = np.zeros(24, bool)
    flags[[1, 13]] = True
    frame = E.latent_event_frame(coords, starts, 8, flags, 13, 13)
    # windows 8-15 and 12-19 hold row 13; 0-7 holds the other flagged row; 16-23 none
    assert frame["role"].tolist() == ["flagged", "normal", "this event", "this event", "normal"]
    rows = E.latent_event_frame(coords, np.arange(5), None, flags[:5], 1, 1)
    assert rows["role"].tolist() == ["normal", "this event", "normal", "normal", "normal"]
    with pytest.raises(ValueError, match="coords"):
        E.latent_event_frame(coords[:3], starts, 8, flags, 0, 1)


def test_latent_event_chart_draws_the_event_on_top():
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 2.0], "row": [0, 4, 8],
                          "role": ["normal", "flagged", "this event"]})
    spec = E.latent_event_chart(frame, title="t").to_dict()
    rest, mine = spec["layer"]
    assert [d["role"] for d in spec["datasets"][mine["data"]["name"]]] == ["this event"]
    assert mine["mark"]["size"] > rest["mark"]["size"]
    assert rest["encoding"]["color"]["scale"]["domain"] == ["normal", "flagged", "this event"]


def test_queue_notes_are_shortened_to_one_line(events):
    q = as_queue(events, ["confirmed", "open", "follow_up"])
    q["note"] = ["bearing noise,\ntold maintenance on the early shift about the vibration", "short", None]
    notes = R.queue_table(q)["note"].tolist()
    assert notes[0].endswith("…") and len(notes[0]) <= R.NOTE_CHARS and "\n" not in notes[0]
    assert notes[0].startswith("bearing noise, told maintenance")
    assert notes[1:] == ["short", ""]


def test_a_similar_line_of_earlier_data_reads_like_the_queues():
    """A decided event of earlier data comes from the store: its start time as ISO text, and no
    peak score when it was decided without being recorded first (no traceback)."""
    like = {"start": 7247, "end": 7328, "start_time": "2026-01-05T07:17:20", "peak_score": None,
            "status": "dismissed", "reviewer": "ana", "tags": "sensor fault", "note": "", "distance": 0.31}
    line = R.similar_line(like)
    assert line.startswith("2026-01-05 07:17:20 · **false alarm** by ana")
    assert "peak" not in line and "tags: sensor fault" in line and line.endswith("distance 0.31 (alike)")
    assert R.similar_line({**like, "distance": 2.5}).endswith("distance 2.50")  # not within LIKE_DISTANCE
    assert "peak 6.93" in R.similar_line({**like, "peak_score": 6.931})


def test_like_text_filter_and_sort_of_events_like_a_dismissed_one():
    queue = pd.DataFrame({"event": [1, 2, 3], "start": [0, 30, 60], "end": [9, 39, 69], "status": ["open"] * 3,
                          "stale": [False] * 3, "note": "", "reviewer": "", "tags": "", "comments": 0,
                          "peak_score": [3.0, 2.0, 1.0]})
    likes = pd.DataFrame({"start": [0, 30, 60], "end": [9, 39, 69], "like_start": [np.nan, 120, 200],
                          "like_end": [np.nan, 164, 210], "like_data": [None, "day1.csv", "this data"],
                          "like_reviewer": [None, "Ana", "Ben"], "like_tags": [None, "start-up", ""],
                          "like_distance": [np.nan, 0.8, 0.2]})
    liked = R.with_likes(queue, likes)
    assert liked["like"].tolist() == ["", "like rows 120–164 of day1.csv, dismissed by Ana (start-up)",
                                      "like rows 200–210 of this data, dismissed by Ben"]
    assert R.queue_table(liked)["like a dismissed event"].tolist() == liked["like"].tolist()
    assert "like a dismissed event" not in R.queue_table(queue).columns
    assert R.filter_queue(liked, None, like_only=True)["event"].tolist() == [2, 3]
    assert R.like_first(liked)["event"].tolist() == [3, 2, 1]
    assert R.with_likes(queue, None)["like"].tolist() == ["", "", ""]
