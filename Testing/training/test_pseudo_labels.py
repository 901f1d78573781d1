"""Classical pseudo-labels on a procedural phantom: the right components in the right places."""

import numpy as np
from medsegai_lab.pseudo_labels import lung_pseudo_labels, solid_lung_masses
from phantom import chest_phantom


def dice(a, b):
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_two_lungs_found_and_sided_by_patient_coordinates():
    hu, truth = chest_phantom()
    labels = lung_pseudo_labels(hu, (4.0, 4.0, 4.0))
    # Canonical x runs towards the patient's left: the left lung is the high-x one.
    assert dice(labels.left_lung, truth["left_lung"] | truth["vessel"]) > 0.9
    assert dice(labels.right_lung, truth["right_lung"]) > 0.9
    assert not (labels.left_lung & labels.right_lung).any()


def test_vessels_inside_the_lung_are_filled_into_it():
    hu, truth = chest_phantom()
    labels = lung_pseudo_labels(hu, (4.0, 4.0, 4.0))
    assert labels.left_lung[truth["vessel"]].mean() > 0.95


def test_trachea_is_airway_not_lung_and_outside_air_is_not_body():
    hu, truth = chest_phantom()
    labels = lung_pseudo_labels(hu, (4.0, 4.0, 4.0))
    assert labels.airway[truth["trachea"]].mean() > 0.8
    assert not (labels.lung & truth["trachea"]).any()
    assert dice(labels.body, truth["body"]) > 0.97
    assert not labels.body[0, 0, 0]


def test_an_isolated_round_mass_in_the_lung_is_found_but_not_a_thin_vessel():
    hu, truth = chest_phantom(shape=(48, 64, 80), spacing=2.0)
    z, y, x = np.mgrid[:48, :64, :80]
    lung = truth["left_lung"] | truth["right_lung"]
    mass = ((z - 24) ** 2 + (y - 32) ** 2 + (x - 22) ** 2) <= 5**2  # 20 mm across at 2 mm
    tube = (np.abs(y - 30) <= 0) & (np.abs(x - 58) <= 0) & lung  # a 2 mm "vessel"
    hu[mass] = 30.0
    hu[tube] = 30.0
    found = solid_lung_masses(hu, lung, (2.0, 2.0, 2.0))
    assert dice(found, mass) > 0.8
    assert not (found & tube).any()
