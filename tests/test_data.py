"""Loading sensor tables: every malformed input, the repairs, and the digit sets."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from aeviz_core import (
    DataError,
    DatasetUnavailableError,
    SensorData,
    load_mnist,
    load_sensor_table,
    load_uci_digits,
    write_digits_csv,
)
from aeviz_core.data import mnist_cached

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def table(n: int = 6, sep: str = ",", **columns) -> str:
    """A small CSV text: a 1 s time column plus the given channel columns."""
    frame = pd.DataFrame(
        {"time": pd.date_range("2026-01-05", periods=n, freq="s").strftime("%Y-%m-%d %H:%M:%S")}
    )
    for name, values in columns.items():
        frame[name] = values
    return frame.to_csv(index=False, sep=sep, lineterminator="\n")


# --------------------------------------------------------------------------
# malformed input: DataError naming the problem, the column and the row


@pytest.mark.parametrize(
    "content, pattern",
    [
        ("", r"is empty"),
        ("  \n\n", r"is empty"),
        ("time,a,b\n", r"header \('time', 'a', 'b'\) but no data rows"),
        ("time,a\n2026-01-05 00:00:00,1\n", r"only 1 data row.*min_rows=2"),
        (
            "time,anomaly\n2026-01-05 00:00:00,0\n2026-01-05 00:00:01,1\n",
            r"no numeric channel: only time column 'time' and label column\(s\) 'anomaly'",
        ),
        ("a,b\n1,2\n3,4,5\n6,7\n", r"row 2 \(line 3 of the file\) has 3 fields, the header has 2"),
    ],
    ids=["empty", "blank", "header-only", "one-row", "no-channel", "ragged"],
)
def test_structural_problems_are_named(tmp_path, content, pattern):
    with pytest.raises(DataError, match=pattern):
        load_sensor_table(write(tmp_path, "bad.csv", content))


def test_text_in_a_channel_names_column_row_value_and_the_fix():
    content = table(a=[1, 2, 3, 4, 5, 6], b=["1.5", "2.5", "oops", "4", "5", "6"])
    with pytest.raises(DataError) as err:
        load_sensor_table(content.encode())
    message = str(err.value)
    assert "column 'b' has text 'oops' at row 3" in message
    assert "drop=['b']" in message and "label_cols=['b']" in message


def test_a_column_of_text_suggests_drop_or_label_cols():
    content = table(a=[1, 2, 3, 4, 5, 6], site=["north", "south"] * 3)
    with pytest.raises(DataError, match=r"column 'site' is text \(e\.g\. 'north' at row 1\).*"
                                        r"drop=\['site'\].*label_cols=\['site'\]"):
        load_sensor_table(content.encode())
    data = load_sensor_table(content.encode(), label_cols=["site"])
    assert data.channel_names == ["a"] and data.labels["site"].tolist()[:2] == ["north", "south"]
    assert load_sensor_table(content.encode(), drop="site").channel_names == ["a"]


def test_a_long_missing_run_is_a_gap_named_with_column_and_rows():
    a = np.arange(30, dtype=float)
    a[4:16] = np.nan  # rows 5-16, 12 in a row
    data = load_sensor_table(table(30, a=a).encode())
    assert data.report.gap_rows == [(4, 16)] and np.isnan(data.channels["a"][4:16]).all()
    assert any("gap of 12 row(s) at rows 5-16" in w and "'a' missing for longer than max_gap=10" in w
               for w in data.report.warnings)
    assert load_sensor_table(table(30, a=a).encode(), max_gap=12).report.interpolated == {"a": 12}


def test_overflowing_numbers_become_inf_and_are_handled_as_missing():
    values = ["1", "2", "1e400", "4", "5", "6"]
    data = load_sensor_table(table(a=values).encode())
    np.testing.assert_allclose(data.channels["a"], [1, 2, 3, 4, 5, 6])
    assert data.report.interpolated == {"a": 1}
    assert any("infinite" in w for w in data.report.warnings)
    many = ["1"] + ["-1e999"] * 4 + ["6"]
    gappy = load_sensor_table(table(a=many).encode(), max_gap=3)
    assert gappy.report.gap_rows == [(1, 5)] and any("rows 2-5" in w for w in gappy.report.warnings)


def test_values_beyond_float32_are_refused():
    with pytest.raises(DataError, match=r"column 'a' has 1e\+300 at row 2, beyond the float32"):
        load_sensor_table(table(a=[1, 1e300, 3, 4, 5, 6]).encode())


def test_a_column_with_no_value_is_refused():
    content = "a,b\n1,\n2,\n3,\n"
    with pytest.raises(DataError, match=r"column 'b' has no finite value"):
        load_sensor_table(content.encode())


def test_bad_and_missing_timestamps_name_the_row():
    content = "time,a\n2026-01-05 00:00:00,1\nnot a date,2\n2026-01-05 00:00:02,3\n"
    with pytest.raises(DataError, match=r"time column 'time' has 'not a date' at row 2"):
        load_sensor_table(content.encode())
    content = "time,a\n2026-01-05 00:00:00,1\n2026-01-05 00:00:01,2\n,3\n"
    with pytest.raises(DataError, match=r"time column 'time' has no value at row 3"):
        load_sensor_table(content.encode())


@pytest.mark.parametrize(
    "name, content, pattern",
    [
        ("junk.csv", np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
         r"junk\.csv is not a text table"),
        ("image.csv", b"\x89PNG\r\n\x1a\n" + bytes(200), r"image\.csv is a PNG image"),
        ("photo.csv", b"\xff\xd8\xff\xe0" + bytes(200), r"photo\.csv is a JPEG image"),
        ("broken.parquet", b"PAR1 this is not really parquet", r"could not read the Parquet file"),
        ("text.parquet", b"time,a\n1,2\n", r"text\.parquet: could not read the Parquet file"),
    ],
    ids=["binary", "png", "jpeg", "bad-parquet", "csv-as-parquet"],
)
def test_files_that_are_not_tables(tmp_path, name, content, pattern):
    with pytest.raises(DataError, match=pattern):
        load_sensor_table(write(tmp_path, name, content))


def test_a_zip_renamed_csv(tmp_path):
    path = tmp_path / "data.csv"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("inner.csv", table(a=[1, 2, 3, 4, 5, 6]))
    with pytest.raises(DataError, match=r"data\.csv is a ZIP archive"):
        load_sensor_table(path)


def test_binary_junk_without_nul_bytes_is_refused():
    rng = np.random.default_rng(1)
    junk = rng.integers(1, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(DataError, match=r"not a text table"):
        load_sensor_table(junk)


@pytest.mark.parametrize(
    "content, pattern",
    [
        (b"<!DOCTYPE html><html><body>login</body></html>\n", r"looks like an HTML/XML document"),
        (b'{"time": [1, 2], "a": [3, 4]}', r"looks like JSON"),
        (b"time,a,end\n2026-01-05 00:00:00,1,2026-01-06\n2026-01-05 00:00:01,2,2026-01-07\n",
         (r"column 'end' holds dates/times \(e\.g\. '2026-01-06' at row 1; 'time' is the time "
          r"column\): remove it with drop=\['end'\]")),
    ],
    ids=["html", "json", "second-date-column"],
)
def test_other_things_that_are_not_sensor_tables(content, pattern):
    with pytest.raises(DataError, match=pattern):
        load_sensor_table(content)


def test_too_many_channels():
    content = table(**{f"c{i}": np.arange(6.0) + i for i in range(5)})
    with pytest.raises(DataError, match=r"has 5 channels, more than max_channels=3"):
        load_sensor_table(content.encode(), max_channels=3)


def test_unknown_names_in_drop_label_cols_and_time_col():
    content = table(a=np.arange(6.0)).encode()
    with pytest.raises(DataError, match=r"drop names column\(s\) not in <bytes>: 'nope'"):
        load_sensor_table(content, drop=["a", "nope"])
    with pytest.raises(DataError, match=r"label_cols names column\(s\) not in.*'nope'"):
        load_sensor_table(content, label_cols=["nope"])
    with pytest.raises(DataError, match=r"time_col='nope' is not a column"):
        load_sensor_table(content, time_col="nope")


def test_missing_file_and_wrong_source_type(tmp_path):
    with pytest.raises(DataError, match=r"file not found"):
        load_sensor_table(tmp_path / "absent.csv")
    with pytest.raises(TypeError, match=r"source must be"):
        load_sensor_table(12)


def test_parameter_errors_name_the_parameter():
    with pytest.raises(ValueError, match=r"max_gap must be an integer >= 0, got -1"):
        load_sensor_table(b"a\n1\n2\n", max_gap=-1)
    with pytest.raises(ValueError, match=r"sep must be a single character"):
        load_sensor_table(b"a\n1\n2\n", sep=";;")


# --------------------------------------------------------------------------
# good paths


CHANNELS = {"a": [1.5, 2.5, 3.5, 4.5, 5.5, 6.5], "b": [10, 20, 30, 40, 50, 60]}


@pytest.mark.parametrize("sep", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_separators_are_detected(tmp_path, sep):
    data = load_sensor_table(write(tmp_path, "t.txt", table(sep=sep, **CHANNELS)))
    assert data.channel_names == ["a", "b"]
    np.testing.assert_array_equal(data.channels["a"], CHANNELS["a"])
    assert pd.api.types.is_datetime64_any_dtype(data.time)
    assert data.report.warnings == []


def test_decimal_commas_with_semicolons():
    content = table(sep=";", **CHANNELS).replace(".5", ",5")
    assert "1,5" in content
    data = load_sensor_table(content.encode())
    np.testing.assert_array_equal(data.channels["a"], CHANNELS["a"])


def test_quoted_decimal_commas_and_day_first_dates():
    quoted = b'"time","a"\n"2026-01-05 00:00:00","1,5"\n"2026-01-05 00:00:01","2,5"\n'
    assert load_sensor_table(quoted).channels["a"].tolist() == [1.5, 2.5]
    dotted = b"Datum;a\n05.01.2026 10:00;1,5\n05.01.2026 10:01;2,5\n"
    data = load_sensor_table(dotted, time_col="Datum")
    assert data.time.iloc[0] == pd.Timestamp("2026-01-05 10:00")


def test_trailing_separators_and_a_saved_index_are_dropped():
    data = load_sensor_table(b"a;b;\n1;2;\n3;4;\n")
    assert data.channel_names == ["a", "b"]
    assert any("without a header" in w for w in data.report.warnings)
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    data = load_sensor_table(frame.to_csv().encode())  # index written as a first column
    assert data.channel_names == ["a"]
    assert any("saved row index" in w for w in data.report.warnings)


def test_forced_separator():
    data = load_sensor_table(table(sep=";", **CHANNELS).encode(), sep=";")
    assert data.channel_names == ["a", "b"]


def test_utf8_bom_and_latin1_fallback():
    bom = "\ufeff" + table(**CHANNELS)
    data = load_sensor_table(bom.encode("utf-8"))
    assert data.time is not None and data.time.name == "time"
    latin = table(**{"temp_°C": CHANNELS["a"]}).encode("latin-1")
    data = load_sensor_table(latin)
    assert data.channel_names == ["temp_°C"]
    assert any("latin-1" in w for w in data.report.warnings)


def test_parquet_round_trip(tmp_path):
    frame = pd.DataFrame({
        "timestamp": pd.date_range("2026-01-05", periods=6, freq="s"),
        "a": CHANNELS["a"], "b": CHANNELS["b"], "anomaly": [0, 0, 1, 0, 0, 0],
    })
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    data = load_sensor_table(path)
    assert data.channel_names == ["a", "b"] and data.labels.columns.tolist() == ["anomaly"]
    assert data.channels.dtypes.eq(np.float64).all()
    pd.testing.assert_series_equal(data.time, frame["timestamp"], check_dtype=False)
    assert data.fingerprint() == load_sensor_table(table(**CHANNELS).encode()).fingerprint()


def test_bytes_and_file_like_sources():
    content = table(**CHANNELS).encode()
    upload = io.BytesIO(content)
    upload.name = "upload.csv"
    upload.read()  # a second read must still see the whole file
    from_file = load_sensor_table(upload)
    from_bytes = load_sensor_table(content)
    assert from_file.source_name == "upload.csv" and from_bytes.source_name == "<bytes>"
    pd.testing.assert_frame_equal(from_file.channels, from_bytes.channels)


def test_unsorted_rows_are_sorted_and_reported():
    content = (
        "time,a,anomaly\n2026-01-05 00:00:02,3,0\n2026-01-05 00:00:00,1,1\n"
        "2026-01-05 00:00:01,2,0\n2026-01-05 00:00:03,4,0\n"
    )
    data = load_sensor_table(content.encode())
    assert data.report.unsorted
    assert data.channels["a"].tolist() == [1, 2, 3, 4]
    assert data.labels["anomaly"].tolist() == [1, 0, 0, 0]
    assert data.time.is_monotonic_increasing
    assert isinstance(data.channels.index, pd.RangeIndex)
    assert any("not in time order (first step back at row 2)" in w for w in data.report.warnings)


def test_missing_runs_after_sorting_name_the_file_rows():
    content = "time,a\n3,4\n0,1\n1,\n2,\n"
    data = load_sensor_table(content.encode(), max_gap=1)
    assert any(r"rows 3-4 (in time order)" in w for w in data.report.warnings)


def test_duplicate_times_and_gaps_are_reported():
    content = "t,a\n0,1\n1,2\n1,3\n2,4\n3,5\n10,6\n11,7\n"
    data = load_sensor_table(content.encode(), time_col="t")
    report = data.report
    assert report.duplicate_times == 1
    assert report.median_interval == 1.0
    assert report.gaps == 1 and report.largest_gap == 7.0
    assert len(data.channels) == 7  # duplicates are kept
    assert any("duplicate timestamp" in w and "row 3" in w for w in report.warnings)
    assert any("1 gap(s)" in w and "before row 6" in w for w in report.warnings)


def test_datetime_gap_is_a_timedelta():
    times = pd.to_datetime(["2026-01-05 00:00:00", "2026-01-05 00:00:01",
                            "2026-01-05 00:00:02", "2026-01-05 00:05:00"])
    frame = pd.DataFrame({"time": times, "a": [1.0, 2, 3, 4]})
    data = load_sensor_table(frame.to_csv(index=False).encode())
    assert data.report.largest_gap == pd.Timedelta(seconds=298)
    assert data.report.median_interval == pd.Timedelta(seconds=1)


def test_short_missing_runs_are_interpolated():
    a = [1.0, np.nan, np.nan, 4.0, 5.0, np.nan]
    data = load_sensor_table(table(a=a, b=CHANNELS["b"]).encode(), max_gap=2)
    np.testing.assert_allclose(data.channels["a"], [1, 2, 3, 4, 5, 5])  # the edge takes its neighbour
    assert data.report.interpolated == {"a": 3}
    assert np.isfinite(data.values).all()


def test_constant_channel_is_kept_and_reported():
    data = load_sensor_table(table(a=CHANNELS["a"], flat=[2.0] * 6).encode())
    assert data.channel_names == ["a", "flat"]
    assert data.report.constant_channels == ["flat"]
    assert any("'flat' is constant" in w for w in data.report.warnings)


def test_labels_are_kept_apart():
    content = table(
        a=CHANNELS["a"], Anomaly=[0, 0, 1, 1, 0, 0],
        fault_type=["", "", "spike", "spike", "", ""],
    )
    data = load_sensor_table(content.encode())
    assert data.channel_names == ["a"]
    assert data.labels.columns.tolist() == ["Anomaly", "fault_type"]
    assert data.labels["fault_type"].tolist() == ["", "", "spike", "spike", "", ""]
    assert data.labels.index.equals(data.channels.index)


def test_time_column_detection():
    # a first column of dates under another name
    data = load_sensor_table(table(**CHANNELS).replace("time,", "when,", 1).encode())
    assert data.time.name == "when" and data.channel_names == ["a", "b"]
    # numeric seconds stay numeric
    data = load_sensor_table(b"ts,a\n0.0,1\n0.5,2\n1.0,3\n")
    assert data.time.name == "ts" and pd.api.types.is_numeric_dtype(data.time)
    # no time column at all
    data = load_sensor_table(b"a,b\n1,2\n3,4\n")
    assert data.time is None and data.report.gaps == 0 and data.report.median_interval is None
    # explicit
    data = load_sensor_table(b"x,a\n3,1\n2,2\n1,3\n", time_col="x")
    assert data.channels["a"].tolist() == [3, 2, 1]


def test_sensor_data_accessors_and_fingerprint():
    content = table(**CHANNELS)
    data = load_sensor_table(content.encode())
    assert isinstance(data, SensorData)
    assert data.values.dtype == np.float32 and data.values.shape == (6, 2)
    assert data.channels.dtypes.eq(np.float64).all()
    digest = data.fingerprint()
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert load_sensor_table(content.encode()).fingerprint() == digest
    changed = content.replace("30", "30.000001")
    assert load_sensor_table(changed.encode()).fingerprint() != digest
    renamed = content.replace(",b", ",c", 1)
    assert load_sensor_table(renamed.encode()).fingerprint() != digest


def test_the_shipped_samples_load_cleanly():
    pump = load_sensor_table(SAMPLE / "pump_station.csv")
    assert pump.report.n_rows == 43200 and pump.report.n_channels == 7
    assert pump.report.warnings == []
    assert pump.labels.columns.tolist() == ["anomaly", "fault_type", "fault_channel"]
    digits = load_sensor_table(SAMPLE / "digits_uci_1797.csv")
    assert digits.values.shape == (1797, 64) and digits.time is None
    assert digits.labels.columns.tolist() == ["label"]


# --------------------------------------------------------------------------
# property: random numeric tables with random holes load clean or raise DataError


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_tables_load_finite_outside_gaps_or_raise_data_error(data):
    n_rows = data.draw(st.integers(1, 30), label="n_rows")
    n_cols = data.draw(st.integers(1, 4), label="n_cols")
    values = data.draw(arrays(np.float64, (n_rows, n_cols), elements=st.floats(width=64)))
    for _ in range(data.draw(st.integers(0, 3), label="holes")):
        j = data.draw(st.integers(0, n_cols - 1))
        start = data.draw(st.integers(0, n_rows - 1))
        values[start:start + data.draw(st.integers(1, 15)), j] = np.nan
    frame = pd.DataFrame(values, columns=[f"c{j}" for j in range(n_cols)])
    if data.draw(st.booleans(), label="with time"):
        frame.insert(0, "time", data.draw(st.permutations(range(n_rows))))
    fmt = data.draw(st.sampled_from(["csv", "parquet"]))
    content = frame.to_csv(index=False).encode() if fmt == "csv" else frame.to_parquet()
    try:
        loaded = load_sensor_table(content, max_gap=data.draw(st.integers(0, 5), label="max_gap"))
    except DataError:
        return
    assert loaded.channels.shape == (n_rows, n_cols)
    got = loaded.channels.to_numpy()
    gap = np.zeros(n_rows, bool)
    for a, b in loaded.report.gap_rows:
        gap[a:b] = True
    assert np.isfinite(got[~gap]).all() and not np.isinf(got).any()  # NaN only in a named gap
    assert np.isnan(got[gap]).any(axis=1).all() and not gap.all()


# --------------------------------------------------------------------------
# digits


def test_uci_digits_and_their_csv(tmp_path):
    X, y = load_uci_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0 and X.max() == 16 and set(y.tolist()) == set(range(10))
    frame = pd.read_csv(write_digits_csv(tmp_path / "d.csv"))
    assert frame.columns.tolist() == [f"p{i}" for i in range(64)] + ["label"]
    np.testing.assert_array_equal(frame.iloc[:, :64].to_numpy(), X)
    np.testing.assert_array_equal(frame["label"].to_numpy(), y)
    assert (tmp_path / "d.csv").read_bytes() == (SAMPLE / "digits_uci_1797.csv").read_bytes()


@pytest.fixture
def keras_mnist(monkeypatch, tmp_path):
    """keras.datasets.mnist with load_data under the test's control; no download."""
    keras = pytest.importorskip("keras")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    return keras.datasets.mnist


