"""The first reading of a Bundle: its JSON parsed by fhir.resources' R4B models, or every problem named.

:func:`parse_bundle` refuses what the resource readers (:mod:`linewise.features.fhir.resources`)
never see: an entry of a type linewise does not read, a Bundle the R4B models reject (each problem
named by entry, resource and element; an element name no R4B model declares is shown as
:data:`UNKNOWN_ELEMENT`, since a key could carry anything), and a history or response Bundle.
"""

from __future__ import annotations

import importlib
from typing import Any, Final

from fhir.resources.R4B.bundle import Bundle
from pydantic import BaseModel, ValidationError

from linewise.features.fhir.problems import BUNDLE_RULES, GENERIC_MESSAGE, BundleProblem, FhirBundleError

#: Shown instead of an element name that no FHIR R4B resource declares (a key could carry anything).
UNKNOWN_ELEMENT: Final = "<unknown element>"
#: The fhir.resources R4B modules whose element names an error may show: the resources read and the
#: data types they use.
_NAMED_MODULES: Final = [
    "bundle",
    "patient",
    "organization",
    "condition",
    "observation",
    "medicationadministration",
    "procedure",
    "specimen",
    "codeableconcept",
    "coding",
    "reference",
    "extension",
    "identifier",
    "period",
    "quantity",
    "meta",
    "narrative",
    "annotation",
    "humanname",
    "contactpoint",
    "address",
    "attachment",
    "range",
    "ratio",
    "sampleddata",
    "timing",
    "age",
    "duration",
    "resource",
    "domainresource",
    "element",
    "backboneelement",
    "fhirprimitiveextension",
]


def _element_names() -> frozenset[str]:
    names = {"root", "resourceType"}
    for name in _NAMED_MODULES:
        module = importlib.import_module(f"fhir.resources.R4B.{name}")
        for model in vars(module).values():
            if isinstance(model, type) and issubclass(model, BaseModel):
                for field_name, info in model.model_fields.items():
                    names |= {field_name, info.alias or field_name}
    return frozenset(names)


def is_bundle(content: object) -> bool:
    """Whether parsed JSON is a FHIR Bundle (rather than a linewise patient document)."""
    return isinstance(content, dict) and content.get("resourceType") == "Bundle"


def _structure_problems(error: ValidationError, content: dict[str, Any]) -> list[BundleProblem]:
    problems = []
    listed = content.get("entry")
    entries: list[Any] = listed if isinstance(listed, list) else []
    known = _element_names()  # only on this error path: it imports some thirty model modules
    for item in error.errors():
        loc = list(item.get("loc", ()))
        entry = loc[1] if len(loc) > 1 and loc[0] == "entry" and isinstance(loc[1], int) else None
        resource = None
        if entry is not None and entry < len(entries) and isinstance(entries[entry], dict):
            found = entries[entry].get("resource")
            kind = found.get("resourceType") if isinstance(found, dict) else None
            resource = kind if isinstance(kind, str) and kind.isalpha() and len(kind) < 64 else None
        path = loc[3:] if entry is not None and len(loc) > 2 and loc[2] == "resource" else loc
        names = [p for p in path if isinstance(p, str)]
        element = ".".join(n if n in known else UNKNOWN_ELEMENT for n in names) or None
        message = str(item.get("msg", GENERIC_MESSAGE))
        value = item.get("input")
        if value is not None and not isinstance(value, dict | list) and str(value) and str(value) in message:
            message = GENERIC_MESSAGE
        problems.append(BundleProblem(entry, resource, element, "fhir-structure", message))
    return problems


#: The ``Bundle.type`` codes read: a history or a response Bundle is refused (it may hold a resource twice).
BUNDLE_TYPES: Final = frozenset(
    {
        "document",
        "message",
        "transaction",
        "batch",
        "searchset",
        "collection",
    }
)
#: The resource types linewise reads; any other entry is refused (rule ``fhir-resource``).
READ_TYPES: Final = frozenset(
    {
        "Patient",
        "Organization",
        "Condition",
        "Observation",
        "MedicationAdministration",
        "Procedure",
        "Specimen",
    }
)


def _unread_entries(content: dict[str, Any]) -> list[BundleProblem]:
    """Entries whose resource type linewise does not read (checked before parsing, which would fail)."""
    entries = content.get("entry")
    if not isinstance(entries, list):
        return []
    problems = []
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if isinstance(resource, dict) and not (isinstance(kind, str) and kind in READ_TYPES):
            problems.append(
                BundleProblem(index, None, "resourceType", "fhir-resource", BUNDLE_RULES["fhir-resource"])
            )
    return problems


def parse_bundle(content: object, source: str = "bundle") -> Bundle:
    """Parse the JSON of a Bundle with the R4B models.

    Parameters
    ----------
    content : object
        The parsed JSON.
    source : str
        The Bundle's name in messages.

    Returns
    -------
    fhir.resources.R4B.bundle.Bundle

    Raises
    ------
    FhirBundleError
        For content that is no JSON object, an entry of a type linewise does not read, a Bundle the
        models reject, and a ``Bundle.type`` other than :data:`BUNDLE_TYPES`.
    """
    if not isinstance(content, dict):
        raise FhirBundleError(
            source, [BundleProblem(None, None, None, "fhir-json", BUNDLE_RULES["fhir-json"])]
        )
    unread = _unread_entries(content)
    if unread:
        raise FhirBundleError(source, unread)
    try:
        bundle = Bundle.model_validate(content)
    except ValidationError as err:
        raise FhirBundleError(source, _structure_problems(err, content)) from None
    except (KeyError, TypeError, ValueError, RecursionError):  # fhir.resources on malformed input
        raise FhirBundleError(
            source, [BundleProblem(None, "Bundle", None, "fhir-structure", BUNDLE_RULES["fhir-structure"])]
        ) from None
    if bundle.type not in BUNDLE_TYPES:  # fhir.resources does not check required code bindings
        message = "type is one of " + ", ".join(sorted(BUNDLE_TYPES))
        raise FhirBundleError(source, [BundleProblem(None, "Bundle", "type", "fhir-structure", message)])
    return bundle
