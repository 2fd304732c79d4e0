"""One bad-input case per rule of the data-lock contract: the right file, row, column and rule."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from linewise.features import RULES, LockValidationError, load_lock
from tests.lockedit import add_column, append_row, drop_column, read_rows, row_of, set_cell, write_rows


@dataclass(frozen=True)
class Case:
    corrupt: Callable[[Path], None]
    file: str
    row: int | None
    column: str | None
    rule: str
    says: str


def _manifest(change: dict[str, object]) -> Callable[[Path], None]:
    def corrupt(lock: Path) -> None:
        content = json.loads((lock / "manifest.json").read_text())
        for key, value in change.items():
            if value is None:
                content.pop(key)
            else:
                content[key] = value
        (lock / "manifest.json").write_text(json.dumps(content))

    return corrupt


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
        _manifest({"lock_date": None}), "manifest.json", None, "lock_date", "manifest", "no lock_date"
    ),
    "manifest-bad-lock-date": Case(
        _manifest({"lock_date": "31/01/2025"}), "manifest.json", None, "lock_date", "manifest", "YYYY-MM-DD"
    ),
    "manifest-schema-version": Case(
        _manifest({"schema_version": 2}), "manifest.json", None, "schema_version", "manifest", "must be 1"
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
    exercised = {case.rule for case in CASES.values()} | {"lock-folder", "table-unreadable", "patient-file"}
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


def test_missing_folder(tmp_path: Path, key: bytes) -> None:
    with pytest.raises(LockValidationError, match="does not exist"):
        load_lock(tmp_path / "nowhere", key)


def test_unreadable_parquet(lock: Path, key: bytes) -> None:
    (lock / "metastases.csv").unlink()
    (lock / "metastases.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(LockValidationError, match=r"cannot read metastases\.parquet") as caught:
        load_lock(lock, key)
    assert caught.value.violations[0].rule == "table-unreadable"


def test_unreadable_csv_encoding(lock: Path, key: bytes) -> None:
    (lock / "local_therapies.csv").write_bytes(
        "patient_id,date,type,site\nEX-001,2021-09-28,radiothérapie,bone\n".encode("latin-1")
    )
    with pytest.raises(LockValidationError, match=r"cannot read local_therapies\.csv"):
        load_lock(lock, key)


def test_row_with_extra_fields(lock: Path, key: bytes) -> None:
    with (lock / "metastases.csv").open("a") as handle:
        handle.write("EX-001,bone,2020-03-10,extra\n")
    with pytest.raises(LockValidationError, match="row has 4 fields but the header has 3") as caught:
        load_lock(lock, key)
    assert (caught.value.violations[0].file, caught.value.violations[0].row) == ("metastases.csv", 15)


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


# --- inputs found by an adversarial review -------------------------------------------------------------


def _only(err: LockValidationError) -> list[tuple[str, int | None, str | None, str]]:
    return [(v.file, v.row, v.column, v.rule) for v in err.violations]


def _assert_clean(err: LockValidationError, lock: Path) -> None:
    text = str(err) + json.dumps([v.to_dict() for v in err.violations])
    for row in read_rows(lock, "patients")[1]:
        assert row["patient_id"] not in text
    assert "2020-03-15" not in text and "2320-06-30" not in text


def test_trailing_comma_rows_are_reported_not_shifted(lock: Path, key: bytes) -> None:
    path = lock / "performance_status.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], *[line + "," for line in lines[1:]]]) + "\n")
    with pytest.raises(LockValidationError, match="row has 4 fields but the header has 3") as caught:
        load_lock(lock, key)
    assert caught.value.violations[0].row == 1
    _assert_clean(caught.value, lock)


def test_short_row_is_reported(lock: Path, key: bytes) -> None:
    with (lock / "metastases.csv").open("a") as handle:
        handle.write("EX-001,bone\n")
    with pytest.raises(LockValidationError, match="row has 2 fields but the header has 3"):
        load_lock(lock, key)


def test_byte_order_marks_are_accepted(lock: Path, key: bytes) -> None:
    for name in ("patients.csv", "manifest.json"):
        path = lock / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(load_lock(lock, key).patients) == 8


@pytest.mark.parametrize("lock_date", ["9999-12-31", "0001-01-01", "1700-01-31"])
def test_implausible_lock_date(lock: Path, key: bytes, lock_date: str) -> None:
    _manifest({"lock_date": lock_date})(lock)
    with pytest.raises(LockValidationError, match="between 1900 and 2199") as caught:
        load_lock(lock, key)
    assert _only(caught.value) == [("manifest.json", None, "lock_date", "manifest")]


def test_duplicate_manifest_key(lock: Path, key: bytes) -> None:
    text = (lock / "manifest.json").read_text().replace("{", '{"lock_id": "a", ', 1)
    (lock / "manifest.json").write_text(text)
    with pytest.raises(LockValidationError, match="appears more than once"):
        load_lock(lock, key)


def test_blank_first_line(lock: Path, key: bytes) -> None:
    path = lock / "local_therapies.csv"
    path.write_text("\n" + path.read_text())
    with pytest.raises(LockValidationError, match="first line is empty"):
        load_lock(lock, key)


def test_date_year_typo_is_one_clean_violation(lock: Path, key: bytes) -> None:
    set_cell(lock, "lines", 1, "end_date", "2320-06-30")
    with pytest.raises(LockValidationError, match="between 1900 and 2199") as caught:
        load_lock(lock, key)
    assert _only(caught.value) == [("lines.csv", 1, "end_date", "type-date")]
    assert caught.value.violations[0].value == "9999-99-99"
    _assert_clean(caught.value, lock)


def test_invalid_end_date_is_not_also_an_ongoing_line(lock: Path, key: bytes) -> None:
    set_cell(lock, "lines", 1, "end_date", "2022-06-31")
    with pytest.raises(LockValidationError, match=r"lines\.csv row 1, column end_date") as caught:
        load_lock(lock, key)
    assert _only(caught.value) == [("lines.csv", 1, "end_date", "type-date")]


def test_word_for_a_line_number_is_one_violation(lock: Path, key: bytes) -> None:
    set_cell(lock, "lines", 2, "line_number", "two")
    with pytest.raises(LockValidationError, match=r"lines\.csv row 2, column line_number") as caught:
        load_lock(lock, key)
    assert _only(caught.value) == [("lines.csv", 2, "line_number", "type-integer")]


def test_swapped_columns_never_echo_ids_or_dates(lock: Path, key: bytes) -> None:
    header, rows = read_rows(lock, "performance_status")
    rows[0] = {"patient_id": "EX-001", "date": "0", "ecog": "2020-03-15"}
    write_rows(lock, "performance_status", header, rows)
    header, rows = read_rows(lock, "metastases")
    rows[0] = {"patient_id": "bone", "site": "EX-001", "date_detected": "2020-03-10"}
    write_rows(lock, "metastases", header, rows)
    with pytest.raises(LockValidationError, match=r"metastases\.csv row 1, column") as caught:
        load_lock(lock, key)
    _assert_clean(caught.value, lock)
    values = {v.value for v in caught.value.violations}
    assert "<patient_id withheld>" in values and "9999-99-99" in values


@pytest.mark.parametrize("value", ["2+_ISH_pos", "2+ fish pos", "3+"])
def test_her2_positive_in_any_spelling(lock: Path, key: bytes, value: str) -> None:
    set_cell(lock, "patients", 5, "her2_ihc", value)
    with pytest.raises(LockValidationError, match=r"patients\.csv row 5, column her2_ihc") as caught:
        load_lock(lock, key)
    assert _only(caught.value) == [("patients.csv", 5, "her2_ihc", "her2-negative")]


def test_ambiguous_her2_gets_no_negative_suggestion(lock: Path, key: bytes) -> None:
    set_cell(lock, "patients", 5, "her2_ihc", "2+")
    with pytest.raises(LockValidationError, match="expected one of") as caught:
        load_lock(lock, key)
    assert "did you mean" not in caught.value.violations[0].message


def test_no_misleading_drug_suggestion(lock: Path, key: bytes) -> None:
    set_cell(lock, "lines", 19, "drugs", "trastuzumab")
    with pytest.raises(LockValidationError, match=r"lines\.csv row 19, column drugs") as caught:
        load_lock(lock, key)
    assert "deruxtecan" not in caught.value.violations[0].message


def _as_parquet(lock: Path, table: str, frame: pd.DataFrame) -> None:
    (lock / f"{table}.csv").unlink()
    frame.to_parquet(lock / f"{table}.parquet")


def test_parquet_unsigned_overflow_is_a_range_violation(lock: Path, key: bytes) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = pd.read_csv(lock / "performance_status.csv", dtype=str)
    ecog = pa.array([2**64 - 1] + [int(v) for v in frame["ecog"][1:]], type=pa.uint64())
    table = pa.table({"patient_id": frame["patient_id"], "date": frame["date"], "ecog": ecog})
    (lock / "performance_status.csv").unlink()
    pq.write_table(table, lock / "performance_status.parquet")
    with pytest.raises(LockValidationError, match=r"performance_status\.parquet row 1, column") as caught:
        load_lock(lock, key)
    assert _only(caught.value) == [("performance_status.parquet", 1, "ecog", "range")]


def test_parquet_far_future_date_is_a_clean_date_violation(lock: Path, key: bytes) -> None:
    import datetime as dt

    frame = pd.read_csv(lock / "lines.csv", dtype=str, keep_default_na=False)
    typed = frame.assign(
        start_date=[dt.date.fromisoformat(v) for v in frame["start_date"]],
        end_date=[dt.date.fromisoformat(v) if v else None for v in frame["end_date"]],
    )
    typed.loc[0, "end_date"] = dt.date(2320, 6, 30)
    _as_parquet(lock, "lines", typed)
    with pytest.raises(LockValidationError, match=r"lines\.parquet row 1, column end_date") as caught:
        load_lock(lock, key)
    assert _only(caught.value) == [("lines.parquet", 1, "end_date", "type-date")]
    _assert_clean(caught.value, lock)
