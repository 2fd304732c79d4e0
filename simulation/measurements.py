"""The lock's measurement tables of a simulated cohort: biomarkers and ECOG performance status.

Dates are calendar days from each patient's metastatic diagnosis (:func:`lock_day`), written as ISO
text (:func:`lock_dates`); a measurement after the patient's last contact is not written.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from linewise.features.decisions import DAYS_PER_MONTH
from linewise.simulation.cohort import Cohort


def lock_day(cohort: Cohort, pid: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Calendar day (days since 1970-01-01) of ``months`` after each patient's metastatic diagnosis."""
    return np.asarray(cohort.dx_day[pid] + np.floor(months * DAYS_PER_MONTH).astype(np.int64))


def lock_dates(days: np.ndarray) -> np.ndarray:
    """ISO dates (``YYYY-MM-DD`` text) of calendar days."""
    return np.datetime_as_string(np.asarray(days, dtype="int64").astype("datetime64[D]"), unit="D")


def _panel_rows(cohort: Cohort, pid: np.ndarray, time: np.ndarray, sample: str) -> list[pd.DataFrame]:
    """PIK3CA, AKT1 and PTEN results of one panel per patient in ``pid``."""
    return [
        pd.DataFrame(
            {
                "pid": pid,
                "t": time,
                "marker": marker,
                "sample": sample,
                "value": np.where(values[pid], "mutated", "wild_type"),
            }
        )
        for marker, values in (("pik3ca", cohort.pik3ca), ("akt1", cohort.akt1), ("pten", cohort.pten))
    ]


def biomarker_table(
    cohort: Cohort,
    ids: np.ndarray,
    first: dict[str, np.ndarray],
    decisions: dict[str, np.ndarray],
    end: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Return the ``biomarkers`` table: tissue panels, then ctDNA ESR1 and panels at decisions, to ``end``."""
    rows = []
    panel = first["panel"]
    pid = first["pid"][panel]
    time = first["panel_time"][panel]
    rows += _panel_rows(cohort, pid, time, "tissue")
    if decisions:
        tested = decisions["esr1_tested"]
        pid = decisions["pid"][tested]
        time = np.maximum(decisions["t"][tested] - rng.uniform(0.0, 0.3, tested.sum()), 0.0)
        rows.append(
            pd.DataFrame(
                {
                    "pid": pid,
                    "t": time,
                    "marker": "esr1",
                    "sample": "ctdna",
                    "value": np.where(decisions["esr1"][tested], "mutated", "wild_type"),
                }
            )
        )
        panel_late = decisions["panel_tested"]
        pid = decisions["pid"][panel_late]
        time = np.maximum(decisions["t"][panel_late] - rng.uniform(0.0, 0.3, panel_late.sum()), 0.0)
        rows += _panel_rows(cohort, pid, time, "ctdna")
    frame = pd.concat(rows, ignore_index=True)
    frame = frame[frame["t"].to_numpy() <= end[frame["pid"].to_numpy()]].sort_values(
        ["pid", "t", "marker"], kind="stable"
    )
    pid = frame["pid"].to_numpy()
    return pd.DataFrame(
        {
            "patient_id": ids[pid],
            "date": lock_dates(lock_day(cohort, pid, frame["t"].to_numpy())),
            "marker": frame["marker"].to_numpy(),
            "value": frame["value"].to_numpy(),
            "sample": frame["sample"].to_numpy(),
        }
    )


def performance_table(
    cohort: Cohort,
    ids: np.ndarray,
    decisions: dict[str, np.ndarray],
    end: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Return the ``performance_status`` table: ECOG at baseline and at decisions where recorded."""
    baseline = cohort.ecog_recorded
    rows = [
        pd.DataFrame(
            {
                "pid": np.flatnonzero(baseline),
                "t": rng.uniform(0.0, 0.5, baseline.sum()),
                "ecog": cohort.ecog[baseline],
            }
        )
    ]
    if decisions:
        recorded = decisions["ecog_recorded"]
        rows.append(
            pd.DataFrame(
                {
                    "pid": decisions["pid"][recorded],
                    "t": np.maximum(decisions["t"][recorded] - rng.uniform(0.0, 0.3, recorded.sum()), 0),
                    "ecog": decisions["ecog"][recorded],
                }
            )
        )
    frame = pd.concat(rows, ignore_index=True)
    frame = frame[frame["t"].to_numpy() <= end[frame["pid"].to_numpy()]].sort_values(
        ["pid", "t"], kind="stable"
    )
    pid = frame["pid"].to_numpy()
    return pd.DataFrame(
        {
            "patient_id": ids[pid],
            "date": lock_dates(lock_day(cohort, pid, frame["t"].to_numpy())),
            "ecog": frame["ecog"].to_numpy(),
        }
    )
