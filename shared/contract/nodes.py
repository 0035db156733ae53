"""The pipeline's nodes (TFX component ids, which are also Vertex's task names) and the stage of the
run document (ARCHITECTURE.md) each reports to, in pipeline order. Compile is the submitter's own."""
from __future__ import annotations

from typing import Optional

STAGE_OF_NODE = {
    "ExampleGen": "Examples", "StatisticsGen": "Stats", "SchemaGen": "Schema", "Transform": "Transform",
    "Trainer": "Train", "Evaluator": "Evaluate", "Pusher": "Push",
}
NODE_IDS = tuple(STAGE_OF_NODE)
NODE_OF_STAGE = {stage: node for node, stage in STAGE_OF_NODE.items()}
STAGES = ("Compile",) + tuple(STAGE_OF_NODE.values())


def stage_for_task(task_name: str) -> Optional[str]:
    """The stage of a pipeline task (its name holds the node id); None for the DAG's own task."""
    for node, stage in STAGE_OF_NODE.items():
        if node.lower() in task_name.lower():
            return stage
    return None
