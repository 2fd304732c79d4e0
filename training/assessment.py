"""What training reports about a fitted recommender on the test part: intervals, subgroups, positivity.

All figures are aggregates over decisions; nothing here returns a row of patient data.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd
from sksurv.metrics import concordance_index_censored

from linewise.features.examples import FEATURES
from linewise.models.candidates import OPTIONS, option_index, training_decisions, with_treatment
from linewise.models.concordance import resampled_concordance
from linewise.models.recommender import TreatmentRecommender

#: Patient-level bootstrap resamples of the test part for the 95% interval of the C-index.
C_INDEX_RESAMPLES: Final = 200
#: Subgroups reported in the model card, as (name, column of the examples, rule).
SUBGROUPS: Final = (
    ("line 1", "current_line", lambda v: v == 1),
    ("line 2", "current_line", lambda v: v == 2),
    ("line 3 or later", "current_line", lambda v: v >= 3),
    ("visceral disease", "visceral", lambda v: v == 1),
    ("no visceral disease", "visceral", lambda v: v == 0),
    ("oligoprogression", "oligoprogression", lambda v: v == 1),
)


def _risk_of_observed(model: TreatmentRecommender, decisions: pd.DataFrame) -> np.ndarray:
    rows = with_treatment(
        decisions[list(FEATURES)].to_numpy(float),
        option_index(decisions["action"].astype(str), decisions["local_therapy"].astype(bool)),
    )
    return np.asarray(model.models_["pfs"].predict(rows))


def c_index_interval(
    model: TreatmentRecommender, test: pd.DataFrame, rng: np.random.Generator
) -> dict[str, float]:
    """Harrell's C of rwPFS on the test decisions with a patient-level bootstrap 95% interval.

    Parameters
    ----------
    model : TreatmentRecommender
        Fitted recommender.
    test : DataFrame
        Test examples.
    rng : numpy.random.Generator
        Randomness of the resamples.

    Returns
    -------
    dict
        ``c_index_rwpfs``, ``c_index_rwpfs_lower``, ``c_index_rwpfs_upper``.
    """
    decisions = training_decisions(test)
    risk = _risk_of_observed(model, decisions)
    event = decisions["pfs_event"].astype(bool).to_numpy()
    time = decisions["pfs_time"].to_numpy(float)
    _, patient = np.unique(decisions["patient_key"].astype(str), return_inverse=True)
    patients = int(patient.max()) + 1
    # each resample as the multiplicity of every decision: how often its patient was drawn
    drawn = np.stack(
        [
            np.bincount(rng.integers(0, patients, patients), minlength=patients)
            for _ in range(C_INDEX_RESAMPLES)
        ]
    )
    replicates = resampled_concordance(event, time, risk, drawn[:, patient])
    replicates = replicates[~np.isnan(replicates)]
    point = concordance_index_censored(event, time, risk)[0]
    return {
        "c_index_rwpfs": float(point),
        "c_index_rwpfs_lower": float(np.quantile(replicates, 0.025)),
        "c_index_rwpfs_upper": float(np.quantile(replicates, 0.975)),
    }


def subgroup_table(model: TreatmentRecommender, test: pd.DataFrame) -> pd.DataFrame:
    """Decisions, events and Harrell's C of rwPFS in each subgroup of :data:`SUBGROUPS`."""
    decisions = training_decisions(test)
    risk = _risk_of_observed(model, decisions)
    event = decisions["pfs_event"].astype(bool).to_numpy()
    time = decisions["pfs_time"].to_numpy(float)
    rows: list[dict[str, Any]] = []
    for name, column, rule in SUBGROUPS:
        mask = np.asarray(rule(decisions[column].to_numpy(float)), dtype=bool)
        enough = mask.sum() >= 20 and event[mask].any()
        rows.append(
            {
                "subgroup": name,
                "decisions": int(mask.sum()),
                "events": int(event[mask].sum()),
                "c_index_rwpfs": (
                    float(concordance_index_censored(event[mask], time[mask], risk[mask])[0])
                    if enough
                    else float("nan")
                ),
            }
        )
    return pd.DataFrame(rows)


def positivity_table(model: TreatmentRecommender, test: pd.DataFrame) -> pd.DataFrame:
    """For each option, the share of test decisions where it is flagged "insufficient evidence"."""
    decisions = training_decisions(test)
    support = model.propensity_.support(decisions[list(FEATURES)].to_numpy(float))
    return pd.DataFrame(
        {
            "option": [option.label for option in OPTIONS],
            "unsupported_share": 1.0 - support.mean(axis=0),
        }
    )
