"""DICOM out and in: SEG for segmentations, a TID 1500 SR for findings, SEG import (highdicom)."""

from .labels import LabelInfo, labels_json, read_labels_json
from .seg import write_dicom_seg
from .seg_import import ImportedSegmentation, read_dicom_seg
from .sr import write_dicom_sr

__all__ = [
    "ImportedSegmentation",
    "LabelInfo",
    "labels_json",
    "read_dicom_seg",
    "read_labels_json",
    "write_dicom_seg",
    "write_dicom_sr",
]
