"""One bad-input case per rule of the data-lock contract: the right file, row, column and rule.

Malformed files and the inputs found by an adversarial review are in ``test_rules_malformed.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from linewise.features import RULES, LockValidationError, load_lock
from tests.features.manifest_edit import change_manifest
from tests.lockedit import add_column, append_row, drop_column, read_rows, row_of, set_cell, write_rows


@dataclass(frozen=True)
class Case:
    corrupt: Callable[[Path], None]
    file: str
    row: int | None
    column: str | None
    rule: str
    says: str


def _remove(table: str) -> Callable[[Path], None]:
    return lambda lock: (lock / f"{table}.csv").unlink()


def _cell(table: str, row: int, column: str, value: str) -> Callable[[Path], None]:
    return lambda lock: set_cell(lock, table, row, column, value)


def _both_formats(lock: Path) -> None:
    pd.read_csv(lock / "metastases.csv", dtype=str).to_parquet(lock / "metastases.parquet")


def _duplicate_header(lock: Path) -> None:
    text = (lock / "performance_status.csv").read_text().splitlines()
    text[0] = "patient_id,date,date"
    (lock / "performance_status.csv").write_text("\n".join(text) + "\n")


def _duplicate_patient(lock: Path) -> None:
    _, rows = read_rows(lock, "patients")
    append_row(lock, "patients", rows[0])


def _orphan(lock: Path) -> None:
    append_row(lock, "performance_status", {"patient_id": "EX-404", "date": "2022-01-01", "ecog": "0"})


def _duplicate_line(lock: Path) -> None:
    _, rows = read_rows(lock, "lines")
    append_row(lock, "lines", rows[8])  # EX-004 line 1 once more


CASES = {
    "manifest-missing": Case(
        lambda lock: (lock / "manifest.json").unlink(), "manifest.json", None, None, "manifest", "missing"
    ),
    "manifest-no-lock-date": Case(
        change_manifest({"lock_date": None}), "manifest.json", None, "lock_date", "manifest", "no lock_date"
    ),
    "manifest-bad-lock-date": Case(
        change_manifest({"lock_date": "31/01/2025"}),
        "manifest.json",
        None,
        "lock_date",
        "manifest",
        "YYYY-MM-DD",
    ),
    "manifest-lock-date-before-cdk46": Case(
        change_manifest({"lock_date": "2015-02-02"}),
        "manifest.json",
        None,
        "lock_date",
        "lock-date",
        "nor before 3 February 2015",
    ),
    "manifest-long-lock-id": Case(
        change_manifest({"lock_id": "L" * 201}),
        "manifest.json",
        None,
        "lock_id",
        "manifest",
        "at most 200 characters",
    ),
    "manifest-schema-version": Case(
        change_manifest({"schema_version": 2}),
        "manifest.json",
        None,
        "schema_version",
        "manifest",
        "must be 1",
    ),
    "missing-table": Case(_remove("local_therapies"), "lock", None, None, "table-missing", "local_therapies"),
    "ambiguous-table": Case(_both_formats, "lock", None, None, "table-ambiguous", "both"),
    "missing-column": Case(
        lambda lock: drop_column(lock, "lines", "drugs"),
        "lines.csv",
        None,
        "drugs",
        "column-missing",
        "required column drugs",
    ),
    "unnamed-column": Case(
        lambda lock: add_column(lock, "metastases", "", "x"),
        "metastases.csv",
        None,
        None,
        "column-unnamed",
        "header cell 4 is empty",
    ),
    "duplicate-column": Case(
        _duplicate_header, "performance_status.csv", None, "date", "column-duplicate", "2 times"
    ),
    "empty-required": Case(
        _cell("patients", 3, "histology", ""), "patients.csv", 3, "histology", "value-missing", "empty"
    ),
    "wrong-type-number": Case(
        _cell("patients", 2, "er_percent", "high"),
        "patients.csv",
        2,
        "er_percent",
        "type-number",
        "expected a number",
    ),
    "wrong-type-integer": Case(
        _cell("performance_status", 4, "ecog", "1.5"),
        "performance_status.csv",
        4,
        "ecog",
        "type-integer",
        "whole number",
    ),
    "wrong-type-date": Case(
        _cell("metastases", 2, "date_detected", "2022/06/20"),
        "metastases.csv",
        2,
        "date_detected",
        "type-date",
        "YYYY-MM-DD",
    ),
    "impossible-date": Case(
        _cell("metastases", 2, "date_detected", "2022-02-30"),
        "metastases.csv",
        2,
        "date_detected",
        "type-date",
        "exists",
    ),
    "wrong-type-boolean": Case(
        _cell("patients", 4, "de_novo", "yes"), "patients.csv", 4, "de_novo", "type-boolean", "true/false"
    ),
    "percentage-out-of-range": Case(
        _cell("patients", 1, "pgr_percent", "101"), "patients.csv", 1, "pgr_percent", "range", "0 to 100"
    ),
    "ecog-out-of-range": Case(
        _cell("performance_status", 1, "ecog", "5"), "performance_status.csv", 1, "ecog", "range", "0 to 4"
    ),
    "age-out-of-range": Case(
        _cell("patients", 6, "age_at_metastatic_dx", "17"),
        "patients.csv",
        6,
        "age_at_metastatic_dx",
        "range",
        "18 to 110",
    ),
    "unknown-code": Case(
        _cell("progressions", 2, "pattern", "oligoprogression"),
        "progressions.csv",
        2,
        "pattern",
        "code",
        "did you mean 'oligo'",
    ),
    "unknown-site-in-list": Case(
        _cell("progressions", 3, "new_sites", "lung+livr"),
        "progressions.csv",
        3,
        "new_sites",
        "code",
        "did you mean 'liver'",
    ),
    "unknown-drug-code": Case(
        _cell("lines", 3, "drugs", "letrozole+palbocicilb"),
        "lines.csv",
        3,
        "drugs",
        "drug-code",
        "did you mean 'palbociclib'",
    ),
    "her2-positive": Case(
        _cell("patients", 5, "her2_ihc", "3+"),
        "patients.csv",
        5,
        "her2_ihc",
        "her2-negative",
        "HER2-positive",
    ),
    "marker-value": Case(
        _cell("biomarkers", 2, "value", "positive"), "biomarkers.csv", 2, "value", "code", "esr1 result"
    ),
    "marker-percentage": Case(
        _cell("biomarkers", 5, "value", "140"), "biomarkers.csv", 5, "value", "range", "percentage"
    ),
    "duplicate-patient": Case(
        _duplicate_patient, "patients.csv", 9, "patient_id", "patient-duplicate", "already used in row 1"
    ),
    "orphan-row": Case(
        _orphan, "performance_status.csv", 16, "patient_id", "patient-orphan", "not in patients"
    ),
    "duplicate-line": Case(
        _duplicate_line, "lines.csv", 20, "line_number", "line-duplicate", "appears twice"
    ),
    "line-numbering-gap": Case(
        _cell("lines", 5, "line_number", "4"),
        "lines.csv",
        5,
        "line_number",
        "line-numbering",
        "expected line 3",
    ),
    "line-ends-before-start": Case(
        _cell("lines", 9, "end_date", "2022-05-01"),
        "lines.csv",
        9,
        "end_date",
        "line-end-before-start",
        "19 days before",
    ),
    "overlapping-lines": Case(
        _cell("lines", 18, "start_date", "2023-01-10"),
        "lines.csv",
        18,
        "start_date",
        "line-overlap",
        "49 days before line 1 ends",
    ),
    "ongoing-line-then-another": Case(
        _cell("lines", 1, "end_date", ""), "lines.csv", 2, "start_date", "line-overlap", "ongoing"
    ),
    "progression-outside-line": Case(
        _cell("progressions", 8, "date", "2019-09-20"),
        "progressions.csv",
        8,
        "date",
        "progression-outside-line",
        "before line 1 starts",
    ),
    "progression-after-line-end": Case(
        _cell("progressions", 5, "date", "2021-12-05"),
        "progressions.csv",
        5,
        "date",
        "progression-outside-line",
        "5 days after line 1 ends",
    ),
    "progression-without-line": Case(
        _cell("progressions", 9, "line_number", "2"),
        "progressions.csv",
        9,
        "line_number",
        "progression-line-missing",
        "no line 2",
    ),
    "date-after-lock-date": Case(
        _cell("performance_status", 9, "date", "2025-02-10"),
        "performance_status.csv",
        9,
        "date",
        "after-lock-date",
        "10 days after the lock date",
    ),
    "event-after-death": Case(
        lambda lock: append_row(
            lock,
            "biomarkers",
            {"patient_id": "EX-003", "date": "2023-09-01", "marker": "ki67", "value": "10"},
        ),
        "biomarkers.csv",
        9,
        "date",
        "after-death",
        "13 days after the patient's death",
    ),
    "death-date-differs-from-last-contact": Case(
        _cell("patients", 8, "last_contact_date", "2024-07-05"),
        "patients.csv",
        8,
        "last_contact_date",
        "death-date-mismatch",
        "by 5 days",
    ),
    "dead-without-death-date": Case(
        _cell("patients", 3, "death_date", ""), "patients.csv", 3, "death_date", "death-date-missing", "dead"
    ),
    "alive-with-death-date": Case(
        _cell("patients", 4, "death_date", "2025-01-10"),
        "patients.csv",
        4,
        "death_date",
        "death-date-missing",
        "alive",
    ),
    "no-patients": Case(
        lambda lock: write_rows(lock, "patients", read_rows(lock, "patients")[0], []),
        "patients.csv",
        None,
        None,
        "patients-empty",
        "no rows",
    ),
    "patient-id-too-long": Case(
        _cell("metastases", 2, "patient_id", "Q" * 65),
        "metastases.csv",
        2,
        "patient_id",
        "patient-id",
        "at most 64 characters",
    ),
    "contact-before-diagnosis": Case(
        _cell("patients", 4, "last_contact_date", "2022-05-01"),
        "patients.csv",
        4,
        "last_contact_date",
        "contact-before-diagnosis",
        "before metastatic diagnosis",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_rule_names_file_row_column_and_rule(case: Case, lock: Path, key: bytes) -> None:
    case.corrupt(lock)
    with pytest.raises(LockValidationError, match="violation") as caught:
        load_lock(lock, key)
    hits = [
        v
        for v in caught.value.violations
        if (v.file, v.row, v.column, v.rule) == (case.file, case.row, case.column, case.rule)
    ]
    assert hits, f"expected {case}, got:\n{caught.value}"
    assert any(case.says in v.message for v in hits), [v.message for v in hits]
    assert case.rule in RULES


def test_rule_catalogue_is_exercised() -> None:
    exercised = {case.rule for case in CASES.values()} | {
        "lock-folder",
        "table-unreadable",
        "patient-file",
        "outside-lock",  # test_rules_malformed.py: links to files outside the folder
    }
    assert exercised == set(RULES)


def test_all_violations_are_reported_at_once(lock: Path, key: bytes) -> None:
    for case in (
        CASES["percentage-out-of-range"],
        CASES["unknown-drug-code"],
        CASES["orphan-row"],
        CASES["date-after-lock-date"],
        CASES["missing-table"],
    ):
        case.corrupt(lock)
    with pytest.raises(LockValidationError, match="5 violations") as caught:
        load_lock(lock, key)
    assert {v.rule for v in caught.value.violations} == {
        "range",
        "drug-code",
        "patient-orphan",
        "after-lock-date",
        "table-missing",
    }


def test_one_mistake_is_reported_once(lock: Path, key: bytes) -> None:
    set_cell(lock, "lines", 18, "start_date", "not a date")
    with pytest.raises(LockValidationError, match="1 violation of") as caught:
        load_lock(lock, key)
    assert [v.rule for v in caught.value.violations] == ["type-date"]


def test_overlap_tolerance_is_a_parameter(lock: Path, key: bytes) -> None:
    row = row_of(lock, "lines", patient_id="EX-008", line_number="2")
    set_cell(lock, "lines", row, "start_date", "2023-02-20")  # 8 days before line 1 ends
    load_lock(lock, key)  # inside the default 14-day tolerance
    with pytest.raises(LockValidationError, match="tolerance 7 days"):
        load_lock(lock, key, overlap_tolerance_days=7)
    with pytest.raises(ValueError, match="overlap_tolerance_days"):
        load_lock(lock, key, overlap_tolerance_days=-1)


def test_unknown_column_is_kept_and_warned(lock: Path, key: bytes) -> None:
    from linewise.features import LockWarning

    add_column(lock, "metastases", "confirmed_by", "ct")
    with pytest.warns(LockWarning, match="'confirmed_by' is not in the data-lock contract"):
        data_lock = load_lock(lock, key)
    assert (data_lock.metastases["confirmed_by"] == "ct").all()
