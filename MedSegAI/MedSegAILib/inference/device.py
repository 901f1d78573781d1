"""Choose the torch device for inference (``--device auto|cpu|cuda[:N]|mps``)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import torch

from ..errors import InputError

DEFAULT_CPU_THREADS = 2
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def select_device(spec: str = "auto") -> torch.device:
    """The device named by ``spec``; ``auto`` is a working GPU (CUDA, then MPS), else the CPU.

    Raises:
        InputError: ``spec`` is malformed, or names a device this machine does not have.
    """
    spec = spec.strip().lower()
    if not _DEVICE.match(spec):
        raise InputError(f"--device {spec}: unknown device; use auto, cpu, cuda, cuda:N or mps")
    if spec == "auto":
        if _cuda_works(0):
            return torch.device("cuda", 0)
        if _mps_works():
            return torch.device("mps")
        return torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not _mps_works():
            raise InputError(
                "--device mps: Apple MPS is not available on this machine; use --device auto or cpu"
            )
        return torch.device("mps")
    index = int(spec.split(":")[1]) if ":" in spec else 0
    if not _cuda_works(index):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        raise InputError(
            f"--device {spec}: no working CUDA GPU with index {index} (this machine has {count}); "
            "use --device auto or cpu"
        )
    return torch.device("cuda", index)


def _cuda_works(index: int) -> bool:
    if not torch.cuda.is_available() or index >= torch.cuda.device_count():
        return False
    try:
        torch.zeros(1, device=torch.device("cuda", index)).add_(1)
    except RuntimeError:
        return False
    return True


def _mps_works() -> bool:
    backend = getattr(torch.backends, "mps", None)
    if backend is None or not backend.is_available():
        return False
    try:
        torch.zeros(1, device="mps").add_(1)
    except RuntimeError:
        return False
    return True


@contextlib.contextmanager
def cpu_threads(count: int = DEFAULT_CPU_THREADS) -> Iterator[None]:
    """Run the block with ``count`` torch CPU threads, then restore the previous setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, count))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
