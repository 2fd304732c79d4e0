"""Malformed lock files, and inputs found by an adversarial review: each is reported as the right
violation, once, and no report echoes a patient's identifier or a date.

The catalogue of one case per rule is in ``test_rules.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from linewise.features import LockValidationError, load_lock
from tests.features.manifest_edit import change_manifest
from tests.lockedit import read_rows, set_cell, write_rows


def test_missing_folder(tmp_path: Path, key: bytes) -> None:
    with pytest.raises(LockValidationError, match="does not exist"):
        load_lock(tmp_path / "nowhere", key)


def test_unreadable_parquet(lock: Path, key: bytes) -> None:
    (lock / "metastases.csv").unlink()
    (lock / "metastases.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(LockValidationError, match=r"cannot read metastases\.parquet") as caught:
        load_lock(lock, key)
    assert caught.value.violations[0].rule == "table-unreadable"


def test_unreadable_csv_encoding_names_the_row_and_column(lock: Path, key: bytes) -> None:
    (lock / "local_therapies.csv").write_bytes(
        "patient_id,date,type,site\nEX-001,2021-09-28,radiotherapy,bone\nEX-001,2021-09-29,radiothérapie,bone\n".encode(
            "latin-1"
        )
    )
    with pytest.raises(
        LockValidationError, match=r"local_therapies\.csv row 2, column type: the cell is not UTF-8"
    ) as caught:
        load_lock(lock, key)
    assert _only(caught.value) == [("local_therapies.csv", 2, "type", "table-unreadable")]
    assert "radioth" not in str(caught.value)


def test_a_latin1_header_is_named_as_the_header(lock: Path, key: bytes) -> None:
    (lock / "local_therapies.csv").write_bytes("patient_id,dâte,type,site\n".encode("latin-1"))
    with pytest.raises(LockValidationError, match=r"the header of local_therapies\.csv is not UTF-8"):
        load_lock(lock, key)


def test_an_over_long_cell_in_a_malformed_file_names_its_row(lock: Path, key: bytes) -> None:
    with (lock / "metastases.csv").open("a", encoding="utf-8") as handle:
        handle.write("EX-001,bone,2020-03-10\n")
        handle.write('EX-001,"' + "b" * 200_000 + '",2020-03-10\n')
        handle.write("EX-001,bone,2020-03-10,extra\n")  # malformed: the csv module reads the file
    with pytest.raises(
        LockValidationError, match=r"metastases\.csv row 16: cannot read the row: field larger"
    ) as caught:
        load_lock(lock, key)
    assert _only(caught.value) == [("metastases.csv", 16, None, "table-unreadable")]


def test_row_with_extra_fields(lock: Path, key: bytes) -> None:
    with (lock / "metastases.csv").open("a") as handle:
        handle.write("EX-001,bone,2020-03-10,extra\n")
    with pytest.raises(LockValidationError, match="row has 4 fields but the header has 3") as caught:
        load_lock(lock, key)
    assert (caught.value.violations[0].file, caught.value.violations[0].row) == ("metastases.csv", 15)


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
    change_manifest({"lock_date": lock_date})(lock)
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


def test_the_lock_date_may_be_the_day_of_reading_but_not_later(lock: Path, key: bytes) -> None:
    import datetime as dt

    change_manifest({"lock_date": "2026-03-01"})(lock)
    assert load_lock(lock, key, today=dt.date(2026, 3, 1)).manifest.lock_date == dt.date(2026, 3, 1)
    with pytest.raises(
        LockValidationError, match=r"lock_date is not after the day the lock is read"
    ) as caught:
        load_lock(lock, key, today=dt.date(2026, 2, 28))
    assert _only(caught.value) == [("manifest.json", None, "lock_date", "lock-date")]
    assert caught.value.violations[0].value == "9999-99-99"


def test_duplicate_parquet_columns_are_a_header_violation(lock: Path, key: bytes) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = pd.read_csv(lock / "performance_status.csv", dtype=str)
    columns = [pa.array(frame[name]) for name in ("patient_id", "date", "ecog", "ecog")]
    (lock / "performance_status.csv").unlink()
    pq.write_table(
        pa.table(columns, names=["patient_id", "date", "ecog", "ecog"]), lock / "performance_status.parquet"
    )
    with pytest.raises(LockValidationError, match=r"column 'ecog' appears 2 times") as caught:
        load_lock(lock, key)
    assert _only(caught.value) == [("performance_status.parquet", None, "ecog", "column-duplicate")]
    assert "Arrow" not in str(caught.value)


@pytest.mark.parametrize("name", ["metastases.csv", "manifest.json"])
def test_a_link_to_a_file_outside_the_lock_is_refused(
    lock: Path, key: bytes, tmp_path: Path, name: str
) -> None:
    outside = tmp_path / "elsewhere" / name
    outside.parent.mkdir()
    outside.write_bytes((lock / name).read_bytes())
    (lock / name).unlink()
    (lock / name).symlink_to(outside)
    with pytest.raises(
        LockValidationError, match=rf"{name} is a link to a file outside the lock folder"
    ) as caught:
        load_lock(lock, key)
    assert [violation.rule for violation in caught.value.violations] == ["outside-lock"]
    assert str(tmp_path) not in str(caught.value)


def test_a_link_inside_the_lock_folder_is_read(lock: Path, key: bytes) -> None:
    (lock / "sources").mkdir()
    (lock / "metastases.csv").rename(lock / "sources" / "metastases.csv")
    (lock / "metastases.csv").symlink_to(Path("sources") / "metastases.csv")
    assert len(load_lock(lock, key).metastases) > 0
