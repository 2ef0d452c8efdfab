"""All-or-nothing outputs: files are written into hidden temporary folders next to their destinations
and moved into place only when the whole run succeeded.

A failure or cancel removes the temporary folders, so the destination folders keep exactly what
they had (an existing output is replaced only at the very end). Each artefact is staged in its own
folder under its final name, so companion files written by GDAL/OGR (``.aux.xml``, shapefile parts)
travel with it. Missing destination folders are created (and removed again if the run fails and
they are still empty).

Commit: files that a move will replace are first kept aside in the temporary folder (hard-linked, or
copied where links are impossible), and stale companions of the main output (``stale``: e.g. an old
``labels.tif.ovr`` that would show the previous result's overviews) are moved there. If any move fails,
everything moved is taken back and the kept files are restored, so the destination is again exactly as
before; the main output, moved last, is replaced atomically or not at all. A destination folder that
vanishes during the run is reported as such and never re-created. Temporary folders are named
``.treeseg-<kind>-<pid>-*`` (:func:`temporary_prefix`), so that when a worker process dies without
cleaning up, the process that started it removes exactly that worker's folders
(:func:`remove_leftovers`) and no other run's.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from typing import List, Sequence, Tuple

from ..errors import EngineError, write_error

SIDECARS = (".aux.xml", ".ovr", ".msk")
"""GDAL files beside a raster that describe it: a new raster makes old ones stale."""


def raster_sidecars(name: str) -> List[str]:
    """The sidecar file names of raster ``name``, to move aside when it is replaced (``commit``'s ``stale``)."""
    return [name + suffix for suffix in SIDECARS]


def temporary_prefix(kind: str, pid: int = 0) -> str:
    """``.treeseg-<kind>-<pid>-``: the name start of a temporary folder of process ``pid`` (0: this one)."""
    return f".treeseg-{kind}-{pid or os.getpid()}-"


def remove_leftovers(folders: Sequence[str], pid: int) -> List[str]:
    """Remove the temporary folders that process ``pid`` left in ``folders``; returns their paths."""
    removed = []
    for folder in dict.fromkeys(folders):
        with contextlib.suppress(OSError):
            for name in os.listdir(folder):
                if name.startswith(".treeseg-") and name.split("-")[2:3] == [str(pid)]:
                    path = os.path.join(folder, name)
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
    return removed


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
        if probe and not os.path.isdir(probe):
            raise EngineError(f"Cannot create the output folder '{folder}': '{probe}' is a file, not a folder. "
                              "Choose an output path in a folder.")
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise EngineError(f"Cannot create the output folder '{folder}': {exc}. Choose a folder you can "
                              "write to.") from exc
        self._created.extend(reversed(missing))

    @staticmethod
    def _gone(what: str, folder: str) -> EngineError:
        return write_error(what, FileNotFoundError(errno.ENOENT, "No such file or directory", folder), folder)

    def path(self, destination: str) -> str:
        """A temporary path with the same file name as ``destination``, in its folder."""
        destination = os.path.abspath(destination)
        folder = os.path.dirname(destination)
        if any(staged == folder for _, staged in self._staged) and not os.path.isdir(folder):
            raise self._gone(f"'{destination}'", folder)  # vanished during the run: never re-create it
        self._ensure_folder(folder)
        try:
            temp = tempfile.mkdtemp(prefix=temporary_prefix("tmp"), dir=folder)
        except OSError as exc:
            raise EngineError(f"Cannot write in the output folder '{folder}': {exc}. Choose a folder you "
                              "can write to.") from exc
        self._staged.append((temp, folder))
        return os.path.join(temp, os.path.basename(destination))

    def commit(self, last: str = "", stale: Sequence[str] = ()) -> None:
        """Move every staged file to its destination; the one named ``last`` moves last.

        The main output should move last, so it appears only when its companions are in place. Files named
        in ``stale`` that exist in the main output's folder and are not replaced are removed. If a move
        fails, the destination is put back as it was: moved files are removed, replaced files (kept aside
        as hard links, or copies where links are impossible) and removed stale files are restored.
        """
        moves = []
        main = None
        for temp, folder in self._staged:
            if not os.path.isdir(temp):
                raise self._gone(f"the outputs in '{folder}'", folder)
            for name in sorted(os.listdir(temp)):
                if not os.path.isfile(os.path.join(temp, name)):
                    continue
                target = os.path.join(folder, name)
                if os.path.isdir(target):
                    raise EngineError(f"Cannot write '{target}': a folder of that name exists. Remove it or "
                                      "choose another output name.")
                moves.append((os.path.join(temp, name), target))
                if name == last:
                    main = (temp, folder)
        moves.sort(key=lambda move: os.path.basename(move[1]) == last)
        targets = {target for _, target in moves}
        kept: List[Tuple[str, str]] = []  # (kept-aside old file, its place)
        done: List[str] = []  # targets already moved into place
        target = ""
        try:
            if main is not None:
                for name in stale:
                    target = os.path.join(main[1], name)
                    if target not in targets and os.path.isfile(target):
                        kept.append((self._keep_aside(main[0], target, move=True), target))
            for index, (source, target) in enumerate(moves):
                if os.path.isfile(target) and index < len(moves) - 1:  # the last move needs no way back
                    kept.append((self._keep_aside(os.path.dirname(source), target, move=False), target))
                os.replace(source, target)
                done.append(target)
        except OSError as exc:
            restored = {place for _, place in kept}
            for moved in done:
                if moved not in restored:
                    with contextlib.suppress(OSError):
                        os.remove(moved)
            for old, place in kept:
                with contextlib.suppress(OSError):
                    os.replace(old, place)
            raise write_error(f"'{target}'", exc, os.path.dirname(target)) from exc
        self._created = []

    @staticmethod
    def _keep_aside(temp: str, path: str, move: bool) -> str:
        """Keep the existing ``path`` in ``temp`` (moved, or linked/copied so ``path`` stays in place)."""
        aside = os.path.join(temp, ".replaced")
        os.makedirs(aside, exist_ok=True)
        old = os.path.join(aside, os.path.basename(path) + ".old")
        if move:
            os.replace(path, old)
        else:
            try:
                os.link(path, old)
            except OSError:
                shutil.copy2(path, old)
        return old

    def discard(self) -> None:
        """Remove the temporary folders (and destination folders this run created, if still empty)."""
        for temp, _ in self._staged:
            shutil.rmtree(temp, ignore_errors=True)
        self._staged = []
        for folder in reversed(self._created):
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        self._created = []
