"""The import order of ``docs/architecture`` (``../shared/design/architecture.md``), read from the source.

Every ``import`` and ``from ... import`` anywhere in a module (also inside functions), and every
``importlib.import_module("...")`` with a literal name, is an arrow from the module's part to the part
it names. The parts and the arrows allowed:

- ``linewise.features`` imports nothing of the project;
- ``linewise.models`` imports ``features``;
- ``linewise.training`` imports ``features`` and ``models``;
- ``linewise.serving`` imports ``features`` and ``models`` (fitted models come through MLflow);
- ``linewise.simulation`` stands apart: it reads locks through ``features`` and nothing else;
- the command line (``linewise`` itself and its modules outside those five) imports anything.

Nothing imports the folders under their bare top-level names (``import models``), and no module
imports another module's private (``_``-prefixed) name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Final

PACKAGE: Final = "linewise"
PARTS: Final = ("features", "models", "training", "serving", "simulation")
#: The part each part may import, besides itself.
ALLOWED: Final = {
    "features": frozenset(),
    "models": frozenset({"features"}),
    "training": frozenset({"features", "models"}),
    "serving": frozenset({"features", "models"}),
    "simulation": frozenset({"features"}),
}
COMMAND_LINE: Final = "command line"


@dataclass(frozen=True)
class Arrow:
    """One import that breaks a rule."""

    path: str
    line: int
    imported: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.imported} ({self.rule})"


def part_of(module: str) -> str | None:
    """Return the part a dotted module name belongs to, or None when it is not linewise's."""
    names = module.split(".")
    if names[0] != PACKAGE:
        return None
    if len(names) > 1 and names[1] in PARTS:
        return names[1]
    return COMMAND_LINE


def module_name(root: Path, path: Path) -> str:
    """Dotted name of ``path`` inside the package folder ``root`` (``root`` is ``linewise``)."""
    relative = path.relative_to(root).with_suffix("")
    names = [PACKAGE, *relative.parts]
    return ".".join(names[:-1] if names[-1] == "__init__" else names)


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str, list[str]]]:
    """(line, module imported, names taken from it) of every import in ``tree``."""
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [alias.name for alias in node.names]
            if base == PACKAGE:  # ``from linewise import models`` imports the part linewise.models
                found += [(node.lineno, f"{PACKAGE}.{name}", []) for name in names if name in PARTS]
                names = [name for name in names if name not in PARTS]
                if not names:
                    continue
            found.append((node.lineno, base, names))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value, []))
    return found


def check_file(path: Path, module: str | None, label: str) -> list[Arrow]:
    """Return the arrows of one source file that break a rule.

    Parameters
    ----------
    path : Path
        A Python source file.
    module : str or None
        Its dotted name when it is part of the package; None for tests, benchmarks and scripts, which
        may import every part but not the bare folders.
    label : str
        How the file is named in the result.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    source_part = part_of(module) if module else None
    is_package = path.name == "__init__.py"
    arrows = []
    for line, imported, names in _imports(tree, module or "", is_package):
        top = imported.split(".")[0]
        if top in PARTS:
            arrows.append(Arrow(label, line, imported, f"bare top-level name; use {PACKAGE}.{imported}"))
            continue
        target = part_of(imported)
        if module is None or target is None:
            continue
        if source_part in ALLOWED and target != source_part and target not in ALLOWED[source_part]:
            arrows.append(Arrow(label, line, imported, f"{source_part} must not import {target}"))
        private = [name for name in names if name.startswith("_") and not name.startswith("__")]
        if private and imported != module:
            arrows.append(Arrow(label, line, f"{imported}.{private[0]}", "a private name of another module"))
    return arrows


def check_package(root: Path) -> list[Arrow]:
    """Return every arrow against the rules in the package folder ``root`` (following its links)."""
    arrows = []
    for path in sorted(_sources(root)):
        arrows += check_file(path, module_name(root, path), str(path.relative_to(root.parent)))
    return arrows


def _sources(root: Path) -> list[Path]:
    """Every ``.py`` file under ``root``, through the symbolic links to the parts' folders."""
    found = []
    for entry in root.iterdir():
        if entry.is_dir() and entry.name != "__pycache__":
            found += _sources(entry)
        elif entry.suffix == ".py":
            found.append(entry)
    return found
