"""Held-out evaluation of survival models on censored outcomes.

- :func:`survival_metrics`: discrimination (Harrell's and Uno's concordance, time-dependent AUC),
  overall accuracy (integrated Brier score) and calibration (integrated calibration index over groups of
  predicted survival) of one fitted survival model on a test set, using scikit-survival's estimators.
- :func:`calibration_table`: mean predicted survival against the Kaplan-Meier estimate, with its 95%
  confidence interval, within groups of predicted survival.

Times are months. Survival curves are right-continuous step functions on a grid of positive, increasing
times, with S(t) = 1 before the first grid time (see :func:`linewise.models.survival.time_grid`). The value of
recommendation policies against simulated truth is in :mod:`linewise.models.policy_truth`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sksurv.metrics import (
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
    integrated_brier_score,
)
from sksurv.nonparametric import kaplan_meier_estimator

from linewise.models.target import check_target, make_target

#: Tolerance when matching a time to the grid (the grid is rounded to 10 decimals).
_GRID_TOLERANCE = 1e-9


def survival_metrics(
    y_train: np.ndarray,
    y_test: np.ndarray,
    risk: np.ndarray,
    survival: np.ndarray,
    grid: np.ndarray,
    *,
    auc_times: Sequence[float] = (6.0, 12.0, 24.0),
    horizon: float = 24.0,
    calibration_time: float = 12.0,
    n_groups: int = 10,
) -> dict[str, float]:
    """Held-out discrimination, accuracy and calibration of one fitted survival model.

    Parameters
    ----------
    y_train : structured array
        Training target (fields ``event``, ``time``); only used to estimate the censoring distribution
        (Kaplan-Meier of the censoring times) for the inverse-probability-of-censoring weights.
    y_test : structured array
        Test target, the rows that ``risk`` and ``survival`` predict.
    risk : array of shape (n,)
        Risk score, higher meaning shorter survival.
    survival : array of shape (n, len(grid))
        Predicted survival probabilities at the grid times.
    grid : array of shape (m,)
        Positive, strictly increasing times (months) of the curves.
    auc_times : sequence of float
        Times of the cumulative/dynamic AUC; each within the test follow-up ``[min, max)``.
    horizon : float
        Truncation time of Uno's concordance (``tau``) and last time of the integrated Brier score.
    calibration_time : float
        Time of the calibration groups; within the test follow-up ``[min, max)``.
    n_groups : int
        Number of groups of predicted survival (quantile groups; see :func:`calibration_table`).

    Returns
    -------
    dict of str to float
        - ``harrell_c``: Harrell's concordance index (``concordance_index_censored``) over all test rows.
        - ``uno_c``: Uno's IPCW concordance (``concordance_index_ipcw``) truncated at ``tau=horizon``.
        - ``ibs``: integrated Brier score (``integrated_brier_score``, trapezoidal rule divided by the
          time span) over the grid times ``t`` with ``min(test time) <= t < max(test time)`` and
          ``t <= horizon`` ; at least two such times are needed.
        - ``td_auc_<t>``: cumulative/dynamic AUC of ``risk`` at each ``t`` in ``auc_times``
          (``cumulative_dynamic_auc``), the key formatted with ``{t:g}`` (``td_auc_12`` for 12.0).
        - ``calibration_<t>_ici``: with ``t = calibration_time`` formatted with ``{t:g}``: the
          size-weighted mean absolute difference between the mean predicted S(t) and the Kaplan-Meier
          S(t) within groups of predicted S(t) (:func:`calibration_table`).

    Raises
    ------
    ValueError
        If shapes disagree, a time is outside the test follow-up, fewer than two grid times are available
        for the integrated Brier score, or the training follow-up does not cover the test follow-up used
        by the weights.

    Notes
    -----
    The censoring distribution is estimated on ``y_train``, so the weighted metrics (``uno_c``, ``ibs``,
    ``td_auc_*``) need the training follow-up to reach the test follow-up. To avoid failing on test times
    that merely extend past the evaluation window, the test target given to those three estimators is
    censored just after ``max(horizon, max(auc_times))``: events after that time become censored there.
    None of the three depends on what happens after that time, so their values are unchanged; only the
    test follow-up up to that time must lie within the training follow-up. ``harrell_c`` and the
    calibration use the test target as given.
    """
    train_event, train_time = check_target(y_train)
    test_event, test_time = check_target(y_test)
    risk, survival, grid = _check_predictions(risk, survival, grid, len(test_time))
    times = tuple(float(t) for t in auc_times)
    if not horizon > 0:
        raise ValueError(f"horizon must be positive, found {horizon}")
    _check_within_follow_up((*times, calibration_time), test_time)
    weighted_test = _censored_after(test_event, test_time, max((horizon, *times)), train_time)
    weighted_train = make_target(train_time, train_event)

    ibs_times = _brier_times(grid, test_time, horizon)
    on_ibs_times = np.isin(grid, ibs_times)
    metrics = {
        "harrell_c": float(concordance_index_censored(test_event, test_time, risk)[0]),
        "uno_c": float(concordance_index_ipcw(weighted_train, weighted_test, risk, tau=horizon)[0]),
        "ibs": float(
            integrated_brier_score(weighted_train, weighted_test, survival[:, on_ibs_times], ibs_times)
        ),
    }
    for time in times:
        auc, _ = cumulative_dynamic_auc(weighted_train, weighted_test, risk, [time])
        metrics[f"td_auc_{time:g}"] = float(auc[0])
    table = calibration_table(
        make_target(test_time, test_event),
        survival_at(survival, grid, calibration_time),
        calibration_time,
        n_groups,
    )
    metrics[f"calibration_{calibration_time:g}_ici"] = float(
        np.average(np.abs(table["predicted"] - table["observed"]), weights=table["n"])
    )
    return metrics


def _brier_times(grid: np.ndarray, test_time: np.ndarray, horizon: float) -> np.ndarray:
    """Grid times within the test follow-up ``[min, max)`` and <= horizon; at least two are needed."""
    grid = np.asarray(grid, dtype=float)
    inside = (grid >= test_time.min()) & (grid < test_time.max()) & (grid <= horizon)
    if inside.sum() < 2:
        raise ValueError(
            f"the integrated Brier score needs at least two grid times within the test follow-up "
            f"[{test_time.min():g}, {test_time.max():g}) and <= horizon {horizon:g}, found {inside.sum()}"
        )
    return grid[inside]


def survival_at(survival: np.ndarray, grid: np.ndarray, time: float) -> np.ndarray:
    """Evaluate step survival curves at ``time``: the value at the last grid time <= ``time``, else 1.

    Parameters
    ----------
    survival : array of shape (n, len(grid))
        Survival probabilities at the grid times.
    grid : array of shape (m,)
        Increasing grid times.
    time : float
        Where to evaluate.

    Returns
    -------
    ndarray of shape (n,)
    """
    survival, grid = np.asarray(survival, dtype=float), np.asarray(grid, dtype=float)
    index = int(np.searchsorted(grid, time + _GRID_TOLERANCE, side="right")) - 1
    return np.ones(survival.shape[0]) if index < 0 else survival[:, index].copy()


def calibration_table(
    y_test: np.ndarray, survival_at_time: np.ndarray, time: float, n_groups: int = 10
) -> pd.DataFrame:
    """Mean predicted survival against Kaplan-Meier survival within groups of predicted survival.

    Rows are grouped by the quantiles of ``survival_at_time``: with edges ``q_1 < ... < q_{k-1}``, the
    distinct inner quantiles at ``1/n_groups, ..., (n_groups-1)/n_groups`` (numpy's default linear
    interpolation), group 1 holds predictions ``<= q_1``, group 2 those in ``(q_1, q_2]``, and so on.
    Equal predictions always share a group, so ties (or fewer rows than groups) can leave fewer groups;
    empty groups are dropped and the rest numbered 1, 2, ... by increasing predicted survival.

    Parameters
    ----------
    y_test : structured array
        Test target (fields ``event``, ``time``).
    survival_at_time : array of shape (n,)
        Predicted S(time) of each test row.
    time : float
        The time (months), within the test follow-up ``[min, max)``.
    n_groups : int
        Number of quantile groups asked for.

    Returns
    -------
    pandas.DataFrame
        One row per group with columns ``group`` (int), ``n`` (int), ``predicted`` (mean predicted S),
        ``observed`` (Kaplan-Meier S(time) of the group, ``kaplan_meier_estimator`` of scikit-survival) and
        ``observed_lower``, ``observed_upper`` (its pointwise 95% log-log confidence interval, Greenwood
        variance). Before the group's first follow-up time all three are 1. After the group's last
        follow-up time the estimate stays at its last value (0 if the last time is an event).
    """
    event, follow_up = check_target(y_test)
    predicted = np.asarray(survival_at_time, dtype=float)
    if predicted.shape != follow_up.shape:
        raise ValueError(f"survival_at_time must have shape {follow_up.shape}, found {predicted.shape}")
    _check_probabilities(predicted, "survival_at_time")
    if not (isinstance(n_groups, int | np.integer) and n_groups >= 1):
        raise ValueError(f"n_groups must be a positive integer, found {n_groups!r}")
    _check_within_follow_up((time,), follow_up)

    groups = _quantile_groups(predicted, int(n_groups))
    rows = []
    for group in range(1, groups.max() + 1):
        members = groups == group
        observed, lower, upper = _kaplan_meier_at(event[members], follow_up[members], time)
        rows.append(
            {
                "group": group,
                "n": int(members.sum()),
                "predicted": float(predicted[members].mean()),
                "observed": observed,
                "observed_lower": lower,
                "observed_upper": upper,
            }
        )
    return pd.DataFrame(rows)


def _quantile_groups(values: np.ndarray, n_groups: int) -> np.ndarray:
    """Group numbers 1, 2, ... of ``values`` by quantile intervals (right-closed), empty groups dropped."""
    inner_edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, n_groups + 1)[1:-1]))
    interval = np.searchsorted(inner_edges, values, side="left")
    _, numbered = np.unique(interval, return_inverse=True)
    return np.asarray(numbered, dtype=int) + 1


def _kaplan_meier_at(event: np.ndarray, time: np.ndarray, at: float) -> tuple[float, float, float]:
    """Kaplan-Meier S(at) with its 95% log-log confidence interval."""
    times, probability, interval = kaplan_meier_estimator(event, time, conf_type="log-log")
    index = int(np.searchsorted(times, at, side="right")) - 1
    if index < 0:
        return 1.0, 1.0, 1.0
    return float(probability[index]), float(interval[0, index]), float(interval[1, index])


def _check_predictions(
    risk: np.ndarray, survival: np.ndarray, grid: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate the shapes and values of the predictions; return them as float arrays."""
    risk = np.asarray(risk, dtype=float)
    survival = np.asarray(survival, dtype=float)
    grid = np.asarray(grid, dtype=float)
    if grid.ndim != 1 or grid.size == 0 or np.any(grid <= 0) or np.any(np.diff(grid) <= 0):
        raise ValueError("grid must be a non-empty 1-d array of positive, strictly increasing times")
    if risk.shape != (n,):
        raise ValueError(f"risk must have shape ({n},) (one per test row), found {risk.shape}")
    if survival.shape != (n, grid.size):
        raise ValueError(
            f"survival must have shape ({n}, {grid.size}) (test rows, grid), found {survival.shape}"
        )
    if not np.all(np.isfinite(risk)):
        raise ValueError("risk must be finite")
    _check_probabilities(survival, "survival")
    return risk, survival, grid


def _check_probabilities(values: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(values)) or np.any(values < 0) or np.any(values > 1):
        raise ValueError(f"{name} must hold probabilities in [0, 1]")


def _check_within_follow_up(times: Sequence[float], test_time: np.ndarray) -> None:
    """Every time must lie in the test follow-up ``[min, max)``, scikit-survival's rule."""
    first, last = test_time.min(), test_time.max()
    outside = [time for time in times if not first <= time < last]
    if outside:
        raise ValueError(
            f"times {outside} are outside the test follow-up [{first:g}, {last:g}): "
            "every evaluation time must be at least the first and before the last test time"
        )


def _censored_after(event: np.ndarray, time: np.ndarray, end: float, train_time: np.ndarray) -> np.ndarray:
    """Censor the test target just after ``end``; check it lies within the training follow-up."""
    cap = float(np.nextafter(end, np.inf))
    capped_time = np.minimum(time, cap)
    if capped_time.max() > train_time.max():
        raise ValueError(
            f"the training follow-up (up to {train_time.max():g} months) must cover the test follow-up "
            f"up to {capped_time.max():g} months: the censoring distribution is estimated on y_train"
        )
    return make_target(capped_time, event & (time <= end))
