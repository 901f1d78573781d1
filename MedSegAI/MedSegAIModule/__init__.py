"""The Slicer-side (Qt) part of the MedSegAI module: widget, jobs, process runner,
dependency installation and the parameter node.

Only ``widget.py`` imports Qt; the other modules are plain Python (``parameters`` uses MRML
nodes) so they are tested outside Slicer. The engine package ``MedSegAILib`` never imports
anything from here.
"""
