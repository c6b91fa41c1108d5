"""Review: go through the flagged events one at a time and record a decision on each
(a real anomaly, a false alarm, needs follow-up) with a note and the reviewer's name.

Decisions live in the review store (:class:`aeviz_core.ReviewStore`: an SQLite file
by default, any SQLAlchemy URL from ``[connections.reviews]`` in the secrets or
``$AEVIZ_DB_URL``), keyed by model, data and span, so they are found again on the
next visit. The queue is read from the store on every run, never from a cache;
only the store object (an engine) is cached, per URL.

Besides its widgets (``review.*``), the page keeps in the session:
``review.queue_id`` (the model and data whose queue is open: a new one opens at
its first open event), ``review.queue_model`` and ``review.switched`` (the model whose queue it was, and the
notice shown when the same data's queue passes to another model, until the first
decision), ``review.position`` (where the open event sat in the queue, so that the next one
takes over when it leaves a filtered queue), ``review.recorded`` (the event lists
already written to the store), ``review.flash`` (the outcome of the last save,
shown once) and ``review.name`` (the reviewer's name, kept across pages).

Each decision carries tags (common ones and the operator's own) and each event a
comment thread, both in the store; the queue filters and exports by tag.

Who decides: with sign-in on (``[auth]`` in the secrets), every write (a decision, applying a
similar one, a comment, teaching the model, adopting it) is made by the signed-in user of
``st.user``, read when the write happens, and needs a role (``[aeviz] reviewers``); others see
the page read-only. Without sign-in, the name typed in ``review.reviewer`` decides, unchecked and
stored as unverified.
"""

import time
from functools import partial

import numpy as np
import pandas as pd
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from aeviz_app import session as S, sign_in as auth, training as T, computed as C, event_view as E, review_views as R
from aeviz_core import (
    REVIEW_STATUSES,
    ReviewConflictError,
    ReviewStore,
    charts,
    flags_to_events,
    resolve_db_url,
)
from aeviz_core.access import AccessDenied, Identity
from aeviz_core.explain import LIKE_DISTANCE, like_decided, nearest_events, nearest_signatures
from aeviz_core.feedback import queue_decisions
from aeviz_core.reviews import parse_tags

STORE_ERRORS = (SQLAlchemyError, RuntimeError, ValueError, OSError, ImportError)


@st.cache_resource(show_spinner="Opening the review store...", max_entries=4)
def review_store(url: str) -> ReviewStore:
    """One store per database URL, shared by every session: it holds an engine, no data."""
    return ReviewStore(url)


@st.cache_data(show_spinner=False, ttl=120, max_entries=8)
def earlier_looks(_store: ReviewStore, url: str, fingerprint: str) -> pd.DataFrame:
    """The decided events of other data with their looks (:meth:`ReviewStore.decided_signatures`),
    read at most every two minutes: this data's decisions never change it, and a read of 10,000
    of them takes 0.1-0.3 s, a third of a decision's budget."""
    return _store.decided_signatures(exclude_fingerprint=fingerprint)


@st.cache_data(show_spinner=False, max_entries=8)
def data_fingerprint(_sensor, data_key: str) -> str:
    """The full fingerprint that keys reviews (``SensorData.fingerprint``), once per data set."""
    return _sensor.fingerprint()


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- callbacks


def open_event(key) -> None:
    if key is not None:
        st.session_state["review.open"] = key


def open_clicked_row(table_key: str, keys: list) -> None:
    rows = st.session_state[table_key]["selection"]["rows"]
    if rows and rows[0] < len(keys):
        st.session_state["review.open"] = keys[rows[0]]


def reviewer(action: str, before: str = "saving",
             why: str = "every decision is recorded with who took it") -> Identity | None:
    """Who does ``action`` now (:func:`aeviz_app.sign_in.writer`: the signed-in user with sign-in on,
    else the name typed, kept across pages), or None with the reason for ``review.flash``:
    nothing may be written then."""
    state = st.session_state
    try:
        who = auth.writer(action, typed=str(state.get("review.reviewer", "")))
    except AccessDenied as exc:
        state["review.flash"] = ("warning", f"Nothing was saved: {R.as_text(str(exc))}.")
        return None
    if not who.verified and not who.email:
        state["review.flash"] = ("warning", f"Enter your name before {before}: {why}.")
        return None
    if not auth.sign_in_on():
        state["review.name"] = who.email
    return who


