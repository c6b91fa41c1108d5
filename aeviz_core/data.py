"""Load multichannel sensor tables and the digit image data sets.

:func:`load_sensor_table` turns a CSV/TSV/Parquet file (a path, bytes, or an
uploaded file object) into a :class:`SensorData`: float64 channels sorted by
time, the parsed time column, the label columns kept apart, and a
:class:`DataReport` of everything that was repaired or looks suspicious.
Every malformed input raises :class:`DataError` with a one-line message that
names the problem, the column and the row; no pandas or pyarrow exception
escapes.

Row numbers in messages
-----------------------
A message that points at a row says ``row N``: the N-th *data* row of the
file, counted from 1, header not counted. ``row 1`` is line 2 of a CSV with
one header line (blank lines are skipped and not counted). Row numbers always
refer to the order in the file, also after the rows were sorted by time.

Digits
------
:func:`load_uci_digits` reads scikit-learn's bundled copy of the UCI
handwritten digits (8x8, offline). :func:`load_mnist` fetches MNIST through
Keras's cache and raises :class:`DatasetUnavailableError` when it cannot.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "LABEL_NAMES",
    "TIME_NAMES",
    "DataError",
    "DataReport",
    "DatasetUnavailableError",
    "SensorData",
    "load_mnist",
    "load_sensor_table",
    "load_uci_digits",
    "mnist_cached",
    "sniff_text_file",
    "write_digits_csv",
]

#: Column names (case-insensitive) taken as the time column.
TIME_NAMES = frozenset({"time", "timestamp", "datetime", "date", "ts"})
#: Column names (case-insensitive) kept apart as labels, never as channels.
LABEL_NAMES = frozenset({
    "anomaly", "label", "labels", "is_anomaly", "anomalous", "fault",
    "fault_type", "fault_channel", "attack", "target", "class",
    "changepoint", "outlier",
})

_PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
_SEPARATORS = (",", ";", "\t")
_SEP_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive (or an .xlsx/.docx file)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel/Office file"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf", "a 7-zip archive"),
    (b"Rar!", "a RAR archive"),
)
_SNIFF_BYTES = 64 * 1024
_GAP_FACTOR = 3.0  # an interval longer than this x the median (two readings or more missing) is a gap
_SKIP_FACTOR = 1.5  # a shorter one longer than this x the median is a skipped reading (a clock's jitter): no warning
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class DataError(ValueError):
    """A malformed input table; the message names the problem, column and row."""


class DatasetUnavailableError(RuntimeError):
    """A data set that cannot be fetched now (e.g. MNIST while offline)."""


@dataclass
class DataReport:
    """What :func:`load_sensor_table` found and repaired.

    Attributes
    ----------
    n_rows, n_channels : int
        Shape of the loaded channels.
    duplicate_times : int
        Rows whose timestamp equals the previous one (rows are kept).
    unsorted : bool
        True when the file was not in time order (the rows were sorted).
    gaps : int
        Intervals longer than 3 x the median interval (two readings or more missing).
    skips : int
        Intervals from 1.5 to 3 x the median: one reading skipped now and then (a clock's
        jitter), counted but not warned about.
    largest_gap : pandas.Timedelta or float or None
        The longest such interval (seconds for a numeric time column); None
        when there is no gap or no time column.
    median_interval : pandas.Timedelta or float or None
        Median of the positive intervals; None without a time column.
    interpolated : dict of str to int
        Channel -> number of cells filled by linear interpolation.
    gap_rows : list of (int, int)
        ``(start, stop)`` positions (in the loaded, time-sorted rows) of each
        gap: rows where some channel is missing for longer than ``max_gap``
        rows. They stay NaN in ``channels``; a series is cut there.
    constant_channels : list of str
        Channels with a single value (kept; scaling handles them).
    warnings : list of str
        Human-readable findings, one line each.
    """

    n_rows: int
    n_channels: int
    duplicate_times: int = 0
    unsorted: bool = False
    gaps: int = 0
    skips: int = 0
    largest_gap: pd.Timedelta | float | None = None
    median_interval: pd.Timedelta | float | None = None
    interpolated: dict[str, int] = field(default_factory=dict)
    gap_rows: list[tuple[int, int]] = field(default_factory=list)
    constant_channels: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class SensorData:
    """A loaded multichannel recording.

    Attributes
    ----------
    channels : pandas.DataFrame
        float64 numeric channels, RangeIndex ``0..n-1``, rows sorted by time,
        no inf; NaN only in the rows of a gap (``report.gap_rows``).
    time : pandas.Series or None
        Parsed datetime64 (or numeric seconds when the column is numeric),
        sorted, same length; None when the table has no time column.
    labels : pandas.DataFrame
        Label columns (``anomaly``, ``fault_type``...), same index; text
        labels have ``""`` where the file had no value. Zero columns if none.
    report : DataReport
    source_name : str
        File name (or ``"<bytes>"``).
    """

    channels: pd.DataFrame
    time: pd.Series | None
    labels: pd.DataFrame
    report: DataReport
    source_name: str

    @property
    def channel_names(self) -> list[str]:
        """Channel column names, in file order."""
        return [str(c) for c in self.channels.columns]

    @property
    def values(self) -> np.ndarray:
        """Channels as a float32 array of shape (n_rows, n_channels)."""
        return self.channels.to_numpy(dtype=np.float32)

    def fingerprint(self) -> str:
        """Stable sha256 hex digest of the channel names and float64 values.

        Used to key reviews and saved models: any changed value, name or
        column order gives another fingerprint.
        """
        digest = hashlib.sha256()
        digest.update(json.dumps(self.channel_names).encode("utf-8"))
        values = np.ascontiguousarray(self.channels.to_numpy(dtype="<f8"))
        digest.update(str(values.shape).encode("ascii"))
        digest.update(values.tobytes())
        return digest.hexdigest()


# --------------------------------------------------------------------------
# reading the raw table


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _read_source(source) -> tuple[bytes, str, str]:
    """Return (content, display name, lower-case suffix)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>", ""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise DataError(f"file not found: {path}")
        try:
            return path.read_bytes(), path.name, path.suffix.lower()
        except OSError as exc:
            raise DataError(f"could not read {path}: {exc.strerror or exc}") from exc
    if hasattr(source, "read"):
        if hasattr(source, "seek"):
            try:
                source.seek(0)
            except (OSError, ValueError):
                pass
        content = source.read()
        if isinstance(content, str):
            content = content.encode("utf-8")
        name = Path(str(getattr(source, "name", "") or "upload")).name
        return bytes(content), name, Path(name).suffix.lower()
    raise TypeError(
        "source must be a path, bytes or a binary file-like object, "
        f"got {type(source).__name__}"
    )


