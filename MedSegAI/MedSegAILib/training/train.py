"""Train a chest CT segmentation network (seeded; the built-in network and raw classes).

Researchers retrain on their corrections (``medsegai corrections export``), starting from the
shipped model's weights unless ``--init`` names others:

    python -m MedSegAILib.training.train --out runs/chest_ct_ft --corrections DIR [--minutes M]

The network (:class:`~MedSegAILib.models.networks.ChestUNet3D`) is trained on augmented patches
(:mod:`.augment`, synthetic nodules included) with Dice + cross-entropy. Writes into ``--out``:
``model.safetensors`` (fp32 state_dict, rewritten at every checkpoint), ``model_card.json`` and
``train_log.jsonl`` (one line per logged step). The recipe that rebuilds the shipped model from
the project's shared data lives outside the package, in ``lab/`` (``medsegai_lab.train_builtin``).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from ..models.networks import build_network
from ..models.normalization import normalize_intensity
from ..models.registry import BUILTIN_DIR
from .augment import AugmentOptions, sample_patch
from .card_builder import NETWORK_KWARGS, NETWORK_NAME, NORMALIZATION, write_model_folder
from .cases import IGNORE, Case
from .corrections import load_correction_cases

SHIPPED_WEIGHTS = BUILTIN_DIR / "chest_ct" / "model.safetensors"


def dice_ce_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    smooth: float = 1.0,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy plus soft Dice over the foreground classes (batch-pooled).

    Voxels labelled ``IGNORE`` count in neither term.

    Args:
        logits: ``(B, C, D, H, W)``.
        target: ``(B, D, H, W)`` integer classes.
        smooth: Dice smoothing.
        class_weights: per-class cross-entropy weights (rare classes up), or ``None``.
    """
    ce = F.cross_entropy(logits, target, weight=class_weights, ignore_index=IGNORE)
    valid = (target != IGNORE).unsqueeze(1).to(logits.dtype)
    probabilities = torch.softmax(logits, dim=1) * valid
    one_hot = (
        F.one_hot(torch.where(target == IGNORE, 0, target), logits.shape[1])
        .permute(0, 4, 1, 2, 3)
        .to(logits.dtype)
        * valid
    )
    dims = (0, 2, 3, 4)
    intersection = (probabilities * one_hot).sum(dims)
    denominator = probabilities.sum(dims) + one_hot.sum(dims)
    dice = (2 * intersection + smooth) / (denominator + smooth)
    return ce + (1.0 - dice[1:].mean())


