"""The review store loses no decision: concurrency, crashes, migration, audit."""

from __future__ import annotations

import io
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, inspect
from sqlalchemy.exc import DBAPIError

from aeviz_core import (
    REVIEW_STATUSES,
    ReviewConflictError,
    ReviewStore,
    resolve_db_url,
)
from aeviz_app.review_views import export_csv, filter_queue, threshold_advice
from aeviz_core.feedback import threshold_summary
from aeviz_core.reviews import parse_tags
from tests.pg import create_database, postgres_url  # noqa: F401  (postgres_url is a fixture)

ROOT = Path(__file__).resolve().parents[1]
MODEL = "ae-1"
DATA = "sha1:0123abcd"
SHARED = (0, 5)  # the event every concurrent writer reviews

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

# A writer process: opens a store, says "ready", reads a JSON plan of
# [start, end, status, note] from stdin, and prints each review once committed.
WRITER = textwrap.dedent(
    """
    import json, sys
    from aeviz_core import ReviewStore

    url, reviewer, model, data = sys.argv[1:5]
    store = ReviewStore(url)
    print("ready", flush=True)
    for start, end, status, note in json.loads(sys.stdin.readline()):
        store.set_review(model, data, start, end, status, reviewer=reviewer, note=note)
        print(start, end, note, flush=True)
    """
)


@pytest.fixture(params=BACKENDS)
def make_db_url(request, tmp_path):
    """Factory of URLs of fresh, empty databases on one backend."""
    counter = itertools.count()
    if request.param == "sqlite":
        return lambda: f"sqlite:///{tmp_path / f'reviews{next(counter)}.db'}"
    server = request.getfixturevalue("postgres_url")
    prefix = f"t{os.getpid()}_{request.node.name}".lower()
    prefix = "".join(c if c.isalnum() else "_" for c in prefix)[:40]
    return lambda: create_database(server, f"{prefix}_{next(counter)}")


@pytest.fixture
def db_url(make_db_url):
    return make_db_url()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'reviews.db'}"


def events_frame(spans, scores=None):
    frame = pd.DataFrame(spans, columns=["start", "end"])
    frame["start_time"] = pd.Timestamp("2024-05-01", tz="UTC") + pd.to_timedelta(
        frame["start"], "min"
    )
    frame["end_time"] = pd.Timestamp("2024-05-01", tz="UTC") + pd.to_timedelta(frame["end"], "min")
    frame["peak_score"] = scores if scores is not None else [float(i) for i in range(len(frame))]
    frame["top_channels"] = "p1,p2"
    return frame


def write_plan(worker: int, n: int, shared_every: int) -> list[list]:
    """n reviews: every ``shared_every``-th on SHARED, the others on events of this worker only."""
    plan = []
    for i in range(n):
        if shared_every and i % shared_every == 0:
            start, end = SHARED
        else:
            start = 1000 * (worker + 1) + i
            end = start + 2
        plan.append([start, end, REVIEW_STATUSES[i % len(REVIEW_STATUSES)], f"w{worker}-{i}"])
    return plan


def assert_no_lost_decision(store: ReviewStore, plans: list[list[list]]) -> None:
    """Every planned write is in the audit once, and each event's changes form one chain."""
    audit = store.audit(MODEL, DATA)
    assert sorted(audit["new_note"]) == sorted(note for plan in plans for *_, note in plan)
    for (start, end), changes in audit.groupby(["start", "end"]):
        changes = changes.sort_values("id")
        # each write replaced the one before it: none was overwritten unseen
        assert list(changes["version"]) == list(range(1, len(changes) + 1))
        assert list(changes["old_note"]) == [""] + list(changes["new_note"])[:-1]
        review = store.get_review(MODEL, DATA, start, end)
        last = changes.iloc[-1]
        assert (review.status, review.note, review.version) == (
            last["new_status"],
            last["new_note"],
            len(changes),
        )
    for plan in plans:
        for start, end, status, note in plan:
            if (start, end) != SHARED:
                review = store.get_review(MODEL, DATA, start, end)
                assert (review.status, review.note) == (status, note)


