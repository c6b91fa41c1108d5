"""The Review desk: the review store of the app, the queue of a model's flagged events on the
session's data with their decisions, tags and comments, and the open event: who decides, the
decision form, similar events (here and in earlier data) and the comment thread.

Decisions live in the review store (:class:`aeviz_core.ReviewStore`: an SQLite file by default,
any SQLAlchemy URL from ``[connections.reviews]`` in the secrets or ``$AEVIZ_DB_URL``), keyed by
model, data and span, so they are found again on the next visit. The queue is read from the
store on every run, never from a cache; only the store object (an engine) is cached, per URL.

Besides its widgets (``review.*``), the desk keeps in the session: ``review.queue_id`` (the model
and data whose queue is open: a new one opens at its first open event), ``review.queue_model`` and
``review.switched`` (the model whose queue it was, and the notice shown when the same data's queue
passes to another model, until the first decision), ``review.position`` (where the open event sat
in the queue, so that the next one takes over when it leaves a filtered queue),
``review.recorded`` (the event lists already written to the store), ``review.flash`` (the outcome
of the last save, shown once) and ``review.name`` (the reviewer's name, kept across pages).

Who decides: with sign-in on (``[auth]`` in the secrets), every write (a decision, applying a
similar one, a comment, teaching the model, adopting it) is made by the signed-in user of
``st.user``, read when the write happens, and needs a role (``[aeviz] reviewers``); others see the
page read-only. Without sign-in, the name typed in ``review.reviewer`` decides, unchecked and
stored as unverified.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from aeviz_core import REVIEW_STATUSES, ReviewConflictError, ReviewStore, flags_to_events, resolve_db_url
from aeviz_core.access import AccessDenied, Identity
from aeviz_core.explain import LIKE_DISTANCE, like_decided, nearest_events, nearest_signatures
from aeviz_core.feedback import threshold_summary
from aeviz_core.reviews import parse_tags

from . import computed as C
from . import event_view as E
from . import review_views as R
from . import session as S
from . import sign_in as auth

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


# --------------------------------------------------------------------------- the desk


@dataclass
class Desk:
    """What the Review page works on: the store, the model (its shared detector and the copy with the
    session's threshold), the data and its scores, flags and events, and whether this session may
    write (each write asks again, with ``st.user`` as it is then)."""

    store: ReviewStore
    entry: S.ModelEntry
    in_use: object
    ds: S.Dataset
    X: np.ndarray
    scores: np.ndarray
    parts: np.ndarray
    events: pd.DataFrame
    fingerprint: str
    min_gap: int
    writes: bool
    sign_in: bool

    @property
    def det(self):
        return self.entry.detector

    @property
    def model_id(self) -> str:
        return self.det.model_id_

    @property
    def threshold(self) -> float:
        return float(self.in_use.threshold_)

    @property
    def flags(self) -> np.ndarray:
        return self.scores > self.threshold


def open_store() -> ReviewStore:
    """The review store of the secrets or ``$AEVIZ_DB_URL``; when it cannot be opened, says so and
    stops the page."""
    try:
        return review_store(resolve_db_url(secrets=st.secrets))
    except STORE_ERRORS as exc:
        st.error(f"Cannot open the review store: {one_line(exc)}. Check `[connections.reviews] url` in "
                 "`.streamlit/secrets.toml` or `$AEVIZ_DB_URL`.", icon=":material/database:")
        S.stop()


def open_desk(store: ReviewStore, entry: S.ModelEntry, ds: S.Dataset, min_gap: int) -> Desk:
    """Score the data (cached), flag it at the session's threshold and list the events with their
    blamed sensor."""
    det = entry.detector
    in_use = S.thresholded(entry)  # the threshold set on the Anomalies page, else the model's own
    X = S.scoring_input(ds, det)
    scores, parts = C.scores(det, det.model_id_, ds.key, X)
    events = flags_to_events(scores > float(in_use.threshold_), scores, channel_errors=parts,
                             channel_names=ds.channel_names, time=ds.time, min_gap=int(min_gap))
    events = E.blamed_events(det, ds.key, X, events, ds.channel_names)  # the queue names the blamed sensor
    return Desk(store, entry, in_use, ds, X, scores, parts, events, data_fingerprint(ds.sensor, ds.key),
                int(min_gap), writes=auth.allowed("decide"), sign_in=auth.sign_in_on())


def show_flash() -> None:
    """The outcome of the last write, at the top and as a toast where the operator is looking."""
    flash = st.session_state.pop("review.flash", None)
    if flash is not None:
        {"success": st.success, "warning": st.warning, "error": st.error}[flash[0]](flash[1])
        st.toast(flash[1], icon={"success": ":material/check_circle:", "warning": ":material/warning:",
                                 "error": ":material/error:"}[flash[0]])


def read_queue(desk: Desk, sort: str) -> tuple[pd.DataFrame, list[str]]:
    """The queue read fresh from the store (the events recorded first, once per event list, unless the
    session is read-only) and the tags known on this data; stops the page when the store fails."""
    try:
        recorded = st.session_state.setdefault("review.recorded", set())
        batch = (desk.store.url, desk.model_id, desk.fingerprint, desk.threshold, desk.min_gap)
        if desk.writes and batch not in recorded:  # a read-only session writes nothing, not even the events
            desk.store.upsert_events(desk.model_id, desk.fingerprint, desk.events)
            recorded.add(batch)
        queue = desk.store.queue(desk.model_id, desk.fingerprint, desk.events, sort="time" if sort == "like" else sort)
        return queue, desk.store.known_tags(desk.fingerprint)
    except STORE_ERRORS as exc:
        st.error(f"Cannot read the reviews: {one_line(exc)}", icon=":material/database:")
        S.stop()


def earlier_looks_or_none(desk: Desk, spans: tuple, signatures) -> pd.DataFrame:
    """The decided events of earlier data with their looks; this event list's looks are kept in the
    store once per session, for the data that comes later."""
    kept = (desk.model_id, desk.fingerprint, spans)
    try:
        if desk.writes and st.session_state.get("review.looks_kept") != kept:
            desk.store.record_signatures(desk.model_id, desk.fingerprint, signatures, data_name=desk.ds.name)
            st.session_state["review.looks_kept"] = kept
        return earlier_looks(desk.store, desk.store.url, desk.fingerprint)
    except STORE_ERRORS as exc:
        st.caption(f"Earlier data's decisions could not be read: {one_line(exc)}")
        return pd.DataFrame()


@dataclass
class Looks:
    """The looks of this queue's events and of the decided events of earlier data."""

    signatures: pd.DataFrame
    past: pd.DataFrame
    spans: list


def with_likes(desk: Desk, queue: pd.DataFrame, sort: str) -> tuple[pd.DataFrame, Looks | None]:
    """The queue with the decided event each one looks like (dismissed here under this model, or
    decided in earlier data), liked ones first when ``sort == "like"``; None for the looks of a model
    that is not a series'."""
    if desk.det.input_kind_ != "series" or not len(queue):
        return queue, None
    spans = sorted(zip(queue["start"].astype(int), queue["end"].astype(int), strict=True))
    signatures = E.event_signatures(desk.det, desk.model_id, desk.ds.key, desk.X, tuple(spans))  # once per list
    past = earlier_looks_or_none(desk, tuple(spans), signatures)
    own = queue[(queue["status"] == "dismissed") & ~queue["stale"]][["start", "end", "status", "reviewer", "tags"]]
    here = own.astype({"start": np.int64, "end": np.int64}).merge(
        signatures.astype({"start": np.int64, "end": np.int64}), on=["start", "end"]).assign(
        here=True, data_name="this data")
    pool = pd.concat([here, past.assign(here=False)], ignore_index=True) if len(past) else here
    likes = pd.concat([signatures[["start", "end"]], like_decided(signatures, pool)], axis=1)
    queue = R.with_likes(queue, likes)
    return (R.like_first(queue) if sort == "like" else queue), Looks(signatures, past, spans)


def export_button(box, desk: Desk, shown: pd.DataFrame, tag: str | None) -> None:
    """Download the events shown with their reviews and comment threads, numbered as listed."""
    try:
        threads = desk.store.comment_threads(desk.fingerprint)
    except STORE_ERRORS as exc:
        threads = {}
        st.caption(f"The comments could not be read for the export: {one_line(exc)}")
    table = shown.rename(columns={"start": "start_row", "end": "end_row"}).assign(
        status=shown["status"].map(R.STATUS_LABELS), model=desk.entry.name, model_id=desk.model_id,
        data_fingerprint=desk.fingerprint,
        comment_text=[threads.get((int(a), int(b)), "") for a, b in zip(shown["start"], shown["end"], strict=True)])
    box.download_button(f"Export {len(shown):,} (CSV)", R.export_csv(table),
                        file_name=R.export_name(desk.entry.name, desk.ds.name, tag),
                        mime="text/csv", key="review.export", on_click="ignore", icon=":material/download:",
                        help="The events shown (the statuses and tag chosen) with their reviews: status, tags, "
                             "note, reviewer, time, the comments (their number and text).")


def summary_tiles(queue: pd.DataFrame, threshold: float) -> None:
    """What the reviews say: events by status, the flags' precision, and the threshold they suggest."""
    summary = threshold_summary(queue)
    counts = summary["counts"]
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


def follow_queue(desk: Desk, shown: pd.DataFrame, keys: list, switched) -> tuple[str, int]:
    """The open event: the first open one of a new model's or data's queue (saying so when the same
    data's queue passed to another model), else the one the session had open, or the one that took
    its place. Returns its key and position."""
    state = st.session_state
    previous = state.get("review.queue_id")
    if previous != (desk.model_id, desk.fingerprint):  # another model or data: start over
        if previous is not None and previous[1] == desk.fingerprint:  # the same data under another model
            state["review.switched"] = (
                f"This is now **{desk.entry.name}**'s queue (it was **{state.get('review.queue_model', '?')}**'s). "
                "Another model flags other spans, so the decisions taken under the earlier one show as *stale* "
                "here, and are not counted above, until they are taken again.")
        state["review.queue_id"] = (desk.model_id, desk.fingerprint)
        state["review.queue_model"] = desk.entry.name
        state["review.open"] = R.first_open(shown)
        state["review.position"] = 0
    if "review.switched" in state:  # until the first decision under the new model
        switched.info(state["review.switched"], icon=":material/swap_horiz:")
    current, position = R.pick_current(keys, state.get("review.open"), state.get("review.position", 0))
    state["review.open"] = current  # before the picker is drawn: it follows the queue
    state["review.position"] = position
    return current, position


#: the queue table's columns, their widths and help
QUEUE_COLUMNS = {
    "event": st.column_config.NumberColumn(width=50),
    "status": st.column_config.TextColumn(width=140),
    "blamed sensor": st.column_config.TextColumn(width=130, help="the sensor to blame (its share of the event)"),
    "start": st.column_config.TextColumn(width=140),
    "duration": st.column_config.TextColumn(width=75),
    "tags": st.column_config.TextColumn(width=120),
    "comments": st.column_config.NumberColumn(width=40, help="comments on the event"),
    "peak score": st.column_config.NumberColumn(format="%.4g", width=75),
    "reviewer": st.column_config.TextColumn(width=80),
    "note": st.column_config.TextColumn(width=200),
    "rows": st.column_config.TextColumn(width=100),
    "like a dismissed event": st.column_config.TextColumn(
        width=260, help=f"The decided event whose look is closest (within {LIKE_DISTANCE:g}): a hint, never a "
                        "decision."),
}


def queue_table(shown: pd.DataFrame, keys: list, current: str, position: int) -> None:
    """The queue, its open event's row selected; a click on a row opens it."""
    table_key = f"review.table.{current}"  # a new table per open event, its row selected
    st.dataframe(R.queue_table(shown), hide_index=True, key=table_key, height=min(38 + 35 * len(shown), 282),
                 on_select=partial(open_clicked_row, table_key, keys), selection_mode="single-row",
                 selection_default={"selection": {"rows": [position]}}, column_config=QUEUE_COLUMNS)


def event_header(desk: Desk, shown: pd.DataFrame, keys: list, current: str, position: int) -> tuple:
    """Previous / the event picker / next, then the event's span, peak score and the sensors most to
    blame, and its status (a stale decision said as such). Returns ``(row, start, end, next_key)``."""
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
    ds = desk.ds
    if ds.time is not None:
        span_text = (f"**{row['start_time']:%Y-%m-%d %H:%M:%S} → {row['end_time']:%H:%M:%S}** "
                     f"({R.format_seconds(row['duration_s'])}, rows {start}–{end})")
    else:
        span_text = f"**rows {start}–{end}** ({R.format_duration(None, int(row['n_rows']))})"
    share = E.event_blame(desk.det, ds.key, desk.X, start, end, desk.parts)
    order = [ds.channel_names[j] for j in np.argsort(-share)]
    st.markdown(f"{span_text} · peak score **{row['peak_score']:.4g}** (threshold {desk.threshold:.4g}) · "
                f"to blame: **{order[0]}** ({share.max() / max(share.sum(), 1e-12):.0%}), then "
                f"{', '.join(order[1:3])}")
    status_line(desk, row)
    return row, start, end, next_key


def status_line(desk: Desk, row) -> None:
    status = R.STATUS_LABELS[row["status"]]
    if row["stale"]:
        carried = str(row["review_model_id"]) == desk.model_id  # taken under the model this one was taught from
        st.warning(f"Marked **{status}** by {R.as_text(row['reviewer'])} "
                   + ("on an overlapping span, under the model this version was taught from" if carried
                      else f"under another model (`{str(row['review_model_id'])[:12]}`) on an overlapping span")
                   + (f" with tags {R.as_text(row['tags'])}" if row["tags"] else "")
                   + (f": “{R.as_text(row['note'])}”" if row["note"] else "")
                   + ". Decide again to keep it for this model.", icon=":material/history:")
    elif row["version"] > 0:
        st.markdown(f"Status: **{status}**, by {R.as_text(row['reviewer'])} on {row['reviewed_at']:%Y-%m-%d %H:%M} "
                    "UTC" + (f" · tags: {R.as_text(row['tags'])}" if row["tags"] else "")
                    + (f": “{R.as_text(row['note'])}”" if row["note"] else ""))
    else:
        st.markdown("Status: **open**: nobody has reviewed this event yet.")


def who_decides(desk: Desk) -> None:
    """Read-only with the sign-in button; signed in: the verified email; else the name box, said to be
    unchecked."""
    if not desk.writes:
        auth.read_only("deciding, tagging, commenting and teaching the model", action="decide", key="review.sign_in")
    elif desk.sign_in:
        st.caption(f"Deciding as **{R.as_text(auth.signed_in().email)}**, signed in: every decision and comment "
                   "is recorded with this verified email.")
    else:
        if "review.reviewer" not in st.session_state:
            st.session_state["review.reviewer"] = st.session_state.get("review.name", "")
        # outside the form: a name typed here counts for the Apply buttons and the comments too
        r1, r2 = st.columns([1, 3], vertical_alignment="bottom")
        r1.text_input("Reviewer", key="review.reviewer", placeholder="your name",
                      help="Saved with every decision and comment you make.")
        r2.caption("Names are not checked: anyone who opens this app can type any name, and the store records it "
                   "as unverified. Turn sign-in on for a shared copy (README, *Sign-in*).")


def decision_form(desk: Desk, row, current: str, next_key, known_tags: list) -> None:
    """The note, the tags and the decision buttons of the open event (only for a session that writes)."""
    if not desk.writes:
        return
    version = int(row["version"])
    args = (desk.store, desk.model_id, desk.fingerprint, current, version)
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
                                   args=(*args, action, next_key))
        b[3].form_submit_button("Reopen", on_click=save_review, key="review.do.open", width="stretch",
                                type="tertiary", disabled=row["status"] == "open" and not row["stale"],
                                args=(*args, "open", None))
        b[4].checkbox("Then open the next event", value=True, key="review.advance")


