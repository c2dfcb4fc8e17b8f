"""Non-dimensional inputs of the field predictor, built from a crack specimen.

Linearity sets the scales: coordinates scale with the width W, stresses with the remote
stress s and displacements with s W / E, so the network only ever sees

    x* = x / W,   u* = u E / (s W),   sigma* = sigma / s,   K* = K / (s sqrt(W)),

and the geometry's shape (kind, a/W, H/W, crack angle) and Poisson's ratio.  The specimen
is anything with the attributes of ``multiscale.continuum.specimen.Specimen`` (kind, width,
height, crack_length, crack_angle, stress, youngs_modulus, poisson_ratio): it occupies
[0, W] x [-H/2, H/2]; a "sent" crack runs from (0, 0) to (a, 0) rotated by the crack angle
about its mouth, a "ccp" crack of half length a is centred at (W/2, 0).
"""

from __future__ import annotations

import math

import numpy as np

KINDS = ("sent", "ccp")
N_EDGE_TOKENS = 64   # points on the outer boundary
N_CRACK_TOKENS = 16  # points along the crack
TOKEN_FEATURES = 7   # x*, y*, one-hot (free edge, loaded edge, crack face), normal (2)
GLOBAL_FEATURES = 7  # one-hot kind (2), nu, a/W, H/W, cos(angle), sin(angle)
MAX_TIPS = 2


def crack_geometry(spec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crack ends (2, 2) L, tips (MAX_TIPS, 2) L and unit propagation directions (MAX_TIPS, 2)
    in the specimen's tip order (sent: one tip; ccp: right, left); unused slots are zero."""
    if spec.kind not in KINDS:
        raise ValueError(f"specimen kind {spec.kind!r} is not supported; use one of {KINDS}")
    tips, dirs = np.zeros((MAX_TIPS, 2)), np.zeros((MAX_TIPS, 2))
    t, d = spec.tips(), spec.tip_directions()
    tips[:len(t)], dirs[:len(d)] = t, d
    return np.stack([spec.mouth(), t[0]]), tips, dirs


def n_tips(spec) -> int:
    return 1 if spec.kind == "sent" else 2


def tokens(spec) -> tuple[np.ndarray, np.ndarray]:
    """Boundary and crack tokens (N_EDGE_TOKENS + N_CRACK_TOKENS, TOKEN_FEATURES) and the global
    token (GLOBAL_FEATURES,), all non-dimensional."""
    W, H = spec.width, spec.height
    h = H / (2 * W)
    # outer boundary, walked counter-clockwise, equally spaced in arc length
    corners = np.array([[0, -h], [1, -h], [1, h], [0, h], [0, -h]])
    normals = np.array([[0, -1], [1, 0], [0, 1], [-1, 0]], dtype=float)
    loaded = np.array([1, 0, 1, 0])  # remote tension acts on the bottom and top edges
    lengths = np.linalg.norm(np.diff(corners, axis=0), axis=1)
    s = (np.arange(N_EDGE_TOKENS) + 0.5) / N_EDGE_TOKENS * lengths.sum()
    side = np.minimum(np.searchsorted(np.cumsum(lengths), s, side="right"), 3)
    local = (s - np.concatenate([[0], np.cumsum(lengths)])[side]) / lengths[side]
    xy = corners[side] + local[:, None] * (corners[side + 1] - corners[side])
    edge = np.zeros((N_EDGE_TOKENS, TOKEN_FEATURES))
    edge[:, :2] = xy
    edge[np.arange(N_EDGE_TOKENS), 2 + loaded[side]] = 1.0  # column 2 free, 3 loaded
    edge[:, 5:] = normals[side]
    ends, _, _ = crack_geometry(spec)
    f = (np.arange(N_CRACK_TOKENS) + 0.5) / N_CRACK_TOKENS
    crack = np.zeros((N_CRACK_TOKENS, TOKEN_FEATURES))
    crack[:, :2] = (ends[0] + f[:, None] * (ends[1] - ends[0])) / W
    crack[:, 4] = 1.0
    t = math.radians(spec.crack_angle)
    crack[:, 5:] = [-math.sin(t), math.cos(t)]  # normal of the upper face
    glob = np.array([spec.kind == "sent", spec.kind == "ccp", spec.poisson_ratio,
                     spec.crack_length / W, H / W, math.cos(t), math.sin(t)], dtype=float)
    return np.concatenate([edge, crack]), glob


def model_inputs(spec) -> dict[str, np.ndarray]:
    """Everything the network takes about one specimen, non-dimensional (float64)."""
    tok, glob = tokens(spec)
    _, tips, dirs = crack_geometry(spec)
    mask = np.zeros(MAX_TIPS)
    mask[:n_tips(spec)] = 1.0
    return {"tokens": tok, "glob": glob, "tips": tips / spec.width, "dirs": dirs, "tip_mask": mask,
            "nu": np.array(spec.poisson_ratio, dtype=float)}


def scales(spec) -> dict[str, float]:
    """Factors that turn non-dimensional fields into physical ones."""
    s, E, W = spec.stress, spec.youngs_modulus, spec.width
    return {"length": W, "displacement": s * W / E, "stress": s, "k": s * math.sqrt(W)}
