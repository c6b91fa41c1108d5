"""The Anomalies page's threshold and what it flags: the rule and its value (the model's own, a
percentile, MAD, contamination, false-alarm rate, or a manual score), the headline with the
trust verdict, the flagged events or items, and the detection figures against the labels,
rows and events side by side.

Moving the threshold only re-thresholds the cached scores; nothing is retrained. Widget keys
start with ``anomalies.``; the chosen rule per model is kept in the session
(:data:`~aeviz_app.session.THRESHOLDS`, with the data it was set on in
:data:`~aeviz_app.session.THRESHOLD_DATA`) for the other pages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from aeviz_core import THRESHOLD_RULES, charts, event_metrics, flags_to_events
from aeviz_core.metrics import rates_at

from . import computed as C
from . import event_view as E
from . import session as S

RULE_SLIDERS = {  # rule -> (min, max, step, format)
    "percentile": (50.0, 99.99, 0.01, "%.2f"),
    "mad": (0.5, 30.0, 0.25, "%.2f"),
    "contamination": (0.001, 0.5, 0.001, "%.3f"),
    "far": (0.0005, 0.2, 0.0005, "%.4f"),
}
#: the events table's columns as an operator reads them (the frame keeps its names)
EVENT_COLUMNS = {
    "event_id": st.column_config.TextColumn("event", help="The event's span, first-last row: the same name in "
                                            "the Review queue, its export and the CLI's events file."),
    "kind": st.column_config.TextColumn("kind", help="shift: a change that lasts (at least four windows, a level "
                                        "moved by more than three normal spreads); transient: any other event."),
    "shift": st.column_config.TextColumn("shift", help="The channels whose level moved over the event, by how many "
                                         "normal spreads."),
    "peak_score": st.column_config.NumberColumn("peak score", format="%.4g"),
    "start": st.column_config.NumberColumn("first row"),
    "end": st.column_config.NumberColumn("last row"),
    "n_rows": st.column_config.NumberColumn("rows"),
    "start_time": st.column_config.DatetimeColumn("start"),
    "duration_s": st.column_config.NumberColumn("duration (s)", format="%.0f"),
    "blamed_channel": st.column_config.TextColumn("blamed sensor"),
    "blame_share": st.column_config.ProgressColumn("share of the blame", format="percent", min_value=0, max_value=1),
}


@dataclass
class Scored:
    """A model's scores of the session's data: what every part of the page reads."""

    entry: S.ModelEntry
    ds: S.Dataset
    X: np.ndarray
    scores: np.ndarray
    parts: np.ndarray

    @property
    def det(self):
        return self.entry.detector

    @property
    def series(self) -> bool:
        return not self.ds.is_images

    @property
    def unit(self) -> str:
        return "rows" if self.series else "items"


# --------------------------------------------------------------------------- the threshold


def use_best_f1(value: float) -> None:
    st.session_state["anomalies.rule"] = "manual"
    st.session_state["anomalies.param.manual"] = float(value)


def use_own(entry: S.ModelEntry) -> None:
    """Back to the model's own threshold rule and value."""
    rule = entry.detector.threshold_rule_
    st.session_state["anomalies.rule"] = rule.rule
    st.session_state[f"anomalies.param.{rule.rule}"] = float(rule.param)
    st.session_state.pop(f"anomalies.exact.{rule.rule}", None)
    st.session_state[S.THRESHOLDS].pop(entry.name, None)
    st.session_state.get(S.THRESHOLD_DATA, {}).pop(entry.name, None)


def floor_share(det) -> float:
    """The percentage of held-out scores at their lowest value: every lower percentile gives it."""
    fit = np.asarray(det.fit_errors_, dtype=np.float64)
    return 100 * float(np.mean(fit <= fit.min())) if fit.size else 0.0


