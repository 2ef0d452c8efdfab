"""User-facing engine errors: every failure the user can act on is an :class:`EngineError`."""

from __future__ import annotations


class EngineError(Exception):
    """A failure the user can fix; the message names the problem and the fix."""


class Canceled(EngineError):  # noqa: N818 - public API name
    """The run was canceled by the user; everything it wrote has been removed."""

    def __init__(self, message: str = "Canceled by the user; no output was written.") -> None:
        super().__init__(message)
