"""Runs the real ``qgis_process.bin`` with a throw-away profile and the plugin enabled."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

QGIS_PROCESS = shutil.which("qgis_process.bin") or "/usr/bin/qgis_process.bin"


def qgis_process_env(home: Path, plugins_dir: Path) -> dict[str, str]:
    """Environment for qgis_process: temp HOME, the plugin folder, and this venv's packages (torch...)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("QGIS")}
    env.update({
        "HOME": str(home),
        "QGIS_PLUGINPATH": str(plugins_dir),
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": sysconfig.get_paths()["purelib"],
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    home.mkdir(parents=True, exist_ok=True)
    return env


def run(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """qgis_process.bin ARGS, captured as text."""
    return subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)


def enable_plugin(name: str, env: dict[str, str]) -> None:
    """qgis_process.bin plugins enable NAME, asserting it worked."""
    done = run(["plugins", "enable", name], env)
    assert done.returncode == 0, done.stdout + done.stderr


def run_algorithm(algorithm: str, parameters: dict[str, Any], env: dict[str, str],
                  timeout: float = 600) -> tuple[subprocess.CompletedProcess, dict[str, Any] | None]:
    """qgis_process.bin --json run ALG -- NAME=VALUE...; returns the process and its parsed JSON (or None)."""
    args = ["--json", "run", algorithm, "--"] + [f"{name}={value}" for name, value in parameters.items()]
    done = run(args, env, timeout)
    try:
        payload = json.loads(done.stdout[done.stdout.index("{"):])
    except ValueError:
        payload = None
    return done, payload
