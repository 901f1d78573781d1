"""`medsegai export-stl`: one closed surface mesh per label of a label map.

Vertices are in millimetres in patient coordinates (LPS by default, as DICOM and 3D Slicer's
STL export; RAS with --coords ras), from the label map's spacing, origin and direction.
Writes DIR/<segment name with spaces as _>.<format> and DIR/meshes.json (a report per label:
closed, manifold, components, volume, area, triangles). A label with no voxels gets no file
and a warning.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..io.output_dir import OutputDir
from ..io.volume import Volume
from ..mesh import MeshOptions, export_meshes_with_report
from ..mesh.options import DEFAULT_PASSBAND, DEFAULT_SMOOTHING_ITERATIONS
from ..models.card import read_labels_json
from .common import add_output_argument, add_quiet_argument, progress_for

LOG = logging.getLogger("MedSegAILib.mesh")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export-stl",
        help="export one closed surface mesh per label",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("labelmap", metavar="LABELMAP", help="integer label map (NIfTI, NRRD, MetaImage)")
    add_output_argument(parser)
    parser.add_argument(
        "--labels", metavar="labels.json", help="names and colours of the labels (otherwise label_<value>)"
    )
    parser.add_argument(
        "--coords",
        choices=("lps", "ras"),
        default="lps",
        help="coordinate system of the vertices (default: lps, as DICOM and as 3D Slicer writes STL)",
    )
    parser.add_argument(
        "--smooth",
        type=int,
        metavar="N",
        default=DEFAULT_SMOOTHING_ITERATIONS,
        help="windowed-sinc (volume-preserving) smoothing iterations; 0 = off "
        f"(default: {DEFAULT_SMOOTHING_ITERATIONS})",
    )
    parser.add_argument(
        "--passband",
        type=float,
        metavar="P",
        default=DEFAULT_PASSBAND,
        help=f"windowed-sinc pass band in (0, 2); smaller smooths more (default: {DEFAULT_PASSBAND}, "
        "as 3D Slicer's smoothing factor 0.5)",
    )
    parser.add_argument(
        "--decimate",
        type=float,
        metavar="F",
        default=0.0,
        help="target fraction of triangles to remove with quadric decimation, 0 <= F < 1 (default: 0)",
    )
    parser.add_argument(
        "--format",
        choices=("stl", "obj", "ply"),
        default="stl",
        help="stl (binary, default), obj or ply (both keep the segment colour)",
    )
    parser.add_argument(
        "--keep-largest", action="store_true", help="keep only the largest connected piece of each label"
    )
    parser.add_argument(
        "--fill-holes",
        type=float,
        metavar="MM3",
        default=0.0,
        help="fill enclosed cavities up to this volume in mm^3 (default: 0 = off)",
    )
    add_quiet_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = _options(args)
    labels = read_label_map(Path(args.labelmap))
    names = (
        {label.value: (label.name, label.color) for label in read_labels_json(args.labels)}
        if args.labels
        else {}
    )
    handler = _warnings_to_stderr()
    try:
        with OutputDir(args.output) as out:
            export_meshes_with_report(
                labels.array,
                labels,
                names,
                out.path("meshes.json").parent,
                options,
                progress=progress_for(args),
            )
    finally:
        LOG.removeHandler(handler)
    return 0


def read_label_map(path: Path) -> Volume:
    """Read an integer label map with its geometry.

    Raises:
        InputError: missing, unreadable, not 3-D, not scalar, or not integer-valued.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such file; give a label map (NIfTI, NRRD, MetaImage)")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError:
        raise InputError(
            f"{path}: cannot be read as an image (corrupt or unsupported); "
            "give a NIfTI, NRRD or MetaImage label map"
        ) from None
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path}: not a 3-D scalar image (size {image.GetSize()}); give a 3-D label map")
    volume = Volume.from_sitk(image, metadata={"source": str(path)})
    array = volume.array
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise InputError(f"{path}: holds non-integer values; give an integer label map (0 = background)")
        array = array.astype(np.int32)
    if array.size and array.min() < 0:
        raise InputError(f"{path}: holds negative label values; labels must be 0 (background) or positive")
    return volume.with_array(array)


def _options(args: argparse.Namespace) -> MeshOptions:
    try:
        return MeshOptions(
            coords=args.coords,
            smoothing_iterations=args.smooth,
            passband=args.passband,
            decimate=args.decimate,
            keep_largest=args.keep_largest,
            fill_holes_mm3=args.fill_holes,
            format=args.format,
        )
    except ValueError as error:
        raise InputError(f"medsegai export-stl: {error}; see `medsegai export-stl --help`") from None


def _warnings_to_stderr() -> logging.Handler:
    """Show the engine's warnings (e.g. empty labels) as ``medsegai: warning: ...`` lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("medsegai: warning: %(message)s"))
    LOG.addHandler(handler)
    return handler
