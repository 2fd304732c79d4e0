"""``linewise train`` killed (SIGKILL) while fitting, logging or registering leaves the registry usable.

The champion alias must still point at a complete version that loads and scores, and the next
``linewise train`` must work. Each kill is a real SIGKILL of a real ``linewise train`` process, sent
by the process itself at a chosen point (the first call of a function it reaches in that stage), so
that the point is known exactly; the stack at the kill is written beside, to show where it was.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import mlflow
import pytest

from linewise.features.examples import build_examples
from linewise.features.loader import load_lock
from linewise.features.patient import export_patients
from linewise.serving.scoring import load_scoring_model, score_patient
from linewise.simulation.config import load_config
from linewise.simulation.simulate import simulate_lock
from tests.conftest import TEST_KEY
from tests.serving.conftest import SQLALCHEMY_NOLOAD

SMALL_CONFIG = """\
n_bootstrap: 2
selection:
  folds: 2
  candidates:
    - {family: boosted_cox, params: {n_estimators: 40, learning_rate: 0.1, max_depth: 2}}
    - {family: random_survival_forest, params: {n_estimators: 8, min_samples_leaf: 30, max_features: sqrt}}
"""

#: stage -> (module, owner, attribute, which call kills, a function that must be on the stack then)
KILL_POINTS = {
    "fitting": ("linewise.models.recommender", "TreatmentRecommender", "fit", 2, "fit_on_lock"),
    "logging": ("mlflow", None, "log_figure", 2, "log_training"),
    "model-artifacts": (
        "mlflow.store.artifact.local_artifact_repo",
        "LocalArtifactRepository",
        "log_artifacts",
        1,
        "log_model",
    ),
    "registration": ("mlflow.tracking.client", "MlflowClient", "_create_model_version", 1, "log_model"),
    "alias": ("mlflow.tracking.client", "MlflowClient", "set_registered_model_alias", 1, "log_training"),
}

KILLER = textwrap.dedent(
    """
    import importlib, os, signal, sys, traceback
    module_name, owner_name, attribute, which, stack_file = sys.argv[1:6]
    module = importlib.import_module(module_name)
    owner = getattr(module, owner_name) if owner_name != "-" else module
    original = getattr(owner, attribute)
    calls = [0]

    def killing(*args, **kwargs):
        calls[0] += 1
        if calls[0] == int(which):
            with open(stack_file, "w") as out:
                out.write("".join(traceback.format_stack()))
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    setattr(owner, attribute, killing)
    from linewise.cli import app
    app(sys.argv[6:], prog_name="linewise")
    """
)


@pytest.fixture(scope="module")
def lock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("killed-train")
    simulate_lock(400, 41, root / "lock", root / "truth", load_config())
    (root / "small.yaml").write_text(SMALL_CONFIG)
    return root


def _environment(store: str) -> dict[str, str]:
    return {**os.environ, "MLFLOW_TRACKING_URI": store, "LINEWISE_PSEUDONYM_KEY": TEST_KEY}


def _train(root: Path, store: str, *killer: str) -> subprocess.CompletedProcess[str]:
    arguments = ["train", str(root / "lock"), "--config", str(root / "small.yaml"), "--json"]
    command = [sys.executable, "-c", KILLER, *killer, *arguments] if killer else [
        sys.executable, "-m", "linewise", *arguments
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=_environment(store), timeout=600)


def _champion_scores(root: Path, store: str) -> str:
    """Load the champion and score a patient with it; return its version."""
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)
    try:
        with warnings.catch_warnings():
            # MLflow's notes on loading a pyfunc model, not about the model
            warnings.filterwarnings("ignore", message=".*Any type hint is inferred as AnyType")
            warnings.filterwarnings("ignore", message=SQLALCHEMY_NOLOAD)
            model = load_scoring_model("models:/linewise@champion")
        key = TEST_KEY.encode("utf-8")
        decided = sorted(set(build_examples(load_lock(root / "lock", key))["patient_key"].astype(str)))[:5]
        scored = [
            score_patient(model, document)
            for document in export_patients(root / "lock", key, decided).values()
        ]
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
        mlflow.set_registry_uri(None)  # type: ignore[arg-type]
    assert len(scored) == 5 and all(len(s["candidates"]) == 16 for s in scored)
    assert model.version is not None
    return model.version


@pytest.mark.slow
def test_a_train_killed_at_any_stage_leaves_a_champion_that_loads_and_scores(
    lock: Path, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = _train(lock, store)
    assert first.returncode == 0, first.stderr[-3000:]
    assert json.loads(first.stdout)["alias"] == "champion"
    assert _champion_scores(lock, store) == "1"
    for stage, (module, owner, attribute, which, expected_on_stack) in KILL_POINTS.items():
        stack = tmp_path / f"{stage}.stack"
        killed = _train(lock, store, module, owner or "-", attribute, str(which), str(stack))
        assert killed.returncode == -signal.SIGKILL, (stage, killed.returncode, killed.stderr[-3000:])
        assert expected_on_stack in stack.read_text(), (stage, "was not killed where intended")
        assert _champion_scores(lock, store) == "1", f"after a kill during {stage}"
    after = _train(lock, store)
    assert after.returncode == 0, after.stderr[-3000:]
    outcome = json.loads(after.stdout)
    version = _champion_scores(lock, store)
    assert version == (outcome["version"] if outcome["alias"] == "champion" else "1")
