"""Row scores of a sensor table: the output of ``aeviz score``.

One line per input row with ``row`` (0-based), ``time`` (when the data has a
time column), ``score`` (the anomaly score, higher = more anomalous; empty
for the rows of a gap, which no window spans), ``flag`` (1 when ``score >
threshold``, 0 in a gap) and ``top_channel`` (the channel with the largest
part in that row's score; empty in a gap). ``score`` is the detector's
:meth:`~aeviz_core.detector.AutoencoderDetector.anomaly_score`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["SCORE_COLUMNS", "normal_mask", "score_table", "top_channels", "write_frame_atomic"]

SCORE_COLUMNS = ("row", "time", "score", "flag", "top_channel")

_NORMAL_WORDS = {"", "0", "0.0", "false", "no", "normal", "ok", "none", "nan"}


def normal_mask(labels: pd.Series) -> np.ndarray:
    """True for rows a label column marks normal.

    Numbers: 0 is normal. Booleans: False. Text: empty, ``0``, ``false``,
    ``no``, ``normal``, ``ok`` (any case) are normal; anything else is an
    anomaly. Missing values count as normal.

    Returns
    -------
    mask : ndarray of bool, shape (n_rows,)
    """
    if pd.api.types.is_bool_dtype(labels):
        return ~labels.fillna(False).to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(labels):
        return labels.fillna(0).to_numpy() == 0
    text = labels.fillna("").astype(str).str.strip().str.lower()
    return text.isin(_NORMAL_WORDS).to_numpy()


def score_table(detector, data, *, threshold: float | None = None) -> pd.DataFrame:
    """Score every row of a sensor table.

    Parameters
    ----------
    detector : AutoencoderDetector
        Fitted on a series (``window`` set) or on table rows.
    data : SensorData or DataFrame
        ``SensorData`` from :func:`load_sensor_table`, or a frame of channels.
    threshold : float, optional
        Overrides the detector's ``threshold_`` for ``flag``.

    Returns
    -------
    scores : DataFrame
        Columns ``row, [time], score, flag, top_channel``, one line per row;
        ``score`` is higher = more anomalous.
    """
    channels = data.channels if hasattr(data, "channels") else data
    time = getattr(data, "time", None)
    item_err, chan_err = detector.score(channels)  # anomaly score and its channel parts
    limit = detector.threshold_ if threshold is None else float(threshold)
    names = np.asarray([str(c) for c in channels.columns], dtype=object)
    out = {"row": np.arange(len(item_err), dtype=np.int64)}
    if time is not None:
        out["time"] = time.to_numpy()
    out["score"] = item_err
    out["flag"] = (item_err > limit).astype(np.int8)
    out["top_channel"] = top_channels(chan_err, names)
    return pd.DataFrame(out)


def top_channels(channel_scores: np.ndarray, names) -> np.ndarray:
    """The channel with the largest part of each row's score; ``""`` for a row without a
    score (a gap)."""
    names = np.asarray(names, dtype=object)
    scored = ~np.isnan(channel_scores).any(axis=1)
    out = np.full(len(channel_scores), "", dtype=object)
    out[scored] = names[np.argmax(channel_scores[scored], axis=1)]
    return out


def write_frame_atomic(frame: pd.DataFrame, path) -> None:
    """Write ``frame`` to ``path`` (CSV for a ``.csv`` name, else Parquet) whole or not at all: an
    existing file stays until the new one is complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    try:
        if path.suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
