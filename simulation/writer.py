"""Turn simulated courses into a data lock: censoring, calendar dates, the seven tables, the manifest.

Follow-up ends at death, at loss to follow-up, or at a last visit shortly before the lock date;
nothing after the last contact is written. Lines still running then have no end date.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from linewise.features.decisions import DAYS_PER_MONTH
from linewise.simulation.cohort import HER2, HISTOLOGY, MENOPAUSE, NEW_SITE_ORDER, SITE_BITS, Cohort
from linewise.simulation.config import SimulationConfig
from linewise.simulation.engine import AI, EXTRA_DRUGS, FULVESTRANT, SERD
from linewise.simulation.measurements import biomarker_table, lock_dates, lock_day, performance_table
from linewise.simulation.records import Records
from linewise.simulation.state import CDK_DRUGS, NONE, TBP

_AI_DRUGS = ("letrozole", "anastrozole", "exemestane")


@dataclass(frozen=True)
class FollowUp:
    """Each patient's end of follow-up, in months from diagnosis, and whether it is a death."""

    end: np.ndarray
    dead: np.ndarray
    death_time: np.ndarray


def patient_ids(n: int) -> np.ndarray:
    """Return the simulated (invented) patient identifiers."""
    return np.array([f"SIM-{i:06d}" for i in range(1, n + 1)], dtype=object)


def follow_up(
    cohort: Cohort, records: Records, config: SimulationConfig, rng: np.random.Generator
) -> FollowUp:
    """Draw loss to follow-up and the last visit; combine them with the simulated deaths."""
    n = cohort.size
    death_time = np.full(n, np.inf)
    first = records.first_line
    died_first = first["died"]
    death_time[first["pid"][died_first]] = (first["start"] + first["duration"])[died_first]
    decisions = Records.stack(records.decisions)
    if decisions:
        ended = decisions["died"]
        death_time[decisions["pid"][ended]] = (decisions["t"] + decisions["duration"])[ended]
    calendar = config.calendar
    lock_day = np.datetime64(calendar.lock_date, "D").astype(np.int64)
    to_lock = (lock_day - cohort.dx_day) / DAYS_PER_MONTH
    visit = to_lock - rng.uniform(*calendar.last_visit_months_before_lock, n)
    rate = -np.log(1.0 - calendar.loss_to_follow_up_per_year) / 12.0
    lost = rng.exponential(1.0 / rate, n) if rate > 0 else np.full(n, np.inf)
    alive_end = np.maximum(np.minimum(visit, lost), 0.1)
    dead = death_time <= np.minimum(alive_end, to_lock)
    end = np.where(dead, death_time, alive_end)
    return FollowUp(end=end, dead=dead, death_time=death_time)


def _drug_strings(
    cdk: np.ndarray, et: np.ndarray, extra: np.ndarray, ai_type: np.ndarray, suppression: np.ndarray
) -> np.ndarray:
    frame = pd.DataFrame({"cdk": cdk, "et": et, "extra": extra, "ai": ai_type, "ovs": suppression})
    unique = frame.drop_duplicates()
    names = {}
    for row in unique.itertuples(index=False):
        parts = []
        if row.et == AI:
            parts.append(_AI_DRUGS[row.ai])
        elif row.et == FULVESTRANT:
            parts.append("fulvestrant")
        elif row.et == SERD:
            parts.append("elacestrant")
        elif row.et == 3:
            parts.append("tamoxifen")
        if row.cdk:
            parts.append(CDK_DRUGS[row.cdk])
        if row.extra:
            parts.append(EXTRA_DRUGS[row.extra])
        if row.ovs and row.et in (AI, FULVESTRANT):
            parts.append("goserelin")
        names[tuple(row)] = "+".join(parts)
    return np.array([names[key] for key in frame.itertuples(index=False, name=None)], dtype=object)


def build_tables(
    cohort: Cohort, records: Records, follow: FollowUp, rng: np.random.Generator
) -> dict[str, pd.DataFrame]:
    """Return the seven lock tables (text-ready frames), cut at each patient's last contact."""
    n = cohort.size
    ids = patient_ids(n)
    ai_type = rng.choice(3, size=n, p=[0.6, 0.25, 0.15])
    suppression = cohort.menopause < 2
    end = follow.end
    first = records.first_line
    decisions = Records.stack(records.decisions)
    progressions = Records.stack(records.progressions)
    tables = {
        "patients": _patients(cohort, ids, follow),
        "lines": _lines(cohort, ids, first, decisions, follow, ai_type, suppression),
        "progressions": _progressions(cohort, ids, progressions, end),
        "local_therapies": _local_therapies(cohort, ids, decisions, end, rng),
        "metastases": _metastases(cohort, ids, progressions, end),
        "biomarkers": biomarker_table(cohort, ids, first, decisions, end, rng),
        "performance_status": performance_table(cohort, ids, decisions, end, rng),
    }
    return tables


