"""Edit the manifest of a copy of a data lock: shared by the rule tests of this folder."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path


def change_manifest(change: dict[str, object]) -> Callable[[Path], None]:
    """Return a corruption that sets (or, for None, removes) the manifest's keys in ``change``."""

    def corrupt(lock: Path) -> None:
        content = json.loads((lock / "manifest.json").read_text())
        for key, value in change.items():
            if value is None:
                content.pop(key)
            else:
                content[key] = value
        (lock / "manifest.json").write_text(json.dumps(content))

    return corrupt
