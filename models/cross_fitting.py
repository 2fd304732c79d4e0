"""Cross-fitted nuisance models: each row's propensities and outcome predictions from models blind to it.

The patients are split into folds (:func:`patient_folds`; a patient's decisions stay in one fold). For
each fold, three models are fitted on the other folds and predict the fold's rows:

- the **propensity** of every option (:class:`linewise.models.option_propensity.OptionPropensityModel`);
- the **outcome** model: survival under every option, the decision features followed by the treatment
  columns (an S-learner), which gives each option's restricted mean ``mu(x, a)`` and the conditional
  means of the censoring-unbiased transform;
- the **censoring** model: the same family fitted on the censoring times (the follow-up ends without
  an event), which gives ``G(t | x, a)``.

:func:`cross_fit` returns them with the censoring-unbiased restricted time ``Y*`` of each row
(:func:`linewise.models.censoring_unbiased.censoring_unbiased_rmst`). The doubly robust pseudo-outcomes
(:meth:`Nuisances.pseudo_outcomes`) are then what a DR-learner regresses on the features, and their mean
under a policy is its AIPW value. With ``naive=True`` the propensity is each option's share among the
other folds' decisions, the same for every patient: the naive twin, which ignores who got what.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from sklearn.base import clone

from linewise.models.candidates import OPTIONS, counterfactual_rows, with_treatment
from linewise.models.censoring_unbiased import censoring_unbiased_rmst, dr_pseudo_outcomes
from linewise.models.survival import rmst_from_curves
from linewise.models.target import check_target, make_target

#: Restriction time of the policy value and of the learners' target (months): rwPFS RMST24.
HORIZON: Final = 24.0


def patient_folds(groups: np.ndarray, n_folds: int, random_state: int) -> np.ndarray:
    """Assign every patient's rows to one of ``n_folds`` folds of about equal numbers of patients.

    Parameters
    ----------
    groups : ndarray of shape (n,)
        The patient of each row.
    n_folds : int
        At least 2, at most the number of patients.
    random_state : int
        Seed of the assignment.

    Returns
    -------
    ndarray of int, shape (n,)
        The fold of each row, in ``0 .. n_folds - 1``.

    Raises
    ------
    ValueError
        If ``n_folds`` is below 2 or above the number of patients.
    """
    patients, index = np.unique(np.asarray(groups), return_inverse=True)
    if not 2 <= n_folds <= len(patients):
        raise ValueError(f"n_folds must be in 2..{len(patients)} (the patients), found {n_folds}")
    order = np.random.default_rng(random_state).permutation(len(patients))
    fold_of_patient = np.empty(len(patients), dtype=np.int64)
    fold_of_patient[order] = np.arange(len(patients)) % n_folds
    return np.asarray(fold_of_patient[index])


@dataclass(frozen=True)
class Nuisances:
    """Out-of-fold nuisance predictions of every row.

    Attributes
    ----------
    folds : ndarray of int, shape (n,)
        The fold of each row: its predictions come from models fitted on the other folds.
    observed : ndarray of int, shape (n,)
        The option each row received (index in :data:`linewise.models.candidates.OPTIONS`).
    propensity : ndarray of shape (n, 16)
        ``e(a | x)`` of every option.
    outcome : ndarray of shape (n, 16)
        ``mu(x, a)``: the restricted mean to :data:`HORIZON` under every option.
    adjusted : ndarray of shape (n,)
        ``Y*``: the censoring-unbiased restricted time of the option received.
    naive : bool
        Whether ``propensity`` holds each option's share among the other folds' rows (the naive twin)
        rather than a propensity model's predictions.
    """

    folds: np.ndarray
    observed: np.ndarray
    propensity: np.ndarray
    outcome: np.ndarray
    adjusted: np.ndarray
    naive: bool = False

    def pseudo_outcomes(self, clip: float = 0.01) -> np.ndarray:
        """Doubly robust pseudo-outcome of every option, shape (n, 16) (:func:`dr_pseudo_outcomes`)."""
        return dr_pseudo_outcomes(self.observed, self.propensity, self.outcome, self.adjusted, clip=clip)

    def take(self, rows: np.ndarray) -> Nuisances:
        """Return the nuisances of some rows (a boolean mask or positions)."""
        return Nuisances(
            folds=self.folds[rows],
            observed=self.observed[rows],
            propensity=self.propensity[rows],
            outcome=self.outcome[rows],
            adjusted=self.adjusted[rows],
            naive=self.naive,
        )

    def naive_twin(self) -> Nuisances:
        """Return the same nuisances with each fold's propensities replaced by the other folds' shares.

        The outcome and censoring models do not depend on the propensity model, so this equals
        :func:`cross_fit` with ``naive=True`` on the same folds, without fitting anything again.

        Raises
        ------
        ValueError
            If the rows hold fewer than two folds (held-out predictions have no other fold).
        """
        if self.naive:
            return self
        labels = np.unique(self.folds)
        if len(labels) < 2:
            raise ValueError("the naive twin needs cross-fitted nuisances of at least two folds")
        propensity = np.empty_like(self.propensity)
        for label in labels:
            held = self.folds == label
            shares = np.bincount(self.observed[~held], minlength=self.propensity.shape[1]) / (~held).sum()
            propensity[held] = shares
        return Nuisances(self.folds, self.observed, propensity, self.outcome, self.adjusted, naive=True)


@dataclass(frozen=True)
class NuisanceModels:
    """The three nuisance models fitted on some rows, to predict others (:func:`fit_nuisances`)."""

    outcome: Any
    censoring: Any
    propensity: Any | None  # None: the naive shares
    shares: np.ndarray
    horizon: float

    def predict(self, X: np.ndarray, observed: np.ndarray, y: np.ndarray) -> Nuisances:
        """Return the nuisances of new rows (their ``folds`` are all 0).

        Parameters
        ----------
        X : ndarray of shape (n, p)
            Decision features.
        observed : ndarray of int, shape (n,)
            The option each row received.
        y : structured array, shape (n,)
            Their outcome: ``Y*`` needs it.

        Returns
        -------
        Nuisances
        """
        features = np.asarray(X, dtype=float)
        options = np.asarray(observed, dtype=np.int64)
        n, k = len(features), len(OPTIONS)
        if self.propensity is None:
            propensity = np.tile(self.shares, (n, 1))
        else:
            propensity = self.propensity.predict_proba(features)
        grid = self.outcome.time_grid_
        curves = self.outcome.predict_survival_function(counterfactual_rows(features)).reshape(n, k, -1)
        own_curve = curves[np.arange(n), options]
        own_censoring = self.censoring.predict_survival_function(with_treatment(features, options))
        return Nuisances(
            folds=np.zeros(n, dtype=np.int64),
            observed=options,
            propensity=propensity,
            outcome=rmst_from_curves(curves, grid, self.horizon),
            adjusted=censoring_unbiased_rmst(y, self.horizon, grid, own_censoring, own_curve),
            naive=self.propensity is None,
        )


def fit_nuisances(
    X: np.ndarray,
    observed: np.ndarray,
    y: np.ndarray,
    *,
    outcome_model: Any,
    censoring_model: Any,
    propensity_model: Any,
    naive: bool = False,
    horizon: float = HORIZON,
) -> NuisanceModels:
    """Fit clones of the three nuisance models on these rows (the step of :func:`cross_fit` per fold).

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Decision features of the rows the models learn from (NaN for missing).
    observed : ndarray of int, shape (n,)
        The option each row received.
    y : structured array, shape (n,)
        The outcome (fields ``event``, ``time``).
    outcome_model, censoring_model, propensity_model : estimator
        Unfitted models, cloned here (:func:`cross_fit`).
    naive : bool
        Keep the options' shares instead of fitting the propensity model.
    horizon : float
        Restriction time (months).

    Returns
    -------
    NuisanceModels

    Raises
    ------
    ValueError
        If the outcome and censoring models' grids differ.
    """
    features = np.asarray(X, dtype=float)
    options = np.asarray(observed, dtype=np.int64)
    event, time = check_target(y)
    design = with_treatment(features, options)
    outcome = clone(outcome_model).fit(design, y)
    censoring = clone(censoring_model).fit(design, make_target(time, ~event))
    if not np.array_equal(outcome.time_grid_, censoring.time_grid_):
        raise ValueError("the outcome and censoring models must share one time grid")
    return NuisanceModels(
        outcome=outcome,
        censoring=censoring,
        propensity=None if naive else clone(propensity_model).fit(features, options),
        shares=np.bincount(options, minlength=len(OPTIONS)) / len(options),
        horizon=horizon,
    )


def cross_fit(
    X: np.ndarray,
    observed: np.ndarray,
    y: np.ndarray,
    folds: np.ndarray,
    *,
    outcome_model: Any,
    censoring_model: Any,
    propensity_model: Any,
    naive: bool = False,
    horizon: float = HORIZON,
) -> Nuisances:
    """Fit the three nuisance models on all folds but one and predict that fold, for every fold.

    Parameters
    ----------
    X : ndarray of shape (n, p)
        Decision features (NaN for missing).
    observed : ndarray of int, shape (n,)
        The option each row received.
    y : structured array, shape (n,)
        The outcome (fields ``event``, ``time``).
    folds : ndarray of int, shape (n,)
        Fold of each row (:func:`patient_folds`).
    outcome_model, censoring_model : estimator
        Unfitted survival models with ``fit(X, y)``, ``predict_survival_function`` and ``time_grid_``
        (:mod:`linewise.models.survival`), cloned for every fold; their grids must agree and hold
        ``horizon``.
    propensity_model : estimator
        An unfitted propensity model with ``fit(X, options)`` and ``predict_proba`` (cloned per fold).
    naive : bool
        Use each option's share among the training folds as every row's propensity.
    horizon : float
        Restriction time (months).

    Returns
    -------
    Nuisances

    Raises
    ------
    ValueError
        If the shapes disagree, a fold is empty or holds every row, or the two grids differ.
    """
    features = np.asarray(X, dtype=float)
    options = np.asarray(observed, dtype=np.int64)
    fold = np.asarray(folds)
    _, time = check_target(y)
    n, k = len(features), len(OPTIONS)
    if options.shape != (n,) or fold.shape != (n,) or time.shape != (n,):
        raise ValueError("X, observed, y and folds must have one entry per row")
    labels = np.unique(fold)
    if len(labels) < 2:
        raise ValueError("cross-fitting needs at least two folds")
    propensity, outcome, adjusted = np.empty((n, k)), np.empty((n, k)), np.empty(n)
    for label in labels:
        held, kept = fold == label, fold != label
        fitted = fit_nuisances(
            features[kept],
            options[kept],
            y[kept],
            outcome_model=outcome_model,
            censoring_model=censoring_model,
            propensity_model=propensity_model,
            naive=naive,
            horizon=horizon,
        )
        predicted = fitted.predict(features[held], options[held], y[held])
        propensity[held], outcome[held], adjusted[held] = (
            predicted.propensity,
            predicted.outcome,
            predicted.adjusted,
        )
    return Nuisances(
        folds=fold, observed=options, propensity=propensity, outcome=outcome, adjusted=adjusted, naive=naive
    )