def threshold_controls(s: Scored):
    """The rule and value widgets; returns the detector thresholded so (a copy), or None with the
    reason shown when the value cannot be used. Records the choice in the session."""
    state, det = st.session_state, s.det
    rule0, param0 = state[S.THRESHOLDS].get(s.entry.name, (det.threshold_rule_.rule, det.threshold_rule_.param))
    if "anomalies.rule" not in state:
        state["anomalies.rule"] = rule0
    c1, c2, c3 = st.columns([2, 3, 2])
    rule = c1.selectbox("Threshold rule", list(THRESHOLD_RULES), key="anomalies.rule",
                        help="percentile / mad / contamination / far are fitted on the model's held-out "
                             "normal errors; manual is a fixed value.")
    key = f"anomalies.param.{rule}"
    if rule == "manual":
        if key not in state:
            state[key] = float(param0 if rule0 == "manual" else det.threshold_)
        param = c2.number_input(f"Threshold ({S.score_name(det)})", key=key, format="%.5g",
                                min_value=None if np.nanmin(s.scores) < 0 else 0.0)
    else:
        param = rule_slider(c2, det, rule, key, param0 if rule0 == rule else THRESHOLD_RULES[rule]["default"])
    try:
        current = det.with_threshold(rule, param)
    except ValueError as exc:
        st.error(str(exc))
        return None
    remember(s, rule, float(param))
    margin = getattr(current, "threshold_margin_", 1.0)
    c3.metric("Threshold", f"{current.threshold_:.4g}", help=f"Flag when the {S.score_name(det)} is above this." + (
        f" The rule's value on the held-out scores, its distance above their median times {margin:g}: a few "
        "thousand held-out rows do not reach the tail of months of normal rows."
        if margin != 1.0 and rule != "manual" else ""))
    return current


def rule_slider(box, det, rule: str, key: str, start: float) -> float:
    """A fitted rule's slider with an exact value beside it; a percentile slider starts at the share
    of held-out scores at their floor (every lower percentile is that same score)."""
    state = st.session_state
    lo, hi, step, fmt = RULE_SLIDERS[rule]
    floor = floor_share(det) if rule == "percentile" else 0.0
    if floor > lo:
        lo = min(float(np.floor(floor * 100) / 100), 99.0)
        box.caption(f"{floor:.1f}% of the held-out rows score {np.min(det.fit_errors_):.3g} (rebuilt "
                    "within their normal error): lower percentiles would all give that value, so the slider "
                    "starts here.")
    if key not in state:
        state[key] = float(np.clip(start, lo, hi))
    exact = f"anomalies.exact.{rule}"

    def from_exact():
        state[key] = float(np.clip(state[exact], lo, hi))

    s1, s2 = box.columns([3, 1.3], vertical_alignment="bottom")
    param = s1.slider(THRESHOLD_RULES[rule]["label"], lo, hi, step=step, key=key, format=fmt)
    state[exact] = float(param)  # the exact value beside the slider follows it, and sets it
    s2.number_input("exact value", lo, hi, step=step, format=fmt, key=exact, on_change=from_exact,
                    help="Type the value: a drag of a few pixels moves the slider by whole percent.")
    return param


def remember(s: Scored, rule: str, param: float) -> None:
    """Keep the choice for the other pages, with the data it was set on; the model's own is not kept."""
    det, name = s.det, s.entry.name
    chosen, setting_data = st.session_state[S.THRESHOLDS], st.session_state.setdefault(S.THRESHOLD_DATA, {})
    if (rule, param) == (det.threshold_rule_.rule, float(det.threshold_rule_.param)):
        chosen.pop(name, None)
        setting_data.pop(name, None)
        return
    if chosen.get(name) != (rule, param):
        setting_data[name] = s.ds.name  # set now, on this data
    chosen[name] = (rule, param)


def headline(s: Scored, current, labels) -> np.ndarray:
    """Where the threshold comes from, how many are flagged with the trust verdict beside it, and
    the score histogram. Returns the flags."""
    threshold = current.threshold_
    flags = s.scores > threshold
    elsewhere = st.session_state.get(S.THRESHOLD_DATA, {}).get(s.entry.name)
    if current.threshold_rule_.rule == "manual" and elsewhere and elsewhere != s.ds.name:
        st.info(f"This manual threshold ({threshold:.4g}) was set on **{elsewhere}**, not on {s.ds.name}: here it "
                f"flags {np.mean(flags):.1%} of the {s.unit}.", icon=":material/info:")
        st.button("Use the model's own threshold", on_click=use_own, args=(s.entry,), key="anomalies.own")
    origin = S.threshold_line(s.entry, s.ds) if s.entry.dataset_key == s.ds.key else None
    if origin:
        st.caption(origin[0].upper() + origin[1:] + ".")
    n_flag = int(flags.sum())
    E.show_trust_notes(current, s.ds, s.X, s.scores, headline=(
        f"**{n_flag:,}** of {len(flags):,} {s.unit} flagged ({n_flag / max(len(flags), 1):.2%})."))
    st.altair_chart(charts.error_histogram(s.scores, threshold, labels=labels, score_name=S.score_name(s.det)),
                    key="anomalies.hist")
    return flags


