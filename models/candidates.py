"""The options the recommender scores at a decision, and the treatment columns that encode them.

An option is a candidate class (:data:`linewise.features.regimens.CANDIDATE_CLASSES`) with or without
loco-regional therapy within 30 days: 8 classes x 2 = 16 options, TBP with and without radiotherapy
among them. Outcome models see the decision features followed by the treatment columns: one indicator
per class and one for local therapy. Counterfactual rows repeat a decision's features with the
treatment columns set to each option in turn.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

import numpy as np
import pandas as pd

from linewise.features.regimens import CANDIDATE_CLASSES


class Option(NamedTuple):
    """One next step: a candidate class, with or without loco-regional therapy."""

    candidate: str
    local_therapy: bool

    @property
    def label(self) -> str:
        """Readable name, e.g. ``tbp + local therapy``."""
        return f"{self.candidate} + local therapy" if self.local_therapy else self.candidate


#: Every option, in output order: each class without, then with, local therapy.
OPTIONS: Final = tuple(Option(c, local) for c in CANDIDATE_CLASSES for local in (False, True))
#: The reference of every difference: treatment beyond progression without local therapy.
BASELINE: Final = Option("tbp", False)
#: Names of the treatment columns appended to the features.
TREATMENT_COLUMNS: Final = (*(f"action_{c}" for c in CANDIDATE_CLASSES), "action_local_therapy")


def option_index(candidates: Any, local_therapy: Any) -> np.ndarray:
    """Index in :data:`OPTIONS` of each (candidate, local therapy) pair.

    Parameters
    ----------
    candidates : array-like of str
        Candidate classes.
    local_therapy : array-like of bool
        Local therapy flags, one per candidate.

    Returns
    -------
    ndarray of int

    Raises
    ------
    ValueError
        If a candidate is not one of :data:`linewise.features.regimens.CANDIDATE_CLASSES`.
    """
    codes = np.asarray(candidates, dtype=object)
    local = np.asarray(local_therapy, dtype=bool)
    position = {c: i for i, c in enumerate(CANDIDATE_CLASSES)}
    unknown = sorted({str(c) for c in codes} - set(position))
    if unknown:
        raise ValueError(f"not candidate classes: {unknown}")
    klass = np.fromiter((position[c] for c in codes), dtype=np.int64, count=len(codes))
    return np.asarray(2 * klass + local.astype(np.int64))


def with_treatment(X: Any, options: np.ndarray) -> np.ndarray:
    """Append the treatment columns of ``options`` (indices in :data:`OPTIONS`) to the features ``X``."""
    features = np.asarray(X, dtype=float)
    options = np.asarray(options, dtype=np.int64)
    treatment = np.zeros((len(features), len(TREATMENT_COLUMNS)))
    treatment[np.arange(len(features)), options // 2] = 1.0
    treatment[:, -1] = options % 2
    return np.hstack([features, treatment])


def counterfactual_rows(X: Any) -> np.ndarray:
    """Every decision of ``X`` under every option: shape ``(n * len(OPTIONS), p + 9)``, decision-major."""
    features = np.asarray(X, dtype=float)
    repeated = np.repeat(features, len(OPTIONS), axis=0)
    options = np.tile(np.arange(len(OPTIONS)), len(features))
    return with_treatment(repeated, options)


def training_decisions(examples: pd.DataFrame) -> pd.DataFrame:
    """Decisions the models learn from: an action among the candidates and a positive follow-up."""
    action = examples["action"].astype("string")
    keep = action.isin(CANDIDATE_CLASSES).fillna(False).to_numpy(bool)
    keep &= (examples["pfs_time"] > 0).to_numpy(bool) & (examples["os_time"] > 0).to_numpy(bool)
    return examples.loc[keep].reset_index(drop=True)
