"""Peak memory of ``aeviz score`` streaming a 10,000,000-row, 8-channel file.

Writes a seeded 8-channel 1 Hz Parquet archive chunk by chunk (never whole in
memory), trains a small model on its first rows, then runs ``aeviz score`` in
a child process and samples the child's RSS. Baseline, in the same run: the
one-piece path (``load_sensor_table`` + ``score_table``) on 1,000,000 rows of
the same file, whose peak is scaled up 10x for comparison.

Run: ``python bench/stream_memory.py [--rows N]`` -> bench/results/stream_memory.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench.common import write_results  # noqa: E402

CHANNELS = [f"s{i}" for i in range(8)]


def write_archive(path: Path, rows: int, chunk: int = 1_000_000, seed: int = 0) -> None:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    writer = None
    start = pd.Timestamp("2026-01-01")
    for first in range(0, rows, chunk):
        n = min(chunk, rows - first)
        t = np.arange(first, first + n)
        base = np.sin(2 * np.pi * t / 3600)[:, None] * (1 + np.arange(8)) + np.cos(2 * np.pi * t / 600)[:, None]
        frame = pd.DataFrame(base + 0.05 * rng.standard_normal((n, 8)), columns=CHANNELS)
        frame.insert(0, "time", start + pd.to_timedelta(t, unit="s"))
        table = pa.Table.from_pandas(frame, preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=250_000)
    writer.close()


def peak_rss_of(cmd: list[str]) -> tuple[int, float, float]:
    """Run cmd; return (exit code, peak RSS in MB of the process tree, seconds)."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.2)
    err = proc.stderr.read()
    if proc.returncode:
        print(err[-2000:])
    return proc.returncode, peak / 2**20, time.perf_counter() - start


ONE_PIECE = """
import sys, pandas as pd
from aeviz_core import load_detector, load_sensor_table, score_table
det = load_detector(sys.argv[1])
frame = pd.read_parquet(sys.argv[2]).iloc[: int(sys.argv[3])]
score_table(det, load_sensor_table(frame)).to_csv(sys.argv[4], index=False)
"""


def main(rows: int) -> None:
    from aeviz_core import AutoencoderDetector, save_detector

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        archive = tmp / "archive.parquet"
        write_archive(archive, rows)
        import pandas as pd

        head = pd.read_parquet(archive).iloc[:20_000]  # small enough: the archive is not loaded whole
        det = AutoencoderDetector(window=32, stride=8, latent_dim=8, epochs=3, random_state=0)
        save_detector(det.fit(head[CHANNELS]), tmp / "model", extra={"time_col": "time", "drop": []})
        code, stream_mb, stream_s = peak_rss_of(
            [sys.executable, "-m", "aeviz_core", "score", str(archive), "--model", str(tmp / "model"),
             "--out", str(tmp / "scores.csv")])
        assert code == 0, "aeviz score failed"
        base_rows = min(rows, 1_000_000)
        code, piece_mb, piece_s = peak_rss_of(
            [sys.executable, "-c", ONE_PIECE, str(tmp / "model"), str(archive), str(base_rows), str(tmp / "one.csv")])
        assert code == 0, "one-piece baseline failed"
    result = {
        "rows": rows, "channels": 8,
        "streaming_peak_rss_mb": round(stream_mb), "streaming_seconds": round(stream_s, 1),
        "streaming_rows_per_s": round(rows / stream_s),
        "one_piece_rows": base_rows, "one_piece_peak_rss_mb": round(piece_mb),
        "one_piece_seconds": round(piece_s, 1),
        "streaming_peak_over_one_piece_peak": round(stream_mb / piece_mb, 3),
        "goal_peak_rss_mb": 2048, "meets_goal": stream_mb < 2048,
    }
    write_results("stream_memory", result, show=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    main(parser.parse_args().rows)