def similar_events(desk: Desk, looks: Looks | None, queue: pd.DataFrame, shown: pd.DataFrame, row, current: str,
                   next_key) -> None:
    """The events that look most like the open one, in this queue (numbered as listed) and among the
    decisions on earlier data, each with a button to open it and one to apply its decision."""
    if looks is None:
        return
    start, end = R.parse_event_key(current)
    here = looks.spans.index((start, end))
    near = R.similar_frame(nearest_events(looks.signatures, here, k=3), queue) if len(queue) > 1 else queue.iloc[:0]
    numbers = {(int(a), int(b)): i + 1 for i, (a, b) in enumerate(zip(shown["start"], shown["end"], strict=True))}
    near["event"] = [numbers.get((int(a), int(b)), np.nan) for a, b in zip(near["start"], near["end"], strict=True)]
    past = (nearest_signatures(looks.signatures.iloc[here], looks.past, k=3) if len(looks.past)
            else pd.DataFrame())
    args = (desk.store, desk.model_id, desk.fingerprint, current, int(row["version"]))
    with st.expander("Similar events", expanded=True, icon=":material/join:"):
        st.caption("The events that look most like this one, in this queue and among the decisions on earlier "
                   "data: the same kind of change (a stuck reading, a burst of noise, a drift, a spike, a broken "
                   "relation) whichever sensor it is on."
                   + (" Apply a decided one's status and tags to this event in one click." if desk.writes else ""))
        for like in near.to_dict("records"):
            like_key = R.event_key(like["start"], like["end"])
            s1, s3, s2 = st.columns([4.4, 0.9, 1.7], vertical_alignment="center")
            s1.markdown(R.similar_line(like))
            s3.button("Open", key=f"review.like_open.{like_key}", on_click=open_event, args=(like_key,),
                      width="stretch", help="Open this event (its own decision, charts and thread).")
            decided = like["status"] != "open" and not like["stale"]
            if desk.writes:
                s2.button(f"Apply: {R.STATUS_LABELS[like['status']]}" if decided else "Not decided yet",
                          key=f"review.like.{like['start']}-{like['end']}", disabled=not decided, width="stretch",
                          on_click=apply_decision, args=(*args, like, next_key))
        if len(past):
            st.markdown("**Decided in earlier data**")
        for i, like in enumerate(past.to_dict("records")):
            s1, s2 = st.columns([5.3, 1.7], vertical_alignment="center")
            s1.markdown(f"{R.as_text(like['data_name']) or 'earlier data'} · {R.similar_line(like)}")
            if desk.writes:
                s2.button(f"Apply: {R.STATUS_LABELS[like['status']]}", key=f"review.past.{i}", width="stretch",
                          on_click=apply_decision, args=(*args, like, next_key),
                          help="Give this event the same status and tags; the note says where they came from.")


