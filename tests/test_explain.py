"""Explanations of a series' events: blame lives in test_detector / test_quality; here the
signatures behind "similar events"."""

import numpy as np
import pytest

from aeviz_core.explain import SIGNATURE, event_signatures, nearest_events


@pytest.fixture(scope="module")
def mixed_faults(series):
    """Three stuck readings and three bursts of noise, on different channels, after the
    training rows: (frame, spans, kinds)."""
    X = series.copy()
    rng = np.random.default_rng(3)
    spans, kinds = [], []
    for start, channel in ((1700, "a"), (2100, "c"), (2500, "b")):  # a sensor repeats its last value
        X.loc[start : start + 79, channel] = X.loc[start, channel]
        spans.append((start, start + 79)), kinds.append("stuck")
    for start, channel in ((1900, "b"), (2300, "a"), (2700, "c")):  # the reading gets 6 times noisier
        X.loc[start : start + 79, channel] += rng.normal(0, 0.3, 80)
        spans.append((start, start + 79)), kinds.append("noise")
    return X, spans, np.array(kinds)


def test_events_of_a_kind_are_each_others_nearest(series_detector, mixed_faults):
    X, spans, kinds = mixed_faults
    signatures = event_signatures(series_detector, X, spans)
    assert list(signatures.columns) == ["start", "end", *SIGNATURE]
    assert signatures[list(SIGNATURE)].notna().all().all()
    stuck, noise = signatures[kinds == "stuck"], signatures[kinds == "noise"]
    assert stuck["stillness"].min() > noise["stillness"].max()  # a stuck sensor stops moving
    assert noise["step_energy"].min() > stuck["step_energy"].max()
    for i in range(len(spans)):
        near = nearest_events(signatures, i, k=2)
        assert len(near) == 2 and i not in set(near["position"])
        assert near["distance"].is_monotonic_increasing
        assert (kinds[near["position"]] == kinds[i]).all(), (i, kinds[i], near)


def test_signatures_refuse_what_they_cannot_describe(series_detector, series, digits):
    from aeviz_core import AutoencoderDetector

    with pytest.raises(ValueError, match="0 <= start <= end"):
        event_signatures(series_detector, series, [(10, 5)])
    table = AutoencoderDetector(epochs=1, random_state=0).fit(digits[0][:200])
    with pytest.raises(ValueError, match="series"):
        event_signatures(table, digits[0][:50], [(0, 1)])
    one = event_signatures(series_detector, series, [(2000, 2010)])
    with pytest.raises(ValueError, match="index"):
        nearest_events(one, 3)
    assert nearest_events(one, 0).empty  # no other event to compare with


def test_type_agreement_counts_the_neighbours_of_each_kind(series_detector, mixed_faults):
    from aeviz_core.explain import type_agreement

    X, spans, kinds = mixed_faults
    signatures = event_signatures(series_detector, X, spans)
    assert type_agreement(signatures, kinds, k=2) == {"noise": 1.0, "stuck": 1.0, "all": 1.0}
    shares = type_agreement(signatures, ["none", *kinds[1:]], k=2)  # a false event: a neighbour, not counted
    assert "none" not in shares and shares["stuck"] == 0.5  # each other stuck reading: one of two neighbours
    assert shares["all"] == pytest.approx((2 * 0.5 + 3 * 1.0) / 5)
    assert type_agreement(signatures, kinds, k=5)["all"] == pytest.approx(0.4)  # five neighbours: two of its kind


def test_blaming_many_events_at_once_gives_each_events_blame(series_detector, mixed_faults):
    """:func:`blame_events` prepares and scores the series once; each event's shares are the ones
    :meth:`blame` gives it alone (on a piece with its context), to rounding."""
    from aeviz_core.explain import blame_events

    X, spans, _ = mixed_faults
    batch = blame_events(series_detector, X, spans)
    alone = np.array([series_detector.blame(X, a, b) for a, b in spans])
    assert batch.shape == (len(spans), X.shape[1])
    np.testing.assert_allclose(batch, alone, atol=1e-9)
    np.testing.assert_allclose(batch.sum(axis=1), 1.0)
    from aeviz_core.explain import prepared

    kept = prepared(series_detector, X)  # what a page keeps between thresholds
    np.testing.assert_array_equal(blame_events(series_detector, X, spans, prepared=kept), batch)
    capped = blame_events(series_detector, X, spans[:1], max_rows=3)  # judged around its peak
    assert capped.shape == (1, X.shape[1]) and np.isclose(capped.sum(), 1.0)
    with pytest.raises(ValueError, match="start <= end"):
        blame_events(series_detector, X, [(5, 2)])


