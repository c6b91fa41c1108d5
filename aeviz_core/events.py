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

from .metrics import as_binary, as_vector, check_int, ratio

__all__ = ["EVENT_COLUMNS", "EVENT_FILE_COLUMNS", "EventWriter", "event_key", "event_metrics", "event_spans",
           "flags_to_events", "lasting_change", "order_events", "parse_event_key", "with_blame"]

# columns of the frame returned by flags_to_events, in order
EVENT_COLUMNS = (
    "event", "start", "end", "n_rows", "start_time", "end_time", "duration_s",
    "peak_score", "peak_row", "top_channel", "top_channels",
)

_SECONDS_PER_DAY = 86_400.0

#: columns of an events file, one line per event in time order
EVENT_FILE_COLUMNS = ("event_id", "start_row", "end_row", "start_time", "end_time", "duration",
                      "peak_score", "area", "blamed_channel", "blame_share", "kind", "shift")

#: an event of a series is a *shift* (a lasting change, kind ``"shift"``; else ``"transient"``) when
#: it lasts at least SHIFT_WINDOWS windows and some channel's level over it (its median) differs
#: from the window before it by more than SHIFT_SPREADS of that channel's normal spread
SHIFT_WINDOWS = 4
SHIFT_SPREADS = 3.0


def lasting_change(detector, values, start: int, end: int, names) -> tuple[str, str]:
    """``(kind, shift)`` of the event on rows ``start`` to ``end`` (inclusive) of ``values``
    (raw readings, rows x channels, holding at least a window before the event when there is one):
    kind ``"shift"`` or ``"transient"`` (see :data:`SHIFT_WINDOWS`), and for a shift the channels
    that moved with their change in normal spreads, largest first (``"flow -4.2, current +3.1"``).

    The level before the event is the median of the window before it (the training rows' median,
    ``level_``, for an event that starts within a window of the data's start); the spread is a
    sixth of the width of the channel's training range (``train_range_``). Items of a table have
    no order and no shifts.
    """
    window = getattr(detector, "window", None)
    bounds = getattr(detector, "train_range_", None)
    if not window or bounds is None or end - start + 1 < SHIFT_WINDOWS * window:
        return "transient", ""
    values = np.asarray(values, dtype=np.float64)
    low, high = np.asarray(bounds, dtype=np.float64)
    spread = np.maximum((high - low) / 6.0, 1e-12 * (1 + np.abs(high)))
    with np.errstate(all="ignore"):
        before = (np.nanmedian(values[start - window : start], axis=0) if start >= window
                  else np.asarray(detector.level_, dtype=np.float64))
        change = (np.nanmedian(values[start : end + 1], axis=0) - before) / spread
    moved = [j for j in np.argsort(-np.abs(np.nan_to_num(change))) if abs(change[j]) > SHIFT_SPREADS]
    if not moved:
        return "transient", ""
    return "shift", ", ".join(f"{names[j]} {change[j]:+.1f}" for j in moved)



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


def order_events(events: pd.DataFrame) -> pd.DataFrame:
    """Events most severe first, ties broken: the highest ``peak_score``, then the largest
    ``area`` above the threshold (when the frame has it), then the longest, then the earliest.
    The one order of every ranked list of events (the Anomalies table, the review queue)."""
    keys, ascending = [], []
    if "peak_score" in events:
        keys.append("peak_score"), ascending.append(False)
    if "area" in events:
        keys.append("area"), ascending.append(False)
    extra = {}
    if "start" in events and "end" in events:
        extra["_rows"] = events["end"] - events["start"]
        keys.append("_rows"), ascending.append(False)
    if "start" in events:
        keys.append("start"), ascending.append(True)
    ranked = events.assign(**extra).sort_values(keys, ascending=ascending, kind="stable", na_position="last")
    return ranked.drop(columns=list(extra))


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
        for a, b in zip(*_event_bounds(flags, 0), strict=True):
            a, b = int(a) + self.rows, int(b) + self.rows
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
        # keep what an event still to come can need: its context before it, and the open event;
        # never past the rows both readings and scores have reached (either may run ahead)
        keep_from = min(self.rows - self.context - self.min_gap - 1, ready)
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
        kind, shift = lasting_change(self.detector, self.values[lo:hi], a - lo, b - lo, self.names)
        return {
            "event_id": event_key(start, end), "start_row": start, "end_row": end,
            "start_time": t0, "end_time": t1, "duration": _duration(t0, t1, end - start + 1),
            "peak_score": float(np.nanmax(scores)),
            "area": float(np.nansum(np.maximum(scores - self.threshold, 0.0))),
            "blamed_channel": self.names[top], "blame_share": round(float(shares[top]), 4),
            "kind": kind, "shift": shift,
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


# --------------------------------------------------------------------------- events as a frame


def _as_time(time, n: int):
    """(values indexable by row, is_datetime) for a time axis, or (None, False)."""
    if time is None:
        return None, False
    if isinstance(time, (pd.Series, pd.Index)):
        values = time
    else:
        values = np.asarray(time)
    if np.ndim(values) != 1 or len(values) != n:
        raise ValueError(f"time must be 1-D with {n} entries (one per row), got shape {np.shape(values)}")
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return np.asarray(values, dtype=np.float64), False
    try:
        return pd.DatetimeIndex(pd.to_datetime(values)), True
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"time must hold datetimes or numbers of seconds, got dtype {values.dtype}"
        ) from err


