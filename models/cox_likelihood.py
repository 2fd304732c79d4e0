"""The weighted Cox partial likelihood (Breslow ties): its gradient and Hessian, and Breslow's baseline.

A case weight counts as copies of its row: weight 2 gives the same gradient, Hessian and baseline as the
row written twice, and weight 0 the same as the row dropped (which XGBoost's built-in ``survival:cox``,
whose risk sets ignore the weights, does not). :class:`linewise.models.survival.BoostedCoxModel` boosts
with :func:`cox_gradient` and draws its curves from :func:`breslow_cumulative_hazard`.
"""

from __future__ import annotations

import numpy as np


def breslow_cumulative_hazard(
    time: np.ndarray, event: np.ndarray, weight: np.ndarray, margin: np.ndarray, grid: np.ndarray
) -> np.ndarray:
    """Weighted Breslow cumulative baseline hazard, evaluated at each grid time.

    ``H0(t) = sum_{event times s <= t} d(s) / R(s)`` with ``d(s)`` the weight of the events at ``s`` and
    ``R(s) = sum_{k: t_k >= s} w_k exp(eta_k)``.

    Parameters
    ----------
    time, event, weight : ndarray of shape (n,)
        Follow-up (months), event flags and case weights.
    margin : ndarray of shape (n,)
        Fitted log hazard ratios.
    grid : ndarray
        Times at which to evaluate ``H0``.

    Returns
    -------
    ndarray of shape (len(grid),)
    """
    risk = weight * np.exp(margin - margin.max())
    order = np.argsort(time, kind="stable")
    times, at_risk_tail = time[order], np.cumsum(risk[order][::-1])[::-1]
    event_times = np.unique(time[event])
    first = np.searchsorted(times, event_times, side="left")
    deaths = np.bincount(
        np.searchsorted(event_times, time[event]), weights=weight[event], minlength=len(event_times)
    )
    at_risk = at_risk_tail[first]
    # event times whose rows all carry zero weight leave nobody at risk: they add no hazard
    increments = np.divide(deaths, at_risk, out=np.zeros_like(deaths), where=at_risk > 0)
    cumulative = np.cumsum(increments) * np.exp(-margin.max())
    index = np.searchsorted(event_times, grid, side="right") - 1
    return np.where(index >= 0, cumulative[np.maximum(index, 0)], 0.0)


def cox_gradient(
    margin: np.ndarray, time: np.ndarray, event: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and diagonal Hessian of the weighted negative Cox log partial likelihood (Breslow ties).

    With risk sums ``R(t) = sum_{k: t_k >= t} w_k exp(eta_k)``, the loss is
    ``-sum_i w_i d_i (eta_i - log R(t_i))``; row ``k`` gets
    ``g_k = w_k exp(eta_k) A(t_k) - w_k d_k`` and ``h_k = w_k (exp(eta_k) A(t_k) - exp(eta_k)^2 B(t_k))``
    with ``A(t) = sum_{i: d_i, t_i <= t} w_i / R(t_i)`` and ``B(t)`` the same with ``R(t_i)^2``. The
    Hessian is the per-copy diagonal times the weight, so that weight 2 and a duplicated row give the
    same boosting step.

    Parameters
    ----------
    margin : ndarray of shape (n,)
        Current log hazard ratios.
    time, event, weight : ndarray of shape (n,)
        Follow-up (months), event flags and case weights.

    Returns
    -------
    gradient, hessian : ndarray of shape (n,)
    """
    shift = float(np.max(margin)) if len(margin) else 0.0
    risk = weight * np.exp(margin - shift)
    order = np.argsort(time, kind="stable")
    sorted_time = time[order]
    unique_times, first = np.unique(sorted_time, return_index=True)
    risk_sum = np.cumsum(risk[order][::-1])[::-1][first]  # R(t) at each distinct time (scaled)
    event_weight = np.bincount(
        np.searchsorted(unique_times, time[event]), weights=weight[event], minlength=len(unique_times)
    )
    positive = risk_sum > 0
    a_terms = np.divide(event_weight, risk_sum, out=np.zeros_like(event_weight), where=positive)
    b_terms = np.divide(event_weight, risk_sum**2, out=np.zeros_like(event_weight), where=positive)
    position = np.searchsorted(unique_times, time, side="right") - 1
    a_cumulative, b_cumulative = np.cumsum(a_terms)[position], np.cumsum(b_terms)[position]
    gradient = risk * a_cumulative - weight * event
    hessian = risk * a_cumulative - risk * np.exp(margin - shift) * b_cumulative
    return gradient, np.maximum(hessian, 0.0)


def cox_negative_log_likelihood(
    margin: np.ndarray, time: np.ndarray, event: np.ndarray, weight: np.ndarray
) -> float:
    """Weighted negative Cox log partial likelihood (Breslow ties) per unit of event weight.

    ``-sum_i w_i d_i (eta_i - log R(t_i)) / sum_i w_i d_i`` with ``R(t) = sum_{k: t_k >= t} w_k exp(eta_k)``:
    the loss whose gradient is :func:`cox_gradient`, as a mean so that parts of different sizes compare.

    Parameters
    ----------
    margin : ndarray of shape (n,)
        Log hazard ratios.
    time, event, weight : ndarray of shape (n,)
        Follow-up (months), event flags and case weights.

    Returns
    -------
    float
        NaN when no event has a positive weight.
    """
    event = np.asarray(event, dtype=bool) & (np.asarray(weight) > 0)  # a zero weight adds nothing
    total = float(np.sum(weight[event]))
    if total <= 0:
        return float("nan")
    shift = float(np.max(margin))
    risk = weight * np.exp(margin - shift)
    order = np.argsort(time, kind="stable")
    unique_times, first = np.unique(time[order], return_index=True)
    risk_sum = np.cumsum(risk[order][::-1])[::-1][first]
    log_risk = np.log(risk_sum[np.searchsorted(unique_times, time[event])]) + shift
    return float(-np.sum(weight[event] * (margin[event] - log_risk)) / total)
