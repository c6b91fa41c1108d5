"""Score archives of sensor files on a Dask cluster.

:func:`score_archive` reads each sensor file as a ``dask.dataframe``
(Parquet row groups or CSV byte ranges), scores its partitions in parallel on
the ``distributed`` scheduler and writes the row scores as Parquet partitions
plus the merged list of alarm events.

A row's score depends on ``detector.context_rows`` rows on each side of it
(the windows that cover it and the averaging of the residual energy), so each
partition is scored together with that many rows of the partitions before and
after it in the same file, and only its own rows are kept: the scores equal
scoring each file in one piece, partition edges included. Files are
independent series; a file must be stored in time order.

``dask.dataframe.map_overlap`` attaches such halos too, but it refuses a
neighbour partition shorter than the halo (the last CSV block or row group
of a file often is) and gives no row numbers, so the halos here are built
as two short chains of tiny tasks: one carries the last ``context_rows``
rows and the row count forward through a file, the other carries the first
``context_rows`` rows backward. The scoring tasks themselves are independent.

The detector travels to the workers inside a :class:`distributed.WorkerPlugin`
(the model directory's bytes, so the workers need no access to it) and is
loaded once per worker, on that worker's first partition.
"""

from __future__ import annotations

import glob
import hashlib
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

try:
    import dask
    import dask.dataframe as dd
    from distributed import Client, LocalCluster, WorkerPlugin, get_worker
except ImportError as exc:  # an optional engine: say how to get it
    raise ImportError(
        "the dask engine needs dask and distributed: pip install 'dask[dataframe,distributed]'"
    ) from exc

from .data import LABEL_NAMES, DataError, detect_sep, load_sensor_table
from .events import EVENT_COLUMNS, flags_to_events
from .registry import ERRORS_FILE, META_FILE, MODEL_FILE, load_detector
from .scores import rows_frame, write_frame_atomic
from .streaming import iter_sensor_chunks

__all__ = ["DEFAULT_PARTITION_ROWS", "SERIES_MODES", "archive_files", "score_archive", "series_order"]

DEFAULT_PARTITION_ROWS = 250_000
SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
#: how the files of an archive relate: each its own series, or consecutive pieces of one
SERIES_MODES = ("per-file", "continuous")
_MAX_WARNINGS = 20


