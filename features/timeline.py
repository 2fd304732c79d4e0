"""Match each decision with a patient's record nearest in time: the one as-of join every module uses."""

from __future__ import annotations

from typing import Literal

import pandas as pd


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
    left = decisions[["patient_key", "decision_day"]].reset_index(names="_row")
    left = left.astype({"decision_day": "int64"}).sort_values("decision_day", kind="stable")
    right = (
        records.dropna(subset=[day_column])
        .astype({day_column: "int64"})
        .sort_values(day_column, kind="stable")
    )
    matched = pd.merge_asof(
        left,
        right,
        left_on="decision_day",
        right_on=day_column,
        by="patient_key",
        direction=direction,
        tolerance=tolerance,
        allow_exact_matches=allow_exact,
        suffixes=("", "_record"),
    )
    return matched.set_index("_row").drop(columns=["patient_key", "decision_day"]).reindex(decisions.index)
