"""Operators teach the model, on the Review page: a refit from the queue's decisions (dismissed
events become normal rows, confirmed ones check the new version), run in the background, its
figures beside the current model's on this data, and adopting it as ``NAME v2`` (recorded in
the review store, which carries the decisions over); the versions taught on this data."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from aeviz_core.feedback import queue_decisions

from . import review_views as R
from . import session as S
from . import sign_in as auth
from . import training as T
from .review_desk import STORE_ERRORS, Desk, one_line, reviewer

REFIT = "review.refit_job"  # the RefitJob of this session (one at a time)


def start_refit(parent: S.ModelEntry, detector, X, decisions: pd.DataFrame, fingerprint: str) -> None:
    """Start a refit from ``decisions`` in the background (see :class:`aeviz_app.training.RefitJob`)."""
    who = reviewer("refit", "updating the model", "the new version records who taught it")
    if who is None:
        return
    st.session_state[REFIT] = T.RefitJob(detector, X, decisions, parent=parent, data_fingerprint=fingerprint,
                                         reviewer=who.email).start()


def adopt_refit(store) -> None:
    """Make the finished refit a model of the session (the active one) and record the version in the
    store, which carries this data's decisions to it; recorded as made by who adopts it."""
    state = st.session_state
    job = state.get(REFIT)
    if job is None or job.result is None:
        return
    who = reviewer("adopt", "adopting the model", "the new version records who taught it")
    if who is None:  # nothing adopted: the result stays on the page
        return
    state.pop(REFIT)
    entry = job.entry(state[S.MODELS])
    try:
        carried = store.record_version(entry.detector.model_id_, job.parent.detector.model_id_,
                                       job.data_fingerprint, job.result.decisions,
                                       by=who.email if who.verified else job.reviewer, **who.proof)
    except STORE_ERRORS as exc:
        state[REFIT] = job  # nothing adopted: the result stays on the page
        state["review.flash"] = ("error", f"The new version could not be recorded: {one_line(exc)}")
        return
    S.add_model(entry)
    state["review.model"] = entry.name
    state["review.taught"] = True
    state["review.flash"] = ("success", (
        f"**{entry.name}** adopted: it is the active model on every page, and this data's queue follows it "
        f"with the {carried} decision(s) taken under {job.parent.name}. {job.parent.name} stays in the session."))


def discard_refit() -> None:
    job = st.session_state.pop(REFIT, None)
    if job is not None and not job.done:
        job.stop.set()


def teach(desk: Desk, queue: pd.DataFrame) -> None:
    """*Teach the model*: what a refit from this queue's decisions would use, its progress, then its
    figures beside the current model's on this data and a button to adopt it."""
    state = st.session_state
    job = state.get(REFIT)
    mine = job is not None and job.parent.name == desk.entry.name and job.data_fingerprint == desk.fingerprint
    decisions = queue_decisions(queue)
    n_dismissed = int((decisions["status"] == "dismissed").sum())
    n_confirmed = len(decisions) - n_dismissed
    box = st.expander(f"Teach the model: {len(decisions)} decision(s) to learn from",
                      expanded=mine or st.session_state.get("review.taught", False), icon=":material/school:")
    with box:
        teach_body(desk, job, mine, decisions, n_dismissed, n_confirmed)
        versions_note(desk)


