"""`medsegai demo`: the whole job offline, with every CONTRACT file and a summary picture."""

from __future__ import annotations

import json

import numpy as np
import SimpleITK as sitk
from MedSegAILib.cli.main import main
from MedSegAILib.demo.data import PHANTOM_NODULE_LPS, chest_phantom

CONTRACT_FILES = {
    "segmentation.nii.gz",
    "labels.json",
    "run.json",
    "uncertainty_entropy.nii.gz",
    "uncertainty_mutual_information.nii.gz",
    "uncertainty.json",
    "gradcam_lung_nodule.nii.gz",
    "findings.json",
    "nodules.nii.gz",
    "summary.png",
    "meshes",
    "gradcam_nodules.nii.gz",  # beyond the contract: the findings' map, which the summary shows
}


def test_the_phantom_has_lungs_and_a_nodule_where_documented():
    phantom = chest_phantom(spacing=(2.0, 2.0, 4.0))
    i, j, k = np.rint(phantom.lps_to_ijk(PHANTOM_NODULE_LPS)).astype(int)
    assert phantom.array[k, j, i] > -100  # solid nodule
    i, j, k = np.rint(phantom.lps_to_ijk(PHANTOM_NODULE_LPS + [0.0, 0.0, -40.0])).astype(int)
    assert phantom.array[k, j, i] < -700  # aerated lung around it
    assert PHANTOM_NODULE_LPS[0] < 0  # the patient's right


def test_demo_on_the_phantom_writes_every_output_and_a_summary(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--phantom", "--uncertainty", "2", "--quiet"]) == 0

    assert CONTRACT_FILES <= {p.name for p in out.iterdir()}
    run = json.loads((out / "run.json").read_text())
    assert {"uncertainty", "gradcam", "mesh", "detect"} <= set(run["timings"])
    assert run["model"]["name"] == "chest_ct"
    segmentation = sitk.ReadImage(str(out / "segmentation.nii.gz"))
    entropy = sitk.ReadImage(str(out / "uncertainty_entropy.nii.gz"))
    assert segmentation.GetSize() == entropy.GetSize() and segmentation.GetOrigin() == entropy.GetOrigin()
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "meshes" / "meshes.json").read_text())["coordinate_system"] == "LPS"
