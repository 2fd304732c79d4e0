"""Evaluation metrics, checked against lifelines, closed forms and tables small enough to compute by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines import KaplanMeierFitter
from lifelines.utils import concordance_index
from sksurv.metrics import concordance_index_ipcw, cumulative_dynamic_auc, integrated_brier_score

from models.candidates import OPTIONS as ALL_OPTIONS
from models.evaluation import calibration_table, survival_at, survival_metrics
from models.policy_evaluation import _truth_figures
from models.policy_truth import policy_truth_metrics
from models.recommender import BASELINE_INDEX, OptionPredictions
from models.survival import time_grid
from models.target import make_target

GRID = time_grid(0.5, 36.0)


# ----------------------------------------------------------------------------------------------------------
# Survival metrics
# ----------------------------------------------------------------------------------------------------------


def _exponential(
    n: int, seed: int, *, censor: bool = True, follow_up: float = 60.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exponential times with hazard 0.05 exp(0.8 x), uniform censoring on (5, follow_up) if ``censor``.

    Returns the target, the true log hazard ratio (the ideal risk) and the true survival on GRID.
    """
    rng = np.random.default_rng(seed)
    log_hazard_ratio = 0.8 * rng.normal(size=n)
    rate = 0.05 * np.exp(log_hazard_ratio)
    event_time = rng.exponential(1 / rate)
    censor_time = rng.uniform(5.0, follow_up, size=n) if censor else np.full(n, np.inf)
    target = make_target(np.minimum(event_time, censor_time), event_time <= censor_time)
    return target, log_hazard_ratio, np.exp(-np.outer(rate, GRID))


def test_perfect_risk_gives_one_and_reversed_gives_zero() -> None:
    y_train, _, _ = _exponential(300, 0)
    y_test, _, survival = _exponential(200, 1)
    perfect = survival_metrics(y_train, y_test, -y_test["time"], survival, GRID)
    reversed_ = survival_metrics(y_train, y_test, y_test["time"], survival, GRID)
    for key in ("harrell_c", "uno_c", "td_auc_6", "td_auc_12", "td_auc_24"):
        assert perfect[key] == pytest.approx(1.0), key
    assert reversed_["harrell_c"] == pytest.approx(0.0)
    assert reversed_["uno_c"] == pytest.approx(0.0)


def test_harrell_c_matches_lifelines() -> None:
    y_train, _, _ = _exponential(300, 2)
    y_test, log_hazard_ratio, survival = _exponential(250, 3)
    risk = log_hazard_ratio + np.random.default_rng(4).normal(size=250)
    metrics = survival_metrics(y_train, y_test, risk, survival, GRID)
    # lifelines scores predicted survival times (higher = longer), so the risk is negated
    expected = concordance_index(y_test["time"], -risk, y_test["event"])
    assert metrics["harrell_c"] == pytest.approx(expected, abs=1e-12)
    assert 0.6 < metrics["harrell_c"] < 0.8


def test_uno_c_equals_harrell_c_without_censoring() -> None:
    # every time below the horizon and no censoring: all IPC weights are 1 and no pair is truncated
    rng = np.random.default_rng(5)
    time = rng.uniform(0.5, 20.0, size=150)
    y = make_target(time, np.ones(150, dtype=bool))
    risk = -time + rng.normal(scale=4.0, size=150)
    survival = np.exp(-np.outer(np.full(150, 0.1), GRID))
    metrics = survival_metrics(y, y, risk, survival, GRID, auc_times=(6.0, 12.0))
    assert metrics["uno_c"] == pytest.approx(metrics["harrell_c"], abs=1e-12)
    assert metrics["harrell_c"] == pytest.approx(concordance_index(time, -risk), abs=1e-12)


