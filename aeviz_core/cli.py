"""The ``aeviz`` command line: ``aeviz train``, ``aeviz score`` and ``aeviz refit``.

Bad input ends with one line on stderr (``aeviz: error: ...``) and a non-zero
exit code, never a traceback. Progress of long work goes to stderr, so stdout
and the output files stay clean.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .settings import MODEL_KINDS, SERIES_SCORES

__all__ = ["main"]

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aeviz", description="Autoencoder anomaly detection for sensor data.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a detector on a sensor table and save a model directory")
    train.add_argument("data", help="CSV or Parquet file")
    train.add_argument("--out", required=True, help="model directory to write")
    train.add_argument("--model", choices=tuple(MODEL_KINDS), default="ae")
    train.add_argument("--window", type=int, default=32,
                       help="window length in rows (0: rows are independent items); default 32")
    train.add_argument("--stride", type=int, default=4, help="step between training windows; default 4")
    train.add_argument("--latent-dim", type=int, default=None,
                       help="latent size; default 16 for windows; for tables, as many as the principal "
                            "components holding 90%% of the variance (2 to 32)")
    train.add_argument("--epochs", type=int, default=None, help="maximum epochs (early stopping ends sooner)")
    train.add_argument("--train-rows", type=int, default=None,
                       help="train on the first N rows (default: rows labelled normal when a label "
                            "column exists, else all rows)")
    train.add_argument("--label-col", default=None, help="label column (1/anomalous vs 0/normal)")
    train.add_argument("--time-col", default=None, help="time column (default: detected)")
    train.add_argument("--drop", nargs="+", default=[], metavar="COL", help="columns to ignore")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--score", choices=SERIES_SCORES, default=SERIES_SCORES[0],
                       help="how a series' rows are scored: 'lasting' (default: a lasting change stays flagged "
                            "until --adapt-after says otherwise; steady channels judged on their level, "
                            "wandering ones on their movement), or the scores of models saved before it: "
                            "'smooth' (a residual averaged over the window), 'regime' (each channel against "
                            "its own recent level, which adopts a lasting change after a few hundred rows)")
    train.add_argument("--adapt-after", default=None, metavar="DURATION",
                       help="a lasting change becomes the new normal once it has lasted this long: a "
                            "duration such as 6h or 1d (needs a time column), or a number of rows; "
                            "default: never (it stays flagged, as a shift, for as long as it lasts)")

    score = sub.add_parser("score", help="score every row of a sensor table with a saved model")
    score.add_argument("data", help="CSV or Parquet file")
    score.add_argument("--model", required=True, help="model directory written by 'aeviz train'")
    score.add_argument("--out", required=True, help="CSV of row, time, score, flag, top_channel")
    score.add_argument("--events", default=None, metavar="EVENTS_CSV",
                       help="also write one line per event: event_id, start_row, end_row, start_time, "
                            "end_time, duration (seconds; rows without a time column), peak_score, area "
                            "(summed score above the threshold), blamed_channel, blame_share")
    score.add_argument("--merge-gap", type=int, default=None, metavar="ROWS",
                       help="with --events: flagged runs at most this many rows apart are one event "
                            "(default: the model's event_gap, which is its window unless set)")
    score.add_argument("--chunk-rows", type=int, default=250_000,
                       help="rows read and scored at a time (memory stays bounded); default 250000")
    score.add_argument("--engine", choices=("local", "dask"), default="local",
                       help="local: this process; dask: a Dask cluster, DATA may be a glob of files, "
                            "--out is a folder (scores/ as Parquet, events.parquet, events.csv) and "
                            "--chunk-rows sets the rows per partition; default local")
    score.add_argument("--series", choices=("per-file", "continuous"), default="per-file",
                       help="per-file: every file is its own series; continuous: the files (a glob) are "
                            "consecutive pieces of one series, ordered by their first time (or name), "
                            "scored across their boundaries; row counts over the series; default per-file")
    score.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="with --engine dask: address of a running Dask scheduler "
                            "(default: a local cluster on this machine)")
    refit = sub.add_parser("refit", help="a new model version taught by operators' decisions on a file")
    refit.add_argument("model", help="model directory written by 'aeviz train' (the parent; it is not changed)")
    refit.add_argument("data", help="CSV or Parquet file the decisions were made on")
    refit.add_argument("--reviews", required=True, metavar="REVIEWS_CSV",
                       help="the Review page's export, or the --events file with a status column: start_row, "
                            "end_row and status (dismissed rows teach the model, confirmed ones check it; open "
                            "and follow_up are left alone)")
    refit.add_argument("--out", required=True, help="model directory to write (the new version)")
    refit.add_argument("--epochs", type=int, default=None, help="most epochs of the fine-tune (default: a twelfth "
                                                                "of the parent's plan, at least 5)")
    return parser


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _train(args) -> int:
    from .data import load_sensor_table
    from .detector import AutoencoderDetector
    from .registry import save_detector
    from .scores import anomaly_column, normal_mask
    from .trust import threshold_origin

    window = args.window or None
    if window is not None and window < 2:
        raise ValueError(f"--window must be 0 (no windows) or >= 2, got {args.window}")
    if args.train_rows is not None and args.train_rows < 2:
        raise ValueError(f"--train-rows must be at least 2, got {args.train_rows}")
    label_cols = [args.label_col] if args.label_col else None
    data = load_sensor_table(args.data, time_col=args.time_col, label_cols=label_cols, drop=args.drop)
    for warning in data.report.warnings:
        _progress(f"aeviz: warning: {warning}")
    channels = data.channels
    y = None
    if args.train_rows is not None:
        if args.train_rows > len(channels):
            raise ValueError(f"--train-rows must be at most the {len(channels)} rows of the file, got {args.train_rows}")
        channels = channels.iloc[: args.train_rows]
    else:
        label = args.label_col or anomaly_column(data.labels)
        if label is not None:
            if label not in data.labels.columns:
                raise ValueError(f"--label-col {label!r} is not a column of {args.data}")
            y = (~normal_mask(data.labels[label])).astype(int)
            _progress(f"aeviz: training on the {int((y == 0).sum())} rows labelled normal in {label!r}")
    latent = args.latent_dim or "auto"
    adapt = args.adapt_after
    if adapt is not None and adapt.strip().isdigit():
        adapt = int(adapt)  # rows
    if data.time is not None:  # the estimator reads a duration against the rows' times
        channels = channels.set_axis(data.time.iloc[: len(channels)].to_numpy(), axis=0)
    detector = AutoencoderDetector(
        model=args.model, latent_dim=latent, window=window, stride=args.stride, random_state=args.seed,
        series_score=args.score, adapt_after=adapt, **({"epochs": args.epochs} if args.epochs else {}),
    )
    detector.fit(channels, anomalous=y, progress=lambda e: _progress(
        f"epoch {e.epoch}/{e.epochs}  loss {e.loss:.4f}"
        + ("" if e.val_loss is None else f"  val_loss {e.val_loss:.4f}")))
    extra = {"time_col": None if data.time is None else str(data.time.name),
             "label_cols": [str(c) for c in data.labels.columns], "drop": list(args.drop),
             "source": str(args.data), "train_rows": int(len(channels) if y is None else (y == 0).sum())}
    save_detector(detector, args.out, extra=extra)
    rule = detector.threshold_rule_.describe(getattr(detector, "threshold_margin_", 1.0))
    _progress(f"aeviz: saved model to {args.out} (threshold {detector.threshold_:.4g}, rule {rule})")
    if window:
        time = None if data.time is None else data.time.iloc[: len(channels)]
        which = "the first " if args.train_rows is not None else ""
        _progress(f"aeviz: {threshold_origin(detector, extra['train_rows'], time, which=which)}")
    return 0



def _score(args) -> int:
    if args.engine == "dask":
        return _score_dask(args)
    if args.scheduler:
        raise ValueError("--scheduler needs --engine dask")
    from .registry import load_detector
    from .scores import write_frame_atomic
    from .streaming import iter_sensor_chunks, score_stream

    if args.events is None and args.merge_gap is not None:
        raise ValueError("--merge-gap needs --events")
    if args.merge_gap is not None and args.merge_gap < 0:
        raise ValueError(f"--merge-gap must be >= 0, got {args.merge_gap}")
    detector = load_detector(args.model)
    extra = detector.saved_meta_.get("extra", {})
    options = {"chunk_rows": args.chunk_rows, "time_col": extra.get("time_col"),
               "label_cols": extra.get("label_cols") or None, "drop": extra.get("drop", [])}
    if args.series == "continuous":  # one series read file after file, in time order
        from .distributed import archive_files, series_order

        files = series_order(archive_files(args.data), extra.get("time_col"))
        _progress(f"aeviz: one series in {len(files)} file(s): {', '.join(p.name for p in files[:5])}"
                  + (" ..." if len(files) > 5 else ""))
        chunks = (chunk for path in files for chunk in iter_sensor_chunks(path, **options))
    else:
        chunks = iter_sensor_chunks(args.data, **options)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    rows = flagged = 0
    trust, events = [], []  # the TrustTracker and EventWriter, made when the first chunk names the channels
    try:
        with open(tmp, "w", newline="") as fh:
            for chunk_scores in score_stream(detector, _warn_chunks(_tracked(chunks, detector, trust, events, args))):
                chunk_scores.to_csv(fh, index=False, header=rows == 0)
                rows += len(chunk_scores)
                flagged += int(chunk_scores["flag"].sum())
                trust[0].add_scores(chunk_scores["score"].to_numpy())
                if events:
                    events[0].add_scores(chunk_scores["score"].to_numpy(),
                                         chunk_scores["time"] if "time" in chunk_scores else None)
                _progress(f"aeviz: scored {rows} rows")
        if rows == 0:
            raise ValueError(f"{args.data} has no rows to score")
        table = events[0].finish() if events else None
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    _progress(f"aeviz: wrote {rows} rows to {out}; {flagged} flagged")
    if table is not None:
        write_frame_atomic(table, args.events)
        _progress(f"aeviz: wrote {len(table)} events to {args.events}")
    for note in trust[0].notes() if trust else []:
        _progress(f"aeviz: warning: {note}")
    return 0


def _refit(args) -> int:
    from .data import load_sensor_table
    from .feedback import lineage, read_decisions, refit
    from .registry import load_detector, save_detector

    if Path(args.out).resolve() == Path(args.model).resolve():
        raise ValueError("--out must be another directory than the parent model: the parent stays loadable")
    if args.epochs is not None and args.epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {args.epochs}")
    parent = load_detector(args.model)
    extra = dict(parent.saved_meta_.get("extra", {}))
    data = load_sensor_table(args.data, time_col=extra.get("time_col"), label_cols=extra.get("label_cols") or None,
                             drop=extra.get("drop", []))
    channels = data.channels
    if data.time is not None:
        channels = channels.set_axis(data.time.to_numpy(), axis=0)
    fingerprint = data.fingerprint()  # the review store's key of this data
    decisions = read_decisions(args.reviews, len(channels), data_fingerprint=fingerprint)
    problem = parent.mismatch(channels.shape, list(channels.columns))
    if problem:
        raise ValueError(problem)
    result = refit(parent, channels, decisions, epochs=args.epochs, progress=lambda e: _progress(
        f"epoch {e.epoch}/{e.epochs}  loss {e.loss:.4f}" + ("" if e.val_loss is None else f"  val_loss {e.val_loss:.4f}")))
    extra["lineage"] = lineage(result, data_name=Path(args.data).name, data_fingerprint=fingerprint,
                               parent_dir=args.model)
    save_detector(result.detector, args.out, extra=extra)
    _progress(f"aeviz: {result.summary()}")
    for warning in result.warnings:
        _progress(f"aeviz: warning: {warning}")
    _progress(f"aeviz: saved the new version to {args.out} (threshold {result.detector.threshold_:.4g}); the parent "
              f"{args.model} is unchanged")
    return 0


def _tracked(chunks, detector, box: list, events: list, args):
    """Pass chunks through, feeding their readings to a TrustTracker put in ``box`` and, with
    ``--events``, to an EventWriter put in ``events``."""
    from .events import EventWriter
    from .trust import TrustTracker

    first_row = 0
    for chunk in chunks:
        if not box:
            box.append(TrustTracker(detector, chunk.channel_names))
            if args.events is not None:
                gap = args.merge_gap if args.merge_gap is not None else detector.event_gap_rows()
                events.append(EventWriter(detector, chunk.channel_names, detector.threshold_, gap))
        box[0].add_values(chunk.channels.to_numpy(), first_row=first_row, times=chunk.time)
        if events:
            events[0].add_values(chunk.channels.to_numpy())
        first_row += len(chunk.channels)
        yield chunk


def _score_dask(args) -> int:
    from .distributed import score_archive

    summary = score_archive(args.data, args.model, args.out, scheduler=args.scheduler,
                            partition_rows=args.chunk_rows, progress=lambda m: _progress(f"aeviz: {m}"),
                            series=args.series)
    _progress(f"aeviz: wrote {summary['rows']} rows of {summary['files']} file(s) to {summary['scores_dir']}; "
              f"{summary['flagged']} flagged in {summary['events']} events ({summary['events_path']}) "
              f"in {summary['seconds']:.1f} s")
    return 0


def _warn_chunks(chunks, limit: int = 20):
    """Pass chunks through, printing their data warnings (at most ``limit``)."""
    shown = 0
    for chunk in chunks:
        for warning in chunk.report.warnings:
            if shown < limit:
                _progress(f"aeviz: warning: {warning}")
            shown += 1
        yield chunk
    if shown > limit:
        _progress(f"aeviz: warning: {shown - limit} more warnings not shown")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aeviz`` console script; returns the exit code."""
    args = _build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from .data import DataError, DatasetUnavailableError
    from .training import TrainingError
    from .registry import UnsafeModelError

    try:
        return {"train": _train, "score": _score, "refit": _refit}[args.command](args)
    except (DataError, UnsafeModelError, ValueError, FileNotFoundError, IsADirectoryError,
            PermissionError, DatasetUnavailableError) as exc:
        print(f"aeviz: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TrainingError as exc:
        print(f"aeviz: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("aeviz: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as exc:  # the promise is one line, never a traceback
        print(f"aeviz: error: unexpected {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())
