"""Virtual trials on a simulated lock's truth, for the calibration targets of the randomised trials.

Each trial takes its eligible population among the decisions after first-line progression (the wide
truth of :func:`wide_truth`: one row per decision, every arm's potential outcomes side by side), gives
every patient both arms from the ground truth (``pfs_draw`` / ``os_draw``) and compares them with
Kaplan-Meier medians and a Cox hazard ratio. Where a trial's population had a stated share of prior
palbociclib, patients are weighted to that share.

Every trial function takes the wide truth ``f`` and the target's entry ``t`` of ``targets.yaml`` and
returns ``(simulated, within, note)``: the simulated figure(s), whether they lie in the target's
accepted range (None when the target gives none) and a note for the calibration table.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from linewise.features.pseudonym import pseudonymize
from linewise.simulation.analysis import cox_hazard_ratio, km_median

#: Ranges that the targets file gives in a note rather than a field.
NOTE_RANGES: Final = {"PACE": [0.80, 1.05]}

#: ``(simulated, within, note)``: a target's figure(s), inside its range or not (None: no range), a note.
TrialResult = tuple[Any, bool | None, str]


def within_bounds(value: float, bounds: list[float]) -> bool:
    """Whether ``value`` is finite and inside the closed interval ``bounds``.

    Parameters
    ----------
    value : float
        A simulated figure.
    bounds : list of float
        ``[low, high]``.

    Returns
    -------
    bool
    """
    return bool(np.isfinite(value) and bounds[0] <= value <= bounds[1])


def rounded(value: float, digits: int = 3) -> float:
    """Round a figure for the calibration table, keeping NaN for a non-finite value.

    Parameters
    ----------
    value : float
        A simulated figure.
    digits : int, default 3
        Decimal places.

    Returns
    -------
    float
    """
    return float(round(value, digits)) if np.isfinite(value) else float("nan")


def wide_truth(truth: pd.DataFrame, decisions: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """Join each decision after first-line progression with every arm's truth, one row per decision.

    Parameters
    ----------
    truth : DataFrame
        The simulator's truth table (raw simulated patient ids).
    decisions : DataFrame
        Decisions with covariates, keyed by pseudonymised ``patient_key``.
    key : bytes
        The pseudonymisation key the decisions were derived with.

    Returns
    -------
    DataFrame
        ``decisions`` with columns ``pfs_draw:ARM``, ``os_draw:ARM`` and ``pfs_rmst24:ARM`` per arm
        (``ARM`` a candidate class, ``+lt`` with local therapy) and the true ``esr1_mutated`` and
        ``pathway_altered``; decisions without truth are dropped.
    """
    ids = truth["patient_id"].unique()
    keys = dict(zip(ids, (pseudonymize(raw, key) for raw in ids), strict=True))
    truth = truth.assign(patient_key=truth["patient_id"].map(keys)).drop(columns="patient_id")
    truth = truth.assign(arm=truth["candidate"] + np.where(truth["local_therapy"], "+lt", ""))
    values = ["pfs_draw", "os_draw", "pfs_rmst24"]
    wide = truth.pivot_table(
        index=["patient_key", "line_number", "decision_day"], columns="arm", values=values
    )
    wide.columns = [f"{value}:{arm}" for value, arm in wide.columns]
    biology = truth.groupby(["patient_key", "line_number", "decision_day"])[
        ["esr1_mutated", "pathway_altered"]
    ].first()
    wide = wide.join(biology).reset_index()
    return decisions.merge(wide, on=["patient_key", "line_number", "decision_day"], how="inner")


def _arm(frame: pd.DataFrame, candidates: pd.Series | str, value: str = "pfs_draw") -> np.ndarray:
    if isinstance(candidates, str):
        return frame[f"{value}:{candidates}"].to_numpy(float)
    picked = np.empty(len(frame))
    for candidate in candidates.unique():
        rows = (candidates == candidate).to_numpy()
        picked[rows] = frame.loc[rows, f"{value}:{candidate}"].to_numpy(float)
    return picked


def _trial(
    experimental: np.ndarray, control: np.ndarray, weights: np.ndarray | None = None
) -> dict[str, float]:
    n = len(experimental)
    w = np.ones(n) if weights is None else weights
    stacked = pd.DataFrame(
        {
            "time": np.concatenate([experimental, control]),
            "event": 1.0,
            "arm": np.r_[np.ones(n), np.zeros(n)],
            "w": np.r_[w, w],
        }
    )
    hr = cox_hazard_ratio(stacked, "time", "event", "arm", weights="w" if weights is not None else None)
    return {
        "hazard_ratio": rounded(hr),
        "median_experimental": rounded(km_median(experimental, np.ones(n), w), 2),
        "median_control": rounded(km_median(control, np.ones(n), w), 2),
        "n": n,
    }


def _palbociclib_weights(frame: pd.DataFrame, share: float) -> np.ndarray:
    palbo = (frame["line1_cdk"] == "palbociclib").to_numpy()
    observed = palbo.mean()
    if observed in (0.0, 1.0):  # nothing to reweight
        return np.ones(len(frame))
    return np.where(palbo, share / observed, (1.0 - share) / (1.0 - observed))


def _check_trial(result: dict[str, float], t: dict[str, Any]) -> bool | None:
    checks = []
    if "hr_range" in t:
        checks.append(within_bounds(result["hazard_ratio"], t["hr_range"]))
    for arm, bounds in t.get("median_range", {}).items():
        checks.append(within_bounds(result[f"median_{arm}"], bounds))
    return all(checks) if checks else None


def _palmira_population(f: pd.DataFrame) -> pd.DataFrame:
    crisis = (f["liver_metastasis"] == 1) & (f["ecog"] >= 2)
    return f[(f["line1_cdk"] == "palbociclib") & (f["pfs1_months"] >= 6) & ~crisis]


def palmira(f: pd.DataFrame, t: dict[str, Any]) -> TrialResult:
    """Emulate PALMIRA: palbociclib kept with another ET against ET alone, with subgroup medians.

    Parameters
    ----------
    f : DataFrame
        The wide truth (:func:`wide_truth`).
    t : dict
        The target's entry of ``targets.yaml``.

    Returns
    -------
    tuple
        ``(simulated, within, note)``, see the module's docstring.
    """
    f = _palmira_population(f)
    result: dict[str, Any] = _trial(_arm(f, "cdk_same_et_switch"), _arm(f, "et_mono"))
    subgroups = {}
    for name, rows in (
        ("no_visceral", f["visceral"] == 0),
        ("visceral", f["visceral"] == 1),
        ("first_line_12m_or_more", f["pfs1_months"] >= 12),
    ):
        sub = f[rows]
        subgroups[name] = [
            rounded(km_median(_arm(sub, "cdk_same_et_switch"), np.ones(len(sub))), 1),
            rounded(km_median(_arm(sub, "et_mono"), np.ones(len(sub))), 1),
        ]
    result["subgroups"] = subgroups
    return (
        result,
        _check_trial(result, t),
        "subgroup medians [experimental, control] are reported, not judged",
    )


def pace(f: pd.DataFrame, t: dict[str, Any]) -> TrialResult:
    """Emulate PACE: CDK4/6 inhibition kept with fulvestrant against fulvestrant alone, after an AI.

    Parameters
    ----------
    f : DataFrame
        The wide truth (:func:`wide_truth`).
    t : dict
        The target's entry of ``targets.yaml``.

    Returns
    -------
    tuple
        ``(simulated, within, note)``, see the module's docstring.
    """
    f = f[f["line1_ai"] == 1]
    experimental = pd.Series(
        np.where(f["line1_cdk"] == "palbociclib", "cdk_same_et_switch", "cdk_switch"), index=f.index
    )
    result = _trial(_arm(f, experimental), _arm(f, "et_mono"), _palbociclib_weights(f, 0.90))
    bounds = NOTE_RANGES["PACE"]
    return (
        result,
        within_bounds(result["hazard_ratio"], bounds),
        "judged on the note's range: HR 0.80 to 1.05",
    )


def cdk_switch_trial(f: pd.DataFrame, t: dict[str, Any], drug: str, palbo_share: float) -> TrialResult:
    """Emulate MAINTAIN or postMONARCH: another CDK4/6 inhibitor (``drug``) against ET alone.

    Parameters
    ----------
    f : DataFrame
        The wide truth (:func:`wide_truth`).
    t : dict
        The target's entry of ``targets.yaml``.
    drug : str
        The trial's CDK4/6 inhibitor; patients who already had it keep it with another ET.
    palbo_share : float
        The trial population's share of prior palbociclib, which patients are weighted to.

    Returns
    -------
    tuple
        ``(simulated, within, note)``, see the module's docstring.
    """
    experimental = pd.Series(
        np.where(f["line1_cdk"] == drug, "cdk_same_et_switch", "cdk_switch"), index=f.index
    )
    result = _trial(_arm(f, experimental), _arm(f, "et_mono"), _palbociclib_weights(f, palbo_share))
    return result, _check_trial(result, t), f"weighted to {palbo_share:.0%} prior palbociclib"


def fulvestrant(f: pd.DataFrame, t: dict[str, Any]) -> TrialResult:
    """Compute the median rwPFS if every first-line progressor switched to endocrine monotherapy.

    Parameters
    ----------
    f : DataFrame
        The wide truth (:func:`wide_truth`).
    t : dict
        The target's entry of ``targets.yaml``.

    Returns
    -------
    tuple
        ``(simulated, within, note)``, see the module's docstring.
    """
    draws = _arm(f, "et_mono")
    median = km_median(draws, np.ones(len(draws)))
    return (
        rounded(median, 2),
        within_bounds(median, t["range"]),
        "every first-line progressor switched to ET alone",
    )


def biomarker_trial(
    f: pd.DataFrame, t: dict[str, Any], arm: str, column: str, labels: tuple[str, str]
) -> TrialResult:
    """Emulate a targeted arm against ET alone, with and without the biomarker (true status).

    Parameters
    ----------
    f : DataFrame
        The wide truth (:func:`wide_truth`).
    t : dict
        The target's entry of ``targets.yaml``, with a hazard-ratio range per label.
    arm : str
        The targeted candidate class.
    column : str
        The true biomarker column of the wide truth.
    labels : tuple of str
        Names of the positive and the negative group.

    Returns
    -------
    tuple
        ``(simulated, within, note)``, see the module's docstring.
    """
    simulated = {}
    for label, rows in ((labels[0], f[column]), (labels[1], ~f[column])):
        sub = f[rows.astype(bool)]
        simulated[label] = _trial(_arm(sub, arm), _arm(sub, "et_mono"))["hazard_ratio"]
    ok = all(within_bounds(simulated[label], t["hr_range"][label]) for label in labels)
    return simulated, ok, "true biomarker status at the decision"


def palmira_os(f: pd.DataFrame, t: dict[str, Any]) -> TrialResult:
    """Compute PALMIRA's OS medians, both arms.

    Parameters
    ----------
    f : DataFrame
        The wide truth (:func:`wide_truth`).
    t : dict
        The target's entry of ``targets.yaml``.

    Returns
    -------
    tuple
        ``(simulated, within, note)``, see the module's docstring.
    """
    f = _palmira_population(f)
    medians = {
        arm: rounded(km_median(_arm(f, arm, "os_draw"), np.ones(len(f))), 1)
        for arm in ("cdk_same_et_switch", "et_mono")
    }
    ok = all(within_bounds(value, t["range"]) for value in medians.values())
    return medians, ok, ""


def benefit_markers(f: pd.DataFrame, t: dict[str, Any]) -> TrialResult:
    """Compare the true TBP benefit over an ET switch (mean RMST24) inside and outside each marker.

    Parameters
    ----------
    f : DataFrame
        The wide truth (:func:`wide_truth`).
    t : dict
        The target's entry of ``targets.yaml``.

    Returns
    -------
    tuple
        ``(simulated, within, note)``, see the module's docstring.
    """
    benefit = f["pfs_rmst24:tbp"] - f["pfs_rmst24:et_mono"]
    groups = {
        "ecog0": f["ecog"] == 0,
        "high_er": f["er_percent"] > f["er_percent"].median(),
        "high_pgr": f["pgr_percent"] > f["pgr_percent"].median(),
        "low_ki67": f["ki67_percent"] < 20,
        "oligoprogression": f["oligo"] == 1,
    }
    known = {"ecog0": f["ecog"].notna(), "low_ki67": f["ki67_percent"].notna()}
    simulated = {}
    for name, inside in groups.items():
        valid = known.get(name, pd.Series(True, index=f.index))
        difference = benefit[inside & valid].mean() - benefit[~inside & valid].mean()
        simulated[name] = rounded(float(difference))
    ok = all((simulated[name] > 0) == (sign == "larger") for name, sign in t["expect"].items())
    return simulated, ok, "difference in mean true RMST24 benefit (TBP minus ET switch), subgroup minus rest"
