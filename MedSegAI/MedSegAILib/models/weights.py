"""Safe loading of network weights, after checking their SHA-256 against the model card.

Only two formats are read, and neither runs code from the file:

- ``.safetensors`` (preferred): a plain tensor container;
- ``.pt`` / ``.pth``: a ``state_dict`` read with ``torch.load(weights_only=True)``, which
  refuses any pickle that would import or call something other than tensors and
  containers. Such a file is reported as unsafe and never executed.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..errors import InputError

SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pt", ".pth")
_CHUNK = 1 << 20


def sha256_of_file(path: str | os.PathLike) -> str:
    """The hex SHA-256 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: str | os.PathLike, expected: str) -> str:
    """Check that ``path`` has the SHA-256 ``expected`` (hex, case-insensitive).

    Returns:
        The digest.

    Raises:
        InputError: the file is missing or its digest differs (both digests are named).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: weights file not found; reinstall the model or fix weights.file in its model card"
        )
    actual = sha256_of_file(path)
    if actual.lower() != str(expected).strip().lower():
        raise InputError(
            f"{path}: SHA-256 mismatch (model card says {expected}, file has {actual}); "
            "the weights are corrupt or were replaced: reinstall the model"
        )
    return actual


def load_state_dict(path: str | os.PathLike, expected_sha256: str) -> dict[str, torch.Tensor]:
    """Load a ``state_dict`` safely after verifying its SHA-256.

    Args:
        path: a ``.safetensors``, ``.pt`` or ``.pth`` file.
        expected_sha256: the digest from the model card.

    Returns:
        The tensors by parameter name, on the CPU.

    Raises:
        InputError: missing file, SHA-256 mismatch, unsupported format, a pickle that
            would run code, or a file that does not hold a state_dict.
    """
    path = Path(path)
    verify_sha256(path, expected_sha256)
    name = path.name.lower()
    if name.endswith(SAFETENSORS_SUFFIXES):
        return _load_safetensors(path)
    if name.endswith(PICKLE_SUFFIXES):
        return _load_weights_only_pickle(path)
    raise InputError(
        f"{path}: unsupported weights format; use .safetensors (preferred) or a state_dict in .pt/.pth"
    )


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise InputError(f"{path}: not a valid safetensors file ({error}); reinstall the model") from None


def _load_weights_only_pickle(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "unsafe content"
        raise InputError(
            f"{path}: refused to load: the file contains pickled code or objects that are not plain "
            f"weights ({first_line}); only safetensors or a state_dict saved with "
            "torch.save(model.state_dict()) are accepted"
        ) from None
    except (RuntimeError, EOFError, OSError) as error:
        raise InputError(
            f"{path}: not a readable PyTorch weights file ({error}); reinstall the model"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise InputError(
            f"{path}: does not hold a state_dict (a mapping of names to tensors); save model.state_dict()"
        )
    return state
