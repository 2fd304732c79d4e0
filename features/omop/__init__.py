"""Read an OMOP CDM 5.4 database as a data lock (``linewise import-omop``; ``docs/omop.md``)."""

from linewise.features.omop.importer import OmopImportSummary, import_omop
from linewise.features.omop.lines import RegimenRule
from linewise.features.omop.mapping import MappingError, OmopMapping, default_mapping_path, load_mapping
from linewise.features.omop.problems import IMPORT_RULES, ImportProblem, OmopImportError
from linewise.features.omop.source import OmopSource, OmopSourceError

__all__ = [
    "IMPORT_RULES",
    "ImportProblem",
    "MappingError",
    "OmopImportError",
    "OmopImportSummary",
    "OmopMapping",
    "OmopSource",
    "OmopSourceError",
    "RegimenRule",
    "default_mapping_path",
    "import_omop",
    "load_mapping",
]