def test_ibs_and_auc_closed_forms_without_censoring() -> None:
    # Without censoring the Brier score at t is mean((1{T > t} - S(t))^2), the IBS its trapezoidal mean
    # over the grid times in [min T, max T) and <= horizon, and AUC(t) the share of (case, control) pairs
    # (T_i <= t < T_j) where the case has the higher risk (ties count 1/2).
    rng = np.random.default_rng(6)
    time = rng.exponential(10.0, size=120) + 0.3
    y = make_target(time, np.ones(120, dtype=bool))
    risk = -time + rng.normal(scale=5.0, size=120)
    survival = np.exp(-np.outer(np.exp(rng.normal(size=120)) / 10.0, GRID))
    metrics = survival_metrics(y, y, risk, survival, GRID, horizon=24.0, auc_times=(6.0, 12.0))

    used = (time.min() <= GRID) & (time.max() > GRID) & (GRID <= 24.0)
    assert GRID[used][0] == 0.5 and GRID[used][-1] == 24.0  # min T > 0.3, max T > 24 for this seed
    brier = ((time[:, None] > GRID[used]) - survival[:, used]) ** 2
    scores = brier.mean(axis=0)
    trapezoid = ((scores[1:] + scores[:-1]) / 2 * np.diff(GRID[used])).sum()
    assert metrics["ibs"] == pytest.approx(trapezoid / (24.0 - 0.5), rel=1e-12)

    for at in (6.0, 12.0):
        cases, controls = risk[time <= at], risk[time > at]
        difference = cases[:, None] - controls[None, :]
        expected = ((difference > 0) + 0.5 * (difference == 0)).mean()
        assert metrics[f"td_auc_{at:g}"] == pytest.approx(expected, abs=1e-12)


def test_ibs_of_the_true_curve_beats_constant_curves() -> None:
    y_train, _, _ = _exponential(400, 7)
    y_test, log_hazard_ratio, true_survival = _exponential(400, 8)
    marginal = np.tile(true_survival.mean(axis=0), (400, 1))  # the population curve, the same for everyone
    half = np.full_like(true_survival, 0.5)
    ibs = {
        name: survival_metrics(y_train, y_test, log_hazard_ratio, curves, GRID)["ibs"]
        for name, curves in (("true", true_survival), ("marginal", marginal), ("half", half))
    }
    assert ibs["true"] < ibs["marginal"] < ibs["half"]


def test_weighted_metrics_unchanged_by_censoring_after_the_window() -> None:
    y_train, _, _ = _exponential(300, 9, follow_up=80.0)
    y_test, log_hazard_ratio, survival = _exponential(200, 10)
    assert y_test["time"].max() < y_train["time"].max()  # so scikit-survival accepts the raw test target
    metrics = survival_metrics(y_train, y_test, log_hazard_ratio, survival, GRID)
    used = (y_test["time"].min() <= GRID) & (y_test["time"].max() > GRID) & (GRID <= 24.0)
    raw = {
        "uno_c": concordance_index_ipcw(y_train, y_test, log_hazard_ratio, tau=24.0)[0],
        "ibs": integrated_brier_score(y_train, y_test, survival[:, used], GRID[used]),
        "td_auc_12": cumulative_dynamic_auc(y_train, y_test, log_hazard_ratio, [12.0])[0][0],
    }
    for key, value in raw.items():
        assert metrics[key] == pytest.approx(value, abs=1e-12), key


def test_test_follow_up_beyond_training_is_accepted_up_to_the_window() -> None:
    y_train, _, _ = _exponential(300, 11, follow_up=40.0)
    y_test, log_hazard_ratio, survival = _exponential(200, 12, follow_up=80.0)
    assert y_test["time"].max() > y_train["time"].max() > 24.0
    with pytest.raises(ValueError):  # scikit-survival alone refuses the raw test target
        cumulative_dynamic_auc(y_train, y_test, log_hazard_ratio, [12.0])
    metrics = survival_metrics(y_train, y_test, log_hazard_ratio, survival, GRID)
    assert 0.6 < metrics["td_auc_12"] < 0.9


