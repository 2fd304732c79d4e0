"""The synthetic patient stored with every logged model as its input example.

MLflow keeps an input example beside a logged model; linewise's must never be a real patient. The
command line, which may import the simulator, makes one here and passes it to
:func:`linewise.training.pyfunc.log_recommender`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from linewise.features.examples import build_examples
from linewise.features.loader import load_lock
from linewise.features.patient import export_patients
from linewise.simulation.config import SimulationConfig, load_config
from linewise.simulation.simulate import simulate_lock


def synthetic_input_example(
    seed: int = 0, *, patients: int = 40, config: SimulationConfig | None = None
) -> dict[str, Any]:
    """Return a simulated patient's document to store as the model's input example.

    A lock of ``patients`` simulated patients is written to a temporary folder and exported with a
    pseudonym key drawn from ``seed`` (not the site's key); the patient chosen is the first, by key,
    whose latest decision is open, else the first with a decision. The same seed gives the same
    document.

    Parameters
    ----------
    seed : int
        Seed of the simulation and of the pseudonym key.
    patients : int
        Size of the simulated lock.
    config : SimulationConfig, optional
        Simulator configuration (default: the bundled one).

    Returns
    -------
    dict
        A patient document (:mod:`linewise.features.patient`).

    Raises
    ------
    ValueError
        If no simulated patient has a decision (too few patients).
    """
    key = np.random.default_rng(seed).bytes(32)
    with tempfile.TemporaryDirectory(prefix="linewise-example-") as folder:
        lock = Path(folder) / "lock"
        simulate_lock(
            patients, seed, lock, Path(folder) / "truth", config or load_config(), lock_id=f"example-{seed}"
        )
        examples = build_examples(load_lock(lock, key))
        if examples.empty:
            raise ValueError(f"none of {patients} simulated patients has a decision; simulate more")
        latest = examples.sort_values(["patient_key", "decision_day", "line_number"], kind="stable")
        latest = latest.groupby("patient_key", sort=True).tail(1)
        open_first = latest.sort_values(["open_decision", "patient_key"], ascending=[False, True])
        chosen = str(open_first["patient_key"].iloc[0])
        return export_patients(lock, key, [chosen])[chosen]
