"""When the flags cannot be trusted: plain-words notes about scored data.

A threshold promises a share of flagged rows on data like the rows it was
fitted on (a 99.5th percentile: about 0.5%). When far more is flagged, or a
channel leaves the range its readings took in the training rows, or one
event covers most of a file, the flags say more about the model than about
the data. :class:`TrustTracker` collects the evidence chunk by chunk (so
``aeviz score`` can stream) and :meth:`TrustTracker.notes` says what was
found and what to do; :func:`trust_notes` does both for data in memory.
"""

from __future__ import annotations

import numpy as np

from .data import mask_runs
from .settings import training_period_text
from .thresholds import widen

__all__ = ["TrustTracker", "threshold_origin", "trust_notes"]

#: flagged share that counts as far above the promise: this many times it, and at least MIN_EXCESS
EXCESS_FACTOR = 4.0
MIN_EXCESS = 0.02
#: a channel is out of its training range when it lies beyond it by more than this share of
#: the range's width, on at least OUT_SHARE of the scored rows
RANGE_MARGIN = 0.25
OUT_SHARE = 0.01
#: one event longer than this share of the scored rows is called out
LONG_EVENT_SHARE = 0.5


class TrustTracker:
    """Accumulates what :meth:`notes` reports over consecutive pieces of one scored series.

    Parameters
    ----------
    detector : AutoencoderDetector
        Fitted; a series model (``train_range_``) gets the range check.
    channel_names : list of str
    """

    def __init__(self, detector, channel_names):
        self.detector = detector
        self.names = [str(c) for c in channel_names]
        self.rows = 0  # rows with a score
        self.readable = 0  # rows with a reading on every channel (outside gaps)
        self.flagged = 0
        self.run = 0  # length of the flagged run open at the end of the last piece
        self.longest = 0
        self.out = np.zeros(len(self.names), dtype=np.int64)
        self.first_out: list = [None] * len(self.names)
        low_high = getattr(detector, "train_range_", None)
        if low_high is not None:
            low, high = np.asarray(low_high, dtype=np.float64)
            width = np.maximum(high - low, 1e-12 * (1 + np.abs(high)))
            self.bounds = (low - RANGE_MARGIN * width, high + RANGE_MARGIN * width)
        else:
            self.bounds = None

    def add_scores(self, scores) -> None:
        """Add the anomaly scores of the next rows (NaN in gaps)."""
        scores = np.asarray(scores, dtype=np.float64)
        scored = ~np.isnan(scores)
        flags = scored & (scores > self.detector.threshold_)
        self.rows += int(scored.sum())
        self.flagged += int(flags.sum())
        if not len(flags):
            return
        run = 0  # the flagged run that reaches the end of this piece
        for a, b in mask_runs(flags):
            run = b - a + (self.run if a == 0 else 0)  # a run open since the last piece goes on
            self.longest = max(self.longest, run)
        self.run = run if flags[-1] else 0

    def add_values(self, values, *, first_row: int = 0, times=None) -> None:
        """Add the raw readings (rows x channels) of the next rows, the first being ``first_row``;
        ``times`` (a pandas Series, optional) says when each was read.

        Readings of another width than the model's are not compared (the scorer refuses them).
        """
        values = np.asarray(values, dtype=np.float64)
        self.readable += int((~np.isnan(values).any(axis=1)).sum())
        if self.bounds is None or values.shape[1] != len(self.bounds[0]):
            return
        with np.errstate(invalid="ignore"):
            outside = (values < self.bounds[0]) | (values > self.bounds[1])
        self.out += outside.sum(axis=0)
        for j in np.flatnonzero(outside.any(axis=0)):
            if self.first_out[j] is None:
                i = int(np.argmax(outside[:, j]))
                self.first_out[j] = (first_row + i, None if times is None else times.iloc[i])

    def promised(self) -> float:
        """Share of the threshold's own fitting scores above the rule's value (before a series
        model's margin, which only lowers the share): what the rule promises."""
        det = self.detector
        rule = getattr(det, "threshold_rule_", None)
        margin = 1.0 if rule is not None and rule.rule == "manual" else getattr(det, "threshold_margin_", 1.0)
        value = widen(det.threshold_, det.fit_errors_, margin, inverse=True)
        return float(np.mean(np.asarray(det.fit_errors_) > value))

    def notes(self) -> list[str]:
        """Plain-words warnings; empty when nothing calls the flags into question."""
        notes = []
        window = getattr(self.detector, "window", None)
        if self.readable > self.rows and window:
            notes.append(
                f"{self.readable - self.rows} row(s) outside the gaps lie in stretches between gaps "
                f"shorter than one window ({window} rows) and have no score"
            )
        if not self.rows:
            return notes
        share, promised = self.flagged / self.rows, self.promised()
        unit = "rows" if window else "items"
        if share > max(EXCESS_FACTOR * promised, MIN_EXCESS):
            advice = ("Check the channels named below, train on a longer or more recent normal period, or "
                      "raise the threshold") if window else "Train on data like it, or raise the threshold"
            notes.append(
                f"{share:.1%} of the scored {unit} are flagged, far above the {promised:.1%} the threshold "
                f"promises on data like its training {unit}: either much of this data is anomalous, or it "
                f"is unlike what the model learned. If the latter: {advice[0].lower() + advice[1:]}"
            )
        if window and self.longest > LONG_EVENT_SHARE * self.rows:  # items of a table have no order
            notes.append(
                f"one flagged stretch covers {self.longest} rows, {self.longest / self.rows:.0%} of the "
                "scored rows: a change that lasts (see its shift event). A fault, or a new normal? Decide it "
                "on the Review page, or set adapt_after to let a change that lasts become the new normal"
            )
        if self.bounds is not None:
            low, high = np.asarray(self.detector.train_range_, dtype=np.float64)
            steady = getattr(self.detector, "steady_", None)
            items = []
            for j in np.flatnonzero(self.out > OUT_SHARE * self.rows):
                row, when = self.first_out[j]
                since = f"row {row}" + ("" if when is None else f" ({when})")
                judged = ("" if steady is None else
                          ", flagged while it lasts" if steady[j] else
                          ", its level not scored (it wanders more slowly than the training rows show)")
                items.append(f"{self.names[j]!r} since {since} on {self.out[j] / self.rows:.0%} of the rows "
                             f"(trained on {low[j]:.4g} to {high[j]:.4g}{judged})")
            if items:
                notes.append("readings outside their training range: " + "; ".join(items))
        return notes


