"""Anomalies: choose the threshold rule and value; see the error histogram, the score over
time with flagged events, which sensor drove each event, and the detection numbers.
The anomaly scores are computed once per model and data (cached); moving the threshold only
re-thresholds them, inside a fragment, and never retrains."""

import time

import numpy as np
import pandas as pd
import streamlit as st

from aeviz_app import session as S, computed as C, event_view as E
from aeviz_core.metrics import rates_at
from aeviz_core import THRESHOLD_RULES, charts, event_metrics, flags_to_events

st.title("Anomalies")

ds = S.dataset()
models = S.models_or_stop(ds, what="its anomalies")

entry = S.pick_model(models, key="anomalies.model")
det = entry.detector
X = S.scoring_input(ds, det)
scores, parts = C.scores(det, det.model_id_, ds.key, X)
series = not ds.is_images
# a series' rows are scored by their deviation from normal (residual energy, stillness), not the raw error; items
# fitted without labels by their error and an IsolationForest together (a sum of z-scores, negative for some)
SCORE_NAME = S.score_name(det)
BLAME_AXIS = "share of the blame"
#: the events table's columns as an operator reads them (the frame keeps its names)
EVENT_COLUMN_LABELS = {
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
BLAME_HELP = ("Each channel in turn is replaced by the model's reconstruction over the event; its share is how "
              "much of the event's error that removes. A sensor that stops moving is named by its stillness.")

labels, eval_mask = S.evaluation_labels(entry, ds)
RULE_SLIDERS = {  # rule -> (min, max, step, format)
    "percentile": (50.0, 99.99, 0.01, "%.2f"),
    "mad": (0.5, 30.0, 0.25, "%.2f"),
    "contamination": (0.001, 0.5, 0.001, "%.3f"),
    "far": (0.0005, 0.2, 0.0005, "%.4f"),
}


def use_best_f1(value: float) -> None:
    st.session_state["anomalies.rule"] = "manual"
    st.session_state["anomalies.param.manual"] = float(value)


def use_own() -> None:
    """Back to the model's own threshold rule and value."""
    rule = det.threshold_rule_
    st.session_state["anomalies.rule"] = rule.rule
    st.session_state[f"anomalies.param.{rule.rule}"] = float(rule.param)
    st.session_state.pop(f"anomalies.exact.{rule.rule}", None)
    st.session_state[S.THRESHOLDS].pop(entry.name, None)
    st.session_state.get(S.THRESHOLD_DATA, {}).pop(entry.name, None)


@st.fragment
def threshold_view():
    started = time.perf_counter()
    try:
        _threshold_view()
    finally:
        # the fragment's own time, shown to the user and read by bench/app_speed.py
        st.session_state["anomalies.rerun_s"] = time.perf_counter() - started
    st.caption(f"Re-thresholded and redrawn in {st.session_state['anomalies.rerun_s'] * 1000:.0f} ms "
               "(the scores are cached; nothing is retrained).")


def _threshold_view():
    state = st.session_state
    rule0, param0 = state[S.THRESHOLDS].get(entry.name, (det.threshold_rule_.rule, det.threshold_rule_.param))
    rules = list(THRESHOLD_RULES)
    if "anomalies.rule" not in state:
        state["anomalies.rule"] = rule0
    c1, c2, c3 = st.columns([2, 3, 2])
    rule = c1.selectbox("Threshold rule", rules, key="anomalies.rule",
                        help="percentile / mad / contamination / far are fitted on the model's held-out "
                             "normal errors; manual is a fixed value.")
    key = f"anomalies.param.{rule}"
    if rule == "manual":
        if key not in state:
            state[key] = float(param0 if rule0 == "manual" else det.threshold_)
        param = c2.number_input(f"Threshold ({SCORE_NAME})", min_value=None if np.nanmin(scores) < 0 else 0.0,
                                key=key, format="%.5g")
    else:
        lo, hi, step, fmt = RULE_SLIDERS[rule]
        if rule == "percentile":  # below the share of held-out scores at their floor, every percentile is it
            fit = np.asarray(det.fit_errors_, dtype=np.float64)
            floor_share = 100 * float(np.mean(fit <= fit.min())) if fit.size else 0.0
            if floor_share > lo:
                lo = min(float(np.floor(floor_share * 100) / 100), 99.0)
                c2.caption(f"{floor_share:.1f}% of the held-out rows score {fit.min():.3g} (rebuilt within their "
                           "normal error): lower percentiles would all give that value, so the slider starts here.")
        if key not in state:
            state[key] = float(np.clip(param0 if rule0 == rule else THRESHOLD_RULES[rule]["default"], lo, hi))
        exact = f"anomalies.exact.{rule}"

        def from_exact(key=key, exact=exact, lo=lo, hi=hi):
            state[key] = float(np.clip(state[exact], lo, hi))

        s1, s2 = c2.columns([3, 1.3], vertical_alignment="bottom")
        param = s1.slider(THRESHOLD_RULES[rule]["label"], lo, hi, step=step, key=key, format=fmt)
        state[exact] = float(param)  # the exact value beside the slider follows it, and sets it
        s2.number_input("exact value", lo, hi, step=step, format=fmt, key=exact, on_change=from_exact,
                        help="Type the value: a drag of a few pixels moves the slider by whole percent.")
    try:
        current = det.with_threshold(rule, param)
    except ValueError as exc:
        st.error(str(exc))
        return
    chosen, setting_data = state[S.THRESHOLDS], state.setdefault(S.THRESHOLD_DATA, {})
    if (rule, float(param)) == (det.threshold_rule_.rule, float(det.threshold_rule_.param)):
        chosen.pop(entry.name, None)  # the model's own: nothing set here
        setting_data.pop(entry.name, None)
    else:
        if chosen.get(entry.name) != (rule, float(param)):
            setting_data[entry.name] = ds.name  # set now, on this data
        chosen[entry.name] = (rule, float(param))
    threshold = current.threshold_
    flags = scores > threshold
    margin = getattr(current, "threshold_margin_", 1.0)
    c3.metric("Threshold", f"{threshold:.4g}", help=f"Flag when the {SCORE_NAME} is above this." + (
        f" The rule's value on the held-out scores, its distance above their median times {margin:g}: a few "
        "thousand held-out rows do not reach the tail of months of normal rows."
        if margin != 1.0 and rule != "manual" else ""))

    elsewhere = setting_data.get(entry.name)
    if rule == "manual" and elsewhere and elsewhere != ds.name:  # a fixed score set for another file: say so
        st.info(f"This manual threshold ({threshold:.4g}) was set on **{elsewhere}**, not on {ds.name}: here it "
                f"flags {np.mean(scores > threshold):.1%} of the {'rows' if series else 'items'}.",
                icon=":material/info:")
        st.button("Use the model's own threshold", on_click=use_own, key="anomalies.own")
    origin = S.threshold_line(entry, ds) if entry.dataset_key == ds.key else None
    if origin:
        st.caption(origin[0].upper() + origin[1:] + ".")
    n_flag = int(flags.sum())
    E.show_trust_notes(current, ds, X, scores, headline=(
        f"**{n_flag:,}** of {len(flags):,} {'rows' if series else 'items'} flagged ({n_flag / max(len(flags), 1):.2%})."))
    st.altair_chart(charts.error_histogram(scores, threshold, labels=labels, score_name=SCORE_NAME), key="anomalies.hist")

    if series:
        x = ds.time.to_numpy() if ds.time is not None else np.arange(ds.n_items)
        min_gap = S.merge_gap_input(st, entry, key="anomalies.min_gap")
        events = E.blamed_events(det, ds.key, X, flags_to_events(
            flags, scores, channel_errors=parts, channel_names=ds.channel_names, time=ds.time, min_gap=int(min_gap)),
            ds.channel_names, limit=E.TABLE_BLAMED)
        st.markdown("**Score over time** (orange: labelled anomalies; red bands: flagged events)")
        st.altair_chart(charts.score_timeline(x, scores, threshold, events=events, labels=labels,
                                              score_name=SCORE_NAME),
                        key="anomalies.timeline")
        st.markdown(f"**Flagged events** ({len(events):,}, highest peak first; the sensor to blame for the "
                    f"{min(E.TABLE_BLAMED, len(events))} highest here, for any event when selected)")
        table = E.events_for_display(events).head(1000)
        picked = st.dataframe(table, hide_index=True, on_select="rerun", selection_mode="single-row",
                              key="anomalies.events", height=240, column_config=EVENT_COLUMN_LABELS,
                              column_order=[c for c in table.columns if c not in ("start", "end")])  # in the name
        if len(table):
            rows = picked.selection.rows if picked is not None else []
            chosen = table.iloc[rows[0] if rows else 0]
            lo, hi = int(chosen["start"]), int(chosen["end"])
            share = E.event_blame(det, ds.key, X, lo, hi, parts)
            c1, c2 = st.columns([2, 3])
            blamed = getattr(det, "input_kind_", None) == "series"
            c1.altair_chart(charts.contributions_chart(
                ds.channel_names, share, title=f"event {chosen['event_id']} (rows)",
                axis_title=BLAME_AXIS if blamed else "share of the event's error"), key="anomalies.contrib")
            if blamed:
                c1.caption(BLAME_HELP)
            recon = C.reconstruction(det, det.model_id_, ds.key, X)
            pad = max(int(det.window or 10), 10)
            context = np.arange(max(0, lo - pad), min(ds.n_items, hi + pad + 1))
            top = np.argsort(-share)[:3]
            frame = E.event_overlay_frame(x, ds.sensor.channels.iloc[:, top], recon[:, top], context,
                                    x_name="time" if ds.time is not None else "row")
            c2.caption("The three sensors most to blame: actual (solid) and reconstruction (dashed)")
            c2.altair_chart(charts.window_overlay(frame, x="time" if ds.time is not None else "row", width=360),
                            key="anomalies.event_overlay")
    else:
        order = np.argsort(-scores)
        flagged_idx = order[: n_flag]
        st.markdown("**Flagged items** (highest error first)")
        table = pd.DataFrame({"item": flagged_idx, "class": np.asarray(ds.classes)[flagged_idx],
                              "error": scores[flagged_idx]})
        st.dataframe(table.head(1000), hide_index=True, height=200)
        if n_flag:
            recon = C.reconstruction(det, det.model_id_, ds.key, X)
            top = flagged_idx[:24]
            st.image(charts.image_pairs(ds.X[top], recon[top].reshape(ds.X[top].shape), ncols=12),
                     caption="The most anomalous items (odd rows) above their reconstructions",
                     clamp=True, width=min(900, 60 * min(12, len(top))))

    # ---------------------------------------------------------------- detection numbers
    if labels is None:
        st.caption("No labels: precision, recall and the ROC/PR curves need labelled anomalies "
                   "(a label column in the data, or normal classes chosen when training on images).")
        return
    scored = np.isfinite(scores)  # the rows of a gap have no score: left out of the figures, said so
    judged = eval_mask & scored
    y, s = labels[judged], scores[judged]
    if not scored.all():
        st.caption(f"{int((eval_mask & ~scored).sum()):,} rows without a score (gaps in the readings, or the "
                   "first rows of a window) are left out of the figures below.")
    if not len(y) or y.all() or not y.any():
        st.info("The figures need both labelled anomalies and normal rows among the scored rows; "
                f"these {len(y):,} rows hold {'no anomaly' if not y.any() else 'no normal row'}.")
        return
    if not eval_mask.all():
        st.caption(f"Evaluated on the {int(judged.sum()):,} scored rows after the training period.")
    elif series and entry.dataset_key == ds.key:
        st.caption("Evaluated on every row. The model trained on this file's rows labelled normal, so their "
                   "scores are in-sample; end the training period earlier (Train page) to judge it on rows "
                   "it has not seen.")
    m = {**rates_at(s > threshold, y), **C.aucs(s, y, curve_key(y))}
    rows_box, events_box = (st.columns([7, 4], border=True) if series else (st.container(), None))
    rows_box.markdown("**Rows**: each row judged on its own")
    cols = rows_box.columns(4)
    for i, (name, value) in enumerate([("Precision", m["precision"]), ("Recall", m["recall"]),
                                       ("F1", m["f1"]), ("False-alarm rate", m["false_alarm_rate"]),
                                       ("Missed-alarm rate", m["missed_alarm_rate"]),
                                       ("ROC AUC", m["roc_auc"]), ("PR AUC", m["pr_auc"])]):
        cols[i % 4].metric(name, S.fmt(value))
    if series:
        ev_m = event_metrics(flags_to_events(flags[judged], s, min_gap=int(min_gap)), y,
                             time=None if ds.time is None else ds.time[judged])
        delay = ev_m["median_delay_rows"]
        events_box.markdown("**Events**: runs of labelled rows, and the flagged events")
        e1, e2 = events_box.columns(2)
        e1.metric("Events found", f"{ev_m['n_detected']} of {ev_m['n_true_events']}",
                  help="Labelled events detected: an event counts when a flagged event overlaps any of its rows.")
        e2.metric("Rows caught", "—" if not np.isfinite(ev_m["median_caught_share"])
                  else f"{ev_m['median_caught_share']:.0%}",
                  help="The median over the labelled events of the share of each one's rows inside a flagged "
                       "event (a missed event counts 0): an event 'detected' by one row of a thousand reads 0.1%.")
        e1.metric("False events", f"{ev_m['n_false_events']:,}",
                  help=f"{S.fmt(ev_m['false_events_per_normal_day'], 2)} per day of normal operation")
        e2.metric("Event precision", S.fmt(ev_m["event_precision"]))
        shares = ev_m["caught_shares"]
        events_box.caption(
            f"{ev_m['n_pred_events']:,} flagged events; event recall {S.fmt(ev_m['event_recall'])}, "
            f"F1 {S.fmt(ev_m['event_f1'])}" + ("" if not np.isfinite(delay) else f"; median delay {delay:.0f} rows")
            + (". Rows caught per labelled event: " + ", ".join(f"{v:.0%}" for v in shares[:12])
               + (" …" if len(shares) > 12 else "") if shares else "") + ".")
    roc, pr = C.curves(s, y, curve_key(y))
    best_t, best_f = C.best_f1(s, y, curve_key(y))
    best = rates_at(s > best_t, y)
    if len(roc):
        c1, c2 = st.columns(2)
        c1.altair_chart(charts.roc_chart(roc, points={
            "threshold in use": (m["false_alarm_rate"], m["recall"]),
            "best F1": (best["false_alarm_rate"], best["recall"])}), key="anomalies.roc")
        c2.altair_chart(charts.pr_chart(pr, points={
            "threshold in use": (m["recall"], m["precision"]),
            "best F1": (best["recall"], best["precision"])}), key="anomalies.pr")
    share = float(np.mean(s > best_t))
    st.button(f"Use the best-F1 threshold ({best_t:.4g}, F1 {best_f:.3f}, flags {share:.1%} of these rows)",
              on_click=use_best_f1, args=(best_t,), key="anomalies.best",
              help="The threshold with the best F1 on these labels: it is fitted to the very rows it is "
                   "judged on, so it flatters the model.")
    if share > 0.5:
        st.warning(f"The best-F1 threshold flags {share:.0%} of the rows: on these labels no threshold "
                   "separates anomalies from normal rows well; flagging them all scores about as high. "
                   "Keep a threshold fitted on normal data instead.")


def curve_key(y) -> str:
    return f"{det.model_id_}:{ds.key}:{len(y)}"


threshold_view()

