"""Sign-in in a real browser: the app with ``[auth]`` in its secrets, a local OpenID Connect
provider (``oidc-provider-mock``, started here on a free port), headless chromium signing in
through the provider's form. A reviewer decides an event and the store's audit holds the
verified email, the provider and the subject; an identity without a role sees read-only pages
and writes nothing. Screenshots go to ``bench/results/screenshots/9*_sign_in_*.png``.

Skipped (with the reason) when chromium, Playwright, ``oidc-provider-mock`` or Authlib is
missing, unless the ``CI`` environment variable is set: then it fails instead.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

from tests.test_browser import (
    ROOT,
    _missing,
    free_port,
    go,
    launch_chromium,
    no_exception,
    shot,
    start_app,
    stop_app,
    wait_idle,
)

pytestmark = pytest.mark.browser

REVIEWER = ("ana", "ana@plant.example")  # the provider's subject, the email it vouches for
VIEWER = ("eve", "eve@elsewhere.example")  # signed in, no role
TABLES = ("reviews", "review_audit", "review_comments", "event_signatures", "model_versions")


def _skip_reason() -> str | None:
    reason = _missing()
    if reason:
        return reason
    try:
        import authlib  # noqa: F401  (st.login needs it)
        import oidc_provider_mock  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install -r requirements-dev.txt)"
    return None


@pytest.fixture(scope="module")
def provider():
    """The local OpenID Connect provider, with the two people as one-click users."""
    reason = _skip_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"sign-in browser test cannot run in CI: {reason}")
        pytest.skip(reason)
    from oidc_provider_mock import User, run_server_in_thread

    users = [User(sub=sub, claims={"email": email, "email_verified": True}) for sub, email in (REVIEWER, VIEWER)]
    with run_server_in_thread(port=free_port(), user_claims=users) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small model of the pump station, saved where the app loads models from (loading one is
    open to everyone; training it in the browser would take minutes)."""
    import pandas as pd

    from aeviz_core import AutoencoderDetector, load_sensor_table, save_detector
    from aeviz_app.session import Dataset

    folder = tmp_path_factory.mktemp("models")
    first_hours = Dataset.from_sensor(load_sensor_table(pd.read_csv(ROOT / "sample_data" / "pump_station.csv",
                                                                    nrows=6000)), "pump")
    det = AutoencoderDetector(window=16, stride=4, latent_dim=4, hidden=(32,), epochs=2, batch_size=64,
                              random_state=0, series_score="smooth")
    det.fit(first_hours.sensor.channels, anomalous=first_hours.anomaly)
    save_detector(det, folder / "pump-ae")
    return folder


@pytest.fixture(scope="module")
def signed_app(provider, model_dir, tmp_path_factory):
    """The app on its own port, store and secrets: ``[auth]`` pointing at the provider, and
    ``[aeviz] reviewers`` naming the reviewer. Yields (url, store url)."""
    tmp = tmp_path_factory.mktemp("signed")
    port = free_port()
    settings = tmp / ".streamlit"
    settings.mkdir()
    shutil.copy(ROOT / ".streamlit" / "config.toml", settings / "config.toml")
    (settings / "secrets.toml").write_text(
        "[auth]\n"
        f'redirect_uri = "http://localhost:{port}/oauth2callback"\n'
        'cookie_secret = "a-long-random-string-for-the-test-only"\n'
        'client_id = "aeviz"\n'
        'client_secret = "not-a-secret"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n\n'
        "[aeviz]\n"
        f'reviewers = ["{REVIEWER[1]}"]\n')
    db_url = f"sqlite:///{tmp / 'reviews.db'}"
    # run from the folder that holds .streamlit/ (Streamlit reads secrets.toml from the working folder)
    proc = start_app(ROOT / "streamlit_app.py", port, {"AEVIZ_MODEL_DIR": str(model_dir), "AEVIZ_DB_URL": db_url},
                     cwd=tmp)
    yield f"http://localhost:{port}", db_url
    stop_app(proc)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


def rows(db_url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    from sqlalchemy import inspect

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("reviews"):  # no store yet
                return dict.fromkeys(TABLES, 0)
            return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() for t in TABLES}
    finally:
        engine.dispose()


