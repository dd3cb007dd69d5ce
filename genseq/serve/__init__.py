"""`genseq serve`: a local studio in the browser over the Python API (models, sampling, audio, scores, history)."""

from genseq.serve.app import create_app, run

__all__ = ["create_app", "run"]