def start_writers(url: str, reviewers: list[str]) -> list[subprocess.Popen]:
    """Start one writer process per reviewer and wait until each has opened the store."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, reviewer, MODEL, DATA],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        for reviewer in reviewers
    ]
    for proc in writers:
        if proc.stdout.readline() != "ready\n":
            proc.wait()
            pytest.fail(f"writer {proc.args[3]} did not start:\n{proc.stderr.read()}")
    return writers


def send_plan(proc: subprocess.Popen, plan: list[list]) -> None:
    proc.stdin.write(json.dumps(plan) + "\n")
    proc.stdin.flush()


# -- 1. concurrent sessions ----------------------------------------------------------------


def test_concurrent_threads_lose_no_decision(db_url):
    store = ReviewStore(db_url)
    plans = [write_plan(worker, 50, shared_every=2) for worker in range(4)]
    start = threading.Barrier(len(plans))
    errors: list[BaseException] = []

    def review(worker: int) -> None:
        start.wait()
        try:
            for first, last, status, note in plans[worker]:
                store.set_review(
                    MODEL, DATA, first, last, status, reviewer=f"thread{worker}", note=note
                )
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=review, args=(w,)) for w in range(len(plans))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.get_review(MODEL, DATA, *SHARED).version == 100
    assert_no_lost_decision(store, plans)
    store.close()


def test_concurrent_processes_lose_no_decision(db_url):
    ReviewStore(db_url).close()
    plans = [write_plan(worker, 40, shared_every=2) for worker in range(3)]
    writers = start_writers(db_url, [f"proc{w}" for w in range(len(plans))])
    for proc, plan in zip(writers, plans, strict=True):  # all are ready: the writes overlap
        send_plan(proc, plan)
    for proc in writers:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert len(out.splitlines()) == 40
    with ReviewStore(db_url) as store:
        assert store.get_review(MODEL, DATA, *SHARED).version == 60
        assert_no_lost_decision(store, plans)


def test_expected_version_serialises_read_modify_write(db_url):
    store = ReviewStore(db_url)
    names = [f"t{w}" for w in range(4)]

    def append_tokens(name: str) -> None:
        for i in range(10):
            while True:
                seen = store.get_review(MODEL, DATA, *SHARED)
                version, note = (0, "") if seen is None else (seen.version, seen.note)
                try:
                    store.set_review(
                        MODEL,
                        DATA,
                        *SHARED,
                        "follow_up",
                        reviewer=name,
                        note=f"{note} {name}.{i}".strip(),
                        expected_version=version,
                    )
                    break
                except ReviewConflictError:
                    continue

    threads = [threading.Thread(target=append_tokens, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = store.get_review(MODEL, DATA, *SHARED)
    assert sorted(final.note.split()) == sorted(f"{name}.{i}" for name in names for i in range(10))
    assert final.version == 40
    assert len(store.audit(MODEL, DATA)) == 40
    store.close()


def test_conflict_names_who_changed_the_review(db_url):
    ana, bo = ReviewStore(db_url), ReviewStore(db_url)  # two sessions
    seen = ana.queue(MODEL, DATA, events_frame([SHARED]))
    assert seen["version"].tolist() == [0]
    ana.set_review(
        MODEL, DATA, *SHARED, "confirmed", reviewer="ana", note="real", expected_version=0
    )
    with pytest.raises(ReviewConflictError, match="'ana'.*'confirmed'") as info:
        bo.set_review(MODEL, DATA, *SHARED, "dismissed", reviewer="bo", expected_version=0)
    assert info.value.current.version == 1
    assert info.value.current.reviewer == "ana"
    assert ana.get_review(MODEL, DATA, *SHARED).status == "confirmed"
    assert bo.audit()["reviewer"].tolist() == ["ana"]

    bo.set_review(MODEL, DATA, *SHARED, "dismissed", reviewer="bo", expected_version=1)
    bo.set_review(MODEL, DATA, *SHARED, "follow_up", reviewer="bo")  # no version: last write wins
    audit = ana.audit()
    assert audit["new_status"].tolist() == ["confirmed", "dismissed", "follow_up"]
    assert audit["old_status"].tolist() == ["open", "confirmed", "dismissed"]
    assert ana.get_review(MODEL, DATA, *SHARED).status == "follow_up"
    ana.close()
    bo.close()


# -- 3. a writer killed mid-write --------------------------------------------------------------


def test_sigkilled_writer_loses_no_committed_review(sqlite_url, tmp_path):
    for round_ in range(2):
        first = 100_000 * round_
        plan = [
            [start, start + 1, "confirmed", f"r{round_}-{start}"]
            for start in range(first, first + 5_000)
        ]
        [proc] = start_writers(sqlite_url, ["child"])
        send_plan(proc, plan)
        lines = []
        while len(lines) < 20 + 15 * round_:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"writer died early:\n{proc.stderr.read()}")
            lines.append(line)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        lines += io.StringIO(proc.stdout.read()).readlines()
        reported = [line.split() for line in lines if line.endswith("\n")]

        with sqlite3.connect(tmp_path / "reviews.db") as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        with ReviewStore(sqlite_url) as store:
            for start, end, note in reported:
                review = store.get_review(MODEL, DATA, int(start), int(end))
                assert review is not None and review.note == note
            written = store.queue(
                MODEL,
                DATA,
                pd.DataFrame(plan, columns=["start", "end", "status", "note"]).drop(
                    columns=["status", "note"]
                ),
            )
            written = written[written["version"] > 0]
            # each committed review came with its audit row, and nothing else did
            audit = store.audit(MODEL, DATA)
            assert sorted(
                audit.loc[audit["new_note"].str.startswith(f"r{round_}-"), "new_note"]
            ) == sorted(written["note"])
            assert len(written) >= len(reported)


# -- 4. schema migration ------------------------------------------------------------------

V1_SCHEMA = """
CREATE TABLE aeviz_meta (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    value VARCHAR(255) NOT NULL
);
INSERT INTO aeviz_meta (name, value) VALUES ('schema_version', '1');
CREATE TABLE reviews (
    model_id VARCHAR(255) NOT NULL,
    data_fingerprint VARCHAR(255) NOT NULL,
    start_row INTEGER NOT NULL,
    end_row INTEGER NOT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'open',
    note TEXT NOT NULL DEFAULT '',
    reviewer VARCHAR(255),
    reviewed_at {timestamp},
    PRIMARY KEY (model_id, data_fingerprint, start_row, end_row)
);
CREATE TABLE review_audit (
    id {serial} PRIMARY KEY,
    changed_at {timestamp} NOT NULL,
    reviewer VARCHAR(255) NOT NULL,
    model_id VARCHAR(255) NOT NULL,
    data_fingerprint VARCHAR(255) NOT NULL,
    start_row INTEGER NOT NULL,
    end_row INTEGER NOT NULL,
    old_status VARCHAR(16) NOT NULL,
    new_status VARCHAR(16) NOT NULL
);
INSERT INTO reviews
    VALUES ('ae-old', '{data}', 10, 20, 'confirmed', 'pump cavitation', 'ana', {may1});
INSERT INTO reviews VALUES ('ae-old', '{data}', 40, 44, 'dismissed', '', 'bo', {may1});
INSERT INTO review_audit (changed_at, reviewer, model_id, data_fingerprint, start_row, end_row,
                          old_status, new_status)
    VALUES ({may1}, 'ana', 'ae-old', '{data}', 10, 20, 'open', 'confirmed');
INSERT INTO review_audit (changed_at, reviewer, model_id, data_fingerprint, start_row, end_row,
                          old_status, new_status)
    VALUES ({may1}, 'bo', 'ae-old', '{data}', 40, 44, 'open', 'dismissed')
