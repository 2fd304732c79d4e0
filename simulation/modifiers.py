"""The decision features that a scenario's effect modifiers and choice terms depend on.

Each feature is a function of the trajectory state at a decision and of the patient: an indicator
(0 or 1) or a centred, scaled number. They are what a scenario (:mod:`linewise.simulation.scenarios`)
names in :class:`linewise.simulation.config.EffectModifier` and
:class:`linewise.simulation.config.ChoiceTerm`. All but ``esr1_mutated`` and ``pathway_altered`` (the
true biology, which the lock shows only where a test was done) are recorded in the lock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, get_args

import numpy as np

from linewise.simulation.cohort import SITE_BITS, VISCERAL_MASK, Cohort
from linewise.simulation.config import ScenarioFeature
from linewise.simulation.state import TrajectoryState

_Feature = Callable[[TrajectoryState, Cohort], np.ndarray]


def _site(bit: int) -> _Feature:
    return lambda state, cohort: (state.sites & bit) > 0


_FEATURES: Final[dict[str, _Feature]] = {
    "oligo": lambda state, cohort: state.oligo,
    "visceral": lambda state, cohort: (state.sites & VISCERAL_MASK) > 0,
    "liver": _site(SITE_BITS["liver"]),
    "bone_only": lambda state, cohort: state.sites == SITE_BITS["bone"],
    "brain": _site(SITE_BITS["brain"]),
    "ecog0": lambda state, cohort: state.ecog == 0,
    "ecog2plus": lambda state, cohort: state.ecog >= 2,
    "ki67_high": lambda state, cohort: cohort.ki67[state.pid] >= 20,
    "er_high": lambda state, cohort: cohort.er[state.pid] >= 90,
    "pgr_high": lambda state, cohort: cohort.pgr[state.pid] >= 30,
    "pgr_zero": lambda state, cohort: cohort.pgr[state.pid] == 0,
    "lobular": lambda state, cohort: cohort.histology[state.pid] == 1,
    "de_novo": lambda state, cohort: cohort.de_novo[state.pid],
    "premenopausal": lambda state, cohort: cohort.menopause[state.pid] == 0,
    "her2_low": lambda state, cohort: np.isin(cohort.her2[state.pid], (1, 2)),
    "fast": lambda state, cohort: state.previous_episode < 6.0,
    "long_previous": lambda state, cohort: state.previous_episode >= 12.0,
    "older": lambda state, cohort: cohort.age[state.pid] >= 70,
    "after_palbociclib": lambda state, cohort: state.last_cdk == 1,
    "esr1_mutated": lambda state, cohort: state.esr1,
    "esr1_known": lambda state, cohort: state.esr1_known,
    "pathway_altered": lambda state, cohort: (
        cohort.pik3ca[state.pid] | cohort.akt1[state.pid] | cohort.pten[state.pid]
    ),
    "pathway_known": lambda state, cohort: state.pathway_known,
    "brca": lambda state, cohort: cohort.brca[state.pid],
    "age": lambda state, cohort: (cohort.age[state.pid] - 60.0) / 10.0,
    "er": lambda state, cohort: (cohort.er[state.pid] - 90.0) / 10.0,
    "ki67": lambda state, cohort: np.log(np.maximum(cohort.ki67[state.pid], 1.0) / 20.0),
    "previous_episode": lambda state, cohort: np.log(np.maximum(state.previous_episode, 3.0) / 12.0),
}
#: Every feature name, in the order of :data:`linewise.simulation.config.ScenarioFeature`.
SCENARIO_FEATURES: Final = get_args(ScenarioFeature)
#: The features that are indicators (0 or 1); the others are centred and scaled numbers.
CONTINUOUS_FEATURES: Final = frozenset({"age", "er", "ki67", "previous_episode"})


def decision_feature(name: str, state: TrajectoryState, cohort: Cohort) -> np.ndarray:
    """Return one feature of every trajectory at its decision, as floats.

    Parameters
    ----------
    name : str
        One of :data:`SCENARIO_FEATURES`.
    state : TrajectoryState
        The trajectories at their decisions.
    cohort : Cohort
        Their patients.

    Returns
    -------
    ndarray of float, shape (state.size,)

    Raises
    ------
    KeyError
        If ``name`` is not a scenario feature.
    """
    return np.asarray(_FEATURES[name](state, cohort), dtype=float)
