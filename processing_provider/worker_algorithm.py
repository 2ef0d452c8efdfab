"""What Segment Trees, Fit Cluster Model, Canopy Height and Classify from Examples share: the group, the dependency
check, adding their parameters (declared in parameters.py), reading the ones they share (the input raster, bands,
device, precision, downloads, the encoding settings), the token read in the main thread, and the engine job in the
worker process with its errors as Processing messages."""

from __future__ import annotations

import re
import traceback
from typing import Any, Callable, Iterable, Optional, Tuple

from qgis.core import (
    QgsCoordinateTransform,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsRasterLayer,
    QgsRectangle,
    QgsReferencedRectangle,
)

from ..treeseg_plugin import settings as treeseg_settings
from ..treeseg_plugin.engine.errors import EngineError
from ..treeseg_plugin.engine.jobs.segmentation import DEVICES, PRECISIONS, STRIDES
from ..treeseg_plugin.i18n import tr
from . import parameters as spec
from .dependencies import missing_dependencies
from .parameters import ParameterSpec
from .web_input import LayerInputs, canvas_extent, fetched_band_count, is_file_layer

Extent = Optional[Tuple[float, float, float, float]]


def parse_bands(text: str) -> list[int] | None:
    """Band numbers from "3,2,1" (commas, semicolons or spaces); None when empty; EngineError quoting ``text``
    when they are not numbers."""
    words = [word for word in re.split(r"[,;\s]+", text.strip()) if word]
    if not all(word.isdigit() for word in words):
        raise EngineError(tr("Bands '{text}': give band numbers such as 3,2,1 (or one band), or leave it empty.")
                          .format(text=text))
    return [int(word) for word in words] or None


