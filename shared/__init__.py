"""Trainyard's domain and everything the functions share. Light: no TensorFlow, TFX or Vertex SDK."""
