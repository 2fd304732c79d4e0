"""Line-level decision examples: one row per decision with only what was known that day.

Every feature is computed from records dated on or before the decision day (``docs/features.md``
lists each with its definition and window). Missing values stay visible: NaN, with an explicit
``*_known`` or ``*_tested`` column where the absence itself is informative; nothing is imputed.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from features.decisions import ACTIONS, DAYS_PER_MONTH, KEYS, OUTCOMES, derive_decisions
from features.loader import DataLock
from features.timeline import match_records
from features.vocabulary import DRUG_CATEGORY, SITES, VISCERAL_SITES

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
        A validated lock (or one patient's history loaded by :func:`features.patient.load_patient`).
    tbp_min_days, local_therapy_days : int
        Passed to :func:`features.decisions.derive_decisions`.

    Returns
    -------
    DataFrame
        One row per decision: ``patient_key``, ``line_number``, ``decision_day``, the columns of
        :data:`FEATURES` (float), ``action``, ``local_therapy``, ``open_decision``, and the
        outcomes; sorted by patient and day.
    """
    decisions = derive_decisions(lock, tbp_min_days=tbp_min_days, local_therapy_days=local_therapy_days)
    keys = decisions[list(KEYS)].reset_index(drop=True)
    features = pd.concat(
        [
            _baseline(lock, decisions),
            _ecog(lock, keys),
            _sites(lock, keys),
            _progression(lock, decisions),
            _lines(lock, keys),
            _biomarkers(lock, keys),
        ],
        axis=1,
    )
    features = features[list(FEATURES)].astype("float64")
    outcome = decisions[[*ACTIONS, "open_decision", *OUTCOMES]].reset_index(drop=True)
    outcome["action"] = outcome["action"].astype("string")
    return pd.concat([keys, features, outcome], axis=1)


def _baseline(lock: DataLock, decisions: pd.DataFrame) -> pd.DataFrame:
    patients = lock.patients.set_index("patient_key")
    key = decisions["patient_key"].reset_index(drop=True)
    day = decisions["decision_day"].reset_index(drop=True).astype(float)
    get = lambda column: key.map(patients[column])  # noqa: E731
    her2 = get("her2_ihc")
    ki67 = _latest_percent(lock, decisions, "ki67", get("ki67_percent"))
    return pd.DataFrame(
        {
            "age_at_decision": get("age_at_metastatic_dx").astype(float) + day / 365.25,
            "menopause_pre": (get("menopausal_status") == "pre").astype(float),
            "menopause_peri": (get("menopausal_status") == "peri").astype(float),
            "histology_lobular": (get("histology") == "lobular").astype(float),
            "histology_other": (get("histology") == "other").astype(float),
            "er_percent": _latest_percent(lock, decisions, "er", get("er_percent")),
            "pgr_percent": _latest_percent(lock, decisions, "pgr", get("pgr_percent")),
            "ki67_percent": ki67,
            "ki67_known": ki67.notna().astype(float),
            "her2_low": her2.map({"0": 0.0, "1+": 1.0, "2+_ish_neg": 1.0}).astype(float),
            "grade": get("grade").astype(float),
            "de_novo": get("de_novo").astype(float),
            "decision_year": get("metastatic_dx_year").astype(float)
            + (get("metastatic_dx_month").astype(float) - 0.5) / 12.0
            + day / 365.25,
            "months_since_metastatic_dx": day / DAYS_PER_MONTH,
        }
    )


def _latest_percent(lock: DataLock, decisions: pd.DataFrame, marker: str, baseline: pd.Series) -> pd.Series:
    keys = decisions[list(KEYS)].reset_index(drop=True)
    tests = lock.biomarkers.loc[lock.biomarkers["marker"] == marker, ["patient_key", "day", "value"]]
    latest = match_records(keys, tests, "day", direction="backward")["value"]
    return pd.to_numeric(latest, errors="coerce").astype(float).fillna(baseline.astype(float))


def _ecog(lock: DataLock, keys: pd.DataFrame) -> pd.DataFrame:
    ecog_records = lock.performance_status[["patient_key", "day", "ecog"]]
    latest = match_records(keys, ecog_records, "day", direction="backward", tolerance=ECOG_WINDOW_DAYS)
    ecog = latest["ecog"].astype(float)
    return pd.DataFrame({"ecog": ecog, "ecog_known": ecog.notna().astype(float)})


def _sites(lock: DataLock, keys: pd.DataFrame) -> pd.DataFrame:
    first_seen = lock.metastases.groupby(["patient_key", "site"])["day_detected"].min().unstack("site")
    frame = keys[["patient_key", "decision_day"]].join(first_seen, on="patient_key")
    out = pd.DataFrame(index=keys.index)
    for site in _SITE_ORDER:
        seen = frame[site] if site in frame.columns else pd.Series(np.nan, index=keys.index)
        out[f"site_{site}"] = (seen.astype(float) <= frame["decision_day"].astype(float)).astype(float)
    site_columns = [f"site_{site}" for site in _SITE_ORDER]
    out["visceral"] = out[[f"site_{s}" for s in sorted(VISCERAL_SITES)]].max(axis=1)
    out["site_count"] = out[site_columns].sum(axis=1)
    out["bone_only"] = ((out["site_bone"] == 1) & (out["site_count"] == 1)).astype(float)
    return out


