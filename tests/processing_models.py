"""Graphical Processing models built as the Model Designer builds them, for the tests that chain TreeSeg's
algorithms with QGIS's own."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterDefinition,
)

static = QgsProcessingModelChildParameterSource.fromStaticValue
model_input = QgsProcessingModelChildParameterSource.fromModelParameter
child_output = QgsProcessingModelChildParameterSource.fromChildOutput


def new_model(name: str, *parameters: QgsProcessingParameterDefinition) -> QgsProcessingModelAlgorithm:
    """An empty model in group "TreeSeg tests" with these model inputs."""
    model = QgsProcessingModelAlgorithm(name, "TreeSeg tests")
    for parameter in parameters:
        model.addModelParameter(parameter, QgsProcessingModelParameter(parameter.name()))
    return model


def child(algorithm_id: str, child_id: str, sources: dict) -> QgsProcessingModelChildAlgorithm:
    """A model child whose other inputs hold their defaults, as the Model Designer's dialog fills them."""
    from qgis.core import QgsApplication, QgsProcessingDestinationParameter

    step = QgsProcessingModelChildAlgorithm(algorithm_id)
    step.setChildId(child_id)
    algorithm = QgsApplication.processingRegistry().algorithmById(algorithm_id)
    for parameter in algorithm.parameterDefinitions():
        if isinstance(parameter, QgsProcessingDestinationParameter):
            continue
        if parameter.name() in sources:
            step.addParameterSources(parameter.name(), [sources[parameter.name()]])
        elif parameter.defaultValue() is not None:
            step.addParameterSources(parameter.name(), [static(parameter.defaultValue())])
    return step


def add_step(model: QgsProcessingModelAlgorithm, step: QgsProcessingModelChildAlgorithm,
             outputs: dict[str, tuple[str, str]] | None = None) -> None:
    """Add ``step`` to ``model``; ``outputs``: model output name -> (description, the step's output name)."""
    declared = {}
    for name, (description, output_name) in (outputs or {}).items():
        declared[name] = QgsProcessingModelOutput(name, description)
        declared[name].setChildId(step.childId())
        declared[name].setChildOutputName(output_name)
    step.setModelOutputs(declared)
    model.addChildAlgorithm(step)
