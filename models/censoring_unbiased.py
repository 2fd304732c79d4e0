"""Censoring-unbiased restricted times and the doubly robust pseudo-outcomes of every option.

The restricted time ``min(T, tau)`` is unknown for a patient censored before ``tau``. Its augmented
inverse-probability-of-censoring transform (Tsiatis 2006, chapter 10; Steingrimsson, Diao and
Strawderman 2019) is, with ``U = min(T, C)``, ``X = min(U, tau)``, ``delta = 1`` where ``X`` is known (the
event was seen before ``tau`` or follow-up reached it), ``G(t | x) = P(C > t | x)`` the censoring
survival and ``m(u | x) = E[min(T, tau) | T > u, x]``::

    Y* = delta X / G(X- | x) + sum over grid times u < X of m(u | x) / G(u | x) * dM_C(u)
    dM_C(u) = dN_C(u) - dLambda_C(u | x)

where ``dN_C(u)`` is 1 at the patient's own censoring time and ``dLambda_C(u | x) = 1 - G(u | x) /
G(u- | x)`` is the censoring hazard on the grid. ``E[Y* | x] = E[min(T, tau) | x]`` when either the
censoring model or the outcome model (which gives ``m``) is right. With no censoring ``Y*`` is
``min(T, tau)`` itself; with both curves pooled Kaplan-Meier estimates on the data's own times, the mean
of ``Y*`` is the Kaplan-Meier restricted mean.

:func:`dr_pseudo_outcomes` then gives each option's doubly robust pseudo-outcome
``mu(x, a) + 1{A = a} / e(a | x) * (Y* - mu(x, a))``, whose regression on the features is a
DR-learner's second stage, and whose mean over patients under a policy is the AIPW policy value.
"""

from __future__ import annotations

import numpy as np

from linewise.models.ipcw import check_horizon
from linewise.models.target import check_target


def _curves(values: np.ndarray, n: int, m: int, name: str) -> np.ndarray:
    curves = np.asarray(values, dtype=float)
    if curves.shape != (n, m):
        raise ValueError(f"{name} must have shape {(n, m)}, found {curves.shape}")
    if not np.all(np.isfinite(curves)) or np.any(curves < 0) or np.any(curves > 1):
        raise ValueError(f"{name} must hold probabilities in [0, 1]")
    return curves


def censoring_unbiased_rmst(
    y: np.ndarray,
    horizon: float,
    grid: np.ndarray,
    censoring_survival: np.ndarray,
    outcome_survival: np.ndarray,
    *,
    floor: float = 0.05,
) -> np.ndarray:
    """Return the augmented IPCW transform ``Y*`` of each row's restricted time (module docstring).

    Times are placed on ``grid`` the way the survival models place them: a follow-up time counts at the
    first grid time at or after it. ``horizon`` must be a grid time; the grid's times past it are not
    used.

    Parameters
    ----------
    y : structured array, shape (n,)
        Survival target (fields ``event``, ``time`` in months).
    horizon : float
        Restriction time ``tau``, positive.
    grid : ndarray of shape (m,)
        Increasing times at which both curves are given.
    censoring_survival : ndarray of shape (n, m)
        ``P(C > t | x)`` of each row at each grid time.
    outcome_survival : ndarray of shape (n, m)
        ``P(T > t | x, a)`` of each row (under the option it received) at each grid time.
    floor : float
        ``G`` below this is raised to it, bounding each inverse weight by ``1 / floor``.

    Returns
    -------
    ndarray of shape (n,)

    Raises
    ------
    ValueError
        On a grid that is not increasing or does not hold ``horizon``, curves of the wrong shape or outside
        [0, 1], or ``floor`` outside (0, 1].
    """
    check_horizon(horizon)
    event, time = check_target(y)
    grid = np.asarray(grid, dtype=float)
    if grid.ndim != 1 or grid.size == 0 or np.any(np.diff(grid) <= 0):
        raise ValueError("grid must be a non-empty increasing 1-d array")
    if not np.any(np.abs(grid - horizon) <= 1e-9):
        raise ValueError(f"the horizon {horizon} must be one of the grid times")
    if not 0 < floor <= 1:
        raise ValueError(f"floor must be in (0, 1], found {floor}")
    n = time.size
    used = grid <= horizon + 1e-9
    grid = grid[used]
    censoring = np.maximum(_curves(censoring_survival, n, used.size, "censoring_survival")[:, used], floor)
    survival = _curves(outcome_survival, n, used.size, "outcome_survival")[:, used]
    restricted = np.minimum(time, horizon)
    known = event | (time >= horizon)
    # the grid time at which each row's restricted follow-up counts: the first at or after it
    position = np.minimum(np.searchsorted(grid, restricted - 1e-9, side="left"), grid.size - 1)
    rows = np.arange(n)
    before = np.concatenate([np.ones((n, 1)), censoring[:, :-1]], axis=1)  # G(t-) on the grid
    observed_part = np.where(known, restricted / before[rows, position], 0.0)
    # m(u) = u + (integral from u to tau of S) / S(u), S a step curve on the grid
    widths = np.diff(np.concatenate([grid, [horizon]]))
    tail = np.cumsum((survival * widths)[:, ::-1], axis=1)[:, ::-1]
    remaining = np.divide(tail, survival, out=np.zeros_like(tail), where=survival > 0)
    expected = grid + remaining
    hazard = 1.0 - censoring / before
    index = np.arange(grid.size)
    # at risk of censoring at grid time u: still followed after u, or censored at u (events come first)
    censored_here = ~known[:, None] & (index[None, :] == position[:, None])
    at_risk = (index[None, :] < position[:, None]) | censored_here
    # a censoring in the last bin before the horizon counts there, with its compensator; a row followed
    # to the horizon is at risk only before it (its position is the horizon's)
    martingale = censored_here.astype(float) - at_risk * hazard
    augmentation = np.sum(expected / censoring * martingale, axis=1)
    return np.asarray(observed_part + augmentation)


