"""Volume I/O with exact geometry: files, DICOM series, label maps and atomic outputs."""

from .atomic import atomic_path, write_json
from .dicom_series import list_series
from .output_dir import OutputDir
from .reader import read_volume
from .volume import Volume
from .writer import write_float_map, write_label_map

__all__ = [
    "Volume",
    "read_volume",
    "list_series",
    "write_label_map",
    "write_float_map",
    "atomic_path",
    "write_json",
    "OutputDir",
]
