"""The command lines the panel runs are the engine's own: every option parses with `medsegai`'s
parser into the value the panel chose (so a renamed engine option fails here, not in Slicer)."""

from __future__ import annotations

from pathlib import Path

from MedSegAILib.cli.main import build_parser
from MedSegAILib.detection.detector import DEFAULT_THRESHOLD
from MedSegAIModule.engine_command import detect_command, export_command, segment_command
from MedSegAIModule.parameters import Settings

EVERYTHING = Settings(
    model="/models/chest",
    device="cuda:1",
    fast=True,
    uncertainty_samples=8,
    gradcam_target="lung nodule",
    threshold=0.35,
    export_folder="/out/meshes",
    export_format="obj",
    export_coords="ras",
    smoothing=7,
    decimation=0.25,
)


def engine_args(argv: list[str]):
    assert argv[:3] == ["python", "-m", "MedSegAILib"]
    return build_parser().parse_args(argv[3:])


def test_segment_options_parse_as_the_engine_reads_them():
    args = engine_args(
        segment_command("python", Path("/in/ct.nrrd"), Path("/out"), EVERYTHING, dicom_out=Path("/out/dicom"))
    )
    assert (args.command, args.input, args.output) == ("segment", "/in/ct.nrrd", "/out")
    assert (args.model, args.device, args.fast, args.uncertainty) == ("/models/chest", "cuda:1", True, 8)
    assert args.gradcam == ["lung nodule"] and args.dicom_out == "/out/dicom"


def test_detect_options_parse_as_the_engine_reads_them():
    args = engine_args(
        detect_command(
            "python", Path("/in/series"), Path("/out"), EVERYTHING, gradcam=True, dicom_out=Path("/d")
        )
    )
    assert (args.command, args.input, args.device, args.fast, args.uncertainty) == (
        "detect",
        "/in/series",
        "cuda:1",
        True,
        8,
    )
    assert (args.threshold, args.gradcam, args.dicom_out) == (0.35, True, "/d")


def test_defaults_add_nothing_the_engine_would_not_do_anyway():
    plain = engine_args(segment_command("python", Path("ct.nrrd"), Path("out"), Settings()))
    assert (plain.model, plain.device, plain.fast, plain.uncertainty, plain.gradcam, plain.dicom_out) == (
        None,
        "auto",
        False,
        0,
        [],
        None,
    )
    detect = engine_args(detect_command("python", Path("ct.nrrd"), Path("out"), Settings()))
    assert detect.threshold == DEFAULT_THRESHOLD == Settings().threshold and not detect.gradcam


def test_export_options_parse_as_export_stl_reads_them():
    args = engine_args(
        export_command("python", Path("/w/segmentation.nii.gz"), Path("/w/labels.json"), EVERYTHING)
    )
    assert (args.command, args.labelmap, args.output, args.labels) == (
        "export-stl",
        "/w/segmentation.nii.gz",
        "/out/meshes",
        "/w/labels.json",
    )
    assert (args.format, args.coords, args.smooth, args.decimate) == ("obj", "ras", 7, 0.25)
