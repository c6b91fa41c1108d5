import numpy as np
import pandas as pd
import pytest

from aeviz_core import iter_sensor_chunks, load_sensor_table, score_stream, score_table


@pytest.fixture(scope="module")
def series_file(tmp_path_factory, faulty_series):
    frame = faulty_series.copy()
    frame.insert(0, "time", pd.date_range("2026-03-01", periods=len(frame), freq="s"))
    folder = tmp_path_factory.mktemp("stream")
    frame.to_csv(folder / "s.csv", index=False)
    frame.to_parquet(folder / "s.parquet", row_group_size=500)
    return folder


@pytest.mark.parametrize("name", ["s.csv", "s.parquet"])
@pytest.mark.parametrize("chunk_rows", [50, 777])
def test_streamed_scores_equal_one_piece(series_detector, series_file, name, chunk_rows):
    whole = score_table(series_detector, load_sensor_table(series_file / name))
    parts = list(score_stream(series_detector, iter_sensor_chunks(series_file / name, chunk_rows=chunk_rows)))
    streamed = pd.concat(parts, ignore_index=True)
    assert len(parts) > 1
    assert streamed["row"].tolist() == list(range(len(whole)))
    np.testing.assert_allclose(streamed["score"], whole["score"], rtol=1e-5, atol=1e-7)
    assert (streamed["flag"] == whole["flag"]).all()
    assert (streamed["top_channel"] == whole["top_channel"]).mean() > 0.999
    assert (pd.to_datetime(streamed["time"]) == pd.to_datetime(whole["time"])).all()


def test_context_rows(series_detector, smooth_detector):
    # version 5: the level's running median (a quarter of the 1,500 training rows) on each side;
    # then the residual (2 * window - 1 rows averaged on steady channels), or the stillness
    # (2 * window - 1 rows of steps) against its running median over 32 windows, whichever reaches
    # further; no running reference without adapt_after
    det = series_detector
    level = 1500 // 4 // 2 * 2 + 1
    assert det.level_rows_ == level
    residual = 16 - 1 + (2 * 16 - 1) // 2 + level // 2
    still = level // 2 + (2 * 16 - 1) // 2 + 1 + (32 * 16 + 1) // 2
    assert det.context_rows == max(residual, still) == still
    # version 3: the level's running median (32 windows) on each side; then the residual (window - 1
    # rows averaged) against its median over the 32 windows before it
    level = 32 * 16 + 1
    residual = 16 - 1 + (16 - 1) // 2 + level // 2 + level - 1
    still = level // 2 + (2 * 16 - 1) // 2 + 1 + level // 2
    assert smooth_detector.context_rows == max(residual, still) == residual


def test_chunks_are_checked_like_files(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("time,a\n" + "".join(f"{i},{i}\n" for i in range(100)) + "100,oops\n")
    with pytest.raises(ValueError, match="oops"):
        list(iter_sensor_chunks(path, chunk_rows=40))
