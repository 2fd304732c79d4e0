"""Cell-level rules: required cells, types, ranges and codes, one column at a time (vectorised).

Each check parses a text column into typed values (missing or invalid cells become NA) and
returns a violation for every invalid cell. Later checks use the typed values only, so a cell
that failed here is never reported twice.

Columns are numpy arrays: text as objects (None where missing), numbers as float64 (NaN), dates as
``datetime64[D]`` (NaT). Numpy calls cost a microsecond where a pandas call costs tens, which is what
one patient's history, checked through these same rules, needs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.extensions import ExtensionArray

from linewise.features import vocabulary as voc
from linewise.features.errors import PATIENT_ID_MAX, SHOWN_PER_RULE, Omitted, Violation, shown_value
from linewise.features.reader import RawTable
from linewise.features.schema import ColumnSpec, Kind

_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
#: Dates outside these years are typing errors (and outside what pandas can hold).
FIRST_YEAR, LAST_YEAR = 1900, 2199
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})
_NAT = np.datetime64("NaT", "D")
_HER2_POSITIVE = "HER2-positive disease is outside the population"

Parsed = tuple[np.ndarray, list[Violation]]
#: A parser gets the column as read (its text engine), which cells are filled, and where it is.
Parser = Callable[[pd.Series, np.ndarray, "_Where"], Parsed]


#: A column's text: objects, or the column as read (an Arrow-backed array), indexed by row.
Cells: TypeAlias = np.ndarray | ExtensionArray
#: A violation's message: the same for every cell, or built from the row (only for the violations shown).
Message = str | Callable[[int], str]


@dataclass(frozen=True)
class _Where:
    """Where a column lives, to build violations; past the bound of a rule it only counts them."""

    file: str
    table: str
    column: ColumnSpec
    counts: dict[str, int] = field(default_factory=dict)

    def violations(self, rows: np.ndarray, cells: Cells, rule: str, message: Message) -> list[Violation]:
        """Count a violation of ``rule`` at each of ``rows``; build the ones still under the bound.

        Parameters
        ----------
        rows : ndarray of int
            The 0-based rows that break the rule, in file order.
        cells : ndarray of object or ExtensionArray
            The column's text, indexed by row.
        rule : str
            The rule broken.
        message : str or callable
            The message, or a function of the 0-based row that builds it: called only for the
            violations built, so a million bad cells cost a count, not a million messages.

        Returns
        -------
        list of Violation
            At most :data:`SHOWN_PER_RULE` violations of ``rule`` over all calls for this column.
        """
        return [self.build(i, cells[i], rule, message) for i in rows[: self.room(rule, len(rows))]]

    def room(self, rule: str, count: int) -> int:
        """Count ``count`` more violations of ``rule``; return how many of them are still to be built."""
        before = self.counts.get(rule, 0)
        self.counts[rule] = before + count
        return min(max(SHOWN_PER_RULE - before, 0), count)

    def build(self, row_index: int | np.integer, raw: str, rule: str, message: Message) -> Violation:
        """Build one violation (already counted by :meth:`room`) at a 0-based row."""
        value = shown_value(
            raw,
            is_patient_id=self.column.kind is Kind.PATIENT_ID,
            is_date=self.column.kind is Kind.DATE,
        )
        text = message if isinstance(message, str) else message(int(row_index))
        return Violation(self.file, self.table, int(row_index) + 1, self.column.name, value, rule, text)


def parse_table(
    raw: RawTable,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[Violation], list[Omitted]]:
    """Parse and check every declared column of one table.

    Parameters
    ----------
    raw : RawTable
        The table as text.

    Returns
    -------
    columns : dict of str to ndarray
        Declared columns as typed values (see the module docstring; missing or invalid cells are
        None, NaN or NaT), then undeclared columns as text, in file row order (entry ``i`` is file
        row ``i + 1``). A declared column absent from the file is all missing.
    invalid : dict of str to ndarray of bool
        For each declared column, the cells that broke a rule here (a required cell left empty,
        or a filled cell that failed its check): rules across rows skip them.
    violations : list of Violation
        One per missing required column and per invalid cell, up to :data:`SHOWN_PER_RULE` per
        column and rule (enough for :func:`linewise.features.errors.bound_violations` to keep the
        first of each file and rule).
    omitted : list of Omitted
        How many more of each rule were counted and not kept, per file and rule.
    """
    text = raw.frame
    rows = len(text)
    violations: list[Violation] = []
    dropped: dict[str, int] = {}
    parsed: dict[str, np.ndarray] = {}
    invalid: dict[str, np.ndarray] = {}
    for spec in raw.spec.columns:
        if spec.name not in text.columns:
            if spec.required:
                violations.append(
                    Violation(
                        raw.file,
                        raw.spec.name,
                        None,
                        spec.name,
                        None,
                        "column-missing",
                        f"required column {spec.name} is missing",
                    )
                )
            parsed[spec.name] = missing_values(spec.kind, rows)
            invalid[spec.name] = np.zeros(rows, dtype=bool)
            continue
        where = _Where(raw.file, raw.spec.name, spec)
        source = text[spec.name]
        filled = np.asarray(source.ne("").to_numpy(dtype=bool))
        if spec.required:
            violations += where.violations(
                np.flatnonzero(~filled), source.array, "value-missing", "required value is empty"
            )
        if spec.kind is Kind.DATE:  # parsed from the column as read: no string object per cell
            values, found = _parse_date(source, filled, where)
        elif spec.kind is Kind.MARKER_VALUE:
            marker = _text(text, "marker") if "marker" in text.columns else np.full(rows, "", dtype=object)
            values, found = _parse_marker_value(_cells(source), filled, marker, where)
        else:
            values, found = _PARSERS[spec.kind](source, filled, where)
        parsed[spec.name] = values
        invalid[spec.name] = (filled & _is_missing(values)) | (spec.required & ~filled)
        violations.extend(found)
        for rule, count in where.counts.items():
            if count > SHOWN_PER_RULE:
                dropped[rule] = dropped.get(rule, 0) + count - SHOWN_PER_RULE
    position = {name: index for index, name in enumerate(raw.spec.column_names)}
    for name in text.columns:
        if name not in position:
            parsed[name] = _text(text, name)
    violations.sort(key=lambda v: (v.row or 0, position[v.column] if v.column else -1))
    return parsed, invalid, violations, [Omitted(raw.file, rule, count) for rule, count in dropped.items()]


def missing_values(kind: Kind, rows: int) -> np.ndarray:
    """Return a column of ``rows`` missing values of ``kind`` (NaN, NaT or None).

    Parameters
    ----------
    kind : Kind
        The column's kind.
    rows : int
        Its length.

    Returns
    -------
    ndarray
        float64 for numbers, ``datetime64[D]`` for dates, objects otherwise.
    """
    if kind in (Kind.NUMBER, Kind.INTEGER):
        return np.full(rows, np.nan)
    if kind is Kind.DATE:
        return np.full(rows, _NAT)
    return np.full(rows, None, dtype=object)


def _text(frame: pd.DataFrame, name: str) -> np.ndarray:
    return _cells(frame[name])


def _cells(source: pd.Series) -> np.ndarray:
    """Return the column's text as objects, one Python string per distinct cell (not one per row).

    A column read by Arrow would otherwise get a new string per row; a patient file's column (objects
    already) is returned as it is, without the cost of factorising it.
    """
    if not isinstance(source.dtype, pd.ArrowDtype):
        return source.to_numpy(dtype=object)
    inverse, distinct = pd.factorize(source, use_na_sentinel=False)
    return np.asarray(distinct, dtype=object)[inverse]


def _is_missing(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "M":
        return np.isnat(values)
    return pd.isna(values)


def _member(values: np.ndarray, codes: frozenset[str]) -> np.ndarray:
    """Elementwise ``value in codes`` for an object array."""
    return np.fromiter(map(codes.__contains__, values), dtype=bool, count=len(values))


def _kept(column: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Return the cells where ``keep`` is true, None elsewhere."""
    kept = np.full(len(column), None, dtype=object)
    kept[keep] = column[keep]
    return kept