_UNICODE_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def _unicode_bom(content: bytes) -> str | None:
    """The codec of a UTF-16/UTF-32 byte-order mark at the start, else None."""
    for mark, codec in _UNICODE_BOMS:
        if content.startswith(mark):
            return codec
    return None


def _wide_text_without_bom(sample: bytes) -> str | None:
    """"UTF-16" or "UTF-32" when NUL bytes sit where ASCII text in that encoding has them."""
    if len(sample) < 8:
        return None
    for width, what in ((4, "UTF-32"), (2, "UTF-16")):
        usable = sample[: len(sample) // width * width]
        columns = [usable[i::width] for i in range(width)]
        nul_share = [col.count(0) / len(col) for col in columns]
        # exactly one byte of each code unit carries the ASCII letter, the others are NUL
        if sum(share > 0.9 for share in nul_share) == width - 1 and min(nul_share) < 0.1:
            return what
    return None


def _check_binary(content: bytes, name: str) -> None:
    for magic, what in _MAGIC:
        if content.startswith(magic):
            raise DataError(f"{name} is {what}, not a CSV or Parquet table")
    if _unicode_bom(content):
        return
    nul = content.find(b"\x00", 0, _SNIFF_BYTES)
    if nul >= 0:
        wide = _wide_text_without_bom(content[:_SNIFF_BYTES])
        if wide:
            raise DataError(
                f"{name} looks like {wide} text without a byte-order mark: save it as UTF-8"
            )
        raise DataError(
            f"{name} is not a text table: binary content (a NUL byte) at byte {nul}"
        )


_TEXT_FORMATS = (
    (re.compile(r"\s*<(!doctype html|html|\?xml|svg)", re.IGNORECASE), "an HTML/XML document"),
    (re.compile(r"\s*[\[{]\s*[\"\[{]"), "JSON"),
)


def _check_text_format(text: str, name: str) -> None:
    for pattern, what in _TEXT_FORMATS:
        if pattern.match(text[:200]):
            raise DataError(f"{name} looks like {what}, not a CSV table")


def _decode(content: bytes, name: str, notes: list[str]) -> tuple[str, str]:
    """The text and the Python codec that read it (a fallback is noted in ``notes``)."""
    codec = _unicode_bom(content)
    if codec:
        try:
            return content.decode(codec), codec
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{name} has a {codec.upper()} mark but is not valid {codec.upper()}"
            ) from exc
    try:
        return content.decode("utf-8-sig"), "utf-8-sig"
    except UnicodeDecodeError as exc:
        bad = f"byte 0x{content[exc.start]:02x} at offset {exc.start}"
        try:  # Windows exports: like latin-1, plus the euro sign and curly quotes
            text, codec, what = content.decode("cp1252"), "cp1252", "Windows-1252 (latin-1)"
        except UnicodeDecodeError:
            text, codec, what = content.decode("latin-1"), "latin-1", "latin-1"
        if len(text) > 256 and not any(mark in text[:_SNIFF_BYTES] for mark in "\n\r"):
            raise DataError(
                f"{name} is not valid UTF-8 ({bad}) and has no line break in another "
                "8-bit encoding: an unknown encoding (EBCDIC?); save it as UTF-8"
            ) from None
        notes.append(
            f"{name} is not valid UTF-8 ({bad}); read as {what}: check accented "
            "names and units"
        )
    sample = text[:_SNIFF_BYTES]
    control = sum(
        1 for ch in sample
        if (ord(ch) < 32 and ch not in "\t\r\n") or 0x7F <= ord(ch) < 0xA0
    )
    if control > 0.01 * len(sample):
        raise DataError(f"{name} is not a text table: it looks like binary data")
    return text, codec


def detect_sep(lines: list[str]) -> str:
    """csv.Sniffer on a sample, checked against the header, else by counting."""
    sep = None
    try:
        sep = csv.Sniffer().sniff("\n".join(lines), delimiters="".join(_SEPARATORS)).delimiter
    except csv.Error:
        pass
    header_counts = {s: lines[0].count(s) for s in _SEPARATORS}
    if sep in header_counts and header_counts[sep] > 0:
        return sep
    if max(header_counts.values()) == 0:
        return sep if sep in _SEPARATORS else ","
    # counting fallback: prefer a separator found the same number of times on
    # every sampled line, then the one most frequent in the header
    def score(s: str) -> tuple[bool, int]:
        counts = {line.count(s) for line in lines}
        return (len(counts) == 1 and header_counts[s] > 0, header_counts[s])

    return max(_SEPARATORS, key=score)


