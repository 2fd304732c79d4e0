"""Write a data lock into an OMOP CDM 5.4 database, for tests and benchmarks of ``linewise import-omop``.

The database gets the tables of ``simulation/omop_cdm.sql`` and a small vocabulary of its own: one
concept for every concept set of the import mapping, found by the code or name that the mapping gives,
with local concept ids (above 2,000,000,000, the range OMOP leaves to sites) so that nothing can depend on
the ids of the OHDSI vocabularies. Below them sit more specific concepts (clinical drugs under their
ingredient, a bone metastasis of the spine under bone metastases) that the data uses, so that an import
has to walk ``concept_ancestor``.

Lines become drug exposures, one per drug and line. A patient's lines are also written as Treatment
Regimen episodes when ``episodes`` asks for it: ``"all"``, ``"none"``, or ``"needed"`` (only the patients
whose lines the regimen rule cannot tell apart from the exposures alone, and a share of the others).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa

from linewise.features.omop.lines import RegimenRule, lines_from_exposures
from linewise.features.omop.mapping import ConceptSet, OmopMapping, load_mapping
from linewise.features.vocabulary import DRUG_CATEGORY

#: The first local concept id.
LOCAL_CONCEPTS: Final = 2_000_000_001
#: Standard concept ids of the CDM that the writer fills in and the importer never reads.
_FEMALE: Final = 8532
_EHR: Final = 32817
_END_REASON_TEXT: Final = {
    "progression": "Disease progression",
    "toxicity": "Adverse event",
    "death": "Died",
    "patient_choice": "Patient decision",
    "completed": "Regimen completed",
    "other": "Other",
}
_ENDOCRINE: Final = frozenset({"ai", "fulvestrant", "serm", "ovarian_suppression", "oral_serd"})
_HER2_SCORE: Final = {"0": 0, "1+": 1, "2+_ish_neg": 2}
EpisodeChoice = Literal["all", "none", "needed"]


@dataclass(frozen=True)
class OmopWriteSummary:
    """What was written.

    Attributes
    ----------
    persons : int
        Persons (one per patient of the lock).
    rows : dict of str to int
        Rows per CDM table.
    persons_with_episodes : int
        Persons whose lines were written as Treatment Regimen episodes.
    persons_needing_episodes : int
        Of those, the persons whose lines the regimen rule derives differently from the lock.
    """

    persons: int
    rows: dict[str, int]
    persons_with_episodes: int
    persons_needing_episodes: int


def cdm_ddl(cdm_schema: str | None = None, vocabulary_schema: str | None = None) -> list[str]:
    """Return the CREATE TABLE statements of ``omop_cdm.sql`` for the given schemas."""
    text = (files("linewise.simulation") / "omop_cdm.sql").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    cdm = f"{cdm_schema}." if cdm_schema else ""
    vocab = f"{vocabulary_schema or cdm_schema}." if (vocabulary_schema or cdm_schema) else ""
    statements = "\n".join(lines).replace("{cdm}", cdm).replace("{vocab}", vocab).split(";")
    return [s.strip() for s in statements if s.strip()]


class _Vocabulary:
    """Local concepts, and the ancestor rows that relate them."""

    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []
        self.parents: dict[int, list[int]] = {}
        self._by_key: dict[tuple[str, str], int] = {}

    def add(
        self,
        name: str,
        vocabulary: str,
        code: str,
        *,
        domain: str = "Observation",
        concept_class: str = "Clinical Finding",
        parents: tuple[int, ...] = (),
    ) -> int:
        key = (vocabulary, code)
        if key in self._by_key:
            return self._by_key[key]
        concept_id = LOCAL_CONCEPTS + len(self.rows)
        self.rows.append(
            {
                "concept_id": concept_id,
                "concept_name": name,
                "domain_id": domain,
                "vocabulary_id": vocabulary,
                "concept_class_id": concept_class,
                "standard_concept": "S",
                "concept_code": code,
                "valid_start_date": pd.Timestamp("1970-01-01"),
                "valid_end_date": pd.Timestamp("2099-12-31"),
                "invalid_reason": None,
            }
        )
        self._by_key[key] = concept_id
        self.parents[concept_id] = list(parents)
        return concept_id

    def of(
        self,
        concept_set: ConceptSet,
        domain: str,
        concept_class: str = "Clinical Finding",
        *,
        name: str | None = None,
        parents: tuple[int, ...] = (),
    ) -> int:
        """Return the concept that stands for a concept set: its first code, else its first name."""
        vocabulary = concept_set.vocabularies[0]
        if concept_set.codes:
            code = concept_set.codes[0]
            name = name or code
        else:
            name = concept_set.names[0][:1].upper() + concept_set.names[0][1:]
            code = f"L{len(self.rows) + 1:06d}"
        return self.add(name, vocabulary, code, domain=domain, concept_class=concept_class, parents=parents)

    def ancestors(self) -> pd.DataFrame:
        """Every (ancestor, descendant) pair with its separation, each concept its own ancestor at 0."""
        rows = []
        for concept_id in self.parents:
            seen = {concept_id: 0}
            frontier = [concept_id]
            while frontier:
                nxt = []
                for child in frontier:
                    for parent in self.parents[child]:
                        if parent not in seen:
                            seen[parent] = seen[child] + 1
                            nxt.append(parent)
                frontier = nxt
            rows += [(ancestor, concept_id, level, level) for ancestor, level in seen.items()]
        return pd.DataFrame(
            rows,
            columns=[
                "ancestor_concept_id",
                "descendant_concept_id",
                "min_levels_of_separation",
                "max_levels_of_separation",
            ],
        )


@dataclass
class _Concepts:
    vocabulary: _Vocabulary
    primary: dict[str, int]
    metastasis: dict[str, tuple[int, int]]
    drugs: dict[str, tuple[int, int]]
    paracetamol: int
    measurement: dict[str, int]
    genes: dict[str, int]
    positive: int
    negative: int
    menopause: dict[str, int]
    procedures: dict[str, int]
    body_sites: dict[str, int]
    treatment_regimen: int
    disease_progression: int
    progression_observation: int
    condition_field: int
    drug_exposure_field: int


def _concepts(mapping: OmopMapping) -> _Concepts:
    v = _Vocabulary()
    breast = v.of(mapping.primary, "Condition")
    primary = {
        "nst": v.of(mapping.histology["nst"], "Condition", parents=(breast,)),
        "lobular": v.of(mapping.histology["lobular"], "Condition", parents=(breast,)),
        "other": v.add(
            "Mucinous carcinoma of breast", "SNOMED", "L-MUC", domain="Condition", parents=(breast,)
        ),
    }
    general = v.of(mapping.metastasis["other"], "Condition")
    metastasis = {"other": (general, general)}
    for site, concept_set in mapping.metastasis.items():
        if site == "other":
            continue
        concept = v.of(concept_set, "Condition", parents=(general,))
        child = v.add(
            f"{concept_set.names[0] if concept_set.names else site}, specified part",
            "SNOMED",
            f"L-MET-{site}",
            domain="Condition",
            parents=(concept,),
        )
        metastasis[site] = (concept, child)
    l01 = v.add("ANTINEOPLASTIC AGENTS", "ATC", "L01", domain="Drug", concept_class="ATC 2nd")
    l02 = v.add("ENDOCRINE THERAPY", "ATC", "L02", domain="Drug", concept_class="ATC 2nd")
    vocabulary = mapping.drug_vocabularies[0]
    drugs = {}
    for rule in mapping.ingredients:
        if rule.drug in drugs:
            continue
        atc = l02 if DRUG_CATEGORY[rule.drug] in _ENDOCRINE else l01
        ingredient = v.add(
            rule.ingredient,
            vocabulary,
            f"I-{rule.ingredient}",
            domain="Drug",
            concept_class="Ingredient",
            parents=(atc,),
        )
        label = (
            f"{rule.ingredient} {rule.name_contains} 1 MG Injection"
            if rule.name_contains
            else (f"{rule.ingredient} 1 MG Oral Tablet")
        )
        clinical = v.add(
            label,
            vocabulary,
            f"D-{rule.drug}",
            domain="Drug",
            concept_class="Clinical Drug",
            parents=(ingredient,),
        )
        drugs[rule.drug] = (clinical, ingredient if rule.name_contains is None else clinical)
    paracetamol = v.add(
        "acetaminophen 500 MG Oral Tablet",
        vocabulary,
        "D-acetaminophen",
        domain="Drug",
        concept_class="Clinical Drug",
    )
    measurement = {
        name: v.of(concept_set, "Measurement", "Lab Test", name=name)
        for name, concept_set in mapping.measurements.items()
    }
    genes = {
        gene: v.of(concept_set, "Measurement", "Genomic Variant")
        for gene, concept_set in mapping.genes.items()
    }
    return _Concepts(
        vocabulary=v,
        primary=primary,
        metastasis=metastasis,
        drugs=drugs,
        paracetamol=paracetamol,
        measurement=measurement,
        genes=genes,
        positive=v.of(mapping.positive, "Meas Value", "Qualifier Value"),
        negative=v.of(mapping.negative, "Meas Value", "Qualifier Value"),
        menopause={k: v.of(s, "Observation") for k, s in mapping.menopausal_status.items()},
        procedures={k: v.of(s, "Procedure", "Procedure") for k, s in mapping.procedure_types.items()},
        body_sites={
            k: v.of(s, "Spec Anatomic Site", "Body Structure") for k, s in mapping.procedure_sites.items()
        },
        treatment_regimen=v.of(mapping.treatment_regimen, "Episode", "Episode"),
        disease_progression=v.of(mapping.disease_progression, "Episode", "Episode"),
        progression_observation=v.of(mapping.progression_observation, "Observation"),
        condition_field=v.of(mapping.condition_field, "Metadata", "Field"),
        drug_exposure_field=v.of(mapping.drug_exposure_field, "Metadata", "Field"),
    )


def _read_lock(lock: Path) -> tuple[dict[str, pd.DataFrame], dict[str, object]]:
    manifest = json.loads((lock / "manifest.json").read_text(encoding="utf-8"))
    tables = {}
    for name in (
        "patients",
        "metastases",
        "lines",
        "progressions",
        "local_therapies",
        "biomarkers",
        "performance_status",
    ):
        path = lock / f"{name}.csv"
        frame = (
            pd.read_csv(path, dtype=str, keep_default_na=False)
            if path.exists()
            else pd.read_parquet(lock / f"{name}.parquet").astype(str)
        )
        tables[name] = frame.replace("", None)
    return tables, manifest


def _day(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, format="%Y-%m-%d")


def omop_frames(
    lock: Path | str,
    *,
    episodes: EpisodeChoice = "needed",
    seed: int = 0,
    mapping: OmopMapping | None = None,
) -> tuple[dict[str, pd.DataFrame], OmopWriteSummary]:
    """Return the CDM tables that hold the lock in ``lock`` (a folder of the data-lock contract).

    Parameters
    ----------
    lock : Path or str
        The lock folder (simulated or hand-written: its identifiers are written to the database).
    episodes : {"needed", "all", "none"}
        Which patients' lines are also written as Treatment Regimen episodes.
    seed : int
        Seed of the share of patients given episodes under ``"needed"``, and of the concept variants.
    mapping : OmopMapping, optional
        The import mapping whose concepts the vocabulary holds (default: the bundled one).

    Returns
    -------
    tables : dict of str to DataFrame
        One frame per CDM table.
    summary : OmopWriteSummary
    """
    mapping = mapping or load_mapping()
    tables, manifest = _read_lock(Path(lock))
    c = _concepts(mapping)
    rng = np.random.default_rng(seed)
    patients = tables["patients"]
    n = len(patients)
    person_of = pd.Series(np.arange(1, n + 1), index=patients["patient_id"].to_numpy())
    dx = _day(patients["metastatic_dx_date"])
    last = _day(patients["last_contact_date"])
    age = pd.to_numeric(patients["age_at_metastatic_dx"]).astype(int)
    birth = pd.Series(
        [d - pd.DateOffset(years=int(a)) - pd.Timedelta(days=100) for d, a in zip(dx, age, strict=True)]
    )
    centers = sorted(set(patients["center_id"]))
    care_site_of = {center: i + 1 for i, center in enumerate(centers)}
    out: dict[str, pd.DataFrame] = {}
    out["care_site"] = pd.DataFrame(
        {
            "care_site_id": [care_site_of[x] for x in centers],
            "care_site_name": [f"Centre {x}" for x in centers],
            "care_site_source_value": centers,
        }
    )
    out["person"] = pd.DataFrame(
        {
            "person_id": np.arange(1, n + 1),
            "gender_concept_id": _FEMALE,
            "year_of_birth": birth.dt.year,
            "month_of_birth": birth.dt.month,
            "day_of_birth": birth.dt.day,
            "birth_datetime": birth,
            "race_concept_id": 0,
            "ethnicity_concept_id": 0,
            "care_site_id": patients["center_id"].map(care_site_of).to_numpy(),
            "person_source_value": patients["patient_id"].to_numpy(),
        }
    )
    out["observation_period"] = pd.DataFrame(
        {
            "observation_period_id": np.arange(1, n + 1),
            "person_id": np.arange(1, n + 1),
            "observation_period_start_date": np.minimum(dx - pd.Timedelta(days=1200), birth),
            "observation_period_end_date": last,
            "period_type_concept_id": _EHR,
        }
    )
    dead = patients["vital_status"] == "dead"
    out["death"] = pd.DataFrame(
        {
            "person_id": np.arange(1, n + 1)[dead.to_numpy()],
            "death_date": _day(patients.loc[dead, "death_date"]).to_numpy(),
            "death_type_concept_id": _EHR,
        }
    )
    ids = _Ids()
    conditions, primary_row = _conditions(tables, patients, person_of, dx, c, ids, rng)
    out["condition_occurrence"] = conditions
    out["measurement"] = _measurements(tables, patients, person_of, dx, primary_row, c, ids)
    out["observation"] = pd.DataFrame(
        {
            "observation_id": ids.take("observation", n),
            "person_id": np.arange(1, n + 1),
            "observation_concept_id": patients["menopausal_status"].map(c.menopause).to_numpy(),
            "observation_date": dx.to_numpy(),
            "observation_type_concept_id": _EHR,
        }
    )
    exposures, episode_frames, with_episodes, needed = _lines(
        tables, person_of, last, dead, c, ids, episodes, rng
    )
    out["drug_exposure"] = exposures
    out["episode"], out["episode_event"] = episode_frames
    therapies = tables["local_therapies"]
    out["procedure_occurrence"] = pd.DataFrame(
        {
            "procedure_occurrence_id": ids.take("procedure", len(therapies)),
            "person_id": therapies["patient_id"].map(person_of).to_numpy(),
            "procedure_concept_id": therapies["type"].map(c.procedures).to_numpy(),
            "procedure_date": _day(therapies["date"]).to_numpy(),
            "procedure_type_concept_id": _EHR,
            "modifier_concept_id": therapies["site"].map(c.body_sites).to_numpy(),
        }
    )
    out["cdm_source"] = pd.DataFrame(
        {
            "cdm_source_name": [f"linewise OMOP copy of lock {manifest['lock_id']}"],
            "cdm_source_abbreviation": ["linewise"],
            "cdm_holder": ["linewise tests"],
            "source_release_date": [pd.Timestamp(str(manifest["lock_date"]))],
            "cdm_release_date": [pd.Timestamp(str(manifest["lock_date"]))],
            "cdm_version": ["v5.4"],
            "cdm_version_concept_id": [0],
            "vocabulary_version": ["linewise local"],
        }
    )
    out["concept"] = pd.DataFrame(c.vocabulary.rows)
    out["concept_ancestor"] = c.vocabulary.ancestors()
    summary = OmopWriteSummary(
        persons=n,
        rows={name: len(frame) for name, frame in out.items()},
        persons_with_episodes=with_episodes,
        persons_needing_episodes=needed,
    )
    return out, summary


def _stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate the frames that have rows (all of them empty: the first), keeping column dtypes."""
    kept = [frame for frame in frames if len(frame)] or frames[:1]
    return pd.concat(kept, ignore_index=True)


