"""`medsegai models list|show` report what is installed, from the model cards."""

from __future__ import annotations

import json

from MedSegAILib.cli.main import main
from model_folder import write_test_model


def test_list_json_reports_task_labels_spacing_version_size_and_source(tmp_path, monkeypatch, capsys):
    write_test_model(tmp_path / "user" / "mine", name="my_model")
    monkeypatch.setenv("MEDSEGAI_MODELS", str(tmp_path / "user"))
    assert main(["models", "list", "--json"]) == 0
    models = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)["models"]}
    mine = models["my_model"]
    assert mine["task"] == "segmentation" and mine["version"] == "0.0.0-test"
    assert mine["labels"] == ["left lung", "right lung", "lung nodule", "airway"]
    assert mine["spacing_mm"] == [4.0, 4.0, 4.0] and mine["size_mb"] > 0
    assert mine["weights"]["source"] == "user model folder"


def test_list_prints_a_table(tmp_path, monkeypatch, capsys):
    write_test_model(tmp_path / "user" / "mine", name="my_model")
    monkeypatch.setenv("MEDSEGAI_MODELS", str(tmp_path / "user"))
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("NAME") and "my_model" in out and "left lung, right lung" in out


def test_show_describes_one_model(tmp_path, capsys):
    folder = write_test_model(tmp_path / "mine")
    assert main(["models", "show", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "test_random 0.0.0-test (segmentation)" in out
    assert "1: left lung" in out and "sha256:" in out and "random weights: output is meaningless" in out


def test_show_unknown_model_exits_2(capsys):
    assert main(["models", "show", "no_such_model"]) == 2
    assert "no such model" in capsys.readouterr().err


def test_list_skips_a_broken_model_with_a_warning(tmp_path, monkeypatch, capsys):
    write_test_model(tmp_path / "user" / "good", name="good_model")
    broken = tmp_path / "user" / "broken"
    broken.mkdir()
    (broken / "model_card.json").write_text("{not json")
    monkeypatch.setenv("MEDSEGAI_MODELS", str(tmp_path / "user"))
    assert main(["models", "list", "--json"]) == 0
    captured = capsys.readouterr()
    assert "good_model" in [entry["name"] for entry in json.loads(captured.out)["models"]]
    assert "warning: skipped" in captured.err and "not valid JSON" in captured.err