def test_key_names_follow_the_times() -> None:
    y_train, _, _ = _exponential(300, 13)
    y_test, log_hazard_ratio, survival = _exponential(200, 14)
    metrics = survival_metrics(
        y_train, y_test, log_hazard_ratio, survival, GRID, auc_times=(3.0, 7.5), calibration_time=6.0
    )
    assert set(metrics) == {"harrell_c", "uno_c", "ibs", "td_auc_3", "td_auc_7.5", "calibration_6_ici"}


def test_calibration_table_matches_lifelines_within_groups() -> None:
    y_train, _, _ = _exponential(300, 15)
    y_test, log_hazard_ratio, survival = _exponential(400, 16)
    predicted = survival[:, GRID == 12.0][:, 0]
    table = calibration_table(y_test, predicted, 12.0, 4)
    assert list(table.columns) == ["group", "n", "predicted", "observed", "observed_lower", "observed_upper"]
    # distinct predictions, 400 rows, 4 groups: the groups are the sorted predictions in blocks of 100
    order = np.argsort(predicted)
    weighted_error = 0.0
    for group, members in enumerate(np.split(order, 4), start=1):
        row = table.iloc[group - 1]
        fitter = KaplanMeierFitter(alpha=0.05).fit(y_test["time"][members], y_test["event"][members])
        observed = fitter.survival_function_at_times(12.0).iloc[0]
        lower, upper = fitter.confidence_interval_survival_function_.loc[:12.0].iloc[-1]
        assert (row["group"], row["n"]) == (group, 100)
        assert row["predicted"] == pytest.approx(predicted[members].mean(), abs=1e-12)
        assert row["observed"] == pytest.approx(observed, abs=1e-12)
        assert row["observed_lower"] == pytest.approx(lower, abs=1e-9)
        assert row["observed_upper"] == pytest.approx(upper, abs=1e-9)
        weighted_error += 100 * abs(predicted[members].mean() - observed) / 400
    metrics = survival_metrics(y_train, y_test, log_hazard_ratio, survival, GRID, n_groups=4)
    assert metrics["calibration_12_ici"] == pytest.approx(weighted_error, abs=1e-12)


def test_calibration_table_by_hand() -> None:
    # predictions 0.2 0.3 0.4 | 0.7 0.8 0.9: the median 0.55 splits them into two groups of three.
    # group 1: event at 2, censored at 5, event at 8 -> KM(6) = 1 - 1/3 = 2/3; mean predicted 0.3
    # group 2: event at 7, censored at 10 and 12 -> no event by 6, KM(6) = 1 (interval 1, 1); mean 0.8
    y = make_target(np.array([2.0, 5.0, 8.0, 7.0, 10.0, 12.0]), np.array([1, 0, 1, 1, 0, 0], dtype=bool))
    table = calibration_table(y, np.array([0.2, 0.3, 0.4, 0.7, 0.8, 0.9]), 6.0, 2)
    np.testing.assert_allclose(table["predicted"], [0.3, 0.8])
    np.testing.assert_allclose(table["observed"], [2 / 3, 1.0])
    assert table["n"].tolist() == [3, 3]
    assert table.loc[1, ["observed_lower", "observed_upper"]].tolist() == [1.0, 1.0]
    # group 1's log-log interval: Greenwood variance 1 / (3 * 2), S^exp(+-z sigma / log S)
    sigma, log_s = math.sqrt(1 / 6), math.log(2 / 3)
    theta = 1.959963984540054 * sigma / log_s
    assert table.loc[0, "observed_lower"] == pytest.approx((2 / 3) ** math.exp(-theta), abs=1e-9)
    assert table.loc[0, "observed_upper"] == pytest.approx((2 / 3) ** math.exp(theta), abs=1e-9)


def test_calibration_groups_keep_ties_together() -> None:
    y = make_target(np.arange(1.0, 9.0), np.ones(8, dtype=bool))
    table = calibration_table(y, np.array([0.5] * 6 + [0.9, 0.9]), 3.0, 4)
    assert table["n"].tolist() == [6, 2]
    assert table["group"].tolist() == [1, 2]


