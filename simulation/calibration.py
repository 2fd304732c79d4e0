"""Compare a simulated lock and its truth with every published target in ``targets.yaml``.

Observed targets are computed from the lock as an analyst would (loader, decision points,
Kaplan-Meier, shares, standardised differences, Cox with and without IPTW). Virtual-trial targets
take the trial's eligible population among the decisions after first-line progression, give every
patient both arms from the ground truth (the ``pfs_draw``/``os_draw`` potential outcomes) and
compare them with Kaplan-Meier medians and a Cox hazard ratio. Where a trial's population had a
stated share of prior palbociclib, patients are weighted to that share.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from features.decisions import derive_decisions
from features.loader import DataLock, load_lock
from features.pseudonym import pseudonymize
from simulation.analysis import (
    cox_hazard_ratio,
    decision_covariates,
    iptw_weights,
    km_median,
    standardized_difference,
)
from simulation.simulate import TRUTH_FILE

SWITCH_CLASSES = ("cdk_same_et_switch", "cdk_switch", "et_mono", "et_targeted", "oral_serd", "chemo", "adc")
ET_BASED = ("cdk_same_et_switch", "cdk_switch", "et_mono", "et_targeted", "oral_serd")
IPTW_COVARIATES = [
    "age",
    "premenopausal",
    "histology_nst",
    "er_percent",
    "pgr_percent",
    "ki67_percent",
    "de_novo",
    "bone_metastasis",
    "liver_metastasis",
    "visceral",
    "ecog",
    "pfs1_months",
    "oligo",
    "line1_ai",
]


@dataclass(frozen=True)
class TargetResult:
    """One target: the published figure, its accepted range, the simulated figure, and the verdict."""

    id: str
    kind: str
    what: str
    value: Any
    range: Any
    simulated: Any
    within: bool | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def default_targets_path() -> Path:
    """Return the path of the bundled copy of ``shared/evidence/targets.yaml``."""
    return Path(str(files("simulation") / "targets.yaml"))


def load_targets(path: Path | None = None) -> list[dict[str, Any]]:
    """Return every target of the YAML file, each with its section name under ``section``."""
    content = yaml.safe_load((path or default_targets_path()).read_text(encoding="utf-8"))
    return [{**target, "section": section} for section, items in content.items() for target in items]


@dataclass
class _Context:
    lock: DataLock
    decisions: pd.DataFrame  # all decisions with covariates
    second_line: pd.DataFrame  # first progression on line 1, known action
    trial: pd.DataFrame  # first progression on line 1 joined with truth, wide


def calibrate(lock_path: Path, truth_path: Path, targets_path: Path | None = None) -> list[TargetResult]:
    """Compute every target on a simulated lock and its truth.

    Parameters
    ----------
    lock_path : Path
        The lock folder.
    truth_path : Path
        The truth folder written beside it by ``linewise simulate``.
    targets_path : Path, optional
        The targets file (default: the bundled copy of ``targets.yaml``).

    Returns
    -------
    list of TargetResult
        One per target, in file order.
    """
    key = secrets.token_bytes(32)
    lock = load_lock(lock_path, key)
    decisions = decision_covariates(lock, derive_decisions(lock))
    decisions["oligo"] = (decisions["pattern"] == "oligo").astype(float)
    second = decisions[decisions["first_l1_progression"] & decisions["action"].notna()].copy()
    truth = pd.read_parquet(Path(truth_path) / TRUTH_FILE)
    trial = _wide_truth(truth, decisions[decisions["first_l1_progression"]], key)
    context = _Context(lock, decisions, second, trial)
    results = []
    for target in load_targets(targets_path):
        compute = _COMPUTE.get(target["id"])
        if compute is None:
            results.append(_result(target, None, None, "no computation defined for this target"))
            continue
        simulated, within, note = compute(context, target)
        results.append(_result(target, simulated, within, note))
    return results


#: Ranges that the targets file gives in a note rather than a field.
NOTE_RANGES = {"PACE": [0.80, 1.05]}


def _result(target: dict[str, Any], simulated: Any, within: bool | None, note: str) -> TargetResult:
    published = target.get(
        "value", target.get("hazard_ratio", target.get("median_pfs", target.get("expect")))
    )
    accepted = target.get("range", target.get("hr_range", NOTE_RANGES.get(target["id"])))
    if "median_range" in target:
        accepted = {
            "hazard_ratio": target.get("hr_range"),
            **{f"median_{k}": v for k, v in target["median_range"].items()},
        }
    return TargetResult(
        target["id"],
        target["kind"],
        str(target.get("what", target.get("population", ""))).strip(),
        published,
        accepted,
        simulated,
        within,
        note,
    )


def _inside(value: float, bounds: list[float]) -> bool:
    return bool(np.isfinite(value) and bounds[0] <= value <= bounds[1])


def _round(value: float, digits: int = 3) -> float:
    return float(round(value, digits)) if np.isfinite(value) else float("nan")


# --- observed: first line -----------------------------------------------------------------------


def _first_line_times(lock: DataLock) -> pd.DataFrame:
    patients = lock.patients.set_index("patient_key")
    first = lock.lines[lock.lines["line_number"] == 1].set_index("patient_key")
    progression = lock.progressions[lock.progressions["line_number"] == 1].groupby("patient_key")["day"].min()
    start = first["start_day"].astype(float)
    death = patients["death_day"].reindex(start.index).astype(float)
    contact = patients["last_contact_day"].reindex(start.index).astype(float)
    progressed = progression.reindex(start.index).astype(float)
    pfs_end = np.fmin(progressed, death)
    frame = pd.DataFrame(
        {
            "progressed": progressed.notna(),
            "pfs_time": (pfs_end.fillna(contact) - start) / 30.4375,
            "pfs_event": pfs_end.notna(),
            "os_time": (death.fillna(contact) - start) / 30.4375,
            "os_event": death.notna(),
        }
    )
    return frame


def _l1_pd_share(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    share = float(_first_line_times(c.lock)["progressed"].mean())
    return _round(share), _inside(share, t["range"]), ""


def _l1_median(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    frame = _first_line_times(c.lock)
    median = km_median(frame["pfs_time"], frame["pfs_event"])
    return _round(median, 2), _inside(median, t["range"]), ""


def _l1_duration_prognostic(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    frame = _first_line_times(c.lock)
    long = frame[frame["pfs_time"] >= 12]
    short = frame[(frame["pfs_time"] < 12) & frame["pfs_event"]]
    long_median = km_median(long["os_time"], long["os_event"])
    short_median = km_median(short["os_time"], short["os_event"])
    ratio = long_median / short_median
    simulated = {
        "os_median_pfs1_12m_or_more": _round(long_median, 1),
        "os_median_pfs1_under_12m": _round(short_median, 1),
        "ratio": _round(ratio, 2),
    }
    note = "" if np.isfinite(long_median) else "median OS not reached in the PFS1 >= 12 months group"
    return simulated, _inside(ratio, t["range"]), note


# --- observed: beyond progression ------------------------------------------------------------------


def _tbp_share(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    share = float((c.second_line["action"] == "tbp").mean())
    return (
        _round(share),
        _inside(share, t["range"]),
        f"{len(c.second_line)} first-line progressions with a known action",
    )


def _tbp_median(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    tbp = c.second_line[c.second_line["action"] == "tbp"]
    median = km_median(tbp["pfs_time"], tbp["pfs_event"])
    return _round(median, 2), _inside(median, t["range"]), ""


def _tbp_local_share(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    share = float(c.second_line.loc[c.second_line["action"] == "tbp", "local_therapy"].mean())
    return _round(share), _inside(share, t["range"]), ""


def _tbp_vs_switch(c: _Context) -> pd.DataFrame:
    frame = c.second_line[c.second_line["action"].isin(("tbp", *SWITCH_CLASSES))].copy()
    frame["tbp"] = (frame["action"] == "tbp").astype(float)
    return frame


def _selection_profile(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    frame = _tbp_vs_switch(c)
    tbp, switch = frame[frame["tbp"] == 1], frame[frame["tbp"] == 0]
    columns = {
        "age": "age",
        "premenopausal": "premenopausal",
        "histology_nst": "histology_nst",
        "er_percent": "er_percent",
        "pgr_percent": "pgr_percent",
        "bone_metastasis": "bone_metastasis",
        "liver_metastasis": "liver_metastasis",
    }
    smd = {name: _round(standardized_difference(tbp[col], switch[col])) for name, col in columns.items()}
    ok = all(
        (smd[name] > 0) == (sign == "positive") and abs(smd[name]) >= 0.10
        for name, sign in t["expect"].items()
    )
    return smd, ok, "standardised mean difference TBP minus switch at the first progression"


def _os_naive(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    frame = _tbp_vs_switch(c)
    frame["os_event"] = frame["os_event"].astype(float)
    unadjusted = cox_hazard_ratio(frame, "os_time", "os_event", "tbp")
    frame["iptw"] = iptw_weights(frame, "tbp", IPTW_COVARIATES)
    adjusted = cox_hazard_ratio(frame, "os_time", "os_event", "tbp", weights="iptw")
    simulated = {"unadjusted": _round(unadjusted), "iptw": _round(adjusted)}
    return simulated, _inside(unadjusted, t["range"]) and _inside(adjusted, t["range"]), ""


def _filled(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        if out[column].isna().any():
            out[f"{column}_missing"] = out[column].isna().astype(float)
            out[column] = out[column].fillna(out[column].median())
    return out


def _local_effect(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    covariates = [
        "oligo",
        "ecog",
        "liver_metastasis",
        "visceral",
        "age",
        "pfs1_months",
        "er_percent",
        "pgr_percent",
    ]
    tbp = c.second_line[c.second_line["action"] == "tbp"].copy()
    tbp["local"] = tbp["local_therapy"].astype(float)
    tbp["pfs_event"] = tbp["pfs_event"].astype(float)
    tbp = _filled(tbp, covariates)
    extra = [col for col in tbp.columns if col.endswith("_missing")]
    ratio = cox_hazard_ratio(tbp, "pfs_time", "pfs_event", "local", covariates + extra)
    return _round(ratio), _inside(ratio, t["range"]), "multivariable Cox within TBP"


def _palumbo(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    palbo = c.second_line[c.second_line["line1_cdk"] == "palbociclib"]
    et = palbo[palbo["action"].isin(ET_BASED)]
    chemo = palbo[palbo["action"] == "chemo"]
    et_median = km_median(et["pfs_time"], et["pfs_event"])
    ct_median = km_median(chemo["pfs_time"], chemo["pfs_event"])
    ratio = et_median / ct_median
    bounds = t["range"]
    ok = (
        _inside(et_median, bounds["et_based"])
        and _inside(ct_median, bounds["chemotherapy"])
        and _inside(ratio, bounds["ratio_et_over_ct"])
    )
    return (
        {
            "et_based": _round(et_median, 2),
            "chemotherapy": _round(ct_median, 2),
            "ratio_et_over_ct": _round(ratio, 2),
        },
        ok,
        "",
    )


# --- virtual trials ---------------------------------------------------------------------------------


def _wide_truth(truth: pd.DataFrame, decisions: pd.DataFrame, key: bytes) -> pd.DataFrame:
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
        "hazard_ratio": _round(hr),
        "median_experimental": _round(km_median(experimental, np.ones(n), w), 2),
        "median_control": _round(km_median(control, np.ones(n), w), 2),
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
        checks.append(_inside(result["hazard_ratio"], t["hr_range"]))
    for arm, bounds in t.get("median_range", {}).items():
        checks.append(_inside(result[f"median_{arm}"], bounds))
    return all(checks) if checks else None


def _palmira_population(c: _Context) -> pd.DataFrame:
    f = c.trial
    crisis = (f["liver_metastasis"] == 1) & (f["ecog"] >= 2)
    return f[(f["line1_cdk"] == "palbociclib") & (f["pfs1_months"] >= 6) & ~crisis]


def _palmira(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    f = _palmira_population(c)
    result: dict[str, Any] = _trial(_arm(f, "cdk_same_et_switch"), _arm(f, "et_mono"))
    subgroups = {}
    for name, rows in (
        ("no_visceral", f["visceral"] == 0),
        ("visceral", f["visceral"] == 1),
        ("first_line_12m_or_more", f["pfs1_months"] >= 12),
    ):
        sub = f[rows]
        subgroups[name] = [
            _round(km_median(_arm(sub, "cdk_same_et_switch"), np.ones(len(sub))), 1),
            _round(km_median(_arm(sub, "et_mono"), np.ones(len(sub))), 1),
        ]
    result["subgroups"] = subgroups
    return (
        result,
        _check_trial(result, t),
        "subgroup medians [experimental, control] are reported, not judged",
    )


def _pace(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    f = c.trial[c.trial["line1_ai"] == 1]
    experimental = pd.Series(
        np.where(f["line1_cdk"] == "palbociclib", "cdk_same_et_switch", "cdk_switch"), index=f.index
    )
    result = _trial(_arm(f, experimental), _arm(f, "et_mono"), _palbociclib_weights(f, 0.90))
    bounds = NOTE_RANGES["PACE"]
    return result, _inside(result["hazard_ratio"], bounds), "judged on the note's range: HR 0.80 to 1.05"


def _cdk_switch_trial(
    c: _Context, t: dict[str, Any], drug: str, palbo_share: float
) -> tuple[Any, bool | None, str]:
    f = c.trial
    experimental = pd.Series(
        np.where(f["line1_cdk"] == drug, "cdk_same_et_switch", "cdk_switch"), index=f.index
    )
    result = _trial(_arm(f, experimental), _arm(f, "et_mono"), _palbociclib_weights(f, palbo_share))
    return result, _check_trial(result, t), f"weighted to {palbo_share:.0%} prior palbociclib"


def _fulvestrant(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    draws = _arm(c.trial, "et_mono")
    median = km_median(draws, np.ones(len(draws)))
    return _round(median, 2), _inside(median, t["range"]), "every first-line progressor switched to ET alone"


def _biomarker_trial(
    c: _Context, t: dict[str, Any], arm: str, column: str, labels: tuple[str, str]
) -> tuple[Any, bool | None, str]:
    f = c.trial
    simulated = {}
    for label, rows in ((labels[0], f[column]), (labels[1], ~f[column])):
        sub = f[rows.astype(bool)]
        simulated[label] = _trial(_arm(sub, arm), _arm(sub, "et_mono"))["hazard_ratio"]
    ok = all(_inside(simulated[label], t["hr_range"][label]) for label in labels)
    return simulated, ok, "true biomarker status at the decision"


def _palmira_os(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    f = _palmira_population(c)
    medians = {
        arm: _round(km_median(_arm(f, arm, "os_draw"), np.ones(len(f))), 1)
        for arm in ("cdk_same_et_switch", "et_mono")
    }
    ok = all(_inside(value, t["range"]) for value in medians.values())
    return medians, ok, ""


def _benefit_markers(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    f = c.trial
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
        simulated[name] = _round(float(difference))
    ok = all((simulated[name] > 0) == (sign == "larger") for name, sign in t["expect"].items())
    return simulated, ok, "difference in mean true RMST24 benefit (TBP minus ET switch), subgroup minus rest"


_COMPUTE: dict[str, Callable[[_Context, dict[str, Any]], tuple[Any, bool | None, str]]] = {
    "L1_pd_share": _l1_pd_share,
    "L1_median_rwpfs": _l1_median,
    "L1_duration_prognostic": _l1_duration_prognostic,
    "TBP_share": _tbp_share,
    "TBP_median_rwpfs": _tbp_median,
    "TBP_local_therapy_share": _tbp_local_share,
    "TBP_selection_profile": _selection_profile,
    "TBP_os_naive": _os_naive,
    "TBP_local_therapy_effect": _local_effect,
    "TBP_benefit_markers": _benefit_markers,
    "PALMIRA": _palmira,
    "PACE": _pace,
    "MAINTAIN": lambda c, t: _cdk_switch_trial(c, t, "ribociclib", 0.84),
    "postMONARCH": lambda c, t: _cdk_switch_trial(c, t, "abemaciclib", 0.59),
    "fulvestrant_after_cdk": _fulvestrant,
    "oral_serd_esr1": lambda c, t: _biomarker_trial(
        c, t, "oral_serd", "esr1_mutated", ("esr1_mutated", "esr1_wild_type")
    ),
    "pi3k_pathway": lambda c, t: _biomarker_trial(
        c, t, "et_targeted", "pathway_altered", ("altered", "not_altered")
    ),
    "PALMIRA_os": _palmira_os,
    "Palumbo_et_vs_ct": _palumbo,
}
