"""The docs list what the code knows: every rule id and every code."""

from __future__ import annotations

from pathlib import Path

import pytest

from linewise.features import RULES
from linewise.features import vocabulary as voc

ROOT = Path(__file__).resolve().parents[1]
DATA_LOCK_DOC = (ROOT / "docs" / "data-lock.md").read_text()

VOCABULARIES = {
    "menopausal_status": voc.MENOPAUSAL_STATUS,
    "histology": voc.HISTOLOGY,
    "her2_ihc": voc.HER2_IHC,
    "sites": voc.SITES,
    "end_reason": voc.LINE_END_REASONS,
    "pattern": voc.PROGRESSION_PATTERNS,
    "method": voc.PROGRESSION_METHODS,
    "local_therapy_type": voc.LOCAL_THERAPY_TYPES,
    "marker": voc.MARKERS,
    "sample": voc.SAMPLES,
    "drugs": voc.DRUG_CODES,
    "drug_categories": frozenset(voc.DRUG_CATEGORY.values()),
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_every_rule_is_documented(rule: str) -> None:
    assert f"| `{rule}` |" in DATA_LOCK_DOC


@pytest.mark.parametrize("name", VOCABULARIES)
def test_every_code_is_documented(name: str) -> None:
    missing = [code for code in VOCABULARIES[name] if f"`{code}`" not in DATA_LOCK_DOC]
    assert not missing


def test_drug_table_rows_match_categories() -> None:
    for category in set(voc.DRUG_CATEGORY.values()):
        row = next(line for line in DATA_LOCK_DOC.splitlines() if line.startswith(f"| `{category}` |"))
        documented = {cell.strip(" `") for cell in row.split("|")[2].split(",")}
        assert documented == {code for code, cat in voc.DRUG_CATEGORY.items() if cat == category}


def test_readme_gives_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme
    assert "make test" in readme


def test_every_feature_is_documented() -> None:
    from linewise.features.examples import FEATURES, GENOMIC

    doc = (ROOT / "docs" / "features.md").read_text()
    for feature in FEATURES:
        if feature.startswith("site_") and feature != "site_count":
            assert "`site_<site>`" in doc
        elif feature.split("_")[0] in GENOMIC:
            assert "`<marker>_tested`, `<marker>_mutated`" in doc and feature.split("_")[0] in doc
        else:
            assert f"`{feature}`" in doc, feature


def test_every_score_lock_column_is_documented() -> None:
    from linewise.serving.batch import BATCH_COLUMNS

    doc = (ROOT / "docs" / "serving.md").read_text()
    section = doc.split("## `linewise score-lock")[1]
    named = {f"`{column}`" for column in BATCH_COLUMNS if f"`{column}`" in section}
    summaries = {c for c in BATCH_COLUMNS if c.startswith(("pfs_", "os_"))}
    assert "{pfs,os}_{median,rmst12,rmst24,rmst12_vs_tbp,rmst24_vs_tbp}" in section
    assert {c for c in BATCH_COLUMNS if f"`{c}`" not in named} == summaries