def test_survival_at_is_a_right_continuous_step() -> None:
    grid = np.array([1.0, 2.0, 3.0])
    curves = np.array([[0.9, 0.8, 0.7]])
    assert survival_at(curves, grid, 0.5)[0] == 1.0
    assert survival_at(curves, grid, 2.0)[0] == 0.8
    assert survival_at(curves, grid, 2.9)[0] == 0.8
    assert survival_at(curves, grid, 10.0)[0] == 0.7


def test_survival_metrics_errors() -> None:
    y_train, _, _ = _exponential(200, 17)
    y_test, risk, survival = _exponential(100, 18)
    with pytest.raises(ValueError, match=r"risk must have shape \(100,\)"):
        survival_metrics(y_train, y_test, risk[:-1], survival, GRID)
    with pytest.raises(ValueError, match=r"survival must have shape \(100, 72\)"):
        survival_metrics(y_train, y_test, risk, survival[:, :-1], GRID)
    with pytest.raises(ValueError, match="outside the test follow-up"):
        survival_metrics(y_train, y_test, risk, survival, GRID, auc_times=(6.0, 500.0))
    with pytest.raises(ValueError, match="outside the test follow-up"):
        survival_metrics(y_train, y_test, risk, survival, GRID, calibration_time=500.0)
    with pytest.raises(ValueError, match="at least two grid times"):
        survival_metrics(y_train, y_test, risk, survival, GRID, horizon=0.5, auc_times=())
    with pytest.raises(ValueError, match="probabilities"):
        survival_metrics(y_train, y_test, risk, survival * 2, GRID)
    short_train = make_target(np.minimum(y_train["time"], 10.0), y_train["event"] & (y_train["time"] <= 10))
    with pytest.raises(ValueError, match="training follow-up"):
        survival_metrics(short_train, y_test, risk, survival, GRID)
    with pytest.raises(ValueError, match="n_groups"):
        calibration_table(y_test, survival[:, 10], 12.0, 0)


# ----------------------------------------------------------------------------------------------------------
# Policy metrics
# ----------------------------------------------------------------------------------------------------------

# 3 decisions x 4 options: (candidate, local_therapy, true, predicted, lower, upper, supported)
HAND_TABLE = {
    1: [
        ("tbp", False, 10.0, 9.0, 7.0, 11.0, True),
        ("tbp", True, 12.0, 11.0, 9.0, 13.0, True),
        ("chemo", False, 8.0, 12.0, 10.0, 14.0, True),  # recommended (best supported), true 8
        ("adc", False, 15.0, 14.0, 12.0, 16.0, False),  # highest predicted but unsupported
    ],
    2: [
        ("tbp", False, 6.0, 7.0, 5.0, 8.0, True),
        ("tbp", True, 10.5, 7.0, 6.0, 9.0, False),
        ("chemo", False, 9.0, 10.0, 8.0, 12.0, True),  # tied with adc at 10, first: recommended, true 9
        ("adc", False, 11.0, 10.0, 9.0, 13.0, True),
    ],
    3: [
        ("tbp", False, 20.0, 15.0, 13.0, 17.0, True),
        ("tbp", True, 19.0, 14.0, 12.0, 20.0, True),
        ("chemo", False, 14.0, 16.0, 14.0, 18.0, True),
        ("adc", False, 16.0, 17.0, 15.0, 19.0, True),  # recommended, true 16
    ],
}
HAND_OBSERVED = {1: ("tbp", False), 2: ("adc", False), 3: ("chemo", False)}  # true 10, 11, 14


