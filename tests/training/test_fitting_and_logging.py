"""``linewise train`` end to end: what a run holds, the champion rule, no patient data, bad locks."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from linewise.cli import app
from linewise.models.output_table import FORMAT_VERSION
from linewise.simulation.config import load_config
from linewise.simulation.simulate import simulate_lock

SMALL_CONFIG = """\
n_bootstrap: 2
selection:
  folds: 2
  candidates:
    - {family: boosted_cox, learners: [s, dr], params: {n_estimators: 60, learning_rate: 0.1, max_depth: 3}}
    - {family: boosted_cox, params: {n_estimators: 60, learning_rate: 0.1, max_depth: 2}}
    - {family: random_survival_forest, params: {n_estimators: 10, min_samples_leaf: 30, max_features: sqrt}}
"""
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@pytest.fixture(scope="module")
def locks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train-locks")
    config = load_config()
    simulate_lock(500, 31, root / "first", root / "first-truth", config)
    simulate_lock(500, 32, root / "second", root / "second-truth", config)
    simulate_lock(300, 33, root / "third", root / "third-truth", config)
    (root / "small.yaml").write_text(SMALL_CONFIG)
    return root


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "mlruns"
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    yield folder


def _train(lock: Path, config: Path, *extra: str) -> dict:
    result = CliRunner().invoke(app, ["train", str(lock), "--config", str(config), "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow
def test_two_locks_make_a_champion_then_follow_the_rule(locks: Path, store: Path) -> None:
    first = _train(locks / "first", locks / "small.yaml")
    assert first["alias"] == "champion" and first["model_uri"] == "models:/linewise/1"
    client = mlflow.MlflowClient()
    run = client.get_run(first["run_id"])
    for key in (
        "c_index_rwpfs",
        "c_index_rwpfs_lower",
        "uno_c_rwpfs",
        "ibs_rwpfs",
        "aipw_rwpfs_rmst24_model",
        "dr_rwpfs_rmst24_model_lower",
        "dr_rwpfs_rmst24_naive",
        "selection_policy_value_rwpfs_rmst24_upper",
    ):
        assert key in run.data.metrics
    # the run names the first candidate within 1.96 paired standard errors (the default tolerance) of
    # the highest cross-fitted value (the ensemble of setting 0 included)
    table = pd.read_csv(client.download_artifacts(first["run_id"], "selection.csv"))
    assert list(table["learner"]) == ["s", "dr", "s", "s", "s+dr"]
    assert table.loc[table["policy_value_rwpfs_rmst24"].idxmax(), "gap_to_best"] == 0
    values = table["policy_value_rwpfs_rmst24"].to_numpy()
    assert np.allclose(table["gap_to_best"], values.max() - values, atol=1e-9)
    assert run.data.params["selection_tolerance_se"] == "1.96"
    best = table.loc[np.flatnonzero(table["gap_to_best"] <= 1.96 * table["gap_se"])[0]]
    assert (run.data.params["learner"], run.data.params["family"]) == (best["learner"], best["family"])
    assert run.data.metrics["selection_policy_value_rwpfs_rmst24"] == pytest.approx(
        best["policy_value_rwpfs_rmst24"]
    )
    dataset = run.inputs.dataset_inputs[0].dataset
    assert dataset.digest and "lock_date" in dataset.source and dataset.profile in (None, "", "{}")
    artifacts = {a.path for a in client.list_artifacts(first["run_id"])}
    assert {"model_card.md", "selection.csv", "subgroups.csv", "positivity.csv", "plots"} <= artifacts
    plots = {a.path for a in client.list_artifacts(first["run_id"], "plots")}
    assert plots == {
        f"plots/{n}.png" for n in ("calibration_rwpfs_12", "km_rwpfs_by_action", "shap_summary_rwpfs")
    }
    card = (store / "artifacts").rglob("model_card.md").__next__().read_text()
    assert "## Limitations" in card and "insufficient evidence" in card.lower()
    assert f"Learner that ranks the options by rwPFS RMST24: `{best['learner']}`" in card
    assert str(client.get_model_version_by_alias("linewise", "champion").version) == "1"

    second = _train(locks / "second", locks / "small.yaml")
    comparison = second["comparison"]
    assert comparison["champion_version"] == "1"
    expected = "champion" if comparison["new_value"] > comparison["champion_value"] else "challenger"
    assert second["alias"] == expected
    assert str(client.get_model_version_by_alias("linewise", expected).version) == "2"
    logged = client.download_artifacts(second["run_id"], "champion_comparison.json")
    assert json.loads(Path(logged).read_text())["reason"] == comparison["reason"]

    # no raw identifier and no date of either lock anywhere under the tracking folder (database included)
    secrets = _raw_ids_and_dates(locks / "first") | _raw_ids_and_dates(locks / "second")
    secrets -= _synthetic_example_dates(store)
    found = [
        (path.name, secret)
        for path in store.rglob("*")
        if path.is_file()
        for secret in secrets
        if secret.encode() in path.read_bytes()
    ]
    assert not found

    # evaluate-policy judges the registered champion instead of fitting one, on a lock neither version saw
    judged = CliRunner().invoke(
        app,
        [
            "evaluate-policy",
            "--model",
            "models:/linewise@champion",
            "--train",
            str(locks / "first"),
            "--test",
            str(locks / "third"),
            "--truth",
            str(locks / "third-truth"),
            "--bootstrap",
            "2",
            "--json",
        ],
    )
    assert judged.exit_code == 0, judged.output
    figures = json.loads(judged.stdout)
    assert figures["model_uri"] == "models:/linewise@champion"
    assert isinstance(figures["capture_rwpfs_rmst24"], float)
    assert isinstance(figures["naive_capture_rwpfs_rmst24"], float)
    # version 1 learned from the first lock: judging it there would be in-sample
    own = CliRunner().invoke(
        app,
        [
            *("evaluate-policy", "--model", "models:/linewise/1", "--train", str(locks / "second")),
            *("--test", str(locks / "first"), "--bootstrap", "2"),
        ],
    )
    assert own.exit_code == 2 and "trained on the test lock (same digest)" in own.output

    # linewise score: one patient's candidates from the champion, the same numbers as the model's rows
    patient = store.parent / "patient.json"
    exported = CliRunner().invoke(
        app,
        [
            "export-patient",
            str(locks / "second"),
            "--patient",
            _first_key(locks / "second"),
            "--out",
            str(patient),
        ],
    )
    assert exported.exit_code == 0, exported.output
    scored = CliRunner().invoke(app, ["score", str(patient), "--json"])
    assert scored.exit_code == 0, scored.output
    result = json.loads(scored.stdout)
    assert result["model"]["model_version"] == str(
        client.get_model_version_by_alias("linewise", "champion").version
    )
    assert len(result["candidates"]) == 16
    # the provenance names the learner and the value measured on the test part when the model was trained
    champion_run = client.get_run(client.get_model_version_by_alias("linewise", "champion").run_id).data
    assert result["model"]["learner"] == champion_run.params["learner"]
    value = result["model"]["policy_value"]
    assert value["estimate"] == pytest.approx(champion_run.metrics["dr_rwpfs_rmst24_model"])
    assert value["lower"] == pytest.approx(champion_run.metrics["dr_rwpfs_rmst24_model_lower"])
    assert value["lower"] < value["estimate"] < value["upper"]
    ranks = [c["rank"] for c in result["candidates"] if c["rank"] is not None]
    assert ranks == list(range(1, len(ranks) + 1))
    rows = mlflow.pyfunc.load_model("models:/linewise@champion").predict(
        pd.DataFrame({"patient": [patient.read_text()]})
    )
    by_option = rows.set_index("option")
    for candidate in result["candidates"]:
        assert candidate["rwpfs"]["rmst24"] == pytest.approx(by_option.loc[candidate["option"], "pfs_rmst24"])


def _first_key(lock: Path) -> str:
    """The pseudonym (test key) of the lock's first patient with a progression."""
    from linewise.features.pseudonym import pseudonymize
    from tests.conftest import TEST_KEY

    progressions = pd.read_csv(lock / "progressions.csv")
    return pseudonymize(str(progressions["patient_id"].iloc[0]), TEST_KEY.encode("utf-8"))


