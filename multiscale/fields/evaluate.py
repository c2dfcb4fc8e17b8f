"""Score a field predictor against FE fields: relative L2 errors and K from the predicted field.

K from the predicted field, two ways: the displacements on rings (0.004 W < r < 0.02 W)
fitted with the K-fields plus an affine displacement (``k1_from_field_rel_error``; the same
fit on the FE field, ``k1_fit_on_fe_field_rel_error``, is biased by a few per cent, as the FE
field is not converged that close to the tip), and the domain interaction integral that
gives the FE K (``multiscale.continuum.sif.interaction_integral``) on the predicted
displacement field (gradients by autograd, stresses = C : strain) with polar Gauss
quadrature about each tip, over shrinking discs (``k1_field_integral_rel_error``).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..continuum import sif
from ..continuum.lefm import NearTipField
from . import data as fdata
from .metrics import R0, field_errors, tip_distance
from .predictor import FieldPredictor

RING_RADII = (0.004, 0.02)  # K-fit annulus, in units of W


def ring_points(spec, tip_index: int, n_r: int = 6, n_theta: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Points (n, 2) L on rings 0.004-0.02 W about a tip and the same points in its crack frame."""
    tip, d = spec.tips()[tip_index], spec.tip_directions()[tip_index]
    local = sif.ring_points(*(spec.width * np.asarray(RING_RADII)), n_r, n_theta)
    rot = np.array([[d[0], -d[1]], [d[1], d[0]]])
    return tip + local @ rot.T, local


def fit_k(spec, tip_index: int, u_global: np.ndarray, local: np.ndarray) -> tuple[float, float]:
    """K_I, K_II (GPa sqrt(L)) fitted to displacements (n, 2) L at ``local`` crack-frame points,
    with a rigid translation and a uniform displacement gradient (:func:`sif.fit_k`)."""
    d = spec.tip_directions()[tip_index]
    rot = np.array([[d[0], -d[1]], [d[1], d[0]]])
    u = u_global @ rot  # crack-frame components
    x, y, zero = local[:, 0] / spec.width, local[:, 1] / spec.width, np.zeros(len(local))
    gradient = [np.column_stack(c) for c in ((x, zero), (y, zero), (zero, x), (zero, y))]
    field = NearTipField.isotropic(spec.youngs_modulus, spec.poisson_ratio)
    coef, _ = sif.fit_k(field, local, u, 2, gradient)
    return float(coef[0]), float(coef[1])


def domain_radius(spec) -> float:
    """Interaction-integral disc radius (L): the FE solver's default, half the distance from a
    tip to the nearest boundary, the other tip or the crack mouth."""
    gaps = [spec.crack_length]
    for x, y in spec.tips():
        gaps += [x, spec.width - x, spec.height / 2 - y, spec.height / 2 + y]
    return 0.5 * min(gaps)


def k_from_field(predictor, spec, tip_index: int, radius: float | None = None, n_r: int = 24,
                 n_theta: int = 96) -> tuple[float, float]:
    """K_I, K_II (GPa sqrt(L)) by the interaction integral on the predicted field over a disc
    of ``radius`` (L) about the tip, by default R0 W = 0.02 W (or less where the FE solver's
    own disc, :func:`domain_radius`, is smaller).

    K is the strength of the field's singularity, so the smallest disc the quadrature
    resolves measures it best: the predictor's smooth part has bounded stress at the tip
    (no sqrt(r) features), and its errors enter the integral in proportion to sqrt(radius)."""
    radius = radius or min(R0 * spec.width, domain_radius(spec))
    tip, d = spec.tips()[tip_index], spec.tip_directions()[tip_index]
    g, gw = np.polynomial.legendre.leggauss(n_r)
    r, wr = radius * (g + 1) / 2, radius / 2 * gw
    t = np.linspace(-math.pi, math.pi, n_theta + 1)[:-1] + math.pi / n_theta
    rr, tt = np.meshgrid(r, t)
    weights = (rr * np.meshgrid(wr, t)[0]).ravel() * (2 * math.pi / n_theta)
    local = np.column_stack([(rr * np.cos(tt)).ravel(), (rr * np.sin(tt)).ravel()])
    xy = tip + local @ np.array([[d[0], -d[1]], [d[1], d[0]]]).T
    grad = predictor.displacement_gradients(spec, xy)
    eps = np.stack([grad[:, 0, 0], grad[:, 1, 1], grad[:, 0, 1] + grad[:, 1, 0]], axis=1)
    s = eps @ spec.stiffness().T
    stress = np.stack([np.stack([s[:, 0], s[:, 2]], 1), np.stack([s[:, 2], s[:, 1]], 1)], 1)
    k1, k2 = sif.interaction_integral(xy, weights, grad, stress, tip, d, radius,
                                  spec.youngs_modulus, spec.poisson_ratio)
    return float(k1), float(k2)