def _frames(
    table: dict[int, list[tuple[str, bool, float, float, float, float, bool]]],
    observed: dict[int, tuple[str, bool]],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rows = [(decision, *option) for decision, options in table.items() for option in options]
    columns = ["decision", "candidate", "local_therapy", "true", "predicted", "lower", "upper", "supported"]
    long = pd.DataFrame(rows, columns=columns)
    scores = long.drop(columns="true")
    truth = long[["decision", "candidate", "local_therapy", "true"]]
    taken = pd.DataFrame(
        [(decision, *option) for decision, option in observed.items()],
        columns=["decision", "candidate", "local_therapy"],
    )
    return scores, truth, taken


def test_policy_metrics_on_the_hand_table() -> None:
    metrics = policy_truth_metrics(*_frames(HAND_TABLE, HAND_OBSERVED))
    expected = {
        "n_decisions": 3.0,
        "value_model": (8 + 9 + 16) / 3,  # chemo, chemo (tie, first), adc
        "value_observed": (10 + 11 + 14) / 3,
        "value_oracle": (15 + 11 + 20) / 3,  # adc, adc, tbp
        "value_always_tbp": (10 + 6 + 20) / 3,
        # option means: tbp 36/3, tbp+local (12 + 10.5 + 19)/3, chemo 31/3, adc (15 + 11 + 16)/3 = 14
        "value_best_single": 14.0,
        "best_single_candidate": "adc",
        "best_single_local_therapy": 0.0,
        "capture": (33 / 3 - 35 / 3) / (46 / 3 - 35 / 3),  # = -2/11
        # decision 1: true switch - tbp = 15 - 12 = 3, predicted (supported) 12 - 11 = 1: agree
        # decision 2: true 11 - 10.5 = 0.5 <= 1: left out
        # decision 3: true 16 - 20 = -4, predicted 17 - 15 = 2: disagree
        "tbp_switch_agreement": 0.5,
        "tbp_switch_n": 2.0,
        # predicted gains over tbp  [2, 3, 5 | 0, 3, 3 | -1, 1, 2], ranks [4.5, 7, 9, 2, 7, 7, 1, 3, 4.5]
        # true gains over tbp       [2, -2, 5 | 4.5, 3, 5 | -1, -6, -4], ranks [5, 3, 8.5, 7, 6, 8.5, 4, 1, 2]
        # centred ranks: sum of products 26.5, sums of squares 57.5 and 59.5
        "rank_correlation": 26.5 / math.sqrt(57.5 * 59.5),
        # decision 1: ranks [1, 2, 3, 4] vs [2, 3, 1, 4]: 1 - 6 * 6 / (4 * 15) = 0.4
        # decision 2: ranks [1.5, 1.5, 3.5, 3.5] vs [1, 3, 2, 4]: 2 / sqrt(4 * 5)
        # decision 3: ranks [2, 1, 3, 4] vs [4, 3, 1, 2]: 1 - 6 * 16 / 60 = -0.6
        "rank_correlation_within": (0.4 + 2 / math.sqrt(20) - 0.6) / 3,
        # supported rows covered: 2 of 3, 3 of 3, 3 of 4 (20 > 17 is not) -> 8 / 10
        "interval_coverage_90": 0.8,
        # all rows: add decision 1's adc (covered) and decision 2's tbp+local (10.5 > 9 not) -> 9 / 12
        "interval_coverage_90_all": 0.75,
        "interval_width_mean": (4 + 4 + 4 + 3 + 4 + 4 + 4 + 8 + 4 + 4) / 10,
        # supported predicted - true: [-1, -1, 4 | 1, 1, -1 | -5, -5, 2, 1], sum -4
        "interval_error_mean": -0.4,
        # squared deviations from -0.4: 0.36 x 3, 19.36, 1.96 x 3, 21.16 x 2, 5.76 -> 74.4
        "interval_error_sd": math.sqrt(74.4 / 9),
        # |errors| sorted [1, 1, 1, 1, 1, 1, 2, 4, 5, 5]: the 90th percentile lies between the last two
        "interval_half_width_needed_90": 5.0,
    }
    assert set(metrics) == set(expected)
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=1e-12), key


def test_value_column_and_baseline_are_parameters() -> None:
    scores, truth, observed = _frames(HAND_TABLE, HAND_OBSERVED)
    metrics = policy_truth_metrics(
        scores,
        truth.rename(columns={"true": "rmst_24"}),
        observed,
        value_column="rmst_24",
        baseline=("tbp", True),
    )
    assert metrics["value_always_tbp"] == pytest.approx((12 + 10.5 + 19) / 3)
    assert metrics["tbp_switch_n"] == 2.0  # the TBP side is every tbp row, with or without local therapy


