"""Scoring archives on a Dask cluster equals single-process scoring, partition edges included."""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")

from aeviz_core import (
    AutoencoderDetector,
    DataError,
    flags_to_events,
    load_detector,
    load_sensor_table,
    save_detector,
    score_table,
)
from aeviz_core.cli import main
from aeviz_core import score_archive
from aeviz_core.distributed import archive_files
from tests.conftest import make_series

ROW_GROUP = 250  # rows per Parquet partition here; the last row group holds only 10
PARTITION_ROWS = 400


def _recording(seed, n):
    frame = make_series(n, seed=seed)
    frame.loc[2000:2009, "b"] += 4.0  # one fault per file, to have events
    frame.insert(0, "time", pd.date_range("2026-03-01", periods=n, freq="s"))
    return frame


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    folder = tmp_path_factory.mktemp("archive")
    detector = AutoencoderDetector(window=16, stride=4, latent_dim=3, epochs=3, random_state=0)
    detector.fit(make_series(1500))
    save_detector(detector, folder / "model", extra={"time_col": "time", "drop": [], "label_cols": []})
    data = folder / "data"
    data.mkdir()
    _recording(0, 3010).to_parquet(data / "pump-a.parquet", row_group_size=ROW_GROUP)
    _recording(1, 2500).to_csv(data / "pump-b.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    # in-process workers: each is a WorkerPlugin host of its own, and no process re-imports TensorFlow
    with (LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
          Client(cluster) as client):
        yield client


@pytest.fixture(scope="module")
def scored(archive, client):
    summary = score_archive(str(archive / "data" / "pump-*"), archive / "model", archive / "out",
                            scheduler=client, partition_rows=PARTITION_ROWS)
    scores = pd.read_parquet(archive / "out" / "scores")
    return summary, scores


def _reference(archive, name):
    """Single-process scores of one whole file, and its channel scores."""
    detector = load_detector(archive / "model")
    data = load_sensor_table(archive / "data" / name)
    return detector, data, score_table(detector, data)


@pytest.mark.parametrize("name", ["pump-a.parquet", "pump-b.csv"])
def test_scores_equal_single_process(archive, scored, name):
    _, scores = scored
    _, _, whole = _reference(archive, name)
    got = scores[scores["file"] == str(archive / "data" / name)].reset_index(drop=True)
    assert got["row"].tolist() == list(range(len(whole)))
    np.testing.assert_allclose(got["score"], whole["score"], rtol=1e-5, atol=1e-7)
    assert (got["flag"] == whole["flag"]).all()
    assert (got["top_channel"] == whole["top_channel"]).mean() > 0.999
    assert (pd.to_datetime(got["time"]) == pd.to_datetime(whole["time"])).all()


def test_partition_edges(archive, scored):
    # Parquet partitions are the row groups: edges every 250 rows, a 10-row last partition
    _, scores = scored
    _, _, whole = _reference(archive, "pump-a.parquet")
    got = scores[scores["file"].str.endswith("pump-a.parquet")].reset_index(drop=True)
    edges = np.arange(ROW_GROUP, 3010, ROW_GROUP)
    near = np.unique(np.concatenate([edges + k for k in (-2, -1, 0, 1)]))
    np.testing.assert_allclose(got["score"].to_numpy()[near], whole["score"].to_numpy()[near], rtol=1e-5)
    np.testing.assert_allclose(got["score"].iloc[-10:], whole["score"].iloc[-10:], rtol=1e-5)


def test_summary_and_files(archive, scored):
    summary, scores = scored
    assert summary["files"] == 2 and summary["rows"] == 3010 + 2500 == len(scores)
    assert summary["flagged"] == int(scores["flag"].sum())
    assert summary["partitions"] >= 3010 // ROW_GROUP + 2
    assert list(scores.columns) == ["row", "time", "score", "flag", "top_channel", "file"]
    assert (archive / "out" / "events.parquet").is_file() and (archive / "out" / "events.csv").is_file()


def test_model_loaded_once_per_worker(scored):
    summary, _ = scored
    assert 1 <= summary["model_loads"] <= summary["workers"] == 2
    assert summary["partitions_scored"] == summary["partitions"]  # each partition scored once


def test_events_equal_single_process_events(archive, scored):
    events = pd.read_parquet(archive / "out" / "events.parquet")
    expected = []
    for name in ("pump-a.parquet", "pump-b.csv"):
        detector, data, whole = _reference(archive, name)
        _, channel_scores = detector.score_parts(data.channels)
        # the model's event gap (its window): runs that close are one event; an event's top channels
        # sum the channel scores of its flagged rows
        one = flags_to_events(whole["flag"], whole["score"],
                              channel_errors=channel_scores * whole["flag"].to_numpy()[:, None],
                              channel_names=list(data.channels.columns), time=whole["time"],
                              min_gap=detector.event_gap_rows())
        one.insert(0, "file", str(archive / "data" / name))
        expected.append(one)
    expected = pd.concat(expected, ignore_index=True)
    expected["event"] = np.arange(len(expected))
    assert len(events) == len(expected) > 0
    assert ((events["start"] <= 2009) & (events["end"] >= 2000)).groupby(events["file"]).any().all()
    for column in ("file", "event", "start", "end", "n_rows", "peak_row", "top_channel", "top_channels"):
        assert events[column].tolist() == expected[column].tolist(), column
    np.testing.assert_allclose(events["peak_score"], expected["peak_score"], rtol=1e-5)
    np.testing.assert_allclose(events["duration_s"], expected["duration_s"])
    assert (pd.to_datetime(events["start_time"]) == pd.to_datetime(expected["start_time"])).all()
    # the columns of aeviz score --events too, blamed on the workers as in a single process
    from aeviz_core.events import EVENT_FILE_COLUMNS

    assert set(EVENT_FILE_COLUMNS) <= set(events.columns)
    assert (events["event_id"] == events["start"].astype(str) + "-" + events["end"].astype(str)).all()
    for name in ("pump-a.parquet", "pump-b.csv"):
        detector, data, _ = _reference(archive, name)
        mine = events[events["file"] == str(archive / "data" / name)]
        spike = mine[(mine["start"] <= 2009) & (mine["end"] >= 2000)].iloc[0]
        shares = detector.blame(data.channels, int(spike["start"]), int(spike["end"]))
        assert spike["blamed_channel"] == "b" == data.channels.columns[int(np.argmax(shares))]
        assert spike["blame_share"] == pytest.approx(shares.max(), abs=1e-3)
        assert spike["area"] > 0 and spike["duration"] == pytest.approx(spike["duration_s"])


def test_unsorted_file_is_refused(archive, client, tmp_path):
    frame = _recording(2, 1200)
    frame.loc[700:, "time"] -= pd.Timedelta(hours=1)
    frame.to_parquet(tmp_path / "unsorted.parquet", row_group_size=ROW_GROUP)
    with pytest.raises(DataError, match="time order"):
        score_archive(tmp_path / "unsorted.parquet", archive / "model", tmp_path / "out", scheduler=client)


def test_archive_files(archive, tmp_path):
    data = archive / "data"
    assert archive_files(str(data / "*")) == [data / "pump-a.parquet", data / "pump-b.csv"]
    assert archive_files(data) == archive_files([data / "pump-b.csv", data / "pump-a.parquet"])
    with pytest.raises(DataError, match="no file matches"):
        archive_files(str(tmp_path / "*.parquet"))


def test_cli_dask_engine(archive, client, capsys):
    out = archive / "cli-out"
    code = main(["score", str(archive / "data" / "*.csv"), "--model", str(archive / "model"), "--out", str(out),
                 "--engine", "dask", "--scheduler", client.scheduler.address, "--chunk-rows", "600"])
    assert code == 0, capsys.readouterr().err
    assert "2500 rows" in capsys.readouterr().err
    assert len(pd.read_parquet(out / "scores")) == 2500
    assert (out / "events.parquet").is_file() and (out / "events.csv").is_file()


@pytest.mark.parametrize("extra", [["--engine", "dask"], ["--scheduler", "tcp://127.0.0.1:1"]])
def test_cli_bad_input(archive, tmp_path, capsys, extra):
    code = main(["score", str(tmp_path / "nothing-*.parquet"), "--model", str(archive / "model"),
                 "--out", str(tmp_path / "out"), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("aeviz: error:") and len(err.splitlines()) == 1


# ---------------------------------------------------------------------------- one series in many files


@pytest.fixture(scope="module")
def continuous(archive, tmp_path_factory):
    """One 6,000-row series cut into six consecutive files, named so that name order is not time
    order, half CSV and half Parquet; a fault crosses the boundary between the 3rd and 4th."""
    folder = tmp_path_factory.mktemp("continuous")
    series = make_series(6000, seed=3)
    series.loc[2960:3040, "c"] += 1.5
    series.insert(0, "time", pd.date_range("2026-03-01", periods=len(series), freq="s"))
    names = ["f-e", "f-b", "f-f", "f-a", "f-d", "f-c"]  # the k-th piece of the series
    for k, name in enumerate(names):
        piece = series.iloc[1000 * k : 1000 * (k + 1)]
        if k % 2:
            piece.to_parquet(folder / f"{name}.parquet", row_group_size=ROW_GROUP, index=False)
        else:
            piece.to_csv(folder / f"{name}.csv", index=False)
    series.to_csv(folder / "whole.csv.all", index=False)  # not picked up by the glob below
    return folder, names


def test_continuous_series_equals_the_concatenated_series(archive, continuous, client, tmp_path):
    folder, names = continuous
    summary = score_archive(str(folder / "f-*"), archive / "model", tmp_path / "out", scheduler=client,
                            partition_rows=PARTITION_ROWS, series="continuous")
    scores = pd.read_parquet(tmp_path / "out" / "scores").sort_values("row").reset_index(drop=True)
    detector = load_detector(archive / "model")
    whole = score_table(detector, load_sensor_table(folder / "whole.csv.all"))
    assert summary["rows"] == 6000 and scores["row"].tolist() == list(range(6000))
    np.testing.assert_allclose(scores["score"], whole["score"], rtol=1e-5, atol=1e-7)  # file edges included
    assert (scores["flag"] == whole["flag"]).all()
    # each row is told which file holds it: the files in time order, not in name order
    holder = [f"f-{n.split('-')[1]}" for n in scores["file"].map(lambda f: f.rsplit("/", 1)[-1].split(".")[0])]
    assert holder[::1000] == names
    events = pd.read_parquet(tmp_path / "out" / "events.parquet")
    expected = flags_to_events(whole["flag"].to_numpy(), whole["score"].to_numpy(), min_gap=detector.event_gap_rows())
    assert list(zip(events["start"], events["end"])) == list(zip(expected["start"], expected["end"]))
    crossing = events[(events["start"] < 3000) & (events["end"] >= 3000)]
    assert len(crossing) == 1 and crossing.iloc[0]["file"].endswith("f-f.csv")  # once, under its first file
    assert crossing.iloc[0]["blamed_channel"] == "c"  # blamed from rows read across the two files
    # per file (the default), the rows at the boundaries differ: the halo stops at each file's edge
    per_file = score_archive(str(folder / "f-*"), archive / "model", tmp_path / "per-file", scheduler=client,
                             partition_rows=PARTITION_ROWS)
    assert per_file["rows"] == 6000
    alone = pd.read_parquet(tmp_path / "per-file" / "scores").sort_values("time").reset_index(drop=True)
    differ = np.abs(alone["score"].to_numpy() - whole["score"].to_numpy()) > 1e-3
    assert differ[[k * 1000 + d for k in range(1, 6) for d in (-1, 0)]].all()  # each file's edge rows


def test_continuous_series_refuses_overlaps_and_other_columns(archive, continuous, tmp_path):
    from aeviz_core.distributed import series_order

    folder, _ = continuous
    files = sorted(folder.glob("f-*"))
    late = pd.read_csv(folder / "f-e.csv")  # the first piece again, shifted to overlap the second
    late["time"] = pd.to_datetime(late["time"]) + pd.Timedelta(seconds=500)
    late.to_csv(tmp_path / "overlap.csv", index=False)
    with pytest.raises(DataError, match=r"f-e.csv .* and overlap.csv .* overlap in time"):
        series_order([*files, tmp_path / "overlap.csv"], "time")
    other = pd.read_csv(folder / "f-e.csv").rename(columns={"c": "cc"})
    other.to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(DataError, match=r"other.csv and .* hold other columns \(other.csv only: \['cc'\]"):
        series_order([*files, tmp_path / "other.csv"], "time")
    with pytest.raises(ValueError, match="series must be one of"):
        score_archive(str(folder / "f-*"), archive / "model", tmp_path / "x", series="glued")


def test_cli_scores_a_continuous_series_locally_and_on_dask_alike(archive, continuous, tmp_path):
    folder, _ = continuous
    model = str(archive / "model")
    assert main(["score", str(folder / "f-*"), "--model", model, "--out", str(tmp_path / "local.csv"),
                 "--series", "continuous", "--chunk-rows", "700", "--events", str(tmp_path / "events.csv")]) == 0
    local = pd.read_csv(tmp_path / "local.csv")
    whole = score_table(load_detector(archive / "model"), load_sensor_table(folder / "whole.csv.all"))
    assert local["row"].tolist() == list(range(6000))
    np.testing.assert_allclose(local["score"], whole["score"], rtol=1e-5, atol=1e-7)
    events = pd.read_csv(tmp_path / "events.csv")
    assert ((events["start_row"] < 3000) & (events["end_row"] >= 3000)).sum() == 1  # across two files, once
    assert main(["score", str(folder / "f-*"), "--model", model, "--out", str(tmp_path / "dask"),
                 "--engine", "dask", "--series", "continuous", "--chunk-rows", "400"]) == 0
    on_dask = pd.read_parquet(tmp_path / "dask" / "scores").sort_values("row").reset_index(drop=True)
    np.testing.assert_allclose(on_dask["score"], local["score"], rtol=1e-5, atol=1e-7)
