"""aeviz's default estimator on tabular anomaly sets and on the digits, against IsolationForest and
PCA reconstruction, in one run.

Protocol (ADBench's unsupervised setting, as the shared sets' README gives it): for each set
(arrays ``X``, ``y`` with 1 = anomaly), a stratified 70/30 split per seed (0, 1, 2); each
detector fits the train part with its anomalies in it and labels hidden and scores the test
part; ROC-AUC x 100, mean over seeds, then over sets. Two tables:

- **dev**: the ``.npz`` sets of the folders (default: the 22 ADBench development sets);
- **digits**: scikit-learn's ``load_digits`` (8x8 images as 64 columns), one digit the rare
  anomaly class at 3% of the items (the others all normal: ADBench's optdigits holds 150 zeros
  among 5,216 items, 2.9%), each digit in turn: 10 sets (:func:`digits_rare`).

The detectors:

- ``AutoencoderDetector()`` with its defaults (what a user gets without choosing anything: on
  unlabelled items a trimmed loss and the IsolationForest part, ``trim="auto"``,
  ``isolation="auto"``);
- ``AutoencoderDetector(trim=0, isolation=False)``: the default before those two settings;
- ``AutoencoderDetector(latent_dim=2)``: the 2-D view model the app draws (neighbour term on);
- IsolationForest (scikit-learn defaults) and PCA reconstruction (90% of the variance of the
  standardised train part), the references of the sets' README.

Each table also gives, per detector, the mean, the worst difference to IsolationForest and the
number of sets more than 15 points below it. Prints the tables and writes
``bench/results/tabular.json``.

Run: python bench/tabular.py [FOLDER ...] [--seeds 0 1 2] [--tables dev digits] [--detectors NAME ...]
(default folder: ../shared/data/adbench-dev)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import timed, write_results  # noqa: E402

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "adbench-dev"
REFERENCE = "IsolationForest"
#: a set this far below the reference counts as a miss
FAR_BELOW = 15.0
DIGIT_ANOMALY_SHARE = 0.03


def iforest(train, test, seed):
    from sklearn.ensemble import IsolationForest

    return -IsolationForest(random_state=seed).fit(train).score_samples(test)


def pca(train, test, seed):
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train)
    a, b = scaler.transform(train), scaler.transform(test)
    model = PCA(0.9, random_state=seed).fit(a)
    return ((b - model.inverse_transform(model.transform(b))) ** 2).sum(1)


def aeviz_defaults(train, test, seed):
    from aeviz_core import AutoencoderDetector

    return AutoencoderDetector(random_state=seed).fit(train).anomaly_score(test)


def aeviz_before(train, test, seed):
    from aeviz_core import AutoencoderDetector

    return AutoencoderDetector(trim=0.0, isolation=False, random_state=seed).fit(train).anomaly_score(test)


def aeviz_view(train, test, seed):
    from aeviz_core import AutoencoderDetector

    return AutoencoderDetector(latent_dim=2, random_state=seed).fit(train).anomaly_score(test)


DETECTORS = {"aeviz AutoencoderDetector()": aeviz_defaults,
             "aeviz trim=0, isolation=False (the default before)": aeviz_before,
             "aeviz latent_dim=2 (view model)": aeviz_view,
             REFERENCE: iforest, "PCA reconstruction (90% variance)": pca}


def npz_sets(folders) -> dict:
    """``{name: (X, y)}`` of the ``.npz`` sets (arrays ``X``, ``y``) in ``folders``."""
    sets = {}
    for path in sorted(p for folder in folders for p in Path(folder).glob("*.npz")):
        data = np.load(path, allow_pickle=True)
        sets[path.stem] = (data["X"].astype("float32"), data["y"].astype(int))
    return sets


def digits_rare(digit: int, share: float = DIGIT_ANOMALY_SHARE):
    """``(X, y)`` of ``load_digits`` with ``digit`` the rare anomaly class: every other digit
    (normal) and a seeded draw of ``digit``'s images making ``share`` of the items."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(1000 + digit)
    normal = np.flatnonzero(y != digit)
    n_anomalous = int(round(share * len(normal) / (1 - share)))
    anomalous = rng.choice(np.flatnonzero(y == digit), n_anomalous, replace=False)
    rows = np.concatenate([normal, anomalous])
    return X[rows].astype("float32"), (y[rows] == digit).astype(int)


