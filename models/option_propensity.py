"""Propensity of every option: the candidate class, then loco-regional therapy given the class.

``P(class, local | x) = P(class | x) * P(local | x, class)``: the class comes from
:class:`linewise.models.propensity.PropensityModel` (calibrated multinomial), local therapy from a logistic
regression on the features and the class. An option is **supported** for a patient when both factors
reach ``min_support``: patients like this one received the class, and within it, the local-therapy
choice in question. Anything else is reported as "insufficient evidence".
"""

from __future__ import annotations

from numbers import Real
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import Tags
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from linewise.features.regimens import CANDIDATE_CLASSES
from linewise.models.candidates import OPTIONS, with_treatment
from linewise.models.propensity import DEFAULT_MIN_SUPPORT, PropensityModel


class OptionPropensityModel(BaseEstimator):
    """Probability of each of the 16 options given the decision features.

    Parameters
    ----------
    min_support : float
        Positivity threshold applied to both factors.
    C : float
        Inverse regularisation of both logistic regressions.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "min_support": [Interval(Real, 0, 1, closed="neither")],
        "C": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, *, min_support: float = DEFAULT_MIN_SUPPORT, C: float = 1.0) -> None:
        self.min_support = min_support
        self.C = C

    def fit(self, X: Any, options: np.ndarray) -> OptionPropensityModel:
        """Fit on features (NaN for missing) and the index in :data:`OPTIONS` of the option taken."""
        self._validate_params()
        features = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        options = np.asarray(options, dtype=np.int64)
        if options.shape != (len(features),) or options.min() < 0 or options.max() >= len(OPTIONS):
            raise ValueError(f"options must hold one index in 0..{len(OPTIONS) - 1} per row of X")
        classes = np.asarray(CANDIDATE_CLASSES, dtype=object)[options // 2]
        self.class_model_ = PropensityModel(CANDIDATE_CLASSES, C=self.C, min_support=self.min_support).fit(
            features, classes
        )
        local = options % 2
        if len(np.unique(local)) < 2:
            raise ValueError("local therapy must be both given and not given in the training decisions")
        self.local_model_ = make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(C=self.C, max_iter=2000),
        ).fit(with_treatment(features, options - local), local)
        return self

    def __sklearn_tags__(self) -> Tags:
        """Missing feature values (NaN) are allowed: the pipelines impute them."""
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def class_and_local(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``P(class | x)`` (n, 8) and ``P(local therapy given | x, class)`` (n, 8)."""
        check_is_fitted(self, "local_model_")
        features = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        klass = self.class_model_.predict_proba(features)
        count = len(CANDIDATE_CLASSES)
        classes = np.tile(2 * np.arange(count), len(features))
        rows = with_treatment(np.repeat(features, count, axis=0), classes)
        local = self.local_model_.predict_proba(rows)[:, 1].reshape(len(features), count)
        return klass, local

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probability of each option, columns in :data:`OPTIONS` order, rows summing to 1."""
        return self.proba_and_support(X)[0]

    def support(self, X: Any) -> np.ndarray:
        """Return True where the option is supported (both factors at least ``min_support``)."""
        return self.proba_and_support(X)[1]

    def proba_and_support(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Return :meth:`predict_proba` and :meth:`support` from one evaluation of the two models.

        Parameters
        ----------
        X : array-like of shape (n, len(FEATURES))
            Decision features.

        Returns
        -------
        proba : ndarray of shape (n, 16)
        support : ndarray of bool, shape (n, 16)
        """
        klass, local = self.class_and_local(X)
        proba = np.empty((klass.shape[0], len(OPTIONS)))
        proba[:, 0::2] = klass * (1.0 - local)
        proba[:, 1::2] = klass * local
        supported = np.empty((klass.shape[0], len(OPTIONS)), dtype=bool)
        supported[:, 0::2] = (klass >= self.min_support) & (1.0 - local >= self.min_support)
        supported[:, 1::2] = (klass >= self.min_support) & (local >= self.min_support)
        return proba, supported
