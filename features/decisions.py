"""Decision points of a lock: every progression of a living patient, the action taken, what followed.

The action is read from what happened after the progression (``docs/features.md``):

- ``tbp``: the line during which the progression happened goes on for at least ``tbp_min_days``
  (28) after it with the same drugs (an ongoing line counts up to the last contact);
- otherwise the class of the next line (:func:`linewise.features.regimens.classify_lines`);
- ``none``: no later line although the patient was followed (or died) afterwards;
- empty (NA) with ``open_decision`` true when the progression is less than ``tbp_min_days``
  before the lock date and no later line exists yet: what batch scoring will score;
- empty with ``open_decision`` false when follow-up stopped too early to tell (lost to follow-up).

``local_therapy`` is true when a loco-regional treatment is dated within ``local_therapy_days``
(30) on or after the decision. Outcomes are in months (days / 30.4375) from the decision:
rwPFS to the next progression or death, OS to death, both censored at the last contact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
from pandas.arrays import BooleanArray

from linewise.features.joins import first_occurrences, lookup, take
from linewise.features.loader import DataLock
from linewise.features.regimens import classify_lines
from linewise.features.timeline import match_rows

DAYS_PER_MONTH: Final = 365.25 / 12
DEFAULT_TBP_MIN_DAYS: Final = 28
DEFAULT_LOCAL_THERAPY_DAYS: Final = 30
KEYS: Final = ("patient_key", "line_number", "decision_day")
ACTIONS: Final = ("action", "local_therapy")
OUTCOMES: Final = ("pfs_time", "pfs_event", "os_time", "os_event")


def derive_decisions(
    lock: DataLock,
    *,
    tbp_min_days: int = DEFAULT_TBP_MIN_DAYS,
    local_therapy_days: int = DEFAULT_LOCAL_THERAPY_DAYS,
) -> pd.DataFrame:
    """Return one row per decision point with its action and outcomes.

    Parameters
    ----------
    lock : DataLock
        A validated lock.
    tbp_min_days : int
        Days the progressing line must go on after the progression to count as TBP.
    local_therapy_days : int
        Window after the decision in which loco-regional therapy is part of the action.

    Returns
    -------
    DataFrame
        Columns: the keys (``patient_key``, ``line_number``, ``decision_day``), ``pattern``,
        ``action`` (class code, ``none``, ``other``, or NA), ``open_decision``,
        ``local_therapy``, ``pfs_time``, ``pfs_event``, ``os_time``, ``os_event``; sorted by
        patient and day.
    """
    if tbp_min_days < 1 or local_therapy_days < 0:
        raise ValueError(
            "tbp_min_days must be >= 1 and local_therapy_days >= 0, "
            f"found {tbp_min_days} and {local_therapy_days}"
        )
    progressions, patients = lock.progressions, lock.patients
    keys = progressions["patient_key"].to_numpy(dtype=object)
    numbers = _floats(progressions["line_number"])
    days = _floats(progressions["day"])
    patient = lookup([keys], [patients["patient_key"].to_numpy(dtype=object)])
    death = take(_floats(patients["death_day"]), patient)
    alive = np.flatnonzero(np.isnan(death) | (death > days))
    alive = alive[first_occurrences([keys[alive], numbers[alive], days[alive]])]
    rank = pd.factorize(keys[alive], sort=True)[0]
    rows = alive[np.lexsort((numbers[alive], days[alive], rank))]  # by patient, day and line; stable
    patient = patient[rows]
    decisions = _Decisions(
        keys=keys[rows],
        line_number=numbers[rows],
        day=days[rows],
        last_contact_day=take(_floats(patients["last_contact_day"]), patient),
        death_day=death[rows],
        lock_day=take(_floats(patients["lock_day"]), patient),
    )
    action, open_decision = _actions(decisions, lock.lines, tbp_min_days)
    outcomes = _outcomes(decisions, progressions)
    return pd.DataFrame(
        {
            "patient_key": progressions["patient_key"].array.take(rows),
            "line_number": progressions["line_number"].array.take(rows),
            "decision_day": progressions["day"].array.take(rows),
            "pattern": progressions["pattern"].array.take(rows),
            "action": action,
            "open_decision": BooleanArray(open_decision, np.zeros(len(rows), dtype=bool)),
            "local_therapy": _local_therapy(decisions, lock.local_therapies, local_therapy_days),
            **outcomes,
        }
    )


@dataclass(frozen=True)
class _Decisions:
    """The decisions as arrays: keys, and the patient's follow-up repeated on each decision."""

    keys: np.ndarray
    line_number: np.ndarray
    day: np.ndarray
    last_contact_day: np.ndarray
    death_day: np.ndarray
    lock_day: np.ndarray


def _floats(column: pd.Series) -> np.ndarray:
    return column.to_numpy(dtype="float64", na_value=np.nan)


def _actions(decisions: _Decisions, lines: pd.DataFrame, tbp_min_days: int) -> tuple[np.ndarray, np.ndarray]:
    line_keys = lines["patient_key"].to_numpy(dtype=object)
    line_numbers = _floats(lines["line_number"])
    current = lookup([decisions.keys, decisions.line_number], [line_keys, line_numbers])
    following = lookup([decisions.keys, decisions.line_number + 1], [line_keys, line_numbers])
    end = take(_floats(lines["end_day"]), current)
    has_next = ~np.isnan(take(_floats(lines["start_day"]), following))
    day, death = decisions.day, decisions.death_day
    follow_end = np.where(np.isnan(death), decisions.last_contact_day, death)
    continued = np.where(np.isnan(end), follow_end, end) - day
    tbp = continued >= tbp_min_days
    recent = (decisions.lock_day - day) < tbp_min_days
    dead = ~np.isnan(death)
    line_end = np.where(np.isnan(end), day, end)
    followed_after_end = dead | ((follow_end - line_end) >= tbp_min_days)
    action = np.full(len(day), pd.NA, dtype=object)
    switched = ~tbp & has_next
    action[switched] = classify_lines(lines).to_numpy()[following[switched]]
    stopped = ~np.isnan(end) & followed_after_end & ~recent
    action[~tbp & ~has_next & (dead | stopped)] = "none"
    action[tbp] = "tbp"
    open_decision = pd.isna(action) & recent & ~has_next & ~dead
    return action, open_decision


def _local_therapy(decisions: _Decisions, local_therapies: pd.DataFrame, window_days: int) -> np.ndarray:
    found = match_rows(
        decisions.keys,
        decisions.day,
        local_therapies["patient_key"].to_numpy(dtype=object),
        _floats(local_therapies["day"]),
        direction="forward",
        tolerance=window_days,
    )
    return found >= 0


def _outcomes(decisions: _Decisions, progressions: pd.DataFrame) -> dict[str, np.ndarray]:
    days = _floats(progressions["day"])
    later = match_rows(
        decisions.keys,
        decisions.day,
        progressions["patient_key"].to_numpy(dtype=object),
        days,
        direction="forward",
        allow_exact=False,
    )
    death = decisions.death_day
    follow_end = np.where(np.isnan(death), decisions.last_contact_day, death)
    pfs_end = np.fmin(take(days, later), death)
    return {
        "pfs_time": (np.where(np.isnan(pfs_end), follow_end, pfs_end) - decisions.day) / DAYS_PER_MONTH,
        "pfs_event": ~np.isnan(pfs_end),
        "os_time": (follow_end - decisions.day) / DAYS_PER_MONTH,
        "os_event": ~np.isnan(death),
    }
