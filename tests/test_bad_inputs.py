"""Every malformed file in tests/data/bad/ ends in a clear one-line message, nothing lost.

Each file of the corpus (written by ``scripts/make_bad_inputs.py``, which also
says what must become of it) goes through the loader, ``aeviz score`` with a
model trained once for this module, and the app's upload. A failure is one
line that names the problem, exit code 2, no traceback; the model directory,
an earlier output file and the review store are untouched. Repairable files
load with a warning that names the repair.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aeviz_core import DataError, load_sensor_table
from aeviz_core.cli import main

ROOT = Path(__file__).resolve().parent.parent
BAD = ROOT / "tests" / "data" / "bad"


def _corpus_module():
    spec = importlib.util.spec_from_file_location("make_bad_inputs", ROOT / "scripts" / "make_bad_inputs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


M = _corpus_module()
CORPUS = M.CORPUS
IDS = [item.name for item in CORPUS]


def tree_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- the corpus


def test_the_corpus_is_what_the_script_writes(tmp_path):
    M.write(tmp_path)
    assert len(CORPUS) >= 25
    assert tree_hashes(BAD) == tree_hashes(tmp_path), "run: python scripts/make_bad_inputs.py"


def test_every_file_is_documented_with_its_outcome():
    readme = (BAD / "README.md").read_text(encoding="utf-8")
    for item in CORPUS:
        line = next(line for line in readme.splitlines() if line.startswith(f"- `{item.name}`"))
        assert f"load {item.load}" in line and f"score {item.cli}" in line
        if item.load_msg:
            assert item.load_msg in line


# --------------------------------------------------------------------------- the loader


@pytest.mark.parametrize("item", CORPUS, ids=IDS)
def test_loader(item):
    path = BAD / item.name
    if item.load == "error":
        with pytest.raises(DataError) as err:
            load_sensor_table(path)
        message = str(err.value)
        assert item.load_msg in message
        assert "\n" not in message and len(message) < 400, message
        # an upload (bytes with a name, as Streamlit hands it over) gets the same message
        upload = io.BytesIO(path.read_bytes())
        upload.name = item.name
        with pytest.raises(DataError, match="^" + re.escape(message) + "$"):
            load_sensor_table(upload)
        return
    data = load_sensor_table(path)
    values = data.channels.to_numpy()
    gap = np.zeros(len(values), bool)
    for a, b in data.report.gap_rows:  # a long missing run stays a gap: NaN, named in a warning
        gap[a:b] = True
    assert np.isfinite(values[~gap]).all() and len(values) >= 2
    assert data.labels.index.equals(data.channels.index)
    if item.load == "warning":
        assert any(item.load_msg in w for w in data.report.warnings), data.report.warnings
    else:
        assert data.report.warnings == []


def test_repairs_keep_every_value():
    """Nothing lost: sorting, duplicates and interpolation keep every row and every known value."""
    base = M.frame()
    channels = list(M.CHANNELS)
    unsorted = load_sensor_table(BAD / "unsorted_timestamps.csv")
    np.testing.assert_array_equal(unsorted.channels.to_numpy(), base[channels].to_numpy())
    assert unsorted.time.is_monotonic_increasing and unsorted.report.unsorted
    duplicates = load_sensor_table(BAD / "duplicate_timestamps.csv")
    np.testing.assert_array_equal(duplicates.channels.to_numpy(), base[channels].to_numpy())
    gaps = load_sensor_table(BAD / "nan_short_gaps.csv")
    known = ~pd.read_csv(BAD / "nan_short_gaps.csv")[channels].isna().to_numpy()
    np.testing.assert_array_equal(gaps.channels.to_numpy()[known], base[channels].to_numpy()[known])
    assert gaps.report.interpolated == {"a": 3, "b": 3}
    constant = load_sensor_table(BAD / "constant_channel.csv")
    assert constant.report.constant_channels == ["a"] and (constant.channels["a"] == 0.25).all()
    labels = load_sensor_table(BAD / "strange_labels.csv")
    assert labels.labels["anomaly"].tolist()[:5] == ["0", "1", "yes", "", "maybe"]


def test_numbers_with_thousands_separators_are_not_taken_for_dates():
    content = b'a,b\n"1,234.5",2\n"2,345.1",3\n"3,456.7",4\n'
    with pytest.raises(DataError, match=r"column 'a' has '1,234\.5' at row 1 .*thousands separators"):
        load_sensor_table(content)


def test_no_false_alarms_on_ordinary_tables(tmp_path):
    """The new checks stay quiet on ordinary files: numbered columns, class labels, a name with a space."""
    from aeviz_core import write_digits_csv

    digits = load_sensor_table(write_digits_csv(tmp_path / "digits.csv"))  # label 0-9, columns p0..p63
    assert all("is constant" in w for w in digits.report.warnings)  # blank border pixels
    numbered = load_sensor_table(b"0,1,2\n1.5,2,3\n4,5,6.5\n")  # columns named 0, 1, 2
    assert numbered.channel_names == ["0", "1", "2"] and numbered.report.warnings == []
    spaced = load_sensor_table(b"flow rate\n1.5\n2.5\n3.5\n")
    assert spaced.channel_names == ["flow rate"] and spaced.report.warnings == []
    binary = load_sensor_table(b"a,anomaly,fault_type\n1,0,\n2,1,leak\n3,0,\n")
    assert binary.report.warnings == []


@pytest.mark.parametrize("item", [i for i in CORPUS if not i.name.endswith(".parquet")],
                         ids=[i.name for i in CORPUS if not i.name.endswith(".parquet")])
def test_sniffing_for_chunked_readers_agrees_with_the_loader(item):
    """sniff_text_file (for readers that parse a file in chunks) fails with the loader's own
    message, or gives the encoding, separator and decimal mark that read the file."""
    from aeviz_core.data import sniff_text_file

    path = BAD / item.name
    try:
        data, problem = load_sensor_table(path), None
    except DataError as exc:
        data, problem = None, str(exc)
    try:
        sniffed = sniff_text_file(path)
    except DataError as exc:
        assert str(exc) == problem
        return
    if data is not None:
        frame = pd.read_csv(path, sep=sniffed["sep"], decimal=sniffed["decimal"], encoding=sniffed["encoding"])
        assert set(data.channel_names) <= {str(c).strip() for c in frame.columns}
        assert sniffed["warnings"] == [w for w in data.report.warnings if "UTF-8" in w]


# --------------------------------------------------------------------------- aeviz score


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small model on channels a, b, c, level with a window of 16 rows (trained once)."""
    from tests.conftest import make_series

    folder = tmp_path_factory.mktemp("bad_inputs")
    frame = make_series(1500, seed=0)
    frame.insert(0, "time", pd.date_range("2026-01-01", periods=len(frame), freq="s"))
    frame.to_csv(folder / "train.csv", index=False)
    out = folder / "model"
    code = main(["train", str(folder / "train.csv"), "--out", str(out), "--window", str(M.WINDOW),
                 "--stride", "4", "--epochs", "2", "--latent-dim", "3", "--seed", "0"])
    assert code == 0
    return out


