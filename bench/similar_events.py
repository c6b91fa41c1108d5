"""Similar events on the pump sample: do an event's nearest events share its fault type?

The issue's floor: among each fault event's 3 nearest events (by
:func:`aeviz_core.explain.event_signatures`), at least 80% share its fault type. Measured
two ways, with a model trained by ``aeviz train`` with its defaults: on the labelled fault
spans themselves (each of the 35 faults against the other 34), and on the events the model
detects at its own threshold and event gap (what an operator's queue holds; an event's type
is the labelled fault it overlaps most, "none" for a false event). Prints and writes
``bench/results/similar_events.json`` (shares overall and per fault type, and the seconds the
signatures took).

Run: python bench/similar_events.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import timed, write_results  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "pump_station.csv"


def type_share(signatures, kinds, k=3) -> dict:
    """Share of the k nearest events with the event's own type, over the fault events (overall
    and per type)."""
    from aeviz_core.explain import type_agreement

    shares = type_agreement(signatures, kinds, k)
    overall = shares.pop("all")
    return {"share": round(overall, 3), "n_events": sum(str(kind) != "none" for kind in kinds),
            "per_type": {kind: round(v, 2) for kind, v in shares.items()}}


def main() -> int:
    from aeviz_core import flags_to_events, load_detector, load_sensor_table
    from aeviz_core.cli import main as aeviz
    from aeviz_core.explain import event_signatures
    from aeviz_core.synthetic import fault_events, fault_types_of

    data = load_sensor_table(SAMPLE)
    faults = fault_events(data.labels)
    with tempfile.TemporaryDirectory() as tmp:
        assert aeviz(["train", str(SAMPLE), "--out", f"{tmp}/m"]) == 0
        det = load_detector(f"{tmp}/m")
    labelled_spans = list(zip(faults["start"], faults["stop"] - 1, strict=True))
    with timed() as t:
        labelled = event_signatures(det, data.channels, labelled_spans)
    seconds = t()
    scores = det.anomaly_score(data.channels)
    events = flags_to_events(np.nan_to_num(scores, nan=-np.inf) > det.threshold_, scores,
                             min_gap=det.event_gap_rows())
    detected = event_signatures(det, data.channels, zip(events["start"], events["end"], strict=True))
    kinds = fault_types_of(zip(events["start"], events["end"], strict=True), faults)
    result = {"k": 3, "labelled_faults": type_share(labelled, faults["fault_type"]),
              "detected_events": type_share(detected, kinds),
              "n_detected_events": len(events), "signature_seconds_35_events": round(seconds, 1)}
    print(f"labelled fault spans: {result['labelled_faults']}")
    print(f"detected events ({len(events)}): {result['detected_events']}")
    write_results("similar_events", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