"""

V1_TYPES = {
    "sqlite": {
        "timestamp": "DATETIME",
        "serial": "INTEGER",
        "may1": "'2024-05-01 08:00:00.000000'",
    },
    "postgresql": {
        "timestamp": "TIMESTAMP WITH TIME ZONE",
        "serial": "SERIAL",
        "may1": "'2024-05-01 08:00:00+00'",
    },
}


def write_v1_database(url: str, *extra_statements: str) -> None:
    """Write the database an aeviz release with schema version 1 would have left."""
    engine = create_engine(url)
    script = V1_SCHEMA.format(data=DATA, **V1_TYPES[engine.dialect.name])
    with engine.begin() as conn:
        for statement in [*script.split(";"), *extra_statements]:
            conn.exec_driver_sql(statement)
    engine.dispose()


def table_columns(url: str) -> dict[str, set[str]]:
    engine = create_engine(url)
    inspector = inspect(engine)
    columns = {
        table: {c["name"] for c in inspector.get_columns(table)}
        for table in inspector.get_table_names()
    }
    engine.dispose()
    return columns


def schema_version(url: str) -> str:
    engine = create_engine(url)
    with engine.connect() as conn:
        version = conn.exec_driver_sql(
            "SELECT value FROM aeviz_meta WHERE name = 'schema_version'"
        ).scalar()
    engine.dispose()
    return version


WHO_COLUMNS = {"reviews": "reviewer", "review_audit": "reviewer", "review_comments": "author",
               "model_versions": "created_by"}


def drop_who_columns(conn, tables=tuple(WHO_COLUMNS)) -> None:
    """Take schema 6's columns of who wrote off ``tables`` (to leave what schema 5 or older had)."""
    for table in tables:
        for column in ("verified", "provider", "subject"):
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {WHO_COLUMNS[table]}_{column}")


def test_v1_database_is_migrated_and_writable(make_db_url):
    old_url, fresh_url = make_db_url(), make_db_url()
    write_v1_database(old_url)
    store = ReviewStore(old_url)
    ReviewStore(fresh_url).close()
    assert schema_version(old_url) == "6"
    assert table_columns(old_url) == table_columns(fresh_url)

    may1 = datetime(2024, 5, 1, 8, tzinfo=UTC)
    cavitation = store.get_review("ae-old", DATA, 10, 20)
    assert (
        cavitation.status,
        cavitation.note,
        cavitation.reviewer,
        cavitation.reviewed_at,
        cavitation.version,
    ) == ("confirmed", "pump cavitation", "ana", may1, 1)
    queue = store.queue("ae-old", DATA, events_frame([(10, 20), (40, 44), (60, 61)]), sort="time")
    assert queue["status"].tolist() == ["confirmed", "dismissed", "open"]
    assert not queue["stale"].any()

    store.set_review(
        "ae-old", DATA, 10, 20, "follow_up", reviewer="cy", note="recheck", expected_version=1
    )
    store.set_review("ae-old", DATA, 40, 44, "confirmed", reviewer="cy", expected_version=1)
    assert store.get_review("ae-old", DATA, 10, 20).version == 2
    audit = store.audit()
    assert audit["new_status"].tolist() == ["confirmed", "dismissed", "follow_up", "confirmed"]
    assert audit["old_note"].tolist()[2] == "pump cavitation"
    assert audit["version"].isna().tolist() == [True, True, False, False]
    store.close()
    with ReviewStore(old_url) as reopened:  # migrating is done once
        assert reopened.get_review("ae-old", DATA, 10, 20).status == "follow_up"


def test_failed_migration_leaves_the_v1_database_untouched(make_db_url):
    url = make_db_url()
    # an index a user created by hand clashes with one the migration creates, late in it
    write_v1_database(url, "CREATE INDEX ix_review_audit_event ON reviews (note)")
    before = table_columns(url)
    with pytest.raises(DBAPIError, match="ix_review_audit_event"):
        ReviewStore(url)
    assert table_columns(url) == before
    assert "version" not in before["reviews"]
    assert schema_version(url) == "1"


def test_newer_schema_is_refused(sqlite_url):
    ReviewStore(sqlite_url).close()
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE aeviz_meta SET value = '99' WHERE name = 'schema_version'")
    engine.dispose()
    with pytest.raises(RuntimeError, match="got 99"):
        ReviewStore(sqlite_url)


# -- 5. stale reviews ------------------------------------------------------------------------


def test_reviews_follow_the_model_and_go_stale_when_it_changes(sqlite_url):
    store = ReviewStore(sqlite_url)
    events_a = events_frame([(10, 20), (40, 44), (70, 75)], scores=[3.0, 2.0, 1.0])
    assert store.upsert_events("ae-A", DATA, events_a) == 3
    assert store.upsert_events("ae-A", DATA, events_a) == 0
    store.set_review("ae-A", DATA, 10, 20, "confirmed", reviewer="ana", note="bearing")
    store.set_review("ae-A", DATA, 40, 44, "dismissed", reviewer="ana")
    store.close()

    # same model, data scored again, by a new session: reviews stay attached
    store = ReviewStore(sqlite_url)
    rescored = store.queue("ae-A", DATA, events_a.copy())
    assert rescored["status"].tolist() == ["confirmed", "dismissed", "open"]
    assert rescored["note"].tolist()[0] == "bearing"
    assert not rescored["stale"].any()

    # another model flags overlapping but different spans: decisions shown, marked stale
    events_b = events_frame([(12, 22), (41, 43), (90, 95)], scores=[2.5, 1.5, 0.5])
    queue_b = store.queue("ae-B", DATA, events_b)
    assert queue_b["status"].tolist() == ["confirmed", "dismissed", "open"]
    assert queue_b["stale"].tolist() == [True, True, False]
    assert queue_b["review_model_id"].tolist()[:2] == ["ae-A", "ae-A"]
    assert queue_b["version"].tolist() == [0, 0, 0]
    assert (
        threshold_summary(queue_b)["precision"] is None
    )  # stale decisions don't count

    # other data: nothing carries over
    assert store.queue("ae-B", "sha1:other", events_b)["status"].tolist() == ["open"] * 3

    # reviewing under model B makes the event current again
    store.set_review("ae-B", DATA, 12, 22, "confirmed", reviewer="bo", expected_version=0)
    queue_b = filter_queue(store.queue("ae-B", DATA, events_b), ["confirmed"])
    assert queue_b[["start", "reviewer", "stale", "version"]].values.tolist() == [
        [12, "bo", False, 1]
    ]
    store.close()


