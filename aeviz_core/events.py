"""Events: flagged rows of a series merged into the stretches an operator reviews.

One definition wherever events are written: consecutive flagged rows form an
event, runs fewer than ``min_gap`` + 1 unflagged rows apart are one event (the
rows between belong to it), and an event's identity is its span,
``"start-end"`` in 0-based rows (:func:`event_key`, the key of the review
store). For each event the events file gives its span and times, its peak
score, its area above the threshold (how much and how long it exceeded it) and
the sensor to blame (:meth:`AutoencoderDetector.blame`) with its share.

:class:`EventWriter` builds that file from a scored series read in pieces
(``aeviz score --events``): it keeps the rows an open event and the blame's
context need, never the whole file.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .data import _runs

__all__ = ["EVENT_FILE_COLUMNS", "EventWriter", "event_key", "parse_event_key", "event_spans"]

#: columns of an events file, one line per event in time order
EVENT_FILE_COLUMNS = ("event_id", "start_row", "end_row", "start_time", "end_time", "duration",
                      "peak_score", "area", "blamed_channel", "blame_share")


def event_key(start, end) -> str:
    """``"start-end"`` for the event spanning rows ``start`` to ``end`` (inclusive).

    Examples
    --------
    >>> event_key(120, 131)
    '120-131'
    """
    return f"{int(start)}-{int(end)}"


def parse_event_key(key: str) -> tuple[int, int]:
    """``(start, end)`` of an :func:`event_key`; a ValueError names a bad key.

    Examples
    --------
    >>> parse_event_key("120-131")
    (120, 131)
    """
    try:
        start, end = (int(part) for part in str(key).split("-"))
    except ValueError:
        raise ValueError(f"an event key must look like 'start-end', got {key!r}") from None
    if not 0 <= start <= end:
        raise ValueError(f"an event key needs 0 <= start <= end, got {key!r}")
    return start, end


def event_spans(flags, min_gap: int = 0) -> list[tuple[int, int]]:
    """``(start, end)`` (inclusive rows) of each event of a flag vector.

    Examples
    --------
    >>> event_spans([0, 1, 1, 0, 0, 1, 0, 1], min_gap=1)
    [(1, 2), (5, 7)]
    """
    starts, ends = _event_bounds(np.asarray(flags, dtype=bool), min_gap)
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def _event_bounds(flags: np.ndarray, min_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last rows (arrays) of the events of a bool vector: runs of flags, merged where
    at most ``min_gap`` unflagged rows lie between them."""
    edges = np.diff(np.r_[0, flags.astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    if starts.size and min_gap:
        keep = starts[1:] - ends[:-1] - 1 > min_gap
        starts = starts[np.concatenate(([True], keep))]
        ends = ends[np.concatenate((keep, [True]))]
    return starts, ends


class EventWriter:
    """The events of one scored series, fed piece by piece in row order.

    Parameters
    ----------
    detector : AutoencoderDetector
        Fitted; names the blamed sensor (:meth:`~AutoencoderDetector.blame` for
        a series model, the summed channel scores otherwise).
    channel_names : list of str
    threshold : float
        Rows scoring above it are flagged.
    min_gap : int
        Runs separated by at most this many unflagged rows are one event.

    Feed the readings (:meth:`add_values`) and the scores (:meth:`add_scores`) in row
    order, each in pieces of any size (a scorer that needs context rows returns its
    scores later than it reads the readings), then :meth:`finish` for the table
    (columns ``EVENT_FILE_COLUMNS``). An event still open at the end of a piece
    waits for the next one; it is blamed once the rows after it that blame reads
    have arrived.
    """

    def __init__(self, detector, channel_names, threshold: float, min_gap: int):
        self.detector = detector
        self.names = [str(c) for c in channel_names]
        self.threshold = float(threshold)
        self.min_gap = int(min_gap)
        self.context = int(getattr(detector, "context_rows", 0) or 0)
        self.series = getattr(detector, "input_kind_", None) == "series"
        self.values = np.empty((0, len(self.names)))  # rows kept, the first being row self.first
        self.scores = np.empty(0)
        self.times: list = []
        self.first = 0
        self.rows = 0  # rows scored
        self.read = 0  # rows read
        self.open: list | None = None  # [start, end] of the event not yet closed
        self.pending: list[tuple[int, int]] = []  # closed events waiting for their context rows
        self.lines: list[dict] = []

    def add_values(self, values) -> None:
        """Add the readings (rows x channels) of the next rows read."""
        values = np.asarray(values, dtype=np.float64)
        self.values = np.vstack([self.values, values])
        self.read += len(values)
        self._write(final=False)

    def add_scores(self, scores, times=None) -> None:
        """Add the scores (NaN: unscored) of the next rows, and their times."""
        scores = np.asarray(scores, dtype=np.float64)
        n = len(scores)
        self.scores = np.concatenate([self.scores, scores])
        self.times.extend([None] * n if times is None else list(times))
        with np.errstate(invalid="ignore"):
            flags = scores > self.threshold
        for a, b in _runs(flags):
            a, b = int(a) + self.rows, int(b) - 1 + self.rows
            if self.open is not None and a - self.open[1] - 1 <= self.min_gap:
                self.open[1] = b
            else:
                if self.open is not None:
                    self.pending.append(tuple(self.open))
                self.open = [a, b]
        self.rows += n
        if self.open is not None and self.rows - 1 - self.open[1] > self.min_gap:
            self.pending.append(tuple(self.open))  # no later run can join it any more
            self.open = None
        self._write(final=False)

    def finish(self) -> pd.DataFrame:
        """The events file's table, every event closed."""
        if self.open is not None:
            self.pending.append(tuple(self.open))
            self.open = None
        self._write(final=True)
        return pd.DataFrame(self.lines, columns=list(EVENT_FILE_COLUMNS))

    def _write(self, final: bool) -> None:
        ready = min(self.rows, self.read)
        while self.pending and (final or self.pending[0][1] + self.context < ready):
            self.lines.append(self._line(*self.pending.pop(0)))
        # keep what an event still to come can need: its context before it, and the open event
        keep_from = self.rows - self.context - self.min_gap - 1
        if self.open is not None:
            keep_from = min(keep_from, self.open[0] - self.context)
        if self.pending:
            keep_from = min(keep_from, self.pending[0][0] - self.context)
        drop = max(0, keep_from - self.first)
        if drop:
            self.values, self.scores = self.values[drop:], self.scores[drop:]
            del self.times[:drop]
            self.first += drop

    def _line(self, start: int, end: int) -> dict:
        a, b = start - self.first, end - self.first
        lo, hi = max(0, a - self.context), min(len(self.values), b + self.context + 1)
        scores = self.scores[a : b + 1]
        shares = self._blame(self.values[lo:hi], a - lo, b - lo)
        top = int(np.argmax(shares)) if np.isfinite(shares).any() else 0
        t0, t1 = self.times[a], self.times[b]
        return {
            "event_id": event_key(start, end), "start_row": start, "end_row": end,
            "start_time": t0, "end_time": t1, "duration": _duration(t0, t1, end - start + 1),
            "peak_score": float(np.nanmax(scores)),
            "area": float(np.nansum(np.maximum(scores - self.threshold, 0.0))),
            "blamed_channel": self.names[top], "blame_share": round(float(shares[top]), 4),
        }

    def _blame(self, values, start: int, end: int) -> np.ndarray:
        if self.series:
            return np.asarray(self.detector.blame(values, start, end), dtype=np.float64)
        parts = np.nan_to_num(self.detector.channel_scores(values[start : end + 1])).sum(axis=0)
        total = parts.sum()
        return parts / total if total > 0 else np.full(len(parts), 1.0 / len(parts))


def _duration(t0, t1, n_rows: int) -> float:
    """Seconds from ``t0`` to ``t1`` (datetimes, or numbers read as seconds); rows without times."""
    if t0 is None or t1 is None or pd.isna(t0) or pd.isna(t1):
        return float(n_rows)
    if isinstance(t0, (int, float, np.integer, np.floating)):
        return float(t1) - float(t0)
    return (pd.Timestamp(t1) - pd.Timestamp(t0)).total_seconds()
