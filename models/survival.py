"""Two survival model families behind one scikit-learn interface.

Both predict a risk score (``predict``), survival curves on a shared time grid
(``predict_survival_function``), restricted mean survival to a horizon (``predict_rmst``), the median
(``predict_median``) and score with Harrell's concordance (``score``). Times are months. The grid runs
from ``grid_step`` to ``horizon`` in steps of ``grid_step`` (0.5 to 36 months by default).

- :class:`RandomSurvivalForestModel`: scikit-survival's forest, fitted on event times rounded up to the
  grid (a few hundred distinct times instead of thousands: about 8 times faster, same concordance).
- :class:`BoostedCoxModel`: XGBoost ``survival:cox`` (log hazard ratio) with a weighted Breslow
  baseline cumulative hazard for curves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xgboost as xgb
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from sksurv.ensemble import RandomSurvivalForest
from sksurv.metrics import concordance_index_censored

from models.target import check_target, make_target, to_xgboost_label


def time_grid(step: float, horizon: float) -> np.ndarray:
    """Return the shared grid ``step, 2 step, ..., horizon`` (months)."""
    if not (step > 0 and horizon >= step):
        raise ValueError(f"need 0 < grid_step <= horizon, found grid_step={step}, horizon={horizon}")
    return np.round(np.arange(1, int(np.floor(horizon / step + 1e-9)) + 1) * step, 10)


def _features(X: Any) -> np.ndarray:
    array = np.asarray(X, dtype=float)
    if array.ndim != 2:
        raise ValueError(f"X must be 2-d, found shape {array.shape}")
    return array


class _SurvivalMixin:
    """Curves on the grid, RMST, median and concordance from ``predict_survival_function``."""

    time_grid_: np.ndarray

    def predict_survival_function(self, X: Any) -> np.ndarray:  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    def predict(self, X: Any) -> np.ndarray:  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    def predict_rmst(self, X: Any, horizon: float) -> np.ndarray:
        """Restricted mean survival time to ``horizon`` (months), integrating the step curve.

        Parameters
        ----------
        X : array-like of shape (n, p)
            Features.
        horizon : float
            Upper limit, at most the grid's horizon.

        Returns
        -------
        ndarray of shape (n,)
        """
        check_is_fitted(self, "time_grid_")
        if not 0 < horizon <= self.time_grid_[-1] + 1e-9:
            raise ValueError(f"horizon must be in (0, {self.time_grid_[-1]}], found {horizon}")
        survival = self.predict_survival_function(X)
        starts = np.concatenate([[0.0], self.time_grid_[:-1]])
        widths = np.clip(np.minimum(self.time_grid_, horizon) - starts, 0.0, None)
        before = np.concatenate([np.ones((survival.shape[0], 1)), survival[:, :-1]], axis=1)
        return np.asarray(before @ widths)

    def predict_median(self, X: Any) -> np.ndarray:
        """First grid time where survival is at or below 0.5; ``inf`` when not reached by the horizon."""
        check_is_fitted(self, "time_grid_")
        survival = self.predict_survival_function(X)
        reached = survival <= 0.5
        first = np.argmax(reached, axis=1)
        return np.where(reached.any(axis=1), self.time_grid_[first], np.inf)

    def score(self, X: Any, y: np.ndarray) -> float:
        """Harrell's concordance index of ``predict`` against ``y``."""
        event, time = check_target(y)
        return float(concordance_index_censored(event, time, self.predict(X))[0])


