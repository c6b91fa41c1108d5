"""aeviz's CLI defaults on real labelled series, against flag-everything, IsolationForest and
windowed PCA, in one run.

Protocol (the shared GECCO 2018 one, any labelled file alike): fit on the first ``--fit-rows``
rows (labels hidden), score every row, evaluate from ``--fit-rows`` on. Each detector flags at its
own default threshold (aeviz: the model's; the baselines: the 99.5th percentile of their fitted
rows' scores). Rows without a score (aeviz: the rows of a gap) count as not flagged.
Prints and writes ``bench/results/real_data.json`` (another file: ``real_data_<its name>.json``): ROC-AUC, average precision, point-wise
F1 / false-alarm rate / missed-alarm rate, labelled events detected, event precision and F1,
false events per day of normal operation and the median detection delay in rows (event-wise,
no point adjustment; flagged runs at most aeviz's event gap apart are one event, for every
detector), and the oracle F1 at 1% false alarms (the threshold chosen with the labels: what each
ranking allows, apart from its default threshold).

Run: python bench/real_data.py [CSV] [--label-col EVENT] [--fit-rows 15000] [--drop COL ...]
(the pump sample: sample_data/pump_station.csv --label-col anomaly --fit-rows 21600 --drop fault_type fault_channel)

**The development table** (``python bench/real_data.py --all [--shared ../shared/data]``): one
table over every development set, each on its own protocol, with the CLI's defaults (one policy,
no switch by data set), written to ``bench/results/real_data_all.json``:

- GECCO 2018: fit on rows 0-14,999 (labels hidden), evaluate from row 15,000 (AP, F1, false
  alarms); also with ``--adapt-after 1d`` (the setting that lets a change become the new normal);
- SKAB valve1 (16 files): ``aeviz train FILE --train-rows 400 --drop anomaly changepoint``, score the
  file, pool the flags of rows 400 onward (F1 = TP / (TP + (FN + FP) / 2), FAR, MAR), and each
  file's row ROC-AUC (ranking, apart from the threshold);
- the pump station generator, 24 hours (seeds 0-2), trained on its first 6 hours: the share of
  later normal rows flagged and of fault events detected;
- the 22 tabular sets (ADBench's protocol, :mod:`bench.tabular`), with IsolationForest and PCA
  in the same run.

``--seeds 0 1 2 3 4`` adds GECCO's and SKAB's default rows for other training seeds (``aeviz train
--seed``), so the spread that a seed alone makes reads beside the figures; ``--parts gecco skab``
reruns only those rows.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import timed, write_results  # noqa: E402

GECCO = Path(__file__).resolve().parents[2] / "shared" / "data" / "gecco2018" / "1_gecco2018_water_quality.csv"


def evaluate(truth, score, threshold, time, min_gap=0):
    """Row and event figures of one detector at its own threshold; rows without a score are
    not flagged."""
    from aeviz_core import detection_metrics, event_metrics, flags_to_events

    score = np.where(np.isnan(score), -np.inf, score)
    rows = detection_metrics(np.maximum(score, np.min(score[np.isfinite(score)]) - 1), truth, threshold)
    events = event_metrics(flags_to_events(score > threshold, None, min_gap=min_gap), truth, time=time)
    return {"roc_auc": round(rows["roc_auc"], 3), "average_precision": round(rows["pr_auc"], 3),
            "f1": round(rows["f1"], 3), "false_alarm_rate": round(rows["false_alarm_rate"], 4),
            "missed_alarm_rate": round(rows["missed_alarm_rate"], 4),
            "events_detected": f"{events['n_detected']}/{events['n_true_events']}",
            "event_precision": round(events["event_precision"], 3), "event_f1": round(events["event_f1"], 3),
            "false_events_per_day": round(events["false_events_per_normal_day"], 2),
            "median_delay_rows": events["median_delay_rows"],
            "flagged": round(float(np.mean(score > threshold)), 4),
            "oracle_f1_at_1pct": round(oracle_f1(truth, score), 3)}


def oracle_f1(truth, score, far=0.01):
    """F1 at the lowest threshold whose false-alarm rate on these rows is at most ``far``: what
    the ranking allows when the threshold is chosen with the labels. It separates the ranking
    from the calibration (a default threshold that sits too low or too high)."""
    normal = np.sort(score[~truth])[::-1]
    threshold = normal[int(np.floor(far * len(normal)))]
    flag = score > threshold
    tp, fp, fn = np.sum(flag & truth), np.sum(flag & ~truth), np.sum(~flag & truth)
    return 2 * tp / max(2 * tp + fp + fn, 1)


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
#: published figures on SKAB valve1 (the shared README's table): F1, FAR, MAR
SKAB_REFERENCES = {"Conv-AE (the leaderboard's best; published predictions)": (0.755, 0.1440, 0.3184),
                   "MSET (published predictions)": (0.779, 0.3853, 0.1498),
                   "PCA T2 + Q (published predictions)": (0.760, 0.2389, 0.2609)}


def _cli_scores(path, fit_rows: int, drop=(), label_col=None, extra=()):
    """``aeviz train`` on the first ``fit_rows`` rows (labels hidden) and ``aeviz score`` of the
    whole file: ``(scores, flags, model)``."""
    from aeviz_core import load_detector
    from aeviz_core.cli import main as aeviz

    with tempfile.TemporaryDirectory() as tmp:
        args = ["--drop", *drop] if drop else []
        args += ["--label-col", label_col] if label_col else []
        assert aeviz(["train", str(path), "--out", f"{tmp}/m", "--train-rows", str(fit_rows), *args, *extra]) == 0
        assert aeviz(["score", str(path), "--model", f"{tmp}/m", "--out", f"{tmp}/s.csv"]) == 0
        frame = pd.read_csv(f"{tmp}/s.csv")
        return frame["score"].to_numpy(), frame["flag"].to_numpy().astype(bool), load_detector(f"{tmp}/m")


def _seeded(name: str, seed: int) -> tuple[str, tuple]:
    """A row's name and ``aeviz train`` options for a training seed (0, the CLI's default, adds
    neither: the table's rows keep their names)."""
    return (name, ()) if seed == 0 else (f"{name}, seed {seed}", ("--seed", str(seed)))


