"""Install the engine's Python dependencies into Slicer at first use, after the user agrees.

torch comes from the PyTorch extension's ``PyTorchUtils`` when it is installed (it picks the
CUDA build that fits the GPU driver), else from pip. The other packages are pinned pip
installs run with a constraints file that holds Slicer's own numpy, SimpleITK and vtk (and
an installed torch) at their current versions, so pip can never replace them.
The decisions are plain functions; :func:`install_dependencies` takes the side effects as
arguments so it is tested without Slicer.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

# Pinned, tested together (see pyproject.toml for the ranges the engine supports).
REQUIREMENTS: tuple[str, ...] = (
    "monai==1.6.1",
    "safetensors==0.8.0",
    "scipy==1.17.1",
    "pydicom==3.0.2",
    "highdicom==0.28.2",
    "pyyaml==6.0.3",
)
TORCH_REQUIREMENT = "torch>=2.2,<3"
# Packages Slicer ships and builds against: never upgraded, downgraded or replaced.
PROTECTED: tuple[str, ...] = ("numpy", "SimpleITK", "vtk", "torch")


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0]


def _pinned_version(requirement: str) -> str | None:
    match = re.search(r"==\s*([^,;\s]+)", requirement)
    return match.group(1) if match else None


def installed_versions(names: Sequence[str]) -> dict[str, str | None]:
    """The installed version of each distribution, ``None`` where it is absent."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def missing_requirements(
    installed: Mapping[str, str | None], requirements: Sequence[str] = REQUIREMENTS
) -> list[str]:
    """The requirements that are absent or installed at another version than pinned."""
    missing = []
    for requirement in requirements:
        version = installed.get(_name(requirement))
        if version is None or (_pinned_version(requirement) not in (None, version)):
            missing.append(requirement)
    return missing


def constraints(installed: Mapping[str, str | None], protected: Sequence[str] = PROTECTED) -> list[str]:
    """Constraint lines (``numpy==2.1.3``) holding every installed protected package."""
    return [f"{name}=={installed[name]}" for name in protected if installed.get(name)]


def torch_source(torch_installed: bool, pytorch_utils_available: bool) -> str | None:
    """Where torch comes from: ``None`` (already there), ``"PyTorchUtils"`` or ``"pip"``."""
    if torch_installed:
        return None
    return "PyTorchUtils" if pytorch_utils_available else "pip"


@dataclass
class InstallPlan:
    """What :func:`install_dependencies` will do; ``summary`` is shown to the user to confirm."""

    torch: str | None
    packages: list[str]
    constraints: list[str]

    @property
    def needed(self) -> bool:
        return bool(self.torch or self.packages)

    @property
    def summary(self) -> str:
        parts = []
        if self.torch:
            parts.append(
                f"PyTorch (via {'the PyTorch extension' if self.torch == 'PyTorchUtils' else 'pip'})"
            )
        parts += self.packages
        kept = ", ".join(self.constraints) or "none"
        return (
            f"MedSegAI needs these Python packages: {', '.join(parts)}. "
            f"Slicer's own packages are kept as they are ({kept}). Download and install now?"
        )


def plan_install(installed: Mapping[str, str | None], pytorch_utils_available: bool) -> InstallPlan:
    """Decide what to install from the installed versions (see :func:`installed_versions`)."""
    return InstallPlan(
        torch=torch_source(bool(installed.get("torch")), pytorch_utils_available),
        packages=missing_requirements(installed),
        constraints=constraints(installed),
    )


def install_dependencies(
    plan: InstallPlan,
    confirm: Callable[[str], bool],
    pip_install: Callable[[list[str]], None],
    install_torch_with_utils: Callable[[], None],
) -> bool:
    """Carry out ``plan`` if the user confirms.

    Args:
        plan: from :func:`plan_install`.
        confirm: asks the user (``slicer.util.confirmOkCancelDisplay`` in Slicer).
        pip_install: runs pip with these arguments (``slicer.util.pip_install``).
        install_torch_with_utils: installs torch through ``PyTorchUtils``.

    Returns:
        True if everything needed is installed, False if the user declined.
    """
    if not plan.needed:
        return True
    if not confirm(plan.summary):
        return False
    with tempfile.TemporaryDirectory(prefix="medsegai-install-") as folder:
        if plan.torch == "PyTorchUtils":
            install_torch_with_utils()
        elif plan.torch == "pip":
            pip_install([TORCH_REQUIREMENT, *_constraint_args(plan.constraints, folder, "torch")])
        if plan.packages:
            # torch is now installed: hold it too, so monai cannot pull another build.
            held = plan.constraints + [
                c for c in constraints(installed_versions(["torch"])) if c not in plan.constraints
            ]
            pip_install([*plan.packages, *_constraint_args(held, folder, "packages")])
    return True


def _constraint_args(lines: Sequence[str], folder: str, name: str) -> list[str]:
    if not lines:
        return []
    path = os.path.join(folder, f"{name}-constraints.txt")
    with open(path, "w") as file:
        file.write("\n".join(lines) + "\n")
    return ["--constraint", path]
