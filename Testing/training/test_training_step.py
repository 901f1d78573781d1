"""Training on tiny patches: augmented samples are well formed and a few steps lower the loss."""

import numpy as np
import torch
from MedSegAILib.models.networks import build_network
from MedSegAILib.training.augment import AugmentOptions, sample_patch
from MedSegAILib.training.cases import IGNORE, Case
from MedSegAILib.training.train import dice_ce_loss, make_batch, seed_everything, train_steps
from phantom import chest_phantom


def phantom_case(cropped=False):
    hu, truth = chest_phantom(spacing=4.0)
    label = np.zeros(hu.shape, dtype=np.uint8)
    label[truth["left_lung"] | truth["right_lung"] | truth["vessel"]] = 1
    label[truth["trachea"]] = 3
    return Case("phantom", hu.astype(np.int16), label, (4.0, 4.0, 4.0), 1.0, cropped)


def test_sampled_patches_have_the_patch_shape_and_known_classes():
    rng = np.random.default_rng(0)
    for cropped in (False, True):
        hu, label, outside = sample_patch(
            phantom_case(cropped), (16, 24, 24), rng, AugmentOptions(p_nodules=1.0, p_thickness=1.0)
        )
        assert hu.shape == label.shape == outside.shape == (16, 24, 24)
        assert hu.dtype == np.float32
        assert set(np.unique(label)) <= {0, 1, 2, 3, IGNORE}


def test_loss_ignores_voxels_outside_a_crop():
    logits = torch.randn(1, 4, 4, 4, 4)
    target = torch.zeros(1, 4, 4, 4, dtype=torch.long)
    target[..., 2:] = 1
    masked = target.clone()
    masked[..., :1] = IGNORE
    changed = logits.clone()
    changed[..., :1] += 5 * torch.randn(1, 4, 4, 4, 1)
    assert torch.isclose(dice_ce_loss(logits, masked), dice_ce_loss(changed, masked))


def test_a_few_steps_on_one_batch_lower_the_loss():
    rng = seed_everything(0)
    torch.set_num_threads(1)
    network = build_network("ChestUNet3D", out_channels=4, channels=(4, 8), head_dropout=0.0)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-2)
    batch = make_batch([phantom_case()], 2, (16, 16, 16), rng, AugmentOptions(p_nodules=0.0))
    losses = train_steps(network, optimizer, [batch] * 6, torch.device("cpu"))
    assert losses[-1] < losses[0]