def _patients(cohort: Cohort, ids: np.ndarray, follow: FollowUp) -> pd.DataFrame:
    last_contact = lock_dates(lock_day(cohort, np.arange(cohort.size), follow.end))
    return pd.DataFrame(
        {
            "patient_id": ids,
            "center_id": np.char.add("C", np.char.zfill((cohort.centre + 1).astype(str), 2)),
            "age_at_metastatic_dx": cohort.age.astype(int),
            "menopausal_status": np.asarray(MENOPAUSE)[cohort.menopause],
            "histology": np.asarray(HISTOLOGY)[cohort.histology],
            "er_percent": cohort.er.astype(int),
            "pgr_percent": cohort.pgr.astype(int),
            "ki67_percent": pd.array(cohort.ki67_recorded, dtype="Float64").astype("Int64"),
            "her2_ihc": np.where(cohort.her2 >= 0, np.asarray(HER2)[np.maximum(cohort.her2, 0)], ""),
            "grade": np.where(cohort.grade > 0, cohort.grade.astype(str), ""),
            "de_novo": np.where(cohort.de_novo, "true", "false"),
            "metastatic_dx_date": lock_dates(cohort.dx_day),
            "last_contact_date": last_contact,
            "vital_status": np.where(follow.dead, "dead", "alive"),
            "death_date": np.where(follow.dead, last_contact, ""),
        }
    )


def _lines(
    cohort: Cohort,
    ids: np.ndarray,
    first: dict[str, np.ndarray],
    decisions: dict[str, np.ndarray],
    follow: FollowUp,
    ai_type: np.ndarray,
    suppression: np.ndarray,
) -> pd.DataFrame:
    pid = first["pid"]
    starts = [
        pd.DataFrame(
            {
                "pid": pid,
                "line": 1,
                "start": first["start"],
                "cdk": first["cdk"],
                "et": first["et"],
                "extra": 0,
            }
        )
    ]
    ends = []
    first_death = first["died"]
    ends.append(
        pd.DataFrame(
            {
                "pid": pid[first_death],
                "line": 1,
                "end": (first["start"] + first["duration"])[first_death],
                "reason": "death",
            }
        )
    )
    if decisions:
        switch = decisions["action"] != TBP
        ends.append(
            pd.DataFrame(
                {
                    "pid": decisions["pid"][switch],
                    "line": decisions["line"][switch],
                    "end": (decisions["t"] + decisions["end_offset"])[switch],
                    "reason": "progression",
                }
            )
        )
        new = switch & (decisions["action"] != NONE)
        starts.append(
            pd.DataFrame(
                {
                    "pid": decisions["pid"][new],
                    "line": decisions["line"][new] + 1,
                    "start": (decisions["t"] + decisions["start_offset"])[new],
                    "cdk": decisions["cdk"][new],
                    "et": decisions["et"][new],
                    "extra": decisions["extra"][new],
                }
            )
        )
        died_on_line = decisions["died"] & (decisions["action"] != NONE)
        ends.append(
            pd.DataFrame(
                {
                    "pid": decisions["pid"][died_on_line],
                    "line": np.where(decisions["action"] == TBP, decisions["line"], decisions["line"] + 1)[
                        died_on_line
                    ],
                    "end": (decisions["t"] + decisions["duration"])[died_on_line],
                    "reason": "death",
                }
            )
        )
    lines = pd.concat(starts, ignore_index=True).merge(
        pd.concat(ends, ignore_index=True), on=["pid", "line"], how="left"
    )
    last = follow.end[lines["pid"].to_numpy()]
    lines = lines[lines["start"].to_numpy() <= last].copy()
    last = follow.end[lines["pid"].to_numpy()]
    ongoing = lines["end"].isna() | (lines["end"].to_numpy() > last)
    lines = lines.sort_values(["pid", "line"], kind="stable")
    pids = lines["pid"].to_numpy()
    drugs = _drug_strings(
        lines["cdk"].to_numpy(),
        lines["et"].to_numpy(),
        lines["extra"].to_numpy(),
        ai_type[pids],
        suppression[pids],
    )
    start_day = lock_day(cohort, pids, lines["start"].to_numpy())
    end_day = lock_day(cohort, pids, np.nan_to_num(lines["end"].to_numpy(), nan=0.0))
    ongoing = ongoing.loc[lines.index].to_numpy()
    return pd.DataFrame(
        {
            "patient_id": ids[pids],
            "line_number": lines["line"].to_numpy(),
            "start_date": lock_dates(start_day),
            "end_date": np.where(ongoing, "", lock_dates(np.maximum(end_day, start_day))),
            "drugs": drugs,
            "end_reason": np.where(ongoing, "", lines["reason"].fillna("").to_numpy()),
        }
    )