def dr_pseudo_outcomes(
    observed: np.ndarray,
    propensity: np.ndarray,
    outcome: np.ndarray,
    adjusted: np.ndarray,
    *,
    clip: float = 0.01,
) -> np.ndarray:
    """Return each option's doubly robust pseudo-outcome ``mu(x, a) + 1{A = a} / e(a | x) (Y* - mu(x, a))``.

    Parameters
    ----------
    observed : ndarray of int, shape (n,)
        The option each row received, in ``0 .. k-1``.
    propensity : ndarray of shape (n, k)
        ``e(a | x)``, from models that did not see the row (cross-fitting).
    outcome : ndarray of shape (n, k)
        ``mu(x, a)``, the predicted restricted mean under each option, from models that did not see the row.
    adjusted : ndarray of shape (n,)
        The censoring-unbiased restricted time ``Y*`` (:func:`censoring_unbiased_rmst`).
    clip : float
        Propensities below it are raised to it before inversion.

    Returns
    -------
    ndarray of shape (n, k)

    Raises
    ------
    ValueError
        On inconsistent shapes, options outside ``0 .. k-1``, non-finite values or ``clip`` outside (0, 1].
    """
    probability = np.asarray(propensity, dtype=float)
    mu = np.asarray(outcome, dtype=float)
    target = np.asarray(adjusted, dtype=float)
    taken = np.asarray(observed)
    if probability.ndim != 2 or mu.shape != probability.shape or target.shape != (probability.shape[0],):
        raise ValueError(
            f"propensity {probability.shape}, outcome {mu.shape} and adjusted {target.shape} do not agree"
        )
    n, k = probability.shape
    if (
        taken.shape != (n,)
        or not np.issubdtype(taken.dtype, np.integer)
        or np.any((taken < 0) | (taken >= k))
    ):
        raise ValueError(f"observed must hold {n} option indices in 0..{k - 1}")
    if not (np.all(np.isfinite(probability)) and np.all(np.isfinite(mu)) and np.all(np.isfinite(target))):
        raise ValueError("propensity, outcome and adjusted must be finite")
    if not 0 < clip <= 1:
        raise ValueError(f"clip must be in (0, 1], found {clip}")
    followed = np.zeros((n, k))
    followed[np.arange(n), taken] = 1.0
    return np.asarray(mu + followed / np.maximum(probability, clip) * (target[:, None] - mu))
