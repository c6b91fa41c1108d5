"""Sign-in and roles through ``AppTest``: with ``[auth]`` in the secrets, the reviewer is the
signed-in identity of ``st.user`` and every write path refuses viewers and signed-out sessions,
also when the click is replayed from a page drawn for a reviewer (``st.user`` is read when the
write happens); without ``[auth]``, today's typed names, stored unverified.

AppTest seeds ``st.user`` from ``at.user`` (``is_logged_in`` and the ID token's claims) and
``st.secrets`` from ``at.secrets``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, text
from streamlit.testing.v1 import AppTest

from tests.test_review_page import APP, PAGE, TIMEOUT, keys_of, ok, open_key, pump_slice, queue, tiny  # noqa: F401

ISSUER = "https://idp.plant.example"
SECRETS = {
    "auth": {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "not-a-secret",
             "client_id": "aeviz", "client_secret": "not-a-secret",
             "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"},
    "aeviz": {"reviewers": ["ana@plant.example"], "admins": ["it@plant.example"]},
}


def user(email: str, sub: str) -> dict:
    """``st.user`` of a session signed in through the provider."""
    return {"is_logged_in": True, "email": email, "sub": sub, "iss": ISSUER, "email_verified": True,
            "provider": "default"}


ANA = user("ana@plant.example", "sub-ana")  # a reviewer
IT = user("it@plant.example", "sub-it")  # an admin
EVE = user("eve@elsewhere.example", "sub-eve")  # signed in, no role
OUT = {"is_logged_in": False}  # signed out
NOBODY = {"viewer": EVE, "signed out": OUT}

TABLES = ("reviews", "review_audit", "review_comments", "event_signatures", "model_versions")


@pytest.fixture
def db_url(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    monkeypatch.setenv("AEVIZ_DB_URL", url)
    monkeypatch.setenv("AEVIZ_MODEL_DIR", str(tmp_path / "models"))
    return url


def rows(url: str) -> dict[str, int]:
    """How many rows each table of the store holds (none before the store is first opened)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in TABLES}
    except Exception:  # no store yet
        return dict.fromkeys(TABLES, 0)
    finally:
        engine.dispose()


def app(dataset, entries=(), *, who: dict | None, secrets: dict | None = SECRETS, page: str | None = PAGE) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if secrets:
        for name, section in secrets.items():
            at.secrets[name] = section
    if who is not None:
        at.user = dict(who)
    at.session_state["dataset"] = dataset
    at.session_state["models"] = {e.name: e for e in entries}
    at.session_state["active_model"] = entries[-1].name if entries else None
    ok(at.run())
    return ok(at.switch_page(page).run()) if page else at


def as_user(at: AppTest, who: dict) -> AppTest:
    """The same session, ``st.user`` now ``who`` (signed out, or another identity)."""
    at.user = dict(who)
    return at


def texts(at: AppTest) -> str:
    return " ".join(e.value for kind in ("info", "warning", "caption", "markdown", "success", "error")
                    for e in getattr(at, kind))


# --------------------------------------------------------------------------- a signed-in reviewer


def test_a_signed_in_reviewer_decides_as_the_verified_identity(db_url, pump_slice, tiny):
    from aeviz_core import ReviewStore

    at = app(pump_slice, [tiny], who=ANA)
    assert not [t for t in at.text_input if t.key == "review.reviewer"]  # no name to type
    assert "Deciding as **ana@plant\\.example**, signed in" in texts(at)
    first = open_key(at)
    at.session_state["review.reviewer"] = "mallory"  # a crafted name is never used
    at.multiselect(key=f"review.tags.{first}.0").set_value(["sensor fault"])
    at.button(key="review.do.confirmed").click()
    ok(at.run())
    assert any("saved by ana@plant\\.example" in s.value for s in at.success)
    model_id, fingerprint = keys_of(tiny, pump_slice)
    store = ReviewStore(db_url)
    review = store.get_review(model_id, fingerprint, *map(int, first.split("-")))
    assert (review.status, review.reviewer, review.verified, review.provider, review.subject, review.tags) == (
        "confirmed", "ana@plant.example", True, ISSUER, "sub-ana", ("sensor fault",))
    audit = store.audit(model_id, fingerprint)
    assert audit[["reviewer", "reviewer_verified", "reviewer_provider", "reviewer_subject"]].values.tolist() == [
        ["ana@plant.example", True, ISSUER, "sub-ana"]]
    # a comment is signed by the identity too
    at.text_area(key="review.comment").set_value("told maintenance")
    at.button(key="review.post").click()
    ok(at.run())
    start, end = map(int, open_key(at).split("-"))
    thread = store.comments(fingerprint, start, end)
    assert thread[["author", "author_verified", "author_subject"]].values.tolist() == [
        ["ana@plant.example", True, "sub-ana"]]


