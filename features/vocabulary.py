"""Controlled vocabularies of a data lock: the one place where codes are defined.

Every code in a lock is lower-case snake_case and must appear here. ``docs/data-lock.md`` lists
the same vocabularies for people; a test checks that the two agree.
"""

from __future__ import annotations

import difflib
from types import MappingProxyType
from typing import Final

MENOPAUSAL_STATUS: Final = frozenset({"pre", "peri", "post"})
HISTOLOGY: Final = frozenset({"nst", "lobular", "other"})
HER2_IHC: Final = frozenset({"0", "1+", "2+_ish_neg"})
#: HER2 results that put a patient outside the HR+/HER2- population.
HER2_POSITIVE: Final = frozenset({"3+", "2+_ish_pos"})
VITAL_STATUS: Final = frozenset({"alive", "dead"})
SITES: Final = frozenset(
    {
        "bone",
        "liver",
        "lung",
        "pleura",
        "lymph_node",
        "brain",
        "skin_soft_tissue",
        "peritoneum",
        "other",
    }
)
#: Sites counted as visceral disease.
VISCERAL_SITES: Final = frozenset({"liver", "lung", "pleura", "brain", "peritoneum"})
LINE_END_REASONS: Final = frozenset(
    {"progression", "toxicity", "death", "patient_choice", "completed", "other"}
)
PROGRESSION_PATTERNS: Final = frozenset({"oligo", "systemic"})
PROGRESSION_METHODS: Final = frozenset({"radiological", "clinical"})
LOCAL_THERAPY_TYPES: Final = frozenset({"radiotherapy", "surgery", "ablation"})
SAMPLES: Final = frozenset({"tissue", "ctdna"})

#: Markers whose value is a mutation call.
GENOMIC_MARKERS: Final = frozenset({"esr1", "pik3ca", "akt1", "pten", "brca1", "brca2"})
GENOMIC_VALUES: Final = frozenset({"mutated", "wild_type"})
#: Markers whose value is a percentage of stained cells (0-100).
PERCENT_MARKERS: Final = frozenset({"ki67", "er", "pgr"})
#: Markers whose value is a HER2 IHC code.
HER2_MARKERS: Final = frozenset({"her2_ihc"})
MARKERS: Final = GENOMIC_MARKERS | PERCENT_MARKERS | HER2_MARKERS

#: Drug code -> drug category. Categories: ``ai`` (aromatase inhibitor), ``fulvestrant``, ``serm``,
#: ``ovarian_suppression``, ``cdk46i``, ``oral_serd``, ``pi3k_akt_mtor``, ``parp``, ``chemo``, ``adc``.
#: The mapping from a regimen (a set of drugs) to a candidate class is built on these categories.
DRUG_CATEGORY: Final = MappingProxyType(
    {
        # endocrine backbones
        "letrozole": "ai",
        "anastrozole": "ai",
        "exemestane": "ai",
        "fulvestrant": "fulvestrant",
        "tamoxifen": "serm",
        "toremifene": "serm",
        "goserelin": "ovarian_suppression",
        "leuprorelin": "ovarian_suppression",
        "triptorelin": "ovarian_suppression",
        # CDK4/6 inhibitors
        "palbociclib": "cdk46i",
        "ribociclib": "cdk46i",
        "abemaciclib": "cdk46i",
        # oral SERDs
        "elacestrant": "oral_serd",
        "camizestrant": "oral_serd",
        "imlunestrant": "oral_serd",
        "giredestrant": "oral_serd",
        # PI3K/AKT/mTOR pathway
        "alpelisib": "pi3k_akt_mtor",
        "inavolisib": "pi3k_akt_mtor",
        "capivasertib": "pi3k_akt_mtor",
        "everolimus": "pi3k_akt_mtor",
        # PARP inhibitors (germline BRCA)
        "olaparib": "parp",
        "talazoparib": "parp",
        # chemotherapy
        "capecitabine": "chemo",
        "paclitaxel": "chemo",
        "nab_paclitaxel": "chemo",
        "docetaxel": "chemo",
        "eribulin": "chemo",
        "vinorelbine": "chemo",
        "doxorubicin": "chemo",
        "pegylated_liposomal_doxorubicin": "chemo",
        "epirubicin": "chemo",
        "cyclophosphamide": "chemo",
        "methotrexate": "chemo",
        "fluorouracil": "chemo",
        "gemcitabine": "chemo",
        "carboplatin": "chemo",
        "cisplatin": "chemo",
        # antibody-drug conjugates
        "trastuzumab_deruxtecan": "adc",
        "sacituzumab_govitecan": "adc",
        "datopotamab_deruxtecan": "adc",
    }
)
DRUG_CODES: Final = frozenset(DRUG_CATEGORY)


def is_her2_positive(value: str) -> bool:
    """Whether a HER2 result, however written, is positive (``3+``, ``2+_ISH_pos``, ``2+ fish pos``).

    Parameters
    ----------
    value : str
        The HER2 result as written.

    Returns
    -------
    bool
        True for a positive result; such results are never offered a negative code as a fix.
    """
    lowered = value.strip().lower()
    return lowered in HER2_POSITIVE or lowered.startswith("3") or "pos" in lowered


def closest_code(value: str, vocabulary: frozenset[str]) -> str | None:
    """Return the known code closest to ``value``, or None when nothing is close.

    Parameters
    ----------
    value : str
        The unknown code as written in the lock.
    vocabulary : frozenset of str
        The codes it should have been one of.

    Returns
    -------
    str or None
        The best match by :func:`difflib.get_close_matches` (cutoff 0.6) that is not a compound
        code made of ``value`` and more words, else the longest code
        that ``value`` starts with (``oligoprogression`` -> ``oligo``).
    """
    lowered = value.strip().lower()
    matches = [
        code
        for code in difflib.get_close_matches(lowered, sorted(vocabulary), n=3, cutoff=0.6)
        if not code.startswith(lowered + "_")  # trastuzumab is another drug than trastuzumab_deruxtecan
    ]
    if matches:
        return matches[0]
    affixed = [code for code in vocabulary if lowered.startswith(code)]
    return max(sorted(affixed), key=len) if affixed else None