def test_unsupported_options_are_never_recommended() -> None:
    scores, truth, observed = _frames(HAND_TABLE, HAND_OBSERVED)
    boosted = scores.assign(predicted=np.where(scores["supported"], scores["predicted"], 1000.0))
    assert policy_truth_metrics(boosted, truth, observed)["value_model"] == pytest.approx(11.0)
    only_tbp = scores.assign(supported=scores["candidate"] == "tbp", predicted=-scores["predicted"])
    # supported tbp rows only; lowest original prediction wins: 10 (tbp, decision 1), 6 (decision 2: the
    # tbp+local row is unsupported), 19 (decision 3)
    assert policy_truth_metrics(only_tbp, truth, observed)["value_model"] == pytest.approx((10 + 6 + 19) / 3)


def test_capture_is_one_for_the_oracle_and_zero_for_current_practice() -> None:
    scores, truth, observed = _frames(HAND_TABLE, HAND_OBSERVED)
    oracle = scores.assign(predicted=truth["true"], supported=True)
    assert policy_truth_metrics(oracle, truth, observed)["capture"] == pytest.approx(1.0)
    is_taken = scores.merge(observed, how="left", indicator=True)["_merge"].eq("both").to_numpy()
    practice = scores.assign(predicted=is_taken.astype(float), supported=True)
    assert policy_truth_metrics(practice, truth, observed)["capture"] == pytest.approx(0.0)
    # the observed options are already the best: no gain to capture
    best = {1: ("adc", False), 2: ("adc", False), 3: ("tbp", False)}
    assert math.isnan(policy_truth_metrics(scores, truth, _frames(HAND_TABLE, best)[2])["capture"])


def test_constant_decisions_are_skipped_and_empty_comparisons_are_nan() -> None:
    table = {
        1: [("tbp", False, 5.0, 1.0, 0.0, 9.0, True), ("chemo", False, 5.2, 1.0, 0.0, 9.0, True)],
        2: [("tbp", False, 4.0, 1.0, 0.0, 9.0, True), ("chemo", False, 6.0, 3.0, 0.0, 9.0, True)],
    }
    frames = _frames(table, {1: ("tbp", False), 2: ("chemo", False)})
    metrics = policy_truth_metrics(*frames)
    # decision 1's predictions are constant (skipped); decision 2 ranks its two options right (1)
    assert metrics["rank_correlation_within"] == pytest.approx(1.0)
    # gains over tbp: predicted [0, 2], true [0.2, 2] -> same order
    assert metrics["rank_correlation"] == pytest.approx(1.0)
    # true switch - tbp: 0.2 (left out at min_difference 1) and 2 (predicted 2: agree)
    assert (metrics["tbp_switch_agreement"], metrics["tbp_switch_n"]) == (1.0, 1.0)
    strict = policy_truth_metrics(*frames, min_difference=5.0)
    assert math.isnan(strict["tbp_switch_agreement"]) and strict["tbp_switch_n"] == 0.0
    flat = frames[0].assign(predicted=1.0)
    assert math.isnan(policy_truth_metrics(flat, *frames[1:])["rank_correlation_within"])
    assert math.isnan(policy_truth_metrics(flat, *frames[1:])["rank_correlation"])