def _parse_text(source: pd.Series, filled: np.ndarray, where: _Where) -> Parsed:
    column = _cells(source)
    return _kept(column, filled), []


def _parse_patient_id(source: pd.Series, filled: np.ndarray, where: _Where) -> Parsed:
    column = _cells(source)
    values = _kept(column, filled)
    lengths = source.str.len().to_numpy(dtype="int64", na_value=0)  # vectorised: every row of every table
    too_long = np.flatnonzero(filled & (lengths > PATIENT_ID_MAX))
    message = f"a patient_id is at most {PATIENT_ID_MAX} characters"
    violations = where.violations(too_long, column, "patient-id", message)
    values[too_long] = None
    return values, violations


def _parse_number(source: pd.Series, filled: np.ndarray, where: _Where) -> Parsed:
    column = _cells(source)
    numbers = np.asarray(pd.to_numeric(_kept(column, filled), errors="coerce"), dtype="float64")
    not_number = filled & ~np.isfinite(numbers)
    integer = where.column.kind is Kind.INTEGER
    rule, expected = (
        ("type-integer", "expected a whole number") if integer else ("type-number", "expected a number")
    )
    violations = where.violations(np.flatnonzero(not_number), column, rule, expected)
    numbers[not_number] = np.nan
    if integer:
        fractional = ~np.isnan(numbers) & (numbers % 1 != 0)
        violations += where.violations(
            np.flatnonzero(fractional), column, "type-integer", "expected a whole number"
        )
        numbers[fractional] = np.nan
    low, high = where.column.low, where.column.high
    if low is not None and high is not None:
        outside = ~np.isnan(numbers) & ((numbers < low) | (numbers > high))
        violations += where.violations(
            np.flatnonzero(outside), column, "range", f"expected a value from {low:g} to {high:g}"
        )
        numbers[outside] = np.nan
    return numbers, violations


