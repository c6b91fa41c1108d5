import subprocess
import sys

import pandas as pd
import pytest

from aeviz_core.cli import main


@pytest.fixture(scope="module")
def sensor_csv(tmp_path_factory):
    from tests.conftest import make_series

    frame = make_series(2400, seed=1)
    frame.insert(0, "time", pd.date_range("2026-01-01", periods=len(frame), freq="s"))
    frame["anomaly"] = 0
    frame.loc[2000:2009, "b"] += 4.0
    frame.loc[2000:2009, "anomaly"] = 1
    path = tmp_path_factory.mktemp("cli") / "plant.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def trained(sensor_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("models") / "model"
    code = main(["train", str(sensor_csv), "--out", str(out), "--window", "16", "--stride", "2",
                 "--latent-dim", "3", "--epochs", "8", "--seed", "0"])
    assert code == 0
    return out


def test_train_writes_a_model_directory(trained):
    assert (trained / "model.keras").is_file() and (trained / "aeviz.json").is_file()


def test_score_writes_one_line_per_row(trained, sensor_csv, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    assert main(["score", str(sensor_csv), "--model", str(trained), "--out", str(out)]) == 0
    scores = pd.read_csv(out)
    assert list(scores.columns) == ["row", "time", "score", "flag", "top_channel"]
    assert len(scores) == 2400 and scores["row"].tolist() == list(range(2400))
    assert scores["score"].notna().all() and set(scores["flag"]) <= {0, 1}
    assert scores.loc[2000:2009, "flag"].mean() >= 0.8
    assert (scores.loc[2000:2009, "top_channel"] == "b").mean() >= 0.8
    assert "flagged" in capsys.readouterr().err


def test_training_used_only_rows_labelled_normal(trained, capsys):
    import json

    meta = json.loads((trained / "aeviz.json").read_text())
    assert meta["extra"]["train_rows"] == 2390
    assert meta["extra"]["label_cols"] == ["anomaly"]


def test_train_rows_option(sensor_csv, tmp_path, capsys):
    code = main(["train", str(sensor_csv), "--out", str(tmp_path / "m"), "--window", "8", "--stride", "4",
                 "--epochs", "1", "--train-rows", "500"])
    assert code == 0
    assert "first 500 rows" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["train", "{missing}", "--out", "{tmp}/m"], "not found"),
    (["train", "{csv}", "--out", "{tmp}/m", "--window", "1"], "--window must be 0"),
    (["train", "{csv}", "--out", "{tmp}/m", "--train-rows", "1"], "--train-rows must be at least 2"),
    (["train", "{csv}", "--out", "{tmp}/m", "--drop", "nope"], "nope"),
    (["score", "{csv}", "--model", "{tmp}", "--out", "{tmp}/s.csv"], "not an aeviz model directory"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, sensor_csv, tmp_path, capsys):
    filled = [a.format(missing=tmp_path / "none.csv", tmp=tmp_path, csv=sensor_csv) for a in args]
    assert main(filled) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("aeviz: error:")]
    assert len(errors) == 1 and message in errors[0] and err.splitlines()[-1] == errors[0]


def test_other_channels_than_the_model(trained, sensor_csv, tmp_path, capsys):
    frame = pd.read_csv(sensor_csv).rename(columns={"c": "pressure"})
    path = tmp_path / "other.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "s.csv"
    assert main(["score", str(path), "--model", str(trained), "--out", str(out)]) == 2
    assert "do not match the model" in capsys.readouterr().err
    assert not out.exists()


def test_scoring_failure_leaves_an_earlier_output_alone(trained, sensor_csv, tmp_path):
    out = tmp_path / "s.csv"
    out.write_text("precious")
    bad = tmp_path / "bad.csv"
    bad.write_text("time,a\n")
    assert main(["score", str(bad), "--model", str(trained), "--out", str(out)]) == 2
    assert out.read_text() == "precious"


def test_python_dash_m_runs_without_a_traceback(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_bytes(b"\x00\x01\x02 binary junk \xff\xfe")
    proc = subprocess.run([sys.executable, "-m", "aeviz_core", "score", str(bad), "--model", str(tmp_path),
                           "--out", str(tmp_path / "o.csv")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("aeviz: error:")