def _raw_ids_and_dates(lock: Path) -> set[str]:
    """Every raw patient id and every date in a lock's tables (the lock date of the manifest excepted)."""
    found: set[str] = set()
    for table in lock.glob("*.csv"):
        text = table.read_text()
        found |= set(re.findall(r"SIM-\d+", text)) | set(DATE.findall(text))
    return found


def _synthetic_example_dates(store: Path) -> set[str]:
    """Dates of the model's input example, after checking that it is the simulated one, not a patient.

    The example is made by :func:`synthetic_input_example` with the training seed (0 in the small
    config): it is rebuilt here and must equal every stored example, so that only its invented dates
    are exempt from the search for the locks' dates.
    """
    from linewise.model_input_example import synthetic_input_example

    expected = synthetic_input_example(0)
    stored = list(store.rglob("input_example.json"))
    assert stored, "every logged model stores an input example"
    for example in stored:
        rows = json.loads(example.read_text())
        documents = [json.loads(row[0]) for row in rows["data"]]
        assert documents == [expected]
    return set(DATE.findall(json.dumps(expected)))


@pytest.mark.slow
def test_same_lock_config_and_seed_give_the_same_metrics(locks: Path, store: Path) -> None:
    first = _train(locks / "first", locks / "small.yaml", "--experiment", "repeat")
    again = _train(locks / "first", locks / "small.yaml", "--experiment", "repeat")
    assert first["metrics"] == again["metrics"]
    assert again["alias"] == "challenger"  # equal, not better: the champion stays


