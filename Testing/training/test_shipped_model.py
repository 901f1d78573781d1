"""The shipped chest CT model: a valid card whose SHA-256 is that of the shipped weights."""

import json
from pathlib import Path

from MedSegAILib.models.card import load_model_card
from MedSegAILib.models.networks import build_network
from MedSegAILib.models.weights import sha256_of_file
from MedSegAILib.training.model_card_md import render_model_card
from safetensors.torch import load_file

FOLDER = Path(__file__).resolve().parents[2] / "MedSegAI" / "MedSegAILib" / "models" / "builtin" / "chest_ct"


def test_card_validates_and_names_the_contract_segments():
    card = load_model_card(FOLDER)
    assert card.name == "chest_ct" and card.task == "segmentation"
    names = [label.name for label in card.labels]
    assert names[:3] == ["left lung", "right lung", "lung nodule"]
    assert all(label.terminology.get("type") for label in card.labels)
    assert card.network["output_classes"][:3] == ["background", "lung", "lung nodule"]
    assert card.weights["format"] == "safetensors"


def test_weights_match_the_card_sha256_size_and_network():
    card = load_model_card(FOLDER)
    weights = FOLDER / card.weights["file"]
    assert sha256_of_file(weights) == card.weights["sha256"]
    assert weights.stat().st_size <= 50 * 1024 * 1024
    network = build_network(card.network["name"], **card.network["kwargs"])
    network.load_state_dict({k: v.float() for k, v in load_file(str(weights)).items()})


def test_markdown_card_is_generated_from_the_json_card():
    card = json.loads((FOLDER / "model_card.json").read_text())
    assert (FOLDER / "MODEL_CARD.md").read_text() == render_model_card(card)
