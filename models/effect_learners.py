"""Second stages that learn every option's difference from TBP from cross-fitted nuisances (econml forests).

Both take :class:`linewise.models.cross_fitting.Nuisances` and predict, for each decision, every
option's difference in restricted mean time from TBP without local therapy (the baseline column is 0):

- :class:`DRContrastForest`, the **DR-learner**: an honest multi-output regression forest
  (``econml.grf.RegressionForest``) of the doubly robust pseudo-outcomes' differences from the
  baseline's, ``phi_a - phi_tbp``.
- :class:`ResidualCausalForest`, built for **heterogeneity**: a causal forest (``econml.grf.CausalForest``)
  on residuals, as in the R-learner: the censoring-unbiased time minus its expected value given the
  features (``sum_a e(a | x) mu(x, a)``), against the treatment indicators minus their propensities.
  The treatments are the seven classes other than TBP and local therapy, with its own effect with TBP
  and with the other classes: an option's difference is its class's effect plus, with local therapy,
  the local therapy effect of its side.

Each gives a point estimate and its covariance across options from the forest's bootstrap of little
bags (:meth:`predict_and_covariance`): a statement about patients with these recorded features, which
treats the nuisance models as known.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar, Final

import numpy as np
from econml.grf import CausalForest, RegressionForest
from sklearn.base import BaseEstimator
from sklearn.impute import SimpleImputer
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from linewise.features.regimens import CANDIDATE_CLASSES
from linewise.models.candidates import BASELINE, OPTIONS
from linewise.models.cross_fitting import Nuisances

BASELINE_INDEX: Final = OPTIONS.index(BASELINE)
_FOREST_CONSTRAINTS: dict[str, list[Any]] = {
    "n_estimators": [Interval(Integral, 4, None, closed="left")],
    "min_samples_leaf": [Interval(Integral, 1, None, closed="left")],
    "max_features": [Interval(Real, 0, 1, closed="right")],
    "clip": [Interval(Real, 0, 1, closed="right")],
    "random_state": [Interval(Integral, 0, None, closed="left")],
    "n_jobs": [Interval(Integral, 1, None, closed="left")],
}


def _option_map() -> np.ndarray:
    """Matrix ``L`` (16 x 9) with option differences ``L @ theta`` from the causal forest's effects."""
    others = [c for c in CANDIDATE_CLASSES if c != "tbp"]
    mapping = np.zeros((len(OPTIONS), len(others) + 2))
    for row, option in enumerate(OPTIONS):
        if option.candidate != "tbp":
            mapping[row, others.index(option.candidate)] = 1.0
        if option.local_therapy:
            mapping[row, len(others) + (0 if option.candidate == "tbp" else 1)] = 1.0
    return mapping


#: Option differences from the causal forest's nine effects.
OPTION_MAP: Final = _option_map()


class _ForestStage(BaseEstimator):
    """Shared parameters, imputation and prediction of the two second stages."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = _FOREST_CONSTRAINTS

    def __init__(
        self,
        n_estimators: int = 100,
        *,
        min_samples_leaf: int = 50,
        max_features: float = 0.3,
        clip: float = 0.05,
        random_state: int = 0,
        n_jobs: int = 2,
    ) -> None:
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.clip = clip
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _forest_settings(self) -> dict[str, Any]:
        # subforests of 4 trees on half-samples: the bootstrap of little bags needs n_estimators % 4 == 0
        return {
            "n_estimators": 4 * (self.n_estimators // 4),
            "min_samples_leaf": self.min_samples_leaf,
            "max_features": self.max_features,
            "max_samples": 0.45,
            "inference": True,
            "subforest_size": 4,
            "honest": True,
            "random_state": self.random_state,
            "n_jobs": self.n_jobs,
        }

    def _impute(self, X: Any, *, fit: bool) -> np.ndarray:
        features = np.asarray(X, dtype=float)
        if fit:
            self.imputer_ = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
            return np.asarray(self.imputer_.fit_transform(features))
        return np.asarray(self.imputer_.transform(features))

    def _effects(self, X: Any) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - subclasses
        raise NotImplementedError

    def predict_and_covariance(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Every option's difference from TBP and its covariance across options.

        Parameters
        ----------
        X : array-like of shape (n, p)
            Decision features (NaN for missing).

        Returns
        -------
        difference : ndarray of shape (n, 16)
            0 in the baseline's column.
        covariance : ndarray of shape (n, 16, 16)
            From the forest's bootstrap of little bags; 0 in the baseline's row and column.
        """
        check_is_fitted(self, "forest_")
        return self._effects(self._impute(X, fit=False))

    def predict(self, X: Any) -> np.ndarray:
        """Every option's difference from TBP, shape (n, 16)."""
        return self.predict_and_covariance(X)[0]


