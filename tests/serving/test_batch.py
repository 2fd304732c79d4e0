"""``linewise score-lock``: every open decision of a lock, and the same numbers as ``linewise score``."""

from __future__ import annotations

import json
import math
import shutil
import warnings
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from linewise.cli import app
from linewise.features.examples import build_examples
from linewise.features.loader import load_lock
from linewise.serving.app import create_app
from linewise.serving.batch import BATCH_COLUMNS, read_provenance
from linewise.simulation.config import load_config
from linewise.simulation.simulate import simulate_lock

from ..conftest import TEST_KEY
from .conftest import Served

with warnings.catch_warnings():
    # Starlette 1.10 asks for httpx2 in its test client; httpx 0.28 (the pinned dev dependency) works
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
    from fastapi.testclient import TestClient

TOKEN = "batch-test-token-0123456789abcdefghijkl"
VERSION = "0.0.test"

REQUIRED = (
    "patient_key",
    "line_number",
    "decision_day",
    "candidate",
    "local_therapy",
    "pfs_rmst24",
    "pfs_rmst24_lower",
    "pfs_rmst24_upper",
    "support",
    "rank",
)


@pytest.fixture(scope="module")
def batch(served: Served, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("batch") / "scores.parquet"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", served.store)
        patch.setenv("LINEWISE_PSEUDONYM_KEY", TEST_KEY)
        result = CliRunner().invoke(app, ["score-lock", str(served.lock), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "open decisions x 16 options" in result.stdout
    frame = pd.read_parquet(out)
    provenance = read_provenance(out)
    assert provenance["model_version"] == served.model.version
    assert provenance["scored_lock_id"] == "sim-5-1000"
    return frame


def test_one_row_per_open_decision_and_option_with_the_required_columns(
    served: Served, batch: pd.DataFrame
) -> None:
    assert list(batch.columns) == list(BATCH_COLUMNS)
    assert set(REQUIRED) <= set(batch.columns)  # the columns docs/serving.md promises, written out here
    # the open decisions, counted independently from the lock's examples
    examples = build_examples(load_lock(served.lock, TEST_KEY.encode("utf-8")))
    expected = examples.loc[examples["open_decision"].astype(bool), ["patient_key", "line_number"]]
    got = batch[["patient_key", "line_number"]].drop_duplicates()
    pairs = [sorted(map(tuple, frame.astype(str).to_numpy())) for frame in (got, expected)]
    assert pairs[0] == pairs[1]
    assert len(batch) == 16 * len(expected)
    for _, decision in batch.groupby(["patient_key", "line_number"]):
        assert decision["option"].nunique() == 16
        ranked = sorted(decision.loc[decision["support"], "rank"])
        assert ranked == list(range(1, int(decision["support"].sum()) + 1))
        assert (decision.loc[~decision["support"], "rank"] == -1).all()
        best = decision.loc[decision["rank"] == 1, "pfs_rmst24"].item()
        assert best == decision.loc[decision["support"], "pfs_rmst24"].max()


# The batch path scores all open decisions in one matrix product, the single-patient path one row: the
# numbers agree to rounding (BLAS sums in another order), so floats are compared to 1e-9 relative.
RELATIVE = 1e-9


def _same(a: Any, b: Any) -> bool:
    """Return whether two JSON-like values agree: equal structure, floats to RELATIVE, None as NaN."""
    if a is None or b is None:
        return a is None and (b is None or (isinstance(b, float) and math.isnan(b)))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=RELATIVE, abs_tol=1e-12)
    return bool(a == b)


@pytest.fixture(scope="module")
def service(served: Served) -> Any:
    """The service as `linewise serve` runs it: it loads the champion from the store itself."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", served.store)
        patch.setenv("MLFLOW_REGISTRY_URI", served.store)
        mlflow.set_tracking_uri(served.store)
        mlflow.set_registry_uri(served.store)
        try:
            application = create_app(
                "models:/linewise@champion", version=VERSION, token=TOKEN, reload_interval_s=0.0
            )
            with TestClient(application) as client:
                yield client
        finally:
            mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
            mlflow.set_registry_uri(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("which", [0, 1, 2])
def test_the_command_line_the_service_and_the_batch_agree(
    served: Served, batch: pd.DataFrame, service: Any, store: str, tmp_path: Path, which: int
) -> None:
    key, document = sorted(served.open_patients.items())[which]
    patient = tmp_path / "patient.json"
    patient.write_text(json.dumps(document), encoding="utf-8")
    scored = CliRunner().invoke(app, ["score", str(patient), "--json"])
    assert scored.exit_code == 0, scored.output
    result = json.loads(scored.stdout)
    answer = service.post(
        "/v1/score", json={"patient": document}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == result  # the same model, the same code: the same document exactly
    rows = batch[batch["patient_key"] == key].set_index("option")
    assert len(rows) == 16
    assert result["line_number"] == int(rows["line_number"].iloc[0])
    assert result["decision_day"] == int(rows["decision_day"].iloc[0])
    for entry in result["candidates"]:
        row = rows.loc[entry["option"]]
        assert entry["rank"] == (int(row["rank"]) if row["rank"] > 0 else None)
        assert entry["support"] == bool(row["support"])
        assert _same(entry["propensity"], float(row["propensity"]))
        for endpoint, prefix in (("rwpfs", "pfs"), ("os", "os")):
            for name, value in entry[endpoint].items():
                assert _same(value, float(row[f"{prefix}_{name}"])), (entry["option"], endpoint, name)
        assert _same(entry["explanation"], json.loads(row["shap_top"]))
    assert _same(result["tbp_versus_best_switch"], json.loads(rows["contrast_top"].iloc[0]))


def test_a_lock_without_open_decisions_is_an_error_not_an_empty_table(
    served: Served, store: str, tmp_path: Path
) -> None:
    simulate_lock(60, 5, tmp_path / "lock", tmp_path / "truth", load_config())
    examples = build_examples(load_lock(tmp_path / "lock", TEST_KEY.encode("utf-8")))
    assert len(examples) > 0 and not examples["open_decision"].astype(bool).any()
    out = tmp_path / "scores.parquet"
    result = CliRunner().invoke(app, ["score-lock", str(tmp_path / "lock"), "--out", str(out)])
    assert result.exit_code == 2
    said = f"linewise score-lock: none of the lock's {len(examples)} decisions is open at its lock_date"
    assert result.output.startswith(said)
    assert "nothing written" in result.output and not out.exists()


def _with_manifest(lock: Path, target: Path, edit: Any) -> Path:
    shutil.copytree(lock, target)
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    text = edit(manifest)
    (target / "manifest.json").write_bytes(text if isinstance(text, bytes) else json.dumps(manifest).encode())
    return target


def test_a_lock_date_in_the_future_is_refused_not_scored_as_nothing(
    served: Served, store: str, tmp_path: Path
) -> None:
    future = _with_manifest(served.lock, tmp_path / "future", lambda m: m.update(lock_date="2052-01-31"))
    out = tmp_path / "scores.parquet"
    result = CliRunner().invoke(app, ["score-lock", str(future), "--out", str(out)])
    assert result.exit_code == 2 and not out.exists()
    assert "manifest.json, column lock_date: lock_date is not after the day the lock is read" in result.output
    assert "[rule lock-date]" in result.output and "2052" not in result.output
    validate = CliRunner().invoke(app, ["validate", str(future)])
    assert validate.exit_code == 2 and "[rule lock-date]" in validate.output


def test_a_manifest_with_a_byte_order_mark_is_read_the_same_by_every_command(
    served: Served, store: str, tmp_path: Path, batch: pd.DataFrame
) -> None:
    lock = _with_manifest(
        served.lock, tmp_path / "bom", lambda m: b"\xef\xbb\xbf" + json.dumps(m).encode("utf-8")
    )
    assert (lock / "manifest.json").read_bytes().startswith(b"\xef\xbb\xbf")
    assert CliRunner().invoke(app, ["validate", str(lock)]).exit_code == 0
    out = tmp_path / "scores.parquet"
    result = CliRunner().invoke(app, ["score-lock", str(lock), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (
        read_provenance(out)["scored_lock_id"]
        == json.loads((served.lock / "manifest.json").read_text(encoding="utf-8"))["lock_id"]
    )
    assert len(pd.read_parquet(out)) == len(batch)


def test_a_bad_lock_or_output_stops_before_anything_is_written(
    served: Served, store: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(served.lock, bad)
    lines = bad / "lines.csv"
    lines.write_text(lines.read_text(encoding="utf-8").replace("letrozole", "letrozol", 1), encoding="utf-8")
    out = tmp_path / "scores.parquet"
    result = CliRunner().invoke(app, ["score-lock", str(bad), "--out", str(out)])
    assert result.exit_code == 2
    assert "unknown drug code 'letrozol'" in result.output and "Traceback" not in result.output
    assert not out.exists() and not list(tmp_path.glob(".linewise-*"))
    wrong = CliRunner().invoke(app, ["score-lock", str(served.lock), "--out", str(tmp_path / "x.csv")])
    assert wrong.exit_code == 2 and "must end in .parquet" in wrong.output
    missing = CliRunner().invoke(
        app, ["score-lock", str(served.lock), "--out", str(out), "--model", "models:/nope@champion"]
    )
    assert missing.exit_code == 2 and "cannot load the model models:/nope@champion" in missing.output
    assert not out.exists()