def test_a_bad_lock_stops_training_before_anything_is_logged(lock: Path, store: Path, locks: Path) -> None:
    lines = lock / "lines.csv"
    lines.write_text(lines.read_text().replace("letrozole", "letrozol", 1))
    result = CliRunner().invoke(app, ["train", str(lock), "--config", str(locks / "small.yaml")])
    assert result.exit_code == 2
    assert "unknown drug code 'letrozol'" in result.output and "[rule drug-code]" in result.output
    assert "Traceback" not in result.output
    assert not store.exists()  # no database, no experiment, no run


def test_a_bad_config_names_the_file(lock: Path, store: Path, tmp_path: Path) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text("n_bootstraps: 3\nselection: {candidates: [{family: boosted_cox}]}\n")
    result = CliRunner().invoke(app, ["train", str(lock), "--config", str(config)])
    assert (
        result.exit_code == 2 and "typo.yaml: n_bootstraps: Extra inputs are not permitted" in result.output
    )
    assert not store.exists()


def test_a_registered_model_needs_two_bootstrap_refits(lock: Path, store: Path, tmp_path: Path) -> None:
    config = tmp_path / "one.yaml"
    config.write_text("n_bootstrap: 1\nselection: {candidates: [{family: boosted_cox}]}\n")
    result = CliRunner().invoke(app, ["train", str(lock), "--config", str(config)])
    assert result.exit_code == 2 and "one.yaml: n_bootstrap: Input should be greater than or equal to 2" in (
        result.output
    )
    assert not store.exists()


def test_dates_found_by_the_helper_are_real(locks: Path) -> None:
    """The grep above can fail: the helper does find the lock's ids and dates."""
    secrets = _raw_ids_and_dates(locks / "first")
    assert any(s.startswith("SIM-") for s in secrets) and any(DATE.fullmatch(s) for s in secrets)


@pytest.mark.slow
def test_a_champion_of_the_old_layout_is_replaced_by_the_first_new_version(locks: Path, store: Path) -> None:
    from tests.old_layout import register_champion

    register_champion({"format_version": 1})  # version 1, which this linewise cannot load
    trained = _train(locks / "second", locks / "small.yaml")
    assert trained["alias"] == "champion" and trained["model_uri"] == "models:/linewise/2"
    reason = trained["comparison"]["reason"]
    assert reason.startswith("the champion cannot be served: models:/linewise/1 was saved by another layout")
    assert trained["comparison"]["champion_value"] is None
    assert str(mlflow.MlflowClient().get_model_version_by_alias("linewise", "champion").version) == "2"


@pytest.mark.slow
def test_a_champion_that_loads_but_cannot_score_keeps_its_alias(locks: Path, store: Path) -> None:
    from tests.old_layout import NotARecommender, register_champion

    # the right format, but not a linewise recommender
    register_champion({"format_version": FORMAT_VERSION}, NotARecommender())
    trained = _train(locks / "second", locks / "small.yaml")
    assert trained["alias"] == "challenger" and trained["model_uri"] == "models:/linewise/2"
    reason = trained["comparison"]["reason"]
    assert reason == (
        "not compared: the champion could not score: "
        "models:/linewise/1 is not a linewise recommender (found NotARecommender)"
    )
    assert str(mlflow.MlflowClient().get_model_version_by_alias("linewise", "champion").version) == "1"
