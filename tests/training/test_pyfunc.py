"""The recommender as one MLflow pyfunc model: logged, loaded in this and a fresh process, and served."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import mlflow
import numpy as np
import pandas as pd
import pytest

from linewise.features import LockValidationError, load_lock
from linewise.features.decisions import KEYS
from linewise.features.examples import FEATURES, build_examples
from linewise.features.patient import export_patients, load_patient
from linewise.model_input_example import synthetic_input_example
from linewise.models.option_predictions import options_table
from linewise.models.output_table import OUTPUT_COLUMNS, SUMMARY_COLUMNS
from linewise.models.recommender import MODEL_COLUMNS, TreatmentRecommender
from linewise.simulation.config import load_config
from linewise.simulation.simulate import simulate_lock
from linewise.training.pyfunc import log_recommender
from tests.servers import free_port, stop

NAME = "linewise"
KEY = b"pyfunc-test-key-0123456789abcdef"
EXAMPLE_SEED = 11
METADATA = {"lock_id": "sim-3-400", "lock_date": "2025-01-31", "lock_digest": "0" * 64}
RAW_ID = re.compile(rb"SIM-\d")
# SQLAlchemy 2.1 deprecates the `noload` strategy that MLflow 3.17's tracking store configures when the
# store module is first imported; the only third-party warning of these tests in this process.
SQLALCHEMY_NOLOAD = r"The ``noload`` loader strategy is deprecated"
# a fresh interpreter sees the import-time warnings that pytest's configuration (and
# linewise.training.pyfunc) filter
FRESH_PROCESS_FILTERS = """
import warnings
warnings.simplefilter("error")
warnings.filterwarnings("ignore", "The set_(bad|over|under) function", PendingDeprecationWarning)
warnings.filterwarnings("ignore", message=".*Any type hint is inferred as AnyType", category=UserWarning)
warnings.filterwarnings("ignore", message="The ``noload`` loader strategy is deprecated")
"""


@dataclass(frozen=True)
class Logged:
    root: Path
    uri: str
    recommender: TreatmentRecommender
    training_keys: frozenset[str]
    example: dict[str, Any]
    other: dict[str, Any]
    info: Any
    version: str


@contextmanager
def _store(uri: str) -> Iterator[None]:
    """Point MLflow (and its subprocesses) at ``uri`` for tracking and registry, then undo it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_REGISTRY_URI", uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
            mlflow.set_registry_uri(None)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Logged:
    root = tmp_path_factory.mktemp("pyfunc")
    simulate_lock(400, 3, root / "lock", root / "truth", load_config())
    examples = build_examples(load_lock(root / "lock", KEY))
    recommender = TreatmentRecommender(
        n_bootstrap=2, model_params={"n_estimators": 30, "learning_rate": 0.1}
    ).fit(examples)
    # a training patient whose latest decision has an OS median not reached by 36 months (infinite in
    # the recommender's output), the one with most decisions: only the latest is scored
    latest = examples.sort_values(["patient_key", "decision_day"]).groupby("patient_key").tail(1)
    medians = recommender.predict_options(latest[list(FEATURES)].to_numpy(float)).summary["os_median"]
    unreached = latest.loc[np.isinf(medians).any(axis=1), "patient_key"].astype(str)
    assert not unreached.empty
    decisions = examples["patient_key"].astype(str).value_counts()
    chosen = max(unreached, key=lambda key: (decisions[key], key))
    other = export_patients(root / "lock", KEY, [chosen])[chosen]
    example = synthetic_input_example(EXAMPLE_SEED)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with _store(uri), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=SQLALCHEMY_NOLOAD)
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiment = client.create_experiment("pyfunc", artifact_location=(root / "artifacts").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            info = log_recommender(recommender, METADATA, example, registered_model_name=NAME)
        version = str(info.registered_model_version)
        client.set_registered_model_alias(NAME, "champion", version)
    return Logged(
        root, uri, recommender, frozenset(examples["patient_key"].astype(str)), example, other, info, version
    )


@pytest.fixture
def store(logged: Logged) -> Iterator[str]:
    with _store(logged.uri):
        yield logged.uri


def _frame(*documents: dict[str, Any] | str) -> pd.DataFrame:
    texts = [d if isinstance(d, str) else json.dumps(d) for d in documents]
    return pd.DataFrame({"patient": pd.Series(texts, dtype=object)})


def _top(values: np.ndarray, rows: list[np.ndarray]) -> list[dict[str, Any]]:
    """Independent ranking: plain sorted() on |SHAP|, missing feature values as None."""
    order = sorted(range(len(values)), key=lambda j: -abs(values[j]))[:5]
    keys = ("value", "switch_value")
    return [
        {
            "feature": MODEL_COLUMNS[j],
            **{k: None if np.isnan(r[j]) else float(r[j]) for k, r in zip(keys, rows, strict=False)},
            "shap": float(values[j]),
        }
        for j in order
    ]


def test_loaded_model_gives_the_recommenders_numbers(logged: Logged, store: str) -> None:
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    out = model.predict(_frame(logged.example, logged.other))
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    assert out["row"].tolist() == [0] * 16 + [1] * 16
    assert not np.isinf(out.select_dtypes("float").to_numpy()).any()
    assert out.loc[out["row"] == 1, "os_median"].isna().any()  # not reached: NaN, not infinite
    recommender = logged.recommender  # in memory, with the explainer fitted alongside (never pickled)
    for row, document in enumerate((logged.example, logged.other)):
        got = out[out["row"] == row].reset_index(drop=True)
        examples = build_examples(load_patient(document))
        latest = examples.loc[[examples["decision_day"].astype(int).idxmax()]].reset_index(drop=True)
        x = latest[list(FEATURES)].to_numpy(float)
        predictions = recommender.predict_options(x)
        expected = options_table(latest[list(KEYS)], predictions)
        fixed = {
            *KEYS,
            "candidate",
            "local_therapy",
            "option",
            "propensity",
            "support",
            "probability_best",
            "rank",
        }
        assert [c for c in expected.columns if c not in fixed] == list(SUMMARY_COLUMNS)
        for column in (*KEYS, "candidate", "local_therapy", "option", "support"):
            assert got[column].tolist() == expected[column].tolist(), column
        for column in (*SUMMARY_COLUMNS, "propensity", "probability_best"):
            np.testing.assert_array_equal(
                got[column].to_numpy(), expected[column].replace(np.inf, np.nan).to_numpy(), err_msg=column
            )
        assert got["rank"].tolist() == expected["rank"].fillna(-1).astype(int).tolist()
        assert sorted(r for r in got["rank"] if r > 0) == list(range(1, int(got["support"].sum()) + 1))
        explanation = recommender.explain(x[0], predictions)
        rows = np.hstack([np.repeat(x, 16, axis=0), np.zeros((16, len(MODEL_COLUMNS) - len(FEATURES)))])
        rows[:, len(FEATURES) :] = [[float(j == i // 2) for j in range(8)] + [i % 2] for i in range(16)]
        for i in range(16):
            shap_top = json.loads(got["shap_top"][i])
            assert shap_top["top"] == _top(explanation.values[i], [rows[i]])
            assert shap_top["scale"] == got["model_scale"][i] == recommender.explanation_scale_
            assert shap_top["output"] == pytest.approx(explanation.output[i], abs=1e-12)
        assert got["contrast_top"].nunique() == 1
        contrast = json.loads(got["contrast_top"][0])
        tbp, switch = explanation.tbp_option, explanation.switch_option
        assert contrast["tbp_option"] == got["option"][tbp]
        assert contrast["switch_option"] == got["option"][switch]
        assert contrast["top"] == _top(explanation.contrast_values, [rows[tbp], rows[switch]])


def test_a_fresh_process_loads_the_registered_model_and_scores_its_input_example(
    logged: Logged, store: str
) -> None:
    uri = f"models:/{NAME}@champion"
    code = FRESH_PROCESS_FILTERS + textwrap.dedent(
        """
        import json, sys
        import mlflow
        model = mlflow.pyfunc.load_model(sys.argv[1])
        example = model.metadata.load_input_example(sys.argv[1])
        out = model.predict(example)
        print(json.dumps({"rows": len(out), "columns": list(out.columns), "rank": out["rank"].tolist()}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code, uri],
        cwd=logged.root,
        env={**os.environ, "MLFLOW_TRACKING_URI": store, "MLFLOW_REGISTRY_URI": store},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rows"] == 16
    assert result["columns"] == list(OUTPUT_COLUMNS)
    assert 1 in result["rank"]


@pytest.mark.slow
def test_mlflow_models_serve_answers_invocations(logged: Logged, store: str, tmp_path: Path) -> None:
    port = free_port()
    executable = Path(sys.executable).parent / "mlflow"
    # the server execs `uvicorn` from PATH: the venv's scripts folder, as in an activated venv
    path = os.pathsep.join([str(executable.parent), os.environ.get("PATH", "")])
    command = [str(executable), "models", "serve", "-m", f"models:/{NAME}@champion"]
    command += ["--env-manager", "local", "-p", str(port), "--host", "127.0.0.1"]
    log = tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"
    body = {"dataframe_split": {"columns": ["patient"], "data": [[json.dumps(logged.example)]]}}
    with log.open("wb") as sink:
        server = subprocess.Popen(
            command,
            cwd=tmp_path,
            env={**os.environ, "MLFLOW_TRACKING_URI": store, "MLFLOW_REGISTRY_URI": store, "PATH": path},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 90
            while True:
                assert server.poll() is None, log.read_text(errors="replace")[-3000:]
                try:
                    with urllib.request.urlopen(f"{base}/ping", timeout=2) as ping:
                        if ping.status == 200:
                            break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                assert time.monotonic() < deadline, "no /ping within 90 s:\n" + log.read_text()[-3000:]
                time.sleep(0.5)
            request = urllib.request.Request(
                f"{base}/invocations",
                data=json.dumps(body).encode("utf-8"),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = json.loads(response.read())
        finally:
            stop(server)
    predictions = answer["predictions"]
    assert len(predictions) == 16
    assert list(predictions[0]) == list(OUTPUT_COLUMNS)
    assert sorted(p["rank"] for p in predictions if p["support"])[0] == 1
    assert all(p["rank"] == -1 for p in predictions if not p["support"])
    assert {p["contrast_top"] for p in predictions} == {predictions[0]["contrast_top"]}


def _raw_key(document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "patient_key": "SIM-000123"}


def _impossible_date(document: dict[str, Any]) -> dict[str, Any]:
    lines = [dict(line) for line in document["lines"]]
    lines[0]["start_date"] = "2021-02-30"
    return {**document, "lines": lines}


@pytest.mark.parametrize("spoil", [_raw_key, _impossible_date], ids=["raw-id-as-key", "impossible-date"])
def test_a_bad_document_raises_the_loaders_message(logged: Logged, store: str, spoil: Any) -> None:
    model = mlflow.pyfunc.load_model(f"models:/{NAME}/{logged.version}")
    bad = spoil(logged.example)
    with pytest.raises(LockValidationError, match="violation") as direct:
        load_patient(bad, source="row 1")
    with pytest.raises(ValueError, match="violation") as raised:
        model.predict(_frame(logged.example, bad))
    assert str(raised.value) == str(direct.value)
    assert "SIM-" not in str(raised.value)
    assert "2021-02-30" not in str(raised.value)


def test_text_that_is_no_patient_and_a_patient_without_decision(logged: Logged, store: str) -> None:
    model = mlflow.pyfunc.load_model(f"models:/{NAME}/{logged.version}")
    with pytest.raises(ValueError, match=r"row 0: not valid JSON"):
        model.predict(_frame("{not json"))
    with pytest.raises(ValueError, match=r"row 0: must hold a JSON object"):
        model.predict(_frame("[1, 2]"))
    quiet = {**logged.example, "progressions": []}
    with pytest.raises(ValueError, match=r"row 0 \(patient [0-9a-f]{16}\) has no decision to score"):
        model.predict(_frame(quiet))
    empty = model.predict(_frame())
    assert empty.empty
    assert list(empty.columns) == list(OUTPUT_COLUMNS)


def test_artifacts_hold_the_model_without_explainer_and_no_patient_identifier(logged: Logged) -> None:
    raw_ids = (logged.root / "lock" / "patients.csv").read_bytes()
    assert RAW_ID.search(raw_ids)  # the pattern finds the simulator's identifiers
    files = [p for p in (logged.root / "artifacts").rglob("*") if p.is_file()]
    files.append(logged.root / "mlflow.db")
    for file in files:
        content = file.read_bytes()
        assert not RAW_ID.search(content), file.name
        assert not any(key.encode() in content for key in logged.training_keys), file.name
    (folder,) = {p.parent for p in files if p.name == "recommender.joblib"}
    stored = joblib.load(folder / "recommender.joblib")
    assert not hasattr(stored, "explainer_")
    assert hasattr(logged.recommender, "explainer_")  # the caller's object is untouched
    metadata = json.loads((folder / "metadata.json").read_text())
    assert {k: metadata[k] for k in METADATA} == METADATA
    assert metadata["training_run_id"] == logged.info.run_id
    assert metadata["features"] == list(FEATURES)
    assert len(metadata["options"]) == 16
    assert metadata["options"][:2] == ["tbp", "tbp + local therapy"]
    assert logged.info.signature.inputs.input_names() == ["patient"]
    assert logged.info.signature.outputs.input_names() == list(OUTPUT_COLUMNS)
    assert logged.info.metadata["lock_digest"] == METADATA["lock_digest"]


def test_log_recommender_checks_the_run_and_the_metadata(logged: Logged, store: str) -> None:
    with pytest.raises(ValueError, match="active run"):
        log_recommender(logged.recommender, METADATA, logged.example)
    with mlflow.start_run():
        with pytest.raises(ValueError, match=r"found unknown \['patient_id'\] and missing \[\]"):
            log_recommender(logged.recommender, {**METADATA, "patient_id": "x"}, logged.example)
        with pytest.raises(ValueError, match=r"missing \['lock_digest'\]"):
            log_recommender(logged.recommender, {"lock_id": "a", "lock_date": "b"}, logged.example)
        with pytest.raises(ValueError, match="has no decision to score"):
            log_recommender(logged.recommender, METADATA, {**logged.example, "progressions": []})


def test_the_synthetic_input_example_depends_only_on_the_seed(logged: Logged) -> None:
    again = synthetic_input_example(EXAMPLE_SEED)
    assert again == logged.example
    assert again["progressions"]
    assert again["patient_key"] not in logged.training_keys