def archive_files(data) -> list[Path]:
    """The sensor files a glob, a folder, a file or a list of them names.

    Parameters
    ----------
    data : str, Path or sequence of them
        A glob (``"archive/*/pump-*.parquet"``, ``**`` recurses), a folder
        (its CSV and Parquet files), or files.

    Returns
    -------
    paths : list of Path
        Files in sorted order, each once.

    Raises
    ------
    DataError
        When nothing matches, or a named file does not exist.
    """
    items = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    paths: list[Path] = []
    for item in items:
        text = str(item)
        if glob.has_magic(text):
            matched = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not matched:
                raise DataError(f"no file matches {text!r}")
        elif Path(text).is_dir():
            matched = sorted(p for p in Path(text).iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
            if not matched:
                raise DataError(f"folder {text!r} holds no CSV or Parquet file")
        elif Path(text).is_file():
            matched = [Path(text)]
        else:
            raise DataError(f"file not found: {text}")
        paths.extend(matched)
    if not paths:
        raise DataError("no sensor file given")
    return sorted(set(paths))


def score_archive(data, model_dir, out_dir, *, scheduler=None, n_workers: int | None = None,
                  partition_rows: int = DEFAULT_PARTITION_ROWS, progress=None, series: str = "per-file") -> dict:
    """Score every row of many sensor files on a Dask cluster.

    Each file is read in partitions, each partition is scored on a worker
    with ``detector.context_rows`` rows of its neighbours on both sides, so
    the scores equal single-process scoring (:func:`aeviz_core.score_table`
    on the whole file) at every row, partition edges included.

    Parameters
    ----------
    data : str, Path or sequence of them
        A glob, a folder or files (see :func:`archive_files`); CSV or Parquet,
        each one series stored in time order, all with the model's channels.
    model_dir : str or Path
        A model directory written by ``aeviz train`` / :func:`save_detector`.
        It is read here and shipped to the workers, which need no access to it.
    out_dir : str or Path
        Folder to write ``scores/`` (Parquet partitions; replaced) and
        ``events.parquet`` / ``events.csv``. The data files and ``out_dir``
        must be reachable from every worker under the same paths.
    scheduler : str or distributed.Client, optional
        Address of a running scheduler (``"tcp://10.0.0.5:8786"``) or a client
        connected to one. Default: a ``LocalCluster`` on this machine, closed
        at the end.
    n_workers : int, optional
        Worker processes of the ``LocalCluster`` (default: dask's choice for
        this machine's cores). Ignored with ``scheduler``.
    partition_rows : int
        Rows per partition, about: a CSV is split into byte ranges of that
        many average lines; a Parquet file into groups of whole row groups
        (write the files with row groups of this size or smaller).
    progress : callable, optional
        Called with a line of text at each step (and for data warnings).
    series : {"per-file", "continuous"}, default "per-file"
        ``"per-file"``: every file is a series of its own. ``"continuous"``: the
        files are consecutive pieces of one series (a historian's daily or
        hourly exports): they are ordered by their first timestamp (by name
        without a time column), each file's edge partitions take their halo
        rows from the neighbouring file, so every row scores as in the
        concatenated series, and an event that crosses a file boundary is one
        event. Files that overlap in time or hold other columns are refused,
        named. ``row`` then counts over the whole series and ``file`` names
        the file holding the row.

    Returns
    -------
    summary : dict
        ``files``, ``rows``, ``flagged``, ``events`` (count), ``partitions``,
        ``workers``, ``model_loads`` (detector loads on the workers; at most
        one per worker), ``partitions_scored`` (scoring tasks run; equal to
        ``partitions`` unless a worker died and dask re-ran some), ``scores_dir``, ``events_path``, ``seconds`` and
        ``warnings`` (data repairs, at most 20, and ``n_warnings``).

        ``scores/*.parquet`` hold ``row`` (0-based within its file), ``time``
        (when the files have a time column), ``score`` (higher = more
        anomalous), ``flag`` (1 when ``score > threshold_``), ``top_channel``
        and ``file``. ``events.parquet`` holds ``file`` and the columns of
        :func:`aeviz_core.flags_to_events` for each file's flags, with
        ``event`` numbered across the archive.

    Examples
    --------
    >>> summary = score_archive("archive/*.parquet", "models/pump", "out")  # doctest: +SKIP
    >>> summary["rows"], summary["events_path"]  # doctest: +SKIP
    (12000000, 'out/events.parquet')
    """
    started = time.perf_counter()
    say = progress or (lambda message: None)
    if isinstance(partition_rows, bool) or not isinstance(partition_rows, (int, np.integer)) or partition_rows < 1:
        raise ValueError(f"partition_rows must be an integer >= 1, got {partition_rows!r}")
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, (int, np.integer))
                                  or n_workers < 1):
        raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}")
    if series not in SERIES_MODES:
        raise ValueError(f"series must be one of {SERIES_MODES}, got {series!r}")
    paths = archive_files(data)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir must be a folder, got the file {out}")

    detector = load_detector(model_dir)  # checks the model here, before any worker starts
    extra = detector.saved_meta_.get("extra", {})
    context = detector.context_rows
    continuous = series == "continuous"
    if continuous:
        paths = series_order(paths, extra.get("time_col"))
    first = next(iter_sensor_chunks(paths[0], chunk_rows=max(2 * context + 1, 256),
                                    **_options(paths[0], _columns(paths[0]), extra)))
    meta = _score_rows(detector, first, 0, len(first.channels), 0, str(paths[0]))[0].iloc[:0]
    plugin = DetectorPlugin(model_dir)

    out.mkdir(parents=True, exist_ok=True)
    for stale in ("events.parquet", "events.csv"):
        (out / stale).unlink(missing_ok=True)
    if not scheduler:
        say("starting a local Dask cluster")
    with _connect(scheduler, n_workers) as client:
        workers = len(client.nthreads())
        client.register_plugin(plugin, name=plugin.name)
        try:
            scored = _pieces(paths, extra, context, partition_rows, plugin.name, meta, continuous)
            say(f"scoring {len(paths)} file(s) in {len(scored)} partition(s) on {workers} worker(s)")
            frames = dd.from_delayed([s[0] for s in scored], meta=meta, verify_meta=False)
            write = frames.to_parquet(out / "scores", write_index=False, overwrite=True, compute=False,
                                      name_function=lambda i: f"part.{i:05d}.parquet")
            # one graph: each partition is scored once, for its Parquet part and its side data
            _, sides = dask.compute(write.to_delayed(), [s[1] for s in scored], scheduler=client.get)
            counts = client.run(_plugin_counts, name=plugin.name)
            make = _series_events if continuous else _archive_events  # a series' events, each under its first file
            events = make(sides, [str(p) for p in paths], list(detector.feature_names_in_), "time" in meta.columns,
                          detector.event_gap_rows())
            if len(events):
                say(f"blaming {len(events)} event(s) on the workers")
            events = _with_blame(client, events, sides, paths, extra, detector, continuous, plugin.name)
        finally:
            client.unregister_worker_plugin(plugin.name)

    write_frame_atomic(events, out / "events.parquet")
    write_frame_atomic(events, out / "events.csv")
    warnings = [w for side in sides for w in side["warnings"]]
    for warning in warnings[:_MAX_WARNINGS]:
        say(f"warning: {warning}")
    if len(warnings) > _MAX_WARNINGS:
        say(f"warning: {len(warnings) - _MAX_WARNINGS} more warnings not shown")
    return {
        "files": len(paths),
        "rows": int(sum(side["rows"] for side in sides)),
        "flagged": int(sum(len(side["flagged"]) for side in sides)),
        "events": len(events),
        "partitions": len(scored),
        "workers": workers,
        "model_loads": int(sum(loads for loads, _ in counts.values())),
        "partitions_scored": int(sum(runs for _, runs in counts.values())),
        "scores_dir": str(out / "scores"),
        "events_path": str(out / "events.parquet"),
        "seconds": time.perf_counter() - started,
        "warnings": warnings[:_MAX_WARNINGS],
        "n_warnings": len(warnings),
    }


