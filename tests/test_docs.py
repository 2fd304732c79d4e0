"""The docs list what the code knows: every rule id and every code."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

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


OMOP_DOC = (ROOT / "docs" / "omop.md").read_text()


def test_every_omop_import_rule_is_documented() -> None:
    from linewise.features.omop import IMPORT_RULES

    documented = set(re.findall(r"^\| `([a-z0-9-]+)` \|", OMOP_DOC.split("## What is refused")[1], re.M))
    assert documented == set(IMPORT_RULES)


def test_every_stop_reason_is_documented() -> None:
    from linewise.features.omop.lines import STOP_REASONS

    section = OMOP_DOC.split("### End reasons")[1].split("\n## ")[0]
    assert [text for text in STOP_REASONS if f"`{text}`" not in section] == []


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


# ------------------------------------------------------------------ figures come from the benchmarks' JSON


def _doc_tables() -> Any:
    """``benchmarks/doc_tables.py``, the script that writes the docs' tables (benchmarks is no package)."""
    spec = importlib.util.spec_from_file_location("doc_tables", ROOT / "benchmarks" / "doc_tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DOC_TABLES = _doc_tables()
DOCUMENTS = DOC_TABLES.documents(ROOT)
#: A decimal number, with thousands separators allowed (1,024.5), not part of a word or version.
DECIMAL = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})*\.\d+(?![\w.])|(?<![\w.,])-?\d+\.\d+(?![\w.])")
#: A measured time or size: a number followed by a unit.
MEASURED = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)\s?(ms|seconds|minutes|MiB|MB|GB|requests/s|req/s)\b")


@pytest.mark.parametrize("path", DOCUMENTS, ids=[p.name for p in DOCUMENTS])
def test_every_table_is_what_its_json_gives(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert DOC_TABLES.rewrite(text) == text, f"run benchmarks/doc_tables.py: {path.name} is stale"


def test_every_benchmark_has_exactly_one_table() -> None:
    named = [m["name"] for path in DOCUMENTS for m in DOC_TABLES.BLOCK.finditer(path.read_text())]
    results = sorted(p.stem for p in (ROOT / "benchmarks" / "results").glob("*.json"))
    assert sorted(named) == results
    assert sorted(DOC_TABLES.RENDERERS) == results


#: The folders that install as the package (``linewise/`` links to the others).
PACKAGE_FOLDERS = ("linewise", "features", "models", "training", "serving", "simulation")


def _literals() -> set[float]:
    """Every number the code and its bundled settings hold: what prose may quote outside the tables."""
    numbers: set[float] = set()
    folders = [ROOT / name for name in PACKAGE_FOLDERS]
    for source in (path for folder in folders for path in folder.rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and type(node.value) in (int, float):
                numbers.add(float(node.value))

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            numbers.add(float(value))
        elif isinstance(value, str):
            numbers.update(float(m.replace(",", "")) for m in DECIMAL.findall(value))

    for settings in (path for folder in folders for path in folder.rglob("*.yaml")):
        walk(yaml.safe_load(settings.read_text(encoding="utf-8")))
    return numbers


LITERALS = _literals()


def _outside_tables(text: str) -> str:
    """The prose: the text without the generated tables and without version numbers (Python 3.11)."""
    return re.sub(r"(?:Python|version) \d+\.\d+", "", DOC_TABLES.BLOCK.sub("", text))


@pytest.mark.parametrize("path", DOCUMENTS, ids=[p.name for p in DOCUMENTS])
def test_no_measured_figure_outside_the_tables(path: Path) -> None:
    # outside the generated tables, a decimal number must be a setting of the code or its configuration
    # (a threshold, a default, a published target), never a measurement typed in by hand
    prose = _outside_tables(path.read_text(encoding="utf-8"))
    stray = [m for m in DECIMAL.findall(prose) if float(m.replace(",", "")) not in LITERALS]
    assert stray == [], f"{path.name}: figures not from benchmarks/results (put them in a table): {stray}"
    measured = [
        f"{n} {unit}" for n, unit in MEASURED.findall(prose) if float(n.replace(",", "")) not in LITERALS
    ]
    assert measured == [], f"{path.name}: measured times or sizes outside the tables: {measured}"


def test_the_figure_rules_can_fail() -> None:
    assert DECIMAL.findall("capture 0.792 against 0.05, 1,024.5 courses, v3.11 and 1e-12") == [
        "0.792",
        "0.05",
        "1,024.5",
    ]
    assert MEASURED.findall("took 24.6 ms and 7 seconds, 3 MiB") == [
        ("24.6", "ms"),
        ("7", "seconds"),
        ("3", "MiB"),
    ]
    assert 0.792 not in LITERALS and 0.05 in LITERALS  # a measured capture, and the default support


@pytest.mark.parametrize("path", [*DOCUMENTS, *sorted(ROOT.glob("*/__init__.py"))], ids=lambda p: p.name)
def test_docs_state_todays_facts(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    diary = [
        word for word in ("not built yet", "2026-", "scratch script", "not kept", "was tried") if word in text
    ]
    assert diary == []


def test_every_fhir_bundle_rule_is_documented() -> None:
    from linewise.features.fhir import BUNDLE_RULES

    section = (ROOT / "docs" / "fhir.md").read_text().split("## What is refused")[1].split("\n## ")[0]
    documented = dict(re.findall(r"^\| `([a-z-]+)` \| (.+) \|$", section, re.M))
    assert documented == dict(BUNDLE_RULES)
