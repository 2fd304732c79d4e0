"""Survival metrics, checked against lifelines, scikit-survival, closed forms and tables computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import concordance_index
from sksurv.metrics import concordance_index_ipcw, cumulative_dynamic_auc, integrated_brier_score

from linewise.models.evaluation import calibration_table, survival_at, survival_metrics
from linewise.models.survival import time_grid
from linewise.models.target import make_target

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
    with pytest.raises(ValueError, match="censoring survival function is zero"):  # scikit-survival refuses
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
