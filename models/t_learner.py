"""The T-learner: one survival model per candidate class, behind the survival models' interface.

:class:`ClassSurvivalModels` takes the same design as an S-learner's model (the decision features
followed by the treatment columns of :mod:`linewise.models.candidates`) and fits one clone of its base
model per candidate class, on that class's rows only, with the local-therapy column as a feature. A
class with fewer than ``min_events`` events (counted among its rows of positive weight, not weighted:
balancing weights can make a handful of events weigh like many) gets no model of its own: its rows are
predicted by the pooled model, fitted on every row like an S-learner's, and the class is listed in
``pooled_classes_``. A bootstrap refit is given the point fit's ``pooled_classes`` instead: its
weights hold the draw's multiplicities, and a resample sees only about 63% of a class's distinct events,
so the rule applied again would pool classes that the point fit models. Prediction dispatches each row
to the model of its class.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted

from linewise.features.regimens import CANDIDATE_CLASSES
from linewise.models.survival import median_from_curves, rmst_from_curves
from linewise.models.target import check_target

_CLASSES = len(CANDIDATE_CLASSES)


def _class_of(design: np.ndarray) -> np.ndarray:
    """Return the class of each design row, from its one-hot class columns."""
    indicators = design[:, -(_CLASSES + 1) : -1]
    return np.asarray(np.argmax(indicators, axis=1))


def _own_columns(design: np.ndarray) -> np.ndarray:
    """Return the features and the local-therapy column: what a class's own model sees."""
    return np.hstack([design[:, : -(_CLASSES + 1)], design[:, -1:]])


class ClassSurvivalModels(BaseEstimator):
    """One survival model per candidate class (a T-learner), with a pooled model for sparse classes.

    Parameters
    ----------
    base : estimator
        An unfitted survival model (:mod:`linewise.models.survival`), cloned per class.
    min_events : int
        Fewest events a class needs for a model of its own, counted among its rows of positive weight
        (each row once, whatever its weight).
    pooled_classes : tuple of str, optional
        The classes predicted by the pooled model, when already decided (a bootstrap refit takes its
        point fit's ``pooled_classes_``); ``min_events`` decides them otherwise. A listed class with no
        row of positive weight is pooled whatever the list says.

    Attributes
    ----------
    models_ : dict of int to estimator
        The model of each class (index in :data:`linewise.features.regimens.CANDIDATE_CLASSES`).
    pooled_ : estimator
        The base model fitted on every row with the whole design.
    pooled_classes_ : list of str
        Classes predicted by the pooled model.
    time_grid_ : ndarray
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "base": [HasMethods(["fit", "predict_survival_function"])],
        "min_events": [Interval(Integral, 1, None, closed="left")],
        "pooled_classes": [tuple, None],
    }

    def __init__(
        self, base: Any, *, min_events: int = 40, pooled_classes: tuple[str, ...] | None = None
    ) -> None:
        self.base = base
        self.min_events = min_events
        self.pooled_classes = pooled_classes

    def fit(self, X: Any, y: np.ndarray, sample_weight: np.ndarray | None = None) -> ClassSurvivalModels:
        """Fit the pooled model and each class's own model.

        Parameters
        ----------
        X : ndarray of shape (n, p + 9)
            Features followed by the treatment columns.
        y : structured array
            Survival target.
        sample_weight : ndarray, optional
            Case weights.
        """
        self._validate_params()
        design = np.asarray(X, dtype=float)
        event, _ = check_target(y)
        weight = np.ones(len(design)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        klass = _class_of(design)
        self.pooled_ = clone(self.base).fit(design, y, sample_weight=weight)
        self.models_: dict[int, Any] = {}
        self.pooled_classes_: list[str] = []
        own = _own_columns(design)
        for code, name in enumerate(CANDIDATE_CLASSES):
            rows = (klass == code) & (weight > 0)
            if self.pooled_classes is not None:
                pooled = name in self.pooled_classes or not event[rows].any()
            else:
                pooled = int(np.count_nonzero(event[rows])) < self.min_events
            if pooled:
                self.pooled_classes_.append(name)
                continue
            self.models_[code] = clone(self.base).fit(own[rows], y[rows], sample_weight=weight[rows])
        self.time_grid_ = self.pooled_.time_grid_
        self.n_features_in_ = design.shape[1]
        return self

    def predict_survival_function(self, X: Any) -> np.ndarray:
        """Survival on :attr:`time_grid_` of each row under its class's model, shape (n, len(grid))."""
        check_is_fitted(self, "models_")
        design = np.asarray(X, dtype=float)
        klass = _class_of(design)
        curves = self.pooled_.predict_survival_function(design)
        own = _own_columns(design)
        for code, model in self.models_.items():
            rows = klass == code
            if rows.any():
                curves[rows] = model.predict_survival_function(own[rows])
        return np.asarray(curves)

    def predict_rmst(self, X: Any, horizon: float) -> np.ndarray:
        """Restricted mean survival time to ``horizon`` of each row."""
        return rmst_from_curves(self.predict_survival_function(X), self.time_grid_, horizon)

    def predict_median(self, X: Any) -> np.ndarray:
        """Median survival of each row (``inf`` when not reached)."""
        return median_from_curves(self.predict_survival_function(X), self.time_grid_)

    def predict(self, X: Any) -> np.ndarray:
        """Risk score: minus the restricted mean to the grid's horizon (higher means shorter survival)."""
        return -self.predict_rmst(X, float(self.time_grid_[-1]))
