"""`medsegai models import|download|catalogue`: bring your own model (see docs/models.md)."""

from __future__ import annotations

import argparse
import json

from ..models.catalogue import load_catalogue
from ..models.install import download_model, import_model
from .common import add_quiet_argument, progress_for
from .model_summary import describe_model, model_summary

ACTIONS = ("import", "download", "catalogue")


def register_actions(actions: argparse._SubParsersAction) -> None:
    """Add the import, download and catalogue actions to `medsegai models`."""
    imported = actions.add_parser(
        "import",
        help="validate a MONAI bundle, model folder or archive and install it",
        description="Copy a MONAI bundle (configs/metadata.json, configs/inference.json|yaml, "
        "models/model.pt|ts), a model folder with model_card.json (safetensors, state_dict or "
        "TorchScript weights), or a .zip/.tar.gz of one into the user model folder ($MEDSEGAI_MODELS, "
        "default ~/.medsegai/models), after loading it once with every safety check. Prints the model card.",
    )
    imported.add_argument("path", metavar="PATH", help="bundle folder, model folder, or archive")
    imported.add_argument("--name", help="installed name for a bundle (default: the bundle's folder name)")
    imported.add_argument(
        "--replace", action="store_true", help="replace an installed model of the same name"
    )
    imported.add_argument("--json", action="store_true", help="print the card as JSON")
    downloaded = actions.add_parser(
        "download",
        help="download a catalogue model (verified, resumable) and install it",
        description="Download a model listed by `medsegai models catalogue` into the cache "
        "($MEDSEGAI_CACHE, default ~/.cache/medsegai), resuming an interrupted download, check its "
        "SHA-256 and size (a corrupted file is removed), then install it as `models import` does.",
    )
    downloaded.add_argument("name", metavar="NAME", help="a catalogue entry name")
    downloaded.add_argument(
        "--replace", action="store_true", help="replace an installed model of the same name"
    )
    downloaded.add_argument("--json", action="store_true", help="print the card as JSON")
    add_quiet_argument(downloaded)
    catalogue = actions.add_parser(
        "catalogue",
        help="list downloadable models",
        description="The shipped catalogue plus the files named by $MEDSEGAI_CATALOGUE (path-separated).",
    )
    catalogue.add_argument("--json", action="store_true", help="machine-readable output")


def run_action(args: argparse.Namespace) -> int:
    """Run one of :data:`ACTIONS`; returns the exit code."""
    if args.models_command == "catalogue":
        entries = [vars(entry) for entry in load_catalogue().values()]
        if args.json:
            print(json.dumps({"models": entries}, indent=2))
        for entry in [] if args.json else entries:
            print(
                f"{entry['name']}  {entry['kind']}  {entry['size'] / 1e6:.1f} MB  "
                f"{entry['licence']}  {entry['url']}"
            )
        if not entries and not args.json:
            print("the catalogue is empty; add entries with $MEDSEGAI_CATALOGUE (see docs/models.md)")
        return 0
    if args.models_command == "import":
        card = import_model(args.path, name=args.name, replace=args.replace)
    else:
        card = download_model(args.name, replace=args.replace, progress=progress_for(args))
    summary = model_summary(card, detailed=True)
    print(
        json.dumps(summary, indent=2)
        if args.json
        else f"installed in {card.folder}\n" + describe_model(summary)
    )
    return 0
