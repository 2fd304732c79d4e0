"""The scope is stated on every score: a patient outside the population, or beyond the lines trained on."""

from __future__ import annotations

import copy
import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from linewise.cli import app
from linewise.features import load_lock, pseudonymize
from linewise.features.examples import build_examples
from linewise.models.output_table import score_decisions
from linewise.models.recommender import TreatmentRecommender
from linewise.serving.app import create_app
from linewise.serving.report import render_report
from linewise.serving.scoring import score_patient

from ..conftest import TEST_KEY
from .conftest import Served
from .service_client import AUTH, CHAMPION, TOKEN, VERSION, TestClient, open_patient

FIRST_LINE_WARNING = "the patient's first line was not endocrine therapy plus a CDK4/6 inhibitor"


def _first_line_letrozole_alone(document: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    (first,) = [line for line in changed["lines"] if line["line_number"] == 1]
    first["drugs"] = "letrozole"
    return changed


def _write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "patient.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_a_patient_in_the_population_is_in_scope(served: Served, store: str, tmp_path: Path) -> None:
    document = open_patient(served)
    scored = score_patient(served.model, document)
    assert scored["scope"] == {"in_scope": True, "warnings": []}
    text = CliRunner().invoke(app, ["score", str(_write(tmp_path, document))])
    assert text.exit_code == 0, text.output
    assert "WARNING" not in text.stdout
    assert 'data-warning="outside-scope"' not in render_report(served.model, document)


def test_a_first_line_without_a_cdk46_inhibitor_is_warned_of_in_score_report_and_api(
    served: Served, store: str, tmp_path: Path
) -> None:
    document = _first_line_letrozole_alone(open_patient(served))
    path = _write(tmp_path, document)
    scored = json.loads(CliRunner().invoke(app, ["score", str(path), "--json"]).stdout)
    assert scored["scope"]["in_scope"] is False
    assert [w["rule"] for w in scored["scope"]["warnings"]] == ["first-line"]
    assert scored["scope"]["warnings"][0]["message"].startswith(FIRST_LINE_WARNING)
    assert scored["candidates"], "the patient is still scored: the warning says it is an extrapolation"
    text = CliRunner().invoke(app, ["score", str(path)])
    assert text.exit_code == 0, text.output
    assert text.stdout.count("WARNING") == 2 and "rule first-line" in text.stdout
    html = render_report(served.model, document)
    assert 'data-warning="outside-scope" data-rule="first-line"' in html
    with TestClient(create_app(CHAMPION, version=VERSION, token=TOKEN, model=served.model)) as client:
        response = client.post("/v1/score", json={"patient": document}, headers=AUTH)
        assert response.status_code == 200
        assert response.json()["scope"] == scored["scope"]
        page = client.post("/v1/report", json={"patient": document}, headers=AUTH)
        assert 'data-rule="first-line"' in page.text


def test_score_lock_counts_and_marks_the_decisions_outside_the_population(
    served: Served, store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = tmp_path / "lock"
    shutil.copytree(served.lock, lock)
    with (lock / "lines.csv").open(encoding="utf-8", newline="") as handle:
        table = list(csv.reader(handle))
    header = table[0]
    open_keys = set(served.open_patients)
    changed = None
    for row in table[1:]:
        record = dict(zip(header, row, strict=True))
        if (
            record["line_number"] == "1"
            and pseudonymize(record["patient_id"], TEST_KEY.encode()) in open_keys
        ):
            row[header.index("drugs")] = "letrozole"
            changed = pseudonymize(record["patient_id"], TEST_KEY.encode())
            break
    assert changed is not None
    with (lock / "lines.csv").open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(table)
    monkeypatch.setenv("LINEWISE_PSEUDONYM_KEY", TEST_KEY)
    out = tmp_path / "scores.parquet"
    result = CliRunner().invoke(app, ["score-lock", str(lock), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "WARNING: 1 of the" in result.stderr and "rule first-line" in result.stderr
    scores = pd.read_parquet(out)
    rules = scores["scope_warnings"].map(lambda text: [w["rule"] for w in json.loads(text)])
    assert (rules[scores["patient_key"] == changed] == pd.Series([["first-line"]] * 16).values).all()
    # the others keep their first line; one may still follow a line beyond those trained on
    assert not any("first-line" in found for found in rules[scores["patient_key"] != changed])


def test_a_decision_beyond_every_line_trained_on_is_warned_of(served: Served) -> None:
    examples = build_examples(load_lock(served.lock, TEST_KEY.encode("utf-8")))
    first_line_only = examples[examples["line_number"] == 1]
    recommender = TreatmentRecommender(n_bootstrap=0, model_params={"n_estimators": 5}).fit(first_line_only)
    assert recommender.max_training_line_ == 1
    later = examples[examples["line_number"] == 2].head(2)
    earlier = examples[examples["line_number"] == 1].head(1)
    decisions = pd.concat([earlier, later])
    scored = score_decisions(recommender, decisions, np.arange(len(decisions)))
    per_decision = [json.loads(text) for text in scored["scope_warnings"].iloc[::16]]
    assert per_decision[0] == []
    for warnings in per_decision[1:]:
        assert [w["rule"] for w in warnings] == ["line-beyond-training"]
        assert "follows line 2, and the model learned from decisions up to line 1" in warnings[0]["message"]


def test_the_provenance_names_the_highest_line_trained_on(served: Served) -> None:
    examples = build_examples(load_lock(served.lock, TEST_KEY.encode("utf-8")))
    learned = examples[examples["action"].notna() & ~examples["action"].isin(["none", "other"])]
    assert served.model.provenance["max_training_line"] == int(learned["line_number"].max())
