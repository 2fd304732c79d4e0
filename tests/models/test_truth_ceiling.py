"""The features' ceiling: a regression fitted to simulated truth, scored on held-out outcomes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sksurv.metrics import concordance_index_censored

from features import load_lock
from features.decisions import KEYS
from features.examples import build_examples
from features.pseudonym import pseudonymize
from models.recommender import training_decisions
from models.truth_ceiling import feature_ceiling_c_index
from simulation.config import load_config
from simulation.simulate import TRUTH_FILE, simulate_lock

KEY = b"ceiling-test-key-0123456789abcde"


def _examples_and_truth(root: Path, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    simulate_lock(300, seed, root / "lock", root / "truth", load_config())
    raw = pd.read_parquet(root / "truth" / TRUTH_FILE)
    ids = raw["patient_id"].astype(str)
    truth = raw.assign(patient_key=ids.map({i: pseudonymize(i, KEY) for i in ids.unique()}))
    return build_examples(load_lock(root / "lock", KEY)), truth


def test_a_truth_that_is_a_function_of_one_feature_is_learned_to_its_own_c_index(tmp_path: Path) -> None:
    """Truth exp(months on the progressing line / 12): the regression ranks as that feature does."""
    train, truth = _examples_and_truth(tmp_path / "train", 41)
    test, _ = _examples_and_truth(tmp_path / "test", 42)
    months = train[[*KEYS, "months_on_current_line"]]
    known = truth.drop(columns="pfs_rmst24").merge(months, on=list(KEYS))
    known["pfs_rmst24"] = np.exp(known["months_on_current_line"] / 12.0)
    held_out = training_decisions(test)
    expected = concordance_index_censored(
        held_out["pfs_event"].astype(bool).to_numpy(),
        held_out["pfs_time"].to_numpy(float),
        -held_out["months_on_current_line"].to_numpy(float),
    )[0]
    assert feature_ceiling_c_index(train, test, known) == pytest.approx(expected, abs=0.01)


def test_a_truth_keyed_by_other_pseudonyms_is_refused(tmp_path: Path) -> None:
    train, truth = _examples_and_truth(tmp_path / "train", 41)
    with pytest.raises(ValueError, match="no training decision matches"):
        feature_ceiling_c_index(train, train, truth.assign(patient_key="someone-else"))
