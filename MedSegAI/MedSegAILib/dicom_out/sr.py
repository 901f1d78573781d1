"""Write nodule findings (CONTRACT ``findings.json``) as a DICOM SR measurement report (TID 1500).

A Comprehensive 3D SR document made with highdicom. Each finding is one volumetric ROI
measurement group (TID 1411):

- the ROI is the finding's centre, an SCOORD3D POINT in the CT's frame of reference
  (LPS millimetres, as ``findings.json`` gives it), derived from the source series;
- tracking identifier ``finding <id>`` with a new tracking UID;
- finding type SCT 27925004 "Nodule", category SCT 49755003, finding site SCT "Lung";
- measurements (TID 300): ``diameter_mm`` as SCT 81827009 "Diameter" [mm]; where present
  ``long_axis_mm`` / ``short_axis_mm`` as SCT "Long axis" / "Short axis" [mm] and
  ``mean_diameter_mm`` as "Diameter" with derivation SCT 373098007 "Mean" [mm];
  ``volume_mm3`` as SCT 118565006 "Volume" [mm3];
- the detector ``score`` (0..1) as DCM 111012 "Certainty of Finding" in percent (UCUM
  ``%``, 0..100), the concept and unit DICOM CAD reports use for a finding's confidence;
- the Lung-RADS category (``lung_rads``, e.g. ``"4A"``) as a qualitative evaluation. DICOM
  and SNOMED have no Lung-RADS codes, so these use the private coding scheme
  ``99MEDSEGAI`` (concept ``LUNGRADS`` "Lung-RADS category", value ``LUNGRADS-4A``).

With no findings the report holds one image-level group (TID 1501) with the qualitative
evaluation "Nodule" = SCT 272519000 "Absent", since TID 1500 needs a measurement group.

The CT series and, when given, the DICOM SEG are the report's evidence (Current Requested
Procedure Evidence Sequence), so the SR references both.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from .. import __version__
from ..errors import InputError
from ..io.atomic import atomic_path
from ..io.volume import Volume
from .seg import MANUFACTURER
from .source import SourceSeries, source_series_of

SR_SERIES_NUMBER = 301
LOCAL_SCHEME = "99MEDSEGAI"
LUNG_RADS_CATEGORY = Code("LUNGRADS", LOCAL_SCHEME, "Lung-RADS category")
CT_CHEST = Code("24627-2", "LN", "CT Chest")
MILLIMETER = codes.UCUM.Millimeter
CUBIC_MILLIMETER = codes.UCUM.CubicMillimeter
PERCENT = codes.UCUM.Percent


def lung_rads_code(category: str) -> Code:
    """The (private-scheme) code for a Lung-RADS category such as ``"4A"``."""
    category = str(category).strip().upper()
    return Code(f"LUNGRADS-{category}", LOCAL_SCHEME, f"Lung-RADS {category}")


def write_dicom_sr(
    findings: dict[str, Any],
    reference: Volume,
    out_path: str | os.PathLike,
    algorithm_name: str,
    algorithm_version: str,
    segmentation_path: str | os.PathLike | None = None,
    series_number: int = SR_SERIES_NUMBER,
) -> Path:
    """Write ``findings`` (a ``findings.json`` document) as a TID 1500 Comprehensive 3D SR.

    Args:
        findings: ``{"coordinate_system": "LPS", "units": "mm", "findings": [...]}``.
        reference: the CT the findings were made on, read from its DICOM series.
        out_path: the ``.dcm`` file to write (atomically).
        algorithm_name: the detector's name (e.g. the model name).
        algorithm_version: the detector's version.
        segmentation_path: a DICOM SEG of the same series to reference, if one was written.
        series_number: DICOM series number of the new SR series.

    Returns:
        ``out_path``.

    Raises:
        InputError: the input was not DICOM, the findings are not in LPS millimetres or
            lack a field, or the SEG belongs to another series.
    """
    source = source_series_of(reference, purpose="DICOM SR export")
    segmentation = _read_segmentation(segmentation_path, source) if segmentation_path else None
    report = build_report(findings, source, algorithm_name, algorithm_version, segmentation, series_number)
    out_path = Path(out_path)
    with atomic_path(out_path) as temporary:
        report.save_as(temporary)
    return out_path


def build_report(
    findings: dict[str, Any],
    source: SourceSeries,
    algorithm_name: str,
    algorithm_version: str,
    segmentation: Dataset | None = None,
    series_number: int = SR_SERIES_NUMBER,
) -> hd.sr.Comprehensive3DSR:
    """The highdicom SR document for ``findings`` on ``source`` (see the module docstring)."""
    _check_units(findings)
    algorithm = hd.sr.AlgorithmIdentification(name=algorithm_name, version=algorithm_version)
    groups = [_finding_group(finding, source, algorithm) for finding in findings.get("findings", [])]
    if not groups:  # TID 1500 needs a measurement group: state that no nodule was found
        groups = [_no_findings_group(algorithm)]
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(),
            name=algorithm_name[:64],
            manufacturer_name=MANUFACTURER,
            model_name=algorithm_version[:64],
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=CT_CHEST,
        imaging_measurements=groups,
        title=codes.DCM.ImagingMeasurementReport,
    )
    evidence = list(source.datasets) + ([segmentation] if segmentation is not None else [])
    return hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=report[0],
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        series_description="MedSegAI nodule findings",
        software_versions=f"medsegai {__version__}",
        is_complete=True,
    )


def _check_units(findings: dict[str, Any]) -> None:
    system = findings.get("coordinate_system", "LPS")
    units = findings.get("units", "mm")
    if system != "LPS" or units != "mm":
        raise InputError(
            f"findings: coordinates in {system} {units}; "
            "DICOM SR needs LPS millimetres as findings.json writes them"
        )


def _finding_group(
    finding: dict[str, Any], source: SourceSeries, algorithm: hd.sr.AlgorithmIdentification
) -> hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations:
    try:
        identifier = int(finding["id"])
        center = np.asarray(finding["center"], dtype=float).reshape(1, 3)
        measurements = _measurements(finding, algorithm)
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(
            f"findings: finding {finding.get('id', '?')} lacks or garbles {error}; "
            "give findings.json as `detect` writes it"
        ) from None
    surface = hd.sr.VolumeSurface(
        graphic_type=hd.sr.GraphicTypeValues3D.POINT,
        graphic_data=center,
        frame_of_reference_uid=source.frame_of_reference_uid,
        source_series=hd.sr.SourceSeriesForSegmentation(source.series_instance_uid),
    )
    evaluations = []
    if finding.get("lung_rads"):
        evaluations.append(
            hd.sr.QualitativeEvaluation(name=LUNG_RADS_CATEGORY, value=lung_rads_code(finding["lung_rads"]))
        )
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"finding {identifier}"),
        referenced_volume_surface=surface,
        finding_type=codes.SCT.Nodule,
        finding_category=codes.SCT.MorphologicallyAbnormalStructure,
        finding_sites=[hd.sr.FindingSite(anatomic_location=codes.SCT.Lung)],
        algorithm_id=algorithm,
        measurements=measurements,
        qualitative_evaluations=evaluations or None,
    )


def _no_findings_group(
    algorithm: hd.sr.AlgorithmIdentification,
) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    """An image-level group (TID 1501) saying "Nodule: Absent"."""
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="no findings"),
        finding_type=codes.SCT.Nodule,
        finding_sites=[hd.sr.FindingSite(anatomic_location=codes.SCT.Lung)],
        algorithm_id=algorithm,
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(name=codes.SCT.Nodule, value=codes.SCT.Absent)],
    )


def _measurements(
    finding: dict[str, Any], algorithm: hd.sr.AlgorithmIdentification
) -> list[hd.sr.Measurement]:
    """Diameter, axes, volume and score of one finding (``KeyError`` if a required one is missing)."""

    def measurement(
        name: Code, value: float, unit: Code, derivation: Code | None = None
    ) -> hd.sr.Measurement:
        return hd.sr.Measurement(
            name=name, value=float(value), unit=unit, derivation=derivation, algorithm_id=algorithm
        )

    items = [measurement(codes.SCT.Diameter, finding["diameter_mm"], MILLIMETER)]
    optional: Sequence[tuple[str, Code, Code | None]] = (
        ("long_axis_mm", codes.SCT.LongAxis, None),
        ("short_axis_mm", codes.SCT.ShortAxis, None),
        ("mean_diameter_mm", codes.SCT.Diameter, codes.SCT.Mean),
    )
    for key, name, derivation in optional:
        if finding.get(key) is not None:
            items.append(measurement(name, finding[key], MILLIMETER, derivation))
    items.append(measurement(codes.SCT.Volume, finding["volume_mm3"], CUBIC_MILLIMETER))
    items.append(measurement(codes.DCM.CertaintyOfFinding, 100.0 * float(finding["score"]), PERCENT))
    return items


def _read_segmentation(path: str | os.PathLike, source: SourceSeries) -> Dataset:
    """The SEG to reference; it must be a SEG of the same series."""
    path = Path(path)
    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError) as error:
        raise InputError(
            f"{path}: cannot be read as DICOM ({error}); give the DICOM SEG written for this series"
        ) from None
    referenced = {str(item.SeriesInstanceUID) for item in dataset.get("ReferencedSeriesSequence", [])}
    if source.series_instance_uid not in referenced:
        raise InputError(
            f"{path}: this SEG was not made on series {source.series_instance_uid}; "
            "give the SEG of the same CT"
        )
    return dataset
