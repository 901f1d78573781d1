"""Inference: preprocessing, sliding-window prediction, postprocessing, run records."""
