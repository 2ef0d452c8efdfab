"""The QGIS side in French: every user-visible string translatable and translated, the shipped .qm matching its .ts,
the language taken from QGIS's locale setting in qgis_process and in the QGIS window.

The French expected below was written by hand for these tests (what an analyst reads), not read from the .ts."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from data_factory import make_raster
from qgis_process_runner import enable_plugin, qgis_process_env, run, run_algorithm

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "scripts"))
import translations  # noqa: E402  (scripts/ is on the path now)

FRENCH_TS = REPO_ROOT / "i18n" / "treeseg_fr.ts"
PLACEHOLDER = re.compile(r"\{\w*\}")


def profile_settings(home: Path) -> Path:
    """The QGIS3.ini of qgis_process's default profile under ``home``."""
    return home / ".local" / "share" / "QGIS" / "QGIS3" / "profiles" / "default" / "QGIS" / "QGIS3.ini"


def french_env(tmp_path: Path, plugins_dir: Path) -> dict[str, str]:
    """qgis_process with the plugin enabled and Options > General > Override system locale set to French."""
    home = tmp_path / "home"
    env = qgis_process_env(home, plugins_dir)
    enable_plugin("treeseg", env)
    with profile_settings(home).open("a", encoding="utf-8") as settings:
        settings.write("\n[locale]\noverrideFlag=true\nuserLocale=fr_FR\n")
    return env


def test_every_user_visible_string_on_the_qgis_side_is_translatable():
    """Menus, dialogs, message bars, Processing labels, help and errors go through tr(): a literal shown as it is,
    or text formatted before tr() (which then never matches a translation), is listed here with its place."""
    _, problems = translations.scan(translations.qgis_side_files())
    assert [str(problem) for problem in problems] == []


def test_the_scan_finds_strings_that_bypass_tr(tmp_path):
    """Planted: each kind of sink with a bare literal is found (at its line); the same calls through tr() are not."""
    module = tmp_path / "planted.py"
    module.write_text('\n'.join([
        "from qgis.core import QgsProcessingException, QgsProcessingParameterNumber",  # 1
        "class Planted(QgsProcessingAlgorithm):",                                      # 2
        "    def displayName(self):",                                                  # 3
        "        return 'Planted Trees'",                                              # 4
        "    def initAlgorithm(self, config=None):",                                   # 5
        "        self.addParameter(QgsProcessingParameterNumber('N', 'Number of trees'))",  # 6
        "        raise QgsProcessingException(f'No trees in {config}')",               # 7
        "    def run(self, feedback, bar, label):",                                    # 8
        "        feedback.reportError('The run failed')",                              # 9
        "        bar.pushMessage('TreeSeg', 'Done ' + str(3))",                        # 10
        "        label.setText(self.tr(f'{3} trees'))",                                # 11
        "        QAction(QIcon(), 'Plant…', None)",                                    # 12
        "        self.addParameter(QgsProcessingParameterNumber('N', self.tr('Number of trees')))",
        "        feedback.reportError(self.tr('The run failed: {why}').format(why=3))",
        "        bar.pushMessage('TreeSeg', self.tr('Done'))",
        "        label.setText(f'{self.tr(\"Trees\")}: 3')",
    ]))
    messages, problems = translations.scan([module], tmp_path)
    assert [problem.line for problem in problems] == [4, 6, 7, 9, 10, 11, 12]
    assert {message.source for message in messages} == {"Number of trees", "The run failed: {why}", "Done", "Trees"}


def test_contexts_follow_each_tr_definition(tmp_path):
    """A module with its own per-class context (as another contributor may write it) is extracted in that context,
    a Qt class's self.tr() in its class name's (PyQt's QObject.tr); the plugin's tr() and the data markers in the
    plugin's one context."""
    module = tmp_path / "contexts.py"
    module.write_text('\n'.join([
        "class Mine(Base):",
        "    def tr(self, text):",
        "        return QCoreApplication.translate('MineAlgorithm', text)",
        "    def name(self):",
        "        return self.tr('Mine')",
        "class Child(Mine):",
        "    def group(self):",
        "        return self.tr('Child group')",
        "HELP = translatable('Some help')",
        "LABEL = tr('Plain')",
        "OTHER = QCoreApplication.translate('Elsewhere', 'Explicit')",
        "class Dialog(QDialog):",
        "    def title(self):",
        "        return self.tr('Title'), tr('Module tr')",
        "class Algorithm(QgsProcessingAlgorithm):",
        "    tr = staticmethod(tr)",
        "    def displayName(self):",
        "        return self.tr('Algorithm')",
    ]))
    messages, _ = translations.scan([module], tmp_path)
    assert {(message.context, message.source) for message in messages} == {
        ("MineAlgorithm", "Mine"), ("MineAlgorithm", "Child group"), ("TreeSeg", "Some help"),
        ("TreeSeg", "Plain"), ("Elsewhere", "Explicit"), ("Dialog", "Title"), ("TreeSeg", "Module tr"),
        ("TreeSeg", "Algorithm")}