# -- 6. audit ------------------------------------------------------------------------------

SPANS = [(0, 3), (2, 6), (10, 12)]
changes = st.lists(
    st.tuples(
        st.sampled_from(["ae-A", "ae-B"]),
        st.sampled_from(SPANS),
        st.sampled_from(REVIEW_STATUSES),
        st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=8),
        st.one_of(st.none(), st.integers(0, 3)),
    ),
    max_size=12,
)


@settings(max_examples=25, deadline=None)
@given(changes)
def test_every_change_appends_exactly_one_audit_row(changes):
    events = events_frame(SPANS)
    with tempfile.TemporaryDirectory() as folder, ReviewStore(f"sqlite:///{folder}/r.db") as store:
        for model in ("ae-A", "ae-B"):
            store.upsert_events(model, DATA, events)
        n_changes = 0
        for model, (start, end), status, note, expected_version in changes:
            before = store.get_review(model, DATA, start, end)
            try:
                after = store.set_review(
                    model,
                    DATA,
                    start,
                    end,
                    status,
                    reviewer="ana",
                    note=note,
                    expected_version=expected_version,
                )
            except ReviewConflictError:
                assert store.get_review(model, DATA, start, end) == before
                assert len(store.audit()) == n_changes
                continue
            n_changes += 1
            audit = store.audit()
            assert len(audit) == n_changes
            last = audit.iloc[-1]
            assert (last["old_status"], last["old_note"]) == (before.status, before.note)
            assert (last["new_status"], last["new_note"], last["version"]) == (
                status,
                note,
                before.version + 1,
            )
            assert after == store.get_review(model, DATA, start, end)

        # reading and recording events again change no decision
        for model in ("ae-A", "ae-B"):
            store.queue(model, DATA, events)
            store.upsert_events(model, DATA, events)
        audit = store.audit()
        assert len(audit) == n_changes
        # the audit alone rebuilds every review
        for model in ("ae-A", "ae-B"):
            for start, end in SPANS:
                review = store.get_review(model, DATA, start, end)
                trail = audit[
                    (audit["model_id"] == model) & (audit["start"] == start) & (audit["end"] == end)
                ]
                assert review.version == len(trail)
                if len(trail):
                    assert (review.status, review.note) == (
                        trail["new_status"].iloc[-1],
                        trail["new_note"].iloc[-1],
                    )
                    assert review.reviewed_at == trail["changed_at"].iloc[-1]
                else:
                    assert (review.status, review.note, review.reviewer) == ("open", "", None)


def test_audit_times_are_utc_and_filtered(sqlite_url):
    with ReviewStore(sqlite_url) as store:
        before = datetime.now(UTC)
        store.set_review("ae-A", DATA, 1, 2, "confirmed", reviewer="ana")
        store.set_review("ae-B", DATA, 1, 2, "dismissed", reviewer="bo")
        store.set_review("ae-A", "sha1:other", 1, 2, "dismissed", reviewer="bo")
        audit = store.audit()
        assert str(audit["changed_at"].dt.tz) == "UTC"
        assert (audit["changed_at"] >= before).all()
        assert store.audit(model_id="ae-A")["data_fingerprint"].tolist() == [DATA, "sha1:other"]
        assert store.audit("ae-A", DATA)["reviewer"].tolist() == ["ana"]


# -- 7. threshold summary --------------------------------------------------------------------


def reviewed_queue(store: ReviewStore, decisions: dict[float, str]) -> pd.DataFrame:
    spans = [(10 * i, 10 * i + 3) for i in range(len(decisions))]
    events = events_frame(spans, scores=list(decisions))
    for (start, end), status in zip(spans, decisions.values(), strict=True):
        if status != "open":
            store.set_review(MODEL, DATA, start, end, status, reviewer="ana")
    return store.queue(MODEL, DATA, events)


def test_threshold_summary_separable(sqlite_url):
    with ReviewStore(sqlite_url) as store:
        queue = reviewed_queue(
            store,
            {
                5.0: "confirmed",
                6.0: "confirmed",
                7.0: "confirmed",
                1.0: "dismissed",
                2.0: "dismissed",
                3.0: "open",
                4.0: "follow_up",
            },
        )
        summary = threshold_summary(queue)
    assert summary["counts"] == {"open": 1, "confirmed": 3, "dismissed": 2, "follow_up": 1}
    assert summary["n_events"] == 7
    assert summary["stale"] == 0
    assert summary["precision"] == pytest.approx(0.6)
    assert 2.0 < summary["threshold"] < 5.0
    assert (summary["threshold"], summary["threshold_method"]) == (3.5, "midpoint")


def test_threshold_summary_overlapping_maximises_f1(sqlite_url):
    with ReviewStore(sqlite_url) as store:
        queue = reviewed_queue(
            store,
            {
                3.0: "confirmed",
                5.0: "confirmed",
                6.0: "confirmed",
                1.0: "dismissed",
                4.0: "dismissed",
            },
        )
        summary = threshold_summary(queue)
    assert summary["precision"] == pytest.approx(0.6)
    # cut at 2 flags 3, 4, 5, 6: F1 = 6/7, better than 1-, 3.5, 4.5 or 5.5
    assert (summary["threshold"], summary["threshold_method"]) == (2.0, "max_f1")


