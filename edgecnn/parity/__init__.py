"""Prove that a model answers like its reference: agreement, differences, accuracy — TF-free.

Both sides are ``Predictor`` callables (preprocessed batch → probabilities), so the same code compares
Keras↔ONNX, FP32↔FP16, FP32↔INT8 and ONNX↔ONNX. The Keras side comes from
``edgecnn.keras_io.keras_predictor``; an ONNX side is simply a ``Classifier``.
"""

from edgecnn.parity.compare import ParityBars, ParityReport, Predictor, bars_for, compare
from edgecnn.parity.run import run_parity

__all__ = ["ParityBars", "ParityReport", "Predictor", "bars_for", "compare", "run_parity"]
