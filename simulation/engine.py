"""The disease course: first line, then decision after decision until death, vectorised over patients.

:func:`run_cohort` simulates every patient's whole course (without censoring: the writer cuts
it at the lock date and loss to follow-up). :func:`simulate_survival` restarts the same process
from given decision states with a forced first action, which is how the ground truth of OS under
each candidate is computed: the candidate at this decision, then usual practice.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from linewise.simulation.cohort import NEW_SITE_ORDER, SITE_BITS, Centres, Cohort
from linewise.simulation.config import SimulationConfig
from linewise.simulation.outcomes import (
    death_probability,
    episode_log_scale,
    episode_shape,
    first_line_log_scale,
)
from linewise.simulation.practice import choose_actions, choose_local_therapy
from linewise.simulation.records import Records
from linewise.simulation.state import (
    ADC,
    CDK_SAME,
    CDK_SWITCH,
    CHEMO,
    ET_MONO,
    ET_TARGETED,
    FIRST_LINE,
    NONE,
    ORAL_SERD,
    TBP,
    TrajectoryState,
)

AI, FULVESTRANT, SERM, SERD = 1, 2, 3, 4
#: Extra (non-backbone) drug of a line: index into this tuple, 0 none.
EXTRA_DRUGS = (
    "",
    "alpelisib",
    "capivasertib",
    "everolimus",
    "capecitabine",
    "paclitaxel",
    "eribulin",
    "vinorelbine",
    "sacituzumab_govitecan",
    "trastuzumab_deruxtecan",
)
#: Shortest episode: a new progression is not assessed within a week of the last decision. The
#: episode is also never shorter than the time to start the next line or to deliver local therapy.
MIN_EPISODE_MONTHS = 0.25
#: A TBP episode lasts at least 29 days, so that the lock shows the line going on past the 28-day
#: TBP threshold (a progression or death within 28 days would make the lock call it a switch or none).
TBP_MIN_EPISODE_MONTHS = 29 / 30.4375


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _weibull(log_scale: np.ndarray, shape: float | np.ndarray, uniform: np.ndarray) -> np.ndarray:
    return np.asarray(np.exp(log_scale) * (-np.log(uniform)) ** (1.0 / shape))


def _panel_probability(year: np.ndarray, config: SimulationConfig, kind: str) -> np.ndarray:
    settings = getattr(config.testing, kind)
    return _sigmoid(settings["base"] + settings["per_year"] * (year - 2020.0))


def _year(cohort: Cohort, pid: np.ndarray, months: np.ndarray) -> np.ndarray:
    return np.asarray(1970.0 + (cohort.dx_day[pid] + months * 30.4375) / 365.25)


def floor_episode(
    duration: np.ndarray,
    action: np.ndarray,
    local: np.ndarray,
    end_offset: np.ndarray,
    start_offset: np.ndarray,
    local_offset: np.ndarray,
) -> np.ndarray:
    """Apply the episode floors: a new line must start, and local therapy be given, before the next event.

    Parameters
    ----------
    duration : ndarray
        Weibull episode times (months).
    action, local : ndarray
        The action codes and loco-regional therapy flags.
    end_offset, start_offset, local_offset : ndarray
        Months from the decision to the end of the old line, the start of the new one, and local
        therapy.

    Returns
    -------
    ndarray
        The episode times that the lock shows (and the truth's ``pfs_draw``).
    """
    switching = (action != TBP) & (action != NONE)
    duration = np.where(switching, np.maximum(duration, start_offset + 0.1), duration)
    duration = np.where(action == NONE, np.maximum(duration, end_offset + 0.05), duration)
    duration = np.where(local, np.maximum(duration, local_offset + 0.05), duration)
    duration = np.where(action == TBP, np.maximum(duration, TBP_MIN_EPISODE_MONTHS), duration)
    return np.asarray(np.maximum(duration, MIN_EPISODE_MONTHS))


def first_line(
    cohort: Cohort, centres: Centres, config: SimulationConfig, rng: np.random.Generator, records: Records
) -> TrajectoryState:
    """Simulate every first line; record it and return the states of those who progressed."""
    n = cohort.size
    pid = np.arange(n)
    fl = config.first_line
    shares = np.array([fl.cdk_shares[name] for name in ("palbociclib", "ribociclib", "abemaciclib")])
    cdk = 1 + rng.choice(3, size=n, p=shares / shares.sum())
    et = np.where(rng.random(n) < fl.fulvestrant_share, FULVESTRANT, AI)
    start = rng.uniform(*config.calendar.months_to_first_line, n)
    duration = _weibull(first_line_log_scale(cohort, config), fl.weibull_shape, rng.random(n))
    death_logit = fl.death_logit + 0.03 * (cohort.age - 60.0) + 0.4 * cohort.ecog
    died = rng.random(n) < _sigmoid(death_logit)
    panel = rng.random(n) < _panel_probability(_year(cohort, pid, start), config, "tissue_panel")
    records.first_line = {
        "pid": pid,
        "start": start,
        "cdk": cdk,
        "et": et,
        "duration": duration,
        "died": died,
        "panel": panel,
        "panel_time": start * rng.random(n),
    }
    altered = cohort.pik3ca | cohort.akt1 | cohort.pten
    progressed = ~died
    ai_months = np.where(et == AI, duration, 0.0)
    esr1 = cohort.esr1 | (
        rng.random(n) < 1.0 - np.exp(-ai_months / config.patients.esr1_emergence_months_on_ai)
    )
    state = TrajectoryState(
        pid=pid,
        t=start + duration,
        line=np.ones(n, dtype=np.int64),
        line_class=np.full(n, FIRST_LINE),
        cdk=cdk,
        et=et,
        last_cdk=cdk.copy(),
        ai_months=ai_months,
        esr1=esr1,
        esr1_known=np.zeros(n, dtype=bool),
        pathway_known=panel & altered,
        ecog=cohort.ecog.copy(),
        sites=cohort.sites.copy(),
        previous_episode=duration,
        oligo=np.zeros(n, dtype=bool),
        line_start=start,
    )
    state = _progress(state, progressed, cohort, config, rng, records, record=True)
    return state.take(progressed)


def _progress(
    state: TrajectoryState,
    mask: np.ndarray,
    cohort: Cohort,
    config: SimulationConfig,
    rng: np.random.Generator,
    records: Records | None,
    record: bool,
) -> TrajectoryState:
    """Draw the pattern, new sites and ECOG change of the progressions at ``state.t``."""
    later = config.later_lines
    n = state.size
    bone_only = state.sites == SITE_BITS["bone"]
    oligo_logit = (
        later.oligo_logit
        + later.oligo_bone_only * bone_only
        + later.oligo_ki67_high * (cohort.ki67[state.pid] >= 20)
    )
    oligo = rng.random(n) < _sigmoid(oligo_logit)
    new_site = rng.random(n) < np.where(oligo, later.new_site_oligo, later.new_site_systemic)
    shares = np.array([later.new_site_shares[name] for name in NEW_SITE_ORDER])
    site_index = rng.choice(len(NEW_SITE_ORDER), size=n, p=shares / shares.sum())
    bits = np.array([SITE_BITS[name] for name in NEW_SITE_ORDER])[site_index]
    added = new_site & ((state.sites & bits) == 0)
    sites = np.where(added, state.sites | bits, state.sites)
    ecog = np.minimum(state.ecog + (rng.random(n) < later.ecog_worsening), 4)
    if record and records is not None:
        records.progressions.append(
            {
                "pid": state.pid[mask],
                "t": state.t[mask],
                "line": state.line[mask],
                "oligo": oligo[mask],
                "new_site": np.where(added, site_index, -1)[mask],
            }
        )
    return state.with_values(oligo=oligo, sites=sites, ecog=ecog)


def _new_regimen(
    state: TrajectoryState, action: np.ndarray, cohort: Cohort, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CDK4/6i, endocrine backbone and extra drug of the line each action starts."""
    n = state.size
    other_cdk = np.where(
        state.last_cdk == 1, np.where(rng.random(n) < 0.5, 2, 3), np.where(state.last_cdk == 2, 3, 2)
    )
    switched_et = np.where(state.et == FULVESTRANT, AI, FULVESTRANT)
    altered_known = state.pathway_known
    pik3ca = cohort.pik3ca[state.pid]
    targeted = np.where(altered_known, np.where(pik3ca, 1, 2), 3)
    targeted_et = np.where(targeted == 3, AI, FULVESTRANT)
    chemo = 4 + np.minimum(state.line - 1, 3) % 4
    adc = np.where(np.isin(cohort.her2[state.pid], (1, 2)) & (rng.random(n) < 0.6), 9, 8)
    cdk = np.select(
        [action == TBP, action == CDK_SAME, action == CDK_SWITCH], [state.cdk, state.last_cdk, other_cdk], 0
    )
    et = np.select(
        [
            action == TBP,
            np.isin(action, (CDK_SAME, CDK_SWITCH, ET_MONO)),
            action == ET_TARGETED,
            action == ORAL_SERD,
        ],
        [state.et, switched_et, targeted_et, SERD],
        0,
    )
    extra = np.select([action == ET_TARGETED, action == CHEMO, action == ADC], [targeted, chemo, adc], 0)
    return cdk.astype(np.int64), et.astype(np.int64), extra.astype(np.int64)


def step(
    state: TrajectoryState,
    cohort: Cohort,
    centres: Centres,
    config: SimulationConfig,
    rng: np.random.Generator,
    records: Records | None = None,
    forced: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[TrajectoryState, np.ndarray, np.ndarray]:
    """Make one decision for every trajectory and run its episode.

    Returns
    -------
    next_state : TrajectoryState
        The trajectories that progressed, at their next decision.
    died : ndarray of bool
        Which of the input trajectories died in this episode.
    event_time : ndarray
        Months from diagnosis to the end of the episode (death or progression).
    """
    n = state.size
    year = _year(cohort, state.pid, state.t)
    esr1_tested = rng.random(n) < _panel_probability(year, config, "esr1_ctdna")
    panel_tested = (
        (state.line == 1)
        & ~state.pathway_known
        & (rng.random(n) < 0.5 * _panel_probability(year, config, "tissue_panel"))
    )
    altered = cohort.pik3ca[state.pid] | cohort.akt1[state.pid] | cohort.pten[state.pid]
    state = state.with_values(
        esr1_known=state.esr1_known | (esr1_tested & state.esr1),
        pathway_known=state.pathway_known | (panel_tested & altered),
    )
    if forced is None:
        action = choose_actions(state, cohort, centres, config, rng)
        local = choose_local_therapy(state, action, cohort, centres, config, rng)
    else:
        action, local = forced
    uniform = rng.random(n)
    log_scale = episode_log_scale(state, action, local, cohort, config)
    duration = _weibull(log_scale, episode_shape(action, config), uniform)
    died = (rng.random(n) < death_probability(state, cohort, config)) | (action == NONE)
    end_offset = rng.uniform(0.0, 0.5, n)
    start_offset = end_offset + rng.uniform(0.1, 0.6, n)
    local_offset = rng.uniform(0.1, 0.9, n)
    duration = floor_episode(duration, action, local, end_offset, start_offset, local_offset)
    cdk, et, extra = _new_regimen(state, action, cohort, rng)
    if records is not None:
        records.states.append(state)
        records.decisions.append(
            {
                "pid": state.pid,
                "t": state.t,
                "line": state.line,
                "action": action,
                "local": local,
                "local_offset": local_offset,
                "end_offset": end_offset,
                "start_offset": start_offset,
                "cdk": cdk,
                "et": et,
                "extra": extra,
                "duration": duration,
                "died": died,
                "uniform": uniform,
                "esr1_tested": esr1_tested,
                "esr1": state.esr1,
                "panel_tested": panel_tested,
                "ecog": state.ecog,
                "ecog_recorded": rng.random(n) < config.testing.ecog_recorded,
            }
        )
    event_time = state.t + duration
    tbp = action == TBP
    on_ai = np.where(tbp, state.et, et) == AI
    ai_months = state.ai_months + np.where(on_ai, duration, 0.0)
    emerged = rng.random(n) < 1.0 - np.exp(
        -np.where(on_ai, duration, 0.0) / config.patients.esr1_emergence_months_on_ai
    )
    moved = state.with_values(
        t=event_time,
        line=np.where(tbp, state.line, state.line + 1),
        line_class=np.where(tbp, state.line_class, action),
        cdk=np.where(tbp, state.cdk, cdk),
        et=np.where(tbp, state.et, et),
        last_cdk=np.where(~tbp & (cdk > 0), cdk, state.last_cdk),
        ai_months=ai_months,
        esr1=state.esr1 | emerged,
        previous_episode=duration,
        line_start=np.where(tbp, state.line_start, state.t + start_offset),
    )
    alive = ~died
    moved = _progress(moved, alive, cohort, config, rng, records, records is not None)
    return moved.take(alive), died, event_time


def run_cohort(
    cohort: Cohort,
    centres: Centres,
    config: SimulationConfig,
    rng: np.random.Generator,
    on_step: Callable[[int, int], None] | None = None,
) -> Records:
    """Simulate every patient's whole course and return the records.

    Parameters
    ----------
    cohort, centres, config, rng
        As drawn by :mod:`linewise.simulation.cohort`.
    on_step : callable, optional
        Called with (step number, trajectories still alive) after each round of decisions.
    """
    records = Records()
    state = first_line(cohort, centres, config, rng, records)
    step_number = 0
    while state.size:
        state, _, _ = step(state, cohort, centres, config, rng, records)
        step_number += 1
        if on_step is not None:
            on_step(step_number, state.size)
    return records


def simulate_survival(
    state: TrajectoryState,
    action: np.ndarray,
    local: np.ndarray,
    cohort: Cohort,
    centres: Centres,
    config: SimulationConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """Months from each decision to death, with ``action`` now and usual practice afterwards."""
    decision_time = state.t.copy()
    death_time = np.full(state.size, np.nan)
    position = np.arange(state.size)
    forced: tuple[np.ndarray, np.ndarray] | None = (action, local)
    while state.size:
        state, died, event_time = step(state, cohort, centres, config, rng, forced=forced)
        death_time[position[died]] = event_time[died]
        position = position[~died]
        forced = None
    return death_time - decision_time
