"""The dependency installer's logic with the real pip, offline, against wheels written by the test."""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy
import pytest
from treeseg.treeseg_plugin import dependency_folder, installer, interpreter
from treeseg.treeseg_plugin.engine import SegmentationConfig
from treeseg.treeseg_plugin.worker import client as job


def write_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A pure-Python wheel holding package ``name`` (with ``VERSION``), written as a zip by hand."""
    package = name.replace("-", "_")
    dist_info = f"{package}-{version}.dist-info"
    files = {
        f"{package}/__init__.py": f'VERSION = "{version}"\n',
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {requirement}\n" for requirement in requires),
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: treeseg-tests\nRoot-Is-Purelib: true\n"
                              "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{package}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def plan_for(folder: Path, wheels: Path, packages: tuple[str, ...], pins: dict[str, str] | None = None):
    return installer.InstallPlan(folder, packages, python=sys.executable, find_links=wheels,
                                 pins=installer.constraints() if pins is None else pins)


@pytest.fixture()
def clean_imports(monkeypatch):
    """Restores sys.path and forgets the test packages afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in [module for module in sys.modules if module.startswith("treeseg_dummy")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def test_private_folder_is_keyed_by_python_version_and_platform(tmp_path):
    folder = dependency_folder.deps_folder(tmp_path)
    assert folder.parent == tmp_path / "treeseg-deps"
    assert folder.name.startswith(f"py{sys.version_info.major}{sys.version_info.minor}-")
    assert folder.name == dependency_folder.platform_key()
    assert "-" not in folder.name.split("-", 1)[1] and "." not in folder.name


@pytest.mark.parametrize(("version", "platform", "free_threaded", "key"), [
    ((3, 11), "linux-x86_64", False, "py311-linux_x86_64"),
    ((3, 12), "win-amd64", False, "py312-win_amd64"),
    ((3, 13), "linux-aarch64", False, "py313-linux_aarch64"),
    ((3, 13), "linux-x86_64", True, "py313t-linux_x86_64"),
    ((3, 14), "macosx-11.0-arm64", False, "py314-macosx_11_0_arm64"),
    ((3, 14), "win-arm64", False, "py314-win_arm64"),
])
def test_platform_key_for_each_python_and_platform(version, platform, free_threaded, key):
    assert dependency_folder.platform_key(version, platform, free_threaded) == key


def test_missing_and_too_old_packages_are_reported():
    versions = {"torch": "2.0.1+cpu", "safetensors": None, "huggingface_hub": "0.23.0"}
    problems = installer.find_problems(version_of=versions.get)
    assert [str(problem) for problem in problems] == ["torch 2.0.1+cpu is older than 2.1",
                                                      "safetensors is not installed"]
    assert installer.find_problems() == []  # this environment has everything


def test_scikit_learn_is_not_a_runtime_requirement():
    """The engine has its own k-means: a QGIS without scikit-learn has nothing to install."""
    assert "scikit-learn" not in {requirement.distribution for requirement in installer.REQUIREMENTS}
    versions = {"torch": "2.13.0", "safetensors": "0.8.0", "huggingface_hub": "2.4.0"}
    assert installer.find_problems(version_of=versions.get) == []


def test_version_tuple_reads_release_numbers():
    assert installer.version_tuple("2.13.0+cpu") == (2, 13, 0)
    assert installer.version_tuple("1.7rc1") == (1, 7)
    assert installer.version_tuple("0.23.0.dev0") == (0, 23, 0)


def test_constraints_pin_the_numpy_qgis_uses(tmp_path):
    pins = installer.constraints()
    assert pins["numpy"] == numpy.__version__
    text = installer.write_constraints(tmp_path / "constraints.txt", pins).read_text()
    assert f"numpy=={numpy.__version__}\n" in text
    assert "torch" not in pins


def test_pip_command_line(tmp_path):
    plan = installer.InstallPlan(tmp_path / "deps", python="/usr/bin/python3.11", pins={})
    arguments = installer.pip_arguments(plan, tmp_path / "staging", tmp_path / "c.txt")
    assert arguments[:4] == ["/usr/bin/python3.11", "-m", "pip", "install"]
    assert ["--target", str(tmp_path / "staging")] == arguments[arguments.index("--target"):][:2]
    assert "--only-binary=:all:" in arguments
    assert ["-c", str(tmp_path / "c.txt")] == arguments[arguments.index("-c"):][:2]
    assert arguments[arguments.index("--index-url") + 1] == "https://download.pytorch.org/whl/cpu"
    assert arguments[-3:] == ["torch>=2.1", "safetensors>=0.4", "huggingface_hub>=0.23"]
    cuda = installer.pip_arguments(installer.InstallPlan(tmp_path, build="cuda", python="py", pins={}), tmp_path,
                                   tmp_path / "c.txt")
    assert "https://download.pytorch.org/whl/cu128" in cuda
    local = installer.pip_arguments(plan_for(tmp_path, tmp_path / "wheels", ("x",), {}), tmp_path, tmp_path / "c")
    assert "--no-index" in local and "--index-url" not in local
    with pytest.raises(ValueError, match="Unknown PyTorch build"):
        installer.InstallPlan(tmp_path, build="rocm")


def make_files(root: Path, *relative: str) -> None:
    for path in relative:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("")


def test_interpreter_is_found_when_sys_executable_is_the_qgis_binary(tmp_path):
    make_files(tmp_path, "usr/bin/qgis", "usr/bin/python3", "usr/bin/python3.11")
    bin_folder = tmp_path / "usr" / "bin"
    versions = {str(bin_folder / "python3"): (3, 9), str(bin_folder / "python3.11"): (3, 11)}
    found = interpreter.python_interpreter(str(bin_folder / "qgis"), prefixes=(str(tmp_path / "usr"),),
                                         version=(3, 11), run=versions.get, windows=False)
    assert found == str(bin_folder / "python3.11")
    with pytest.raises(RuntimeError, match=r"No Python 3\.12 interpreter"):
        interpreter.python_interpreter(str(bin_folder / "qgis"), prefixes=(str(tmp_path / "usr"),), version=(3, 12),
                                     run=versions.get, windows=False)
    assert interpreter.python_interpreter() == sys.executable  # a real probe of this venv's python


@pytest.mark.parametrize("minor", [12, 13, 14])
def test_interpreter_in_osgeo4w_next_to_qgis_bin_exe(tmp_path, minor):
    """OSGeo4W / the standalone installers: <root>/bin/qgis-bin.exe and <root>/apps/Python3XY/python.exe."""
    root = tmp_path / "OSGeo4W"
    make_files(root, "bin/qgis-bin.exe", "bin/python3.exe", f"apps/Python3{minor}/python.exe")
    apps_python = str(root / "apps" / f"Python3{minor}" / "python.exe")
    bin_python = str(root / "bin" / "python3.exe")
    qgis_bin = str(root / "bin" / "qgis-bin.exe")

    # sys.prefix is the apps folder; bin/python3.exe is another version: the apps one is chosen.
    versions = {bin_python: (3, 9), apps_python: (3, minor)}
    assert interpreter.python_interpreter(qgis_bin, prefixes=(str(root / "apps" / f"Python3{minor}"),),
                                        version=(3, minor), run=versions.get, windows=True) == apps_python
    # Nothing known about sys.prefix (an embedded interpreter): found from qgis-bin.exe alone.
    assert interpreter.python_interpreter(qgis_bin, prefixes=(), version=(3, minor), run=versions.get,
                                        windows=True) == apps_python
    # bin/python3.exe of the right version comes first: it is the one next to qgis-bin.exe.
    versions[bin_python] = (3, minor)
    assert interpreter.python_interpreter(qgis_bin, prefixes=(), version=(3, minor), run=versions.get,
                                        windows=True) == bin_python
    candidates = interpreter.interpreter_candidates(qgis_bin, (), (3, minor), windows=True)
    assert candidates.index(bin_python) < candidates.index(apps_python)
    assert all(candidate.endswith(".exe") for candidate in candidates)


@pytest.mark.parametrize("layout", ["MacOS/bin/python3", "MacOS/bin/python3.{minor}",
                                    "Frameworks/Python.framework/Versions/3.{minor}/bin/python3.{minor}"])
@pytest.mark.parametrize("minor", [12, 14])
def test_interpreter_in_the_macos_bundle(tmp_path, layout, minor):
    contents = tmp_path / "QGIS.app" / "Contents"
    python = layout.format(minor=minor)
    make_files(contents, "MacOS/QGIS", python)
    found = interpreter.python_interpreter(str(contents / "MacOS" / "QGIS"), prefixes=(), version=(3, minor),
                                         run={str(contents / python): (3, minor)}.get, windows=False)
    assert found == str(contents / python)


def test_interpreter_search_ignores_files_that_do_not_exist(tmp_path):
    seen = []

    def probe(candidate):
        seen.append(candidate)
        return None

    make_files(tmp_path, "bin/qgis-bin.exe")
    with pytest.raises(RuntimeError):
        interpreter.python_interpreter(str(tmp_path / "bin" / "qgis-bin.exe"), prefixes=(str(tmp_path),),
                                     version=(3, 12), run=probe, windows=True)
    assert all(Path(candidate).is_file() for candidate in seen)
    assert not any(str(tmp_path) in candidate for candidate in seen)


def test_install_from_local_wheels_then_load(tmp_path, clean_imports):
    wheels = tmp_path / "wheels"
    write_wheel(wheels, "treeseg-dummy", "1.0")
    folder = dependency_folder.deps_folder(tmp_path / "profile" / "python")
    lines = []
    result = installer.install(plan_for(folder, wheels, ("treeseg-dummy",)), lines.append)

    assert result.ok, "\n".join(lines)
    assert "Successfully installed treeseg-dummy-1.0" in "\n".join(lines)
    assert dependency_folder.is_complete(folder)
    assert not folder.with_name(folder.name + ".partial").exists()
    assert "Restart QGIS" in result.message
    assert dependency_folder.add_to_sys_path(folder)
    assert sys.path[-1] == str(folder)
    assert importlib.import_module("treeseg_dummy").VERSION == "1.0"
    assert dependency_folder.add_to_sys_path(folder) and sys.path.count(str(folder)) == 1


def test_the_private_folder_shadows_nothing_in_qgis_and_comes_first_in_the_worker(tmp_path, clean_imports):
    """In QGIS's process another plugin's copy of a package stays the one imported; the worker process, which
    runs only TreeSeg, imports the private folder's copy, and that is the version reported."""
    folder = dependency_folder.deps_folder(tmp_path / "profile" / "python")
    other_plugin = tmp_path / "other-plugin"
    for target, version in ((folder, "2.0"), (other_plugin, "1.0")):
        write_wheel(tmp_path / version, "treeseg-dummy", version)
        assert installer.install(plan_for(target, tmp_path / version, ("treeseg-dummy",)), lambda line: None).ok
    sys.path.insert(0, str(other_plugin))

    assert dependency_folder.add_to_sys_path(folder)
    assert importlib.import_module("treeseg_dummy").VERSION == "1.0"
    assert installer.installed_version("treeseg-dummy") == "2.0"
    dummy = installer.Requirement("treeseg-dummy", "1.5")  # a reinstall keeps what the worker gets from the folder
    assert installer.packages_to_install(folder, (dummy,)) == ("treeseg-dummy>=1.5",)
    sent = json.loads(job._job_line(SegmentationConfig("in.tif", "out.tif")))["sys_path"]
    assert sent[0] == str(folder) and sent[1:] == [entry for entry in sys.path if entry and entry != str(folder)]
    code = ("import json, sys; from treeseg_plugin.worker.process import extend_sys_path; "
            "extend_sys_path(json.loads(sys.stdin.read())); import treeseg_dummy; print(treeseg_dummy.VERSION)")
    done = subprocess.run([sys.executable, "-c", code], input=json.dumps(sent), env=job.worker_environment(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout.strip() == "2.0", done.stderr


def test_constraints_keep_qgis_numpy(tmp_path, clean_imports):
    """A newer numpy on the index is refused; QGIS's version is used, and its copy is not kept."""
    wheels = tmp_path / "wheels"
    write_wheel(wheels, "treeseg-dummy-needs-numpy", "1.0", requires=("numpy",))
    write_wheel(wheels, "numpy", "99.0")

    unconstrained = tmp_path / "unconstrained"
    assert installer.install(plan_for(unconstrained, wheels, ("treeseg-dummy-needs-numpy",), pins={}),
                             lambda line: None).ok
    assert (unconstrained / "numpy-99.0.dist-info").is_dir()  # what pip does without the constraints

    constrained = tmp_path / "constrained"
    lines = []
    result = installer.install(plan_for(constrained, wheels, ("treeseg-dummy-needs-numpy",)), lines.append)
    assert not result.ok
    assert f"numpy=={numpy.__version__}" in "\n".join(lines)
    assert not constrained.exists()

    write_wheel(wheels, "numpy", numpy.__version__)  # QGIS's version is available: pip takes it
    lines = []
    result = installer.install(plan_for(constrained, wheels, ("treeseg-dummy-needs-numpy",)), lines.append)
    assert result.ok, "\n".join(lines)
    assert f"numpy-{numpy.__version__}" in "\n".join(lines)
    assert f"Kept QGIS's own copies of: numpy=={numpy.__version__}" in lines
    assert not (constrained / "numpy").exists()
    assert not list(constrained.glob("numpy-*.dist-info"))
    assert (constrained / "treeseg_dummy_needs_numpy").is_dir()
    dependency_folder.add_to_sys_path(constrained)
    assert importlib.import_module("numpy") is numpy


def test_pip_failure_is_shown_and_nothing_half_installed_reaches_sys_path(tmp_path, clean_imports):
    wheels = tmp_path / "wheels"
    write_wheel(wheels, "treeseg-dummy", "1.0")
    write_wheel(wheels, "treeseg-dummy-broken", "1.0", requires=("treeseg-not-on-the-index",))
    folder = tmp_path / "deps" / "py"
    path_before = list(sys.path)

    lines = []
    result = installer.install(plan_for(folder, wheels, ("treeseg-dummy-broken",)), lines.append)
    assert not result.ok and result.returncode not in (0, None)
    assert "pip failed (exit code" in result.message and "nothing was installed" in result.message
    assert any("treeseg-not-on-the-index" in line for line in lines)  # pip's own error is in the log
    assert not folder.exists() and not folder.with_name("py.partial").exists()
    assert not dependency_folder.add_to_sys_path(folder)
    assert sys.path == path_before

    assert installer.install(plan_for(folder, wheels, ("treeseg-dummy",)), lambda line: None).ok
    assert not installer.install(plan_for(folder, wheels, ("treeseg-dummy-broken",)), lambda line: None).ok
    assert dependency_folder.is_complete(folder) and (folder / "treeseg_dummy").is_dir()  # the previous install stays


def test_cancel_stops_pip_and_removes_the_staging_folder(tmp_path):
    wheels = tmp_path / "wheels"
    write_wheel(wheels, "treeseg-dummy", "1.0")
    folder = tmp_path / "deps" / "py"
    result = installer.install(plan_for(folder, wheels, ("treeseg-dummy",)), lambda line: None, lambda: True)
    assert not result.ok and result.returncode is None
    assert "canceled" in result.message
    assert not folder.exists() and not folder.with_name("py.partial").exists()


def test_pending_install_is_finished_at_plugin_load(tmp_path, clean_imports):
    folder = tmp_path / "deps" / "py"
    folder.mkdir(parents=True)
    (folder / dependency_folder.COMPLETE_MARKER).write_text("{}")
    (folder / "treeseg_dummy_old").mkdir()
    pending = folder.with_name("py.pending")
    (pending / "treeseg_dummy").mkdir(parents=True)
    (pending / "treeseg_dummy" / "__init__.py").write_text("VERSION = 'pending'\n")
    (pending / dependency_folder.COMPLETE_MARKER).write_text("{}")

    assert dependency_folder.add_to_sys_path(folder)
    assert not pending.exists() and not (folder / "treeseg_dummy_old").exists()
    assert importlib.import_module("treeseg_dummy").VERSION == "pending"


def test_packages_to_install_keeps_what_the_private_folder_provides(tmp_path, monkeypatch):
    folder = tmp_path / "deps"
    dist_info = folder / "safetensors-0.8.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: safetensors\nVersion: 0.8.0\n")
    monkeypatch.setattr(sys, "path", [str(folder), *sys.path])
    versions = {"torch": None, "safetensors": "0.8.0", "huggingface_hub": "2.4.0"}
    assert installer.packages_to_install(folder, version_of=versions.get) == ("torch>=2.1", "safetensors>=0.4")
