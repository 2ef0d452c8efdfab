"""Translations of the QGIS side: one Qt context for the plugin, the translator chosen from QGIS's locale setting,
and the marker of strings declared as data (help texts, parameter labels) that are translated where they are shown.

One context ("TreeSeg") and not one per class: the Processing parameters are declared once (parameters.py) and
shared by several algorithms, so their labels and help must have one translation each, whichever algorithm shows
them. ``scripts/translations.py`` extracts the strings into ``i18n/treeseg_<lang>.ts`` (docs/translations.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from qgis.core import QgsSettings
from qgis.PyQt.QtCore import QCoreApplication, QLocale, QTranslator

CONTEXT = "TreeSeg"
I18N_DIR = Path(__file__).resolve().parent.parent / "i18n"
"""The compiled translations, ``treeseg_<locale>.qm``, shipped in the plugin zip."""

_installed: list[QTranslator] = []  # kept alive here: Qt does not own an installed translator


def tr(text: str) -> str:
    """``text`` in the user's language when a translation of it is installed, else as it is."""
    return QCoreApplication.translate(CONTEXT, text)


def translatable(text: str) -> str:
    """Marks a literal for the extractor and returns it unchanged; :func:`tr` translates it where it is shown."""
    return text


def format_number(value: float, spec: str = ",.0f") -> str:
    """``value`` formatted by ``spec`` (Python's format mini-language: ",.1f", ".3g", ","), written with the decimal
    point and thousands separator of QGIS's language: "38,2" and "100 000 000" in French. Python rounds, so the
    digits are the same in every language."""
    locale = QLocale(qgis_locale())
    return format(value, spec).translate({ord(","): locale.groupSeparator(), ord("."): locale.decimalPoint()})


def qgis_locale() -> str:
    """The locale QGIS shows its interface in: ``locale/userLocale`` when ``locale/overrideFlag`` is set (Options >
    General > Override system locale), else the system's ("fr_FR")."""
    settings = QgsSettings()
    if settings.value("locale/overrideFlag", False, type=bool):
        user_locale = settings.value("locale/userLocale", "", type=str)
        if user_locale:
            return user_locale
    return QLocale.system().name()


def install_translator(folder: Path = I18N_DIR) -> Optional[Path]:
    """Install the translation for :func:`qgis_locale` once per process (treeseg_fr_FR.qm, else treeseg_fr.qm);
    the file installed, or None when there is none for that language (then English stays)."""
    locale = qgis_locale()
    for translator in _installed:
        if translator.property("treeseg_locale") == locale:
            return Path(translator.filePath())
    translator = QTranslator()
    if not translator.load(f"treeseg_{locale}", str(folder)):
        return None
    translator.setProperty("treeseg_locale", locale)
    QCoreApplication.installTranslator(translator)
    _installed.append(translator)
    return Path(translator.filePath())


def uninstall_translators() -> None:
    """Remove what :func:`install_translator` installed (the plugin is unloaded)."""
    while _installed:
        QCoreApplication.removeTranslator(_installed.pop())