def test_with_blame_names_the_largest_share():
    import pandas as pd

    from aeviz_core.events import with_blame

    events = pd.DataFrame({"start": [0, 10], "end": [3, 12]})
    out = with_blame(events, [[0.1, 0.6, 0.3], [np.nan, np.nan, np.nan]], ["a", "b", "c"])
    assert out["blamed_channel"].tolist() == ["b", ""]
    assert out["blame_share"].iloc[0] == 0.6 and np.isnan(out["blame_share"].iloc[1])
    assert "blamed_channel" not in events  # a copy


def test_like_decided_finds_the_nearest_dismissed_look_within_the_distance_never_itself():
    import pandas as pd

    from aeviz_core.explain import LIKE_DISTANCE, SIGNATURE, like_decided

    def looks(rows, **extra):
        frame = pd.DataFrame(rows, columns=["start", "end", *SIGNATURE])
        return frame.assign(**extra)

    base = [0.0] * len(SIGNATURE)
    signatures = looks([[10, 20, *base], [40, 50, *[3.0] * len(SIGNATURE)], [70, 80, *base]])
    decided = looks([[10, 20, *base], [100, 120, *[0.1] + base[1:]], [200, 210, *base]],
                    status=["dismissed", "dismissed", "confirmed"], here=[True, False, False],
                    data_name=["this data", "day1.csv", "day1.csv"], reviewer=["ana", "ben", "cy"],
                    tags=["start-up", "", ""])
    like = like_decided(signatures, decided)
    # the first event is its own dismissed span: not its own like; the nearest other is day1's (0.1 away)
    assert like.loc[0, ["like_start", "like_end", "like_data", "like_reviewer"]].tolist() == [100, 120, "day1.csv", "ben"]
    assert like.loc[0, "like_distance"] == pytest.approx(0.1)
    assert np.isnan(like.loc[1, "like_start"])  # nothing dismissed looks like it (the confirmed one is not counted)
    assert like.loc[2, "like_start"] == 10 and like.loc[2, "like_tags"] == "start-up"  # another event, same look
    assert like_decided(signatures, decided, within=0.05).loc[0, "like_start"] != 100
    assert LIKE_DISTANCE > 0
    assert like_decided(signatures, decided.iloc[:0]).isna()["like_start"].all()


def test_a_bystander_whose_reconstruction_jumped_is_not_blamed_for_it():
    """Issue 26, item 5: a rotor imbalance shakes the accelerometer (its own error 10); the model
    rebuilds a flat thermocouple from it, so the thermocouple's normalised error (40) is larger,
    though imputing the accelerometer removes 25 of it. Summed, the removals blamed the
    thermocouple (35 against 40); its own error counts only where the accelerometer does not
    explain it."""
    from aeviz_core.explain import imputed_shares

    before = np.array([10.0, 40.0, 1.0])  # accelerometer, thermocouple, a quiet third channel
    after = np.array([[0.0, 15.0, 1.0],  # the accelerometer imputed: the thermocouple's rebuild falls back
                      [10.0, 0.0, 1.0],  # the thermocouple imputed: only its own error goes
                      [10.0, 40.0, 0.0]])
    old = before.sum() - after.sum(axis=1)
    assert old.argmax() == 1  # what the summed removals named
    shares = imputed_shares(before, after)
    assert shares.argmax() == 0 and shares.tolist() == [35.0, 15.0, 1.0]
    # a channel that broke alone keeps all of its own error; two that explain each other share it
    assert imputed_shares(np.array([5.0, 0.0]), np.array([[0.0, 0.0], [5.0, 0.0]])).tolist() == [5.0, 0.0]
    mutual = imputed_shares(np.array([4.0, 4.0]), np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert mutual.tolist() == [4.0, 4.0]
