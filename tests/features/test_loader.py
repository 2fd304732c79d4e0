"""The loader on good locks: typed frames, day offsets, pseudonyms, and no raw identifier or date."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from linewise.features import DataLock, load_lock
from linewise.features.schema import TABLES
from tests.lockedit import read_rows

# Hand-computed from the example lock's CSV files (calendar arithmetic done independently of the loader).
EXPECTED_DAYS = {
    # (table, raw patient id, column in file, value in file): day offset from metastatic diagnosis
    ("lines", "EX-001", "start_date", "2020-03-20"): 10,  # dx 2020-03-10
    ("lines", "EX-001", "end_date", "2022-06-30"): 842,
    ("progressions", "EX-001", "date", "2021-09-14"): 553,
    ("progressions", "EX-008", "date", "2022-11-15"): 1324,  # dx 2019-04-01
    ("patients", "EX-003", "death_date", "2023-08-19"): 929,  # dx 2021-02-01
    ("biomarkers", "EX-003", "date", "2021-02-03"): 2,
}


def _raw_ids(lock: Path) -> set[str]:
    return {row["patient_id"] for row in read_rows(lock, "patients")[1]}


def _raw_dates(lock: Path) -> set[str]:
    dates = set()
    for spec in TABLES:
        _, rows = read_rows(lock, spec.name)
        for row in rows:
            dates |= {
                value for value in row.values() if len(value) == 10 and value[4] == "-" and value[7] == "-"
            }
    return dates


def test_example_lock_loads_with_expected_counts(lock: Path, key: bytes) -> None:
    data_lock = load_lock(lock, key)
    summary = data_lock.summary()
    assert summary["lock_id"] == "example-2025-01"
    assert summary["lock_date"] == "2025-01-31"
    assert (summary["patients"], summary["centres"], summary["deaths"]) == (8, 3, 2)
    assert (summary["lines"], summary["progressions"]) == (19, 14)
    assert summary["rows"]["performance_status"] == 15


@pytest.mark.parametrize(
    ("where", "expected"), EXPECTED_DAYS.items(), ids=[f"{k[0]}-{k[2]}-{k[1]}" for k in EXPECTED_DAYS]
)
def test_dates_become_days_from_metastatic_diagnosis(
    where: tuple[str, str, str, str], expected: int, lock: Path, key: bytes
) -> None:
    table, raw_id, column, value = where
    _, rows = read_rows(lock, table)
    source_row = next(
        i for i, row in enumerate(rows, start=1) if row["patient_id"] == raw_id and row[column] == value
    )
    frame = load_lock(lock, key).table(table)
    day_column = {"date": "day"}.get(column, column.removesuffix("_date") + "_day")
    assert frame.loc[frame["source_row"] == source_row, day_column].item() == expected


def test_lock_day_and_year(lock: Path, key: bytes) -> None:
    patients = load_lock(lock, key).patients
    first = patients.loc[patients["source_row"] == 1]
    assert first["lock_day"].item() == (dt.date(2025, 1, 31) - dt.date(2020, 3, 10)).days
    assert first["metastatic_dx_year"].item() == 2020
    assert "metastatic_dx_date" not in patients.columns


def test_types(lock: Path, key: bytes) -> None:
    data_lock = load_lock(lock, key)
    assert str(data_lock.patients["de_novo"].dtype) == "boolean"
    assert data_lock.patients["de_novo"].tolist() == [False, True, False, False, False, True, False, False]
    assert str(data_lock.lines["line_number"].dtype) == "Int64"
    assert data_lock.lines["end_day"].isna().sum() == 6  # six ongoing lines
    assert str(data_lock.patients["er_percent"].dtype) == "Float64"
    assert data_lock.patients["ki67_percent"].isna().sum() == 1


def test_pseudonym_is_documented_hmac(lock: Path, key: bytes) -> None:
    # openssl: printf 'EX-001' | openssl dgst -sha256 -hmac 'test-key-0123456789abcdef'
    patients = load_lock(lock, key).patients
    assert patients.loc[patients["source_row"] == 1, "patient_key"].item() == "26d9dbefab241a66"


def _every_cell(data_lock: DataLock) -> set[str]:
    cells: set[str] = set()
    for spec in TABLES:
        frame = data_lock.table(spec.name)
        cells |= {str(value) for value in frame.to_numpy().ravel()}
        cells |= set(map(str, frame.columns)) | {str(i) for i in frame.index}
    return cells


def test_no_raw_identifier_or_date_in_what_the_loader_returns(lock: Path, key: bytes) -> None:
    data_lock = load_lock(lock, key)
    cells = _every_cell(data_lock)
    text = " ".join(cells) + repr(data_lock) + json.dumps(data_lock.summary())
    for raw_id in _raw_ids(lock):
        assert raw_id not in text
    leaked_dates = {date for date in _raw_dates(lock) if date in text and date != "2025-01-31"}
    assert not leaked_dates  # only the manifest's lock date, which is not patient data


def test_parquet_lock_equals_csv_lock(lock: Path, tmp_path: Path, key: bytes) -> None:
    parquet = tmp_path / "parquet"
    parquet.mkdir()
    (parquet / "manifest.json").write_text((lock / "manifest.json").read_text())
    for spec in TABLES:
        frame = pd.read_csv(lock / f"{spec.name}.csv", dtype=str, keep_default_na=False)
        typed = frame.copy()
        for column in typed.columns:
            if column.endswith("date") or column == "date_detected":
                typed[column] = pd.to_datetime(typed[column].replace("", None)).dt.date
            elif column in {"line_number", "ecog", "grade"}:
                typed[column] = pd.to_numeric(typed[column].replace("", None)).astype("Int64")
            elif column == "de_novo":
                typed[column] = typed[column].str.lower().isin(["true", "1"])
            elif column.endswith("percent") or column.startswith("age"):
                typed[column] = pd.to_numeric(typed[column].replace("", None))
        typed.to_parquet(parquet / f"{spec.name}.parquet")
    from_csv, from_parquet = load_lock(lock, key), load_lock(parquet, key)
    for spec in TABLES:
        pd.testing.assert_frame_equal(
            from_csv.table(spec.name), from_parquet.table(spec.name), check_dtype=True
        )


def test_loader_does_not_write_into_the_lock(lock: Path, key: bytes) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in lock.iterdir()}
    load_lock(lock, key)
    assert {p.name: p.stat().st_mtime_ns for p in lock.iterdir()} == before
