"""`medsegai models import|download|catalogue`, and imported bundles running through `segment`."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import SimpleITK as sitk
from bundle_factory import make_segmentation_bundle
from MedSegAILib.cli.main import main
from MedSegAILib.errors import InputError
from MedSegAILib.models.install import import_model


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    folder = tmp_path / "user_models"
    monkeypatch.setenv("MEDSEGAI_MODELS", str(folder))
    monkeypatch.setenv("MEDSEGAI_CACHE", str(tmp_path / "cache"))
    return folder


@pytest.fixture
def bundle(tmp_path):
    return make_segmentation_bundle(tmp_path / "source" / "chest_bundle", tmp_path / "trap.txt")


def small_ct(path):
    array = np.random.default_rng(1).normal(-600, 300, (20, 40, 40)).astype(np.int16)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.5, 1.5, 2.0))
    image.SetOrigin((-30.0, -30.0, -20.0))
    image.SetDirection((0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    sitk.WriteImage(image, str(path))
    return path


def test_import_installs_a_bundle_with_its_card_and_segment_runs_it(bundle, models_dir, tmp_path, capsys):
    assert main(["models", "import", str(bundle)]) == 0
    printed = capsys.readouterr().out
    assert "chest_bundle 0.1.0 (segmentation)" in printed and "liver" in printed
    card = json.loads((models_dir / "chest_bundle" / "model_card.json").read_text())
    assert card["network"]["name"] == "monai_bundle"
    assert "imported from" in card["weights"]["source"]

    assert main(["models", "list", "--json"]) == 0
    assert "chest_bundle" in [m["name"] for m in json.loads(capsys.readouterr().out)["models"]]

    ct = small_ct(tmp_path / "ct.nii.gz")
    out = tmp_path / "out"
    assert (
        main(["segment", str(ct), "-o", str(out), "--model", "chest_bundle", "--device", "cpu", "--quiet"])
        == 0
    )
    labels = json.loads((out / "labels.json").read_text())["labels"]
    assert [label["name"] for label in labels] == ["left lung", "right lung", "liver"]
    segmentation = sitk.ReadImage(str(out / "segmentation.nii.gz"))
    source = sitk.ReadImage(str(ct))
    assert segmentation.GetSize() == source.GetSize()
    assert np.allclose(segmentation.GetDirection(), source.GetDirection())
    assert json.loads((out / "run.json").read_text())["model"]["name"] == "chest_bundle"
    assert not (tmp_path / "trap.txt").exists()


def test_import_refuses_a_taken_name_unless_replacing(bundle, models_dir):
    import_model(bundle)
    with pytest.raises(InputError, match="already installed"):
        import_model(bundle)
    assert import_model(bundle, replace=True).name == "chest_bundle"
    assert import_model(bundle, name="second").name == "second"


def test_failed_import_leaves_nothing_installed(bundle, models_dir, capsys):
    with open(bundle / "models" / "model.pt", "r+b") as stream:
        stream.truncate(100)  # a broken checkpoint: the card is built from it, loading it fails
    assert main(["models", "import", str(bundle)]) == 2
    assert "medsegai: error:" in capsys.readouterr().err
    assert [p.name for p in models_dir.iterdir()] == []


def test_import_from_an_archive(bundle, models_dir, tmp_path):
    archive = shutil.make_archive(str(tmp_path / "chest_bundle"), "zip", bundle.parent, bundle.name)
    assert import_model(archive).name == "chest_bundle"


def test_import_of_something_else_is_refused(tmp_path, models_dir):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no model_card.json"):
        import_model(tmp_path / "empty")
    with pytest.raises(InputError, match="no such file"):
        import_model(tmp_path / "missing")


@pytest.fixture
def served(tmp_path):
    """A loopback static file server over ``tmp_path / 'www'``."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_installs_a_catalogue_bundle_and_refuses_a_corrupted_one(
    bundle, models_dir, served, tmp_path, monkeypatch, capsys
):
    root, base = served
    archive = shutil.make_archive(str(root / "chest_bundle"), "zip", bundle.parent, bundle.name)
    data = open(archive, "rb").read()
    entry = {
        "name": "zoo_chest",
        "kind": "monai_bundle",
        "url": f"{base}/chest_bundle.zip",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "licence": "Apache-2.0",
    }
    catalogue = tmp_path / "catalogue.json"
    catalogue.write_text(json.dumps({"models": [entry]}))
    monkeypatch.setenv("MEDSEGAI_CATALOGUE", str(catalogue))

    assert main(["models", "catalogue"]) == 0
    assert "zoo_chest" in capsys.readouterr().out
    assert main(["models", "download", "zoo_chest"]) == 0
    captured = capsys.readouterr()
    assert "verified" in captured.err and "installed in" in captured.out
    card = json.loads((models_dir / "zoo_chest" / "model_card.json").read_text())
    assert entry["sha256"] in card["weights"]["source"]

    (root / "chest_bundle.zip").write_bytes(data[:-10] + b"0123456789")
    shutil.rmtree(tmp_path / "cache")
    assert main(["models", "download", "zoo_chest", "--replace", "--quiet"]) == 1
    assert "SHA-256" in capsys.readouterr().err
    assert not any((tmp_path / "cache" / "downloads").iterdir())


def test_download_of_an_unknown_name_lists_the_catalogue(models_dir, capsys):
    assert main(["models", "download", "no_such_model"]) == 2
    assert "not in the model catalogue" in capsys.readouterr().err