class DRContrastForest(_ForestStage):
    """DR-learner: a regression forest of the pseudo-outcomes' differences from the baseline's.

    Parameters
    ----------
    n_estimators : int
        Trees (rounded down to a multiple of 4, the forest's little bags).
    min_samples_leaf, max_features : forest settings.
    clip : float
        Option propensities below it are raised to it in the pseudo-outcomes (smaller propensities make
        the pseudo-outcomes noisy; supported options below it shrink towards the outcome model).
    random_state : int
    n_jobs : int

    Attributes
    ----------
    forest_ : econml.grf.RegressionForest
    imputer_ : sklearn.impute.SimpleImputer
        Median imputation with missing indicators (the forest takes no NaN).
    """

    def fit(self, X: Any, nuisances: Nuisances) -> DRContrastForest:
        """Fit the forest on the cross-fitted pseudo-outcomes of ``nuisances`` (one row per row of ``X``)."""
        self._validate_params()
        features = self._impute(X, fit=True)
        phi = nuisances.pseudo_outcomes(self.clip)
        contrasts = np.delete(phi - phi[:, [BASELINE_INDEX]], BASELINE_INDEX, axis=1)
        self.forest_ = RegressionForest(**self._forest_settings()).fit(features, contrasts)
        self.forest_.n_jobs = 1  # serial predictions: threads would add the trees up in a varying order
        return self

    def _effects(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        point, variance = self.forest_.predict_and_var(features)
        k = len(OPTIONS)
        kept = np.delete(np.arange(k), BASELINE_INDEX)
        difference = np.zeros((len(features), k))
        difference[:, kept] = point
        covariance = np.zeros((len(features), k, k))
        covariance[np.ix_(np.arange(len(features)), kept, kept)] = variance
        return difference, covariance


class ResidualCausalForest(_ForestStage):
    """Causal forest on residualised outcomes and treatments (an R-learner), nine effects (module docstring).

    Parameters, attributes: as :class:`DRContrastForest`, with ``forest_`` an ``econml.grf.CausalForest``.
    ``clip`` is unused by the residuals and kept for a common interface.
    """

    def fit(self, X: Any, nuisances: Nuisances) -> ResidualCausalForest:
        """Fit the causal forest on the residuals of ``nuisances`` (one row per row of ``X``)."""
        self._validate_params()
        features = self._impute(X, fit=True)
        treatment = OPTION_MAP[nuisances.observed]
        expected_treatment = nuisances.propensity @ OPTION_MAP
        expected_outcome = np.sum(nuisances.propensity * nuisances.outcome, axis=1)
        self.forest_ = CausalForest(**self._forest_settings()).fit(
            features, treatment - expected_treatment, nuisances.adjusted - expected_outcome
        )
        self.forest_.n_jobs = 1  # serial predictions: threads would add the trees up in a varying order
        return self

    def _effects(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        theta, variance = self.forest_.predict_and_var(features)
        difference = theta @ OPTION_MAP.T
        covariance = np.einsum("oa,nab,pb->nop", OPTION_MAP, variance, OPTION_MAP)
        return difference, covariance
