"""Score files larger than memory: chunked reading and context-overlapping scoring.

A row's score depends on the rows around it: the windows that cover it
(``window - 1`` rows each side) and the averaging of the residual energy
(``smooth // 2`` rows further). :func:`score_stream` therefore scores each
chunk together with ``detector.context_rows`` rows before and after it and
keeps only the chunk's own rows, so the scores equal scoring the whole file
in one piece. Only one chunk (plus context) is in memory at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from .data import DataError, parser_message, load_sensor_table, sniff_text_file
from .scores import score_table

__all__ = ["iter_sensor_chunks", "score_stream"]

DEFAULT_CHUNK_ROWS = 250_000


def iter_sensor_chunks(path, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, time_col=None, label_cols=None,
                       drop=(), max_gap: int = 10) -> Iterator:
    """Read a CSV or Parquet file chunk by chunk, each checked like a whole file.

    Parameters
    ----------
    path : str or Path
        A CSV (separator detected from the first lines) or Parquet file,
        stored in time order.
    chunk_rows : int
        Rows per chunk.
    time_col, label_cols, drop, max_gap
        As for :func:`aeviz_core.load_sensor_table`.

    Yields
    ------
    SensorData
        One per chunk; its rows are the file's rows in order.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    options = {"time_col": time_col, "label_cols": label_cols, "drop": drop, "max_gap": max_gap, "min_rows": 1}
    first_row = 0
    for frame in _raw_chunks(path, chunk_rows):
        file_warnings = frame.attrs.get("warnings", [])
        frame.attrs["name"] = f"{path.name} (rows {first_row + 1}-{first_row + len(frame)})"
        first_row += len(frame)
        data = load_sensor_table(frame, **options)
        data.report.warnings[:0] = file_warnings  # e.g. the encoding fallback, once per file
        yield data


def _raw_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == b"PAR1" or path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise DataError(f"{path.name} is not a readable Parquet file ({exc})") from None
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
        return
    text = sniff_text_file(path)  # the loader's checks: binary, encodings, separator, decimal mark
    try:
        for i, chunk in enumerate(pd.read_csv(path, sep=text["sep"], decimal=text["decimal"],
                                              encoding=text["encoding"], skipinitialspace=True,
                                              chunksize=chunk_rows)):
            if i == 0:
                chunk.attrs["warnings"] = list(text["warnings"])
            yield chunk
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(parser_message(exc, path.name, text["sep"])) from None


def score_stream(detector, chunks: Iterable) -> Iterator[pd.DataFrame]:
    """Score a series chunk by chunk; equal to :func:`score_table` on the whole.

    Parameters
    ----------
    detector : AutoencoderDetector
        Fitted.
    chunks : iterable of SensorData
        Consecutive pieces of one series (e.g. :func:`iter_sensor_chunks`).

    Yields
    ------
    scores : DataFrame
        ``row, [time], score, flag, top_channel`` for consecutive rows;
        ``row`` counts from the first row of the first chunk.
    """
    context = detector.context_rows
    buffer: pd.DataFrame | None = None  # channels (+ time) not yet final, with left context
    pending = 0  # position in buffer of the first row not yet emitted
    emitted = 0  # rows emitted so far (the row number of buffer[pending])
    has_time = None
    for chunk in chunks:
        frame = chunk.channels.copy()
        if has_time is None:
            has_time = chunk.time is not None
        if has_time:
            frame.insert(0, "__time__", chunk.time.to_numpy())
        buffer = frame if buffer is None else pd.concat([buffer, frame], ignore_index=True)
        final = len(buffer) - context  # rows before this have all their right context
        if final - pending < max(context, 1):
            continue  # wait for more rows: scoring tiny pieces would waste the context
        yield _score_slice(detector, buffer, pending, final, emitted, has_time)
        emitted += final - pending
        keep_from = max(final - context, 0)
        buffer = buffer.iloc[keep_from:].reset_index(drop=True)
        pending = final - keep_from
    if buffer is not None and pending < len(buffer):
        yield _score_slice(detector, buffer, pending, len(buffer), emitted, has_time)


def _score_slice(detector, buffer, start, stop, first_row, has_time) -> pd.DataFrame:
    """Scores of buffer rows [start, stop), computed with the context around them."""
    lo, hi = max(start - detector.context_rows, 0), min(stop + detector.context_rows, len(buffer))
    piece = buffer.iloc[lo:hi]
    channels = piece.drop(columns="__time__") if has_time else piece
    scores = score_table(detector, channels.reset_index(drop=True))
    scores = scores.iloc[start - lo : stop - lo].reset_index(drop=True)
    scores["row"] = range(first_row, first_row + len(scores))
    if has_time:
        scores.insert(1, "time", piece["__time__"].iloc[start - lo : stop - lo].to_numpy())
    return scores
