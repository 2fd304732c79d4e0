"""The features' ceiling: a regression fitted to simulated truth, scored on held-out outcomes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sksurv.metrics import concordance_index_censored

from linewise.features import load_lock
from linewise.features.decisions import KEYS
from linewise.features.examples import build_examples
from linewise.models.candidates import training_decisions
from linewise.models.truth_ceiling import feature_ceiling_c_index
from linewise.simulation.config import load_config
from linewise.simulation.simulate import TRUTH_FILE, simulate_lock
from linewise.training.policy import read_truth

KEY = b"ceiling-test-key-0123456789abcde"


def _examples_and_truth(root: Path, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    simulate_lock(300, seed, root / "lock", root / "truth", load_config())
    return build_examples(load_lock(root / "lock", KEY)), read_truth(root / "truth" / TRUTH_FILE, KEY)


def test_a_truth_known_from_one_feature_and_the_option_is_learned_to_its_own_c_index(tmp_path: Path) -> None:
    """Truth exp(months on the progressing line / 12), doubled under chemotherapy: ranks as that does."""
    train, truth = _examples_and_truth(tmp_path / "train", 41)
    test, _ = _examples_and_truth(tmp_path / "test", 42)
    months = train[[*KEYS, "months_on_current_line"]]
    known = truth.drop(columns="pfs_rmst24").merge(months, on=list(KEYS))
    known["pfs_rmst24"] = np.exp(known["months_on_current_line"] / 12.0) * np.where(
        known["candidate"] == "chemo", 2.0, 1.0
    )
    held_out = training_decisions(test)
    log_value = (
        held_out["months_on_current_line"].to_numpy(float) / 12.0
        + np.log(2.0) * (held_out["action"].astype(str) == "chemo").to_numpy()
    )
    expected = concordance_index_censored(
        held_out["pfs_event"].astype(bool).to_numpy(), held_out["pfs_time"].to_numpy(float), -log_value
    )[0]
    without_option = concordance_index_censored(
        held_out["pfs_event"].astype(bool).to_numpy(),
        held_out["pfs_time"].to_numpy(float),
        -held_out["months_on_current_line"].to_numpy(float),
    )[0]
    assert abs(expected - without_option) > 0.01  # the option matters to the answer
    assert feature_ceiling_c_index(train, test, known) == pytest.approx(expected, abs=0.01)


def test_a_truth_that_does_not_cover_every_decision_is_refused(tmp_path: Path) -> None:
    train, truth = _examples_and_truth(tmp_path / "train", 41)
    with pytest.raises(ValueError, match="covers 0 of"):
        feature_ceiling_c_index(train, train, truth.assign(patient_key=truth["patient_key"] + "-other-key"))
    first = truth["patient_key"].iloc[0]
    with pytest.raises(ValueError, match="the truth table covers"):
        feature_ceiling_c_index(train, train, truth[truth["patient_key"] != first])
    with pytest.raises(ValueError, match="more than once"):
        feature_ceiling_c_index(train, train, pd.concat([truth, truth.head(1)]))
    with pytest.raises(ValueError, match="endpoint must be one of"):
        feature_ceiling_c_index(train, train, truth, endpoint="death")