class DetectorPlugin(WorkerPlugin):
    """Ships a model directory to every worker and loads it there once.

    The bytes of the model directory travel with the plugin, so workers on
    other machines need no access to it. The first partition a worker scores
    loads the detector (under a lock: a worker's threads share it); later
    partitions reuse it. ``loads`` and ``partitions`` count both, per worker.

    Parameters
    ----------
    model_dir : str or Path
        A model directory written by :func:`aeviz_core.save_detector`.
    """

    def __init__(self, model_dir):
        folder = Path(model_dir)
        self.files = {name: (folder / name).read_bytes() for name in (MODEL_FILE, META_FILE, ERRORS_FILE)}
        digest = hashlib.sha256(b"".join(self.files[n] for n in sorted(self.files))).hexdigest()
        self.name = f"aeviz-detector-{digest[:16]}"
        self.loads = 0
        self.partitions = 0
        self.threads = None
        self._detector = None
        self._lock = None

    def setup(self, worker):
        self._lock = threading.Lock()
        self.threads = worker.state.nthreads

    def teardown(self, worker):
        self._detector = None

    def detector(self):
        """The fitted detector, loaded on the first call."""
        with self._lock:
            if self._detector is None:
                _limit_tensorflow_threads(self.threads)
                with tempfile.TemporaryDirectory(prefix="aeviz-model-") as tmp:
                    for name, content in self.files.items():
                        Path(tmp, name).write_bytes(content)
                    self._detector = load_detector(tmp)
                self.loads += 1
            self.partitions += 1
            return self._detector


def _limit_tensorflow_threads(threads) -> None:
    """One worker thread, one TensorFlow thread: workers share the cores, not each all of them."""
    import keras

    if not threads or keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already running in this process (in-process workers)
        pass


def _plugin_counts(name, dask_worker=None) -> tuple[int, int]:
    plugin = dask_worker.plugins[name]
    return plugin.loads, plugin.partitions


@contextmanager
def _connect(scheduler, n_workers):
    if isinstance(scheduler, Client):
        yield scheduler
    elif scheduler:
        try:
            client = Client(str(scheduler))
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"could not connect to the Dask scheduler at {scheduler!r}: {exc}") from None
        with client:
            yield client
    else:
        import logging

        with (LocalCluster(n_workers=n_workers, dashboard_address=None, silence_logs=logging.ERROR) as cluster,
              Client(cluster) as client):
            yield client


# ---------------------------------------------------------------------------- reading