def _parse_date(source: pd.Series, filled: np.ndarray, where: _Where) -> Parsed:
    if isinstance(source.dtype, pd.ArrowDtype):
        dates = _iso_dates_arrow(source)
    else:
        dates = _iso_dates(source.to_numpy(dtype=object), filled)
    if dates is not None:
        return dates, []
    return _parse_date_cells(source, where)


def _iso_dates_arrow(source: pd.Series) -> np.ndarray | None:
    """:func:`_iso_dates` for a column read by Arrow (a lock's table), without a string object per cell."""
    text = pa.array(source.array)
    filled = pc.not_equal(text, "")
    cells = pc.if_else(filled, text, pa.scalar(None, pa.string()))
    parsed = pc.strptime(cells, format="%Y-%m-%d", unit="s", error_is_null=True)
    years = pc.year(parsed)
    valid = pc.and_(
        pc.equal(pc.strftime(parsed, format="%Y-%m-%d"), cells),  # exactly YYYY-MM-DD, a day that exists
        pc.and_(pc.greater_equal(years, FIRST_YEAR), pc.less_equal(years, LAST_YEAR)),
    )
    if (pc.sum(valid).as_py() or 0) != (pc.sum(filled).as_py() or 0):
        return None
    return np.asarray(pc.cast(parsed, pa.date32()).to_numpy(zero_copy_only=False), dtype="datetime64[D]")


def _iso_dates(column: np.ndarray, filled: np.ndarray) -> np.ndarray | None:
    """Parse a column whose filled cells are all ISO dates in range; None when any cell is not."""
    cells = column[filled]
    try:
        parsed = cells.astype("datetime64[D]")
    except (ValueError, TypeError, OverflowError):
        return None
    years = parsed.astype("datetime64[Y]").astype(np.int64) + 1970
    canonical = np.datetime_as_string(parsed, unit="D").astype(object)
    if (
        np.isnat(parsed).any()
        or not np.array_equal(canonical, cells)  # exactly YYYY-MM-DD: no sign, time or short form
        or (years < FIRST_YEAR).any()
        or (years > LAST_YEAR).any()
    ):
        return None
    dates = np.full(len(column), _NAT)
    dates[filled] = parsed
    return dates


