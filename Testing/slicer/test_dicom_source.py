"""A volume node's own DICOM series: found through DICOM.instanceUIDs and the database lookup,
given to the engine for --dicom-out, and used as the reference of "Load DICOM SEG".

The DICOM database is replaced by a dictionary's ``get`` (SOP Instance UID -> file), which is
all the module asks of ``slicer.dicomDatabase.fileForInstance``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

slicer = pytest.importorskip("slicer")
vtk = pytest.importorskip("vtk")

from MedSegAILib.errors import InputError  # noqa: E402
from MedSegAILib.io import read_volume  # noqa: E402
from MedSegAILib.slicer.dicom_seg_import import import_dicom_seg_onto_volume  # noqa: E402
from MedSegAILib.slicer.dicom_source import (  # noqa: E402
    INSTANCE_UIDS_ATTRIBUTE,
    dicom_files_of_volume,
    instance_uids,
    link_dicom_series,
)
from MedSegAILib.slicer.engine_input import write_dicom_engine_input  # noqa: E402
from MedSegAILib.slicer.volume_nodes import set_node_geometry  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:The string .* is unlikely to represent the intended person name"
)


def test_a_volume_not_loaded_from_dicom_has_no_dicom_files(ct_node):
    assert instance_uids(ct_node) == []
    assert dicom_files_of_volume(ct_node, lambda uid: pytest.fail("no lookup without instance UIDs")) == []


def test_the_files_come_from_the_database_in_the_attribute_order(dicom_ct):
    node, lookup, files, _ = dicom_ct
    uids = node.GetAttribute(INSTANCE_UIDS_ATTRIBUTE).split()
    node.SetAttribute(
        INSTANCE_UIDS_ATTRIBUTE, " ".join(reversed(uids)) + " " + uids[0]
    )  # a repeat is ignored
    assert dicom_files_of_volume(node, lookup) == [Path(lookup(uid)) for uid in reversed(uids)]


def test_an_instance_the_database_lost_is_a_clear_error(dicom_ct, tmp_path):
    node, lookup, files, _ = dicom_ct
    with pytest.raises(
        InputError,
        match=r"3 slices: DICOM instance .* is not in Slicer's DICOM database; import the series again",
    ):
        dicom_files_of_volume(node, lambda uid: "")
    with pytest.raises(InputError, match="DICOM file of 3 slices is missing"):
        dicom_files_of_volume(node, lambda uid: str(tmp_path / "deleted.dcm"))


def test_the_engine_input_folder_holds_exactly_the_series_and_reads_as_the_same_ct(
    dicom_ct, tmp_path, shared_data
):
    node, lookup, files, volume = dicom_ct

    folder = write_dicom_engine_input(node, lookup, tmp_path / "dicom")

    assert len(list(folder.iterdir())) == len(files)
    again = read_volume(folder)
    assert again.same_grid(volume) and np.array_equal(again.array, volume.array)
    assert again.metadata["series_uid"] == volume.metadata["series_uid"]
    assert sorted(again.metadata["sop_instance_uids"]) == sorted(volume.metadata["sop_instance_uids"])


def test_files_with_equal_names_from_different_folders_are_all_kept(tmp_path):
    sources = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        sources.append(tmp_path / folder / "IM0001")
        sources[-1].write_bytes(folder.encode())
    linked = link_dicom_series(sources, tmp_path / "series")
    assert sorted(path.read_bytes() for path in linked.iterdir()) == [b"a", b"b"]


def test_dicom_export_is_refused_for_a_converted_volume_and_a_transformed_one(
    scene, ct_node, dicom_ct, tmp_path
):
    with pytest.raises(
        InputError,
        match="chest CT: the volume was not loaded from DICOM, so no DICOM SEG / SR can refer to it",
    ):
        write_dicom_engine_input(ct_node, lambda uid: "", tmp_path / "a")
    node, lookup, _, _ = dicom_ct
    node.SetAndObserveTransformNodeID(scene.AddNewNodeByClass("vtkMRMLLinearTransformNode").GetID())
    with pytest.raises(InputError, match="under a transform"):
        write_dicom_engine_input(node, lookup, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_load_dicom_seg_puts_the_liver_on_the_volume_node(scene, dicom_ct, shared_data):
    import SimpleITK as sitk

    node, lookup, _, volume = dicom_ct

    segmentation_node = import_dicom_seg_onto_volume(shared_data("dicom_seg/liver.dcm"), node, lookup)

    segmentation = segmentation_node.GetSegmentation()
    assert segmentation_node.GetScene() is scene and segmentation.GetNthSegment(0).GetName() == "Liver"
    labelmap, segment_ids = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode"), vtk.vtkStringArray()
    segmentation.GetSegmentIDs(segment_ids)
    slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
        segmentation_node, segment_ids, labelmap, node
    )
    on_grid = slicer.util.arrayFromVolume(labelmap)
    expected = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data("dicom_seg/liver_seg.nrrd"))))
    assert on_grid.shape == volume.array.shape
    np.testing.assert_array_equal(on_grid > 0, expected > 0)


def test_load_dicom_seg_refuses_a_seg_of_another_series_and_a_volume_off_its_files(
    scene, dicom_ct, shared_data, tmp_path
):
    from MedSegAILib.dicom_out import LabelInfo, write_dicom_seg

    node, lookup, _, volume = dicom_ct
    other = read_volume(shared_data("cip_lung_ct/ct-64Dicom"))
    labels = np.zeros(other.array.shape, np.uint8)
    labels[10, 100:120, 100:120] = 1
    other_seg = write_dicom_seg(
        labels, other, [LabelInfo(1, "lung nodule")], tmp_path / "other.dcm", "m", "1"
    )
    with pytest.raises(InputError, match="references series"):
        import_dicom_seg_onto_volume(other_seg, node, lookup)

    shifted = volume.with_array(volume.array)
    shifted.origin = (volume.origin[0], volume.origin[1], volume.origin[2] + 40.0)
    set_node_geometry(node, shifted)  # e.g. the node was edited after loading
    with pytest.raises(InputError, match="on no slice of the volume"):
        import_dicom_seg_onto_volume(shared_data("dicom_seg/liver.dcm"), node, lookup)
    assert scene.GetNodesByClass("vtkMRMLSegmentationNode").GetNumberOfItems() == 0


def test_load_dicom_seg_needs_a_volume_loaded_from_dicom(ct_node, shared_data):
    with pytest.raises(
        InputError, match="chest CT: the volume was not loaded from DICOM, so DICOM SEG import has no series"
    ):
        import_dicom_seg_onto_volume(shared_data("dicom_seg/liver.dcm"), ct_node, lambda uid: "")


def test_the_panel_asks_slicers_dicom_database_and_copes_without_one(monkeypatch):
    from MedSegAILib.slicer.dicom_source import slicer_dicom_database_file

    monkeypatch.delattr(slicer, "dicomDatabase", raising=False)  # slicer-core has no DICOM database
    assert slicer_dicom_database_file("1.2.3") == ""

    class Database:
        def fileForInstance(self, uid):
            return {"1.2.3": "/db/dicom/1.2.3.dcm"}.get(uid, "")

    monkeypatch.setattr(slicer, "dicomDatabase", Database(), raising=False)
    assert (
        slicer_dicom_database_file("1.2.3") == "/db/dicom/1.2.3.dcm" and slicer_dicom_database_file("9") == ""
    )