def _seconds(delta, is_datetime: bool) -> np.ndarray:
    if is_datetime:
        return np.asarray(pd.TimedeltaIndex(delta).total_seconds(), dtype=np.float64)
    return np.asarray(delta, dtype=np.float64)


def _empty_events(time_values, is_datetime: bool) -> pd.DataFrame:
    if is_datetime:
        time_dtype = time_values.dtype
    elif time_values is not None:
        time_dtype = np.float64
    else:
        time_dtype = "datetime64[ns]"
    return pd.DataFrame({
        "event": pd.Series(dtype=np.int64), "start": pd.Series(dtype=np.int64),
        "end": pd.Series(dtype=np.int64), "n_rows": pd.Series(dtype=np.int64),
        "start_time": pd.Series(dtype=time_dtype), "end_time": pd.Series(dtype=time_dtype),
        "duration_s": pd.Series(dtype=np.float64), "peak_score": pd.Series(dtype=np.float64),
        "peak_row": pd.Series(dtype=np.int64), "top_channel": pd.Series(dtype=object),
        "top_channels": pd.Series(dtype=object),
    })


def flags_to_events(flags, scores, *, channel_errors=None, channel_names=None, time=None,
                    min_gap=0, top_k=3) -> pd.DataFrame:
    """Merge per-row alarm flags into events, one row per event.

    Consecutive flagged rows form one event; events separated by at most
    ``min_gap`` unflagged rows are merged, and the rows between them become
    part of the merged event.

    Parameters
    ----------
    flags : array-like of shape (n,)
        Per-row alarm, bool or 0/1 (e.g. ``scores > threshold``).
    scores : array-like of shape (n,) or None
        Per-row anomaly score, higher = more anomalous; NaN (unscored rows) is
        ignored. None leaves ``peak_score`` NaN and ``peak_row`` at ``start``.
    channel_errors : array-like of shape (n, n_channels), optional
        Per-row, per-channel error; summed over each event to name the
        channels that drove it. NaN counts as 0.
    channel_names : sequence of str, optional
        Names of the ``n_channels`` channels; default ``"ch0"``, ``"ch1"``, ...
    time : array-like of shape (n,), optional
        Row timestamps: datetimes, or numbers read as seconds.
    min_gap : int, default 0
        Merge events separated by ``<= min_gap`` unflagged rows; 0 merges
        nothing beyond consecutive rows. ``min_gap >= 0``.
    top_k : int, default 3
        How many channels ``top_channels`` lists, ``top_k >= 1``.

    Returns
    -------
    events : DataFrame
        One row per event in time order, columns ``EVENT_COLUMNS``:

        - ``event`` : int, 0-based id;
        - ``start``, ``end`` : int, 0-based row indices, both inclusive;
        - ``n_rows`` : int, ``end - start + 1`` (the duration in rows);
        - ``start_time``, ``end_time`` : the timestamps of ``start`` and
          ``end``, NaT without ``time``;
        - ``duration_s`` : float, ``end_time - start_time`` in seconds (0 for a
          one-row event), NaN without ``time``;
        - ``peak_score`` : float, the largest score in the event;
        - ``peak_row`` : int, the first row holding it;
        - ``top_channel`` : str, the channel with the largest summed error,
          None without ``channel_errors``;
        - ``top_channels`` : str, the ``top_k`` largest, ``", "``-joined,
          largest first; None without ``channel_errors``.

        With no flagged row the frame is empty, with the same columns.

    Examples
    --------
    >>> ev = flags_to_events([0, 1, 1, 0, 0, 1], [0.1, 0.5, 0.9, 0.2, 0.1, 0.7])
    >>> ev[["start", "end", "peak_row"]].values.tolist()
    [[1, 2, 2], [5, 5, 5]]
    >>> ev["peak_score"].tolist()
    [0.9, 0.7]
    """
    f = as_binary("flags", flags)
    n = f.size
    s = None if scores is None else as_vector("scores", scores, n, dtype=np.float64)
    min_gap = check_int("min_gap", min_gap, 0)
    top_k = check_int("top_k", top_k, 1)
    time_values, is_datetime = _as_time(time, n)
    E = None
    if channel_errors is not None:
        E = np.asarray(channel_errors, dtype=np.float64)
        if E.ndim != 2 or E.shape[0] != n:
            raise ValueError(f"channel_errors must have shape ({n}, n_channels), got {E.shape}")
        if channel_names is None:
            channel_names = [f"ch{i}" for i in range(E.shape[1])]
        channel_names = np.asarray([str(c) for c in channel_names], dtype=object)
        if channel_names.shape != (E.shape[1],):
            raise ValueError(
                f"channel_names must have {E.shape[1]} names (one per channel), got {channel_names.size}"
            )

    starts, ends = _event_bounds(f.astype(bool), min_gap)  # the one event definition
    if not starts.size:
        return _empty_events(time_values, is_datetime)

    # rows inside an event, and the position where each event starts among them
    inside = np.zeros(n + 1, dtype=np.int64)
    np.add.at(inside, starts, 1)
    np.add.at(inside, ends + 1, -1)
    rows = np.flatnonzero(np.cumsum(inside[:n]) > 0)
    offsets = np.searchsorted(rows, starts)
    event_of_row = np.repeat(np.arange(starts.size), ends - starts + 1)

    if s is None:
        peak = np.full(starts.size, np.nan)
        peak_row = starts.copy()
    else:
        sub = s[rows]
        peak = np.fmax.reduceat(sub, offsets)
        at_peak = (sub == peak[event_of_row]) | np.isnan(peak[event_of_row])
        positions = np.flatnonzero(at_peak)
        _, first = np.unique(event_of_row[positions], return_index=True)
        peak_row = rows[positions[first]]

    events = pd.DataFrame({
        "event": np.arange(starts.size, dtype=np.int64),
        "start": starts.astype(np.int64),
        "end": ends.astype(np.int64),
        "n_rows": (ends - starts + 1).astype(np.int64),
    })
    if time_values is None:
        events["start_time"] = pd.Series(pd.NaT, index=events.index, dtype="datetime64[ns]")
        events["end_time"] = pd.Series(pd.NaT, index=events.index, dtype="datetime64[ns]")
        events["duration_s"] = np.nan
    else:
        start_time, end_time = time_values[starts], time_values[ends]
        events["start_time"] = start_time
        events["end_time"] = end_time
        events["duration_s"] = _seconds(end_time - start_time, is_datetime)
    events["peak_score"] = peak.astype(np.float64)
    events["peak_row"] = peak_row.astype(np.int64)
    if E is None:
        events["top_channel"] = None
        events["top_channels"] = None
    else:
        totals = np.add.reduceat(np.nan_to_num(E[rows], nan=0.0), offsets, axis=0)
        ranked = np.argsort(-totals, axis=1, kind="stable")[:, :top_k]
        names = channel_names[ranked]
        events["top_channel"] = names[:, 0]
        events["top_channels"] = [", ".join(row) for row in names]
    return events[list(EVENT_COLUMNS)]


