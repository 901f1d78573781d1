"""What the runner hands each job, what a job hands back, and the stage clock and progress plan."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..detection.detector import DetectionResult
from ..io import OutputDir, Volume, write_label_map
from ..io.atomic import write_json
from ..models.loaded import LoadedModel
from ..progress import CancelToken, ProgressCallback, sub_progress
from .request import JobRequest

NETWORK_SHARE = 0.8
STAGE_WEIGHTS = {"uncertainty": 3.0, "gradcam": 1.0, "mesh": 1.0}


class StageClock:
    """Seconds per stage of one job, in the order the stages ran (``run.json`` ``timings``)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as stage ``name``."""
        start = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - start

    def finish(self) -> dict[str, float]:
        """Record ``total`` (since the clock started) and return the timings."""
        self.timings["total"] = time.perf_counter() - self.started
        return self.timings


def progress_ranges(extra_stages: Sequence[str]) -> dict[str, tuple[float, float]]:
    """The part of the progress bar each stage fills, in the order given.

    The network stage (``"network"``: segmentation, and detection with it) fills all of it
    when nothing follows, else the first :data:`NETWORK_SHARE`; the stages that follow share
    the rest in proportion to their :data:`STAGE_WEIGHTS`, the last one ending at 1.0.
    """
    if not extra_stages:
        return {"network": (0.0, 1.0)}
    ranges = {"network": (0.0, NETWORK_SHARE)}
    total = sum(STAGE_WEIGHTS[name] for name in extra_stages)
    start = NETWORK_SHARE
    for name in extra_stages:
        end = start + (1.0 - NETWORK_SHARE) * STAGE_WEIGHTS[name] / total
        ranges[name] = (start, end)
        start = end
    ranges[extra_stages[-1]] = (ranges[extra_stages[-1]][0], 1.0)
    return ranges


@dataclass
class JobContext:
    """Everything a job needs once its model is loaded and its output folder is open."""

    request: JobRequest
    volume: Volume
    model: LoadedModel
    device: torch.device
    out: OutputDir
    clock: StageClock
    progress: ProgressCallback
    cancel: CancelToken | None = None

    def stage_progress(self, span: tuple[float, float]) -> ProgressCallback:
        """A stage's own 0..1 progress mapped into ``span`` of the job's."""
        return sub_progress(self.progress, *span)


@dataclass
class JobOutcome:
    """What a job hands back to the runner, which writes ``run.json`` and the DICOM objects.

    Attributes:
        options: what ``run.json`` records under ``options``.
        labels: the segmentation label map on the input grid (`segment`).
        detection: the findings (`detect`, `segment --detect`).
    """

    options: dict[str, Any] = field(default_factory=dict)
    labels: np.ndarray | None = None
    detection: DetectionResult | None = None


def write_findings(
    out: OutputDir, volume: Volume, findings_json: dict[str, Any], detection: DetectionResult
) -> None:
    """Write ``findings.json`` and ``nodules.nii.gz`` (voxel value = finding id, input grid)."""
    write_json(out.path("findings.json"), findings_json)
    write_label_map(detection.labels, volume, out.path("nodules.nii.gz"))