@pytest.mark.parametrize("who, line, button", [
    (ANA, "Signed in as **ana@plant\\.example** (reviewer)", "Sign out"),
    (IT, "Signed in as **it@plant\\.example** (admin)", "Sign out"),
    (EVE, "Signed in as **eve@elsewhere\\.example** (viewer)", "Sign out"),
    (OUT, "Not signed in: the pages are read-only.", "Sign in"),
])
def test_the_sidebar_says_who_is_signed_in(db_url, pump_slice, who, line, button):
    at = app(pump_slice, who=who, page=None)  # the router's run draws the sidebar
    assert line in [c.value for c in at.sidebar.caption]
    assert [b.label for b in at.sidebar.button] == [button]


# --------------------------------------------------------------------------- nobody with a role


@pytest.mark.parametrize("nobody", list(NOBODY))
def test_a_viewer_sees_the_review_page_read_only_and_it_writes_nothing(db_url, pump_slice, tiny, nobody):
    """The queue, the charts and the export, no writing widget, one line saying why; the page's
    own upkeep (the events, their looks) is not written either."""
    at = app(pump_slice, [tiny], who=NOBODY[nobody])
    assert len(queue(at)) >= 3 and at.get("download_button")
    assert len(at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")) == 4
    keys = {b.key for b in at.button} | {t.key for t in at.text_input} | {t.key for t in at.text_area}
    assert not {k for k in keys if k and k.startswith(("review.do.", "review.like.", "review.past.", "review.post",
                                                      "review.refit", "review.adopt", "review.reviewer",
                                                      "review.comment"))}
    lines = [i.value for i in at.info if i.value.startswith("Read-only:")]
    assert len(lines) == 1 and "deciding, tagging, commenting and teaching the model" in lines[0]
    sign_in = [b for b in at.button if b.key and b.key.startswith("review.sign_in")]
    assert [b.label for b in sign_in] == (["Sign in"] if nobody == "signed out" else [])
    if nobody == "viewer":
        assert "eve@elsewhere\\.example" in lines[0] and "[aeviz] reviewers" in lines[0]
    assert rows(db_url) == dict.fromkeys(("reviews", "review_audit", "review_comments", "event_signatures",
                                          "model_versions"), 0)


@pytest.mark.parametrize("nobody", list(NOBODY))
def test_every_review_write_replayed_without_a_role_writes_nothing(db_url, pump_slice, tiny, nobody):
    """Each writing widget is drawn for a signed-in reviewer, then clicked once the session is
    signed out or another identity's (st.user is read when the write happens): a decision with
    tags, reopening, applying a similar decision, a comment, teaching the model and adopting it.
    The store's rows are counted before and after each."""
    from aeviz_core import ReviewStore

    at = app(pump_slice, [tiny], who=ANA)
    first = open_key(at)
    at.button(key="review.do.dismissed").click()  # one decided event, for "Apply" and the refit
    ok(at.run())
    at.session_state["review.reviewer"] = "ana@plant.example"  # a crafted name does not help
    who = NOBODY[nobody]

    def replay(click) -> None:
        ok(as_user(at, ANA).run())  # the widgets, drawn for the reviewer
        before = rows(db_url)
        click()
        ok(as_user(at, who).run())
        assert rows(db_url) == before
        assert any("Nothing was saved" in w.value for w in at.warning), [w.value for w in at.warning]

    def decide():
        current = open_key(at)
        at.text_area(key=f"review.note.{current}.0").set_value("not mine to say")
        at.multiselect(key=f"review.tags.{current}.0").set_value(["maintenance"])
        at.button(key="review.do.confirmed").click()

    replay(decide)
    replay(lambda: at.button(key="review.do.follow_up").click())

    def reopen():
        at.selectbox(key="review.open").set_value(first)
        ok(at.run())
        at.button(key="review.do.open").click()

    replay(reopen)

    def apply():
        ok(at.run())
        for key in queue(at)["rows"]:
            at.selectbox(key="review.open").set_value(key.replace("–", "-"))
            ok(at.run())
            applicable = [b for b in at.button if b.key and b.key.startswith("review.like.") and not b.disabled]
            if applicable:
                applicable[0].click()
                return
        raise AssertionError("no event with a decided similar event")

    replay(apply)

    def comment():
        at.text_area(key="review.comment").set_value("a viewer's comment")
        at.button(key="review.post").click()

    replay(comment)
    replay(lambda: at.button(key="review.refit").click())
    assert "review.refit_job" not in at.session_state  # no refit started

    # a refit the reviewer started and finished, adopted once signed out: nothing recorded or added
    ok(as_user(at, ANA).run())
    at.button(key="review.refit").click()
    ok(at.run())
    job = at.session_state["review.refit_job"]
    assert job.wait(120) and job.error is None, job.error
    replay(lambda: at.button(key="review.adopt").click())
    assert ReviewStore(db_url).versions().empty
    assert list(at.session_state["models"]) == ["tiny"]
    assert at.session_state["review.refit_job"] is job  # the result stays, for someone allowed
    assert not any(b.key == "review.adopt" for b in at.button)
    assert any("adopting a model version" in i.value for i in at.info)
    # the reviewer's one decision is all the store holds
    audit = ReviewStore(db_url).audit()
    assert audit["reviewer"].tolist() == ["ana@plant.example"] and audit["reviewer_verified"].all()


def test_a_malformed_role_list_refuses_every_write(db_url, pump_slice, tiny):
    secrets = {**SECRETS, "aeviz": {"reviewers": "ana@plant.example"}}  # a string, not a list
    at = app(pump_slice, [tiny], who=ANA, secrets=secrets)
    assert not any(b.key and b.key.startswith("review.do.") for b in at.button)
    assert any("malformed" in e.value and "reviewers must be a list" in e.value for e in at.error)
    assert rows(db_url)["reviews"] == 0


# --------------------------------------------------------------------------- data and models


@pytest.mark.parametrize("nobody", list(NOBODY))
def test_a_viewer_cannot_replace_the_data_with_an_upload(db_url, pump_slice, nobody):
    csv = pd.read_csv(Path(__file__).resolve().parent.parent / "sample_data" / "pump_station.csv",
                      nrows=600).to_csv(index=False).encode()
    at = app(pump_slice, who=ANA, page=None)  # the Data page, drawn for a reviewer
    at.radio(key="data.source").set_value("upload")
    ok(at.run())
    assert at.file_uploader(key="data.upload") is not None
    assert "Files up to **50 MB**" in texts(at)  # the limit of .streamlit/config.toml, stated
    at.file_uploader(key="data.upload").set_value(("mine.csv", csv, "text/csv"))
    ok(as_user(at, NOBODY[nobody]).run())  # the upload arrives once the session has no role
    assert at.session_state["dataset"].name == pump_slice.name
    assert not [u for u in at.get("file_uploader") if u.key == "data.upload"]
    assert any(i.value.startswith("Read-only: uploading data needs") for i in at.info)
    at.session_state["data.last_upload"] = ("mine.csv", csv)  # a crafted upload is not read either
    ok(at.run())
    assert at.session_state["dataset"].name == pump_slice.name
    # the reviewer may
    ok(as_user(at, ANA).run())
    at.file_uploader(key="data.upload").set_value(("mine.csv", csv, "text/csv"))
    ok(at.run())
    assert at.session_state["dataset"].name == "mine.csv"


def test_models_reach_the_server_only_through_an_admin(db_url, pump_slice, tiny, tmp_path):
    """A reviewer trains and loads saved models in the session, but saves, uploads a zip and
    changes the model directory only as an admin; a replayed click does nothing."""
    from aeviz_core import detector_to_zip

    models = tmp_path / "models"
    at = app(pump_slice, [tiny], who=IT, page="pages/2_train.py")
    assert at.button(key="train.save") is not None and at.file_uploader(key="train.upload_zip") is not None
    assert not at.text_input(key="train.model_dir").disabled
    at.file_uploader(key="train.upload_zip").set_value(("tiny.zip", detector_to_zip(tiny.detector),
                                                        "application/zip"))
    ok(at.run())
    at.button(key="train.save").click()
    at.button(key="train.load_zip").click()
    ok(as_user(at, ANA).run())  # the clicks arrive from a reviewer, not an admin
    assert not models.exists() or not any(models.iterdir())
    assert list(at.session_state["models"]) == ["tiny"]
    assert not [b for b in at.button if b.key in ("train.save", "train.load_zip")]
    assert any(i.value.startswith("Read-only: uploading a model needs the admin role, which ana@plant\\.example")
               for i in at.info)
    assert at.text_input(key="train.model_dir").disabled
    at.session_state["train.model_dir"] = str(tmp_path / "elsewhere")  # a crafted directory
    ok(at.run())
    assert at.session_state["model_dir"] == str(models)
    assert any("The model directory stays" in w.value for w in at.warning)
    # the admin may: the directory typed is taken, and the model saved into it
    ok(as_user(at, IT).run())
    assert at.session_state["model_dir"] == str(tmp_path / "elsewhere")
    at.button(key="train.save").click()
    ok(at.run())
    assert (tmp_path / "elsewhere" / "tiny" / "aeviz.json").is_file()


# --------------------------------------------------------------------------- a local run


def test_without_sign_in_names_are_typed_and_stored_unverified(db_url, pump_slice, tiny):
    from aeviz_core import ReviewStore

    at = app(pump_slice, [tiny], who=None, secrets=None)
    assert "Names are not checked" in texts(at)
    assert not any(b.key and b.key.startswith("app.sign") for b in at.button)  # no sign-in step
    first = open_key(at)
    at.text_input(key="review.reviewer").set_value("ana")
    at.button(key="review.do.confirmed").click()
    ok(at.run())
    model_id, fingerprint = keys_of(tiny, pump_slice)
    review = ReviewStore(db_url).get_review(model_id, fingerprint, *map(int, first.split("-")))
    assert (review.reviewer, review.verified, review.provider, review.subject) == ("ana", False, "", "")
    assert ReviewStore(db_url).audit()["reviewer_verified"].tolist() == [False]
