"""Operators' decisions on flagged anomaly events, stored so that none is lost.

An *event* is a run of consecutive flagged rows, merged: its span is its first
and last row (0-based, inclusive) and, when the data has a time index, its
first and last time. A review is keyed by
``(model_id, data_fingerprint, start, end)``, so re-scoring the same data with
the same model finds the same reviews again. A different model (or a moved
threshold) gives different spans; a decision made on an overlapping span of
the same data is then still shown in the queue, marked ``stale``, until
someone reviews the event again.

Storage
-------
Any SQLAlchemy database. The default is an SQLite file created on first use
(WAL journal, busy timeout, ``synchronous=FULL``); a PostgreSQL URL keeps the
reviews of a Streamlit Community Cloud copy. :func:`resolve_db_url` says which
URL is used.

Guarantees
----------
- Every change of a review appends one row to ``review_audit`` (who, when in
  UTC, old and new status and note) in the transaction that makes the change.
- Every change increments the review's ``version``. A writer that passes the
  version it saw gets :class:`ReviewConflictError` if the review moved on; a
  writer that passes none overwrites, and both writes stay in the audit.
- Lock contention loses no write: SQLite write transactions start with
  ``BEGIN IMMEDIATE`` and wait up to a busy timeout, and transient failures
  (database locked, serialization failure, deadlock, a concurrent first write
  of the same event) are retried.

Schema history
--------------
The schema version is the ``schema_version`` row of the ``aeviz_meta`` table
(portable, unlike SQLite's ``PRAGMA user_version``). Older databases are
migrated when a store opens them, in one transaction.

1. ``reviews`` holds decisions only (no event details, no ``version``);
   ``review_audit`` records statuses but not notes.
2. ``reviews`` also holds event details (times, peak score, top channels) and a
   ``version``; ``review_audit`` records old and new notes and the version.
3. ``reviews`` also holds ``tags``, ``review_audit`` old and new tags, and
   ``review_comments`` holds each event's comment thread (append-only).
4. ``event_signatures`` keeps each queue's event looks.
5. ``model_versions`` records each model version a refit made from decisions: its parent, the
   data, who made it and the decisions it used.
6. Who wrote is recorded with whether a sign-in proved it, by which provider and the provider's
   subject (``*_verified``, ``*_provider``, ``*_subject`` beside ``reviews.reviewer``,
   ``review_audit.reviewer``, ``review_comments.author`` and ``model_versions.created_by``);
   every earlier row is an unverified name.

Who wrote
---------
A name is what the caller passes (``reviewer``, ``author``, ``by``). With sign-in on, the app
passes the signed-in email with ``verified=True``, the provider (the ID token's issuer) and the
subject (its ``sub``); a name typed in a local run is stored unverified, as is every row written
before schema 6. The store records; it does not decide who may write (:mod:`aeviz_core.access`).

Tags and comments
-----------------
A decision carries tags: a few common ones (:data:`COMMON_TAGS`) and any free
ones, stored normalised (lower case, single spaces) and sorted. A comment is
appended to an event's thread with its author and time and never changed, so
the thread is its own audit.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    event,
    false,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeDecorator

from .events import order_events

__all__ = [
    "COMMON_TAGS",
    "REVIEW_STATUSES",
    "STATUS_LABELS",
    "Comment",
    "Review",
    "ReviewConflictError",
    "ReviewStore",
    "normalize_tags",
    "parse_tags",
    "resolve_db_url",
    "with_tag",
]

REVIEW_STATUSES: tuple[str, ...] = ("open", "confirmed", "dismissed", "follow_up")
"""Allowed review statuses: no decision yet, a real anomaly, a false alarm,
needs follow-up."""

#: each status as the pages and the Review page's export say it
STATUS_LABELS = {
    "open": "open",
    "confirmed": "confirmed anomaly",
    "dismissed": "false alarm",
    "follow_up": "needs follow-up",
}

#: tags offered for every event; operators add their own besides
COMMON_TAGS: tuple[str, ...] = ("sensor fault", "process change", "maintenance", "known behaviour")
TAG_CHARS = 40  # the longest tag kept
COMMENT_CHARS = 4000  # the longest comment kept

SCHEMA_VERSION = 6

DB_URL_ENV = "AEVIZ_DB_URL"
DB_PATH_ENV = "AEVIZ_DB_PATH"
DEFAULT_DB_PATH = Path("~/.aeviz/reviews.db")
_SECRETS_PATH = ("connections", "reviews", "url")

_SORTS = ("score", "time")
_QUEUE_COLUMNS = (
    "status",
    "note",
    "reviewer",
    "reviewed_at",
    "version",
    "stale",
    "review_model_id",
    "tags",
    "comments",
)

_BUSY_TIMEOUT_MS = 10_000
_MAX_ATTEMPTS = 30
_BACKOFF_S = (0.005, 0.25)  # first and largest upper bound of the jittered sleep between attempts
_SQLITE_BEGIN = "aeviz_sqlite_begin"  # execution option: the BEGIN mode of an SQLite transaction
_PG_SCHEMA_LOCK = 0x61657669  # advisory lock key serialising schema creation on PostgreSQL
# unique violation (a concurrent first write), serialization failure, deadlock
_TRANSIENT_PGCODES = frozenset({"23505", "40001", "40P01"})
_TRANSIENT_SQLITE = ("database is locked", "database table is locked")

_T = TypeVar("_T")


class _UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_metadata = MetaData()

_meta = Table(
    "aeviz_meta",
    _metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
)


def _who(prefix: str) -> list[Column]:
    """Whether a sign-in proved the name in ``prefix`` (``reviewer``, ``author``, ``created_by``),
    the provider that did (its issuer) and the person's id there (the ID token's ``sub``)."""
    return [
        Column(f"{prefix}_verified", Boolean, nullable=False, server_default=false()),
        Column(f"{prefix}_provider", String(255), nullable=False, server_default=""),
        Column(f"{prefix}_subject", String(255), nullable=False, server_default=""),
    ]


def _event_key() -> list[Column]:
    """The key of one event under one model: the columns a review and an event's look share."""
    return [
        Column("model_id", String(255), primary_key=True),
        Column("data_fingerprint", String(255), primary_key=True),
        Column("start_row", Integer, primary_key=True, autoincrement=False),
        Column("end_row", Integer, primary_key=True, autoincrement=False),
    ]