class _Ids:
    """Primary keys per table, counted from 1."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def take(self, table: str, count: int) -> np.ndarray:
        start = self._next.get(table, 1)
        self._next[table] = start + count
        return np.arange(start, start + count, dtype=np.int64)


def _conditions(
    tables: dict[str, pd.DataFrame],
    patients: pd.DataFrame,
    person_of: pd.Series,
    dx: pd.Series,
    c: _Concepts,
    ids: _Ids,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, np.ndarray]:
    n = len(patients)
    de_novo = patients["de_novo"].str.lower().isin(["true", "1"]).to_numpy()
    primary_ids = ids.take("condition", n)
    primary = pd.DataFrame(
        {
            "condition_occurrence_id": primary_ids,
            "person_id": np.arange(1, n + 1),
            "condition_concept_id": patients["histology"].map(c.primary).to_numpy(),
            "condition_start_date": np.where(de_novo, dx, dx - pd.Timedelta(days=1100)),
            "condition_type_concept_id": _EHR,
        }
    )
    metastases = tables["metastases"]
    variant = rng.random(len(metastases)) < 0.5
    concept = [c.metastasis[site][int(v)] for site, v in zip(metastases["site"], variant, strict=True)]
    rows = pd.DataFrame(
        {
            "condition_occurrence_id": ids.take("condition", len(metastases)),
            "person_id": metastases["patient_id"].map(person_of).to_numpy(),
            "condition_concept_id": concept,
            "condition_start_date": _day(metastases["date_detected"]).to_numpy(),
            "condition_type_concept_id": _EHR,
        }
    )
    return _stack([primary, rows]), primary_ids


def _measurements(
    tables: dict[str, pd.DataFrame],
    patients: pd.DataFrame,
    person_of: pd.Series,
    dx: pd.Series,
    primary_row: np.ndarray,
    c: _Concepts,
    ids: _Ids,
) -> pd.DataFrame:
    parts = []
    persons = np.arange(1, len(patients) + 1)

    def add(
        kind: str,
        person: np.ndarray,
        date: object,
        number: object = None,
        answer: object = None,
        linked: np.ndarray | None = None,
    ) -> None:
        count = len(person)
        frame = pd.DataFrame(
            {
                "person_id": person,
                "measurement_concept_id": kind if isinstance(kind, int) else c.measurement[kind],
                "measurement_date": date,
                "measurement_type_concept_id": _EHR,
                "value_as_number": pd.array(
                    np.full(count, np.nan) if number is None else number, dtype="Float64"
                ),
                "value_as_concept_id": pd.array(
                    np.full(count, answer) if np.isscalar(answer) else answer, dtype="Int64"
                )
                if answer is not None
                else pd.array([None] * count, dtype="Int64"),
                "measurement_event_id": pd.array([None] * count if linked is None else linked, dtype="Int64"),
                "meas_event_field_concept_id": pd.array(
                    [None if linked is None else c.condition_field] * count, dtype="Int64"
                ),
            }
        )
        parts.append(frame)

    for column in ("er_percent", "pgr_percent", "ki67_percent", "grade"):
        value = pd.to_numeric(patients[column])
        has = value.notna().to_numpy()
        add(column, persons[has], dx[has].to_numpy(), value[has].to_numpy(), linked=primary_row[has])
    her2 = patients["her2_ihc"]
    has = her2.notna().to_numpy()
    add(
        "her2_ihc_score",
        persons[has],
        dx[has].to_numpy(),
        her2[has].map(_HER2_SCORE).to_numpy(),
        linked=primary_row[has],
    )
    two = (her2 == "2+_ish_neg").to_numpy()
    add("her2_ish", persons[two], dx[two].to_numpy(), answer=c.negative, linked=primary_row[two])
    markers = tables["biomarkers"]
    who = markers["patient_id"].map(person_of).to_numpy()
    when = _day(markers["date"]).to_numpy()
    for gene, concept in c.genes.items():
        hit = (markers["marker"] == gene).to_numpy()
        answer = np.where(markers["value"][hit] == "mutated", c.positive, c.negative)
        add(concept, who[hit], when[hit], answer=answer)  # type: ignore[arg-type]
    for marker, kind in (("er", "er_percent"), ("pgr", "pgr_percent"), ("ki67", "ki67_percent")):
        hit = (markers["marker"] == marker).to_numpy()
        add(kind, who[hit], when[hit], pd.to_numeric(markers["value"][hit]).to_numpy())
    hit = (markers["marker"] == "her2_ihc").to_numpy()
    add("her2_ihc_score", who[hit], when[hit], markers["value"][hit].map(_HER2_SCORE).to_numpy())
    ish = hit & (markers["value"] == "2+_ish_neg").to_numpy()
    add("her2_ish", who[ish], when[ish], answer=c.negative)
    ecog = tables["performance_status"]
    add(
        "ecog",
        ecog["patient_id"].map(person_of).to_numpy(),
        _day(ecog["date"]).to_numpy(),
        pd.to_numeric(ecog["ecog"]).to_numpy(),
    )
    frame = _stack(parts)
    frame.insert(0, "measurement_id", ids.take("measurement", len(frame)))
    return frame


def _lines(
    tables: dict[str, pd.DataFrame],
    person_of: pd.Series,
    last: pd.Series,
    dead: pd.Series,
    c: _Concepts,
    ids: _Ids,
    episodes: EpisodeChoice,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, tuple[pd.DataFrame, pd.DataFrame], int, int]:
    lines = tables["lines"].copy()
    lines["person_id"] = lines["patient_id"].map(person_of)
    last_of = pd.Series(last.to_numpy(), index=person_of.to_numpy())
    lines["start"] = _day(lines["start_date"])
    lines["end"] = _day(lines["end_date"]).fillna(lines["person_id"].map(last_of))
    lines["line_row"] = np.arange(len(lines))
    drugs = lines.assign(drug=lines["drugs"].str.split("+")).explode("drug", ignore_index=True)
    variant = rng.random(len(drugs)) < 0.5
    concept = [c.drugs[d][int(v)] for d, v in zip(drugs["drug"], variant, strict=True)]
    exposures = pd.DataFrame(
        {
            "drug_exposure_id": ids.take("drug_exposure", len(drugs)),
            "person_id": drugs["person_id"].to_numpy(),
            "drug_concept_id": concept,
            "drug_exposure_start_date": drugs["start"].to_numpy(),
            "drug_exposure_end_date": drugs["end"].to_numpy(),
            "drug_type_concept_id": _EHR,
            "stop_reason": drugs["end_reason"].map(_END_REASON_TEXT).to_numpy(),
            "drug": drugs["drug"].to_numpy(),
            "line_row": drugs["line_row"].to_numpy(),
        }
    )
    comfort = exposures.iloc[::7]
    extra = pd.DataFrame(
        {
            "drug_exposure_id": ids.take("drug_exposure", len(comfort)),
            "person_id": comfort["person_id"].to_numpy(),
            "drug_concept_id": c.paracetamol,
            "drug_exposure_start_date": comfort["drug_exposure_start_date"].to_numpy(),
            "drug_exposure_end_date": comfort["drug_exposure_start_date"].to_numpy(),
            "drug_type_concept_id": _EHR,
            "stop_reason": None,
        }
    )
    need = _needs_episodes(lines, exposures, tables, person_of, last_of, dead)
    if episodes == "all":
        chosen = set(lines["person_id"])
    elif episodes == "none":
        chosen = set()
    else:
        persons = sorted(set(lines["person_id"]))
        chosen = need | {p for p, u in zip(persons, rng.random(len(persons)), strict=True) if u < 0.5}
    on = lines[lines["person_id"].isin(chosen)]
    episode_ids = ids.take("episode", len(on))
    episode_of_line = pd.Series(episode_ids, index=on["line_row"].to_numpy())
    regimen = pd.DataFrame(
        {
            "episode_id": episode_ids,
            "person_id": on["person_id"].to_numpy(),
            "episode_concept_id": c.treatment_regimen,
            "episode_start_date": on["start"].to_numpy(),
            "episode_end_date": _day(on["end_date"]).to_numpy(),
            "episode_number": pd.array(pd.to_numeric(on["line_number"]).to_numpy(), dtype="Int64"),
            "episode_source_value": pd.Series(None, index=on.index, dtype=object).to_numpy(),
            "episode_object_concept_id": 0,
            "episode_type_concept_id": _EHR,
        }
    )
    linked = exposures[exposures["line_row"].isin(episode_of_line.index)]
    events = pd.DataFrame(
        {
            "episode_id": linked["line_row"].map(episode_of_line).to_numpy(),
            "event_id": linked["drug_exposure_id"].to_numpy(),
            "episode_event_field_concept_id": c.drug_exposure_field,
        }
    )
    progressions = tables["progressions"]
    progression = pd.DataFrame(
        {
            "episode_id": ids.take("episode", len(progressions)),
            "person_id": progressions["patient_id"].map(person_of).to_numpy(),
            "episode_concept_id": c.disease_progression,
            "episode_start_date": _day(progressions["date"]).to_numpy(),
            "episode_end_date": pd.Series(
                pd.NaT, index=progressions.index, dtype="datetime64[ns]"
            ).to_numpy(),
            "episode_number": pd.array([None] * len(progressions), dtype="Int64"),
            "episode_object_concept_id": 0,
            "episode_type_concept_id": _EHR,
            "episode_source_value": (
                progressions["pattern"] + ", " + progressions["method"].fillna("method not recorded")
            ).to_numpy(),
        }
    )
    all_exposures = _stack([exposures.drop(columns=["drug", "line_row"]), extra]).sort_values(
        "drug_exposure_id", ignore_index=True
    )
    episode = _stack([regimen, progression])
    return all_exposures, (episode, events), len(chosen), len(need)


def _needs_episodes(
    lines: pd.DataFrame,
    exposures: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    person_of: pd.Series,
    last_of: pd.Series,
    dead: pd.Series,
) -> set[int]:
    """Persons whose lines the regimen rule would derive differently from the lock."""
    progressions = tables["progressions"]
    dates = pd.DataFrame(
        {"person_id": progressions["patient_id"].map(person_of), "date": _day(progressions["date"])}
    )
    follow_up = pd.DataFrame(
        {"person_id": last_of.index, "end_date": last_of.to_numpy(), "alive": ~dead.to_numpy()}
    )
    derived = lines_from_exposures(exposures, dates, follow_up, RegimenRule())
    expected = pd.DataFrame(
        {
            "person_id": lines["person_id"],
            "line_number": pd.to_numeric(lines["line_number"]),
            "start_date": lines["start"],
            "end_date": _day(lines["end_date"]),
            "drugs": lines["drugs"],
            "end_reason": lines["end_reason"],
        }
    )
    columns = list(expected.columns)
    got = derived[columns].sort_values(["person_id", "line_number"], ignore_index=True)
    want = expected.sort_values(["person_id", "line_number"], ignore_index=True)
    differ: set[int] = set()
    for person, frame in want.groupby("person_id"):
        mine = got[got["person_id"] == person]
        if not _same_lines(frame.reset_index(drop=True), mine.reset_index(drop=True)):
            differ.add(int(person))
    return differ


def _same_lines(want: pd.DataFrame, got: pd.DataFrame) -> bool:
    if len(want) != len(got):
        return False
    for column in want.columns:
        a, b = want[column], got[column]
        if column == "drugs":
            a, b = a.str.split("+").map(frozenset), b.str.split("+").map(frozenset)
        if not ((a == b) | (a.isna() & b.isna())).all():
            return False
    return True


def write_omop(
    lock: Path | str,
    url: str,
    *,
    cdm_schema: str | None = None,
    vocabulary_schema: str | None = None,
    episodes: EpisodeChoice = "needed",
    seed: int = 0,
) -> OmopWriteSummary:
    """Create the CDM tables in the database at ``url`` and fill them with the lock in ``lock``.

    Parameters
    ----------
    lock : Path or str
        The lock folder.
    url : str
        SQLAlchemy URL of an empty database (``duckdb:///file.duckdb``, ``postgresql+psycopg://...``).
    cdm_schema, vocabulary_schema : str, optional
        Schemas to create and fill (default: the connection's default schema).
    episodes : {"needed", "all", "none"}
        See :func:`omop_frames`.
    seed : int
        See :func:`omop_frames`.

    Returns
    -------
    OmopWriteSummary
    """
    frames, summary = omop_frames(lock, episodes=episodes, seed=seed)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            for schema in {cdm_schema, vocabulary_schema} - {None}:
                connection.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
            for statement in cdm_ddl(cdm_schema, vocabulary_schema):
                connection.execute(sa.text(statement))
        for table, frame in frames.items():
            schema = (
                vocabulary_schema or cdm_schema if table in {"concept", "concept_ancestor"} else cdm_schema
            )
            _insert(engine, table, schema, frame)
    finally:
        engine.dispose()
    return summary


def _insert(engine: sa.Engine, table: str, schema: str | None, frame: pd.DataFrame) -> None:
    """Bulk-insert ``frame`` into an existing table: DuckDB reads the frame, PostgreSQL gets COPY."""
    name = f"{schema}.{table}" if schema else table
    columns = ", ".join(frame.columns)
    with engine.begin() as connection:
        raw = connection.connection.driver_connection
        if engine.dialect.name == "duckdb":
            raw.register("linewise_frame", frame)  # type: ignore[union-attr]
            raw.execute(f"INSERT INTO {name} ({columns}) SELECT {columns} FROM linewise_frame")  # type: ignore[union-attr]
            raw.unregister("linewise_frame")  # type: ignore[union-attr]
        elif engine.dialect.name == "postgresql":
            with raw.cursor() as cursor, cursor.copy(f"COPY {name} ({columns}) FROM STDIN") as copy:  # type: ignore[union-attr]
                for row in _rows(frame):
                    copy.write_row(row)
        else:
            frame.to_sql(table, connection, schema=schema, if_exists="append", index=False)


def _rows(frame: pd.DataFrame) -> Iterator[tuple[object, ...]]:
    cleaned = frame.astype(object).where(frame.notna(), None)
    for row in cleaned.itertuples(index=False, name=None):
        yield tuple(value.date() if isinstance(value, pd.Timestamp) else value for value in row)
