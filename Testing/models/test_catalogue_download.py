"""Catalogue downloads: verified against SHA-256, resumed with HTTP Range, corrupted files refused.

A loopback HTTP server (127.0.0.1, a thread in the test) serves bytes the test makes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from MedSegAILib.errors import Cancelled, InputError
from MedSegAILib.models.catalogue import extract_archive, fetch_entry, find_entry, load_catalogue, parse_entry
from MedSegAILib.models.download import DownloadError, download_file
from MedSegAILib.progress import CancelToken


class LoopbackServer:
    """Serves ``files`` (path -> bytes) on 127.0.0.1 with Range support.

    ``cut_after[path] = n`` makes the next full request for ``path`` send only ``n`` bytes
    (while announcing the whole length) and then drop the connection, once.
    ``ignore_range`` makes the server always answer 200 with the whole file.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_after: dict[str, int] = {}
        self.ignore_range = False
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                range_header = self.headers.get("Range")
                server.requests.append((self.path, range_header))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if range_header and not server.ignore_range:
                    start = int(range_header.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = server.cut_after.pop(self.path, None)
                self.wfile.write(body if cut is None else body[:cut])
                if cut is not None:
                    self.wfile.flush()
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    with LoopbackServer() as running:
        yield running


def payload(size: int = 300_000) -> bytes:
    return bytes((i * 7919) % 251 for i in range(size))


def test_download_is_checked_against_sha256(server, tmp_path):
    data = payload()
    server.files["/model.bin"] = data
    fractions = []
    path = download_file(
        server.url("/model.bin"),
        tmp_path / "model.bin",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        progress=lambda fraction, message: fractions.append(fraction),
    )
    assert path.read_bytes() == data
    assert not (tmp_path / "model.bin.part").exists()
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_interrupted_download_resumes_with_range(server, tmp_path):
    data = payload(3 * 1024 * 1024)
    server.files["/big.bin"] = data
    server.cut_after["/big.bin"] = 1_000_000
    url, sha = server.url("/big.bin"), hashlib.sha256(data).hexdigest()
    with pytest.raises(DownloadError, match="run the same command again to resume"):
        download_file(url, tmp_path / "big.bin", sha256=sha, size=len(data))
    part = tmp_path / "big.bin.part"
    assert part.stat().st_size == 1_000_000
    assert not (tmp_path / "big.bin").exists()

    download_file(url, tmp_path / "big.bin", sha256=sha, size=len(data))
    assert server.requests[-1] == ("/big.bin", "bytes=1000000-")
    assert (tmp_path / "big.bin").read_bytes() == data
    assert not part.exists()


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    data = payload()
    server.files["/m.bin"] = data
    server.ignore_range = True
    (tmp_path / "m.bin.part").write_bytes(data[:1000])
    download_file(
        server.url("/m.bin"), tmp_path / "m.bin", sha256=hashlib.sha256(data).hexdigest(), size=len(data)
    )
    assert (tmp_path / "m.bin").read_bytes() == data


def test_corrupted_download_is_refused_and_removed(server, tmp_path):
    data = payload()
    server.files["/model.bin"] = data[:-1] + b"\x00"  # one byte differs
    with pytest.raises(DownloadError, match="SHA-256 .* expected .*removed"):
        download_file(
            server.url("/model.bin"),
            tmp_path / "model.bin",
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
        )
    assert list(tmp_path.iterdir()) == []


def test_corrupted_file_already_in_cache_is_replaced(server, tmp_path):
    data = payload()
    server.files["/model.bin"] = data
    (tmp_path / "model.bin").write_bytes(b"tampered")
    download_file(
        server.url("/model.bin"),
        tmp_path / "model.bin",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )
    assert (tmp_path / "model.bin").read_bytes() == data


def test_cancelled_download_keeps_part_file_for_resume(server, tmp_path):
    data = payload(3 * 1024 * 1024)
    server.files["/big.bin"] = data
    token = CancelToken()

    def cancel_after_first_chunk(fraction: float, message: str) -> None:
        token.cancel()

    with pytest.raises(Cancelled):
        download_file(
            server.url("/big.bin"),
            tmp_path / "big.bin",
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            progress=cancel_after_first_chunk,
            cancel=token,
        )
    assert 0 < (tmp_path / "big.bin.part").stat().st_size < len(data)


def test_unreachable_server_is_a_clear_error(tmp_path):
    with pytest.raises(DownloadError, match="could not connect"):
        download_file("http://127.0.0.1:9/none.bin", tmp_path / "x", sha256="0" * 64, timeout_s=2)


def make_model_zip(name: str = "tiny_model") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name}/configs/metadata.json", json.dumps({"name": name}))
        archive.writestr(f"{name}/models/model.pt", b"weights")
    return buffer.getvalue()


