"""Chart builders and the app's pure helpers, without a browser: specs, thinning, selections."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aeviz_app import session as S, training as T, latent as L, event_view as E
from aeviz_core.metrics import rates_at
from aeviz_core import charts


@pytest.fixture(scope="module")
def points():
    rng = np.random.default_rng(0)
    n = 100_000
    return pd.DataFrame({"idx": np.arange(n), "x": rng.normal(size=n), "y": rng.normal(size=n),
                         "flag": np.where(rng.random(n) < 0.01, "flagged", "normal"),
                         "class": rng.choice(["normal", "drift", "spike"], n),
                         "error": rng.gamma(2.0, size=n)})


# --------------------------------------------------------------------------- display_sample


def test_display_sample_keeps_every_flagged_point(points):
    keep = (points["flag"] == "flagged").to_numpy()
    sample = charts.display_sample(points, 5000, keep_mask=keep, seed=0)
    assert len(sample) == 5000
    assert set(points.index[keep]) <= set(sample.index)
    assert sample.index.is_monotonic_increasing  # original order, original index
    # the rest is a uniform sample: the non-flagged classes keep their shares
    shares = sample.loc[sample["flag"] == "normal", "class"].value_counts(normalize=True)
    assert shares.min() > 0.28


def test_display_sample_is_repeatable_and_small_frames_pass_through(points):
    a = charts.display_sample(points, 1000, seed=3)
    b = charts.display_sample(points, 1000, seed=3)
    assert a.index.equals(b.index)
    assert not a.index.equals(charts.display_sample(points, 1000, seed=4).index)
    small = points.head(10)
    assert charts.display_sample(small, 100) is small


def test_display_sample_never_drops_kept_rows_even_past_the_limit(points):
    keep = np.zeros(len(points), bool)
    keep[:50] = True
    sample = charts.display_sample(points, 20, keep_mask=keep)
    assert list(sample.index) == list(range(50))


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_display_sample_rejects_bad_limits(points, bad):
    with pytest.raises(ValueError, match="max_points"):
        charts.display_sample(points, bad)


def test_display_sample_checks_the_mask_length(points):
    with pytest.raises(ValueError, match="keep_mask"):
        charts.display_sample(points, 10, keep_mask=np.ones(3, bool))


# --------------------------------------------------------------------------- lines


def test_minmax_downsample_keeps_spikes():
    v = np.zeros(100_000)
    v[12_345] = 9.0
    v[77_777] = -4.0
    rows = charts.minmax_downsample(v, 300)
    assert len(rows) <= 320
    assert 12_345 in rows and 77_777 in rows
    assert rows[0] == 0 and rows[-1] == len(v) - 1
    assert np.array_equal(charts.minmax_downsample(v[:50], 300), np.arange(50))


def test_long_series_and_label_spans():
    x = pd.date_range("2026-01-01", periods=1000, freq="s")
    frame = pd.DataFrame({"a": np.arange(1000.0), "b": np.sin(np.arange(1000))})
    long = charts.long_series(x, frame, 90)
    assert set(long.columns) == {"time", "channel", "value"}
    assert set(long["channel"]) == {"a", "b"}
    assert long.groupby("channel").size().max() <= 100
    flags = np.zeros(1000, bool)
    flags[10:20] = True
    flags[999] = True
    spans = charts.label_spans(flags, x)
    assert spans["rows"].tolist() == [10, 1]
    assert spans["start"].iloc[0] == x[10] and spans["end"].iloc[0] == x[20]
    spec = charts.channels_chart(long, spans).to_dict()
    assert spec["facet"]["row"]["field"] == "channel" and spec["facet"]["row"]["sort"] == ["a", "b"]
    assert spec["resolve"]["scale"]["y"] == "independent"
    shade, line = spec["spec"]["layer"]
    assert shade["mark"]["type"] == "rect" and line["mark"]["type"] == "line"
    # each span once per channel, beside the lines in the one data source; each layer keeps its part
    data = pd.DataFrame(spec["datasets"][spec["data"]["name"]])
    assert data["part"].value_counts().to_dict() == {"line": len(long), "span": 2 * 2}
    assert shade["transform"] == [{"filter": "datum.part == 'span'"}]
    assert line["transform"] == [{"filter": "datum.part == 'line'"}]
    [alone] = charts.channels_chart(long).to_dict()["spec"]["layer"]  # nothing to shade: the lines alone
    assert alone["mark"]["type"] == "line" and "transform" not in alone


# --------------------------------------------------------------------------- latent scatter and selections


def test_latent_scatter_declares_click_and_box_selections(points):
    spec = charts.latent_scatter(points.head(500), "class").to_dict()
    params = {p["name"]: p["select"] for p in spec["params"]}
    assert params["pick"]["type"] == "point" and params["pick"]["fields"] == ["idx"]
    assert params["box"]["type"] == "interval"
    assert spec["encoding"]["color"]["field"] == "class"
    # "normal" is grey, faults get colours
    scale = spec["encoding"]["color"]["scale"]
    assert scale["domain"][0] == "normal" and scale["range"][0] == charts.FLAG_COLORS["normal"]
    tips = {t["field"] for t in spec["encoding"]["tooltip"]}
    assert {"idx", "class", "error"} <= tips


@pytest.mark.parametrize("colour,field,kind", [("reconstruction error", "error", "quantitative"),
                                                ("flag", "flag", "nominal"), ("class", "class", "nominal")])
def test_latent_scatter_colours(points, colour, field, kind):
    spec = charts.latent_scatter(points.head(200), charts.COLOR_BY[colour]).to_dict()
    assert spec["encoding"]["color"]["field"] == field
    assert spec["encoding"]["color"]["type"] == kind


def test_latent_scatter_3d_draws_three_linked_pairs(points):
    frame = points.head(300).assign(z=np.arange(300.0))
    spec = charts.latent_scatter(frame, "flag", dims=("x", "y", "z")).to_dict()
    assert len(spec["hconcat"]) == 3
    assert {p["name"] for p in spec["params"]} == {"pick", "box"}


def test_latent_scatter_rejects_an_unknown_colour(points):
    with pytest.raises(ValueError, match="color"):
        charts.latent_scatter(points.head(10), "nope")


def test_selected_indices_from_clicks_and_boxes(points):
    frame = points.head(1000)
    assert charts.selected_indices({}).size == 0
    assert charts.selected_indices(None).size == 0
    got = charts.selected_indices({"pick": [{"idx": 7}, {"idx": 3}], "box": {}}, frame)
    assert got.tolist() == [3, 7]
    box = {"box": {"x": [0.5, -0.5], "y": [-0.25, 0.25]}}  # bounds in either order
    got = charts.selected_indices(box, frame)
    inside = frame[(frame.x.abs() <= 0.5) & (frame.y.abs() <= 0.25)]["idx"]
    assert got.tolist() == sorted(inside.tolist())
    both = charts.selected_indices({"pick": [{"idx": 999}], **box}, frame)
    assert 999 in both and len(both) >= len(got)


# --------------------------------------------------------------------------- anomaly charts


def test_error_histogram_with_labels_and_threshold():
    rng = np.random.default_rng(1)
    errors = np.concatenate([rng.gamma(2, 0.01, 5000), rng.gamma(2, 1.0, 100)])
    labels = np.r_[np.zeros(5000), np.ones(100)]
    spec = charts.error_histogram(errors, 0.2, labels=labels).to_dict()
    bars, rule = spec["layer"]
    assert bars["encoding"]["x"]["scale"]["type"] == "log"  # errors span > 2 decades
    data = pd.DataFrame(spec["datasets"][bars["data"]["name"]])
    assert data.groupby("label")["count"].sum().to_dict() == {"anomaly": 100, "normal": 5000}
    assert pd.DataFrame(spec["datasets"][rule["data"]["name"]])["threshold"].tolist() == [0.2]
    linear = charts.error_histogram(np.linspace(1, 2, 100), 1.5).to_dict()
    assert linear["layer"][0]["encoding"]["color"]["legend"] is None
    assert bars["encoding"]["x"]["title"] == "reconstruction error (log)"
    named = charts.error_histogram(errors, 0.2, score_name="anomaly score").to_dict()
    assert named["layer"][0]["encoding"]["x"]["title"] == "anomaly score (log)"


def test_score_timeline_thins_the_line_but_keeps_events():
    n = 100_000
    scores = np.full(n, 0.1)
    scores[50_000:50_010] = 5.0
    events = pd.DataFrame({"event": [0], "start": [50_000], "end": [50_009], "peak_score": [5.0]})
    labels = np.zeros(n)
    labels[49_990:50_020] = 1
    spec = charts.score_timeline(np.arange(n), scores, 1.0, events=events, labels=labels,
                                 max_points=2000).to_dict()
    sizes = {layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]:
             len(spec["datasets"][layer["data"]["name"]]) for layer in spec["layer"]}
    assert sizes["line"] <= 2100
    line = pd.DataFrame(spec["datasets"][spec["layer"][1]["data"]["name"]])
    assert line["score"].max() == 5.0  # the spike survives the thinning
    assert spec["layer"][1]["encoding"]["y"]["title"] == "reconstruction error"
    named = charts.score_timeline(np.arange(n), scores, 1.0, score_name="anomaly score").to_dict()
    assert named["layer"][0]["encoding"]["y"]["title"] == "anomaly score"


def test_contributions_roc_pr_loss_charts():
    spec = charts.contributions_chart(["a", "b", "c"], [1.0, 3.0, 0.0]).to_dict()
    data = pd.DataFrame(spec["datasets"][spec["data"]["name"]])
    assert data.set_index("channel")["share"].to_dict() == {"a": 0.25, "b": 0.75, "c": 0.0}
    roc = pd.DataFrame({"threshold": [1, 0.5, 0], "fpr": [0, 0.2, 1], "tpr": [0, 0.8, 1]})
    assert len(charts.roc_chart(roc, point=(0.2, 0.8)).to_dict()["layer"]) == 3
    pr = pd.DataFrame({"threshold": [1, 0.5], "recall": [0.5, 1.0], "precision": [1.0, 0.6]})
    assert len(charts.pr_chart(pr, point=(np.nan, np.nan)).to_dict()["layer"]) == 1
    hist = {"loss": [1.0, 0.5, 0.25], "val_loss": [1.2, 0.6, 0.3]}
    spec = charts.loss_chart(hist).to_dict()
    assert spec["encoding"]["y"]["scale"]["type"] == "log"
    live = charts.loss_chart([{"epoch": 1, "loss": 1.0, "val_loss": None}]).to_dict()
    assert len(live["datasets"][live["data"]["name"]]) == 1


def test_window_overlay_keeps_the_channel_order():
    frame = E.event_overlay_frame(np.arange(10), pd.DataFrame({"z": np.arange(10.0), "a": np.ones(10)}),
                            np.zeros((10, 2)), np.arange(2, 8), x_name="row")
    assert len(frame) == 2 * 2 * 6
    spec = charts.window_overlay(frame, x="row").to_dict()
    assert spec["facet"]["row"]["sort"] == ["z", "a"]


def test_tile_images_and_pairs():
    imgs = np.arange(5 * 4 * 4, dtype=float).reshape(5, 4, 4)
    tile = charts.tile_images(imgs, ncols=3, pad=1)
    assert tile.shape == (2 * 5 - 1, 3 * 5 - 1)
    assert tile.min() >= 0 and tile.max() <= 1
    pairs = charts.image_pairs(imgs, imgs * 0.5, ncols=5)
    assert pairs.shape == (2 * 5 - 1, 5 * 5 - 1)
    with pytest.raises(ValueError, match="images"):
        charts.tile_images(np.zeros((3, 4)))


# --------------------------------------------------------------------------- appstate helpers


def test_init_session_sets_each_key_once():
    state = {}
    S.init_session(state, lambda: "data")
    assert set(S.SESSION_KEYS) <= set(state)
    assert state[S.DATASET] == "data"
    state[S.MODELS]["m"] = 1
    S.init_session(state, lambda: "other")
    assert state[S.DATASET] == "data" and state[S.MODELS] == {"m": 1}


def test_parse_hidden():
    assert T.parse_hidden("256, 128") == (256, 128)
    assert T.parse_hidden("64") == (64,)
    for bad in ("", "a, b", "0", "100000"):
        with pytest.raises(ValueError, match="layer"):
            T.parse_hidden(bad)


def test_default_settings_train_on_the_whole_file_like_the_cli():
    n = 1000
    anomaly = np.zeros(n, np.int8)
    anomaly[400:410] = 1
    ds = S.Dataset(name="s", kind="sensor", X=np.zeros((n, 3), np.float32), key="k", anomaly=anomaly)
    s = T.default_settings(ds)
    assert s.train_start == 0 and s.train_end == n and s.window == 32 and s.stride == 4
    short = S.Dataset(name="s", kind="sensor", X=np.zeros((40, 3), np.float32), key="k")
    assert T.default_settings(short).window == 5 and T.default_settings(short).train_end == 40
    images = S.Dataset.from_images(np.zeros((20, 64)), np.arange(20) % 2, "d")
    assert images.image_shape == (8, 8)
    assert T.default_settings(images).window is None


def test_window_means_and_unique_names():
    values = np.arange(10.0)
    assert L.window_means(values, np.array([0, 5]), 5).tolist() == [2.0, 7.0]
    assert L.window_means(values, np.array([3]), None).tolist() == [3.0]
    assert S.unique_name("ae-1", []) == "ae-1"
    assert S.unique_name("ae-1", ["ae-1", "ae-1 (2)"]) == "ae-1 (3)"


def test_rates_at_matches_detection_metrics():
    from aeviz_core import detection_metrics

    rng = np.random.default_rng(0)
    scores = rng.random(500)
    labels = (rng.random(500) < 0.2).astype(int)
    full = detection_metrics(scores, labels, 0.7)
    fast = rates_at(scores > 0.7, labels)
    for key, value in fast.items():
        assert value == pytest.approx(full[key], nan_ok=True), key
    assert np.isnan(rates_at(np.zeros(5, bool), np.zeros(5))["precision"])


def test_evaluation_labels():
    n = 100
    anomaly = np.zeros(n, np.int8)
    anomaly[80:] = 1
    ds = S.Dataset(name="s", kind="sensor", X=np.zeros((n, 2), np.float32), key="k", anomaly=anomaly)
    entry = S.ModelEntry("m", detector=None, dataset_key="k", dataset_name="s", settings={"train_end": 50})
    labels, mask = S.evaluation_labels(entry, ds)
    assert labels.sum() == 20 and mask.sum() == 50 and not mask[:50].any()
    other = S.ModelEntry("m", detector=None, dataset_key="other", dataset_name="x", settings={"train_end": 50})
    assert S.evaluation_labels(other, ds)[1].all()  # trained elsewhere: judged on every row
    digits = S.Dataset.from_images(np.zeros((6, 4)), [0, 1, 2, 0, 1, 2], "d")
    held = S.ModelEntry("m", None, digits.key, "d", settings={"normal_classes": ("0", "1")})
    assert S.evaluation_labels(held, digits)[0].tolist() == [0, 0, 1, 0, 0, 1]
    assert S.evaluation_labels(S.ModelEntry("m", None, "k", "d"), digits)[0] is None


def test_latent_cloud_and_point_colors(points):
    import json

    frame = points.head(300).assign(z=np.arange(300.0), time=pd.date_range("2026-01-01", periods=300, freq="s"))
    deck = json.loads(charts.latent_cloud(frame, "class").to_json())
    layer = deck["layers"][0]
    assert layer["@@type"] == "PointCloudLayer" and layer["id"] == "latent" and len(layer["data"]) == 300
    xyz = np.array([d["position"] for d in layer["data"]])
    assert np.abs(xyz).max() == pytest.approx(100.0)  # scaled into the camera's box
    for column in ("class", "error", "flag", "time"):
        colours = charts.point_colors(frame[column], column)
        assert colours.shape == (300, 3) and colours.dtype == np.uint8
    grey = charts.point_colors(pd.Series(["normal"], name="class"))
    assert grey.tolist() == [[0x9a, 0xa5, 0xb1]]


def test_color_legend():
    classes = pd.Series(["spike", "normal", "drift", "normal"], name="class")
    legend = charts.color_legend(classes)
    assert [label for label, _ in legend] == ["normal", "drift", "spike"]
    assert legend[0][1] == charts.FLAG_COLORS["normal"]
    errors = pd.Series([0.01, 0.1, 1.0], name="error")
    assert [label for label, _ in charts.color_legend(errors)] == ["0.01", "0.1", "1"]
