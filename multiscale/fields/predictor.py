"""Use a field predictor file in physical units: ``FieldPredictor.load(path).predict(specimen, xy)``."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from ..model.artifact import load, register_smoke_test
from ..model.contract import FieldMetadata, ModelContractError
from .inputs import (GLOBAL_FEATURES, MAX_TIPS, N_CRACK_TOKENS, N_EDGE_TOKENS, TOKEN_FEATURES, model_inputs,
                     n_tips, scales)

SCALING = "x* = x/W, u* = u E/(s W), sigma* = sigma/s, K* = K/(s sqrt(W))"


def input_spec() -> dict:
    return {"token_features": TOKEN_FEATURES, "n_tokens": N_EDGE_TOKENS + N_CRACK_TOKENS,
            "global_features": GLOBAL_FEATURES, "max_tips": MAX_TIPS}


KEYS = ("tokens", "glob", "tips", "dirs", "tip_mask", "nu", "query")   # the module's argument order


def batch_inputs(specimens, queries, dtype=torch.float32) -> list[torch.Tensor]:
    """Network inputs for a list of specimens and their query points (each (Q, 2) L, same Q)."""
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    rows = [model_inputs(s) for s in specimens]
    rows = [r | {"query": np.asarray(xy, float) / s.width} for r, s, xy in zip(rows, specimens, queries)]

    def batch(key: str) -> torch.Tensor:   # numpy casts: a torch op per input costs more here
        arrays = [r[key] for r in rows]
        return torch.from_numpy((arrays[0][None] if len(arrays) == 1 else np.stack(arrays)).astype(np_dtype))
    return [batch(key) for key in KEYS]


@dataclass
class FieldPrediction:
    """Physical fields: displacements (n, 2) L, stresses (n, 3) GPa [xx, yy, xy], and
    k1, k2 (n_tips,) GPa sqrt(L) from the network's K head."""

    displacements: np.ndarray
    stresses: np.ndarray
    k1: np.ndarray
    k2: np.ndarray


class FieldPredictor:
    """A loaded field predictor (TorchScript module + FieldMetadata); from a compiled ``.pt2``,
    ``compiled`` is its package, which predictions run, and ``module`` the TorchScript module
    stored with it (gradients, fine-tuning)."""

    def __init__(self, module, metadata: FieldMetadata, compiled=None):
        self.module, self.metadata, self.compiled = module, metadata, compiled
        self.dtype = torch.float32 if metadata.dtype == "float32" else torch.float64
        self._frozen = compiled

    def _inference_module(self):
        """The module frozen and optimised for inference (parameters inlined as constants,
        constant subgraphs folded: ~10 % faster for one specimen); ``module`` stays as loaded
        (trainable, differentiable)."""
        if self._frozen is None:
            self._frozen = self.module
            if isinstance(self.module, torch.jit.ScriptModule):
                self._frozen = torch.jit.optimize_for_inference(torch.jit.freeze(self.module.eval()))
        return self._frozen

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FieldPredictor":
        loaded = load(path)
        if not isinstance(loaded.metadata, FieldMetadata):
            raise ModelContractError(f"{path} is an interatomic potential, not a field predictor "
                                     "(its metadata has no kind 'field')")
        if loaded.metadata.inputs != input_spec():
            raise ModelContractError(f"{path} expects inputs {loaded.metadata.inputs}, this "
                                     f"multiscale builds {input_spec()}; retrain or upgrade")
        if loaded.compiled:
            from ..model.compiled import embedded_torchscript
            return cls(embedded_torchscript(loaded.path), loaded.metadata, compiled=loaded.module)
        return cls(loaded.module, loaded.metadata)

    @torch.inference_mode()   # no autograd bookkeeping per op: ~10 % of a single call
    def predict_batch(self, specimens, queries) -> list[FieldPrediction]:
        """Fields for several specimens at once; ``queries`` a list of (Q, 2) arrays (same Q)."""
        out = self._inference_module()(*batch_inputs(specimens, queries, self.dtype))
        u, sig, k = (out[key].numpy() for key in ("displacements", "stresses", "k"))
        res = []
        for i, spec in enumerate(specimens):
            sc, nt = scales(spec), n_tips(spec)
            ki = np.multiply(k[i, :nt], sc["k"], dtype=float)
            res.append(FieldPrediction(np.multiply(u[i], sc["displacement"], dtype=float),
                                       np.multiply(sig[i], sc["stress"], dtype=float), ki[:, 0], ki[:, 1]))
        return res

    def displacement_gradients(self, specimen, xy) -> np.ndarray:
        """du_i/dx_j (n, 2, 2) of the predicted field at points (n, 2) L, by autograd."""
        inputs = batch_inputs([specimen], [np.asarray(xy, float).reshape(-1, 2)], self.dtype)
        q = inputs[6].requires_grad_(True)
        u = self.module(*inputs[:6], q)["displacements"][0]
        rows = [torch.autograd.grad(u[:, i].sum(), q, retain_graph=i == 0)[0][0] for i in range(2)]
        # u* = u E/(s W) and x* = x/W, so du/dx = (s/E) du*/dx*
        return torch.stack(rows, dim=1).double().numpy() * specimen.stress / specimen.youngs_modulus

    def predict(self, specimen, xy) -> FieldPrediction:
        """Fields of ``specimen`` at points ``xy`` (n, 2) L."""
        return self.predict_batch([specimen], [np.reshape(xy, (-1, 2))])[0]


def smoke_test(loaded) -> None:
    """Run a field predictor file on one edge-cracked specimen; check shapes and finiteness."""
    from ..continuum.specimen import Specimen
    spec = Specimen("sent", 100.0, 150.0, 30.0)
    xy = np.array([[50.0, 20.0], [80.0, -30.0], [31.0, 1.0]])
    try:
        out = loaded.module(*batch_inputs([spec], [xy], torch.float32 if loaded.metadata.dtype == "float32"
                                          else torch.float64))
    except Exception as exc:
        raise ModelContractError(f"field model {loaded.path} fails on a test specimen: "
                                 f"{str(exc).splitlines()[0]}") from None
    shapes = {"displacements": (1, 3, 2), "stresses": (1, 3, 3), "k": (1, MAX_TIPS, 2)}
    for key, shape in shapes.items():
        if key not in out or tuple(out[key].shape) != shape or not torch.isfinite(out[key]).all():
            raise ModelContractError(f"field model {loaded.path}: output {key!r} missing, not of "
                                     f"shape {shape} or not finite")


register_smoke_test("field", smoke_test)
