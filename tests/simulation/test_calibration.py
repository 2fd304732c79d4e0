"""Calibration: every target inside its range at PALMARES-2 size, and each effect modifier moving its
virtual trial the way docs/simulation.md says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from simulation.calibration import TargetResult, calibrate, load_targets
from simulation.config import SimulationConfig, load_config
from simulation.simulate import simulate_lock

PATIENTS = 2500
SEED = 5


def _config(**effects: dict[str, float]) -> SimulationConfig:
    config = load_config()
    fast = config.model_copy(update={"truth": config.truth.model_copy(update={"os_draws": 2})})
    return fast.model_copy(update={"effects": fast.effects.model_copy(update=effects)})


def _results(root: Path, name: str, config: SimulationConfig) -> dict[str, TargetResult]:
    simulate_lock(PATIENTS, SEED, root / name / "lock", root / name / "truth", config)
    return {r.id: r for r in calibrate(root / name / "lock", root / name / "truth")}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("calibration")


@pytest.fixture(scope="module")
def baseline(root: Path) -> dict[str, TargetResult]:
    return _results(root, "baseline", _config())


def _sim(results: dict[str, TargetResult], target: str) -> Any:
    return results[target].simulated


@pytest.mark.slow
def test_oral_serd_helps_only_with_esr1_mutation(root: Path, baseline: dict[str, TargetResult]) -> None:
    assert _sim(baseline, "oral_serd_esr1")["esr1_mutated"] < 0.8
    assert 0.9 < _sim(baseline, "oral_serd_esr1")["esr1_wild_type"] < 1.1
    without = _results(root, "serd", _config(oral_serd={"esr1_mutated": 0.0, "esr1_wild_type": 0.0}))
    assert 0.9 < _sim(without, "oral_serd_esr1")["esr1_mutated"] < 1.1


@pytest.mark.slow
def test_pathway_inhibitor_helps_only_with_alteration(root: Path, baseline: dict[str, TargetResult]) -> None:
    assert _sim(baseline, "pi3k_pathway")["altered"] < 0.8
    without = _results(root, "pi3k", _config(et_targeted={"altered": 0.04, "not_altered": 0.04}))
    assert _sim(without, "pi3k_pathway")["altered"] > 0.9


@pytest.mark.slow
def test_another_cdk_helps_after_palbociclib(root: Path, baseline: dict[str, TargetResult]) -> None:
    weaker = _results(root, "cdk", _config(cdk_switch={"after_palbociclib": 0.12, "after_other": 0.12}))
    assert _sim(weaker, "MAINTAIN")["hazard_ratio"] > _sim(baseline, "MAINTAIN")["hazard_ratio"] + 0.1


@pytest.mark.slow
def test_same_cdk_helps_mainly_without_visceral_disease(
    root: Path, baseline: dict[str, TargetResult]
) -> None:
    def gap(results: dict[str, TargetResult]) -> float:
        experimental, control = _sim(results, "PALMIRA")["subgroups"]["no_visceral"]
        return float(experimental - control)

    flat = _results(root, "palmira", _config(cdk_same_et_switch={"base": 0.04, "no_visceral": 0.0}))
    assert gap(baseline) > 0.8
    assert gap(flat) < gap(baseline) - 0.8


@pytest.mark.slow
def test_tbp_benefit_grows_with_oligoprogression_and_low_ki67(
    root: Path, baseline: dict[str, TargetResult]
) -> None:
    tbp = load_config().effects.tbp
    flat = _results(root, "tbp", _config(tbp={**tbp, "oligo": 0.0, "low_ki67": 0.0}))
    before, after = _sim(baseline, "TBP_benefit_markers"), _sim(flat, "TBP_benefit_markers")
    assert before["oligoprogression"] > 1.0
    assert after["oligoprogression"] < before["oligoprogression"] - 1.0
    assert after["low_ki67"] < before["low_ki67"]


@pytest.mark.slow
def test_every_target_inside_its_range_at_palmares_size(tmp_path: Path) -> None:
    simulate_lock(6000, 7, tmp_path / "lock", tmp_path / "truth", load_config())
    results = calibrate(tmp_path / "lock", tmp_path / "truth")
    assert [r.id for r in results] == [t["id"] for t in load_targets()]
    outside = {r.id: r.simulated for r in results if r.within is False}
    assert not outside
    naive = next(r for r in results if r.id == "TBP_os_naive").simulated
    palmira = next(r for r in results if r.id == "PALMIRA").simulated
    assert naive["unadjusted"] < 0.7  # the observed comparison clearly favours TBP ...
    assert 0.72 <= palmira["hazard_ratio"] <= 0.98  # ... while the virtual trial stays modest


def test_cli_json_lists_every_target(baseline: dict[str, TargetResult], root: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "linewise",
            "calibrate",
            str(root / "baseline" / "lock"),
            "--truth",
            str(root / "baseline" / "truth"),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    assert [item["id"] for item in items] == [t["id"] for t in load_targets()]
    for item in items:
        assert {"id", "value", "range", "simulated", "within"} <= set(item)


def test_cli_calibrate_without_truth(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "linewise", "calibrate", str(tmp_path), "--truth", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "no truth.parquet" in result.stderr
    assert "Traceback" not in result.stderr


def test_bundled_targets_match_shared_evidence() -> None:
    shared = Path(__file__).resolve().parents[3] / "shared" / "evidence" / "targets.yaml"
    if not shared.is_file():
        pytest.skip("shared/evidence is not beside this checkout")
    bundled = Path(__file__).resolve().parents[2] / "simulation" / "targets.yaml"
    assert bundled.read_text() == shared.read_text()