def save_review(store, model_id: str, fingerprint: str, key: str, version: int, status: str,
                next_key) -> None:
    """Write the decision taken on the open event with its note and tags."""
    state = st.session_state
    tags = state.get(f"review.tags.{key}.{version}")
    decide(store, model_id, fingerprint, key, version, status, next_key,
           note=str(state.get(f"review.note.{key}.{version}", "")).strip(),
           tags=None if tags is None else list(tags), action="decide")


def apply_decision(store, model_id: str, fingerprint: str, key: str, version: int, like: dict,
                   next_key) -> None:
    """Give the open event the decision and tags of a similar one (``like``: its row of the
    queue, or of the decided events of earlier data); the note says where it came from."""
    source = f"as rows {int(like['start'])}–{int(like['end'])}"
    if like.get("data_name"):
        source += f" of {like['data_name']}"
    decide(store, model_id, fingerprint, key, version, like["status"], next_key,
           note=f"{source}: {like['note']}" if like["note"] else source,
           tags=list(parse_tags(like["tags"])), source=source, action="apply")


def decide(store, model_id: str, fingerprint: str, key: str, version: int, status: str, next_key, *,
           note: str, tags: list | None, source: str = "", action: str = "decide") -> None:
    """Write a decision on the open event (``version``: the one the page showed), then open the
    next one; the outcome goes to ``review.flash``. Nothing is written unless the session may do
    ``action`` now (:func:`reviewer`)."""
    state = st.session_state
    who = reviewer(action)
    if who is None:
        return
    name = who.email
    start, end = R.parse_event_key(key)
    try:
        saved = store.set_review(model_id, fingerprint, start, end, status, reviewer=name, note=note,
                                 tags=tags, expected_version=version, **who.proof)
    except ReviewConflictError as exc:
        now = exc.current
        when = "" if now.reviewed_at is None else f" at {now.reviewed_at:%H:%M:%S} UTC"
        if now.reviewer == name and now.status == status:  # a second click on the same decision
            state["review.flash"] = ("success", (f"Rows {start}–{end} were already saved as "
                                                 f"**{R.STATUS_LABELS[status]}** by you{when}."))
            return
        state["review.flash"] = ("warning", (
            f"Not saved: **{now.reviewer}** changed this event to "
            f"**{R.STATUS_LABELS.get(now.status, now.status)}**{when} while you had it open. "
            "It is reloaded below with their decision: save again if you still disagree."))
        return
    except STORE_ERRORS as exc:
        state["review.flash"] = ("error", f"The review could not be saved: {one_line(exc)}")
        return
    state.pop("review.switched", None)
    tagged = f", tagged {', '.join(saved.tags)}" if saved.tags else ""
    state["review.flash"] = ("success", (f"Rows {start}–{end}: **{R.STATUS_LABELS[status]}**"
                                         f"{' ' + R.as_text(source) if source else ''}{R.as_text(tagged)}, saved by "
                                         f"{R.as_text(name)} "
                                         f"(version {saved.version})."))
    if state.get("review.advance", True) and next_key is not None:
        state["review.open"] = next_key


def post_comment(store, model_id: str, fingerprint: str, key: str) -> None:
    """Append the comment typed under the open event to its thread; the outcome goes to
    ``review.flash``."""
    state = st.session_state
    body = str(state.get("review.comment", "")).strip()
    who = reviewer("comment", "commenting", "every comment is signed")
    if who is None:
        return
    name = who.email
    if not body:
        state["review.flash"] = ("warning", "The comment is empty: type it above *Post comment*.")
        return
    start, end = R.parse_event_key(key)
    try:
        store.add_comment(model_id, fingerprint, start, end, author=name, body=body, **who.proof)
    except STORE_ERRORS as exc:
        state["review.flash"] = ("error", f"The comment could not be saved: {one_line(exc)}")
        return
    state["review.comment"] = ""  # posted: the box empties (the text stays when it failed)
    state["review.flash"] = ("success", f"Comment on rows {start}–{end} posted by {R.as_text(name)}.")


# --------------------------------------------------------------------------- teaching the model

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


