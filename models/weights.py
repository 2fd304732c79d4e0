"""Balancing weights for the outcome models, from the propensity of the option actually taken.

- ``none``: every decision weighs 1 (the naive baseline).
- ``ipw``: stabilised inverse probability, ``P(option) / e(option | x)``, truncated at a quantile
  (default the 99th) so that a few near-zero propensities cannot dominate the fit.
- ``overlap``: generalised overlap weights for several treatments (Li and Li 2019),
  ``(1 / e(option | x)) / sum_k (1 / e_k(x))``, which emphasise patients who could have received any
  option.

Weights are rescaled to mean 1. A propensity of the option actually given below
:data:`PROPENSITY_FLOOR` is raised to it, with a
:class:`linewise.models.exceptions.WeightTruncationWarning`.
"""

from __future__ import annotations

import warnings
from typing import Final

import numpy as np

from linewise.models.exceptions import WeightTruncationWarning

WEIGHTINGS: Final = ("none", "ipw", "overlap")
#: Propensities below this are raised to it before inverting.
PROPENSITY_FLOOR: Final = 1e-3


def balancing_weights(
    propensity: np.ndarray, observed: np.ndarray, kind: str, *, truncate_quantile: float = 0.99
) -> np.ndarray:
    """Return one weight per decision.

    Parameters
    ----------
    propensity : ndarray of shape (n, k)
        Probability of each option given the features (rows sum to 1).
    observed : ndarray of int, shape (n,)
        Index of the option actually taken.
    kind : {"none", "ipw", "overlap"}
        The weighting.
    truncate_quantile : float
        IPW weights above this quantile are set to it.

    Returns
    -------
    ndarray of shape (n,)
        Positive weights with mean 1. A decision whose option has propensity exactly 0 (a class the
        propensity model left out, given too rarely to be modelled) keeps the weight of an unweighted
        decision: there is nothing to balance it by.

    Raises
    ------
    ValueError
        On an unknown ``kind`` or mismatched shapes.

    Warns
    -----
    WeightTruncationWarning
        When the propensity of an option actually given is below :data:`PROPENSITY_FLOOR`.
    """
    if kind not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, found {kind!r}")
    propensity = np.asarray(propensity, dtype=float)
    observed = np.asarray(observed, dtype=np.int64)
    if propensity.ndim != 2 or observed.shape != (propensity.shape[0],):
        raise ValueError(
            f"need propensity (n, k) and observed (n,), found {propensity.shape} and {observed.shape}"
        )
    if len(observed) and (observed.min() < 0 or observed.max() >= propensity.shape[1]):
        raise ValueError("observed option index outside the propensity columns")
    if kind == "none":
        return np.ones(len(observed))
    floored = np.maximum(propensity, PROPENSITY_FLOOR)
    own = floored[np.arange(len(observed)), observed]
    raw = propensity[np.arange(len(observed)), observed]
    unmodelled = raw == 0
    below = int(np.sum((raw < PROPENSITY_FLOOR) & ~unmodelled))
    if below:
        warnings.warn(
            f"{below} of {len(observed)} decisions received an option whose propensity is below "
            f"{PROPENSITY_FLOOR}; it was raised to {PROPENSITY_FLOOR}, which truncates their weights",
            WeightTruncationWarning,
            stacklevel=2,
        )
    if kind == "ipw":
        marginal = np.bincount(observed, minlength=propensity.shape[1]) / max(len(observed), 1)
        weight = marginal[observed] / own
        weight = np.minimum(weight, np.quantile(weight, truncate_quantile))
    else:
        modelled = propensity > 0  # options the model gives no probability to do not enter the overlap
        weight = (1.0 / own) / np.sum(np.where(modelled, 1.0 / floored, 0.0), axis=1)
    if unmodelled.any():
        weight = np.where(unmodelled, 1.0, weight / np.mean(weight[~unmodelled]))
    return np.asarray(weight / weight.mean())
