"""The propensity model: how likely each candidate was to be chosen for patients like this one.

A multinomial logistic regression on the decision features (missing values imputed by the training
median with an indicator, inside the pipeline so that only training rows inform it), calibrated by
cross-validated sigmoid scaling. Its probabilities weight the outcome models (inverse-probability or
overlap weights) and flag positivity: a candidate whose probability is below ``min_support`` for a
patient was rarely given to patients like this one, and is reported as "insufficient evidence".
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import Tags
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

#: Default positivity threshold: a candidate given to fewer than 1 in 20 comparable patients.
DEFAULT_MIN_SUPPORT = 0.05


class PropensityModel(ClassifierMixin, BaseEstimator):
    """Calibrated multinomial propensity of the action taken.

    Parameters
    ----------
    candidates : sequence of str
        Every candidate the recommender scores, in output order; candidates never seen in training, or
        seen fewer than ``cv`` times (too few to calibrate, and too few to be evidence), get
        probability 0 (and so no support).
    C : float
        Inverse L2 regularisation strength of the logistic regression.
    cv : int
        Folds of the sigmoid calibration.
    min_support : float
        Positivity threshold for :meth:`support`.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "candidates": [tuple, list],
        "C": [Interval(Real, 0, None, closed="neither")],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "min_support": [Interval(Real, 0, 1, closed="neither")],
    }

    def __init__(
        self,
        candidates: tuple[str, ...],
        *,
        C: float = 1.0,
        cv: int = 3,
        min_support: float = DEFAULT_MIN_SUPPORT,
    ) -> None:
        self.candidates = candidates
        self.C = C
        self.cv = cv
        self.min_support = min_support

    def fit(self, X: Any, y: Any, sample_weight: np.ndarray | None = None) -> PropensityModel:
        """Fit on decision features ``X`` (NaN for missing) and the action taken ``y`` (candidate codes)."""
        self._validate_params()
        features = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        actions = np.asarray(y, dtype=object)
        unknown = sorted(set(actions) - set(self.candidates))
        if unknown:
            raise ValueError(f"actions outside the candidates: {unknown}")
        names, counts = np.unique(actions, return_counts=True)
        kept = np.isin(actions, names[counts >= self.cv])  # a class given under cv times cannot be calibrated
        observed = [c for c in self.candidates if c in set(actions[kept])]
        if len(observed) < 2:
            raise ValueError(f"need at least two actions observed {self.cv} times or more, found {observed}")
        features, actions = features[kept], actions[kept]
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=float)[kept]
        base = make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(C=self.C, max_iter=2000),
        )
        self.model_ = CalibratedClassifierCV(base, method="sigmoid", cv=self.cv, ensemble=True)
        fit_params = (
            {} if sample_weight is None else {"sample_weight": np.asarray(sample_weight, dtype=float)}
        )
        self.model_.fit(features, actions, **fit_params)
        self.classes_ = np.asarray(self.candidates, dtype=object)
        return self

    def __sklearn_tags__(self) -> Tags:
        """Missing feature values (NaN) are allowed: the pipeline imputes them."""
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probability of each candidate (columns in ``candidates`` order), rows summing to 1."""
        check_is_fitted(self, "model_")
        features = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite="allow-nan")
        fitted = self.model_.predict_proba(features)
        out = np.zeros((fitted.shape[0], len(self.candidates)))
        position = {c: i for i, c in enumerate(self.candidates)}
        for column, name in enumerate(self.model_.classes_):
            out[:, position[name]] = fitted[:, column]
        return out / out.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """Most likely candidate."""
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])

    def support(self, X: Any) -> np.ndarray:
        """Boolean matrix: True where the candidate's propensity reaches ``min_support``."""
        return np.asarray(self.predict_proba(X) >= self.min_support)
