"""Installing a model into the user model folder: from a path (`models import`) or the catalogue.

A source is a MONAI bundle folder, a model folder with ``model_card.json`` (our own format,
or TorchScript), or a ``.zip`` / ``.tar.gz`` archive holding one of them. The files are
copied into a staging folder inside the user model folder, a card is written for a bundle,
the model is *loaded* once from the staged copy (SHA-256, safe unpickling, network build,
everything a run would do), and only then is the folder renamed into place. A failed
import leaves nothing behind.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from ..errors import InputError
from ..io.atomic import write_json
from ..progress import CancelToken, ProgressCallback, no_progress
from .bundle import bundle_card_data, is_bundle
from .card import CARD_FILE, ModelCard, load_model_card, parse_model_card
from .catalogue import (
    ARCHIVE_SUFFIXES,
    extract_archive,
    fetch_entry,
    find_entry,
    find_model_root,
    load_catalogue,
)
from .registry import load_model, user_models_dir

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def import_model(
    source: str | Path,
    *,
    name: str | None = None,
    models_dir: Path | None = None,
    replace: bool = False,
    origin: str | None = None,
) -> ModelCard:
    """Validate a bundle, model folder or archive and install it as ``models_dir/NAME``.

    Args:
        source: the bundle/model folder, or an archive holding one.
        name: the installed name (default: the card's name; for a bundle, its folder name).
        models_dir: where to install (default: the user model folder).
        replace: replace an installed model of the same name.
        origin: recorded as ``weights.source`` in a bundle's generated card.

    Returns:
        The installed model's card.

    Raises:
        InputError: not a model, unsafe or mismatched weights, a bad name, or the name is
            taken and ``replace`` is false.
    """
    source = Path(source).expanduser()
    if not source.exists():
        raise InputError(
            f"{source}: no such file or folder; give a MONAI bundle, a model folder or an archive of one"
        )
    models_dir = user_models_dir() if models_dir is None else Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".import-", dir=models_dir) as scratch:
        root = _unpacked_root(source, Path(scratch) / "unpacked")
        bundle = is_bundle(root) and not (root / CARD_FILE).is_file()
        if name is not None and not bundle:
            raise InputError(
                f"{source}: --name applies to bundles only; "
                "a model folder keeps the name in its model_card.json"
            )
        card_name = name or (root.resolve().name if bundle else load_model_card(root).name)
        if not _NAME.match(card_name):
            raise InputError(
                f"{card_name!r}: a model name may hold letters, digits, '.', '_' and '-' only; "
                "choose one with --name"
            )
        target = models_dir / card_name
        if target.exists() and not replace:
            raise InputError(
                f"{target}: a model named {card_name!r} is already installed; pass --replace to replace it"
            )
        staged = Path(scratch) / card_name
        _copy_tree(root, staged)
        if bundle:
            data = bundle_card_data(staged, name=card_name)
            data["weights"]["source"] = origin or f"MONAI bundle imported from {source.resolve()}"
            parse_model_card(data, source=str(staged))
            write_json(staged / CARD_FILE, data)
        load_model(load_model_card(staged), "cpu")  # every check a run would make, before installing
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)
    return load_model_card(target)


def download_model(
    name: str,
    *,
    models_dir: Path | None = None,
    cache: Path | None = None,
    replace: bool = False,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> ModelCard:
    """Download a catalogue entry (verified, resumable) and install it.

    Raises:
        InputError: unknown name or an invalid model in the archive.
        DownloadError: the download failed or the archive's SHA-256 is wrong.
    """
    entry = find_entry(name, load_catalogue())
    root = fetch_entry(entry, cache=cache, progress=progress, cancel=cancel)
    origin = (
        f"downloaded from {entry.url} (catalogue entry {entry.name}, "
        f"archive SHA-256 {entry.sha256}, licence {entry.licence})"
    )
    return import_model(
        root,
        name=entry.name if entry.kind == "monai_bundle" else None,
        models_dir=models_dir,
        replace=replace,
        origin=origin,
    )


def _unpacked_root(source: Path, scratch: Path) -> Path:
    if source.is_dir():
        return source
    if not source.name.endswith(ARCHIVE_SUFFIXES):
        raise InputError(f"{source}: not a model folder or a {', '.join(ARCHIVE_SUFFIXES)} archive")
    scratch.mkdir()
    extract_archive(source, scratch)
    for kind in ("monai_bundle", "model_folder"):
        try:
            return find_model_root(scratch, kind)
        except InputError:
            continue
    raise InputError(
        f"{source}: the archive holds no MONAI bundle (configs/metadata.json) "
        "or model folder (model_card.json)"
    )


def _copy_tree(source: Path, target: Path) -> None:
    """Copy a model folder, refusing symbolic links (they could point anywhere)."""
    for path in source.rglob("*"):
        if path.is_symlink():
            raise InputError(
                f"{path}: symbolic links are not allowed in a model folder; copy the real file there"
            )
    shutil.copytree(source, target)
