"""The simulator: valid locks, determinism, truth kept apart and consistent with the lock."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import sem

from linewise.features import load_lock, pseudonymize
from linewise.features.decisions import derive_decisions
from linewise.features.regimens import CANDIDATE_CLASSES
from linewise.features.schema import TABLES
from linewise.simulation.config import SimulationConfigError, load_config
from linewise.simulation.outcomes import scale_for_median, weibull_median, weibull_rmst
from linewise.simulation.simulate import TRUTH_FILE, SimulationOutputError, simulate_lock
from linewise.simulation.truth import monte_carlo_standard_error

KEY = b"simulator-test-key-0123"


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sim")
    simulate_lock(1500, 5, root / "lock", root / "truth", load_config())
    return root / "lock", root / "truth"


def test_lock_passes_the_loader(small: tuple[Path, Path]) -> None:
    data_lock = load_lock(small[0], KEY)
    summary = data_lock.summary()
    assert summary["patients"] == 1500
    assert summary["centres"] == 37
    assert summary["progressions"] > 500


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_small_locks_of_any_seed_are_valid(seed: int, tmp_path: Path) -> None:
    simulate_lock(120, seed, tmp_path / "lock", tmp_path / "truth", load_config())
    load_lock(tmp_path / "lock", KEY)


def test_same_seed_same_bytes_other_seed_other_bytes(small: tuple[Path, Path], tmp_path: Path) -> None:
    simulate_lock(1500, 5, tmp_path / "again", tmp_path / "again-truth", load_config())
    assert _digest(tmp_path / "again") == _digest(small[0])
    assert _digest(tmp_path / "again-truth") == _digest(small[1])
    simulate_lock(1500, 6, tmp_path / "other", tmp_path / "other-truth", load_config())
    assert _digest(tmp_path / "other")["patients.csv"] != _digest(small[0])["patients.csv"]


def test_lock_holds_only_the_contract(small: tuple[Path, Path]) -> None:
    lock, truth = small
    assert sorted(p.name for p in lock.iterdir()) == sorted(
        ["manifest.json", *(f"{t.name}.csv" for t in TABLES)]
    )
    for spec in TABLES:
        header = (lock / f"{spec.name}.csv").read_text().splitlines()[0].split(",")
        assert header == list(spec.column_names)
    text = " ".join((lock / f"{spec.name}.csv").read_text() for spec in TABLES)
    for hidden in ("pfs_draw", "os_draw", "frailty", "esr1_mutated", "pathway_altered"):
        assert hidden not in text
    assert not truth.is_relative_to(lock) and not lock.is_relative_to(truth)


def _truth_with_keys(truth: Path) -> pd.DataFrame:
    frame = pd.read_parquet(truth / TRUTH_FILE)
    keys = {raw: pseudonymize(raw, KEY) for raw in frame["patient_id"].unique()}
    return frame.assign(patient_key=frame["patient_id"].map(keys))


def test_truth_covers_every_decision_and_candidate(small: tuple[Path, Path]) -> None:
    decisions = derive_decisions(load_lock(small[0], KEY))
    truth = _truth_with_keys(small[1])
    # the columns docs/simulation.md describes, written out (plus the key the test added)
    assert list(truth.columns) == [
        "patient_id", "line_number", "decision_day", "candidate", "local_therapy",
        "pfs_shape", "pfs_scale", "pfs_median", "pfs_rmst12", "pfs_rmst24", "pfs_draw",
        "os_median", "os_rmst12", "os_rmst24", "os_rmst24_se", "os_draw",
        "esr1_mutated", "pathway_altered", "patient_key",
    ]  # fmt: skip
    keys = ["patient_key", "line_number", "decision_day"]
    per_decision = truth.groupby(keys).size()
    assert (per_decision == 2 * len(CANDIDATE_CLASSES)).all()
    assert set(per_decision.index) == set(map(tuple, decisions[keys].itertuples(index=False, name=None)))


def test_truth_of_the_action_taken_is_what_the_lock_shows(small: tuple[Path, Path]) -> None:
    decisions = derive_decisions(load_lock(small[0], KEY))
    truth = _truth_with_keys(small[1])
    matched = decisions.merge(
        truth,
        left_on=["patient_key", "line_number", "decision_day", "action", "local_therapy"],
        right_on=["patient_key", "line_number", "decision_day", "candidate", "local_therapy"],
    )
    observed = matched[matched["pfs_event"]]
    assert len(observed) > 500
    # dates are whole days; a local therapy can be attributed to the previous decision when two
    # progressions fall within 30 days, which is the only other source of disagreement
    agree = (observed["pfs_time"] - observed["pfs_draw"]).abs() < 0.05
    assert agree.mean() > 0.98


def test_monte_carlo_standard_error_against_scipy() -> None:
    draws = np.random.default_rng(3).gamma(2.0, 5.0, size=(7, 16))
    np.testing.assert_allclose(monte_carlo_standard_error(draws), sem(draws, axis=1, ddof=1), rtol=1e-12)
    assert np.isnan(monte_carlo_standard_error(draws[:, :1])).all()


def test_truth_carries_the_os_monte_carlo_error(small: tuple[Path, Path]) -> None:
    truth = pd.read_parquet(small[1] / TRUTH_FILE)
    se = truth["os_rmst24_se"].to_numpy()
    assert np.isfinite(se).all() and (se >= 0).all()
    # draws in [0, 24] have a sample sd (ddof 1) of at most 12 sqrt(n / (n - 1)): error <= 12 / sqrt(n - 1)
    assert se.max() <= 12.0 / np.sqrt(load_config().truth.os_draws - 1) + 1e-12
    assert se.mean() > 0.1  # the default 16 courses leave a visible error


def test_closed_forms_against_numerical_integration() -> None:
    shape, scale = 1.2, scale_for_median(4.0, 1.2)
    assert weibull_median(np.array(scale), shape) == pytest.approx(4.0)
    grid = np.linspace(0.0, 24.0, 200_001)
    survival = np.exp(-((grid / scale) ** shape))
    numeric = float(np.sum((survival[1:] + survival[:-1]) / 2 * np.diff(grid)))
    assert float(weibull_rmst(np.array(scale), shape, 24.0)) == pytest.approx(numeric, rel=1e-6)


def test_outputs_that_exist_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    (tmp_path / "lock").mkdir()
    with pytest.raises(SimulationOutputError, match="exists already"):
        simulate_lock(50, 1, tmp_path / "lock", tmp_path / "truth", load_config())
    assert not (tmp_path / "truth").exists()
    with pytest.raises(SimulationOutputError, match="separate folders"):
        simulate_lock(50, 1, tmp_path / "a", tmp_path / "a" / "truth", load_config())
    assert not (tmp_path / "a").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lock"]


def test_config_rejects_unknown_and_out_of_range_keys(tmp_path: Path) -> None:
    from linewise.simulation.config import default_config_path

    text = default_config_path().read_text()
    (tmp_path / "typo.yaml").write_text(text.replace("frailty_sd:", "fraility_sd:"))
    with pytest.raises(SimulationConfigError, match="fraility_sd"):
        load_config(tmp_path / "typo.yaml")
    (tmp_path / "range.yaml").write_text(text.replace("de_novo_share: 0.38", "de_novo_share: 1.5"))
    with pytest.raises(SimulationConfigError, match="de_novo_share"):
        load_config(tmp_path / "range.yaml")
    (tmp_path / "broken.yaml").write_text("calendar: [")
    with pytest.raises(SimulationConfigError, match="cannot read"):
        load_config(tmp_path / "broken.yaml")
