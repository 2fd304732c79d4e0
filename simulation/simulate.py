"""One call from a seed to a data lock and its ground truth on disk."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linewise.simulation.cohort import draw_centres, draw_cohort
from linewise.simulation.config import SimulationConfig
from linewise.simulation.engine import run_cohort
from linewise.simulation.truth import compute_truth
from linewise.simulation.writer import build_tables, follow_up, patient_ids, write_lock

TRUTH_FILE = "truth.parquet"


class SimulationOutputError(ValueError):
    """An output path already exists or cannot be written."""


@dataclass(frozen=True)
class SimulationSummary:
    """Counts of what was written."""

    patients: int
    rows: dict[str, int]
    truth_rows: int
    lock: Path
    truth: Path


def simulate_lock(
    patients: int,
    seed: int,
    lock_path: Path,
    truth_path: Path,
    config: SimulationConfig,
    *,
    lock_id: str | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> SimulationSummary:
    """Simulate ``patients`` patients and write the lock folder and the truth folder.

    Parameters
    ----------
    patients : int
        Number of patients (at least 1).
    seed : int
        Seed of all randomness: the same seed, configuration and versions give the same bytes.
    lock_path, truth_path : Path
        Folders to create; neither may exist, and they must differ.
    config : SimulationConfig
        The simulator configuration.
    lock_id : str, optional
        The manifest's ``lock_id`` (default ``sim-<seed>-<patients>``).
    on_stage : callable, optional
        Called with the name of each stage as it starts (for a progress display).

    Returns
    -------
    SimulationSummary
        What was written.

    Raises
    ------
    SimulationOutputError
        If an output exists already, or the two paths are the same or nested; nothing is written.
    """
    if patients < 1:
        raise ValueError(f"patients must be >= 1, found {patients}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, found {seed}")
    lock_path, truth_path = Path(lock_path), Path(truth_path)
    for path in (lock_path, truth_path):
        if path.exists():
            raise SimulationOutputError(f"{path} exists already: choose a new folder")
    resolved = lock_path.resolve(), truth_path.resolve()
    if resolved[0] == resolved[1] or resolved[0] in resolved[1].parents or resolved[1] in resolved[0].parents:
        raise SimulationOutputError(
            "the lock and the truth must be separate folders, neither inside the other"
        )
    stage = on_stage or (lambda _: None)
    cohort_seed, course_seed, writer_seed, truth_seed = np.random.SeedSequence(seed).spawn(4)
    stage("patients")
    centres = draw_centres(config, np.random.default_rng(config.centres.seed))
    cohort = draw_cohort(patients, config, centres, np.random.default_rng(cohort_seed))
    stage("disease courses")
    records = run_cohort(cohort, centres, config, np.random.default_rng(course_seed))
    stage("lock tables")
    writer_rng = np.random.default_rng(writer_seed)
    follow = follow_up(cohort, records, config, writer_rng)
    tables = build_tables(cohort, records, follow, writer_rng)
    stage("ground truth")
    truth = compute_truth(
        cohort, centres, records, follow, patient_ids(cohort.size), config, np.random.default_rng(truth_seed)
    )
    stage("writing")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=lock_path.parent, prefix=".linewise-") as staging:
        staged_lock = Path(staging) / "lock"
        write_lock(tables, staged_lock, lock_id or f"sim-{seed}-{patients}", config, seed)
        with tempfile.TemporaryDirectory(dir=truth_path.parent, prefix=".linewise-") as staging_truth:
            staged_truth = Path(staging_truth) / "truth"
            staged_truth.mkdir()
            truth.to_parquet(staged_truth / TRUTH_FILE, index=False)
            shutil.move(str(staged_lock), lock_path)
            shutil.move(str(staged_truth), truth_path)
    return SimulationSummary(
        patients=patients,
        rows={name: len(frame) for name, frame in tables.items()},
        truth_rows=len(truth),
        lock=lock_path,
        truth=truth_path,
    )