_COMMA_NUMBER = re.compile(r"\s*\"?[-+]?\d+,\d+\"?\s*")
_POINT_NUMBER = re.compile(r"\s*\"?[-+]?\d+\.\d+\"?\s*")


def _decimal_mark(lines: list[str], sep: str) -> str:
    """"," when more fields look like 1,5 than like 1.5 (never with sep ",")."""
    if sep == ",":
        return "."
    fields = [f for line in lines for f in line.split(sep)]
    commas = sum(1 for f in fields if _COMMA_NUMBER.fullmatch(f))
    points = sum(1 for f in fields if _POINT_NUMBER.fullmatch(f))
    return "," if commas > points else "."


def parser_message(exc: Exception, name: str, sep: str) -> str:
    text = _one_line(exc)
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if found:
        expected, line, saw = (int(g) for g in found.groups())
        return (
            f"{name}: row {line - 1} (line {line} of the file) has {saw} fields, "
            f"the header has {expected} (separator {_SEP_NAMES.get(sep, repr(sep))}): "
            "check quoting, the separator, or decimal commas"
        )
    return f"{name}: could not parse the table as CSV ({text})"


def _sample_lines(text: str, name: str) -> list[str]:
    """Up to 50 non-blank lines from the start of ``text``, none of them cut off."""
    lines = [line for line in text[:_SNIFF_BYTES].splitlines() if line.strip()][:50]
    if not lines:
        raise DataError(f"{name} is empty")
    if len(lines) > 1 and len(text) > _SNIFF_BYTES:
        lines = lines[:-1]  # the last sampled line may be cut off
    return lines


def _read_text_table(text: str, name: str, sep: str | None) -> tuple[pd.DataFrame, str]:
    """Parse delimited text; returns (frame, decimal mark)."""
    lines = _sample_lines(text, name)
    if sep is None:
        sep = detect_sep(lines)
    decimal = _decimal_mark(lines[1:], sep)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = pd.read_csv(
                io.StringIO(text), sep=sep, decimal=decimal,
                skipinitialspace=True, low_memory=False,
            )
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{name} is empty") from exc
    except MemoryError:
        raise
    except pd.errors.ParserError as exc:
        raise DataError(parser_message(exc, name, sep)) from exc
    except Exception as exc:  # any other parser failure: one line, no traceback
        raise DataError(f"{name}: could not parse the table ({_one_line(exc)})") from exc
    if frame.shape[1] == 1:
        _check_other_separator(lines, name, sep, str(frame.columns[0]))
    _check_repeated_names(text, name, sep, frame)
    return frame, decimal


_OTHER_SEPARATORS = {"|": "'|'", ":": "':'", " ": "spaces", ";": "semicolons",
                     ",": "commas", "\t": "tabs"}


def _check_other_separator(lines: list[str], name: str, sep: str, column: str) -> None:
    """A one-column table whose every line splits on another character: say which."""
    for other, what in _OTHER_SEPARATORS.items():
        if other == sep:
            continue
        count = lines[0].strip().count(other)
        if count and all(line.strip().count(other) >= count for line in lines[1:]):
            raise DataError(
                f"{name} reads as a single column {column!r}: its fields look separated by "
                f"{what}, not by the separator {_SEP_NAMES.get(sep, repr(sep))}; comma, "
                f"semicolon and tab are detected, pass sep={other!r} for this file"
            )


def _check_repeated_names(text: str, name: str, sep: str, frame: pd.DataFrame) -> None:
    """pandas renames a repeated header name ("b", "b.1"): refuse it as the loader does."""
    if not any(re.search(r"\.\d+$", str(c)) for c in frame.columns):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = pd.read_csv(io.StringIO(text), sep=sep, header=None, nrows=1, dtype=str,
                             skipinitialspace=True).iloc[0]
    names = [str(v).strip() for v in header if isinstance(v, str)]
    seen = set()
    for column in names:
        if column in seen:
            raise DataError(f"{name}: column name {column!r} appears more than once")
        seen.add(column)


