"""Build the tables of a data lock from the tables of an OMOP CDM (``docs/omop.md`` gives every rule).

The cohort is every person with a primary breast cancer and at least one metastasis condition. Each
row of a lock table carries where it came from (``origin_table``, ``origin_id``: the OMOP table and the
row's primary key), so that a rule of the contract that the row breaks can be reported against the
database. Nothing here shows a value of a row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from linewise.features.omop.concepts import ConceptIndex, classify
from linewise.features.omop.lines import RegimenRule, lines_from_episodes, lines_from_exposures
from linewise.features.omop.mapping import OmopMapping
from linewise.features.omop.problems import ImportProblem
from linewise.features.omop.source import CLINICAL_COLUMNS, OmopReader

#: Lock tables and their columns, in the order written.
LOCK_COLUMNS: Final = {
    "patients": (
        "patient_id",
        "center_id",
        "age_at_metastatic_dx",
        "menopausal_status",
        "histology",
        "er_percent",
        "pgr_percent",
        "ki67_percent",
        "her2_ihc",
        "grade",
        "de_novo",
        "metastatic_dx_date",
        "last_contact_date",
        "vital_status",
        "death_date",
    ),
    "metastases": ("patient_id", "site", "date_detected"),
    "lines": ("patient_id", "line_number", "start_date", "end_date", "drugs", "end_reason"),
    "progressions": ("patient_id", "date", "line_number", "pattern", "new_sites", "method"),
    "local_therapies": ("patient_id", "date", "type", "site"),
    "biomarkers": ("patient_id", "date", "marker", "value", "sample"),
    "performance_status": ("patient_id", "date", "ecog"),
}
#: Patients columns read from baseline measurements, and the measurement kind of each.
_BASELINE: Final = {
    "er_percent": "er_percent",
    "pgr_percent": "pgr_percent",
    "ki67_percent": "ki67_percent",
    "grade": "grade",
}
#: Measurement kinds that, when not baseline, are biomarkers of the lock, with their marker code.
_MARKER_OF_KIND: Final = {"er_percent": "er", "pgr_percent": "pgr", "ki67_percent": "ki67"}
_HER2_SCORES: Final = {0: "0", 1: "1+", 3: "3+"}


@dataclass
class ImportedTables:
    """The lock tables built from a CDM, with where each row came from.

    Attributes
    ----------
    tables : dict of str to DataFrame
        The lock tables, columns of :data:`LOCK_COLUMNS` plus ``origin_table`` and ``origin_id``.
    problems : list of ImportProblem
        Every row that could not be mapped.
    persons : int
        Persons in the CDM.
    cohort : int
        Persons with a primary breast cancer and a metastasis: the patients of the lock.
    """

    tables: dict[str, pd.DataFrame]
    problems: list[ImportProblem] = field(default_factory=list)
    persons: int = 0
    cohort: int = 0


def build_tables(reader: OmopReader, mapping: OmopMapping, rule: RegimenRule) -> ImportedTables:
    """Read the CDM behind ``reader`` and build every lock table.

    Parameters
    ----------
    reader : OmopReader
        The open database.
    mapping : OmopMapping
        Concepts and rules.
    rule : RegimenRule
        How lines are derived where there are no Treatment Regimen episodes.

    Returns
    -------
    ImportedTables
    """
    return _Builder(reader, mapping, rule).build()


def _dates(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Read date columns as days; ``undated`` names the first column whose date cannot be read.

    A date that is given but is no calendar date, or lies outside the years pandas represents, is
    missing in the result and named in ``undated``, for :meth:`_Builder._refuse_undated` to report.
    """
    undated = pd.Series(None, index=frame.index, dtype=object)
    converted = {}
    for column in columns:
        raw = frame[column]
        parsed = pd.to_datetime(raw, errors="coerce", format="ISO8601").dt.normalize()
        given = raw.notna() & (raw.astype(str).str.strip() != "")
        undated = undated.where(undated.notna() | ~(given & parsed.isna()), column)
        converted[column] = parsed
    return frame.assign(**converted, undated=undated)


def _problem_rows(
    table: str, ids: Iterable[Any], column: str | None, rule: str, message: str
) -> list[ImportProblem]:
    return [ImportProblem(table, int(i), column, rule, message) for i in sorted({int(i) for i in ids})]


