"""The potential-outcome model: Weibull episodes whose scale depends on prognosis and the action.

An episode is the time from a decision (or the first-line start) to the next progression or
death. Its time is Weibull with shape ``k`` and a scale whose logarithm adds up a line baseline,
prognostic terms (:func:`prognostic_terms`) and the action's effect (:func:`action_effect`),
both on the log-time scale (accelerated failure time). With a common shape, a log time ratio
``d`` is a hazard ratio ``exp(-k d)``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gamma, gammainc

from linewise.simulation.cohort import SITE_BITS, VISCERAL_MASK, Cohort
from linewise.simulation.config import SimulationConfig
from linewise.simulation.modifiers import decision_feature
from linewise.simulation.state import (
    ACTION_INDEX,
    ADC,
    CDK_SAME,
    CDK_SWITCH,
    CHEMO,
    ENDOCRINE_ACTIONS,
    ET_TARGETED,
    NONE,
    ORAL_SERD,
    TBP,
    TrajectoryState,
)

_LN2 = np.log(2.0)
FAST_MONTHS = 6.0


def weibull_median(scale: np.ndarray, shape: float | np.ndarray) -> np.ndarray:
    """Median of a Weibull(shape, scale)."""
    return scale * _LN2 ** (1.0 / shape)


def weibull_rmst(scale: np.ndarray, shape: float | np.ndarray, horizon: float) -> np.ndarray:
    """Restricted mean of a Weibull(shape, scale) up to ``horizon`` (closed form).

    ``RMST(tau) = scale / shape * Gamma(1/shape) * P(1/shape, (tau/scale)^shape)``, with ``P`` the
    regularised lower incomplete gamma function.
    """
    a = 1.0 / shape
    return np.asarray(scale / shape * gamma(a) * gammainc(a, (horizon / scale) ** shape))


def scale_for_median(median: float, shape: float) -> float:
    """Weibull scale that gives ``median``."""
    return float(median / _LN2 ** (1.0 / shape))


def prognostic_terms(
    cohort: Cohort,
    pid: np.ndarray,
    sites: np.ndarray,
    ecog: np.ndarray,
    previous: np.ndarray | None,
    oligo: np.ndarray | None,
    config: SimulationConfig,
) -> np.ndarray:
    """Log time ratio of a patient's prognosis against the reference patient.

    The reference is 60 years old, Ki-67 < 20%, ER 90%, PgR 0, NST, not de novo, ECOG 0, nodal
    disease only, a previous episode of 12 months, systemic progression, frailty 0.
    """
    p = config.prognosis
    liver = (sites & SITE_BITS["liver"]) > 0
    visceral_other = ((sites & VISCERAL_MASK) > 0) & ~liver
    bone_only = sites == SITE_BITS["bone"]
    brain = (sites & SITE_BITS["brain"]) > 0
    terms = (
        p.age_per_decade * (cohort.age[pid] - 60.0) / 10.0
        + p.ki67_high * (cohort.ki67[pid] >= 20)
        + p.er_per_10 * (cohort.er[pid] - 90.0) / 10.0
        + p.pgr_positive * (cohort.pgr[pid] > 0)
        + p.liver * liver
        + p.visceral_other * visceral_other
        + p.bone_only * bone_only
        + p.brain * brain
        + p.ecog * ecog
        + p.lobular * (cohort.histology[pid] == 1)
        + p.de_novo * cohort.de_novo[pid]
        + cohort.frailty[pid]
    )
    if previous is not None:
        terms = terms + p.previous_episode * np.log(np.maximum(previous, 3.0) / 12.0)
    if oligo is not None:
        terms = terms + p.oligo * oligo
    return np.asarray(terms, dtype=float)


def action_effect(
    state: TrajectoryState,
    action: np.ndarray,
    local_therapy: np.ndarray,
    cohort: Cohort,
    config: SimulationConfig,
) -> np.ndarray:
    """Log time ratio of ``action`` (with or without loco-regional therapy) against ``et_mono``.

    Effect modifiers, as the seeds describe: TBP gains with oligoprogression, ECOG 0, high ER and
    PgR and low Ki-67, and much more with loco-regional therapy in oligoprogression; the same
    CDK4/6i helps little, and mainly without visceral disease; another CDK4/6i helps after
    palbociclib; an oral SERD only with an ESR1 mutation; a PI3K/AKT/mTOR inhibitor only with a
    pathway alteration; chemotherapy and ADCs more with visceral or fast disease; every endocrine
    option loses when the previous episode was short (endocrine resistance).
    """
    e = config.effects
    pid = state.pid
    oligo = state.oligo.astype(float)
    visceral = ((state.sites & VISCERAL_MASK) > 0).astype(float)
    fast = (state.previous_episode < FAST_MONTHS).astype(float)
    altered = (cohort.pik3ca[pid] | cohort.akt1[pid] | cohort.pten[pid]).astype(float)
    lt = local_therapy.astype(float)
    tbp = (
        e.tbp["base"]
        + e.tbp["oligo"] * oligo
        + e.tbp["ecog0"] * (state.ecog == 0)
        + e.tbp["high_er"] * (cohort.er[pid] >= 90)
        + e.tbp["high_pgr"] * (cohort.pgr[pid] >= 30)
        + e.tbp["low_ki67"] * (cohort.ki67[pid] < 20)
        + lt * (e.local_therapy_tbp["base"] + e.local_therapy_tbp["oligo"] * oligo)
    )
    other_lt = lt * e.local_therapy_other["oligo"] * oligo
    by_action = {
        TBP: tbp,
        CDK_SAME: e.cdk_same_et_switch["base"] + e.cdk_same_et_switch["no_visceral"] * (1.0 - visceral),
        CDK_SWITCH: np.where(
            state.last_cdk == 1, e.cdk_switch["after_palbociclib"], e.cdk_switch["after_other"]
        ),
        ET_TARGETED: np.where(altered > 0, e.et_targeted["altered"], e.et_targeted["not_altered"]),
        ORAL_SERD: np.where(state.esr1, e.oral_serd["esr1_mutated"], e.oral_serd["esr1_wild_type"]),
        CHEMO: e.chemo["base"] + e.chemo["visceral"] * visceral + e.chemo["fast"] * fast,
        ADC: e.adc["base"] + e.adc["visceral"] * visceral + e.adc["fast"] * fast,
    }
    effect = np.zeros(state.size)
    for code, value in by_action.items():
        effect = np.where(action == code, value, effect)
    endocrine = np.isin(action, ENDOCRINE_ACTIONS)
    effect = effect + e.endocrine_fast * fast * endocrine
    effect = effect + np.where(action == TBP, 0.0, other_lt)
    return scenario_effect(state, action, effect, cohort, config)


def scenario_effect(
    state: TrajectoryState,
    action: np.ndarray,
    effect: np.ndarray,
    cohort: Cohort,
    config: SimulationConfig,
) -> np.ndarray:
    """Add a scenario's effect modifiers to ``effect`` and scale it by its line factors.

    Each option's ``effect_shift`` and each :class:`linewise.simulation.config.EffectModifier`
    (``log_time_ratio`` times its feature) are added to its option's effect; then each option's whole
    effect (against ``et_mono``) is multiplied by its factor of ``effect_by_line`` at the decision's
    line. The default scenario changes nothing.

    Parameters
    ----------
    state : TrajectoryState
        The trajectories at their decisions.
    action : ndarray of int
        The action code of each trajectory.
    effect : ndarray of float
        The effect of the model's own terms (log time ratio against ``et_mono``).
    cohort : Cohort
        The patients.
    config : SimulationConfig
        The configuration whose ``scenario`` block applies.

    Returns
    -------
    ndarray of float
    """
    scenario = config.scenario
    total = np.asarray(effect, dtype=float).copy()
    for option, shift in scenario.effect_shift.items():
        total[action == ACTION_INDEX[option]] += shift
    for modifier in scenario.effect_modifiers:
        chosen = action == ACTION_INDEX[modifier.option]
        if chosen.any():
            total[chosen] += (
                modifier.log_time_ratio * decision_feature(modifier.feature, state, cohort)[chosen]
            )
    line = line_index(state.line)
    for option, factors in scenario.effect_by_line.items():
        chosen = action == ACTION_INDEX[option]
        total[chosen] *= np.asarray(factors, dtype=float)[line[chosen]]
    return total


def episode_shape(action: np.ndarray, config: SimulationConfig) -> np.ndarray:
    """Weibull shape of the episode that starts at a decision under each action.

    ``later_lines.weibull_shape``, times the scenario's ``weibull_shape_ratio`` of the action where it
    has one: an option whose shape differs from the others' has a hazard ratio that changes over time.

    Parameters
    ----------
    action : ndarray of int
        Action codes.
    config : SimulationConfig
        The configuration.

    Returns
    -------
    ndarray of float
    """
    shape = np.full(np.shape(action), config.later_lines.weibull_shape, dtype=float)
    for option, ratio in config.scenario.weibull_shape_ratio.items():
        shape[np.asarray(action) == ACTION_INDEX[option]] *= ratio
    return shape


def line_index(line: np.ndarray) -> np.ndarray:
    """0 for a decision after line 1, 1 after line 2, 2 after later lines."""
    return np.clip(line - 1, 0, 2)


def episode_log_scale(
    state: TrajectoryState,
    action: np.ndarray,
    local_therapy: np.ndarray,
    cohort: Cohort,
    config: SimulationConfig,
) -> np.ndarray:
    """Log Weibull scale of the episode that starts at this decision under ``action``."""
    later = config.later_lines
    medians = np.asarray(later.et_mono_median_months)[line_index(state.line)]
    base = np.log(medians / _LN2 ** (1.0 / later.weibull_shape))
    prognosis = prognostic_terms(
        cohort, state.pid, state.sites, state.ecog, state.previous_episode, state.oligo, config
    )
    none_scale = np.log(scale_for_median(later.none_median_months, later.weibull_shape))
    log_scale = base + prognosis + action_effect(state, action, local_therapy, cohort, config)
    return np.where(action == NONE, none_scale + 0.5 * cohort.frailty[state.pid], log_scale)


def death_probability(state: TrajectoryState, cohort: Cohort, config: SimulationConfig) -> np.ndarray:
    """P(the episode starting at this decision ends in death rather than progression)."""
    later = config.later_lines
    logit = (
        np.asarray(later.death_logit_by_line)[line_index(state.line)]
        + later.death_ecog * state.ecog
        + later.death_liver * ((state.sites & SITE_BITS["liver"]) > 0)
        + 0.02 * (cohort.age[state.pid] - 60.0)
    )
    return np.asarray(1.0 / (1.0 + np.exp(-logit)))


def first_line_log_scale(cohort: Cohort, config: SimulationConfig) -> np.ndarray:
    """Log Weibull scale of every patient's first-line episode."""
    first = config.first_line
    base = np.log(scale_for_median(first.median_months, first.weibull_shape))
    pid = np.arange(cohort.size)
    return base + prognostic_terms(cohort, pid, cohort.sites, cohort.ecog, None, None, config)
