"""The command line as a user runs it: exit codes, no tracebacks, nothing written on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import typer

from tests.conftest import TEST_KEY
from tests.lockedit import set_cell

COMMANDS = [
    "validate",
    "pseudonymize",
    "simulate",
    "calibrate",
    "features",
    "export-patient",
    "evaluate-policy",
    "train",
    "score",
    "score-lock",
    "report",
    "serve",
    "demo",
]


def run(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "linewise", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


def _listing(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_version_and_help() -> None:
    version = run("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("linewise ")
    top = run("--help")
    assert top.returncode == 0
    for command in COMMANDS:
        assert command in top.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0
    assert len(result.stdout.split("\n\n")[1].strip()) > 20  # the one-sentence description


def test_validate_good_lock(lock: Path) -> None:
    result = run("validate", str(lock))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
    assert "patients 8" in result.stdout
    assert "progressions 14" in result.stdout
    assert "2025-01-31" in result.stdout


def test_validate_good_lock_json(lock: Path) -> None:
    result = run("validate", str(lock), "--json")
    assert result.returncode == 0
    payload = json.loads(result.stdout)
    assert payload["valid"] is True
    assert (payload["patients"], payload["lines"], payload["progressions"]) == (8, 19, 14)


def test_validate_bad_lock_exits_2_without_traceback_or_writes(lock: Path, tmp_path: Path) -> None:
    set_cell(lock, "lines", 3, "drugs", "letrozole+palbocicilb")
    set_cell(lock, "patients", 2, "er_percent", "130")
    config = tmp_path / "fresh-config"
    before = _listing(lock)
    result = run("validate", str(lock), env={"LINEWISE_PSEUDONYM_KEY": "", "XDG_CONFIG_HOME": str(config)})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert "lines.csv row 3, column drugs" in result.stderr
    assert "did you mean 'palbociclib'" in result.stderr
    assert "patients.csv row 2, column er_percent" in result.stderr
    assert "EX-002" not in result.stderr  # the raw patient id of that row
    assert _listing(lock) == before
    assert not config.exists()  # validation needs no key, so no key file was made


def test_validate_bad_lock_json(lock: Path) -> None:
    set_cell(lock, "progressions", 9, "line_number", "2")
    result = run("validate", str(lock), "--json")
    assert result.returncode == 2
    payload = json.loads(result.stdout)
    assert payload["valid"] is False
    assert payload["violations"] == [
        {
            "file": "progressions.csv",
            "table": "progressions",
            "row": 9,
            "column": "line_number",
            "value": None,
            "rule": "progression-line-missing",
            "message": "the patient has no line 2 in lines",
        }
    ]


def test_validate_missing_folder(tmp_path: Path) -> None:
    result = run("validate", str(tmp_path / "absent"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_pseudonymize_arguments_and_stdin() -> None:
    # openssl: printf 'EX-001' | openssl dgst -sha256 -hmac 'test-key-0123456789abcdef'
    expected = "26d9dbefab241a66"
    by_argument = run("pseudonymize", "EX-001", "EX-002", env={"LINEWISE_PSEUDONYM_KEY": TEST_KEY})
    assert by_argument.returncode == 0
    lines = by_argument.stdout.splitlines()
    assert lines[0] == expected and len(lines) == 2 and lines[1] != expected
    by_stdin = run("pseudonymize", "-", stdin="EX-001\nEX-002\n")
    assert by_stdin.stdout.splitlines() == lines


def test_pseudonymize_refuses_empty_and_short_key() -> None:
    empty = run("pseudonymize", "-", stdin="EX-001\n\nEX-002\n")
    assert empty.returncode == 2
    assert "identifier 2 is empty" in empty.stderr
    short = run("pseudonymize", "EX-001", env={"LINEWISE_PSEUDONYM_KEY": "short"})
    assert short.returncode == 2
    assert "at least 16 bytes" in short.stderr
    assert "Traceback" not in short.stderr


def test_pseudonymize_creates_key_file_on_first_use(tmp_path: Path) -> None:
    config = tmp_path / "config"
    env = {"LINEWISE_PSEUDONYM_KEY": "", "XDG_CONFIG_HOME": str(config)}
    first = run("pseudonymize", "EX-001", env=env)
    assert first.returncode == 0, first.stderr
    assert (config / "linewise" / "pseudonym.key").is_file()
    assert run("pseudonymize", "EX-001", env=env).stdout == first.stdout


SMALL_TRAINING = """\
n_bootstrap: 2
selection:
  folds: 2
  candidates:
    - {family: boosted_cox, params: {n_estimators: 60, learning_rate: 0.1}}
    - {family: random_survival_forest, params: {n_estimators: 10, min_samples_leaf: 30}}
