"""Patients at metastatic diagnosis: demographics, tumour biology, sites, centres, biomarkers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from linewise.simulation.config import SimulationConfig

SITE_BITS: Final = {
    "bone": 1,
    "liver": 2,
    "lung": 4,
    "pleura": 8,
    "lymph_node": 16,
    "brain": 32,
    "skin_soft_tissue": 64,
    "peritoneum": 128,
}
#: Sites a new metastasis at progression is drawn from, in the order of the simulator's draws.
NEW_SITE_ORDER: Final = ("liver", "lung", "bone", "lymph_node", "pleura", "brain", "peritoneum")
VISCERAL_MASK: Final = (
    SITE_BITS["liver"]
    | SITE_BITS["lung"]
    | SITE_BITS["pleura"]
    | SITE_BITS["brain"]
    | SITE_BITS["peritoneum"]
)
MENOPAUSE: Final = ("pre", "peri", "post")
HISTOLOGY: Final = ("nst", "lobular", "other")
HER2: Final = ("0", "1+", "2+_ish_neg")


@dataclass(frozen=True)
class Centres:
    """Centre sizes and habits (logit offsets per choice)."""

    weights: np.ndarray
    habits: dict[str, np.ndarray]


@dataclass(frozen=True)
class Cohort:
    """Patients at metastatic diagnosis, one entry per patient in every array."""

    dx_day: np.ndarray  # days from 1970-01-01
    centre: np.ndarray
    age: np.ndarray
    menopause: np.ndarray  # index into MENOPAUSE
    histology: np.ndarray  # index into HISTOLOGY
    er: np.ndarray
    pgr: np.ndarray
    ki67: np.ndarray  # true value
    ki67_recorded: np.ndarray  # NaN when not recorded
    her2: np.ndarray  # index into HER2, -1 when not recorded
    grade: np.ndarray  # 1-3, 0 when not recorded
    de_novo: np.ndarray
    ecog: np.ndarray
    ecog_recorded: np.ndarray
    sites: np.ndarray  # bit mask of SITE_BITS
    frailty: np.ndarray
    pik3ca: np.ndarray
    akt1: np.ndarray
    pten: np.ndarray
    brca: np.ndarray
    esr1: np.ndarray

    @property
    def size(self) -> int:
        """Number of patients."""
        return len(self.age)


def draw_centres(config: SimulationConfig, rng: np.random.Generator) -> Centres:
    """Draw centre sizes and habits.

    Parameters
    ----------
    config : SimulationConfig
        The simulator configuration.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    Centres
        Relative sizes (summing to 1) and a logit offset per centre for each habit.
    """
    count = config.centres.count
    weights = rng.dirichlet(np.full(count, config.centres.size_concentration))
    habits = {name: rng.normal(0.0, sd, count) for name, sd in sorted(config.centres.habit_sd.items())}
    return Centres(weights=weights, habits=habits)


def _shares(rng: np.random.Generator, shares: dict[str, float], names: tuple[str, ...], n: int) -> np.ndarray:
    probabilities = np.array([shares[name] for name in names], dtype=float)
    return rng.choice(len(names), size=n, p=probabilities / probabilities.sum())


def draw_cohort(n: int, config: SimulationConfig, centres: Centres, rng: np.random.Generator) -> Cohort:
    """Draw ``n`` patients at metastatic diagnosis.

    Parameters
    ----------
    n : int
        Number of patients.
    config : SimulationConfig
        The simulator configuration.
    centres : Centres
        From :func:`draw_centres`.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    Cohort
        The patients.
    """
    p = config.patients
    calendar = config.calendar
    start = np.datetime64(calendar.accrual_start, "D").astype(np.int64)
    end = np.datetime64(calendar.lock_date, "D").astype(np.int64) - int(
        calendar.accrual_end_months_before_lock * 30.44
    )
    dx_day = rng.integers(start, end, size=n)
    age = np.clip(rng.normal(p.age_mean, p.age_sd, n), *p.age_range).round(0)
    pre = rng.random(n) < 1.0 / (
        1.0 + np.exp(-(p.premenopausal_age_logit[0] + p.premenopausal_age_logit[1] * age))
    )
    peri = ~pre & (age < 55) & (rng.random(n) < p.perimenopausal_share)
    menopause = np.where(pre, 0, np.where(peri, 1, 2))
    histology = _shares(rng, p.histology_shares, HISTOLOGY, n)
    er = np.maximum(10.0, 100.0 * rng.beta(*p.er_beta, n)).round(0)
    pgr = np.where(
        rng.random(n) < p.pgr_zero_share, 0.0, 100.0 * rng.beta(*p.pgr_beta, n) * (er / 100.0)
    ).round(0)
    ki67 = np.clip(np.exp(rng.normal(p.ki67_log_mean, p.ki67_log_sd, n)), 1.0, 90.0).round(0)
    ki67_recorded = np.where(rng.random(n) < p.ki67_missing, np.nan, ki67)
    her2 = np.where(rng.random(n) < p.her2_missing, -1, _shares(rng, p.her2_shares, HER2, n))
    grade_true = np.where(ki67 >= 30, 3, np.where(ki67 >= 14, 2, 1))
    grade_true = np.clip(grade_true + rng.choice([-1, 0, 0, 0, 1], size=n), 1, 3)
    grade = np.where(rng.random(n) < p.grade_missing, 0, grade_true)
    de_novo = rng.random(n) < p.de_novo_share
    ecog = rng.choice(3, size=n, p=np.asarray(p.ecog_shares) / sum(p.ecog_shares))
    ecog_recorded = rng.random(n) >= p.ecog_missing
    sites = _draw_sites(n, p.site_probability, p.bone_only_share, rng)
    centre = rng.choice(len(centres.weights), size=n, p=centres.weights)
    alteration = p.pathway_alteration
    return Cohort(
        dx_day=dx_day,
        centre=centre,
        age=age,
        menopause=menopause,
        histology=histology,
        er=er,
        pgr=pgr,
        ki67=ki67,
        ki67_recorded=ki67_recorded,
        her2=her2,
        grade=grade,
        de_novo=de_novo,
        ecog=ecog,
        ecog_recorded=ecog_recorded,
        sites=sites,
        frailty=rng.normal(0.0, p.frailty_sd, n),
        pik3ca=rng.random(n) < alteration["pik3ca"],
        akt1=rng.random(n) < alteration["akt1"],
        pten=rng.random(n) < alteration["pten"],
        brca=rng.random(n) < p.brca_germline,
        esr1=rng.random(n) < p.esr1_at_diagnosis,
    )


def _draw_sites(
    n: int, probability: dict[str, float], bone_only_share: float, rng: np.random.Generator
) -> np.ndarray:
    bone_only = rng.random(n) < bone_only_share
    sites = np.zeros(n, dtype=np.int64)
    for name, bit in SITE_BITS.items():
        share = probability.get(name, 0.0)
        if name == "bone":
            # bone among the non-bone-only so that the overall bone share matches
            share = max(0.0, (share - bone_only_share) / max(1e-9, 1.0 - bone_only_share))
        sites |= np.where(rng.random(n) < share, bit, 0)
    sites = np.where(bone_only, SITE_BITS["bone"], sites)
    nothing = sites == 0
    sites[nothing] = SITE_BITS["lymph_node"]
    return sites
