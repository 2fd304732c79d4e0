"""A registered model of another layout is refused from its metadata, before any of its code runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from linewise.cli import app
from linewise.features import example_lock_path
from linewise.features.patient import export_patients
from linewise.models.output_table import FORMAT_VERSION, ModelFormatError
from linewise.serving.scoring import load_scoring_model
from tests.old_layout import register_champion as _register


@pytest.fixture
def patient_file(tmp_path: Path, key: bytes) -> Path:
    document = next(iter(export_patients(example_lock_path(), key).values()))
    path = tmp_path / "patient.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_a_model_of_the_old_layout_is_refused_with_the_advice_to_retrain() -> None:
    uri = _register({"format_version": 1, "lock_id": "an-old-lock"})
    expected = (
        rf"^{uri} was saved by another layout of linewise \(model format 1; this version reads format "
        rf"{FORMAT_VERSION}\); retrain it with `linewise train`$"
    )
    with pytest.raises(ModelFormatError, match=expected):
        load_scoring_model(uri)


def test_the_command_line_says_it_in_one_line(patient_file: Path) -> None:
    uri = _register({"format_version": 1})
    for command in (["score", str(patient_file)], ["report", str(patient_file), "--out", "r.html"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.output
        assert lines[0].startswith(f"linewise {command[0]}: cannot load the model {uri}: ")
        assert lines[0].endswith("retrain it with `linewise train`")


def test_a_model_without_a_format_is_not_a_linewise_model() -> None:
    uri = _register(None)
    with pytest.raises(ModelFormatError, match=r"is not a linewise recommender .*no format_version"):
        load_scoring_model(uri)
