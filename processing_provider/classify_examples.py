"""Classify from Examples: the analyst's example features (any layer, memory layers too) copied to a temporary
GeoPackage for the worker, the engine's "classify" job, its class raster, confidence, polygons, trees and crowns
loaded and styled like Segment Trees' outputs."""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeatureSource,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..treeseg_plugin.engine.errors import EngineError
from ..treeseg_plugin.engine.jobs.classify import ClassifyConfig, validate_classify_config
from ..treeseg_plugin.i18n import tr, translatable
from ..treeseg_plugin.version import help_url
from . import parameters as spec
from .web_input import LayerInputs
from .worker_algorithm import WorkerAlgorithm

CLASSIFY_PARAMETERS = (
    spec.orthophoto("The orthophoto to classify: any GDAL raster (GeoTIFF, VRT, JPEG2000...) or any QGIS raster layer "
                    "(XYZ, WMS, WMTS, WCS...: fetched over the extent at the working resolution)."),
    spec.WORKING_RESOLUTION,
    spec.bands("Three bands in red, green, blue order. Empty: the first three bands, or the single band repeated for "
               "a one-band raster."),
    spec.EXTENT, spec.EXAMPLES, spec.CLASS_FIELD, spec.CROSS_VALIDATION, spec.CLASSIFIER, spec.TREE_CLASSES,
    *spec.ENCODING_SETTINGS, spec.REGULARISATION, spec.MIN_CROWN_AREA, spec.CLASSES, spec.CONFIDENCE,
    spec.CLASS_POLYGONS, spec.CLASS_TREES, spec.CLASS_CROWNS, spec.CLASS_STATISTICS, spec.CLASSIFIER_OUTPUT)
"""Classify from Examples' parameters in dialog order (declared in parameters.py)."""

_HELP_SOURCE = translatable("""<p>Classifies an orthophoto into the classes you show it with a few examples
(conifers and broadleaves, live and dead crowns, trees, hedges and lawn...). A linear classifier (multinomial
logistic regression, L2-regularised, classes weighted equally) is fitted on the DINOv3 patch features under
the examples and applied to every patch; no training of the network, no scikit-learn.</p>

<h3>How to draw examples</h3>
<ol>
<li><i>Layer > Create Layer > New Temporary Scratch Layer</i>: geometry type Polygon (or Point), any CRS, and
a text field named <i>class</i>.</li>
<li>Toggle editing and draw polygons inside areas that are clearly one class (not across its borders); type
each polygon's class name. Draw at least 3 polygons per class, spread over the image, with roughly as much area
per class. Points take the patch under each point.</li>
<li>Choose the layer as <i>Examples</i> and <i>class</i> as <i>Class field</i>. Tick <i>Selected features
only</i> to fit on a selection.</li>
</ol>

<h3>Accuracy</h3>
<p>With <i>Cross-validate by example</i>, whole example features are left out in turn (grouped k-fold when
there are many) and predicted by a classifier fitted on the others, never single pixels, whose neighbours would
inflate the score. The log and the statistics report give the overall accuracy, per-class precision, recall
and F1, the confusion matrix and the examples per class, with a warning when a class has fewer than 3 examples
or the classes are far from balanced. ACCURACY returns the overall accuracy in percent.</p>

<h3>Outputs</h3>
<p><i>Classes</i>: a Byte GeoTIFF on the input's grid, class numbers 1..N (0 = NoData), paletted with the class
names. With a single class it holds the similarity to the examples instead (0-100: find more like these).
<i>Confidence</i>: the winning class's probability (0-100). Optional: class polygons, and with <i>Tree
classes</i> the tree canopy mask and the tree crowns, the statistics report (.json, .csv or .html).</p>

<h3>Fit once, apply everywhere</h3>
<p><i>Classifier (save)</i> keeps the fitted classifier in a .tscc file (no pickle); <i>Classifier (apply)</i>
classifies another raster with it, without examples (in batch, in a model, or with the batch command). A
classifier from other weights, another patch stride or other bands is refused before encoding.</p>
""")


