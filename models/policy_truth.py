"""The value of a recommendation policy on simulated data, where every option's true outcome is known.

:func:`policy_truth_metrics` compares the policy "recommend the supported option with the highest
prediction" with the options actually taken, the oracle and fixed policies, and adds ranking and
interval diagnostics (coverage, and the error the intervals would need to cover).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

#: The key of one row of the policy tables: a decision and one of its options.
POLICY_KEYS = ("decision", "candidate", "local_therapy")
#: An option (candidate with or without local therapy), the same across decisions.
OPTION = ("candidate", "local_therapy")
#: Internal name of the true value column once merged.
_TRUE = "_true_value"


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
        - ``interval_half_width_needed_90``: the smallest half-width ``h`` such that
          ``|predicted - true| <= h`` for at least 90% of supported rows (the inverted-CDF 90th
          percentile of the absolute error): what an interval ``predicted +/- h`` would need to cover
          90% of them. Compare with half of ``interval_width_mean`` (the intervals are clipped, so that
          is only roughly their half-width).

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
        "interval_half_width_needed_90": float(np.quantile(np.abs(error), 0.9, method="inverted_cdf")),
    }


def truth_precision(true_values: np.ndarray, standard_error: np.ndarray | None) -> dict[str, float]:
    """How precise a simulated truth is against the differences between options that it has to show.

    With independent errors across options, the expected variance of a decision's true values across
    its options is the variance of the noiseless values plus the mean squared error, so the three
    figures are root mean squares and ``truth_signal_spread**2 = truth_spread**2 -
    truth_standard_error**2`` (floored at 0).

    Parameters
    ----------
    true_values : ndarray of shape (n_decisions, n_options)
        Each decision's true value under every option.
    standard_error : ndarray of shape (n_decisions, n_options), optional
        Monte Carlo standard error of each true value; None for a closed form (error 0).

    Returns
    -------
    dict of str to float
        - ``truth_spread``: root mean over decisions of the variance (``ddof=1``) of the true values
          across the decision's options (nan with a single option), noise included;
        - ``truth_standard_error``: root mean square of the standard errors (0 for a closed form, nan
          when an error is missing);
        - ``truth_signal_spread``: the spread without the noise, ``sqrt(max(spread**2 - error**2, 0))``.
          A truth whose error approaches its spread ranks options by noise: the oracle looks better
          than it is and rank correlations shrink.

    Raises
    ------
    ValueError
        If the arrays are not two-dimensional of one shape, a true value is not finite, or an error is
        negative or infinite.
    """
    values = np.asarray(true_values, dtype=float)
    if values.ndim != 2 or values.shape[0] == 0:
        raise ValueError(f"true_values must be (decisions, options) with a decision, found {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("true_values must be finite")
    spread = float(np.sqrt(values.var(axis=1, ddof=1).mean())) if values.shape[1] > 1 else float("nan")
    if standard_error is None:
        error = 0.0
    else:
        errors = np.asarray(standard_error, dtype=float)
        if errors.shape != values.shape:
            raise ValueError(f"standard_error has shape {errors.shape}, true_values {values.shape}")
        if np.isinf(errors).any() or (errors < 0).any():
            raise ValueError("standard_error must be non-negative and finite (nan where unknown)")
        error = float(np.sqrt(np.mean(errors**2)))
    signal = float(np.sqrt(max(spread**2 - error**2, 0.0))) if np.isfinite(spread + error) else float("nan")
    return {"truth_spread": spread, "truth_standard_error": error, "truth_signal_spread": signal}


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
