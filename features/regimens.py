"""From a line's drugs to its candidate class: the one documented mapping (``docs/features.md``).

A regimen is classed against the patient's history: a CDK4/6 inhibitor is ``cdk_same_et_switch``
when it is the CDK4/6 inhibitor the patient last received, ``cdk_switch`` otherwise. The other
classes depend on the drugs alone, by priority: any ADC -> ``adc``; any chemotherapy -> ``chemo``;
a CDK4/6 inhibitor -> ``cdk_*``; an oral SERD -> ``oral_serd``; a PI3K/AKT/mTOR inhibitor ->
``et_targeted``; endocrine therapy only (aromatase inhibitor, fulvestrant, SERM, ovarian
suppression) -> ``et_mono``; anything else (a PARP inhibitor alone) -> ``other``, which like
``none`` is outside the candidate set.
"""

from __future__ import annotations

from typing import Final

import pandas as pd

from features.vocabulary import DRUG_CATEGORY

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
#: Actions that are recorded but are not candidates.
NON_CANDIDATE_ACTIONS: Final = ("none", "other")
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
        Categories from :data:`features.vocabulary.DRUG_CATEGORY`.
    """
    return frozenset(DRUG_CATEGORY[code] for code in drugs.split("+"))


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
    ordered = lines.sort_values(["patient_key", "line_number"], kind="stable")
    drugs = ordered["drugs"].astype(str)
    unique = pd.Series(drugs.unique())
    cdk_of = dict(zip(unique, unique.map(cdk_drug), strict=True))
    cdk = drugs.map(cdk_of)
    last_cdk = cdk.groupby(ordered["patient_key"]).transform(lambda s: s.ffill().shift(1)).fillna("")
    pairs = pd.MultiIndex.from_arrays([drugs, last_cdk])
    class_of = {
        (regimen, previous): regimen_class(regimen, previous or None) for regimen, previous in pairs.unique()
    }
    classes = pd.Series([class_of[pair] for pair in pairs], index=ordered.index, dtype=object)
    return classes.reindex(lines.index)
