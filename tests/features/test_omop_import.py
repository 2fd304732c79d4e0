"""``linewise import-omop`` on OMOP CDM databases written by the tests (``tests/omop_cdm.py``).

A simulated lock is written into a DuckDB file by ``linewise.simulation.omop_writer`` (its own DDL and
vocabulary, with local concept ids); importing it back must give the same decision examples as the
lock itself. Each corruption of the database must give one error that names the OMOP table, row and
rule, shows no identifier and no date, and leaves nothing written.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from linewise.features import load_lock
from linewise.features.examples import build_examples
from linewise.features.omop import (
    MappingError,
    OmopImportError,
    OmopSource,
    OmopSourceError,
    default_mapping_path,
    import_omop,
    load_mapping,
)
from linewise.simulation.config import load_config
from linewise.simulation.simulate import simulate_lock
from tests.omop_cases import (
    add_episode,
    add_exposure,
    add_measurement,
    add_patient,
    blank_cdm,
    coded,
    concept_named,
    drug,
    imported,
    rows,
)
from tests.omop_cdm import concept_id, copy_cdm, duckdb_url, leaks, query, run_sql, write_duckdb

pytestmark = pytest.mark.filterwarnings("ignore::duckdb_engine.DuckDBEngineWarning")


def _simulate(root: Path, patients: int, seed: int) -> Path:
    simulate_lock(patients, seed, root / "lock", root / "truth", load_config())
    return root / "lock"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 20-patient simulated lock and its CDM (DuckDB file), episodes for some patients only."""
    root = tmp_path_factory.mktemp("omop-small")
    lock = _simulate(root, 20, 4)
    database = root / "cdm.duckdb"
    write_duckdb(lock, database, "needed", seed=1)
    return lock, database


@pytest.fixture
def cdm(small: tuple[Path, Path], tmp_path: Path) -> Path:
    """A fresh, writable copy of the small CDM."""
    return copy_cdm(small[1], tmp_path / "cdm.duckdb")


def _examples(lock: Path, key: bytes) -> pd.DataFrame:
    return build_examples(load_lock(lock, key)).reset_index(drop=True)


def _import(database: Path, out: Path) -> None:
    import_omop(OmopSource(duckdb_url(database)), out)


def _problems(database: Path, tmp_path: Path) -> OmopImportError:
    out = tmp_path / "imported"
    with pytest.raises(OmopImportError) as caught:
        _import(database, out)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".imported")] == []
    assert leaks(str(caught.value)) == []
    return caught.value


def _regimen_persons(database: Path) -> tuple[set[int], set[int]]:
    regimen = concept_id(database, "Treatment regimen")
    with_episodes = {
        r[0] for r in query(database, f"SELECT person_id FROM episode WHERE episode_concept_id = {regimen}")
    }
    everyone = {r[0] for r in query(database, "SELECT person_id FROM person")}
    return with_episodes, everyone - with_episodes


@pytest.mark.slow
def test_a_2000_patient_lock_imports_back_to_the_same_decision_examples(tmp_path: Path, key: bytes) -> None:
    lock = _simulate(tmp_path, 2000, 3)
    database = tmp_path / "cdm.duckdb"
    write_duckdb(lock, database)
    out = tmp_path / "imported"
    summary = import_omop(OmopSource(duckdb_url(database)), out)
    assert summary.patients == 2000
    assert summary.lines_from_episodes > 0 and summary.lines_derived > 0
    expected, found = _examples(lock, key), _examples(out, key)
    assert len(expected) > 3000
    pd.testing.assert_frame_equal(found, expected)


@pytest.mark.parametrize("episodes", ["none", "all"])
def test_lines_read_from_episodes_or_derived_from_exposures_alone(
    tmp_path: Path, key: bytes, small: tuple[Path, Path], episodes: str
) -> None:
    database = tmp_path / "cdm.duckdb"
    write_duckdb(small[0], database, episodes)  # type: ignore[arg-type]
    out = tmp_path / "imported"
    summary = import_omop(OmopSource(duckdb_url(database)), out)
    assert (summary.lines_from_episodes == 0) == (episodes == "none")
    assert (summary.lines_derived == 0) == (episodes == "all")
    pd.testing.assert_frame_equal(_examples(out, key), _examples(small[0], key))


