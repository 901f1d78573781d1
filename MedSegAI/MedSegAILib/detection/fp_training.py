"""Fit the false-positive reduction scorer on candidates from training scans.

Each training example is one candidate of the detector (all candidates, no score cut-off),
labelled 1 when its centre hits a known nodule (the FROC hit criterion: inserted nodules
in training scans) and 0 otherwise (vessels, airway walls, other false candidates).
Use only scans the segmentation model was trained on, never the held-out evaluation scans.

    python -m MedSegAILib.detection.fp_training [--model M] [--replicates 4] [--nodules 4]

fits on the training scans (chest_ct_dicom with its real mass, TotalSegmentator chest
crops a/b) with nodules inserted at training seeds (``100 * host + replicate``, all below
the held-out seeds 100000+), and writes ``fp_reduction.safetensors`` and
``detection_card.json`` into the model's folder (or ``--out-dir``). The card records both
SHA-256s: the scorer's, and the segmentation weights' it was fitted on.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..io.volume import Volume
from .detector import detect_nodules
from .features import FEATURE_NAMES
from .froc import PredictedFinding, ReferenceNodule, is_hit
from .scorer import DETECTION_CARD, LogisticScorer, ProbabilityScorer, fit_logistic

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
TRAINING_HOSTS = ("chest_ct_dicom", "totalsegmentator/chest_ct_crop_a_1p5mm.nii.gz", "totalsegmentator/chest_ct_crop_b_1p5mm.nii.gz")


@dataclass
class CandidateSet:
    """Features (rows in :data:`FEATURE_NAMES` order) and labels of detector candidates."""

    features: list[list[float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)

    def add_scan(
        self,
        nodule_probability: Volume,
        image: Volume,
        nodules: Sequence[ReferenceNodule],
        region: Optional[np.ndarray] = None,
    ) -> tuple[int, int]:
        """Add every candidate of one scan; returns (true, false) candidate counts."""
        result = detect_nodules(nodule_probability, image, threshold=0.0, scorer=ProbabilityScorer(), region=region)
        true = false = 0
        for finding in result.findings:
            point = PredictedFinding(finding.measurement.center, finding.score)
            label = int(any(is_hit(point, nodule) for nodule in nodules))
            self.features.append([finding.features[name] for name in FEATURE_NAMES])
            self.labels.append(label)
            true, false = true + label, false + (1 - label)
        return true, false

    def fit(self, l2: float = 1.0) -> LogisticScorer:
        """Fit the logistic scorer on everything added.

        Raises:
            ValueError: no true or no false candidates were collected.
        """
        return fit_logistic(np.array(self.features), np.array(self.labels), FEATURE_NAMES, l2=l2)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Fit the FP-reduction scorer on the training scans; see the module docstring."""
    from ..inference.device import select_device
    from ..io.reader import read_volume
    from ..models.registry import load_model, resolve_model
    from .nodule_cases import insert_nodules, lungs_and_real_masses
    from ..inference.engine import segment_volume
    from .pipeline import lung_region, nodule_probability

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--replicates", type=int, default=4, help="copies of each training scan with new nodules")
    parser.add_argument("--nodules", type=int, default=4)
    parser.add_argument("--l2", type=float, default=1.0, help="L2 penalty on the standardised weights")
    parser.add_argument("--out-dir", default=None, help="where to write the scorer (default: the model's folder)")
    args = parser.parse_args(argv)
    card = resolve_model(args.model)
    model = load_model(card, select_device(args.device))
    out_dir = Path(args.out_dir) if args.out_dir else card.folder
    if out_dir is None:
        parser.error(f"model {card.name} has no folder to write into; give --out-dir")
    training = CandidateSet()
    scans = []
    for host_index, host in enumerate(TRAINING_HOSTS):
        volume = read_volume(DATA / host)
        lung, real = lungs_and_real_masses(volume)
        for replicate in range(args.replicates):
            case = insert_nodules(f"{host}#{replicate}", volume, lung, args.nodules, seed=100 * host_index + replicate,
                                  diameter_range=(4.0, 30.0), existing=real)
            result = segment_volume(case.volume, model, threads=2)
            counts = training.add_scan(nodule_probability(result), case.volume, case.nodules, lung_region(result))
            scans.append({"scan": case.name, "seed": 100 * host_index + replicate, "true": counts[0], "false": counts[1]})
            print(f"{case.name}: {counts[0]} true, {counts[1]} false candidates", flush=True)
    scorer = training.fit(l2=args.l2)
    digest = scorer.save(out_dir / "fp_reduction.safetensors")
    record = {
        "fp_reduction": {
            "file": "fp_reduction.safetensors",
            "sha256": digest,
            "segmentation_model": f"{card.name} {card.version}",
            "segmentation_weights_sha256": card.weights.get("sha256"),
            "features": list(FEATURE_NAMES),
            "training_scans": scans,
            "true_candidates": int(sum(training.labels)),
            "false_candidates": int(len(training.labels) - sum(training.labels)),
            "command": "python -m MedSegAILib.detection.fp_training " + " ".join(argv if argv is not None else sys.argv[1:]),
        }
    }
    (out_dir / DETECTION_CARD).write_text(json.dumps(record, indent=2) + "\n")
    print(f"{record['fp_reduction']['true_candidates']} true / {record['fp_reduction']['false_candidates']} false candidates; "
          f"wrote {out_dir / 'fp_reduction.safetensors'} (sha256 {digest}) and {out_dir / DETECTION_CARD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
