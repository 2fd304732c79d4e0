"""Hand-written OMOP CDM cases: the simulated CDM's vocabulary, with clinical rows written by each test.

:func:`blank_cdm` keeps the vocabulary and ``cdm_source`` of a CDM written by the simulator and empties
every clinical table; :func:`add_patient` writes one person of the cohort with everything the lock
requires (a centre, a birth year, a primary breast cancer, one bone metastasis on the diagnosis date,
an ER result and a menopausal state before it, an observation period). Row ids are ``person * 100 + k``
so that a test names the rows it expects by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pandas as pd

from linewise.features.omop import OmopSource, import_omop
from tests.omop_cdm import copy_cdm, duckdb_url, query, run_sql

CLINICAL_TABLES: Final = (
    "person",
    "observation_period",
    "death",
    "care_site",
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "measurement",
    "observation",
    "episode",
    "episode_event",
)
#: The type concept written where the CDM requires one (EHR); the importer never reads it.
_EHR: Final = 32817


def blank_cdm(source: Path, target: Path) -> Path:
    """Copy the CDM at ``source`` to ``target`` with its clinical tables emptied and one care site."""
    copy_cdm(source, target)
    run_sql(target, *(f"DELETE FROM {table}" for table in CLINICAL_TABLES))
    run_sql(
        target,
        "INSERT INTO care_site (care_site_id, care_site_name, care_site_source_value) VALUES (1, 'A', 'A')",
    )
    return target


def concept(cdm: Path, where: str) -> int:
    """The concept id of the one concept matching an SQL condition on ``concept``."""
    rows = query(cdm, f"SELECT concept_id FROM concept WHERE {where}")
    assert len(rows) == 1, where
    return int(rows[0][0])


def drug(cdm: Path, code: str) -> int:
    """The clinical drug concept of a lock drug code (``letrozole 1 MG Oral Tablet`` for ``letrozole``)."""
    return concept(cdm, f"concept_code = 'D-{code}'")


def coded(cdm: Path, concept_code: str) -> int:
    """The concept id of a concept code (LOINC ``85337-4``)."""
    return concept(cdm, f"concept_code = '{concept_code}'")


def concept_named(cdm: Path, name: str) -> int:
    """The concept id of a concept name (any case)."""
    return concept(cdm, f"lower(concept_name) = lower('{name}')")


def add_patient(
    cdm: Path,
    person: int,
    *,
    dx: str = "2020-01-01",
    last: str = "2024-12-31",
    baseline: str = "2019-06-01",
) -> None:
    """Write a person of the cohort: metastatic diagnosis ``dx``, observed until ``last``."""
    nst = concept_named(cdm, "Infiltrating duct carcinoma of breast")
    bone = concept_named(cdm, "Secondary malignant neoplasm of bone")
    er = coded(cdm, "85337-4")
    post = concept_named(cdm, "Postmenopausal state")
    run_sql(
        cdm,
        "INSERT INTO person (person_id, gender_concept_id, year_of_birth, month_of_birth, day_of_birth, "
        "race_concept_id, ethnicity_concept_id, care_site_id, person_source_value) "
        f"VALUES ({person}, 8532, 1960, 5, 1, 0, 0, 1, 'SIM-{900000 + person}')",
        "INSERT INTO observation_period VALUES "
        f"({person}, {person}, DATE '2010-01-01', DATE '{last}', {_EHR})",
        "INSERT INTO condition_occurrence (condition_occurrence_id, person_id, condition_concept_id, "
        "condition_start_date, condition_type_concept_id) VALUES "
        f"({person * 100 + 1}, {person}, {nst}, DATE '{baseline}', {_EHR}), "
        f"({person * 100 + 2}, {person}, {bone}, DATE '{dx}', {_EHR})",
        "INSERT INTO measurement (measurement_id, person_id, measurement_concept_id, measurement_date, "
        f"measurement_type_concept_id, value_as_number) VALUES ({person * 100 + 1}, {person}, {er}, "
        f"DATE '{baseline}', {_EHR}, 80)",
        "INSERT INTO observation (observation_id, person_id, observation_concept_id, observation_date, "
        f"observation_type_concept_id) VALUES ({person * 100 + 1}, {person}, {post}, DATE '{baseline}', "
        f"{_EHR})",
    )


def add_exposure(
    cdm: Path, row: int, person: int, concept_id: int, start: str, end: str, stop: str | None = None
) -> None:
    """Write one drug exposure."""
    reason = "NULL" if stop is None else f"'{stop}'"
    run_sql(
        cdm,
        "INSERT INTO drug_exposure (drug_exposure_id, person_id, drug_concept_id, drug_exposure_start_date, "
        f"drug_exposure_end_date, drug_type_concept_id, stop_reason) VALUES ({row}, {person}, {concept_id}, "
        f"DATE '{start}', DATE '{end}', {_EHR}, {reason})",
    )


def add_measurement(
    cdm: Path,
    row: int,
    person: int,
    concept_id: int,
    date: str,
    *,
    number: float | None = None,
    answer: int | None = None,
    table: str = "measurement",
) -> None:
    """Write one result into ``measurement`` (or ``observation``)."""
    value = "NULL" if number is None else repr(number)
    concept_value = "NULL" if answer is None else str(answer)
    run_sql(
        cdm,
        f"INSERT INTO {table} ({table}_id, person_id, {table}_concept_id, {table}_date, "
        f"{table}_type_concept_id, value_as_number, value_as_concept_id) VALUES ({row}, {person}, "
        f"{concept_id}, DATE '{date}', {_EHR}, {value}, {concept_value})",
    )


def add_episode(
    cdm: Path,
    row: int,
    person: int,
    kind: str,
    start: str,
    end: str | None = None,
    *,
    text: str | None = None,
    exposures: tuple[int, ...] = (),
) -> None:
    """Write a ``Treatment regimen`` or ``Disease progression`` episode, linked to ``exposures``."""
    ended = "NULL" if end is None else f"DATE '{end}'"
    source = "NULL" if text is None else f"'{text}'"
    statements = [
        "INSERT INTO episode (episode_id, person_id, episode_concept_id, episode_start_date, "
        "episode_end_date, episode_object_concept_id, episode_type_concept_id, episode_source_value) "
        f"VALUES ({row}, {person}, {concept_named(cdm, kind)}, DATE '{start}', {ended}, 0, {_EHR}, {source})"
    ]
    field = concept_named(cdm, "Drug_exposure.drug_exposure_id")
    statements += [f"INSERT INTO episode_event VALUES ({row}, {event}, {field})" for event in exposures]
    run_sql(cdm, *statements)


def imported(cdm: Path, out: Path) -> dict[str, pd.DataFrame]:
    """Import the CDM into the lock ``out`` and return its tables as text (empty cells as ``""``)."""
    import_omop(OmopSource(duckdb_url(cdm)), out)
    return {
        name: pd.read_csv(out / f"{name}.csv", dtype=str, keep_default_na=False)
        for name in ("patients", "lines", "progressions", "biomarkers", "metastases")
    }


def rows(frame: pd.DataFrame, *columns: str) -> list[tuple[str, ...]]:
    """The given columns of a lock table as tuples of text, in the table's order."""
    return [tuple(str(v) for v in row) for row in frame.loc[:, list(columns)].itertuples(index=False)]
