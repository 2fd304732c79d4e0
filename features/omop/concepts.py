"""Resolve the mapping's concept sets against a database's vocabulary.

Each concept set is looked up once by code or name; every concept that a CDM table uses is then
classified by its ancestors in ``concept_ancestor``. Where a concept lies below several keys of one
group (a bone metastasis is also a secondary malignant neoplasm), the closest ancestor wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from linewise.features.omop.mapping import ConceptSet, OmopMapping
from linewise.features.omop.source import OmopReader


@dataclass(frozen=True)
class ConceptIndex:
    """The concept ids found for every concept set of a mapping."""

    found: Mapping[ConceptSet, frozenset[int]]

    @classmethod
    def lookup(cls, reader: OmopReader, mapping: OmopMapping) -> ConceptIndex:
        """Find every concept set of ``mapping`` in the vocabulary with one query."""
        sets = list(dict.fromkeys(mapping.concept_sets()))
        vocabularies = sorted({v for s in sets for v in s.vocabularies})
        codes = sorted({c for s in sets for c in s.codes})
        names = sorted({n for s in sets for n in s.names})
        rows = reader.concepts(vocabularies, codes, names)
        lowered = rows["concept_name"].str.lower()
        found = {}
        for concept_set in sets:
            hit = rows["vocabulary_id"].isin(concept_set.vocabularies) & (
                rows["concept_code"].isin(concept_set.codes) | lowered.isin(concept_set.names)
            )
            found[concept_set] = frozenset(int(i) for i in rows.loc[hit, "concept_id"])
        return cls(found)


def classify(
    reader: OmopReader, index: ConceptIndex, groups: Mapping[str, ConceptSet], table: str, column: str
) -> pd.Series:
    """Return, for each concept used in ``table.column`` below a key's concepts, the closest key.

    Parameters
    ----------
    reader : OmopReader
        The open database.
    index : ConceptIndex
        The concepts of every set.
    groups : mapping of str to ConceptSet
        The keys of one group (metastasis sites, measurement kinds).
    table, column : str
        The CDM column whose concepts are classified.

    Returns
    -------
    Series
        Key by concept id (only concepts below some key appear).
    """
    key_of: dict[int, str] = {}
    for key, concept_set in groups.items():
        for concept_id in index.found[concept_set]:
            key_of.setdefault(concept_id, key)
    below = reader.below(sorted(key_of), table, column)
    if below.empty:
        return pd.Series(dtype=object)
    below = below.assign(key=below["ancestor_concept_id"].map(key_of))
    closest = below.sort_values(["descendant_concept_id", "min_levels_of_separation", "key"])
    closest = closest.drop_duplicates("descendant_concept_id")
    return pd.Series(closest["key"].to_numpy(), index=closest["descendant_concept_id"].to_numpy())
