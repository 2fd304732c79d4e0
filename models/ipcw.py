"""Inverse probability of censoring weighting (IPCW) of restricted survival times.

Censoring is handled by inverse probability of censoring weighting: the restricted time of a patient
whose event was seen before ``tau`` or whose follow-up reached ``tau`` is divided by the probability
``G(t-)`` of still being uncensored just before that time, and patients censored before ``tau``
contribute 0 (:func:`ipcw_restricted_time`). ``G`` is the Kaplan-Meier estimate of the censoring
distribution pooled over all patients (:func:`censoring_survival`), which assumes censoring is
independent of the features and of the option taken (random loss to follow-up or administrative end
of study). Covariate-dependent censoring would need a model of ``G(t | x, a)`` instead.
"""

from __future__ import annotations

import numpy as np

from linewise.models.target import check_target


def censoring_survival(
    time: np.ndarray, event: np.ndarray, at: np.ndarray, *, sample_weight: np.ndarray | None = None
) -> np.ndarray:
    """Kaplan-Meier survival of the censoring time, evaluated just before ``at`` (left limit ``G(t-)``).

    Censoring (``event`` False) is the "event" of this curve. Ties: at a time shared by events and
    censorings the events happen first, so patients with an event at ``t`` are not at risk of being
    censored at ``t``: the censoring hazard at ``t`` is ``censored(t) / (at_risk(t) - events(t))``. Being
    a left limit, ``G(t-)`` does not include the censorings at ``t`` itself.

    Parameters
    ----------
    time : array of float, shape (n,)
        Follow-up times, finite and non-negative.
    event : array of bool, shape (n,)
        True where the event was observed, False where the time is a censoring time.
    at : array of float
        Times at which to evaluate ``G(t-)``; any shape.
    sample_weight : array of float, shape (n,), optional
        Non-negative case weights (a weighted Kaplan-Meier); unit weights by default.

    Returns
    -------
    ndarray
        ``G(t-)`` with the shape of ``at``, non-increasing in ``t``, 1 at and before the first censoring.
    """
    time, event = _time_and_event(time, event)
    weights = check_sample_weight(sample_weight, time.shape[0])
    at = np.asarray(at, dtype=float)
    if np.isnan(at).any():
        raise ValueError("at must not contain NaN")
    unique_times, inverse = np.unique(time, return_inverse=True)
    events = np.bincount(inverse, weights=weights * event, minlength=unique_times.size)
    censored = np.bincount(inverse, weights=weights * ~event, minlength=unique_times.size)
    at_risk = np.cumsum((events + censored)[::-1])[::-1]
    # events at a tied time happen before the censorings; at least the censored are at risk (a floor
    # against the rounding of float weights, where the subtraction can lose a tiny censored weight)
    at_risk_of_censoring = np.maximum(at_risk - events, censored)
    hazard = np.divide(censored, at_risk_of_censoring, out=np.zeros_like(censored), where=censored > 0)
    survival_after = np.cumprod(1.0 - np.clip(hazard, 0.0, 1.0))
    survival_before = np.concatenate([[1.0], survival_after])
    return np.asarray(survival_before[np.searchsorted(unique_times, at, side="left")])


def ipcw_restricted_time(
    y: np.ndarray, horizon: float, *, sample_weight: np.ndarray | None = None
) -> np.ndarray:
    """IPCW-transformed restricted time ``Y* = Delta min(T, tau) / G(min(T, tau)-)``.

    ``Delta`` is 1 where ``min(T, tau)`` is known (the event was observed, or follow-up reached the
    horizon: ``T >= tau``) and 0 where the patient was censored before the horizon. ``G`` is
    :func:`censoring_survival` fitted on all rows. Under censoring independent of the features and the
    option, ``E[Y* | x, a] = E[min(T, tau) | x, a]``.

    Parameters
    ----------
    y : structured array, shape (n,)
        Survival target with fields ``event`` and ``time`` (months), see :mod:`linewise.models.target`.
    horizon : float
        Restriction time ``tau`` (months), positive.
    sample_weight : array of float, shape (n,), optional
        Case weights passed to the censoring Kaplan-Meier.

    Returns
    -------
    ndarray of shape (n,)
    """
    check_horizon(horizon)
    event, time = check_target(y)
    restricted = np.minimum(time, horizon)
    known = event | (time >= horizon)
    uncensored = censoring_survival(time, event, restricted, sample_weight=sample_weight)
    # G > 0 for every positively weighted row with Delta = 1 (it is in the risk set of every earlier
    # censoring); 0 only for zero-weight rows after the last censoring, which contribute nothing.
    return np.divide(
        known * restricted, uncensored, out=np.zeros_like(restricted), where=known & (uncensored > 0)
    )


def check_sample_weight(sample_weight: np.ndarray | None, n: int, *, minimum_positive: int = 1) -> np.ndarray:
    """Validate case weights, or return unit weights when there are none.

    Parameters
    ----------
    sample_weight : array of float, shape (n,), optional
        Finite, non-negative case weights.
    n : int
        Number of rows the weights must match.
    minimum_positive : int, default 1
        Fewest rows that must have a positive weight.

    Returns
    -------
    ndarray of shape (n,)

    Raises
    ------
    ValueError
        If the shape is wrong, a weight is negative or not finite, or too few weights are positive.
    """
    if sample_weight is None:
        weights = np.ones(n)
    else:
        weights = np.asarray(sample_weight, dtype=float)
        if weights.shape != (n,):
            raise ValueError(f"sample_weight must have shape ({n},), found {weights.shape}")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError("sample_weight must be finite and non-negative")
    if np.sum(weights > 0) < minimum_positive:
        found = int(np.sum(weights > 0))
        raise ValueError(
            f"sample_weight needs at least {minimum_positive} row(s) of positive weight, found {found} "
            "(the other weights are zero)"
        )
    return weights


def _time_and_event(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check follow-up times (finite, non-negative) and event flags of one length."""
    time, event = np.asarray(time, dtype=float), np.asarray(event)
    if time.ndim != 1 or event.shape != time.shape:
        raise ValueError(f"time and event must be 1-d of one length, found {time.shape} and {event.shape}")
    if not np.all(np.isfinite(time)) or np.any(time < 0):
        raise ValueError("time must be finite and non-negative")
    return time, event.astype(bool)


def check_horizon(horizon: float) -> None:
    """Refuse a restriction time that is not positive and finite.

    Parameters
    ----------
    horizon : float
        Restriction time ``tau`` (months).

    Raises
    ------
    ValueError
        If ``horizon`` is not positive and finite.
    """
    if not (np.isfinite(horizon) and horizon > 0):
        raise ValueError(f"horizon must be positive and finite, found {horizon}")
