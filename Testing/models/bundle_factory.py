"""Builds MONAI bundles in the model-zoo layout in temporary folders, for tests.

The configs follow the structure of the model zoo's ``spleen_ct_segmentation`` /
``wholeBody_ct_segmentation`` (UNet, ``Orientationd`` RAS, ``Spacingd``,
``ScaleIntensityRanged``, ``SlidingWindowInferer``) and ``lung_nodule_ct_detection``
(RetinaNet on a ResNet + FPN feature extractor, ``AnchorGeneratorWithAnchorShape``,
``RetinaNetDetector`` with ``detector_ops``), scaled down so that tests run in seconds.
Weights are random (seeded): these bundles test plumbing and format, not accuracy.
They also carry the parts of a real config MedSegAI must never run (``imports``,
datasets, evaluators); ``trap_file`` names a file those parts would create if evaluated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch


def _write(
    root: Path, metadata: dict[str, Any], config: dict[str, Any], network: torch.nn.Module, torchscript: bool
) -> Path:
    (root / "configs").mkdir(parents=True, exist_ok=True)
    (root / "models").mkdir(exist_ok=True)
    (root / "configs" / "metadata.json").write_text(json.dumps(metadata, indent=2))
    (root / "configs" / "inference.json").write_text(json.dumps(config, indent=2))
    (root / "LICENSE").write_text("Apache License 2.0 (test bundle)\n")
    if torchscript:
        torch.jit.save(torch.jit.script(network.eval()), str(root / "models" / "model.ts"))
    else:
        torch.save(network.state_dict(), root / "models" / "model.pt")
    return root


def _run_only_parts(trap_file: Path) -> dict[str, Any]:
    """Items a real inference config has that must never be evaluated by MedSegAI."""
    return {
        "imports": ["$import glob", "$import os"],
        "bundle_root": ".",
        "device": "$torch.device('cpu')",
        "network": "$@network_def.to(@device)",
        "dataset_dir": "/nonexistent",
        "trap": f"$open({str(trap_file)!r}, 'w').write('config code ran')",
        "initialize": ["$@trap"],
        "run": ["$@evaluator.run()"],
    }


SEGMENTATION_CLASSES = {"0": "background", "1": "left_lung", "2": "right_lung", "3": "liver"}


def segmentation_network(out_channels: int = len(SEGMENTATION_CLASSES)) -> torch.nn.Module:
    from monai.networks.nets import UNet

    torch.manual_seed(0)
    return UNet(
        spatial_dims=3,
        in_channels=1,
        out_channels=out_channels,
        channels=(4, 8, 16),
        strides=(2, 2),
        num_res_units=1,
        norm="batch",
    )


def make_segmentation_bundle(
    root: Path, trap_file: Path, torchscript: bool = False, yaml_config: bool = False
) -> Path:
    """A small UNet segmentation bundle (4 channels: background, left/right lung, liver)."""
    network_def = {
        "_target_": "UNet",
        "spatial_dims": 3,
        "in_channels": 1,
        "out_channels": len(SEGMENTATION_CLASSES),
        "channels": [4, 8, 16],
        "strides": [2, 2],
        "num_res_units": 1,
        "norm": "batch",
    }
    config = {
        **_run_only_parts(trap_file),
        "network_def": network_def,
        "pixdim": [2.0, 2.0, 2.5],
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "LoadImaged", "keys": "image"},
                {"_target_": "EnsureChannelFirstd", "keys": "image"},
                {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
                {"_target_": "Spacingd", "keys": "image", "pixdim": "@pixdim", "mode": "bilinear"},
                {
                    "_target_": "ScaleIntensityRanged",
                    "keys": "image",
                    "a_min": -1000,
                    "a_max": 500,
                    "b_min": 0.0,
                    "b_max": 1.0,
                    "clip": True,
                },
                {"_target_": "EnsureTyped", "keys": "image"},
            ],
        },
        "inferer": {
            "_target_": "SlidingWindowInferer",
            "roi_size": [32, 32, 16],
            "sw_batch_size": 4,
            "overlap": 0.25,
        },
        "evaluator": {"_target_": "SupervisedEvaluator", "device": "@device", "network": "@network"},
    }
    metadata = {
        "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20220324.json",
        "version": "0.1.0",
        "name": "Test chest CT segmentation",
        "task": "test segmentation",
        "description": "random-weight test bundle",
        "authors": "MedSegAI tests",
        "copyright": "none",
        "data_source": "none",
        "intended_use": "Tests only, not for any clinical use",
        "eval_metrics": {"mean_dice": 0.0},
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "hounsfield",
                    "modality": "CT",
                    "num_channels": 1,
                    "spatial_shape": [32, 32, 16],
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": True,
                    "channel_def": {"0": "image"},
                }
            },
            "outputs": {
                "pred": {
                    "type": "image",
                    "format": "segmentation",
                    "num_channels": len(SEGMENTATION_CLASSES),
                    "spatial_shape": [32, 32, 16],
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": True,
                    "channel_def": SEGMENTATION_CLASSES,
                }
            },
        },
    }
    root = _write(root, metadata, config, segmentation_network(), torchscript)
    if yaml_config:
        import yaml

        (root / "configs" / "inference.json").unlink()
        (root / "configs" / "inference.yaml").write_text(yaml.safe_dump(config))
    return root


DETECTION_BACKBONE = (
    "$monai.networks.nets.resnet.ResNet(block='basic', layers=[1, 1, 1, 1], block_inplanes=[8, 16, 32, 64], "
    "spatial_dims=3, n_input_channels=1, conv1_t_stride=[2, 2, 1], conv1_t_size=[7, 7, 7])"
)


def detection_config(trap_file: Path) -> dict[str, Any]:
    return {
        **_run_only_parts(trap_file),
        "spatial_dims": 3,
        "num_classes": 1,
        "size_divisible": [16, 16, 8],
        "infer_patch_size": [48, 48, 24],
        "anchor_generator": {
            "_target_": "monai.apps.detection.utils.anchor_utils.AnchorGeneratorWithAnchorShape",
            "feature_map_scales": [1, 2, 4],
            "base_anchor_shapes": [[6, 8, 4], [8, 6, 5], [10, 10, 6]],
        },
        "backbone": DETECTION_BACKBONE,
        "feature_extractor": (
            "$monai.apps.detection.networks.retinanet_network."
            "resnet_fpn_feature_extractor(@backbone,3,False,[1,2],None)"
        ),
        "network_def": {
            "_target_": "RetinaNet",
            "spatial_dims": "@spatial_dims",
            "num_classes": "@num_classes",
            "num_anchors": 3,
            "feature_extractor": "@feature_extractor",
            "size_divisible": "@size_divisible",
            "use_list_output": False,
        },
        "detector": {
            "_target_": "RetinaNetDetector",
            "network": "@network",
            "anchor_generator": "@anchor_generator",
            "debug": False,
            "spatial_dims": "@spatial_dims",
            "num_classes": "@num_classes",
            "size_divisible": "@size_divisible",
        },
        "detector_ops": [
            "$@detector.set_target_keys(box_key='box', label_key='label')",
            "$@detector.set_box_selector_parameters(score_thresh=0.02,topk_candidates_per_level=100,nms_thresh=0.22,detections_per_img=5)",
            "$@detector.set_sliding_window_inferer(roi_size=@infer_patch_size,overlap=0.25,sw_batch_size=1,mode='constant',device='cpu')",
        ],
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {"_target_": "LoadImaged", "keys": "image"},
                {"_target_": "EnsureChannelFirstd", "keys": "image"},
                {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
                {"_target_": "Spacingd", "keys": "image", "pixdim": [2.0, 2.0, 2.5]},
                {
                    "_target_": "ScaleIntensityRanged",
                    "keys": "image",
                    "a_min": -1024.0,
                    "a_max": 300.0,
                    "b_min": 0.0,
                    "b_max": 1.0,
                    "clip": True,
                },
                {"_target_": "EnsureTyped", "keys": "image"},
            ],
        },
        "evaluator": {
            "_target_": "scripts.evaluator.DetectionEvaluator",
            "_requires_": "@detector_ops",
            "network": "@network",
        },
    }


def make_detection_bundle(root: Path, trap_file: Path) -> Path:
    """A small RetinaNet bundle in the ``lung_nodule_ct_detection`` structure."""
    from MedSegAILib.models.bundle_config import instantiate
    from MedSegAILib.models.bundle_detection import ensure_torchvision_helpers

    config = detection_config(trap_file)
    ensure_torchvision_helpers()
    torch.manual_seed(0)
    network = instantiate(config, "network_def", "test detection config")
    metadata = {
        "version": "0.2.0",
        "name": "Test lung nodule CT detection",
        "task": "CT lung nodule detection",
        "description": "random-weight test bundle",
        "intended_use": "Tests only",
        "eval_metrics": {"mAP": 0.0},
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "magnitude",
                    "modality": "CT",
                    "num_channels": 1,
                    "spatial_shape": ["16*n", "16*n", "8*n"],
                    "dtype": "float16",
                    "value_range": [0, 1],
                }
            },
            "outputs": {
                "pred": {
                    "type": "object",
                    "format": "dict",
                    "dtype": "float16",
                    "num_channels": 1,
                    "spatial_shape": ["n", "n", "n"],
                    "value_range": [-10000, 10000],
                }
            },
        },
    }
    return _write(root, metadata, config, network, torchscript=False)
