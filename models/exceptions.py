"""Warnings of numerical trouble, by category, so that a caller can filter or escalate each one.

Every warning here is a :class:`NumericalWarning`; tests run with warnings as errors, and the command
line prints each as one line (``linewise: warning: ...``).
"""

from __future__ import annotations


class NumericalWarning(UserWarning):
    """Base class: a result was computed, but a numerical safeguard changed it."""


class WeightTruncationWarning(NumericalWarning):
    """Propensities of options actually given fell below a floor and were raised to it.

    The inverse-probability weights of those decisions are therefore truncated: the decisions count less
    than their propensity says, and the estimate leans on the outcome model there (near-violation of
    positivity).
    """


class EmptyRiskSetWarning(NumericalWarning):
    """Part of the time grid lies after the last follow-up time of positive weight: nobody is at risk.

    A survival curve there is carried forward flat from the last time anyone was observed, so restricted
    means that reach into that part extrapolate.
    """
