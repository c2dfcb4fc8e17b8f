"""The continuum models of the coupled crack run by name: ``"lefm"``, ``"fem"``
(:mod:`multiscale.continuum.boundary`) and ``"predictor"``, the attention field predictor
(:mod:`multiscale.fields`) on the same specimen interface.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..continuum.boundary import ContinuumModel, FEMContinuum, LEFMContinuum, SpecimenContinuum
from ..reference.material import Material


class PredictorContinuum(SpecimenContinuum):
    """The specimen's field from an attention field predictor (``[continuum] model``: a file or
    a shipped name, default "crack-fields"; "crack-fields-si" is the one fine-tuned on the
    shipped silicon model's near-tip stresses, docs/fields.md); K_unit from its K head, whose
    Williams field its displacements contain."""

    _loaded: dict = {}   # model path -> FieldPredictor, per process

    def __init__(self, mat: Material, options: dict | None = None):
        from ..model.registry import resolve
        super().__init__(mat, options)
        self.model_path = str(resolve((options or {}).get("model") or "crack-fields"))

    def _solve(self, spec):
        if self.model_path not in self._loaded:
            from ..fields.predictor import FieldPredictor
            PredictorContinuum._loaded[self.model_path] = FieldPredictor.load(self.model_path)
        predictor = self._loaded[self.model_path]
        return (predictor, spec), predictor.predict(spec, spec.tips()[:1]).k1[0]

    @staticmethod
    def _displacements(sol, xy):
        predictor, spec = sol
        return _outside_nan(spec, xy, predictor.predict(spec, xy).displacements)

    @staticmethod
    def _stresses(sol, xy):
        predictor, spec = sol
        return _outside_nan(spec, xy, predictor.predict(spec, xy).stresses)


def _outside_nan(spec, xy, values: np.ndarray) -> np.ndarray:
    """NaN rows for points outside the specimen's box (the predictor extrapolates silently)."""
    xy = np.asarray(xy, float).reshape(-1, 2)
    outside = (xy[:, 0] < 0) | (xy[:, 0] > spec.width) | (np.abs(xy[:, 1]) > spec.height / 2)
    values = np.array(values, float)
    values[outside] = np.nan
    return values


# name -> builder(Material, [continuum] options) -> ContinuumModel; new models register here
MODELS: dict[str, Callable[[Material, dict | None], ContinuumModel]] = {
    "lefm": lambda mat, options=None: LEFMContinuum(mat),
    "fem": FEMContinuum,
    "predictor": PredictorContinuum,
}


def build_continuum(kind: str, mat: Material, options: dict | None = None) -> ContinuumModel:
    """The continuum model ``kind`` for material ``mat``; ``options`` the ``[continuum]`` table
    (the specimen of "fem" and "predictor")."""
    if kind not in MODELS:
        raise ValueError(f"unknown continuum model {kind!r}; known: {sorted(MODELS)}")
    return MODELS[kind](mat, options)
