"""Volume I/O with exact geometry: files, DICOM series, label maps and atomic outputs."""

from .volume import Volume
from .reader import read_volume
from .dicom_series import list_series
from .writer import write_label_map, write_float_map
from .atomic import atomic_path, write_json
from .output_dir import OutputDir

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