def test_the_extractor_and_the_plugin_share_one_context():
    from treeseg.treeseg_plugin.i18n import CONTEXT

    assert translations.DEFAULT_CONTEXT == CONTEXT


def test_every_translatable_string_has_a_french_translation_with_its_placeholders():
    """scripts/translations.py update adds a new string unfinished: until it is translated this fails."""
    messages, _ = translations.scan(translations.qgis_side_files())
    french = translations.read_ts(FRENCH_TS)
    wanted = translations.unique_messages(messages)
    missing = [f"[{context}] {source[:80]!r}" for context, source in wanted if (context, source) not in french]
    assert missing == []
    for (_, source), text in french.items():
        assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(source)), source
    assert len(wanted) > 200


def test_the_shipped_qm_holds_every_translation_of_the_ts():
    """i18n/treeseg_fr.qm is compiled from the .ts as it is now (re-run scripts/translations.py compile)."""
    from qgis.PyQt.QtCore import QTranslator

    translator = QTranslator()
    assert translator.load(str(FRENCH_TS.with_suffix(".qm")))
    stale = [source[:80] for (context, source), text in translations.read_ts(FRENCH_TS).items()
             if translator.translate(context.encode(), source.encode()) != text]  # UTF-8, as QCoreApplication's
    assert stale == []


def test_lrelease_compiles_the_ts(tmp_path):
    """CI can build the .qm (apt: qttools5-dev-tools), and what it builds translates."""
    from qgis.PyQt.QtCore import QTranslator

    translations.compile_ts(FRENCH_TS, tmp_path / "treeseg_fr.qm")
    translator = QTranslator()
    assert translator.load("treeseg_fr_FR", str(tmp_path))  # the locale's fallback to the language, as the plugin
    assert translator.translate("TreeSeg", "Segment Trees") == "Segmenter les arbres"


