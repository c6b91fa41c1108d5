"""Sliding windows over multichannel series, per-channel scaling, and the map back.

Windows are views into the raw series (``numpy.lib.stride_tricks``), never
copies, so a long recording costs no extra memory until a batch is scored.
Every row is covered by at least one window: when the stride does not land on
the last row, a final window aligned to the end of the series is added.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from .data import mask_runs

SCALED_LIMIT = 1e6  # scaled values are clipped here: a million spreads is an anomaly either way

__all__ = [
    "ChannelScaler",
    "iter_window_batches",
    "lagged_quantile",
    "moving_average",
    "overlap_average",
    "remove_level",
    "running_level",
    "running_median",
    "segments",
    "sliding_windows",
    "slow_share",
    "trailing_median",
    "window_starts",
    "windows_to_rows",
]


def _check_window(window: int, stride: int) -> None:
    if not isinstance(window, (int, np.integer)) or window < 2:
        raise ValueError(f"window must be an integer >= 2, got {window!r}")
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
    if stride > window:
        raise ValueError(f"stride must be <= window ({window}) so every row is covered, got {stride}")


def window_starts(n_rows: int, window: int, stride: int = 1) -> np.ndarray:
    """First row of every window over a series of ``n_rows`` rows.

    Parameters
    ----------
    n_rows : int
        Length of the series.
    window, stride : int
        Window length (>= 2) and step between window starts (>= 1).

    Returns
    -------
    starts : ndarray of int64, shape (n_windows,)
        ``0, stride, 2*stride, ...`` plus ``n_rows - window`` when the stride
        does not reach it, so the last row is always covered.

    Examples
    --------
    >>> window_starts(10, 4, 3).tolist()
    [0, 3, 6]
    >>> window_starts(11, 4, 3).tolist()
    [0, 3, 6, 7]
    """
    _check_window(window, stride)
    if n_rows < window:
        raise ValueError(
            f"the series has {n_rows} rows, fewer than one window of {window} rows"
        )
    starts = np.arange(0, n_rows - window + 1, stride, dtype=np.int64)
    if starts[-1] != n_rows - window:
        starts = np.append(starts, n_rows - window)
    return starts


def sliding_windows(values: np.ndarray, window: int, stride: int = 1) -> np.ndarray:
    """Cut a (rows, channels) series into windows without copying.

    Parameters
    ----------
    values : ndarray, shape (n_rows, n_channels)
    window, stride : int

    Returns
    -------
    windows : ndarray, shape (n_windows, window, n_channels)
        A read-only view into ``values`` whose windows start at
        :func:`window_starts`. Rows are time, the last axis is channels.

    Examples
    --------
    >>> sliding_windows(np.arange(12.0).reshape(6, 2), 3, 2).shape
    (3, 3, 2)
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"values must be 2-D (rows, channels), got shape {values.shape}")
    starts = window_starts(values.shape[0], window, stride)
    view = sliding_window_view(values, window, axis=0).transpose(0, 2, 1)
    if (values.shape[0] - window) % stride == 0:
        return view[::stride]  # a view: no copy
    # the end-aligned last window is off the stride grid: only a strided view
    # plus that one window, so this path copies; batch scoring avoids it by
    # gathering windows batch by batch (see iter_window_batches)
    return np.concatenate([view[::stride], view[starts[-1] : starts[-1] + 1]])


def iter_window_batches(values: np.ndarray, window: int, stride: int = 1, batch_size: int = 4096):
    """Yield ``(starts, windows)`` batches cut lazily from a (rows, channels) series.

    Only one batch of windows (``batch_size x window x channels``) exists in
    memory at a time; the series itself is never copied.

    Parameters
    ----------
    values : ndarray, shape (n_rows, n_channels)
    window, stride, batch_size : int

    Yields
    ------
    starts : ndarray of int64, shape (b,)
    windows : ndarray, shape (b, window, n_channels)
    """
    values = np.asarray(values)
    starts = window_starts(values.shape[0], window, stride)
    view = sliding_window_view(values, window, axis=0).transpose(0, 2, 1)
    for i in range(0, len(starts), batch_size):
        batch = starts[i : i + batch_size]
        yield batch, view[batch]


