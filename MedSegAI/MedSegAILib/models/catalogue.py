"""The catalogue of downloadable models, and fetching one into the cache, verified.

A catalogue is a JSON file ``{"models": [ENTRY, ...]}``; each entry has ``name``,
``kind`` (``monai_bundle`` or ``model_folder``), ``url`` (``https://``, ``http://``,
``file://``, or a path relative to the catalogue file), ``sha256``, ``size`` (bytes),
``licence`` and optionally ``description``. The URL names a ``.zip``, ``.tar.gz`` or
``.tgz`` archive holding one bundle or model folder.

The project ships ``catalogue.json`` next to this module. Users add their own catalogues
with ``$MEDSEGAI_CATALOGUE`` (one or more files separated by the path separator); an
entry there replaces a shipped entry of the same name. Nothing is downloaded unless a
command asks for it (``medsegai models download NAME``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
import tempfile
import urllib.parse
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..progress import CancelToken, ProgressCallback, no_progress
from .download import download_file

SHIPPED_CATALOGUE = Path(__file__).with_name("catalogue.json")
KINDS = ("monai_bundle", "model_folder")
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz")
REQUIRED_ENTRY_FIELDS = ("name", "kind", "url", "sha256", "size", "licence")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class CatalogueEntry:
    """One downloadable model. ``url`` is absolute (relative paths are resolved on load)."""

    name: str
    kind: str
    url: str
    sha256: str
    size: int
    licence: str
    description: str = ""

    @property
    def file_name(self) -> str:
        """The archive's file name in the cache (the last part of the URL path)."""
        return Path(urllib.parse.urlparse(self.url).path).name


def cache_dir() -> Path:
    """The download cache: ``$MEDSEGAI_CACHE``, else ``~/.cache/medsegai``."""
    return Path(os.environ.get("MEDSEGAI_CACHE") or Path.home() / ".cache" / "medsegai")


def catalogue_files() -> list[Path]:
    """The shipped catalogue, then the user's (``$MEDSEGAI_CATALOGUE``), in priority order."""
    extra = [Path(p) for p in os.environ.get("MEDSEGAI_CATALOGUE", "").split(os.pathsep) if p]
    return [SHIPPED_CATALOGUE, *extra]


def parse_entry(data: dict[str, Any], source: Path) -> CatalogueEntry:
    """Validate one catalogue entry; a relative ``url`` is taken relative to ``source``.

    Raises:
        InputError: a field is missing or malformed.
    """
    missing = [name for name in REQUIRED_ENTRY_FIELDS if name not in data]
    label = f"{source}: catalogue entry {data.get('name', '?')!r}"
    if missing:
        raise InputError(
            f"{label} is missing {', '.join(missing)}; every entry needs {', '.join(REQUIRED_ENTRY_FIELDS)}"
        )
    if data["kind"] not in KINDS:
        raise InputError(f"{label}: kind {data['kind']!r} is not one of {', '.join(KINDS)}")
    if not _SHA256.match(str(data["sha256"])):
        raise InputError(f"{label}: sha256 must be 64 hexadecimal digits")
    if not isinstance(data["size"], int) or data["size"] <= 0:
        raise InputError(f"{label}: size must be a positive number of bytes")
    url = str(data["url"])
    if not urllib.parse.urlparse(url).scheme:
        url = (source.parent / url).resolve().as_uri()
    elif urllib.parse.urlparse(url).scheme not in ("http", "https", "file"):
        raise InputError(f"{label}: URL scheme of {url!r} is not http, https or file")
    entry = CatalogueEntry(
        name=str(data["name"]),
        kind=str(data["kind"]),
        url=url,
        sha256=str(data["sha256"]).lower(),
        size=int(data["size"]),
        licence=str(data["licence"]),
        description=str(data.get("description", "")),
    )
    if not entry.file_name.endswith(ARCHIVE_SUFFIXES):
        raise InputError(f"{label}: URL must name a {', '.join(ARCHIVE_SUFFIXES)} archive")
    return entry


