"""Scores: how a series model's squared errors become anomaly scores, and the row scores of
a sensor table (the output of ``aeviz score``).

**Series statistics.** :class:`SeriesScore` holds one fitted model's settings (window,
score version, smoothing, reference span, per-channel scales) and turns per-row,
per-channel squared reconstruction errors into the anomaly score's channel parts: the
residual test and the stillness test described in
:meth:`aeviz_core.detector.AutoencoderDetector.anomaly_score`.

**Score tables.**

One line per input row with ``row`` (0-based), ``time`` (when the data has a
time column), ``score`` (the anomaly score, higher = more anomalous; empty
for the rows of a gap, which no window spans), ``flag`` (1 when ``score >
threshold``, 0 in a gap) and ``top_channel`` (the channel with the largest
part in that row's score; empty in a gap). ``score`` is the detector's
:meth:`~aeviz_core.detector.AutoencoderDetector.anomaly_score`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .thresholds import widen
from .windows import away_from_anomalies, lagged_quantile, moving_average, running_median, segments, trailing_median

__all__ = ["LASTING_VERSION", "REGIME_VERSION", "SCORE_COLUMNS", "SCORE_VERSION", "SeriesScore", "normal_mask", "rows_frame",
           "score_table", "top_channels", "write_frame_atomic"]

#: how a series row is scored: 4 = each channel's unsmoothed residual against its held-out scale,
#: raised to its own recent level once that stays above the held-out one (a new regime), the
#: row's score the geometric mean of its two largest channel residuals (one channel's excursion
#: counts half as much as two channels' together) or its stillness, whichever is larger;
#: 3 = the residual over a short stretch against both its held-out
#: scale and the channel's recent residual, stillness over a longer stretch against the channel's
#: recent activity; 2 = the residual over 2 * window - 1 rows against the held-out scale alone
#: (stillness the same, over the same rows); 1 = the two-sided residual test and stillness
#: against the training rows. Saved models keep their version.
SCORE_VERSION = 3
#: the version of ``series_score="regime"`` models
REGIME_VERSION = 4
#: the version of ``series_score="lasting"`` models (the default): a lasting change stays flagged
#: until ``adapt_after`` says otherwise. Each channel's residual over its held-out mean, averaged
#: over ``2 * window - 1`` rows on a steady channel (its row-to-row residual is noise; its faults
#: are changes that last) and taken row by row on a wandering one, is measured in units of its
#: own held-out 99th percentile (:data:`TAIL_QUANTILE`), so channels compare by their tails; the
#: row's score is its largest channel part or stillness
LASTING_VERSION = 5
#: the held-out quantile of each channel's residual that score version 5 measures it in
TAIL_QUANTILE = 0.99
#: score version 5's percentile rule default and margin: the 99.95th percentile of the threshold's
#: rows, its distance above their median stretched 1.5 times (chosen on the development table:
#: README "Real data")
LASTING_PERCENTILE = 99.95
LASTING_MARGIN = 1.5
#: score version 5 fits its threshold on the held-out rows when they hold at least this many
#: windows of rows, else on every normal training row (a short training period holds out a block
#: or two, too few to show the tail of its scores)
MIN_HELD_WINDOWS = 32

#: score version 4's running reference: each channel's REFERENCE_QUANTILE of its residual over
#: REFERENCE_WINDOWS windows of rows that end LAG_WINDOWS windows before the row
REFERENCE_QUANTILE = 0.75
#: the percentile rule's default for a ``series_score="regime"`` model: the 99.9th percentile of held-out scores
SERIES_PERCENTILE = 99.9
#: a series model's fitted threshold rules have their distance above the held-out median score
#: stretched by this factor (``threshold_margin_``): its held-out rows are a few thousand,
#: autocorrelated, so their high percentiles sit at the top of what they saw, below the tail that
#: months of normal rows reach (pump sample, 3 models: 2-5 false events in 12 hours at the 99.5th
#: percentile, none with the margin; GECCO: false alarms 0.78% -> 0.43% and 0.88% -> 0.52% at
#: equal or better F1, see README)
SERIES_MARGIN = 1.2
REFERENCE_WINDOWS = 45
LAG_WINDOWS = 2

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


#: names of a label column that says normal or anomalous (any case)
ANOMALY_COLUMNS = ("anomaly", "is_anomaly", "anomalous", "label", "outlier", "attack", "fault")


def anomaly_column(labels: pd.DataFrame, *, first_otherwise: bool = False):
    """The label column that says normal/anomalous (read with :func:`normal_mask`): the first
    named as in :data:`ANOMALY_COLUMNS`; without one, the first label column when
    ``first_otherwise`` (the app, which shows any labels it is given), else None (``aeviz
    train``, which then trains on every row). One rule for both."""
    if labels is None or not labels.shape[1]:
        return None
    for name in labels.columns:
        if str(name).lower() in ANOMALY_COLUMNS:
            return name
    return labels.columns[0] if first_otherwise else None


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
    scores, parts = detector.score_parts(channels)  # anomaly score and its channel parts
    limit = detector.threshold_ if threshold is None else float(threshold)
    return rows_frame(scores, parts, channels.columns, limit, time=getattr(data, "time", None))


def rows_frame(scores, channel_scores, names, threshold: float, *, time=None, first_row: int = 0) -> pd.DataFrame:
    """The :data:`SCORE_COLUMNS` frame of scored rows: ``row`` counted from ``first_row``,
    ``time`` (when given), ``score``, ``flag`` (``score > threshold``; 0 in a gap) and
    ``top_channel`` (the largest part, of ``names``). Every writer of row scores builds it here."""
    names = np.asarray([str(c) for c in names], dtype=object)
    out = {"row": np.arange(first_row, first_row + len(scores), dtype=np.int64)}
    if time is not None:
        out["time"] = np.asarray(time)
    out["score"] = scores
    with np.errstate(invalid="ignore"):
        out["flag"] = (scores > threshold).astype(np.int8)
    out["top_channel"] = top_channels(channel_scores, names)
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


# ---------------------------------------------------------------------- series statistics
@dataclass(frozen=True)
class SeriesScore:
    """One series model's scoring settings: squared errors in, anomaly-score parts out.

    Build it with :meth:`of` from the model's parameters; ``channel_scale`` is each
    channel's mean squared error on held-out normal rows, ``step_scale`` its mean squared
    step (0 for a channel left out of the stillness test; None for models saved before it).
    """

    window: int
    version: int
    smooth: int  # rows of residual averaged around a row
    still_smooth: int  # rows of step energy the stillness test averages
    span: int  # rows of the running reference (the residual's recent median, stillness's)
    level_rows: int  # rows of the running level the model takes out (0: none)
    channel_scale: np.ndarray | None = None
    step_scale: np.ndarray | None = None
    reference: np.ndarray | None = None  # version 4 (5 with adapt_rows): each channel's held-out REFERENCE_QUANTILE
    steady: np.ndarray | None = None  # version 5: channels averaged over ``smooth`` rows (the others: none)
    tail: np.ndarray | None = None  # version 5: each channel's held-out TAIL_QUANTILE of :meth:`ratio` before it
    adapt_rows: int = 0  # version 5: a change lasting this many rows becomes the channel's reference (0: never)

    @classmethod
    def of(cls, window: int, version: int, smooth: int | None, level_rows: int,
           channel_scale=None, step_scale=None, reference=None, *, steady=None, tail=None,
           adapt_rows=None) -> SeriesScore:
        """The settings a model with these parameters scores with (``smooth`` None: the
        version's default, ``2 * window - 1`` on version 5's steady channels, 1 in version 4,
        ``window - 1`` in version 3, ``2 * window - 1`` before; a pause is not a stuck sensor, so
        stillness averages ``2 * window - 1`` rows from version 3)."""
        w = int(window)
        default = 2 * w - 1 if version < 3 or version >= 5 else (w - 1 if version == 3 else 1)
        rows = int(smooth) if smooth is not None else default
        still = rows if version < 3 else 2 * w - 1
        span = 32 * w + 1 if version >= 5 else level_rows or 32 * w + 1
        return cls(w, int(version), rows, still, span, int(level_rows), channel_scale, step_scale, reference,
                   steady, tail, int(adapt_rows or 0))

    @property
    def adapts(self) -> bool:
        """Whether a lasting change becomes a channel's reference (version 4 always, version 5
        with ``adapt_rows``)."""
        return self.version == 4 or (self.version >= 5 and self.adapt_rows > 0)

    @property
    def reference_rows(self) -> int:
        """Rows of version 4's running reference (version 5: four times ``adapt_rows``, so a new
        regime becomes the reference once it fills a quarter of them)."""
        if self.version >= 5:
            return 4 * self.adapt_rows
        return REFERENCE_WINDOWS * self.window

    @property
    def reference_lag(self) -> int:
        """Rows between the end of version 4's running reference and the row it judges."""
        return LAG_WINDOWS * self.window

    def held_reference(self, raw_errors: np.ndarray) -> np.ndarray:
        """Each channel's REFERENCE_QUANTILE of :meth:`ratio` on held-out rows (fitted once)."""
        return np.maximum(np.quantile(self.ratio(raw_errors), REFERENCE_QUANTILE, axis=0), 1e-12)

    def scores(self, Xs: np.ndarray, raw_errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(score, parts)`` of one gap-free stretch: the row's anomaly score and its channel
        parts (:meth:`deviation`). Up to version 3 the score is the largest part; from version 4
        it is the larger of the geometric mean of the two largest residuals (in logs, their
        mean) and the largest stillness."""
        residual, still = self.tests(Xs, raw_errors)
        parts = np.maximum(residual, still)
        if self.version != 4 or residual.shape[1] < 2:
            return parts.max(axis=1), parts
        top_two = np.partition(residual, -2, axis=1)[:, -2:]
        return np.maximum(top_two.mean(axis=1), still.max(axis=1)), parts

    def ratio(self, raw_errors: np.ndarray) -> np.ndarray:
        """Each channel's squared error averaged over ``smooth`` rows, over its held-out mean
        (version 5: averaged on steady channels only, then over its held-out tail when fitted)."""
        ratio = raw_errors / self.channel_scale
        if self.version < 5:
            return moving_average(ratio, self.smooth)
        if self.steady is not None and self.steady.any():
            ratio[:, self.steady] = moving_average(ratio[:, self.steady], self.smooth)
        return ratio if self.tail is None else ratio / self.tail

    def deviation(self, Xs: np.ndarray, raw_errors: np.ndarray) -> np.ndarray:
        """Per-row, per-channel parts of the anomaly score of scaled rows ``Xs`` (one gap-free
        stretch) with squared errors ``raw_errors``: the larger of the residual test and the
        stillness of the reading itself."""
        return np.maximum(*self.tests(Xs, raw_errors))

    def tests(self, Xs: np.ndarray, raw_errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(residual, stillness)``: the two tests whose larger value is :meth:`deviation`,
        per row and channel (stillness 0 for models saved before it existed)."""
        if self.version < 2:  # a model saved before score version 2: scored as it was
            residual = _residual_energy_deviation(raw_errors / self.channel_scale, self.smooth)
            still = (np.zeros_like(residual) if self.step_scale is None
                     else stillness(Xs, self.step_scale, self.smooth))
            return residual, still
        ratio = self.ratio(raw_errors)
        if self.adapts and self.reference is not None:
            # a channel whose residual has stayed above its held-out level for a quarter of the
            # reference rows is in a regime the training rows did not show: judged against it
            # (version 5 only with ``adapt_after``: a quarter of its reference rows is adapt_rows)
            recent = lagged_quantile(ratio, REFERENCE_QUANTILE, self.reference_rows, self.reference_lag,
                                     self.window)
            ratio /= np.maximum(np.nan_to_num(recent / self.reference, nan=1.0), 1.0)
        elif self.version == 3:  # against the channel's recent residual too (a new regime settles)
            ratio /= np.maximum(trailing_median(ratio, self.span), 1.0)
        residual = np.log(np.maximum(ratio, 1.0))
        if self.step_scale is None:
            return residual, np.zeros_like(residual)
        return residual, local_stillness(Xs, self.step_scale, self.still_smooth, self.span)

    @property
    def reach(self) -> int:
        """Rows on each side whose readings move a row's score directly (its windows and the
        averages over them), leaving out the running references, which are medians and
        quantiles over many rows that a short fault does not move."""
        return self.window - 1 + max(self.smooth // 2, self.still_smooth // 2 + 1)

    @property
    def context_rows(self) -> int:
        """Rows on each side that a row's score depends on: a piece of a series scored with
        this many extra rows before and after gives its rows the whole series' scores."""
        residual = self.window - 1 + self.smooth // 2 + self.level_rows // 2
        if self.version < 2:
            return residual
        still = self.level_rows // 2 + self.still_smooth // 2 + 1 + self.span // 2
        if self.version == 3:  # the residual's reference: the rows before it
            residual += self.span - 1
        elif self.adapts:
            residual += self.reference_rows + self.reference_lag
        return max(residual, still)


def fit_series_statistics(detector, X: np.ndarray, Xs: np.ndarray, normal: np.ndarray,
                          held: np.ndarray, *, rows_out: dict | None = None) -> dict:
    """The fitted attributes of a series model whose autoencoder has just trained, by name.

    * ``fit_errors_``: the row scores its threshold is fitted on, those of the ``held`` rows
      that no labelled anomaly reaches (:func:`~aeviz_core.windows.away_from_anomalies`),
      since the threshold applies to rows;
    * ``channel_scale_``: each channel's mean squared error on those rows;
    * ``step_scale_``: each channel's mean squared step between consecutive normal rows
      (:func:`step_scale`; 0 leaves a channel that holds still out of the stillness test);
    * ``reference_scale_``: score version 4's reference (:meth:`SeriesScore.held_reference`; in
      version 5 the same quantile of the residual in units of its tail);
    * ``channel_tail_`` (version 5): each channel's :data:`TAIL_QUANTILE` of its residual ratio on
      the rows that fit the threshold;
    * ``threshold_source_`` (version 5, only when it is ``"training"``): with fewer than
      :data:`MIN_HELD_WINDOWS` windows of held-out rows, ``fit_errors_`` are the scores of every
      normal training row that no labelled anomaly reaches;
    * ``level_``: each channel's median in the normal rows (what :meth:`decode` of a
      ``level="relative"`` model adds back);
    * ``train_range_``: the 0.1st and 99.9th percentiles of each channel's normal readings,
      which :mod:`aeviz_core.trust` compares new data with.

    ``X`` is the raw series, ``Xs`` the model's input of it, ``normal`` the rows it may train on.
    ``rows_out``, when given, receives the fitted model's ``"scores"`` and channel ``"parts"`` of
    every row of ``X`` (what :meth:`~aeviz_core.detector.AutoencoderDetector.score_parts` gives
    the rows that lie :attr:`SeriesScore.context_rows` before the end of ``X``), so a caller that
    needs them does not score the rows again.
    """
    window, run = detector.window, detector.inference()
    runs = segments(Xs, window)
    raw = np.full(Xs.shape, np.nan)
    for a, b in runs:
        raw[a:b] = run.series_errors(Xs[a:b], window)
    base = detector.series_scorer()
    held = away_from_anomalies(held & ~np.isnan(raw[:, 0]), normal, ~np.isnan(X).any(axis=1), base.reach,
                               2 * window)
    scale = raw[held].mean(axis=0)
    score = replace(base, channel_scale=np.maximum(scale, 1e-6 * max(scale.max(), 1e-12)),
                    step_scale=step_scale(Xs, normal, base.still_smooth, runs, repeats=base.version >= REGIME_VERSION))
    fitted = {}
    threshold_rows = held
    if score.version >= LASTING_VERSION:
        ratio = np.full(Xs.shape, np.nan)  # over each stretch, as scoring averages it
        for a, b in runs:
            ratio[a:b] = score.ratio(raw[a:b])
        if held.sum() < MIN_HELD_WINDOWS * window:  # too few held-out rows to show the scores' tail
            threshold_rows = away_from_anomalies(normal & ~np.isnan(raw[:, 0]), normal, ~np.isnan(X).any(axis=1),
                                                 base.reach, 2 * window)
            fitted["threshold_source_"] = "training"
        # each channel measured in units of its tail on the rows that fit the threshold, so the
        # threshold reads every channel alike
        tail = np.maximum(np.quantile(ratio[threshold_rows], TAIL_QUANTILE, axis=0), 1e-12)
        score = replace(score, tail=tail,
                        reference=np.maximum(np.quantile(ratio[held] / tail, REFERENCE_QUANTILE, axis=0), 1e-12))
        fitted["channel_tail_"] = tail
    else:
        score = replace(score, reference=score.held_reference(raw[held]))
    scores, parts = np.full(len(Xs), np.nan), np.full(Xs.shape, np.nan)
    for a, b in runs:
        scores[a:b], parts[a:b] = score.scores(Xs[a:b], raw[a:b])
    if rows_out is not None:
        rows_out.update(scores=scores, parts=parts)
    if score.version >= LASTING_VERSION and "threshold_source_" not in fitted:
        # the held-out rows are honest but few; every normal training row is many but seen by the
        # model: the threshold is the higher of the two estimates (on the pump sample the held-out
        # rows' left 7 single-row false events in 12 hours, the training rows' none)
        training_rows = away_from_anomalies(normal & ~np.isnan(raw[:, 0]), normal, ~np.isnan(X).any(axis=1),
                                            base.reach, 2 * window)

        def rule(rows):
            return widen(np.percentile(scores[rows], LASTING_PERCENTILE), scores[rows], LASTING_MARGIN)

        if rule(training_rows) > rule(threshold_rows):
            threshold_rows = training_rows
            fitted["threshold_source_"] = "training"
    return {"channel_scale_": score.channel_scale, "step_scale_": score.step_scale,
            "reference_scale_": score.reference, "fit_errors_": scores[threshold_rows],
            "level_": np.median(X[normal], axis=0), "train_range_": np.percentile(X[normal], [0.1, 99.9], axis=0),
            **fitted}


def _residual_energy_deviation(channel_errors: np.ndarray, smooth: int) -> np.ndarray:
    """``|log r|`` with ``r`` the centred moving average of normalised errors over ``smooth`` rows."""
    return np.abs(np.log(np.maximum(moving_average(channel_errors, smooth), 1e-6)))


def squared_steps(Xs: np.ndarray) -> np.ndarray:
    """``(x[i] - x[i-1])**2`` per row and channel; row 0 repeats row 1's step."""
    steps = np.empty(Xs.shape, dtype=np.float64)
    steps[1:] = np.square(np.diff(np.asarray(Xs, dtype=np.float64), axis=0))
    steps[0] = steps[1] if len(Xs) > 1 else 0.0
    return steps


#: a channel whose step energy over ``smooth`` normal rows falls below this
#: share of its mean holds still in normal operation: no stillness test for it
_STILL_IN_NORMAL = 1e-2
#: a channel whose normal readings repeat the previous one on more than this share of steps is
#: left out of the stillness test as well (on GECCO's water-quality sensors, pH and chlorine
#: repeat on 74% and 49% of steps; on the pump's, at most 7%)
_REPEATS_IN_NORMAL = 0.3


def step_scale(Xs: np.ndarray, normal, smooth: int, runs, *, repeats: bool = False) -> np.ndarray:
    """Mean squared step of each channel over consecutive normal rows; 0 where it holds still.

    ``runs`` are the gap-free stretches ``(start, stop)``; no step spans a gap. With
    ``repeats`` (score version 4), also 0 for a channel whose normal readings repeat the last
    one on more than ``_REPEATS_IN_NORMAL`` of the steps.
    """
    steps = np.full(Xs.shape, np.nan)
    energy = np.full(Xs.shape, np.nan)
    for a, b in runs:
        steps[a:b] = squared_steps(Xs[a:b])
        energy[a:b] = moving_average(steps[a:b], smooth)
    both = normal & np.r_[normal[:1], normal[:-1]] & ~np.isnan(steps[:, 0])
    if not both.any():
        return np.zeros(Xs.shape[1])
    scale = steps[both].mean(axis=0)  # 0 for a constant channel: left out as well
    still = (energy[both] < _STILL_IN_NORMAL * scale).any(axis=0)
    # a reading that repeats its last value on many normal steps (a coarse or slow sensor)
    # cannot show a stuck sensor by its steps
    if repeats:
        still |= (steps[both] == 0).mean(axis=0) > _REPEATS_IN_NORMAL
    return np.where(still, 0.0, scale)


def stillness(Xs: np.ndarray, step_scale: np.ndarray, smooth: int) -> np.ndarray:
    """``max(0, -log s)``: ``s`` the step energy over ``smooth`` rows relative to normal."""
    out = np.zeros(Xs.shape, dtype=np.float64)
    tested = step_scale > 0
    if not tested.any() or len(Xs) < 2:
        return out
    ratio = moving_average(squared_steps(Xs[:, tested]), smooth) / step_scale[tested]
    out[:, tested] = np.maximum(0.0, -np.log(np.maximum(ratio, 1e-6)))
    return out


#: the floor of a channel's step energy, as a share of its normal value: a channel's stillness
#: is at most -log of it (about 6.9), and a channel still for longer than the reference span
#: (its new normal) scores 0
_STILL_FLOOR = 1e-3


def local_stillness(Xs: np.ndarray, step_scale: np.ndarray, smooth: int, span: int) -> np.ndarray:
    """How much more still a channel is than over the ``span`` rows around it: ``max(0, -log s)``.

    ``s`` is the step energy over ``smooth`` rows divided by its running
    median over ``span`` rows (both floored at ``_STILL_FLOOR`` of the
    normal step energy). A stuck sensor stops moving while it moved just
    before; a channel that settles for hours (a line switched off, a calm
    night) becomes its own reference and stops scoring once it has been
    still for half the span.
    """
    out = np.zeros(Xs.shape, dtype=np.float64)
    tested = step_scale > 0
    if not tested.any() or len(Xs) < 2:
        return out
    energy = moving_average(squared_steps(Xs[:, tested]), smooth)
    floor = _STILL_FLOOR * step_scale[tested]
    reference = running_median(energy, span)
    out[:, tested] = np.maximum(0.0, np.log((reference + floor) / (energy + floor)))
    return out
