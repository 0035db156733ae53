"""Trainyard's model server: one implementation of "load a pushed SavedModel, call its signature on a
batch of JSON instances", used by both sides of serving:

- `model_server.savedmodel`: loading (ScaNN's TF ops registered first), request validation, predict;
- `model_server.vertex`: the prediction container Vertex AI runs (serving_image/Dockerfile);
- scripts/prediction_server.py: the local endpoints of the local stack.

It imports neither `shared` nor TensorFlow at import time: the container holds only this package, and
TensorFlow loads with the first model.
"""
