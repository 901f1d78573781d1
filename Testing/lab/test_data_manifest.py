"""The data manifest names every shared scan's role, and the lab's recipes keep to it."""

from __future__ import annotations

import json
from pathlib import Path

from medsegai_lab.classifier_training import HELD_OUT_HOSTS, TRAINING_HOSTS
from medsegai_lab.datasets import TRAINING_SOURCES

MANIFEST = json.loads((Path(__file__).resolve().parents[2] / "lab" / "data_manifest.json").read_text())[
    "hosts"
]
ROLES = {"training", "validation", "test", "unused"}


def role(path: str) -> str:
    return MANIFEST[path]["role"]


def test_every_host_has_a_known_role():
    assert {entry["role"] for entry in MANIFEST.values()} <= ROLES
    assert role("lidc_idri/LIDC-IDRI-0001") == "test"


def test_the_segmentation_recipe_trains_only_on_training_hosts():
    for source in TRAINING_SOURCES:
        assert role(source.path) == "training", source.path
        assert "segmentation" in MANIFEST[source.path]["models"]


def test_the_nodule_classifier_trains_only_on_training_hosts_and_validates_elsewhere():
    for host in TRAINING_HOSTS:
        assert role(host) == "training" and "detection" in MANIFEST[host]["models"], host
    for host in HELD_OUT_HOSTS:
        trained_for = MANIFEST[host]["models"] if role(host) == "training" else []
        assert host not in TRAINING_HOSTS and "detection" not in trained_for, host


def test_every_listed_host_is_in_the_shared_data(shared_data):
    for path in MANIFEST:
        shared_data(path)