# --------------------------------------------------------------------------- what it flags


def flagged_events(s: Scored, threshold: float, flags, labels) -> int:
    """A series: the score over time with its events, the events table (select one) and the selected
    event's detail (:func:`aeviz_app.event_view.show_event`). Returns the merge gap in use."""
    ds, det = s.ds, s.det
    x = ds.time.to_numpy() if ds.time is not None else np.arange(ds.n_items)
    min_gap = S.merge_gap_input(st, s.entry, key="anomalies.min_gap")
    events = E.blamed_events(det, ds.key, s.X, flags_to_events(
        flags, s.scores, channel_errors=s.parts, channel_names=ds.channel_names, time=ds.time, min_gap=int(min_gap)),
        ds.channel_names, limit=E.TABLE_BLAMED)
    st.markdown("**Score over time** (orange: labelled anomalies; red bands: flagged events)")
    st.altair_chart(charts.score_timeline(x, s.scores, threshold, events=events, labels=labels,
                                          score_name=S.score_name(det)), key="anomalies.timeline")
    st.markdown(f"**Flagged events** ({len(events):,}, highest peak first; the sensor to blame for the "
                f"{min(E.TABLE_BLAMED, len(events))} highest here, for any event when selected)")
    table = E.events_for_display(events).head(1000)
    picked = st.dataframe(table, hide_index=True, on_select="rerun", selection_mode="single-row",
                          key="anomalies.events", height=240, column_config=EVENT_COLUMNS,
                          column_order=[c for c in table.columns if c not in ("start", "end")])  # in the name
    if len(table):
        rows = picked.selection.rows if picked is not None else []
        chosen = table.iloc[rows[0] if rows else 0]
        st.markdown(f"**Event {chosen['event_id']}**" + (" (the highest; select another in the table)"
                                                          if not rows else ""))
        E.show_event(det, ds, s.X, s.parts, flags, int(chosen["start"]), int(chosen["end"]), key="anomalies")
    return int(min_gap)


def flagged_items(s: Scored, flags) -> None:
    """Items: the flagged ones, highest first, and the most anomalous above their reconstructions."""
    n_flag = int(flags.sum())
    flagged = np.argsort(-s.scores)[:n_flag]
    st.markdown("**Flagged items** (highest error first)")
    st.dataframe(pd.DataFrame({"item": flagged, "class": np.asarray(s.ds.classes)[flagged],
                               "error": s.scores[flagged]}).head(1000), hide_index=True, height=200)
    if n_flag:
        recon = C.reconstruction(s.det, s.det.model_id_, s.ds.key, s.X)
        top = flagged[:24]
        st.image(charts.image_pairs(s.ds.X[top], recon[top].reshape(s.ds.X[top].shape), ncols=12),
                 caption="The most anomalous items (odd rows) above their reconstructions",
                 clamp=True, width=min(900, 60 * min(12, len(top))))


# --------------------------------------------------------------------------- against the labels


def judged_rows(s: Scored, labels, eval_mask):
    """The labels and scores the figures judge (scored rows of the evaluation period), or None with
    the reason said."""
    if labels is None:
        st.caption("No labels: precision, recall and the ROC/PR curves need labelled anomalies "
                   "(a label column in the data, or normal classes chosen when training on images).")
        return None
    scored = np.isfinite(s.scores)  # the rows of a gap have no score: left out of the figures, said so
    judged = eval_mask & scored
    y = labels[judged]
    if not scored.all():
        st.caption(f"{int((eval_mask & ~scored).sum()):,} rows without a score (gaps in the readings, or the "
                   "first rows of a window) are left out of the figures below.")
    if not len(y) or y.all() or not y.any():
        st.info("The figures need both labelled anomalies and normal rows among the scored rows; "
                f"these {len(y):,} rows hold {'no anomaly' if not y.any() else 'no normal row'}.")
        return None
    if not eval_mask.all():
        st.caption(f"Evaluated on the {int(judged.sum()):,} scored rows after the training period.")
    elif s.series and s.entry.dataset_key == s.ds.key:
        st.caption("Evaluated on every row. The model trained on this file's rows labelled normal, so their "
                   "scores are in-sample; end the training period earlier (Train page) to judge it on rows "
                   "it has not seen.")
    return judged


