"""A data stage's launcher, as it runs inside a Vertex pipeline task of the GPU image: build the run's
pipeline, and run ExampleGen's executor (our DoFns, TFX's readers) with Beam's portable runner on an
external worker pool, the stand-in for Dataflow workers started from the Dataflow image's tree.

    python data_stage.py <csv> <workdir> <worker pool port>      (PYTHONPATH = the GPU image's tree)

Run as a script with nothing of the repository on the path but the image's tree."""
import os
import sys

from google.protobuf.message import Message
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from pipeline_compiler import example_gen
from pipeline_compiler.demo_data import demo_run_spec, write_csv
from pipeline_compiler.environment import PipelineEnv
from pipeline_compiler.pipeline import create_pipeline


def main(csv: str, workdir: str, port: str) -> int:
    write_csv(csv, rows=1500, customers=80, products=80, months=2, seed=3)
    spec = demo_run_spec(csv, os.path.join(workdir, "artifacts"), os.path.join(workdir, "root"), run_id="rehearsal")
    pipeline = create_pipeline(spec, PipelineEnv(local_registry_dir=os.path.join(workdir, "registry")))
    component = next(c for c in pipeline.components if c.id == "ExampleGen")
    # What the launcher hands the executor: protos as JSON, as TFX's own launcher does.
    props = {k: proto_utils.proto_to_json(v) if isinstance(v, Message) else v for k, v in component.exec_properties.items()}
    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(workdir, "examples")
    args = ["--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=EXTERNAL",
            f"--environment_config=localhost:{port}"]
    context = BaseBeamExecutor.Context(beam_pipeline_args=args, tmp_dir=os.path.join(workdir, "tmp"), unique_id="1")
    example_gen.Executor(context).Do({}, {"examples": [examples]}, props)
    print("SPLITS " + " ".join(sorted(os.listdir(examples.uri))))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
