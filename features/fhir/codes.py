"""The codes and profiles of linewise's FHIR Bundles (``docs/fhir.md`` lists every one).

Every coded element carries a coding in a linewise code system, whose codes are the lock's own
(``docs/data-lock.md``), so that a Bundle reads back to exactly the document it was written from.
Where a standard code is known (LOINC, SNOMED CT, HGNC), the element carries it as well, and a Bundle
from another system may give the standard coding alone.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

MCODE: Final = "http://hl7.org/fhir/us/mcode/StructureDefinition/"
LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
HGNC: Final = "http://www.genenames.org/geneId"
UCUM: Final = "http://unitsofmeasure.org"
#: The prefix of linewise's own code systems and extensions (URNs: nothing to resolve).
LINEWISE: Final = "urn:linewise:fhir:"
PATIENT_KEY_SYSTEM: Final = "urn:linewise:patient-key"
CENTER_SYSTEM: Final = "urn:linewise:center-id"


def code_system(name: str) -> str:
    """Return the URI of linewise's code system ``name`` (``drug``, ``site``, ...)."""
    return f"{LINEWISE}CodeSystem:{name}"


def extension_url(name: str) -> str:
    """Return the URL of linewise's extension ``name``."""
    return f"{LINEWISE}StructureDefinition:{name}"


#: mCODE STU4 profiles by the resource kind linewise writes.
PROFILES: Final = MappingProxyType(
    {
        "patient": MCODE + "mcode-cancer-patient",
        "primary": MCODE + "mcode-primary-cancer-condition",
        "secondary": MCODE + "mcode-secondary-cancer-condition",
        "medication": MCODE + "mcode-cancer-related-medication-administration",
        "disease_status": MCODE + "mcode-cancer-disease-status",
        "tumor_marker": MCODE + "mcode-tumor-marker-test",
        "genomic_variant": MCODE + "mcode-genomic-variant",
        "ecog": MCODE + "mcode-ecog-performance-status",
        "radiotherapy": MCODE + "mcode-radiotherapy-course-summary",
        "surgery": MCODE + "mcode-cancer-related-surgical-procedure",
    }
)

#: Observation kinds -> their code (system, code). ``linewise`` codes have no standard one here.
OBSERVATION_CODES: Final = MappingProxyType(
    {
        "er": (LOINC, "85337-4"),
        "pgr": (LOINC, "85339-0"),
        "ki67": (LOINC, "85329-1"),
        "her2_ihc": (LOINC, "85319-2"),
        "ecog": (LOINC, "89247-1"),
        "disease_status": (LOINC, "97509-4"),
        "genomic_variant": (LOINC, "69548-6"),
        "age": (LOINC, "30525-0"),
        "menopausal_status": (code_system("observation"), "menopausal_status"),
        "grade": (code_system("observation"), "grade"),
    }
)
GENE_STUDIED: Final = (LOINC, "48018-6")
#: CancerDiseaseStatus answer for progression: "Patient's condition worsened".
WORSENED: Final = (SNOMED, "271299001")
PRIMARY_BREAST_CANCER: Final = (SNOMED, "254837009")
SECONDARY_MALIGNANCY: Final = (SNOMED, "128462008")
#: Genomic results: LOINC answers Present and Absent.
GENOMIC_ANSWERS: Final = MappingProxyType({"mutated": (LOINC, "LA9633-4"), "wild_type": (LOINC, "LA9634-2")})
GENES: Final = MappingProxyType(
    {
        "esr1": (HGNC, "HGNC:3467"),
        "pik3ca": (HGNC, "HGNC:8975"),
        "akt1": (HGNC, "HGNC:391"),
        "pten": (HGNC, "HGNC:9588"),
        "brca1": (HGNC, "HGNC:1100"),
        "brca2": (HGNC, "HGNC:1101"),
    }
)
#: Metastatic sites -> SNOMED CT body structures (``skin_soft_tissue`` has none of its own).
SITE_STRUCTURES: Final = MappingProxyType(
    {
        "bone": (SNOMED, "272673000"),
        "liver": (SNOMED, "10200004"),
        "lung": (SNOMED, "39607008"),
        "lymph_node": (SNOMED, "59441001"),
        "brain": (SNOMED, "12738006"),
    }
)
#: Local therapy types -> SNOMED CT procedures.
PROCEDURES: Final = MappingProxyType({"radiotherapy": (SNOMED, "108290001")})