def _parse_date_cells(column: pd.Series, where: _Where) -> Parsed:
    """Apply the date rules to the column as read, when a cell is not a plain ISO date in range.

    The column keeps the text engine it was read with (Arrow for a lock, Python for a patient file),
    which decides how a digit in another script is read.
    """
    column = column.reset_index(drop=True)
    filled = column != ""
    shaped = filled & column.str.match(_DATE_PATTERN)
    year = pd.to_numeric(column.str.slice(0, 4).where(shaped, None), errors="coerce")
    plausible = shaped & year.between(FIRST_YEAR, LAST_YEAR)
    dates = pd.to_datetime(column.where(plausible, None), format="%Y-%m-%d", errors="coerce")
    out_of_years = (shaped & ~plausible).to_numpy(dtype=bool)

    def message(row: int) -> str:
        if out_of_years[row]:
            return f"expected a date between {FIRST_YEAR} and {LAST_YEAR}"
        return "expected a date YYYY-MM-DD that exists"

    bad = np.flatnonzero((filled & dates.isna()).to_numpy(dtype=bool))
    violations = where.violations(bad, column.array, "type-date", message)
    return dates.to_numpy(dtype="datetime64[D]"), violations


def _parse_boolean(source: pd.Series, filled: np.ndarray, where: _Where) -> Parsed:
    column = _cells(source)
    lowered = np.array([cell.lower() for cell in column], dtype=object)
    true, false = _member(lowered, _TRUE), _member(lowered, _FALSE)
    values = _kept(true, true | false)
    bad = filled & ~true & ~false
    return values, where.violations(np.flatnonzero(bad), column, "type-boolean", "expected true/false or 1/0")


def _code_message(value: str, codes: frozenset[str], noun: str = "code") -> str:
    suggestion = None if codes == voc.HER2_IHC else voc.closest_code(value, codes)
    hint = f"; did you mean {suggestion!r}?" if suggestion else ""
    if len(codes) <= 12:
        return f"unknown {noun} {value!r}: expected one of {', '.join(sorted(codes))}{hint}"
    return f"unknown {noun} {value!r}{hint}"


def _parse_code(source: pd.Series, filled: np.ndarray, where: _Where) -> Parsed:
    codes = where.column.codes or frozenset()
    known = _known_codes(source, codes)
    rows = np.flatnonzero(filled & ~known)
    cells = source.array  # the text of the (few) violations shown, without a string per row
    if where.column.name == "her2_ihc":
        positive = _holds(np.asarray(cells[rows], dtype=object), voc.is_her2_positive)
    else:
        positive = np.zeros(len(rows), dtype=bool)
    violations = where.violations(rows[positive], cells, "her2-negative", _HER2_POSITIVE)
    violations += where.violations(
        rows[~positive], cells, "code", lambda row: _code_message(cells[row], codes)
    )
    keep = filled & known
    return _kept(_cells(source.where(keep, "")), keep), violations


def _known_codes(source: pd.Series, codes: frozenset[str]) -> np.ndarray:
    """Elementwise ``cell in codes``: in Arrow for a column read by Arrow, no string object per cell."""
    if isinstance(source.dtype, pd.ArrowDtype):
        member = pc.is_in(pa.array(source.array), value_set=pa.array(sorted(codes), pa.string()))
        return np.asarray(member.to_numpy(zero_copy_only=False), dtype=bool)
    return _member(source.to_numpy(dtype=object), codes)


def _holds(cells: np.ndarray, predicate: Callable[[str], bool]) -> np.ndarray:
    """``predicate(cell)`` for each cell, computed once per distinct cell."""
    inverse, distinct = pd.factorize(cells)
    return np.array([predicate(cell) for cell in distinct], dtype=bool)[inverse]


