"""One patient as an R4 FHIR Bundle profiled by mCODE STU4, written from and read into its document."""

from linewise.features.fhir.problems import BUNDLE_RULES, BundleProblem, FhirBundleError
from linewise.features.fhir.reader import BundlePatient, load_bundle_patient, read_bundle
from linewise.features.fhir.structure import is_bundle
from linewise.features.fhir.writer import bundle_from_document

__all__ = [
    "BUNDLE_RULES",
    "BundlePatient",
    "BundleProblem",
    "FhirBundleError",
    "bundle_from_document",
    "is_bundle",
    "load_bundle_patient",
    "read_bundle",
]