def _is_parquet(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4)
    return head == b"PAR1" or path.suffix.lower() in (".parquet", ".pq")


def _columns(path: Path) -> list[str]:
    if _is_parquet(path):
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise DataError(f"{path.name} is not a readable Parquet file ({exc})") from None
    return [str(c) for c in pd.read_csv(path, sep=_sep(path), nrows=0, encoding="utf-8-sig").columns]


def _sep(path: Path) -> str:
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        lines = [line.rstrip("\r\n") for _, line in zip(range(20), fh)]
    if not lines or not lines[0].strip():
        raise DataError(f"{path.name} is empty")
    return detect_sep(lines)


def _options(path: Path, columns, extra) -> dict:
    """load_sensor_table options for a file, as the model was trained.

    Label columns: those the training file had that this file has too, and
    the usual label names; everything else except time and ``drop`` is a
    channel.
    """
    time_col = extra.get("time_col")
    if time_col is not None and time_col not in columns:
        raise DataError(f"{path}: the model was trained with time column {time_col!r}, which this file lacks; "
                        f"columns are {', '.join(map(repr, columns[:20]))}")
    saved = [c for c in extra.get("label_cols", []) if c in columns]
    usual = [c for c in columns if c.lower() in LABEL_NAMES and c != time_col]
    return {"time_col": time_col, "drop": list(extra.get("drop", [])),
            "label_cols": list(dict.fromkeys(saved + usual))}


