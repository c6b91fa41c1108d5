"""Shared helpers of the benchmarks: timing, machine facts, writing results."""

from __future__ import annotations

import json
import os
import platform
import time
from contextlib import contextmanager
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


@contextmanager
def timed():
    """``with timed() as t: ...`` then ``t()`` is the elapsed seconds."""
    start = time.perf_counter()
    end = None

    def elapsed():
        return (end if end is not None else time.perf_counter()) - start

    try:
        yield elapsed
    finally:
        end = time.perf_counter()


def machine() -> dict:
    import keras

    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
    }


def write_results(name: str, payload: dict, *, show: bool = False) -> Path:
    """Write ``bench/results/NAME.json`` (with when and where it was measured); ``show`` prints the
    figures first."""
    if show:
        print(payload)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=2, default=float))
    print(f"wrote {path}")
    return path


def digits_quality(X, Z, y) -> dict:
    from aeviz_core import knn_accuracy, trustworthiness_score

    return {"knn5": round(knn_accuracy(Z, y, k=5, cv=5), 4),
            "trustworthiness": round(trustworthiness_score(X, Z, k=10), 4)}
