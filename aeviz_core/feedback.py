"""Feedback: operators' decisions teach the model (a refit from reviews).

The last arrow of the data flow turns back: events an operator **dismissed** are normal rows the
model learns from; events an operator **confirmed** are kept out of training and calibration and
become labelled checks of the new model; ``open`` and ``follow_up`` events are left alone.

Decisions name an event by its rows, ``start_row`` and ``end_row`` (0-based, inclusive), and its
``status``, as the Review page's export and ``aeviz score --events`` (with a ``status`` column
added) both do. :func:`read_decisions` checks them against the data; :func:`refit` fine-tunes the
model on the rows the decisions settle and reports what the new version does on this data;
:func:`lineage` is what the new model directory keeps of where it came from.

A refit learns from the rows up to the end of the last decided event (what an operator has looked
at): the rows there that the model did not flag, and the dismissed events' rows. Flagged events
nobody decided, and confirmed events with the rows their windows reach, stay out. The weights start
from the parent's (a fine-tune: on the pump station a refit takes a fraction of the first
training, see ``bench/feedback.py``), and the threshold's rule is fitted anew on the new normal
rows, so a dismissed shift becomes the channel's new reference from its start; its margin
narrows as those rows outnumber the parent's (:func:`refit_margin`). Each dismissed event's blamed
channel then gets a wider tail, so that an excursion like it is not flagged again
(:func:`quiet_dismissed`).
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from .events import event_key, event_spans
from .metrics import best_f1_threshold
from .reviews import REVIEW_STATUSES, STATUS_LABELS

__all__ = ["DECISION_COLUMNS", "DecisionError", "Refit", "confirmed_margin", "decided_rows", "lineage", "queue_decisions",
           "quiet_dismissed", "read_decisions", "refit", "refit_margin", "separating_threshold", "share_margin",
           "threshold_summary"]

#: the columns a decisions file needs; ``reviewer``, ``reviewed_at``, ``tags``, ``note`` and
#: ``data_fingerprint`` are read when present
DECISION_COLUMNS = ("start_row", "end_row", "status")
#: :func:`confirmed_margin`'s room: the lowest confirmed peak stands this share further above the
#: median of the new version's fitted scores than its threshold does
CONFIRMED_SLACK = 0.1
#: what a refit does with each status
USES = {"dismissed": "normal", "confirmed": "anomalous", "open": "ignored", "follow_up": "ignored"}


class DecisionError(ValueError):
    """Decisions that cannot teach the model: a missing column, an unknown status, rows outside the
    data, or decisions made on other data. Nothing is written when it is raised."""


def read_decisions(source, n_rows: int, *, data_fingerprint: str | None = None) -> pd.DataFrame:
    """Operators' decisions as a checked frame, one row per event.

    Parameters
    ----------
    source : str, Path, bytes or DataFrame
        The Review page's export or an events file with a ``status`` column (CSV).
    n_rows : int
        Rows of the data the decisions are applied to.
    data_fingerprint : str, optional
        That data's fingerprint (``SensorData.fingerprint``, the review store's key); a file that
        carries a ``data_fingerprint`` column (the Review page's export does) must match it.

    Returns
    -------
    decisions : DataFrame
        ``start_row``, ``end_row``, ``status`` and the optional columns present, sorted by row.

    Raises
    ------
    DecisionError
        Naming the problem: a missing column, an unknown status, rows outside the data, decisions
        made on other data.
    """
    frame = _frame(source)
    missing = [c for c in DECISION_COLUMNS if c not in frame.columns]
    if missing:
        raise DecisionError(f"the decisions need columns {list(DECISION_COLUMNS)}; missing {missing} "
                            f"(it has {[str(c) for c in frame.columns][:12]})")
    frame = frame.copy()
    labels = {label: status for status, label in STATUS_LABELS.items()}  # the Review page's export says labels
    frame["status"] = frame["status"].fillna("open").astype(str).str.strip().str.lower().replace(labels)
    unknown = sorted(set(frame["status"]) - set(REVIEW_STATUSES))
    if unknown:
        raise DecisionError(f"unknown status {unknown[0]!r} in the decisions; a status is one of {list(REVIEW_STATUSES)} "
                            f"(or the Review page's {list(STATUS_LABELS.values())})")
    for column in ("start_row", "end_row"):
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.isna().any() or (values % 1 != 0).any():
            row = int(np.flatnonzero(values.isna() | (values % 1 != 0))[0])
            raise DecisionError(f"{column} must be a whole row number; line {row + 2} has {frame[column].iloc[row]!r}")
        frame[column] = values.astype(np.int64)
    bad = (frame["start_row"] < 0) | (frame["end_row"] < frame["start_row"]) | (frame["end_row"] >= n_rows)
    if bad.any():
        first = frame[bad].iloc[0]
        raise DecisionError(f"the decision on rows {first['start_row']}-{first['end_row']} lies outside the data's "
                            f"{n_rows} rows (0 to {n_rows - 1}): were the decisions made on other data?")
    if data_fingerprint is not None and "data_fingerprint" in frame.columns:
        other = sorted(set(frame["data_fingerprint"].dropna().astype(str)) - {data_fingerprint})
        if other:
            raise DecisionError(f"the decisions were made on other data (fingerprint {other[0]}, this data's is "
                                f"{data_fingerprint})")
    return frame.sort_values(["start_row", "end_row"], kind="stable").reset_index(drop=True)


def queue_decisions(queue: pd.DataFrame) -> pd.DataFrame:
    """The decisions a refit can use from a review queue (:meth:`ReviewStore.queue`): the events
    dismissed or confirmed under the queue's own model (a stale decision, taken under another
    model on an overlapping span, is shown there but not used), as :func:`read_decisions` returns
    them, with ``reviewer``, ``reviewed_at`` and ``tags``."""
    own = queue[queue["status"].isin(["dismissed", "confirmed"]) & ~queue["stale"].astype(bool)]
    frame = pd.DataFrame({"start_row": own["start"].astype(np.int64), "end_row": own["end"].astype(np.int64),
                          "status": own["status"].astype(str), "reviewer": own["reviewer"],
                          "reviewed_at": own["reviewed_at"], "tags": own["tags"]})
    return frame.sort_values(["start_row", "end_row"], kind="stable").reset_index(drop=True)


def decided_rows(decisions: pd.DataFrame, n_rows: int, status: str) -> np.ndarray:
    """A mask of the rows of the events decided ``status``."""
    mask = np.zeros(n_rows, dtype=bool)
    for a, b in decisions.loc[decisions["status"] == status, ["start_row", "end_row"]].itertuples(index=False):
        mask[a : b + 1] = True
    return mask


@dataclass
class Refit:
    """A new model version from decisions, with what it does on the data the decisions were
    made on (the parent's figures beside it)."""

    detector: object
    parent_id: str
    decisions: pd.DataFrame  # the decisions used (dismissed and confirmed)
    until: int  # the rows learned from lie before this row
    normal_rows: int  # rows the new version learned from
    flagged_before: float  # share of the data's rows the parent flags
    flagged_after: float
    confirmed_before: int  # confirmed events the parent flags (any row)
    confirmed_after: int
    dismissed_before: float | None  # share of the dismissed events' rows the parent flags (None: none dismissed)
    dismissed_after: float | None
    seconds: float  # the fine-tune, the new statistics, the widened tails and the threshold
    epochs: int
    warnings: list[str] = field(default_factory=list)
    #: channels whose tail the dismissed events widened (:func:`quiet_dismissed`), by name, and the factor
    widened: dict[str, float] = field(default_factory=dict)

    @property
    def n_confirmed(self) -> int:
        return int((self.decisions["status"] == "confirmed").sum())

    @property
    def n_dismissed(self) -> int:
        return int((self.decisions["status"] == "dismissed").sum())

    def summary(self) -> str:
        """One line: what was used and what changed."""
        return (f"{self.n_dismissed} dismissed and {self.n_confirmed} confirmed event(s) used, learned from "
                f"{self.normal_rows:,} rows before row {self.until:,} in {self.epochs} epoch(s), {self.seconds:.1f} s; "
                f"flagged {self.flagged_before:.2%} -> {self.flagged_after:.2%} of the rows; confirmed events "
                f"flagged {self.confirmed_before} -> {self.confirmed_after} of {self.n_confirmed}"
                + ("" if self.dismissed_before is None else
                   f"; dismissed events' rows flagged {self.dismissed_before:.0%} -> {self.dismissed_after:.0%}")
                + (f"; {self.widened_text()}" if self.widened else ""))

    def widened_text(self) -> str:
        """The channels the dismissed events widened, in words ("" when none)."""
        if not self.widened:
            return ""
        return "dismissed events widened the tolerance of " + ", ".join(
            f"{name} (x{factor:.2g})" for name, factor in self.widened.items())


def refit(detector, X, decisions: pd.DataFrame, *, until: int | None = None, epochs: int | None = None,
          margin: float | None = None, progress=None, stop=None) -> Refit:
    """A new model version taught by ``decisions`` on ``X`` (the data they were made on).

    Parameters
    ----------
    detector : AutoencoderDetector
        The parent, fitted on a series (``window`` set); it is not changed.
    X : DataFrame or array, shape (n_rows, n_channels)
        The data the decisions were made on.
    decisions : DataFrame
        From :func:`read_decisions`.
    until : int, optional
        Learn from the rows before this one (default: the end of the last decided event, what an
        operator has looked at).
    epochs : int, optional
        See :meth:`AutoencoderDetector.refine`.
    margin : float, optional
        The new version's threshold margin (default :func:`refit_margin`: the parent's, narrowed
        by how many more rows the new threshold rests on, and capped by :func:`confirmed_margin`).
        The new version keeps the parent's threshold rule and its parameter (a manual threshold
        value, which would not fit the new weights' scores, gives way to the model's own rule).

    Returns
    -------
    refit : Refit
        ``refit.detector`` is the new version; ``refit.warnings`` says what to check before
        adopting it (confirmed events it no longer flags).

    Raises
    ------
    DecisionError
        No dismissed or confirmed decision; a decided event that holds no row the parent flags on
        ``X`` (decisions made on other data).
    """
    if getattr(detector, "input_kind_", None) != "series":
        raise DecisionError("a refit from decisions needs a model fitted on a series (window set)")
    used = decisions[decisions["status"].isin(["dismissed", "confirmed"])].reset_index(drop=True)
    if used.empty:
        raise DecisionError("no event is dismissed or confirmed: nothing to learn from (open and follow_up are "
                            "left alone)")
    n = len(X)
    scores = detector.anomaly_score(X)
    flags = np.nan_to_num(scores, nan=-np.inf) > detector.threshold_
    for a, b in used[["start_row", "end_row"]].itertuples(index=False):
        if not flags[a : b + 1].any():
            raise DecisionError(f"the model flags no row of the decided event {event_key(a, b)} in this data: "
                                "were the decisions made on other data or by another model's threshold?")
    until = int(used["end_row"].max()) + 1 if until is None else int(until)
    if not 0 < until <= n:
        raise DecisionError(f"until must be in 1..{n} (the data's rows), got {until}")
    dismissed = decided_rows(used, n, "dismissed")
    confirmed = decided_rows(used, n, "confirmed")
    undecided = np.zeros(n, dtype=bool)  # flagged events nobody dismissed
    for a, b in event_spans(flags, detector.event_gap_rows()):
        if not dismissed[a : b + 1].all():
            undecided[a : b + 1] = True
    reach = detector.reach_rows
    near_confirmed = np.convolve(confirmed, np.ones(2 * reach + 1), mode="same") > 0 if reach else confirmed
    rows = np.arange(n)
    normal = (rows < until) & (dismissed | ~undecided) & ~near_confirmed
    started = time.perf_counter()
    fitted_rows = {}  # the new version's scores and parts of the rows its statistics cover: the decided ones too
    new = detector.refine(X, normal, epochs=epochs, progress=progress, stop=stop, rows_out=fitted_rows,
                          cover=max(until, int(used["end_row"].max()) + 1))
    if detector.threshold_rule_.rule != "manual":  # the rule an operator chose stays (a value would not)
        new.set_threshold(detector.threshold_rule_.rule, detector.threshold_rule_.param)
    decided_scores, decided_parts = fitted_rows["scores"], fitted_rows["parts"]
    if margin is None:
        widest = refit_margin(detector, new)
        margin = min(widest, confirmed_margin(new, decided_scores, used))
        bare = min(widest, confirmed_margin(new, decided_scores, used, slack=0.0))
        if margin < bare:  # the confirmed events' room: never more flags on the rows the operator left normal
            covered = len(decided_scores)  # the rows the new version's statistics scored
            reviewed = (rows[:covered] < until) & ~confirmed[:covered]
            parent_share = float(flags[:covered][reviewed].mean()) if reviewed.any() else 0.0
            margin = min(bare, max(margin, share_margin(new, decided_scores[reviewed], parent_share)))
    new.set_threshold(margin=margin)
    factors = quiet_dismissed(new, X, used, parts=decided_parts)
    seconds = time.perf_counter() - started
    after = np.nan_to_num(new.anomaly_score(X), nan=-np.inf) > new.threshold_

    spans = list(used.loc[used["status"] == "confirmed", ["start_row", "end_row"]].itertuples(index=False))
    before_hits = sum(bool(flags[a : b + 1].any()) for a, b in spans)
    after_hits = sum(bool(after[a : b + 1].any()) for a, b in spans)
    out = Refit(detector=new, parent_id=detector.model_id_, decisions=used, until=until, normal_rows=int(normal.sum()),
                flagged_before=float(flags.mean()), flagged_after=float(after.mean()), confirmed_before=before_hits,
                confirmed_after=after_hits, dismissed_before=float(flags[dismissed].mean()) if dismissed.any() else None,
                dismissed_after=float(after[dismissed].mean()) if dismissed.any() else None, seconds=seconds, epochs=len(new.history_.get("loss", [])),
                widened={_channel_name(new, c): float(factors[c]) for c in np.flatnonzero(factors > 1)})
    if after_hits < before_hits:
        out.warnings.append(f"the new version flags {after_hits} of the {len(spans)} confirmed events, the parent "
                            f"{before_hits}: check them before adopting it")
    return out


def confirmed_margin(detector, scores: np.ndarray, decisions: pd.DataFrame, *, slack: float | None = None) -> float:
    """The widest margin (at least 1) at which ``detector`` still flags every confirmed event of
    ``decisions`` that it flags with a margin of 1, given its ``scores`` of the decided rows
    (``inf`` without such an event), with room to spare: the lowest such event's peak stands
    ``slack`` (default :data:`CONFIRMED_SLACK`) further above the median than the threshold does.
    :func:`refit` takes back as much of the room as would flag a larger share of the rows an
    operator reviewed and left normal than the parent flagged there (:func:`share_margin`).

    Confirmed events are an operator's checks of the new version: its threshold gives way to them
    rather than lose one, and leaves room for the later events like them, whose peaks vary. On
    ``tests/test_browser.py``'s day of the operators' walk, the margin of :func:`refit_margin`
    alone lost both confirmed events. On ``bench/feedback.py``'s GECCO a threshold at the lowest
    confirmed peak left a dozen later events of the same kind at 0.98-1.0 of it (F1 0.385 and
    0.363 with the parent trained at seeds 1 and 2); with the room, 0.639 and 0.593 (seed 0: 0.640
    -> 0.650; SKAB and the pump unchanged; 20% room gives the same)."""
    line = _margin_line(detector)
    if line is None:
        return np.inf
    median, step = line
    peaks = [np.nanmax(scores[a : b + 1], initial=-np.inf) for a, b in
             decisions.loc[decisions["status"] == "confirmed", ["start_row", "end_row"]].itertuples(index=False)]
    reach = [(p - median) / step for p in peaks if (p - median) / step > 1]  # flagged with a margin of 1
    if not reach:
        return np.inf
    room = 1 + (CONFIRMED_SLACK if slack is None else float(slack))
    return max(1.0, min(reach) / room * (1 - 1e-6))


def share_margin(detector, scores: np.ndarray, share: float) -> float:
    """The narrowest margin (at least 1) at which ``detector``'s threshold flags at most ``share``
    of ``scores`` (NaN: not flagged). On the operators' walk of ``tests/test_browser.py`` (a
    2-epoch model, the operator's 98th percentile) the confirmed events' room alone had the new
    version flag 0.70% of the rows the operator reviewed and left normal, where the parent flagged
    0.32%; on GECCO it flags 0.05% of them against the parent's 0.47%, so the room stays there."""
    line = _margin_line(detector)
    scores = np.nan_to_num(np.asarray(scores, dtype=float), nan=-np.inf)
    allowed = int(np.floor(share * len(scores)))  # rows that may stay above the threshold
    if line is None or allowed >= len(scores):
        return 1.0
    median, step = line
    need = np.sort(scores)[::-1][allowed]  # the threshold must reach the score of the first row beyond them
    return max(1.0, (need - median) / step * (1 + 1e-9))


def _margin_line(detector) -> tuple[float, float] | None:
    """``(median, step)``: with margin ``m`` the threshold of ``detector`` is ``median + m * step``
    (:func:`~aeviz_core.thresholds.widen` of its rule fitted on ``fit_errors_``); None where no
    margin moves it (a manual threshold, a rule at or below the median)."""
    fitted = detector.threshold_rule_.fit(detector.fit_errors_)
    median = float(np.median(detector.fit_errors_))
    if detector.threshold_rule_.rule == "manual" or fitted <= median:
        return None
    return median, fitted - median


def quiet_dismissed(detector, X, decisions: pd.DataFrame, *, parts: np.ndarray | None = None) -> np.ndarray:
    """Widen, in place, the tail of each dismissed event's blamed channel so that the event scores
    at most the threshold; returns each channel's factor on its tail (1: unchanged).

    A dismissed event's rows join the training rows, but they are a sliver of them: the new
    version's threshold and each channel's tail (``channel_tail_``, the unit its residual is
    measured in) hardly move, and an excursion like the dismissed one is flagged again. The
    operator said this excursion of this channel is normal, so the channel that scores the event
    highest gets a wider tail: its residual part falls by the event's excess over the threshold
    (a channel flagged for holding still keeps its stillness part). A confirmed event that only
    that channel flags keeps a part above the threshold: the widening stops short of it. The
    threshold stays as it was fitted (``fit_errors_`` are the scores with the narrower tails,
    so it errs towards flagging less).

    ``bench/feedback.py``: on GECCO with a month decided, the dismissed events blame the second
    flow meter and the turbidity, and widening them (x1.7, x8.0) raised the later rows' AP from
    0.679 to 0.713 (F1 0.643 -> 0.634); SKAB and the pump are unchanged (their refit versions already score
    their dismissed events below the threshold). Fitting the threshold anew on the wider tails
    lowered it: GECCO's false alarms rose to 1.0%, and SKAB's missed rows from 50% to 61%.
    A series model of score version 5 only (``channel_tail_``); others are left as they are.
    """
    n_channels = int(detector.n_features_in_)
    tail = getattr(detector, "channel_tail_", None)
    spans = {status: list(decisions.loc[decisions["status"] == status, ["start_row", "end_row"]]
                          .itertuples(index=False, name=None)) for status in ("dismissed", "confirmed")}
    if tail is None or not spans["dismissed"]:
        return np.ones(n_channels)
    if parts is None:  # the channel parts of the decided rows
        parts = detector.score_parts(X[: int(decisions["end_row"].max()) + 1 + detector.context_rows])[1]
    threshold, lift = detector.threshold_, np.zeros(n_channels)
    for a, b in spans["dismissed"]:
        peak = np.nan_to_num(parts[a : b + 1], nan=0.0).max(axis=0)
        c = int(np.argmax(peak))
        lift[c] = max(lift[c], peak[c] - threshold + 1e-3)
    for a, b in spans["confirmed"]:  # keep what alone flags a confirmed event above the threshold
        part = np.nan_to_num(parts[a : b + 1], nan=0.0)
        for c in np.flatnonzero(lift > 0):
            if np.delete(part, c, axis=1).max(initial=0.0) <= threshold:
                lift[c] = min(lift[c], max(part[:, c].max() - threshold - 1e-3, 0.0))
    factors = np.exp(np.maximum(lift, 0.0))
    detector.channel_tail_ = np.asarray(tail, dtype=float) * factors
    return factors


def _channel_name(detector, c: int) -> str:
    names = getattr(detector, "feature_names_in_", None)
    return str(names[c]) if names is not None else f"channel {c}"


def refit_margin(parent, new) -> float:
    """The threshold margin of ``new``, a version refit from ``parent``.

    A series model's margin stretches its fitted threshold for the tail that the few rows it is
    fitted on never showed (:data:`~aeviz_core.scores.LASTING_MARGIN`). A refit that fits its
    threshold on more rows (``fit_errors_``) keeps the parent's stretch above 1 only in the share
    of them the parent had: ``1 + (m - 1) * len(parent.fit_errors_) / len(new.fit_errors_)``,
    between 1 and the parent's margin ``m``.

    Examples
    --------
    >>> from types import SimpleNamespace as Model
    >>> refit_margin(Model(threshold_margin_=1.5, fit_errors_=range(600)), Model(fit_errors_=range(800)))
    1.375
    >>> refit_margin(Model(threshold_margin_=1.5, fit_errors_=range(600)), Model(fit_errors_=range(300)))
    1.5
    """
    margin = float(getattr(parent, "threshold_margin_", 1.0))
    had, has = len(parent.fit_errors_), len(new.fit_errors_)
    return float(min(margin, 1.0 + (margin - 1.0) * had / max(has, 1)))


def lineage(result: Refit, *, data_name: str, data_fingerprint: str, parent_dir=None) -> dict:
    """What a refit model directory keeps of where it came from (``extra["lineage"]``): the parent,
    the data, the decisions used with who made them and when, and what changed."""
    columns = [c for c in ("start_row", "end_row", "status", "reviewer", "reviewed_at", "tags")
               if c in result.decisions.columns]
    decisions = result.decisions[columns].astype(object).where(result.decisions[columns].notna(), None)
    return {
        "parent": result.parent_id, "parent_dir": None if parent_dir is None else str(Path(parent_dir)),
        "data": data_name, "data_fingerprint": data_fingerprint,
        "refit_at": datetime.now(UTC).isoformat(timespec="seconds"), "until": result.until,
        "normal_rows": result.normal_rows, "epochs": result.epochs, "seconds": round(result.seconds, 2),
        "decisions": [{k: (str(v) if k in ("reviewed_at", "tags") and v is not None else v) for k, v in row.items()}
                      for row in decisions.to_dict("records")],
        "flagged_before": result.flagged_before, "flagged_after": result.flagged_after,
        "confirmed_flagged_before": result.confirmed_before, "confirmed_flagged_after": result.confirmed_after,
        "dismissed_rows_flagged_before": result.dismissed_before, "dismissed_rows_flagged_after": result.dismissed_after,
        "widened_tails": result.widened,
    }


def _frame(source) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source
    try:
        if isinstance(source, bytes):
            return pd.read_csv(io.BytesIO(source))
        return pd.read_csv(source)
    except FileNotFoundError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DecisionError(f"the decisions file is not a readable CSV: {str(exc).strip().splitlines()[0]}") from None


def threshold_summary(queue: pd.DataFrame) -> dict[str, Any]:
    """What the reviews so far say about the flags and the threshold.

    Only current decisions count towards precision and the threshold:
    stale ones were made on another model's events.

    The suggested threshold separates the peak scores (higher = more
    anomalous; flag when strictly greater) of confirmed events from those
    of dismissed ones. When every dismissed score is below every confirmed
    one, it is the midpoint between the highest dismissed and the lowest
    confirmed score (``"midpoint"``). Otherwise it is the cut that
    maximises F1 of "flagged" against "confirmed", among the midpoints
    between consecutive distinct scores and the value just below the
    lowest score (keep flagging all); ties go to the highest cut, which
    raises fewer alarms (``"max_f1"``). When no cut beats flagging every
    decided event (dismissed events score as high as confirmed ones, e.g.
    all at a score's ceiling), the reviews give no threshold: ``None``,
    ``"inseparable"``; every decided event was flagged, so the threshold
    in use already keeps them all.

    Parameters
    ----------
    queue : pandas.DataFrame
        From :meth:`ReviewStore.queue`; ``peak_score`` is needed for a threshold.

    Returns
    -------
    summary : dict
        ``n_events`` (int); ``counts`` (status -> int, every status, of
        this model's decisions: an event shown with a stale decision counts
        as open); ``stale`` (int); ``precision`` (confirmed / (confirmed +
        dismissed), ``None`` before any such decision); ``threshold``
        (float or ``None`` until there are both confirmed and dismissed
        events with scores that a cut separates); ``threshold_method``
        (``"midpoint"``, ``"max_f1"``, ``"inseparable"`` or ``None``).

    Examples
    --------
    >>> q = pd.DataFrame({"peak_score": [5.0, 1.0, 3.0], "stale": False,
    ...                   "status": ["confirmed", "dismissed", "open"]})
    >>> s = threshold_summary(q)
    >>> s["precision"], s["threshold"], s["threshold_method"]
    (0.5, 3.0, 'midpoint')
    """
    current = queue[~queue["stale"].astype(bool)]
    # a stale decision was taken on another model's event: this model's event is still open
    counts = {status: int((current["status"] == status).sum()) for status in REVIEW_STATUSES}
    counts["open"] += len(queue) - len(current)
    n_confirmed = int((current["status"] == "confirmed").sum())
    n_dismissed = int((current["status"] == "dismissed").sum())
    decided = n_confirmed + n_dismissed
    threshold, method = None, None
    if "peak_score" in current:
        scores = pd.to_numeric(current["peak_score"], errors="coerce")
        threshold, method = separating_threshold(
            scores[current["status"] == "confirmed"].dropna().to_numpy(dtype=float),
            scores[current["status"] == "dismissed"].dropna().to_numpy(dtype=float),
        )
    return {
        "n_events": len(queue),
        "counts": counts,
        "stale": int(queue["stale"].astype(bool).sum()),
        "precision": n_confirmed / decided if decided else None,
        "threshold": threshold,
        "threshold_method": method,
    }


def separating_threshold(confirmed: np.ndarray, dismissed: np.ndarray) -> tuple[float | None, str | None]:
    """The cut on peak scores that best separates confirmed from dismissed events: the best-F1
    threshold of "confirmed" (:func:`~aeviz_core.metrics.best_f1_threshold`, ties to the highest
    cut), named ``"midpoint"`` when the two do not overlap; ``(None, "inseparable")`` when no cut
    beats flagging every decided event, ``(None, None)`` without both kinds."""
    if confirmed.size == 0 or dismissed.size == 0:
        return None, None
    scores = np.concatenate([confirmed, dismissed])
    cut, _ = best_f1_threshold(scores, np.r_[np.ones(confirmed.size), np.zeros(dismissed.size)])
    if cut < scores.min():  # no cut above the decided events beats flagging them all
        return None, "inseparable"
    return float(cut), "midpoint" if dismissed.max() < confirmed.min() else "max_f1"
