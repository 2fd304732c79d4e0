"""The scenario suite: what each scenario term does to the model, and what the suite holds.

Only development seeds are drawn here: the held-out seeds are run once, at the end (docs/simulation.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linewise.features.examples import build_examples
from linewise.features.loader import load_lock
from linewise.simulation.cohort import draw_centres, draw_cohort
from linewise.simulation.config import SimulationConfig, load_config
from linewise.simulation.engine import first_line
from linewise.simulation.outcomes import action_effect, episode_shape
from linewise.simulation.practice import choice_utilities
from linewise.simulation.records import Records
from linewise.simulation.scenarios import (
    DEVELOPMENT_SEEDS,
    HELD_OUT_SEEDS,
    TBP_MODES,
    describe,
    draw_scenario,
    fully_recorded,
    scenario_config,
)
from linewise.simulation.simulate import TRUTH_FILE, simulate_lock
from linewise.simulation.state import ACTION_INDEX, TrajectoryState
from tests.conftest import TEST_KEY

DEFAULT = load_config()


def _with_scenario(**scenario: object) -> SimulationConfig:
    return SimulationConfig.model_validate({**DEFAULT.model_dump(), "scenario": scenario})


@pytest.fixture(scope="module")
def decisions() -> tuple[TrajectoryState, object]:
    """States of 400 simulated patients at their first progression, and the cohort."""
    rng = np.random.default_rng(3)
    centres = draw_centres(DEFAULT, np.random.default_rng(DEFAULT.centres.seed))
    cohort = draw_cohort(400, DEFAULT, centres, rng)
    state = first_line(cohort, centres, DEFAULT, rng, Records())
    return state, cohort


def test_an_effect_modifier_adds_its_term_to_its_option_only(
    decisions: tuple[TrajectoryState, object],
) -> None:
    state, cohort = decisions
    modified = _with_scenario(
        effect_modifiers=[{"option": "oral_serd", "feature": "older", "log_time_ratio": 0.5}]
    )
    for name in ("oral_serd", "chemo"):
        action = np.full(state.size, ACTION_INDEX[name])
        local = np.zeros(state.size, dtype=bool)
        change = action_effect(state, action, local, cohort, modified) - action_effect(
            state, action, local, cohort, DEFAULT
        )
        older = cohort.age[state.pid] >= 70  # the hand-written rule of the feature
        expected = 0.5 * older if name == "oral_serd" else np.zeros(state.size)
        np.testing.assert_allclose(change, expected, atol=1e-12)
    assert 0 < older.sum() < state.size


def test_line_factors_scale_the_whole_effect_at_their_line(decisions: tuple[TrajectoryState, object]) -> None:
    state, cohort = decisions
    scaled = _with_scenario(effect_by_line={"chemo": (1.0, 0.5, 0.0)})
    action = np.full(state.size, ACTION_INDEX["chemo"])
    local = np.zeros(state.size, dtype=bool)
    for line, factor in ((1, 1.0), (2, 0.5), (3, 0.0), (6, 0.0)):
        at_line = state.with_values(line=np.full(state.size, line))
        np.testing.assert_allclose(
            action_effect(at_line, action, local, cohort, scaled),
            factor * action_effect(at_line, action, local, cohort, DEFAULT),
            atol=1e-12,
        )


def test_a_shape_ratio_changes_only_its_options_shape() -> None:
    config = _with_scenario(weibull_shape_ratio={"adc": 1.5})
    action = np.array([ACTION_INDEX["adc"], ACTION_INDEX["chemo"], ACTION_INDEX["none"]])
    np.testing.assert_allclose(episode_shape(action, config), [1.2 * 1.5, 1.2, 1.2])


def test_a_choice_term_moves_only_its_options_utility(decisions: tuple[TrajectoryState, object]) -> None:
    state, cohort = decisions
    centres = draw_centres(DEFAULT, np.random.default_rng(DEFAULT.centres.seed))
    closed = _with_scenario(choice_terms=[{"option": "chemo", "feature": "bone_only", "logit": -8.0}])
    change = choice_utilities(state, cohort, centres, closed) - choice_utilities(
        state, cohort, centres, DEFAULT
    )
    change = np.nan_to_num(change, nan=0.0)  # -inf - -inf where a CDK4/6i option is unavailable
    bone_only = state.sites == 1
    np.testing.assert_allclose(change[:, ACTION_INDEX["chemo"]], -8.0 * bone_only)
    others = np.delete(change, ACTION_INDEX["chemo"], axis=1)
    assert np.all(others == 0)


def test_the_suite_holds_every_kind_of_scenario() -> None:
    drawn = [describe(draw_scenario(seed)) for seed in DEVELOPMENT_SEEDS]
    assert len(drawn) >= 24
    assert {facts["tbp"] for facts in drawn} == set(TBP_MODES)
    assert any(facts["frailty_sd"] == 0 for facts in drawn)
    assert any(facts["frailty_sd"] >= 0.5 for facts in drawn)
    assert sum(bool(facts["positivity"]) for facts in drawn) >= 6
    assert sum(bool(facts["non_proportional"]) for facts in drawn) >= 6
    assert sum(bool(facts["line_specific"]) for facts in drawn) >= 6
    assert all(facts["effect_modifiers"] for facts in drawn)
    assert len({facts["name"] for facts in drawn}) == len(drawn)
    assert not set(DEVELOPMENT_SEEDS) & set(HELD_OUT_SEEDS)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=10**6).filter(lambda seed: seed not in HELD_OUT_SEEDS))
def test_any_seed_gives_a_valid_configuration_that_reads_back_from_yaml(seed: int) -> None:
    config = draw_scenario(seed)
    assert config == draw_scenario(seed)
    assert SimulationConfig.model_validate(config.model_dump(mode="json")) == config


def test_scenario_config_names() -> None:
    assert scenario_config("default") == DEFAULT
    assert scenario_config("fully_recorded") == fully_recorded()
    assert scenario_config("7") == draw_scenario(7)
    with pytest.raises(ValueError, match="scenario must be one of"):
        scenario_config("seven")


def _simulated(
    config: SimulationConfig, tmp_path: Path, patients: int = 500
) -> tuple[pd.DataFrame, pd.DataFrame]:
    lock, truth = tmp_path / "lock", tmp_path / "truth"
    simulate_lock(patients, 5, lock, truth, config)
    return build_examples(load_lock(lock, TEST_KEY.encode("utf-8"))), pd.read_parquet(truth / TRUTH_FILE)


def _best_candidate(truth: pd.DataFrame) -> pd.Series:
    keys = ["patient_id", "line_number", "decision_day"]
    best = truth.loc[truth.groupby(keys)["pfs_rmst24"].idxmax()]
    return best["candidate"]


def test_in_a_never_scenario_tbp_is_never_better_than_endocrine_monotherapy(tmp_path: Path) -> None:
    seed = next(seed for seed in DEVELOPMENT_SEEDS if draw_scenario(seed).scenario.tbp == "never")
    _, truth = _simulated(draw_scenario(seed), tmp_path)
    keys = ["patient_id", "line_number", "decision_day"]
    tbp = truth[truth["candidate"] == "tbp"].groupby(keys)["pfs_rmst24"].max()
    et_mono = truth[(truth["candidate"] == "et_mono") & ~truth["local_therapy"]].set_index(keys)["pfs_rmst24"]
    assert len(tbp) > 100
    assert (tbp <= et_mono.loc[tbp.index] + 1e-9).all()
    assert (_best_candidate(truth) != "tbp").all()


def test_in_a_selected_scenario_tbp_is_best_for_some_patients_only(tmp_path: Path) -> None:
    seed = next(seed for seed in DEVELOPMENT_SEEDS if draw_scenario(seed).scenario.tbp == "selected")
    _, truth = _simulated(draw_scenario(seed), tmp_path)
    share = float((_best_candidate(truth) == "tbp").mean())
    assert 0.0 < share < 0.9


def test_scenario_locks_keep_the_contract_and_show_their_shapes(tmp_path: Path) -> None:
    seed = next(seed for seed in DEVELOPMENT_SEEDS if draw_scenario(seed).scenario.weibull_shape_ratio)
    config = draw_scenario(seed)
    examples, truth = _simulated(config, tmp_path, patients=300)  # load_lock validates the contract
    assert len(examples) > 0
    shapes = truth.groupby("candidate")["pfs_shape"].unique()
    for option, ratio in config.scenario.weibull_shape_ratio.items():
        np.testing.assert_allclose(shapes[option], [config.later_lines.weibull_shape * ratio])


def test_fully_recorded_locks_record_every_factor(tmp_path: Path) -> None:
    examples, _ = _simulated(fully_recorded(), tmp_path, patients=300)
    decided = examples[examples["action"].notna()]
    for column in ("ki67_known", "ecog_known", "esr1_tested", "pathway_tested"):
        assert (decided[column] == 1).all(), column
    assert decided["her2_low"].notna().all()


def test_the_scenario_command_writes_a_config_that_simulate_reads(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "linewise"]
    written = subprocess.run([*command, "scenario", "4"], capture_output=True, text=True, check=True)
    path = tmp_path / "scenario.yaml"
    path.write_text(written.stdout)
    assert load_config(path) == draw_scenario(4)
    facts = subprocess.run(
        [*command, "scenario", "4", "--describe"], capture_output=True, text=True, check=True
    )
    assert json.loads(facts.stdout) == describe(draw_scenario(4))
    refused = subprocess.run([*command, "scenario", "four"], capture_output=True, text=True)
    assert refused.returncode == 2
    assert refused.stderr.startswith("linewise scenario: scenario must be one of")
    assert "Traceback" not in refused.stderr


def test_an_effect_shift_moves_its_option_for_everyone(decisions: tuple[TrajectoryState, object]) -> None:
    state, cohort = decisions
    shifted = _with_scenario(effect_shift={"adc": -0.3})
    local = np.zeros(state.size, dtype=bool)
    for name, expected in (("adc", -0.3), ("chemo", 0.0)):
        action = np.full(state.size, ACTION_INDEX[name])
        change = action_effect(state, action, local, cohort, shifted) - action_effect(
            state, action, local, cohort, DEFAULT
        )
        np.testing.assert_allclose(change, expected, atol=1e-12)