def _parse_code_list(source: pd.Series, filled: np.ndarray, where: _Where) -> Parsed:
    column = _cells(source)
    codes = where.column.codes or frozenset()
    rule, noun = ("drug-code", "drug code") if where.column.kind is Kind.DRUGS else ("code", "code")
    # each distinct list is checked once: a lock repeats the same few regimens many times
    rows = np.flatnonzero(filled)
    inverse, distinct = pd.factorize(column[rows])
    unknown = [[part for part in _parts(cell) if part not in codes] for cell in distinct]
    per_list = np.array([len(parts) for parts in unknown], dtype=np.int64)
    known = (per_list == 0)[inverse]
    bad_rows, bad_lists = rows[~known], inverse[~known]
    each_part = ((i, part) for i, which in zip(bad_rows, bad_lists, strict=True) for part in unknown[which])
    shown = itertools.islice(each_part, where.room(rule, int(per_list[bad_lists].sum())))
    violations = [where.build(i, column[i], rule, _code_message(part, codes, noun)) for i, part in shown]
    values = np.full(len(column), None, dtype=object)
    values[rows[known]] = _normalised(np.asarray(distinct, dtype=object), source.dtype)[inverse[known]]
    return values, violations


def _parts(cell: str) -> list[str]:
    return [part.strip() for part in cell.split("+")]


def _normalised(lists: np.ndarray, dtype: object) -> np.ndarray:
    """Remove the spaces around each ``+``, with the text engine the column was read with."""
    spaced = [any(part != part.strip() for part in cell.split("+")) for cell in lists]
    if not any(spaced):
        return lists
    replaced = pd.Series(lists, dtype=dtype).str.replace(r"\s*\+\s*", "+", regex=True)
    return np.asarray(replaced.to_numpy(dtype=object))


def _parse_marker_value(column: np.ndarray, filled: np.ndarray, marker: np.ndarray, where: _Where) -> Parsed:
    genomic = filled & _member(marker, voc.GENOMIC_MARKERS)
    percent = filled & _member(marker, voc.PERCENT_MARKERS)
    her2 = filled & _member(marker, voc.HER2_MARKERS)
    numbers = np.asarray(pd.to_numeric(_kept(column, percent), errors="coerce"), dtype="float64")
    bad_genomic = genomic & ~_member(column, voc.GENOMIC_VALUES)
    bad_percent = percent & ~((numbers >= 0.0) & (numbers <= 100.0))
    bad_her2 = her2 & ~_member(column, voc.HER2_IHC)
    violations = where.violations(
        np.flatnonzero(bad_genomic),
        column,
        "code",
        lambda row: _code_message(column[row], voc.GENOMIC_VALUES, f"{marker[row]} result"),
    )
    violations += where.violations(
        np.flatnonzero(bad_percent),
        column,
        "range",
        lambda row: f"a {marker[row]} result is a percentage from 0 to 100",
    )
    her2_rows = np.flatnonzero(bad_her2)
    positive = _holds(column[her2_rows], voc.is_her2_positive)
    violations += where.violations(her2_rows[positive], column, "her2-negative", _HER2_POSITIVE)
    violations += where.violations(
        her2_rows[~positive],
        column,
        "code",
        lambda row: _code_message(column[row], voc.HER2_IHC, "HER2 result"),
    )
    valid = (genomic | percent | her2) & ~(bad_genomic | bad_percent | bad_her2)
    return _kept(column, valid), violations


_PARSERS: dict[Kind, Parser] = {
    Kind.PATIENT_ID: _parse_patient_id,
    Kind.TEXT: _parse_text,
    Kind.CODE: _parse_code,
    Kind.CODE_LIST: _parse_code_list,
    Kind.DRUGS: _parse_code_list,
    Kind.NUMBER: _parse_number,
    Kind.INTEGER: _parse_number,
    Kind.BOOLEAN: _parse_boolean,
}
