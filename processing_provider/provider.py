"""The ``treeseg`` Processing provider."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsApplication, QgsProcessingModelAlgorithm, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ..treeseg_plugin import installer
from ..treeseg_plugin.i18n import tr
from ..treeseg_plugin.version import help_url, plugin_version
from .canopy_height import CanopyHeightAlgorithm
from .classify_examples import ClassifyExamplesAlgorithm
from .diagnostics import DiagnosticsAlgorithm
from .fit_cluster_model import FitClusterModelAlgorithm
from .segment_trees import SegmentTreesAlgorithm

PLUGIN_DIR = Path(__file__).resolve().parent.parent
MODELS_DIR = Path(__file__).resolve().parent / "models"
"""The graphical models shipped with the plugin (``.model3``, editable in QGIS's Model Designer)."""


class TreeSegProvider(QgsProcessingProvider):
    """Provides Segment Trees, Fit Cluster Model, Canopy Height, Classify from Examples, Diagnostics and the models
    in ``MODELS_DIR`` (Tree Inventory); registers even when PyTorch is missing."""

    ID = "treeseg"
    tr = staticmethod(tr)  # the plugin's one translation context (treeseg_plugin/i18n.py)

    def id(self) -> str:
        return self.ID

    def name(self) -> str:
        return self.tr("Tree segmentation")

    def longName(self) -> str:
        return self.tr("Tree segmentation (DINOv3 + k-means)")

    def icon(self) -> QIcon:
        return QIcon(str(PLUGIN_DIR / "icon.svg"))

    def svgIconPath(self) -> str:
        return str(PLUGIN_DIR / "icon.svg")

    def versionInfo(self) -> str:
        """Plugin version plus the torch build the worker will import ("2.13.0+cpu", "2.6.0+cu128"), read from
        its metadata: importing torch here would cost QGIS seconds (the run log names the device)."""
        info = f"TreeSeg {plugin_version()}"
        torch_version = installer.installed_version("torch")
        if torch_version is None:
            return self.tr("{info}; PyTorch not installed").format(info=info)
        return f"{info}; torch {torch_version}"

    def supportedOutputRasterLayerExtensions(self) -> list[str]:
        """The label raster is always a GeoTIFF: QGIS offers only .tif and names temporary outputs .tif."""
        return ["tif"]

    def supportedOutputVectorLayerExtensions(self) -> list[str]:
        """The formats the engine writes cluster polygons in (OGR drivers GPKG, ESRI Shapefile, GeoJSON)."""
        return ["gpkg", "shp", "geojson"]

    def supportsNonFileBasedOutput(self) -> bool:
        """Outputs are files written by GDAL/OGR: no memory layers or database tables."""
        return False

    def loadAlgorithms(self) -> None:
        self.addAlgorithm(SegmentTreesAlgorithm())
        self.addAlgorithm(FitClusterModelAlgorithm())
        self.addAlgorithm(CanopyHeightAlgorithm())
        self.addAlgorithm(ClassifyExamplesAlgorithm())
        self.addAlgorithm(DiagnosticsAlgorithm())
        for path in sorted(MODELS_DIR.glob("*.model3")):
            model = QgsProcessingModelAlgorithm()
            if model.fromFile(str(path)):  # help link: the README section on metadata.txt's homepage, as elsewhere
                section = path.stem.replace("_", "-") + "-model"
                model.setHelpContent({**model.helpContent(), "HELP_URL": help_url(section)})
                self.addAlgorithm(model)
        registry = QgsApplication.processingRegistry()
        if registry.providerById(self.ID) is self:
            self._attach_model_steps()
        else:  # first load: the registry lists this provider only after loadAlgorithms
            registry.providerAdded.connect(self._provider_added)

    def _provider_added(self, provider_id: str) -> None:
        if provider_id == self.ID:
            QgsApplication.processingRegistry().providerAdded.disconnect(self._provider_added)
            self._attach_model_steps()

    def _attach_model_steps(self) -> None:
        """Point each model step at its algorithm and declare the model's outputs from them (a model read while this
        provider loads finds none of its own algorithms in the registry yet: no outputs, "not available")."""
        for model in self.algorithms():
            if isinstance(model, QgsProcessingModelAlgorithm):
                for step_id in model.childAlgorithms():
                    model.childAlgorithm(step_id).reattach()
                model.updateDestinationParameters()
