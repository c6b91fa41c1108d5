"""Operators teach the model: decisions read and checked, a refit from them, ``aeviz refit``."""

import copy
import json

import numpy as np
import pandas as pd
import pytest

from aeviz_core import AutoencoderDetector, load_detector
from aeviz_core.cli import main
from aeviz_core.events import event_spans
from aeviz_core.feedback import (CONFIRMED_SLACK, DecisionError, confirmed_margin, quiet_dismissed, read_decisions,
                                 refit, refit_margin, share_margin)
from tests.test_real_data import steady_plant

PARAMS = dict(window=16, stride=2, latent_dim=3, epochs=20, random_state=0)


@pytest.fixture(scope="module")
def shifted():
    """A plant whose flow steps down by four noise spreads at row 2000 and stays there, with a
    spike on the pressure at row 1500; the model trained on the first 1,000 rows."""
    X = steady_plant(n=4000)
    X.loc[2000:, "flow"] -= 1.6
    X.loc[1500:1503, "pressure"] += 1.0
    det = AutoencoderDetector(**PARAMS).fit(X.iloc[:1000])
    flags = det.anomaly_score(X) > det.threshold_
    return X, det, event_spans(flags, det.event_gap_rows())


def test_decisions_name_rows_and_status_and_are_checked():
    events_file = pd.DataFrame({"event_id": ["3-5", "9-12"], "start_row": [3, 9], "end_row": [5, 12],
                                "status": ["dismissed", "confirmed"]})
    assert read_decisions(events_file, 20)["status"].tolist() == ["dismissed", "confirmed"]
    export = events_file.assign(status=["false alarm", "confirmed anomaly"])  # the Review page's labels
    assert read_decisions(export, 20)["status"].tolist() == ["dismissed", "confirmed"]
    with pytest.raises(DecisionError, match=r"missing \['status'\]"):
        read_decisions(events_file.drop(columns="status"), 20)
    with pytest.raises(DecisionError, match="unknown status 'maybe'"):
        read_decisions(events_file.assign(status=["maybe", "open"]), 20)
    with pytest.raises(DecisionError, match="rows 9-12 lies outside the data's 10 rows"):
        read_decisions(events_file, 10)
    with pytest.raises(DecisionError, match="made on other data"):
        read_decisions(events_file.assign(data_fingerprint="abc"), 20, data_fingerprint="def")
    with pytest.raises(DecisionError, match="start_row must be a whole row number"):
        read_decisions(events_file.assign(start_row=["3", "x"]), 20)