_reviews = Table(
    "reviews",
    _metadata,
    *_event_key(),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("note", Text, nullable=False, server_default=""),
    Column("reviewer", String(255)),
    Column("reviewed_at", _UTCDateTime()),
    Column("start_time", String(64)),
    Column("end_time", String(64)),
    Column("peak_score", Float),
    Column("top_channels", Text),
    Column("version", Integer, nullable=False, server_default=text("0")),
    Column("tags", Text, nullable=False, server_default=""),
    *_who("reviewer"),
    Index("ix_reviews_fingerprint_span", "data_fingerprint", "start_row"),
)

_audit = Table(
    "review_audit",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("changed_at", _UTCDateTime(), nullable=False),
    Column("reviewer", String(255), nullable=False),
    Column("model_id", String(255), nullable=False),
    Column("data_fingerprint", String(255), nullable=False),
    Column("start_row", Integer, nullable=False),
    Column("end_row", Integer, nullable=False),
    Column("old_status", String(16), nullable=False),
    Column("new_status", String(16), nullable=False),
    Column("old_note", Text),
    Column("new_note", Text),
    Column("version", Integer),
    Column("old_tags", Text),
    Column("new_tags", Text),
    *_who("reviewer"),
    Index("ix_review_audit_event", "data_fingerprint", "model_id"),
)

def _comment_columns() -> list:
    """The columns of ``review_comments`` since schema 3 (schema 6 added who wrote: :func:`_who`)."""
    return [
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("model_id", String(255), nullable=False),
        Column("data_fingerprint", String(255), nullable=False),
        Column("start_row", Integer, nullable=False),
        Column("end_row", Integer, nullable=False),
        Column("author", String(255), nullable=False),
        Column("posted_at", _UTCDateTime(), nullable=False),
        Column("body", Text, nullable=False),
        Index("ix_review_comments_event", "data_fingerprint", "start_row", "end_row"),
    ]


_comments = Table("review_comments", _metadata, *_comment_columns(), *_who("author"))

# what each event looked like (explain.event_signatures), kept so that later data can find it
# among its similar events with its decision; one row per event of a queue, under its model
_signatures = Table(
    "event_signatures",
    _metadata,
    *_event_key(),
    Column("data_name", String(255), nullable=False, server_default=""),
    Column("signature", Text, nullable=False),  # JSON object: signature name -> value (null: missing)
)

# each model version a refit made from decisions (aeviz_core.feedback): its parent, the data, who
# made it and the decisions it used (JSON list of {start_row, end_row, status, reviewer, reviewed_at})
def _version_columns() -> list:
    """The columns of ``model_versions`` since schema 5 (schema 6 added who made it: :func:`_who`)."""
    return [
        Column("model_id", String(255), primary_key=True),
        Column("parent_model_id", String(255), nullable=False),
        Column("data_fingerprint", String(255), nullable=False),
        Column("created_at", _UTCDateTime(), nullable=False),
        Column("created_by", String(255), nullable=False),
        Column("decisions", Text, nullable=False),
    ]


_versions = Table("model_versions", _metadata, *_version_columns(), *_who("created_by"))



def _comments_v3() -> Table:
    """``review_comments`` as schema 3 created it (schema 6 added who wrote)."""
    return Table("review_comments", MetaData(), *_comment_columns())


def _versions_v5() -> Table:
    """``model_versions`` as schema 5 created it (schema 6 added who wrote)."""
    return Table("model_versions", MetaData(), *_version_columns())


# Migrations are frozen SQL (or frozen tables), not derived from the tables above, which
# describe only the current schema; the frozen tables share the column lists that have stayed as
# they were (_comment_columns, _version_columns): a later schema adds columns beside them, never in them. Key: the version each migration starts from.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "ALTER TABLE reviews ADD COLUMN start_time VARCHAR(64)",
        "ALTER TABLE reviews ADD COLUMN end_time VARCHAR(64)",
        "ALTER TABLE reviews ADD COLUMN peak_score FLOAT",
        "ALTER TABLE reviews ADD COLUMN top_channels TEXT",
        "ALTER TABLE reviews ADD COLUMN version INTEGER NOT NULL DEFAULT 0",
        # version 1 stored decided events only: each row is one decision
        "UPDATE reviews SET version = 1",
        "ALTER TABLE review_audit ADD COLUMN old_note TEXT",
        "ALTER TABLE review_audit ADD COLUMN new_note TEXT",
        "ALTER TABLE review_audit ADD COLUMN version INTEGER",
        "CREATE INDEX ix_reviews_fingerprint_span ON reviews (data_fingerprint, start_row)",
        "CREATE INDEX ix_review_audit_event ON review_audit (data_fingerprint, model_id)",
    ),
    2: (
        "ALTER TABLE reviews ADD COLUMN tags TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE review_audit ADD COLUMN old_tags TEXT",
        "ALTER TABLE review_audit ADD COLUMN new_tags TEXT",
        # a new table, created as schema 3 defined it
        lambda conn: _comments_v3().create(conn),
    ),
    3: (
        # a new table, created as schema 4 defines it (freeze it here if it ever changes)
        lambda conn: _signatures.create(conn),
    ),
    4: (
        # a new table, created as schema 5 defined it
        lambda conn: _versions_v5().create(conn),
    ),
    5: tuple(
        # who wrote: every row so far holds a typed, unverified name
        f"ALTER TABLE {table} ADD COLUMN {prefix}_{column}"
        for table, prefix in (("reviews", "reviewer"), ("review_audit", "reviewer"),
                              ("review_comments", "author"), ("model_versions", "created_by"))
        for column in ("verified BOOLEAN NOT NULL DEFAULT FALSE", "provider VARCHAR(255) NOT NULL DEFAULT ''",
                       "subject VARCHAR(255) NOT NULL DEFAULT ''")
    ),
}


