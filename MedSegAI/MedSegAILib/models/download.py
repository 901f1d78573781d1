"""Verified, resumable downloads of model files.

A download streams into ``<destination>.part``. If that file already exists (an earlier
download was interrupted), the request asks for the rest with an HTTP ``Range`` header and
appends; a server that ignores ``Range`` makes us start again from byte 0. When all bytes
are there, the SHA-256 of the whole file is compared with the expected one: a mismatch
removes the file and refuses it, a match renames ``.part`` to the destination. Nothing is
ever used before its hash has been checked.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from http.client import HTTPException
from pathlib import Path

from ..errors import MedSegAIError
from ..progress import CancelToken, ProgressCallback, check_cancelled, no_progress

CHUNK_BYTES = 1 << 20
PART_SUFFIX = ".part"


class DownloadError(MedSegAIError):
    """A download failed or produced a file whose hash or size is wrong."""


def sha256_of(path: str | os.PathLike, chunk_bytes: int = CHUNK_BYTES) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: str | os.PathLike, sha256: str, size: int | None = None) -> None:
    """Check a file's size (when given) and SHA-256.

    Raises:
        DownloadError: the size or the hash differs.
    """
    path = Path(path)
    if size is not None and path.stat().st_size != size:
        raise DownloadError(
            f"{path}: size is {path.stat().st_size} bytes, expected {size}; "
            "the file is incomplete or not the one listed"
        )
    actual = sha256_of(path)
    if actual.lower() != sha256.lower():
        raise DownloadError(
            f"{path}: SHA-256 is {actual}, expected {sha256.lower()}; "
            "the file is corrupted or not the one listed"
        )


def download_file(
    url: str,
    destination: str | os.PathLike,
    *,
    sha256: str,
    size: int | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    timeout_s: float = 30.0,
) -> Path:
    """Download ``url`` to ``destination``, resuming a partial download, and verify it.

    Args:
        url: ``http(s)://`` or ``file://`` address.
        destination: final path; an existing file there with the right hash is reused.
        sha256: the expected SHA-256 (hex).
        size: the expected size in bytes, if known (used for progress and checked).
        progress: ``(fraction, message)`` callback.
        cancel: checked between chunks; a cancelled download keeps its ``.part`` file.
        timeout_s: socket timeout per request.

    Returns:
        ``destination``, complete and verified.

    Raises:
        DownloadError: the server could not be reached, or the file's hash or size is wrong
            (the bad file is then removed).
        Cancelled: ``cancel`` was set.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.is_file():
        try:
            verify_file(destination, sha256, size)
            return destination
        except DownloadError:
            destination.unlink()
    part = destination.with_name(destination.name + PART_SUFFIX)
    if part.is_file() and size is not None and part.stat().st_size > size:
        part.unlink()
    if not (part.is_file() and size is not None and part.stat().st_size == size):
        _fetch_into(url, part, size, progress, cancel, timeout_s)
    try:
        verify_file(part, sha256, size)
    except DownloadError as error:
        part.unlink()
        raise DownloadError(
            f"{url}: {error.args[0].split(': ', 1)[1]}; it was removed, nothing was installed"
        ) from None
    os.replace(part, destination)
    progress(1.0, f"download {destination.name}: verified")
    return destination


def _fetch_into(
    url: str,
    part: Path,
    size: int | None,
    progress: ProgressCallback,
    cancel: CancelToken | None,
    timeout_s: float,
) -> None:
    """Append the missing bytes of ``url`` to ``part`` (Range request when it is not empty)."""
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "medsegai"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)  # noqa: S310 - http(s)/file only, hash-checked
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing left to send: the part file may be complete
            return
        raise DownloadError(
            f"{url}: the server answered HTTP {error.code} ({error.reason}); check the URL or try again later"
        ) from None
    except (urllib.error.URLError, OSError, HTTPException) as error:
        raise DownloadError(
            f"{url}: could not connect ({getattr(error, 'reason', error)}); check the network and try again"
        ) from None
    with response:
        status = getattr(response, "status", 200)
        resumed = bool(offset) and status == 206
        if offset and not resumed:
            offset = 0  # the server ignored Range: start again
        total = size if size is not None else _content_length(response, offset)
        done = offset
        try:
            with open(part, "ab" if resumed else "wb") as stream:
                while True:
                    check_cancelled(cancel)
                    chunk = response.read(CHUNK_BYTES)
                    if not chunk:
                        break
                    stream.write(chunk)
                    done += len(chunk)
                    fraction = done / total if total else 0.0
                    progress(
                        min(fraction, 1.0),
                        f"download {part.name[: -len(PART_SUFFIX)]}: "
                        f"{done / 1e6:.1f}/{(total or 0) / 1e6:.1f} MB",
                    )
        except (OSError, HTTPException) as error:
            raise DownloadError(
                f"{url}: the download was interrupted after {done} bytes ({error}); "
                "run the same command again to resume"
            ) from None
        if total is not None and done < total:
            raise DownloadError(
                f"{url}: the connection closed after {done} of {total} bytes; "
                "run the same command again to resume"
            )


def _content_length(response, offset: int) -> int | None:
    length = response.headers.get("Content-Length")
    return int(length) + offset if length is not None and length.isdigit() else None
