"""The registry: installed models by name or path, complete cards only, pluggable loaders."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from MedSegAILib.errors import InputError
from MedSegAILib.models import registry
from MedSegAILib.models.card import load_model_card
from MedSegAILib.models.registry import LoadedModel, installed_models, load_model, resolve_model
from model_folder import write_test_model


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    """An empty user model folder ($MEDSEGAI_MODELS)."""
    folder = tmp_path / "user_models"
    folder.mkdir()
    monkeypatch.setenv("MEDSEGAI_MODELS", str(folder))
    return folder


def test_user_models_are_installed_and_resolved_by_name(user_models):
    write_test_model(user_models / "mine", name="my_model")
    assert "my_model" in [card.name for card in installed_models()]
    card = resolve_model("my_model")
    assert card.name == "my_model" and card.folder == user_models / "mine"


def test_a_model_folder_or_its_card_resolves_by_path(tmp_path):
    folder = write_test_model(tmp_path / "somewhere")
    assert resolve_model(str(folder)).name == "test_random"
    assert resolve_model(str(folder / "model_card.json")).folder == folder


def test_an_unknown_name_is_refused_listing_the_installed_models(user_models):
    write_test_model(user_models / "mine", name="my_model")
    with pytest.raises(InputError, match=r"no_such_model: no such model.*my_model"):
        resolve_model("no_such_model")


@pytest.mark.parametrize("field", ["metrics", "weights", "labels", "limits"])
def test_a_card_with_missing_fields_is_refused(tmp_path, field):
    folder = write_test_model(tmp_path / "broken")
    card = json.loads((folder / "model_card.json").read_text())
    del card[field]
    (folder / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(InputError, match=f"missing {field}"):
        resolve_model(str(folder))


def test_load_model_gives_an_eval_mode_network_with_the_saved_weights(tmp_path):
    folder = write_test_model(tmp_path / "model", seed=3)
    loaded = load_model(resolve_model(str(folder)), "cpu")
    assert isinstance(loaded, LoadedModel) and loaded.device == torch.device("cpu")
    assert not loaded.network.training
    fresh = write_test_model(tmp_path / "again", seed=3)
    again = load_model(load_model_card(fresh), "cpu")
    for (name, a), (_, b) in zip(loaded.network.state_dict().items(), again.network.state_dict().items()):
        assert torch.equal(a, b), name


def test_replaced_weights_are_refused(tmp_path):
    folder = write_test_model(tmp_path / "model", seed=0)
    other = write_test_model(tmp_path / "other", seed=1)
    shutil.copy(other / "model.safetensors", folder / "model.safetensors")
    with pytest.raises(InputError, match="SHA-256 mismatch"):
        load_model(load_model_card(folder), "cpu")


def test_weights_that_do_not_fit_the_network_are_refused(tmp_path):
    folder = write_test_model(tmp_path / "model")
    card = json.loads((folder / "model_card.json").read_text())
    card["network"]["kwargs"]["channels"] = [8, 16]
    (folder / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(InputError, match="do not fit network"):
        load_model(load_model_card(folder), "cpu")


def test_other_formats_are_loaded_by_loaders_appended_to_the_tuple(tmp_path, monkeypatch):
    folder = write_test_model(tmp_path / "model")
    card_json = json.loads((folder / "model_card.json").read_text())
    card_json["weights"]["format"] = "toy"
    (folder / "model_card.json").write_text(json.dumps(card_json))
    card = load_model_card(folder)
    with pytest.raises(InputError, match="no loader"):
        load_model(card, "cpu")

    def toy_loader(card, device):
        if card.weights.get("format") != "toy":
            return None
        return LoadedModel(card=card, network=torch.nn.Identity().eval(), device=device)

    monkeypatch.setattr(registry, "LOADERS", registry.LOADERS + (toy_loader,))
    assert isinstance(load_model(card, "cpu").network, torch.nn.Identity)
