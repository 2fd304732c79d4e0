"""The doubly robust value of a policy from pseudo-outcomes, with a patient-clustered interval.

Given each decision's doubly robust pseudo-outcome ``Gamma_i(a)`` of every option
(:meth:`linewise.models.cross_fitting.Nuisances.pseudo_outcomes`: augmented IPCW for the censoring, AIPW
for the option, from nuisance models that did not see the decision), the value of a policy ``pi`` is
``mean_i Gamma_i(pi_i)``: the mean rwPFS restricted to 24 months had every decision followed it. Its
standard error is clustered by patient, because one patient's decisions share that patient's course,
and treats the nuisance models as known (cross-fitting or a held-out part keeps that approximately
right).

:func:`recommendations` turns ranked values into a policy the way the recommender does: the best
supported option, and the option actually taken where none is supported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linewise.models.policy_value import Z_95


@dataclass(frozen=True)
class DRPolicyValue:
    """A policy's estimated value (months) with its 95% Wald interval."""

    value: float
    standard_error: float
    lower: float
    upper: float
    n: int


def recommendations(values: np.ndarray, support: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Return the best supported option of each decision, or the option taken where none is supported.

    Parameters
    ----------
    values : ndarray of shape (n, k)
        Ranked values (higher is better).
    support : ndarray of bool, shape (n, k)
    observed : ndarray of int, shape (n,)

    Returns
    -------
    ndarray of int, shape (n,)
    """
    best = np.argmax(np.where(support, values, -np.inf), axis=1)
    return np.asarray(np.where(np.asarray(support).any(axis=1), best, observed))


def clustered_mean(contributions: np.ndarray, clusters: np.ndarray) -> tuple[float, float]:
    """Mean of per-decision contributions and its standard error, clustered by patient.

    Parameters
    ----------
    contributions : ndarray of shape (n,)
    clusters : ndarray of int, shape (n,)
        The patient of each decision (``0 .. P-1``), at least two patients.

    Returns
    -------
    mean, standard_error : float
        ``sqrt(P / (P - 1) * sum_p (sum_{i in p} (psi_i - mean))^2) / n``.

    Raises
    ------
    ValueError
        If the shapes differ or there are fewer than two patients.
    """
    psi = np.asarray(contributions, dtype=float)
    groups = np.asarray(clusters)
    if psi.shape != groups.shape or psi.ndim != 1:
        raise ValueError(f"contributions {psi.shape} and clusters {groups.shape} must be one per decision")
    mean = float(psi.mean())
    totals = np.bincount(groups, weights=psi - mean)
    count = int(np.count_nonzero(np.bincount(groups)))
    if count < 2:
        raise ValueError("a clustered standard error needs at least two patients")
    return mean, float(np.sqrt(count / (count - 1) * np.sum(totals**2)) / len(psi))


def dr_policy_value(scores: np.ndarray, policy: np.ndarray, clusters: np.ndarray) -> DRPolicyValue:
    """Return the mean pseudo-outcome of ``policy``, with its patient-clustered 95% interval.

    Parameters
    ----------
    scores : ndarray of shape (n, k)
        Doubly robust pseudo-outcomes of every option.
    policy : ndarray of int, shape (n,)
        The option of each decision.
    clusters : ndarray of int, shape (n,)
        The patient of each decision.

    Returns
    -------
    DRPolicyValue
    """
    return clustered_value(np.asarray(scores)[np.arange(len(policy)), np.asarray(policy)], clusters)


def clustered_value(contributions: np.ndarray, clusters: np.ndarray) -> DRPolicyValue:
    """Return the mean of per-decision contributions with its patient-clustered 95% interval.

    Parameters
    ----------
    contributions : ndarray of shape (n,)
    clusters : ndarray of int, shape (n,)
        The patient of each decision.

    Returns
    -------
    DRPolicyValue
    """
    value, error = clustered_mean(contributions, clusters)
    return DRPolicyValue(value, error, value - Z_95 * error, value + Z_95 * error, len(contributions))
