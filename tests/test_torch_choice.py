"""scripts/torch_choice.py, as scripts/setup.sh runs it (Debian's /usr/bin/python3): which torch is installed,
and why. No GPU exists on the test machines, so an NVIDIA GPU is a stand-in `nvidia-smi` script on PATH that
prints what the real one prints for `-L`."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Optional

import pytest

CHOICE = Path(__file__).resolve().parent.parent / "scripts" / "torch_choice.py"
WHEEL = "/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
H100 = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-2f1c7a52-9a0e-4d7b-8c11-3f0e5b6d7a10)"
NO_DRIVER = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."


def path_with_nvidia_smi(folder: Path, output: Optional[str], status: int = 0) -> str:
    """A PATH for the system's tools, plus, unless ``output`` is None, an `nvidia-smi` that prints it."""
    if output is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "listing.txt").write_text(output + "\n")
        fake = folder / "nvidia-smi"
        fake.write_text(f"#!/bin/sh\n[ \"$1\" = -L ] || exit 2\ncat '{folder / 'listing.txt'}'\nexit {status}\n")
        fake.chmod(0o755)
    return f"{folder}:/usr/bin:/bin"


def choice(route: str, wheel: str, debian_torch: str, path: str) -> tuple[str, str]:
    done = subprocess.run(["/usr/bin/python3", str(CHOICE), route, wheel, debian_torch, "2.1"],
                          env={"PATH": path, "LANG": "C.UTF-8"}, capture_output=True, text=True, check=True)
    chosen, why = done.stdout.rstrip("\n").split("\t")
    return chosen, why


@pytest.fixture()
def gpu(tmp_path) -> str:
    return path_with_nvidia_smi(tmp_path / "gpu", H100)


@pytest.fixture()
def no_gpu(tmp_path) -> str:
    return path_with_nvidia_smi(tmp_path / "none", None)


def test_a_local_wheel_comes_first(gpu):
    assert choice("auto", WHEEL, "2.6.0", gpu) == ("wheels", f"a local torch wheel for this Python was found ({WHEEL})")


def test_debian_torch_when_new_enough(gpu, no_gpu):
    assert choice("auto", "", "2.6.0", gpu)[0] == "debian"
    assert choice("auto", "", "2.1", no_gpu)[0] == "debian"
    assert choice("auto", "", "1.13.1", no_gpu)[0] == "cpu"  # Debian 12's would be too old


def test_no_gpu_gets_the_cpu_build(no_gpu):
    chosen, why = choice("auto", "", "", no_gpu)
    assert chosen == "cpu"
    assert "no NVIDIA GPU visible" in why and "about 200 MiB" in why and "TREESEG_TORCH=cuda" in why


def test_nvidia_smi_failing_without_a_driver_is_no_gpu(tmp_path):
    path = path_with_nvidia_smi(tmp_path / "broken", NO_DRIVER, status=9)
    assert choice("auto", "", "", path)[0] == "cpu"


def test_an_nvidia_gpu_gets_the_cuda_build(gpu):
    chosen, why = choice("auto", "", "", gpu)
    assert chosen == "cuda"
    assert H100 in why and "about 2.6 GiB" in why and "TREESEG_TORCH=cpu" in why


@pytest.mark.parametrize("route", ["cpu", "cuda", "wheels", "debian"])
def test_treeseg_torch_overrides(route, gpu, no_gpu):
    for path in (gpu, no_gpu):
        assert choice(route, WHEEL, "2.6.0", path) == (route, f"TREESEG_TORCH={route}")
