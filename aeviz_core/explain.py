"""Explanations: which sensor to blame for an event of a series."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .windows import segments

__all__ = ["blame"]


def blame(detector, X, start: int, end: int, *, passes: int = 3, max_rows: int = 20_000) -> np.ndarray:
    """Each channel's share of one event of a series: which sensor to blame.

    The plain per-channel errors blame every channel of a broken relation,
    often the best-predicted one: a drifting flow sensor also raises the
    error of the motor current that follows flow, and the current, whose
    normal error is tiny, looks the worse. Here each channel in turn is
    replaced over the event's rows by the model's reconstruction of it
    (``passes`` times, each from the last), and the event's normalised
    squared error over all channels is measured again. Replacing the faulty
    channel removes the whole excess; replacing a bystander removes only its
    own part. A channel's share is how much the total falls (a
    reconstruction-based contribution).

    An event whose peak comes from a channel that is too quiet (a stuck
    sensor: steps or error below normal) has no excess to remove; there the
    channels' parts of the anomaly score, summed over the event, give the
    shares.

    Parameters
    ----------
    detector : AutoencoderDetector
        Fitted on a series (``window`` set).
    X : array-like or DataFrame, shape (n_rows, n_channels)
        The series, or a piece of it holding the event and the detector's
        ``context_rows`` rows on each side where it has them.
    start, end : int
        The event's first and last row in ``X`` (inclusive).
    passes : int, default 3
    max_rows : int, default 20,000
        A longer event is judged on the ``max_rows`` rows around its highest
        score: each pass rebuilds every row it judges, 4 passes per channel.

    Returns
    -------
    shares : ndarray, shape (n_channels,)
        Non-negative, summing to 1 (equal shares when nothing stands out).
    """
    check_is_fitted(detector, "model_")
    if detector.input_kind_ != "series":
        raise ValueError("blame needs a model fitted on a series (window set)")
    X = detector._check_array(X)
    start, end = int(start), int(end)
    if not 0 <= start <= end < len(X):
        raise ValueError(f"the event must satisfy 0 <= start <= end < {len(X)}, got {start}..{end}")
    if not isinstance(max_rows, (int, np.integer)) or max_rows < 1:
        raise ValueError(f"max_rows must be an integer >= 1, got {max_rows!r}")
    stretch = [(a, b) for a, b in segments(X, 1) if a <= start and end < b]
    if not stretch:
        raise ValueError(f"rows {start}..{end} cross a gap (a row with a missing value): an event lies "
                         "between gaps")
    X = X[: stretch[0][1]]  # the event's gap-free stretch and what precedes it
    first = stretch[0][0]
    context, window = detector.context_rows, detector.window
    if end - start + 1 > max_rows:  # judge the stretch around the event's highest score
        lo, hi = max(first, start - context), min(len(X), end + context + 1)
        peak = start + int(np.argmax(detector._scores(X[lo:hi])[0][start - lo : end - lo + 1]))
        start = min(max(start, peak - max_rows // 2), end - max_rows + 1)
        end = start + max_rows - 1
    lo = max(first, start - context)
    hi = min(len(X), end + context + 1)
    if hi - lo < window:
        raise ValueError(f"the series holds {hi - lo} rows around the event; blame needs a window "
                         f"({window})")
    Xs = detector._prepare(X[lo:hi])
    inner = slice(start - lo, end - lo + 1)
    run, score = detector._inference(), detector._series_score()
    raw = run.series_errors(Xs, window)
    parts = score.deviation(Xs, raw)[inner]
    peak = np.unravel_index(np.argmax(parts), parts.shape)
    excess = np.log(max(score.ratio(raw)[inner][peak], 1e-6))
    if excess <= 0 or parts[peak] > excess:  # too quiet (error or steps below normal): nothing to take away
        shares = parts.sum(axis=0)
    else:
        total = (raw[inner] / score.channel_scale).sum()
        shares = np.empty(Xs.shape[1])
        for c in range(Xs.shape[1]):
            imputed = Xs.copy()
            for _ in range(passes):
                imputed[inner, c] = run.rebuild_rows(imputed, window)[inner, c]
            shares[c] = total - (run.series_errors(imputed, window)[inner] / score.channel_scale).sum()
        shares = np.maximum(shares, 0.0)
    if not shares.sum() > 0:
        return np.full(Xs.shape[1], 1.0 / Xs.shape[1])
    return shares / shares.sum()