DISCS = (0.02, 0.01, 0.005, 0.0025)  # interaction-integral disc radii / W (convergence to the head's K)


def evaluate(model_path: str | Path, data_path: str | Path, fe_check: bool = True,
             plots: str | Path | None = None, n_plots: int = 3) -> dict:
    """Errors of the predictor on every specimen of an FE dataset (JSON-ready dict).

    K of the predicted field, against the FE interaction integral: ``k1_from_field`` by the
    displacement fit on rings (0.004-0.02 W), ``k1_field_integral`` by the interaction
    integral over discs of DISCS W and over the FE solver's own disc; ``k1_from_head`` is
    the strength of the field's Williams term, which the integral tends to as the disc shrinks."""
    pred = FieldPredictor.load(model_path)
    d = fdata.read(data_path)
    errs_u, errs_s, k_fit, k_head, k_fe_fit, k2_fit, times = [], [], [], [], [], [], []
    k_disc = {f: [] for f in DISCS}
    k_fe_disc, k2_integral = [], []
    for i in range(len(d)):
        spec = d.specimen(i)
        nt = len(spec.tips())
        t0 = time.perf_counter()
        p = pred.predict(spec, d.xy[i])
        times.append(time.perf_counter() - t0)
        rtip = tip_distance(d.xy[i], d.tips[i], nt) / spec.width
        e = field_errors(p.displacements, d.u[i], p.stresses, d.sigma[i], rtip)
        errs_u.append(e["displacement_rel_l2"]), errs_s.append(e["stress_rel_l2"])
        sol = None
        if fe_check:
            from ..continuum.fem import solve
            sol = solve(spec)
        for j in range(nt):
            kfe, k2fe = d.k[i, j]
            rel = lambda k: abs(k - kfe) / abs(kfe)  # noqa: E731
            xy, local = ring_points(spec, j)
            k1, k2 = fit_k(spec, j, pred.predict(spec, xy).displacements, local)
            k_fit.append(rel(k1)), k2_fit.append(abs(k2 - k2fe) / abs(kfe))
            for f in DISCS:
                k1i, k2i = k_from_field(pred, spec, j, min(f * spec.width, domain_radius(spec)))
                k_disc[f].append(rel(k1i))
                if f == R0:
                    k2_integral.append(abs(k2i - k2fe) / abs(kfe))
            k_fe_disc.append(rel(k_from_field(pred, spec, j, domain_radius(spec))[0]))
            k_head.append(rel(p.k1[j]))
            if sol is not None:
                k_fe_fit.append(rel(fit_k(spec, j, sol.displacements(xy), local)[0]))
        if plots and i < n_plots:
            from .plots import compare_fields
            if sol is None:
                from ..continuum.fem import solve
                sol = solve(spec)
            compare_fields(spec, sol, pred, Path(plots) / f"fields_{i}.png")

    def stats(x):
        x = np.asarray(x)
        return {"mean": float(x.mean()), "max": float(x.max())}

    out = {"model": str(model_path), "data": str(data_path), "n_specimens": len(d),
           "r0_over_w": R0,
           "displacement_rel_l2": stats(errs_u),
           "stress_rel_l2_outside_r0": stats(errs_s),
           "k1_from_field_rel_error": stats(k_fit),
           "k2_from_field_error_over_k1": stats(k2_fit),
           "k_fit_annulus_over_w": list(RING_RADII),
           "k1_from_head_rel_error": stats(k_head),
           "k1_field_integral_rel_error": {str(f): stats(k_disc[f]) for f in DISCS},
           "k1_field_integral_fe_disc_rel_error": stats(k_fe_disc),
           "k2_field_integral_error_over_k1": stats(k2_integral),
           "predictor_seconds_per_specimen": float(np.median(times)),
           "fe_seconds_per_specimen": float(np.median(d.seconds))}
    if k_fe_fit:
        out["k1_fit_on_fe_field_rel_error"] = stats(k_fe_fit)
    return out
