"""Latent-quality, detection and event metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_swiss_roll
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from aeviz_core import (
    EVENT_COLUMNS,
    best_f1_threshold,
    detection_metrics,
    event_metrics,
    flags_to_events,
    knn_accuracy,
    latent_quality,
    latent_spread,
    roc_pr_curves,
    silhouette_by_class,
    trustworthiness_score,
)
from aeviz_core import project_latent


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def blobs():
    """Four well-separated 2-D Gaussian blobs, 100 points each, and random labels."""
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [12.0, 0.0], [0.0, 12.0], [12.0, 12.0]])
    labels = np.repeat(np.arange(4), 100)
    coords = centers[labels] + rng.normal(size=(400, 2))
    random_labels = rng.integers(0, 4, size=400)
    return coords, labels, random_labels


@pytest.fixture(scope="session")
def plane_in_10d():
    """600 points on a 2-D plane embedded in 10-D."""
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.normal(size=(10, 2)))
    return (rng.normal(size=(600, 2)) * [3.0, 1.0]) @ basis.T


@pytest.fixture(scope="session")
def swiss_roll_in_10d():
    """A swiss roll (a curled 2-D sheet) rotated into 10-D."""
    rng = np.random.default_rng(0)
    roll, _ = make_swiss_roll(600, random_state=0)
    rotation, _ = np.linalg.qr(rng.normal(size=(10, 3)))
    return roll @ rotation.T


@pytest.fixture(scope="session")
def scored():
    """Noisy anomaly scores with ties: 2000 rows, 10 % anomalous."""
    rng = np.random.default_rng(0)
    labels = rng.random(2000) < 0.1
    scores = np.round(rng.normal(size=2000) + 1.5 * labels, 1)
    return scores, labels


# --------------------------------------------------------------------------- latent quality

def test_knn_accuracy_is_high_for_separated_blobs_and_chance_for_random_labels(blobs):
    coords, labels, random_labels = blobs
    assert knn_accuracy(coords, labels) > 0.95
    assert abs(knn_accuracy(coords, random_labels) - 0.25) < 0.08


def test_knn_accuracy_lowers_cv_to_the_smallest_class():
    rng = np.random.default_rng(0)
    labels = np.array([0] * 20 + [1] * 3)
    coords = rng.normal(size=(23, 2)) + 20 * labels[:, None]
    assert knn_accuracy(coords, labels, k=1, cv=10) == 1.0  # 3 folds, not 10


@pytest.mark.parametrize(
    ("labels", "kwargs", "match"),
    [
        (np.zeros(20), {}, "labels must contain >= 2 classes, got 1"),
        (np.array([0] * 19 + [1]), {}, "every class in labels needs >= 2 members"),
        (np.repeat([0, 1], 10), {"k": 0}, "k must be >= 1, got 0"),
        (np.repeat([0, 1], 10), {"cv": 1}, "cv must be >= 2, got 1"),
        (np.repeat([0, 1], 5), {}, "labels must be 1-D with 20 entries"),
    ],
)
def test_knn_accuracy_rejects_bad_arguments(labels, kwargs, match):
    coords = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match=match):
        knn_accuracy(coords, labels, **kwargs)


def test_trustworthiness_is_near_one_for_pca_of_a_plane(plane_in_10d):
    coords = project_latent(plane_in_10d, "pca")
    assert trustworthiness_score(plane_in_10d, coords) > 0.99


def test_trustworthiness_is_lower_for_a_random_projection_of_a_swiss_roll(swiss_roll_in_10d):
    rng = np.random.default_rng(0)
    random_plane, _ = np.linalg.qr(rng.normal(size=(10, 2)))
    coords = swiss_roll_in_10d @ random_plane
    assert trustworthiness_score(swiss_roll_in_10d, coords) < 0.95


def test_trustworthiness_subsamples_deterministically(plane_in_10d):
    rng = np.random.default_rng(1)
    coords = plane_in_10d[:, :2] + rng.normal(scale=0.5, size=(600, 2))
    a = trustworthiness_score(plane_in_10d, coords, max_samples=200, random_state=5)
    b = trustworthiness_score(plane_in_10d, coords, max_samples=200, random_state=5)
    c = trustworthiness_score(plane_in_10d, coords, max_samples=200, random_state=6)
    assert a == b and a != c


def test_trustworthiness_flattens_images_and_clips_k():
    rng = np.random.default_rng(0)
    images = rng.random((12, 4, 4))
    score = trustworthiness_score(images, images.reshape(12, -1)[:, :2], k=50)
    assert 0.0 <= score <= 1.0


def test_trustworthiness_needs_matching_rows(plane_in_10d):
    with pytest.raises(ValueError, match="coords must have 600 rows like X_high, got 10"):
        trustworthiness_score(plane_in_10d, np.zeros((10, 2)))


def test_silhouette_separates_blobs_from_random_labels(blobs):
    coords, labels, random_labels = blobs
    assert silhouette_by_class(coords, labels) > 0.7
    assert abs(silhouette_by_class(coords, random_labels)) < 0.1
    # the subsample is seeded and still close to the full value
    sub = silhouette_by_class(coords, labels, max_samples=100, random_state=1)
    assert sub == silhouette_by_class(coords, labels, max_samples=100, random_state=1)
    assert abs(sub - silhouette_by_class(coords, labels)) < 0.1


def test_silhouette_needs_two_classes(blobs):
    coords = blobs[0]
    with pytest.raises(ValueError, match="labels must have between 2 and 399 classes"):
        silhouette_by_class(coords, np.zeros(400))


def test_latent_spread_flags_a_collapsed_latent():
    rng = np.random.default_rng(0)
    spread = latent_spread(rng.normal(scale=0.001, size=(1000, 4)))
    assert spread["collapsed"] is True
    assert spread["n_collapsed_dims"] == 4
    assert spread["mean_std"] < 0.002


def test_latent_spread_measures_raw_scales_per_dimension():
    rng = np.random.default_rng(0)
    scales = np.array([1.0, 0.5, 0.001])
    spread = latent_spread(rng.normal(size=(5000, 3)) * scales + 7.0)
    np.testing.assert_allclose(spread["std"], scales, rtol=0.05)
    assert spread["std"].shape == (3,)
    assert spread["mean_std"] == pytest.approx(scales.mean(), rel=0.05)
    assert spread["n_collapsed_dims"] == 1
    assert spread["collapsed"] is False
    assert latent_spread(np.zeros((10, 2)) + [0.0, 1.0], collapse_tol=1e-9)["collapsed"] is True


def test_latent_quality_bundles_the_scores(blobs):
    coords, labels, _ = blobs
    rng = np.random.default_rng(0)
    X_high = np.hstack([coords, rng.normal(scale=0.01, size=(400, 3))])
    q = latent_quality(X_high, coords, labels, Z=X_high)
    assert set(q) == {"trustworthiness", "knn_accuracy", "silhouette", "spread"}
    assert q["trustworthiness"] > 0.99
    assert q["knn_accuracy"] == knn_accuracy(coords, labels)
    assert q["silhouette"] == silhouette_by_class(coords, labels)
    assert q["spread"]["collapsed"] is False and q["spread"]["std"].shape == (5,)


def test_latent_quality_without_labels_or_latent(blobs):
    coords = blobs[0]
    q = latent_quality(coords, coords)
    assert np.isnan(q["knn_accuracy"]) and np.isnan(q["silhouette"]) and q["spread"] is None
    q = latent_quality(coords, coords, np.zeros(400))
    assert np.isnan(q["knn_accuracy"]) and np.isnan(q["silhouette"])


# --------------------------------------------------------------------------- detection

HAND_SCORES = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
HAND_LABELS = np.array([0, 0, 0, 0, 0, 1, 0, 1, 1, 1])


def test_detection_metrics_on_a_hand_made_example():
    m = detection_metrics(HAND_SCORES, HAND_LABELS, threshold=0.55)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (4, 1, 5, 0)
    assert m["precision"] == pytest.approx(0.8)
    assert m["recall"] == 1.0
    assert m["f1"] == pytest.approx(8 / 9)
    assert m["false_alarm_rate"] == pytest.approx(1 / 6)
    assert m["missed_alarm_rate"] == 0.0
    assert m["roc_auc"] == pytest.approx(23 / 24)
    assert m["pr_auc"] == pytest.approx(average_precision_score(HAND_LABELS, HAND_SCORES))
    assert m["threshold"] == 0.55


def test_a_score_equal_to_the_threshold_is_not_flagged():
    m = detection_metrics(HAND_SCORES, HAND_LABELS, threshold=0.6)
    assert (m["tp"], m["fp"], m["fn"]) == (3, 1, 1)


def test_detection_metrics_agree_with_sklearn(scored):
    scores, labels = scored
    m = detection_metrics(scores, labels, threshold=1.0)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert m["f1"] == pytest.approx(f1_score(labels, scores > 1.0))
    assert m["tp"] + m["fp"] + m["tn"] + m["fn"] == 2000


def test_detection_metrics_with_a_single_class_do_not_crash():
    m = detection_metrics([0.1, 0.5, 0.9], [0, 0, 0], threshold=0.4)
    assert np.isnan(m["roc_auc"]) and np.isnan(m["pr_auc"])
    assert np.isnan(m["recall"]) and np.isnan(m["missed_alarm_rate"])
    assert (m["fp"], m["tn"]) == (2, 1) and m["false_alarm_rate"] == pytest.approx(2 / 3)
    m = detection_metrics([0.1, 0.5], [1, 1], threshold=1.0)
    assert np.isnan(m["roc_auc"]) and np.isnan(m["precision"]) and m["recall"] == 0.0


@pytest.mark.parametrize(
    ("scores", "labels", "threshold", "match"),
    [
        ([0.1, np.nan], [0, 1], 0.5, "scores must be finite, got 1 NaN"),
        ([0.1, 0.2], [0, 2], 0.5, "labels must contain only 0/1"),
        ([0.1, 0.2], [0, 1, 1], 0.5, "labels must have 2 entries"),
        ([0.1, 0.2], [0, 1], "high", "threshold must be a number"),
    ],
)
def test_detection_metrics_reject_bad_inputs(scores, labels, threshold, match):
    with pytest.raises(ValueError, match=match):
        detection_metrics(scores, labels, threshold)


def test_best_f1_threshold_on_a_hand_made_example():
    threshold, f1 = best_f1_threshold(HAND_SCORES, HAND_LABELS)
    assert threshold == pytest.approx(0.55)
    assert f1 == pytest.approx(8 / 9)


def test_best_f1_threshold_beats_every_cut_and_is_reproducible(scored):
    scores, labels = scored
    threshold, f1 = best_f1_threshold(scores, labels)
    brute = max(f1_score(labels, scores > t) for t in np.unique(scores))
    assert f1 == pytest.approx(brute)
    assert detection_metrics(scores, labels, threshold)["f1"] == pytest.approx(f1)
    assert not np.isin(threshold, scores)  # halfway between distinct scores


def test_best_f1_threshold_edge_cases():
    assert best_f1_threshold([0.2, 0.2, 0.2], [1, 1, 0]) == (pytest.approx(0.2), pytest.approx(0.8))
    threshold, f1 = best_f1_threshold([0.1, 0.3], [0, 0])
    assert threshold == 0.3 and np.isnan(f1)
    # adjacent floats leave no room for a midpoint: the lower one is used
    a = 1.0
    b = np.nextafter(a, 2.0)
    threshold, f1 = best_f1_threshold([a, b], [0, 1])
    assert threshold == a and f1 == 1.0


def test_roc_pr_curves_match_sklearn_areas(scored):
    scores, labels = scored
    roc, pr = roc_pr_curves(scores, labels, max_points=10_000)
    assert list(roc.columns) == ["threshold", "fpr", "tpr"]
    assert list(pr.columns) == ["threshold", "recall", "precision"]
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(roc_auc_score(labels, scores))
    ap = np.sum(np.diff(pr["recall"], prepend=0.0) * pr["precision"])
    assert ap == pytest.approx(average_precision_score(labels, scores))
    # each point's threshold reproduces its rates under the strict rule
    for row in roc.iloc[[0, 5, 20, -1]].itertuples():
        m = detection_metrics(scores, labels, row.threshold)
        assert m["recall"] == pytest.approx(row.tpr)
        assert m["false_alarm_rate"] == pytest.approx(row.fpr)


def test_roc_pr_curves_are_downsampled_keeping_both_ends(scored):
    scores, labels = scored
    roc, pr = roc_pr_curves(scores, labels, max_points=7)
    assert len(roc) <= 7 and len(pr) <= 7
    assert roc.iloc[0][["fpr", "tpr"]].tolist() == [0.0, 0.0]
    assert roc.iloc[-1][["fpr", "tpr"]].tolist() == [1.0, 1.0]
    assert pr["recall"].iloc[-1] == 1.0
    assert np.isfinite(roc.to_numpy()).all() and np.isfinite(pr.to_numpy()).all()
    assert (np.diff(roc["fpr"]) >= 0).all() and (np.diff(roc["tpr"]) >= 0).all()


def test_roc_pr_curves_with_a_single_class_are_empty():
    roc, pr = roc_pr_curves([0.1, 0.5, 0.9], [0, 0, 0])
    assert roc.empty and list(roc.columns) == ["threshold", "fpr", "tpr"]
    assert pr.empty and list(pr.columns) == ["threshold", "recall", "precision"]
    roc, pr = roc_pr_curves([0.1, 0.5, 0.9], [1, 1, 1])
    assert roc.empty and len(pr) == 3


# --------------------------------------------------------------------------- events

def _spans(events):
    return events[["start", "end"]].values.tolist()


@pytest.mark.parametrize(
    ("flags", "min_gap", "spans"),
    [
        ([1, 1, 0, 0, 1, 0], 0, [[0, 1], [4, 4]]),              # flagged at row 0
        ([0, 0, 1, 0, 1, 1], 0, [[2, 2], [4, 5]]),              # flagged at the last row
        ([1, 1, 1, 1], 0, [[0, 3]]),                            # all flagged
        ([1], 0, [[0, 0]]),
        ([1, 0, 1, 0, 0, 1, 0, 0, 0, 1], 0, [[0, 0], [2, 2], [5, 5], [9, 9]]),
        ([1, 0, 1, 0, 0, 1, 0, 0, 0, 1], 1, [[0, 2], [5, 5], [9, 9]]),
        ([1, 0, 1, 0, 0, 1, 0, 0, 0, 1], 2, [[0, 5], [9, 9]]),
        ([1, 0, 1, 0, 0, 1, 0, 0, 0, 1], 3, [[0, 9]]),
    ],
)
def test_flags_to_events_on_hand_made_flags(flags, min_gap, spans):
    scores = np.arange(len(flags), dtype=float)
    events = flags_to_events(np.array(flags, dtype=bool), scores, min_gap=min_gap)
    assert list(events.columns) == list(EVENT_COLUMNS)
    assert _spans(events) == spans
    assert events["event"].tolist() == list(range(len(spans)))
    assert events["n_rows"].tolist() == [e - s + 1 for s, e in spans]
    assert events["peak_row"].tolist() == [e for _, e in spans]  # scores increase with the row


def test_no_flag_gives_an_empty_frame_with_the_right_columns():
    for time in (None, pd.date_range("2024-01-01", periods=5, freq="s")):
        events = flags_to_events(np.zeros(5, dtype=bool), np.ones(5), time=time)
        assert events.empty and list(events.columns) == list(EVENT_COLUMNS)
    assert flags_to_events(np.zeros(0, dtype=bool), np.zeros(0)).empty


def test_flags_to_events_reports_peaks_and_top_channels():
    flags = np.array([0, 1, 1, 1, 0, 0, 1, 1])
    scores = np.array([9.0, 0.2, 0.7, 0.7, 0.0, 0.0, 0.3, np.nan])
    errors = np.zeros((8, 4))
    errors[1:4] = [1.0, 0.0, 3.0, 2.0]
    errors[6:8] = [0.0, 5.0, 0.0, 1.0]
    errors[7, 0] = np.nan
    events = flags_to_events(flags, scores, channel_errors=errors,
                             channel_names=["flow", "pressure", "temp", "vibration"], top_k=2)
    assert events["peak_score"].tolist() == [0.7, 0.3]   # unflagged row 0 and NaN ignored
    assert events["peak_row"].tolist() == [2, 6]         # the first row at the peak
    assert events["top_channel"].tolist() == ["temp", "pressure"]
    assert events["top_channels"].tolist() == ["temp, vibration", "pressure, vibration"]
    default_names = flags_to_events(flags, scores, channel_errors=errors, top_k=10)
    assert default_names["top_channels"].iloc[0] == "ch2, ch3, ch0, ch1"


def test_flags_to_events_without_channels_or_time():
    events = flags_to_events([0, 1, 1], [0.0, 1.0, 2.0])
    assert events["top_channel"].isna().all() and events["top_channels"].isna().all()
    assert events["start_time"].isna().all() and events["duration_s"].isna().all()


def test_flags_to_events_uses_datetime_and_numeric_time():
    flags = np.array([1, 1, 1, 0, 0, 1])
    time = pd.date_range("2024-03-01 12:00", periods=6, freq="10s")
    events = flags_to_events(flags, np.zeros(6), time=time)
    assert events["start_time"].tolist() == [time[0], time[5]]
    assert events["end_time"].tolist() == [time[2], time[5]]
    assert events["duration_s"].tolist() == [20.0, 0.0]
    events = flags_to_events(flags, np.zeros(6), time=np.arange(6) * 0.5)
    assert events["start_time"].tolist() == [0.0, 2.5]
    assert events["duration_s"].tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"flags": [0, 2, 1]}, "flags must contain only 0/1"),
        ({"scores": [0.0, 1.0]}, "scores must have 3 entries"),
        ({"min_gap": -1}, "min_gap must be >= 0, got -1"),
        ({"top_k": 0}, "top_k must be >= 1, got 0"),
        ({"channel_errors": np.zeros((2, 2))}, r"channel_errors must have shape \(3, n_channels\)"),
        ({"channel_errors": np.zeros((3, 2)), "channel_names": ["a"]}, "channel_names must have 2 names"),
        ({"time": [1.0, 2.0]}, "time must be 1-D with 3 entries"),
    ],
)
def test_flags_to_events_rejects_bad_inputs(kwargs, match):
    args = {"flags": [0, 1, 1], "scores": [0.0, 1.0, 2.0]} | kwargs
    with pytest.raises(ValueError, match=match):
        flags_to_events(args.pop("flags"), args.pop("scores"), **args)


@settings(max_examples=200, deadline=None)
@given(flags=st.lists(st.booleans(), max_size=200), min_gap=st.integers(0, 5))
def test_events_cover_the_flagged_rows_and_never_overlap(flags, min_gap):
    flags = np.array(flags, dtype=bool)
    events = flags_to_events(flags, np.zeros(flags.size), min_gap=min_gap)
    starts, ends = events["start"].to_numpy(), events["end"].to_numpy()
    covered = np.zeros(flags.size, dtype=bool)
    for s, e in zip(starts, ends):
        covered[s:e + 1] = True
    assert (covered[flags]).all()                     # every flagged row is in an event
    assert (ends >= starts).all()
    assert (starts[1:] > ends[:-1]).all()             # in order, never overlapping
    assert (starts[1:] - ends[:-1] - 1 > min_gap).all()  # gaps left open are wider than min_gap
    if events.size:
        assert flags[starts].all() and flags[ends].all()  # events start and end on a flag
    if min_gap == 0:
        np.testing.assert_array_equal(covered, flags)  # exactly the flagged rows


def test_event_metrics_exact_counts():
    labels = np.zeros(20, dtype=int)
    labels[2:5] = 1    # truth A
    labels[8:10] = 1   # truth B
    labels[15] = 1     # truth C
    pred = pd.DataFrame({"start": [4, 11, 14], "end": [6, 12, 14]})
    m = event_metrics(pred, labels)
    assert m["n_true_events"] == 3 and m["n_pred_events"] == 3
    assert m["n_detected"] == 1 and m["n_false_events"] == 2
    assert m["event_recall"] == pytest.approx(1 / 3)
    assert m["event_precision"] == pytest.approx(1 / 3)
    assert m["event_f1"] == pytest.approx(1 / 3)
    two_of_three = event_metrics(pd.DataFrame({"start": [4, 9], "end": [6, 9]}), labels)
    assert two_of_three["event_f1"] == pytest.approx(2 * 1.0 * (2 / 3) / (1.0 + 2 / 3))
    assert event_metrics(pred.iloc[:0], labels)["event_f1"] != event_metrics(pred.iloc[:0], labels)["event_f1"]  # NaN
    assert m["assumed_1hz"] is True
    assert m["span_days"] == pytest.approx(20 / 86_400)
    assert m["false_events_per_day"] == pytest.approx(2 * 86_400 / 20)


def test_event_metrics_one_prediction_spanning_two_truth_events():
    labels = np.array([0, 1, 0, 0, 1, 1, 0])
    m = event_metrics(pd.DataFrame({"start": [1], "end": [4]}), labels)
    assert (m["n_detected"], m["n_false_events"], m["event_recall"], m["event_precision"]) == (2, 0, 1.0, 1.0)


def test_event_metrics_from_flags_with_time():
    labels = np.zeros(1440, dtype=int)  # one day at one row per minute
    labels[100:110] = 1
    labels[700:705] = 1
    flags = np.zeros(1440, dtype=bool)
    flags[[105, 106, 300, 1000, 1439]] = True
    time = pd.date_range("2024-01-01", periods=1440, freq="min")
    events = flags_to_events(flags, np.zeros(1440), time=time)
    m = event_metrics(events, labels, time=time)
    assert m["assumed_1hz"] is False
    assert m["span_days"] == pytest.approx(1.0)
    assert (m["n_detected"], m["n_false_events"], m["n_pred_events"]) == (1, 3, 4)
    assert m["false_events_per_day"] == pytest.approx(3.0)
    assert m["event_recall"] == 0.5 and m["event_precision"] == 0.25


def test_event_metrics_without_events():
    m = event_metrics(flags_to_events(np.zeros(10), np.zeros(10)), np.zeros(10))
    assert (m["n_true_events"], m["n_pred_events"], m["n_false_events"]) == (0, 0, 0)
    assert np.isnan(m["event_recall"]) and np.isnan(m["event_precision"])
    assert m["false_events_per_day"] == 0.0


@pytest.mark.parametrize(
    ("pred", "match"),
    [
        (pd.DataFrame({"start": [0]}), "pred_events must be a DataFrame with 'start' and 'end'"),
        (pd.DataFrame({"start": [3], "end": [10]}), r"0 <= start <= end < 10"),
        (pd.DataFrame({"start": [3], "end": [2]}), r"0 <= start <= end < 10"),
    ],
)
def test_event_metrics_rejects_bad_events(pred, match):
    with pytest.raises(ValueError, match=match):
        event_metrics(pred, np.zeros(10))
