"""Feature pipelines: load and check a data lock, then derive line-level decision examples.

This package imports nothing else of the project. :func:`load_lock` is the only way patient data
enters linewise; it returns pseudonymised, typed frames with dates as day offsets.
"""

from linewise.features.bundled_lock import example_lock_path
from linewise.features.errors import RULES, LockValidationError, LockWarning, Violation
from linewise.features.loader import DEFAULT_OVERLAP_TOLERANCE_DAYS, DataLock, LockManifest, load_lock
from linewise.features.pseudonym import PseudonymKeyError, pseudonymize, resolve_key

__all__ = [
    "DEFAULT_OVERLAP_TOLERANCE_DAYS",
    "RULES",
    "DataLock",
    "LockManifest",
    "LockValidationError",
    "LockWarning",
    "PseudonymKeyError",
    "Violation",
    "example_lock_path",
    "load_lock",
    "pseudonymize",
    "resolve_key",
]
