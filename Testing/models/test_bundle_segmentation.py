"""MONAI segmentation bundles in the model-zoo layout: card, safe loading, orientation, engine run."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from bundle_factory import make_segmentation_bundle
from MedSegAILib.errors import InputError
from MedSegAILib.io.volume import Volume
from MedSegAILib.models.adapter import AdaptedNetwork, axes_for
from MedSegAILib.models.bundle import bundle_card_data, find_bundle_files, load_monai_bundle
from MedSegAILib.models.card import parse_model_card
from MedSegAILib.models.terminology import terminology_for


@pytest.fixture
def bundle(tmp_path):
    return make_segmentation_bundle(tmp_path / "chest_bundle", tmp_path / "trap.txt")


def card_for(root):
    return parse_model_card(bundle_card_data(root), source=str(root), folder=root)


def test_card_takes_labels_spacing_window_and_patch_from_the_bundle(bundle):
    card = card_for(bundle)
    assert card.name == "chest_bundle" and card.task == "segmentation" and card.version == "0.1.0"
    assert [label.name for label in card.labels] == ["left lung", "right lung", "liver"]
    assert card.label("left lung").terminology == terminology_for("left lung")
    assert card.label("liver").terminology["type"] == {
        "scheme": "99MEDSEGAI",
        "code": "LIVER",
        "meaning": "liver",
    }
    assert card.spacing == (2.0, 2.0, 2.5)  # Spacingd pixdim via an @reference
    assert card.input["normalization"] == {"type": "window", "min": -1000.0, "max": 500.0}
    assert card.patch_size == (16, 32, 32)  # roi_size (x, y, z) -> (z, y, x)
    assert card.network["axcodes"] == "RAS" and card.network["intensity_range"] == [0.0, 1.0]
    assert card.network["output_classes"] == ["background", "left lung", "right lung", "liver"]
    assert card.weights["format"] == "state_dict" and len(card.weights["sha256"]) == 64
    assert card.limits[0] == "Tests only, not for any clinical use"
    assert len({label.color for label in card.labels}) == 3


def test_yaml_config_is_read_too(tmp_path):
    root = make_segmentation_bundle(tmp_path / "yaml_bundle", tmp_path / "trap.txt", yaml_config=True)
    assert card_for(root).spacing == (2.0, 2.0, 2.5)


def test_missing_bundle_files_are_named(tmp_path):
    (tmp_path / "configs").mkdir()
    with pytest.raises(InputError, match="configs/metadata.json.*inference.json.*model.pt"):
        find_bundle_files(tmp_path)


def test_loaded_bundle_network_outputs_engine_layout_and_never_runs_config_code(bundle, tmp_path):
    model = load_monai_bundle(card_for(bundle), torch.device("cpu"))
    assert model is not None and not model.network.training
    with torch.no_grad():
        out = model.network(torch.zeros(1, 1, 20, 40, 36))  # any size: the bundle's sliding window pads
    assert out.shape == (1, 4, 20, 40, 36)
    assert not (tmp_path / "trap.txt").exists()


def test_other_cards_are_left_to_other_loaders(bundle):
    data = bundle_card_data(bundle)
    data["network"]["name"] = "ChestUNet3D"
    assert load_monai_bundle(parse_model_card(data, folder=bundle), torch.device("cpu")) is None


def test_tampered_bundle_weights_are_refused(bundle):
    card = card_for(bundle)
    with open(bundle / "models" / "model.pt", "ab") as stream:
        stream.write(b"\0")
    with pytest.raises(InputError, match="SHA-256 mismatch"):
        load_monai_bundle(card, torch.device("cpu"))


class _WritesAFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_malicious_pickle_in_a_bundle_is_refused_and_never_runs(bundle, tmp_path):
    control = tmp_path / "control.txt"
    pickle.loads(pickle.dumps(_WritesAFile(control)))  # the payload is real: plain unpickling writes a file
    assert control.exists()
    victim = tmp_path / "pwned.txt"
    with open(bundle / "models" / "model.pt", "wb") as stream:
        pickle.dump({"weight": _WritesAFile(victim)}, stream)
    card = card_for(bundle)  # the card records this file's hash: only the pickle check stands in the way
    with pytest.raises(InputError, match="refused to load"):
        load_monai_bundle(card, torch.device("cpu"))
    assert not victim.exists()


def test_axis_codes_map_engine_axes_to_the_network_layout():
    assert axes_for("RAS") == ((2, 1, 0), (0, 1))  # x <- i flipped (L->R), y <- j flipped (P->A), z <- k
    assert axes_for("SPL") == ((0, 1, 2), ())
    assert axes_for("LPS") == ((2, 1, 0), ())
    with pytest.raises(ValueError):
        axes_for("RRS")


class Probe(torch.nn.Module):
    """Records its input and returns it unchanged."""

    def forward(self, x):
        self.seen = x.clone()
        return x


def test_adapter_orients_and_rescales_input_and_maps_output_back():
    probe = Probe()
    adapter = AdaptedNetwork(probe, axcodes="RAS", intensity_range=(0.0, 1.0))
    x = torch.full((1, 1, 4, 5, 6), -1.0)
    x[0, 0, 1, 2, 3] = 1.0  # engine voxel (k, j, i) = (1, 2, 3)
    out = adapter(x)
    seen = probe.seen[0, 0]
    assert seen.shape == (6, 5, 4)  # (x, y, z)
    assert seen.max() == 1.0 and seen.min() == 0.0  # [-1, 1] -> [b_min, b_max]
    assert torch.nonzero(seen == 1.0).tolist() == [
        [6 - 1 - 3, 5 - 1 - 2, 1]
    ]  # towards Right, Anterior, Superior
    assert torch.equal(out, (x + 1) / 2)  # an identity network round-trips to engine layout


def test_bundle_segments_a_volume_through_the_engine_on_the_input_grid(bundle):
    from MedSegAILib.inference.engine import segment_volume

    card = card_for(bundle)
    model = load_monai_bundle(card, torch.device("cpu"))
    rng = np.random.default_rng(0)
    array = rng.normal(-700, 200, size=(24, 40, 44)).astype(np.int16)
    direction = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # rotated in-plane
    volume = Volume(array, spacing=(1.4, 1.1, 2.2), origin=(-20.0, 15.0, -30.0), direction=direction)
    result = segment_volume(volume, model)
    assert result.labels.same_grid(volume)
    assert set(np.unique(result.labels.array)) <= {0, 1, 2, 3}
    assert result.class_names == ("background", "left lung", "right lung", "liver")