def test_a_dismissed_lasting_change_becomes_the_new_normal_and_a_confirmed_fault_stays_flagged(shifted):
    X, det, spans = shifted
    shift = next((a, b) for a, b in spans if a <= 2010 <= b)
    spike = next((a, b) for a, b in spans if a <= 1503 and b >= 1500)
    assert shift[1] == len(X) - 1  # the parent flags the new level to the end
    decisions = pd.DataFrame({"start_row": [spike[0], shift[0]], "end_row": [spike[1], shift[1]],
                              "status": ["confirmed", "dismissed"], "reviewer": ["ana", "ana"]})
    result = refit(det, X, read_decisions(decisions, len(X)))
    new = result.detector
    assert new is not det and new.model_id_ != det.model_id_ and result.parent_id == det.model_id_
    after = new.anomaly_score(X) > new.threshold_
    assert after[2100:].mean() < 0.02, after[2100:].mean()  # the dismissed shift is normal now
    assert after[spike[0] : spike[1] + 1].any()  # the confirmed spike still flagged
    assert result.confirmed_before == result.confirmed_after == 1 and not result.warnings
    # the dismissed shift's rows: flagged by the parent, hardly any by the new version
    assert result.dismissed_before > 0.9 and result.dismissed_after < 0.05, result.dismissed_after
    assert f"dismissed events' rows flagged {result.dismissed_before:.0%} -> {result.dismissed_after:.0%}" in result.summary()
    assert result.flagged_after < result.flagged_before
    # a new recording at the new level: quiet; the parent, untouched, still flags it
    later = steady_plant(n=1500, seed=3)
    later["flow"] -= 1.6
    assert (new.anomaly_score(later) > new.threshold_).mean() < 0.02
    assert (det.anomaly_score(later) > det.threshold_).mean() > 0.9
    # the refit fine-tunes from the parent's weights: fewer epochs than the first training
    assert result.epochs <= det.refine_epochs() == max(5, det.training_plan().epochs // 12)
    # its threshold rests on more rows than the parent's: the margin keeps the parent's stretch in
    # the share of them the parent had
    assert len(new.fit_errors_) > len(det.fit_errors_)
    expected = 1 + (det.threshold_margin_ - 1) * len(det.fit_errors_) / len(new.fit_errors_)
    assert new.threshold_margin_ == pytest.approx(expected) and 1 < new.threshold_margin_ < det.threshold_margin_


def test_a_refit_margin_shrinks_with_the_rows_its_threshold_rests_on():
    from types import SimpleNamespace as Model

    parent = Model(threshold_margin_=1.5, fit_errors_=np.zeros(1_500))
    assert refit_margin(parent, Model(fit_errors_=np.zeros(1_500))) == 1.5
    assert refit_margin(parent, Model(fit_errors_=np.zeros(6_000))) == pytest.approx(1.125)
    assert refit_margin(parent, Model(fit_errors_=np.zeros(500))) == 1.5  # fewer rows: never wider
    assert refit_margin(Model(threshold_margin_=1.0, fit_errors_=np.zeros(9)), Model(fit_errors_=np.zeros(90))) == 1.0


def _percentile_model():
    """A stand-in fitted model: its 99th-percentile rule on fit errors spread evenly over 0-1, and
    ``(errors, the rule's fitted threshold)``."""
    from types import SimpleNamespace as Model

    from aeviz_core.thresholds import ThresholdRule

    errors = np.linspace(0.0, 1.0, 1001)
    return Model(threshold_rule_=ThresholdRule("percentile", 99.0), fit_errors_=errors), errors, np.percentile(errors, 99.0)


def test_confirmed_events_cap_the_margin_with_room_to_spare():
    """The lowest confirmed peak above the fitted threshold stands CONFIRMED_SLACK further above the
    median than the new threshold; a peak below the fitted threshold does not count; never below 1."""
    from aeviz_core.thresholds import widen

    model, errors, fitted = _percentile_model()
    median = np.median(errors)
    scores = np.zeros(100)
    scores[10:15], scores[40:45] = 1.4, 1.8  # two confirmed events' peaks; a lower one at 0.5
    scores[70:75] = 0.5
    decisions = pd.DataFrame({"start_row": [10, 40, 70], "end_row": [14, 44, 74], "status": ["confirmed"] * 3})
    margin = confirmed_margin(model, scores, decisions)
    threshold = widen(fitted, errors, margin)
    assert 1.0 < margin and (1.4 - median) == pytest.approx((1 + CONFIRMED_SLACK) * (threshold - median), rel=1e-5)
    assert confirmed_margin(model, scores, decisions.iloc[2:]) == np.inf  # below the fitted threshold: not counted
    scores[10:15] = fitted + 0.01  # just above the fitted threshold: the margin gives way down to 1, no lower
    assert confirmed_margin(model, scores, decisions) == 1.0


def test_the_room_gives_way_to_the_parents_share_of_flags_on_reviewed_rows():
    """share_margin: the narrowest margin whose threshold flags at most the given share of the rows
    (the room below confirmed peaks may not flag more of the reviewed normal rows than the parent)."""
    from aeviz_core.thresholds import widen

    model, errors, fitted = _percentile_model()
    reviewed = np.random.default_rng(0).normal(0.5, 0.3, 2000)
    margin = share_margin(model, reviewed, 0.005)
    assert margin > 1.0
    assert np.sum(reviewed > widen(fitted, errors, margin)) <= 10  # at most 0.5% of 2000 rows
    assert np.sum(reviewed > widen(fitted, errors, margin * 0.999)) > 10  # the narrowest such margin
    assert share_margin(model, reviewed, 0.5) == 1.0  # never below 1
    assert share_margin(model, np.full(5, np.nan), 0.0) == 1.0  # unscored rows are never flagged


@pytest.fixture(scope="module")
def excursions():
    """A plant with four excursions the model (trained on the first 1,000 rows) flags: the pressure
    up by five noise spreads for 20 rows at 1200, by eight at 1400 and by four at 1800, and the
    flow down by five spreads at 1500."""
    X = steady_plant(n=3000)
    X.loc[1200:1219, "pressure"] += 0.25
    X.loc[1400:1419, "pressure"] += 0.4
    X.loc[1500:1519, "flow"] -= 2.0
    X.loc[1800:1819, "pressure"] += 0.2
    det = AutoencoderDetector(**PARAMS).fit(X.iloc[:1000])
    spans = event_spans(det.anomaly_score(X) > det.threshold_, det.event_gap_rows())
    return X, det, {row: next(s for s in spans if s[0] <= row + 10 <= s[1]) for row in (1200, 1400, 1500, 1800)}


def _decide(spans, **statuses):
    rows = [(*spans[int(row[1:])], status) for row, status in statuses.items()]
    return pd.DataFrame(rows, columns=["start_row", "end_row", "status"])


def test_a_dismissed_excursion_widens_its_channel_so_a_like_one_is_quiet_and_confirmed_ones_stay(excursions):
    X, det, spans = excursions
    new = copy.copy(det)
    factors = quiet_dismissed(new, X, _decide(spans, r1200="dismissed", r1400="confirmed", r1500="confirmed"))
    pressure = list(X.columns).index("pressure")
    assert factors[pressure] > 1 and np.delete(factors, pressure).tolist() == [1.0] * 3  # only the blamed channel
    assert new.threshold_ == det.threshold_ and det.channel_tail_[pressure] < new.channel_tail_[pressure]
    after = new.anomaly_score(X) > new.threshold_
    for row, flagged in ((1200, False), (1800, False), (1400, True), (1500, True)):  # 1800: like 1200, smaller
        a, b = spans[row]
        assert after[a : b + 1].any() == flagged, row
        assert (det.anomaly_score(X)[a : b + 1] > det.threshold_).any()  # the parent, untouched, flags them all

    # a confirmed excursion that only the same channel flags: the widening stops short of it
    new = copy.copy(det)
    factors = quiet_dismissed(new, X, _decide(spans, r1400="dismissed", r1800="confirmed"))
    after = new.anomaly_score(X) > new.threshold_
    assert 1 < factors[pressure] and after[spans[1800][0] : spans[1800][1] + 1].any()
    assert after[spans[1400][0] : spans[1400][1] + 1].any()  # so the dismissed one is not wholly quiet


def test_a_refit_keeps_the_threshold_rule_an_operator_chose(shifted):
    X, det, spans = shifted
    shift = next((a, b) for a, b in spans if a <= 2010 <= b)
    decisions = read_decisions(pd.DataFrame({"start_row": [shift[0]], "end_row": [shift[1]], "status": ["dismissed"]}),
                               len(X))
    chosen = det.with_threshold("percentile", 99.0)  # moved on the Anomalies page
    new = refit(chosen, X, decisions).detector
    assert (new.threshold_rule_.rule, new.threshold_rule_.param) == ("percentile", 99.0)
    manual = det.with_threshold("manual", 0.5)  # a value fits the parent's scores only: the model's own rule
    new = refit(manual, X, decisions).detector
    assert new.threshold_rule_ == det.threshold_rule_ and new.threshold_ > 0.5


def test_decisions_on_rows_the_model_does_not_flag_are_refused(shifted):
    X, det, _ = shifted
    decisions = read_decisions(pd.DataFrame({"start_row": [100], "end_row": [120], "status": ["dismissed"]}), len(X))
    with pytest.raises(DecisionError, match="flags no row of the decided event 100-120"):
        refit(det, X, decisions)
    only_open = read_decisions(pd.DataFrame({"start_row": [2000], "end_row": [2100], "status": ["open"]}), len(X))
    with pytest.raises(DecisionError, match="no event is dismissed or confirmed"):
        refit(det, X, only_open)


def test_aeviz_refit_writes_a_new_version_with_its_lineage_and_leaves_the_parent(shifted, tmp_path, capsys):
    X, det, spans = shifted
    data = tmp_path / "plant.csv"
    X.assign(time=pd.date_range("2026-01-01", periods=len(X), freq="s")).to_csv(data, index=False)
    parent = tmp_path / "parent"
    assert main(["train", str(data), "--out", str(parent), "--window", "16", "--stride", "2", "--latent-dim", "3",
                 "--epochs", "20", "--train-rows", "1000"]) == 0
    assert main(["score", str(data), "--model", str(parent), "--out", str(tmp_path / "s.csv"),
                 "--events", str(tmp_path / "events.csv")]) == 0
    events = pd.read_csv(tmp_path / "events.csv")
    events["status"] = np.where(events["start_row"] >= 1900, "dismissed", "open")
    events.to_csv(tmp_path / "reviews.csv", index=False)
    before = (parent / "aeviz.json").read_text()
    assert main(["refit", str(parent), str(data), "--reviews", str(tmp_path / "reviews.csv"),
                 "--out", str(tmp_path / "v2")]) == 0
    err = capsys.readouterr().err
    assert "dismissed" in err and "the parent" in err and "is unchanged" in err
    assert (parent / "aeviz.json").read_text() == before  # the parent stays as it was, loadable
    new, old = load_detector(tmp_path / "v2"), load_detector(parent)
    lineage = new.saved_meta_["extra"]["lineage"]
    assert lineage["parent"] == old.model_id_ and lineage["data"] == "plant.csv"
    assert isinstance(lineage["widened_tails"], dict)  # channel -> factor, those the dismissed events widened
    decided = [d for d in lineage["decisions"] if d["status"] == "dismissed"]
    assert decided and all(d["start_row"] >= 1900 for d in decided)
    assert (new.anomaly_score(X.iloc[2100:]) > new.threshold_).mean() < (old.anomaly_score(X.iloc[2100:])
                                                                          > old.threshold_).mean()
    # an unknown status, rows outside the data: one line, exit 2, nothing written
    events.assign(status="maybe").to_csv(tmp_path / "bad.csv", index=False)
    assert main(["refit", str(parent), str(data), "--reviews", str(tmp_path / "bad.csv"),
                 "--out", str(tmp_path / "v3")]) == 2
    assert "unknown status 'maybe'" in capsys.readouterr().err and not (tmp_path / "v3").exists()
    events.assign(end_row=len(X) + 5, status="dismissed").to_csv(tmp_path / "outside.csv", index=False)
    assert main(["refit", str(parent), str(data), "--reviews", str(tmp_path / "outside.csv"),
                 "--out", str(tmp_path / "v3")]) == 2
    assert "outside the data" in capsys.readouterr().err and not (tmp_path / "v3").exists()
    assert json.loads((parent / "aeviz.json").read_text())["model_id"] == old.model_id_


def test_a_review_queue_gives_its_own_decisions_not_stale_or_open_ones():
    from aeviz_core.feedback import queue_decisions

    queue = pd.DataFrame({"start": [50, 10, 30, 70], "end": [60, 20, 40, 80],
                          "status": ["dismissed", "confirmed", "dismissed", "open"],
                          "stale": [False, False, True, False], "reviewer": ["ana", "ben", "cy", None],
                          "reviewed_at": pd.to_datetime(["2026-12-01", "2026-12-02", "2026-12-03", None], utc=True),
                          "tags": ["start-up", "", "", ""]})
    decisions = queue_decisions(queue)
    assert decisions[["start_row", "end_row", "status", "reviewer"]].values.tolist() == [
        [10, 20, "confirmed", "ben"], [50, 60, "dismissed", "ana"]]
    assert read_decisions(decisions, 100)["status"].tolist() == ["confirmed", "dismissed"]


def test_a_refit_reuses_the_scores_its_statistics_computed_and_prepares_only_the_rows_it_reads(shifted):
    """The refit reads the decided rows' scores from the fine-tune's statistics pass instead of
    scoring them again, and prepares only the rows training and the statistics read: both must give
    what scoring the whole series gives."""
    X, det, spans = shifted
    normal = np.arange(len(X)) < 1400
    rows = {}
    new = det.refine(X, normal, rows_out=rows, cover=1504)
    assert len(rows["scores"]) >= 1504 + new.context_rows and len(rows["scores"]) < len(X)
    scores, parts = new.score_parts(X)
    np.testing.assert_allclose(rows["scores"][:1504], scores[:1504], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rows["parts"][:1504], parts[:1504], rtol=1e-5, atol=1e-6)
    whole = det.refine(X, normal)  # the public path, with no rows to cover
    assert whole.threshold_ == pytest.approx(new.threshold_, rel=1e-6)
    np.testing.assert_allclose(whole.channel_tail_, new.channel_tail_, rtol=1e-6)


def test_a_refit_from_confirmed_events_alone_reports_no_dismissed_rows(shifted):
    X, det, spans = shifted
    spike = next((a, b) for a, b in spans if a <= 1503 and b >= 1500)
    decisions = read_decisions(pd.DataFrame({"start_row": [spike[0]], "end_row": [spike[1]],
                                             "status": ["confirmed"]}), len(X))
    result = refit(det, X, decisions)
    assert result.dismissed_before is None and result.dismissed_after is None
    assert "dismissed events' rows" not in result.summary() and "confirmed events flagged 1 -> " in result.summary()
    from aeviz_core.feedback import lineage

    json.dumps(lineage(result, data_name="plant.csv", data_fingerprint="f"), allow_nan=False)  # strict JSON: no NaN
