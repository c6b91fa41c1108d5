"""How far row scores can separate the pump sample's drifts (issue: the engine's quality floor).

A drift in :mod:`aeviz_core.synthetic` is a linear ramp from 0 to 3-5 local
sigma over 3-8 minutes, and every row of the ramp is labelled. Its first rows
differ from normal by a fraction of a sigma, so no row score separates them.
This script measures that limit and what the ROC-AUC floor asks of drifts:

1. **Ceiling.** Monte Carlo of an idealised detector whose row score is
   ``|offset + noise|`` (normal rows: ``|noise|``), ``noise`` Gaussian with a
   standard deviation of 1, 0.75 or 0.5 local sigma: the residual of a model
   that explains none, a quarter or half of a channel's local variability.
   Ramps drawn as the generator draws them.
2. **What the floor needs.** The ROC-AUC over all rows is the average of each
   fault kind's AUC against the normal rows, weighted by the kind's share of
   the fault rows. With ``--scores`` (an ``aeviz score`` CSV of the sample),
   the kinds' AUCs are measured and the drift AUC the 0.95 floor needs, with
   the other kinds as they are, is printed.

Run: ``python bench/drift_ceiling.py [--scores scores.csv]``
(writes bench/results/drift_ceiling.json).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from bench.common import write_results  # noqa: E402

SAMPLE = "sample_data/pump_station.csv"
FLOOR = 0.95


def ceiling(noise: float, n_ramps: int = 2000, n_normal: int = 200_000, seed: int = 0) -> float:
    """ROC-AUC of ``|offset + noise|`` on ramp rows against ``|noise|`` on normal rows."""
    from aeviz_core.synthetic import _DURATION_S

    rng = np.random.default_rng(seed)
    shortest, longest = _DURATION_S["drift"]
    ramps = []
    for _ in range(n_ramps):
        length = int(rng.integers(shortest, longest + 1))
        reach = rng.uniform(3, 5)  # sigma, as the generator draws it
        ramps.append(np.abs(np.linspace(reach / length, reach, length) + noise * rng.standard_normal(length)))
    positives = np.concatenate(ramps)
    negatives = np.abs(noise * rng.standard_normal(n_normal))
    truth = np.r_[np.zeros(n_normal), np.ones(positives.size)]
    return float(roc_auc_score(truth, np.r_[negatives, positives]))


def kinds_of_the_sample(scores_csv: str | None) -> dict:
    """Each fault kind's share of the fault rows, and its AUC when scores are given."""
    import pandas as pd

    frame = pd.read_csv(SAMPLE, usecols=["anomaly", "fault_type"])
    kind = frame["fault_type"].fillna("").astype(str).to_numpy()
    anomaly = frame["anomaly"].to_numpy() == 1
    shares = pd.Series(kind[anomaly]).value_counts(normalize=True).round(4).to_dict()
    out = {"share_of_fault_rows": shares}
    if scores_csv:
        score = pd.read_csv(scores_csv)["score"].to_numpy()
        aucs = {k: round(float(roc_auc_score(anomaly[~anomaly | (kind == k)], score[~anomaly | (kind == k)])), 4)
                for k in shares}
        others = sum(shares[k] * aucs[k] for k in shares if k != "drift")
        out.update({
            "auc_by_kind": aucs,
            "roc_auc": round(float(roc_auc_score(anomaly, score)), 4),
            "drift_auc_needed_for_floor": round((FLOOR - others) / shares["drift"], 4),
        })
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", help="an `aeviz score` CSV of sample_data/pump_station.csv")
    args = parser.parse_args(argv)
    table = {str(noise): round(ceiling(noise), 4) for noise in (1.0, 0.75, 0.5)}
    for noise, auc in table.items():
        print(f"residual noise {noise} local sigma: drift-row ROC-AUC at most {auc}")
    sample = kinds_of_the_sample(args.scores)
    print(sample)
    write_results("drift_ceiling", {"ceiling_by_residual_noise_sigma": table, "pump_sample": sample})


if __name__ == "__main__":
    main()
