"""Volume I/O with exact geometry: files, DICOM series, label maps and atomic outputs."""

from .volume import Volume
from .reader import read_volume
from .writer import write_label_map, write_float_map
from .output_dir import OutputDir

__all__ = ["Volume", "read_volume", "write_label_map", "write_float_map", "OutputDir"]
