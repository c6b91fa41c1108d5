"""Write the shipped sample data sets from the library functions.

Usage::

    python scripts/make_sample_data.py [OUTPUT_DIR]

writes ``pump_station.csv`` (:func:`aeviz_core.make_pump_station` with its
defaults: 12 h at 1 Hz, seed 0) and ``digits_uci_1797.csv``
(:func:`aeviz_core.write_digits_csv`) into OUTPUT_DIR, by default the
repository's ``sample_data/``. The output is deterministic: running it twice
gives byte-identical files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aeviz_core import make_pump_station, write_digits_csv
from aeviz_core.synthetic import fault_events

PUMP_STATION_CSV = "pump_station.csv"
DIGITS_CSV = "digits_uci_1797.csv"


def write_pump_station_csv(path: Path) -> Path:
    """Write the default pump-station recording to ``path``."""
    frame = make_pump_station()
    frame.to_csv(path, index=False, lineterminator="\n", date_format="%Y-%m-%d %H:%M:%S")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "output_dir", nargs="?", type=Path, default=REPO / "sample_data",
        help="folder to write into (default: sample_data/)",
    )
    args = parser.parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)

    pump = write_pump_station_csv(args.output_dir / PUMP_STATION_CSV)
    digits = write_digits_csv(args.output_dir / DIGITS_CSV)
    for path in (pump, digits):
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    counts = fault_events(make_pump_station())["fault_type"].value_counts().sort_index()
    print("faults:", ", ".join(f"{kind} {count}" for kind, count in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
