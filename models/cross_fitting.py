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
    """

    folds: np.ndarray
    observed: np.ndarray
    propensity: np.ndarray
    outcome: np.ndarray
    adjusted: np.ndarray

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
    event, time = check_target(y)
    n, k = len(features), len(OPTIONS)
    if options.shape != (n,) or fold.shape != (n,) or time.shape != (n,):
        raise ValueError("X, observed, y and folds must have one entry per row")
    labels = np.unique(fold)
    if len(labels) < 2:
        raise ValueError("cross-fitting needs at least two folds")
    propensity, outcome, adjusted = np.empty((n, k)), np.empty((n, k)), np.empty(n)
    censoring_target = make_target(time, ~event)
    for label in labels:
        held, kept = fold == label, fold != label
        design = with_treatment(features[kept], options[kept])
        outcome_fit = clone(outcome_model).fit(design, y[kept])
        censoring_fit = clone(censoring_model).fit(design, censoring_target[kept])
        grid = outcome_fit.time_grid_
        if not np.array_equal(grid, censoring_fit.time_grid_):
            raise ValueError("the outcome and censoring models must share one time grid")
        if naive:
            shares = np.bincount(options[kept], minlength=k) / kept.sum()
            propensity[held] = np.tile(shares, (int(held.sum()), 1))
        else:
            fitted = clone(propensity_model).fit(features[kept], options[kept])
            propensity[held] = fitted.predict_proba(features[held])
        curves = outcome_fit.predict_survival_function(counterfactual_rows(features[held])).reshape(
            int(held.sum()), k, -1
        )
        outcome[held] = rmst_from_curves(curves, grid, horizon)
        taken = options[held]
        own_curve = curves[np.arange(int(held.sum())), taken]
        own_censoring = censoring_fit.predict_survival_function(with_treatment(features[held], taken))
        adjusted[held] = censoring_unbiased_rmst(y[held], horizon, grid, own_censoring, own_curve)
    return Nuisances(folds=fold, observed=options, propensity=propensity, outcome=outcome, adjusted=adjusted)
