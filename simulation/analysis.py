"""The analyst's toolbox for calibration: decision covariates from a lock, Kaplan-Meier, Cox, SMD.

These are the computations a biostatistician would run on a real lock (lifelines for survival),
applied to the simulated one. Covariates describe what was known on the decision day.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.exceptions import ConvergenceWarning, StatisticalWarning
from sklearn.linear_model import LogisticRegression

from linewise.features.decisions import DAYS_PER_MONTH
from linewise.features.loader import DataLock
from linewise.features.regimens import cdk_drug, drug_categories
from linewise.features.timeline import match_records
from linewise.features.vocabulary import VISCERAL_SITES

ECOG_WINDOW_DAYS = 90


def decision_covariates(lock: DataLock, decisions: pd.DataFrame) -> pd.DataFrame:
    """Return ``decisions`` with the covariates known on each decision day.

    Added columns: age, premenopausal, histology_nst, er_percent, pgr_percent, ki67_percent,
    de_novo, bone_metastasis, liver_metastasis, visceral, ecog (last within 90 days, NaN if none),
    pfs1_months (first line start to its first progression), line1_cdk, line1_ai, first_l1_progression.
    """
    patients = lock.patients.set_index("patient_key")
    out = decisions.copy()
    key = out["patient_key"]
    out["age"] = key.map(patients["age_at_metastatic_dx"]).astype(float)
    out["premenopausal"] = (key.map(patients["menopausal_status"]) == "pre").astype(float)
    out["histology_nst"] = (key.map(patients["histology"]) == "nst").astype(float)
    for column in ("er_percent", "pgr_percent", "ki67_percent"):
        out[column] = key.map(patients[column]).astype(float)
    out["de_novo"] = key.map(patients["de_novo"]).astype(float)
    sites = lock.metastases.merge(out[["patient_key", "decision_day"]].drop_duplicates(), on="patient_key")
    sites = sites[sites["day_detected"] <= sites["decision_day"]]
    for name, members in (
        ("bone_metastasis", {"bone"}),
        ("liver_metastasis", {"liver"}),
        ("visceral", VISCERAL_SITES),
    ):
        hit = (
            sites[sites["site"].isin(members)][["patient_key", "decision_day"]]
            .drop_duplicates()
            .assign(flag=1.0)
        )
        out = out.merge(hit.rename(columns={"flag": name}), on=["patient_key", "decision_day"], how="left")
        out[name] = out[name].fillna(0.0)
    out["ecog"] = _last_ecog(lock, out)
    lines = lock.lines
    first = lines[lines["line_number"] == 1].set_index("patient_key")
    first_progression = (
        lock.progressions[lock.progressions["line_number"] == 1].groupby("patient_key")["day"].min()
    )
    out["pfs1_months"] = (key.map(first_progression) - key.map(first["start_day"])).astype(
        float
    ) / DAYS_PER_MONTH
    drugs = key.map(first["drugs"]).astype(str)
    out["line1_cdk"] = drugs.map(lambda d: cdk_drug(d) or "")
    out["line1_ai"] = drugs.map(lambda d: float("ai" in drug_categories(d)))
    out["first_l1_progression"] = (out["line_number"] == 1) & (
        out["decision_day"] == key.map(first_progression)
    )
    return out


def _last_ecog(lock: DataLock, decisions: pd.DataFrame) -> pd.Series:
    ecog = lock.performance_status[["patient_key", "day", "ecog"]]
    matched = match_records(decisions, ecog, "day", direction="backward", tolerance=ECOG_WINDOW_DAYS)
    return matched["ecog"].astype(float)


def km_median(time: np.ndarray, event: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Kaplan-Meier median (NaN when the curve never reaches 0.5)."""
    if len(time) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)  # non-integer weights: only the median is used
        fitter = KaplanMeierFitter().fit(np.asarray(time, float), np.asarray(event, bool), weights=weights)
    median = fitter.median_survival_time_
    return float(median) if np.isfinite(median) else float("nan")


def cox_hazard_ratio(
    frame: pd.DataFrame,
    duration: str,
    event: str,
    exposure: str,
    covariates: list[str] | None = None,
    weights: str | None = None,
) -> float:
    """Hazard ratio of ``exposure`` from a Cox model (robust variance when weighted)."""
    columns = [duration, event, exposure, *(covariates or []), *([weights] if weights else [])]
    data = frame[columns].astype(float)
    fitter = CoxPHFitter(penalizer=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", StatisticalWarning)
        fitter.fit(
            data, duration_col=duration, event_col=event, weights_col=weights, robust=weights is not None
        )
    return float(np.exp(fitter.params_[exposure]))


def standardized_difference(treated: np.ndarray, control: np.ndarray) -> float:
    """Standardised mean difference (treated minus control) with the pooled standard deviation."""
    treated, control = np.asarray(treated, float), np.asarray(control, float)
    treated, control = treated[~np.isnan(treated)], control[~np.isnan(control)]
    pooled = np.sqrt((treated.var(ddof=1) + control.var(ddof=1)) / 2.0)
    return float((treated.mean() - control.mean()) / pooled) if pooled > 0 else 0.0


def iptw_weights(frame: pd.DataFrame, treated: str, covariates: list[str]) -> np.ndarray:
    """Stabilised inverse-probability-of-treatment weights from a logistic propensity model.

    Missing covariate values are set to the column median with a missing indicator; weights are
    truncated at their 1st and 99th percentiles, as is usual to keep a few extreme weights from
    dominating.
    """
    design = frame[covariates].astype(float)
    indicators = design.isna().astype(float).add_suffix("_missing")
    indicators = indicators.loc[:, indicators.sum() > 0]
    design = pd.concat([design.fillna(design.median()), indicators], axis=1)
    standardized = (design - design.mean()) / design.std(ddof=0).replace(0.0, 1.0)
    exposure = frame[treated].astype(int).to_numpy()
    model = LogisticRegression(C=1.0, max_iter=1000).fit(standardized.to_numpy(), exposure)
    propensity = np.clip(model.predict_proba(standardized.to_numpy())[:, 1], 0.01, 0.99)
    share = exposure.mean()
    weights = np.where(exposure == 1, share / propensity, (1.0 - share) / (1.0 - propensity))
    low, high = np.percentile(weights, [1, 99])
    return np.clip(weights, low, high)
