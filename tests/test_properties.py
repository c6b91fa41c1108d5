"""Properties (hypothesis): random shapes, gaps and values never crash the loader, the
windowing, the scaling or the threshold rules, and never give NaN scores.

Each property holds for every input hypothesis draws.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from aeviz_core import (
    THRESHOLD_RULES,
    ChannelScaler,
    DataError,
    fit_threshold,
    iter_window_batches,
    load_sensor_table,
    sliding_windows,
    window_starts,
    windows_to_rows,
)

FLOAT32_MAX = float(np.finfo(np.float32).max)
FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60)


# --------------------------------------------------------------------------- the loader


@FAST
@given(content=st.one_of(
    st.binary(max_size=600),
    st.binary(max_size=300).map(lambda b: b"time,a,b\n" + b),
    st.binary(max_size=300).map(lambda b: b"\xff\xfe" + b),
))
def test_any_bytes_load_or_raise_data_error(content):
    """Whatever the bytes, the loader returns clean data or one DataError line, nothing else."""
    try:
        data = load_sensor_table(content)
    except DataError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert np.isfinite(data.channels.to_numpy()).all()
    assert data.labels.index.equals(data.channels.index)


CELLS = ["1", "-2.5", "0", "3e5", "1e30", "1e39", "-1e400", "nan", "NaN", "inf", "", " ", "x",
         "N/A", "2026-01-05 00:00:00", "05.01.2026", "0,5", '"1,5"', '"1,234.5"', "true", '"', "#",
         "\u00e9", "\u20ac"]
NAMES = ["time", "a", "b", "a", "anomaly", "label", "", "0.5", "Unnamed: 0", "x y", "\u00e9"]


@FAST
@given(
    header=st.lists(st.sampled_from(NAMES), min_size=1, max_size=5),
    rows=st.lists(st.lists(st.sampled_from(CELLS), min_size=0, max_size=6), min_size=0, max_size=12),
    sep=st.sampled_from([",", ";", "\t", "|"]),
    encoding=st.sampled_from(["utf-8", "latin-1", "utf-16"]),
)
def test_any_table_text_loads_or_raises_data_error(header, rows, sep, encoding):
    """Random cells (numbers, words, dates, quotes, overflow) under random headers and separators."""
    text = "\n".join(sep.join(line) for line in [header, *rows]) + "\n"
    try:
        content = text.encode(encoding)
    except UnicodeEncodeError:
        content = text.encode("utf-8")
    try:
        data = load_sensor_table(content)
    except DataError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    values = data.channels.to_numpy()
    assert values.dtype == np.float64 and np.isfinite(values).all()
    assert (np.abs(values) <= FLOAT32_MAX).all()
    assert data.time is None or data.time.is_monotonic_increasing


VALUES = st.one_of(
    st.floats(-1e6, 1e6),
    st.sampled_from([np.nan, np.inf, -np.inf, 1e30, -1e30, 1e39, 0.0]),
)


@st.composite
def tables_with_gaps(draw):
    """(frame, max_gap): channels with NaN/inf runs and constant columns, and a time column
    that may be missing, unsorted or repeated."""
    n_rows = draw(st.integers(2, 40), label="n_rows")
    n_cols = draw(st.integers(1, 4), label="n_cols")
    values = draw(arrays(np.float64, (n_rows, n_cols), elements=st.floats(-1e6, 1e6)))
    for _ in range(draw(st.integers(0, 6), label="patches")):
        j = draw(st.integers(0, n_cols - 1))
        start = draw(st.integers(0, n_rows - 1))
        values[start:start + draw(st.integers(1, 15)), j] = draw(VALUES)
    frame = pd.DataFrame(values, columns=[f"c{j}" for j in range(n_cols)])
    time = draw(st.sampled_from(["none", "sorted", "shuffled", "repeated"]), label="time")
    if time != "none":
        seconds = np.arange(n_rows)
        if time == "shuffled":
            seconds = np.asarray(draw(st.permutations(list(seconds))))
        elif time == "repeated":
            seconds = np.sort(draw(arrays(np.int64, n_rows, elements=st.integers(0, n_rows // 2))))
        frame.insert(0, "time", pd.Timestamp("2026-01-05") + pd.to_timedelta(seconds, unit="s"))
    return frame, draw(st.integers(0, 5), label="max_gap")


def _longest_run(mask: np.ndarray) -> int:
    longest = run = 0
    for missing in mask:
        run = run + 1 if missing else 0
        longest = max(longest, run)
    return longest


@FAST
@given(case=tables_with_gaps(), fmt=st.sampled_from(["csv", "parquet"]))
def test_gaps_are_filled_or_left_as_gaps_never_lost(case, fmt):
    """A frame with missing values loads with every known value in place: a run of at most
    max_gap missing cells is filled, a longer one stays NaN (a gap row), or it raises DataError
    exactly when a column has no value, a value is beyond float32, or every row is a gap."""
    frame, max_gap = case
    content = frame.to_csv(index=False).encode() if fmt == "csv" else frame.to_parquet()
    channels = [c for c in frame.columns if c != "time"]
    order = (np.argsort(frame["time"].to_numpy(), kind="stable") if "time" in frame
             else np.arange(len(frame)))
    expected = frame[channels].to_numpy()[order]
    known = np.isfinite(expected)
    long = np.zeros(known.shape, bool)  # cells in a run of more than max_gap missing ones
    for j in range(known.shape[1]):
        edges = np.flatnonzero(np.diff(np.r_[0, (~known[:, j]).astype(int), 0]))
        for a, b in zip(edges[::2], edges[1::2]):
            long[a:b, j] = b - a > max_gap
    refuse = ((~known).all(axis=0).any() or (np.abs(expected[known]) > FLOAT32_MAX).any()
              or long.any(axis=1).all())
    try:
        data = load_sensor_table(content, max_gap=max_gap)
    except DataError:
        assert refuse
        return
    assert not refuse
    got = data.channels.to_numpy()
    assert got.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(got), long)  # gaps stay, everything else is filled
    np.testing.assert_allclose(got[known], expected[known], rtol=1e-15)  # nothing lost
    for j in range(got.shape[1]):  # filled cells lie between the known values around them
        column = expected[known[:, j], j]
        assert column.min() <= np.nanmin(got[:, j]) and np.nanmax(got[:, j]) <= column.max()


# --------------------------------------------------------------------------- windows


@st.composite
def windowing(draw):
    window = draw(st.integers(2, 12), label="window")
    stride = draw(st.integers(1, window), label="stride")
    n_rows = draw(st.integers(window, 60), label="n_rows")
    return n_rows, window, stride


@FAST
@given(shape=windowing())
def test_windows_cover_every_row(shape):
    n_rows, window, stride = shape
    starts = window_starts(n_rows, window, stride)
    assert starts[0] == 0 and starts[-1] == n_rows - window
    assert (np.diff(starts) > 0).all() and (np.diff(starts) <= stride).all()
    covered = np.zeros(n_rows, bool)
    for s in starts:
        covered[s:s + window] = True
    assert covered.all()


@FAST
@given(n_rows=st.integers(0, 30), window=st.integers(2, 40))
def test_fewer_rows_than_a_window_is_a_clear_error(n_rows, window):
    assume(n_rows < window)
    with pytest.raises(ValueError, match=f"the series has {n_rows} rows, fewer than one window of {window}"):
        window_starts(n_rows, window, 1)


@FAST
@given(shape=windowing(), n_channels=st.integers(1, 3), batch=st.integers(1, 9), data=st.data())
def test_windows_are_the_rows_they_start_at(shape, n_channels, batch, data):
    n_rows, window, stride = shape
    values = data.draw(arrays(np.float64, (n_rows, n_channels), elements=st.floats(-1e30, 1e30)))
    starts = window_starts(n_rows, window, stride)
    expected = np.stack([values[s:s + window] for s in starts])
    np.testing.assert_array_equal(sliding_windows(values, window, stride), expected)
    pieces = list(iter_window_batches(values, window, stride, batch))
    np.testing.assert_array_equal(np.concatenate([s for s, _ in pieces]), starts)
    np.testing.assert_array_equal(np.concatenate([w for _, w in pieces]), expected)


def _covering(n_rows, window, stride):
    starts = window_starts(n_rows, window, stride)
    return [np.flatnonzero((starts <= r) & (r < starts + window)) for r in range(n_rows)]


@FAST
@given(shape=windowing(), data=st.data())
def test_windows_to_rows_max_and_mean(shape, data):
    n_rows, window, stride = shape
    starts = window_starts(n_rows, window, stride)
    values = data.draw(arrays(np.float64, (len(starts), 2), elements=st.floats(-1e6, 1e6)))
    for reduce, combine in (("max", np.max), ("mean", np.mean)):
        rows = windows_to_rows(values, n_rows, window, stride, reduce=reduce)
        assert rows.shape == (n_rows, 2) and np.isfinite(rows).all()
        expected = np.stack([combine(values[idx], axis=0) for idx in _covering(n_rows, window, stride)])
        np.testing.assert_allclose(rows, expected, rtol=1e-9, atol=1e-6)


def test_windows_to_rows_mean_stays_between_its_windows():
    values = np.array([1e20, 1.0, 1.0, 1.0])
    rows = windows_to_rows(values, 7, 4, 1, reduce="mean")
    for r, idx in enumerate(_covering(7, 4, 1)):
        assert values[idx].min() <= rows[r] <= values[idx].max()


# --------------------------------------------------------------------------- scaling


@st.composite
def channel_frames(draw, limit=1e30):
    n_rows = draw(st.integers(1, 30), label="n_rows")
    columns = []
    for _ in range(draw(st.integers(1, 4), label="n_cols")):
        kind = draw(st.sampled_from(["random", "constant", "spike"]))
        if kind == "constant":
            columns.append(np.full(n_rows, draw(st.floats(-limit, limit))))
        elif kind == "spike":
            column = np.full(n_rows, draw(st.floats(-1.0, 1.0)))
            column[draw(st.integers(0, n_rows - 1))] = draw(st.floats(-limit, limit))
            columns.append(column)
        else:
            columns.append(draw(arrays(np.float64, n_rows, elements=st.floats(-limit, limit))))
    return np.column_stack(columns)


@FAST
@given(X=channel_frames())
def test_mean_std_scaling_is_finite_and_invertible(X):
    """The detector's scaling (robust=False): finite, constant channels at 0, invertible."""
    scaler = ChannelScaler(robust=False).fit(X)
    Z = scaler.transform(X)
    assert Z.dtype == np.float32 and np.isfinite(Z).all()
    constant = scaler.constant_
    assert (np.abs(Z[:, constant]) <= 1e-9 * (1 + np.abs(X[:, constant]))).all()  # 0 up to rounding
    np.testing.assert_allclose(scaler.inverse_transform(Z), X, rtol=1e-5, atol=1e-5 * np.abs(X).max() + 1e-12)