def teach(queue: pd.DataFrame) -> None:
    """*Teach the model*: what a refit from this queue's decisions would use, its progress, then its
    figures beside the current model's on this data and a button to adopt it."""
    state = st.session_state
    job = state.get(REFIT)
    mine = job is not None and job.parent.name == entry.name and job.data_fingerprint == fingerprint
    decisions = queue_decisions(queue)
    n_dismissed = int((decisions["status"] == "dismissed").sum())
    n_confirmed = len(decisions) - n_dismissed
    box = st.expander(f"Teach the model: {len(decisions)} decision(s) to learn from",
                      expanded=mine or st.session_state.get("review.taught", False), icon=":material/school:")
    with box:
        teach_body(job, mine, decisions, n_dismissed, n_confirmed)
        versions_note()


def teach_body(job, mine: bool, decisions: pd.DataFrame, n_dismissed: int, n_confirmed: int) -> None:
    state = st.session_state
    if det.input_kind_ != "series":
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
            f"alone. A fine-tune from **{entry.name}**'s weights (at most "
            f"{det.refine_epochs()} epochs); {entry.name} itself is not changed.")
        if not writes:
            return
        st.button(f"Update the model with {len(decisions)} decision(s)", type="primary", icon=":material/school:",
                  key="review.refit", disabled=not len(decisions),
                  on_click=start_refit, args=(entry, in_use, X, decisions, fingerprint),
                  help="The new version records who taught it.")
        if not len(decisions):
            st.caption("Dismiss or confirm events first: they are what the model learns from.")
        return
    if not job.done:
        st.caption(f"Updating **{entry.name}** with {len(job.decisions)} decision(s)...")
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
    st.markdown(f"**{entry.name}** updated with {result.n_dismissed} dismissed and {result.n_confirmed} "
                f"confirmed event(s): {result.epochs} epoch(s), {result.seconds:.1f} s, learned from "
                f"{result.normal_rows:,} rows before row {result.until:,}. On this data:")
    m1, m2, m3 = st.columns(3)
    m1.metric("Rows flagged", f"{result.flagged_after:.2%}", delta=f"{result.flagged_after - result.flagged_before:+.2%}"
              f" (was {result.flagged_before:.2%})", delta_color="inverse")
    m2.metric("Confirmed events still flagged", f"{result.confirmed_after} of {result.n_confirmed}",
              delta=f"{result.confirmed_after - result.confirmed_before:+d} (was {result.confirmed_before})",
              delta_color="normal")
    m3.metric("Dismissed events' rows still flagged", f"{result.dismissed_after:.0%}",
              delta=f"{result.dismissed_after - result.dismissed_before:+.0%} (was {result.dismissed_before:.0%})",
              delta_color="inverse")
    for warning in result.warnings:
        st.warning(f"Before adopting it: {warning}.", icon=":material/warning:")
    if not auth.allowed("adopt"):
        auth.read_only("adopting a model version", action="adopt", key="review.adopt_sign_in")
        st.button("Discard", key="review.discard", on_click=discard_refit)
        return
    a1, a2, _ = st.columns([2, 1.2, 3])
    a1.button(f"Adopt {job.entry(state[S.MODELS]).name}", type="primary", key="review.adopt",
              on_click=adopt_refit, args=(store,), icon=":material/check_circle:",
              help="The new version joins the session as the active model; the queue keeps its decisions.")
    a2.button("Discard", key="review.discard", on_click=discard_refit)


def versions_note() -> None:
    """Which model versions refits made on this data, and the decisions each used (the store's record)."""
    try:
        made = store.versions(fingerprint)
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


# --------------------------------------------------------------------------- page

st.title("Review")

ds = S.dataset()
if ds.is_images:
    st.info(f"Reviews are kept for events flagged in sensor data; **{R.as_text(ds.name)}** holds images. "
            "Choose the pump station sample or upload a sensor table on the Data page.",
            icon=":material/fact_check:")
    st.page_link("pages/1_data.py", label="Go to Data", icon=":material/arrow_forward:")
    S.stop()
models = S.models_or_stop(ds, what="flagged events to review")

try:
    store = review_store(resolve_db_url(secrets=st.secrets))
except STORE_ERRORS as exc:
    st.error(f"Cannot open the review store: {one_line(exc)}. Check `[connections.reviews] url` in "
             "`.streamlit/secrets.toml` or `$AEVIZ_DB_URL`.", icon=":material/database:")
    S.stop()