def _progressions(
    cohort: Cohort, ids: np.ndarray, progressions: dict[str, np.ndarray], end: np.ndarray
) -> pd.DataFrame:
    pid = progressions["pid"]
    seen = progressions["t"] <= end[pid]
    pid = pid[seen]
    new_site = progressions["new_site"][seen]
    return pd.DataFrame(
        {
            "patient_id": ids[pid],
            "date": lock_dates(lock_day(cohort, pid, progressions["t"][seen])),
            "line_number": progressions["line"][seen],
            "pattern": np.where(progressions["oligo"][seen], "oligo", "systemic"),
            "new_sites": np.where(new_site >= 0, np.asarray(NEW_SITE_ORDER)[np.maximum(new_site, 0)], ""),
            "method": "radiological",
        }
    )


def _local_therapies(
    cohort: Cohort,
    ids: np.ndarray,
    decisions: dict[str, np.ndarray],
    end: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    if not decisions:
        return pd.DataFrame(columns=["patient_id", "date", "type", "site"])
    time = decisions["t"] + decisions["local_offset"]
    before_event = decisions["local_offset"] < decisions["duration"]
    given = decisions["local"] & before_event & (time <= end[decisions["pid"]])
    pid = decisions["pid"][given]
    kind = rng.choice(["radiotherapy", "surgery", "ablation"], size=len(pid), p=[0.86, 0.05, 0.09])
    bone = (cohort.sites[pid] & SITE_BITS["bone"]) > 0
    site = np.where(
        bone & (rng.random(len(pid)) < 0.8), "bone", np.where(kind == "ablation", "liver", "lymph_node")
    )
    return pd.DataFrame(
        {
            "patient_id": ids[pid],
            "date": lock_dates(lock_day(cohort, pid, time[given])),
            "type": kind,
            "site": site,
        }
    )


def _metastases(
    cohort: Cohort, ids: np.ndarray, progressions: dict[str, np.ndarray], end: np.ndarray
) -> pd.DataFrame:
    rows = []
    for name, bit in SITE_BITS.items():
        has = (cohort.sites & bit) > 0
        rows.append(pd.DataFrame({"pid": np.flatnonzero(has), "site": name, "t": 0.0}))
    new = progressions["new_site"] >= 0
    new &= progressions["t"] <= end[progressions["pid"]]
    rows.append(
        pd.DataFrame(
            {
                "pid": progressions["pid"][new],
                "site": np.asarray(NEW_SITE_ORDER)[progressions["new_site"][new]],
                "t": progressions["t"][new],
            }
        )
    )
    frame = pd.concat(rows, ignore_index=True).sort_values(["pid", "t", "site"], kind="stable")
    pid = frame["pid"].to_numpy()
    return pd.DataFrame(
        {
            "patient_id": ids[pid],
            "site": frame["site"].to_numpy(),
            "date_detected": lock_dates(lock_day(cohort, pid, frame["t"].to_numpy())),
        }
    )


def write_lock(
    tables: dict[str, pd.DataFrame], folder: Path, lock_id: str, config: SimulationConfig, seed: int
) -> None:
    """Write the tables as CSV and the manifest into ``folder`` (which must not exist yet)."""
    folder.mkdir(parents=True)
    manifest = {
        "lock_id": lock_id,
        "lock_date": config.calendar.lock_date.isoformat(),
        "schema_version": 1,
        "source": f"simulated by linewise (seed {seed}); invented patients",
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False, lineterminator="\n")
