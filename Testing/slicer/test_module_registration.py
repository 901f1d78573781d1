"""The scripted module is complete for a Slicer build: scripts, resources and self-test registered."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "MedSegAI"
CMAKE = (MODULE / "CMakeLists.txt").read_text()


def test_every_module_script_and_resource_is_listed_in_cmake():
    for path in [MODULE / "MedSegAI.py", *sorted((MODULE / "MedSegAIModule").glob("*.py"))]:
        assert path.relative_to(MODULE).as_posix().replace("MedSegAI.py", "${MODULE_NAME}.py") in CMAKE, path
    for resource in ["Resources/Icons/${MODULE_NAME}.png", "Resources/UI/${MODULE_NAME}.ui"]:
        assert resource in CMAKE
        assert (MODULE / resource.replace("${MODULE_NAME}", "MedSegAI")).exists()
    assert "slicerMacroBuildScriptedModule" in CMAKE and "MedSegAILib/*.py" in CMAKE


def test_the_self_test_is_registered_and_defined():
    assert re.search(r"slicer_add_python_unittest\(SCRIPT \$\{MODULE_NAME\}\.py\)", CMAKE)
    tree = ast.parse((MODULE / "MedSegAI.py").read_text())
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    assert {"MedSegAI", "MedSegAIWidget", "MedSegAILogic", "MedSegAITest"} <= set(classes)
    test_methods = {node.name for node in classes["MedSegAITest"].body if isinstance(node, ast.FunctionDef)}
    assert {"runTest", "test_segment_and_export"} <= test_methods


def test_the_module_sources_compile():
    for path in [MODULE / "MedSegAI.py", *sorted((MODULE / "MedSegAIModule").glob("*.py"))]:
        compile(path.read_text(), str(path), "exec")


def test_the_extension_icon_exists():
    assert (REPO / "Resources" / "MedSegAI.png").stat().st_size > 500
