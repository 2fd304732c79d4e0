"""Match each decision with a patient's record nearest in time: the one as-of join every module uses."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from linewise.features.joins import key_codes


def match_rows(
    decision_keys: np.ndarray,
    decision_days: np.ndarray,
    record_keys: np.ndarray,
    record_days: np.ndarray,
    *,
    direction: Literal["backward", "forward"],
    tolerance: int | None = None,
    allow_exact: bool = True,
) -> np.ndarray:
    """Return, for each decision, the position of the same patient's record nearest its day.

    The same choice as :func:`pandas.merge_asof` by patient: looking backward, the last record (in
    the records' order) of the latest day on or before the decision; looking forward, the first
    record of the earliest day on or after it.

    Parameters
    ----------
    decision_keys, record_keys : ndarray
        Patient keys of the decisions and of the records.
    decision_days : ndarray
        Decision days (whole days, never missing).
    record_days : ndarray of float
        Record days; records without a day (NaN) never match.
    direction : {"backward", "forward"}
        The latest record on or before the decision, or the first on or after it.
    tolerance : int, optional
        At most this many days away.
    allow_exact : bool
        Whether a record on the decision day itself matches.

    Returns
    -------
    ndarray of int64
        Positions in the records, -1 where none matches.
    """
    decision_codes, record_codes = key_codes([decision_keys], [record_keys])
    kept = np.flatnonzero(~np.isnan(np.asarray(record_days, dtype="float64")))
    if len(kept) == 0 or len(decision_codes) == 0:
        return np.full(len(decision_codes), -1, dtype=np.int64)
    day_of = np.asarray(record_days, dtype="float64")
    days = day_of[kept].astype(np.int64)
    when = np.asarray(decision_days, dtype="float64").astype(np.int64)
    low = min(int(days.min()), int(when.min()))
    span = max(int(days.max()), int(when.max())) - low + 1
    composite = record_codes[kept] * span + (days - low)
    order = np.argsort(composite, kind="stable")
    ordered, record_order = composite[order], kept[order]
    target = decision_codes * span + (when - low)
    if direction == "backward":
        found = np.searchsorted(ordered, target, side="right" if allow_exact else "left") - 1
        inside = found >= 0
    else:
        found = np.searchsorted(ordered, target, side="left" if allow_exact else "right")
        inside = found < len(ordered)
    found = np.clip(found, 0, len(ordered) - 1)
    matched = record_order[found]
    inside &= record_codes[matched] == decision_codes
    if tolerance is not None:
        inside &= np.abs(day_of[matched] - when) <= tolerance
    return np.where(inside, matched, -1)


def match_records(
    decisions: pd.DataFrame,
    records: pd.DataFrame,
    day_column: str,
    *,
    direction: Literal["backward", "forward"],
    tolerance: int | None = None,
    allow_exact: bool = True,
) -> pd.DataFrame:
    """Return, for each decision, the same patient's record nearest its ``decision_day``.

    Parameters
    ----------
    decisions : DataFrame
        With ``patient_key`` and ``decision_day``.
    records : DataFrame
        With ``patient_key`` and ``day_column`` (days from metastatic diagnosis).
    day_column : str
        The records' day column.
    direction : {"backward", "forward"}
        The latest record on or before the decision, or the first on or after it.
    tolerance : int, optional
        At most this many days away.
    allow_exact : bool
        Whether a record on the decision day itself matches.

    Returns
    -------
    DataFrame
        The matched records' columns (NaN where none), indexed like ``decisions``.
    """
    found = match_rows(
        decisions["patient_key"].to_numpy(dtype=object),
        decisions["decision_day"].to_numpy(dtype="float64"),
        records["patient_key"].to_numpy(dtype=object),
        records[day_column].to_numpy(dtype="float64", na_value=np.nan),
        direction=direction,
        tolerance=tolerance,
        allow_exact=allow_exact,
    )
    matched = records.drop(columns="patient_key").reset_index(drop=True)
    days = matched[day_column].to_numpy(dtype="float64", na_value=np.nan)
    matched[day_column] = np.nan_to_num(days).astype(np.int64)  # records without a day never match
    return matched.reindex(found).set_axis(decisions.index)
