"""Held-out evaluation: survival models on censored outcomes, and recommendation policies against truth.

- :func:`survival_metrics`: discrimination (Harrell's and Uno's concordance, time-dependent AUC),
  overall accuracy (integrated Brier score) and calibration (integrated calibration index over groups of
  predicted survival) of one fitted survival model on a test set, using scikit-survival's estimators.
- :func:`calibration_table`: mean predicted survival against the Kaplan-Meier estimate, with its 95%
  confidence interval, within groups of predicted survival.
- :func:`policy_truth_metrics`: the value of a recommendation policy on simulated data where every
  decision's true outcome under every option is known, against the options actually taken, the oracle
  and fixed policies, plus ranking and interval-coverage diagnostics.

Times are months. Survival curves are right-continuous step functions on a grid of positive, increasing
times, with S(t) = 1 before the first grid time (see :func:`models.survival.time_grid`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sksurv.metrics import (
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
    integrated_brier_score,
)
from sksurv.nonparametric import kaplan_meier_estimator

from models.target import check_target, make_target

#: The key of one row of the policy tables: a decision and one of its options.
POLICY_KEYS = ("decision", "candidate", "local_therapy")
#: An option (candidate with or without local therapy), the same across decisions.
OPTION = ("candidate", "local_therapy")
#: Tolerance when matching a time to the grid (the grid is rounded to 10 decimals).
_GRID_TOLERANCE = 1e-9
#: Internal name of the true value column once merged.
_TRUE = "_true_value"


# ----------------------------------------------------------------------------------------------------------
# Survival metrics
# ----------------------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------------------
# Policy metrics against ground truth
# ----------------------------------------------------------------------------------------------------------


def policy_truth_metrics(
    scores: pd.DataFrame,
    truth: pd.DataFrame,
    observed: pd.DataFrame,
    *,
    value_column: str = "true",
    baseline: tuple[str, bool] = ("tbp", False),
    min_difference: float = 1.0,
) -> dict[str, float | str]:
    """How good a recommendation policy is against known potential outcomes (simulated data).

    The policy recommends, for each decision, the supported option with the highest ``predicted``
    value; ties go to the first such row in the order of ``scores``.

    Parameters
    ----------
    scores : pandas.DataFrame
        One row per (decision, candidate, local_therapy) with columns ``decision``, ``candidate`` (str),
        ``local_therapy`` (bool), ``predicted`` (predicted restricted mean, months), ``lower`` and
        ``upper`` (90% interval) and ``supported`` (bool: enough evidence to recommend the option).
    truth : pandas.DataFrame
        The same keys with the true restricted mean in column ``value_column``.
    observed : pandas.DataFrame
        One row per decision with ``decision``, ``candidate``, ``local_therapy``: the option taken.
    value_column : str
        Column of ``truth`` holding the true value.
    baseline : (str, bool)
        The baseline option (candidate, local_therapy): the "always" policy and the reference of
        ``rank_correlation``; its candidate is the "TBP" side of ``tbp_switch_agreement``.
    min_difference : float
        Decisions whose true switch-minus-TBP difference is at most this (months, absolute) are left
        out of ``tbp_switch_agreement``.

    Returns
    -------
    dict of str to float or str
        Values in months unless said otherwise; every value is a float except ``best_single_candidate``.

        - ``n_decisions``.
        - ``value_model``, ``value_observed``, ``value_oracle``, ``value_always_tbp``: mean true value of
          the recommended options, of the options taken, of each decision's best option, and of the
          baseline option.
        - ``value_best_single``: the highest mean true value of one fixed option given to everyone, among
          the options present in every decision (ties: first in the order of ``scores``), with
          ``best_single_candidate`` (str) and ``best_single_local_therapy`` (1.0 or 0.0) naming it.
        - ``capture``: ``(value_model - value_observed) / (value_oracle - value_observed)``, the share of
          the achievable gain over current practice that the model achieves (negative when it does worse
          than current practice); nan when the observed options are already optimal (denominator 0).
        - ``tbp_switch_agreement``, ``tbp_switch_n``: among decisions where the best true value over the
          other candidates differs from the best true value over the baseline candidate by more than
          ``min_difference`` and both sides have a supported option, the share where the predicted
          difference (best supported ``predicted`` of each side) has the same sign (nan when none).
        - ``rank_correlation``: Spearman correlation, pooled over every (decision, non-baseline option)
          row, of ``predicted`` minus the decision's baseline ``predicted`` against the same for the
          true values.
        - ``rank_correlation_within``: mean over decisions of the Spearman correlation of ``predicted``
          and true values across the decision's options; decisions where either is constant are
          skipped (nan when all are).
        - ``interval_coverage_90``: share of supported rows with ``lower <= true <= upper``;
          ``interval_coverage_90_all``: the same over all rows; ``interval_width_mean``: mean
          ``upper - lower`` over supported rows.
        - ``interval_error_mean`` and ``interval_error_sd``: mean and standard deviation (``ddof=1``;
          nan for one row) of ``predicted - true`` over supported rows.
        - ``interval_half_width_needed_90``: the 90th percentile of ``|predicted - true|`` over
          supported rows, the half-width that an interval centred on ``predicted`` would need to cover
          90% of them (compare with half of ``interval_width_mean``).

    Raises
    ------
    ValueError
        If a column is missing, keys are duplicated, ``scores`` and ``truth`` hold different keys, an
        observed option or the baseline option is missing from a decision, a decision has no supported
        option, or values are not finite.
    """
    if not min_difference >= 0:
        raise ValueError(f"min_difference must be >= 0, found {min_difference}")
    table = _policy_table(scores, truth, value_column)
    _check_policy_inputs(table, observed, baseline)
    decisions = pd.Index(table["decision"].unique(), name="decision")
    is_baseline = (table["candidate"] == baseline[0]) & (table["local_therapy"] == baseline[1])

    taken = table.merge(observed[list(POLICY_KEYS)], on=list(POLICY_KEYS))
    value_model = _mean_true_value(table.loc[_recommended_rows(table)], decisions)
    value_observed = _mean_true_value(taken, decisions)
    value_oracle = float(table.groupby("decision", sort=False)[_TRUE].max().reindex(decisions).mean())
    best_option, value_best_single = _best_single_option(table, len(decisions))
    agreement, n_compared = _tbp_switch_agreement(table, baseline[0], min_difference)
    supported = table[table["supported"]]
    error = supported["predicted"].to_numpy(float) - supported[_TRUE].to_numpy(float)
    return {
        "n_decisions": float(len(decisions)),
        "value_model": value_model,
        "value_observed": value_observed,
        "value_oracle": value_oracle,
        "value_always_tbp": _mean_true_value(table[is_baseline], decisions),
        "value_best_single": value_best_single,
        "best_single_candidate": best_option[0],
        "best_single_local_therapy": float(best_option[1]),
        "capture": _capture(value_model, value_observed, value_oracle),
        "tbp_switch_agreement": agreement,
        "tbp_switch_n": float(n_compared),
        "rank_correlation": _pooled_rank_correlation(table, is_baseline),
        "rank_correlation_within": _within_rank_correlation(table),
        "interval_coverage_90": float(_covered(supported).mean()),
        "interval_coverage_90_all": float(_covered(table).mean()),
        "interval_width_mean": float((supported["upper"] - supported["lower"]).mean()),
        "interval_error_mean": float(error.mean()),
        "interval_error_sd": float(error.std(ddof=1)) if len(error) > 1 else float("nan"),
        "interval_half_width_needed_90": float(np.quantile(np.abs(error), 0.9)),
    }


def _policy_table(scores: pd.DataFrame, truth: pd.DataFrame, value_column: str) -> pd.DataFrame:
    """Scores joined with the true values, one row per key in the order of ``scores``; validated."""
    _require_columns(scores, (*POLICY_KEYS, "predicted", "lower", "upper", "supported"), "scores")
    _require_columns(truth, (*POLICY_KEYS, value_column), "truth")
    if scores.empty:
        raise ValueError("scores is empty")
    for name, frame in (("scores", scores), ("truth", truth)):
        duplicated = int(frame.duplicated(list(POLICY_KEYS)).sum())
        if duplicated:
            raise ValueError(f"{name} has {duplicated} duplicated (decision, candidate, local_therapy) rows")
    for column in ("local_therapy", "supported"):
        if not pd.api.types.is_bool_dtype(scores[column]):
            raise ValueError(f"scores[{column!r}] must be boolean, found {scores[column].dtype}")
    keys = scores[list(POLICY_KEYS)].merge(truth[list(POLICY_KEYS)], how="outer", indicator=True)
    only_scores, only_truth = (
        int((keys["_merge"] == "left_only").sum()),
        int((keys["_merge"] == "right_only").sum()),
    )
    if only_scores or only_truth:
        raise ValueError(
            f"scores and truth must hold the same (decision, candidate, local_therapy) keys: "
            f"{only_scores} scores keys missing from truth, {only_truth} truth keys missing from scores"
        )
    true_values = truth[list(POLICY_KEYS)].assign(**{_TRUE: truth[value_column]})
    columns = [*POLICY_KEYS, "predicted", "lower", "upper", "supported"]
    table = scores[columns].reset_index(drop=True).merge(true_values, on=list(POLICY_KEYS), how="left")
    numbers = table[["predicted", "lower", "upper", _TRUE]].to_numpy(dtype=float)
    if not np.all(np.isfinite(numbers)):
        raise ValueError(f"predicted, lower, upper and truth[{value_column!r}] must be finite")
    return table


def _check_policy_inputs(table: pd.DataFrame, observed: pd.DataFrame, baseline: tuple[str, bool]) -> None:
    """Observed options and the baseline exist for every decision, each decision has a supported option."""
    _require_columns(observed, POLICY_KEYS, "observed")
    decisions = set(table["decision"])
    if observed["decision"].duplicated().any():
        raise ValueError("observed must have one row per decision, found duplicated decisions")
    if set(observed["decision"]) != decisions:
        missing, extra = (
            len(decisions - set(observed["decision"])),
            len(set(observed["decision"]) - decisions),
        )
        raise ValueError(f"observed must cover the decisions of scores: {missing} missing, {extra} unknown")
    found = observed[list(POLICY_KEYS)].merge(table[list(POLICY_KEYS)], how="left", indicator=True)
    absent = int((found["_merge"] == "left_only").sum())
    if absent:
        raise ValueError(f"{absent} observed options are not among the options of truth")
    is_baseline = (table["candidate"] == baseline[0]) & (table["local_therapy"] == baseline[1])
    without_baseline = len(decisions - set(table.loc[is_baseline, "decision"]))
    if without_baseline:
        raise ValueError(f"{without_baseline} decisions lack the baseline option {baseline}")
    without_support = len(decisions - set(table.loc[table["supported"], "decision"]))
    if without_support:
        raise ValueError(f"{without_support} decisions have no supported option to recommend")


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}")


def _recommended_rows(table: pd.DataFrame) -> pd.Index:
    """Row labels of the recommended option per decision: supported, highest predicted, first on ties."""
    supported = table[table["supported"]]
    return pd.Index(supported.groupby("decision", sort=False)["predicted"].idxmax().to_numpy())


def _mean_true_value(rows: pd.DataFrame, decisions: pd.Index) -> float:
    """Mean true value of one row per decision, summed in the order of ``decisions``."""
    return float(rows.set_index("decision")[_TRUE].reindex(decisions).mean())


def _best_single_option(table: pd.DataFrame, n_decisions: int) -> tuple[tuple[str, bool], float]:
    """Find the fixed option (present in every decision) with the highest mean true value."""
    by_option = table.groupby(list(OPTION), sort=False)[_TRUE].agg(["mean", "size"])
    everywhere = by_option[by_option["size"] == n_decisions]
    best = everywhere["mean"].idxmax()
    return (str(best[0]), bool(best[1])), float(everywhere.loc[best, "mean"])


def _capture(value_model: float, value_observed: float, value_oracle: float) -> float:
    """Share of the oracle's gain over the observed options achieved by the model (nan if no gain)."""
    gain = value_oracle - value_observed
    return float("nan") if gain <= 0 else (value_model - value_observed) / gain


