"""`--fallback` on `runs create` and `runs retry` (the GPU shapes a run moves on to when Vertex has no quota
or capacity for its own: docs/lifecycle.md "GPU fallback"), and the attempts' shapes for `runs get`."""
from __future__ import annotations

from trainyard_cli.output import UsageError

HELP = ("a GPU shape to fall back to, in order; repeatable: GPU_TYPE:COUNT[,machine=M][,region=R][,on-demand] "
        "e.g. NVIDIA_TESLA_T4:2,region=us-central1")


def add(parser) -> None:
    parser.add_argument("--fallback", action="append", metavar="SHAPE", help=HELP)


def parse(text: str) -> dict:
    """`NVIDIA_TESLA_T4:2,region=us-central1,on-demand` → a fallback shape (the API validates its values)."""
    first, *rest = [part.strip() for part in text.split(",") if part.strip()] or [""]
    gpu_type, _, count = first.partition(":")
    if not gpu_type or not count.isdigit():
        raise UsageError(f"--fallback {text!r}: start with GPU_TYPE:COUNT, e.g. NVIDIA_TESLA_T4:2")
    shape: dict = {"gpu_type": gpu_type, "gpu_count": int(count)}
    for part in rest:
        key, has_value, value = part.partition("=")
        if part in ("on-demand", "spot"):
            shape["preemptible"] = part == "spot"
        elif has_value and key in ("machine", "region"):
            shape["machine_type" if key == "machine" else key] = value
        else:
            raise UsageError(f"--fallback {text!r}: {part!r} is not machine=…, region=…, on-demand or spot")
    return shape


def apply(body: dict, args) -> dict:
    if getattr(args, "fallback", None):
        body.setdefault("gpu_config", {})["fallbacks"] = [parse(text) for text in args.fallback]
    return body


def shape_text(shape: dict) -> str:
    where = f" in {shape['region']}" if shape.get("region") else ""
    return (f"{shape.get('gpu_count')} x {shape.get('gpu_type')} on {shape.get('machine_type')}{where}"
            f" ({'Spot' if shape.get('preemptible', True) else 'on-demand'})")


def attempt_lines(run: dict) -> list[str]:
    """Each attempt's shape and why it ended, when the run lists fallbacks or moved between shapes."""
    attempts = [a for a in run.get("attempts") or [] if a.get("shape") and a["attempt"] < (run.get("attempt") or 1)]
    gpu = run.get("gpu_config") or {}
    if not attempts and not gpu.get("fallbacks"):
        return []
    lines = [f"attempt {a['attempt']} on {shape_text(a['shape'])}: {a.get('ended_because') or a.get('status')}"
             + (f", retried by {a['retried_by']}" if a.get("retried_by") else "") for a in attempts]
    lines.append(f"attempt {run.get('attempt') or 1} on {shape_text(gpu)}: {run.get('status')}")
    left = [shape_text(s) for s in gpu.get("fallbacks") or []]
    return lines + ([f"fallbacks: {'; '.join(left)}"] if left else [])