def gecco_rows(shared: Path, seeds=(0,)) -> dict:
    from sklearn.metrics import average_precision_score

    from aeviz_core import load_sensor_table

    path = shared / "gecco2018" / "1_gecco2018_water_quality.csv"
    if not path.is_file():
        return {}
    truth = load_sensor_table(path, label_cols=["EVENT"]).labels["EVENT"].astype(bool).to_numpy()[15_000:]
    out = {}
    runs = [_seeded("defaults", seed) for seed in seeds]
    if 0 in seeds:
        runs.insert(1, ("--adapt-after 1d", ("--adapt-after", "1d")))
    for name, extra in runs:
        with timed() as t:
            scores, flags, _ = _cli_scores(path, 15_000, label_col="EVENT", extra=extra)
        scores, flags = scores[15_000:], flags[15_000:]
        scored = ~np.isnan(scores)
        out[f"GECCO, {name}"] = {
            "average_precision": round(float(average_precision_score(truth[scored], scores[scored])), 3),
            "f1": round(float(2 * np.sum(flags & truth) / (flags.sum() + truth.sum())), 3),
            "false_alarm_rate": round(float(np.mean(flags[~truth])), 4), "seconds": round(t(), 1)}
    return out


def _skab_pooled(files, extra=()) -> dict:
    """SKAB's protocol over ``files``: pooled F1 / FAR / MAR and each file's row ROC-AUC."""
    from sklearn.metrics import roc_auc_score

    tp = fp = fn = tn = 0
    aucs = {}
    with timed() as t:
        for path in files:
            truth = pd.read_csv(path, sep=";")["anomaly"].to_numpy().astype(bool)[400:]
            scores, flags, _ = _cli_scores(path, 400, drop=("anomaly", "changepoint"), extra=extra)
            scores, flags = scores[400:], flags[400:]
            tp += np.sum(flags & truth)
            fp += np.sum(flags & ~truth)
            fn += np.sum(~flags & truth)
            tn += np.sum(~flags & ~truth)
            aucs[path.stem] = round(float(roc_auc_score(truth, np.nan_to_num(scores, nan=-np.inf))), 3)
    return {"f1": round(float(tp / (tp + (fn + fp) / 2)), 3), "false_alarm_rate": round(float(fp / (fp + tn)), 4),
            "missed_alarm_rate": round(float(fn / (fn + tp)), 4),
            "median_file_roc_auc": round(float(np.median(list(aucs.values()))), 3),
            "files_roc_auc_ge_0.9": int(sum(v >= 0.9 for v in aucs.values())), "file_roc_auc": aucs,
            "seconds": round(t(), 1)}