# whether to draw the writing widgets; each write asks again, with st.user as it is then
writes = auth.allowed("decide")
sign_in = auth.sign_in_on()

c1, c2 = st.columns([4, 1])
with c1:
    entry = S.pick_model(models, key="review.model")
det = entry.detector  # computations use the shared model; the threshold comes from the session
in_use = S.thresholded(entry)  # the threshold set on the Anomalies page, else the model's own
threshold, rule = float(in_use.threshold_), in_use.threshold_rule_
min_gap = S.merge_gap_input(c2, entry, key="review.min_gap")

X = S.scoring_input(ds, det)
scores, parts = C.scores(det, det.model_id_, ds.key, X)
flags = scores > threshold
events = flags_to_events(flags, scores, channel_errors=parts, channel_names=ds.channel_names,
                         time=ds.time, min_gap=int(min_gap))
events = E.blamed_events(det, ds.key, X, events, ds.channel_names)  # the queue names the blamed sensor
model_id, fingerprint = det.model_id_, data_fingerprint(ds.sensor, ds.key)
chosen = S.threshold_source(entry, ds)
st.caption(f"**{len(events):,}** flagged events at threshold {threshold:.4g} ({rule.rule} {rule.param:g}, "
           f"{chosen}). Decisions are stored in `{store.url}`, keyed by model `{model_id[:12]}` and the data.")
E.show_trust_notes(in_use, ds, X, scores)
if not len(events):
    st.success("Nothing is flagged at this threshold: there is nothing to review.", icon=":material/check:")
    S.stop()

flash = st.session_state.pop("review.flash", None)
if flash is not None:  # at the top, and as a toast where the operator is looking (by the buttons)
    {"success": st.success, "warning": st.warning, "error": st.error}[flash[0]](flash[1])
    st.toast(flash[1], icon={"success": ":material/check_circle:", "warning": ":material/warning:",
                             "error": ":material/error:"}[flash[0]])
switched = st.container()  # a notice when this data's queue changed model (filled below)
summary_box = st.container()  # filled once the queue is read, below its controls

st.subheader("Queue", divider="gray")
q1, q2 = st.columns([5, 3.2], vertical_alignment="bottom")
statuses = q1.pills("Show", REVIEW_STATUSES, selection_mode="multi", default=list(REVIEW_STATUSES),
                    format_func=R.STATUS_LABELS.get, key="review.statuses")
sort = q2.segmented_control("Order", ["score", "time", "like"], default="score", required=True, key="review.sort",
                            format_func={"score": "highest score", "time": "oldest first",
                                         "like": "like a dismissed one"}.get,
                            help="*Like a dismissed one*: the events whose look is closest to an event dismissed "
                                 "here or in earlier data first. A hint for the reviewer: nothing is dismissed "
                                 "automatically.")
try:
    recorded = st.session_state.setdefault("review.recorded", set())
    batch = (store.url, model_id, fingerprint, threshold, int(min_gap))
    if writes and batch not in recorded:  # a read-only session writes nothing, not even the events
        store.upsert_events(model_id, fingerprint, events)
        recorded.add(batch)
    queue = store.queue(model_id, fingerprint, events, sort="time" if sort == "like" else sort)  # read fresh
    known_tags = store.known_tags(fingerprint)
except STORE_ERRORS as exc:
    st.error(f"Cannot read the reviews: {one_line(exc)}", icon=":material/database:")
    S.stop()


def earlier_looks_or_none(spans: tuple, signatures) -> pd.DataFrame:
    """The decided events of earlier data with their looks; this event list's looks are kept in the
    store once per session, for the data that comes later."""
    kept = (model_id, fingerprint, spans)
    try:
        if writes and st.session_state.get("review.looks_kept") != kept:
            store.record_signatures(model_id, fingerprint, signatures, data_name=ds.name)
            st.session_state["review.looks_kept"] = kept
        return earlier_looks(store, store.url, fingerprint)
    except STORE_ERRORS as exc:
        st.caption(f"Earlier data's decisions could not be read: {one_line(exc)}")
        return pd.DataFrame()