def test_policy_validation_errors() -> None:
    scores, truth, observed = _frames(HAND_TABLE, HAND_OBSERVED)
    with pytest.raises(
        ValueError, match="1 scores keys missing from truth, 0 truth keys missing from scores"
    ):
        policy_truth_metrics(scores, truth.iloc[1:], observed)
    extra = pd.concat(
        [truth, pd.DataFrame([{"decision": 3, "candidate": "x", "local_therapy": False, "true": 1}])]
    )
    with pytest.raises(
        ValueError, match="0 scores keys missing from truth, 1 truth keys missing from scores"
    ):
        policy_truth_metrics(scores, extra, observed)
    with pytest.raises(ValueError, match="scores has 1 duplicated"):
        policy_truth_metrics(pd.concat([scores, scores.iloc[:1]]), truth, observed)
    unknown = observed.assign(candidate=["tbp", "oral_serd", "chemo"])
    with pytest.raises(ValueError, match="1 observed options are not among the options of truth"):
        policy_truth_metrics(scores, truth, unknown)
    with pytest.raises(ValueError, match="observed must cover the decisions"):
        policy_truth_metrics(scores, truth, observed.iloc[:2])
    unsupported = scores.assign(supported=scores["decision"] != 2)
    with pytest.raises(ValueError, match="1 decisions have no supported option"):
        policy_truth_metrics(unsupported, truth, observed)
    with pytest.raises(ValueError, match="lack the baseline option"):
        policy_truth_metrics(scores, truth, observed, baseline=("et_mono", False))
    with pytest.raises(ValueError, match=r"scores lacks columns \['supported'\]"):
        policy_truth_metrics(scores.drop(columns="supported"), truth, observed)
    with pytest.raises(ValueError, match="must be boolean"):
        policy_truth_metrics(scores.assign(supported=1), truth, observed)
    with pytest.raises(ValueError, match="must be finite"):
        policy_truth_metrics(scores.assign(predicted=np.nan), truth, observed)


OPTIONS = (("tbp", False), ("tbp", True), ("chemo", False), ("adc", False))


