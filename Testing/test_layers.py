"""The engine's layers: arrows only point down, no import cycles, and nothing installed imports the lab.

From the top (see docs/DEVELOPING.md): the command line and the Slicer adapters; training (built on
the engine, retraining from corrections); the job runner; the feature packages; models; io, the
classical anatomy rules and the shared errors/progress at the bottom. The lab (``lab/``) and the
tests sit outside the package and may import anything in it; the package imports neither.
Imports are read from the source (every ``import``, including those inside functions).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "MedSegAI" / "MedSegAILib"

TIERS = {
    "errors": 0,
    "progress": 0,
    "io": 1,
    "anatomy": 1,
    "models": 2,
    "inference": 3,
    "detection": 3,
    "explain": 3,
    "uncertainty": 3,
    "mesh": 3,
    "dicom_out": 3,
    "report": 3,
    "demo": 3,
    "jobs": 4,
    "training": 5,
    "cli": 6,
    "slicer": 6,
    "__main__": 6,
    "": 0,  # the package itself holds only __version__
}
FORBIDDEN_ROOTS = ("medsegai_lab", "bench_setup", "lab_setup", "Testing")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names), including ``from X import name`` submodules."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}
GRAPH = {name: {m for m in imports_of(path) if m in MODULES and m != name} for name, path in MODULES.items()}


def top_package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_engine_package_has_a_tier():
    assert {top_package(m) for m in MODULES} <= set(TIERS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_and_never_into_the_lab(module):
    imported = imports_of(MODULES[module])
    assert not [m for m in imported if m.split(".")[0] in FORBIDDEN_ROOTS]
    upward = [m for m in GRAPH[module] if TIERS[top_package(m)] > TIERS[top_package(module)]]
    assert upward == [], f"{module} imports a higher layer"


def test_no_import_cycles():
    cycles, index, low, stack, on_stack = [], {}, {}, [], set()

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert cycles == []


def test_the_installed_package_holds_no_lab_material():
    names = {path.name for path in PACKAGE.rglob("*")}
    lab_files = {
        "pseudo_labels.py",
        "datasets.py",
        "classifier_training.py",
        "nodule_cases.py",
        "phantoms.py",
        "evaluate_model.py",
        "DETECTION_HISTORY.md",
    }
    assert not names & lab_files
    assert not [path for path in PACKAGE.rglob("results") if path.is_dir()]
