"""The engine imports with no Slicer and no Qt: every MedSegAILib module except the Slicer adapters.

Runs in a fresh interpreter where a meta-path finder makes `slicer`, `qt`, `ctk`, PySide6,
PyQt5/6 and VTK's Qt bindings raise ImportError, as on a plain Python install.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BLOCKED = (
    "slicer",
    "qt",
    "ctk",
    "PySide6",
    "PySide2",
    "shiboken6",
    "PyQt5",
    "PyQt6",
    "vtk.qt",
    "vtkmodules.qt",
)

CHILD = r"""
import importlib, importlib.abc, json, pkgutil, sys

BLOCKED = {blocked!r}

class BlockSlicerAndQt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == root or name.startswith(root + ".") for root in BLOCKED):
            raise ImportError(f"{{name}} is blocked: the engine must not need Slicer or Qt")
        return None

sys.meta_path.insert(0, BlockSlicerAndQt())
sys.path.insert(0, {source!r})
import MedSegAILib

imported, failed = [], {{}}
for module in pkgutil.walk_packages(MedSegAILib.__path__, "MedSegAILib."):
    if module.name == "MedSegAILib.slicer" or module.name.startswith("MedSegAILib.slicer."):
        continue
    if module.name == "MedSegAILib.__main__":
        continue  # runs the CLI; its import (cli.main) is covered
    try:
        importlib.import_module(module.name)
        imported.append(module.name)
    except Exception as error:
        failed[module.name] = f"{{type(error).__name__}}: {{error}}"
leaked = sorted(m for m in sys.modules if any(m == r or m.startswith(r + ".") for r in BLOCKED))
print(json.dumps({{"imported": imported, "failed": failed, "leaked": leaked}}))
"""


def test_engine_imports_without_slicer_and_qt():
    source = str(Path(__file__).resolve().parents[1] / "MedSegAI")
    code = CHILD.format(blocked=BLOCKED, source=source)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["failed"] == {}
    assert report["leaked"] == []
    for expected in (
        "MedSegAILib.io.reader",
        "MedSegAILib.io.dicom_series",
        "MedSegAILib.cli.main",
        "MedSegAILib.cli.info",
    ):
        assert expected in report["imported"]
