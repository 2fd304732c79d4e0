"""Read the tables of an OMOP CDM 5.4 database through SQLAlchemy.

A source is a SQLAlchemy URL (``duckdb:///path/cdm.duckdb``, ``postgresql+psycopg://user@host/db``) and
the schemas that hold the clinical tables and the vocabulary. Only the columns linewise uses are read, in
one query per table; nothing is written to the database. A URL is shown only with its password, and every
secret-looking query parameter, hidden.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote_plus

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

#: The columns read from each clinical table (OMOP CDM 5.4 names). The first column is the table's key.
CLINICAL_COLUMNS: Final[Mapping[str, tuple[str, ...]]] = {
    "person": (
        "person_id",
        "gender_concept_id",
        "year_of_birth",
        "month_of_birth",
        "day_of_birth",
        "birth_datetime",
        "care_site_id",
        "person_source_value",
    ),
    "observation_period": (
        "observation_period_id",
        "person_id",
        "observation_period_start_date",
        "observation_period_end_date",
    ),
    "death": ("person_id", "death_date"),
    "care_site": ("care_site_id", "care_site_name", "care_site_source_value"),
    "condition_occurrence": (
        "condition_occurrence_id",
        "person_id",
        "condition_concept_id",
        "condition_start_date",
    ),
    "drug_exposure": (
        "drug_exposure_id",
        "person_id",
        "drug_concept_id",
        "drug_exposure_start_date",
        "drug_exposure_end_date",
        "stop_reason",
    ),
    "procedure_occurrence": (
        "procedure_occurrence_id",
        "person_id",
        "procedure_concept_id",
        "procedure_date",
        "modifier_concept_id",
    ),
    "measurement": (
        "measurement_id",
        "person_id",
        "measurement_concept_id",
        "measurement_date",
        "value_as_number",
        "value_as_concept_id",
        "value_source_value",
        "measurement_event_id",
        "meas_event_field_concept_id",
    ),
    "observation": (
        "observation_id",
        "person_id",
        "observation_concept_id",
        "observation_date",
        "value_as_number",
        "value_as_concept_id",
        "value_as_string",
        "observation_event_id",
        "obs_event_field_concept_id",
    ),
    "episode": (
        "episode_id",
        "person_id",
        "episode_concept_id",
        "episode_start_date",
        "episode_end_date",
        "episode_number",
        "episode_object_concept_id",
        "episode_source_value",
    ),
    "episode_event": ("episode_id", "event_id", "episode_event_field_concept_id"),
    "cdm_source": ("cdm_source_name", "cdm_source_abbreviation", "source_release_date", "cdm_version"),
}
#: Tables whose absence is allowed: a site without episodes derives lines from drug exposures.
OPTIONAL_TABLES: Final = frozenset({"episode", "episode_event", "death", "care_site", "observation"})
#: The vocabulary tables read.
VOCABULARY_COLUMNS: Final[Mapping[str, tuple[str, ...]]] = {
    "concept": (
        "concept_id",
        "concept_name",
        "domain_id",
        "vocabulary_id",
        "concept_class_id",
        "concept_code",
    ),
    "concept_ancestor": ("ancestor_concept_id", "descendant_concept_id", "min_levels_of_separation"),
}


#: Words that mark a URL query parameter as secret; its value is never shown.
_SECRET_WORDS: Final = ("pass", "pwd", "secret", "token", "key", "credential", "auth")


class OmopSourceError(ValueError):
    """The database cannot be reached, or a table or column that linewise reads is missing."""


@dataclass(frozen=True)
class OmopSource:
    """Where the CDM lives.

    Attributes
    ----------
    url : str
        SQLAlchemy URL of the database.
    cdm_schema : str or None
        Schema of the clinical tables (None: the connection's default).
    vocabulary_schema : str or None
        Schema of ``concept`` and ``concept_ancestor`` (None: the CDM schema).
    """

    url: str
    cdm_schema: str | None = None
    vocabulary_schema: str | None = None

    @property
    def shown_url(self) -> str:
        """The URL for messages: its password, and every secret-looking query parameter, shown as ``***``."""
        try:
            url = sa.make_url(self.url)
        except ArgumentError:
            return "<unparsable URL>"
        shown = url.set(query={}).render_as_string(hide_password=True)
        parameters = [
            f"{quote_plus(name)}={'***' if _secret(name) else quote_plus(str(value))}"
            for name, values in url.query.items()
            for value in ((values,) if isinstance(values, str) else values)
        ]
        return shown + ("?" + "&".join(parameters) if parameters else "")


def _secret(name: str) -> bool:
    """Whether a URL query parameter may carry a secret (``password``, ``sslpassword``, ``token``, ...)."""
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


class OmopReader:
    """Read the tables linewise needs from one CDM database.

    Parameters
    ----------
    source : OmopSource
        The database and its schemas.
    """

    def __init__(self, source: OmopSource) -> None:
        self.source = source
        self._engine: Engine | None = None
        self._present: dict[str | None, set[str]] = {}

    def __enter__(self) -> OmopReader:
        try:
            url = sa.make_url(self.source.url)
            options: dict[str, Any] = {}
            if url.get_backend_name() == "duckdb":
                # read only: a missing file is an error, not a new empty database
                if url.database not in (None, "", ":memory:") and not Path(url.database).is_file():
                    raise OmopSourceError(f"{self.source.shown_url}: no DuckDB file at that path")
                options["connect_args"] = {"read_only": True}
            self._engine = sa.create_engine(url, **options)
            with self._engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except (ArgumentError, NoSuchModuleError) as err:
            raise OmopSourceError(
                f"{self.source.shown_url}: not a database URL that linewise can open"
            ) from err
        except SQLAlchemyError as err:
            cause = type(getattr(err, "orig", None) or err).__name__
            raise OmopSourceError(f"{self.source.shown_url}: cannot connect ({cause})") from err
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def has_table(self, table: str, *, vocabulary: bool = False) -> bool:
        """Whether ``table`` exists in the CDM (or vocabulary) schema."""
        schema = self._schema(vocabulary)
        if schema not in self._present:
            listed = self._query(
                sa.text(
                    "SELECT lower(table_name) AS name FROM information_schema.tables "
                    "WHERE lower(table_schema) = lower(COALESCE(:schema, current_schema()))"
                ).bindparams(schema=schema),
                "information_schema.tables",
            )
            self._present[schema] = set(listed["name"])
        return table in self._present[schema]

    def _columns(self, table: str, schema: str | None) -> set[str]:
        listed = self._query(
            sa.text(
                "SELECT lower(column_name) AS name FROM information_schema.columns "
                "WHERE lower(table_schema) = lower(COALESCE(:schema, current_schema())) "
                "AND lower(table_name) = :table"
            ).bindparams(schema=schema, table=table),
            "information_schema.columns",
        )
        return set(listed["name"])

    def read(self, table: str, *, vocabulary: bool = False) -> pd.DataFrame:
        """Read the linewise columns of ``table``: an empty frame for a missing optional table.

        Raises
        ------
        OmopSourceError
            When a required table, or one of its columns, is missing.
        """
        columns = (VOCABULARY_COLUMNS if vocabulary else CLINICAL_COLUMNS)[table]
        schema = self._schema(vocabulary)
        where = f"schema {schema}" if schema else "the default schema"
        if not self.has_table(table, vocabulary=vocabulary):
            if not vocabulary and table in OPTIONAL_TABLES:
                return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
            raise OmopSourceError(f"{self.source.shown_url}: table {table} is missing from {where}")
        found = self._columns(table, schema)
        missing = [column for column in columns if column not in found]
        if missing:
            raise OmopSourceError(
                f"{self.source.shown_url}: table {table} in {where} lacks the OMOP CDM 5.4 column(s) "
                + ", ".join(missing)
            )
        selected: sa.Executable = sa.select(*(sa.column(column) for column in columns)).select_from(
            sa.table(table, schema=schema)
        )
        return self._query(selected, table)

    def concepts(
        self, vocabularies: Sequence[str], codes: Sequence[str], names: Sequence[str]
    ) -> pd.DataFrame:
        """Return the ``concept`` rows of the given vocabularies whose code, or lower-cased name, is listed.

        Returns
        -------
        DataFrame
            ``concept_id``, ``concept_name``, ``vocabulary_id``, ``concept_code``.
        """
        concept = self._vocabulary_table("concept")
        condition = sa.or_(
            concept.c.concept_code.in_(list(codes)), sa.func.lower(concept.c.concept_name).in_(list(names))
        )
        selected = sa.select(
            concept.c.concept_id, concept.c.concept_name, concept.c.vocabulary_id, concept.c.concept_code
        ).where(concept.c.vocabulary_id.in_(list(vocabularies)), condition)
        return self._query(selected, "concept")

    def count(self, table: str) -> int:
        """Return the number of rows of a clinical table (0 for a missing optional table)."""
        if not self.has_table(table):
            return 0
        counted = sa.select(sa.func.count()).select_from(sa.table(table, schema=self.source.cdm_schema))
        return int(self._query(counted, table).iloc[0, 0])

    def below(self, ancestor_ids: Sequence[int], table: str, column: str) -> pd.DataFrame:
        """Return the concepts used in ``table.column`` that are, or descend from, the given concepts.

        Only the concepts the CDM uses are returned, so a broad ancestor (an ATC class) costs no more than
        the concepts below it that occur.

        Returns
        -------
        DataFrame
            ``ancestor_concept_id``, ``descendant_concept_id`` and ``min_levels_of_separation`` (0 for a
            concept used itself).
        """
        ancestors = [int(i) for i in ancestor_ids]
        columns = ["ancestor_concept_id", "descendant_concept_id", "min_levels_of_separation"]
        if not ancestors or not self.has_table(table):
            return pd.DataFrame({name: pd.Series(dtype="int64") for name in columns})
        ancestor = self._vocabulary_table("concept_ancestor")
        used = self._used(table, column)
        related = sa.select(
            ancestor.c.ancestor_concept_id,
            ancestor.c.descendant_concept_id,
            ancestor.c.min_levels_of_separation,
        ).where(ancestor.c.ancestor_concept_id.in_(ancestors), ancestor.c.descendant_concept_id.in_(used))
        frame = self._query(related, "concept_ancestor")
        itself = self._query(
            sa.select(sa.column(column).label("descendant_concept_id"))
            .select_from(sa.table(table, schema=self.source.cdm_schema))
            .where(sa.column(column).in_(ancestors))
            .distinct(),
            table,
        )
        own = pd.DataFrame(
            {
                "ancestor_concept_id": itself["descendant_concept_id"],
                "descendant_concept_id": itself["descendant_concept_id"],
                "min_levels_of_separation": 0,
            }
        )
        joined = pd.concat([frame, own], ignore_index=True).astype("int64")
        return joined.drop_duplicates(["ancestor_concept_id", "descendant_concept_id"], ignore_index=True)

    def unknown_concepts(self, table: str, column: str) -> set[int]:
        """Return the concept ids used in ``table.column`` that the ``concept`` table lacks (0 included)."""
        if not self.has_table(table):
            return set()
        concept = self._vocabulary_table("concept")
        used = self._used(table, column).subquery()
        value = used.c[column]
        missing = (
            sa.select(value)
            .select_from(used.outerjoin(concept, concept.c.concept_id == value))
            .where(concept.c.concept_id.is_(None), value.is_not(None))
        )
        return {int(i) for i in self._query(missing, table)[column]}

    def ingredients(self, vocabularies: Sequence[str]) -> pd.DataFrame:
        """Return the ingredients of each drug concept in ``drug_exposure``, through ``concept_ancestor``.

        Returns
        -------
        DataFrame
            ``drug_concept_id``, ``drug_name`` (the drug concept's lower-cased name), ``ingredient``
            (the ingredient's lower-cased name) and ``ingredient_concept_id``: one row per ingredient of
            a drug concept; a drug concept that is itself an ingredient is its own.
        """
        concept = self._vocabulary_table("concept")
        ancestor = self._vocabulary_table("concept_ancestor")
        drug = concept.alias("drug")
        used = self._used("drug_exposure", "drug_concept_id")
        ingredient_of = (
            sa.select(
                ancestor.c.descendant_concept_id.label("drug_concept_id"),
                sa.func.lower(concept.c.concept_name).label("ingredient"),
                concept.c.concept_id.label("ingredient_concept_id"),
            )
            .join(concept, concept.c.concept_id == ancestor.c.ancestor_concept_id)
            .where(
                concept.c.concept_class_id == "Ingredient",
                concept.c.vocabulary_id.in_(list(vocabularies)),
                ancestor.c.descendant_concept_id.in_(used),
            )
        )
        itself = sa.select(
            concept.c.concept_id.label("drug_concept_id"),
            sa.func.lower(concept.c.concept_name).label("ingredient"),
            concept.c.concept_id.label("ingredient_concept_id"),
        ).where(
            concept.c.concept_class_id == "Ingredient",
            concept.c.vocabulary_id.in_(list(vocabularies)),
            concept.c.concept_id.in_(used),
        )
        found = sa.union(ingredient_of, itself).subquery()
        named = sa.select(
            found.c.drug_concept_id,
            sa.func.lower(drug.c.concept_name).label("drug_name"),
            found.c.ingredient,
            found.c.ingredient_concept_id,
        ).join(drug, drug.c.concept_id == found.c.drug_concept_id)
        return self._query(named, "concept_ancestor").drop_duplicates(ignore_index=True)

    def descendants(self, ancestor_ids: Sequence[int], concept_ids: Sequence[int]) -> set[int]:
        """Return those of ``concept_ids`` that are, or descend from, one of ``ancestor_ids``.

        Parameters
        ----------
        ancestor_ids : sequence of int
            The ancestors (an ATC class).
        concept_ids : sequence of int
            The concepts to test (ingredients).

        Returns
        -------
        set of int
        """
        ancestors = sorted({int(i) for i in ancestor_ids})
        ids = sorted({int(i) for i in concept_ids})
        if not ancestors or not ids:
            return set()
        ancestor = self._vocabulary_table("concept_ancestor")
        below = (
            sa.select(ancestor.c.descendant_concept_id)
            .where(ancestor.c.ancestor_concept_id.in_(ancestors), ancestor.c.descendant_concept_id.in_(ids))
            .distinct()
        )
        found = {int(i) for i in self._query(below, "concept_ancestor")["descendant_concept_id"]}
        return found | (set(ids) & set(ancestors))

    def _used(self, table: str, column: str) -> sa.Select[Any]:
        return (
            sa.select(sa.column(column))
            .select_from(sa.table(table, schema=self.source.cdm_schema))
            .where(sa.column(column).is_not(None))
            .distinct()
        )

    def _vocabulary_table(self, name: str) -> sa.TableClause:
        if not self.has_table(name, vocabulary=True):
            where = self._schema(True) or "the default schema"
            raise OmopSourceError(f"{self.source.shown_url}: vocabulary table {name} is missing from {where}")
        return sa.table(name, *(sa.column(c) for c in VOCABULARY_COLUMNS[name]), schema=self._schema(True))

    def _query(self, selected: sa.Executable, table: str) -> pd.DataFrame:
        try:
            with self._live().connect() as connection:
                return pd.read_sql(selected, connection)
        except SQLAlchemyError as err:
            raise OmopSourceError(
                f"{self.source.shown_url}: cannot read table {table} ({type(err).__name__})"
            ) from err

    def _schema(self, vocabulary: bool) -> str | None:
        if vocabulary and self.source.vocabulary_schema is not None:
            return self.source.vocabulary_schema
        return self.source.cdm_schema

    def _live(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("OmopReader is used outside its 'with' block")
        return self._engine
