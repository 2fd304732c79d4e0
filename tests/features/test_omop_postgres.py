"""``linewise import-omop`` from a real PostgreSQL server, with the CDM and the vocabulary in two schemas."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from linewise.features import load_lock
from linewise.features.examples import build_examples
from linewise.features.omop import OmopImportError, OmopSource, import_omop
from linewise.simulation.config import load_config
from linewise.simulation.omop_writer import write_omop
from linewise.simulation.simulate import simulate_lock
from tests.omop_cdm import leaks
from tests.postgres_server import postgres_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="module")
def written(server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated 2,000-patient lock, written into schemas cdm and vocab of the server."""
    root = tmp_path_factory.mktemp("omop-pg")
    simulate_lock(2000, 3, root / "lock", root / "truth", load_config())
    write_omop(root / "lock", server, cdm_schema="cdm", vocabulary_schema="vocab")
    return root / "lock"


def test_a_2000_patient_lock_imports_back_from_postgresql(
    server: str, written: Path, tmp_path: Path, key: bytes
) -> None:
    out = tmp_path / "imported"
    summary = import_omop(OmopSource(server, "cdm", "vocab"), out)
    assert summary.patients == 2000 and summary.lines_from_episodes > 0 and summary.lines_derived > 0
    expected = build_examples(load_lock(written, key)).reset_index(drop=True)
    found = build_examples(load_lock(out, key)).reset_index(drop=True)
    pd.testing.assert_frame_equal(found, expected)


def test_the_wrong_vocabulary_schema_is_named(server: str, written: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "linewise",
            "import-omop",
            server,
            "--out",
            str(tmp_path / "x"),
            "--cdm-schema",
            "cdm",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "vocabulary table concept is missing from cdm" in result.stderr
    assert not (tmp_path / "x").exists()


def test_a_corrupted_postgresql_cdm_names_the_row(server: str, written: Path, tmp_path: Path) -> None:
    engine = sa.create_engine(server)
    with engine.begin() as connection:
        row, original = connection.execute(
            sa.text(
                "SELECT drug_exposure_id, drug_concept_id FROM cdm.drug_exposure "
                "ORDER BY drug_exposure_id DESC LIMIT 1"
            )
        ).one()
        connection.execute(
            sa.text("UPDATE cdm.drug_exposure SET drug_concept_id = 7 WHERE drug_exposure_id = :row"),
            {"row": row},
        )
    try:
        with pytest.raises(OmopImportError) as caught:
            import_omop(OmopSource(server, "cdm", "vocab"), tmp_path / "imported")
        assert [(p.table, p.row_id, p.rule) for p in caught.value.problems] == [
            ("drug_exposure", row, "drug-unknown")
        ]
        assert leaks(str(caught.value)) == []
        assert not (tmp_path / "imported").exists()
    finally:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "UPDATE cdm.drug_exposure SET drug_concept_id = :concept WHERE drug_exposure_id = :row"
                ),
                {"row": row, "concept": original},
            )
        engine.dispose()
