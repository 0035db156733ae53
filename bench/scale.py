"""Scale benchmark (not a test): each pipeline stage's cost as the interaction log grows.

    .venv/bin/python bench/scale.py [--sizes 100k,1M,5M] [--repeats 1] [--epochs 1] [--out .local/bench-scale]

For each size, synthetic interactions (pipeline_compiler/demo_data.py: users grow with the rows, one
user per 50 rows; a fixed catalog of --products items, so the row count is what grows) are written
as CSV, then the real pipeline (pipeline_compiler.run_local: LocalDagRunner, Beam DirectRunner, the
same code a local run executes) runs in a child process while this process samples the child's
process tree's resident memory from /proc every --sample-seconds.
  * Per stage: wall seconds (ML Metadata's execution create/last-update times), rows/s (the size's
    rows / seconds) and the peak RSS of the tree inside the stage's window. The stages share one
    process, so a stage's peak includes what earlier stages left allocated: an upper bound.
  * The Evaluator again, alone, in a fresh process over the run's artifacts: its own peak RSS, the
    figure the "memory bounded by design" target is stated on (<= 1.2x its 100k peak at 5M rows).
  * Growth exponent per stage: the least-squares slope of log(seconds) and log(peak RSS) against
    log(rows) over the sizes run (1 = linear; time at fixed throughput grows with slope 1).
  * A Dataflow projection from the same figures (see `dataflow_projection`).
  * --ease-only: EASE's fit alone (the Evaluator's baseline) per size: its seconds and the memory it adds.
Writes <out>/scale-<date>.json and prints a markdown table for docs/scale.md.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SIZES = {"100k": 100_000, "1M": 1_000_000, "5M": 5_000_000, "10M": 10_000_000, "20M": 20_000_000}
PAGE = os.sysconf("SC_PAGE_SIZE")


# --------------------------------------------------------------------------- memory of a process tree


def _children(pid: int) -> list[int]:
    out = []
    for task in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            with open(task) as handle:
                out += [int(c) for c in handle.read().split()]
        except OSError:
            pass
    return out


def _tree(pid: int):
    """pid and its live descendants, parents first."""
    todo = [pid]
    while todo:
        current = todo.pop()
        yield current
        todo += _children(current)


def _read_proc(pid: int, name: str) -> str:
    try:
        with open(f"/proc/{pid}/{name}") as handle:
            return handle.read()
    except OSError:  # the process ended between listing and reading
        return ""


def tree_rss(pid: int) -> int:
    """Resident bytes of pid and all its descendants (statm's second field, in pages)."""
    return sum(int(statm.split()[1]) * PAGE for statm in (_read_proc(p, "statm") for p in _tree(pid)) if statm)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of pid and its live descendants (/proc/<pid>/stat fields 14 and 15), and of
    the descendants they have reaped (fields 16 and 17): Beam's multi-processing workers come and go."""
    ticks = 0
    for stat in (_read_proc(p, "stat") for p in _tree(pid)):
        if stat:
            fields = stat.rsplit(")", 1)[1].split()
            ticks += sum(int(field) for field in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


class Sampler:
    """Samples a process tree's RSS on a thread: [(unix seconds, bytes)]."""

    def __init__(self, pid: int, every: float):
        self.pid, self.every, self.samples, self.loads, self.cpu = pid, every, [], [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.samples.append((time.time(), tree_rss(self.pid)))
            self.cpu.append((time.time(), tree_cpu_seconds(self.pid)))
            self.loads.append(os.getloadavg()[0])
            self._stop.wait(self.every)

    def stop(self) -> list[tuple[float, int]]:
        self._stop.set()
        self._thread.join()
        return self.samples

    def cpu_seconds(self, start: float, end: float) -> float:
        """CPU seconds the tree used between start and end: on a loaded machine, the stage's own work."""
        inside = [cpu for t, cpu in self.cpu if start - self.every <= t <= end + self.every]
        return round(inside[-1] - inside[0], 2) if len(inside) > 1 else 0.0

    def peak(self, start: float = 0.0, end: float = math.inf) -> int:
        # A stage shorter than the sampling interval gets the samples on either side of it.
        inside = [rss for t, rss in self.samples if start - self.every <= t <= end + self.every]
        return max(inside) if inside else 0


def run_measured(argv: list[str], every: float, log_path: str) -> tuple[float, Sampler, int]:
    started = time.time()
    with open(log_path, "ab") as log_file:
        # The child inherits the environment; this file puts the repository on its sys.path itself.
        child = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT)
        sampler = Sampler(child.pid, every)
        code = child.wait()
    sampler.stop()
    return time.time() - started, sampler, code


# --------------------------------------------------------------------------- the child processes


def child_pipeline(spec_path: str, registry_dir: str, metadata_path: str) -> None:
    from pipeline_compiler import PipelineEnv, run_local
    from shared.domain.run_config import RunSpec

    with open(spec_path) as handle:
        spec = RunSpec.model_validate_json(handle.read())
    run_local(spec, PipelineEnv(local_registry_dir=registry_dir), metadata_path=metadata_path)
    os._exit(0)  # TF + Beam threads can crash at interpreter teardown; every file is written by now


def child_evaluate(spec_path: str, out_path: str, examples: str = "", runner: str = "") -> None:
    """The Evaluator over a run's model and transform: in this process, or (runner "beam") as the Beam
    job a big test split gets (evaluation_beam, on the local DirectRunner args a run's pipeline has)."""
    from pipeline_compiler.evaluation import evaluate_model
    from shared.domain.run_config import RunSpec

    with open(spec_path) as handle:
        spec = RunSpec.model_validate_json(handle.read())
    root = spec.pipeline_root
    examples = examples or _newest(f"{root}/**/ExampleGen/examples/*")
    model = _newest(f"{root}/**/Trainer/model/*")
    transform = _newest(f"{root}/**/Transform/transform_graph/*")
    if runner == "beam":
        import apache_beam as beam
        from apache_beam.options.pipeline_options import PipelineOptions

        from pipeline_compiler.environment import DIRECT_RUNNER_ARGS
        from pipeline_compiler.evaluation_beam import evaluate_model_beam

        evaluation = evaluate_model_beam(spec, examples, os.path.join(model, "Format-Serving"), transform,
                                         beam.Pipeline(options=PipelineOptions(list(DIRECT_RUNNER_ARGS))),
                                         os.path.dirname(out_path))
    else:
        evaluation = evaluate_model(spec, examples, os.path.join(model, "Format-Serving"), transform)
    with open(out_path, "w") as handle:
        handle.write(evaluation.model_dump_json(indent=2))
    os._exit(0)


# The data stages Beam's direct runner can spread over processes (issue 25: "Example and Stats use the
# machine's cores locally, if the bench shows that helps"); the Beam options per worker count.
DATA_STAGE_NODES = ("ExampleGen", "StatisticsGen")


def direct_worker_args(workers: int) -> list[str]:
    """Beam options that override the local DirectRunner's (pipeline_compiler.environment.DIRECT_RUNNER_ARGS;
    Beam's argparse keeps the last value): one worker in memory, or `workers` SDK worker processes
    (direct_running_mode multi_processing, beam.apache.org/documentation/runners/direct/ "Parallel execution")."""
    if workers <= 1:
        return ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
    return ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"]


def child_data_stages(spec_path: str, metadata_path: str, workers: str) -> None:
    """ExampleGen and StatisticsGen alone, as the pipeline builds them, on `workers` direct-runner workers."""
    from tfx import v1 as tfx

    from pipeline_compiler import PipelineEnv
    from pipeline_compiler.pipeline import _example_gen, pipeline_name
    from shared.domain.run_config import RunSpec

    with open(spec_path) as handle:
        spec = RunSpec.model_validate_json(handle.read())
    # The two components as create_pipeline wires them (its others would be dangling downstream nodes).
    examples = _example_gen(spec).with_id("ExampleGen")
    statistics = tfx.components.StatisticsGen(examples=examples.outputs["examples"]).with_id("StatisticsGen")
    env = PipelineEnv(extra_beam_args=tuple(direct_worker_args(int(workers))))
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name=pipeline_name(spec), pipeline_root=spec.pipeline_root, components=[examples, statistics],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path),
        beam_pipeline_args=env.beam_pipeline_args()))
    os._exit(0)