def event_metrics(pred_events, labels, *, time=None) -> dict:
    """Score alarm events against labelled anomaly events.

    Truth events are the runs of consecutive 1s in ``labels``. A truth event is
    detected when any predicted event overlaps it by at least one row; a
    predicted event is a false event when it overlaps no truth event.

    Parameters
    ----------
    pred_events : DataFrame
        Predicted events with inclusive 0-based ``start`` and ``end`` rows, as
        returned by :func:`flags_to_events`; may be empty.
    labels : array-like of shape (n,)
        Per-row truth of the whole series, 1/True = anomalous.
    time : array-like of shape (n,), optional
        Row timestamps (datetimes, or numbers of seconds), used for the span of
        the series: ``time[-1] - time[0]`` plus the median step, i.e. n rows
        times the sampling period. Without it rows are assumed 1 s apart
        (1 Hz), so the span is ``n`` seconds.

    Returns
    -------
    metrics : dict
        ``n_true_events``, ``n_pred_events``, ``n_detected`` (truth events
        overlapped), ``n_false_events`` : int;
        ``event_recall`` : n_detected / n_true_events, NaN without truth events;
        ``event_precision`` : predicted events overlapping a truth event /
        n_pred_events, NaN without predicted events;
        ``event_f1`` : their harmonic mean (no point adjustment: rows are not
        credited to an event because another row of it was flagged);
        ``false_events_per_day`` : n_false_events / span in days (lower =
        better); ``false_events_per_normal_day`` : per day of normal
        operation (the span times the share of normal rows);
        ``median_delay_rows`` : median, over the detected truth events, of
        the rows from an event's start to its first predicted row (NaN when
        none is detected); ``caught_shares`` : list, per truth event the share
        of its rows inside a predicted event (0 for a missed one: an event
        "detected" by one row of a thousand reads 0.001 here);
        ``median_caught_share`` : their median (NaN without truth events);
        ``span_days`` : float; ``assumed_1hz`` : bool, True when
        ``time`` was not given.

    Examples
    --------
    >>> labels = np.array([0, 1, 1, 0, 0, 0, 1, 0, 0, 0])
    >>> pred = pd.DataFrame({"start": [2, 8], "end": [3, 8]})
    >>> m = event_metrics(pred, labels)
    >>> m["n_detected"], m["n_false_events"], m["event_recall"]
    (1, 1, 0.5)
    """
    y = as_binary("labels", labels)
    n = y.size
    if n == 0:
        raise ValueError("labels must not be empty")
    if not isinstance(pred_events, pd.DataFrame) or not {"start", "end"} <= set(pred_events.columns):
        raise ValueError("pred_events must be a DataFrame with 'start' and 'end' columns")
    p_start = pred_events["start"].to_numpy(dtype=np.int64)
    p_end = pred_events["end"].to_numpy(dtype=np.int64)
    if p_start.size and (p_start.min() < 0 or p_end.max() >= n or (p_start > p_end).any()):
        raise ValueError(f"pred_events rows must satisfy 0 <= start <= end < {n} (len(labels))")
    time_values, is_datetime = _as_time(time, n)

    t_start, t_end = _event_bounds(y.astype(bool), 0)  # the labelled events: runs of 1s
    # prefix sums answer "does [a, b] hold any labelled / any predicted row?" in O(1)
    label_cum = np.concatenate(([0], np.cumsum(y)))
    covered = np.zeros(n + 1, dtype=np.int64)
    np.add.at(covered, p_start, 1)
    np.add.at(covered, p_end + 1, -1)
    row_covered = np.cumsum(covered[:n]) > 0
    covered_cum = np.concatenate(([0], np.cumsum(row_covered)))
    pred_hits = label_cum[p_end + 1] - label_cum[p_start] > 0
    truth_hit = covered_cum[t_end + 1] - covered_cum[t_start] > 0

    if time_values is None:
        span_s = float(n)
    elif n < 2:
        span_s = float("nan")
    else:
        steps = _seconds(time_values[1:] - time_values[:-1], is_datetime)
        span_s = float(steps.sum() + np.median(steps))
    span_days = span_s / _SECONDS_PER_DAY
    n_false = int(np.count_nonzero(~pred_hits))
    normal_days = span_days * float(np.mean(~y.astype(bool)))
    delays = [int(np.argmax(row_covered[a : b + 1])) for a, b in zip(t_start, t_end) if row_covered[a : b + 1].any()]
    recall = ratio(int(np.count_nonzero(truth_hit)), int(t_start.size))
    precision = ratio(int(np.count_nonzero(pred_hits)), int(p_start.size))
    caught = [float((covered_cum[b + 1] - covered_cum[a]) / (b - a + 1)) for a, b in zip(t_start, t_end)]
    return {
        "n_true_events": int(t_start.size),
        "n_pred_events": int(p_start.size),
        "n_detected": int(np.count_nonzero(truth_hit)),
        "n_false_events": n_false,
        "event_recall": recall,
        "event_precision": precision,
        "event_f1": 2 * precision * recall / (precision + recall) if precision + recall > 0 else (
            0.0 if np.isfinite(precision + recall) else float("nan")),
        "false_events_per_day": n_false / span_days if span_days > 0 else float("nan"),
        "false_events_per_normal_day": n_false / normal_days if normal_days > 0 else float("nan"),
        "median_delay_rows": float(np.median(delays)) if delays else float("nan"),
        "caught_shares": caught,
        "median_caught_share": float(np.median(caught)) if caught else float("nan"),
        "span_days": span_days,
        "assumed_1hz": time is None,
    }


def with_blame(events: pd.DataFrame, shares, names) -> pd.DataFrame:
    """``events`` with the sensor to blame: ``blamed_channel`` (of ``names``, the largest share)
    and ``blame_share`` (that share), one row of ``shares`` (n_events x n_channels, from
    :func:`~aeviz_core.explain.blame_events`) per event; a row of NaN leaves the event unblamed
    (empty name, NaN share)."""
    shares = np.asarray(shares, dtype=np.float64).reshape(len(events), len(names))
    names = np.asarray([str(c) for c in names], dtype=object)
    blamed = ~np.isnan(shares).any(axis=1)
    top = np.argmax(np.nan_to_num(shares, nan=-1.0), axis=1)
    out = events.copy()
    out["blamed_channel"] = np.where(blamed, names[top], "")
    out["blame_share"] = np.where(blamed, shares[np.arange(len(shares)), top], np.nan)
    return out
