"""What the FHIR tests share: finding an entry of a Bundle that linewise wrote."""

from __future__ import annotations

from typing import Any


def entry_index(bundle: dict[str, Any], kind: str, code: str | None = None) -> int:
    """Return the position of the first entry of resource type ``kind`` (with ``code``, if given)."""
    for index, entry in enumerate(bundle["entry"]):
        resource = entry["resource"]
        codes = {c.get("code") for c in resource.get("code", {}).get("coding", [])}
        if resource["resourceType"] == kind and (code is None or code in codes):
            return index
    raise AssertionError(f"no {kind} {code} in the Bundle")
