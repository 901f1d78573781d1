"""The panel's .ui file: loads offscreen with PySide6, and has every widget the code uses."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("PySide6.QtUiTools", reason="needs PySide6-Essentials")

from panel_loader import FALLBACKS, REPO, UI_FILE, load_panel, render_panel  # noqa: E402

CODE_USING_THE_UI = [
    REPO / "MedSegAI" / "MedSegAI.py",
    *sorted((REPO / "MedSegAI" / "MedSegAIModule").glob("*.py")),
]
SECTIONS = ["Inputs", "Segment", "Nodules", "Explain", "Uncertainty", "Export"]


def ui_names_used_in_code() -> set[str]:
    """Every ``self.ui.<name>`` or ``ui.<name>`` attribute read in the module's Python code."""
    names = set()
    for path in CODE_USING_THE_UI:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Attribute):
                continue
            owner = node.value
            if (isinstance(owner, ast.Attribute) and owner.attr == "ui") or (
                isinstance(owner, ast.Name) and owner.id == "ui"
            ):
                names.add(node.attr)
    return names


def object_names_in_ui() -> set[str]:
    return {element.get("name") for element in ET.parse(UI_FILE).getroot().iter("widget")}


def test_every_widget_the_code_uses_exists_in_the_ui_file():
    used = ui_names_used_in_code()
    assert len(used) >= 20, f"the name scan found too little: {sorted(used)}"
    assert sorted(used - object_names_in_ui()) == []


def test_the_panel_loads_with_its_six_collapsible_sections():
    from PySide6.QtWidgets import QGroupBox

    panel = load_panel()
    titles = [box.title() for box in panel.findChildren(QGroupBox)]
    assert titles == SECTIONS


def test_every_slicer_widget_is_declared_with_its_base_class_and_has_a_stand_in():
    root = ET.parse(UI_FILE).getroot()
    declared = {c.findtext("class"): c.findtext("extends") for c in root.iter("customwidget")}
    used = {element.get("class") for element in root.iter("widget")}
    slicer_classes = {name for name in used if name.startswith(("ctk", "qMRML"))}
    assert slicer_classes <= set(declared) and all(declared[name] for name in slicer_classes)
    assert slicer_classes <= set(FALLBACKS)


def test_the_widgets_have_the_choices_the_engine_accepts():
    from PySide6.QtWidgets import QComboBox

    panel = load_panel()

    def items(name):
        box = panel.findChild(QComboBox, name)
        return [box.itemText(i) for i in range(box.count())]

    assert items("deviceComboBox") == ["auto", "cpu", "cuda", "mps"]
    assert items("exportFormatComboBox") == ["stl", "obj", "ply"]
    assert items("exportCoordsComboBox") == ["lps", "ras"]
    assert panel.findChild(object, "smoothingSpinBox").value() == 20  # the engine's default
    assert not panel.findChild(object, "cancelButton").isEnabled()


def test_the_panel_renders_to_a_picture(tmp_path):
    from PySide6.QtGui import QImage

    image = QImage(str(render_panel(tmp_path / "panel.png")))
    assert image.width() >= 420 and image.height() > 600
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 20  # drawn widgets, not a blank grab
