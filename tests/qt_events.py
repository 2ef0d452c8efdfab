"""Waiting for Qt work (QgsTask, signals) to finish in tests."""

from __future__ import annotations

import time
from typing import Callable

from qgis.PyQt.QtCore import QCoreApplication


def wait_until(condition: Callable[[], bool], timeout: float = 120.0) -> None:
    """Process Qt events until ``condition()`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        QCoreApplication.processEvents()
        time.sleep(0.01)
