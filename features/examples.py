"""Line-level decision examples: one row per decision with only what was known that day.

Every feature is computed from records dated on or before the decision day (``docs/features.md``
lists each with its definition and window). Missing values stay visible: NaN, with an explicit
``*_known`` or ``*_tested`` column where the absence itself is informative; nothing is imputed.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import numpy as np
import pandas as pd
from pandas.arrays import StringArray

from linewise.features.decisions import ACTIONS, DAYS_PER_MONTH, KEYS, OUTCOMES, derive_decisions
from linewise.features.joins import first_occurrences, inner_pairs, key_codes, lookup, take
from linewise.features.loader import DataLock
from linewise.features.regimens import is_endocrine_cdk46i
from linewise.features.timeline import match_rows
from linewise.features.vocabulary import DRUG_CATEGORY, SITES, VISCERAL_SITES

ECOG_WINDOW_DAYS: Final = 90
PRIMARY_RESISTANCE_MONTHS: Final = 6.0
GENOMIC: Final = ("esr1", "pik3ca", "akt1", "pten", "brca1", "brca2")
PRIOR_DRUGS: Final = {
    "prior_aromatase_inhibitor": {"letrozole", "anastrozole", "exemestane"},
    "prior_fulvestrant": {"fulvestrant"},
    "prior_tamoxifen": {"tamoxifen", "toremifene"},
    "prior_palbociclib": {"palbociclib"},
    "prior_ribociclib": {"ribociclib"},
    "prior_abemaciclib": {"abemaciclib"},
    "prior_oral_serd": {code for code, category in DRUG_CATEGORY.items() if category == "oral_serd"},
    "prior_pi3k_akt_mtor": {code for code, category in DRUG_CATEGORY.items() if category == "pi3k_akt_mtor"},
    "prior_chemotherapy": {code for code, category in DRUG_CATEGORY.items() if category == "chemo"},
    "prior_adc": {code for code, category in DRUG_CATEGORY.items() if category == "adc"},
}
CURRENT_DRUGS: Final = {
    "current_cdk46i": {code for code, category in DRUG_CATEGORY.items() if category == "cdk46i"},
    "current_aromatase_inhibitor": PRIOR_DRUGS["prior_aromatase_inhibitor"],
    "current_fulvestrant": {"fulvestrant"},
    "current_chemotherapy": PRIOR_DRUGS["prior_chemotherapy"],
}
_SITE_ORDER = tuple(sorted(SITES))
_HER2_LOW: Final = MappingProxyType({"0": 0.0, "1+": 1.0, "2+_ish_neg": 1.0})

#: Feature columns, in table order.
FEATURES: Final = (
    "age_at_decision",
    "menopause_pre",
    "menopause_peri",
    "histology_lobular",
    "histology_other",
    "er_percent",
    "pgr_percent",
    "ki67_percent",
    "ki67_known",
    "her2_low",
    "grade",
    "de_novo",
    "decision_year",
    "months_since_metastatic_dx",
    "ecog",
    "ecog_known",
    *(f"site_{site}" for site in _SITE_ORDER),
    "visceral",
    "bone_only",
    "site_count",
    "new_site_count",
    "new_visceral_site",
    "oligoprogression",
    "current_line",
    "months_on_current_line",
    "pfs1_months",
    "previous_progressions",
    "endocrine_primary_resistance",
    *PRIOR_DRUGS,
    *CURRENT_DRUGS,
    *(f"{marker}_{state}" for marker in GENOMIC for state in ("mutated", "tested")),
    "pathway_altered",
    "pathway_tested",
)


def build_examples(lock: DataLock, *, tbp_min_days: int = 28, local_therapy_days: int = 30) -> pd.DataFrame:
    """Return the decision examples of a lock: keys, features, action and outcomes.

    Parameters
    ----------
    lock : DataLock
        A validated lock (or one patient's history loaded by :func:`linewise.features.patient.load_patient`).
    tbp_min_days, local_therapy_days : int
        Passed to :func:`linewise.features.decisions.derive_decisions`.

    Returns
    -------
    DataFrame
        One row per decision: ``patient_key``, ``line_number``, ``decision_day``, the columns of
        :data:`FEATURES` (float), ``action``, ``local_therapy``, ``open_decision``, the
        outcomes, and ``first_line_et_cdk46i`` (whether the patient's first line was endocrine
        therapy plus a CDK4/6 inhibitor: the population linewise is built for); sorted by patient
        and day.
    """
    decisions = derive_decisions(lock, tbp_min_days=tbp_min_days, local_therapy_days=local_therapy_days)
    at = _At(
        keys=decisions["patient_key"].to_numpy(dtype=object),
        line_number=_floats(decisions["line_number"]),
        day=_floats(decisions["decision_day"]),
        pattern=_texts(decisions["pattern"]),
    )
    features = {
        **_baseline(lock, at),
        **_ecog(lock, at),
        **_sites(lock, at),
        **_progression(lock, at),
        **_lines(lock, at),
        **_biomarkers(lock, at),
    }
    action = decisions["action"].to_numpy(dtype=object)
    outcome = [name for name in (*ACTIONS, "open_decision", *OUTCOMES) if name != "action"]
    columns = {
        **{key: decisions[key].array for key in KEYS},
        **{name: features[name] for name in FEATURES},
        "action": StringArray(np.where(pd.isna(action), pd.NA, action)),
        **{name: decisions[name].array for name in outcome},
        "first_line_et_cdk46i": features["first_line_et_cdk46i"],
    }
    return pd.DataFrame(columns)


@dataclass(frozen=True)
class _At:
    """The decisions, as arrays: whose, which line, which day, and the progression's pattern."""

    keys: np.ndarray
    line_number: np.ndarray
    day: np.ndarray
    pattern: np.ndarray


def _floats(column: pd.Series) -> np.ndarray:
    return column.to_numpy(dtype="float64", na_value=np.nan)


def _texts(column: pd.Series) -> np.ndarray:
    """Text as objects, None where missing."""
    return column.to_numpy(dtype=object, na_value=None)


def _equals(values: np.ndarray, code: str) -> np.ndarray:
    """1.0 where ``values`` is ``code``, 0.0 where it is another value, NaN where it is missing."""
    return np.where(pd.isna(values), np.nan, np.equal(values, code).astype(float))


def _patient_row(lock: DataLock, at: _At) -> np.ndarray:
    return lookup([at.keys], [lock.patients["patient_key"].to_numpy(dtype=object)])


def _pairs(at: _At, record_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (decision, record) pair of the same patient, as positions."""
    decision_codes, record_codes = key_codes([at.keys], [record_keys])
    return inner_pairs(decision_codes, record_codes)


def _positions(values: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Return the position of each value in ``names``, -1 where it is not there (or missing)."""
    code, distinct = pd.factorize(values)
    position = [names.index(value) if value in names else -1 for value in distinct]
    return np.array([*position, -1], dtype=np.int64)[code]  # code -1 (missing) reads the last entry


def _baseline(lock: DataLock, at: _At) -> dict[str, np.ndarray]:
    patients = lock.patients
    row = _patient_row(lock, at)
    number = lambda column: take(_floats(patients[column]), row)  # noqa: E731
    text = lambda column: take(_texts(patients[column]), row, None)  # noqa: E731
    day = at.day
    her2 = text("her2_ihc")
    ki67 = _latest_percent(lock, at, "ki67", number("ki67_percent"))
    return {
        "age_at_decision": number("age_at_metastatic_dx") + day / 365.25,
        "menopause_pre": _equals(text("menopausal_status"), "pre"),
        "menopause_peri": _equals(text("menopausal_status"), "peri"),
        "histology_lobular": _equals(text("histology"), "lobular"),
        "histology_other": _equals(text("histology"), "other"),
        "er_percent": _latest_percent(lock, at, "er", number("er_percent")),
        "pgr_percent": _latest_percent(lock, at, "pgr", number("pgr_percent")),
        "ki67_percent": ki67,
        "ki67_known": (~np.isnan(ki67)).astype(float),
        "her2_low": np.array([_HER2_LOW.get(value, np.nan) for value in her2], dtype=float),
        "grade": number("grade"),
        "de_novo": number("de_novo"),
        "decision_year": number("metastatic_dx_year")
        + (number("metastatic_dx_month") - 0.5) / 12.0
        + day / 365.25,
        "months_since_metastatic_dx": day / DAYS_PER_MONTH,
    }


def _latest_percent(lock: DataLock, at: _At, marker: str, baseline: np.ndarray) -> np.ndarray:
    tests = lock.biomarkers
    chosen = np.flatnonzero(np.equal(_texts(tests["marker"]), marker))
    found = match_rows(
        at.keys,
        at.day,
        tests["patient_key"].to_numpy(dtype=object)[chosen],
        _floats(tests["day"])[chosen],
        direction="backward",
    )
    latest = take(_texts(tests["value"])[chosen], found, None)
    numbers = np.asarray(pd.to_numeric(latest, errors="coerce"), dtype=float)
    return np.where(np.isnan(numbers), baseline, numbers)


def _ecog(lock: DataLock, at: _At) -> dict[str, np.ndarray]:
    records = lock.performance_status
    found = match_rows(
        at.keys,
        at.day,
        records["patient_key"].to_numpy(dtype=object),
        _floats(records["day"]),
        direction="backward",
        tolerance=ECOG_WINDOW_DAYS,
    )
    ecog = take(_floats(records["ecog"]), found)
    return {"ecog": ecog, "ecog_known": (~np.isnan(ecog)).astype(float)}


def _sites(lock: DataLock, at: _At) -> dict[str, np.ndarray]:
    metastases = lock.metastases
    decision, record = _pairs(at, metastases["patient_key"].to_numpy(dtype=object))
    site = _positions(_texts(metastases["site"]), _SITE_ORDER)[record]
    seen = (_floats(metastases["day_detected"])[record] <= at.day[decision]) & (site >= 0)
    found = np.zeros((len(at.day), len(_SITE_ORDER)))
    found[decision[seen], site[seen]] = 1.0
    out = {f"site_{name}": found[:, index] for index, name in enumerate(_SITE_ORDER)}
    visceral = [index for index, name in enumerate(_SITE_ORDER) if name in VISCERAL_SITES]
    count = found.sum(axis=1)
    return {
        **out,
        "visceral": found[:, visceral].max(axis=1, initial=0.0),
        "site_count": count,
        "bone_only": ((out["site_bone"] == 1) & (count == 1)).astype(float),
    }


def _progression(lock: DataLock, at: _At) -> dict[str, np.ndarray]:
    progressions = lock.progressions
    keys = progressions["patient_key"].to_numpy(dtype=object)
    days = _floats(progressions["day"])
    own = lookup([at.keys, at.line_number, at.day], [keys, _floats(progressions["line_number"]), days])
    new_sites = take(_texts(progressions["new_sites"]), own, None)
    code, lists = pd.factorize(np.where(pd.isna(new_sites), "", new_sites))
    parts = [str(sites).split("+") for sites in lists]
    # earlier progressions of the patient: distinct (line, day) on or before the decision, less itself
    distinct = first_occurrences([keys, _floats(progressions["line_number"]), days])
    decision, record = _pairs(at, keys[distinct])
    earlier = days[distinct][record] <= at.day[decision]
    same_day = days[distinct][record] == at.day[decision]
    counted = np.bincount(decision[earlier], minlength=len(at.day))
    listed = np.bincount(decision[same_day], minlength=len(at.day)) > 0
    return {
        "new_site_count": np.array([float(sum(1 for p in sites if p)) for sites in parts])[code],
        "new_visceral_site": np.array([float(any(p in VISCERAL_SITES for p in sites)) for sites in parts])[
            code
        ],
        "oligoprogression": _equals(at.pattern, "oligo"),
        "previous_progressions": np.where(listed, counted - 1, 0).astype(float),
    }


def _lines(lock: DataLock, at: _At) -> dict[str, np.ndarray]:
    lines, progressions = lock.lines, lock.progressions
    keys, numbers = lines["patient_key"].to_numpy(dtype=object), _floats(lines["line_number"])
    starts, drugs = _floats(lines["start_day"]), _texts(lines["drugs"])
    current = lookup([at.keys, at.line_number], [keys, numbers])
    first_line = lookup([at.keys, np.ones(len(at.day))], [keys, numbers])
    decision, record = _pairs(at, progressions["patient_key"].to_numpy(dtype=object))
    on_first = _floats(progressions["line_number"])[record] == 1
    first_progression = np.full(len(at.day), np.inf)
    np.minimum.at(first_progression, decision[on_first], _floats(progressions["day"])[record[on_first]])
    first_progression[np.isinf(first_progression)] = np.nan
    pfs1 = first_progression - take(starts, first_line)
    known_pfs1 = first_progression <= at.day
    pfs1_months = np.where(known_pfs1, pfs1 / DAYS_PER_MONTH, np.nan)
    first_drugs = take(np.where(pd.isna(drugs), "", drugs), first_line, "")
    code, first_regimens = pd.factorize(first_drugs)
    first_in_population = [bool(regimen) and is_endocrine_cdk46i(regimen) for regimen in first_regimens]
    out = {
        # not a feature: whether the first line was the population's (a scope warning when not)
        "first_line_et_cdk46i": np.array(first_in_population, dtype=bool)[code],
        "current_line": at.line_number,
        "months_on_current_line": (at.day - take(starts, current)) / DAYS_PER_MONTH,
        "pfs1_months": pfs1_months,
        "endocrine_primary_resistance": np.where(
            known_pfs1, (pfs1_months < PRIMARY_RESISTANCE_MONTHS).astype(float), np.nan
        ),
    }
    # the progressing line and those before it: never the next line, even when it starts that same day
    decision, record = _pairs(at, keys)
    started = (numbers[record] <= at.line_number[decision]) & (starts[record] <= at.day[decision])
    regimen, regimens = pd.factorize(np.where(pd.isna(drugs), "", drugs))
    prior = _drug_flags(regimens, PRIOR_DRUGS)[regimen]
    received = np.zeros(len(at.day), dtype=np.int64)
    np.bitwise_or.at(received, decision[started], prior[record[started]])
    for bit, column in enumerate(PRIOR_DRUGS):
        out[column] = ((received >> bit) & 1).astype(float)
    current_regimen = take(np.where(pd.isna(drugs), "", drugs), current, "")
    code, current_regimens = pd.factorize(current_regimen)
    flags = _drug_flags(current_regimens, CURRENT_DRUGS)[code]
    for bit, column in enumerate(CURRENT_DRUGS):
        out[column] = ((flags >> bit) & 1).astype(float)
    return out


def _drug_flags(regimens: np.ndarray, classes: dict[str, set[str]]) -> np.ndarray:
    """One bit per class (in ``classes`` order), set when a regimen holds one of the class's drugs."""
    flags = [
        sum(1 << bit for bit, codes in enumerate(classes.values()) if any(part in codes for part in parts))
        for parts in (str(regimen).split("+") for regimen in regimens)
    ]
    return np.array(flags, dtype=np.int64)


def _biomarkers(lock: DataLock, at: _At) -> dict[str, np.ndarray]:
    tests = lock.biomarkers
    marker = _positions(_texts(tests["marker"]), GENOMIC)
    values = _texts(tests["value"])
    mutated = np.where(pd.isna(values), np.nan, np.equal(values, "mutated").astype(float))
    decision, record = _pairs(at, tests["patient_key"].to_numpy(dtype=object))
    known = (marker[record] >= 0) & (_floats(tests["day"])[record] <= at.day[decision])
    result = np.full((len(at.day), len(GENOMIC)), np.nan)
    np.fmax.at(result, (decision[known], marker[record[known]]), mutated[record[known]])
    out: dict[str, np.ndarray] = {}
    for index, name in enumerate(GENOMIC):
        out[f"{name}_tested"] = (~np.isnan(result[:, index])).astype(float)
        out[f"{name}_mutated"] = result[:, index]  # NaN when never tested by that day: unknown, not wild type
    pathway = [GENOMIC.index(name) for name in ("pik3ca", "akt1", "pten")]
    tested = (~np.isnan(result[:, pathway])).astype(float).max(axis=1)
    altered = np.fmax.reduce(result[:, pathway], axis=1)
    out["pathway_tested"] = tested
    out["pathway_altered"] = np.where(tested == 1, altered, np.nan)
    return out