def _tbp_switch_agreement(table: pd.DataFrame, tbp: str, min_difference: float) -> tuple[float, int]:
    """Share of clear-cut decisions where the predicted TBP-vs-switch direction matches the truth."""
    is_tbp = table["candidate"] == tbp
    supported = table["supported"]
    sides = pd.DataFrame(
        {
            "true_tbp": _best_by_decision(table[is_tbp], _TRUE),
            "true_switch": _best_by_decision(table[~is_tbp], _TRUE),
            "predicted_tbp": _best_by_decision(table[is_tbp & supported], "predicted"),
            "predicted_switch": _best_by_decision(table[~is_tbp & supported], "predicted"),
        }
    )
    true_difference = sides["true_switch"] - sides["true_tbp"]
    predicted_difference = sides["predicted_switch"] - sides["predicted_tbp"]
    compared = (true_difference.abs() > min_difference) & predicted_difference.notna()
    if not compared.any():
        return float("nan"), 0
    agree = np.sign(predicted_difference[compared]) == np.sign(true_difference[compared])
    return float(agree.mean()), int(compared.sum())


def _best_by_decision(rows: pd.DataFrame, column: str) -> pd.Series:
    return rows.groupby("decision")[column].max()


def _pooled_rank_correlation(table: pd.DataFrame, is_baseline: pd.Series) -> float:
    """Spearman correlation of predicted and true gains over the baseline, pooled over decisions."""
    reference = table[is_baseline].set_index("decision")[["predicted", _TRUE]]
    others = table[~is_baseline]
    own_reference = reference.loc[others["decision"]].to_numpy()
    predicted_gain = others["predicted"].to_numpy() - own_reference[:, 0]
    true_gain = others[_TRUE].to_numpy() - own_reference[:, 1]
    return _spearman(predicted_gain, true_gain)


def _within_rank_correlation(table: pd.DataFrame) -> float:
    """Mean over decisions of the Spearman correlation of predicted and true values of its options."""
    correlations = [
        _spearman(rows["predicted"].to_numpy(), rows[_TRUE].to_numpy())
        for _, rows in table.groupby("decision", sort=False)
    ]
    defined = [value for value in correlations if not np.isnan(value)]
    return float(np.mean(defined)) if defined else float("nan")


def _spearman(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman correlation; nan when fewer than two values or either side is constant."""
    if len(first) < 2 or np.ptp(first) == 0 or np.ptp(second) == 0:
        return float("nan")
    return float(spearmanr(first, second).statistic)


def _covered(rows: pd.DataFrame) -> pd.Series:
    return (rows["lower"] <= rows[_TRUE]) & (rows[_TRUE] <= rows["upper"])