def make_batch(
    cases: Sequence[Case], batch: int, patch: Sequence[int], rng: np.random.Generator, options: AugmentOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of normalised patches ``(B, 1, z, y, x)`` and their classes ``(B, z, y, x)``."""
    weights = np.array([case.weight for case in cases], dtype=float)
    images, labels = [], []
    for _ in range(batch):
        case = cases[rng.choice(len(cases), p=weights / weights.sum())]
        hu, label, outside = sample_patch(case, patch, rng, options)
        images.append(normalize_intensity(hu, NORMALIZATION, outside=outside))
        labels.append(label)
    images_tensor = torch.from_numpy(np.stack(images)[:, None]).contiguous(
        memory_format=torch.channels_last_3d
    )
    return images_tensor, torch.from_numpy(np.stack(labels).astype(np.int64))


def train_steps(
    network: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batches,
    device: torch.device,
    class_weights: torch.Tensor | None = None,
) -> list[float]:
    """Run one optimisation step per batch; returns the losses."""
    network.train()
    losses = []
    for images, labels in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = dice_ce_loss(network(images.to(device)), labels.to(device), class_weights=class_weights)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and torch; returns the NumPy generator used for sampling."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def train(
    out: Path,
    cases: Sequence[Case],
    seed: int = 0,
    minutes: float = 40.0,
    max_steps: int = 100000,
    batch: int = 2,
    patch: Sequence[int] = (80, 80, 80),
    lr: float = 2e-3,
    spacing: Sequence[float] = (2.0, 2.0, 2.0),
    device: str = "auto",
    threads: int = 2,
    checkpoint_minutes: float = 10.0,
    command: str | None = None,
    init: Path | None = None,
    class_weights: Sequence[float] | None = None,
    p_nodules: float = AugmentOptions.p_nodules,
) -> Path:
    """Train on ``cases`` (prepared at ``spacing``) and write the model folder ``out``; returns ``out``.

    Stops after ``minutes`` of wall time or ``max_steps`` steps, whichever comes first;
    the learning rate follows a cosine schedule over the time budget. ``init`` starts
    from earlier weights (a safetensors state_dict) instead of a random initialisation;
    ``class_weights`` weight the cross-entropy per raw class; ``p_nodules`` is the chance that a
    patch gets synthetic nodules inserted.
    """
    if not cases:
        raise ValueError("train needs at least one case")
    rng = seed_everything(seed)
    torch.set_num_threads(threads)
    run_device = torch.device(
        "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    )
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "train_log.jsonl", "a")
    network = build_network(NETWORK_NAME, **NETWORK_KWARGS)
    if init is not None:
        network.load_state_dict({k: v.float() for k, v in load_file(str(init)).items()})
    # Channels-last (NDHWC) lets oneDNN run the 3-D convolutions about 2-3x faster on CPU.
    network = network.to(run_device, memory_format=torch.channels_last_3d)
    optimizer = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=1e-4)
    options = AugmentOptions(p_nodules=p_nodules)
    started = time.monotonic()
    last_checkpoint = started
    budget = minutes * 60.0
    step = 0
    training = {
        "data": [case.name for case in cases],
        "command": command or " ".join(sys.argv),
        "seed": seed,
        "spacing": list(spacing),
        "patch": list(patch),
        "batch": batch,
        "lr": lr,
        "device": str(run_device),
    }
    if init is not None:
        training["init"] = str(init)
    weights = None
    if class_weights is not None:
        training["class_weights"] = list(class_weights)
        weights = torch.tensor(class_weights, dtype=torch.float32, device=run_device)
    while step < max_steps and time.monotonic() - started < budget:
        fraction = (time.monotonic() - started) / budget
        for group in optimizer.param_groups:
            group["lr"] = lr * (0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * min(1.0, fraction))))
        loss = train_steps(
            network, optimizer, [make_batch(cases, batch, patch, rng, options)], run_device, weights
        )[0]
        step += 1
        elapsed = time.monotonic() - started
        log.write(
            json.dumps(
                {
                    "step": step,
                    "loss": round(loss, 5),
                    "lr": optimizer.param_groups[0]["lr"],
                    "seconds": round(elapsed, 1),
                }
            )
            + "\n"
        )
        log.flush()
        if step % 10 == 0:
            print(f"step {step} loss {loss:.4f} {elapsed / 60:.1f} min", flush=True)
        if time.monotonic() - last_checkpoint > checkpoint_minutes * 60:
            write_model_folder(out, network, {**training, "steps": step, "minutes": round(elapsed / 60, 1)})
            last_checkpoint = time.monotonic()
    elapsed = time.monotonic() - started
    write_model_folder(out, network, {**training, "steps": step, "minutes": round(elapsed / 60, 1)})
    log.close()
    return out


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every training command shares (output, budget, optimisation, corrections)."""
    parser.add_argument("--out", required=True, type=Path, help="model folder to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=40.0, help="wall-time budget (default 40)")
    parser.add_argument("--max-steps", type=int, default=100000)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--patch", type=int, nargs=3, default=(80, 80, 80), metavar=("Z", "Y", "X"))
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--spacing", type=float, nargs=3, default=(2.0, 2.0, 2.0), metavar=("X", "Y", "Z"))
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda[:N]")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--checkpoint-minutes", type=float, default=10.0)
    parser.add_argument(
        "--class-weights",
        type=float,
        nargs=4,
        default=None,
        metavar=("BG", "LUNG", "NODULE", "AIRWAY"),
        help="cross-entropy weight per raw class (default: equal)",
    )
    parser.add_argument(
        "--p-nodules",
        type=float,
        default=AugmentOptions.p_nodules,
        help=f"chance that a patch gets synthetic nodules inserted (default {AugmentOptions.p_nodules})",
    )


def train_from_arguments(
    args: argparse.Namespace, cases: Sequence[Case], init: Path | None, command: str
) -> Path:
    """Run :func:`train` with the options of :func:`add_training_arguments`."""
    return train(
        args.out,
        cases,
        seed=args.seed,
        minutes=args.minutes,
        max_steps=args.max_steps,
        batch=args.batch,
        patch=args.patch,
        lr=args.lr,
        spacing=args.spacing,
        device=args.device,
        threads=args.threads,
        checkpoint_minutes=args.checkpoint_minutes,
        init=init,
        class_weights=args.class_weights,
        p_nodules=args.p_nodules,
        command=command,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Retrain on exported corrections (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m MedSegAILib.training.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_training_arguments(parser)
    parser.add_argument(
        "--corrections",
        type=Path,
        required=True,
        metavar="DIR",
        help="train on the corrected cases of DIR (written by `medsegai corrections export`)",
    )
    parser.add_argument(
        "--init",
        type=Path,
        default=SHIPPED_WEIGHTS,
        help="start from these weights (safetensors state_dict; default: the shipped chest CT model)",
    )
    args = parser.parse_args(argv)
    cases = load_correction_cases(args.corrections, args.spacing)
    if not cases:
        parser.error(
            f"{args.corrections}: holds no corrected cases; export some with `medsegai corrections export`"
        )
    words = sys.argv[1:] if argv is None else list(argv)
    train_from_arguments(args, cases, args.init, "python -m MedSegAILib.training.train " + " ".join(words))
    return 0


if __name__ == "__main__":
    sys.exit(main())
