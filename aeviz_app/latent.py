"""The Latent explorer's data: what each latent point encodes (a window's mean row, an item) and
the frame the scatter draws, coloured by class, error or flag."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from .session import Dataset


def window_means(values, starts, window: int | None) -> np.ndarray:
    """Mean of ``values`` (per row) over each window ``[s, s + window)``.

    With ``window=None`` returns ``values[starts]``. Used to give each latent
    point of a series its window's error (or the share of flagged rows).
    """
    values = np.asarray(values, dtype=np.float64)
    starts = np.asarray(starts, dtype=np.int64)
    if window is None:
        return values[starts]
    csum = np.concatenate([[0.0], np.cumsum(values)])
    return (csum[starts + window] - csum[starts]) / window


def latent_inputs(dataset: Dataset, detector) -> np.ndarray:
    """What each latent point encodes, flattened, for the quality numbers:
    image pixels, or a series' windows (at the model's stride) with each channel
    standardised. Shape ``(n_points, n_features)``, float32."""
    if dataset.is_images or detector.window is None:
        return np.asarray(dataset.X, dtype=np.float32).reshape(dataset.n_items, -1)
    X = dataset.X.astype(np.float32)
    std = np.nanstd(X, axis=0)  # rows of a gap are NaN, and so are the windows that touch them
    X = (X - np.nanmean(X, axis=0)) / np.where(std > 0, std, 1.0)
    w = int(detector.window)
    starts = detector.latent_starts(len(X))
    view = np.lib.stride_tricks.sliding_window_view(X, w, axis=0)  # (n - w + 1, c, w)
    return np.ascontiguousarray(view[starts]).reshape(len(starts), -1)


def latent_frame(coords, *, dataset: Dataset, detector, row_errors, threshold) -> pd.DataFrame:
    """One line per latent point: ``idx, [x, y, z], error, flag, class, [time], row``.

    ``coords`` (one row per point, 2 or 3 columns) may be None: the caller
    then adds the coordinates of the points it projects.

    For a series each point is a window: ``row`` is its first row, ``error``
    the mean row error over the window, ``flag`` "flagged" when any row of the
    window is above ``threshold``, ``class`` the most anomalous label inside it.
    For images/tables a point is an item.
    """
    errors = np.asarray(row_errors, dtype=np.float64)
    if dataset.is_images or detector.window is None:
        n = len(errors)
    else:
        n = len(detector.latent_starts(dataset.n_items))
    frame = pd.DataFrame({"idx": np.arange(n, dtype=np.int64)})
    if coords is not None:
        coords = np.asarray(coords)
        if len(coords) != n:
            raise ValueError(f"coords must have one row per latent point ({n}), got {len(coords)}")
        for name, j in zip("xyz", range(coords.shape[1]), strict=False):
            frame[name] = coords[:, j]
    flagged_rows = (errors > threshold).astype(np.float64)
    if dataset.is_images or detector.window is None:
        frame["error"] = errors
        frame["flag"] = np.where(flagged_rows > 0, "flagged", "normal")
        if dataset.classes is not None:
            frame["class"] = np.asarray(dataset.classes).astype(str)
        if dataset.time is not None:
            frame["time"] = dataset.time.to_numpy()
        frame["row"] = np.arange(n, dtype=np.int64)
        return frame
    starts = detector.latent_starts(dataset.n_items)
    w = int(detector.window)
    frame["row"] = starts
    frame["error"] = window_means(errors, starts, w)
    frame["flag"] = np.where(window_means(flagged_rows, starts, w) > 0, "flagged", "normal")
    if dataset.anomaly is not None and dataset.classes is not None:
        share = window_means(dataset.anomaly, starts, w)
        # the window's class: its labelled fault when any row is anomalous
        classes = np.asarray(dataset.classes).astype(str)
        last = np.minimum(starts + w - 1, len(classes) - 1)
        mid = np.minimum(starts + w // 2, len(classes) - 1)
        pick = np.where(classes[mid] != "normal", classes[mid],
                        np.where(classes[last] != "normal", classes[last], classes[starts]))
        frame["class"] = np.where(share > 0, pick, "normal")
    if dataset.time is not None:
        frame["time"] = dataset.time.to_numpy()[starts]
    return frame


@st.cache_data(show_spinner=False, max_entries=8)
def cached_inputs(_ds: Dataset, _det, model_id: str, data_key: str) -> np.ndarray:
    """What each latent point encodes (:func:`latent_inputs`), per model and data."""
    return latent_inputs(_ds, _det)
