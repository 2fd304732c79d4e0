"""The state of many disease trajectories at a decision, as parallel numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Final

import numpy as np

from linewise.features.regimens import CANDIDATE_CLASSES

#: Action codes used inside the simulator: the candidate classes, then ``none``.
ACTIONS: Final = (*CANDIDATE_CLASSES, "none")
ACTION_INDEX: Final = {name: index for index, name in enumerate(ACTIONS)}
TBP, CDK_SAME, CDK_SWITCH, ET_MONO, ET_TARGETED, ORAL_SERD, CHEMO, ADC, NONE = range(len(ACTIONS))
ENDOCRINE_ACTIONS: Final = (TBP, CDK_SAME, CDK_SWITCH, ET_MONO, ET_TARGETED, ORAL_SERD)
#: CDK4/6 inhibitor codes: 0 none.
CDK_DRUGS: Final = ("", "palbociclib", "ribociclib", "abemaciclib")
#: Endocrine backbone codes: 0 none.
ET_BACKBONES: Final = ("", "ai", "fulvestrant", "serm", "oral_serd")
FIRST_LINE: Final = -1  # class code of the first line (ET + CDK4/6i, not a decision)


@dataclass(frozen=True)
class TrajectoryState:
    """Where each trajectory stands at its current decision (a progression).

    Every field is an array with one entry per trajectory.
    """

    pid: np.ndarray  # index of the patient in the cohort
    t: np.ndarray  # months from metastatic diagnosis to this progression
    line: np.ndarray  # the line during which the progression happened (1-based)
    line_class: np.ndarray  # action code of that line, FIRST_LINE for line 1
    cdk: np.ndarray  # CDK4/6i of that line (index into CDK_DRUGS)
    et: np.ndarray  # endocrine backbone of that line (index into ET_BACKBONES)
    last_cdk: np.ndarray  # most recent CDK4/6i received
    ai_months: np.ndarray  # cumulative months on an aromatase inhibitor
    esr1: np.ndarray  # true ESR1 status now
    esr1_known: np.ndarray  # a test has shown the mutation by now
    pathway_known: np.ndarray  # a test has shown a PIK3CA/AKT1/PTEN alteration by now
    ecog: np.ndarray
    sites: np.ndarray
    previous_episode: np.ndarray  # months from the start of the episode that just ended to this progression
    oligo: np.ndarray
    line_start: np.ndarray  # months from diagnosis to the start of the current line

    @property
    def size(self) -> int:
        """Number of trajectories."""
        return len(self.pid)

    def take(self, index: np.ndarray) -> TrajectoryState:
        """Return the trajectories at ``index`` (a boolean mask or integer positions)."""
        return replace(self, **{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def with_values(self, **changes: np.ndarray) -> TrajectoryState:
        """Return a copy with some fields replaced."""
        return replace(self, **changes)
