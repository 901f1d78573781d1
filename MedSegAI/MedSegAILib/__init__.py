"""MedSegAI engine: chest CT segmentation, detection, explainability and surface export.

This package never imports Slicer or Qt. The `medsegai` command and the Slicer module
both call it.
"""

__version__ = "0.1.0"