def teach_body(desk: Desk, job, mine: bool, decisions: pd.DataFrame, n_dismissed: int, n_confirmed: int) -> None:
    state = st.session_state
    if desk.det.input_kind_ != "series":
        st.caption("A refit from decisions needs a model trained on a series (a window).")
        return
    if job is not None and not mine:
        st.info(f"A refit of **{job.parent.name}** is {'running' if not job.done else 'waiting to be adopted'} "
                "on other data or another model: open that model's queue to see it.")
        return
    if not mine:
        until = int(decisions["end_row"].max()) + 1 if len(decisions) else 0
        st.markdown(
            f"**{n_dismissed}** dismissed event(s) become normal rows: the model learns them, with the rows "
            f"it did not flag before row {until:,}, and its threshold is fitted anew on them. **{n_confirmed}** "
            "confirmed event(s) stay out of it and check the new version. Open and follow-up events are left "
            f"alone. A fine-tune from **{desk.entry.name}**'s weights (at most "
            f"{desk.det.refine_epochs()} epochs); {desk.entry.name} itself is not changed.")
        if not desk.writes:
            return
        st.button(f"Update the model with {len(decisions)} decision(s)", type="primary", icon=":material/school:",
                  key="review.refit", disabled=not len(decisions),
                  on_click=start_refit, args=(desk.entry, desk.in_use, desk.X, decisions, desk.fingerprint),
                  help="The new version records who taught it.")
        if not len(decisions):
            st.caption("Dismiss or confirm events first: they are what the model learns from.")
        return
    if not job.done:
        st.caption(f"Updating **{desk.entry.name}** with {len(job.decisions)} decision(s)...")
        st.button("Stop", on_click=discard_refit, key="review.refit_stop", icon=":material/stop_circle:")
        bar = st.progress(0.0, text="starting")
        while not job.done:
            done = len(job.history)
            bar.progress(min(done / max(job.epochs, 1), 1.0), text=f"fine-tune: epoch {done}/{job.epochs}")
            time.sleep(0.3)
        st.rerun()
    if job.error:
        st.error(f"The refit failed: {job.error}", icon=":material/error:")
        st.button("Close", on_click=discard_refit, key="review.refit_close")
        return
    result = job.result
    st.markdown(f"**{desk.entry.name}** updated with {result.n_dismissed} dismissed and {result.n_confirmed} "
                f"confirmed event(s): {result.epochs} epoch(s), {result.seconds:.1f} s, learned from "
                f"{result.normal_rows:,} rows before row {result.until:,}. On this data:")
    m1, m2, m3 = st.columns(3)
    m1.metric("Rows flagged", f"{result.flagged_after:.2%}", delta=f"{result.flagged_after - result.flagged_before:+.2%}"
              f" (was {result.flagged_before:.2%})", delta_color="inverse")
    m2.metric("Confirmed events still flagged", f"{result.confirmed_after} of {result.n_confirmed}",
              delta=f"{result.confirmed_after - result.confirmed_before:+d} (was {result.confirmed_before})",
              delta_color="normal")
    if result.dismissed_after is None:
        m3.metric("Dismissed events' rows still flagged", "none dismissed")
    else:
        m3.metric("Dismissed events' rows still flagged", f"{result.dismissed_after:.0%}",
                  delta=f"{result.dismissed_after - result.dismissed_before:+.0%} (was {result.dismissed_before:.0%})",
                  delta_color="inverse")
    if result.widened:
        st.caption(f"The {result.widened_text()}: excursions like theirs on those channels are no longer "
                   "flagged; a confirmed event they alone flag keeps its flag.")
    for warning in result.warnings:
        st.warning(f"{warning[:1].upper()}{warning[1:]}.", icon=":material/warning:")  # it says what to check
    if not auth.allowed("adopt"):
        auth.read_only("adopting a model version", action="adopt", key="review.adopt_sign_in")
        st.button("Discard", key="review.discard", on_click=discard_refit)
        return
    a1, a2, _ = st.columns([2, 1.2, 3])
    a1.button(f"Adopt {job.entry(state[S.MODELS]).name}", type="primary", key="review.adopt",
              on_click=adopt_refit, args=(desk.store,), icon=":material/check_circle:",
              help="The new version joins the session as the active model; the queue keeps its decisions.")
    a2.button("Discard", key="review.discard", on_click=discard_refit)


def versions_note(desk: Desk) -> None:
    """Which model versions refits made on this data, and the decisions each used (the store's record)."""
    try:
        made = desk.store.versions(desk.fingerprint)
    except STORE_ERRORS as exc:
        st.caption(f"The model versions could not be read: {one_line(exc)}")
        return
    if not len(made):
        return
    names = {e.detector.model_id_: n for n, e in st.session_state[S.MODELS].items()}
    lines = []
    for row in made.itertuples():
        used = row.decisions
        kinds = pd.Series([d["status"] for d in used]).value_counts()
        lines.append(f"- **{names.get(row.model_id, row.model_id[:12])}** from "
                     f"{names.get(row.parent_model_id, row.parent_model_id[:12])}, by {R.as_text(row.created_by)} on "
                     f"{row.created_at:%Y-%m-%d %H:%M} UTC: {kinds.get('dismissed', 0)} dismissed and "
                     f"{kinds.get('confirmed', 0)} confirmed event(s) (rows "
                     + ", ".join(f"{d['start_row']}–{d['end_row']}" for d in used[:6]) + ("…" if len(used) > 6 else "")
                     + ")")
    st.caption("Model versions taught on this data:")
    st.markdown("\n".join(lines))

