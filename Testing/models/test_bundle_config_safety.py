"""Bundle configs are programs: MedSegAI builds only vetted network items and runs nothing else."""

from __future__ import annotations

import pytest
from MedSegAILib.errors import InputError
from MedSegAILib.models.bundle_config import instantiate, is_allowed_callable, reachable_subconfig


def unet(**extra):
    return {
        "_target_": "UNet",
        "spatial_dims": 3,
        "in_channels": 1,
        "out_channels": 2,
        "channels": [4, 8],
        "strides": [2],
        **extra,
    }


def test_only_items_reachable_from_the_network_are_kept():
    config = {
        "imports": ["$import os"],
        "width": 8,
        "network_def": unet(channels=[4, "@width"]),
        "evaluator": {"_target_": "os.system"},
    }
    assert set(reachable_subconfig(config, ["network_def"], "cfg")) == {"network_def", "width"}


def test_network_is_built_and_the_rest_of_the_config_never_runs(tmp_path):
    trap = tmp_path / "ran.txt"
    config = {
        "imports": [f"$open({str(trap)!r}, 'w').write('x')"],
        "trap": f"$open({str(trap)!r}, 'w').write('x')",
        "run": ["$@trap"],
        "network_def": unet(),
    }
    network = instantiate(config, "network_def", "cfg")
    assert type(network).__name__ == "UNet"
    assert not trap.exists()


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"_target_": "os.system", "command": "touch x"}, "not a network or detection component"),
        (
            {"_target_": "monai.networks.utils.save_state", "src": {}, "path": "x"},
            "not a network or detection component",
        ),
        ({"_target_": "builtins.eval", "source": "1"}, "not a network or detection component"),
        ("$__import__('os').system('touch x')", "will not run"),
        ("$open('x', 'w').write('y')", "will not run"),
        ("$monai.networks.nets.unet.os.system('touch x')", "will not run"),
        ("$monai.networks.nets.UNet.__init__.__globals__", "will not run"),
        ("$[x for x in ()]", "will not run"),
        ("%/etc/config.json::net", "macro"),
        (unet(_mode_="debug"), "_mode_"),
        ("$monai.networks.nets.resnet.resnet10(pretrained=True, spatial_dims=3)", "downloaded"),
    ],
)
def test_anything_but_network_construction_is_refused(bad, message, tmp_path):
    config = {"helper": bad, "network_def": unet(act="@helper")}
    with pytest.raises(InputError, match=message):
        instantiate(config, "network_def", "cfg")


def test_allowed_expressions_are_calls_of_network_components_with_literals():
    config = {
        "backbone": (
            "$monai.networks.nets.resnet.ResNet(block='basic', layers=[1, 1, 1, 1], "
            "block_inplanes=[4, 8, 8, 8], spatial_dims=3, n_input_channels=1)"
        ),
        "network_def": "$@backbone",
    }
    assert type(instantiate(config, "network_def", "cfg")).__name__ == "ResNet"


def test_callable_allow_list_checks_where_the_object_is_defined():
    assert is_allowed_callable("monai.networks.nets.UNet")
    assert is_allowed_callable("monai.apps.detection.utils.anchor_utils.AnchorGeneratorWithAnchorShape")
    assert is_allowed_callable("torch.nn.Conv3d")
    assert not is_allowed_callable("monai.networks.utils.save_state")
    assert not is_allowed_callable("torch.save")
    assert not is_allowed_callable("monai.networks.nets._private")


def test_missing_network_item_is_a_clear_error():
    with pytest.raises(InputError, match="no 'network_def' item"):
        instantiate({}, "network_def", "cfg")
