"""One decision's predictions under every option, their bootstrap intervals, and their long table.

:class:`OptionPredictions` holds what :meth:`linewise.models.recommender.TreatmentRecommender.predict_options`
returns; :func:`normal_interval` and :func:`order_statistic_interval` are its two interval rules, and
:func:`options_table` lays it out as one row per decision and option, ranked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from linewise.models.candidates import OPTIONS
from linewise.models.sensitivity import difference_e_values
from linewise.models.summaries import UNRANKED


@dataclass(frozen=True)
class OptionPredictions:
    """Predictions for ``n`` decisions and the 16 options.

    ``curves[endpoint]`` holds survival on :attr:`grid`, shape (n, 16, grid); ``summary`` maps
    ``"{endpoint}_{summary}"`` to the point estimate (n, 16); ``lower`` and ``upper`` the bootstrap
    interval of the same; ``curve_lower``/``curve_upper`` the pointwise interval of the curves;
    ``probability_best`` the share of bootstrap replicates in which each option has the highest rwPFS
    RMST24 among the supported ones (0 or 1 without replicates); ``first_vs_second`` the contrast of
    each decision's two best supported options (:func:`first_versus_second`).
    """

    grid: np.ndarray
    curves: dict[str, np.ndarray]
    curve_lower: dict[str, np.ndarray]
    curve_upper: dict[str, np.ndarray]
    summary: dict[str, np.ndarray]
    lower: dict[str, np.ndarray]
    upper: dict[str, np.ndarray]
    propensity: np.ndarray
    support: np.ndarray
    probability_best: np.ndarray
    first_vs_second: dict[str, np.ndarray]

    def decision(self, i: int) -> OptionPredictions:
        """Return the predictions of decision ``i`` alone (shape (1, ...) throughout)."""
        pick = slice(i, i + 1)
        return OptionPredictions(
            grid=self.grid,
            curves={key: value[pick] for key, value in self.curves.items()},
            curve_lower={key: value[pick] for key, value in self.curve_lower.items()},
            curve_upper={key: value[pick] for key, value in self.curve_upper.items()},
            summary={key: value[pick] for key, value in self.summary.items()},
            lower={key: value[pick] for key, value in self.lower.items()},
            upper={key: value[pick] for key, value in self.upper.items()},
            propensity=self.propensity[pick],
            support=self.support[pick],
            probability_best=self.probability_best[pick],
            first_vs_second={key: value[pick] for key, value in self.first_vs_second.items()},
        )


def first_versus_second(
    point: np.ndarray, replicates: np.ndarray, support: np.ndarray, z: float, outcome_sd: float
) -> dict[str, np.ndarray]:
    """Contrast each decision's best and second-best supported options, with its E-values.

    Parameters
    ----------
    point : ndarray of shape (n, k)
        The ranked quantity (rwPFS RMST24).
    replicates : ndarray of shape (R, n, k)
        Its bootstrap replicates.
    support : ndarray of bool, shape (n, k)
    z : float
        Normal quantile of the interval's coverage.
    outcome_sd : float
        Standard deviation of the restricted rwPFS time in the training decisions.

    Returns
    -------
    dict of str to ndarray of shape (n,)
        ``first`` and ``second`` (option indices, -1 when fewer than two options are supported),
        ``difference`` (first minus second, months) with ``lower`` and ``upper`` (normal bootstrap
        interval of the difference), ``e_value`` and ``e_value_interval``
        (:func:`linewise.models.sensitivity.difference_e_values`); NaN without a second option, and
        the interval and its E-value NaN without two replicates (no spread to measure), and the E-values
        NaN when ``outcome_sd`` is not positive (nobody progressed before 24 months).
    """
    n = len(point)
    score = np.where(support, point, -np.inf)
    order = np.argsort(-score, axis=1, kind="stable")
    rows = np.arange(n)
    first, second = order[:, 0], order[:, 1]
    both = support[rows, first] & support[rows, second]
    difference = point[rows, first] - point[rows, second]
    spread = replicates[:, rows, first] - replicates[:, rows, second]
    lower, upper = normal_interval(difference, spread, z)
    if len(replicates) < 2:
        lower, upper = np.full(n, np.nan), np.full(n, np.nan)
    if np.isfinite(outcome_sd) and outcome_sd > 0:
        bounds = (np.nan_to_num(lower, nan=0.0), np.nan_to_num(upper, nan=0.0))
        e_point, e_interval = difference_e_values(difference, *bounds, outcome_sd)
    else:
        e_point, e_interval = np.full(n, np.nan), np.full(n, np.nan)
    missing = np.where(both, 1.0, np.nan)
    return {
        "first": np.where(support[rows, first], first, -1),
        "second": np.where(both, second, -1),
        "difference": difference * missing,
        "lower": lower * missing,
        "upper": upper * missing,
        "e_value": e_point * missing,
        "e_value_interval": e_interval * missing * np.where(np.isnan(lower), np.nan, 1.0),
    }


def normal_interval(
    point: np.ndarray, replicates: np.ndarray, z: float, low: float = -np.inf, high: float = np.inf
) -> tuple[np.ndarray, np.ndarray]:
    """Return the normal bootstrap interval ``point +/- z * SD(replicates)``, clipped to ``[low, high]``.

    Centred on the full-data estimate, so it always contains it: the replicates see about 63% of the
    patients each and sit shifted from the estimate, so their percentiles can exclude it.

    Parameters
    ----------
    point : ndarray
        The full-data estimate.
    replicates : ndarray of shape (B, *point.shape)
        The bootstrap refits' estimates; with fewer than two, the interval has no width.
    z : float
        Normal quantile of the coverage (1.645 for 90%).
    low, high : float
        Range of the quantity (``[0, 1]`` for survival, ``[0, horizon]`` for a restricted mean).

    Returns
    -------
    lower, upper : ndarray
    """
    half = z * replicates.std(axis=0, ddof=1) if len(replicates) > 1 else np.zeros_like(point)
    return np.clip(point - half, low, high), np.clip(point + half, low, high)


def order_statistic_interval(
    point: np.ndarray, replicates: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Interval from the replicates' ``alpha`` and ``1 - alpha`` order statistics, widened to ``point``.

    For medians, which are infinite when survival stays above one half to the horizon, where a standard
    deviation is undefined.

    Parameters
    ----------
    point : ndarray
        The full-data estimate (may be infinite).
    replicates : ndarray of shape (B, *point.shape)
        The bootstrap refits' estimates.
    alpha : float
        Tail probability on each side (0.05 for a 90% interval).

    Returns
    -------
    lower, upper : ndarray
    """
    lower = np.quantile(replicates, alpha, axis=0, method="lower")
    upper = np.quantile(replicates, 1.0 - alpha, axis=0, method="higher")
    return np.minimum(lower, point), np.maximum(upper, point)


def options_table(keys: pd.DataFrame, predictions: OptionPredictions) -> pd.DataFrame:
    """Lay :class:`OptionPredictions` out long: one row per decision and option, ranked."""
    n, k = predictions.propensity.shape
    table = keys.loc[keys.index.repeat(k)].reset_index(drop=True)
    table["candidate"] = [o.candidate for o in OPTIONS] * n
    table["local_therapy"] = [o.local_therapy for o in OPTIONS] * n
    table["option"] = [o.label for o in OPTIONS] * n
    for key, value in predictions.summary.items():
        table[key] = value.ravel()
        table[f"{key}_lower"] = predictions.lower[key].ravel()
        table[f"{key}_upper"] = predictions.upper[key].ravel()
    table["propensity"] = predictions.propensity.ravel()
    table["support"] = predictions.support.ravel()
    table["probability_best"] = predictions.probability_best.ravel()
    score = np.where(predictions.support, predictions.summary["pfs_rmst24"], -np.inf)
    order = np.argsort(-score, axis=1, kind="stable")
    rank = np.empty_like(order)
    rank[np.arange(n)[:, None], order] = np.arange(1, k + 1)
    table["rank"] = np.where(predictions.support, rank, UNRANKED).ravel().astype(np.int64)
    return table