def test_robust_scaling_is_finite():
    X = np.array([[0.0], [0.0], [1e-11], [2e-11], [3e-11], [1e30]])
    assert np.isfinite(ChannelScaler(robust=True).fit(X).transform(X)).all()


# --------------------------------------------------------------------------- thresholds


ERRORS = arrays(np.float64, st.integers(1, 200), elements=st.one_of(
    st.floats(0, 10), st.floats(0, FLOAT32_MAX), st.just(0.0)))


def _param(rule, data):
    low, high = THRESHOLD_RULES[rule]["range"]
    closed_high = THRESHOLD_RULES[rule]["closed"][1]
    high = min(high, 1e3)
    return data.draw(st.floats(low, high, exclude_min=True, exclude_max=not closed_high))


@FAST
@given(errors=ERRORS, rule=st.sampled_from(["percentile", "mad", "contamination", "far"]), data=st.data())
def test_thresholds_are_finite_and_move_the_right_way(errors, rule, data):
    """Every rule gives a finite threshold inside the errors' range (above the median for mad);
    a stricter parameter never lowers it."""
    p1, p2 = sorted([_param(rule, data), _param(rule, data)])
    t1, t2 = fit_threshold(errors, rule, p1), fit_threshold(errors, rule, p2)
    assert np.isfinite(t1) and np.isfinite(t2)
    if rule == "mad":
        assert np.median(errors) <= t1 <= t2
        return
    assert errors.min() <= t1 <= errors.max() and errors.min() <= t2 <= errors.max()
    if rule == "percentile":  # a higher percentile is stricter
        assert t1 <= t2
    else:  # a larger expected fraction or false-alarm rate is looser
        assert t2 <= t1