def skab_rows(shared: Path, seeds=(0,)) -> dict:
    folder = shared / "skab-dev" / "valve1"
    files = sorted(folder.glob("*.csv"), key=lambda p: int(p.stem)) if folder.is_dir() else []
    if not files:
        return {}
    out = {}
    for seed in seeds:
        name, extra = _seeded("SKAB valve1, defaults", seed)
        out[name] = _skab_pooled(files, extra)
    for name, (f1, far, mar) in SKAB_REFERENCES.items():
        out[f"SKAB valve1, {name}"] = {"f1": f1, "false_alarm_rate": far, "missed_alarm_rate": mar}
    return out


def pump_rows(seeds=(0, 1, 2)) -> dict:
    """The pump station generator, 24 hours, trained on its first 6 (the CLI's defaults)."""
    from aeviz_core import make_pump_station
    from aeviz_core.events import event_spans

    fars, found = [], []
    with timed() as t, tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            frame = make_pump_station(n_rows=86_400, seed=seed)
            path = Path(tmp) / f"pump{seed}.csv"
            frame.to_csv(path, index=False)
            _, flags, _ = _cli_scores(path, 21_600, label_col="anomaly", drop=("fault_type", "fault_channel"))
            truth = frame["anomaly"].to_numpy().astype(bool)
            fars.append(float(np.mean(flags[21_600:][~truth[21_600:]])))
            spans = event_spans(truth)
            found.append(float(np.mean([flags[a : b + 1].any() for a, b in spans])))
    return {"pump station, 24 h trained on the first 6, defaults": {
        "later_normal_rows_flagged": [round(v, 4) for v in fars], "events_detected": [round(v, 3) for v in found],
        "seeds": list(seeds), "seconds": round(t(), 1)}}


def tabular_rows(shared: Path) -> dict:
    from bench import tabular

    folder = shared / "adbench-dev"
    if not any(folder.glob("*.npz")):
        return {}
    table = tabular.run([folder], seeds=(0, 1, 2), detectors=("aeviz AutoencoderDetector()", "IsolationForest",
                                                               "PCA reconstruction (90% variance)"))
    return {f"ADBench 22 sets, {name}": {"mean_roc_auc": round(float(np.mean(list(row.values()))), 1), "roc_auc": row}
            for name, row in table.items()}


PARTS = ("gecco", "skab", "pump", "tabular")