def load_catalogue(files: Iterable[Path] | None = None) -> dict[str, CatalogueEntry]:
    """All catalogue entries by name; later files override earlier ones.

    Raises:
        InputError: a catalogue file is missing, not JSON, or has a bad entry.
    """
    entries: dict[str, CatalogueEntry] = {}
    for path in catalogue_files() if files is None else files:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise InputError(f"{path}: catalogue file not found; fix $MEDSEGAI_CATALOGUE") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"{path}: catalogue is not valid JSON ({error})") from None
        if not isinstance(data, dict) or not isinstance(data.get("models"), list):
            raise InputError(f'{path}: a catalogue is a JSON object with a "models" list')
        for item in data["models"]:
            entry = parse_entry(item, path)
            entries[entry.name] = entry
    return entries


def find_entry(name: str, catalogue: dict[str, CatalogueEntry]) -> CatalogueEntry:
    """The entry called ``name``.

    Raises:
        InputError: no such entry (the message lists the available names).
    """
    if name in catalogue:
        return catalogue[name]
    known = ", ".join(sorted(catalogue)) or "none (add entries with $MEDSEGAI_CATALOGUE, see docs/models.md)"
    raise InputError(f"{name!r} is not in the model catalogue; available: {known}")


def fetch_entry(
    entry: CatalogueEntry,
    *,
    cache: Path | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> Path:
    """Download (or reuse) an entry's archive, verify it, and unpack it in the cache.

    Returns:
        The unpacked model root: the folder holding ``configs/metadata.json`` (bundle) or
        ``model_card.json`` (model folder).

    Raises:
        DownloadError: download failed or the archive's hash/size is wrong (it is removed).
        InputError: the archive is unsafe (paths leaving the folder, links) or holds no model.
    """
    cache = cache_dir() if cache is None else Path(cache)
    archive = download_file(
        entry.url,
        cache / "downloads" / entry.file_name,
        sha256=entry.sha256,
        size=entry.size,
        progress=progress,
        cancel=cancel,
    )
    target = cache / "unpacked" / f"{entry.name}-{entry.sha256[:12]}"
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
        try:
            extract_archive(archive, staging)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return find_model_root(target, entry.kind)


def extract_archive(archive: Path, destination: Path) -> None:
    """Unpack a zip or tar archive, refusing members that would land outside ``destination``.

    Raises:
        InputError: an absolute path, ``..``, a link or a device file in the archive.
    """
    root = destination.resolve()

    def check(name: str) -> None:
        target = (root / name).resolve()
        if name.startswith(("/", "\\")) or not (target == root or root in target.parents):
            raise InputError(
                f"{archive}: archive member {name!r} would be written outside the model folder; refusing it"
            )

    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as bundle:
            for info in bundle.infolist():
                check(info.filename)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise InputError(
                        f"{archive}: archive member {info.filename!r} is a symbolic link; refusing it"
                    )
            bundle.extractall(root)
        return
    with tarfile.open(archive, "r:gz") as bundle:
        for member in bundle.getmembers():
            check(member.name)
            if not (member.isfile() or member.isdir()):
                raise InputError(
                    f"{archive}: archive member {member.name!r} is not a plain file or folder; refusing it"
                )
        bundle.extractall(root, filter="data")


def find_model_root(folder: Path, kind: str) -> Path:
    """The folder inside ``folder`` (itself or one level down) that holds the model.

    Raises:
        InputError: none, or more than one, is found.
    """
    marker = Path("configs") / "metadata.json" if kind == "monai_bundle" else Path("model_card.json")
    candidates = [folder] + sorted(p for p in folder.iterdir() if p.is_dir())
    roots = [p for p in candidates if (p / marker).is_file()]
    if len(roots) != 1:
        raise InputError(f"{folder}: expected one {kind} holding {marker} in the archive, found {len(roots)}")
    return roots[0]
