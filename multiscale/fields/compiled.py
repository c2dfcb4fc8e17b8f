"""Crack-field predictors as compiled ``.pt2`` files (the model layer's multiscale.model.compiled).

The package holds the predictor's forward (no backward: predictions need none), with the number
of specimens and of query points dynamic, and the TorchScript archive of the same module
(``compiled.embedded_torchscript``): :class:`~multiscale.fields.predictor.FieldPredictor` predicts with the package and
differentiates (``displacement_gradients``, fine-tuning) the TorchScript module.
"""

from __future__ import annotations

import io

import numpy as np
import torch

from ..continuum.specimen import Specimen
from ..model import compiled
from ..model.contract import ModelContractError
from .predictor import KEYS, batch_inputs


def _specimens():
    """Specimens and query points: the trace's sample (2 specimens) and the check's cases."""
    rng = np.random.default_rng(0)

    def points(spec, n):
        return np.c_[rng.uniform(0.0, spec.width, n), rng.uniform(-0.5, 0.5, n) * spec.height] \
            if spec.kind == "sent" else np.c_[rng.uniform(-0.5, 0.5, (n, 2)) * [spec.width, spec.height]]
    sent, ccp = Specimen("sent", 100.0, 150.0, 30.0), Specimen("ccp", 120.0, 120.0, 20.0)
    sample = ([sent, ccp], [points(sent, 50), points(ccp, 50)])
    checks = [([sent], [points(sent, 1024)]), ([ccp, sent, ccp], [points(ccp, 7), points(sent, 7), points(ccp, 7)]),
              ([Specimen("sent", 80.0, 200.0, 50.0)], [points(sent, 1)])]
    return sample, checks


def write(module: torch.nn.Module, path, metadata, reference=None, device=torch.device("cpu"), log=None):
    """Compile the field predictor ``module`` to ``path`` for the CPU; checked against ``reference``
    (default the module) on 1 specimen x 1,024 points, 3 x 7 and 1 x 1: relative 1e-5 (float32)."""
    from torch.export import Dim, export

    if device.type != "cpu":
        raise ModelContractError(f"crack-field predictors are compiled for the CPU (the coupled run's "
                                 f"continuum rank), not {device}: leave out --device")

    say = log or (lambda message: None)
    dtype = compiled.DTYPES[metadata.dtype]
    module = module.to(dtype).eval()
    reference = module if reference is None else reference
    (specs, queries), checks = _specimens()
    batch, points = Dim("specimens", min=1, max=4096), Dim("points", min=1)
    shapes = [{0: batch}] * (len(KEYS) - 1) + [{0: batch, 1: points}]
    say(f"exporting {metadata.name} (specimens and points dynamic)")
    try:
        program = export(module, tuple(batch_inputs(specs, queries, dtype)), dynamic_shapes=shapes, strict=False)
    except Exception as exc:
        raise ModelContractError(f"field predictor cannot be exported with dynamic sizes: "
                                 f"{str(exc).strip().splitlines()[0]}") from None
    buffer = io.BytesIO()
    torch.jit.save(reference if isinstance(reference, torch.jit.ScriptModule) else torch.jit.script(module), buffer)

    def check(staged):
        package = compiled.load(staged)
        with torch.no_grad():
            for specs_k, queries_k in checks:
                inputs = batch_inputs(specs_k, queries_k, dtype)
                got = package(*inputs)
                for key, want in reference(*inputs).items():
                    compiled.check_close(key, got[key], want, 1e-5 if dtype == torch.float32 else 1e-10,
                                         f"{len(specs_k)} specimen(s) x {inputs[-1].shape[1]} points")
    with torch.no_grad():
        outputs = list(reference(*batch_inputs(specs, queries, dtype)).keys())
    return compiled.package(program, path, metadata, outputs, say, check,
                            extra={compiled.TORCHSCRIPT: buffer.getvalue()})


compiled.register_compiler("field", write)