@pytest.mark.slow
def test_qgis_process_help_reads_in_french_with_the_french_locale(tmp_path, plugins_dir):
    done = run(["help", "treeseg:segmenttrees"], french_env(tmp_path, plugins_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("Segmenter les arbres (treeseg:segmenttrees)")
    for expected in ("INPUT: Orthophoto", "WORKING_RESOLUTION: Résolution de travail",
                     "CROWNS: Houppiers", "OUTPUT: Étiquettes de segmentation des arbres",
                     "Segmente une orthophoto en K classes", "CHOSEN_K: <outputNumber>\n\tNombre de classes retenu"):
        assert expected in done.stdout, expected
    assert "Segment Trees" not in done.stdout


@pytest.mark.slow
def test_qgis_process_follows_the_system_locale_when_qgis_does_not_override_it(tmp_path, plugins_dir):
    env = qgis_process_env(tmp_path / "home", plugins_dir)
    enable_plugin("treeseg", env)
    french = run(["help", "treeseg:canopyheight"], {**env, "LC_ALL": "fr_FR.UTF-8", "LANG": "fr_FR.UTF-8"})
    assert french.stdout.startswith("Hauteur de canopée (treeseg:canopyheight)"), french.stdout[:200]
    german = run(["help", "treeseg:canopyheight"], {**env, "LC_ALL": "de_DE.UTF-8", "LANG": "de_DE.UTF-8"})
    assert german.stdout.startswith("Canopy Height (treeseg:canopyheight)")  # no German translation: English


@pytest.mark.slow
def test_a_run_refused_on_the_qgis_side_says_why_in_french(tmp_path, plugins_dir):
    """Band 5 of a 3-band raster: the dialog's check refuses it before any worker starts, in French."""
    raster = make_raster(tmp_path / "three_bands.tif", 32, 32, bands=3)
    done, _ = run_algorithm("treeseg:segmenttrees", {"INPUT": raster, "BANDS": "5,2,1",
                                                    "OUTPUT": tmp_path / "labels.tif"},
                            french_env(tmp_path, plugins_dir))
    assert done.returncode != 0
    assert "La ou les bandes [5] n'existent pas : l'entrée a les bandes 1 à 3." in done.stdout + done.stderr
    assert not (tmp_path / "labels.tif").exists()


@pytest.fixture()
def french_qgis():
    """QGIS's locale setting overridden to French and the plugin built as QGIS builds it (its translator installed);
    afterwards English again."""
    from qgis.core import QgsSettings
    from treeseg import classFactory
    from treeseg.treeseg_plugin.i18n import uninstall_translators

    settings = QgsSettings()
    settings.setValue("locale/overrideFlag", True)
    settings.setValue("locale/userLocale", "fr_FR")
    classFactory(None)
    yield
    uninstall_translators()
    settings.remove("locale/overrideFlag")
    settings.remove("locale/userLocale")


def test_the_segment_trees_dialog_shows_french_labels(french_qgis, treeseg_provider, processing_iface):
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    from qgis.core import QgsApplication
    from qgis.PyQt import sip
    from qgis.PyQt.QtWidgets import QLabel

    dialog = AlgorithmDialog(QgsApplication.processingRegistry().createAlgorithmById("treeseg:segmenttrees"),
                             parent=processing_iface.mainWindow())
    try:
        labels = {label.text() for label in dialog.findChildren(QLabel)}
        assert dialog.windowTitle().endswith("Segmenter les arbres")  # QGIS 3.44: "Segmentation - Segmenter ..."
        for expected in ("Orthophoto", "Résolution de travail (m par pixel, 0 = celle de l'entrée)",
                         "Modèle DINOv3", "Raster de hauteur de canopée (m) [optional]"):
            assert any(label.startswith(expected) for label in labels), (expected, sorted(labels))
        assert not any("Working resolution" in label for label in labels)
    finally:
        sip.delete(dialog)


def test_the_user_locale_counts_only_while_qgis_overrides_the_system_locale():
    from qgis.core import QgsSettings
    from qgis.PyQt.QtCore import QLocale
    from treeseg.treeseg_plugin.i18n import qgis_locale

    system = QLocale.system().name()
    assert system != "fr_FR"  # the test environment's locale; the user locale below must differ from it
    settings = QgsSettings()
    settings.setValue("locale/userLocale", "fr_FR")  # QGIS writes it when Options are saved, override or not
    try:
        settings.remove("locale/overrideFlag")  # never set: the system's locale
        assert qgis_locale() == system
        settings.setValue("locale/overrideFlag", False)
        assert qgis_locale() == system
        settings.setValue("locale/overrideFlag", True)
        assert qgis_locale() == "fr_FR"
    finally:
        settings.remove("locale/overrideFlag")
        settings.remove("locale/userLocale")


def test_without_a_translation_for_the_locale_the_plugin_stays_english(treeseg_provider):
    from qgis.core import QgsApplication, QgsSettings
    from treeseg.treeseg_plugin.i18n import install_translator

    settings = QgsSettings()
    settings.setValue("locale/overrideFlag", True)
    settings.setValue("locale/userLocale", "de_DE")
    try:
        assert install_translator() is None
        algorithm = QgsApplication.processingRegistry().createAlgorithmById("treeseg:segmenttrees")
        assert algorithm.displayName() == "Segment Trees"
        assert algorithm.parameterDefinition("INPUT").description() == "Orthophoto"
    finally:
        settings.remove("locale/overrideFlag")
        settings.remove("locale/userLocale")


def test_the_getting_started_dialog_reads_in_french(french_qgis, tmp_path):
    """A fresh QGIS with an NVIDIA GPU: nothing installed, no weights; every state, its fix and the buttons in
    French, the placeholders filled in the French order."""
    from qgis.PyQt.QtGui import QTextDocument
    from qt_events import wait_until
    from treeseg.treeseg_plugin import installer, readiness
    from treeseg.treeseg_plugin.gui.getting_started_dialog import GettingStartedDialog

    def shown(label) -> str:  # what the rich-text label reads
        document = QTextDocument()
        document.setHtml(label.text())
        return document.toPlainText()

    torch = next(requirement for requirement in installer.REQUIREMENTS if requirement.distribution == "torch")
    state = readiness.Readiness((installer.Problem(torch, None),), str(tmp_path), (), {},
                                ("GPU 0: NVIDIA H100 80GB HBM3",))
    dialog = GettingStartedDialog(None, lambda packages=(): None, lambda: None, lambda: None, check=lambda: state)
    assert dialog.packages.text() == "Vérification…"
    wait_until(lambda: dialog.task is None)
    assert dialog.windowTitle() == "TreeSeg – Prise en main"
    assert shown(dialog.packages) == ("Absent : torch n'est pas installé. Cliquez sur Installer… : pip les installe "
                                      "dans le dossier propre à TreeSeg (le numpy de QGIS reste tel quel), puis "
                                      "redémarrez QGIS.")
    assert shown(dialog.weights) == (f"Absent : aucun poids DINOv3 dans le dossier des poids ({tmp_path}) ni dans "
                                     "les caches Hugging Face et torch hub.")
    assert shown(dialog.device) == (
        "Absent : PyTorch n'est pas encore installé (étape 1). Un GPU NVIDIA a été trouvé (GPU 0: NVIDIA H100 80GB "
        "HBM3). Installer… sélectionne la version CUDA de PyTorch.")
    assert {dialog.install_button.text(), dialog.add_file_button.text(), dialog.cuda_button.text()} == {
        "Installer…", "Ajouter un fichier…", "Installer la version CUDA…"}


def test_classify_from_examples_reads_in_french_with_the_shared_parameters(french_qgis, treeseg_provider):
    """Its own strings and the parameters it shares with Segment Trees are translated in the plugin's one context;
    the help's placeholder is filled after the lookup."""
    from qgis.core import QgsApplication

    algorithm = QgsApplication.processingRegistry().createAlgorithmById("treeseg:classifyexamples")
    assert algorithm.displayName() == "Classer à partir d'exemples"
    assert algorithm.parameterDefinition("DEVICE").description() == "Périphérique de calcul"  # shared
    assert algorithm.parameterDefinition("EXAMPLES").description() == "Exemples (polygones ou points)"
    assert algorithm.parameterDefinition("CLASSIFIER").help().startswith(
        "Un fichier .tscc enregistré par un traitement antérieur")
    assert "<h3>Comment dessiner les exemples</h3>" in algorithm.shortHelpString()


def test_a_web_layer_without_an_extent_is_refused_in_french(french_qgis):
    """An error raised on the QGIS side before anything is fetched (web_input.py), the layer and the fix filled in
    after the lookup; the dialog's resolution note too."""
    from qgis.core import QgsRasterLayer
    from treeseg.processing_provider.resolution_widget import layer_note
    from treeseg.processing_provider.web_input import fetch_grid
    from treeseg.treeseg_plugin.engine.errors import EngineError

    layer = QgsRasterLayer("type=xyz&url=http://127.0.0.1:9/%7Bz%7D/%7Bx%7D/%7By%7D.png", "fond", "wms")
    assert layer.isValid()
    with pytest.raises(EngineError) as refused:
        fetch_grid(layer, None, 0.1, "WORKING_RESOLUTION")
    assert str(refused.value).startswith("La couche « fond » (fournisseur « wms ») n'a pas d'emprise propre : "
                                         "indiquez l'emprise (EXTENT) à récupérer")
    assert layer_note(layer) == "entrée : une couche web, sans taille de pixel propre (indiquez-en une)"


SUMMARY_STATS = {"chosen_k": 4, "device": "cpu", "cluster_percent": {"1": 20.1, "2": 18.1, "3": 61.8},
                 "cluster_area": {"1": {"hectares": 0.2}, "2": {"hectares": 0.21}, "3": {"hectares": 0.6}},
                 "trees": {"tree_labels": [1, 2], "crowns": 57}}


def test_the_run_summary_writes_numbers_as_english_does_without_a_translation():
    from treeseg.processing_provider.run_summary import summary_text

    assert summary_text(SUMMARY_STATS, 1234.4) == "K = 4; trees 38.2 % (0.41 ha); 57 crowns; cpu; 1,234 s"


def test_numbers_read_in_french_in_the_run_summary_and_a_web_layers_refusal(french_qgis):
    """A decimal comma and thousands grouped by a space, as French writes them (20.1 + 18.1 = 38,2 %; 0.2 + 0.21 ha =
    0,41 ha), on the message bar's summary and in a web layer's size refusal."""
    from qgis.core import QgsRasterLayer, QgsRectangle
    from treeseg.processing_provider.run_summary import summary_text
    from treeseg.processing_provider.web_input import fetch_grid
    from treeseg.treeseg_plugin.engine.errors import EngineError

    summary = summary_text(SUMMARY_STATS, 1234.4)
    assert re.fullmatch(r"K = 4; arbres 38,2 % \(0,41 ha\); 57 houppiers; cpu; 1\s234 s", summary), summary
    layer = QgsRasterLayer("type=xyz&url=http://127.0.0.1:9/%7Bz%7D/%7Bx%7D/%7By%7D.png", "fond", "wms")
    with pytest.raises(EngineError) as refused:  # 20 km x 20 km of Web Mercator at 0.1 m: far over the cap
        fetch_grid(layer, QgsRectangle(0, 5_000_000, 20_000, 5_020_000), 0.1, "WORKING_RESOLUTION")
    message = str(refused.value)
    sizes = re.search(r" (\d{1,3}(?:\s\d{3})+) x (\d{1,3}(?:\s\d{3})+) = (\d{1,3}(?:\s\d{3})+) px", message)
    assert sizes, message
    width, height, pixels = (int(re.sub(r"\s", "", sizes.group(index))) for index in (1, 2, 3))
    assert pixels == width * height > 100_000_000
    assert not re.search(r"\d,\d{3}", message)  # no English thousands separator left
