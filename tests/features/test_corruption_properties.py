"""Property-based: random corruption of a good lock is always reported and never crashes the loader."""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linewise.features import LockValidationError, LockWarning, example_lock_path, load_lock
from linewise.features.schema import TABLES, Kind
from tests.conftest import TEST_KEY
from tests.lockedit import read_rows, set_cell

KEY = TEST_KEY.encode()
ROW_COUNTS = {spec.name: len(read_rows(example_lock_path(), spec.name)[1]) for spec in TABLES}
RAW_IDS = {row["patient_id"] for row in read_rows(example_lock_path(), "patients")[1]}
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@contextmanager
def fresh_lock() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "lock"
        shutil.copytree(example_lock_path(), target)
        yield target


@st.composite
def places(
    draw: st.DrawFn, kinds: set[Kind] | None = None, required_only: bool = False
) -> tuple[str, int, str, Kind]:
    specs = [
        (table.name, column.name, column.kind)
        for table in TABLES
        for column in table.columns
        if (kinds is None or column.kind in kinds) and (column.required or not required_only)
    ]
    table, column, kind = draw(st.sampled_from(specs))
    row = draw(st.integers(min_value=1, max_value=ROW_COUNTS[table]))
    return table, row, column, kind


cell_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=30
)


def _reported_at(err: LockValidationError, table: str, row: int, column: str) -> bool:
    return any(v.file == f"{table}.csv" and v.row == row and v.column == column for v in err.violations)


def _assert_reported(table: str, row: int, column: str, value: str) -> LockValidationError:
    """Write ``value`` into a fresh lock and check the loader reports that very cell."""
    with fresh_lock() as lock:
        set_cell(lock, table, row, column, value)
        try:
            load_lock(lock, KEY)
        except LockValidationError as err:
            assert _reported_at(err, table, row, column), str(err)
            _assert_no_raw_ids(err)
            return err
    raise AssertionError(f"{table}.{column} row {row} = {value!r} was accepted")


def _assert_no_raw_ids(err: LockValidationError) -> None:
    text = str(err)
    assert not any(raw_id in text for raw_id in RAW_IDS)


@SETTINGS
@given(place=places(), value=cell_text)
def test_any_cell_value_loads_or_is_reported_never_crashes(
    place: tuple[str, int, str, Kind], value: str
) -> None:
    table, row, column, _ = place
    with fresh_lock() as lock:
        set_cell(lock, table, row, column, value)
        try:
            load_lock(lock, KEY)
        except LockValidationError as err:
            assert err.violations
            assert all(v.row is None or v.row >= 1 for v in err.violations)
            _assert_no_raw_ids(err)


@SETTINGS
@given(place=places(required_only=True), blank=st.sampled_from(["", " ", "   "]))
def test_blanked_required_cell_is_always_reported(place: tuple[str, int, str, Kind], blank: str) -> None:
    table, row, column, _ = place
    _assert_reported(table, row, column, blank)


@SETTINGS
@given(
    place=places(kinds={Kind.NUMBER, Kind.INTEGER}), text=st.text(alphabet="abcxyz%", min_size=1, max_size=8)
)
def test_text_in_a_number_column_is_always_reported(place: tuple[str, int, str, Kind], text: str) -> None:
    table, row, column, _ = place
    _assert_reported(table, row, column, text)


@SETTINGS
@given(place=places(kinds={Kind.NUMBER, Kind.INTEGER}), excess=st.integers(min_value=1, max_value=10_000))
def test_out_of_range_numbers_are_always_reported(place: tuple[str, int, str, Kind], excess: int) -> None:
    table, row, column, _ = place
    from linewise.features.schema import TABLES_BY_NAME

    spec = TABLES_BY_NAME[table].column(column)
    assert spec.high is not None
    _assert_reported(table, row, column, str(int(spec.high) + excess))


@SETTINGS
@given(place=places(kinds={Kind.DATE}, required_only=True), days=st.integers(min_value=1, max_value=3650))
def test_dates_after_the_lock_date_are_always_reported(place: tuple[str, int, str, Kind], days: int) -> None:
    import datetime as dt

    table, row, column, _ = place
    value = (dt.date(2025, 1, 31) + dt.timedelta(days=days)).isoformat()
    err = _assert_reported(table, row, column, value)
    assert value not in str(err)  # dates are never echoed


@SETTINGS
@given(
    place=places(kinds={Kind.CODE, Kind.DRUGS}, required_only=True),
    text=st.text(alphabet="qjkzw_", min_size=1, max_size=12),
)
def test_unknown_codes_are_always_reported(place: tuple[str, int, str, Kind], text: str) -> None:
    table, row, column, _ = place
    _assert_reported(table, row, column, text)


@SETTINGS
@given(table=st.sampled_from([spec.name for spec in TABLES]), keep=st.integers(min_value=0, max_value=400))
def test_truncated_files_never_crash(table: str, keep: int) -> None:
    with fresh_lock() as lock:
        path = lock / f"{table}.csv"
        path.write_bytes(path.read_bytes()[:keep])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LockWarning)  # a cut header may leave an unknown column name
                load_lock(lock, KEY)
        except LockValidationError as err:
            _assert_no_raw_ids(err)
