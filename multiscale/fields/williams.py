"""The analytic Williams K-fields of a crack tip, as the predictor computes them: polar
coordinates about each tip and the K-field written as basis @ matrix (plane strain, E = 1,
non-dimensional; docs/fields.md)."""

from __future__ import annotations

import math

import torch


# The per-query features are computed with the query index last, (B, P, Q) and (B, C, Q):
# every elementwise step then runs over contiguous rows (a trailing axis of 2 or 3 sends
# PyTorch's CPU kernels down their slow strided paths; this layout halved the feature cost).

def _polar(qx: torch.Tensor, qy: torch.Tensor, points: torch.Tensor, dirs: torch.Tensor):
    """Squared distance, distance and angle (each (B, P, Q)) of query points (qx, qy: (B, 1, Q))
    in the frames of points (B, P, 2) whose x axis is the unit vector dirs (B, P, 2): theta in
    (-pi, pi], +-pi on the crack faces behind a tip."""
    dx, dy = qx - points[..., 0:1], qy - points[..., 1:2]
    c, s = dirs[..., 0:1], dirs[..., 1:2]
    x = dx * c + dy * s
    y = dy * c - dx * s
    rsq = x * x + y * y + 1e-12
    return rsq, torch.sqrt(rsq), torch.atan2(y, x)


def _crack_frame(query: torch.Tensor, tips: torch.Tensor, dirs: torch.Tensor):
    """Polar coordinates r, theta (B, Q, T) of queries (B, Q, 2) about tips (B, T, 2) whose crack
    runs along dirs (B, T, 2)."""
    qt = query.transpose(1, 2)
    _, r, theta = _polar(qt[:, 0:1], qt[:, 1:2], tips, dirs)
    return r.transpose(1, 2), theta.transpose(1, 2)


HALF_ANGLES = (0.5, 1.5, 2.5)   # the Williams fields' angular multiples of theta
BASIS = 12   # per tip: sqrt(r) and 1/sqrt(r) times cos, sin of HALF_ANGLES * theta
K_TERMS = 2 * 3 * 5   # [mode I/II] x [nu^0, nu^1, nu^2] x [c, s, c^2, s^2, c s] of the crack angle


def _williams_coefficients() -> torch.Tensor:
    """(2 modes, 3 powers of nu, BASIS, 5) coefficients of the plane-strain Williams fields with
    E = 1 in the crack frame: output [ux, uy, sxx, syy, sxy] = sum over basis functions
    [sqrt(r) (c1, c3, c5, s1, s3, s5), (c1, c3, c5, s1, s3, s5) / sqrt(r)] (cn, sn = cos, sin of
    n theta / 2) times K_mode nu^p times these.  Displacements carry (1 + nu)(a + b kappa) /
    sqrt(2 pi), kappa = 3 - 4 nu, i.e. ((a + 3b) + (a - b) nu - 4b nu^2) / sqrt(2 pi)."""
    c = torch.zeros(2, 3, BASIS, 5, dtype=torch.float64)
    C1, C3, C5, S1, S3, S5 = range(6)
    # displacement terms (mode, basis, component, a, b): coefficient a + b kappa
    for mode, basis, comp, a, b in ((0, C1, 0, -0.5, 1.0), (0, C3, 0, -0.5, 0.0), (0, S1, 1, 0.5, 1.0),
                                    (0, S3, 1, -0.5, 0.0), (1, S1, 0, 1.5, 1.0), (1, S3, 0, 0.5, 0.0),
                                    (1, C1, 1, 1.5, -1.0), (1, C3, 1, -0.5, 0.0)):
        c[mode, :, basis, comp] = torch.tensor([a + 3 * b, a - b, -4 * b]) / math.sqrt(2 * math.pi)
    # stress terms (mode, basis, component, value), basis functions / sqrt(r)
    for mode, basis, comp, v in ((0, C1, 2, 0.75), (0, C1, 3, 1.25), (0, C5, 2, 0.25), (0, C5, 3, -0.25),
                                 (0, S1, 4, -0.25), (0, S5, 4, 0.25), (1, S1, 2, -1.75), (1, S1, 3, -0.25),
                                 (1, S5, 2, -0.25), (1, S5, 3, 0.25), (1, C1, 4, 0.75), (1, C5, 4, 0.25)):
        c[mode, 0, 6 + basis, comp] = v / math.sqrt(2 * math.pi)
    return c


