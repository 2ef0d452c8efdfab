"""Each parameter is declared once (processing_provider/parameters.py): the algorithms that share a name get equal
definitions from the same declaration, and every definition an algorithm has comes from its list."""

from __future__ import annotations

import pytest

ALGORITHMS = ("treeseg:segmenttrees", "treeseg:fitclustermodel", "treeseg:canopyheight", "treeseg:classifyexamples")


def _definitions(algorithm_id: str) -> dict[str, dict]:
    from qgis.core import QgsApplication

    algorithm = QgsApplication.processingRegistry().algorithmById(algorithm_id)
    return {d.name(): d.toVariantMap() for d in algorithm.parameterDefinitions()}


@pytest.mark.parametrize("name", ["MODEL", "WEIGHTS", "DEVICE", "PRECISION", "STRIDE", "K", "TILE_SIZE", "OVERLAP",
                                  "BATCH_SIZE", "MAX_SAMPLES", "ALLOW_DOWNLOAD",
                                  "WORKING_RESOLUTION"])
def test_segment_trees_and_fit_cluster_model_share_one_definition(treeseg_provider, name):
    segment, fit = _definitions("treeseg:segmenttrees"), _definitions("treeseg:fitclustermodel")
    assert segment[name] == fit[name]  # type, label, default, limits, flags and help


@pytest.mark.parametrize("name", ["EXTENT", "MODEL", "WEIGHTS", "DEVICE", "PRECISION", "STRIDE", "TILE_SIZE", "OVERLAP",
                                  "BATCH_SIZE", "ALLOW_DOWNLOAD", "WORKING_RESOLUTION", "MIN_CROWN_AREA"])
def test_classify_from_examples_reads_and_encodes_with_segment_trees_definitions(treeseg_provider, name):
    segment, classify = _definitions("treeseg:segmenttrees"), _definitions("treeseg:classifyexamples")
    assert segment[name] == classify[name]


@pytest.mark.parametrize(("name", "algorithm_ids"), [("DEVICE", ALGORITHMS),
                                                     ("EXTENT", ("treeseg:segmenttrees", "treeseg:canopyheight"))])
def test_a_name_shared_by_all_has_one_definition(treeseg_provider, name, algorithm_ids):
    maps = [_definitions(algorithm_id)[name] for algorithm_id in algorithm_ids]
    assert all(found == maps[0] for found in maps)


def test_every_definition_comes_from_the_algorithms_list_in_dialog_order(treeseg_provider):
    from qgis.core import QgsApplication
    from treeseg.processing_provider.canopy_height import CANOPY_HEIGHT_PARAMETERS
    from treeseg.processing_provider.classify_examples import CLASSIFY_PARAMETERS
    from treeseg.processing_provider.fit_cluster_model import FIT_CLUSTER_MODEL_PARAMETERS
    from treeseg.processing_provider.segment_trees import SEGMENT_TREES_PARAMETERS

    def declared(definition) -> dict:  # less what addParameter sets from the provider
        return {k: v for k, v in definition.toVariantMap().items() if k != "supports_non_file_outputs"}

    lists = dict(zip(ALGORITHMS, (SEGMENT_TREES_PARAMETERS, FIT_CLUSTER_MODEL_PARAMETERS, CANOPY_HEIGHT_PARAMETERS,
                                  CLASSIFY_PARAMETERS)))
    for algorithm_id, specs in lists.items():
        algorithm = QgsApplication.processingRegistry().algorithmById(algorithm_id)
        assert [declared(d) for d in algorithm.parameterDefinitions()] == \
            [declared(spec.definition(algorithm.tr)) for spec in specs], algorithm_id


def test_fit_cluster_model_is_no_segment_trees(treeseg_provider):
    from treeseg.processing_provider.fit_cluster_model import FitClusterModelAlgorithm
    from treeseg.processing_provider.segment_trees import SegmentTreesAlgorithm
    from treeseg.processing_provider.worker_algorithm import WorkerAlgorithm

    assert FitClusterModelAlgorithm.__bases__ == (WorkerAlgorithm,)
    assert not issubclass(FitClusterModelAlgorithm, SegmentTreesAlgorithm)
