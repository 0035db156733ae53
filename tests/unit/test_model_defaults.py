"""The defaults a run with no model options gets (issue 25, docs/pipeline.md "Model quality"): an
embedding-only retrieval model, no gradient clipping for it, early stopping on the gate metric — and no
feature configuration that validated under the old defaults is refused under the new ones."""
import glob
import json
import os

import pytest

from pipeline_compiler.demo_data import demo_catalog
from shared.domain import model_kinds
from shared.domain.catalog import FeatureConfig, ModelConfig, projection_width, tower_output_dim, towers_problem
from shared.domain.run_config import DENSE_TOWER_CLIPNORM, TrainingParams
from tests.builders import feature_config_body, model_config_body

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OLD_TOWERS = [128, 64, 32]  # the towers' default before issue 25's bench


def test_a_model_config_with_no_options_is_embedding_only_and_unclipped():
    model = ModelConfig(name="no-options", model_type="retrieval")
    assert model.query_tower == [] and model.candidate_tower == []
    assert model.sampling_bias_correction is True and model.temperature == 1.0
    params = TrainingParams()
    assert params.gradient_clipnorm == "auto" and params.clipnorm(model) is None
    assert params.early_stopping.enabled and params.early_stopping.monitor == "gate_metric"
    # "auto" keeps clipping wherever there are dense layers: a dense tower, or a ranking head.
    assert params.clipnorm(ModelConfig(name="dense", model_type="retrieval", query_tower=[64, 32],
                                       candidate_tower=[64, 32])) == DENSE_TOWER_CLIPNORM
    assert params.clipnorm(ModelConfig(name="head", model_type="ranking")) == DENSE_TOWER_CLIPNORM
    # Explicit values are kept as given.
    assert TrainingParams(gradient_clipnorm=None).clipnorm(ModelConfig(name="d", model_type="ranking")) is None
    assert TrainingParams(gradient_clipnorm=5.0).clipnorm(model) == 5.0
    with pytest.raises(ValueError):
        TrainingParams(gradient_clipnorm="sometimes")


def _feature_configs() -> list[dict]:
    """Every feature configuration the project ships or its tests build."""
    configs = []
    for path in sorted(glob.glob(os.path.join(ROOT, "examples", "*", "*.json"))):
        with open(path) as handle:
            configs.append(json.load(handle)["feature_config"])
    configs.append(feature_config_body())  # side features on the query side only: 32 + 6 + 16 against 32
    configs.append(demo_catalog("/tmp/demo.csv")["feature_config"])
    return configs


@pytest.mark.parametrize("model_type", model_kinds.NAMES)
def test_no_feature_config_that_fit_the_old_defaults_is_refused_by_the_new(model_type):
    checked = 0
    for body in _feature_configs():
        features = FeatureConfig.model_validate(body)
        old = ModelConfig.model_validate(model_config_body(model_type, query_tower=OLD_TOWERS, candidate_tower=OLD_TOWERS))
        new = ModelConfig(name="no-options", model_type=model_type)
        assert towers_problem(model_type, features, old) is None
        assert towers_problem(model_type, features, new) is None, body["name"]
        checked += 1
    assert checked >= 5  # the three MovieLens examples, the builders' and the demo's


def test_the_wider_embedding_only_side_is_projected_to_the_narrower_width():
    features = FeatureConfig.model_validate(feature_config_body())  # query 32 + 6 + 16 = 54, candidate 32
    model = ModelConfig(name="no-options", model_type="retrieval")
    assert projection_width(features, model, "query") == 32 and projection_width(features, model, "candidate") is None
    assert tower_output_dim(features, model, "query") == tower_output_dim(features, model, "candidate") == 32
    dense = ModelConfig(name="dense", model_type="retrieval", query_tower=[64, 32], candidate_tower=[64, 32])
    assert projection_width(features, dense, "query") is None
