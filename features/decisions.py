"""Decision points of a lock: every progression of a living patient, the action taken, what followed.

The action is read from what happened after the progression (``docs/features.md``):

- ``tbp``: the line during which the progression happened goes on for at least ``tbp_min_days``
  (28) after it with the same drugs (an ongoing line counts up to the last contact);
- otherwise the class of the next line (:func:`features.regimens.classify_lines`);
- ``none``: no later line although the patient was followed (or died) afterwards;
- empty (NA) with ``open_decision`` true when the progression is less than ``tbp_min_days``
  before the lock date and no later line exists yet: what batch scoring will score;
- empty with ``open_decision`` false when follow-up stopped too early to tell (lost to follow-up).

``local_therapy`` is true when a loco-regional treatment is dated within ``local_therapy_days``
(30) on or after the decision. Outcomes are in months (days / 30.4375) from the decision:
rwPFS to the next progression or death, OS to death, both censored at the last contact.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from features.loader import DataLock
from features.regimens import classify_lines
from features.timeline import match_records

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
    patients = lock.patients[["patient_key", "last_contact_day", "death_day", "lock_day"]]
    decisions = (
        lock.progressions[["patient_key", "line_number", "day", "pattern"]]
        .rename(columns={"day": "decision_day"})
        .merge(patients, on="patient_key", how="left")
    )
    alive = decisions["death_day"].isna() | (decisions["death_day"] > decisions["decision_day"])
    decisions = decisions[alive].drop_duplicates(list(KEYS))
    decisions = decisions.sort_values(["patient_key", "decision_day", "line_number"], kind="stable")
    decisions = decisions.reset_index(drop=True)
    decisions = _with_actions(decisions, lock.lines, tbp_min_days)
    decisions["local_therapy"] = _local_therapy(decisions, lock.local_therapies, local_therapy_days)
    decisions = _with_outcomes(decisions, lock.progressions)
    columns = [*KEYS, "pattern", "action", "open_decision", "local_therapy", *OUTCOMES]
    return decisions[columns]


def _with_actions(decisions: pd.DataFrame, lines: pd.DataFrame, tbp_min_days: int) -> pd.DataFrame:
    lines = lines.assign(line_class=classify_lines(lines))
    current = lines[["patient_key", "line_number", "end_day"]]
    following = lines[["patient_key", "line_number", "start_day", "line_class"]].assign(
        line_number=lines["line_number"] - 1
    )
    merged = decisions.merge(current, on=["patient_key", "line_number"], how="left").merge(
        following.rename(columns={"start_day": "next_start_day"}),
        on=["patient_key", "line_number"],
        how="left",
    )
    follow_end = merged["death_day"].fillna(merged["last_contact_day"])
    continued = merged["end_day"].fillna(follow_end) - merged["decision_day"]
    has_next = merged["next_start_day"].notna()
    tbp = continued >= tbp_min_days
    recent = (merged["lock_day"] - merged["decision_day"]) < tbp_min_days
    dead = merged["death_day"].notna()
    line_end = merged["end_day"].fillna(merged["decision_day"])
    followed_after_end = dead | ((follow_end - line_end) >= tbp_min_days)
    action = pd.Series(pd.NA, index=merged.index, dtype="object")
    action[~tbp & has_next] = merged.loc[~tbp & has_next, "line_class"]
    stopped = merged["end_day"].notna() & followed_after_end & ~recent
    action[~tbp & ~has_next & (dead | stopped)] = "none"
    action[tbp] = "tbp"
    merged["open_decision"] = action.isna() & recent & ~has_next & ~dead
    merged["action"] = action
    return merged.drop(columns=["end_day", "next_start_day", "line_class"])


def _local_therapy(decisions: pd.DataFrame, local_therapies: pd.DataFrame, window_days: int) -> pd.Series:
    therapies = local_therapies[["patient_key", "day"]]
    matched = match_records(decisions, therapies, "day", direction="forward", tolerance=window_days)
    return matched["day"].notna().astype(bool)


def _with_outcomes(decisions: pd.DataFrame, progressions: pd.DataFrame) -> pd.DataFrame:
    later = progressions[["patient_key", "day"]].drop_duplicates()
    next_day = match_records(decisions, later, "day", direction="forward", allow_exact=False)["day"]
    follow_end = decisions["death_day"].fillna(decisions["last_contact_day"]).astype("float64")
    death = decisions["death_day"].astype("float64")
    pfs_end = np.fmin(next_day.astype("float64"), death)
    out = decisions.copy()
    out["pfs_event"] = pfs_end.notna()
    out["pfs_time"] = (pfs_end.fillna(follow_end) - out["decision_day"].astype("float64")) / DAYS_PER_MONTH
    out["os_event"] = death.notna()
    out["os_time"] = (follow_end - out["decision_day"].astype("float64")) / DAYS_PER_MONTH
    return out