signatures = past_looks = None
if det.input_kind_ == "series" and len(queue):
    spans = tuple(sorted(zip(queue["start"].astype(int), queue["end"].astype(int), strict=True)))
    signatures = E.event_signatures(det, det.model_id_, ds.key, X, spans)  # once per event list
    past_looks = earlier_looks_or_none(spans, signatures)
    # an event like one dismissed here (this model's decisions) or in earlier data: a hint in the queue
    own = queue[(queue["status"] == "dismissed") & ~queue["stale"]][["start", "end", "status", "reviewer", "tags"]]
    here = own.astype({"start": np.int64, "end": np.int64}).merge(
        signatures.astype({"start": np.int64, "end": np.int64}), on=["start", "end"]).assign(here=True,
                                                                                             data_name="this data")
    pool = pd.concat([here, past_looks.assign(here=False)], ignore_index=True) if len(past_looks) else here
    likes = pd.concat([signatures[["start", "end"]], like_decided(signatures, pool)], axis=1)
    queue = R.with_likes(queue, likes)
    if sort == "like":
        queue = R.like_first(queue)
listed, liked, tagged, exports = st.columns([2.6, 1.6, 2.1, 2.1], vertical_alignment="bottom")
like_only = liked.toggle("Like a dismissed one", key="review.like_only", disabled="like" not in queue,
                         help="Only the events whose look is close to an event dismissed here or in earlier data "
                              "(the queue's last column says which).")
tag = tagged.selectbox("Tag", known_tags, index=None, placeholder="filter by tag", key="review.tag",
                       help="Show (and export) only the events tagged so.", label_visibility="collapsed")
shown = R.filter_queue(queue, statuses, tag, like_only=like_only)
try:
    threads = store.comment_threads(fingerprint)
except STORE_ERRORS as exc:
    threads = {}
    st.caption(f"The comments could not be read for the export: {one_line(exc)}")
shown = shown.assign(event=np.arange(1, len(shown) + 1))  # numbered as the page counts them: "Event 1 of N"
exports.download_button(f"Export {len(shown):,} (CSV)",
                   ReviewStore.export_csv(shown.rename(columns={"start": "start_row", "end": "end_row"}).assign(
                       status=shown["status"].map(R.STATUS_LABELS), model=entry.name, model_id=model_id,
                       data_fingerprint=fingerprint,
                       comment_text=[threads.get((int(a), int(b)), "") for a, b in zip(shown["start"], shown["end"],
                                                                                       strict=True)])),
                   file_name=R.export_name(entry.name, ds.name, tag),
                   mime="text/csv", key="review.export", on_click="ignore", icon=":material/download:",
                   help="The events shown (the statuses and tag chosen) with their reviews: status, tags, "
                        "note, reviewer, time, the comments (their number and text).")

# ---------------------------------------------------------------- what the reviews say
summary = ReviewStore.threshold_summary(queue)
counts = summary["counts"]
with summary_box:
    cols = st.columns(6)
    cols[0].metric("Events", f"{summary['n_events']:,}")
    for col, status in zip(cols[1:5], REVIEW_STATUSES, strict=True):
        col.metric(R.STATUS_LABELS[status].capitalize(), f"{counts[status]:,}",
                   help=(f"{summary['stale']:,} of them show a decision taken under another model (stale)"
                         if status == "open" and summary["stale"] else None))
    cols[5].metric("Precision", "—" if summary["precision"] is None else f"{summary['precision']:.0%}",
                   help="Of the flags: confirmed / (confirmed + dismissed), decisions under this model only.")
    a1, a2 = st.columns([2, 3])
    a1.metric("Suggested threshold", S.fmt(summary["threshold"], 4),
              delta=None if summary["threshold"] is None else f"{summary['threshold'] - threshold:+.3g} "
                                                              "from the one in use",
              delta_color="off", help="Separates the peak scores of confirmed events from dismissed ones.")
    a1.markdown(R.threshold_advice(summary, threshold))
    a2.altair_chart(R.review_scores_chart(queue, threshold, summary["threshold"]), key="review.scores")

teach(queue)  # the decisions teach the model: a refit, its figures, adopting it

keys = [R.event_key(s, e) for s, e in zip(shown["start"], shown["end"], strict=True)]
listed.caption(f"{len(shown):,} of {len(queue):,} events shown. Click a row to open it.")
if not keys:
    st.info("No event has the statuses chosen under *Show*" + (f" and the tag *{tag}*." if tag else "."))
    S.stop()
