"""``linewise score``: the terminal table, ``--as-of``, and one clear error per bad input."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from linewise.cli import app
from linewise.features.examples import build_examples
from linewise.features.patient import load_patient

from .conftest import Served


def _write(tmp_path: Path, document: dict[str, Any] | str, name: str = "patient.json") -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    return path


def _strict(text: str) -> Any:
    def refuse(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_the_table_lists_every_option_and_the_provenance(served: Served, store: str, tmp_path: Path) -> None:
    document = next(iter(served.open_patients.values()))
    result = CliRunner().invoke(app, ["score", str(_write(tmp_path, document))])
    assert result.exit_code == 0, result.output
    scored = _strict(CliRunner().invoke(app, ["score", str(_write(tmp_path, document)), "--json"]).stdout)
    for entry in scored["candidates"]:
        assert entry["option"] in result.stdout
    unsupported = [e for e in scored["candidates"] if not e["support"]]
    assert ("insufficient evidence" in result.stdout) == bool(unsupported)
    assert f"(version {served.model.version})" in result.stdout and "sim-5-1000" in result.stdout


def test_as_of_scores_the_history_as_it_stood_then(served: Served, store: str, tmp_path: Path) -> None:
    # a patient with at least two decisions: cut the day before the latest decision
    candidates = [*served.open_patients.values(), served.closed_patient]
    counted = [(build_examples(load_patient(d)).sort_values("decision_day"), d) for d in candidates]
    examples, document = max(counted, key=lambda pair: len(pair[0]))
    assert len(examples) >= 2, "the fixture's lock should hold a patient with two decisions"
    cut = _cut_before_latest_progression(document)
    path = _write(tmp_path, document)
    result = CliRunner().invoke(app, ["score", str(path), "--json", "--as-of", cut.isoformat()])
    assert result.exit_code == 0, result.output
    earlier = _strict(result.stdout)
    assert earlier["as_of"] == cut.isoformat()
    assert earlier["decision_day"] == int(examples["decision_day"].iloc[-2])
    full = _strict(CliRunner().invoke(app, ["score", str(path), "--json"]).stdout)
    assert full["decision_day"] == int(examples["decision_day"].iloc[-1])


def test_as_of_does_not_hide_a_record_after_the_files_own_date(
    served: Served, store: str, tmp_path: Path
) -> None:
    document = served.closed_patient
    future = (dt.date.fromisoformat(document["as_of"]) + dt.timedelta(days=30)).isoformat()
    late = {**document["progressions"][-1], "date": future}
    path = _write(tmp_path, {**document, "progressions": [*document["progressions"], late]})
    cut = _cut_before_latest_progression(document).isoformat()
    for command in (["score", str(path)], ["report", str(path), "--out", str(tmp_path / "r.html")]):
        result = CliRunner().invoke(app, [*command, "--as-of", cut])
        assert result.exit_code == 2, result.output
        assert "progressions row" in result.output and "[rule after-lock-date]" in result.output
        assert future not in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "r.html").exists()


def _cut_before_latest_progression(document: dict[str, Any]) -> dt.date:
    latest = max(dt.date.fromisoformat(p["date"]) for p in document["progressions"])
    return latest - dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--as-of", "2025-13-01"], "--as-of must be a date YYYY-MM-DD"),
        (["--as-of", "2999-01-01"], "is after"),
        (["--model", "models:/nope@champion"], "cannot load the model models:/nope@champion"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    served: Served, store: str, tmp_path: Path, arguments: list[str], message: str
) -> None:
    document = next(iter(served.open_patients.values()))
    result = CliRunner().invoke(app, ["score", str(_write(tmp_path, document)), *arguments])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_bad_documents_exit_2_without_patient_data_or_traceback(
    served: Served, store: str, tmp_path: Path
) -> None:
    cases = {
        "broken.json": ("{not json", "not valid JSON"),
        "list.json": ("[1, 2]", "must hold a JSON object"),
        "undecided.json": (served.undecided_patient, "has no decision to score"),
        "schema.json": ({**next(iter(served.open_patients.values())), "schema_version": 9}, "schema_version"),
    }
    for name, (content, message) in cases.items():
        result = CliRunner().invoke(app, ["score", str(_write(tmp_path, content, name))])
        assert result.exit_code == 2, name
        assert message in result.output and "Traceback" not in result.output, (name, result.output)


def test_every_key_of_the_json_is_documented(served: Served, store: str, tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "serving.md").read_text(encoding="utf-8")
    document = next(iter(served.open_patients.values()))
    result = _strict(CliRunner().invoke(app, ["score", str(_write(tmp_path, document)), "--json"]).stdout)
    entry = result["candidates"][0]
    keys = {*result, *result["model"], *entry, *entry["explanation"], *result["tbp_versus_best_switch"]}
    keys |= {k.removesuffix("_lower").removesuffix("_upper") for k in entry["rwpfs"]}
    keys |= set(entry["explanation"]["top"][0]) | set(result["tbp_versus_best_switch"]["top"][0])
    missing = sorted(key for key in keys if f"`{key}`" not in doc)
    assert not missing