@dataclass(frozen=True)
class Review:
    """The decision on one event.

    Attributes
    ----------
    model_id, data_fingerprint : str
        The model that flagged the event and the data it was flagged in.
    start, end : int
        The event's first and last row, 0-based and inclusive.
    status : str
        One of :data:`REVIEW_STATUSES`.
    note : str
        Free text.
    reviewer : str or None
        Who made the latest change; ``None`` before any.
    reviewed_at : datetime or None
        When, timezone-aware UTC.
    version : int
        Number of changes so far; 0 for an event nobody has reviewed.
    tags : tuple of str
        Normalised and sorted (:func:`normalize_tags`).
    verified : bool
        Whether a sign-in proved ``reviewer`` (False for a typed name).
    provider, subject : str
        The provider that proved it (its issuer) and the person's id there; empty when
        unverified.
    """

    model_id: str
    data_fingerprint: str
    start: int
    end: int
    status: str
    note: str
    reviewer: str | None
    reviewed_at: datetime | None
    version: int
    tags: tuple[str, ...] = ()
    verified: bool = False
    provider: str = ""
    subject: str = ""


@dataclass(frozen=True)
class Comment:
    """One comment of an event's thread (``verified``, ``provider``, ``subject``: as for
    :class:`Review`, of its author)."""

    id: int
    author: str
    posted_at: datetime
    body: str
    verified: bool = False
    provider: str = ""
    subject: str = ""


class ReviewConflictError(Exception):
    """A review changed after the caller read it.

    Raised by :meth:`ReviewStore.set_review` when ``expected_version`` is not
    the stored version. Nothing was written; read the review again and decide.

    Attributes
    ----------
    expected_version : int
        The version the caller saw.
    current : Review
        The review as it is now, including who changed it.
    """

    def __init__(self, expected_version: int, current: Review) -> None:
        self.expected_version = expected_version
        self.current = current
        message = (
            f"review of rows {current.start}-{current.end} (model {current.model_id!r}) "
            f"is at version {current.version}, not the version {expected_version} you saw"
        )
        if current.reviewer is not None:
            when = (
                ""
                if current.reviewed_at is None
                else f" at {current.reviewed_at:%Y-%m-%d %H:%M:%S} UTC"
            )
            message += f": {current.reviewer!r} changed it{when} to {current.status!r}"
        super().__init__(message)


class _RowMoved(Exception):
    """A compare-and-set update found another version: retry the transaction."""


def resolve_db_url(url: str | None = None, secrets: Mapping[str, Any] | None = None) -> str:
    """Pick the database URL of the review store.

    The first of these that is set and not empty wins:

    1. ``url``;
    2. ``secrets["connections"]["reviews"]["url"]``, then
       ``secrets["AEVIZ_DB_URL"]`` (``secrets`` is e.g. ``st.secrets``; one
       without a file behind it, for which Streamlit raises
       ``FileNotFoundError``, counts as empty);
    3. the environment variable ``AEVIZ_DB_URL``;
    4. an SQLite file at the environment variable ``AEVIZ_DB_PATH``, else at
       ``~/.aeviz/reviews.db``.

    Parameters
    ----------
    url : str, optional
        An SQLAlchemy URL chosen by the caller.
    secrets : mapping, optional
        The app's secrets.

    Returns
    -------
    url : str
        An SQLAlchemy URL.

    Examples
    --------
    >>> resolve_db_url(secrets={"connections": {"reviews": {"url": "postgresql://h/db"}}})
    'postgresql://h/db'
    """
    if url:
        return url
    if secrets is not None:
        try:
            from_secrets = _lookup(secrets, _SECRETS_PATH) or _lookup(secrets, (DB_URL_ENV,))
        except FileNotFoundError:
            from_secrets = None
        if from_secrets:
            return str(from_secrets)
    if os.environ.get(DB_URL_ENV):
        return os.environ[DB_URL_ENV]
    path = Path(os.environ.get(DB_PATH_ENV) or DEFAULT_DB_PATH).expanduser().resolve()
    return f"sqlite:///{path}"


