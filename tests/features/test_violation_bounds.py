"""Violations are listed up to a bound per file and rule, and the rest are counted exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from linewise.cli import app
from linewise.features import LockValidationError, load_lock
from tests.lockedit import append_row, set_cell


def test_one_cell_of_a_thousand_unknown_codes_lists_twenty_and_counts_the_rest(
    lock: Path, key: bytes
) -> None:
    set_cell(lock, "lines", 1, "drugs", "+".join(f"nodrug{n}" for n in range(1000)))
    with pytest.raises(LockValidationError, match="has 1000 violations of the contract") as caught:
        load_lock(lock, key)
    err = caught.value
    assert [(v.file, v.row, v.rule) for v in err.violations] == [("lines.csv", 1, "drug-code")] * 20
    assert [(o.file, o.rule, o.count) for o in err.omitted] == [("lines.csv", "drug-code", 980)]
    assert str(err).endswith(
        "  ... and 980 more violations of rule drug-code in lines.csv (the first 20 are listed)"
    )


def test_the_listed_ones_are_the_first_in_the_file(lock: Path, key: bytes) -> None:
    # 30 appended metastases with an unknown site, and one with an impossible date before them
    first = append_row(
        lock, "metastases", {"patient_id": "EX-001", "site": "bone", "date_detected": "2020-02-30"}
    )
    rows = [
        append_row(
            lock, "metastases", {"patient_id": "EX-001", "site": "elbow", "date_detected": "2020-03-10"}
        )
        for _ in range(30)
    ]
    with pytest.raises(LockValidationError, match="has 31 violations of the contract") as caught:
        load_lock(lock, key)
    err = caught.value
    assert [(v.row, v.rule) for v in err.violations] == [(first, "type-date")] + [
        (r, "code") for r in rows[:20]
    ]
    assert [(o.file, o.rule, o.count) for o in err.omitted] == [("metastases.csv", "code", 10)]


def test_validate_json_gives_the_total_and_the_counts(lock: Path) -> None:
    set_cell(lock, "lines", 1, "drugs", "+".join(f"nodrug{n}" for n in range(50)))
    result = CliRunner().invoke(app, ["validate", str(lock), "--json"])
    assert result.exit_code == 2
    payload = json.loads(result.stdout)
    assert payload["total_violations"] == 50 and len(payload["violations"]) == 20
    assert payload["omitted"] == [{"file": "lines.csv", "rule": "drug-code", "count": 30}]


def test_a_rule_across_rows_lists_twenty_and_counts_the_rest(lock: Path, key: bytes) -> None:
    rows = [
        append_row(
            lock, "metastases", {"patient_id": f"ZZ-{n:03d}", "site": "bone", "date_detected": "2020-03-10"}
        )
        for n in range(45)
    ]
    with pytest.raises(LockValidationError, match="has 45 violations of the contract") as caught:
        load_lock(lock, key)
    err = caught.value
    assert [(v.row, v.rule) for v in err.violations] == [(r, "patient-orphan") for r in rows[:20]]
    assert [(o.file, o.rule, o.count) for o in err.omitted] == [("metastases.csv", "patient-orphan", 25)]


def test_counts_of_one_rule_add_up_over_the_columns_it_checks(lock: Path, key: bytes) -> None:
    # every appended line ends before it starts (one rule, one column) and, as its start and end are
    # after the lock date, breaks after-lock-date in two columns: the counts of that rule add up
    for n in range(15):
        append_row(
            lock,
            "lines",
            {
                "patient_id": "EX-001",
                "line_number": str(50 + n),
                "start_date": "2099-02-01",
                "end_date": "2099-01-01",
                "drugs": "fulvestrant",
            },
        )
    with pytest.raises(LockValidationError) as caught:
        load_lock(lock, key)
    err = caught.value
    listed = {rule: sum(v.rule == rule for v in err.violations) for rule in {v.rule for v in err.violations}}
    counted = {o.rule: o.count for o in err.omitted if o.file == "lines.csv"}
    assert listed["after-lock-date"] == 20 and counted["after-lock-date"] == 10
    assert listed["line-end-before-start"] == 15 and "line-end-before-start" not in counted
