"""Fixtures for the DICOM SEG/SR tests: real CT series from ../shared/data and label maps on them."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from MedSegAILib.dicom_out import LabelInfo
from MedSegAILib.io import read_volume
from MedSegAILib.models.terminology import terminology_for

LEFT = {3, 7, 8, 9, 10, 11}  # CIP lung regions (../shared/data/SOURCES.md)
RIGHT = {2, 4, 5, 6, 12, 13, 14}


@pytest.fixture
def ct64(shared_data):
    """The 64x64x79 CIP chest CT, read from its DICOM series."""
    return read_volume(shared_data("cip_lung_ct/ct-64Dicom"))


@pytest.fixture
def ct3(shared_data):
    """The 3-slice GE CT that liver.dcm was made on (files listed in reverse slice order)."""
    return read_volume(shared_data("dicom_seg/ct-3slice"))


@pytest.fixture
def lung_labels(shared_data, ct64):
    """Left lung 1, right lung 2, trachea 3 from the CIP label map, on the ct-64 grid."""
    cip = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data("cip_lung_ct/lm-64.nrrd")))).astype(np.int64)
    assert cip.shape == ct64.array.shape
    labels = np.zeros(cip.shape, dtype=np.uint8)
    labels[np.isin(cip & 255, list(LEFT))] = 1
    labels[np.isin(cip & 255, list(RIGHT))] = 2
    labels[cip == 512] = 3
    return labels


@pytest.fixture
def lung_infos():
    return [
        LabelInfo(1, "left lung", (128, 174, 128), terminology_for("left lung")),
        LabelInfo(2, "right lung", (241, 214, 145), terminology_for("right lung")),
        LabelInfo(3, "trachea", (182, 228, 255), terminology_for("trachea")),
    ]
