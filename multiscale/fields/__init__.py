"""Crack-field predictors: an attention model (FieldPerceiver) trained on finite-element fields
of cracked specimens, its data, training, evaluation and an FNO baseline (docs/fields.md).

``FieldPredictor.load(path).predict(specimen, xy)`` gives displacements, stresses and K in
physical units; the modules are ``inputs`` (non-dimensional tokens), ``model``, ``data``,
``train``, ``evaluate``, ``plots``, ``fno`` and ``build``.
"""

from .predictor import FieldPrediction, FieldPredictor

__all__ = ["FieldPrediction", "FieldPredictor"]
