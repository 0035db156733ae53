"""Which machine types Vertex AI custom training accepts with which GPUs, and the machine each GPU count
gets by default (spec Appendix A where the table admits it).

Sources (Google's documented tables; check them when Google adds shapes):
- Compute Engine, GPU machine types: https://cloud.google.com/compute/docs/gpus — T4 and V100 attach to N1
  VMs with at most this many vCPUs and this much memory per GPU count; L4 comes only in G2 and A100 40GB
  only in A2, whose machine type fixes the GPU count.
- Vertex AI, configure compute resources for custom training:
  https://cloud.google.com/vertex-ai/docs/training/configure-compute — the N1 types custom training
  offers (no n1-standard-1/2, no highcpu below 16) and "the GPU limits of Compute Engine apply".
"""
from __future__ import annotations

import re
from typing import NamedTuple, Optional


class N1Limit(NamedTuple):
    vcpus: int
    memory_gb: float


# Compute Engine's N1 + GPU table: GPUs per VM → the most vCPUs and memory that VM may have.
N1_LIMITS: dict[str, dict[int, N1Limit]] = {
    "NVIDIA_TESLA_T4": {1: N1Limit(48, 312), 2: N1Limit(48, 312), 4: N1Limit(96, 624)},
    "NVIDIA_TESLA_V100": {1: N1Limit(12, 78), 2: N1Limit(24, 156), 4: N1Limit(48, 312), 8: N1Limit(96, 624)},
}
# The N1 predefined types Vertex custom training offers, with GB of memory per vCPU.
N1_SERIES = {"standard": ((4, 8, 16, 32, 64, 96), 3.75), "highmem": ((2, 4, 8, 16, 32, 64, 96), 6.5),
             "highcpu": ((16, 32, 64, 96), 0.9)}
# Accelerator-optimized types: GPUs per VM → the machine types holding exactly that many.
FIXED_MACHINES: dict[str, dict[int, tuple[str, ...]]] = {
    "NVIDIA_L4": {1: ("g2-standard-4", "g2-standard-8", "g2-standard-12", "g2-standard-16", "g2-standard-32"),
                  2: ("g2-standard-24",), 4: ("g2-standard-48",), 8: ("g2-standard-96",)},
    "NVIDIA_TESLA_A100": {1: ("a2-highgpu-1g",), 2: ("a2-highgpu-2g",), 4: ("a2-highgpu-4g",), 8: ("a2-highgpu-8g",)},
}
# The machine a GPU count gets when the run names none: spec Appendix A, except V100 x 1, which the
# spec pairs with n1-standard-16 (16 vCPUs) but Compute Engine caps at 12 vCPUs.
DEFAULT_MACHINES: dict[str, dict[int, str]] = {
    "NVIDIA_TESLA_T4": {1: "n1-standard-8", 2: "n1-standard-16", 4: "n1-standard-32"},
    "NVIDIA_L4": {1: "g2-standard-8", 2: "g2-standard-24", 4: "g2-standard-48", 8: "g2-standard-96"},
    "NVIDIA_TESLA_V100": {1: "n1-standard-8", 2: "n1-standard-16", 4: "n1-standard-32", 8: "n1-standard-64"},
    "NVIDIA_TESLA_A100": {1: "a2-highgpu-1g", 2: "a2-highgpu-2g", 4: "a2-highgpu-4g", 8: "a2-highgpu-8g"},
}
# GB of memory on each GPU (Compute Engine's GPU table; A2's a2-highgpu types carry the 40 GB A100): what a
# retry after an out-of-memory failure moves up by (dashboard/src/retryform.js, "More GPU memory").
MEMORY_GB = {"NVIDIA_TESLA_T4": 16, "NVIDIA_L4": 24, "NVIDIA_TESLA_V100": 16, "NVIDIA_TESLA_A100": 40}
FAMILY = {"NVIDIA_TESLA_T4": "n1", "NVIDIA_TESLA_V100": "n1", "NVIDIA_L4": "g2", "NVIDIA_TESLA_A100": "a2"}

_N1 = re.compile(r"n1-(standard|highmem|highcpu)-(\d+)")


def counts(gpu_type: str) -> list[int]:
    """The GPU counts one machine of this type may hold."""
    return sorted(N1_LIMITS.get(gpu_type) or FIXED_MACHINES[gpu_type])


def n1_shape(machine_type: str) -> Optional[tuple[int, float]]:
    """(vCPUs, GB of memory) of an N1 type Vertex training offers, else None."""
    match = _N1.fullmatch(machine_type)
    if not match:
        return None
    sizes, gb_per_vcpu = N1_SERIES[match.group(1)]
    vcpus = int(match.group(2))
    return (vcpus, vcpus * gb_per_vcpu) if vcpus in sizes else None


def admitted(gpu_type: str, gpu_count: int) -> list[str]:
    """Every machine type the table admits with gpu_count x gpu_type, smallest first."""
    if gpu_type in FIXED_MACHINES:
        return list(FIXED_MACHINES[gpu_type].get(gpu_count, ()))
    limit = N1_LIMITS[gpu_type].get(gpu_count)
    if limit is None:
        return []
    return [f"n1-{series}-{n}" for series, (sizes, gb) in N1_SERIES.items() for n in sizes
            if n <= limit.vcpus and n * gb <= limit.memory_gb]


def machine_problem(gpu_type: str, gpu_count: int, machine_type: str) -> Optional[str]:
    """Why Vertex would refuse machine_type with gpu_count x gpu_type (None when the table admits it)."""
    family = FAMILY[gpu_type]
    if not machine_type.startswith(family + "-"):
        return f"{gpu_type} needs {'an' if family[0] in 'aen' else 'a'} {family} machine type, not {machine_type}"
    if gpu_type in FIXED_MACHINES:
        if machine_type in admitted(gpu_type, gpu_count):
            return None
        return f"{machine_type} does not hold {gpu_count} x {gpu_type}; use {' or '.join(admitted(gpu_type, gpu_count))}"
    shape = n1_shape(machine_type)
    if shape is None:
        sizes = "; ".join(f"n1-{s}-{'/'.join(map(str, n))}" for s, (n, _) in N1_SERIES.items())
        return f"{machine_type} is not an N1 type Vertex training offers ({sizes})"
    limit = N1_LIMITS[gpu_type][gpu_count]
    if shape[0] > limit.vcpus or shape[1] > limit.memory_gb:
        return (f"{machine_type} ({shape[0]} vCPUs, {shape[1]:g} GB) is larger than {gpu_count} x {gpu_type} allows "
                f"(at most {limit.vcpus} vCPUs and {limit.memory_gb:g} GB); use one of {', '.join(admitted(gpu_type, gpu_count))}")
    return None