def _lookup(secrets: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = secrets
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


class ReviewStore:
    """Review decisions on anomaly events, with an audit trail.

    The store is a plain object that threads may share: every call opens its
    own connection from the engine's pool. Give each process its own store.

    Parameters
    ----------
    url : str, optional
        SQLAlchemy URL; ``None`` resolves one with :func:`resolve_db_url`.
        An SQLite file and its folder are created on first use; in-memory
        SQLite is refused (each connection would see its own database).
    engine : sqlalchemy.Engine, optional
        Use this engine instead of a URL (see :meth:`from_engine`).

    Raises
    ------
    RuntimeError
        If the database holds a newer schema than this version of aeviz knows,
        or tables named like the store's without a schema version.

    Examples
    --------
    >>> store = ReviewStore("sqlite:///reviews.db")  # doctest: +SKIP
    >>> store.upsert_events("ae-1", "sha1:ab12", events)  # doctest: +SKIP
    >>> queue = store.queue("ae-1", "sha1:ab12", events)  # doctest: +SKIP
    >>> store.set_review("ae-1", "sha1:ab12", 120, 131, "confirmed",
    ...                  reviewer="ana", expected_version=0)  # doctest: +SKIP
    """

    def __init__(self, url: str | None = None, *, engine: Engine | None = None) -> None:
        if url is not None and engine is not None:
            raise ValueError("pass either url or engine to ReviewStore, not both")
        self._owns_engine = engine is None
        if engine is None:
            engine = _create_engine(resolve_db_url(url))
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine)
        self._engine = engine
        self._writer = engine.execution_options(**{_SQLITE_BEGIN: "IMMEDIATE"})
        try:
            self._run(_ensure_schema, write=True)
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_engine(cls, engine: Engine) -> ReviewStore:
        """Open a store on an existing engine.

        The store does not dispose of the engine on :meth:`close`. An SQLite
        engine gets the store's connection settings (WAL, busy timeout,
        transactions it begins itself); its pooled connections are replaced.

        Parameters
        ----------
        engine : sqlalchemy.Engine

        Returns
        -------
        store : ReviewStore
        """
        return cls(engine=engine)

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"ReviewStore(url={self.url!r})"

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the store's connections (an engine given to it is left open)."""
        if self._owns_engine:
            self._engine.dispose()

    def upsert_events(self, model_id: str, data_fingerprint: str, events: pd.DataFrame) -> int:
        """Record flagged events, without touching those already recorded.

        Parameters
        ----------
        model_id : str
            The model that flagged the events.
        data_fingerprint : str
            The data they were flagged in.
        events : pandas.DataFrame
            One row per event: ``start`` and ``end`` (0-based rows, inclusive)
            and optionally ``start_time``, ``end_time``, ``peak_score`` and
            ``top_channels`` (str).

        Returns
        -------
        n_new : int
            Number of events recorded by this call.
        """
        spans = _event_spans(events)
        details = {
            "start_time": _optional_column(events, "start_time", _time_text),
            "end_time": _optional_column(events, "end_time", _time_text),
            "peak_score": _optional_column(events, "peak_score", float),
            "top_channels": _optional_column(events, "top_channels", str),
        }
        records = sorted(
            (
                {
                    "model_id": model_id,
                    "data_fingerprint": data_fingerprint,
                    "start_row": start,
                    "end_row": end,
                    **{name: values[i] for name, values in details.items()},
                }
                for i, (start, end) in enumerate(spans)
            ),
            key=lambda record: (record["start_row"], record["end_row"]),
        )

        def work(conn: Connection) -> int:
            known = set(
                conn.execute(
                    select(_reviews.c.start_row, _reviews.c.end_row).where(
                        _reviews.c.model_id == model_id,
                        _reviews.c.data_fingerprint == data_fingerprint,
                    )
                ).tuples()
            )
            new = [r for r in records if (r["start_row"], r["end_row"]) not in known]
            if new:
                conn.execute(insert(_reviews), new)
            return len(new)

        return self._run(work, write=True)

    def queue(
        self,
        model_id: str,
        data_fingerprint: str,
        events: pd.DataFrame,
        sort: str = "score",
    ) -> pd.DataFrame:
        """The events joined with their reviews: the operator's work list.

        An event shows its own review when it has one (``version > 0``).
        Otherwise it shows the latest decision on the same data whose span
        overlaps it most, from another model or another span, marked
        ``stale``; failing that, it is ``open``.

        Parameters
        ----------
        model_id, data_fingerprint : str
            The current model and data.
        events : pandas.DataFrame
            As for :meth:`upsert_events`; they need not be recorded first.
        sort : {"score", "time"}
            ``"score"``: most severe first
            (:func:`~aeviz_core.events.order_events`); ``"time"``: by
            ``start_time``, then ``start``.

        Returns
        -------
        queue : pandas.DataFrame
            The columns of ``events`` plus ``status``, ``note``, ``reviewer``,
            ``reviewed_at`` (UTC), ``version`` (the event's own review's
            version, to pass back as ``expected_version``), ``stale`` (bool)
            ``review_model_id`` (the model the shown decision was made
            under), ``tags`` (the shown decision's, comma-separated) and
            ``comments`` (how many the event's thread holds), on a fresh index.
        """
        if sort not in _SORTS:
            raise ValueError(f"sort must be one of {_SORTS}, got {sort!r}")
        spans = _event_spans(events)
        stored = self._run(lambda conn: _stored_reviews(conn, data_fingerprint), write=False)
        reviews = _match_reviews(model_id, spans, stored)
        queue = pd.concat(
            [
                events.drop(columns=list(_QUEUE_COLUMNS), errors="ignore").reset_index(drop=True),
                reviews,
            ],
            axis=1,
        )
        return _sorted(queue, sort).reset_index(drop=True)

    def known_tags(self, data_fingerprint: str | None = None) -> list[str]:
        """:data:`COMMON_TAGS`, then every other tag in use (on this data, when given), sorted."""
        query = select(_reviews.c.tags).where(_reviews.c.tags != "").distinct()
        if data_fingerprint is not None:
            query = query.where(_reviews.c.data_fingerprint == data_fingerprint)
        used = self._run(lambda conn: conn.execute(query).scalars().all(), write=False)
        free = sorted({t for text_ in used for t in parse_tags(text_)} - set(COMMON_TAGS))
        return [*COMMON_TAGS, *free]

    def record_signatures(self, model_id: str, data_fingerprint: str, signatures: pd.DataFrame, *,
                          data_name: str = "") -> int:
        """Keep what each event of a queue looked like, so that events of later data can find it,
        with its decision, among their similar events (:meth:`decided_signatures`).

        ``signatures``: one row per event, ``start``, ``end`` and the signature's columns
        (:func:`aeviz_core.explain.event_signatures`); ``data_name`` names the data for the
        operators who will see it (its file name). Events already kept are left as they were.
        Returns the number newly kept.
        """
        spans = _event_spans(signatures)
        names = [c for c in signatures.columns if c not in ("start", "end")]
        values = signatures[names].to_numpy(dtype=np.float64)
        records = {
            (start, end): {
                "model_id": model_id, "data_fingerprint": data_fingerprint, "start_row": start, "end_row": end,
                "data_name": str(data_name)[:255],
                "signature": json.dumps({n: (float(v) if np.isfinite(v) else None)
                                         for n, v in zip(names, row, strict=True)}),
            }
            for (start, end), row in zip(spans, values, strict=True)
        }

        def work(conn: Connection) -> int:
            known = set(conn.execute(
                select(_signatures.c.start_row, _signatures.c.end_row).where(
                    _signatures.c.model_id == model_id, _signatures.c.data_fingerprint == data_fingerprint)
            ).tuples())
            new = [r for key, r in sorted(records.items()) if key not in known]
            if new:
                conn.execute(insert(_signatures), new)
            return len(new)

        return self._run(work, write=True)

    def decided_signatures(self, *, exclude_fingerprint: str | None = None) -> pd.DataFrame:
        """The decided events (confirmed, false alarm, follow-up) whose look was kept
        (:meth:`record_signatures`), of every data set but ``exclude_fingerprint``: columns
        ``data_name``, ``data_fingerprint``, ``model_id``, ``start``, ``end``, ``start_time``,
        ``end_time``, ``peak_score``, ``status``, ``note``, ``reviewer``, ``reviewed_at``, ``tags``
        and one column per signature value (NaN where missing)."""
        keys = [_reviews.c[name] == _signatures.c[name]
                for name in ("model_id", "data_fingerprint", "start_row", "end_row")]
        query = (select(_signatures.c.data_name, _reviews.c.data_fingerprint, _reviews.c.model_id,
                        _reviews.c.start_row.label("start"), _reviews.c.end_row.label("end"),
                        _reviews.c.start_time, _reviews.c.end_time, _reviews.c.peak_score, _reviews.c.status,
                        _reviews.c.note, _reviews.c.reviewer, _reviews.c.reviewed_at, _reviews.c.tags,
                        _signatures.c.signature)
                 .select_from(_reviews.join(_signatures, and_(*keys)))
                 .where(_reviews.c.status != "open"))
        if exclude_fingerprint is not None:
            query = query.where(_reviews.c.data_fingerprint != exclude_fingerprint)

        def work(conn: Connection) -> pd.DataFrame:
            result = conn.execute(query)
            return pd.DataFrame([tuple(row) for row in result.all()], columns=list(result.keys()))

        frame = self._run(work, write=False)
        looks = pd.DataFrame([json.loads(text_) for text_ in frame.pop("signature")], index=frame.index, dtype=float)
        frame["reviewed_at"] = pd.to_datetime(frame["reviewed_at"], utc=True)
        return pd.concat([frame, looks], axis=1)

    def add_comment(self, model_id: str, data_fingerprint: str, start: int, end: int, *,
                    author: str, body: str, verified: bool = False, provider: str = "",
                    subject: str = "") -> Comment:
        """Append a comment to the thread of one event (its span on this data).

        ``verified``, ``provider`` and ``subject`` say whether a sign-in proved ``author``, the
        provider that did and the person's id there (see *Who wrote* above); by default the
        author is an unverified name.

        Raises
        ------
        ValueError
            On an empty author or comment, a bad span, or a comment longer
            than ``COMMENT_CHARS`` characters.
        """
        start, end = _check_span(start, end)
        if not author or not author.strip():
            raise ValueError(f"author must be a non-empty name, got {author!r}")
        body = str(body).strip()
        if not body:
            raise ValueError("a comment needs some text")
        if len(body) > COMMENT_CHARS:
            raise ValueError(f"a comment holds at most {COMMENT_CHARS} characters, got {len(body)}")
        posted = datetime.now(UTC)
        who = _who_values("author", verified, provider, subject)

        def work(conn: Connection) -> Comment:
            new_id = conn.execute(insert(_comments).values(
                model_id=model_id, data_fingerprint=data_fingerprint, start_row=start, end_row=end,
                author=author.strip(), posted_at=posted, body=body, **who)).inserted_primary_key[0]
            return Comment(int(new_id), author.strip(), posted, body, *who.values())

        return self._run(work, write=True)

    def comments(self, data_fingerprint: str, start: int, end: int) -> pd.DataFrame:
        """The thread of one event's span on this data (under any model), oldest first: columns
        ``id``, ``model_id``, ``author``, ``posted_at`` (UTC), ``body`` and ``author_verified``,
        ``author_provider``, ``author_subject``."""
        start, end = _check_span(start, end)
        query = (select(_comments.c.id, _comments.c.model_id, _comments.c.author, _comments.c.posted_at,
                        _comments.c.body, _comments.c.author_verified, _comments.c.author_provider,
                        _comments.c.author_subject)
                 .where(_comments.c.data_fingerprint == data_fingerprint, _comments.c.start_row == start,
                        _comments.c.end_row == end)
                 .order_by(_comments.c.id))

        def work(conn: Connection) -> pd.DataFrame:
            result = conn.execute(query)
            return pd.DataFrame(result.all(), columns=list(result.keys()))

        frame = self._run(work, write=False)
        frame["posted_at"] = pd.to_datetime(frame["posted_at"], utc=True)
        frame["author_verified"] = frame["author_verified"].astype(bool)
        return frame

    def comment_threads(self, data_fingerprint: str) -> dict[tuple[int, int], str]:
        """Every event's comment thread on this data as one text per span (``(start, end)``):
        ``"author (YYYY-MM-DD HH:MM UTC): body"`` lines, oldest first, joined by `` | ``; what an
        export carries beside each event."""
        query = (select(_comments.c.start_row, _comments.c.end_row, _comments.c.author, _comments.c.posted_at,
                        _comments.c.body)
                 .where(_comments.c.data_fingerprint == data_fingerprint).order_by(_comments.c.id))

        def work(conn: Connection) -> list:
            return conn.execute(query).all()

        threads: dict[tuple[int, int], list[str]] = {}
        for start, end, author, posted_at, body in self._run(work, write=False):
            when = pd.Timestamp(posted_at).strftime("%Y-%m-%d %H:%M")
            threads.setdefault((int(start), int(end)), []).append(f"{author} ({when} UTC): {' '.join(str(body).split())}")
        return {span: " | ".join(lines) for span, lines in threads.items()}

    def get_review(
        self, model_id: str, data_fingerprint: str, start: int, end: int
    ) -> Review | None:
        """The review of one event under one model.

        Parameters
        ----------
        model_id, data_fingerprint : str
        start, end : int
            The event's first and last row.

        Returns
        -------
        review : Review or None
            ``None`` when the event was neither recorded nor reviewed.
        """
        start, end = _check_span(start, end)
        return self._run(
            lambda conn: _read_review(conn, model_id, data_fingerprint, start, end), write=False
        )

    def set_review(
        self,
        model_id: str,
        data_fingerprint: str,
        start: int,
        end: int,
        status: str,
        *,
        reviewer: str,
        note: str = "",
        tags: Iterable[str] | None = None,
        expected_version: int | None = None,
        verified: bool = False,
        provider: str = "",
        subject: str = "",
    ) -> Review:
        """Record a decision, with its audit row, in one transaction.

        Parameters
        ----------
        model_id, data_fingerprint : str
        start, end : int
            The event's first and last row.
        status : str
            One of :data:`REVIEW_STATUSES`.
        reviewer : str
            Who decides; not empty.
        note : str
            Free text; replaces the previous note.
        tags : iterable of str, optional
            Replace the event's tags (common or free ones, see
            :func:`normalize_tags`); None keeps them.
        expected_version : int, optional
            The version the caller saw (``0`` for an event never reviewed).
            If the review has moved on, nothing is written and
            :class:`ReviewConflictError` is raised. ``None``: last write wins.
        verified : bool
            Whether a sign-in proved ``reviewer`` (the app passes True with sign-in on); False
            records a typed, unchecked name.
        provider, subject : str
            The provider that proved it (its issuer) and the person's id there (the ID token's
            ``sub``).

        Returns
        -------
        review : Review
            The review as written, ``version`` incremented.

        Raises
        ------
        ValueError
            On an unknown status, an empty reviewer or a bad span.
        ReviewConflictError
            If ``expected_version`` is not the stored version.
        """
        _check_status(status)
        start, end = _check_span(start, end)
        if not reviewer or not reviewer.strip():
            raise ValueError(f"reviewer must be a non-empty name, got {reviewer!r}")
        if expected_version is not None and expected_version < 0:
            raise ValueError(f"expected_version must be >= 0, got {expected_version}")
        new_tags = None if tags is None else normalize_tags(tags)
        who = _who_values("reviewer", verified, provider, subject)

        def work(conn: Connection) -> Review:
            stored = _read_review(conn, model_id, data_fingerprint, start, end)
            old = stored or Review(
                model_id, data_fingerprint, start, end, "open", "", None, None, 0
            )
            if expected_version is not None and expected_version != old.version:
                raise ReviewConflictError(expected_version, old)
            new = Review(
                model_id,
                data_fingerprint,
                start,
                end,
                status,
                note,
                reviewer,
                datetime.now(UTC),
                old.version + 1,
                old.tags if new_tags is None else new_tags,
                *who.values(),
            )
            decision = {
                "status": new.status,
                "note": new.note,
                "reviewer": new.reviewer,
                "reviewed_at": new.reviewed_at,
                "version": new.version,
                "tags": _tag_text(new.tags),
                **who,
            }
            key = {
                "model_id": model_id,
                "data_fingerprint": data_fingerprint,
                "start_row": start,
                "end_row": end,
            }
            if stored is None:
                conn.execute(insert(_reviews).values(**key, **decision))
            else:
                written = conn.execute(
                    update(_reviews)
                    .where(
                        _key_clause(model_id, data_fingerprint, start, end),
                        _reviews.c.version == old.version,
                    )
                    .values(**decision)
                ).rowcount
                if written != 1:
                    raise _RowMoved
            conn.execute(
                insert(_audit).values(
                    **key,
                    changed_at=new.reviewed_at,
                    reviewer=reviewer,
                    old_status=old.status,
                    new_status=status,
                    old_note=old.note,
                    new_note=note,
                    version=new.version,
                    old_tags=_tag_text(old.tags),
                    new_tags=_tag_text(new.tags),
                    **who,
                )
            )
            return new

        return self._run(work, write=True)

    def audit(
        self, model_id: str | None = None, data_fingerprint: str | None = None
    ) -> pd.DataFrame:
        """Every change ever made, oldest first.

        Parameters
        ----------
        model_id, data_fingerprint : str, optional
            Keep only changes for this model and/or data.

        Returns
        -------
        audit : pandas.DataFrame
            Columns ``id``, ``changed_at`` (UTC), ``reviewer``, ``model_id``,
            ``data_fingerprint``, ``start``, ``end``, ``old_status``,
            ``new_status``, ``old_note``, ``new_note``, ``version`` (the
            review's version after the change), ``old_tags`` and ``new_tags``
            (comma-separated), ``reviewer_verified`` (bool: a sign-in proved
            the reviewer), ``reviewer_provider`` and ``reviewer_subject``.
            Changes recorded by schema version 1 have no notes or version,
            those before version 3 no tags, those before version 6 are
            unverified.
        """
        query = select(
            _audit.c.id,
            _audit.c.changed_at,
            _audit.c.reviewer,
            _audit.c.model_id,
            _audit.c.data_fingerprint,
            _audit.c.start_row.label("start"),
            _audit.c.end_row.label("end"),
            _audit.c.old_status,
            _audit.c.new_status,
            _audit.c.old_note,
            _audit.c.new_note,
            _audit.c.version,
            _audit.c.old_tags,
            _audit.c.new_tags,
            _audit.c.reviewer_verified,
            _audit.c.reviewer_provider,
            _audit.c.reviewer_subject,
        ).order_by(_audit.c.id)
        if model_id is not None:
            query = query.where(_audit.c.model_id == model_id)
        if data_fingerprint is not None:
            query = query.where(_audit.c.data_fingerprint == data_fingerprint)

        def work(conn: Connection) -> pd.DataFrame:
            result = conn.execute(query)
            return pd.DataFrame(result.all(), columns=list(result.keys()))

        frame = self._run(work, write=False)
        frame["changed_at"] = pd.to_datetime(frame["changed_at"], utc=True)
        frame["version"] = frame["version"].astype("Int64")
        frame["reviewer_verified"] = frame["reviewer_verified"].astype(bool)
        return frame

    def record_version(self, model_id: str, parent_model_id: str, data_fingerprint: str,
                       decisions: pd.DataFrame, *, by: str, verified: bool = False, provider: str = "",
                       subject: str = "") -> int:
        """Record a model version a refit made (:func:`aeviz_core.feedback.refit`) and carry the
        parent's decisions on this data over to it, so its review queue keeps them.

        Each decision the parent's queue holds on ``data_fingerprint`` is written under
        ``model_id`` on the same rows (its status, note, tags and reviewer), with an audit row
        whose reviewer says it was carried (``"carried by <by> from <parent>"``); the version's
        row keeps the decisions the refit used (``decisions``: ``start_row``, ``end_row``,
        ``status`` and, when present, ``reviewer`` and ``reviewed_at``). Returns the number of
        decisions carried. Recording the same version again changes nothing.

        ``verified``, ``provider`` and ``subject`` say whether a sign-in proved ``by`` (see *Who
        wrote* above); they go with the version's row and the carrying audit rows, while each
        carried decision keeps its own reviewer's.
        """
        used = [
            {key: (None if pd.isna(value) else (str(value) if key == "reviewed_at" else value))
             for key, value in row.items()}
            for row in decisions[[c for c in ("start_row", "end_row", "status", "reviewer", "reviewed_at")
                                  if c in decisions.columns]].to_dict("records")
        ]
        for row in used:
            row["start_row"], row["end_row"] = int(row["start_row"]), int(row["end_row"])
        now = datetime.now(UTC)
        who = _who_values("created_by", verified, provider, subject)
        carrier = _who_values("reviewer", verified, provider, subject)

        def work(conn: Connection) -> int:
            if conn.scalar(select(func.count()).select_from(_versions).where(_versions.c.model_id == model_id)):
                return 0
            conn.execute(insert(_versions).values(model_id=model_id, parent_model_id=parent_model_id,
                                                  data_fingerprint=data_fingerprint, created_at=now,
                                                  created_by=by, decisions=json.dumps(used), **who))
            decided = conn.execute(select(_reviews).where(
                _reviews.c.model_id == parent_model_id, _reviews.c.data_fingerprint == data_fingerprint,
                _reviews.c.version > 0)).mappings().all()
            carried = 0
            for row in decided:
                values = {k: row[k] for k in ("start_row", "end_row", "status", "note", "reviewer", "reviewed_at",
                                              "start_time", "end_time", "peak_score", "top_channels", "tags",
                                              "reviewer_verified", "reviewer_provider", "reviewer_subject")}
                conn.execute(insert(_reviews).values(model_id=model_id, data_fingerprint=data_fingerprint,
                                                     version=1, **values))
                conn.execute(insert(_audit).values(
                    changed_at=now, reviewer=f"carried by {by} from {parent_model_id}", model_id=model_id,
                    data_fingerprint=data_fingerprint, start_row=row["start_row"], end_row=row["end_row"],
                    old_status="open", new_status=row["status"], old_note="", new_note=row["note"], version=1,
                    old_tags="", new_tags=row["tags"], **carrier))
                carried += 1
            return carried

        return self._run(work, write=True)

    def versions(self, data_fingerprint: str | None = None) -> pd.DataFrame:
        """The model versions refits made (on ``data_fingerprint``, or all), oldest first:
        ``model_id``, ``parent_model_id``, ``data_fingerprint``, ``created_at`` (UTC),
        ``created_by``, ``decisions`` (the list of decisions each used) and ``created_by_verified``,
        ``created_by_provider``, ``created_by_subject``."""
        query = select(_versions).order_by(_versions.c.created_at)
        if data_fingerprint is not None:
            query = query.where(_versions.c.data_fingerprint == data_fingerprint)

        def work(conn: Connection) -> pd.DataFrame:
            rows = conn.execute(query).mappings().all()
            frame = pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in _versions.columns])
            frame["decisions"] = [json.loads(d) for d in frame["decisions"]]
            frame["created_by_verified"] = frame["created_by_verified"].astype(bool)
            return frame

        return self._run(work, write=False)

    def _run(self, work: Callable[[Connection], _T], *, write: bool) -> _T:
        """Run ``work`` in one transaction, retrying transient failures."""
        engine = self._writer if write else self._engine
        for attempt in range(_MAX_ATTEMPTS - 1):
            try:
                with engine.begin() as conn:
                    return work(conn)
            except (DBAPIError, _RowMoved) as exc:
                if not _is_transient(exc):
                    raise
            first, largest = _BACKOFF_S
            time.sleep(random.uniform(0, min(largest, first * 2**attempt)))
        with engine.begin() as conn:
            return work(conn)


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    if not parsed.database or parsed.database == ":memory:" or parsed.query.get("mode") == "memory":
        raise ValueError(f"the review store needs an SQLite file, got in-memory URL {url!r}")
    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(parsed)