@st.composite
def _random_policy(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    n_decisions = draw(st.integers(1, 5))
    value = st.integers(0, 30).map(float)
    table, observed = {}, {}
    for decision in range(n_decisions):
        supported = draw(st.lists(st.booleans(), min_size=4, max_size=4))
        supported[draw(st.integers(0, 3))] = True
        table[decision] = [
            (candidate, local, draw(value), draw(value), 0.0, 30.0, support)
            for (candidate, local), support in zip(OPTIONS, supported, strict=True)
        ]
        observed[decision] = OPTIONS[draw(st.integers(0, 3))]
    return _frames(table, observed)


@settings(max_examples=60, deadline=None)
@given(_random_policy())
def test_policy_value_properties(frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> None:
    scores, truth, observed = frames
    metrics = policy_truth_metrics(scores, truth, observed)
    best = truth.groupby("decision")["true"].max()
    assert metrics["value_oracle"] == pytest.approx(best.mean())
    for key in ("value_model", "value_observed", "value_always_tbp", "value_best_single"):
        assert metrics["value_oracle"] >= metrics[key] - 1e-12, key
    assert metrics["value_best_single"] >= metrics["value_always_tbp"] - 1e-12
    # the recommendation, recomputed row by row: the first supported row with the highest prediction
    chosen = []
    for _, rows in scores.assign(true=truth["true"]).groupby("decision"):
        candidates = [row for row in rows.itertuples() if row.supported]
        chosen.append(max(candidates, key=lambda row: (row.predicted, -row.Index)).true)
    assert metrics["value_model"] == pytest.approx(np.mean(chosen))

    oracle = policy_truth_metrics(scores.assign(predicted=truth["true"], supported=True), truth, observed)
    if metrics["value_oracle"] > metrics["value_observed"]:
        assert oracle["capture"] == pytest.approx(1.0)
        assert metrics["capture"] <= 1.0 + 1e-12
    else:
        assert math.isnan(oracle["capture"])


def test_difference_coverage_counts_supported_options_and_leaves_tbp_out() -> None:
    """Coverage of the differences from TBP, against a hand count (TBP's own 0 in [0, 0] is not a hit)."""
    n, k = 2, len(ALL_OPTIONS)
    true = np.random.default_rng(0).uniform(4.0, 12.0, (n, k))
    offset = np.where(np.arange(k) % 2 == 0, 0.0, 3.0)  # odd options (with local therapy) are off by 3
    predicted = true + offset
    difference = predicted - predicted[:, [BASELINE_INDEX]]
    support = np.ones((n, k), dtype=bool)
    support[0, 2] = False  # an even option, covered, but unsupported: not counted
    summary, lower, upper = {}, {}, {}
    for endpoint in ("pfs", "os"):
        summary[f"{endpoint}_rmst24"] = predicted
        lower[f"{endpoint}_rmst24"], upper[f"{endpoint}_rmst24"] = predicted - 1.0, predicted + 1.0
        summary[f"{endpoint}_rmst24_vs_tbp"] = difference
        lower[f"{endpoint}_rmst24_vs_tbp"] = difference - 1.0
        upper[f"{endpoint}_rmst24_vs_tbp"] = difference + 1.0
    predictions = OptionPredictions(
        grid=np.array([1.0]),
        curves={},
        curve_lower={},
        curve_upper={},
        summary=summary,
        lower=lower,
        upper=upper,
        propensity=np.full((n, k), 1.0 / k),
        support=support,
    )
    test = pd.DataFrame(
        {"patient_key": ["a", "b"], "line_number": [1, 1], "decision_day": [100, 200]}
        | {"pfs_time": [5.0, 8.0], "pfs_event": [True, False]}
    )
    truth = pd.DataFrame(
        {
            "patient_key": np.repeat(["a", "b"], k),
            "line_number": 1,
            "decision_day": np.repeat([100, 200], k),
            "candidate": [o.candidate for o in ALL_OPTIONS] * n,
            "local_therapy": [o.local_therapy for o in ALL_OPTIONS] * n,
            "pfs_scale": 10.0,
            "pfs_rmst24": true.ravel(),
            "os_rmst24": true.ravel(),
        }
    )
    figures = _truth_figures(test, np.array([0, 0]), {"ipw": predictions, "none": predictions}, truth)
    # counted: options 1-15 of both decisions, less decision 0's option 2 -> 29 rows; covered: the even
    # options 2-14 (error 0 <= 1) -> 7 per decision, less decision 0's option 2 -> 13
    assert figures["interval_coverage_90_vs_tbp_rwpfs_rmst24"] == pytest.approx(13 / 29)
    assert figures["naive_interval_coverage_90_vs_tbp_os_rmst24"] == pytest.approx(13 / 29)
    # the values themselves: every supported row is off by 0 or 3 -> 15 of 31 within the +/- 1 interval
    assert figures["interval_coverage_90_rwpfs_rmst24"] == pytest.approx(15 / 31)


def test_half_width_needed_is_the_smallest_that_covers_90_percent() -> None:
    """Five supported rows off by 0-4 months: 3 covers 4 of 5 (80%), 4 covers all; one row has no SD."""
    options = [("tbp", False), ("tbp", True), ("chemo", False), ("adc", False), ("et_mono", False)]
    rows = [(1, c, lt, 10.0, 10.0 + e, 9.0 + e, 11.0 + e, True) for e, (c, lt) in enumerate(options)]
    columns = ["decision", "candidate", "local_therapy", "true", "predicted", "lower", "upper", "supported"]
    long = pd.DataFrame(rows, columns=columns)
    taken = pd.DataFrame([(1, "tbp", False)], columns=["decision", "candidate", "local_therapy"])
    metrics = policy_truth_metrics(long.drop(columns="true"), long[[*columns[:3], "true"]], taken)
    assert metrics["interval_half_width_needed_90"] == 4.0  # a linear 90th percentile would say 3.6
    assert metrics["interval_error_mean"] == pytest.approx(2.0)
    assert metrics["interval_error_sd"] == pytest.approx(math.sqrt(10 / 4))
    alone = long.assign(supported=[True, False, False, False, False])
    single = policy_truth_metrics(alone.drop(columns="true"), alone[[*columns[:3], "true"]], taken)
    assert math.isnan(single["interval_error_sd"])
    assert single["interval_error_mean"] == 0.0
    assert single["interval_half_width_needed_90"] == 0.0