def write_examples(out_dir: str, rows: int, products: int, train_share: float = 0.8) -> str:
    """ExampleGen-shaped output (Split-train / Split-test gzipped tf.Examples) of the synthetic data,
    written directly: the Evaluator alone at a size without running the pipeline up to it."""
    import tensorflow as tf

    from pipeline_compiler.demo_data import generate_transactions

    data = generate_transactions(rows=rows, customers=max(400, rows // 50), products=products, months=6)
    cut = int(rows * train_share)
    names = list(data)
    kinds = {name: data[name].dtype.kind for name in names}
    for split, (lo, hi) in (("train", (0, cut)), ("test", (cut, rows))):
        os.makedirs(os.path.join(out_dir, f"Split-{split}"), exist_ok=True)
        path = os.path.join(out_dir, f"Split-{split}", "data_tfrecord-00000-of-00001.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for start in range(lo, hi, 100_000):
                chunk = {name: data[name][start:min(hi, start + 100_000)].tolist() for name in names}
                for i in range(len(chunk[names[0]])):
                    feature = {}
                    for name in names:
                        value = chunk[name][i]
                        if kinds[name] == "U":
                            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
                        elif kinds[name] == "f":
                            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
                        else:
                            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
                    writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return out_dir


def _load_1min() -> float:
    with open("/proc/loadavg") as handle:
        return float(handle.read().split()[0])


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1), "max": round(max(values), 1)}


def evaluator_alone(spec_path: str, sizes: list[tuple[int, int]], products: int, every: float, out: str,
                    runner: str = "process", reuse: bool = False) -> dict[str, Any]:
    """The Evaluator alone, in a fresh process per size and repeat, over one trained run's model and
    transform: only the rows grow (the catalog is the same), so its peak RSS ratio (of the medians) is
    the streaming's. runner "beam": the Beam job (DirectRunner). reuse: the examples an earlier run wrote
    at that size (a size's repeats always share theirs)."""
    figures = {}
    for rows, times in sizes:
        earlier = sorted(glob.glob(os.path.join(tempfile.gettempdir(), f"trainyard-scale-eval-{rows}-*", "examples")),
                         key=os.path.getmtime) if reuse else []
        workdir = tempfile.mkdtemp(prefix=f"trainyard-scale-eval-{rows}-{runner}-")
        started = time.time()
        examples = earlier[-1] if earlier else write_examples(os.path.join(workdir, "examples"), rows, products)
        written = time.time() - started
        repeats = []
        for repeat in range(times):
            result = os.path.join(workdir, f"evaluation-{repeat}.json")
            load_before = _load_1min()
            seconds, sampler, code = run_measured(
                [sys.executable, os.path.abspath(__file__), "--child-evaluate", spec_path, result, examples, runner],
                every, os.path.join(workdir, "child.log"))
            if code:
                raise SystemExit(f"the Evaluator at {rows:,} rows failed (exit {code}); see {workdir}/child.log")
            with open(result) as handle:
                evaluation = json.load(handle)
            repeats.append({"seconds": round(seconds, 1), "peak_rss_mb": round(sampler.peak() / 2**20),
                            "load_1min_before": load_before, "load_1min_after": _load_1min(),
                            "load_1min_median": round(statistics.median(sampler.loads), 2),
                            "ease_skipped_reason": evaluation.get("ease_skipped_reason"),
                            "ease_lambda": evaluation.get("ease_lambda"),
                            "recall_at_100": evaluation["metrics"].get("recall_at_100"),
                            "most_popular_recall_at_100": evaluation["baseline_metrics"].get("recall_at_100"),
                            "ease_recall_at_100": (evaluation.get("ease_metrics") or {}).get("recall_at_100")})
            print(json.dumps({"evaluator_alone_rows": rows, "repeat": repeat + 1, **repeats[-1]}), flush=True)
        figures[_label(rows)] = {"runner": runner, "repeats": len(repeats), "examples_written_seconds": round(written, 1),
                                 "peak_rss_mb": _spread([r["peak_rss_mb"] for r in repeats]),
                                 "seconds": _spread([r["seconds"] for r in repeats]), "runs": repeats}
    first = next(iter(figures.values()))["peak_rss_mb"]["median"]
    report = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
              "model_of": spec_path, "sizes": figures,
              "peak_rss_ratio": {label: round(f["peak_rss_mb"]["median"] / first, 3) for label, f in figures.items()}}
    path = os.path.join(out, f"evaluator-{datetime.now(timezone.utc):%Y%m%dT%H%M}.json")
    with open(path, "w") as handle:
        json.dump(report, handle, indent=2)
    print(json.dumps(report, indent=2))
    return report


