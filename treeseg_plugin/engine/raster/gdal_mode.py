"""GDAL's error mode inside TreeSeg's own calls only: the caller's mode (QGIS's, a script's) is kept.

GDAL's Python bindings raise ``RuntimeError`` on errors only after ``gdal.UseExceptions()``, a switch for
the whole process (``gdal.ExceptionMgr``, from GDAL 3.7, is the same switch, restored on exit; GDAL 3.6 has
none). The engine needs exceptions, QGIS and other plugins may not: the engine's entry points (every run,
through engine/runs/skeleton.py; :func:`.input.input_problem`) run with them and restore the previous mode
when they return.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Iterator, TypeVar

from osgeo import gdal

T = TypeVar("T")


@contextlib.contextmanager
def gdal_exceptions(enabled: bool = True) -> Iterator[None]:
    """Within: GDAL raises on errors (``enabled``) or returns error values; after: the previous mode."""
    previous = bool(gdal.GetUseExceptions())
    if previous != enabled:
        (gdal.UseExceptions if enabled else gdal.DontUseExceptions)()
    try:
        yield
    finally:
        if previous != enabled:
            (gdal.UseExceptions if previous else gdal.DontUseExceptions)()


def raising_gdal_errors(function: Callable[..., T]) -> Callable[..., T]:
    """Run ``function`` inside :func:`gdal_exceptions`."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        with gdal_exceptions():
            return function(*args, **kwargs)

    return wrapper