def detection_figures(s: Scored, threshold: float, labels, eval_mask, min_gap: int | None) -> None:
    """Rows and events side by side (a series), the ROC and PR curves with the threshold in use and
    the best-F1 one marked, and a button to use the best-F1 threshold (said to flatter)."""
    judged = judged_rows(s, labels, eval_mask)
    if judged is None:
        return
    y, sc = labels[judged], s.scores[judged]
    key = f"{s.det.model_id_}:{s.ds.key}:{len(y)}"
    m = {**rates_at(sc > threshold, y), **C.aucs(sc, y, key)}
    rows_box, events_box = (st.columns([7, 4], border=True) if s.series else (st.container(), None))
    rows_box.markdown("**Rows**: each row judged on its own")
    cols = rows_box.columns(4)
    for i, (name, value) in enumerate([("Precision", m["precision"]), ("Recall", m["recall"]),
                                       ("F1", m["f1"]), ("False-alarm rate", m["false_alarm_rate"]),
                                       ("Missed-alarm rate", m["missed_alarm_rate"]),
                                       ("ROC AUC", m["roc_auc"]), ("PR AUC", m["pr_auc"])]):
        cols[i % 4].metric(name, S.fmt(value))
    if s.series:
        event_figures(events_box, s, sc > threshold, sc, y, judged, min_gap)
    roc, pr = C.curves(sc, y, key)
    best_t, best_f = C.best_f1(sc, y, key)
    best = rates_at(sc > best_t, y)
    if len(roc):
        c1, c2 = st.columns(2)
        c1.altair_chart(charts.roc_chart(roc, points={
            "threshold in use": (m["false_alarm_rate"], m["recall"]),
            "best F1": (best["false_alarm_rate"], best["recall"])}), key="anomalies.roc")
        c2.altair_chart(charts.pr_chart(pr, points={
            "threshold in use": (m["recall"], m["precision"]),
            "best F1": (best["recall"], best["precision"])}), key="anomalies.pr")
    share = float(np.mean(sc > best_t))
    st.button(f"Use the best-F1 threshold ({best_t:.4g}, F1 {best_f:.3f}, flags {share:.1%} of these rows)",
              on_click=use_best_f1, args=(best_t,), key="anomalies.best",
              help="The threshold with the best F1 on these labels: it is fitted to the very rows it is "
                   "judged on, so it flatters the model.")
    if share > 0.5:
        st.warning(f"The best-F1 threshold flags {share:.0%} of the rows: on these labels no threshold "
                   "separates anomalies from normal rows well; flagging them all scores about as high. "
                   "Keep a threshold fitted on normal data instead.")


def event_figures(box, s: Scored, flags, scores, y, judged, min_gap: int) -> None:
    """Labelled events found, the share of each one's rows caught, false events and event precision."""
    ev = event_metrics(flags_to_events(flags, scores, min_gap=int(min_gap)), y,
                       time=None if s.ds.time is None else s.ds.time[judged])
    delay = ev["median_delay_rows"]
    box.markdown("**Events**: runs of labelled rows, and the flagged events")
    e1, e2 = box.columns(2)
    e1.metric("Events found", f"{ev['n_detected']} of {ev['n_true_events']}",
              help="Labelled events detected: an event counts when a flagged event overlaps any of its rows.")
    e2.metric("Rows caught", "—" if not np.isfinite(ev["median_caught_share"]) else f"{ev['median_caught_share']:.0%}",
              help="The median over the labelled events of the share of each one's rows inside a flagged "
                   "event (a missed event counts 0): an event 'detected' by one row of a thousand reads 0.1%.")
    e1.metric("False events", f"{ev['n_false_events']:,}",
              help=f"{S.fmt(ev['false_events_per_normal_day'], 2)} per day of normal operation")
    e2.metric("Event precision", S.fmt(ev["event_precision"]))
    shares = ev["caught_shares"]
    box.caption(
        f"{ev['n_pred_events']:,} flagged events; event recall {S.fmt(ev['event_recall'])}, "
        f"F1 {S.fmt(ev['event_f1'])}" + ("" if not np.isfinite(delay) else f"; median delay {delay:.0f} rows")
        + (". Rows caught per labelled event: " + ", ".join(f"{v:.0%}" for v in shares[:12])
           + (" …" if len(shares) > 12 else "") if shares else "") + ".")