previous = st.session_state.get("review.queue_id")
if previous != (model_id, fingerprint):  # another model or data: start over
    if previous is not None and previous[1] == fingerprint:  # the same data under another model: say so
        st.session_state["review.switched"] = (
            f"This is now **{entry.name}**'s queue (it was **{st.session_state.get('review.queue_model', '?')}**'s). "
            "Another model flags other spans, so the decisions taken under the earlier one show as *stale* "
            "here, and are not counted above, until they are taken again.")
    st.session_state["review.queue_id"] = (model_id, fingerprint)
    st.session_state["review.queue_model"] = entry.name
    st.session_state["review.open"] = R.first_open(shown)
    st.session_state["review.position"] = 0
if "review.switched" in st.session_state:  # until the first decision under the new model
    switched.info(st.session_state["review.switched"], icon=":material/swap_horiz:")
current, position = R.pick_current(keys, st.session_state.get("review.open"),
                                   st.session_state.get("review.position", 0))
st.session_state["review.open"] = current  # before the picker is drawn: it follows the queue
st.session_state["review.position"] = position
table_key = f"review.table.{current}"  # a new table per open event, its row selected
st.dataframe(R.queue_table(shown), hide_index=True, key=table_key, height=min(38 + 35 * len(shown), 282),
             on_select=partial(open_clicked_row, table_key, keys), selection_mode="single-row",
             selection_default={"selection": {"rows": [position]}},
             column_config={"event": st.column_config.NumberColumn(width=50),
                            "status": st.column_config.TextColumn(width=140),
                            "blamed sensor": st.column_config.TextColumn(
                                width=130, help="the sensor to blame (its share of the event)"),
                            "start": st.column_config.TextColumn(width=140),
                            "duration": st.column_config.TextColumn(width=75),
                            "tags": st.column_config.TextColumn(width=120),
                            "comments": st.column_config.NumberColumn(width=40, help="comments on the event"),
                            "peak score": st.column_config.NumberColumn(format="%.4g", width=75),
                            "reviewer": st.column_config.TextColumn(width=80),
                            "note": st.column_config.TextColumn(width=200),
                            "rows": st.column_config.TextColumn(width=100),
                            "like a dismissed event": st.column_config.TextColumn(
                                width=260, help="The decided event whose look is closest (within "
                                                f"{LIKE_DISTANCE:g}): a hint, never a decision.")})

# ---------------------------------------------------------------- the open event
row = shown.iloc[position]
start, end = R.parse_event_key(current)
prev_key, next_key = R.neighbour(keys, current, -1), R.neighbour(keys, current, 1)
labels = {k: R.event_label(r) for k, (_, r) in zip(keys, shown.iterrows(), strict=True)}
st.subheader(f"Event {position + 1} of {len(keys)}", divider="gray")
n1, n2, n3 = st.columns([1.3, 5.4, 1.3], vertical_alignment="bottom")
n1.button("Previous", icon=":material/arrow_back:", on_click=open_event, args=(prev_key,),
          disabled=prev_key is None, key="review.prev", width="stretch", shortcut="K")
n2.selectbox("Open event", keys, format_func=labels.get, key="review.open", label_visibility="collapsed")
n3.button("Next", icon=":material/arrow_forward:", on_click=open_event, args=(next_key,),
          disabled=next_key is None, key="review.next", width="stretch", shortcut="J")

if ds.time is not None:
    span_text = (f"**{row['start_time']:%Y-%m-%d %H:%M:%S} → {row['end_time']:%H:%M:%S}** "
                 f"({R.format_seconds(row['duration_s'])}, rows {start}–{end})")
else:
    span_text = f"**rows {start}–{end}** ({R.format_duration(None, int(row['n_rows']))})"
share = E.event_blame(det, ds.key, X, start, end, parts)
order = [ds.channel_names[j] for j in np.argsort(-share)]
st.markdown(f"{span_text} · peak score **{row['peak_score']:.4g}** (threshold {threshold:.4g}) · "
            f"to blame: **{order[0]}** ({share.max() / max(share.sum(), 1e-12):.0%}), then "
            f"{', '.join(order[1:3])}")
status = R.STATUS_LABELS[row["status"]]
if row["stale"]:
    carried = str(row["review_model_id"]) == model_id  # taken under the model this version was taught from
    st.warning(f"Marked **{status}** by {R.as_text(row['reviewer'])} "
               + ("on an overlapping span, under the model this version was taught from"
                  if carried else f"under another model (`{str(row['review_model_id'])[:12]}`) on an overlapping span")
               + (f" with tags {R.as_text(row['tags'])}" if row["tags"] else "")
               + (f": “{R.as_text(row['note'])}”" if row["note"] else "")
               + ". Decide again to keep it for this model.", icon=":material/history:")