def digit_sets() -> dict:
    return {f"digit{d}": digits_rare(d) for d in range(10)}


def run_sets(sets: dict, seeds=(0, 1, 2), detectors=tuple(DETECTORS), seconds=None) -> dict:
    """``{detector: {set: ROC-AUC x 100}}`` over ``sets`` (``{name: (X, y)}``, the protocol above);
    ``seconds`` (a dict), when given, collects each detector's time."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    table = {name: {} for name in detectors}
    for name, (X, y) in sets.items():
        for detector in detectors:
            aucs = []
            for seed in seeds:
                train, test, _, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
                with timed() as t:
                    aucs.append(roc_auc_score(y_test, DETECTORS[detector](train, test, seed)))
                if seconds is not None:
                    seconds[detector] = seconds.get(detector, 0.0) + t()
            table[detector][name] = round(100 * float(np.mean(aucs)), 1)
        print(f"{name:16s} " + "  ".join(f"{table[d][name]:5.1f}" for d in detectors), flush=True)
    return table


def run(folders, seeds=(0, 1, 2), detectors=tuple(DETECTORS), seconds=None) -> dict:
    """:func:`run_sets` over the ``.npz`` sets of ``folders``."""
    return run_sets(npz_sets(folders), seeds, detectors, seconds)


def summary(table: dict, reference: str = REFERENCE) -> dict:
    """Per detector: the mean over sets, and against ``reference`` (when the table has it) the
    worst difference, its set and the number of sets more than :data:`FAR_BELOW` points below."""
    out = {}
    for detector, row in table.items():
        out[detector] = {"mean": round(float(np.mean(list(row.values()))), 1)}
        if reference in table:
            gaps = {s: row[s] - table[reference][s] for s in row}
            worst = min(gaps, key=gaps.get)
            out[detector].update({"worst_vs_reference": round(gaps[worst], 1), "worst_set": worst,
                                  "sets_far_below": sum(g < -FAR_BELOW for g in gaps.values())})
    return out


def print_table(title: str, table: dict, seconds: dict) -> dict:
    sets = list(next(iter(table.values())))
    stats = summary(table)
    print(f"\n{title}\n| detector | mean | worst vs IF | sets >{FAR_BELOW:g} below IF | "
          f"{' | '.join(sets)} | seconds |")
    print("|---|---|---|---|" + "---|" * len(sets) + "---|")
    for detector, row in table.items():
        s = stats[detector]
        print(f"| {detector} | {s['mean']:.1f} | {s.get('worst_vs_reference', 0):+.1f} | "
              f"{s.get('sets_far_below', 0)} | " + " | ".join(f"{row[k]:.1f}" for k in sets)
              + f" | {seconds.get(detector, 0):.0f} |")
    return stats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", default=[str(DEV)])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tables", nargs="+", choices=("dev", "digits"), default=["dev", "digits"])
    parser.add_argument("--detectors", nargs="+", choices=tuple(DETECTORS), default=list(DETECTORS))
    args = parser.parse_args(argv)
    detectors = list(dict.fromkeys([*args.detectors, REFERENCE]))  # the reference is always measured
    results = {"protocol": "ADBench unsupervised: stratified 70/30, fit on the contaminated train part, "
                           "ROC-AUC x 100 on the test part, mean over seeds",
               "seeds": args.seeds, "folders": args.folders, "far_below": FAR_BELOW, "reference": REFERENCE}
    for which in args.tables:
        sets = npz_sets(args.folders) if which == "dev" else digit_sets()
        if not sets:
            print(f"skipped dev: no .npz sets in {args.folders} (the shared sets live in ../shared/data/adbench-dev)")
            continue
        seconds = {}
        table = run_sets(sets, args.seeds, detectors, seconds)
        title = ("ADBench development sets" if which == "dev"
                 else f"digits, each digit the rare class ({DIGIT_ANOMALY_SHARE:.0%} of the items)")
        stats = print_table(title, table, seconds)
        results[which] = {"title": title, "summary": stats, "roc_auc": table,
                          "seconds": {k: round(v, 1) for k, v in seconds.items()}}
    write_results("tabular", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