def comment_thread(desk: Desk, current: str) -> None:
    """The open event's comments, oldest first, and a box to add one (a session that writes)."""
    start, end = R.parse_event_key(current)
    try:
        thread = desk.store.comments(desk.fingerprint, start, end)
    except STORE_ERRORS as exc:
        st.error(f"Cannot read the comments: {one_line(exc)}", icon=":material/database:")
        return
    # open while it has comments, and while a comment is being written (Ctrl+Enter reruns the page)
    writing = bool(st.session_state.get("review.comment"))
    with st.expander(f"Comments ({len(thread)})", expanded=bool(len(thread)) or writing, icon=":material/forum:"):
        for comment in thread.itertuples():
            with st.container(border=True):
                # with sign-in on, a name typed before it (or in a local run) is marked as such
                typed = " (name not checked)" if desk.sign_in and not comment.author_verified else ""
                st.caption(f"**{R.as_text(comment.author)}**{typed} · {comment.posted_at:%Y-%m-%d %H:%M} UTC")
                st.text(comment.body)
        if desk.writes:
            st.text_area("Add a comment", key="review.comment", height=68,
                         placeholder="a question for the next shift, what maintenance said, ...")
            st.button("Post comment", on_click=post_comment, args=(desk.store, desk.model_id, desk.fingerprint,
                                                                   current), key="review.post", icon=":material/send:")