@pytest.mark.parametrize("decided", [
    {13.8155: "confirmed", 13.8156: "dismissed"},  # stuck sensors: both at the stillness ceiling
    {5.0: "confirmed", 3.0: "confirmed", 4.0: "dismissed"},  # raising loses more than it saves
])
def test_threshold_summary_gives_no_threshold_when_no_cut_helps(sqlite_url, decided):
    with ReviewStore(sqlite_url) as store:
        summary = threshold_summary(reviewed_queue(store, decided))
    assert (summary["threshold"], summary["threshold_method"]) == (None, "inseparable")
    advice = threshold_advice(summary, 2.0)
    assert "no reason to move it" in advice and "suggest" not in advice


def test_threshold_summary_needs_both_classes():
    queue = pd.DataFrame(
        {"peak_score": [5.0, 6.0], "status": ["confirmed", "open"], "stale": False}
    )
    summary = threshold_summary(queue)
    assert (summary["precision"], summary["threshold"], summary["threshold_method"]) == (
        1.0,
        None,
        None,
    )


# -- the rest of the API ---------------------------------------------------------------------


def test_queue_filters_and_sorts(sqlite_url):
    with ReviewStore(sqlite_url) as store:
        events = events_frame([(0, 1), (5, 6), (9, 9)], scores=[1.0, 9.0, 5.0])
        store.set_review(MODEL, DATA, 9, 9, "follow_up", reviewer="ana", note="ask ops")
        by_score = store.queue(MODEL, DATA, events)
        assert by_score["start"].tolist() == [5, 9, 0]
        assert store.queue(MODEL, DATA, events, sort="time")["start"].tolist() == [0, 5, 9]
        assert filter_queue(store.queue(MODEL, DATA, events), "open")["start"].tolist() == [5, 0]
        assert filter_queue(store.queue(MODEL, DATA, by_score), ["follow_up"])["note"].tolist() == [
            "ask ops"
        ]
        with pytest.raises(ValueError, match="sort must be one of"):
            store.queue(MODEL, DATA, events, sort="size")


def test_queue_orders_equal_peaks_longest_first(sqlite_url):
    # stuck sensors all peak at the stillness ceiling; the longer stall is the bigger finding
    with ReviewStore(sqlite_url) as store:
        events = events_frame([(0, 3), (10, 40), (50, 60), (70, 71)], scores=[13.8, 13.8, 13.8, 20.0])
        assert store.queue(MODEL, DATA, events)["start"].tolist() == [70, 10, 50, 0]


def test_export_csv_round_trips(sqlite_url):
    with ReviewStore(sqlite_url) as store:
        events = events_frame([(0, 1), (5, 6)])
        store.set_review(MODEL, DATA, 0, 1, "confirmed", reviewer="ana", note='valve, "stuck"')
        queue = store.queue(MODEL, DATA, events, sort="time")
        back = pd.read_csv(io.BytesIO(export_csv(queue)))
    assert back["status"].tolist() == ["confirmed", "open"]
    assert back["note"].tolist()[0] == 'valve, "stuck"'
    assert back.columns.tolist() == queue.columns.tolist()


def test_invalid_input_is_named(sqlite_url):
    with ReviewStore(sqlite_url) as store:
        with pytest.raises(ValueError, match=r"open, confirmed, dismissed, follow_up; got 'maybe'"):
            store.set_review(MODEL, DATA, 0, 1, "maybe", reviewer="ana")
        with pytest.raises(ValueError, match="unknown status 'done'"):
            filter_queue(store.queue(MODEL, DATA, events_frame([(0, 1)])), ["open", "done"])
        with pytest.raises(ValueError, match="reviewer must be a non-empty name"):
            store.set_review(MODEL, DATA, 0, 1, "open", reviewer=" ")
        with pytest.raises(ValueError, match="start=5, end=1"):
            store.set_review(MODEL, DATA, 5, 1, "open", reviewer="ana")
        with pytest.raises(ValueError, match=r"missing \['end'\]"):
            store.upsert_events(MODEL, DATA, pd.DataFrame({"start": [1]}))
        assert store.audit().empty
    with pytest.raises(ValueError, match="in-memory"):
        ReviewStore("sqlite://")


def test_from_engine_leaves_the_engine_open(sqlite_url):
    engine = create_engine(sqlite_url)
    with ReviewStore.from_engine(engine) as store:
        store.set_review(MODEL, DATA, 0, 1, "confirmed", reviewer="ana")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM review_audit").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


# -- where the store lives ---------------------------------------------------------------------


def test_resolve_db_url_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("AEVIZ_DB_URL", raising=False)
    monkeypatch.delenv("AEVIZ_DB_PATH", raising=False)
    nested = {
        "connections": {"reviews": {"url": "postgresql://nested/db"}},
        "AEVIZ_DB_URL": "postgresql://flat/db",
    }

    assert resolve_db_url() == f"sqlite:///{tmp_path / '.aeviz' / 'reviews.db'}"
    monkeypatch.setenv("AEVIZ_DB_PATH", str(tmp_path / "elsewhere.db"))
    assert resolve_db_url() == f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("AEVIZ_DB_URL", "postgresql://env/db")
    assert resolve_db_url() == "postgresql://env/db"
    assert (
        resolve_db_url(secrets={"AEVIZ_DB_URL": "postgresql://flat/db"}) == "postgresql://flat/db"
    )
    assert resolve_db_url(secrets=nested) == "postgresql://nested/db"
    assert resolve_db_url(secrets={"connections": {"other": {}}}) == "postgresql://env/db"
    assert resolve_db_url("sqlite:///explicit.db", secrets=nested) == "sqlite:///explicit.db"


