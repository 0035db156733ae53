"""Writing a registered version's model card (shared/domain/model_card.py) from the run's own files, beside
them. The pipeline's Pusher and push-anyway both call `write_card` right after registering, so every
registered version has one, whichever way it was registered."""
from __future__ import annotations

from typing import Optional, Protocol

from shared.contract import results
from shared.domain import model_card
from shared.domain.run_config import RunSpec


class TextStore(Protocol):
    def read_text(self, uri: str) -> Optional[str]: ...

    def write_text(self, uri: str, text: str) -> None: ...


def card_uri(spec: RunSpec) -> str:
    """Where the run's card is read (the Vertex model version's description links it)."""
    return results.join(spec.artifacts_uri, results.MODEL_CARD_MARKDOWN)


def build_from_files(store: TextStore, spec: RunSpec, entry: results.RegistryEntry, pipeline_image: Optional[str] = None,
                     serving_image: Optional[str] = None, artifacts_uri: Optional[str] = None) -> model_card.ModelCard:
    """The card from what the run's stages wrote under `artifacts_uri` (the spec's unless given; a missing
    file leaves its part empty)."""
    base = artifacts_uri or spec.artifacts_uri

    def load(name: str, shape):
        text = store.read_text(results.join(base, name))
        return shape.model_validate_json(text) if text else None

    return model_card.build(spec, entry, evaluation=load(results.EVALUATION_FILE, results.Evaluation),
                            training=load(results.TRAINING_METRICS_FILE, results.TrainingMetrics),
                            data_check=load(results.DATA_CHECK_FILE, results.DataCheck),
                            pipeline_image=pipeline_image, serving_image=serving_image)


def write_card(store: TextStore, spec: RunSpec, entry: results.RegistryEntry, pipeline_image: Optional[str] = None,
               serving_image: Optional[str] = None, artifacts_uri: Optional[str] = None) -> model_card.ModelCard:
    """Build the card and store it beside the run's files, as JSON and as Markdown."""
    base = artifacts_uri or spec.artifacts_uri
    card = build_from_files(store, spec, entry, pipeline_image, serving_image, base)
    store.write_text(results.join(base, results.MODEL_CARD_JSON), card.model_dump_json(indent=2, by_alias=True))
    store.write_text(results.join(base, results.MODEL_CARD_MARKDOWN), model_card.to_markdown(card))
    return card
