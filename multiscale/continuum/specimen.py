"""Cracked plane specimens: geometry, load and (isotropic) material of a 2D crack problem.

Coordinates: the specimen occupies [0, W] x [-H/2, H/2].  A single-edge-notched tension
specimen (``"sent"``) has its crack start at the left edge (0, 0) and run a distance a at
``crack_angle`` from the x axis; a centre-cracked plate (``"ccp"``) has a crack of length 2a
centred at (W/2, 0).  The remote stress acts along y on the top and bottom edges.

Units: lengths in any unit L (Å in the coupled runs), stresses and moduli GPa, angles degrees,
stress intensity factors GPa sqrt(L).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

KINDS = ("sent", "ccp")
MAX_CRACK_FRACTION = 0.9


@dataclass(frozen=True)
class Specimen:
    """A cracked specimen under remote tension along y (plane strain)."""

    kind: str               # "sent" or "ccp"
    width: float            # W (L)
    height: float           # H, total height (L)
    crack_length: float     # a: edge crack length (sent) or half length (ccp), L
    crack_angle: float = 0.0        # degrees from the x axis (0 = mode I)
    stress: float = 1.0             # remote tensile stress on the top/bottom edges, GPa
    youngs_modulus: float = 150.0   # GPa
    poisson_ratio: float = 0.25
    # an anisotropic plane-strain stiffness (9 floats, the 3 x 3 of stiffness() row by row, GPa)
    # instead of E and nu: the crystal's constants in the crack frame (continuum/boundary.py);
    # E and nu then only set the isotropic K extraction, which an anisotropic solve skips
    stiffness_matrix: tuple | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown specimen kind {self.kind!r}; use one of {KINDS}")
        for name in ("width", "height", "crack_length", "youngs_modulus"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value}")
        if not math.isfinite(self.stress):
            raise ValueError(f"stress must be finite, got {self.stress}")
        if not -1.0 < self.poisson_ratio < 0.5:
            raise ValueError(f"poisson_ratio must lie in (-1, 0.5), got {self.poisson_ratio}")
        if not abs(self.crack_angle) < 90.0:
            raise ValueError(f"crack_angle must lie in (-90, 90) degrees, got {self.crack_angle}")
        beta = math.radians(self.crack_angle)
        span = self.crack_length * math.cos(beta) * (1 if self.kind == "sent" else 2)
        if span / self.width >= MAX_CRACK_FRACTION:
            what = "a cos(angle)/W" if self.kind == "sent" else "2a cos(angle)/W"
            raise ValueError(f"crack too long: {what} = {span / self.width:.3f} must be < "
                             f"{MAX_CRACK_FRACTION}; shorten crack_length or widen the specimen")
        rise = abs(self.crack_length * math.sin(beta))
        if rise >= MAX_CRACK_FRACTION * self.height / 2:
            raise ValueError(f"inclined crack reaches {rise:.3g} from y=0, beyond "
                             f"{MAX_CRACK_FRACTION} H/2 = {MAX_CRACK_FRACTION * self.height / 2:.3g}; "
                             "reduce crack_angle or crack_length, or make the specimen taller")

    @property
    def direction(self) -> np.ndarray:
        """Unit vector (2,) along the crack, pointing to the (right) tip."""
        beta = math.radians(self.crack_angle)
        return np.array([math.cos(beta), math.sin(beta)])

    def mouth(self) -> np.ndarray:
        """Crack start (2,) L: the edge point (sent) or the left tip (ccp)."""
        if self.kind == "sent":
            return np.zeros(2)
        return np.array([self.width / 2, 0.0]) - self.crack_length * self.direction

    def tips(self) -> np.ndarray:
        """Crack-tip positions (n_tips, 2) L: one for sent, two (right, left) for ccp."""
        if self.kind == "sent":
            return (self.crack_length * self.direction)[None, :]
        centre = np.array([self.width / 2, 0.0])
        return np.stack([centre + self.crack_length * self.direction,
                         centre - self.crack_length * self.direction])

    def tip_directions(self) -> np.ndarray:
        """Unit propagation direction (n_tips, 2) of each tip (the crack-frame x axis)."""
        if self.kind == "sent":
            return self.direction[None, :]
        return np.stack([self.direction, -self.direction])

    def plane_strain_modulus(self) -> float:
        """E' = E / (1 - nu^2), GPa."""
        return self.youngs_modulus / (1 - self.poisson_ratio ** 2)

    def stiffness(self) -> np.ndarray:
        """Plane-strain stiffness (3, 3) GPa in Voigt order xx, yy, xy (engineering shear)."""
        if self.stiffness_matrix is not None:
            return np.array(self.stiffness_matrix, float).reshape(3, 3)
        E, nu = self.youngs_modulus, self.poisson_ratio
        lam, mu = E * nu / ((1 + nu) * (1 - 2 * nu)), E / (2 * (1 + nu))
        return np.array([[lam + 2 * mu, lam, 0.0], [lam, lam + 2 * mu, 0.0], [0.0, 0.0, mu]])

    def as_vector(self) -> np.ndarray:
        """Parameters as floats (8,) for ML inputs, in this order:
        [is_ccp (0 sent, 1 ccp), width, height, crack_length, crack_angle (deg), stress (GPa),
        youngs_modulus (GPa), poisson_ratio]."""
        return np.array([float(self.kind == "ccp"), self.width, self.height, self.crack_length,
                         self.crack_angle, self.stress, self.youngs_modulus, self.poisson_ratio])
