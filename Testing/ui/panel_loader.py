"""Load ``MedSegAI.ui`` with PySide6 outside Slicer, and render it to a PNG.

Slicer's custom widgets are rewritten to the Qt class they extend or look like before loading
(``ctkCollapsibleButton`` -> ``QGroupBox`` with its text as title, ``qMRMLNodeComboBox`` ->
``QComboBox`` ...); their Slicer-only properties are dropped. Run as a script to refresh
``docs/panel.png``: ``QT_QPA_PLATFORM=offscreen .venv/bin/python Testing/ui/panel_loader.py``.
"""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UI_FILE = REPO / "MedSegAI" / "Resources" / "UI" / "MedSegAI.ui"

# Slicer class -> (stand-in Qt class, properties to drop, property renames)
FALLBACKS = {
    "qMRMLWidget": ("QWidget", set(), {}),
    "ctkCollapsibleButton": ("QGroupBox", {"collapsed"}, {"text": "title"}),
    "qMRMLNodeComboBox": (
        "QComboBox",
        {"nodeTypes", "showChildNodeTypes", "addEnabled", "removeEnabled", "noneEnabled"},
        {},
    ),
    "ctkDirectoryButton": ("QPushButton", set(), {}),
    "ctkSliderWidget": ("QDoubleSpinBox", set(), {}),
}


def qt_only_ui(path: Path = UI_FILE) -> bytes:
    """The .ui XML with Slicer's custom widgets replaced by stand-ins Qt knows."""
    tree = ET.parse(path)
    root = tree.getroot()
    for element in root.iter("widget"):
        fallback = FALLBACKS.get(element.get("class", ""))
        if fallback is None:
            continue
        qt_class, dropped, renamed = fallback
        element.set("class", qt_class)
        for prop in list(element.findall("property")):
            name = prop.get("name")
            if name in dropped:
                element.remove(prop)
            elif name in renamed:
                prop.set("name", renamed[name])
    for section in ("customwidgets", "connections"):
        for child in root.findall(section):
            root.remove(child)
    return ET.tostring(root, encoding="utf-8")


def load_panel(path: Path = UI_FILE):
    """The panel as a PySide6 widget (a ``QApplication`` is created if needed)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtUiTools import QUiLoader
    from PySide6.QtWidgets import QApplication

    QApplication.instance() or QApplication([])
    buffer = QBuffer()
    buffer.setData(QByteArray(qt_only_ui(path)))
    buffer.open(QIODevice.ReadOnly)
    loader = QUiLoader()
    widget = loader.load(buffer)
    if widget is None:
        raise RuntimeError(f"{path}: QUiLoader failed: {loader.errorString()}")
    return widget


def render_panel(output: Path, width: int = 420) -> Path:
    """Render the loaded panel, with example values, to ``output`` (PNG)."""
    from PySide6.QtWidgets import QComboBox, QTableWidgetItem

    panel = load_panel()
    panel.findChild(QComboBox, "inputVolumeSelector").addItem("chest CT (ct-64)")
    table = panel.findChild(object, "findingsTable")
    for row, values in enumerate(
        [("1", "8.5", "310", "0.93", "4A", "no"), ("2", "4.0", "30", "0.41", "2", "yes")]
    ):
        table.insertRow(row)
        for column, value in enumerate(values):
            table.setItem(row, column, QTableWidgetItem(value))
    panel.findChild(object, "flaggedList").addItem("lung nodule")
    panel.findChild(object, "progressBar").setValue(100)
    panel.findChild(object, "statusLabel").setText("Segmentation done.")
    panel.findChild(object, "exportFolderButton").setText("/home/user/meshes")
    panel.findChild(object, "dicomFolderButton").setText("/home/user/dicom-out")
    for name in (
        "dicomExportCheckBox",
        "dicomFolderButton",
        "loadDicomSegButton",
    ):  # as for a CT loaded from DICOM
        panel.findChild(object, name).setEnabled(True)
    panel.resize(width, panel.sizeHint().height())
    panel.grab().save(str(output))
    return output


if __name__ == "__main__":
    print(render_panel(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "panel.png"))