def _read(path: Path, partition_rows: int):
    """The file as a dask DataFrame of raw columns, in file order."""
    if _is_parquet(path):
        import pyarrow.parquet as pq

        metadata = pq.ParquetFile(path).metadata
        group_rows = metadata.num_rows / max(metadata.num_row_groups, 1)
        groups = max(1, int(partition_rows // max(group_rows, 1)))
        return dd.read_parquet(str(path), split_row_groups=groups if groups > 1 else True)
    sep = _sep(path)
    with open(path, "rb") as fh:
        sample = b"".join(fh.readline() for _ in range(1001))
    line_bytes = max(len(sample) / max(sample.count(b"\n"), 1), 1.0)
    # every column as text: load_sensor_table parses and checks it, as for a whole file, and
    # dask never has to guess one dtype for all blocks from the first one
    return dd.read_csv(str(path), sep=sep, dtype=object, encoding="utf-8-sig",
                       blocksize=max(int(partition_rows * line_bytes), 1))


def _pieces(paths, extra, context, partition_rows, plugin_name, meta, continuous: bool) -> list:
    """Delayed ``(scores, side)`` per partition of every file, each with its halo: from its own
    file's neighbouring partitions, or, for a continuous series, across file boundaries too."""
    files = []
    for path in paths:
        frame = _read(path, partition_rows)
        files.append((path, _options(path, list(frame.columns), extra), frame.to_delayed()))
    chains = [files] if continuous else [[f] for f in files]
    return [piece for chain in chains for piece in _chain_pieces(chain, context, plugin_name, meta)]


def _chain_pieces(files, context, plugin_name, meta) -> list:
    """The partitions of ``files`` (``(path, options, parts)``, in order) scored as one series."""
    parts = [(path, options, part) for path, options, pieces in files for part in pieces]
    carry = dask.delayed(_carry, pure=True)
    lead = dask.delayed(_lead, pure=True)
    score = dask.delayed(_score_piece, pure=True, nout=2)
    before = [(None, 0)]
    for _, _, part in parts[:-1]:
        before.append(carry(before[-1], part, context))
    after = [None]
    for _, _, part in parts[:0:-1]:
        after.append(lead(part, after[-1], context))
    after.reverse()
    return [score(before[i], part, after[i], file=str(path), options=options, plugin_name=plugin_name,
                  meta=meta) for i, (path, options, part) in enumerate(parts)]


def series_order(paths, time_col) -> list[Path]:
    """The files of one continuous series in time order (by first timestamp; by name without a
    time column). Refuses, naming them, files with other columns and files that overlap in time.
    """
    paths = list(paths)
    columns = {p: _columns(p) for p in paths}
    first = paths[0]
    for p in paths[1:]:
        if set(columns[p]) != set(columns[first]):
            only_p = sorted(set(columns[p]) - set(columns[first]))
            only_f = sorted(set(columns[first]) - set(columns[p]))
            raise DataError(
                f"{p.name} and {first.name} hold other columns ({p.name} only: {only_p or 'none'}; "
                f"{first.name} only: {only_f or 'none'}): the files of one continuous series need the "
                "same channels; score them with --series per-file"
            )
    if time_col is None:
        return sorted(paths, key=lambda p: p.name)
    spans = {p: _time_span(p, time_col) for p in paths}
    ordered = sorted(paths, key=lambda p: spans[p][0])
    for a, b in zip(ordered, ordered[1:]):
        if spans[b][0] <= spans[a][1]:
            raise DataError(
                f"{a.name} ({spans[a][0]} to {spans[a][1]}) and {b.name} ({spans[b][0]} to {spans[b][1]}) "
                "overlap in time: the files of one continuous series must follow each other; "
                "score them with --series per-file, or remove the overlap"
            )
    return ordered


def _time_span(path: Path, time_col: str):
    """First and last time of a file's time column (datetimes, else numbers)."""
    if _is_parquet(path):
        values = pd.read_parquet(path, columns=[time_col])[time_col]
    else:
        values = pd.read_csv(path, sep=_sep(path), usecols=[time_col], encoding="utf-8-sig")[time_col]
    parsed = pd.to_numeric(values, errors="coerce") if pd.api.types.is_numeric_dtype(values) else \
        pd.to_datetime(values, errors="coerce", format="mixed")
    parsed = parsed.dropna()
    if parsed.empty:
        raise DataError(f"{path.name}: no readable time in column {time_col!r}")
    return parsed.min(), parsed.max()


def _carry(before, part: pd.DataFrame, n: int):
    """``(last n rows up to the end of part, rows up to the end of part)``."""
    tail, first_row = before
    joined = part if tail is None or len(part) >= n else pd.concat([tail, part], ignore_index=True)
    return joined.iloc[max(len(joined) - n, 0):], first_row + len(part)


def _lead(part: pd.DataFrame, after, n: int) -> pd.DataFrame:
    """The first n rows from the start of part onwards."""
    joined = part if after is None or len(part) >= n else pd.concat([part, after], ignore_index=True)
    return joined.iloc[:n]


# ---------------------------------------------------------------------------- scoring


def _score_piece(before, part: pd.DataFrame, after, *, file, options, plugin_name, meta):
    """Score one partition with its halo; runs on a worker.

    Returns the partition's rows of the score table and a side dict with
    ``rows``, the ``flagged`` rows with their channel scores (for the
    events) and the data ``warnings``.
    """
    tail, first_row = before
    if len(part) == 0:
        return meta.copy(), {"file": file, "rows": 0, "flagged": pd.DataFrame(), "warnings": []}
    pieces = [p for p in (tail, part, after) if p is not None and len(p)]
    lo = 0 if tail is None else len(tail)
    frame = pd.concat(pieces, ignore_index=True)
    frame.attrs["name"] = f"{file} (rows {first_row - lo + 1}-{first_row - lo + len(frame)})"
    data = load_sensor_table(frame, min_rows=1, **options)
    if data.report.unsorted:
        step = next((w for w in data.report.warnings if "not in time order" in w), "")
        raise DataError(f"{frame.attrs['name']}: {step.split(';')[0]}; the dask engine needs each file "
                        "stored in time order: sort it first")
    if (data.time is not None) != ("time" in meta.columns):
        raise DataError(f"{file}: {'has' if data.time is not None else 'lacks'} a time column, unlike "
                        "the first file of the archive: score such files separately")
    detector = get_worker().plugins[plugin_name].detector()
    scores, flagged = _score_rows(detector, data, lo, lo + len(part), first_row, file)
    return scores.astype(meta.dtypes.to_dict()), {
        "file": file, "rows": len(scores), "flagged": flagged,
        "warnings": [f"{frame.attrs['name']}: {warning}" for warning in data.report.warnings]}


def _score_rows(detector, data, start: int, stop: int, first_row: int, file: str):
    """Rows [start, stop) of data scored (as :func:`score_table` does) and their flagged rows.

    ``row`` counts from ``first_row``; the flagged rows carry their channel
    scores under the channel names, for :func:`flags_to_events`.
    """
    anomaly, channel = detector.score_parts(data.channels)
    anomaly, channel = anomaly[start:stop], channel[start:stop]
    names = [str(c) for c in data.channels.columns]
    time = None if data.time is None else data.time.to_numpy()[start:stop]
    scores = rows_frame(anomaly, channel, names, detector.threshold_, time=time, first_row=first_row)
    scores["file"] = file
    hit = scores["flag"].to_numpy() == 1
    flagged = scores.loc[hit, [c for c in ("row", "time", "score", "file") if c in scores]].reset_index(drop=True)
    flagged[list(names)] = channel[hit]
    return scores, flagged


# ---------------------------------------------------------------------------- events


def _archive_events(sides, files, channel_names, has_time, min_gap: int = 0) -> pd.DataFrame:
    """The events of every file, in file order, ``event`` numbered across the archive."""
    frames = []
    for file in files:
        flagged = [side["flagged"] for side in sides if side["file"] == file and len(side["flagged"])]
        if flagged:
            events = _events_from_flagged(pd.concat(flagged, ignore_index=True), channel_names, has_time, min_gap)
            events.insert(0, "file", file)
            frames.append(events)
    if not frames:  # no alarm anywhere: the columns, no rows
        events = flags_to_events(np.zeros(1, dtype=np.int8), np.zeros(1))
        events.insert(0, "file", pd.Series([], dtype=str))
        return events
    events = pd.concat(frames, ignore_index=True)
    events["event"] = np.arange(len(events), dtype=np.int64)
    return events[["file", *EVENT_COLUMNS]]


def _series_events(sides, files, channel_names, has_time, min_gap: int = 0) -> pd.DataFrame:
    """The events of one series spread over ``files`` (rows counted over the series), each under
    the file that holds its first row."""
    flagged = [side["flagged"] for side in sides if len(side["flagged"])]
    if not flagged:
        return _archive_events([], files, channel_names, has_time)
    rows = pd.concat(flagged, ignore_index=True)
    events = _events_from_flagged(rows, channel_names, has_time, min_gap)
    owner = rows.set_index("row")["file"]
    events.insert(0, "file", owner.loc[events["start"].to_numpy()].to_numpy())
    events["event"] = np.arange(len(events), dtype=np.int64)
    return events[["file", *EVENT_COLUMNS]]


def _events_from_flagged(flagged: pd.DataFrame, channel_names, has_time, min_gap: int = 0) -> pd.DataFrame:
    """:func:`flags_to_events` of a whole series, from its flagged rows only.

    Only flagged rows (and their channel scores) reach the client. Between two
    of them, as many unflagged placeholders as the rows between (at most
    ``min_gap + 1``) keep them apart or let them merge, and the row numbers are
    mapped back afterwards. Spans, peaks and times equal ``flags_to_events`` on
    all rows; ``top_channels`` sums the channel scores of the event's flagged rows.
    """
    flagged = flagged.sort_values("row", kind="stable")
    rows = flagged["row"].to_numpy(dtype=np.int64)
    between = np.minimum(np.diff(rows) - 1, min_gap + 1)
    position = np.arange(rows.size) + np.concatenate(([0], np.cumsum(between)))
    n = int(position[-1]) + 1
    flags = np.zeros(n, dtype=np.int8)
    flags[position] = 1
    scores = np.full(n, np.nan)
    scores[position] = flagged["score"].to_numpy(dtype=np.float64)
    errors = np.zeros((n, len(channel_names)))
    errors[position] = flagged[list(channel_names)].to_numpy(dtype=np.float64)
    owner = np.searchsorted(position, np.arange(n), side="right") - 1  # placeholder -> row before it
    times = flagged["time"].to_numpy()[owner] if has_time else None
    events = flags_to_events(flags, scores, channel_errors=errors, channel_names=channel_names, time=times,
                             min_gap=min_gap)
    real = np.full(n, -1, dtype=np.int64)
    real[position] = rows
    for column in ("start", "end", "peak_row"):
        events[column] = real[events[column].to_numpy()]
    events["n_rows"] = events["end"] - events["start"] + 1
    return events


def _with_blame(client, events: pd.DataFrame, sides, paths, extra, detector, continuous: bool,
                plugin_name: str) -> pd.DataFrame:
    """``events`` with the columns of ``aeviz score --events`` added (:data:`EVENT_FILE_COLUMNS`): the
    span's identity, its duration, its area above the threshold and the sensor to blame, each event
    blamed on a worker from its rows and ``context_rows`` on each side, read from the files."""
    from .events import event_key

    out = events.copy()
    names = [str(c) for c in detector.feature_names_in_]
    lengths = {str(p): 0 for p in paths}
    for side in sides:
        lengths[side["file"]] += side["rows"]
    offsets, total = {}, 0
    for p in paths:
        offsets[str(p)] = total if continuous else 0
        total += lengths[str(p)]
    flagged = [side["flagged"] for side in sides if len(side["flagged"])]
    flagged = pd.concat(flagged, ignore_index=True) if flagged else pd.DataFrame(columns=["row", "score", "file"])
    threshold, context = float(detector.threshold_), int(detector.context_rows)
    options = {str(p): _options(p, _columns(p), extra) for p in paths}  # each file's header read once
    # each file's (or the series') flagged rows in order with their excess over the threshold:
    # an event's area is one slice of them, found by bisection (not a scan of every flagged row)
    excess = {}
    for key, part in ([(None, flagged)] if continuous else flagged.groupby("file", sort=False)):
        order = np.argsort(part["row"].to_numpy(dtype=np.int64), kind="stable")
        excess[key] = (part["row"].to_numpy(dtype=np.int64)[order],
                       np.maximum(part["score"].to_numpy(dtype=float)[order] - threshold, 0))
    specs, areas = [], []
    for event in out.itertuples(index=False):
        start, end = int(event.start), int(event.end)
        rows, over = excess.get(None if continuous else event.file, (np.zeros(0, np.int64), np.zeros(0)))
        i, j = np.searchsorted(rows, start, side="left"), np.searchsorted(rows, end, side="right")
        areas.append(float(over[i:j].sum()))
        last = total if continuous else lengths[event.file]
        lo, hi = max(0, start - context), min(last, end + context + 1)
        segments = []
        for p in (paths if continuous else [Path(event.file)]):
            a, b = offsets[str(p)], offsets[str(p)] + lengths[str(p)]
            if min(hi, b) > max(lo, a):
                segments.append((str(p), max(lo, a) - a, min(hi, b) - a))
        specs.append({"segments": segments, "start": start - lo, "end": end - lo,
                      "options": options[segments[0][0]]})
    pieces = client.gather(client.map(_blame_piece, specs, plugin_name=plugin_name, pure=False)) if specs else []
    shares = [piece[0] for piece in pieces]
    out["event_id"] = [event_key(a, b) for a, b in zip(out["start"], out["end"], strict=True)]
    out["start_row"], out["end_row"] = out["start"], out["end"]
    out["duration"] = out["duration_s"].where(out["start_time"].notna(), out["n_rows"].astype(float))
    out["area"] = areas
    out["blamed_channel"] = [names[int(np.argmax(s))] for s in shares]
    out["blame_share"] = [round(float(np.max(s)), 4) for s in shares]
    out["kind"] = [piece[1] for piece in pieces]
    out["shift"] = [piece[2] for piece in pieces]
    return out


def _blame_piece(spec, plugin_name: str):
    """Blame one event on a worker: read its rows and context (across files for a continuous series);
    ``(shares, kind, shift)`` (:func:`~aeviz_core.events.lasting_change`)."""
    from .events import lasting_change

    frames = [_read_rows(Path(path), lo, hi) for path, lo, hi in spec["segments"]]
    data = load_sensor_table(pd.concat(frames, ignore_index=True), min_rows=1, **spec["options"])
    detector = get_worker().plugins[plugin_name].detector()
    shares = detector.blame(data.channels, spec["start"], spec["end"])
    return (shares, *lasting_change(detector, data.channels.to_numpy(dtype=float), spec["start"], spec["end"],
                                    [str(c) for c in data.channels.columns]))


def _read_rows(path: Path, lo: int, hi: int) -> pd.DataFrame:
    """Rows ``[lo, hi)`` of a file, as text columns like the scoring partitions (Parquet: typed)."""
    if _is_parquet(path):
        import pyarrow.parquet as pq

        return pq.read_table(path).slice(lo, hi - lo).to_pandas()
    return pd.read_csv(path, sep=_sep(path), dtype=object, encoding="utf-8-sig",
                       skiprows=range(1, lo + 1), nrows=hi - lo)