elif row["version"] > 0:
    st.markdown(f"Status: **{status}**, by {R.as_text(row['reviewer'])} on {row['reviewed_at']:%Y-%m-%d %H:%M} UTC"
                + (f" · tags: {R.as_text(row['tags'])}" if row["tags"] else "")
                + (f": “{R.as_text(row['note'])}”" if row["note"] else ""))
else:
    st.markdown("Status: **open**: nobody has reviewed this event yet.")

# decision first, so that the buttons stay in view
version = int(row["version"])
if not writes:
    auth.read_only("deciding, tagging, commenting and teaching the model", action="decide", key="review.sign_in")
elif sign_in:
    st.caption(f"Deciding as **{R.as_text(auth.signed_in().email)}**, signed in: every decision and comment is "
               "recorded with this verified email.")
else:
    if "review.reviewer" not in st.session_state:
        st.session_state["review.reviewer"] = st.session_state.get("review.name", "")
    # outside the form: a name typed here counts for the Apply buttons and the comments too, not only
    # once the form is submitted
    r1, r2 = st.columns([1, 3], vertical_alignment="bottom")
    r1.text_input("Reviewer", key="review.reviewer", placeholder="your name",
                  help="Saved with every decision and comment you make.")
    r2.caption("Names are not checked: anyone who opens this app can type any name, and the store records it "
               "as unverified. Turn sign-in on for a shared copy (README, *Sign-in*).")
if writes:
    with st.form("review.form", border=True):
        st.text_area("Note", value="" if row["stale"] else str(row["note"] or ""),
                     key=f"review.note.{current}.{version}", height=68,
                     placeholder="what you saw, who you told, what to check")
        # a stale decision's tags are shown in its notice, not carried into this model's decision
        row_tags = [] if row["stale"] else list(parse_tags(row["tags"]))
        st.multiselect("Tags", list(dict.fromkeys([*known_tags, *row_tags])), default=row_tags,
                       key=f"review.tags.{current}.{version}", accept_new_options=True,
                       placeholder="sensor fault, maintenance, ... or type a new tag",
                       help="Saved with the decision; the queue filters and exports by tag.")
        b = st.columns([2, 2, 2, 1.4, 2.6], vertical_alignment="center")
        for col, (action, label) in zip(b, R.ACTIONS.items(), strict=False):
            col.form_submit_button(label, on_click=save_review, key=f"review.do.{action}", width="stretch",
                                   type="primary" if action == "confirmed" else "secondary",
                                   args=(store, model_id, fingerprint, current, version, action, next_key))
        b[3].form_submit_button("Reopen", on_click=save_review, key="review.do.open", width="stretch",
                                type="tertiary", disabled=row["status"] == "open" and not row["stale"],
                                args=(store, model_id, fingerprint, current, version, "open", None))
        b[4].checkbox("Then open the next event", value=True, key="review.advance")


