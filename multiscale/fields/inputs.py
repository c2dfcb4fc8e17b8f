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
    t = math.radians(spec.crack_angle)
    c, s, a = math.cos(t), math.sin(t), spec.crack_length
    if spec.kind == "sent":
        tips, dirs = np.array([[a * c, a * s], [0.0, 0.0]]), np.array([[c, s], [0.0, 0.0]])
        return np.array([[0.0, 0.0], [a * c, a * s]]), tips, dirs
    x = spec.width / 2
    tips, dirs = np.array([[x + a * c, a * s], [x - a * c, -a * s]]), np.array([[c, s], [-c, -s]])
    return tips[::-1].copy(), tips, dirs


def n_tips(spec) -> int:
    return 1 if spec.kind == "sent" else 2


# Token layout along the outer boundary, walked counter-clockwise from (0, -H/2): the sides
# bottom, right, top, left; channels 2: free edge, 3: loaded edge (remote tension on the bottom
# and top), 4: crack face, 5-6: outward normal.
_SIDE_CHANNELS = np.array([[0, 1, 0, 0, -1], [1, 0, 0, 1, 0], [0, 1, 0, 0, 1], [1, 0, 0, -1, 0]], dtype=float)
_CORNER_X = np.array([0.0, 1.0, 1.0, 0.0, 0.0])
_CORNER_Y = np.array([-1.0, -1.0, 1.0, 1.0, -1.0])   # in units of H / (2 W)
_EDGE_ARC = (np.arange(N_EDGE_TOKENS) + 0.5) / N_EDGE_TOKENS
_CRACK_ARC = ((np.arange(N_CRACK_TOKENS) + 0.5) / N_CRACK_TOKENS)[:, None]


def tokens(spec, ends: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Boundary and crack tokens (N_EDGE_TOKENS + N_CRACK_TOKENS, TOKEN_FEATURES) and the global
    token (GLOBAL_FEATURES,), all non-dimensional; ``ends`` the crack ends (2, 2) L if known.
    (Called for every prediction, so a handful of array operations: the boundary points are
    equally spaced in arc length, i.e. a piecewise-linear interpolation of the corners.)"""
    W, H = spec.width, spec.height
    h = H / (2 * W)
    knots = np.array([0.0, 1.0, 1.0 + 2.0 * h, 2.0 + 2.0 * h, 2.0 + 4.0 * h])
    s = _EDGE_ARC * knots[4]
    out = np.zeros((N_EDGE_TOKENS + N_CRACK_TOKENS, TOKEN_FEATURES))
    out[:N_EDGE_TOKENS, 0] = np.interp(s, knots, _CORNER_X)
    out[:N_EDGE_TOKENS, 1] = np.interp(s, knots, _CORNER_Y) * h
    out[:N_EDGE_TOKENS, 2:] = _SIDE_CHANNELS[np.searchsorted(knots[1:4], s, side="right")]
    if ends is None:
        ends = crack_geometry(spec)[0]
    crack = out[N_EDGE_TOKENS:]
    crack[:, :2] = (ends[0] + _CRACK_ARC * (ends[1] - ends[0])) / W
    crack[:, 4] = 1.0
    t = math.radians(spec.crack_angle)
    crack[:, 5], crack[:, 6] = -math.sin(t), math.cos(t)  # normal of the upper face
    glob = np.array([spec.kind == "sent", spec.kind == "ccp", spec.poisson_ratio,
                     spec.crack_length / W, H / W, math.cos(t), math.sin(t)], dtype=float)
    return out, glob


def model_inputs(spec) -> dict[str, np.ndarray]:
    """Everything the network takes about one specimen, non-dimensional (float64)."""
    ends, tips, dirs = crack_geometry(spec)
    tok, glob = tokens(spec, ends)
    return {"tokens": tok, "glob": glob, "tips": tips / spec.width, "dirs": dirs,
            "tip_mask": (np.arange(MAX_TIPS) < n_tips(spec)).astype(float),
            "nu": np.array(spec.poisson_ratio, dtype=float)}


def scales(spec) -> dict[str, float]:
    """Factors that turn non-dimensional fields into physical ones."""
    s, E, W = spec.stress, spec.youngs_modulus, spec.width
    return {"length": W, "displacement": s * W / E, "stress": s, "k": s * math.sqrt(W)}