def windows_to_rows(
    window_values: np.ndarray,
    n_rows: int,
    window: int,
    stride: int = 1,
    reduce: str = "max",
) -> np.ndarray:
    """Spread one value per window back onto the rows each window covers.

    Parameters
    ----------
    window_values : ndarray, shape (n_windows,) or (n_windows, k)
        One score (or one score per channel) per window, in the order of
        :func:`window_starts`.
    n_rows, window, stride : int
        The series length and windowing that produced the windows.
    reduce : {"max", "mean"}
        How overlapping windows combine on a row. ``"max"`` keeps a short
        fault visible on every row of every window that saw it.

    Returns
    -------
    row_values : ndarray of float64, shape (n_rows,) or (n_rows, k)
        Every row gets a value: windows cover the whole series.
    """
    starts = window_starts(n_rows, window, stride)
    values = np.asarray(window_values, dtype=np.float64)
    if values.shape[0] != len(starts):
        raise ValueError(
            f"window_values has {values.shape[0]} windows, but a series of {n_rows} rows "
            f"with window={window}, stride={stride} has {len(starts)}"
        )
    if reduce not in ("max", "mean"):
        raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")
    tail = values.shape[1:]
    if reduce == "mean":  # the overlap average of a value that is the same at every position
        flat = values.reshape(len(starts), 1, -1)
        spread = np.broadcast_to(flat, (len(starts), window, flat.shape[2]))
        return overlap_average([(starts, spread)], n_rows, window, flat.shape[2]).reshape(n_rows, *tail)
    out = np.full((n_rows, *tail), -np.inf)
    # each row is covered by at most ceil(window / stride) + 1 windows: loop over
    # the offset inside the window, vectorised over all windows at once
    for offset in range(window):
        rows = starts + offset
        np.maximum.at(out, rows, values)
    return out


def moving_average(values: np.ndarray, length: int) -> np.ndarray:
    """Centred moving average over ``length`` rows, over fewer rows at the edges."""
    n = len(values)
    half = length // 2
    csum = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    rows = np.arange(n)
    lo, hi = np.maximum(rows - half, 0), np.minimum(rows + half + 1, n)
    return (csum[hi] - csum[lo]) / (hi - lo)[:, None]


def away_from_anomalies(held: np.ndarray, usable: np.ndarray, finite: np.ndarray, reach: int,
                        least: int) -> np.ndarray:
    """The held-out rows whose score no labelled anomaly reaches: none within ``reach`` rows
    (a held-out row beside a fault scores the fault through its windows and averages, which
    would raise the threshold to the fault's level). ``held`` unchanged when fewer than
    ``least`` rows would remain."""
    anomalous = finite & ~usable
    if not anomalous.any():
        return held
    near = moving_average(anomalous[:, None].astype(np.float64), 2 * reach + 1)[:, 0] > 0
    clean = held & ~near
    return clean if clean.sum() >= least else held


def running_median(X: np.ndarray, length: int, edge_rows: int = 0) -> np.ndarray:
    """Centred running median of each column over ``length`` rows.

    With ``edge_rows``, the series is continued past each end by its point
    reflection about the median of its ``edge_rows`` end rows, so a level
    that rises to the last row is followed there (a median over fewer rows
    would lag behind it); without, the edges take the median of fewer rows.
    """
    n, half = len(X), int(length) // 2
    k = min(half, n - 1) if edge_rows else 0
    if k > 0:
        left = 2 * np.median(X[:edge_rows], axis=0) - X[1 : k + 1][::-1]
        right = 2 * np.median(X[-edge_rows:], axis=0) - X[n - k - 1 : n - 1][::-1]
        X = np.vstack([left, X, right])
    return pd.DataFrame(X).rolling(int(length), center=True, min_periods=1).median().to_numpy()[k : k + n]


def trailing_median(X: np.ndarray, length: int) -> np.ndarray:
    """Median of each column over the ``length`` rows up to and including each row (fewer at the start)."""
    return pd.DataFrame(X).rolling(int(length), min_periods=1).median().to_numpy()


def lagged_quantile(X: np.ndarray, q: float, length: int, lag: int, min_rows: int) -> np.ndarray:
    """The ``q`` quantile of each column over the ``length`` rows that end ``lag`` rows before
    each row; NaN where fewer than ``min_rows`` such rows exist (the start of a stretch)."""
    out = np.full(np.shape(X), np.nan)
    if len(X) > lag:
        rolled = pd.DataFrame(X).rolling(int(length), min_periods=int(min_rows)).quantile(q).to_numpy()
        out[lag:] = rolled[: len(X) - lag]
    return out


