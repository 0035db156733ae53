"""bench/scale.py's arithmetic (the bench itself is not a test): the growth exponent, the process
tree's memory from /proc, and the Dataflow projection from measured stage times."""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))

import scale  # noqa: E402


def test_the_growth_exponent_is_the_log_log_slope():
    assert scale.slope([1e5, 1e6, 5e6], [10, 100, 500]) == pytest.approx(1.0)
    assert scale.slope([1e5, 1e6], [10, 10]) == pytest.approx(0.0)
    assert scale.slope([1e5, 1e6], [1, 100]) == pytest.approx(2.0)
    assert scale.slope([1e5], [10]) is None


def test_tree_rss_counts_the_children():
    child = subprocess.Popen([sys.executable, "-c", "x = bytearray(200 * 2**20); import time; time.sleep(30)"])
    try:
        alone = scale.tree_rss(child.pid)
        for _ in range(100):  # until the child has touched its 200 MB
            alone = scale.tree_rss(child.pid)
            if alone > 190 * 2**20:
                break
            import time
            time.sleep(0.05)
        assert alone > 190 * 2**20
        assert scale.tree_rss(os.getpid()) >= alone  # the child is in this process's tree
    finally:
        child.kill()
        child.wait()


def test_tree_cpu_seconds_grow_with_work():
    before = scale.tree_cpu_seconds(os.getpid())
    sum(i * i for i in range(3_000_000))
    assert scale.tree_cpu_seconds(os.getpid()) > before


def test_tree_cpu_seconds_keep_the_work_of_children_that_ended():
    """A stage's worker processes exit before the stage does: their CPU must stay in the tree's count."""
    before = scale.tree_cpu_seconds(os.getpid())
    subprocess.run([sys.executable, "-c", "sum(i * i for i in range(20_000_000))"], check=True)
    assert scale.tree_cpu_seconds(os.getpid()) - before > 0.5


def test_the_dataflow_projection_scales_time_and_caps_workers():
    one = {"stages": {stage: {"seconds": {"median": 100.0}} for stage in scale.DATAFLOW_STAGES}}
    measured = {100_000: one, 1_000_000: one}  # a 10x span: fitted exponents of 1 or more are used
    plan = scale.dataflow_projection(measured, {"Examples": 1.0, "Stats": 0.5, "Transform": 1.2},
                                     min_rows=1_000_000, machine_vcpus=4, max_workers=10)
    ten = plan["10,000,000 rows"]
    assert ten["Examples"]["one_core_seconds"] == 1000  # linear: 10x the rows, 10x the time
    assert ten["Stats"]["growth_exponent_used"] == 1.0  # sub-linear fits are start-up cost: taken as linear
    assert ten["Examples"]["workers"] == 1 and ten["Examples"]["seconds"] == 1000 // 4 + scale.DATAFLOW_STARTUP_SECONDS
    hundred = plan["100,000,000 rows"]
    assert hundred["Transform"]["one_core_seconds"] == round(100 * 100 ** 1.2)
    assert hundred["Transform"]["workers"] == 10  # capped at the setting
    assert plan["goes_to_dataflow_from_rows"] == 1_000_000
    narrow = scale.dataflow_projection({500_000: one, 1_000_000: one}, {"Transform": 1.7}, 1_000_000, 4, 10)
    assert narrow["10,000,000 rows"]["Transform"]["growth_exponent_used"] == 1.0  # a 2x span: linear


def test_machine_types_name_their_vcpus():
    assert scale._vcpus("e2-standard-4") == 4 and scale._vcpus("n2-highmem-16") == 16 and scale._vcpus("custom") == 1


def test_the_index_alone_reports_build_memory_and_recall(tmp_path):
    """--scann-only at a tiny size: the export's index (ScaNN's exact scan below 20k) and TFRS's own ScaNN,
    each built in a fresh process, with its recall against the exact top 100."""
    pytest.importorskip("scann")
    report = scale.scann_only([(3_000, 1)], ["sized", "tfrs"], str(tmp_path))
    sized, tfrs = report["indexes"]["3000 sized"], report["indexes"]["3000 tfrs"]
    assert sized["plan"] == {"search": "brute_force"} and sized["recall_at_100"]["median"] == 1.0
    assert tfrs["plan"]["training_sample_size"] == 100_000 and 0 < tfrs["recall_at_100"]["median"] <= 1.0
    assert sized["peak_rss_mb"]["median"] >= sized["vectors_held_rss_mb"] > 0 and sized["build_seconds"]["max"] >= 0
    assert len(sized["load_1min"]) == 1 and os.listdir(tmp_path)[0].startswith("scann-")


def test_sizes_take_their_repeats_or_the_default():
    assert scale._sizes("100k:3,5M", 1) == [(100_000, 3), (5_000_000, 1)]
    assert scale._sizes("20000,1M:2", 4) == [(20_000, 4), (1_000_000, 2)]
    assert scale._spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0}


def test_eases_fit_alone_reports_its_time_and_the_memory_it_adds(tmp_path):
    pytest.importorskip("scipy")
    report = scale.ease_only([(2_000, 1)], products=300, out=str(tmp_path))
    figures = report["sizes"]["2000"]
    assert figures["repeats"] == 1 and 0 < figures["items"] <= 300 and 0 < figures["users"] <= 400  # 400 customers, not all in the train cut
    assert figures["fit_seconds"]["median"] > 0 and figures["lambda"] > 0
    assert figures["fit_peak_rss_mb"]["median"] >= figures["fit_adds_mb"]["median"] >= 0
    assert report["fit_peak_rss_ratio"] == {"2000": 1.0} and list(tmp_path.glob("ease-*.json"))


@pytest.mark.parametrize("workers, mode", [(1, "in_memory"), (2, "multi_processing"), (4, "multi_processing")])
def test_the_data_stage_bench_overrides_the_local_direct_runner_options(workers, mode):
    """--data-stages appends its options after the pipeline's own DirectRunner options: Beam must read its."""
    pytest.importorskip("apache_beam")
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

    from pipeline_compiler.environment import DIRECT_RUNNER_ARGS, PipelineEnv

    args = PipelineEnv(extra_beam_args=tuple(scale.direct_worker_args(workers))).beam_pipeline_args()
    assert args[:len(DIRECT_RUNNER_ARGS)] == list(DIRECT_RUNNER_ARGS)
    options = PipelineOptions(args).view_as(DirectOptions)
    assert options.direct_running_mode == mode and options.direct_num_workers == workers