def write_catalogue(path: Path, entries: list[dict]) -> Path:
    path.write_text(json.dumps({"models": entries}))
    return path


def test_catalogue_entry_fetches_verifies_and_unpacks(server, tmp_path):
    archive = make_model_zip()
    server.files["/tiny_model.zip"] = archive
    catalogue = write_catalogue(
        tmp_path / "catalogue.json",
        [
            {
                "name": "tiny",
                "kind": "monai_bundle",
                "url": server.url("/tiny_model.zip"),
                "sha256": hashlib.sha256(archive).hexdigest(),
                "size": len(archive),
                "licence": "Apache-2.0",
            }
        ],
    )
    entry = find_entry("tiny", load_catalogue([catalogue]))
    root = fetch_entry(entry, cache=tmp_path / "cache")
    assert (root / "configs" / "metadata.json").is_file()
    assert (root / "models" / "model.pt").read_bytes() == b"weights"
    assert (tmp_path / "cache" / "downloads" / "tiny_model.zip").is_file()
    requests = len(server.requests)
    assert fetch_entry(entry, cache=tmp_path / "cache") == root  # cached: nothing downloaded again
    assert len(server.requests) == requests


def test_catalogue_relative_url_is_a_local_file(tmp_path):
    archive = make_model_zip()
    (tmp_path / "tiny_model.zip").write_bytes(archive)
    catalogue = write_catalogue(
        tmp_path / "catalogue.json",
        [
            {
                "name": "tiny",
                "kind": "monai_bundle",
                "url": "tiny_model.zip",
                "sha256": hashlib.sha256(archive).hexdigest(),
                "size": len(archive),
                "licence": "CC-BY-4.0",
            }
        ],
    )
    root = fetch_entry(load_catalogue([catalogue])["tiny"], cache=tmp_path / "cache")
    assert (root / "models" / "model.pt").is_file()


def test_user_catalogue_from_environment_overrides_shipped(tmp_path, monkeypatch):
    archive = make_model_zip()
    user = write_catalogue(
        tmp_path / "mine.json",
        [
            {
                "name": "tiny",
                "kind": "monai_bundle",
                "url": "https://example.org/tiny.zip",
                "sha256": hashlib.sha256(archive).hexdigest(),
                "size": len(archive),
                "licence": "MIT",
            }
        ],
    )
    monkeypatch.setenv("MEDSEGAI_CATALOGUE", str(user))
    assert load_catalogue()["tiny"].licence == "MIT"


def test_shipped_catalogue_is_valid():
    for entry in load_catalogue(
        [Path(__file__).parents[2] / "MedSegAI" / "MedSegAILib" / "models" / "catalogue.json"]
    ).values():
        assert entry.url.startswith("https://") and len(entry.sha256) == 64


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("sha256", "abc", "64 hexadecimal"),
        ("kind", "pickle", "not one of"),
        ("size", 0, "positive"),
        ("url", "ftp://host/x.zip", "not http"),
        ("url", "https://host/model.pt", "archive"),
    ],
)
def test_bad_catalogue_entries_are_refused(tmp_path, field, value, message):
    entry = {
        "name": "x",
        "kind": "monai_bundle",
        "url": "https://host/x.zip",
        "sha256": "0" * 64,
        "size": 10,
        "licence": "MIT",
    }
    entry[field] = value
    with pytest.raises(InputError, match=message):
        parse_entry(entry, tmp_path / "catalogue.json")


def test_unknown_catalogue_name_lists_available():
    with pytest.raises(InputError, match="not in the model catalogue"):
        find_entry("nope", {})


def test_archive_escaping_its_folder_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("../escaped.txt", "x")
    with pytest.raises(InputError, match="outside the model folder"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()
    assert not os.path.exists(tmp_path / "out" / ".." / "escaped.txt")