def test_mnist_offline_raises_dataset_unavailable(keras_mnist, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras_mnist, "load_data", offline)
    with pytest.raises(DatasetUnavailableError, match=r"MNIST could not be downloaded \(offline\?\)"
                                                      r".*UCI digits are available offline"):
        load_mnist(100)


def test_mnist_subset_is_seeded_and_scaled(keras_mnist, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (500, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, 500).astype(np.uint8)
    monkeypatch.setattr(keras_mnist, "load_data", lambda: ((x, y), (x[:10], y[:10])))
    X, labels = load_mnist(50, random_state=3)
    assert X.shape == (50, 28, 28) and X.dtype == np.float32
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert labels.dtype == np.int64 and labels.shape == (50,)
    np.testing.assert_array_equal(load_mnist(50, random_state=3)[0], X)
    assert not np.array_equal(load_mnist(50, random_state=4)[0], X)
    with pytest.raises(ValueError, match=r"n must be <= 500"):
        load_mnist(501)


def test_mnist_cached_looks_in_the_keras_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert not mnist_cached()
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "mnist.npz").write_bytes(b"")
    assert mnist_cached()


def test_one_rule_finds_the_anomaly_label_column_for_the_cli_and_the_app():
    import pandas as pd

    from aeviz_app.session import Dataset
    from aeviz_core.scores import anomaly_column

    labels = pd.DataFrame({"fault_type": ["", "stuck", ""], "Label": [0, 1, 0]})
    assert anomaly_column(labels) == "Label"  # a binary name, in any case, wherever it stands
    assert anomaly_column(labels[["fault_type"]]) is None  # aeviz train: no such column, every row trains
    assert anomaly_column(labels[["fault_type"]], first_otherwise=True) == "fault_type"  # the app shows them
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "fault_type": ["", "stuck", "", ""], "Label": [0, 1, 0, 0]})
    from aeviz_core import load_sensor_table

    ds = Dataset.from_sensor(load_sensor_table(frame, label_cols=["fault_type", "Label"]), "x")
    assert ds.anomaly.tolist() == [0, 1, 0, 0]


def test_a_true_false_column_is_a_label_not_a_sensor_and_the_report_says_so():
    data = load_sensor_table(b"time,a,EVENT,b\n0,1,FALSE,2\n1,2,TRUE,4\n2,3,false,6\n3,3,,6\n")
    assert data.channel_names == ["a", "b"] and list(data.labels.columns) == ["EVENT"]
    assert any("'EVENT' holds only true/false: read as a label" in w for w in data.report.warnings)
    numbers = load_sensor_table(b"time,a,flag\n0,1,0\n1,2,1\n2,3,0\n")
    assert numbers.channel_names == ["a", "flag"]  # 0/1 under another name stays a channel
    named = load_sensor_table(b"time,a,EVENT\n0,1,FALSE\n1,2,TRUE\n2,3,FALSE\n", label_cols=[])
    assert "EVENT" not in named.labels.columns  # labels named by the caller: no guessing
