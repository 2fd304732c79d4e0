"""The practice model: what clinicians choose at a progression, confounded by prognosis.

A multinomial logit over the candidate classes with centre habits, drawn with the Gumbel-max
trick, after a separate draw of "no further treatment". TBP is chosen for younger,
premenopausal women with NST histology, high ER/PgR, bone disease without liver involvement,
oligoprogression, good ECOG and a long previous episode; chemotherapy for visceral disease, fast
progression and poor ECOG. Both also depend on the latent frailty that the analyst never sees
(unmeasured confounding). Loco-regional therapy is given mostly with TBP in oligoprogression.
"""

from __future__ import annotations

import numpy as np

from linewise.simulation.cohort import SITE_BITS, VISCERAL_MASK, Centres, Cohort
from linewise.simulation.config import SimulationConfig
from linewise.simulation.modifiers import decision_feature
from linewise.simulation.outcomes import line_index
from linewise.simulation.state import (
    ACTION_INDEX,
    ACTIONS,
    ADC,
    CDK_SAME,
    CDK_SWITCH,
    CHEMO,
    ET_MONO,
    ET_TARGETED,
    NONE,
    ORAL_SERD,
    TBP,
    TrajectoryState,
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def choice_utilities(
    state: TrajectoryState, cohort: Cohort, centres: Centres, config: SimulationConfig
) -> np.ndarray:
    """Return the systematic utility of each candidate class (rows: trajectories, columns: classes).

    Unavailable candidates get ``-inf``: a same or another CDK4/6i needs a CDK4/6i before. A scenario's
    :class:`linewise.simulation.config.ChoiceTerm` rows add their terms.
    """
    pr = config.practice
    pid = state.pid
    later = (state.line > 1).astype(int)
    sites = state.sites
    liver = ((sites & SITE_BITS["liver"]) > 0).astype(float)
    visceral = ((sites & VISCERAL_MASK) > 0).astype(float)
    bone = ((sites & SITE_BITS["bone"]) > 0).astype(float)
    fast = (state.previous_episode < 6.0).astype(float)
    frailty = cohort.frailty[pid]
    centre = cohort.centre[pid]
    utilities = np.empty((state.size, NONE))
    for code, name in enumerate(ACTIONS[:NONE]):
        utilities[:, code] = np.asarray(pr.intercepts[name])[later]
    t = pr.tbp_terms
    utilities[:, TBP] += (
        t["age_per_decade"] * (cohort.age[pid] - 60.0) / 10.0
        + t["premenopausal"] * (cohort.menopause[pid] == 0)
        + t["nst"] * (cohort.histology[pid] == 0)
        + t["er_per_10"] * (cohort.er[pid] - 85.0) / 10.0
        + t["pgr_per_10"] * (cohort.pgr[pid] - 30.0) / 10.0
        + t["bone"] * bone
        + t["liver"] * liver
        + t["oligo"] * state.oligo
        + t["ecog"] * state.ecog
        + t["previous_episode_per_year"] * np.minimum(state.previous_episode, 48.0) / 12.0
        + t["frailty"] * frailty
        + centres.habits["tbp"][centre]
    )
    c = pr.chemo_terms
    utilities[:, CHEMO] += (
        c["visceral"] * visceral
        + c["liver"] * liver
        + c["systemic"] * (~state.oligo)
        + c["ecog"] * state.ecog
        + c["fast"] * fast
        + c["frailty"] * frailty
        + centres.habits["chemo"][centre]
    )
    en = pr.endocrine_terms
    endocrine = (
        en["previous_episode_per_year"] * np.minimum(state.previous_episode, 48.0) / 12.0
        + en["frailty"] * frailty
    )
    for code in (CDK_SAME, CDK_SWITCH, ET_MONO, ET_TARGETED, ORAL_SERD):
        utilities[:, code] += endocrine
    a = pr.adc_terms
    utilities[:, ADC] += a["visceral"] * visceral + a["her2_low"] * np.isin(cohort.her2[pid], (1, 2))
    utilities[:, ORAL_SERD] += pr.esr1_known_mutated["oral_serd"] * state.esr1_known
    utilities[:, ET_TARGETED] += pr.pathway_known_altered["et_targeted"] * state.pathway_known
    for term in config.scenario.choice_terms:  # a scenario's confounding and positivity terms
        utilities[:, ACTION_INDEX[term.option]] += term.logit * decision_feature(term.feature, state, cohort)
    no_cdk_before = state.last_cdk == 0
    utilities[no_cdk_before, CDK_SAME] = -np.inf
    utilities[no_cdk_before, CDK_SWITCH] = -np.inf
    return utilities


def none_probability(state: TrajectoryState, config: SimulationConfig) -> np.ndarray:
    """P(no further treatment) at this decision."""
    later = config.later_lines
    logit = np.asarray(later.none_logit_by_line)[line_index(state.line)] + later.none_ecog * state.ecog
    return _sigmoid(logit)


def choose_actions(
    state: TrajectoryState,
    cohort: Cohort,
    centres: Centres,
    config: SimulationConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw the action taken at each decision (codes of :data:`linewise.simulation.state.ACTIONS`)."""
    utilities = choice_utilities(state, cohort, centres, config)
    gumbel = -np.log(-np.log(rng.random(utilities.shape)))
    action = np.argmax(utilities + gumbel, axis=1)
    none = rng.random(state.size) < none_probability(state, config)
    last_line = state.line >= config.later_lines.max_lines
    return np.where(none | last_line, NONE, action)


def choose_local_therapy(
    state: TrajectoryState,
    action: np.ndarray,
    cohort: Cohort,
    centres: Centres,
    config: SimulationConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw whether loco-regional therapy is given within 30 days of the decision."""
    lt = config.practice.local_therapy_logit
    bone = (state.sites & SITE_BITS["bone"]) > 0
    habit = centres.habits["local_therapy"][cohort.centre[state.pid]]
    tbp_logit = lt["tbp"]["base"] + lt["tbp"]["oligo"] * state.oligo + lt["tbp"]["bone"] * bone + habit
    other_logit = lt["other"]["base"] + lt["other"]["oligo"] * state.oligo + habit
    probability = _sigmoid(np.where(action == TBP, tbp_logit, other_logit))
    return (rng.random(state.size) < probability) & (action != NONE)