# --------------------------------------------------------------------------- EASE's fit alone

EASE_TRAIN_SHARE, EASE_BATCH_ROWS = 0.8, 1024  # the Evaluator alone's train cut and its batch


def child_ease(count: str, products: str, out_path: str) -> None:
    """EASE's fit alone (baselines.Ease) on the train cut of `count` demo_data rows streamed in the
    Evaluator's batches: its seconds, this process's RSS when the train pass is done, and the peak during
    the fit (sampled every 10 ms), so what the fit adds is apart from TensorFlow and the model."""
    from pipeline_compiler.baselines import Ease, TrainInteractions
    from pipeline_compiler.demo_data import generate_transactions

    rows = int(count)
    data = generate_transactions(rows=rows, customers=max(400, rows // 50), products=int(products), months=6)
    cut = int(rows * EASE_TRAIN_SHARE)
    users, items = data["customer_id"][:cut].tolist(), data["product_id"][:cut].tolist()
    del data
    train = TrainInteractions(max_items=int(products))
    for start in range(0, cut, EASE_BATCH_ROWS):
        train.add(users[start:start + EASE_BATCH_ROWS], items[start:start + EASE_BATCH_ROWS])
    del users, items
    sampler = Sampler(os.getpid(), 0.01)
    before = tree_rss(os.getpid())
    started = time.time()
    ease = Ease(train, gate_k=100)
    ended = time.time()
    sampler.stop()
    peak = max(sampler.peak(started, ended), before)
    with open(out_path, "w") as handle:
        json.dump({"rows": rows, "train_rows": cut, "users": len(train.user_index), "items": len(train.item_index),
                   "fit_seconds": round(ended - started, 1), "rss_before_fit_mb": round(before / 2**20),
                   "fit_peak_rss_mb": round(peak / 2**20), "fit_adds_mb": round((peak - before) / 2**20),
                   "lambda": ease.lam}, handle)


def ease_only(sizes: list[tuple[int, int]], products: int, out: str) -> dict[str, Any]:
    """EASE's fit alone per size (a fresh process each), medians (min..max) over repeats, load beside."""
    figures: dict[str, Any] = {}
    for rows, repeats in sizes:
        runs = []
        for _ in range(repeats):
            workdir = tempfile.mkdtemp(prefix=f"ease-{rows}-", dir=out)
            result = os.path.join(workdir, "ease.json")
            load_before = _load_1min()
            _, _, code = run_measured([sys.executable, os.path.abspath(__file__), "--child-ease", str(rows),
                                       str(products), result], 1.0, os.path.join(workdir, "child.log"))
            if code:
                raise SystemExit(f"EASE's fit at {rows:,} rows failed (exit {code}); see {workdir}/child.log")
            with open(result) as handle:
                runs.append({**json.load(handle), "load_1min": [load_before, _load_1min()]})
            print(json.dumps(runs[-1]), flush=True)
        figures[_label(rows)] = {"repeats": len(runs), "users": runs[0]["users"], "items": runs[0]["items"],
                                 "lambda": runs[0]["lambda"],
                                 **{key: _spread([r[key] for r in runs])
                                    for key in ("fit_seconds", "fit_adds_mb", "fit_peak_rss_mb")}}
    first = next(iter(figures.values()))["fit_peak_rss_mb"]["median"]
    report = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
              "products": products, "sizes": figures,
              "fit_peak_rss_ratio": {label: round(f["fit_peak_rss_mb"]["median"] / first, 3)
                                     for label, f in figures.items()}}
    with open(os.path.join(out, f"ease-{datetime.now(timezone.utc):%Y%m%dT%H%M}.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    print(json.dumps(report, indent=2))
    return report


# --------------------------------------------------------------------------- the ScaNN index alone

SCANN_DIM, SCANN_QUERIES, SCANN_K = 32, 1000, 100  # the default towers' embedding width; recall@100


def child_scann(count: str, variant: str, out_path: str) -> None:
    """Builds the index over `count` clustered vectors as the Trainer exports it ("sized": export.build_index)
    or as TFRS's own ScaNN layer with the same leaves ("tfrs": the 100k training sample it fixes); writes the
    build's seconds and this process's peak RSS (ru_maxrss, taken before the recall's exact search), and
    recall@100 against the exact top 100 of SCANN_QUERIES queries."""
    import resource

    import numpy as np
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    from bench.ml import clustered_vectors, recall
    from pipeline_compiler.modules import export
    from shared.domain.run_config import RetrievalIndex

    rows = int(count)
    rng = np.random.default_rng(11)
    candidates = clustered_vectors(rows, SCANN_DIM, 1000, rng)
    queries = clustered_vectors(SCANN_QUERIES, SCANN_DIM, 1000, rng)
    ids = np.arange(rows).astype(str)
    held_mb = int(_read_proc(os.getpid(), "statm").split()[1]) * PAGE / 2**20
    plan = export.index_plan(rows, SCANN_K, RetrievalIndex())
    started = time.perf_counter()
    if variant == "sized":
        index = export.build_index(candidates, ids, RetrievalIndex(), k=SCANN_K)
    else:
        params = export.scann_parameters(rows, SCANN_K, RetrievalIndex())
        index = tfrs.layers.factorized_top_k.ScaNN(k=SCANN_K, **params)
        index.index(tf.constant(candidates), tf.constant(ids))
    build_seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    _, found = index(tf.constant(queries))
    search_seconds = time.perf_counter() - started
    found = found.numpy().astype(np.int64)
    # ScaNN's exact scan (C++): numpy's top-k over 100 queries x 5M candidates held ~8 GB more, and the
    # first 5M run was OOM-killed at 14.5 GB
    import scann

    truth, _ = scann.scann_ops_pybind.builder(candidates, SCANN_K, "dot_product").score_brute_force().build() \
        .search_batched(queries)
    truth = np.asarray(truth)
    with open(out_path, "w") as handle:
        json.dump({"candidates": rows, "variant": variant, "plan": plan if variant == "sized" else
                   {**export.scann_parameters(rows, SCANN_K, RetrievalIndex()), "training_sample_size": 100_000},
                   "build_seconds": round(build_seconds, 1), "peak_rss_mb": round(peak_mb),
                   "vectors_held_rss_mb": round(held_mb), "recall_at_100": round(recall(found, truth), 4),
                   "queries_per_second": round(SCANN_QUERIES / search_seconds)}, handle)
    os._exit(0)


def scann_only(sizes: list[tuple[int, int]], variants: list[str], out: str) -> dict[str, Any]:
    """The index build alone per size (fresh process each), medians over repeats, load beside each."""
    figures: dict[str, Any] = {}
    for rows, repeats in sizes:
        for variant in variants:
            runs = []
            for _ in range(repeats):
                workdir = tempfile.mkdtemp(prefix=f"scann-{rows}-", dir=out)  # its result and log, beside the report
                result = os.path.join(workdir, "scann.json")
                load_before = os.getloadavg()[0]
                _, _, code = run_measured([sys.executable, os.path.abspath(__file__), "--child-scann", str(rows),
                                           variant, result], 1.0, os.path.join(workdir, "child.log"))
                if code:
                    raise SystemExit(f"the ScaNN build at {rows:,} failed (exit {code}); see {workdir}/child.log")
                with open(result) as handle:
                    runs.append({**json.load(handle), "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]})
                print(json.dumps(runs[-1]), flush=True)
            summary = {key: {"median": statistics.median(r[key] for r in runs),
                             "min": min(r[key] for r in runs), "max": max(r[key] for r in runs)}
                       for key in ("build_seconds", "peak_rss_mb", "recall_at_100", "queries_per_second")}
            figures[f"{_label(rows)} {variant}"] = {"repeats": len(runs), "plan": runs[0]["plan"], **summary,
                                                    "vectors_held_rss_mb": runs[0]["vectors_held_rss_mb"],
                                                    "load_1min": [r["load_1min"] for r in runs]}
    report = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
              "dim": SCANN_DIM, "queries": SCANN_QUERIES, "k": SCANN_K, "indexes": figures}
    path = os.path.join(out, f"scann-{datetime.now(timezone.utc):%Y%m%dT%H%M}.json")
    with open(path, "w") as handle:
        json.dump(report, handle, indent=2)
    print(json.dumps(report, indent=2))
    return report


def _newest(pattern: str) -> str:
    found = sorted(glob.glob(pattern, recursive=True), key=os.path.getmtime)
    if not found:
        raise SystemExit(f"nothing matches {pattern}")
    return found[-1]


def data_stages(sizes: list[tuple[int, int]], workers: list[int], args) -> dict[str, Any]:
    """Examples and Stats alone per direct-runner worker count, in the same script and load window: each
    repeat runs every worker count (order alternating between repeats) over the same CSV, a fresh process
    and pipeline root each; seconds and CPU seconds from ML Metadata's windows, peak RSS of the tree (the
    SDK worker processes included). The ratio of each count's median seconds to one worker's is the figure."""
    from pipeline_compiler.demo_data import demo_run_spec
    from shared.contract.nodes import STAGE_OF_NODE

    figures: dict[str, Any] = {}
    for rows, repeats in sizes:
        workroot = tempfile.mkdtemp(prefix=f"trainyard-scale-data-{_label(rows)}-")
        data = os.path.join(workroot, "data", "interactions.csv")
        written = write_data(data, rows, args.products)
        runs: dict[int, list[dict[str, Any]]] = {w: [] for w in workers}
        for repeat in range(repeats):
            for count in (workers if repeat % 2 == 0 else list(reversed(workers))):
                workdir = os.path.join(workroot, f"w{count}-r{repeat}")
                spec = demo_run_spec(data, os.path.join(workdir, "artifacts"), os.path.join(workdir, "root"),
                                     run_id=f"scale-data-{rows}", evaluator_config={"enabled": True})
                os.makedirs(workdir, exist_ok=True)
                spec_path, metadata = os.path.join(workdir, "run_spec.json"), os.path.join(workdir, "metadata.sqlite")
                with open(spec_path, "w") as handle:
                    handle.write(spec.model_dump_json())
                load_before = _load_1min()
                _, sampler, code = run_measured(
                    [sys.executable, os.path.abspath(__file__), "--child-data-stages", spec_path, metadata, str(count)],
                    args.sample_seconds, os.path.join(workdir, "child.log"))
                if code:
                    raise SystemExit(f"Examples/Stats at {rows:,} rows, {count} workers failed (exit {code}); "
                                     f"see {workdir}/child.log")
                windows = stage_windows(metadata)
                run = {"workers": count, "repeat": repeat + 1, "load_1min": [load_before, _load_1min()],
                       "load_1min_median": round(statistics.median(sampler.loads), 2) if sampler.loads else None}
                for node in DATA_STAGE_NODES:
                    start, end = windows[node]
                    run[STAGE_OF_NODE[node]] = {"seconds": round(end - start, 2), "cpu_seconds": sampler.cpu_seconds(start, end),
                                                "peak_rss_mb": round(sampler.peak(start, end) / 2**20)}
                print(json.dumps({"data_stages_rows": rows, **run}), flush=True)
                runs[count].append(run)
        by_workers = {}
        for count, done in runs.items():
            by_workers[str(count)] = {
                stage: {key: _spread([r[stage][key] for r in done]) for key in ("seconds", "cpu_seconds", "peak_rss_mb")}
                for stage in (STAGE_OF_NODE[n] for n in DATA_STAGE_NODES)}
            by_workers[str(count)]["load_1min"] = [r["load_1min"] for r in done]
        one = by_workers[str(workers[0])]
        figures[_label(rows)] = {
            "repeats": repeats, "data_seconds": round(written, 1), "workers": by_workers, "runs": runs,
            "seconds_ratio_to_first": {str(count): {stage: round(by_workers[str(count)][stage]["seconds"]["median"]
                                                                / one[stage]["seconds"]["median"], 3)
                                                     for stage in ("Examples", "Stats")} for count in workers}}
    report = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
              "products": args.products, "sizes": figures}
    with open(os.path.join(args.out, f"data-stages-{datetime.now(timezone.utc):%Y%m%dT%H%M}.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    print(json.dumps({label: f["seconds_ratio_to_first"] for label, f in figures.items()}, indent=2))
    return report


# --------------------------------------------------------------------------- one size, one repeat


def stage_windows(metadata_path: str) -> dict[str, tuple[float, float]]:
    """Node id -> (start, end) unix seconds of its execution, from ML Metadata."""
    with sqlite3.connect(metadata_path) as db:
        rows = db.execute(
            "SELECT c.name, e.create_time_since_epoch, e.last_update_time_since_epoch FROM Execution e "
            "JOIN Association a ON a.execution_id = e.id JOIN Context c ON c.id = a.context_id "
            "JOIN Type t ON t.id = c.type_id WHERE t.name = 'node'").fetchall()
    return {name.split(".", 1)[1]: (start / 1000.0, end / 1000.0) for name, start, end in rows}


def write_data(path: str, rows: int, products: int) -> float:
    from pipeline_compiler.demo_data import write_csv

    started = time.time()
    write_csv(path, rows=rows, customers=max(400, rows // 50), products=products, months=6)
    return time.time() - started


def one_run(rows: int, data_path: str, workdir: str, args) -> dict[str, Any]:
    from pipeline_compiler.demo_data import demo_run_spec
    from shared.contract.nodes import NODE_IDS, STAGE_OF_NODE

    run_id = f"scale-{rows}"
    spec = demo_run_spec(
        data_path, os.path.join(workdir, "artifacts"), os.path.join(workdir, "root"), run_id=run_id,
        training_params={"epochs": args.epochs, "batch_size": args.batch_size,
                         "early_stopping": {"enabled": False}},
        evaluator_config={"enabled": True})
    os.makedirs(workdir, exist_ok=True)
    spec_path = os.path.join(workdir, "run_spec.json")
    with open(spec_path, "w") as handle:
        handle.write(spec.model_dump_json())
    metadata = os.path.join(workdir, "metadata.sqlite")
    log_path = os.path.join(workdir, "child.log")
    me = os.path.abspath(__file__)
    seconds, sampler, code = run_measured(
        [sys.executable, me, "--child-pipeline", spec_path, os.path.join(workdir, "registry"), metadata],
        args.sample_seconds, log_path)
    if code:
        raise SystemExit(f"the pipeline at {rows:,} rows failed (exit {code}); see {log_path}")
    windows = stage_windows(metadata)
    stages = {}
    for node in NODE_IDS:
        start, end = windows[node]
        stages[STAGE_OF_NODE[node]] = {"seconds": round(end - start, 2),
                                       "rows_per_second": round(rows / max(end - start, 1e-3)),
                                       "cpu_seconds": sampler.cpu_seconds(start, end),
                                       "peak_rss_mb": round(sampler.peak(start, end) / 2**20)}
    eval_out = os.path.join(workdir, "evaluation_alone.json")
    eval_seconds, eval_sampler, code = run_measured(
        [sys.executable, me, "--child-evaluate", spec_path, eval_out], args.sample_seconds, log_path)
    if code:
        raise SystemExit(f"the Evaluator alone at {rows:,} rows failed (exit {code}); see {log_path}")
    with open(eval_out) as handle:
        evaluation = json.load(handle)
    return {"pipeline_seconds": round(seconds, 1), "pipeline_peak_rss_mb": round(sampler.peak() / 2**20),
            "stages": stages,
            "evaluator_alone": {"seconds": round(eval_seconds, 1), "peak_rss_mb": round(eval_sampler.peak() / 2**20),
                                "metrics": evaluation["metrics"], "baselines": evaluation["baseline_metrics"]},
            "load_average_1min": round(statistics.median(sampler.loads), 2) if sampler.loads else None}


# --------------------------------------------------------------------------- figures


def slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log(y) on log(x): the growth exponent."""
    points = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len(points) < 2:
        return None
    mx = statistics.fmean(p[0] for p in points)
    my = statistics.fmean(p[1] for p in points)
    den = sum((p[0] - mx) ** 2 for p in points)
    return round(sum((p[0] - mx) * (p[1] - my) for p in points) / den, 3) if den else None


def summarise(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and spread (min..max) over the repeats of every figure."""
    def fig(values):
        return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
                "max": round(max(values), 2)}

    stages = {stage: {key: fig([r["stages"][stage][key] for r in repeats]) for key in repeats[0]["stages"][stage]
                      if all(key in r["stages"][stage] for r in repeats)}
              for stage in repeats[0]["stages"]}
    return {"repeats": len(repeats), "stages": stages,
            "pipeline_seconds": fig([r["pipeline_seconds"] for r in repeats]),
            "pipeline_peak_rss_mb": fig([r["pipeline_peak_rss_mb"] for r in repeats]),
            "evaluator_alone_peak_rss_mb": fig([r["evaluator_alone"]["peak_rss_mb"] for r in repeats]),
            "evaluator_alone_seconds": fig([r["evaluator_alone"]["seconds"] for r in repeats]),
            "load_average_1min": fig([r["load_average_1min"] for r in repeats])}


# The data stages a Dataflow-bound run sends to Dataflow (pipeline_compiler/pipeline.py passes the
# Beam args to ExampleGen, StatisticsGen and Transform; SchemaGen and the rest run in their own tasks).
DATAFLOW_STAGES = ("Examples", "Stats", "Transform")
# Each Dataflow job first starts its worker VMs and their SDK containers; 3 minutes is the allowance
# here: an assumption (no documented figure was found), to replace with the first cloud run's measure.
DATAFLOW_STARTUP_SECONDS = 180


def dataflow_projection(by_size: dict[int, dict[str, Any]], exponents: dict[str, float | None],
                        min_rows: int, machine_vcpus: int, max_workers: int, local_workers: int = 1) -> dict[str, Any]:
    """Time per data stage at 10M and 100M rows on Dataflow, and the worker count, from the local figures.

    Basis: the largest measured size's seconds on one DirectRunner worker scaled to the target size
    (linearly, or by the fitted exponent when the sizes measured span 10x or more); on a loaded
    machine those seconds overstate one core's work, so the projection errs long; Dataflow divides that work over workers x vCPUs
    (a Python SDK container uses every core of its worker unless its image asks for one core:
    SdkHarnessContainerImage.use_single_core_per_container, cloud.google.com/python/docs/reference/
    dataflow/latest/google.cloud.dataflow_v1beta3.types.SdkHarnessContainerImage) with perfect scaling as the optimistic
    bound, plus the start-up allowance; the worker count is what brings each stage under 10 minutes
    of work, capped at TRAINYARD_DATAFLOW_MAX_WORKERS.
    """
    largest = max(by_size)
    out: dict[str, Any] = {"basis": dataflow_projection.__doc__.split("Basis: ", 1)[1].strip(),
                           "goes_to_dataflow_from_rows": min_rows, "stages": list(DATAFLOW_STAGES)}
    for target in (10_000_000, 100_000_000):
        plan = {}
        for stage in DATAFLOW_STAGES:
            measured = by_size[largest]["stages"][stage]["seconds"]["median"] * local_workers
            # The data stages' work is linear in rows; a fitted exponent is used only when the sizes span
            # at least 10x (below that, start-up costs and the shared machine's load swing the fit), and
            # never below 1 (a sub-linear fit is start-up cost).
            fitted = exponents.get(stage) or 1.0
            exponent = max(1.0, fitted) if max(by_size) >= 10 * min(by_size) else 1.0
            one_core = measured * (target / largest) ** exponent
            workers = min(max_workers, max(1, math.ceil(one_core / (600 * machine_vcpus))))
            plan[stage] = {"one_core_seconds": round(one_core), "workers": workers,
                           "seconds": round(one_core / (workers * machine_vcpus) + DATAFLOW_STARTUP_SECONDS),
                           "growth_exponent_used": exponent}
        out[f"{target:,} rows"] = plan
    return out


def markdown(report: dict[str, Any]) -> str:
    sizes = report["sizes"]
    lines = [f"Measured {report['date']} on {report['machine']}; medians over repeats (min..max), "
             f"median 1-min load average during the run beside each size.", "",
             "| rows | stage | seconds | rows/s | peak RSS MB | repeats | load |",
             "|---|---|---|---|---|---|---|"]
    for label, figures in sizes.items():
        load = figures["load_average_1min"]
        for stage, f in figures["stages"].items():
            s, r, m = f["seconds"], f["rows_per_second"], f["peak_rss_mb"]
            lines.append(f"| {label} | {stage} | {s['median']} ({s['min']}..{s['max']}) | {r['median']:,.0f} | "
                         f"{m['median']:,.0f} ({m['min']:,.0f}..{m['max']:,.0f}) | {figures['repeats']} | "
                         f"{load['median']} ({load['min']}..{load['max']}) |")
        e = figures["evaluator_alone_peak_rss_mb"]
        lines.append(f"| {label} | Evaluator alone | {figures['evaluator_alone_seconds']['median']} | | "
                     f"{e['median']:,.0f} ({e['min']:,.0f}..{e['max']:,.0f}) | {figures['repeats']} | |")
    lines += ["", "| stage | time exponent | RSS exponent |", "|---|---|---|"]
    for stage, ex in report["growth_exponents"].items():
        lines.append(f"| {stage} | {ex['seconds']} | {ex['peak_rss_mb']} |")
    if report.get("evaluator_rss_ratio"):
        lines += ["", f"Evaluator alone, peak RSS ratio: {report['evaluator_rss_ratio']}"]
    return "\n".join(lines)


def machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        pass
    with open("/proc/meminfo") as handle:
        mem_kb = int(handle.readline().split()[1])
    return f"{os.cpu_count()} CPUs ({model or platform.machine()}), {mem_kb / 2**20:.1f} GiB RAM, {platform.system()}"


def build_report(runs: dict[int, list[dict[str, Any]]], labels: dict[int, str], settings: dict[str, Any],
                 data_seconds: dict[int, float]) -> dict[str, Any]:
    """The report from every repeat's figures: medians and spread per size, exponents, the projection."""
    from pipeline_compiler import PipelineEnv

    env = PipelineEnv.current()  # the Dataflow machine, worker cap and row threshold a cloud run would use
    by_size = {rows: {**summarise(repeats), "data_seconds": data_seconds.get(rows), "runs": repeats}
               for rows, repeats in runs.items()}
    sizes = sorted(by_size)
    exponents = {}
    for stage in list(by_size[sizes[0]]["stages"]) + ["Evaluator alone"]:
        if stage == "Evaluator alone":
            secs = [by_size[s]["evaluator_alone_seconds"]["median"] for s in sizes]
            rss = [by_size[s]["evaluator_alone_peak_rss_mb"]["median"] for s in sizes]
        else:
            secs = [by_size[s]["stages"][stage]["seconds"]["median"] for s in sizes]
            rss = [by_size[s]["stages"][stage]["peak_rss_mb"]["median"] for s in sizes]
        exponents[stage] = {"seconds": slope(sizes, secs), "peak_rss_mb": slope(sizes, rss)}
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
        "settings": settings,
        "sizes": {labels[s]: by_size[s] for s in sizes},
        "growth_exponents": exponents,
        "evaluator_rss_ratio": {f"{labels[s]}/{labels[sizes[0]]}": round(
            by_size[s]["evaluator_alone_peak_rss_mb"]["median"] / by_size[sizes[0]]["evaluator_alone_peak_rss_mb"]["median"], 3)
            for s in sizes[1:]},
        "dataflow": dataflow_projection(by_size, {s: e["seconds"] for s, e in exponents.items()},
                                        env.dataflow_min_rows, _vcpus(env.dataflow_machine_type),
                                        env.dataflow_max_workers),
    }


def _label(rows: int) -> str:
    return next((name for name, value in SIZES.items() if value == rows), str(rows))


def _sizes(text: str, repeats: int) -> list[tuple[int, int]]:
    """"100k:3,5M" -> [(100000, 3), (5000000, repeats)]."""
    return [(SIZES.get(label) or int(label), int(times or repeats))
            for label, _, times in (item.partition(":") for item in text.split(",") if item)]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-pipeline":
        return child_pipeline(*sys.argv[2:5])
    if len(sys.argv) > 1 and sys.argv[1] == "--child-evaluate":
        return child_evaluate(*sys.argv[2:6])
    if len(sys.argv) > 1 and sys.argv[1] == "--child-scann":
        return child_scann(*sys.argv[2:5])
    if len(sys.argv) > 1 and sys.argv[1] == "--child-ease":
        return child_ease(*sys.argv[2:5])
    if len(sys.argv) > 1 and sys.argv[1] == "--child-data-stages":
        return child_data_stages(*sys.argv[2:5])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k:3,1M,5M",
                        help=f"comma-separated, of {', '.join(SIZES)} or a number, each with :repeats (else --repeats)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--products", type=int, default=5_000)
    parser.add_argument("--sample-seconds", type=float, default=0.25)
    parser.add_argument("--out", default=os.path.join(ROOT, ".local", "bench-scale"))
    parser.add_argument("--from-runs", nargs="*", metavar="LOG",
                        help="no runs: rebuild the report from the per-repeat JSON lines earlier runs printed")
    parser.add_argument("--evaluator-alone", metavar="RUN_SPEC",
                        help="only the Evaluator, at each size, over this finished run's model and transform")
    parser.add_argument("--evaluator-runner", choices=("process", "beam"), default="process",
                        help="--evaluator-alone: in one process (evaluate_model) or as the Beam job (DirectRunner)")
    parser.add_argument("--reuse-examples", action="store_true",
                        help="--evaluator-alone: reuse the examples an earlier run wrote at each size")
    parser.add_argument("--scann-only", nargs="?", const="sized", metavar="VARIANTS",
                        help="only the retrieval index build at each size: sized (the export's), tfrs (TFRS's own "
                             "ScaNN, the 100k sample), or both comma-separated")
    parser.add_argument("--ease-only", action="store_true",
                        help="only EASE's fit (the Evaluator's baseline) at each size: seconds and the memory it adds")
    parser.add_argument("--data-stages", metavar="WORKERS",
                        help="only Examples and Stats at each size, once per direct-runner worker count "
                             "(comma-separated, e.g. 1,2: in memory against multi-processing)")
    args = parser.parse_args()

    if args.data_stages:
        os.makedirs(args.out, exist_ok=True)
        data_stages(_sizes(args.sizes, args.repeats), [int(w) for w in args.data_stages.split(",")], args)
        return
    if args.ease_only:
        os.makedirs(args.out, exist_ok=True)
        ease_only(_sizes(args.sizes, args.repeats), args.products, args.out)
        return
    if args.scann_only:
        os.makedirs(args.out, exist_ok=True)
        sizes = _sizes(args.sizes, args.repeats)
        scann_only(sizes, args.scann_only.split(","), args.out)
        return
    if args.evaluator_alone:
        sizes = _sizes(args.sizes, args.repeats)
        os.makedirs(args.out, exist_ok=True)
        evaluator_alone(args.evaluator_alone, sizes, args.products, args.sample_seconds, args.out,
                        args.evaluator_runner, args.reuse_examples)
        return

    settings = {"epochs": args.epochs, "batch_size": args.batch_size, "products": args.products,
                "users": "rows / 50 (at least 400)"}
    os.makedirs(args.out, exist_ok=True)
    runs: dict[int, list[dict[str, Any]]] = {}
    data_seconds: dict[int, float] = {}
    for path in args.from_runs or []:
        with open(path) as handle:
            for line in handle:
                if line.startswith('{"rows"'):
                    figures = json.loads(line)
                    runs.setdefault(figures["rows"], []).append(figures)
    for item in [s for s in args.sizes.split(",") if s] if args.from_runs is None else []:
        label, _, times = item.partition(":")
        rows = SIZES.get(label) or int(label)
        workroot = tempfile.mkdtemp(prefix=f"trainyard-scale-{label}-")
        data = os.path.join(workroot, "data", "interactions.csv")
        data_seconds[rows] = round(write_data(data, rows, args.products), 1)
        for repeat in range(int(times or args.repeats)):
            outcome = one_run(rows, data, os.path.join(workroot, f"r{repeat}"), args)
            print(json.dumps({"rows": rows, "repeat": repeat + 1, **outcome}), flush=True)
            runs.setdefault(rows, []).append(outcome)
    report = build_report(runs, {rows: _label(rows) for rows in runs}, settings, data_seconds)
    path = os.path.join(args.out, f"scale-{datetime.now(timezone.utc):%Y%m%dT%H%M}.json")
    with open(path, "w") as handle:
        json.dump(report, handle, indent=2)
    print(markdown(report))
    print(json.dumps(report["dataflow"], indent=2))
    print(path)


def _vcpus(machine_type: str) -> int:
    """vCPUs of a Compute Engine machine type named <family>-<kind>-<vcpus> (e2-standard-4 -> 4)."""
    tail = machine_type.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 1


if __name__ == "__main__":
    main()