@pytest.mark.parametrize("item", CORPUS, ids=IDS)
def test_score(item, model_dir, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    out.write_text("an earlier output\n")
    before = tree_hashes(model_dir)
    code = main(["score", str(BAD / item.name), "--model", str(model_dir), "--out", str(out)])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()

    assert "Traceback" not in err
    assert tree_hashes(model_dir) == before, "scoring must not touch the model directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"], "no temporary file left"
    if code != 0:
        assert code == 2
        errors = [line for line in lines if line.startswith("aeviz: error:")]
        assert len(errors) == 1 and lines[-1] == errors[0], lines
        assert len(errors[0]) < 500, errors[0]
        assert out.read_text() == "an earlier output\n", "a failed run must leave the output alone"
    else:
        scores = pd.read_csv(out)
        loaded = load_sensor_table(BAD / item.name)
        assert len(scores) == len(loaded.channels)
        # no score in a gap, nor in a stretch between gaps shorter than the model's window
        unscored = np.zeros(len(scores), bool)
        edges = [0, *[edge for gap in loaded.report.gap_rows for edge in gap], len(scores)]
        for a, b in loaded.report.gap_rows:
            unscored[a:b] = True
        for a, b in zip(edges[::2], edges[1::2]):
            unscored[a:b] |= b - a < M.WINDOW
        values = scores["score"].to_numpy(dtype=float)
        finite = (np.isfinite(values[~unscored]).all() and np.isnan(values[unscored]).all()
                  and not scores["flag"][unscored].any())

    # what the corpus promises
    if item.cli == "error":
        assert code == 2, f"exit code {code}"
        assert item.cli_msg in lines[-1] and "\\x00" not in lines[-1], lines[-1]
    else:
        assert code == 0, lines[-1]
        assert finite, "scores must be finite"
        if item.cli_msg:
            assert any(line.startswith("aeviz: warning:") and item.cli_msg in line for line in lines), lines


