"""Which data stays off Dataflow (pipeline_compiler/data_scale.py)."""
from pipeline_compiler import data_scale
from pipeline_compiler.demo_data import demo_run_spec


def _spec(tmp_path, rows=None, percent=100, source=None):
    spec = demo_run_spec(str(tmp_path / "data.csv"), str(tmp_path / "a"), str(tmp_path / "r"),
                         training_params={"data_sample_percent": percent})
    update = {"stats": {"rows": rows}}
    if source:
        update["source"] = source
    return spec.model_copy(update={"dataset": spec.dataset.model_validate({**spec.dataset.model_dump(), **update})})


def test_row_stats_decide_with_the_sample_percent(tmp_path):
    assert data_scale.decide(_spec(tmp_path, rows=500_000), 1_000_000, 1).runner == "direct"
    assert data_scale.decide(_spec(tmp_path, rows=5_000_000), 1_000_000, 1).runner == "dataflow"
    decision = data_scale.decide(_spec(tmp_path, rows=5_000_000, percent=10), 1_000_000, 1)
    assert decision.runner == "direct" and "500000 rows" in decision.reason


def test_files_without_stats_are_measured(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n" + "1,2\n" * 1000)
    small = data_scale.decide(_spec(tmp_path), 1, 1_000_000)
    assert small.runner == "direct" and "bytes" in small.reason
    assert data_scale.decide(_spec(tmp_path), 1, 100).runner == "dataflow"


def test_what_cannot_be_measured_goes_to_dataflow(tmp_path):
    missing = data_scale.decide(_spec(tmp_path), 1, 10**12)  # no data.csv here
    assert missing.runner == "dataflow" and "unknown" in missing.reason
    bigquery = _spec(tmp_path, source={"kind": "bigquery", "table": "p.d.t"})
    assert data_scale.decide(bigquery, 1, 10**12).runner == "dataflow"
