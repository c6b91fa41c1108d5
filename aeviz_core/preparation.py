"""Preparation: what the estimator accepts, and how its inputs become the model's input.

The windows/scaling arrow of the data flow, for :class:`~aeviz_core.detector.AutoencoderDetector`:
an input is checked (numeric, 2-D to 4-D, finite outside a series' gaps), named by its kind
(table, series, windows, images), compared with what a fitted model expects, and a gap-free
piece of a series has its slow level taken out and is scaled (:class:`Preparation`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sklearn.utils.validation import FLOAT_DTYPES, check_array

from .windows import SCALED_LIMIT, ChannelScaler, remove_level, running_level, slow_share

__all__ = ["STEADY_SHARE", "Preparation", "as_array", "fit_scaler", "input_kind", "mismatch", "resolved_level"]

#: ``level="auto"``: a channel whose normal readings keep less than this share of their variance
#: in their moving average over a window is *steady* (noise around a level: a flow held at a set
#: point), and its level is judged as it is; any other channel *wanders* (a temperature), and a
#: short training period shows too little of its wandering to judge its level, so its running
#: level is taken out
STEADY_SHARE = 0.5
#: ``level="auto"``: the running level of a wandering channel spans at most this share of the
#: normal training rows (and at most ``32 * window + 1`` rows), so training sees it come and go
LEVEL_SHARE_OF_TRAINING = 0.25


def resolved_level(detector) -> str:
    """The level treatment a series model uses: its ``level``, where ``"auto"`` is ``"auto"`` for
    ``series_score="lasting"`` (steady channels as they are, wandering ones relative) and
    ``"range"`` for the older scores."""
    if detector.level != "auto":
        return detector.level
    return "auto" if getattr(detector, "series_score", "lasting") == "lasting" else "range"


def as_array(X, series: bool, estimator=None, min_samples: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
    """``(values, column names or None)``: X as a float array of 2 to 4 dimensions.

    scikit-learn's :func:`~sklearn.utils.validation.check_array` does the conversion and
    gives scikit-learn's messages for what no estimator takes (sparse, complex or 1-D input,
    fewer than ``min_samples`` items, no columns, values that are not numbers), naming
    ``estimator``. In a series an infinite value becomes NaN (a gap: no window spans it, it
    gets no score); elsewhere a non-finite value is refused, naming the item and channel.
    """
    names = None
    if isinstance(X, pd.DataFrame):
        names = np.asarray([str(c) for c in X.columns], dtype=object)
        non_numeric = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
        if non_numeric:
            raise ValueError(f"column {non_numeric[0]!r} is not numeric: drop it or load it as a label")
        X = X.to_numpy(dtype=np.float64)
    # floats keep their precision (no float32 -> float64 copy); NaN is judged below
    X = check_array(X, accept_sparse=False, dtype=FLOAT_DTYPES, ensure_all_finite=False, allow_nd=True,
                    ensure_min_samples=min_samples, estimator=estimator)
    if X.ndim > 4:
        raise ValueError(f"X must be 2-D, 3-D (windows) or 4-D (images), got shape {X.shape}")
    if series and X.ndim == 2:
        if np.isinf(X).any():
            X = np.where(np.isinf(X), np.nan, X)
    elif not np.isfinite(X).all():
        idx = np.argwhere(~np.isfinite(X))[0]
        what = "NaN" if np.isnan(X[tuple(idx)]) else "an infinite value"
        channel = idx[-1]
        label = repr(names[channel]) if names is not None and X.ndim == 2 else str(channel)
        raise ValueError(f"X contains {what} at item {idx[0]}, channel {label}")
    return X, names


def input_kind(X: np.ndarray, window: int | None, model: str) -> str:
    """``"table"``, ``"series"``, ``"windows"`` or ``"images"``; a clear error for a series too
    short to train on and for a convolutional model on a flat table."""
    if X.ndim == 2:
        kind = "table" if window is None else "series"
    else:
        kind = "windows" if X.ndim == 3 else "images"
    if kind == "series" and X.shape[0] < window + 2:
        raise ValueError(f"the data has {X.shape[0]} rows; training needs at least window + 2 = {window + 2}")
    if kind == "table" and model.startswith("conv"):
        raise ValueError(
            f"model {model!r} needs windows or images: set window= for a time series, "
            "or use model='ae' for a flat table"
        )
    return kind


def mismatch(detector, shape, names=None) -> str | None:
    """Why data of ``shape`` (with channel ``names``, when known) does not fit the fitted
    ``detector``, in one line, or None when it does."""
    expected = getattr(detector, "feature_names_in_", None)
    if names is not None and expected is not None and list(names) != list(expected):
        missing = [c for c in expected if c not in set(names)]
        extra = [c for c in names if c not in set(expected)]
        if missing or extra:
            return f"the data's channels do not match the model's: missing {missing}, unexpected {extra}"
        return f"the data's channels are in another order than the model's: expected {list(expected)}"
    if shape[-1] != detector.n_features_in_:
        return (f"X has {shape[-1]} features, but {type(detector).__name__} is expecting "
                f"{detector.n_features_in_} features as input: the data has {shape[-1]} channels, "
                f"the model was trained on {detector.n_features_in_}")
    kind = detector.input_kind_
    if kind in ("windows", "images") and tuple(shape[1:]) != detector.item_shape_:
        return f"items have shape {tuple(shape[1:])}, the model expects {detector.item_shape_}"
    if kind == "series" and len(shape) != 2:
        return f"the model scores a 2-D series (rows, channels), got shape {tuple(shape)}"
    if kind == "series" and shape[0] < detector.window:
        return f"the data has {shape[0]} rows, fewer than one window of {detector.window} rows"
    return None


def auto_level_rows(window: int, normal_rows: int) -> int:
    """``level="auto"``'s running level: ``32 * window + 1`` rows, or fewer (odd, at least
    ``window + 1``) where that is more than :data:`LEVEL_SHARE_OF_TRAINING` of the normal rows."""
    share = int(LEVEL_SHARE_OF_TRAINING * normal_rows) // 2 * 2 + 1
    return int(max(min(32 * window + 1, share), window + 1))


def fit_scaler(X: np.ndarray, scaling: str) -> ChannelScaler | None:
    """The scaler of ``scaling``: per channel, one scale for all values (pixels), or none."""
    if scaling == "none":
        return None
    return ChannelScaler(robust=False).fit(X.reshape(-1, 1) if scaling == "global" else X)


@dataclass(frozen=True)
class Preparation:
    """How a fitted model's input is made: the slow level taken out (series), then scaled.

    Build it with :meth:`of` from a detector; it holds no state of its own.
    """

    scaler: ChannelScaler | None
    window: int | None
    level: str  # resolved: "range", "relative", "absolute" or "auto" (see :func:`resolved_level`)
    level_rows: int  # rows of the running median behind ``level`` (0: the level is left as it is)
    level_range: np.ndarray | None
    steady: np.ndarray | None = None  # ``level="auto"``: the channels whose level stays in

    @classmethod
    def of(cls, detector) -> Preparation:
        series = getattr(detector, "input_kind_", None) == "series"
        level = resolved_level(detector) if series else "absolute"  # tables and images have no level
        rows = 0
        if series and level != "absolute":
            if detector.level_window != "auto":
                rows = int(detector.level_window)
            else:
                rows = getattr(detector, "level_rows_", None) or 32 * detector.window + 1
        return cls(getattr(detector, "scaler_", None), detector.window, level, rows,
                   getattr(detector, "level_range_", None), getattr(detector, "steady_", None))

    @classmethod
    def fit(cls, detector, X: np.ndarray, normal: np.ndarray | None = None) -> tuple[Preparation, np.ndarray]:
        """``(preparation, detrended X)`` fitted for ``detector`` on X: a series' level range (or,
        with ``level="auto"``, its steady channels and the span of its running level) over its
        ``normal`` rows, then the scaler on those rows detrended (on every item otherwise)."""
        blank = replace(cls.of(detector), scaler=None, level_range=None, steady=None)
        detrended, level_range = X, None
        if blank.level == "auto":
            blank = replace(blank, steady=slow_share(X, blank.window + 1, normal) < STEADY_SHARE)
            if detector.level_window == "auto":
                blank = replace(blank, level_rows=auto_level_rows(blank.window, int(np.sum(normal))))
        if blank.level_rows:
            running = running_level(X, blank.level_rows, blank.window)
            level_range = np.stack([running[normal].min(axis=0), running[normal].max(axis=0)])
            detrended = remove_level(X, running, blank.level, level_range, blank.steady)
        scaler = fit_scaler(detrended if normal is None else detrended[normal], detector.scaling)
        return replace(blank, scaler=scaler, level_range=level_range), detrended

    def scale(self, X: np.ndarray) -> np.ndarray:
        """Scaled float32 values, clipped to +-1e6 so squared errors stay finite in float32 (a
        value a million spreads from normal is an anomaly either way)."""
        if self.scaler is None:
            scaled = X.astype(np.float32)
        elif self.scaler.n_features_in_ == 1 and X.shape[-1] != 1:
            scaled = self.scaler.transform(X[..., None])[..., 0]
        else:
            scaled = self.scaler.transform(X)
        return np.clip(scaled, -SCALED_LIMIT, SCALED_LIMIT, out=scaled)

    def unscale(self, values: np.ndarray) -> np.ndarray:
        """Scaled values back in the data's units (the inverse of :meth:`scale`, without its clip)."""
        if self.scaler is None:
            return values
        if self.scaler.n_features_in_ == 1 and values.shape[-1] != 1:
            return self.scaler.inverse_transform(values[..., None])[..., 0]
        return self.scaler.inverse_transform(values)

    def detrended(self, X: np.ndarray, running: np.ndarray | None = None) -> np.ndarray:
        """A series less the part of its running level (``running``, computed when not given)
        that ``level`` takes out."""
        if not self.level_rows:
            return X
        if running is None:
            running = running_level(X, self.level_rows, self.window)
        return remove_level(X, running, self.level, self.level_range, self.steady)

    def prepare(self, X: np.ndarray) -> np.ndarray:
        """Model input of a gap-free piece of a series: detrended, then scaled."""
        return self.scale(self.detrended(X))