@FAST
@given(errors=ERRORS, bad=st.sampled_from([np.nan, np.inf, -np.inf]), at=st.integers(0, 199),
       rule=st.sampled_from(["percentile", "mad", "contamination", "far"]))
def test_non_finite_errors_are_refused_with_the_item(errors, bad, at, rule):
    errors = errors.copy()
    at = at % len(errors)
    errors[at] = bad
    with pytest.raises(ValueError, match=f"item {at} is"):
        fit_threshold(errors, rule)


# --------------------------------------------------------------------------- the detector


@pytest.fixture(scope="module")
def detector():
    """A tiny series detector (window 8, 4 channels), trained once."""
    from aeviz_core import AutoencoderDetector
    from tests.conftest import make_series

    return AutoencoderDetector(window=8, stride=4, latent_dim=2, hidden=(16,), epochs=2,
                               random_state=0).fit(make_series(400))


@st.composite
def series_frames(draw, limit=1e6, window=8):
    """Random 4-channel series at least a window long: noise at any level and scale,
    constant (stuck) channels, steps and single spikes, all within +/- limit."""
    n_rows = draw(st.integers(window, 80), label="n_rows")
    columns = []
    for _ in range(4):
        kind = draw(st.sampled_from(["noise", "constant", "step", "spike", "random"]))
        level = draw(st.floats(-limit, limit))
        if kind == "constant":
            column = np.full(n_rows, level)
        elif kind == "random":
            column = draw(arrays(np.float64, n_rows, elements=st.floats(-limit, limit)))
        else:
            rng = np.random.default_rng(draw(st.integers(0, 2**16)))
            scale = draw(st.floats(1e-6, 1.0)) * max(abs(level), 1.0)
            column = np.clip(level + rng.normal(0, scale, n_rows), -limit, limit)
            at = draw(st.integers(0, n_rows - 1))
            if kind == "step":
                column[at:] = draw(st.floats(-limit, limit))
            elif kind == "spike":
                column[at] = draw(st.floats(-limit, limit))
        columns.append(column)
    return pd.DataFrame(np.column_stack(columns), columns=["a", "b", "c", "level"])


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(frame=series_frames())
def test_scores_are_finite_for_any_finite_series(detector, frame):
    score, channel_scores = detector.score_parts(frame)
    assert score.shape == (len(frame),) and channel_scores.shape == (len(frame), 4)
    assert np.isfinite(score).all() and (score >= 0).all()
    assert np.isfinite(channel_scores).all()
    errors = detector.channel_errors(frame)
    assert np.isfinite(errors).all() and (errors >= 0).all()
    np.testing.assert_allclose(detector.reconstruction_error(frame), errors.mean(axis=1), rtol=1e-6)
    assert set(np.unique(detector.predict(frame))) <= {-1, 1}


