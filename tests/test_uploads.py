"""Uploads in a real browser: the configured size limit is enforced with a message,
and a 1,000,000-row CSV is read without the server's memory passing 1.5 GB."""

from __future__ import annotations

import threading
import time
import tomllib

import numpy as np
import pytest

from tests.test_browser import (  # noqa: F401  (browser is a fixture)
    ROOT,
    _need_browser,
    browser,
    free_port,
    no_exception,
    open_app,
    start_app,
    stop_app,
    wait_idle,
)

pytestmark = pytest.mark.browser

LIMIT_MB = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _need_browser()
    port = free_port()
    proc = start_app(ROOT / "streamlit_app.py", port, {"AEVIZ_MODEL_DIR": str(tmp_path_factory.mktemp("m"))})
    yield f"http://127.0.0.1:{port}", proc
    stop_app(proc)


def open_upload(browser, url):
    page = open_app(browser, url, timeout_ms=120_000)
    page.get_by_text("Upload a CSV or Parquet file").click()
    wait_idle(page)
    return page


def test_a_file_over_the_limit_is_refused_with_a_message(server, browser, tmp_path):
    url, _ = server
    big = tmp_path / "too_big.csv"
    with open(big, "wb") as fh:
        fh.write(b"time,a\n")
        fh.write(b"0,1.0\n" * ((LIMIT_MB * 2**20) // 6 + 1000))
    page = open_upload(browser, url)
    page.locator('input[type="file"]').set_input_files(str(big))
    page.wait_for_selector(f"text=/must be {LIMIT_MB}(\\.0)?\\s?MB or smaller/", timeout=60_000)
    no_exception(page)
    assert page.get_by_text("pump_station.csv").count() >= 1  # the sample is still the data set
    page.close()


def test_a_million_row_upload_stays_under_1_5_gb(server, browser, tmp_path):
    import psutil

    url, proc = server
    rng = np.random.default_rng(0)
    n = 1_000_000
    path = tmp_path / "million.csv"
    values = np.round(rng.normal(size=(n, 4)), 3)
    with open(path, "w") as fh:
        fh.write("time,a,b,c,d\n")
        np.savetxt(fh, np.c_[np.arange(n), values], fmt=["%d", "%.3f", "%.3f", "%.3f", "%.3f"], delimiter=",")
    assert path.stat().st_size < LIMIT_MB * 2**20
    server_process = psutil.Process(proc.pid)
    peak = [server_process.memory_info().rss]
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                peak.append(server_process.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    page = open_upload(browser, url)
    page.locator('input[type="file"]').set_input_files(str(path))
    page.wait_for_selector("text=million.csv", timeout=240_000)
    page.wait_for_selector("text=/1,000,000 rows/", timeout=240_000)
    wait_idle(page, timeout=240_000)
    no_exception(page)
    done.set()
    sampler.join(5)
    peak_mb = max(peak) / 2**20
    print(f"peak server RSS during a 1,000,000-row upload: {peak_mb:.0f} MB")
    assert peak_mb < 1536
    page.close()