def segments(X: np.ndarray, min_rows: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of rows of a series without a NaN, at least ``min_rows`` long."""
    return [(int(a), int(b)) for a, b in mask_runs(~np.isnan(X).any(axis=1)) if b - a >= min_rows]


def overlap_average(batches, n_rows: int, window: int, n_channels: int) -> np.ndarray:
    """Average per-window values onto rows: ``batches`` yields (starts, values (b, window, c)),
    each row the mean over the windows covering it (NaN for a row no window covers).

    Windows of stride 1 start at consecutive rows, so each offset inside the window is one
    slice add; other starts scatter (exact sums either way: a loop over the offset, vectorised
    over the windows, never a running difference that would lose small values beside huge ones).
    """
    total = np.zeros((n_rows, n_channels), dtype=np.float64)
    count = np.zeros(n_rows, dtype=np.float64)
    for starts, values in batches:
        starts = np.asarray(starts, dtype=np.int64)
        if not len(starts):
            continue
        consecutive = starts[-1] - starts[0] == len(starts) - 1
        for offset in range(window):
            if consecutive:
                total[starts[0] + offset : starts[-1] + offset + 1] += values[:, offset, :]
                count[starts[0] + offset : starts[-1] + offset + 1] += 1
            else:
                np.add.at(total, starts + offset, values[:, offset, :])
                np.add.at(count, starts + offset, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count[:, None]


def running_level(X: np.ndarray, rows: int, edge_rows: int) -> np.ndarray:
    """Each channel's centred running median over ``rows`` rows, within each gap-free stretch
    (NaN in gaps): the slow level that a series model's ``level`` setting takes out."""
    out = np.full(X.shape, np.nan)
    for a, b in segments(X, 1):
        out[a:b] = running_median(X[a:b], rows, edge_rows=edge_rows)
    return out


def remove_level(X: np.ndarray, running: np.ndarray, level: str, level_range=None, steady=None) -> np.ndarray:
    """``X`` less the part of its running level that ``level`` takes out: ``"relative"`` all of
    it, ``"range"`` only the part beyond ``level_range`` (rows: low, high per channel), ``"auto"``
    all of it on the channels that are not ``steady`` and none on the steady ones."""
    if level == "range":
        low, high = level_range
        return X - (running - np.clip(running, low, high))
    if level == "auto":
        return X - np.where(steady, 0.0, running)
    return X - running


def slow_share(X: np.ndarray, rows: int, usable=None) -> np.ndarray:
    """Each channel's share of variance in its centred moving average over ``rows`` rows: near 1
    for a reading that wanders slowly (a temperature), near 0 for noise around a steady level.

    Computed over the gap-free stretches of the ``usable`` rows (all rows when None), each
    stretch averaged on its own; a channel that never varies has share 0.
    """
    usable = np.ones(len(X), bool) if usable is None else np.asarray(usable, bool)
    usable = usable & ~np.isnan(X).any(axis=1)
    pieces = [(a, b) for a, b in mask_runs(usable) if b - a >= 2]
    if not pieces:
        return np.zeros(X.shape[1])
    values = np.concatenate([X[a:b] for a, b in pieces])
    slow = np.concatenate([moving_average(X[a:b], rows) for a, b in pieces])
    total = values.var(axis=0)
    return np.where(total > 0, slow.var(axis=0) / np.where(total > 0, total, 1.0), 0.0)


class ChannelScaler:
    """Per-channel robust standardisation fitted on training rows only.

    Each channel (the last axis) is centred on its median and divided by a
    spread estimate: the interquartile range / 1.349 (the standard deviation
    of a normal distribution), falling back to the standard deviation when the
    IQR is zero (a mostly constant or quantised channel), and to 1 for a
    constant channel, so no division by zero ever happens.

    Parameters
    ----------
    robust : bool, default True
        Use median/IQR (robust to faults in the training period); ``False``
        uses mean/standard deviation.
    """

    def __init__(self, robust: bool = True):
        self.robust = robust

    def fit(self, X) -> ChannelScaler:
        X = np.asarray(X, dtype=np.float64)
        flat = X.reshape(-1, X.shape[-1])
        if self.robust:
            center = np.median(flat, axis=0)
            q75, q25 = np.percentile(flat, [75, 25], axis=0)
            scale = (q75 - q25) / 1.349
            std = flat.std(axis=0)
            scale = np.where(scale > 1e-12 * (1 + np.abs(center)), scale, std)
        else:
            center = flat.mean(axis=0)
            scale = flat.std(axis=0)
        self.constant_ = scale <= 1e-12 * (1 + np.abs(center))
        self.center_ = center
        self.scale_ = np.where(self.constant_, 1.0, scale)
        self.n_features_in_ = X.shape[-1]
        return self

    def transform(self, X) -> np.ndarray:
        X = np.asarray(X)
        if X.shape[-1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[-1]} channels, the scaler was fitted on {self.n_features_in_}"
            )
        # in float64 (a reading of 1e9 with a spread of 1 keeps its digits), in
        # cache-sized pieces written straight into the float32 result; float32
        # holds +-3e38, so clip first and an extreme value stays large and finite
        flat = X.reshape(-1, X.shape[-1])
        out = np.empty(flat.shape, dtype=np.float32)
        step = max(1, 2**15 // max(1, flat.shape[1]))
        for start in range(0, len(flat), step):
            piece = np.subtract(flat[start : start + step], self.center_, dtype=np.float64)
            piece /= self.scale_
            np.clip(piece, -SCALED_LIMIT, SCALED_LIMIT, out=piece)
            out[start : start + step] = piece
        return out.reshape(X.shape)

    def inverse_transform(self, X) -> np.ndarray:
        return np.asarray(X) * self.scale_ + self.center_

    def to_dict(self) -> dict:
        return {
            "robust": self.robust,
            "center": self.center_.tolist(),
            "scale": self.scale_.tolist(),
            "constant": self.constant_.tolist(),
        }

    @classmethod
    def from_dict(cls, state: dict) -> ChannelScaler:
        scaler = cls(robust=state["robust"])
        scaler.center_ = np.asarray(state["center"], dtype=np.float64)
        scaler.scale_ = np.asarray(state["scale"], dtype=np.float64)
        scaler.constant_ = np.asarray(state["constant"], dtype=bool)
        scaler.n_features_in_ = len(scaler.center_)
        return scaler
