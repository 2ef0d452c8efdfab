"""Exceptions raised while finding and loading DINOv3 weights.

Every message names the file (or the places searched), what is wrong and what to do about it.
"""

from __future__ import annotations

from typing import Iterable, Optional

from .variants import META_DOWNLOAD_FORM

# The advice that ends most CheckpointError messages.
REDOWNLOAD = (
    "The file is probably truncated or corrupt: download it again (Hugging Face repo or Meta's form "
    f"{META_DOWNLOAD_FORM})."
)
USE_RELEASED = (
    "Use an unmodified released DINOv3 ViT checkpoint (Meta .pth or Hugging Face model.safetensors)."
)


class DinoV3Error(Exception):
    """Base class of all DINOv3 backbone errors."""


class WeightsNotFoundError(DinoV3Error):
    """No weights were found where we looked (or downloading them was not allowed / failed)."""


class CheckpointError(DinoV3Error):
    """A weights file exists but cannot be used: unreadable, unsafe, incomplete, inconsistent or corrupt."""


def printable(text: object, limit: int = 300) -> str:
    """`text` safe to put into a message: control characters escaped, at most `limit` characters.

    Tensor names and error details come from the file being loaded; a crafted file must not be able to
    put line breaks, terminal escapes or megabytes of text into a message or a log line.
    """
    text = str(text)
    cut = len(text) > limit
    text = text[:limit]
    if not text.isprintable():
        text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return text[: limit - 3] + "..." if cut or len(text) > limit else text


def format_keys(keys: Iterable[str], limit: int = 5) -> str:
    """'a, b, c (+7 more)': the first `limit` keys and how many were left out."""
    keys = list(keys)
    shown = ", ".join(printable(k) for k in keys[:limit])
    return f"{shown} (+{len(keys) - limit} more)" if len(keys) > limit else shown


def scrub_token(text: str, *secrets: Optional[str]) -> str:
    """`text` with every given secret (Hugging Face tokens; None and "" are skipped) replaced by "***"."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
