"""Weights load only after their SHA-256 matches, and never by running pickled code."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import pytest
import torch
from MedSegAILib.errors import InputError
from MedSegAILib.models.weights import load_state_dict, sha256_of_file, verify_sha256
from safetensors.torch import save_file


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def state() -> dict[str, torch.Tensor]:
    return {"layer.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "layer.bias": torch.ones(2)}


def test_safetensors_load_after_the_hash_matches(tmp_path, state):
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    loaded = load_state_dict(path, digest(path))
    assert set(loaded) == set(state) and torch.equal(loaded["layer.weight"], state["layer.weight"])


def test_a_plain_state_dict_pickle_loads(tmp_path, state):
    path = tmp_path / "model.pt"
    torch.save(state, path)
    assert torch.equal(load_state_dict(path, digest(path).upper())["layer.bias"], torch.ones(2))


def test_wrong_sha256_is_refused_naming_the_file_and_both_hashes(tmp_path, state):
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    wrong = "ab" * 32
    with pytest.raises(InputError) as error:
        load_state_dict(path, wrong)
    message = str(error.value)
    assert str(path) in message and wrong in message and sha256_of_file(path) in message


def test_a_missing_weights_file_is_refused(tmp_path):
    with pytest.raises(InputError, match="not found"):
        verify_sha256(tmp_path / "absent.safetensors", "0" * 64)


class WritesAFile:
    """A pickle payload that, if unpickled unsafely, creates a file (arbitrary code)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_the_malicious_payload_really_runs_code_when_unpickled_unsafely(tmp_path):
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(WritesAFile(marker), protocol=2))
    assert marker.exists()


@pytest.mark.parametrize("container", ["raw_pickle", "torch_save_zip"])
def test_a_pickle_that_would_run_code_is_refused_and_never_runs(tmp_path, container):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    payload = {"layer.weight": WritesAFile(marker)}
    if container == "raw_pickle":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, path)

    with pytest.raises(InputError, match="refused to load.*pickled code") as error:
        load_state_dict(path, digest(path))
    assert str(path) in str(error.value)
    assert not marker.exists()


def test_a_pickle_that_is_not_a_state_dict_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(InputError, match="state_dict"):
        load_state_dict(path, digest(path))


def test_other_formats_are_refused(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights")
    with pytest.raises(InputError, match="unsupported weights format"):
        load_state_dict(path, digest(path))
