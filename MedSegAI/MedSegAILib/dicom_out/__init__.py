"""DICOM out and in: SEG for segmentations, a TID 1500 SR for findings, SEG import (highdicom)."""

from .labels import LabelInfo, labels_json, read_labels_json
from .seg import write_dicom_seg

__all__ = ["LabelInfo", "labels_json", "read_labels_json", "write_dicom_seg"]
