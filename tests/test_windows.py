import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aeviz_core import ChannelScaler, iter_window_batches, sliding_windows, window_starts, windows_to_rows


def test_window_starts_cover_the_last_row():
    assert window_starts(10, 4, 3).tolist() == [0, 3, 6]
    assert window_starts(11, 4, 3).tolist() == [0, 3, 6, 7]
    assert window_starts(4, 4, 1).tolist() == [0]


@pytest.mark.parametrize("window, stride, message", [(1, 1, "window must be"), (4, 0, "stride must be")])
def test_bad_window_arguments_name_the_parameter(window, stride, message):
    with pytest.raises(ValueError, match=message):
        window_starts(10, window, stride)


def test_too_few_rows_for_one_window():
    with pytest.raises(ValueError, match="3 rows, fewer than one window of 5"):
        sliding_windows(np.zeros((3, 2)), 5)


def test_sliding_windows_are_views_with_the_right_content():
    values = np.arange(20.0).reshape(10, 2)
    w = sliding_windows(values, 4, 3)
    assert w.shape == (3, 4, 2)
    assert np.shares_memory(w, values)
    np.testing.assert_array_equal(w[1], values[3:7])


def test_unaligned_stride_adds_an_end_aligned_window():
    values = np.arange(22.0).reshape(11, 2)
    w = sliding_windows(values, 4, 3)
    np.testing.assert_array_equal(w[-1], values[7:11])


def test_batches_match_the_full_windowing():
    values = np.random.default_rng(0).normal(size=(101, 3))
    full = sliding_windows(values, 8, 1)
    got = np.concatenate([b for _, b in iter_window_batches(values, 8, 1, batch_size=17)])
    np.testing.assert_array_equal(got, full)


def test_windows_to_rows_max_and_mean():
    out = windows_to_rows(np.array([1.0, 5.0, 2.0]), 10, 4, 3)
    assert out.tolist() == [1, 1, 1, 5, 5, 5, 5, 2, 2, 2]
    mean = windows_to_rows(np.array([1.0, 5.0, 2.0]), 10, 4, 3, reduce="mean")
    assert mean[3] == pytest.approx(3.0) and mean[6] == pytest.approx(3.5)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 300), window=st.integers(2, 40), stride=st.integers(1, 50))
def test_every_row_is_covered(n, window, stride):
    if stride > window:
        with pytest.raises(ValueError, match="stride must be <= window"):
            window_starts(n, window, stride)
        return
    if n < window:
        with pytest.raises(ValueError):
            window_starts(n, window, stride)
        return
    starts = window_starts(n, window, stride)
    covered = np.zeros(n, bool)
    for s in starts:
        covered[s : s + window] = True
    assert covered.all()
    rows = windows_to_rows(np.ones(len(starts)), n, window, stride)
    assert np.isfinite(rows).all()


def test_scaler_handles_a_constant_channel():
    X = np.c_[np.random.default_rng(0).normal(5, 2, 500), np.full(500, 7.0)]
    scaler = ChannelScaler(robust=False).fit(X)
    Z = scaler.transform(X)
    assert np.isfinite(Z).all()
    assert scaler.constant_.tolist() == [False, True]
    assert abs(Z[:, 0].std() - 1) < 1e-3 and np.all(Z[:, 1] == 0)
    np.testing.assert_allclose(scaler.inverse_transform(Z), X, rtol=1e-5)


def test_scaler_round_trips_through_a_dict():
    X = np.random.default_rng(1).normal(size=(50, 3))
    scaler = ChannelScaler().fit(X)
    again = ChannelScaler.from_dict(scaler.to_dict())
    np.testing.assert_array_equal(again.transform(X), scaler.transform(X))