class _Builder:
    def __init__(self, reader: OmopReader, mapping: OmopMapping, rule: RegimenRule) -> None:
        self.reader = reader
        self.mapping = mapping
        self.rule = rule
        self.index = ConceptIndex.lookup(reader, mapping)
        self.problems: list[ImportProblem] = []
        #: Persons with a problem in their lines: a progression outside their lines is its consequence.
        self.troubled: set[int] = set()
        #: Persons with a date that cannot be read: a missing result or period may be its consequence.
        self.undated: set[int] = set()
        #: Drug concepts with a cancer ingredient (ATC L01/L02) that the mapping does not name.
        self._unmapped_cancer_ingredients: set[int] = set()
        #: Observations of the cohort, read once for menopausal states, progressions and results.
        self._observation_rows: pd.DataFrame | None = None

    # -- the whole import -------------------------------------------------------------------------------
    def build(self) -> ImportedTables:
        person = self.reader.read("person")
        cohort, primary, metastases = self._conditions(self.reader.read("condition_occurrence"))
        person = person[person["person_id"].isin(cohort)]
        patient_of = self._patient_ids(person)
        dx = metastases.groupby("person_id")["condition_start_date"].min()
        measurements = self._measurements(cohort, primary, dx)
        patients = self._patients(person, primary, metastases, measurements)
        exposures = self._exposures(cohort, dx)
        episodes = self._episodes(cohort, dx)
        progressions_raw = self._progressions(cohort, episodes)
        lines = self._lines(episodes, exposures, progressions_raw, patients)
        progressions, lines = self._progression_lines(progressions_raw, lines, metastases)
        tables = {
            "patients": patients,
            "metastases": metastases.rename(columns={"condition_start_date": "date_detected"}).assign(
                origin_table="condition_occurrence"
            ),
            "lines": lines,
            "progressions": progressions,
            "local_therapies": self._local_therapies(cohort),
            "biomarkers": measurements["biomarkers"],
            "performance_status": measurements["ecog"],
        }
        for name, frame in tables.items():
            frame = (
                frame.assign(patient_id=frame["person_id"].map(patient_of)) if name != "patients" else frame
            )
            sort = ["person_id"] + [c for c in ("line_number", "date", "date_detected") if c in frame]
            frame = frame.sort_values([*sort, "origin_id"], kind="stable", ignore_index=True)
            tables[name] = frame.loc[:, [*LOCK_COLUMNS[name], "origin_table", "origin_id", "person_id"]]
        return ImportedTables(tables, self.problems, int(self.reader.count("person")), len(cohort))

    def _refuse_undated(self, frame: pd.DataFrame, table: str) -> pd.DataFrame:
        """Report the rows of ``frame`` (from :func:`_dates`) whose date cannot be read, and drop them."""
        bad = frame["undated"].notna()
        key = CLINICAL_COLUMNS[table][0]
        for column, ids in frame[bad].groupby("undated")[key]:
            self.problems += _problem_rows(
                table,
                ids,
                str(column),
                "date-invalid",
                "the date is not a calendar date from the year 1678 to the year 2261",
            )
        persons = {int(p) for p in frame.loc[bad, "person_id"]}
        self.undated |= persons
        self.troubled |= persons
        return frame[~bad].drop(columns="undated")

    # -- conditions -------------------------------------------------------------------------------------
    def _conditions(self, conditions: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
        m = self.mapping
        primary_ids = classify(
            self.reader, self.index, {"primary": m.primary}, "condition_occurrence", "condition_concept_id"
        )
        sites = classify(
            self.reader, self.index, m.metastasis, "condition_occurrence", "condition_concept_id"
        )
        histology = classify(
            self.reader, self.index, m.histology, "condition_occurrence", "condition_concept_id"
        )
        concept = conditions["condition_concept_id"]
        with_primary = conditions.loc[concept.isin(primary_ids.index), "person_id"]
        with_metastasis = conditions.loc[concept.isin(sites.index), "person_id"]
        cohort = np.intersect1d(with_primary.unique(), with_metastasis.unique())
        read = conditions[
            conditions["person_id"].isin(cohort) & concept.isin(primary_ids.index.union(sites.index))
        ]
        read = self._refuse_undated(_dates(read, "condition_start_date"), "condition_occurrence")
        primary = read[read["condition_concept_id"].isin(primary_ids.index)]
        metastases = read[read["condition_concept_id"].isin(sites.index)].assign(
            site=lambda f: f["condition_concept_id"].map(sites)
        )
        # concept 0 (No matching concept) is in the vocabulary but says no more than an unknown concept
        unknown = self.reader.unknown_concepts("condition_occurrence", "condition_concept_id") | {0}
        # a person with a breast cancer whose unknown condition might be a metastasis is refused, not dropped
        bad = conditions[conditions["person_id"].isin(with_primary) & concept.isin(unknown)]
        self.problems += _problem_rows(
            "condition_occurrence",
            bad["condition_occurrence_id"],
            "condition_concept_id",
            "condition-unknown",
            "the condition concept is 0 (No matching concept) or not in the vocabulary, so linewise cannot "
            "tell whether it is a metastasis",
        )
        primary = primary.assign(histology=lambda f: f["condition_concept_id"].map(histology))
        metastases = metastases.rename(columns={"condition_occurrence_id": "origin_id"})[
            ["person_id", "site", "condition_start_date", "origin_id"]
        ]
        return cohort, primary, metastases

    def _patient_ids(self, person: pd.DataFrame) -> pd.Series:
        source = person["person_source_value"].astype(object)
        filled = source.where(source.notna() & (source.astype(str).str.strip() != ""), None)
        fallback = "omop-" + person["person_id"].astype("int64").astype(str)
        return pd.Series(filled.fillna(fallback).astype(str).to_numpy(), index=person["person_id"].to_numpy())

    # -- patients ---------------------------------------------------------------------------------------
    def _patients(
        self,
        person: pd.DataFrame,
        primary: pd.DataFrame,
        metastases: pd.DataFrame,
        measurements: dict[str, pd.DataFrame],
    ) -> pd.DataFrame:
        ids = person["person_id"].to_numpy()
        frame = pd.DataFrame({"person_id": ids, "origin_table": "person", "origin_id": ids})
        frame["patient_id"] = self._patient_ids(person).reindex(ids).to_numpy()
        dx = metastases.groupby("person_id")["condition_start_date"].min()
        frame["metastatic_dx_date"] = frame["person_id"].map(dx)
        birth = self._birth_dates(person).reindex(ids).to_numpy()
        frame["age_at_metastatic_dx"] = _completed_years(pd.Series(birth), frame["metastatic_dx_date"])
        self.problems += _problem_rows(
            "person", ids[pd.isna(birth)], "year_of_birth", "person-birth", "the person has no year of birth"
        )
        frame["center_id"] = self._centers(person).reindex(ids).to_numpy()
        self.problems += _problem_rows(
            "person",
            frame.loc[frame["center_id"].isna(), "person_id"],
            "care_site_id",
            "person-center",
            "the person has no care site with a care_site_source_value",
        )
        first_primary = primary.sort_values(["person_id", "condition_start_date", "condition_occurrence_id"])
        earliest = first_primary.groupby("person_id")["condition_start_date"].min()
        frame["de_novo"] = frame["person_id"].map(earliest) >= frame["metastatic_dx_date"] - pd.Timedelta(
            days=self.mapping.de_novo_days
        )
        with_histology = first_primary[first_primary["histology"].notna()].drop_duplicates("person_id")
        frame["histology"] = (
            frame["person_id"].map(with_histology.set_index("person_id")["histology"]).fillna("other")
        )
        frame["menopausal_status"] = self._menopause(frame)
        baseline = measurements["baseline"]
        for column, kind in _BASELINE.items():
            values = baseline[baseline["kind"] == kind].set_index("person_id")["value"]
            frame[column] = frame["person_id"].map(values)
        her2 = baseline[baseline["kind"] == "her2_ihc"].set_index("person_id")["value"]
        frame["her2_ihc"] = frame["person_id"].map(her2)
        self.problems += _problem_rows(
            "person",
            frame.loc[frame["er_percent"].isna() & ~frame["person_id"].isin(self.undated), "person_id"],
            None,
            "person-er",
            "the person has no estrogen-receptor percentage linked to the primary cancer or measured on or "
            "before the metastatic diagnosis",
        )
        self._follow_up(frame)
        return frame

    def _birth_dates(self, person: pd.DataFrame) -> pd.Series:
        dated = _dates(person, "birth_datetime")
        self._refuse_undated(dated, "person")
        exact = dated["birth_datetime"]
        year = pd.to_numeric(person["year_of_birth"], errors="coerce")
        month = pd.to_numeric(person["month_of_birth"], errors="coerce").fillna(7)
        day = pd.to_numeric(person["day_of_birth"], errors="coerce").fillna(1)
        parts = pd.DataFrame({"year": year, "month": month, "day": day})
        from_parts = pd.to_datetime(parts.where(year.notna()), errors="coerce")
        return pd.Series(exact.fillna(from_parts).to_numpy(), index=person["person_id"].to_numpy())

    def _centers(self, person: pd.DataFrame) -> pd.Series:
        sites = self.reader.read("care_site")
        code = sites.set_index("care_site_id")["care_site_source_value"]
        code = code[code.notna() & (code.astype(str).str.strip() != "")]
        return pd.Series(person["care_site_id"].map(code).to_numpy(), index=person["person_id"].to_numpy())

    def _menopause(self, frame: pd.DataFrame) -> np.ndarray:
        observations = self._observations(frame["person_id"])
        states = classify(
            self.reader, self.index, self.mapping.menopausal_status, "observation", "observation_concept_id"
        )
        found = observations[observations["observation_concept_id"].isin(states.index)]
        found = self._refuse_undated(found, "observation")
        found = found.assign(state=found["observation_concept_id"].map(states))
        found = found.merge(frame[["person_id", "metastatic_dx_date"]], on="person_id")
        found = found[found["observation_date"] <= found["metastatic_dx_date"]]
        latest = found.sort_values(["person_id", "observation_date", "observation_id"]).drop_duplicates(
            "person_id", keep="last"
        )
        status = frame["person_id"].map(latest.set_index("person_id")["state"])
        self.problems += _problem_rows(
            "person",
            frame.loc[status.isna() & ~frame["person_id"].isin(self.undated), "person_id"],
            None,
            "person-menopause",
            "the person has no menopausal state observed on or before the metastatic diagnosis",
        )
        return status.to_numpy()

    def _observations(self, persons: pd.Series) -> pd.DataFrame:
        """Return the observations of the cohort's persons, dates read (not yet checked), read once."""
        if self._observation_rows is None:
            rows = self.reader.read("observation")
            self._observation_rows = _dates(rows[rows["person_id"].isin(persons)], "observation_date")
        return self._observation_rows

    def _follow_up(self, frame: pd.DataFrame) -> None:
        ids = frame["person_id"]
        periods = self.reader.read("observation_period")
        periods = _dates(periods[periods["person_id"].isin(ids)], "observation_period_end_date")
        periods = self._refuse_undated(periods, "observation_period")
        end = periods.groupby("person_id")["observation_period_end_date"].max()
        deaths = self.reader.read("death")
        deaths = self._refuse_undated(_dates(deaths[deaths["person_id"].isin(ids)], "death_date"), "death")
        death = deaths.groupby("person_id")["death_date"].min()
        frame["death_date"] = frame["person_id"].map(death)
        dead = frame["death_date"].notna()
        frame["vital_status"] = np.where(dead, "dead", "alive")
        frame["last_contact_date"] = frame["death_date"].where(dead, frame["person_id"].map(end))
        self.problems += _problem_rows(
            "person",
            frame.loc[
                frame["last_contact_date"].isna() & ~frame["person_id"].isin(self.undated), "person_id"
            ],
            None,
            "person-period",
            "the person has no observation period (and no death), so the last contact is unknown",
        )

    # -- measurements -----------------------------------------------------------------------------------
    def _measurements(
        self, cohort: np.ndarray, primary: pd.DataFrame, dx: pd.Series
    ) -> dict[str, pd.DataFrame]:
        m = self.mapping
        kinds = {**m.measurements, **{f"gene:{gene}": s for gene, s in m.genes.items()}}
        values = {"positive": m.positive, "negative": m.negative}
        rows = []
        for table, prefix in (("measurement", "measurement"), ("observation", "observation")):
            if table == "observation":
                frame = self._observations(pd.Series(cohort))
            else:
                frame = self.reader.read(table)
                frame = _dates(frame[frame["person_id"].isin(cohort)], "measurement_date")
            concept = f"{prefix}_concept_id"
            kind = classify(self.reader, self.index, kinds, table, concept)
            answer = classify(self.reader, self.index, values, table, "value_as_concept_id")
            frame = self._refuse_undated(frame[frame[concept].isin(kind.index)], table)
            event = "measurement_event_id" if table == "measurement" else "observation_event_id"
            event_field = (
                "meas_event_field_concept_id" if table == "measurement" else "obs_event_field_concept_id"
            )
            rows.append(
                pd.DataFrame(
                    {
                        "person_id": frame["person_id"].to_numpy(),
                        "date": frame[f"{prefix}_date"].to_numpy(),
                        "kind": frame[concept].map(kind).to_numpy(),
                        "number": pd.to_numeric(frame["value_as_number"], errors="coerce").to_numpy(),
                        "answer": frame["value_as_concept_id"].map(answer).to_numpy(),
                        "event_id": frame[event].to_numpy(),
                        "event_field": frame[event_field].to_numpy(),
                        "origin_table": table,
                        "origin_id": frame[f"{prefix}_id"].to_numpy(),
                    }
                )
            )
        found = _stack(rows)
        condition_field = self.index.found[m.condition_field]
        # linked to a primary breast cancer of the same person (not another person's condition)
        person_of_primary = pd.Series(
            primary["person_id"].to_numpy(),
            index=primary["condition_occurrence_id"].astype("int64").to_numpy(),
        )
        same_person = found["event_id"].map(person_of_primary) == found["person_id"]
        found["linked"] = found["event_field"].isin(condition_field) & same_person
        numeric = ~found["kind"].str.startswith("gene:")
        unreadable = numeric & found["number"].isna() & (found["kind"] != "her2_ish")
        unreadable |= ~numeric & found["answer"].isna()
        unreadable |= (found["kind"] == "her2_ish") & found["answer"].isna()
        for table, ids in found[unreadable].groupby("origin_table")["origin_id"]:
            self.problems += _problem_rows(
                str(table),
                ids,
                "value_as_number",
                "measurement-value",
                "the result has no value that linewise can read (a number, or a positive/negative value "
                "concept)",
            )
        found = found[~unreadable]
        her2 = self._her2(found)
        others = found[~found["kind"].isin(["her2_ihc_score", "her2_ish"])].assign(value=None)
        found = _stack([others, her2.astype({"value": object})])
        found["value"] = found["value"].astype(object).where(found["value"].notna(), found["number"])
        return self._split_baseline(found, dx)

    def _her2(self, found: pd.DataFrame) -> pd.DataFrame:
        scores = found[found["kind"] == "her2_ihc_score"]
        ish = found[found["kind"] == "her2_ish"].sort_values("origin_id")
        ish_of = ish.drop_duplicates(["person_id", "date"], keep="last").set_index(["person_id", "date"])[
            "answer"
        ]
        key = pd.MultiIndex.from_frame(scores[["person_id", "date"]])
        same_day = pd.Series(ish_of.reindex(key).to_numpy(), index=scores.index)
        score = scores["number"].round().astype("Int64")
        code = score.map(_HER2_SCORES)
        two = score == 2
        code = code.where(~two, same_day.map({"negative": "2+_ish_neg", "positive": "2+_ish_pos"}))
        missing = two & same_day.isna()
        beyond = ~score.isin([0, 1, 2, 3]) | (scores["number"] != score.astype("float"))
        for table, ids in scores[beyond.fillna(True).to_numpy()].groupby("origin_table")["origin_id"]:
            self.problems += _problem_rows(
                str(table),
                ids,
                "value_as_number",
                "measurement-value",
                "a HER2 IHC score is a whole number from 0 to 3",
            )
        for table, ids in scores[missing.to_numpy()].groupby("origin_table")["origin_id"]:
            self.problems += _problem_rows(
                str(table),
                ids,
                "value_as_number",
                "her2-ish-missing",
                "a HER2 IHC score of 2+ has no ISH result of the same day",
            )
        return scores.assign(kind="her2_ihc", value=code.to_numpy())[code.notna().to_numpy()]

    def _split_baseline(self, found: pd.DataFrame, dx: pd.Series) -> dict[str, pd.DataFrame]:
        """Split results into baseline, biomarkers and ECOG.

        A baseline result is linked to the primary cancer, else the latest on or before the metastatic
        diagnosis; it goes to the patients table. Every other result is a biomarker or an ECOG assessment.
        """
        baseline_kinds = [*_BASELINE.values(), "her2_ihc"]
        candidates = found[found["kind"].isin(baseline_kinds)]
        candidates = candidates.assign(before=candidates["date"] <= candidates["person_id"].map(dx))
        usable = candidates[candidates["linked"] | candidates["before"]]
        chosen = usable.sort_values(["person_id", "kind", "linked", "date", "origin_id"]).drop_duplicates(
            ["person_id", "kind"], keep="last"
        )
        chosen_keys = pd.MultiIndex.from_frame(chosen[["origin_table", "origin_id"]])
        rest = found[~pd.MultiIndex.from_frame(found[["origin_table", "origin_id"]]).isin(chosen_keys)]
        marker_of = {**_MARKER_OF_KIND, "her2_ihc": "her2_ihc"}
        markers = rest[rest["kind"].isin(list(marker_of))]
        markers = markers.assign(marker=markers["kind"].map(marker_of))
        genes = rest[rest["kind"].str.startswith("gene:")]
        genes = genes.assign(
            marker=genes["kind"].str.removeprefix("gene:"),
            value=genes["answer"].map({"positive": "mutated", "negative": "wild_type"}),
        )
        biomarkers = _stack([markers, genes]).assign(sample=None)
        ecog = rest[rest["kind"] == "ecog"].assign(ecog=lambda f: f["number"])
        return {"baseline": chosen, "biomarkers": biomarkers, "ecog": ecog}

    # -- drugs, episodes, lines -------------------------------------------------------------------------
    def _exposures(self, cohort: np.ndarray, dx: pd.Series) -> pd.DataFrame:
        exposures = _dates(
            self.reader.read("drug_exposure"), "drug_exposure_start_date", "drug_exposure_end_date"
        )
        exposures = exposures[exposures["person_id"].isin(cohort)]
        # treatment that ends before the metastatic diagnosis (adjuvant) is no line: not read further
        exposures = exposures[~_ends_before(exposures["drug_exposure_end_date"], exposures["person_id"], dx)]
        concept = exposures["drug_concept_id"]
        unknown = self.reader.unknown_concepts("drug_exposure", "drug_concept_id") | {0}
        self.problems += _problem_rows(
            "drug_exposure",
            exposures.loc[concept.isin(unknown) | concept.isna(), "drug_exposure_id"],
            "drug_concept_id",
            "drug-unknown",
            "the drug concept is 0 (No matching concept) or not in the vocabulary, so linewise cannot tell "
            "whether it is a cancer drug",
        )
        drugs = self._drug_map()
        cancer = classify(
            self.reader,
            self.index,
            {"cancer": self.mapping.cancer_classes},
            "drug_exposure",
            "drug_concept_id",
        )
        # decided per ingredient: a combination drug with one unmapped cancer ingredient is refused too
        unmapped = concept.isin(cancer.index) & ~concept.isin(drugs["drug_concept_id"])
        unmapped |= concept.isin(self._unmapped_cancer_ingredients)
        self.problems += _problem_rows(
            "drug_exposure",
            exposures.loc[unmapped, "drug_exposure_id"],
            "drug_concept_id",
            "drug-unmapped",
            "an antineoplastic or endocrine drug (ATC L01/L02) has no ingredient that the mapping names",
        )
        flagged = concept.isin(unknown) | concept.isna() | unmapped
        self.troubled |= {int(p) for p in exposures.loc[flagged, "person_id"]}
        mapped = self._refuse_undated(exposures.merge(drugs, on="drug_concept_id"), "drug_exposure")
        missing = mapped["drug_exposure_start_date"].isna() | mapped["drug_exposure_end_date"].isna()
        backwards = mapped["drug_exposure_end_date"] < mapped["drug_exposure_start_date"]
        bad_dates = missing | backwards
        self.troubled |= {int(p) for p in mapped.loc[bad_dates, "person_id"]}
        self.problems += _problem_rows(
            "drug_exposure",
            mapped.loc[bad_dates, "drug_exposure_id"],
            "drug_exposure_end_date",
            "exposure-dates",
            "the exposure lacks a start or an end date, or ends before it starts",
        )
        # an exposure that ends before it starts is reported and kept, so that the lines it belongs to are
        # still built and do not add problems of their own; one without dates cannot be placed
        return mapped[~missing]

    def _drug_map(self) -> pd.DataFrame:
        found = self.reader.ingredients(self.mapping.drug_vocabularies)
        plain = {r.ingredient: r.drug for r in self.mapping.ingredients if r.name_contains is None}
        specific = [r for r in self.mapping.ingredients if r.name_contains is not None]
        drug = found["ingredient"].map(plain)
        for rule in specific:
            hit = (found["ingredient"] == rule.ingredient) & found["drug_name"].str.contains(
                rule.name_contains, regex=False
            )
            drug = drug.where(~hit, rule.drug)
        cancer = self.reader.descendants(
            sorted(self.index.found[self.mapping.cancer_classes]), found["ingredient_concept_id"].tolist()
        )
        lost = drug.isna() & found["ingredient_concept_id"].isin(cancer)
        self._unmapped_cancer_ingredients = set(found.loc[lost, "drug_concept_id"].astype("int64"))
        mapped = pd.DataFrame({"drug_concept_id": found["drug_concept_id"].astype("int64"), "drug": drug})
        return mapped.dropna().drop_duplicates(ignore_index=True)

    def _episodes(self, cohort: np.ndarray, dx: pd.Series) -> pd.DataFrame:
        episodes = _dates(self.reader.read("episode"), "episode_start_date", "episode_end_date")
        episodes = episodes[episodes["person_id"].isin(cohort)]
        kinds = {
            "treatment_regimen": self.mapping.treatment_regimen,
            "disease_progression": self.mapping.disease_progression,
        }
        kind = classify(self.reader, self.index, kinds, "episode", "episode_concept_id")
        episodes = episodes.assign(kind=episodes["episode_concept_id"].map(kind))
        episodes = self._refuse_undated(episodes[episodes["kind"].notna()], "episode")
        adjuvant = (episodes["kind"] == "treatment_regimen") & _ends_before(
            episodes["episode_end_date"], episodes["person_id"], dx
        )
        episodes = episodes[~adjuvant]
        undated = episodes["episode_start_date"].isna()
        backwards = episodes["episode_end_date"] < episodes["episode_start_date"]
        self.problems += _problem_rows(
            "episode",
            episodes.loc[undated | backwards, "episode_id"],
            "episode_end_date",
            "episode-dates",
            "the episode has no start date, or ends before it starts",
        )
        self.troubled |= {int(p) for p in episodes.loc[undated | backwards, "person_id"]}
        return episodes[~undated]

    def _lines(
        self,
        episodes: pd.DataFrame,
        exposures: pd.DataFrame,
        progressions: pd.DataFrame,
        patients: pd.DataFrame,
    ) -> pd.DataFrame:
        regimens = episodes[episodes["kind"] == "treatment_regimen"]
        links = self.reader.read("episode_event")
        links = links[
            links["episode_event_field_concept_id"].isin(self.index.found[self.mapping.drug_exposure_field])
        ]
        with_episodes = exposures["person_id"].isin(regimens["person_id"])
        from_episodes, problems = lines_from_episodes(regimens, exposures[with_episodes], links)
        self.problems += problems
        person_of_episode = dict(zip(regimens["episode_id"], regimens["person_id"], strict=True))
        self.troubled |= {int(person_of_episode[p.row_id]) for p in problems if p.row_id in person_of_episode}
        linked = links.loc[links["episode_id"].isin(regimens["episode_id"]), "event_id"]
        unlinked = exposures[with_episodes & ~exposures["drug_exposure_id"].isin(linked)]
        self.problems += _problem_rows(
            "drug_exposure",
            unlinked["drug_exposure_id"],
            None,
            "exposure-episode",
            "the exposure of a linewise drug is linked to none of its person's Treatment Regimen episodes "
            "in episode_event, so it would be part of no line",
        )
        self.troubled |= {int(p) for p in unlinked["person_id"]}
        follow_up = pd.DataFrame(
            {
                "person_id": patients["person_id"],
                "end_date": patients["last_contact_date"],
                "alive": patients["vital_status"] == "alive",
            }
        )
        derived = lines_from_exposures(
            exposures[~with_episodes],
            progressions[["person_id", "date"]],
            follow_up,
            self.rule,
        )
        return _stack([from_episodes, derived])

    # -- progressions -----------------------------------------------------------------------------------
    def _progressions(self, cohort: np.ndarray, episodes: pd.DataFrame) -> pd.DataFrame:
        found = episodes[episodes["kind"] == "disease_progression"]
        from_episodes = pd.DataFrame(
            {
                "person_id": found["person_id"].to_numpy(),
                "date": found["episode_start_date"].to_numpy(),
                "text": found["episode_source_value"].to_numpy(),
                "origin_table": "episode",
                "origin_id": found["episode_id"].to_numpy(),
            }
        )
        observations = self._observations(pd.Series(cohort))
        states = classify(
            self.reader,
            self.index,
            {"progression": self.mapping.progression_observation},
            "observation",
            "observation_concept_id",
        )
        noted = observations[
            observations["observation_concept_id"].isin(states.index)
            & ~observations["person_id"].isin(found["person_id"])
        ]
        noted = self._refuse_undated(noted, "observation")
        from_observations = pd.DataFrame(
            {
                "person_id": noted["person_id"].to_numpy(),
                "date": noted["observation_date"].to_numpy(),
                "text": noted["value_as_string"].to_numpy(),
                "origin_table": "observation",
                "origin_id": noted["observation_id"].to_numpy(),
            }
        )
        progressions = _stack([from_episodes, from_observations])
        text = progressions["text"].fillna("").astype(str).str.lower()
        pattern = pd.Series(None, index=progressions.index, dtype=object)
        pattern[text.str.contains("systemic")] = "systemic"
        pattern[text.str.contains("oligo")] = "oligo"
        progressions["pattern"] = pattern
        for table, ids in progressions[progressions["pattern"].isna()].groupby("origin_table")["origin_id"]:
            self.problems += _problem_rows(
                str(table),
                ids,
                "episode_source_value" if table == "episode" else "value_as_string",
                "progression-pattern",
                "the progression does not say whether it is oligo or systemic",
            )
        return progressions[progressions["pattern"].notna()]

    def _progression_lines(
        self, progressions: pd.DataFrame, lines: pd.DataFrame, metastases: pd.DataFrame
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Give each progression its line, and return the progressions and the lines (ends moved).

        A progression belongs to the latest line that started before it; one dated on a line's start day
        belongs to the line before, and to the first line when there is none. A progression after its
        line's end (after the last dose, before the next line) moves the line's end to its date.
        """
        pairs = progressions.reset_index(names="row").merge(
            lines[["person_id", "line_number", "start_date"]].reset_index(names="line_row"), on="person_id"
        )
        before = pairs[pairs["start_date"] < pairs["date"]]
        before = before.sort_values(["row", "start_date", "line_number"]).drop_duplicates("row", keep="last")
        on_start = pairs[(pairs["start_date"] == pairs["date"]) & ~pairs["row"].isin(before["row"])]
        on_start = on_start.sort_values(["row", "line_number"]).drop_duplicates("row")
        chosen = pd.concat([before, on_start]).set_index("row")
        progressions = progressions.reset_index(drop=True)
        progressions["line_number"] = progressions.index.map(chosen["line_number"])
        line_row = progressions.index.map(chosen["line_row"])
        latest = progressions.assign(line_row=line_row).dropna(subset=["line_row"])
        latest = latest.groupby("line_row")["date"].max()
        lines = lines.copy()
        ends = lines["end_date"]
        reached = pd.Series(latest.to_numpy(), index=latest.index.astype("int64")).reindex(lines.index)
        lines["end_date"] = ends.where(ends.isna() | ~(reached > ends), reached)
        orphan = progressions["line_number"].isna()
        consequence = orphan & progressions["person_id"].isin(self.troubled)
        for table, ids in progressions[orphan & ~consequence].groupby("origin_table")["origin_id"]:
            self.problems += _problem_rows(
                str(table),
                ids,
                None,
                "progression-line",
                "the progression is dated before every line of therapy of the person",
            )
        progressions = progressions[~orphan].copy()
        progressions["line_number"] = progressions["line_number"].astype("int64")
        same_day = (
            metastases.sort_values("origin_id")
            .groupby(["person_id", "condition_start_date"])["site"]
            .agg(lambda sites: "+".join(dict.fromkeys(sites)))
        )
        key = pd.MultiIndex.from_frame(progressions[["person_id", "date"]])
        progressions["new_sites"] = same_day.reindex(key).to_numpy()
        progressions["method"] = None
        return progressions, lines

    # -- local therapies --------------------------------------------------------------------------------
    def _local_therapies(self, cohort: np.ndarray) -> pd.DataFrame:
        procedures = _dates(self.reader.read("procedure_occurrence"), "procedure_date")
        procedures = procedures[procedures["person_id"].isin(cohort)]
        kind = classify(
            self.reader,
            self.index,
            self.mapping.procedure_types,
            "procedure_occurrence",
            "procedure_concept_id",
        )
        site = classify(
            self.reader,
            self.index,
            self.mapping.procedure_sites,
            "procedure_occurrence",
            "modifier_concept_id",
        )
        found = self._refuse_undated(
            procedures[procedures["procedure_concept_id"].isin(kind.index)], "procedure_occurrence"
        )
        return pd.DataFrame(
            {
                "person_id": found["person_id"].to_numpy(),
                "date": found["procedure_date"].to_numpy(),
                "type": found["procedure_concept_id"].map(kind).to_numpy(),
                "site": found["modifier_concept_id"].map(site).fillna("other").to_numpy(),
                "origin_table": "procedure_occurrence",
                "origin_id": found["procedure_occurrence_id"].to_numpy(),
            }
        )


def _ends_before(end: pd.Series, person: pd.Series, dx: pd.Series) -> pd.Series:
    """Whether a treatment ends before its person's metastatic diagnosis (False where either is missing)."""
    return end < person.map(dx)


def _stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate the frames that have rows (all of them empty: the first), keeping column dtypes."""
    kept = [frame for frame in frames if len(frame)] or frames[:1]
    return pd.concat(kept, ignore_index=True)


def _completed_years(birth: pd.Series, on: pd.Series) -> np.ndarray:
    """Whole years from ``birth`` to ``on`` (NaN where either is missing)."""
    birth = pd.to_datetime(birth.reset_index(drop=True))
    on = pd.to_datetime(on.reset_index(drop=True))
    years = on.dt.year - birth.dt.year
    before_birthday = (on.dt.month < birth.dt.month) | (
        (on.dt.month == birth.dt.month) & (on.dt.day < birth.dt.day)
    )
    return (years - before_birthday.astype("float")).to_numpy(dtype=float)
