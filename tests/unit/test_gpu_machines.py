"""GPU type x count x machine type against the documented tables (shared/domain/gpu_machines.py): every default
is a shape Vertex accepts, the limits are the documented ones, and everything that restates the machines
(the vocabulary, the price table, a retry to another GPU) agrees."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.contract.vocabulary import vocabulary
from shared.domain import gpu_machines
from shared.domain.run_config import GPU_MACHINES, GpuConfig
from tests.builders import run_body
from shared.domain import runs
from tests.unit.test_actions import make_run, post, world  # noqa: F401 — world is a fixture
from tests.unit.test_cli import api, run_cli  # noqa: F401 — api is a fixture

PRICES = json.loads((Path(__file__).resolve().parents[2] / "shared/domain/pricing/prices.json").read_text())
DEFAULTS = [(gpu, count, machine) for gpu, by_count in GPU_MACHINES.items() for count, machine in by_count.items()]

# Written out from https://cloud.google.com/compute/docs/gpus (N1 + GPU: the largest VM per GPU count),
# independently of the module under test.
DOCUMENTED_N1_CAPS = {("NVIDIA_TESLA_V100", 1): (12, 78), ("NVIDIA_TESLA_V100", 2): (24, 156),
                      ("NVIDIA_TESLA_V100", 4): (48, 312), ("NVIDIA_TESLA_V100", 8): (96, 624),
                      ("NVIDIA_TESLA_T4", 1): (48, 312), ("NVIDIA_TESLA_T4", 2): (48, 312),
                      ("NVIDIA_TESLA_T4", 4): (96, 624)}


@pytest.mark.parametrize("gpu,count,machine", DEFAULTS)
def test_every_default_pairing_is_one_the_table_admits_and_is_priced(gpu, count, machine):
    assert gpu_machines.machine_problem(gpu, count, machine) is None
    assert machine in gpu_machines.admitted(gpu, count)
    assert GpuConfig(gpu_type=gpu, gpu_count=count).machine_type == machine
    assert machine in PRICES["machines"], f"prices.json does not price the default {machine}"
    shape = gpu_machines.n1_shape(machine)
    if shape:
        vcpus, memory = DOCUMENTED_N1_CAPS[(gpu, count)]
        assert shape[0] <= vcpus and shape[1] <= memory


def test_one_v100_gets_a_machine_compute_engine_allows():
    assert GpuConfig(gpu_type="NVIDIA_TESLA_V100", gpu_count=1).machine_type == "n1-standard-8"  # 8 vCPUs, 30 GB
    assert "n1-standard-16" not in gpu_machines.admitted("NVIDIA_TESLA_V100", 1)  # 16 vCPUs > 12
    assert "n1-standard-16" in gpu_machines.admitted("NVIDIA_TESLA_V100", 2)  # the spec's V100 machine, for two


@pytest.mark.parametrize("gpu,count", sorted(DOCUMENTED_N1_CAPS))
def test_n1_machines_admitted_are_exactly_those_within_the_documented_caps(gpu, count):
    vcpus, memory = DOCUMENTED_N1_CAPS[(gpu, count)]
    offered = {"standard": ((4, 8, 16, 32, 64, 96), 3.75), "highmem": ((2, 4, 8, 16, 32, 64, 96), 6.5),
               "highcpu": ((16, 32, 64, 96), 0.9)}
    expected = {f"n1-{series}-{n}" for series, (sizes, gb) in offered.items() for n in sizes
                if n <= vcpus and n * gb <= memory}
    assert set(gpu_machines.admitted(gpu, count)) == expected
    for machine in expected:
        assert gpu_machines.machine_problem(gpu, count, machine) is None
    for refused in {m for series, (sizes, gb) in offered.items() for n in sizes
                    for m in [f"n1-{series}-{n}"] if m not in expected}:
        assert "at most" in gpu_machines.machine_problem(gpu, count, refused)


def test_accelerator_optimized_types_fix_the_gpu_count():
    assert gpu_machines.admitted("NVIDIA_L4", 1) == ["g2-standard-4", "g2-standard-8", "g2-standard-12",
                                                      "g2-standard-16", "g2-standard-32"]
    assert GpuConfig(gpu_type="NVIDIA_L4", gpu_count=1, machine_type="g2-standard-4").machine_type == "g2-standard-4"
    assert gpu_machines.machine_problem("NVIDIA_L4", 2, "g2-standard-32") is not None
    assert gpu_machines.machine_problem("NVIDIA_TESLA_A100", 4, "a2-highgpu-4g") is None
    assert "needs an a2 machine type" in gpu_machines.machine_problem("NVIDIA_TESLA_A100", 1, "n1-standard-8")


def test_the_vocabulary_offers_the_tables_counts_defaults_and_machines():
    for entry in vocabulary()["gpu_types"]:
        assert entry["counts"] == gpu_machines.counts(entry["name"])
        for count, machines in entry["machines"].items():
            assert machines["default"] == GPU_MACHINES[entry["name"]][int(count)]
            assert machines["admitted"] == gpu_machines.admitted(entry["name"], int(count))
            assert machines["default"] in machines["admitted"]


def test_a_bad_shape_is_a_400_naming_the_field_and_a_good_one_is_stored(world):
    ids = world.ids
    ok = post(world, "/api/training-runs", run_body(ids["experiment"], name="one-v100",
                                                    gpu_config={"gpu_type": "NVIDIA_TESLA_V100", "gpu_count": 1}))
    assert ok.status_code == 201, ok.get_json()
    assert ok.get_json()["training_run"]["gpu_config"]["machine_type"] == "n1-standard-8"
    bad = post(world, "/api/training-runs", run_body(ids["experiment"], name="big-v100", gpu_config={
        "gpu_type": "NVIDIA_TESLA_V100", "gpu_count": 1, "machine_type": "n1-highmem-16"}))
    assert bad.status_code == 400
    errors = {e["field"]: e["message"] for e in bad.get_json()["errors"]}
    assert "at most 12 vCPUs and 78 GB" in errors["gpu_config.machine_type"]


def test_a_retry_to_another_gpu_type_gets_that_types_default_machine(world):
    run = make_run(world, runs.FAILED, gpu_config={"gpu_type": "NVIDIA_TESLA_T4", "gpu_count": 1, "preemptible": True,
                                                   "machine_type": "n1-highmem-16", "machine_count": 1})
    response = post(world, f"/api/training-runs/{run['id']}/retry", {"gpu_config": {"gpu_type": "NVIDIA_TESLA_V100"}})
    assert response.status_code == 202, response.get_json()
    assert world.repo.get_run(run["id"])["gpu_config"]["machine_type"] == "n1-standard-8"  # not T4's n1-highmem-16


def test_the_cli_vocabulary_names_each_counts_machine(api):
    code, out = run_cli("vocabulary")
    assert code == 0, out
    line = next(line for line in out.splitlines() if line.strip().startswith("NVIDIA_TESLA_V100:"))
    assert "x1 n1-standard-8 (or n1-standard-4, n1-highmem-2, n1-highmem-4, n1-highmem-8)" in line
    assert "x2 n1-standard-16" in line
