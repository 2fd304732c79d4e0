"""Training's parts that need no model: configuration, splits, lock digest, tracking store, champion rule."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linewise.features import load_lock
from linewise.features.examples import build_examples
from linewise.training.config import SplitConfig, TrainingConfigError, load_training_config
from linewise.training.lock_digest import lock_digest, session_key
from linewise.training.registry import CHALLENGER, CHAMPION, decide_alias
from linewise.training.split import split_examples
from linewise.training.tracking import DEFAULT_TRACKING_URI, artifact_root, tracking_uri

#: A fixed pseudonym key: the same patients, in the same order, on every run.
KEY = b"training-parts-test-key---------"


def test_default_config_reads_and_bad_files_fail_with_their_name(tmp_path: Path) -> None:
    config = load_training_config()
    assert config.split.by == "patient" and config.selection.candidates[0].family == "boosted_cox"
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("seed: 1\nselection: {candidates: [{family: boosted_cox}]}\nlearning: 2\n")
    with pytest.raises(TrainingConfigError, match=r"unknown\.yaml: learning: Extra inputs are not permitted"):
        load_training_config(unknown)
    broken = tmp_path / "broken.yaml"
    broken.write_text("seed: [1\n")
    with pytest.raises(TrainingConfigError, match=r"broken\.yaml: cannot be read as YAML"):
        load_training_config(broken)
    greedy = tmp_path / "greedy.yaml"
    greedy.write_text("split: {test_fraction: 0.8}\nselection: {candidates: [{family: boosted_cox}]}\n")
    with pytest.raises(
        TrainingConfigError, match=r"greedy\.yaml: split\.test_fraction: .*less than or equal to 0\.7"
    ):
        load_training_config(greedy)
    twice = tmp_path / "twice.yaml"
    twice.write_text("selection: {candidates: [{family: boosted_cox, learners: [s, dr, s]}]}\n")
    with pytest.raises(TrainingConfigError, match=r"twice\.yaml: selection\.candidates\.0: .*listed twice"):
        load_training_config(twice)
    unknown_learner = tmp_path / "learner.yaml"
    unknown_learner.write_text("selection: {candidates: [{family: boosted_cox, learners: [x]}]}\n")
    with pytest.raises(TrainingConfigError, match=r"learner\.yaml: selection\.candidates\.0\.learners\.0"):
        load_training_config(unknown_learner)


def _examples_and_patients(patients: int = 90, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hand-built stand-ins: 1 to 3 decisions per patient, 6 centres, diagnosis months spread over 4 years."""
    rng = np.random.default_rng(seed)
    keys = [f"{i:016x}" for i in range(patients)]
    table = pd.DataFrame(
        {
            "patient_key": keys,
            "center_id": [f"C{i % 6:02d}" for i in range(patients)],
            "metastatic_dx_year": 2019 + rng.integers(0, 4, patients),
            "metastatic_dx_month": rng.integers(1, 13, patients),
        }
    )
    examples = pd.DataFrame({"patient_key": np.repeat(keys, rng.integers(1, 4, patients))})
    return examples, table


@pytest.mark.parametrize("by", ["patient", "centre", "date"])
def test_splits_keep_patients_and_units_together(by: str) -> None:
    examples, patients = _examples_and_patients()
    split = split_examples(examples, patients, SplitConfig(by=by), np.random.default_rng(1))
    parts = [split.development, split.test]
    assert not (split.development & split.test).any() and (split.development | split.test).all()
    owners = [set(examples.loc[part, "patient_key"]) for part in parts]
    assert not (owners[0] & owners[1])
    if by == "centre":
        centre = patients.set_index("patient_key")["center_id"]
        centres = [set(centre.loc[list(o)]) for o in owners]
        assert not (centres[0] & centres[1])
    if by == "date":
        month = patients.set_index("patient_key").eval("metastatic_dx_year * 12 + metastatic_dx_month")
        assert month.loc[list(owners[1])].min() >= month.loc[list(owners[0])].max()
    counts = split.counts(examples)
    # by hand: a quarter of 90 patients is 22.5, rounded to 22; by centre, 2 of the 6 centres of 15 each
    assert counts["test_patients"] == {"patient": 22, "date": 22, "centre": 30}[by]
    assert counts["development_patients"] + counts["test_patients"] == 90
    assert counts["development_decisions"] + counts["test_decisions"] == len(examples)


def test_split_refuses_an_empty_part() -> None:
    examples, patients = _examples_and_patients(patients=1)
    with pytest.raises(ValueError, match="leaves no decision in: test"):
        split_examples(examples, patients, SplitConfig(), np.random.default_rng(0))


def test_lock_digest_depends_on_content_not_location(lock: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere"
    shutil.copytree(lock, copy)
    assert lock_digest(lock) == lock_digest(copy)
    with (copy / "lines.csv").open("a") as handle:
        handle.write("\n")
    assert lock_digest(lock) != lock_digest(copy)
    assert session_key(lock_digest(lock)) == session_key(lock_digest(lock))
    # the session key makes the training split reproducible: same lock, same pseudonyms
    first = build_examples(load_lock(lock, session_key(lock_digest(lock))))
    second = build_examples(load_lock(lock, session_key(lock_digest(lock))))
    pd.testing.assert_frame_equal(first, second)
    other = build_examples(load_lock(lock, KEY))
    assert set(first["patient_key"]) != set(other["patient_key"])


def test_tracking_store_defaults_to_sqlite_under_mlruns(tmp_path: Path) -> None:
    assert tracking_uri({}) == DEFAULT_TRACKING_URI == "sqlite:///mlruns/mlflow.db"
    assert tracking_uri({"MLFLOW_TRACKING_URI": "http://tracking:5000"}) == "http://tracking:5000"
    database = tmp_path / "store" / "mlflow.db"
    assert artifact_root(f"sqlite:///{database}") == (tmp_path / "store" / "artifacts").as_uri()
    assert artifact_root("http://tracking:5000") is None


@pytest.mark.parametrize(
    ("new", "champion", "version", "failure", "alias"),
    [
        (8.0, None, None, None, CHAMPION),  # first version
        (8.0, 7.5, "1", None, CHAMPION),  # beats the champion
        (7.5, 7.5, "1", None, CHALLENGER),  # a tie does not replace it
        (7.0, 7.5, "1", None, CHALLENGER),
        (9.0, None, "1", "the champion cannot score these features", CHALLENGER),
    ],
    ids=["first", "better", "tie", "worse", "not-comparable"],
)
def test_champion_rule(
    new: float, champion: float | None, version: str | None, failure: str | None, alias: str
) -> None:
    comparison = decide_alias(new, champion, version, failure)
    assert comparison.alias == alias
    assert comparison.as_dict()["selection_metric"] == "dr_rwpfs_rmst24_model"


def test_a_champion_this_installation_cannot_load_is_replaced() -> None:
    comparison = decide_alias(6.0, None, "3", unservable="models:/linewise/3 was saved by another layout")
    assert (comparison.alias, comparison.champion_version, comparison.champion_value) == (CHAMPION, "3", None)
    assert (
        comparison.reason == "the champion cannot be served: models:/linewise/3 was saved by another layout"
    )
