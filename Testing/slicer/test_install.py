"""First-use installation: what is installed, from where, and that Slicer's packages are held."""

from __future__ import annotations

from pathlib import Path

from MedSegAIModule.install import (
    PROTECTED,
    REQUIREMENTS,
    TORCH_REQUIREMENT,
    constraints,
    install_dependencies,
    installed_versions,
    missing_requirements,
    plan_install,
    torch_source,
)

SLICER_ONLY = {"numpy": "1.26.4", "SimpleITK": "2.4.0", "vtk": "9.4.2", "torch": None}


def test_a_fresh_slicer_needs_every_pinned_package():
    assert missing_requirements(SLICER_ONLY) == list(REQUIREMENTS)
    assert all("==" in requirement for requirement in REQUIREMENTS)


def test_packages_at_the_pinned_version_are_not_reinstalled_but_other_versions_are():
    installed = dict(SLICER_ONLY, monai="1.6.1", safetensors="0.7.0")
    missing = missing_requirements(installed)
    assert "monai==1.6.1" not in missing
    assert "safetensors==0.8.0" in missing


def test_slicers_numpy_simpleitk_vtk_are_held_and_never_requirements():
    assert constraints(SLICER_ONLY) == ["numpy==1.26.4", "SimpleITK==2.4.0", "vtk==9.4.2"]
    assert constraints(dict(SLICER_ONLY, torch="2.5.1+cu121"))[-1] == "torch==2.5.1+cu121"
    named = {requirement.split("=")[0].split(">")[0].split("<")[0] for requirement in REQUIREMENTS}
    assert not named & set(PROTECTED)


def test_torch_comes_from_the_pytorch_extension_when_present_else_pip():
    assert torch_source(torch_installed=False, pytorch_utils_available=True) == "PyTorchUtils"
    assert torch_source(torch_installed=False, pytorch_utils_available=False) == "pip"
    assert torch_source(torch_installed=True, pytorch_utils_available=True) is None


def test_nothing_is_asked_when_everything_is_installed():
    installed = dict(
        SLICER_ONLY, torch="2.13.0", **{r.split("==")[0]: r.split("==")[1] for r in REQUIREMENTS}
    )
    plan = plan_install(installed, pytorch_utils_available=False)
    assert not plan.needed
    asked = []
    assert install_dependencies(plan, asked.append, lambda args: None, lambda: None)
    assert asked == []


def test_installed_versions_reads_this_environment():
    versions = installed_versions(["numpy", "surely-not-installed-medsegai"])
    assert versions["numpy"] and versions["surely-not-installed-medsegai"] is None


def test_declining_installs_nothing():
    plan = plan_install(SLICER_ONLY, pytorch_utils_available=True)
    calls = []
    assert not install_dependencies(plan, lambda text: False, calls.append, lambda: calls.append("torch"))
    assert calls == []


def test_confirmed_install_uses_pytorchutils_then_pip_with_constraints():
    plan = plan_install(SLICER_ONLY, pytorch_utils_available=True)
    assert "PyTorch (via the PyTorch extension)" in plan.summary and "numpy==1.26.4" in plan.summary
    calls, constraint_files = [], []

    def pip_install(args):
        calls.append(args)
        path = Path(args[args.index("--constraint") + 1])
        constraint_files.append(path.read_text().split())

    assert install_dependencies(
        plan, lambda text: True, pip_install, lambda: calls.append("torch via PyTorchUtils")
    )
    assert calls[0] == "torch via PyTorchUtils"
    assert calls[1][: len(REQUIREMENTS)] == list(REQUIREMENTS)
    assert {"numpy==1.26.4", "SimpleITK==2.4.0", "vtk==9.4.2"} <= set(constraint_files[0])


def test_without_the_extension_torch_is_pip_installed_with_the_same_constraints():
    plan = plan_install(SLICER_ONLY, pytorch_utils_available=False)
    calls = []
    install_dependencies(plan, lambda text: True, lambda args: calls.append(list(args)), lambda: None)
    assert calls[0][0] == TORCH_REQUIREMENT and "--constraint" in calls[0]
