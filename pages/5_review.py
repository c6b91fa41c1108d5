"""Review: go through the flagged events one at a time and record a decision on each (a real
anomaly, a false alarm, needs follow-up) with a note, tags and the reviewer's name; comment on
them, find similar ones, and teach the model from the decisions. The flows are in
:mod:`aeviz_app.review_desk` and :mod:`aeviz_app.teaching`; the event's detail is the Anomalies
page's (:func:`aeviz_app.event_view.show_event`)."""

import streamlit as st

from aeviz_app import event_view as E
from aeviz_app import review_desk as D
from aeviz_app import review_views as R
from aeviz_app import session as S
from aeviz_app.teaching import teach, versions_note
from aeviz_core import REVIEW_STATUSES

st.title("Review")

ds = S.dataset()
if ds.is_images:
    st.info(f"Reviews are kept for events flagged in sensor data; **{R.as_text(ds.name)}** holds images. "
            "Choose the pump station sample or upload a sensor table on the Data page.",
            icon=":material/fact_check:")
    st.page_link("pages/1_data.py", label="Go to Data", icon=":material/arrow_forward:")
    S.stop()
models = S.models_or_stop(ds, what="flagged events to review")
store = D.open_store()

c1, c2 = st.columns([4, 1])
with c1:
    entry = S.pick_model(models, key="review.model")
desk = D.open_desk(store, entry, ds, S.merge_gap_input(c2, entry, key="review.min_gap"))
rule = desk.in_use.threshold_rule_
st.caption(f"**{len(desk.events):,}** flagged events at threshold {desk.threshold:.4g} ({rule.rule} {rule.param:g}, "
           f"{S.threshold_source(entry, ds)}). Decisions are stored in `{store.url}`, keyed by model "
           f"`{desk.model_id[:12]}` and the data.")
E.show_trust_notes(desk.in_use, ds, desk.X, desk.scores)
D.show_flash()  # before a stop: an adopted version that flags nothing here still says it was adopted
if not len(desk.events):
    st.success("Nothing is flagged at this threshold: there is nothing to review.", icon=":material/check:")
    versions_note(desk)
    S.stop()

switched = st.container()  # a notice when this data's queue changed model (filled below)
summary_box = st.container()  # filled once the queue is read, below its controls

# ---------------------------------------------------------------- the queue
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
queue, known_tags = D.read_queue(desk, sort)
queue, looks = D.with_likes(desk, queue, sort)
listed, liked, tagged, exports = st.columns([2.6, 1.6, 2.1, 2.1], vertical_alignment="bottom")
like_only = liked.toggle("Like a dismissed one", key="review.like_only", disabled="like" not in queue,
                         help="Only the events whose look is close to an event dismissed here or in earlier data "
                              "(the queue's last column says which).")
tag = tagged.selectbox("Tag", known_tags, index=None, placeholder="filter by tag", key="review.tag",
                       help="Show (and export) only the events tagged so.", label_visibility="collapsed")
shown = R.filter_queue(queue, statuses, tag, like_only=like_only)
shown = shown.assign(event=range(1, len(shown) + 1))  # numbered as the page counts them: "Event 1 of N"
D.export_button(exports, desk, shown, tag)
with summary_box:
    D.summary_tiles(queue, desk.threshold)
teach(desk, queue)  # the decisions teach the model: a refit, its figures, adopting it

keys = [R.event_key(s, e) for s, e in zip(shown["start"], shown["end"], strict=True)]
listed.caption(f"{len(shown):,} of {len(queue):,} events shown. Click a row to open it.")
if not keys:
    st.info("No event has the statuses chosen under *Show*" + (f" and the tag *{tag}*." if tag else "."))
    S.stop()
current, position = D.follow_queue(desk, shown, keys, switched)
D.queue_table(shown, keys, current, position)

# ---------------------------------------------------------------- the open event
row, start, end, next_key = D.event_header(desk, shown, keys, current, position)
D.who_decides(desk)  # decision first, so that the buttons stay in view
D.decision_form(desk, row, current, next_key, known_tags)
D.similar_events(desk, looks, queue, shown, row, current, next_key)
D.comment_thread(desk, current)
E.show_event(desk.det, ds, desk.X, desk.parts, desk.flags, start, end, key="review")
