"""What the disease-course engine records of each simulated patient, step by step."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from linewise.simulation.state import TrajectoryState


@dataclass
class Records:
    """What happened, step by step: lists of column arrays, concatenated by :meth:`stack`."""

    first_line: dict[str, np.ndarray] = field(default_factory=dict)
    decisions: list[dict[str, np.ndarray]] = field(default_factory=list)
    states: list[TrajectoryState] = field(default_factory=list)
    progressions: list[dict[str, np.ndarray]] = field(default_factory=list)
    tests: list[dict[str, np.ndarray]] = field(default_factory=list)
    ecog: list[dict[str, np.ndarray]] = field(default_factory=list)

    @staticmethod
    def stack(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Concatenate a list of column dicts."""
        if not parts:
            return {}
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

    def decision_states(self) -> TrajectoryState:
        """All recorded decision states, in the order of :attr:`decisions`."""
        return TrajectoryState(
            **{
                f.name: np.concatenate([getattr(s, f.name) for s in self.states])
                for f in fields(TrajectoryState)
            }
        )