def sidebar(page) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def sign_in(browser, url: str, person: tuple[str, str], *, shot_name: str | None = None):
    """A new browser (no cookies) on the app, signed in as ``person`` through the provider's form."""
    page = browser.new_page(viewport={"width": 1400, "height": 1500})
    page.set_default_timeout(120_000)
    page.goto(url)
    page.wait_for_selector('h1:has-text("Data")')
    wait_idle(page)
    assert "Not signed in" in sidebar(page)
    if shot_name:
        shot(page, shot_name)
    page.locator('[data-testid="stSidebar"] button', has_text="Sign in").click()
    page.wait_for_selector("text=Authorize Client")  # the provider's page
    if shot_name:
        shot(page, shot_name + "_provider")
    page.locator("button", has_text=person[0]).first.click()
    page.wait_for_selector('h1:has-text("Data")')  # back in the app, through /oauth2callback
    page.wait_for_selector(f'[data-testid="stSidebar"] :text("Signed in as {person[1]}")')
    wait_idle(page)
    no_exception(page)
    return page


def load_saved_model(page) -> None:
    """Train page: load the saved model (a session's own act, open to everyone)."""
    go(page, "Train")
    page.get_by_role("button", name="Load", exact=True).click()
    page.wait_for_selector("text=pump-ae", timeout=120_000)
    wait_idle(page)


def open_review(page) -> None:
    go(page, "Review")
    # the queue opens at its first open event: "Event 2 of N" once the first is decided
    page.locator("h3", has_text=re.compile(r"^Event \d+ of \d+")).first.wait_for(timeout=180_000)
    page.wait_for_function("!document.querySelector('[data-stale=\"true\"]')", timeout=120_000)
    wait_idle(page)
    no_exception(page)


def test_a_reviewer_signs_in_and_decides_as_the_verified_email(signed_app, provider, browser):
    from aeviz_core import ReviewStore

    url, db_url = signed_app
    page = sign_in(browser, url, REVIEWER, shot_name="9a_sign_in_signed_out")
    assert f"Signed in as {REVIEWER[1]} (reviewer)" in sidebar(page)
    load_saved_model(page)
    open_review(page)
    assert page.get_by_label("Reviewer", exact=True).count() == 0  # no name to type
    assert page.get_by_text(f"Deciding as {REVIEWER[1]}, signed in").count() == 1
    page.get_by_role("button", name="Confirm anomaly").click()
    page.wait_for_selector(f"text=/saved by {REVIEWER[1]}/", timeout=120_000)
    wait_idle(page)
    no_exception(page)
    shot(page, "9b_sign_in_reviewer_decided")
    audit = ReviewStore(db_url).audit()
    assert len(audit) == 1
    decided = audit.iloc[0]
    assert (decided["reviewer"], bool(decided["reviewer_verified"]), decided["reviewer_provider"],
            decided["reviewer_subject"], decided["new_status"]) == (REVIEWER[1], True, provider, REVIEWER[0],
                                                                    "confirmed")
    page.close()


def test_an_identity_without_a_role_sees_read_only_pages(signed_app, browser):
    url, db_url = signed_app
    page = sign_in(browser, url, VIEWER)
    assert f"Signed in as {VIEWER[1]} (viewer)" in sidebar(page)
    # the Data page: no uploader, the reason instead
    page.get_by_text("Upload a CSV or Parquet file").click()
    wait_idle(page)
    assert page.locator('input[type="file"]').count() == 0
    assert page.get_by_text("Read-only: uploading data needs the reviewer role").count() == 1
    before = rows(db_url)
    load_saved_model(page)
    open_review(page)
    assert page.get_by_text("Read-only: deciding, tagging, commenting and teaching the model").count() == 1
    for name in ("Confirm anomaly", "Dismiss: false alarm", "Post comment"):
        assert page.get_by_role("button", name=name).count() == 0
    assert page.get_by_role("button", name=re.compile("^Export")).count() == 1  # the export stays
    assert page.locator('[data-testid="stVegaLiteChart"]').count() >= 3  # and the charts
    shot(page, "9c_sign_in_viewer_read_only", scroll_to=page.get_by_text("Read-only: deciding"))
    assert rows(db_url) == before  # the page's view wrote nothing (not even the events)
    page.close()
