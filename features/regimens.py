"""From a line's drugs to its candidate class: the one documented mapping (``docs/features.md``).

A regimen is classed against the patient's history: a CDK4/6 inhibitor is ``cdk_same_et_switch``
when it is the CDK4/6 inhibitor the patient last received, ``cdk_switch`` otherwise. The other
classes depend on the drugs alone, by priority: any ADC -> ``adc``; any chemotherapy -> ``chemo``;
a CDK4/6 inhibitor -> ``cdk_*``; an oral SERD -> ``oral_serd``; a PI3K/AKT/mTOR inhibitor ->
``et_targeted``; endocrine therapy only (aromatase inhibitor, fulvestrant, SERM, ovarian
suppression) -> ``et_mono``; anything else (a PARP inhibitor alone) -> ``other``, which like
``none`` is outside the candidate set. :func:`is_endocrine_cdk46i` says whether a first line is the
population's (endocrine therapy plus a CDK4/6 inhibitor).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from linewise.features.joins import key_codes
from linewise.features.vocabulary import DRUG_CATEGORY

#: Candidate next-line classes, in display order. ``tbp`` is the same regimen continued.
CANDIDATE_CLASSES: Final = (
    "tbp",
    "cdk_same_et_switch",
    "cdk_switch",
    "et_mono",
    "et_targeted",
    "oral_serd",
    "chemo",
    "adc",
)
ENDOCRINE_CATEGORIES: Final = frozenset({"ai", "fulvestrant", "serm", "ovarian_suppression"})


def drug_categories(drugs: str) -> frozenset[str]:
    """Return the categories of a ``+``-joined regimen.

    Parameters
    ----------
    drugs : str
        Drug codes joined by ``+``.

    Returns
    -------
    frozenset of str
        Categories from :data:`linewise.features.vocabulary.DRUG_CATEGORY`.
    """
    return frozenset(DRUG_CATEGORY[code] for code in drugs.split("+"))


def is_endocrine_cdk46i(drugs: str) -> bool:
    """Return whether a regimen is endocrine therapy plus a CDK4/6 inhibitor, and nothing else.

    The first line of the population linewise is built for: an aromatase inhibitor, fulvestrant or a
    SERM with a CDK4/6 inhibitor, with or without ovarian suppression.

    Parameters
    ----------
    drugs : str
        Drug codes joined by ``+``.

    Returns
    -------
    bool
    """
    categories = drug_categories(drugs)
    return (
        "cdk46i" in categories
        and bool(categories & (ENDOCRINE_CATEGORIES - {"ovarian_suppression"}))
        and categories <= ENDOCRINE_CATEGORIES | {"cdk46i"}
    )


def cdk_drug(drugs: str) -> str | None:
    """Return the CDK4/6 inhibitor of a regimen, or None."""
    found = [code for code in drugs.split("+") if DRUG_CATEGORY[code] == "cdk46i"]
    return found[0] if found else None


def regimen_class(drugs: str, last_cdk: str | None) -> str:
    """Return the candidate class of a new line.

    Parameters
    ----------
    drugs : str
        The new line's drug codes joined by ``+``.
    last_cdk : str or None
        The CDK4/6 inhibitor the patient received most recently before this line, if any.

    Returns
    -------
    str
        One of :data:`CANDIDATE_CLASSES` other than ``tbp``, or ``other``.
    """
    categories = drug_categories(drugs)
    if "adc" in categories:
        return "adc"
    if "chemo" in categories:
        return "chemo"
    if "cdk46i" in categories:
        return "cdk_same_et_switch" if cdk_drug(drugs) == last_cdk else "cdk_switch"
    if "oral_serd" in categories:
        return "oral_serd"
    if "pi3k_akt_mtor" in categories:
        return "et_targeted"
    if categories and categories <= ENDOCRINE_CATEGORIES:
        return "et_mono"
    return "other"


def classify_lines(lines: pd.DataFrame) -> pd.Series:
    """Return the class of every line given the patient's earlier lines.

    Parameters
    ----------
    lines : DataFrame
        With ``patient_key``, ``line_number`` and ``drugs``.

    Returns
    -------
    Series of str
        Indexed like ``lines``: the class of each line against the CDK4/6 inhibitor most
        recently received before it (line 1 is classed against none).
    """
    (patient,) = key_codes([lines["patient_key"].to_numpy(dtype=object)])
    numbers = lines["line_number"].to_numpy(dtype="float64", na_value=np.nan)
    order = np.lexsort((numbers, patient))  # by patient, then line number; stable
    regimen, regimens = pd.factorize(lines["drugs"].astype(str).to_numpy(dtype=object)[order])
    cdk = np.array([cdk_drug(drugs) or "" for drugs in regimens], dtype=object)[regimen]
    # the CDK4/6 inhibitor of the latest earlier line of the same patient that had one
    group_start = _group_starts(patient[order])
    latest = np.maximum.accumulate(np.where(cdk != "", np.arange(len(cdk)), -1))
    earlier = np.full(len(cdk), -1)
    earlier[1:] = latest[:-1]
    last_cdk = np.where(earlier >= group_start, cdk[np.maximum(earlier, 0)], "")
    (pair,) = key_codes([regimen, last_cdk])
    _, first, inverse = np.unique(pair, return_index=True, return_inverse=True)
    class_of = np.array(
        [regimen_class(regimens[regimen[row]], last_cdk[row] or None) for row in first], dtype=object
    )
    classes = np.empty(len(order), dtype=object)
    classes[order] = class_of[inverse.reshape(-1)]
    return pd.Series(classes, index=lines.index, dtype=object)


def _group_starts(groups: np.ndarray) -> np.ndarray:
    """For sorted group codes, the position where each row's group begins."""
    starts = np.ones(len(groups), dtype=bool)
    starts[1:] = groups[1:] != groups[:-1]
    return np.maximum.accumulate(np.where(starts, np.arange(len(groups)), 0))