def sniff_text_file(path, sep: str | None = None) -> dict:
    """Check the start of a text table as :func:`load_sensor_table` does, for chunked readers.

    A reader that parses a large file piece by piece (``pandas.read_csv``
    with ``chunksize``) calls this first, so binary files, other encodings,
    HTML/JSON and unknown separators fail with the loader's messages.

    Parameters
    ----------
    path : str or pathlib.Path
        A text table (CSV/TSV).
    sep : str, optional
        Force a separator.

    Returns
    -------
    dict
        ``encoding`` (a Python codec for ``read_csv``), ``sep``, ``decimal``
        and ``warnings`` (e.g. the latin-1 fallback), one line each.

    Raises
    ------
    DataError
        For the problems the loader finds in the first 64 KiB.
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
        cut = bool(fh.read(1))
    if not head.strip():
        raise DataError(f"{name} is empty")
    _check_binary(head, name)
    if cut:  # never decode half a character
        if _unicode_bom(head):
            head = head[: len(head) // 4 * 4]
        elif b"\n" in head:
            head = head[: head.rindex(b"\n") + 1]
    notes: list[str] = []
    text, encoding = _decode(head, name, notes)
    _check_text_format(text, name)
    lines = _sample_lines(text, name)
    if sep is None:
        sep = detect_sep(lines)
    header = [h.strip() for h in next(csv.reader([lines[0]], delimiter=sep))]
    if len(header) == 1:
        _check_other_separator(lines, name, sep, header[0])
    repeated = [h for i, h in enumerate(header) if h and h in header[:i]]
    if repeated:
        raise DataError(f"{name}: column name {repeated[0]!r} appears more than once")
    return {"encoding": encoding, "sep": sep, "decimal": _decimal_mark(lines[1:], sep),
            "warnings": notes}


def _read_parquet(content: bytes, name: str) -> pd.DataFrame:
    try:
        import pyarrow.parquet as pq

        frame = pq.read_table(io.BytesIO(content)).to_pandas()
    except MemoryError:
        raise
    except Exception as exc:
        raise DataError(
            f"{name}: could not read the Parquet file ({_one_line(exc)})"
        ) from exc
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
    return frame.reset_index(drop=True)


def _read_frame(source, sep: str | None, notes: list[str]) -> tuple[pd.DataFrame, str, str]:
    if isinstance(source, pd.DataFrame):  # a chunk of a streamed file, already parsed
        return source.reset_index(drop=True), str(source.attrs.get("name", "<frame>")), "."
    content, name, suffix = _read_source(source)
    if not content.strip():
        raise DataError(f"{name} is empty")
    if content.startswith(b"PAR1") or suffix in _PARQUET_SUFFIXES:
        return _read_parquet(content, name), name, "."
    _check_binary(content, name)
    text, _ = _decode(content, name, notes)
    if not text.strip():
        raise DataError(f"{name} is empty")
    _check_text_format(text, name)
    frame, decimal = _read_text_table(text, name, sep)
    return frame, name, decimal


# --------------------------------------------------------------------------
# columns


def _as_names(value, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    try:
        return [str(v) for v in value]
    except TypeError:
        raise TypeError(f"{what} must be a column name or a list of names, got {value!r}") from None


def _short(name, limit: int = 40) -> str:
    """repr of a column name, cut to ``limit`` characters (a garbage header stays readable)."""
    name = str(name)
    return repr(name) if len(name) <= limit else repr(name[: limit - 3]) + "..."


def _columns_text(columns) -> str:
    names = [_short(c) for c in columns]
    if len(names) > 12:
        names = names[:12] + [f"... ({len(columns)} in all)"]
    return ", ".join(names)


def _row(position: int) -> str:
    return f"row {position + 1}"


_DAY_MONTH_YEAR = re.compile(r"\s*(\d{1,2})([./-])\d{1,2}\2\d{2,4}\b")


def _day_first(values: pd.Series) -> bool:
    """Whether dates read day first: 05.01.2026, or 25/01/2026 somewhere in a sample."""
    sample = values.dropna().astype(str).head(200)
    found = [m for m in map(_DAY_MONTH_YEAR.match, sample) if m]
    if not found:
        return False
    return found[0].group(2) == "." or any(int(m.group(1)) > 12 for m in found)


def _parse_times(values: pd.Series) -> pd.Series:
    """Parse text to datetimes; unparseable values become NaT."""
    n_missing = int(values.isna().sum())
    best = None
    dayfirst = _day_first(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kwargs in ({}, {"format": "mixed"}, {"format": "mixed", "utc": True}):
            try:
                parsed = pd.to_datetime(values, errors="coerce", dayfirst=dayfirst, **kwargs)
            except (ValueError, TypeError, OverflowError):
                continue
            if best is None or parsed.isna().sum() < best.isna().sum():
                best = parsed
            if best.isna().sum() == n_missing:
                break
    if best is None:
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    return best


def _zero_step(series: pd.Series):
    """The zero of ``series.diff()``: a zero Timedelta for times, else 0."""
    return pd.Timedelta(0) if pd.api.types.is_datetime64_any_dtype(series) else 0


def _is_boolean(col: pd.Series) -> bool:
    """Whether every value present is a boolean or the word true/false (any case)."""
    if pd.api.types.is_bool_dtype(col):
        return True
    if not _is_text(col):
        return False
    present = col.dropna()
    if present.empty:
        return False
    words = present.astype(str).str.strip().str.lower()
    return bool(words.isin(("true", "false")).all())


def _is_text(col: pd.Series) -> bool:
    return not (
        pd.api.types.is_numeric_dtype(col)
        or pd.api.types.is_datetime64_any_dtype(col)
        or pd.api.types.is_timedelta64_dtype(col)
    )


def _find_time_column(frame: pd.DataFrame, time_col, labels: list[str]) -> str | None:
    if time_col is not None:
        time_col = str(time_col)
        if time_col not in frame.columns:
            raise DataError(
                f"time_col={time_col!r} is not a column; columns are {_columns_text(frame.columns)}"
            )
        if time_col in labels:
            raise DataError(f"column {time_col!r} cannot be both the time column and a label")
        return time_col
    candidates = [c for c in frame.columns if c not in labels]
    for column in candidates:
        if column.lower() in TIME_NAMES:
            return column
    for column in candidates:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            return column
    if candidates and candidates[0] == frame.columns[0] and _is_text(frame[candidates[0]]):
        head = frame[candidates[0]].dropna().head(200).astype(str)
        if (len(head) and not _grouped_numbers(head).mean() >= 0.5
                and _parse_times(head).notna().mean() >= 0.5):
            return candidates[0]
    return None


_GROUPED_NUMBER = re.compile(r"[-+]?\d{1,3}([,' \u00a0\u202f]\d{3})+([.,]\d+)?")


def _grouped_numbers(text: pd.Series) -> np.ndarray:
    """True for numbers written with thousands separators: 1,234.5 or 12 345 678."""
    return text.str.strip().str.fullmatch(_GROUPED_NUMBER).fillna(False).to_numpy(dtype=bool)


def _time_values(col: pd.Series, name: str) -> pd.Series:
    """The time column as datetime64 or numeric; DataError on a missing/bad value."""
    if pd.api.types.is_bool_dtype(col):
        raise DataError(f"time column {name!r} holds true/false values, not times")
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_datetime64_any_dtype(col):
        parsed = col
    elif pd.api.types.is_timedelta64_dtype(col):
        parsed = col.dt.total_seconds()
    else:
        parsed = _parse_times(col.astype(object).where(col.notna(), None).map(
            lambda v: v if v is None else str(v).strip()))
        bad = parsed.isna() & col.notna()
        if bad.any():
            position = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"time column {name!r} has {col.iloc[position]!r} at {_row(position)}, "
                "which is not a date/time: fix it, or pass time_col= to pick another column"
            )
    missing = parsed.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(parsed):
        missing = missing | ~np.isfinite(parsed.to_numpy(dtype=np.float64, na_value=np.nan))
    if missing.any():
        position = int(np.flatnonzero(missing)[0])
        raise DataError(
            f"time column {name!r} has no value at {_row(position)} "
            f"({int(missing.sum())} missing in all): fill or remove these rows"
        )
    return parsed.reset_index(drop=True).rename(name)


def _text_to_numbers(text: pd.Series, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numbers from stripped text, and the mask of present values that are not numbers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    spelled_nan = (text.str.lower() == "nan").fillna(False).to_numpy(dtype=bool)
    return values, present & np.isnan(values) & ~spelled_nan


def _channel_values(col: pd.Series, name: str, decimal: str, time_name) -> np.ndarray:
    """A channel column as float64 (NaN/inf kept); DataError on text."""
    if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(col) or pd.api.types.is_timedelta64_dtype(col):
        hint = f"{time_name!r} is the time column" if time_name else "it is not a channel"
        raise DataError(
            f"column {name!r} holds dates/times ({hint}): "
            f"remove it with drop=[{name!r}] or pick it with time_col={name!r}"
        )
    present = col.notna().to_numpy()
    text = col.astype(object).where(col.notna(), None).map(
        lambda v: v if v is None else str(v).strip())
    if decimal == ",":
        text = text.str.replace(",", ".", regex=False)
    values, bad = _text_to_numbers(text, present)
    if bad.any() and text[bad].str.fullmatch(r"[-+]?\d+,\d+").all():
        # decimal commas inside quotes in a comma-separated file: "1,5"
        values, bad = _text_to_numbers(text.str.replace(",", ".", regex=False), present)
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        value = col.iloc[position]
        grouped = _grouped_numbers(text[bad].astype(str))
        if grouped.any():
            position = int(np.flatnonzero(bad)[int(np.flatnonzero(grouped)[0])])
            raise DataError(
                f"column {name!r} has {col.iloc[position]!r} at {_row(position)} "
                f"({int(grouped.sum())} value(s) in all): a number with thousands separators; "
                "export the file without them"
            )
        fix = f"remove it with drop=[{name!r}] or mark it as a label with label_cols=[{name!r}]"
        if bad.sum() == present.sum():
            head = text[present].head(50)
            if _parse_times(head).notna().all():
                hint = f"{time_name!r} is the time column" if time_name else "not a channel"
                raise DataError(
                    f"column {name!r} holds dates/times (e.g. {value!r} at {_row(position)}; "
                    f"{hint}): remove it with drop=[{name!r}] or pick it with time_col={name!r}"
                )
            raise DataError(
                f"column {name!r} is text (e.g. {value!r} at {_row(position)}), "
                f"not a time column and not a known label name: {fix}"
            )
        raise DataError(
            f"column {name!r} has text {value!r} at {_row(position)} "
            f"({int(bad.sum())} text value(s) in all); a channel must be numeric: "
            f"fix the value, or {fix}"
        )
    return values


# --------------------------------------------------------------------------
# time order, gaps, missing values


def mask_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True in a 1-D bool array."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def _fmt_interval(value) -> str:
    if isinstance(value, pd.Timedelta):
        text = str(value)
        return text.removeprefix("0 days ")
    return f"{value:g}"


def _time_report(time: pd.Series, rows: np.ndarray, report: DataReport) -> None:
    name = time.name
    if len(time) < 2:
        return
    diffs = time.diff().iloc[1:].reset_index(drop=True)
    zero = diffs == _zero_step(time)
    report.duplicate_times = int(zero.sum())
    if report.duplicate_times:
        first = int(rows[int(np.flatnonzero(zero.to_numpy())[0]) + 1])
        report.warnings.append(
            f"{report.duplicate_times} duplicate timestamp(s) in {name!r} "
            f"(first at {_row(first)}); the rows are kept"
        )
    positive = diffs[~zero]
    if positive.empty:
        return
    median = positive.median()
    if not isinstance(median, pd.Timedelta):
        median = float(median)
    report.median_interval = median
    is_gap = (positive > _GAP_FACTOR * median).to_numpy()
    report.gaps = int(is_gap.sum())
    report.skips = int((positive > _SKIP_FACTOR * median).sum()) - report.gaps
    if report.gaps:
        largest_at = int(positive.to_numpy().argmax())
        largest = positive.iloc[largest_at]
        report.largest_gap = largest if isinstance(largest, pd.Timedelta) else float(largest)
        after = int(rows[int(positive.index[largest_at]) + 1])
        report.warnings.append(
            f"{report.gaps} gap(s) in {name!r} longer than {_GAP_FACTOR:g} x the median "
            f"interval ({_fmt_interval(median)}); the largest is "
            f"{_fmt_interval(report.largest_gap)}, before {_row(after)}"
        )


def _fill_missing(
    values: np.ndarray, names: list[str], rows: np.ndarray, max_gap: int,
    sorted_note: str, report: DataReport,
) -> None:
    """Interpolate short runs of NaN/inf in place; refuse long ones."""
    positions = np.arange(len(values), dtype=np.float64)
    for j, name in enumerate(names):
        column = values[:, j]
        n_inf = int(np.isinf(column).sum())
        huge = np.isfinite(column) & (np.abs(column) > _FLOAT32_MAX)
        if huge.any():
            i = int(np.flatnonzero(huge)[0])
            raise DataError(
                f"column {name!r} has {column[i]:g} at {_row(int(rows[i]))}, beyond the "
                f"float32 range (+/-{_FLOAT32_MAX:.3g}) the models use: rescale the column"
            )
        missing = ~np.isfinite(column)
        if not missing.any():
            continue
        if missing.all():
            raise DataError(f"column {name!r} has no finite value in any row")
        runs = mask_runs(missing)
        short = np.zeros(len(column), bool)
        for a, b in runs:
            short[a:b] = b - a <= max_gap  # a longer run stays missing: a gap (see _report_gaps)
        column[missing] = np.nan
        if not short.any():
            continue
        column[short] = np.interp(positions[short], positions[~missing], column[~missing])
        runs = [(a, b) for a, b in runs if b - a <= max_gap]
        count = int(short.sum())
        report.interpolated[name] = count
        inf_note = f", {n_inf} of them infinite (overflow?)" if n_inf else ""
        report.warnings.append(
            f"interpolated {count} missing value(s) in {name!r}{inf_note}; longest run "
            f"{max(b - a for a, b in runs)} row(s), first at {_row(int(rows[runs[0][0]]))}"
        )


def _report_gaps(values: np.ndarray, names: list[str], rows: np.ndarray, time, max_gap: int,
                 sorted_note: str, report: DataReport) -> None:
    """Name each gap: rows where a channel stays missing for longer than ``max_gap`` rows."""
    gap = np.isnan(values).any(axis=1)
    for a, b in mask_runs(gap):
        missing = [n for j, n in enumerate(names) if np.isnan(values[a:b, j]).any()]
        when = "" if time is None else f", {time.iloc[a]} to {time.iloc[b - 1]}"
        report.gap_rows.append((int(a), int(b)))
        report.warnings.append(
            f"gap of {b - a} row(s) at rows {int(rows[a]) + 1}-{int(rows[b - 1]) + 1}{sorted_note}{when}: "
            f"{_columns_text(missing)} missing for longer than max_gap={max_gap} rows; the series is "
            "cut there, no window spans the gap and its rows get no score"
        )


def _check_header_is_names(columns, notes: list[str]) -> None:
    """Warn when every column name is a number: the file probably has no header row."""
    names = pd.Series([str(c) for c in columns], dtype=object)
    numbers = pd.to_numeric(names, errors="coerce")
    if len(names) == 0 or numbers.isna().any():
        return
    count = np.arange(len(names))
    if np.array_equal(numbers, count) or np.array_equal(numbers, count + 1):
        return  # columns named 0, 1, 2, ... (pixels, a saved frame): real names
    notes.append(
        f"every column name is a number ({_columns_text(names)}): the file seems to have no "
        "header row, so its first data row was taken as the header; add a header line"
    )


#: Label names that say normal/anomalous: their values should be 0/1 (or true/false).
_BINARY_LABELS = frozenset({"anomaly", "is_anomaly", "anomalous", "outlier"})


def _check_label_values(col: pd.Series, rows: np.ndarray, report: DataReport) -> None:
    """Warn about a label column mixing numbers with words, or a 0/1 label holding other values."""
    name = str(col.name)
    present = col.notna().to_numpy()
    if not present.any() or pd.api.types.is_bool_dtype(col):
        return
    if _is_text(col):
        text = col[present].astype(str).str.strip()
        text = text[text != ""]
        numeric = pd.to_numeric(text, errors="coerce").notna()
        if numeric.any() and not numeric.all():
            words = sorted(set(text[~numeric]))
            shown = ", ".join(repr(w) for w in words[:5]) + (" ..." if len(words) > 5 else "")
            first = int(rows[int(text[~numeric].index[0])])
            report.warnings.append(
                f"label column {name!r} mixes numbers with words ({shown}; first at "
                f"{_row(first)}): check how each value should count"
            )
        return
    if name.lower() in _BINARY_LABELS and pd.api.types.is_numeric_dtype(col):
        odd = present & ~col.isin([0, 1]).to_numpy()
        if odd.any():
            values = sorted(set(col[odd].tolist()))
            shown = ", ".join(f"{v:g}" for v in values[:5]) + (" ..." if len(values) > 5 else "")
            first = int(rows[int(np.flatnonzero(odd)[0])])
            report.warnings.append(
                f"label column {name!r} should hold 0 (normal) or 1 (anomalous) but has "
                f"{shown} ({int(odd.sum())} row(s), first at {_row(first)})"
            )


def _check_named(names, frame: pd.DataFrame, name: str, option: str) -> None:
    """DataError naming the columns ``option`` asks for that ``frame`` (read from ``name``) lacks."""
    unknown = [c for c in names if c not in frame.columns]
    if unknown:
        raise DataError(f"{option} names column(s) not in {name}: {_columns_text(unknown)}; "
                        f"columns are {_columns_text(frame.columns)}")


def _drop_unnamed(frame: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Drop header-less columns that are empty (trailing separators) or a saved index."""
    unnamed = [c for c in frame.columns if re.fullmatch(r"Unnamed: \d+", c)]
    empty = [c for c in unnamed if frame[c].isna().all()]
    if empty:
        notes.append(
            f"dropped {len(empty)} empty column(s) without a header (trailing separators?)"
        )
    index = []
    if unnamed and unnamed[0] == frame.columns[0] and frame.columns[0] not in empty:
        first = frame[frame.columns[0]]
        if pd.api.types.is_integer_dtype(first) and (
            np.array_equal(first.to_numpy(), np.arange(len(first)))
            or np.array_equal(first.to_numpy(), np.arange(1, len(first) + 1))
        ):
            index = [frame.columns[0]]
            notes.append(f"dropped column {index[0]!r}: a saved row index (0, 1, 2, ...)")
    return frame.drop(columns=empty + index)


