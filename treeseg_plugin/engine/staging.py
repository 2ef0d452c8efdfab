"""All-or-nothing outputs: files are written into hidden temporary folders next to their destinations
and moved into place only when the whole run succeeded.

A failure or cancel removes the temporary folders, so the destination folders keep exactly what
they had (an existing output is replaced only at the very end). Each artefact is staged in its own
folder under its final name, so companion files written by GDAL/OGR (``.aux.xml``, shapefile parts)
travel with it. Missing destination folders are created (and removed again if the run fails and
they are still empty).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import List, Tuple

from .errors import EngineError


class Staging:
    """Temporary places for outputs, committed together with :meth:`commit`."""

    def __init__(self) -> None:
        self._staged: List[Tuple[str, str]] = []  # (temporary folder, destination folder)
        self._created: List[str] = []

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.discard()

    def _ensure_folder(self, folder: str) -> None:
        missing = []
        probe = folder
        while probe and not os.path.exists(probe):
            missing.append(probe)
            probe = os.path.dirname(probe)
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise EngineError(f"Cannot create the output folder '{folder}': {exc}. Choose a folder you can "
                              "write to.") from exc
        self._created.extend(reversed(missing))

    def path(self, destination: str) -> str:
        """A temporary path with the same file name as ``destination``, in its folder."""
        destination = os.path.abspath(destination)
        folder = os.path.dirname(destination)
        self._ensure_folder(folder)
        try:
            temp = tempfile.mkdtemp(prefix=".treeseg-tmp-", dir=folder)
        except OSError as exc:
            raise EngineError(f"Cannot write in the output folder '{folder}': {exc}. Choose a folder you "
                              "can write to.") from exc
        self._staged.append((temp, folder))
        return os.path.join(temp, os.path.basename(destination))

    def commit(self, last: str = "") -> None:
        """Move every staged file to its destination; the one named ``last`` moves last.

        The main output should move last, so it appears only when its companions are in place.
        """
        moves = []
        for temp, folder in self._staged:
            for name in sorted(os.listdir(temp)):
                if not os.path.isfile(os.path.join(temp, name)):
                    continue
                target = os.path.join(folder, name)
                if os.path.isdir(target):
                    raise EngineError(f"Cannot write '{target}': a folder of that name exists. Remove it or "
                                      "choose another output name.")
                moves.append((os.path.join(temp, name), target))
        moves.sort(key=lambda move: os.path.basename(move[1]) == last)
        done: List[str] = []
        try:
            for source, target in moves:
                os.replace(source, target)
                done.append(target)
        except OSError as exc:
            for target in done:
                with contextlib.suppress(OSError):
                    os.remove(target)
            raise EngineError(f"Cannot write '{target}': {exc}. Check the folder's permissions and free "
                              "space.") from exc
        self._created = []

    def discard(self) -> None:
        """Remove the temporary folders (and destination folders this run created, if still empty)."""
        for temp, _ in self._staged:
            shutil.rmtree(temp, ignore_errors=True)
        self._staged = []
        for folder in reversed(self._created):
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        self._created = []

