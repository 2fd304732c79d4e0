"""A raw patient identifier never appears in a violation, wherever in a cell it was typed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from linewise.cli import app
from linewise.features import LockValidationError, load_lock
from linewise.features.errors import IdentifierMask
from tests.lockedit import read_rows, set_cell

WITHHELD = "<patient_id withheld>"


def _ids(lock: Path) -> list[str]:
    return [row["patient_id"] for row in read_rows(lock, "patients")[1]]


def _validate(lock: Path, *extra: str) -> str:
    result = CliRunner().invoke(app, ["validate", str(lock), *extra])
    assert result.exit_code == 2, result.output
    return result.output


@pytest.mark.parametrize(
    ("table", "row", "column", "written"),
    [
        ("patients", 2, "menopausal_status", "post ({id})"),  # the review's reproduction
        ("lines", 1, "drugs", "{id}:1+letrozole"),
        ("patients", 3, "histology", "nst/{id}/x"),
        ("metastases", 1, "site", "bone{id}"),
    ],
    ids=["in-parentheses", "before-a-colon", "between-slashes", "glued-to-a-word"],
)
def test_an_identifier_inside_a_cell_is_withheld_in_text_and_json(
    lock: Path, table: str, row: int, column: str, written: str
) -> None:
    ids = _ids(lock)
    set_cell(lock, table, row, column, written.format(id=ids[1]))
    for output in (_validate(lock), _validate(lock, "--json")):
        assert WITHHELD in output
        assert [i for i in ids if i in output] == []


def test_an_identifier_cut_by_the_value_limit_is_withheld_whole(lock: Path, key: bytes) -> None:
    ids = _ids(lock)
    set_cell(lock, "patients", 1, "histology", "x" * 36 + ids[4])  # starts 4 characters before the cut
    with pytest.raises(LockValidationError, match=r"patients\.csv row 1, column histology") as caught:
        load_lock(lock, key)
    (violation,) = caught.value.violations
    assert violation.value == "x" * 36 + WITHHELD
    assert ids[4][:4] not in str(caught.value).replace("x" * 36 + WITHHELD, "")


def test_an_over_long_identifier_is_refused_and_withheld(lock: Path, key: bytes) -> None:
    long_id = "P" * 65
    for table in ("patients", "lines"):
        set_cell(lock, table, 1, "patient_id", long_id)
    with pytest.raises(LockValidationError, match=r"a patient_id is at most 64 characters") as caught:
        load_lock(lock, key)
    found = [
        (v.file, v.row, v.column, v.value, v.rule) for v in caught.value.violations if v.rule == "patient-id"
    ]
    assert found == [
        ("patients.csv", 1, "patient_id", WITHHELD, "patient-id"),
        ("lines.csv", 1, "patient_id", WITHHELD, "patient-id"),
    ]
    assert "PPPP" not in str(caught.value)


# --- the mask itself, against a regular expression ---------------------------------------------------

IDENTIFIER = st.text(alphabet="ABCXYZ0123-", min_size=1, max_size=8)
AROUND = st.text(alphabet="ABCXYZ0123- ():+,;/", max_size=30)


def _by_regex(text: str, ids: set[str]) -> str:
    # leftmost, and the longest at each position: the alternatives tried longest first
    pattern = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
    return re.sub(pattern, WITHHELD, text)


@given(ids=st.sets(IDENTIFIER, min_size=1, max_size=5), pieces=st.lists(AROUND, min_size=1, max_size=4))
def test_the_mask_withholds_every_occurrence_as_a_regex_would(ids: set[str], pieces: list[str]) -> None:
    ordered = sorted(ids)
    text = "".join(piece + ordered[n % len(ordered)] for n, piece in enumerate(pieces))
    masked = IdentifierMask(ids)(text)
    assert masked == _by_regex(text, ids)
    assert [i for i in ids if i in masked.replace(WITHHELD, "\0")] == []


@given(ids=st.sets(IDENTIFIER, min_size=1, max_size=5), text=AROUND, limit=st.integers(1, 40))
def test_a_limit_cuts_the_masked_text_never_an_identifier(ids: set[str], text: str, limit: int) -> None:
    text = text + "".join(sorted(ids)) + text
    masked = IdentifierMask(ids)(text, limit)
    full = _by_regex(text, ids)
    if len(full) <= limit:
        assert masked == full
    elif masked != full:  # equal when the last identifier, withheld whole, ends the text
        assert masked.endswith("...")
        shown = masked.removesuffix("...")
        assert full.startswith(shown) and limit <= len(shown) < min(len(full), limit + len(WITHHELD))


def test_the_mask_reads_only_what_the_limit_needs() -> None:
    mask = IdentifierMask({"SIM-000001"})
    assert mask("a" * 5_000_000 + "SIM-000001", 40) == "a" * 40 + "..."
    assert json.dumps(mask("SIM-000001" * 3, 25)) == json.dumps(WITHHELD * 2 + "...")


LONG_IDENTIFIER = st.text(alphabet="ABCXYZ0123-", min_size=22, max_size=64)
FILLER = st.text(alphabet="abc xyz()+:", max_size=45)


@given(
    ids=st.lists(LONG_IDENTIFIER, min_size=1, max_size=4, unique=True),
    pieces=st.lists(FILLER, min_size=1, max_size=5),
)
def test_long_identifiers_never_show_in_part_through_shown_value_and_redact(
    ids: list[str], pieces: list[str]
) -> None:
    from linewise.features.errors import Violation, redact, shown_value

    cell = "".join(piece + ids[n % len(ids)] for n, piece in enumerate(pieces))
    violation = Violation("f.csv", "t", 1, "c", shown_value(cell), "code", f"unknown code {cell!r}")
    (safe,) = redact([violation], IdentifierMask(ids))
    # no run of 8 or more characters of any identifier survives (the filler has no capital or digit)
    for text in (safe.value or "", safe.message):
        assert re.search(r"[ABCXYZ0123-]{8,}", text.replace(WITHHELD, " ")) is None, text


@pytest.mark.parametrize("offset", range(28, 42))
def test_a_date_cut_by_the_limit_never_shows_its_digits(offset: int) -> None:
    from linewise.features.errors import MESSAGE_LIMIT, Violation, redact, shown_value

    cell = "x" * offset + "2024-03-05" + "x" * 20
    message = "y" * (MESSAGE_LIMIT - 40 + offset) + "2024-03-05"
    (safe,) = redact(
        [Violation("f.csv", "t", 1, "c", shown_value(cell), "code", message)], IdentifierMask([])
    )
    for shown in (safe.value or "", safe.message):
        assert re.search(r"[0-8]", shown) is None, shown