class ClassifyExamplesAlgorithm(WorkerAlgorithm):
    """treeseg:classifyexamples: a linear classifier on DINOv3 features, fitted on drawn examples or applied."""

    EXAMPLES = "EXAMPLES"
    CLASS_FIELD = "CLASS_FIELD"
    TREE_CLASSES = "TREE_CLASSES"
    CLASSIFIER = "CLASSIFIER"
    CROSS_VALIDATION = "CROSS_VALIDATION"
    REGULARISATION = "REGULARISATION"
    MIN_CROWN_AREA = "MIN_CROWN_AREA"
    OUTPUT = "OUTPUT"
    CONFIDENCE = "CONFIDENCE"
    POLYGONS = "POLYGONS"
    TREES = "TREES"
    CROWNS = "CROWNS"
    STATISTICS = "STATISTICS"
    CLASSIFIER_OUTPUT = "CLASSIFIER_OUTPUT"
    ACCURACY = "ACCURACY"

    _outputs: dict[str, Any] | None = None
    _result: Any = None
    _seconds = 0.0
    _input_path = ""

    def name(self) -> str:
        return "classifyexamples"

    def displayName(self) -> str:
        return self.tr("Classify from Examples")

    def tags(self) -> list[str]:
        return self.tr("classify,classification,supervised,examples,training,dinov3,logistic regression,"
                       "similarity,trees,species,orthophoto").split(",")

    def shortHelpString(self) -> str:
        return " ".join(self.tr(_HELP_SOURCE).split())  # QGIS turns line breaks into paragraph breaks

    def helpUrl(self) -> str:
        return help_url("classify-from-examples")

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self._add_parameters(CLASSIFY_PARAMETERS)
        self.addOutput(QgsProcessingOutputNumber(self.ACCURACY, self.tr("Cross-validated accuracy (%)")))

    def checkParameterValues(self, parameters: dict[str, Any], context: QgsProcessingContext) -> tuple[bool, str]:
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        problem = self._bands_problem(parameters, context) or self._examples_problem(parameters, context)
        if problem:
            return False, problem
        try:  # the engine's own rules, in its words (the examples are read when the run starts)
            examples = "examples.gpkg" if self._examples(parameters, context) is not None else None
            validate_classify_config(self._config(parameters, context, examples))
        except (EngineError, QgsProcessingException) as error:
            return False, str(error)
        return True, ""

    def _examples(self, parameters: dict[str, Any], context: QgsProcessingContext) -> QgsFeatureSource | None:
        return self.parameterAsSource(parameters, self.EXAMPLES, context) if parameters.get(self.EXAMPLES) else None

    def _examples_problem(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str:
        """Why EXAMPLES or CLASS_FIELD cannot be examples ("" when they can, or are not given): lines, or a class
        field that is not the layer's."""
        source = self._examples(parameters, context)
        if source is None:
            return ""
        if QgsWkbTypes.wkbDimensions(source.wkbType()) == 1:
            return self.tr("The examples layer '{layer}' holds lines. Classify from Examples takes polygons (the "
                           "patches under them) or points (the patch under each): choose such a layer.").format(
                               layer=source.sourceName())
        name = self.parameterAsString(parameters, self.CLASS_FIELD, context)
        if not name or source.fields().lookupField(name) >= 0:
            return ""
        return self.tr("The examples have no field '{field}' (their fields: {fields}). Choose the field that names "
                       "each example's class.").format(field=name, fields=", ".join(source.fields().names()))

    def processAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        started = time.monotonic()
        source = self._examples(parameters, context)
        with tempfile.TemporaryDirectory(prefix="treeseg-examples-") as folder:
            examples = None
            if source is not None:
                examples = os.path.join(folder, "examples.gpkg")
                write_examples(source, self.parameterAsString(parameters, self.CLASS_FIELD, context), examples)
            with LayerInputs(feedback) as inputs:
                result = self._run_job(lambda: self._config(parameters, context, examples, inputs), feedback)
        self._result, self._seconds = result, time.monotonic() - started
        accuracy = (result.accuracy or {}).get("overall_accuracy")
        self._outputs = {
            self.OUTPUT: result.output_path,
            self.CONFIDENCE: result.confidence_path,
            self.POLYGONS: result.polygons_path,
            self.TREES: result.trees_path,
            self.CROWNS: result.crowns_path,
            self.STATISTICS: result.stats_path,
            self.CLASSIFIER_OUTPUT: result.classifier_path,
            self.ACCURACY: None if accuracy is None else 100.0 * accuracy,
        }
        return self._outputs

    def _config(self, parameters: dict[str, Any], context: QgsProcessingContext, examples: str | None,
                inputs: LayerInputs | None = None) -> ClassifyConfig:
        """The job: Processing parameters as ClassifyConfig fields, the examples copied to ``examples``; a layer
        that is not a file fetched by ``inputs`` (None: the check before the run, which fetches nothing)."""
        layer = self._input_layer(parameters, context)
        encoding = self._encoding_arguments(parameters, context)
        if inputs is None:
            input_path, extent = layer.source(), self._extent(parameters, context, layer)
        else:
            input_path, extent = self._input_source(inputs, layer, parameters, context,
                                                    (encoding["working_resolution"], spec.WORKING_RESOLUTION.name))
        self._input_path = input_path

        def output(name: str) -> str | None:
            return self.parameterAsOutputLayer(parameters, name, context) or None

        def file_output(name: str) -> str | None:
            return self.parameterAsFileOutput(parameters, name, context) or None

        return ClassifyConfig(
            input_path=input_path, output_path=self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
            extent=extent, examples_path=examples,
            class_field=self.parameterAsString(parameters, self.CLASS_FIELD, context) or None,
            classifier=self.parameterAsFile(parameters, self.CLASSIFIER, context) or None,
            classifier_output=file_output(self.CLASSIFIER_OUTPUT), confidence_path=output(self.CONFIDENCE),
            polygons_path=output(self.POLYGONS), stats_path=file_output(self.STATISTICS),
            tree_classes=parse_tree_classes(self.parameterAsString(parameters, self.TREE_CLASSES, context)),
            trees_path=output(self.TREES), crowns_path=output(self.CROWNS),
            min_crown_area=self.parameterAsDouble(parameters, self.MIN_CROWN_AREA, context),
            cross_validation=self.parameterAsBool(parameters, self.CROSS_VALIDATION, context),
            regularisation=self.parameterAsDouble(parameters, self.REGULARISATION, context),
            token=self._token, **encoding)

    def postProcessAlgorithm(self, context: QgsProcessingContext, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """In QGIS: the result layers named, grouped and styled, an HTML report in the results viewer, the run's
        summary on the message bar."""
        if self._outputs:
            from .results import ResultLayer, list_report, present_results, qml_style
            from .run_summary import classify_summary_text, show_summary

            out = self._outputs
            trees_shown = any(out[name] and context.willLoadLayerOnCompletion(out[name])
                              for name in (self.TREES, self.CROWNS))
            present_results(context, self._input_path, (
                ResultLayer(out[self.CROWNS], self.tr("crowns"), qml_style),
                ResultLayer(out[self.POLYGONS], self.tr("class polygons")),
                ResultLayer(out[self.TREES], self.tr("trees"), qml_style),
                ResultLayer(out[self.CONFIDENCE], self.tr("confidence"), qml_style, visible=False),
                ResultLayer(out[self.OUTPUT], self.tr("similarity") if self._result.mode == "similarity" else
                            self.tr("classes"), qml_style, visible=not trees_shown)))
            list_report(out[self.STATISTICS], self.icon(), self.tr("Classify from Examples report"))
            show_summary(self.displayName(), classify_summary_text(self._result, self._seconds),
                         out[self.STATISTICS])
        return {}


def write_examples(source: QgsFeatureSource, field: str, path: str) -> None:
    """Copy ``source``'s geometries and ``field`` to the GeoPackage ``path`` in the source's CRS for the engine,
    the features keeping their ids when all are positive (so the engine's messages name the features the analyst
    sees), the field text or integer. QgsProcessingException when there is no CRS or the values are no class
    names."""
    from osgeo import ogr, osr

    crs = source.sourceCrs()
    if not crs.isValid():
        raise QgsProcessingException(tr(
            "The examples layer has no CRS, so they cannot be placed on the orthophoto. Set its CRS (Layer "
            "Properties > Source) to the one its coordinates are in."))
    index = source.fields().lookupField(field)
    features = [(feature.id(), feature.geometry(), class_value(feature.attribute(index)))
                for feature in source.getFeatures()]
    values = [value for _, _, value in features if value is not None]
    kind = ogr.OFTInteger64 if values and all(isinstance(v, int) for v in values) else ogr.OFTString
    if not all(isinstance(v, (int, str)) for v in values):
        raise QgsProcessingException(tr(
            "The class field '{field}' holds decimal numbers or other values that are no class names. Choose a "
            "text or integer field.").format(field=field))
    keep_ids = all(fid > 0 for fid, _, _ in features)
    srs = osr.SpatialReference()
    srs.ImportFromWkt(crs.toWkt(QgsCoordinateReferenceSystem.WktVariant.WKT_PREFERRED_GDAL))
    dataset = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    layer = dataset.CreateLayer("examples", srs, ogr.wkbUnknown)
    layer.CreateField(ogr.FieldDefn(field, kind))
    for fid, geometry, value in features:
        copy = ogr.Feature(layer.GetLayerDefn())
        if keep_ids:
            copy.SetFID(fid)
        if not geometry.isNull():
            copy.SetGeometry(ogr.CreateGeometryFromWkb(bytes(geometry.asWkb())))
        if value is not None:
            copy.SetField(field, value)
        layer.CreateFeature(copy)
    dataset = None  # closed: the worker reads it


def class_value(value: Any) -> Any:
    """A class field's value: None for NULL (QGIS's NULL QVariant or None), an integral float as int."""
    if value is None or (isinstance(value, QVariant) and value.isNull()):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def parse_tree_classes(text: str) -> list[str] | None:
    """TREE_CLASSES ("conifer, broadleaf") as class names; None when empty."""
    names = [name.strip() for name in (text or "").split(",") if name.strip()]
    return names or None
