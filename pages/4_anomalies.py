"""Anomalies: choose the threshold rule and value; see the error histogram, the score over
time with flagged events, which sensor drove each event, and the detection numbers.
The anomaly scores are computed once per model and data (cached); moving the threshold only
re-thresholds them, inside a fragment, and never retrains (:mod:`aeviz_app.threshold_view`)."""

import time

import streamlit as st

from aeviz_app import computed as C
from aeviz_app import session as S
from aeviz_app import threshold_view as V


st.title("Anomalies")

ds = S.dataset()
models = S.models_or_stop(ds, what="its anomalies")
entry = S.pick_model(models, key="anomalies.model")
X = S.scoring_input(ds, entry.detector)
scored = V.Scored(entry, ds, X, *C.scores(entry.detector, entry.detector.model_id_, ds.key, X))
labels, eval_mask = S.evaluation_labels(entry, ds)


@st.fragment
def threshold_view():
    started = time.perf_counter()
    try:
        current = V.threshold_controls(scored)
        if current is not None:
            flags = V.headline(scored, current, labels)
            min_gap = (V.flagged_events(scored, current.threshold_, flags, labels) if scored.series
                       else V.flagged_items(scored, flags))
            V.detection_figures(scored, current.threshold_, labels, eval_mask, min_gap)
    finally:
        # the fragment's own time, shown to the user and read by bench/app_speed.py
        st.session_state["anomalies.rerun_s"] = time.perf_counter() - started
    st.caption(f"Re-thresholded and redrawn in {st.session_state['anomalies.rerun_s'] * 1000:.0f} ms "
               "(the scores are cached; nothing is retrained).")


threshold_view()
