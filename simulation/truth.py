"""Ground truth beside the lock: every decision's potential outcomes under every candidate.

For each decision point that the lock shows and each candidate class, with and without
loco-regional therapy:

- rwPFS (months to the next progression or death) is Weibull: its shape and scale are written,
  with the exact median and restricted means to 12 and 24 months (closed form), and ``pfs_draw``,
  the potential outcome drawn with the same uniform number as the episode that happened (common
  random numbers: for the action taken it is the simulated rwPFS before censoring). ``pfs_draw``
  includes the short-episode floors of :func:`linewise.simulation.engine.floor_episode` (the next line
  starts, and local therapy is given, before the next event); the closed forms describe the
  Weibull before those floors, which move RMST24 by a few hundredths of a month;
- OS (months to death) depends on everything after the episode, so it is estimated by Monte Carlo:
  ``truth.os_draws`` courses per decision and candidate, the candidate now and usual practice
  afterwards, give the median, the restricted means, the Monte Carlo standard error of the 24-month
  restricted mean (``os_rmst24_se``) and one draw (``os_draw``);
- the true biomarker state at the decision (``esr1_mutated``, ``pathway_altered``: PIK3CA, AKT1
  or PTEN), which the lock shows only where a test was done, for virtual-trial eligibility.

Rows are keyed by the simulated ``patient_id``, ``line_number`` and ``decision_day`` (days from
metastatic diagnosis), the same keys the derived examples carry once ``patient_id`` is
pseudonymised with the same key.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from linewise.features.regimens import CANDIDATE_CLASSES
from linewise.simulation.cohort import Centres, Cohort
from linewise.simulation.config import SimulationConfig
from linewise.simulation.engine import floor_episode, simulate_survival
from linewise.simulation.outcomes import episode_log_scale, episode_shape, weibull_median, weibull_rmst
from linewise.simulation.records import Records
from linewise.simulation.state import ACTION_INDEX, TrajectoryState
from linewise.simulation.writer import DAYS_PER_MONTH, FollowUp

TRUTH_COLUMNS: Final = (
    "patient_id",
    "line_number",
    "decision_day",
    "candidate",
    "local_therapy",
    "pfs_shape",
    "pfs_scale",
    "pfs_median",
    "pfs_rmst12",
    "pfs_rmst24",
    "pfs_draw",
    "os_median",
    "os_rmst12",
    "os_rmst24",
    "os_rmst24_se",
    "os_draw",
    "esr1_mutated",
    "pathway_altered",
)
_CHUNK_ROWS: Final = 400_000


def compute_truth(
    cohort: Cohort,
    centres: Centres,
    records: Records,
    follow: FollowUp,
    ids: np.ndarray,
    config: SimulationConfig,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Return the truth table (one row per decision shown in the lock, candidate and local therapy)."""
    decisions = Records.stack(records.decisions)
    states = records.decision_states()
    shown = decisions["t"] <= follow.end[decisions["pid"]]
    state = states.take(shown)
    uniform = decisions["uniform"][shown]
    pid = state.pid
    decision_day = np.floor(state.t * DAYS_PER_MONTH).astype(np.int64)
    draws = config.truth.os_draws
    parts = []
    for candidate in CANDIDATE_CLASSES:
        for local in (False, True):
            action = np.full(state.size, ACTION_INDEX[candidate])
            local_therapy = np.full(state.size, local)
            scale = np.exp(episode_log_scale(state, action, local_therapy, cohort, config))
            shape = episode_shape(action, config)
            os_draws = _os_draws(state, action, local_therapy, draws, cohort, centres, config, rng)
            clipped12, clipped24 = np.minimum(os_draws, 12.0), np.minimum(os_draws, 24.0)
            parts.append(
                pd.DataFrame(
                    {
                        "patient_id": ids[pid],
                        "line_number": state.line,
                        "decision_day": decision_day,
                        "candidate": candidate,
                        "local_therapy": local,
                        "pfs_shape": shape,
                        "pfs_scale": scale,
                        "pfs_median": weibull_median(scale, shape),
                        "pfs_rmst12": weibull_rmst(scale, shape, 12.0),
                        "pfs_rmst24": weibull_rmst(scale, shape, 24.0),
                        "pfs_draw": floor_episode(
                            scale * (-np.log(uniform)) ** (1.0 / shape),
                            action,
                            local_therapy,
                            decisions["end_offset"][shown],
                            decisions["start_offset"][shown],
                            decisions["local_offset"][shown],
                        ),
                        "os_median": np.median(os_draws, axis=1),
                        "os_rmst12": clipped12.mean(axis=1),
                        "os_rmst24": clipped24.mean(axis=1),
                        "os_rmst24_se": monte_carlo_standard_error(clipped24),
                        "os_draw": os_draws[:, 0],
                        "esr1_mutated": state.esr1,
                        "pathway_altered": cohort.pik3ca[pid] | cohort.akt1[pid] | cohort.pten[pid],
                    }
                )
            )
    truth = pd.concat(parts, ignore_index=True)
    truth = truth.sort_values(
        ["patient_id", "decision_day", "line_number", "candidate", "local_therapy"], kind="stable"
    ).reset_index(drop=True)
    return truth[list(TRUTH_COLUMNS)]


def monte_carlo_standard_error(draws: np.ndarray) -> np.ndarray:
    """Return the standard error of each row's mean over its draws: ``sd(ddof=1) / sqrt(draws)``.

    Parameters
    ----------
    draws : ndarray of shape (n, draws)
        One row of draws per estimate.

    Returns
    -------
    ndarray of shape (n,)
        NaN for every row when there is a single draw (no spread to estimate).
    """
    count = draws.shape[1]
    if count < 2:
        return np.full(draws.shape[0], np.nan)
    return np.asarray(draws.std(axis=1, ddof=1) / np.sqrt(count))


def _os_draws(
    state: TrajectoryState,
    action: np.ndarray,
    local: np.ndarray,
    draws: int,
    cohort: Cohort,
    centres: Centres,
    config: SimulationConfig,
    rng: np.random.Generator,
) -> np.ndarray:

    n = state.size
    result = np.empty((n, draws))
    rows_per_chunk = max(1, _CHUNK_ROWS // draws)
    for begin in range(0, n, rows_per_chunk):
        index = np.arange(begin, min(n, begin + rows_per_chunk))
        repeated = np.repeat(index, draws)
        survival = simulate_survival(
            state.take(repeated), action[repeated], local[repeated], cohort, centres, config, rng
        )
        result[index] = survival.reshape(len(index), draws)
    return result