def _configure_sqlite(engine: Engine) -> None:
    """Make the engine's SQLite connections use WAL and let the store begin transactions."""
    if event.contains(engine, "connect", _sqlite_connect):
        return
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    engine.dispose()


def _sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # The sqlite3 driver's own transaction handling neither begins a
    # transaction before DDL nor lets a write transaction take its lock up
    # front; _sqlite_begin emits BEGIN instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock at BEGIN, waiting up to the busy timeout;
    # a DEFERRED transaction that reads and then writes can fail without waiting.
    mode = conn.get_execution_options().get(_SQLITE_BEGIN, "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def _is_transient(exc: Exception) -> bool:
    if isinstance(exc, _RowMoved):
        return True
    orig = getattr(exc, "orig", None)
    pgcode = getattr(orig, "pgcode", None)
    if pgcode is not None:
        return pgcode in _TRANSIENT_PGCODES
    return any(message in str(orig) for message in _TRANSIENT_SQLITE)


def _ensure_schema(conn: Connection) -> None:
    """Create the current schema, or migrate an older one to it."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_SCHEMA_LOCK})
    inspector = inspect(conn)
    if not inspector.has_table(_meta.name):
        if inspector.has_table(_reviews.name):
            raise RuntimeError(
                f"{conn.engine.url!r} has a 'reviews' table but no schema version: "
                "not a database written by aeviz"
            )
        _metadata.create_all(conn)
        conn.execute(insert(_meta).values(name="schema_version", value=str(SCHEMA_VERSION)))
        return
    version = int(conn.scalar(select(_meta.c.value).where(_meta.c.name == "schema_version")))
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"review database schema version must be <= {SCHEMA_VERSION} for this aeviz, "
            f"got {version}: upgrade aeviz"
        )
    if version == SCHEMA_VERSION:
        return
    for from_version in range(version, SCHEMA_VERSION):
        for statement in _MIGRATIONS[from_version]:
            if callable(statement):
                statement(conn)
            else:
                conn.exec_driver_sql(statement)
    conn.execute(
        update(_meta).where(_meta.c.name == "schema_version").values(value=str(SCHEMA_VERSION))
    )


def _who_values(prefix: str, verified: bool, provider: str, subject: str) -> dict[str, Any]:
    """The ``prefix_verified``, ``_provider`` and ``_subject`` columns' values (see :func:`_who`)."""
    return {f"{prefix}_verified": bool(verified), f"{prefix}_provider": str(provider or "")[:255],
            f"{prefix}_subject": str(subject or "")[:255]}


def _key_clause(model_id: str, data_fingerprint: str, start: int, end: int) -> Any:
    return and_(
        _reviews.c.model_id == model_id,
        _reviews.c.data_fingerprint == data_fingerprint,
        _reviews.c.start_row == start,
        _reviews.c.end_row == end,
    )


def _decision_columns() -> list:
    """A decision as the store reads it back: status, note, reviewer, when, version, tags."""
    c = _reviews.c
    return [c.status, c.note, c.reviewer, c.reviewed_at, c.version, c.tags]


def _read_review(
    conn: Connection, model_id: str, data_fingerprint: str, start: int, end: int
) -> Review | None:
    row = conn.execute(
        select(
            *_decision_columns(),
            _reviews.c.reviewer_verified,
            _reviews.c.reviewer_provider,
            _reviews.c.reviewer_subject,
        ).where(_key_clause(model_id, data_fingerprint, start, end))
    ).one_or_none()
    if row is None:
        return None
    *decision, tags, verified, provider, subject = row
    return Review(model_id, data_fingerprint, start, end, *decision, parse_tags(tags), bool(verified),
                  provider, subject)


def _stored_reviews(conn: Connection, data_fingerprint: str) -> pd.DataFrame:
    """All reviews of one data set, every model, least recently reviewed first."""
    columns = [_reviews.c.model_id, _reviews.c.start_row, _reviews.c.end_row, *_decision_columns()]
    rows = conn.execute(
        select(*columns).where(_reviews.c.data_fingerprint == data_fingerprint)
    ).all()
    # plain tuples: pandas inspects each Row for namedtuple fields (a third of the read at 10,000)
    frame = pd.DataFrame([tuple(row) for row in rows], columns=[c.name for c in columns])
    counts = conn.execute(
        select(_comments.c.start_row, _comments.c.end_row, func.count())
        .where(_comments.c.data_fingerprint == data_fingerprint)
        .group_by(_comments.c.start_row, _comments.c.end_row)
    ).all()
    frame.attrs["comments"] = {(int(a), int(b)): int(n) for a, b, n in counts}
    frame["reviewed_at"] = pd.to_datetime(frame["reviewed_at"], utc=True)
    return frame.sort_values("reviewed_at", na_position="first", kind="stable").reset_index(
        drop=True
    )


def _match_reviews(
    model_id: str, spans: list[tuple[int, int]], stored: pd.DataFrame
) -> pd.DataFrame:
    """The review to show for each event: its own, else the best stale one (with its tags), and
    the number of comments on the event's span."""
    comment_counts = stored.attrs.get("comments", {})
    own = stored[stored["model_id"] == model_id]
    own_version = {
        (start, end): version
        for start, end, version in own[["start_row", "end_row", "version"]].itertuples(index=False)
    }
    decided = stored[stored["version"] > 0].reset_index(drop=True)
    own_decided = {
        (start, end): i
        for i, (model, start, end) in enumerate(
            decided[["model_id", "start_row", "end_row"]].itertuples(index=False)
        )
        if model == model_id
    }
    starts, ends = decided["start_row"].to_numpy(), decided["end_row"].to_numpy()
    rows = []
    for start, end in spans:
        version = int(own_version.get((start, end), 0))
        index = own_decided.get((start, end))
        stale = index is None
        if stale and len(decided):
            overlap = np.minimum(ends, end) - np.maximum(starts, start) + 1
            if overlap.max() > 0:
                # most overlap, then most recent: ``decided`` is in order of recency
                index = int(np.flatnonzero(overlap == overlap.max())[-1])
        comments = comment_counts.get((int(start), int(end)), 0)
        if index is None:
            rows.append(("open", "", None, pd.NaT, version, False, None, "", comments))
        else:
            shown = decided.iloc[index]
            rows.append(
                (
                    shown["status"],
                    shown["note"],
                    shown["reviewer"],
                    shown["reviewed_at"],
                    version,
                    stale,
                    shown["model_id"],
                    ", ".join(parse_tags(shown["tags"])),
                    comments,
                )
            )
    frame = pd.DataFrame(rows, columns=list(_QUEUE_COLUMNS))
    frame["reviewed_at"] = pd.to_datetime(frame["reviewed_at"], utc=True)
    frame["version"] = frame["version"].astype(np.int64)
    frame["stale"] = frame["stale"].astype(bool)
    frame["comments"] = frame["comments"].astype(np.int64)
    return frame


def _sorted(queue: pd.DataFrame, sort: str) -> pd.DataFrame:
    if sort == "score" and "peak_score" in queue:
        return order_events(queue)
    if sort == "time" and "start_time" in queue:
        return queue.sort_values(["start_time", "start"], na_position="last")
    return queue.sort_values("start", kind="stable")


def _check_status(status: str) -> None:
    if status not in REVIEW_STATUSES:
        raise ValueError(f"status must be one of {', '.join(REVIEW_STATUSES)}; got {status!r}")


def _check_span(start: int, end: int) -> tuple[int, int]:
    start, end = int(start), int(end)
    if not 0 <= start <= end:
        raise ValueError(f"an event span needs 0 <= start <= end, got start={start}, end={end}")
    return start, end


def _event_spans(events: pd.DataFrame) -> list[tuple[int, int]]:
    missing = [name for name in ("start", "end") if name not in events.columns]
    if missing:
        raise ValueError(f"events must have columns 'start' and 'end', missing {missing}")
    return [
        _check_span(start, end) for start, end in zip(events["start"], events["end"], strict=True)
    ]


def _optional_column(events: pd.DataFrame, name: str, convert: Callable[[Any], Any]) -> list[Any]:
    if name not in events.columns:
        return [None] * len(events)
    return [None if pd.isna(value) else convert(value) for value in events[name]]


def _time_text(value: Any) -> str:
    if isinstance(value, (datetime, np.datetime64)):
        return pd.Timestamp(value).isoformat()
    return str(value)


def normalize_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Tags as stored: stripped, lower case, single spaces, unique, sorted; empty ones dropped.

    Raises
    ------
    ValueError
        On a tag holding a comma (the separator) or longer than ``TAG_CHARS``.

    Examples
    --------
    >>> normalize_tags(["Sensor  fault", "maintenance", "sensor fault", " "])
    ('maintenance', 'sensor fault')
    """
    if isinstance(tags, str):
        raise ValueError(f"tags must be a list of tags, got the string {tags!r}")
    out = set()
    for tag in tags:
        tag = " ".join(str(tag).lower().split())
        if not tag:
            continue
        if "," in tag:
            raise ValueError(f"a tag cannot hold a comma: {tag!r}")
        if len(tag) > TAG_CHARS:
            raise ValueError(f"a tag holds at most {TAG_CHARS} characters, got {tag!r}")
        out.add(tag)
    return tuple(sorted(out))


def with_tag(queue: pd.DataFrame, tag: str) -> pd.DataFrame:
    """The rows of a :meth:`ReviewStore.queue` whose shown decision carries ``tag`` (any case and
    spacing), order and index kept."""
    wanted = normalize_tags([tag])
    if not wanted:
        raise ValueError("tag must not be empty")
    return queue[[wanted[0] in parse_tags(t) for t in queue["tags"]]]


def _tag_text(tags: tuple[str, ...]) -> str:
    return ",".join(tags)


def parse_tags(text_: Any) -> tuple[str, ...]:
    """Tags from their stored text (``","``) or the queue's ``tags`` column (``", "``)."""
    if text_ is None or (isinstance(text_, float) and np.isnan(text_)) or not str(text_):
        return ()
    return tuple(t.strip() for t in str(text_).split(",") if t.strip())
