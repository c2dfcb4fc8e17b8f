"""Crack-field predictors: an attention model (FieldPerceiver) trained on finite-element fields
of cracked specimens and fine-tuned on atomistic crack regions (docs/fields.md; the FNO
baseline is benchmarks/fno_baseline.py).

``FieldPredictor.load(path).predict(specimen, xy)`` gives displacements, stresses and K in
physical units; the modules are ``inputs`` (non-dimensional tokens), ``attention`` and
``williams`` (the network's parts), ``model`` (the network), ``predictor``, ``data``,
``train``, ``evaluate``, ``atomistic`` and ``finetune``, ``plots`` and ``build``, and
``compiled`` (predictors as ``.pt2`` files).
"""

from . import compiled as _compiled  # noqa: F401  registers the .pt2 compiler of kind "field"
from .predictor import FieldPrediction, FieldPredictor

__all__ = ["FieldPrediction", "FieldPredictor"]
