"""Write the corpus of malformed sensor tables in ``tests/data/bad/``.

Usage::

    python scripts/make_bad_inputs.py [OUTPUT_DIR]

Every file is built from :data:`CORPUS`, a list of :class:`BadInput`: the
file's bytes, what is wrong with it, and what each entry point must do with
it (the loader, ``aeviz score`` with a model trained on channels ``a, b, c,
level`` and a window of 16 rows, and the app's upload). The same list writes
``README.md`` and drives ``tests/test_bad_inputs.py``, so the documentation
and the tests cannot drift apart. The output is deterministic: running the
script twice gives byte-identical files (the tests check the committed copy).
"""

from __future__ import annotations

import argparse
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "tests" / "data" / "bad"

#: The channels of the model the CLI scores with (tests/conftest.make_series).
CHANNELS = ("a", "b", "c", "level")
#: The window of that model.
WINDOW = 16
#: Rows of a regular file of the corpus (longer than a window and its context).
ROWS = 80


@dataclass(frozen=True)
class BadInput:
    """One malformed file and what must become of it.

    ``load`` is the loader's outcome: ``"error"`` (DataError whose message
    holds ``load_msg``), ``"warning"`` (loads; a line of
    ``report.warnings`` holds ``load_msg``) or ``"ok"`` (loads cleanly; the
    problem shows later). ``cli`` is the outcome of ``aeviz score``:
    ``"error"`` (exit 2, last stderr line ``aeviz: error: ...`` holding
    ``cli_msg``) or ``"ok"`` (exit 0, every score finite; a warning line
    ``aeviz: warning: ...`` holding ``cli_msg`` when one is given).
    """

    name: str
    what: str
    content: bytes
    load: str
    load_msg: str
    cli: str
    cli_msg: str | None = None

    @property
    def repairable(self) -> bool:
        return self.load != "error"