def development_table(shared: Path, parts=PARTS, seeds=(0,)) -> int:
    """The table over every development set (``parts``: a subset reruns those rows and keeps the
    others of the last run's ``real_data_all.json``, each row with its own ``measured_at``;
    ``seeds``: GECCO's and SKAB's default rows for each training seed, 0 the table's own)."""
    import json
    from datetime import UTC, datetime

    runs = {"gecco": lambda: gecco_rows(shared, seeds), "skab": lambda: skab_rows(shared, seeds), "pump": pump_rows,
            "tabular": lambda: tabular_rows(shared)}
    table = {}
    previous = Path(__file__).resolve().parent / "results" / "real_data_all.json"
    if set(parts) != set(PARTS) and previous.is_file():
        table = json.loads(previous.read_text()).get("table", {})
    for name in parts:
        rows = runs[name]()
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows = {key: {**row, "measured_at": now} for key, row in rows.items()}
        table.update(rows)
        for key, row in rows.items():
            print(f"{key}: " + ", ".join(f"{k} {v}" for k, v in row.items() if not isinstance(v, dict)), flush=True)
    if not table:
        print(f"skipped: no development data at {shared}")
        return 0
    write_results("real_data_all", {"shared": str(shared), "table": table})
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=str(GECCO))
    parser.add_argument("--label-col", default="EVENT")
    parser.add_argument("--fit-rows", type=int, default=15_000)
    parser.add_argument("--drop", nargs="+", default=[], metavar="COL", help="columns aeviz train ignores")
    parser.add_argument("--all", action="store_true", help="the development table over every set in --shared")
    parser.add_argument("--shared", default=str(SHARED), help="folder of the shared development data")
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS,
                        help="with --all: the rows to measure (the others are kept from the last run)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0],
                        help="with --all: GECCO's and SKAB's default rows for each of these training seeds")
    args = parser.parse_args(argv)
    if args.all:
        return development_table(Path(args.shared), args.parts, tuple(args.seeds))
    drop = ["--drop", *args.drop] if args.drop else []
    if not Path(args.data).is_file():
        print(f"skipped: {args.data} is absent (the shared GECCO series lives in ../shared/data)")
        return 0
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest
    from sklearn.preprocessing import StandardScaler

    from aeviz_core import load_detector, load_sensor_table
    from aeviz_core.cli import main as aeviz

    data = load_sensor_table(args.data)  # its label columns as detected, like `aeviz train`
    if args.label_col not in data.labels.columns:
        data = load_sensor_table(args.data, label_cols=[args.label_col])
    truth_all = ~pd.Series(data.labels[args.label_col]).astype(str).str.lower().isin(["false", "0", ""]).to_numpy()
    fit = args.fit_rows
    truth = truth_all[fit:]
    time = None if data.time is None else data.time.iloc[fit:]
    table, seconds = {}, {}
    with tempfile.TemporaryDirectory() as tmp, timed() as t:
        assert aeviz(["train", args.data, "--out", f"{tmp}/m", "--train-rows", str(fit),
                      "--label-col", args.label_col, *drop]) == 0
        assert aeviz(["score", args.data, "--model", f"{tmp}/m", "--out", f"{tmp}/s.csv"]) == 0
        scores = pd.read_csv(f"{tmp}/s.csv")
        model = load_detector(f"{tmp}/m")
        threshold, gap = model.threshold_, model.event_gap_rows()
    seconds["aeviz"] = round(t(), 1)
    # events: flagged runs at most the model's event gap apart are one, for every detector alike
    table[f"aeviz (CLI defaults: --score {model.series_score})"] = evaluate(truth, scores["score"].to_numpy()[fit:], threshold, time, gap)
    # the other series score than the one the defaults chose from the rows' spacing
    other = "smooth" if model.series_score == "regime" else "regime"
    with tempfile.TemporaryDirectory() as tmp, timed() as t:
        assert aeviz(["train", args.data, "--out", f"{tmp}/m", "--train-rows", str(fit),
                      "--label-col", args.label_col, "--score", other, *drop]) == 0
        assert aeviz(["score", args.data, "--model", f"{tmp}/m", "--out", f"{tmp}/s.csv"]) == 0
        second = load_detector(f"{tmp}/m")
        table[f"aeviz --score {other}"] = evaluate(truth, pd.read_csv(f"{tmp}/s.csv")["score"].to_numpy()[fit:],
                                                   second.threshold_, time, second.event_gap_rows())
    seconds[f"aeviz --score {other}"] = round(t(), 1)
    # the same model's per-row reconstruction error, without the series score's smoothing,
    # stillness test and running reference, thresholded like the baselines
    table["aeviz model, unsmoothed reconstruction error"] = evaluate(
        truth, model.reconstruction_error(data.channels)[fit:],
        np.nanquantile(model.reconstruction_error(data.channels.iloc[:fit]), 0.995), time, gap)
    X = data.channels.ffill().bfill().to_numpy()  # the baselines cannot take gaps
    Z = StandardScaler().fit(X[:fit]).transform(X)
    table["flag everything"] = evaluate(truth, np.ones(len(truth)), 0.0, time, gap)

    def baseline(name, score):
        table[name] = evaluate(truth, score[fit:], np.quantile(score[:fit], 0.995), time, gap)

    with timed() as t:
        baseline("IsolationForest on rows", -IsolationForest(random_state=0).fit(Z[:fit]).score_samples(Z))
    seconds["iforest"] = round(t(), 1)
    for w in (10, 30):
        windows = sliding_window_view(np.pad(Z, ((w - 1, 0), (0, 0)), mode="edge"), w, axis=0).reshape(len(Z), -1)
        pca = PCA(0.95, random_state=0).fit(windows[:fit])
        baseline(f"PCA reconstruction, window {w}",
                 ((windows - pca.inverse_transform(pca.transform(windows))) ** 2).sum(1))
    keys = list(next(iter(table.values())))
    print("| detector | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(str(row[k]) for k in keys) + " |")
    gecco = Path(args.data).name == "1_gecco2018_water_quality.csv"
    write_results("real_data" if gecco else f"real_data_{Path(args.data).stem}", {"data": Path(args.data).name, "fit_rows": fit, "label_col": args.label_col,
                                "table": table, "seconds": seconds})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