def test_python_dash_m_prints_no_traceback(model_dir, tmp_path):
    """Through a real terminal process: one line on stderr, exit 2, no traceback, no output."""
    out = tmp_path / "scores.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "aeviz_core", "score", str(BAD / "mixed_types.csv"), "--model", str(model_dir),
         "--out", str(out)], check=False, capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("aeviz: error: column 'b' has text 'n/a?' at row 41")
    assert not out.exists()


# --------------------------------------------------------------------------- the app's upload


@pytest.fixture(scope="module")
def app(model_dir, tmp_path_factory):
    """One app session on the Data page, 'upload' chosen, with a saved model and a review store.

    Returns ``(at, folder)``; ``folder`` holds ``models/`` and ``reviews.db``, which no
    upload may change.
    """
    import shutil

    from streamlit.testing.v1 import AppTest

    from aeviz_core import ReviewStore

    folder = tmp_path_factory.mktemp("app")
    shutil.copytree(model_dir, folder / "models" / "sensors")
    store = ReviewStore(f"sqlite:///{folder / 'reviews.db'}")
    store.upsert_events("model-1", "data-1", pd.DataFrame({"start": [3], "end": [5]}))
    store.set_review("model-1", "data-1", 3, 5, "confirmed", reviewer="test", expected_version=0)
    store.close()
    mp = pytest.MonkeyPatch()
    mp.setenv("AEVIZ_MODEL_DIR", str(folder / "models"))
    mp.setenv("AEVIZ_DB_PATH", str(folder / "reviews.db"))
    mp.delenv("AEVIZ_DB_URL", raising=False)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180).run()
    at.radio(key="data.source").set_value("upload")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    yield at, folder
    mp.undo()


@pytest.mark.parametrize("item", CORPUS, ids=IDS)
def test_upload(item, app):
    at, folder = app
    before = tree_hashes(folder)
    kept = at.session_state["dataset"].name
    if not at.title or at.title[0].value != "Data":
        at.switch_page("pages/1_data.py").run()
    at.file_uploader(key="data.upload").set_value((item.name, item.content, "application/octet-stream"))
    at.run()

    assert not at.exception, [e.value for e in at.exception]
    assert tree_hashes(folder) == before, "an upload must not touch saved models or reviews"
    errors = [e.value for e in at.error]
    if item.load == "error":
        assert len(errors) == 1 and item.name in errors[0] and item.load_msg in errors[0], errors
        assert at.session_state["dataset"].name == kept, "a bad upload keeps the current data"
        return
    assert not errors, errors
    assert at.session_state["dataset"].name == item.name
    if item.load == "warning":
        assert any(item.load_msg in w.value for w in at.warning), [w.value for w in at.warning]


def test_pages_with_a_model_survive_the_repairable_files(app):
    """With a saved model loaded: data it cannot score is said so, data it can is scored."""
    at, _ = app
    at.switch_page("pages/2_train.py").run()
    at.button(key="train.load").click()
    at.run()
    assert "sensors" in at.session_state["models"]
    for name, fits in [("constant_channel.csv", True), ("huge_but_finite.csv", True),
                       ("too_short.csv", False), ("other_channels.csv", False)]:
        at.switch_page("pages/1_data.py").run()
        if not any(u.key == "data.upload" for u in at.get("file_uploader")):  # alone, the page opens on the samples
            at.radio(key="data.source").set_value("upload").run()
        at.file_uploader(key="data.upload").set_value((name, (BAD / name).read_bytes(), "text/csv"))
        at.run()
        at.switch_page("pages/4_anomalies.py").run()
        assert not at.exception, (name, [e.value for e in at.exception])
        no_model = [i.value for i in at.info if "No model fits" in i.value]
        assert bool(no_model) != fits, (name, no_model)
