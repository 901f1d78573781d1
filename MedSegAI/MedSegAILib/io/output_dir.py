"""A job's output folder: everything lands together, or nothing does.

Files are written into a hidden staging folder inside OUTDIR. When the job succeeds each
file is moved into place with an atomic rename, replacing older files only by complete new
ones. When it fails, the staging folder is removed, and OUTDIR too if the job created it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from ..errors import InputError


class OutputDir:
    """Context manager: ``with OutputDir(outdir) as out: write(out.path("x.nii.gz"))``."""

    def __init__(self, outdir: str | os.PathLike) -> None:
        self.final = Path(outdir)
        self._created = False
        self.staging: Path | None = None
        self.names: list[str] = []  # what path() handed out, in order

    def __enter__(self) -> OutputDir:
        if self.final.exists() and not self.final.is_dir():
            raise InputError(f"{self.final}: exists and is not a folder; choose another output folder")
        if not self.final.exists():
            try:
                self.final.mkdir(parents=True)
            except OSError as error:
                raise InputError(f"{self.final}: cannot create output folder ({error.strerror})") from None
            self._created = True
        self.staging = Path(tempfile.mkdtemp(prefix=".medsegai-staging-", dir=self.final))
        return self

    def path(self, relative: str) -> Path:
        """Where to write ``relative`` (subfolders are created); ``relative`` is added to :attr:`names`."""
        assert self.staging is not None, "use OutputDir as a context manager"
        self.names.append(relative)
        target = self.staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self.staging is not None
        try:
            if exc_type is None:
                self._commit()
        finally:
            shutil.rmtree(self.staging, ignore_errors=True)
            if exc_type is not None and self._created:
                shutil.rmtree(self.final, ignore_errors=True)

    def _commit(self) -> None:
        assert self.staging is not None
        for source in sorted(p for p in self.staging.rglob("*") if p.is_file()):
            target = self.final / source.relative_to(self.staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