class WorkerAlgorithm(QgsProcessingAlgorithm):
    """A TreeSeg algorithm that runs an engine job in the worker process (subclasses: the parameters, the job)."""

    INPUT = "INPUT"
    BANDS = "BANDS"
    EXTENT = "EXTENT"
    DEVICE = "DEVICE"
    PRECISION = "PRECISION"
    ALLOW_DOWNLOAD = "ALLOW_DOWNLOAD"

    _token: str | None = None  # read in prepareAlgorithm (main thread), only when downloads are allowed
    tr = staticmethod(tr)  # the plugin's one translation context (treeseg_plugin/i18n.py)
    _canvas: QgsReferencedRectangle | None = None  # the map canvas extent in the desktop, read in prepareAlgorithm

    def group(self) -> str:
        return self.tr("Segmentation")

    def groupId(self) -> str:
        return "segmentation"

    def createInstance(self) -> WorkerAlgorithm:
        return type(self)()

    def canExecute(self) -> tuple[bool, str]:
        problem = missing_dependencies()
        return (not problem, problem)

    def _add_parameters(self, specs: Iterable[ParameterSpec]) -> None:
        """Add the definitions of ``specs`` (from parameters.py), in this order."""
        for parameter in specs:
            self.addParameter(parameter.definition(self.tr))

    def _bands(self, parameters: dict[str, Any], context: QgsProcessingContext) -> list[int] | None:
        """BANDS as band numbers, None when empty: a list from the band picker or a saved model, text such as
        "3,2,1" (qgis_process, a text input) or a list of such texts (the parameter repeated)."""
        value = parameters.get(self.BANDS)
        if isinstance(value, (list, tuple)):
            value = ",".join(f"{item:g}" if isinstance(item, (int, float)) else str(item) for item in value)
        if not isinstance(value, str):  # None, or an expression (QgsProperty) Processing evaluates
            value = self.parameterAsString(parameters, self.BANDS, context)
        return parse_bands(value)

    def _device_arguments(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """The config fields of DEVICE, PRECISION, BANDS and ALLOW_DOWNLOAD."""
        return {
            "bands": self._bands(parameters, context),
            "device": DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
            "precision": PRECISIONS[self.parameterAsEnum(parameters, self.PRECISION, context)],
            "allow_download": self.parameterAsBool(parameters, self.ALLOW_DOWNLOAD, context),
        }

    def _encoding_arguments(self, parameters: dict[str, Any], context: QgsProcessingContext) -> dict[str, Any]:
        """The FitSettings fields of ``spec.ENCODING_SETTINGS``: the model, how the raster is tiled and encoded."""
        def integer(parameter: spec.ParameterSpec) -> int:
            return self.parameterAsInt(parameters, parameter.name, context)

        weights = self.parameterAsFile(parameters, spec.WEIGHTS.name, context)
        name = spec.MODELS[self.parameterAsEnum(parameters, spec.MODEL.name, context)].name
        return {
            **self._device_arguments(parameters, context),
            "model": weights or str(treeseg_settings.weights_in_folder(name) or name),
            "stride": STRIDES[self.parameterAsEnum(parameters, spec.STRIDE.name, context)],
            "tile_size": integer(spec.TILE_SIZE),
            "overlap": integer(spec.OVERLAP),
            "batch_size": integer(spec.BATCH_SIZE),
            "working_resolution": self.parameterAsDouble(parameters, spec.WORKING_RESOLUTION.name, context),
        }

    def _bands_problem(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str:
        """Why BANDS does not fit the INPUT raster ("" when it does or either is not known yet)."""
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        bands = self._bands(parameters, context)
        if layer is None or not bands:
            return ""
        count = fetched_band_count(layer)
        wrong = [band for band in bands if not 1 <= band <= count]
        if not wrong:
            return ""
        return self.tr("Band(s) {wrong} do not exist: the input has bands 1 to {count}. Choose band "
                       "numbers in that range.").format(wrong=wrong, count=count)

    def _input_layer(self, parameters: dict[str, Any], context: QgsProcessingContext) -> QgsRasterLayer:
        """The INPUT raster layer (a file or any provider's); a QgsProcessingException when QGIS cannot open it."""
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException(self.tr("The input orthophoto could not be opened as a raster layer."))
        return layer

    def _extent(self, parameters: dict[str, Any], context: QgsProcessingContext, layer: Any) -> Extent:
        """EXTENT in ``layer``'s CRS as (xmin, ymin, xmax, ymax); None when not given."""
        rect = self._extent_rect(parameters, context, layer)
        return None if rect is None else (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())

    def _extent_rect(self, parameters: dict[str, Any], context: QgsProcessingContext,
                     layer: Any) -> QgsRectangle | None:
        """EXTENT in ``layer``'s CRS; None when not given."""
        if not parameters.get(self.EXTENT):
            return None
        return self.parameterAsExtent(parameters, self.EXTENT, context, layer.crs())

    def _input_source(self, inputs: LayerInputs, layer: QgsRasterLayer, parameters: dict[str, Any],
                      context: QgsProcessingContext, resolution: tuple[float, str]) -> tuple[str, Extent]:
        """The path the worker reads for ``layer`` and the extent it cuts there. A layer that is not a file is
        fetched over EXTENT (when not given, in the desktop, over the map canvas's extent) at ``resolution``
        ((metres, the parameter's name)) into a GeoTIFF of ``inputs``, read whole."""
        if is_file_layer(layer):
            return layer.source(), self._extent(parameters, context, layer)
        rect = self._extent_rect(parameters, context, layer)
        if rect is None and self._canvas is not None:
            transform = QgsCoordinateTransform(self._canvas.crs(), layer.crs(), context.transformContext())
            rect = transform.transformBoundingBox(self._canvas)
            inputs.feedback.pushInfo(self.tr("No extent given: '{layer}' is fetched over the map canvas's "
                                             "extent.").format(layer=layer.name()))
        return inputs.path(layer, rect, *resolution), None

    def prepareAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> bool:
        """Read the Hugging Face token here, in the main thread, where QGIS may ask for its master password, and
        the map canvas extent (the default extent of a web layer) in the desktop."""
        self._token = None
        self._canvas = canvas_extent() if treeseg_settings.is_desktop() else None
        if self.parameterAsBool(parameters, self.ALLOW_DOWNLOAD, context):
            try:
                self._token = treeseg_settings.hf_token(interactive=treeseg_settings.is_desktop())
            except treeseg_settings.TokenError as error:
                raise QgsProcessingException(str(error)) from None
        return True

    def _run_job(self, make_config: Callable[[], Any], feedback: QgsProcessingFeedback) -> Any:
        """The job of ``make_config()`` in the worker process; every failure as a QgsProcessingException."""
        problem = missing_dependencies()
        if problem:
            raise QgsProcessingException(problem)
        from ..treeseg_plugin.worker.client import WorkerBugError, run_job
        from .feedback import FeedbackProgress, unexpected_error

        try:
            config = make_config()
        except (EngineError, ValueError) as error:  # a setting the engine or a parser refuses
            raise QgsProcessingException(str(error)) from None
        try:
            return run_job(config, FeedbackProgress(feedback), keep_for_s=treeseg_settings.kept_worker_seconds())
        except EngineError as error:  # Canceled and WorkerDied included: their messages say what happened
            raise QgsProcessingException(str(error)) from None
        except WorkerBugError as error:  # a bug: one clear line here, the traceback in the TreeSeg message log
            raise QgsProcessingException(unexpected_error(error.type_name, str(error), error.traceback_text,
                                                          self.displayName())) from None
        except Exception as error:
            raise QgsProcessingException(unexpected_error(type(error).__name__, str(error), traceback.format_exc(),
                                                          self.displayName())) from None