def test_the_small_cdm_holds_every_case(small: tuple[Path, Path], tmp_path: Path, key: bytes) -> None:
    lock, database = small
    with_episodes, without = _regimen_persons(database)
    assert with_episodes and without
    patients = pd.read_csv(lock / "patients.csv")
    assert patients["ki67_percent"].isna().any() or patients["her2_ihc"].isna().any()
    # drugs that are not cancer drugs are in the CDM and are not lines
    paracetamol = concept_id(database, "acetaminophen 500 MG Oral Tablet")
    assert (
        query(database, f"SELECT count(*) FROM drug_exposure WHERE drug_concept_id = {paracetamol}")[0][0] > 0
    )
    # the data uses concepts below the mapping's own (clinical drugs, parts of a metastatic site)
    clinical = query(
        database,
        "SELECT count(*) FROM drug_exposure JOIN concept ON drug_concept_id = concept_id "
        "WHERE concept_class_id = 'Clinical Drug'",
    )[0][0]
    assert clinical > 0
    out = tmp_path / "imported"
    _import(database, out)
    pd.testing.assert_frame_equal(_examples(out, key), _examples(lock, key))


def _first(database: Path, statement: str) -> int:
    rows = query(database, statement)
    assert rows, statement
    return int(rows[0][0])


def _derived_exposure(database: Path) -> int:
    _, without = _regimen_persons(database)
    persons = ",".join(str(p) for p in sorted(without))
    paracetamol = concept_id(database, "acetaminophen 500 MG Oral Tablet")
    return _first(
        database,
        f"SELECT min(drug_exposure_id) FROM drug_exposure WHERE person_id IN ({persons}) "
        f"AND drug_concept_id <> {paracetamol}",
    )


def _one(error: OmopImportError) -> tuple[str, int | None, str]:
    assert len(error.problems) == 1, [str(p) for p in error.problems]
    problem = error.problems[0]
    assert problem.rule in str(error) and problem.table in str(error)
    return problem.table, problem.row_id, problem.rule


def test_an_unknown_drug_concept(cdm: Path, tmp_path: Path) -> None:
    row = _derived_exposure(cdm)
    run_sql(cdm, f"UPDATE drug_exposure SET drug_concept_id = 123456 WHERE drug_exposure_id = {row}")
    assert _one(_problems(cdm, tmp_path)) == ("drug_exposure", row, "drug-unknown")


def test_an_antineoplastic_drug_that_the_mapping_does_not_name(cdm: Path, tmp_path: Path) -> None:
    row = _derived_exposure(cdm)
    l01 = _first(cdm, "SELECT concept_id FROM concept WHERE vocabulary_id = 'ATC' AND concept_code = 'L01'")
    run_sql(
        cdm,
        "INSERT INTO concept VALUES (2100000000, 'tucatinib', 'Drug', 'RxNorm', 'Ingredient', 'S', 'T1', "
        "DATE '1970-01-01', DATE '2099-12-31', NULL)",
        f"INSERT INTO concept_ancestor VALUES ({l01}, 2100000000, 1, 1), (2100000000, 2100000000, 0, 0)",
        f"UPDATE drug_exposure SET drug_concept_id = 2100000000 WHERE drug_exposure_id = {row}",
    )
    assert _one(_problems(cdm, tmp_path)) == ("drug_exposure", row, "drug-unmapped")


def test_an_unknown_condition_concept(cdm: Path, tmp_path: Path) -> None:
    row = _first(cdm, "SELECT max(condition_occurrence_id) FROM condition_occurrence")
    run_sql(
        cdm,
        f"UPDATE condition_occurrence SET condition_concept_id = 42 WHERE condition_occurrence_id = {row}",
    )
    assert _one(_problems(cdm, tmp_path)) == ("condition_occurrence", row, "condition-unknown")


def test_an_exposure_that_ends_before_it_starts(cdm: Path, tmp_path: Path) -> None:
    row = _derived_exposure(cdm)
    run_sql(
        cdm,
        "UPDATE drug_exposure SET drug_exposure_end_date = drug_exposure_start_date - INTERVAL 5 DAY "
        f"WHERE drug_exposure_id = {row}",
    )
    assert _one(_problems(cdm, tmp_path)) == ("drug_exposure", row, "exposure-dates")