def frame(n: int = ROWS, seed: int = 0) -> pd.DataFrame:
    """A regular table: 1 s time column and the model's four channels, 4 decimals."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = np.c_[np.sin(t / 20), np.cos(t / 20), 0.5 * np.sin(t / 7), np.full(n, 3.0)]
    values = np.round(values + rng.normal(0, 0.05, values.shape), 4)
    out = pd.DataFrame(values, columns=list(CHANNELS))
    out.insert(0, "time", pd.date_range("2026-01-05", periods=n, freq="s").strftime("%Y-%m-%d %H:%M:%S"))
    return out


def csv(table: pd.DataFrame, sep: str = ",", **kwargs) -> bytes:
    return table.to_csv(index=False, sep=sep, lineterminator="\n", **kwargs).encode("utf-8")


def _with(column: str, rows, value, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """A copy of ``table`` (default :func:`frame`) with ``value`` in ``column`` at ``rows``."""
    table = frame() if table is None else table
    table = table.astype({column: object})
    table.loc[rows, column] = value
    return table


#: How ``aeviz score`` falls short today: a short name -> what happens and where.
def _build() -> list[BadInput]:
    base = frame()
    rng = np.random.default_rng(1)
    items = []

    def add(*args, **kwargs):
        items.append(BadInput(*args, **kwargs))

    # ---- not a table at all
    add("empty.csv", "zero bytes", b"", "error", "is empty", "error", "is empty")
    add("blank_lines.csv", "only blank lines and spaces", b"\n  \n\t\n\n", "error", "is empty",
        "error", "is empty")
    add("header_only.csv", "a header and no data rows", b"time,a,b,c,level\n",
        "error", "but no data rows", "error", "but no data rows")
    add("binary.csv", "random bytes, NUL bytes among them", bytes(rng.integers(0, 256, 2048, dtype=np.uint8)),
        "error", "binary content", "error", "binary content")
    add("image.csv", "a PNG image renamed to .csv", b"\x89PNG\r\n\x1a\n" + bytes(200),
        "error", "a PNG image", "error", "a PNG image")
    add("archive.csv", "a gzip-compressed CSV with the wrong extension", gzip.compress(csv(base), mtime=0),
        "error", "a gzip archive", "error", "a gzip archive")
    add("spreadsheet.csv", "an .xlsx (ZIP) workbook renamed to .csv", b"PK\x03\x04" + bytes(100),
        "error", "a ZIP archive", "error", "a ZIP archive")
    add("page.csv", "an HTML error page saved as .csv",
        b"<!DOCTYPE html>\n<html><body><h1>404 Not Found</h1></body></html>\n",
        "error", "an HTML/XML document", "error", "an HTML/XML document")
    add("records.csv", "JSON records saved as .csv", base.head(5).to_json(orient="records").encode(),
        "error", "looks like JSON", "error", "looks like JSON")
    add("broken.parquet", "a Parquet file cut off after its magic bytes", b"PAR1" + bytes(64),
        "error", "could not read the Parquet file", "error", "not a readable Parquet file")

    # ---- structure
    add("one_row.csv", "a single data row", csv(base.head(1)), "error", "only 1 data row",
        "error", f"fewer than one window of {WINDOW} rows")
    lines = csv(base.head(10)).split(b"\n")
    lines[3] += b",9"
    add("ragged.csv", "row 3 has a sixth field", b"\n".join(lines),
        "error", "row 3 (line 4 of the file) has 6 fields, the header has 5", "error", "line 4")
    add("pipe_separated.csv", "fields separated by '|', which is not detected", csv(base, sep="|"),
        "error", "separated by '|'", "error", "separated by '|'")
    add("duplicate_column.csv", "the header names channel 'b' twice",
        csv(base).replace(b"time,a,b,c,level", b"time,a,b,b,level", 1),
        "error", "column name 'b' appears more than once", "error", "'b' appears more than once")
    add("no_header.csv", "no header row: the first row of numbers became the column names",
        csv(base.drop(columns="time"), header=False), "warning", "no header row",
        "error", "time_col='time' is not a column")
    add("mixed_types.csv", "channel 'b' holds text ('n/a?', 'ERR') among its numbers",
        csv(_with("b", 40, "n/a?", _with("b", 77, "ERR"))),
        "error", "column 'b' has text 'n/a?' at row 41", "error", "column 'b' has text 'n/a?' at row 41")
    add("text_channel.csv", "a column of words ('site'), neither time nor a label",
        csv(base.assign(site=["north", "south"] * (ROWS // 2))),
        "error", "column 'site' is text", "error", "column 'site' is text")
    grouped = base.assign(a=[f"{1000 * v + 1000:,.1f}" for v in base["a"]])
    add("thousands_separators.csv", "channel 'a' is written with thousands separators ('1,006.3')",
        csv(grouped), "error", "thousands separators", "error", "thousands separators")

    # ---- time column
    add("duplicate_timestamps.csv", "rows 31-35 repeat the timestamp of row 30",
        csv(_with("time", range(30, 35), base.loc[29, "time"])),
        "warning", "5 duplicate timestamp(s)", "ok", "duplicate timestamp")
    unsorted = base.copy()
    unsorted.iloc[50:60] = unsorted.iloc[50:60].iloc[::-1].to_numpy()
    add("unsorted_timestamps.csv", "rows 51-60 are in reverse time order", csv(unsorted),
        "warning", "not in time order", "ok", "not in time order")
    add("bad_time.csv", "the time column holds 'yesterday' at row 12", csv(_with("time", 11, "yesterday")),
        "error", "time column 'time' has 'yesterday' at row 12", "error", "'yesterday' at row 12")
    add("missing_time.csv", "the time column is empty at row 8", csv(_with("time", 7, None)),
        "error", "time column 'time' has no value at row 8", "error", "no value at row 8")

    # ---- values
    add("nan_long_run.csv", "channel 'a' misses 40 values in a row (rows 31-70)",
        csv(_with("a", range(30, 70), np.nan)),
        "warning", "gap of 40 row(s) at rows 31-70", "ok", "gap of 40 row(s) at rows 31-70")
    add("inf_long_run.csv", "channel 'c' is 'inf' for 25 rows (an overflowed sensor)",
        csv(_with("c", range(40, 65), "inf")),
        "warning", "gap of 25 row(s) at rows 41-65", "ok", "gap of 25 row(s) at rows 41-65")
    add("nan_short_gaps.csv", "channels 'a' and 'b' miss a few values (runs of 1 to 3 rows)",
        csv(_with("b", range(60, 63), np.nan, _with("a", [10, 50, 51], np.nan))),
        "warning", "interpolated 3 missing value(s) in 'a'", "ok", "interpolated 3 missing value(s) in 'b'")
    add("inf_short.csv", "channel 'c' has two '-inf' cells", csv(_with("c", [20, 70], "-inf")),
        "warning", "2 of them infinite", "ok", "infinite")
    add("all_nan_channel.csv", "channel 'c' has no value at all", csv(_with("c", slice(None), np.nan)),
        "error", "column 'c' has no finite value", "error", "column 'c' has no finite value")
    add("constant_channel.csv", "channel 'a' is stuck at 0.25 (a constant column)", csv(base.assign(a=0.25)),
        "warning", "channel 'a' is constant", "ok", "channel 'a' is constant")
    add("huge_numbers.csv", "channel 'b' holds 1e300 at row 5, beyond float32", csv(_with("b", 4, 1e300)),
        "error", "beyond the float32 range", "error", "beyond the float32 range")
    add("huge_but_finite.csv", "channel 'c' jumps to 1e30 (within float32) for rows 41-43",
        csv(_with("c", [40, 41, 42], 1e30)), "ok", "", "ok")

    # ---- encodings
    latin = base.assign(fault_type=["", "d\u00e9faut"] * (ROWS // 2))
    add("latin1.csv", "latin-1 text: the label 'd\u00e9faut' is not UTF-8",
        latin.to_csv(index=False, lineterminator="\n").encode("latin-1"),
        "warning", "not valid UTF-8", "ok", "not valid UTF-8")
    windows = base.assign(fault_type=["", "\u201cleak\u201d 5 \u20ac/h"] * (ROWS // 2))
    add("windows1252.csv", "a Windows-1252 export with curly quotes and euro signs in a label",
        windows.to_csv(index=False, lineterminator="\n").encode("cp1252"),
        "warning", "read as Windows-1252", "ok", "read as Windows-1252")
    add("utf16.csv", "UTF-16 with a byte-order mark (Excel's 'Unicode text')", csv(base).decode().encode("utf-16"),
        "ok", "", "ok")
    add("utf32.csv", "UTF-32 with a byte-order mark", csv(base).decode().encode("utf-32"),
        "ok", "", "ok")
    add("utf16_no_bom.csv", "UTF-16 without a byte-order mark", csv(base).decode().encode("utf-16-le"),
        "error", "UTF-16 text without a byte-order mark", "error", "UTF-16")
    add("ebcdic.csv", "an EBCDIC (cp500) mainframe export", csv(base).decode().encode("cp500"),
        "error", "an unknown encoding", "error", "an unknown encoding")

    # ---- labels
    strange = base.assign(anomaly=(["0", "1", "yes", "", "maybe", "-1", "2", "NaN"] * ROWS)[:ROWS])
    add("strange_labels.csv", "label column 'anomaly' mixes 0/1 with 'yes', 'maybe', -1, 2 and blanks",
        csv(strange), "warning", "label column 'anomaly' mixes numbers with words",
        "ok", "label column 'anomaly' mixes numbers with words")
    add("odd_binary_labels.csv", "label column 'anomaly' holds -1 and 2 besides 0 and 1",
        csv(base.assign(anomaly=([0, 0, 1, -1, 2, 0] * ROWS)[:ROWS])),
        "warning", "should hold 0 (normal) or 1 (anomalous)", "ok", "should hold 0 (normal) or 1")
    add("only_labels.csv", "only a time and a label column: no channel", csv(base[["time"]].assign(anomaly=0)),
        "error", "no numeric channel", "error", "no numeric channel")

    # ---- shape, and channels other than the model's
    add("too_short.csv", f"10 rows: fewer than one window of {WINDOW} rows", csv(base.head(10)), "ok", "",
        "error", f"the data has 10 rows, fewer than one window of {WINDOW} rows")
    wide = pd.DataFrame(np.zeros((3, 2001), dtype=np.int8), columns=[f"c{i}" for i in range(2001)])
    wide.insert(0, "time", base["time"].head(3))
    add("very_wide.csv", "2001 channels, more than max_channels=2000", csv(wide),
        "error", "2001 channels, more than max_channels=2000", "error", "more than max_channels=2000")
    add("other_channels.csv", "channel 'c' is called 'pressure'", csv(base.rename(columns={"c": "pressure"})),
        "ok", "", "error", "missing ['c'], unexpected ['pressure']")
    add("missing_channel.csv", "channel 'level' is missing", csv(base.drop(columns="level")), "ok", "",
        "error", "missing ['level']")
    add("reordered_channels.csv", "the model's channels in another order", csv(base[["time", "level", "c", "b", "a"]]),
        "ok", "", "error", "another order than the model's")
    return items


CORPUS: list[BadInput] = _build()


def readme() -> str:
    lines = [
        "# Malformed inputs",
        "",
        "Written by `scripts/make_bad_inputs.py` (do not edit by hand); tested by",
        "`tests/test_bad_inputs.py` through the loader, `aeviz score` (a model on",
        f"channels {', '.join(CHANNELS)} with a window of {WINDOW} rows) and the app's upload.",
        "One line per file: what is wrong; the loader's outcome (`error`: DataError, `warning`:",
        "loads and `report.warnings` says so, `ok`: loads cleanly) with its message fragment;",
        "then the outcome of `aeviz score` (`error`: exit 2 and one line `aeviz: error: ...`;",
        "`ok`: exit 0, finite scores, printing `aeviz: warning: ...` where a fragment is given).",
        "",
    ]
    for item in CORPUS:
        load = f"load {item.load}" + (f" \"{item.load_msg}\"" if item.load_msg else "")
        cli = f"score {item.cli}" + (f" \"{item.cli_msg}\"" if item.cli_msg else "")
        lines.append(f"- `{item.name}`: {item.what}. {load}; {cli}.")
    return "\n".join(lines) + "\n"


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for item in CORPUS:
        path = folder / item.name
        path.write_bytes(item.content)
        paths.append(path)
    (folder / "README.md").write_text(readme(), encoding="utf-8")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", nargs="?", type=Path, default=OUTPUT,
                        help="folder to write into (default: tests/data/bad/)")
    args = parser.parse_args(argv)
    paths = write(args.output_dir)
    size = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} files and README.md to {args.output_dir} ({size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