# --------------------------------------------------------------------------
# public loader


def load_sensor_table(
    source,
    *,
    time_col: str | None = None,
    label_cols=None,
    drop=(),
    max_gap: int = 10,
    min_rows: int = 2,
    sep: str | None = None,
    max_channels: int = 2000,
) -> SensorData:
    """Load a multichannel sensor table, checked and repaired.

    Parameters
    ----------
    source : str, pathlib.Path, bytes, binary file-like or DataFrame
        A ``.csv``/``.tsv``/``.txt`` or ``.parquet``/``.pq`` file, its bytes,
        an object with ``read()`` and ``name`` (Streamlit's UploadedFile), or
        an already parsed frame (a chunk of a streamed file; its
        ``attrs["name"]`` names it in messages).
        The separator (comma, semicolon or tab) is detected unless ``sep`` is
        given; decimal commas are understood with ``;`` or tab separators.
        UTF-8 with or without BOM is read; anything else falls back to
        latin-1 with a warning.
    time_col : str, optional
        Time column. By default a column named time/timestamp/datetime/date/ts
        (any case), else a datetime-typed column, else the first column when
        it parses as dates. Rows are sorted by it.
    label_cols : str or list of str, optional
        Columns kept apart as labels. By default the columns whose lower-case
        name is in :data:`LABEL_NAMES` (anomaly, fault_type, ...).
    drop : str or list of str
        Columns removed before anything else.
    max_gap : int
        Longest run of consecutive missing/non-finite cells in a channel that
        is linearly interpolated (edges take the nearest value); a longer run
        is a gap: its rows stay NaN and a warning names it (rows, times,
        channels). A detector cuts the series there.
    min_rows : int
        Fewest data rows accepted.
    sep : str, optional
        Force a separator for text files.
    max_channels : int
        Most channels accepted.

    Returns
    -------
    SensorData
        ``channels`` (float64, finite, sorted by time), ``time``, ``labels``
        and a :class:`DataReport` whose ``warnings`` list every repair.

    Raises
    ------
    DataError
        For any malformed input; the message names the problem, the column
        and the row (``row N`` = N-th data row of the file, header not
        counted).

    Examples
    --------
    >>> data = load_sensor_table(b"time,a,b\\n0,1,2\\n1,2,4\\n2,3,6\\n")
    >>> data.channel_names, data.values.shape
    (['a', 'b'], (3, 2))
    """
    if not isinstance(max_gap, (int, np.integer)) or max_gap < 0:
        raise ValueError(f"max_gap must be an integer >= 0, got {max_gap!r}")
    if not isinstance(min_rows, (int, np.integer)) or min_rows < 1:
        raise ValueError(f"min_rows must be an integer >= 1, got {min_rows!r}")
    if not isinstance(max_channels, (int, np.integer)) or max_channels < 1:
        raise ValueError(f"max_channels must be an integer >= 1, got {max_channels!r}")
    if sep is not None and (not isinstance(sep, str) or len(sep) != 1):
        raise ValueError(f"sep must be a single character such as ',' ';' or '\\t', got {sep!r}")

    notes: list[str] = []
    frame, name, decimal = _read_frame(source, sep, notes)
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.shape[1] == 0:
        raise DataError(f"{name} is empty")
    duplicated = frame.columns[frame.columns.duplicated()]
    if len(duplicated):
        raise DataError(f"{name}: column name {duplicated[0]!r} appears more than once")
    _check_header_is_names(frame.columns, notes)
    n_rows = len(frame)
    if n_rows == 0:
        raise DataError(
            f"{name} has a header ({_columns_text(frame.columns)}) but no data rows"
        )
    if n_rows < min_rows:
        raise DataError(
            f"{name} has only {n_rows} data row(s); at least min_rows={min_rows} are needed"
        )

    drop = _as_names(drop, "drop")
    _check_named(drop, frame, name, "drop")
    frame = frame.drop(columns=drop)
    frame = _drop_unnamed(frame, notes)

    if label_cols is None:
        labels = [c for c in frame.columns if c.lower() in LABEL_NAMES and c != time_col]
        for column in frame.columns:  # a true/false column is a label, whatever its name (GECCO's EVENT)
            if column not in labels and column != time_col and _is_boolean(frame[column]):
                labels.append(column)
                notes.append(f"column {column!r} holds only true/false: read as a label (true = anomalous), "
                             "not as a sensor")
    else:
        labels = _as_names(label_cols, "label_cols")
        _check_named(labels, frame, name, "label_cols")
    time_name = _find_time_column(frame, time_col, labels)
    channel_names = [c for c in frame.columns if c != time_name and c not in labels]
    if not channel_names:
        kept = ([f"time column {time_name!r}"] if time_name else []) + (
            [f"label column(s) {_columns_text(labels)}"] if labels else [])
        raise DataError(
            f"{name} has no numeric channel: only {' and '.join(kept) or 'no columns'} "
            "after drop"
        )
    if len(channel_names) > max_channels:
        raise DataError(
            f"{name} has {len(channel_names)} channels, more than "
            f"max_channels={max_channels}: drop columns or raise max_channels"
        )

    report = DataReport(n_rows=n_rows, n_channels=len(channel_names), warnings=notes)
    values = np.empty((n_rows, len(channel_names)), dtype=np.float64)
    for j, column in enumerate(channel_names):
        values[:, j] = _channel_values(frame[column], column, decimal, time_name)

    rows = np.arange(n_rows)  # file position of each (sorted) row
    time = None
    sorted_note = ""
    if time_name is not None:
        time = _time_values(frame[time_name], time_name)
        if not time.is_monotonic_increasing:
            report.unsorted = True
            back = (time.diff() < _zero_step(time)).to_numpy()
            first = int(np.flatnonzero(back)[0])
            rows = time.sort_values(kind="stable").index.to_numpy()
            time = time.iloc[rows].reset_index(drop=True)
            values = values[rows]
            sorted_note = " (in time order)"
            report.warnings.append(
                f"rows were not in time order (first step back at {_row(first)}); "
                f"sorted by {time_name!r}"
            )
        _time_report(time, rows, report)

    _fill_missing(values, channel_names, rows, int(max_gap), sorted_note, report)
    _report_gaps(values, channel_names, rows, time, int(max_gap), sorted_note, report)
    if sum(b - a for a, b in report.gap_rows) == n_rows:
        raise DataError(f"{name} has no row where every channel has a value: it is all gaps")
    spans = np.nanmax(values, axis=0) - np.nanmin(values, axis=0)
    for j, column in enumerate(channel_names):
        if spans[j] == 0:
            report.constant_channels.append(column)
            report.warnings.append(
                f"channel {column!r} is constant ({np.nanmin(values[:, j]):g}); kept, it carries "
                "no information and scaling handles it"
            )

    label_frame = frame[labels].iloc[rows].reset_index(drop=True)
    for column in labels:
        _check_label_values(label_frame[column], rows, report)
        if _is_text(label_frame[column]):
            label_frame[column] = label_frame[column].fillna("")
    channels = pd.DataFrame(values, columns=channel_names)
    return SensorData(
        channels=channels, time=time, labels=label_frame, report=report, source_name=name,
    )


