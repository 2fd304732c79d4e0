"""The one survival target type: scikit-survival's structured (event, time) array, built and checked here.

The boosted Cox model passes times, events and weights to its own objective
(:func:`linewise.models.survival.cox_gradient`), so no XGBoost label format is needed.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from sksurv.util import Surv

EVENT: Final = "event"
TIME: Final = "time"


class SurvivalTargetError(ValueError):
    """A survival target is not a structured (event, time) array with valid values."""


def make_target(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Build the structured survival target from times (months) and event flags.

    Parameters
    ----------
    time : array of float
        Follow-up times, positive and finite.
    event : array of bool
        True where the event was observed.

    Returns
    -------
    ndarray
        Structured array with fields ``event`` (bool) and ``time`` (float).
    """
    time, event = np.asarray(time, dtype=float), np.asarray(event)
    if time.shape != event.shape or time.ndim != 1:
        raise SurvivalTargetError(
            f"time and event must be 1-d of one length, found {time.shape} and {event.shape}"
        )
    return np.asarray(Surv.from_arrays(event=event.astype(bool), time=time, name_event=EVENT, name_time=TIME))


def check_target(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a structured target and return its (event, time) arrays.

    Raises
    ------
    SurvivalTargetError
        If ``y`` lacks the fields, has non-positive or non-finite times, or has no event at all.
    """
    names = getattr(getattr(y, "dtype", None), "names", None)
    if not names or EVENT not in names or TIME not in names:
        raise SurvivalTargetError(
            f"expected a structured array with fields {EVENT!r} and {TIME!r}, found {names}"
        )
    event, time = np.asarray(y[EVENT], dtype=bool), np.asarray(y[TIME], dtype=float)
    if not np.all(np.isfinite(time)) or np.any(time <= 0):
        raise SurvivalTargetError("survival times must be positive and finite")
    if not event.any():
        raise SurvivalTargetError("the target has no observed event")
    return event, time