@settings(deadline=None, max_examples=5, phases=(Phase.explicit, Phase.generate))
@given(frame=series_frames(), at=st.integers(0, 7), channel=st.integers(0, 3),
       huge=st.sampled_from([1e20, -1e25, 1e30, 3e38]))
def test_scores_are_finite_with_huge_values(detector, frame, at, channel, huge):
    frame = frame.copy()
    frame.iloc[at, channel] = huge
    assert np.isfinite(detector.anomaly_score(frame)).all()


def test_constant_channels_never_give_nan_scores(detector):
    flat = pd.DataFrame({"a": np.zeros(50), "b": np.ones(50), "c": np.full(50, -3.0), "level": np.full(50, 3.0)})
    assert np.isfinite(detector.anomaly_score(flat)).all()
    assert np.isfinite(detector.channel_errors(flat)).all()


@settings(deadline=None, max_examples=10)
@given(n_rows=st.integers(1, 7))
def test_fewer_rows_than_a_window_is_a_clear_error_at_scoring(detector, n_rows):
    from aeviz_core import ModelMismatchError

    frame = pd.DataFrame(np.zeros((n_rows, 4)), columns=["a", "b", "c", "level"])
    with pytest.raises(ModelMismatchError, match=f"the data has {n_rows} rows, fewer than one window of 8 rows"):
        detector.anomaly_score(frame)


@settings(deadline=None, max_examples=30)
@given(rule=st.sampled_from(["percentile", "mad", "contamination", "far"]), data=st.data())
def test_moving_the_threshold_keeps_it_finite(detector, rule, data):
    moved = detector.with_threshold(rule, _param(rule, data))
    assert np.isfinite(moved.threshold_) and moved.offset_ == -moved.threshold_
    assert detector.threshold_rule_.rule == "percentile"  # the shared detector is untouched


@settings(deadline=None, max_examples=10)
@given(frame=series_frames(limit=10.0), at=st.integers(0, 7), bad=st.sampled_from([np.nan, np.inf]))
def test_nan_in_a_series_is_a_gap_without_a_score(detector, frame, at, bad):
    frame = frame.copy()
    frame.iloc[at, 1] = bad
    scores = detector.anomaly_score(frame)
    assert np.isnan(scores[at])  # the gap row has no score
    left, right = frame.iloc[:at], frame.iloc[at + 1 :]
    for side, rows in ((left, scores[:at]), (right, scores[at + 1 :])):
        assert np.isfinite(rows).all() if len(side) >= 8 else np.isnan(rows).all()  # window 8


def test_loaded_gappy_file_scores_finite(detector):
    """Through the loader: a file with short gaps, a stuck channel and duplicate times scores finite."""
    from tests.conftest import make_series

    frame = make_series(120, seed=3)
    frame.loc[10:12, "a"] = np.nan
    frame.loc[40, "c"] = np.inf
    frame["level"] = 3.0
    frame.insert(0, "time", pd.Timestamp("2026-01-05") + pd.to_timedelta(np.arange(120) // 2, unit="s"))
    data = load_sensor_table(io.BytesIO(frame.to_csv(index=False).encode()))
    assert {"a", "c"} <= set(data.report.interpolated) and data.report.constant_channels == ["level"]
    assert np.isfinite(detector.anomaly_score(data.channels)).all()