def test_an_episode_that_ends_before_it_starts(cdm: Path, tmp_path: Path) -> None:
    regimen = concept_id(cdm, "Treatment regimen")
    row = _first(
        cdm,
        f"SELECT min(episode_id) FROM episode WHERE episode_concept_id = {regimen} "
        "AND episode_end_date IS NOT NULL",
    )
    run_sql(
        cdm,
        f"UPDATE episode SET episode_end_date = episode_start_date - INTERVAL 3 DAY WHERE episode_id = {row}",
    )
    error = _problems(cdm, tmp_path)
    found = {(p.table, p.row_id, p.rule) for p in error.problems}
    assert found == {("episode", row, "episode-dates")}


def test_a_record_after_the_lock_date(cdm: Path, tmp_path: Path) -> None:
    ecog = _first(cdm, "SELECT concept_id FROM concept WHERE concept_code = '89247-1'")
    row = _first(cdm, f"SELECT max(measurement_id) FROM measurement WHERE measurement_concept_id = {ecog}")
    run_sql(cdm, f"UPDATE measurement SET measurement_date = DATE '2031-03-01' WHERE measurement_id = {row}")
    error = _problems(cdm, tmp_path)
    assert ("measurement", row, "lock:after-lock-date") in {
        (p.table, p.row_id, p.rule) for p in error.problems
    }


def test_a_regimen_episode_without_drugs_cannot_be_a_line(cdm: Path, tmp_path: Path) -> None:
    regimen = concept_id(cdm, "Treatment regimen")
    row = _first(cdm, f"SELECT max(episode_id) FROM episode WHERE episode_concept_id = {regimen}")
    run_sql(cdm, f"DELETE FROM episode_event WHERE episode_id = {row}")
    error = _problems(cdm, tmp_path)
    assert ("episode", row, "episode-drugs") in {(p.table, p.row_id, p.rule) for p in error.problems}


def test_a_progression_outside_every_line(cdm: Path, tmp_path: Path) -> None:
    progression = concept_id(cdm, "Disease progression")
    row = _first(cdm, f"SELECT min(episode_id) FROM episode WHERE episode_concept_id = {progression}")
    run_sql(
        cdm,
        f"UPDATE episode SET episode_start_date = DATE '2001-01-01' WHERE episode_id = {row}",
    )
    assert _one(_problems(cdm, tmp_path)) == ("episode", row, "progression-line")


def test_a_progression_that_does_not_say_oligo_or_systemic(cdm: Path, tmp_path: Path) -> None:
    progression = concept_id(cdm, "Disease progression")
    row = _first(cdm, f"SELECT max(episode_id) FROM episode WHERE episode_concept_id = {progression}")
    run_sql(cdm, f"UPDATE episode SET episode_source_value = 'progressed' WHERE episode_id = {row}")
    assert _one(_problems(cdm, tmp_path)) == ("episode", row, "progression-pattern")


def test_a_person_without_an_estrogen_receptor_result(cdm: Path, tmp_path: Path) -> None:
    er = _first(cdm, "SELECT concept_id FROM concept WHERE concept_code = '85337-4'")
    person = _first(cdm, f"SELECT min(person_id) FROM measurement WHERE measurement_concept_id = {er}")
    run_sql(cdm, f"DELETE FROM measurement WHERE measurement_concept_id = {er} AND person_id = {person}")
    assert _one(_problems(cdm, tmp_path)) == ("person", person, "person-er")


def test_a_her2_score_of_2_without_ish(cdm: Path, tmp_path: Path) -> None:
    ish = _first(cdm, "SELECT concept_id FROM concept WHERE concept_code = '85318-4'")
    rows = query(
        cdm,
        "SELECT measurement_id, person_id, measurement_date FROM measurement "
        f"WHERE measurement_concept_id = {ish}",
    )
    if not rows:
        pytest.skip("no HER2 2+ in the small lock")  # the fixture's seed is chosen so that there is one
    run_sql(cdm, f"DELETE FROM measurement WHERE measurement_id = {rows[0][0]}")
    score = _first(cdm, "SELECT concept_id FROM concept WHERE concept_code = '85319-2'")
    scored = _first(
        cdm,
        f"SELECT measurement_id FROM measurement WHERE measurement_concept_id = {score} "
        f"AND person_id = {rows[0][1]} AND measurement_date = DATE '{rows[0][2]}'",
    )
    assert _one(_problems(cdm, tmp_path)) == ("measurement", scored, "her2-ish-missing")