# --------------------------------------------------------------------------
# digits


def load_uci_digits() -> tuple[np.ndarray, np.ndarray]:
    """The UCI handwritten digits bundled with scikit-learn (offline).

    Returns
    -------
    X : ndarray of float32, shape (1797, 64)
        8x8 images flattened row by row, values 0-16.
    y : ndarray of int64, shape (1797,)
        Digit 0-9.

    Examples
    --------
    >>> X, y = load_uci_digits()
    >>> X.shape, int(X.max())
    ((1797, 64), 16)
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data.astype(np.float32), digits.target.astype(np.int64)


def write_digits_csv(path) -> Path:
    """Write the UCI digits as CSV: columns ``p0..p63`` (integers 0-16), ``label``.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    X, y = load_uci_digits()
    frame = pd.DataFrame(X.astype(np.int64), columns=[f"p{i}" for i in range(X.shape[1])])
    frame["label"] = y
    path = Path(path)
    frame.to_csv(path, index=False, lineterminator="\n")
    return path


def _keras_home() -> Path:
    # mirrors keras.src.backend.config: $KERAS_HOME, else ~/.keras (or /tmp/.keras
    # when the home folder is not writable)
    if os.environ.get("KERAS_HOME"):
        return Path(os.environ["KERAS_HOME"])
    home = Path("~").expanduser()
    return (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"


def mnist_cached() -> bool:
    """Whether MNIST is already in Keras's cache (``<keras home>/datasets/mnist.npz``)."""
    return (_keras_home() / "datasets" / "mnist.npz").is_file()


def load_mnist(n: int = 10000, random_state=0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded subset of the MNIST training images, via Keras's cache.

    The first call downloads ``mnist.npz`` (11 MB) into ``~/.keras/datasets``;
    later calls read the cache.

    Parameters
    ----------
    n : int
        Number of images, 1 to 60000, drawn without replacement.
    random_state : int or numpy.random.Generator
        Seed of the subset.

    Returns
    -------
    X : ndarray of float32, shape (n, 28, 28)
        Pixel intensities scaled to [0, 1].
    y : ndarray of int64, shape (n,)
        Digit 0-9.

    Raises
    ------
    DatasetUnavailableError
        When MNIST cannot be downloaded or read (offline, corrupt cache).
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    try:
        import keras

        (x_train, y_train), _ = keras.datasets.mnist.load_data()
    except MemoryError:
        raise
    except Exception as exc:
        raise DatasetUnavailableError(
            "MNIST could not be downloaded (offline?) or read from the Keras cache "
            f"({_one_line(exc)}); the UCI digits are available offline"
        ) from exc
    if n > len(x_train):
        raise ValueError(f"n must be <= {len(x_train)} (MNIST training images), got {n}")
    rng = np.random.default_rng(random_state)
    index = np.sort(rng.choice(len(x_train), size=int(n), replace=False))
    X = np.asarray(x_train[index], dtype=np.float32) / np.float32(255.0)
    return X, np.asarray(y_train[index], dtype=np.int64)
