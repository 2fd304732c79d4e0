"""The mapping from OMOP vocabulary concepts to linewise codes, read from one YAML file.

The bundled file is ``features/omop/mapping.yaml``; ``docs/omop.md`` explains each entry. A concept set
names concepts by code or by name within vocabularies, never by ``concept_id``: the ids are looked up
in the database's own ``concept`` table, and a set stands for its concepts and all their descendants.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Final

import yaml

from linewise.features.vocabulary import (
    DRUG_CODES,
    GENOMIC_MARKERS,
    LOCAL_THERAPY_TYPES,
    MENOPAUSAL_STATUS,
    SITES,
)

_MEASUREMENTS: Final = (
    "er_percent",
    "pgr_percent",
    "ki67_percent",
    "her2_ihc_score",
    "her2_ish",
    "grade",
    "ecog",
)


class MappingError(ValueError):
    """The mapping file cannot be read or does not have the documented shape."""


@dataclass(frozen=True)
class ConceptSet:
    """Concepts named by code or by lower-case name within vocabularies.

    Attributes
    ----------
    vocabularies : tuple of str
        ``vocabulary_id`` values searched.
    codes : tuple of str
        ``concept_code`` values.
    names : tuple of str
        ``concept_name`` values, lower case.
    """

    vocabularies: tuple[str, ...]
    codes: tuple[str, ...] = ()
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class IngredientRule:
    """A linewise drug found through an ingredient name, optionally only in drugs whose name contains text."""

    drug: str
    ingredient: str
    name_contains: str | None = None


@dataclass(frozen=True)
class OmopMapping:
    """Every concept set and rule linewise needs to read a CDM (see ``mapping.yaml``)."""

    drug_vocabularies: tuple[str, ...]
    ingredients: tuple[IngredientRule, ...]
    cancer_classes: ConceptSet
    primary: ConceptSet
    histology: Mapping[str, ConceptSet]
    metastasis: Mapping[str, ConceptSet]
    de_novo_days: int
    measurements: Mapping[str, ConceptSet]
    genes: Mapping[str, ConceptSet]
    positive: ConceptSet
    negative: ConceptSet
    menopausal_status: Mapping[str, ConceptSet]
    procedure_types: Mapping[str, ConceptSet]
    procedure_sites: Mapping[str, ConceptSet]
    treatment_regimen: ConceptSet
    disease_progression: ConceptSet
    progression_observation: ConceptSet
    condition_field: ConceptSet
    drug_exposure_field: ConceptSet

    def concept_sets(self) -> Iterator[ConceptSet]:
        """Every concept set of the mapping (for one vocabulary query)."""
        yield self.cancer_classes
        yield self.primary
        for group in (
            self.histology,
            self.metastasis,
            self.measurements,
            self.genes,
            self.menopausal_status,
            self.procedure_types,
            self.procedure_sites,
        ):
            yield from group.values()
        yield from (
            self.positive,
            self.negative,
            self.treatment_regimen,
            self.disease_progression,
            self.progression_observation,
            self.condition_field,
            self.drug_exposure_field,
        )


def default_mapping_path() -> Path:
    """Return the path of the bundled mapping file."""
    return Path(str(files("linewise.features.omop") / "mapping.yaml"))


def load_mapping(path: Path | str | None = None) -> OmopMapping:
    """Read a mapping file (default: the bundled one).

    Parameters
    ----------
    path : Path or str, optional
        A YAML file of the shape of ``features/omop/mapping.yaml``.

    Returns
    -------
    OmopMapping

    Raises
    ------
    MappingError
        When the file cannot be read, or an entry is missing, misnamed or of the wrong type.
    """
    where = Path(path) if path is not None else default_mapping_path()
    try:
        content = yaml.safe_load(where.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise MappingError(f"{where.name}: cannot read the mapping ({type(err).__name__})") from err
    try:
        return _mapping(content)
    except (KeyError, TypeError, ValueError) as err:
        raise MappingError(f"{where.name}: {err}") from err


def _mapping(content: Any) -> OmopMapping:
    drugs = _section(content, "drugs")
    conditions = _section(content, "conditions")
    measurements = _section(content, "measurements")
    observations = _section(content, "observations")
    procedures = _section(content, "procedures")
    episodes = _section(content, "episodes")
    links = _section(content, "links")
    rules = []
    for drug, entries in _section(drugs, "ingredients").items():
        if drug not in DRUG_CODES:
            raise ValueError(f"drugs.ingredients names {drug!r}, which is not a linewise drug code")
        for entry in entries:
            rules.append(
                IngredientRule(
                    drug,
                    str(entry["ingredient"]).lower(),
                    None if entry.get("name_contains") is None else str(entry["name_contains"]).lower(),
                )
            )
    de_novo_days = conditions["de_novo_days"]
    if not isinstance(de_novo_days, int) or de_novo_days < 0:
        raise ValueError("conditions.de_novo_days must be a whole number of days >= 0")
    return OmopMapping(
        drug_vocabularies=tuple(str(v) for v in drugs["vocabularies"]),
        ingredients=tuple(rules),
        cancer_classes=_concepts(drugs["cancer_classes"], "drugs.cancer_classes"),
        primary=_concepts(conditions["primary"], "conditions.primary"),
        histology=_keyed(conditions, "histology", {"nst", "lobular"}, "conditions"),
        metastasis=_keyed(conditions, "metastasis", SITES, "conditions"),
        de_novo_days=de_novo_days,
        measurements={name: _concepts(measurements[name], f"measurements.{name}") for name in _MEASUREMENTS},
        genes=_keyed(measurements, "genes", GENOMIC_MARKERS, "measurements"),
        positive=_concepts(measurements["positive"], "measurements.positive"),
        negative=_concepts(measurements["negative"], "measurements.negative"),
        menopausal_status=_keyed(observations, "menopausal_status", MENOPAUSAL_STATUS, "observations"),
        procedure_types=_keyed(procedures, "type", LOCAL_THERAPY_TYPES, "procedures"),
        procedure_sites=_keyed(procedures, "site", SITES, "procedures"),
        treatment_regimen=_concepts(episodes["treatment_regimen"], "episodes.treatment_regimen"),
        disease_progression=_concepts(episodes["disease_progression"], "episodes.disease_progression"),
        progression_observation=_concepts(
            episodes["progression_observation"], "episodes.progression_observation"
        ),
        condition_field=_concepts(links["condition_occurrence"], "links.condition_occurrence"),
        drug_exposure_field=_concepts(links["drug_exposure"], "links.drug_exposure"),
    )


def _section(content: Any, name: str) -> dict[str, Any]:
    if not isinstance(content, dict) or not isinstance(content.get(name), dict):
        raise ValueError(f"the mapping has no section {name!r} (a mapping of names to entries)")
    return content[name]


def _keyed(
    section: dict[str, Any], name: str, allowed: frozenset[str] | set[str], parent: str
) -> dict[str, ConceptSet]:
    entries = _section(section, name)
    unknown = sorted(set(entries) - set(allowed))
    if unknown:
        raise ValueError(f"{parent}.{name} names {unknown[0]!r}, which is not one of {sorted(allowed)}")
    return {key: _concepts(value, f"{parent}.{name}.{key}") for key, value in entries.items()}


def _concepts(entry: Any, where: str) -> ConceptSet:
    if not isinstance(entry, dict) or not entry.get("vocabularies"):
        raise ValueError(f"{where} must give vocabularies and codes or names")
    codes = tuple(str(code) for code in entry.get("codes", ()))
    names = tuple(str(name).lower() for name in entry.get("names", ()))
    if not codes and not names:
        raise ValueError(f"{where} must give codes or names")
    return ConceptSet(tuple(str(v) for v in entry["vocabularies"]), codes, names)