def trust_notes(detector, channels, scores, times=None) -> list[str]:
    """:meth:`TrustTracker.notes` for a whole series (or table) in memory.

    Parameters
    ----------
    detector : AutoencoderDetector
    channels : DataFrame or ndarray (rows, channels)
        The raw readings that were scored.
    scores : ndarray (rows,)
        Their anomaly scores (NaN in gaps).
    times : pandas.Series, optional
        One time per row, to say from when a channel left its range.

    Returns
    -------
    notes : list of str
    """
    names = getattr(channels, "columns", range(np.shape(channels)[1]))
    tracker = TrustTracker(detector, names)
    values = np.asarray(channels, dtype=np.float64)
    if values.ndim != 2:  # images or windows: the share flagged only
        values = np.empty((len(scores), 0))
        tracker.bounds = None
    tracker.add_scores(scores)
    tracker.add_values(values, times=times)
    return tracker.notes()


def threshold_origin(detector, train_rows: int, time=None, *, which: str = "") -> str:
    """One line on where a series model's threshold comes from and what lasting changes do: the
    training period in rows and time (``which``, e.g. ``"the first "``, says which rows), the rows
    that fitted the threshold, ``adapt_after``."""
    source = ("its held-out rows" if getattr(detector, "threshold_source_", "held-out") == "held-out"
              else "every training row (too few held out to show the tail)")
    adapt = getattr(detector, "adapt_rows_", 0)
    lasting = (f"a change that lasts {adapt:,} rows becomes the new normal" if adapt
               else "a lasting change stays flagged until you decide it is the new normal")
    return f"trained on {which}{training_period_text(train_rows, time)}; threshold fitted on {source}; {lasting}"