def _progression(lock: DataLock, decisions: pd.DataFrame) -> pd.DataFrame:
    progressions = lock.progressions.drop_duplicates(["patient_key", "line_number", "day"])
    merged = decisions[list(KEYS)].merge(
        progressions[["patient_key", "line_number", "day", "new_sites"]].rename(
            columns={"day": "decision_day"}
        ),
        on=list(KEYS),
        how="left",
    )
    new = merged["new_sites"].fillna("").astype(str).str.split("+")
    count = new.map(lambda parts: float(sum(1 for part in parts if part)))
    visceral = new.map(lambda parts: float(any(part in VISCERAL_SITES for part in parts)))
    ordered = progressions.sort_values(["patient_key", "day"], kind="stable")
    earlier = ordered.groupby("patient_key").cumcount()
    earlier_of = dict(zip(zip(ordered["patient_key"], ordered["day"], strict=True), earlier, strict=True))
    previous = [
        earlier_of.get((k, d), 0) for k, d in zip(merged["patient_key"], merged["decision_day"], strict=True)
    ]
    return pd.DataFrame(
        {
            "new_site_count": count.to_numpy(),
            "new_visceral_site": visceral.to_numpy(),
            "oligoprogression": (decisions["pattern"].reset_index(drop=True) == "oligo")
            .astype(float)
            .to_numpy(),
            "previous_progressions": np.asarray(previous, dtype=float),
        }
    )


def _lines(lock: DataLock, keys: pd.DataFrame) -> pd.DataFrame:
    lines = lock.lines
    current = keys.merge(
        lines[["patient_key", "line_number", "start_day", "drugs"]],
        on=["patient_key", "line_number"],
        how="left",
    )
    first_progression = (
        lock.progressions[lock.progressions["line_number"] == 1].groupby("patient_key")["day"].min()
    )
    first_start = lines[lines["line_number"] == 1].set_index("patient_key")["start_day"]
    pfs1 = (keys["patient_key"].map(first_progression) - keys["patient_key"].map(first_start)).astype(float)
    known_pfs1 = keys["patient_key"].map(first_progression).astype(float) <= keys["decision_day"].astype(
        float
    )
    pfs1_months = (pfs1 / DAYS_PER_MONTH).where(known_pfs1)
    out = pd.DataFrame(
        {
            "current_line": keys["line_number"].astype(float),
            "months_on_current_line": (keys["decision_day"] - current["start_day"]).astype(float)
            / DAYS_PER_MONTH,
            "pfs1_months": pfs1_months,
            "endocrine_primary_resistance": (pfs1_months < PRIMARY_RESISTANCE_MONTHS)
            .astype(float)
            .where(known_pfs1),
        }
    )
    started = keys.reset_index().merge(
        lines[["patient_key", "line_number", "start_day", "drugs"]], on="patient_key", suffixes=("", "_line")
    )
    # the progressing line and those before it: never the next line, even when it starts that same day
    started = started[
        (started["line_number_line"] <= started["line_number"])
        & (started["start_day"] <= started["decision_day"])
    ]
    drugs = started["drugs"].astype(str).str.split("+")
    for column, codes in PRIOR_DRUGS.items():
        hit = drugs.map(lambda parts, codes=codes: any(part in codes for part in parts))
        out[column] = hit.groupby(started["index"]).any().reindex(keys.index, fill_value=False).astype(float)
    current_drugs = current["drugs"].fillna("").astype(str).str.split("+")
    for column, codes in CURRENT_DRUGS.items():
        out[column] = current_drugs.map(
            lambda parts, codes=codes: float(any(part in codes for part in parts))
        )
    return out


def _biomarkers(lock: DataLock, keys: pd.DataFrame) -> pd.DataFrame:
    tests = lock.biomarkers[lock.biomarkers["marker"].isin(GENOMIC)]
    tests = tests.assign(mutated=(tests["value"] == "mutated").astype(float))
    paired = keys.reset_index().merge(tests[["patient_key", "day", "marker", "mutated"]], on="patient_key")
    paired = paired[paired["day"] <= paired["decision_day"]]
    by_marker = paired.groupby(["index", "marker"])["mutated"].max().unstack("marker")
    out = pd.DataFrame(index=keys.index)
    for marker in GENOMIC:
        result = by_marker[marker] if marker in by_marker.columns else pd.Series(dtype=float)
        result = result.reindex(keys.index)
        out[f"{marker}_tested"] = result.notna().astype(float)
        out[f"{marker}_mutated"] = result  # NaN when never tested by that day: unknown, not wild type
    pathway = ["pik3ca", "akt1", "pten"]
    mutated = out[[f"{m}_mutated" for m in pathway]]
    out["pathway_tested"] = out[[f"{m}_tested" for m in pathway]].max(axis=1)
    out["pathway_altered"] = mutated.max(axis=1).where(out["pathway_tested"] == 1)
    return out