if signatures is not None:
    here = spans.index((start, end))
    near = R.similar_frame(nearest_events(signatures, here, k=3), queue) if len(queue) > 1 else queue.iloc[:0]
    numbers = {(int(a), int(b)): i + 1 for i, (a, b) in enumerate(zip(shown["start"], shown["end"], strict=True))}
    near["event"] = [numbers.get((int(a), int(b)), np.nan) for a, b in zip(near["start"], near["end"], strict=True)]
    past = nearest_signatures(signatures.iloc[here], past_looks, k=3) if len(past_looks) else pd.DataFrame()
    with st.expander("Similar events", expanded=True, icon=":material/join:"):
        st.caption("The events that look most like this one, in this queue and among the decisions on earlier "
                   "data: the same kind of change (a stuck reading, a burst of noise, a drift, a spike, a broken "
                   "relation) whichever sensor it is on."
                   + (" Apply a decided one's status and tags to this event in one click." if writes else ""))
        for like in near.to_dict("records"):
            like_key = R.event_key(like["start"], like["end"])
            s1, s3, s2 = st.columns([4.4, 0.9, 1.7], vertical_alignment="center")
            s1.markdown(R.similar_line(like))
            s3.button("Open", key=f"review.like_open.{like_key}", on_click=open_event, args=(like_key,),
                      width="stretch", help="Open this event (its own decision, charts and thread).")
            decided = like["status"] != "open" and not like["stale"]
            if writes:
                s2.button(f"Apply: {R.STATUS_LABELS[like['status']]}" if decided else "Not decided yet",
                          key=f"review.like.{like['start']}-{like['end']}", disabled=not decided, width="stretch",
                          on_click=apply_decision,
                          args=(store, model_id, fingerprint, current, version, like, next_key))
        if len(past):
            st.markdown("**Decided in earlier data**")
        for i, like in enumerate(past.to_dict("records")):
            s1, s2 = st.columns([5.3, 1.7], vertical_alignment="center")
            s1.markdown(f"{R.as_text(like['data_name']) or 'earlier data'} · {R.similar_line(like)}")
            if writes:
                s2.button(f"Apply: {R.STATUS_LABELS[like['status']]}", key=f"review.past.{i}", width="stretch",
                          on_click=apply_decision,
                          args=(store, model_id, fingerprint, current, version, like, next_key),
                          help="Give this event the same status and tags; the note says where they came from.")

try:
    thread = store.comments(fingerprint, start, end)
except STORE_ERRORS as exc:
    st.error(f"Cannot read the comments: {one_line(exc)}", icon=":material/database:")
    thread = None
if thread is not None:
    with st.expander(f"Comments ({len(thread)})", expanded=bool(len(thread)), icon=":material/forum:"):
        for comment in thread.itertuples():
            with st.container(border=True):
                # with sign-in on, a name typed before it (or in a local run) is marked as such
                typed = " (name not checked)" if sign_in and not comment.author_verified else ""
                st.caption(f"**{R.as_text(comment.author)}**{typed} · {comment.posted_at:%Y-%m-%d %H:%M} UTC")
                st.text(comment.body)
        if writes:
            st.text_area("Add a comment", key="review.comment", height=68,
                         placeholder="a question for the next shift, what maintenance said, ...")
            st.button("Post comment", on_click=post_comment, args=(store, model_id, fingerprint, current),
                      key="review.post", icon=":material/send:")

x_name = "time" if ds.time is not None else "row"
x = ds.time.to_numpy() if ds.time is not None else np.arange(ds.n_items)
pad = max(2 * int(det.window or 0), (end - start + 1) // 2, 30)
rows = E.context_rows(start, end, ds.n_items, pad)
recon = C.reconstruction(det, det.model_id_, ds.key, X)
drawn = order[:8]
frame = E.event_overlay_frame(x, ds.sensor.channels, recon, rows, channels=drawn, x_name=x_name)
st.caption(f"The {'channels' if len(drawn) == len(order) else f'{len(drawn)} channels that contributed most'}"
           " around the event, most to blame first: actual (solid) and reconstruction (dashed); "
           "the event's rows shaded.")
st.altair_chart(E.event_overlay_chart(frame, (x[start], x[min(end + 1, ds.n_items - 1)]), x=x_name),
                key="review.overlay")
left, right = st.columns(2)
left.altair_chart(charts.contributions_chart(ds.channel_names, share, title="Which sensor to blame",
                                             axis_title="share of the blame"), key="review.contrib")
if det.input_kind_ == "series":
    left.caption("Each channel in turn is replaced by the model's reconstruction over the event; its share is "
                 "how much of the event's error that removes. A sensor that stops moving is named by its "
                 "stillness.")
Z = C.latent(det, det.model_id_, ds.key, X)
coded = np.isfinite(Z).all(axis=1)  # a window that touches a gap has no code
Z = Z[coded]
coords = Z[:, :2] if Z.shape[1] == 2 else C.projection(Z, f"{det.model_id_}:{ds.key}:coded", "pca", 2)
starts = (det.latent_starts(ds.n_items) if det.window else np.arange(len(coded)))[coded]
points = E.latent_event_frame(coords, starts, det.window, flags, start, end)
points = charts.display_sample(points, 3000, keep_mask=(points["role"] != "normal").to_numpy())
right.altair_chart(E.latent_event_chart(points, title="Latent space" + ("" if Z.shape[1] == 2 else " (PCA)")),
                   key="review.latent")
