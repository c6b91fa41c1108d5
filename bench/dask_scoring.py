"""Scoring an archive on Dask against single-process scoring.

An archive of synthetic pump-station recordings (Parquet, row groups of
``--partition-rows``) is scored by a small windowed autoencoder:

- single process: ``score_stream`` file by file, scores written as Parquet,
  once with TensorFlow on every core and once limited to one thread (the
  like-for-like baseline of a one-thread worker), each in a fresh process;
- ``score_archive`` on a ``LocalCluster`` of 1 and 2 one-thread worker
  processes: the first run on a new cluster (``cold``: workers import
  TensorFlow and load the model) and ``--repeat`` more (``warm``), each after
  a one-thread single-process run, so that the pair share the load of the
  moment (the machine is shared); the best of each is kept.

Rows/s count every row of the archive, end to end (model load, reading,
scoring, writing). ``time_ratio_vs_one_thread`` is the Dask time over the
one-thread single-process time: with one worker it is the cost of
distributing (1.0 = none); ``parallel_efficiency`` is that single-process
time over ``workers x`` the Dask time. Cluster start-up is reported apart.
With ``--scheduler ADDRESS`` only the Dask runs are timed, on that cluster;
``--data-dir`` must then be a folder that the workers see under the same path.

Run: ``python bench/dask_scoring.py`` (writes bench/results/dask_scoring.json).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.common import timed, write_results  # noqa: E402

WINDOW = 32


def make_archive(folder: Path, n_files: int, rows_per_file: int, partition_rows: int) -> list[Path]:
    """Pump-station recordings, one per file, and a detector trained on normal rows of the first."""
    import pandas as pd

    from aeviz_core import AutoencoderDetector, load_sensor_table, make_pump_station, save_detector

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n_files):
        path = folder / f"pump-{k:02d}.parquet"
        if not path.is_file():
            start = pd.Timestamp("2026-01-05") + pd.Timedelta(days=7 * k)
            frame = make_pump_station(n_rows=rows_per_file, seed=k, start=str(start))
            frame.to_parquet(path, row_group_size=partition_rows, index=False)
        paths.append(path)
    model = folder / "model"
    if not model.is_dir():
        data = load_sensor_table(paths[0])
        normal = data.channels.iloc[: min(20_000, rows_per_file // 2)]
        detector = AutoencoderDetector(window=WINDOW, stride=8, latent_dim=8, epochs=3, random_state=0)
        save_detector(detector.fit(normal), model,
                      extra={"time_col": "time", "drop": [], "label_cols": list(data.labels.columns)})
    return paths


def single_process(paths, model_dir, out_dir, chunk_rows, threads=None) -> dict:
    """score_stream file by file in this (fresh) process; seconds exclude importing TensorFlow."""
    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras  # noqa: F401  (imported before the clock starts)
    import pandas as pd

    from aeviz_core import load_detector
    from aeviz_core.streaming import iter_sensor_chunks, score_stream

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = 0
    with timed() as elapsed:
        detector = load_detector(model_dir)
        extra = detector.saved_meta_["extra"]
        for path in paths:
            chunks = iter_sensor_chunks(path, chunk_rows=chunk_rows, time_col=extra["time_col"],
                                        label_cols=extra["label_cols"])
            scores = pd.concat(score_stream(detector, chunks), ignore_index=True)
            scores.to_parquet(out / f"{Path(path).stem}.parquet", index=False)
            rows += len(scores)
    return {"rows": rows, "seconds": round(elapsed(), 3), "rows_per_s": round(rows / elapsed())}


def in_fresh_process(func, *args, **kwargs):
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(func, *args, **kwargs).result()


def dask_runs(paths, model_dir, out_dir, partition_rows, *, n_workers=None, scheduler=None, repeat=1,
              between=None) -> dict:
    """A cold ``score_archive`` on a new LocalCluster (or on ``scheduler``), then ``repeat`` warm ones.

    ``between()`` runs before each warm run (a baseline), so that the two
    alternate and share the machine's load of the moment; its results are
    returned under ``between``.
    """
    import logging

    from distributed import Client, LocalCluster

    from aeviz_core.distributed import score_archive

    result = {"warm": [], "between": []}
    with timed() as started:
        if scheduler:
            client, cluster = Client(scheduler), None
        else:
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
            client = Client(cluster)
    result["startup_s"] = round(started(), 2)
    try:
        for run in range(repeat + 1):
            if run and between is not None:
                result["between"].append(between())
            summary = score_archive(paths, model_dir, out_dir, scheduler=client, partition_rows=partition_rows)
            figures = {"seconds": round(summary["seconds"], 3), "rows_per_s": round(summary["rows"] / summary["seconds"]),
                       "model_loads": summary["model_loads"]}
            if run:
                result["warm"].append(figures)
            else:
                result["cold"] = figures
        result.update(rows=summary["rows"], partitions=summary["partitions"], workers=summary["workers"],
                      flagged=summary["flagged"], events=summary["events"])
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return result


def _best(runs: list[dict]) -> dict:
    return min(runs, key=lambda run: run["seconds"])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--rows-per-file", type=int, default=200_000)
    parser.add_argument("--partition-rows", type=int, default=50_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=2, help="warm runs per cluster (the best is kept)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="time only the Dask run, on this cluster (with --data-dir on shared storage)")
    parser.add_argument("--data-dir", default=None, help="archive folder (default: a temporary one)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="aeviz-bench-") as tmp:
        folder = Path(args.data_dir or tmp)
        with timed() as made:
            paths = make_archive(folder / "archive", args.files, args.rows_per_file, args.partition_rows)
        rows = args.files * args.rows_per_file
        print(f"archive: {args.files} files x {args.rows_per_file} rows, {args.partition_rows}-row groups "
              f"({made():.0f} s to make)")
        payload = {"files": args.files, "rows": rows, "channels": 7, "window": WINDOW,
                   "partition_rows": args.partition_rows, "repeat": args.repeat,
                   "load_average_before": os.getloadavg()}
        model = folder / "archive" / "model"
        if args.scheduler:
            run = dask_runs(paths, model, folder / "out", args.partition_rows, scheduler=args.scheduler,
                            repeat=args.repeat)
            run["best_warm"] = _best(run.pop("warm"))
            run.pop("between")
            payload["dask"] = {"cluster": run}
            print(f"dask on {args.scheduler}: {run['workers']} workers, warm {run['best_warm']['rows_per_s']:,} "
                  f"rows/s, cold {run['cold']['rows_per_s']:,} rows/s")
        else:
            def one_thread():
                return in_fresh_process(single_process, paths, model, folder / "single", args.partition_rows, threads=1)

            all_threads = _best([in_fresh_process(single_process, paths, model, folder / "single",
                                                  args.partition_rows) for _ in range(args.repeat)])
            payload["single_process_all_threads"] = all_threads
            print(f"single process, TF on all cores: {all_threads['rows_per_s']:,} rows/s "
                  f"({all_threads['seconds']:.1f} s)")
            payload["dask"] = {}
            for n in args.workers:
                run = dask_runs(paths, model, folder / "out", args.partition_rows, n_workers=n,
                                repeat=args.repeat, between=one_thread)
                warm, single = _best(run.pop("warm")), _best(run.pop("between"))
                run.update(
                    best_warm=warm,
                    single_process_one_thread=single,  # timed alternating with the warm runs
                    time_ratio_vs_one_thread=round(warm["seconds"] / single["seconds"], 3),
                    parallel_efficiency=round(single["seconds"] / (n * warm["seconds"]), 3),
                    time_ratio_vs_all_threads=round(warm["seconds"] / all_threads["seconds"], 3),
                )
                payload["dask"][f"{n}_workers"] = run
                print(f"dask, {n} worker(s): warm {warm['rows_per_s']:,} rows/s ({warm['seconds']:.1f} s; "
                      f"single process one thread {single['rows_per_s']:,} rows/s: time ratio "
                      f"{run['time_ratio_vs_one_thread']}, efficiency {run['parallel_efficiency']}), "
                      f"cold {run['cold']['rows_per_s']:,} rows/s, cluster start {run['startup_s']} s")
        payload["load_average_after"] = os.getloadavg()
    write_results("dask_scoring", payload)
    return payload


if __name__ == "__main__":
    main()
