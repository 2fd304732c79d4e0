"""Compare a simulated lock and its truth with every published target in ``targets.yaml``.

Observed targets are computed here from the lock as an analyst would (loader, decision points,
Kaplan-Meier, shares, standardised differences, Cox with and without IPTW). Virtual-trial targets
give every eligible patient both arms from the ground truth (:mod:`linewise.simulation.virtual_trials`).
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

from linewise.features.decisions import derive_decisions
from linewise.features.loader import DataLock, load_lock
from linewise.simulation.analysis import (
    cox_hazard_ratio,
    decision_covariates,
    iptw_weights,
    km_median,
    standardized_difference,
)
from linewise.simulation.simulate import TRUTH_FILE
from linewise.simulation.virtual_trials import (
    NOTE_RANGES,
    benefit_markers,
    biomarker_trial,
    cdk_switch_trial,
    fulvestrant,
    pace,
    palmira,
    palmira_os,
    rounded,
    wide_truth,
    within_bounds,
)

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
    return Path(str(files("linewise.simulation") / "targets.yaml"))


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
    trial = wide_truth(truth, decisions[decisions["first_l1_progression"]], key)
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
    return rounded(share), within_bounds(share, t["range"]), ""


def _l1_median(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    frame = _first_line_times(c.lock)
    median = km_median(frame["pfs_time"], frame["pfs_event"])
    return rounded(median, 2), within_bounds(median, t["range"]), ""


def _l1_duration_prognostic(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    frame = _first_line_times(c.lock)
    long = frame[frame["pfs_time"] >= 12]
    short = frame[(frame["pfs_time"] < 12) & frame["pfs_event"]]
    long_median = km_median(long["os_time"], long["os_event"])
    short_median = km_median(short["os_time"], short["os_event"])
    ratio = long_median / short_median
    simulated = {
        "os_median_pfs1_12m_or_more": rounded(long_median, 1),
        "os_median_pfs1_under_12m": rounded(short_median, 1),
        "ratio": rounded(ratio, 2),
    }
    note = "" if np.isfinite(long_median) else "median OS not reached in the PFS1 >= 12 months group"
    return simulated, within_bounds(ratio, t["range"]), note


# --- observed: beyond progression ------------------------------------------------------------------


def _tbp_share(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    share = float((c.second_line["action"] == "tbp").mean())
    return (
        rounded(share),
        within_bounds(share, t["range"]),
        f"{len(c.second_line)} first-line progressions with a known action",
    )


def _tbp_median(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    tbp = c.second_line[c.second_line["action"] == "tbp"]
    median = km_median(tbp["pfs_time"], tbp["pfs_event"])
    return rounded(median, 2), within_bounds(median, t["range"]), ""


def _tbp_local_share(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    share = float(c.second_line.loc[c.second_line["action"] == "tbp", "local_therapy"].mean())
    return rounded(share), within_bounds(share, t["range"]), ""


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
    smd = {name: rounded(standardized_difference(tbp[col], switch[col])) for name, col in columns.items()}
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
    simulated = {"unadjusted": rounded(unadjusted), "iptw": rounded(adjusted)}
    return simulated, within_bounds(unadjusted, t["range"]) and within_bounds(adjusted, t["range"]), ""


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
    return rounded(ratio), within_bounds(ratio, t["range"]), "multivariable Cox within TBP"


def _palumbo(c: _Context, t: dict[str, Any]) -> tuple[Any, bool | None, str]:
    palbo = c.second_line[c.second_line["line1_cdk"] == "palbociclib"]
    et = palbo[palbo["action"].isin(ET_BASED)]
    chemo = palbo[palbo["action"] == "chemo"]
    et_median = km_median(et["pfs_time"], et["pfs_event"])
    ct_median = km_median(chemo["pfs_time"], chemo["pfs_event"])
    ratio = et_median / ct_median
    bounds = t["range"]
    ok = (
        within_bounds(et_median, bounds["et_based"])
        and within_bounds(ct_median, bounds["chemotherapy"])
        and within_bounds(ratio, bounds["ratio_et_over_ct"])
    )
    return (
        {
            "et_based": rounded(et_median, 2),
            "chemotherapy": rounded(ct_median, 2),
            "ratio_et_over_ct": rounded(ratio, 2),
        },
        ok,
        "",
    )


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
    "TBP_benefit_markers": lambda c, t: benefit_markers(c.trial, t),
    "PALMIRA": lambda c, t: palmira(c.trial, t),
    "PACE": lambda c, t: pace(c.trial, t),
    "MAINTAIN": lambda c, t: cdk_switch_trial(c.trial, t, "ribociclib", 0.84),
    "postMONARCH": lambda c, t: cdk_switch_trial(c.trial, t, "abemaciclib", 0.59),
    "fulvestrant_after_cdk": lambda c, t: fulvestrant(c.trial, t),
    "oral_serd_esr1": lambda c, t: biomarker_trial(
        c.trial, t, "oral_serd", "esr1_mutated", ("esr1_mutated", "esr1_wild_type")
    ),
    "pi3k_pathway": lambda c, t: biomarker_trial(
        c.trial, t, "et_targeted", "pathway_altered", ("altered", "not_altered")
    ),
    "PALMIRA_os": lambda c, t: palmira_os(c.trial, t),
    "Palumbo_et_vs_ct": _palumbo,
}