def test_a_person_without_a_centre(cdm: Path, tmp_path: Path) -> None:
    run_sql(cdm, "UPDATE person SET care_site_id = NULL WHERE person_id = 3")
    assert _one(_problems(cdm, tmp_path)) == ("person", 3, "person-center")


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        ("DROP TABLE measurement", "table measurement is missing"),
        ("ALTER TABLE drug_exposure DROP COLUMN stop_reason", "lacks the OMOP CDM 5.4 column(s) stop_reason"),
        ("DROP TABLE concept_ancestor", "vocabulary table concept_ancestor is missing"),
    ],
)
def test_a_missing_table_or_column(cdm: Path, tmp_path: Path, statement: str, named: str) -> None:
    run_sql(cdm, statement)
    out = tmp_path / "imported"
    with pytest.raises(OmopSourceError, match=named.replace("(", r"\(").replace(")", r"\)")):
        _import(cdm, out)
    assert not out.exists()


def test_without_episode_tables_lines_are_derived_and_progressions_read_from_observations(
    cdm: Path, tmp_path: Path, key: bytes, small: tuple[Path, Path]
) -> None:
    """A site without the episode tables records progressions as observations: the same examples."""
    progression = concept_id(cdm, "Disease progression")
    noted = concept_id(cdm, "Progressive disease")
    run_sql(
        cdm,
        "INSERT INTO observation (observation_id, person_id, observation_concept_id, observation_date, "
        "observation_type_concept_id, value_as_string) "
        f"SELECT 1000000 + episode_id, person_id, {noted}, episode_start_date, 32817, episode_source_value "
        f"FROM episode WHERE episode_concept_id = {progression}",
        "DROP TABLE episode_event",
        "DROP TABLE episode",
    )
    out = tmp_path / "imported"
    summary = import_omop(OmopSource(duckdb_url(cdm)), out)
    assert summary.lines_from_episodes == 0
    pd.testing.assert_frame_equal(_examples(out, key), _examples(small[0], key))


