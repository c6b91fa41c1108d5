"""Sliding windows over multichannel series, per-channel scaling, and the map back.

Windows are views into the raw series (``numpy.lib.stride_tricks``), never
copies, so a long recording costs no extra memory until a batch is scored.
Every row is covered by at least one window: when the stride does not land on
the last row, a final window aligned to the end of the series is added.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SCALED_LIMIT = 1e6  # scaled values are clipped here: a million spreads is an anomaly either way

__all__ = [
    "ChannelScaler",
    "iter_window_batches",
    "sliding_windows", "window_starts", "windows_to_rows"]


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
    if reduce == "mean":
        # a loop over the offset inside the window, vectorised over windows: exact
        # sums (a running difference array would lose small values beside huge ones)
        total = np.zeros((n_rows, *tail))
        count = np.zeros(n_rows)
        for offset in range(window):
            np.add.at(total, starts + offset, values)
            np.add.at(count, starts + offset, 1)
        return total / count.reshape(-1, *([1] * len(tail)))
    out = np.full((n_rows, *tail), -np.inf)
    # each row is covered by at most ceil(window / stride) + 1 windows: loop over
    # the offset inside the window, vectorised over all windows at once
    for offset in range(window):
        rows = starts + offset
        np.maximum.at(out, rows, values)
    return out


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