class RandomSurvivalForestModel(_SurvivalMixin, BaseEstimator):
    """Random survival forest (scikit-survival) fitted on grid-rounded times.

    Parameters
    ----------
    n_estimators, min_samples_leaf, max_features, max_depth : see scikit-survival.
    grid_step, horizon : float
        The shared time grid (months).
    random_state : int or None
        Seed of the forest.
    n_jobs : int or None
        Parallel jobs.
    """

    def __init__(
        self,
        n_estimators: int = 100,
        *,
        min_samples_leaf: int = 15,
        max_features: str | float = "sqrt",
        max_depth: int | None = None,
        grid_step: float = 0.5,
        horizon: float = 36.0,
        random_state: int | None = None,
        n_jobs: int | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_depth = max_depth
        self.grid_step = grid_step
        self.horizon = horizon
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(
        self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> RandomSurvivalForestModel:
        """Fit the forest on times rounded up to the grid (times beyond the horizon are kept as they are)."""
        grid = time_grid(self.grid_step, self.horizon)
        features = _features(X)
        event, time = check_target(y)
        rounded = np.where(time <= self.horizon, np.ceil(time / self.grid_step - 1e-9) * self.grid_step, time)
        self.forest_ = RandomSurvivalForest(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            max_depth=self.max_depth,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        ).fit(features, make_target(rounded, event), sample_weight=sample_weight)
        self.time_grid_ = grid
        self.n_features_in_ = features.shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Risk score: the forest's ensemble cumulative hazard (higher means shorter survival)."""
        check_is_fitted(self, "forest_")
        return np.asarray(self.forest_.predict(_features(X)))

    def predict_survival_function(self, X: Any) -> np.ndarray:
        """Survival probabilities on :attr:`time_grid_`, shape (n, len(grid))."""
        check_is_fitted(self, "forest_")
        curves = self.forest_.predict_survival_function(_features(X), return_array=True)
        times = self.forest_.unique_times_
        index = np.searchsorted(times, self.time_grid_, side="right") - 1
        padded = np.concatenate([np.ones((curves.shape[0], 1)), curves], axis=1)
        return np.asarray(padded[:, index + 1])


class BoostedCoxModel(_SurvivalMixin, BaseEstimator):
    """Gradient-boosted Cox model (XGBoost ``survival:cox``) with a Breslow baseline.

    Parameters
    ----------
    n_estimators, learning_rate, max_depth, min_child_weight, subsample, colsample_bytree, reg_lambda :
        XGBoost's boosting parameters.
    grid_step, horizon : float
        The shared time grid (months).
    random_state : int
        Seed of XGBoost's sampling.
    """

    def __init__(
        self,
        n_estimators: int = 300,
        *,
        learning_rate: float = 0.05,
        max_depth: int = 3,
        min_child_weight: float = 5.0,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        grid_step: float = 0.5,
        horizon: float = 36.0,
        random_state: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.grid_step = grid_step
        self.horizon = horizon
        self.random_state = random_state

    def fit(self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None = None) -> BoostedCoxModel:
        """Boost the Cox partial likelihood, then estimate the baseline cumulative hazard (Breslow)."""
        if self.n_estimators < 0 or self.learning_rate <= 0:
            raise ValueError("n_estimators must be >= 0 and learning_rate > 0")
        grid = time_grid(self.grid_step, self.horizon)
        features = _features(X)
        event, time = check_target(y)
        weight = np.ones(len(time)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if weight.shape != time.shape or np.any(weight < 0) or not np.all(np.isfinite(weight)):
            raise ValueError("sample_weight must be finite, non-negative, one per row")
        data = xgb.DMatrix(features, label=to_xgboost_label(y), weight=weight)
        params = {
            "objective": "survival:cox",
            "eta": self.learning_rate,
            "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "lambda": self.reg_lambda,
            "seed": self.random_state,
            "nthread": 1,
            "tree_method": "hist",
        }
        self.booster_ = xgb.train(params, data, num_boost_round=self.n_estimators)
        margin = self.booster_.predict(data, output_margin=True)
        self.baseline_cumulative_hazard_ = _breslow(time, event, weight, margin, grid)
        self.time_grid_ = grid
        self.n_features_in_ = features.shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Risk score: the log hazard ratio."""
        check_is_fitted(self, "booster_")
        return np.asarray(self.booster_.predict(xgb.DMatrix(_features(X)), output_margin=True))

    def predict_survival_function(self, X: Any) -> np.ndarray:
        """Survival ``exp(-H0(t) exp(eta))`` on :attr:`time_grid_`."""
        risk = np.exp(self.predict(X))
        return np.asarray(np.exp(-np.outer(risk, self.baseline_cumulative_hazard_)))


def _breslow(
    time: np.ndarray, event: np.ndarray, weight: np.ndarray, margin: np.ndarray, grid: np.ndarray
) -> np.ndarray:
    """Weighted Breslow cumulative baseline hazard, evaluated at each grid time."""
    risk = weight * np.exp(margin - margin.max())
    order = np.argsort(time, kind="stable")
    times, at_risk_tail = time[order], np.cumsum(risk[order][::-1])[::-1]
    event_times = np.unique(time[event])
    first = np.searchsorted(times, event_times, side="left")
    deaths = np.bincount(
        np.searchsorted(event_times, time[event]), weights=weight[event], minlength=len(event_times)
    )
    increments = deaths / at_risk_tail[first]
    cumulative = np.cumsum(increments) * np.exp(-margin.max())
    index = np.searchsorted(event_times, grid, side="right") - 1
    return np.where(index >= 0, cumulative[np.maximum(index, 0)], 0.0)
