"""MRML adapters: Slicer nodes <-> engine input and CONTRACT output files.

These modules import ``slicer`` (MRML classes) and ``vtk`` only, never Qt, so they run in
real 3D Slicer and, for tests, on ``slicer-core`` with a scene the caller creates.
The Slicer module runs the engine out of process through the ``medsegai`` command; the
adapters write its input file and turn its output files into nodes.
"""