@given(share=st.floats(0.05, 0.6), seed=st.integers(0, 10_000))
# each example imports a database; shrinking a failure would take minutes, so it is reported as drawn
@settings(
    max_examples=8,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_every_corrupted_exposure_is_named(
    small: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory, share: float, seed: int
) -> None:
    """Whatever exposures end before they start, the error names exactly those rows."""
    root = tmp_path_factory.mktemp("corrupt")
    cdm = copy_cdm(small[1], root / "cdm.duckdb")
    ids = [r[0] for r in query(cdm, "SELECT drug_exposure_id FROM drug_exposure ORDER BY 1")]
    chosen = sorted(pd.Series(ids).sample(frac=share, random_state=seed))
    if not chosen:
        return
    listed = ",".join(str(i) for i in chosen)
    run_sql(
        cdm,
        "UPDATE drug_exposure SET drug_exposure_end_date = drug_exposure_start_date - INTERVAL 1 DAY "
        f"WHERE drug_exposure_id IN ({listed})",
    )
    paracetamol = concept_id(cdm, "acetaminophen 500 MG Oral Tablet")
    cancer = {
        r[0]
        for r in query(
            cdm, f"SELECT drug_exposure_id FROM drug_exposure WHERE drug_concept_id <> {paracetamol}"
        )
    }
    error = _problems(cdm, root)
    named = {p.row_id for p in error.problems if p.rule == "exposure-dates"}
    assert named == set(chosen) & cancer
    assert {p.rule for p in error.problems} == {"exposure-dates"}


def test_the_command_line_refuses_a_corrupted_cdm_in_one_message(cdm: Path, tmp_path: Path) -> None:
    row = _derived_exposure(cdm)
    run_sql(cdm, f"UPDATE drug_exposure SET drug_concept_id = 99 WHERE drug_exposure_id = {row}")
    out = tmp_path / "imported"
    result = subprocess.run(
        [sys.executable, "-m", "linewise", "import-omop", duckdb_url(cdm), "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert f"drug_exposure drug_exposure_id {row}" in result.stderr and "[rule drug-unknown]" in result.stderr
    assert leaks(result.stderr) == []
    assert not out.exists()


def test_the_command_line_imports_and_the_lock_validates(small: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "imported"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "linewise",
            "import-omop",
            duckdb_url(small[1]),
            "--out",
            str(out),
            "--lock-id",
            "t1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote lock t1" in result.stdout and leaks(result.stdout) == []
    valid = subprocess.run(
        [sys.executable, "-m", "linewise", "validate", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert valid.returncode == 0 and "valid" in valid.stdout


def test_a_missing_duckdb_file_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.duckdb"
    with pytest.raises(OmopSourceError, match="no DuckDB file"):
        import_omop(OmopSource(duckdb_url(missing)), tmp_path / "out")
    assert not missing.exists()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg://reader:s3cret@127.0.0.1:9/cdm",
            "postgresql+psycopg://reader:***@127.0.0.1:9/cdm",
        ),
        (
            "postgresql+psycopg://reader@127.0.0.1:9/cdm?password=s3cret&sslmode=disable",
            "postgresql+psycopg://reader@127.0.0.1:9/cdm?password=***&sslmode=disable",
        ),
        (
            "postgresql+psycopg://reader@127.0.0.1:9/cdm?sslpassword=s3cret&PGPASSWD=s3cret",
            "postgresql+psycopg://reader@127.0.0.1:9/cdm?sslpassword=***&PGPASSWD=***",
        ),
        (
            "postgresql+psycopg://reader@127.0.0.1:9/cdm?token=s3cret&client_secret=s3cret",
            "postgresql+psycopg://reader@127.0.0.1:9/cdm?token=***&client_secret=***",
        ),
    ],
    ids=["user-password", "password-parameter", "ssl-password", "token-and-secret"],
)
def test_a_password_is_never_shown(url: str, shown: str, tmp_path: Path) -> None:
    source = OmopSource(url)
    assert source.shown_url == shown
    # nothing listens on port 9: the connection fails, and the error shows the URL without the secret
    with pytest.raises(OmopSourceError, match="cannot connect") as caught:
        import_omop(source, tmp_path / "out")
    assert "s3cret" not in str(caught.value)
    assert str(caught.value).startswith(shown + ":")


def test_an_existing_target_is_refused(small: tuple[Path, Path], tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError):
        import_omop(OmopSource(duckdb_url(small[1])), tmp_path / "taken")


def test_a_broken_mapping_file(tmp_path: Path) -> None:
    broken = tmp_path / "mapping.yaml"
    text = default_mapping_path().read_text(encoding="utf-8")
    broken.write_text(
        text.replace("    letrozole: [{ingredient: letrozole}]", "    aspirin: [{ingredient: aspirin}]")
    )
    with pytest.raises(MappingError, match="aspirin"):
        load_mapping(broken)
    broken.write_text("drugs: [unclosed\n")
    with pytest.raises(MappingError, match="cannot read"):
        load_mapping(broken)


# ------------------------------------------------------------------ hand-written CDMs, expected by hand


@pytest.fixture
def blank(small: tuple[Path, Path], tmp_path: Path) -> Path:
    """The small CDM's vocabulary with no clinical rows (``tests/omop_cases.py`` writes them)."""
    return blank_cdm(small[1], tmp_path / "blank.duckdb")


def test_a_hand_written_patient_imports(blank: Path, tmp_path: Path) -> None:
    add_patient(blank, 1)
    add_exposure(blank, 11, 1, drug(blank, "letrozole"), "2020-01-10", "2020-12-31", "Disease progression")
    tables = imported(blank, tmp_path / "out")
    assert rows(tables["lines"], "line_number", "start_date", "end_date", "drugs", "end_reason") == [
        ("1", "2020-01-10", "2020-12-31", "letrozole", "progression")
    ]
    assert rows(tables["patients"], "age_at_metastatic_dx", "er_percent", "metastatic_dx_date") == [
        ("59", "80", "2020-01-01")
    ]


def test_treatment_that_ends_before_the_metastatic_diagnosis_is_no_line(blank: Path, tmp_path: Path) -> None:
    """Adjuvant therapy, as exposures alone (person 1) or as a Treatment Regimen episode (person 2)."""
    tamoxifen, letrozole = drug(blank, "tamoxifen"), drug(blank, "letrozole")
    add_patient(blank, 1)
    add_exposure(blank, 11, 1, tamoxifen, "2015-01-01", "2019-12-31", "Completed")
    add_exposure(blank, 12, 1, letrozole, "2020-01-10", "2020-12-31", "Disease progression")
    add_patient(blank, 2)
    add_exposure(blank, 21, 2, tamoxifen, "2015-01-01", "2019-10-31", "Completed")
    add_exposure(blank, 22, 2, letrozole, "2020-01-01", "2020-12-31", "Disease progression")
    add_episode(blank, 21, 2, "Treatment regimen", "2015-01-01", "2019-10-31", exposures=(21,))
    add_episode(blank, 22, 2, "Treatment regimen", "2020-01-01", "2020-12-31", exposures=(22,))
    # an exposure that ends on the diagnosis day is kept (no tolerance)
    add_patient(blank, 3)
    add_exposure(blank, 31, 3, tamoxifen, "2019-06-01", "2020-01-01", "Disease progression")
    lines = imported(blank, tmp_path / "out")["lines"]
    assert rows(lines, "patient_id", "line_number", "start_date", "end_date", "drugs") == [
        ("SIM-900001", "1", "2020-01-10", "2020-12-31", "letrozole"),
        ("SIM-900002", "1", "2020-01-01", "2020-12-31", "letrozole"),
        ("SIM-900003", "1", "2019-06-01", "2020-01-01", "tamoxifen"),
    ]


def test_concept_0_is_reported_not_dropped(blank: Path, tmp_path: Path) -> None:
    """``No matching concept`` is in a real vocabulary: an exposure or condition with it is refused."""
    run_sql(
        blank,
        "INSERT INTO concept VALUES (0, 'No matching concept', 'Metadata', 'None', 'Undefined', NULL, "
        "'No matching concept', DATE '1970-01-01', DATE '2099-12-31', NULL)",
    )
    add_patient(blank, 1)
    add_exposure(blank, 11, 1, drug(blank, "letrozole"), "2020-01-10", "2020-12-31")
    add_exposure(blank, 12, 1, 0, "2020-01-10", "2020-12-31")
    add_exposure(blank, 13, 1, 0, "2015-01-10", "2015-12-31")  # ends before the diagnosis: not read
    run_sql(
        blank,
        "INSERT INTO condition_occurrence (condition_occurrence_id, person_id, condition_concept_id, "
        "condition_start_date, condition_type_concept_id) VALUES (105, 1, 0, DATE '2021-03-01', 32817)",
    )
    error = _problems(blank, tmp_path)
    assert [(p.table, p.row_id, p.column, p.rule) for p in error.problems] == [
        ("condition_occurrence", 105, "condition_concept_id", "condition-unknown"),
        ("drug_exposure", 12, "drug_concept_id", "drug-unknown"),
    ]


def test_a_progression_after_the_last_dose_belongs_to_the_line_before_it(blank: Path, tmp_path: Path) -> None:
    """The latest line started before the progression takes it, and ends on its date at the earliest."""
    letrozole, fulvestrant = drug(blank, "letrozole"), drug(blank, "fulvestrant")
    # person 1: progression after letrozole's last dose, before fulvestrant starts
    add_patient(blank, 1)
    add_exposure(blank, 11, 1, letrozole, "2020-01-10", "2020-06-30", "Disease progression")
    add_exposure(blank, 12, 1, fulvestrant, "2020-08-01", "2020-12-31", "Toxicity")
    add_episode(blank, 13, 1, "Disease progression", "2020-07-10", text="systemic")
    # person 2: progression on the day line 2 starts belongs to line 1
    add_patient(blank, 2)
    add_exposure(blank, 21, 2, letrozole, "2020-01-10", "2020-07-15", "Disease progression")
    add_exposure(blank, 22, 2, fulvestrant, "2020-07-15", "2020-12-31", "Toxicity")
    add_episode(blank, 23, 2, "Disease progression", "2020-07-15", text="oligo")
    # person 3: progression after the last line ended, and no line after it
    add_patient(blank, 3)
    add_exposure(blank, 31, 3, letrozole, "2020-01-10", "2020-06-30", "Completed")
    add_episode(blank, 33, 3, "Disease progression", "2020-09-01", text="systemic")
    tables = imported(blank, tmp_path / "out")
    assert rows(tables["progressions"], "patient_id", "date", "line_number", "pattern") == [
        ("SIM-900001", "2020-07-10", "1", "systemic"),
        ("SIM-900002", "2020-07-15", "1", "oligo"),
        ("SIM-900003", "2020-09-01", "1", "systemic"),
    ]
    assert rows(tables["lines"], "patient_id", "line_number", "start_date", "end_date", "drugs") == [
        ("SIM-900001", "1", "2020-01-10", "2020-07-10", "letrozole"),
        ("SIM-900001", "2", "2020-08-01", "2020-12-31", "fulvestrant"),
        ("SIM-900002", "1", "2020-01-10", "2020-07-15", "letrozole"),
        ("SIM-900002", "2", "2020-07-15", "2020-12-31", "fulvestrant"),
        ("SIM-900003", "1", "2020-01-10", "2020-09-01", "letrozole"),
    ]


def test_a_drug_added_while_others_run_gives_lines_that_do_not_overlap(blank: Path, tmp_path: Path) -> None:
    add_patient(blank, 1)
    add_exposure(blank, 11, 1, drug(blank, "letrozole"), "2020-01-10", "2020-12-31", "Disease progression")
    add_exposure(blank, 12, 1, drug(blank, "palbociclib"), "2020-04-01", "2020-12-31", "Disease progression")
    lines = imported(blank, tmp_path / "out")["lines"]
    assert rows(lines, "line_number", "start_date", "end_date", "drugs", "end_reason") == [
        ("1", "2020-01-10", "2020-04-01", "letrozole", ""),
        ("2", "2020-04-01", "2020-12-31", "letrozole+palbociclib", "progression"),
    ]


def test_a_date_that_cannot_be_read_is_refused_not_read_as_missing(blank: Path, tmp_path: Path) -> None:
    """Years beyond pandas' range, and text that is no date, are problems; no death is lost."""
    add_patient(blank, 1)
    add_exposure(blank, 11, 1, drug(blank, "letrozole"), "2020-01-10", "2999-12-31")
    add_measurement(blank, 102, 1, coded(blank, "85337-4"), "1066-10-14", number=50)
    run_sql(
        blank,
        "UPDATE person SET birth_datetime = TIMESTAMP '1066-05-01 00:00:00' WHERE person_id = 1",
        # a site that keeps death dates as text
        "ALTER TABLE death ALTER death_date TYPE VARCHAR",
        "INSERT INTO death (person_id, death_date, death_type_concept_id) VALUES (1, '2024-02-30', 32817)",
    )
    error = _problems(blank, tmp_path)
    assert sorted((p.table, p.row_id, p.column, p.rule) for p in error.problems) == [
        ("death", 1, "death_date", "date-invalid"),
        ("drug_exposure", 11, "drug_exposure_end_date", "date-invalid"),
        ("measurement", 102, "measurement_date", "date-invalid"),
        ("person", 1, "birth_datetime", "date-invalid"),
    ]


def test_an_exposure_outside_every_regimen_episode_is_refused(blank: Path, tmp_path: Path) -> None:
    add_patient(blank, 1)
    add_exposure(blank, 11, 1, drug(blank, "letrozole"), "2020-01-10", "2020-12-31", "Disease progression")
    add_exposure(blank, 12, 1, drug(blank, "palbociclib"), "2020-01-10", "2020-12-31", "Disease progression")
    add_exposure(blank, 13, 1, drug(blank, "acetaminophen"), "2020-02-01", "2020-02-10")  # not a lock drug
    add_episode(blank, 11, 1, "Treatment regimen", "2020-01-10", "2020-12-31", exposures=(11,))
    error = _problems(blank, tmp_path)
    assert [(p.table, p.row_id, p.column, p.rule) for p in error.problems] == [
        ("drug_exposure", 12, None, "exposure-episode")
    ]


def _combination(cdm: Path, concept_id: int, name: str, *ingredients: str) -> int:
    """Add a clinical drug of several RxNorm ingredients, below each and each one's ATC classes."""
    parts = [concept_named(cdm, ingredient) for ingredient in ingredients]
    listed = ", ".join(str(p) for p in parts)
    run_sql(
        cdm,
        f"INSERT INTO concept VALUES ({concept_id}, '{name}', 'Drug', 'RxNorm', 'Clinical Drug', 'S', "
        f"'C{concept_id}', DATE '1970-01-01', DATE '2099-12-31', NULL)",
        "INSERT INTO concept_ancestor SELECT ancestor_concept_id, "
        f"{concept_id}, min_levels_of_separation + 1, max_levels_of_separation + 1 FROM concept_ancestor "
        f"WHERE descendant_concept_id IN ({listed})",
        f"INSERT INTO concept_ancestor VALUES ({concept_id}, {concept_id}, 0, 0)",
    )
    return concept_id


def test_a_combination_clinical_drug_gives_both_drugs(blank: Path, tmp_path: Path) -> None:
    pack = _combination(blank, 2100000001, "ribociclib / letrozole Pack", "ribociclib", "letrozole")
    add_patient(blank, 1)
    add_exposure(blank, 11, 1, pack, "2020-01-10", "2020-12-31", "Disease progression")
    lines = imported(blank, tmp_path / "out")["lines"]
    assert rows(lines, "line_number", "start_date", "end_date", "drugs", "end_reason") == [
        ("1", "2020-01-10", "2020-12-31", "letrozole+ribociclib", "progression")
    ]


def test_a_combination_with_an_unmapped_cancer_ingredient_is_refused(blank: Path, tmp_path: Path) -> None:
    l01 = coded(blank, "L01")
    run_sql(
        blank,
        "INSERT INTO concept VALUES (2100000000, 'tucatinib', 'Drug', 'RxNorm', 'Ingredient', 'S', 'T1', "
        "DATE '1970-01-01', DATE '2099-12-31', NULL)",
        f"INSERT INTO concept_ancestor VALUES ({l01}, 2100000000, 1, 1), (2100000000, 2100000000, 0, 0)",
    )
    pack = _combination(blank, 2100000001, "tucatinib / letrozole Pack", "tucatinib", "letrozole")
    add_patient(blank, 1)
    add_exposure(blank, 11, 1, pack, "2020-01-10", "2020-12-31")
    error = _problems(blank, tmp_path)
    assert [(p.table, p.row_id, p.column, p.rule) for p in error.problems] == [
        ("drug_exposure", 11, "drug_concept_id", "drug-unmapped")
    ]


def test_no_identifier_or_date_reaches_the_log(
    blank: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    add_patient(blank, 1)
    add_exposure(blank, 11, 1, drug(blank, "letrozole"), "2020-01-10", "2020-12-31")
    add_exposure(blank, 12, 1, 0, "2020-01-10", "2020-12-31")
    with caplog.at_level(logging.DEBUG):
        error = _problems(blank, tmp_path)
    assert [(p.table, p.row_id, p.rule) for p in error.problems] == [("drug_exposure", 12, "drug-unknown")]
    assert leaks(caplog.text) == []
    assert "SIM-900001" not in caplog.text


def test_a_result_linked_to_another_persons_primary_is_not_the_baseline(blank: Path, tmp_path: Path) -> None:
    add_patient(blank, 1)
    add_patient(blank, 2)
    for person in (1, 2):
        add_exposure(blank, person * 100 + 11, person, drug(blank, "letrozole"), "2020-01-10", "2020-12-31")
    add_measurement(blank, 202, 2, coded(blank, "85337-4"), "2021-01-01", number=10)
    field = concept_named(blank, "Condition_occurrence.condition_occurrence_id")
    # person 2's later ER result points at person 1's primary cancer (condition 101)
    run_sql(
        blank,
        f"UPDATE measurement SET measurement_event_id = 101, meas_event_field_concept_id = {field} "
        "WHERE measurement_id = 202",
    )
    tables = imported(blank, tmp_path / "out")
    assert rows(tables["patients"], "patient_id", "er_percent") == [
        ("SIM-900001", "80"),
        ("SIM-900002", "80"),
    ]
    assert rows(tables["biomarkers"], "patient_id", "date", "marker", "value") == [
        ("SIM-900002", "2021-01-01", "er", "10")
    ]


def test_a_her2_score_outside_0_to_3_is_refused(blank: Path, tmp_path: Path) -> None:
    add_patient(blank, 1)
    add_exposure(blank, 11, 1, drug(blank, "letrozole"), "2020-01-10", "2020-12-31")
    add_measurement(blank, 102, 1, coded(blank, "85319-2"), "2019-06-01", number=5)
    error = _problems(blank, tmp_path)
    assert [(p.table, p.row_id, p.column, p.rule) for p in error.problems] == [
        ("measurement", 102, "value_as_number", "measurement-value")
    ]


def test_a_biomarker_in_observation_instead_of_measurement(blank: Path, tmp_path: Path) -> None:
    add_patient(blank, 1)
    run_sql(blank, "DELETE FROM measurement WHERE measurement_id = 101")
    add_measurement(blank, 102, 1, coded(blank, "85337-4"), "2019-06-01", number=70, table="observation")
    add_measurement(blank, 103, 1, coded(blank, "85337-4"), "2021-03-01", number=40, table="observation")
    add_exposure(blank, 11, 1, drug(blank, "letrozole"), "2020-01-10", "2020-12-31")
    tables = imported(blank, tmp_path / "out")
    assert rows(tables["patients"], "patient_id", "er_percent") == [("SIM-900001", "70")]
    assert rows(tables["biomarkers"], "date", "marker", "value") == [("2021-03-01", "er", "40")]
