"""Stress intensity factors from a computed elastic field (isotropic, plane strain).

Two independent extractions:

* :func:`interaction_integral`: the domain form of the interaction integral (Yau, Wang and
  Corten 1980; Moran and Shih 1987) with the Williams K-fields of
  :class:`~multiscale.continuum.lefm.NearTipField` as auxiliary fields.  With the weight
  q(r) = (1 - r^2/R^2)^2 (smooth, 1 at the tip, 0 on r = R)

      I = integral_A (sigma_ij du^aux_i/dx_1 + sigma^aux_ij du_i/dx_1 - sigma^aux_ij eps_ij delta_1j) dq/dx_j dA,

  in the crack frame (x_1 along the crack), and K = E' I / 2 for unit auxiliary K.
  A finite-element interaction integral is not in scikit-fem or matscipy, hence written here.
* :func:`fit_displacements`: least-squares fit (:func:`fit_k`) of K_I, K_II, the T-stress and a
  rigid motion to displacements in an annulus around the tip (a cross-check; error ~ r_max / a).

Units: positions L, stresses GPa, K in GPa sqrt(L).
"""

from __future__ import annotations

import numpy as np

from .lefm import NearTipField


def crack_frame(xy, tip, direction):
    """Rotation Q (2, 2) (rows: crack-frame axes in global components) and the points
    (n, 2) in the crack frame with the tip at the origin."""
    e1 = np.asarray(direction, dtype=float) / np.linalg.norm(direction)
    rotation = np.array([[e1[0], e1[1]], [-e1[1], e1[0]]])
    return rotation, (np.asarray(xy, dtype=float) - np.asarray(tip, dtype=float)) @ rotation.T


def interaction_integral(xy, weights, grad_u, stress, tip, direction, radius,
                         youngs_modulus, poisson_ratio):
    """K_I, K_II (GPa sqrt(L)) of the tip at ``tip`` (2,) propagating along ``direction``.

    xy (n, 2) L and weights (n,) L^2: quadrature points and weights covering the specimen;
    grad_u (n, 2, 2) with [., i, j] = du_i/dx_j; stress (n, 2, 2) GPa, all in global axes.
    ``radius`` (L): the integration domain, a disc that must not reach another tip or the
    loaded boundary.
    """
    rotation, local = crack_frame(xy, tip, direction)
    r2 = (local ** 2).sum(axis=1)
    keep = r2 < radius ** 2
    local, w = local[keep], np.asarray(weights)[keep]
    grad = np.einsum("ai,nij,bj->nab", rotation, np.asarray(grad_u)[keep], rotation)
    sigma = np.einsum("ai,nij,bj->nab", rotation, np.asarray(stress)[keep], rotation)
    strain = (grad + grad.transpose(0, 2, 1)) / 2
    factor = 1 - r2[keep] / radius ** 2
    dq = -4 * factor[:, None] * local / radius ** 2        # (n, 2), gradient of q

    field = NearTipField.isotropic(youngs_modulus, poisson_ratio)
    h = 1e-6 * np.sqrt(r2[keep])[:, None] * np.array([[1.0, 0.0]])
    k_prime = youngs_modulus / (1 - poisson_ratio ** 2)
    result = []
    for k1, k2 in ((1.0, 0.0), (0.0, 1.0)):
        s = field.stresses(local, k1, k2)
        s_aux = np.stack([np.stack([s[:, 0], s[:, 2]], 1), np.stack([s[:, 2], s[:, 1]], 1)], 1)
        du1_aux = (field.displacements(local + h, k1, k2)
                   - field.displacements(local - h, k1, k2)) / (2 * h[:, :1])   # du_i^aux/dx_1
        w_int = np.einsum("nij,nij->n", s_aux, strain)
        integrand = (np.einsum("nij,ni,nj->n", sigma, du1_aux, dq)
                     + np.einsum("nij,ni,nj->n", s_aux, grad[:, :, 0], dq)
                     - w_int * dq[:, 0])
        result.append(k_prime * np.sum(integrand * w) / 2)
    return result[0], result[1]


def ring_points(r_min: float, r_max: float, n_r: int = 6, n_theta: int = 24) -> np.ndarray:
    """Points (n_r n_theta, 2) on rings about the origin, radii geometric from ``r_min`` to
    ``r_max``, angles uniform and off the crack faces (theta = +-pi)."""
    r = np.geomspace(r_min, r_max, n_r)
    t = np.linspace(-np.pi, np.pi, n_theta, endpoint=False) + np.pi / n_theta
    rr, tt = np.meshgrid(r, t, indexing="ij")
    return np.column_stack([(rr * np.cos(tt)).ravel(), (rr * np.sin(tt)).ravel()])


def fit_k(field: NearTipField, local, u, modes: int = 2, extra=()) -> tuple[np.ndarray, float]:
    """Least-squares fit of ``u`` (n, 2) at crack-frame points ``local`` (n, 2), tip at the
    origin, by the K-fields of ``field`` (K_I, and K_II if ``modes`` = 2), a rigid translation
    and the ``extra`` columns (each (n, 2)).

    Returns the coefficients [K_I, (K_II,) t_x, t_y, extra...] and the relative rms residual.
    The one displacement fit of K in multiscale: crack regions, FE fields and predictors use it.
    """
    local, u = np.asarray(local, float), np.asarray(u, float)
    columns = [field.displacements(local, 1.0, 0.0)]
    if modes == 2:
        columns.append(field.displacements(local, 0.0, 1.0))
    n = len(local)
    columns += [np.tile([1.0, 0.0], (n, 1)), np.tile([0.0, 1.0], (n, 1)), *extra]
    design = np.stack([np.asarray(c, float).reshape(-1) for c in columns], axis=1)
    coef = np.linalg.lstsq(design, u.reshape(-1), rcond=None)[0]
    residual = np.linalg.norm(design @ coef - u.reshape(-1)) / max(np.linalg.norm(u), 1e-300)
    return coef, float(residual)


def fit_displacements(xy, u, tip, direction, youngs_modulus, poisson_ratio, r_min, r_max):
    """Least-squares K_I, K_II (GPa sqrt(L)) and T-stress (GPa) from displacements ``u``
    (n, 2) L at points ``xy`` (n, 2) L with r_min < r < r_max from the tip.

    Fitted (:func:`fit_k`): the two K-fields, a rigid translation and rotation and the uniform
    T-stress field.  Points on the crack faces (theta = +-pi, ambiguous side) are left out.
    """
    rotation, local = crack_frame(xy, tip, direction)
    r = np.hypot(local[:, 0], local[:, 1])
    on_face = (np.abs(local[:, 1]) < 1e-9 * r_max) & (local[:, 0] < 0)
    keep = (r > r_min) & (r < r_max) & ~on_face
    if keep.sum() < 8:
        raise ValueError(f"only {keep.sum()} points in the annulus {r_min} < r < {r_max}; "
                         "widen it or refine the mesh")
    local = local[keep]
    u_local = np.asarray(u, dtype=float)[keep] @ rotation.T
    E, nu = youngs_modulus, poisson_ratio
    t_field = np.stack([(1 - nu ** 2) / E * local[:, 0], -nu * (1 + nu) / E * local[:, 1]], 1)
    rotation_field = np.stack([-local[:, 1], local[:, 0]], 1)
    coef, _ = fit_k(NearTipField.isotropic(E, nu), local, u_local, 2, (rotation_field, t_field))
    return coef[0], coef[1], coef[5]