def _rotation_coefficients() -> torch.Tensor:
    """(5, 5, 5): crack-frame outputs [ux, uy, sxx, syy, sxy] to the global frame, as a sum over
    v = [c, s, c^2, s^2, c s] (c, s: cosine and sine of the crack angle) of v_p times [p]; the
    matrix maps row = crack-frame component to column = global component."""
    rot = torch.zeros(5, 5, 5, dtype=torch.float64)
    C, S, CC, SS, CS = range(5)
    for p, row, col, v in ((C, 0, 0, 1.0), (S, 1, 0, -1.0), (S, 0, 1, 1.0), (C, 1, 1, 1.0),
                           (CC, 2, 2, 1.0), (SS, 3, 2, 1.0), (CS, 4, 2, -2.0),
                           (SS, 2, 3, 1.0), (CC, 3, 3, 1.0), (CS, 4, 3, 2.0),
                           (CS, 2, 4, 1.0), (CS, 3, 4, -1.0), (CC, 4, 4, 1.0), (SS, 4, 4, -1.0)):
        rot[p, row, col] = v
    return rot


def k_basis(r: torch.Tensor, theta: torch.Tensor, half_angles: torch.Tensor, w: torch.Tensor):
    """Basis functions of the Williams fields per tip, times the window w: (B, T * BASIS, Q),
    per tip [w sqrt(r) (c1, c3, c5, s1, s3, s5), w (c1, ..., s5) / sqrt(r)] with cn, sn = cos,
    sin of n theta / 2; r, theta, w (B, T, Q)."""
    b, t, q = r.shape[0], r.shape[1], r.shape[2]
    ang = theta.unsqueeze(2) * half_angles.view(1, 1, -1, 1)               # (B, T, 3, Q)
    trig = torch.stack([torch.cos(ang), torch.sin(ang)], dim=2)            # (B, T, 2, 3, Q)
    rho = torch.sqrt(r)
    scale = torch.stack([w * rho, w / rho], dim=2)                         # (B, T, 2, Q)
    return (trig.unsqueeze(2) * scale.view(b, t, 2, 1, 1, q)).reshape(b, -1, q)   # (B, T * BASIS, Q)


def k_matrix(k: torch.Tensor, nu: torch.Tensor, dirs: torch.Tensor, coef_rot: torch.Tensor) -> torch.Tensor:
    """(B, T, BASIS, 5): basis functions to global [ux, uy, sxx, syy, sxy] (E = 1) for stress
    intensities k (B, T, 2) [mode I, II], Poisson's ratios nu (B,) and crack directions dirs
    (B, T, 2).  The matrix is bilinear in K nu^p and in v = [c, s, c^2, s^2, c s] of the crack
    angle, so it is one product of their outer product (B, T, K_TERMS) with ``coef_rot`` (K_TERMS, BASIS
    * 5, from :func:`_k_constants`).  Writing the K-field as basis @ matrix keeps the per-query
    work to one batched product."""
    b, t = k.shape[0], k.shape[1]
    powers = torch.stack([torch.ones_like(nu), nu, nu * nu], dim=-1)     # (B, 3)
    c, s = dirs[..., 0], dirs[..., 1]
    v = torch.stack([c, s, c * c, s * s, c * s], dim=-1)                 # (B, T, 5)
    outer = (k.unsqueeze(-1) * powers.view(b, 1, 1, 3)).unsqueeze(-1) * v.view(b, t, 1, 1, 5)
    return torch.matmul(outer.reshape(b, t, -1), coef_rot).view(b, t, -1, 5)   # outer: (B, T, K_TERMS)


def _k_constants() -> torch.Tensor:
    """(K_TERMS, BASIS * 5): [mode, power of nu, rotation term] -> the Williams coefficients
    (crack frame) times the rotation to the global frame."""
    local, rot = _williams_coefficients(), _rotation_coefficients()     # (2, 3, BASIS, 5), (5, 5, 5)
    return torch.einsum("mpio,qoj->mpqij", local, rot).reshape(K_TERMS, BASIS * 5)


def williams(r: torch.Tensor, theta: torch.Tensor, dirs: torch.Tensor, nu: torch.Tensor):
    """Unit K-fields per mode (E = 1, plane strain, global frame): displacements (B, Q, T, 2, 2)
    and stresses (B, Q, T, 2, 3) [xx, yy, xy]; axis -2 is the mode (I, II).  r, theta (B, Q, T)
    about tips whose cracks run along dirs (B, T, 2); nu (B,).  The network's own K-field path
    (k_basis, k_matrix), for tests against an independent solution."""
    half = torch.tensor(HALF_ANGLES, dtype=r.dtype)
    rt = r.transpose(1, 2)
    basis = k_basis(rt, theta.transpose(1, 2), half, torch.ones_like(rt))
    basis = basis.view(r.shape[0], r.shape[2], BASIS, r.shape[1])
    const = _k_constants().to(r.dtype)
    out = []
    for mode in range(2):
        k = torch.zeros(r.shape[0], r.shape[2], 2, dtype=r.dtype)
        k[..., mode] = 1.0
        out.append(torch.einsum("btiq,btio->bqto", basis, k_matrix(k, nu, dirs, const)))
    f = torch.stack(out, dim=-2)
    return f[..., :2], f[..., 2:]