def test_default_store_is_created_on_first_use(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("AEVIZ_DB_URL", raising=False)
    monkeypatch.delenv("AEVIZ_DB_PATH", raising=False)
    with ReviewStore() as store:
        store.set_review(MODEL, DATA, 0, 1, "confirmed", reviewer="ana")
    path = tmp_path / ".aeviz" / "reviews.db"
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("SELECT status FROM reviews").fetchall() == [("confirmed",)]


# -- tags and comment threads -------------------------------------------------------------------


def test_tags_are_normalised_kept_and_audited(sqlite_url):
    from aeviz_core.reviews import COMMON_TAGS, normalize_tags

    store = ReviewStore(sqlite_url)
    store.upsert_events(MODEL, DATA, events_frame([(10, 20), (40, 44)]))
    saved = store.set_review(MODEL, DATA, 10, 20, "confirmed", reviewer="ana",
                             tags=["Sensor  Fault", "pump 2", "sensor fault"])
    assert saved.tags == ("pump 2", "sensor fault")
    assert store.get_review(MODEL, DATA, 10, 20).tags == ("pump 2", "sensor fault")
    # a decision without tags keeps them; an empty list clears them
    store.set_review(MODEL, DATA, 10, 20, "follow_up", reviewer="bo", note="ask maintenance")
    assert store.get_review(MODEL, DATA, 10, 20).tags == ("pump 2", "sensor fault")
    store.set_review(MODEL, DATA, 10, 20, "follow_up", reviewer="bo", tags=[])
    assert store.get_review(MODEL, DATA, 10, 20).tags == ()
    audit = store.audit(MODEL, DATA)
    assert audit["old_tags"].tolist() == ["", "pump 2,sensor fault", "pump 2,sensor fault"]
    assert audit["new_tags"].tolist() == ["pump 2,sensor fault", "pump 2,sensor fault", ""]
    with pytest.raises(ValueError, match="comma"):
        store.set_review(MODEL, DATA, 40, 44, "confirmed", reviewer="ana", tags=["a,b"])
    with pytest.raises(ValueError, match="list of tags"):
        normalize_tags("maintenance")
    assert store.get_review(MODEL, DATA, 40, 44).version == 0  # the refused write left nothing
    store.set_review(MODEL, DATA, 40, 44, "dismissed", reviewer="ana", tags=["maintenance", "valve"])
    assert store.known_tags(DATA) == [*COMMON_TAGS, "valve"]


def test_the_queue_shows_filters_and_exports_by_tag(sqlite_url):
    store = ReviewStore(sqlite_url)
    events = events_frame([(10, 20), (40, 44), (70, 75)], scores=[3.0, 2.0, 1.0])
    store.upsert_events(MODEL, DATA, events)
    store.set_review(MODEL, DATA, 10, 20, "confirmed", reviewer="ana", tags=["sensor fault"])
    store.set_review(MODEL, DATA, 70, 75, "dismissed", reviewer="ana", tags=["maintenance", "sensor fault"])
    queue = store.queue(MODEL, DATA, events)
    assert queue["tags"].tolist() == ["sensor fault", "", "maintenance, sensor fault"]
    tagged = filter_queue(queue, None, "Sensor Fault")
    assert tagged["start"].tolist() == [10, 70]
    assert filter_queue(queue, None, "maintenance")["start"].tolist() == [70]
    exported = pd.read_csv(io.BytesIO(export_csv(tagged)), keep_default_na=False)
    assert exported["tags"].tolist() == ["sensor fault", "maintenance, sensor fault"]
    # another model's view of the same span shows the decision, and its tags, as stale
    other = store.queue("ae-other", DATA, events)
    assert other["stale"].tolist()[0] and other["tags"].tolist()[0] == "sensor fault"


def test_a_comment_thread_grows_per_event_and_is_counted_in_the_queue(sqlite_url):
    store = ReviewStore(sqlite_url)
    events = events_frame([(10, 20), (40, 44)], scores=[3.0, 2.0])
    store.upsert_events(MODEL, DATA, events)
    first = store.add_comment(MODEL, DATA, 10, 20, author="ana", body="  vibration on pump 2  ")
    store.add_comment("ae-other", DATA, 10, 20, author="bo", body="seen last week as well")
    thread = store.comments(DATA, 10, 20)
    assert thread["author"].tolist() == ["ana", "bo"]
    assert thread["body"].tolist() == ["vibration on pump 2", "seen last week as well"]
    assert first.body == "vibration on pump 2" and thread["posted_at"].dt.tz is not None
    assert store.comments(DATA, 40, 44).empty
    assert store.queue(MODEL, DATA, events)["comments"].tolist() == [2, 0]
    for bad, match in ((dict(author=" ", body="x"), "author"), (dict(author="ana", body="  "), "text"),
                       (dict(author="ana", body="x" * 5000), "at most")):
        with pytest.raises(ValueError, match=match):
            store.add_comment(MODEL, DATA, 40, 44, **bad)
    assert store.comments(DATA, 40, 44).empty
    store.close()
    with ReviewStore(sqlite_url) as reopened:  # stored, not held in memory
        assert len(reopened.comments(DATA, 10, 20)) == 2


def test_stale_decisions_count_as_open_in_the_summary(sqlite_url):
    with ReviewStore(sqlite_url) as store:
        events = events_frame([(10, 20), (40, 44), (70, 75)], scores=[3.0, 2.0, 1.0])
        store.set_review("ae-older", DATA, 10, 20, "confirmed", reviewer="ana")
        store.set_review(MODEL, DATA, 40, 44, "dismissed", reviewer="ana")
        summary = threshold_summary(store.queue(MODEL, DATA, events))
    assert summary["stale"] == 1
    assert summary["counts"] == {"open": 2, "confirmed": 0, "dismissed": 1, "follow_up": 0}


# -- similar events of earlier data ------------------------------------------------------------


def looks_frame(spans):
    """Signatures (:data:`aeviz_core.explain.SIGNATURE`) of events at ``spans``, made up."""
    import numpy as np

    from aeviz_core.explain import SIGNATURE

    frame = pd.DataFrame(spans, columns=["start", "end"])
    rng = np.random.default_rng(len(spans))
    for name in SIGNATURE:
        frame[name] = rng.normal(size=len(frame))
    return frame


def test_decided_events_of_earlier_data_are_found_by_their_look(db_url):
    import numpy as np

    from aeviz_core.explain import nearest_signatures

    looks = looks_frame([(10, 20), (50, 60), (90, 95)])
    looks.loc[2, "kurtosis"] = np.nan  # a missing value stays missing
    with ReviewStore(db_url) as store:
        store.upsert_events("ae-1", DATA, events_frame([(10, 20), (50, 60), (90, 95)]))
        assert store.record_signatures("ae-1", DATA, looks, data_name="day1.csv") == 3
        assert store.record_signatures("ae-1", DATA, looks, data_name="day1.csv") == 0  # kept once
        store.set_review("ae-1", DATA, 10, 20, "confirmed", reviewer="ana", note="stuck flow", tags=["sensor fault"])
        store.set_review("ae-1", DATA, 90, 95, "dismissed", reviewer="ben")
        past = store.decided_signatures(exclude_fingerprint="sha1:day2")
        assert sorted(past["start"]) == [10, 90]  # the undecided event is not offered
        assert store.decided_signatures(exclude_fingerprint=DATA).empty  # nor the data's own events
        confirmed = past.set_index("start").loc[10]
        assert (confirmed["data_name"], confirmed["status"], confirmed["note"], confirmed["reviewer"]) == (
            "day1.csv", "confirmed", "stuck flow", "ana")
        assert parse_tags(confirmed["tags"]) == ("sensor fault",) and confirmed["end"] == 20
        assert np.isnan(past.set_index("start").loc[90, "kurtosis"])
        today = looks.iloc[0].copy()
        today["misfit"] += 0.05  # the same kind of event on another day
        near = nearest_signatures(today, past, k=1)
        assert near["start"].tolist() == [10] and near["distance"].iloc[0] == pytest.approx(0.05)
        assert nearest_signatures(today, past.iloc[:0], k=3).empty
        older = past.drop(columns=["kurtosis"])  # looks kept before a signature value existed
        assert nearest_signatures(today, older, k=1)["start"].tolist() == [10]


def test_a_schema_3_database_gains_the_event_looks_and_keeps_its_reviews(make_db_url):
    url = make_db_url()
    with ReviewStore(url) as store:
        store.set_review("ae-1", DATA, 10, 20, "confirmed", reviewer="ana", tags=["maintenance"])
    engine = create_engine(url)
    with engine.begin() as conn:  # what aeviz with schema 3 left
        conn.exec_driver_sql("DROP TABLE event_signatures")
        conn.exec_driver_sql("DROP TABLE model_versions")
        drop_who_columns(conn, ("reviews", "review_audit", "review_comments"))
        conn.exec_driver_sql("UPDATE aeviz_meta SET value = '3' WHERE name = 'schema_version'")
    engine.dispose()
    assert "event_signatures" not in table_columns(url)
    with ReviewStore(url) as store:
        assert schema_version(url) == "6"
        review = store.get_review("ae-1", DATA, 10, 20)
        assert (review.status, review.tags) == ("confirmed", ("maintenance",))
        assert store.record_signatures("ae-1", DATA, looks_frame([(10, 20)]), data_name="day1.csv") == 1
        assert store.decided_signatures()["start"].tolist() == [10]


def test_a_schema_4_database_gains_the_model_versions_and_keeps_its_reviews(make_db_url):
    url = make_db_url()
    with ReviewStore(url) as store:
        store.set_review("ae-1", DATA, 10, 20, "dismissed", reviewer="ana", note="a start-up", tags=["maintenance"])
    engine = create_engine(url)
    with engine.begin() as conn:  # what aeviz with schema 4 left
        conn.exec_driver_sql("DROP TABLE model_versions")
        drop_who_columns(conn, ("reviews", "review_audit", "review_comments"))
        conn.exec_driver_sql("UPDATE aeviz_meta SET value = '4' WHERE name = 'schema_version'")
    engine.dispose()
    assert "model_versions" not in table_columns(url)
    with ReviewStore(url) as store:
        assert schema_version(url) == "6"
        assert store.get_review("ae-1", DATA, 10, 20).status == "dismissed"
        assert store.versions().empty


def test_a_refit_version_is_recorded_with_its_decisions_and_carries_the_queue(make_db_url):
    """The store keeps which decisions each model version used, and the new version's queue keeps
    the parent's decisions on the data (carried, with an audit row that says so)."""
    url = make_db_url()
    with ReviewStore(url) as store:
        store.set_review("ae-1", DATA, 10, 20, "dismissed", reviewer="ana", note="a start-up", tags=["maintenance"])
        store.set_review("ae-1", DATA, 40, 55, "confirmed", reviewer="bo")
        store.set_review("ae-1", DATA, 70, 71, "open", reviewer="bo")
        used = pd.DataFrame({"start_row": [10, 40], "end_row": [20, 55], "status": ["dismissed", "confirmed"],
                             "reviewer": ["ana", "bo"]})
        assert store.record_version("ae-2", "ae-1", DATA, used, by="cli") == 3
        assert store.record_version("ae-2", "ae-1", DATA, used, by="cli") == 0  # once
        versions = store.versions(DATA)
        assert versions["model_id"].tolist() == ["ae-2"] and versions["parent_model_id"].tolist() == ["ae-1"]
        assert [(d["start_row"], d["status"], d["reviewer"]) for d in versions["decisions"][0]] == [
            (10, "dismissed", "ana"), (40, "confirmed", "bo")]
        carried = store.get_review("ae-2", DATA, 10, 20)
        assert (carried.status, carried.note, carried.tags, carried.reviewer) == ("dismissed", "a start-up",
                                                                                  ("maintenance",), "ana")
        queue = store.queue("ae-2", DATA, events_frame([(10, 20), (40, 55)]), sort="time")
        assert queue["status"].tolist() == ["dismissed", "confirmed"] and not queue["stale"].any()
        audit = store.audit("ae-2", DATA)
        assert audit["reviewer"].str.startswith("carried by cli from ae-1").all() and len(audit) == 3
        assert store.versions("other data").empty


# -- who wrote: verified identities (schema 6) -----------------------------------------------

ISSUER = "https://accounts.example"


def test_who_decided_is_kept_with_whether_a_sign_in_proved_it(make_db_url):
    """A signed-in reviewer's decision, comment and model version carry the provider and subject;
    a typed name (the default) is kept unverified; the audit says which for every change."""
    url = make_db_url()
    with ReviewStore(url) as store:
        store.set_review("ae-1", DATA, 10, 20, "dismissed", reviewer="ana", note="typed in a local run")
        saved = store.set_review("ae-1", DATA, 10, 20, "confirmed", reviewer="ana@plant.example",
                                 verified=True, provider=ISSUER, subject="sub-ana", expected_version=1)
        assert (saved.verified, saved.provider, saved.subject) == (True, ISSUER, "sub-ana")
        review = store.get_review("ae-1", DATA, 10, 20)
        assert (review.reviewer, review.verified, review.provider, review.subject) == (
            "ana@plant.example", True, ISSUER, "sub-ana")
        audit = store.audit("ae-1", DATA)
        assert audit[["reviewer", "reviewer_verified", "reviewer_provider", "reviewer_subject"]].values.tolist() == [
            ["ana", False, "", ""], ["ana@plant.example", True, ISSUER, "sub-ana"]]
        # the audit is unchanged otherwise
        assert audit["new_status"].tolist() == ["dismissed", "confirmed"] and audit["version"].tolist() == [1, 2]

        comment = store.add_comment("ae-1", DATA, 10, 20, author="ana@plant.example", body="told maintenance",
                                    verified=True, provider=ISSUER, subject="sub-ana")
        assert (comment.verified, comment.subject) == (True, "sub-ana")
        store.add_comment("ae-1", DATA, 10, 20, author="bo", body="typed")
        thread = store.comments(DATA, 10, 20)
        assert thread[["author", "author_verified", "author_provider", "author_subject"]].values.tolist() == [
            ["ana@plant.example", True, ISSUER, "sub-ana"], ["bo", False, "", ""]]

        used = pd.DataFrame({"start_row": [10], "end_row": [20], "status": ["confirmed"]})
        assert store.record_version("ae-2", "ae-1", DATA, used, by="it@plant.example", verified=True,
                                    provider=ISSUER, subject="sub-it") == 1
        made = store.versions(DATA)
        assert made[["created_by", "created_by_verified", "created_by_subject"]].values.tolist() == [
            ["it@plant.example", True, "sub-it"]]
        carried = store.get_review("ae-2", DATA, 10, 20)  # the decision keeps its own reviewer's proof
        assert (carried.reviewer, carried.verified, carried.subject) == ("ana@plant.example", True, "sub-ana")
        carrying = store.audit("ae-2", DATA)
        assert carrying["reviewer"].tolist() == ["carried by it@plant.example from ae-1"]
        assert carrying[["reviewer_verified", "reviewer_subject"]].values.tolist() == [[True, "sub-it"]]


def test_a_schema_5_database_gains_who_wrote_and_keeps_its_rows_unverified(make_db_url):
    """What aeviz with schema 5 left (no identity columns) migrates: every row it holds is a typed
    name, unverified; the migrated tables are those a fresh store creates; new rows are verified."""
    url, fresh = make_db_url(), make_db_url()
    ReviewStore(fresh).close()
    with ReviewStore(url) as store:
        store.set_review("ae-1", DATA, 10, 20, "dismissed", reviewer="ana", note="a start-up")
        store.add_comment("ae-1", DATA, 10, 20, author="ana", body="seen before")
        store.record_version("ae-2", "ae-1", DATA, pd.DataFrame({"start_row": [10], "end_row": [20],
                                                                  "status": ["dismissed"]}), by="ana")
    engine = create_engine(url)
    with engine.begin() as conn:  # what aeviz with schema 5 left
        drop_who_columns(conn)
        conn.exec_driver_sql("UPDATE aeviz_meta SET value = '5' WHERE name = 'schema_version'")
    engine.dispose()
    assert "reviewer_verified" not in table_columns(url)["reviews"]
    with ReviewStore(url) as store:
        assert schema_version(url) == "6"
        assert table_columns(url) == table_columns(fresh)
        review = store.get_review("ae-1", DATA, 10, 20)
        assert (review.status, review.note, review.reviewer, review.verified, review.provider) == (
            "dismissed", "a start-up", "ana", False, "")
        assert not store.audit()["reviewer_verified"].any()
        assert store.comments(DATA, 10, 20)["author_verified"].tolist() == [False]
        assert store.versions()["created_by_verified"].tolist() == [False]
        store.set_review("ae-1", DATA, 10, 20, "confirmed", reviewer="ana@plant.example", verified=True,
                         provider=ISSUER, subject="sub-ana", expected_version=1)
        assert store.audit("ae-1", DATA)["reviewer_verified"].tolist() == [False, True]


def test_a_v1_database_migrates_to_who_wrote(make_db_url):
    """The whole chain from schema 1: its decisions and audit rows are unverified names."""
    url = make_db_url()
    write_v1_database(url)
    with ReviewStore(url) as store:
        assert store.get_review("ae-old", DATA, 10, 20).verified is False
        assert store.audit()[["reviewer", "reviewer_verified"]].values.tolist() == [["ana", False], ["bo", False]]
        comment = store.add_comment("ae-old", DATA, 10, 20, author="cy@plant.example", body="ok", verified=True,
                                    provider=ISSUER, subject="sub-cy")
        assert comment.verified