"""


@pytest.mark.slow
def test_demo_runs_the_pipeline_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    config = tmp_path / "small.yaml"
    config.write_text(SMALL_TRAINING)
    arguments = ("demo", "--out", str(out), "--patients", "600", "--seed", "3", "--config", str(config))
    result = run(*arguments)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
    assert "as @champion" in result.stdout and "6. score every open decision" in result.stdout
    calibration = json.loads((out / "calibration.json").read_text())
    assert {item["id"] for item in calibration} >= {"TBP_share", "PALMIRA"}
    batch = pd.read_parquet(out / "open_scores.parquet")
    assert len(batch) > 0 and len(batch) % 16 == 0
    score = json.loads((out / "score.json").read_text())
    assert len(score["candidates"]) == 16 and score["candidates"][0]["rank"] == 1
    assert score["patient_key"] == min(batch["patient_key"])  # the first open patient, scored alone
    assert "7. score one of them alone" in result.stdout
    page = (out / "report.html").read_text()
    assert 'id="ranked-table"' in page and score["patient_key"] in page
    again = run(*arguments)
    assert again.returncode == 0, again.stderr  # a demo folder is replaced
    assert "as @challenger" in again.stdout  # the same lock again does not beat the champion


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    result = run("demo", "--out", str(tmp_path / "mine"), "--patients", "50")
    assert result.returncode == 2
    assert "was not made by linewise demo" in result.stderr


def test_features_writes_examples_and_column_lists(lock: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "examples.parquet"
    result = run("features", str(lock), "--out", str(out))
    assert result.returncode == 0, result.stderr
    columns = json.loads(out.with_suffix(".json").read_text())
    assert columns["keys"] == ["patient_key", "line_number", "decision_day"]
    assert columns["actions"] == ["action", "local_therapy"]
    assert columns["outcomes"] == ["pfs_time", "pfs_event", "os_time", "os_event"]
    import pandas as pd

    examples = pd.read_parquet(out)
    assert len(examples) == 14
    assert set(columns["features"]) <= set(examples.columns)
    assert not examples["patient_key"].str.startswith("EX-").any()


def test_features_on_a_bad_lock_writes_nothing(lock: Path, tmp_path: Path) -> None:
    set_cell(lock, "lines", 3, "drugs", "letrozole+palbocicilb")
    out = tmp_path / "out" / "examples.parquet"
    result = run("features", str(lock), "--out", str(out))
    assert result.returncode == 2
    assert "did you mean 'palbociclib'" in result.stderr
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_export_patient_round_trip(lock: Path, tmp_path: Path) -> None:
    key = run("pseudonymize", "EX-001").stdout.strip()
    out = tmp_path / "p.json"
    result = run("export-patient", str(lock), "--patient", key, "--as-of", "2022-01-01", "--out", str(out))
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    assert document["patient_key"] == key and document["as_of"] == "2022-01-01"
    assert "EX-001" not in out.read_text()
    missing = run("export-patient", str(lock), "--patient", "0" * 16, "--out", str(tmp_path / "q.json"))
    assert missing.returncode == 2 and "not in this lock" in missing.stderr
    assert not (tmp_path / "q.json").exists()
    bad_date = run("export-patient", str(lock), "--patient", key, "--as-of", "01/01/2022", "--out", str(out))
    assert bad_date.returncode == 2 and "YYYY-MM-DD" in bad_date.stderr


def test_export_patient_as_a_fhir_bundle(lock: Path, tmp_path: Path) -> None:
    from linewise.features.fhir import read_bundle

    key = run("pseudonymize", "EX-001").stdout.strip()
    as_json, as_fhir = tmp_path / "p.json", tmp_path / "p.fhir.json"
    common = ("export-patient", str(lock), "--patient", key, "--as-of", "2022-01-01")
    assert run(*common, "--out", str(as_json)).returncode == 0
    result = run(*common, "--format", "fhir", "--out", str(as_fhir))
    assert result.returncode == 0, result.stderr
    assert "FHIR Bundle" in result.stdout
    bundle = json.loads(as_fhir.read_text())
    assert bundle["resourceType"] == "Bundle" and "EX-001" not in as_fhir.read_text()
    assert read_bundle(bundle).document == json.loads(as_json.read_text())
    wrong = run(*common, "--format", "xml", "--out", str(tmp_path / "q.xml"))
    assert wrong.returncode == 2 and "--format must be json or fhir" in wrong.stderr
    assert not (tmp_path / "q.xml").exists() and "Traceback" not in wrong.stderr


def test_numerical_warnings_print_as_one_line_each_and_others_pass_through() -> None:
    import warnings

    from typer.testing import CliRunner

    from linewise.cli_support import reporting_numerical_warnings
    from linewise.models.exceptions import EmptyRiskSetWarning, WeightTruncationWarning

    def command() -> None:
        warnings.warn("3 of 9 decisions ... truncates their weights", WeightTruncationWarning, stacklevel=1)
        warnings.warn("3 of 9 decisions ... truncates their weights", WeightTruncationWarning, stacklevel=1)
        warnings.warn("nobody is at risk after 20.00 months", EmptyRiskSetWarning, stacklevel=1)
        warnings.warn("something else", DeprecationWarning, stacklevel=1)
        typer.echo("done")

    app = typer.Typer()
    app.command()(reporting_numerical_warnings(command))
    with warnings.catch_warnings(record=True) as passed:
        warnings.simplefilter("always")
        result = CliRunner().invoke(app, [])
    assert result.exit_code == 0
    assert result.stdout == "done\n"
    assert result.stderr.splitlines() == [
        "linewise: warning: 3 of 9 decisions ... truncates their weights",
        "linewise: warning: nobody is at risk after 20.00 months",
    ]
    assert [(w.category, str(w.message)) for w in passed] == [(DeprecationWarning, "something else")]
