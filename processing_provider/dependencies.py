"""Checks that the engine's Python packages are installed, without importing them into QGIS's process.

Importing torch in QGIS would cost seconds and bind its BLAS there for nothing: the engine runs in the
worker process (:mod:`..treeseg_plugin.worker.client`). This check reads the installed distributions'
metadata as the worker will see them (the installer's :func:`~..treeseg_plugin.installer.find_problems`,
the message bar's check too); a package that is installed but broken is named by the worker when it
cannot import it.
"""

from __future__ import annotations

from ..treeseg_plugin import installer
from ..treeseg_plugin.i18n import tr, translatable

INSTALL_HINT = translatable(
    "Install them with TreeSeg's own installer: restart the QGIS desktop and click 'Install...' in the "
    "TreeSeg message bar; it puts them into a folder of the plugin's and keeps QGIS's numpy as it is. "
    "Never replace or upgrade the numpy that QGIS came with. For other routes (Debian's packages, an "
    "offline wheel folder) see the TreeSeg README, section 'Installing the dependencies'."
)


def problem_text(problem: installer.Problem) -> str:
    """"torch is not installed", "numpy 1.21 is older than 1.22", in the user's language."""
    package = problem.requirement.distribution
    if problem.installed is None:
        return tr("{package} is not installed").format(package=package)
    return tr("{package} {installed} is older than {minimum}").format(
        package=package, installed=problem.installed, minimum=problem.requirement.minimum)


def problem_list(problems: list[installer.Problem]) -> str:
    """The problems, separated by semicolons."""
    return "; ".join(problem_text(problem) for problem in problems)


def missing_dependencies() -> str:
    """Empty when every package the engine needs is installed and recent enough; otherwise a message
    naming each problem and the fix."""
    problems = installer.find_problems()
    if not problems:
        return ""
    listed = problem_list(problems)
    problem = tr("TreeSeg cannot run: these Python packages are missing or too old: {listed}.").format(listed=listed)
    return f"{problem} {tr(INSTALL_HINT)}"
