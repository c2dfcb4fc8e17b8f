"""Near-tip fields of linear elastic fracture mechanics (plane strain), K_I and K_II.

Crack frame: x along the crack's propagation direction, y normal to the crack plane,
crack faces on y = 0, x < tip.  Units: positions and displacements Å, elastic constants
and stresses GPa, stress intensity factors GPa sqrt(Å) (1 MPa sqrt(m) = 100 GPa sqrt(Å)),
surface energies J/m^2.

The cubic-anisotropic field (Sih, Paris and Irwin's Stroh/Lekhnitskii solution) and the
Griffith load are matscipy's ``CubicCrystalCrack``; the isotropic field is the Williams
K-field, for which the anisotropic formulas are singular (equal complex roots), so it is
written out here, mode I from matscipy and mode II in the same closed form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

J_PER_M2_TO_GPA_A = 10.0  # 1 J/m^2 = 1 N/m = 10 GPa Å


@dataclass
class NearTipField:
    """The singular near-tip field of one crack in one material.

    Build with :meth:`isotropic` or :meth:`cubic`.  ``displacements`` and ``stresses`` take
    points ``xy`` (n, 2) Å and the tip position (2,) Å in the crack frame.
    """

    kind: str
    constants: dict
    _crack: object = field(default=None, repr=False)

    @classmethod
    def isotropic(cls, youngs_modulus: float, poisson_ratio: float) -> "NearTipField":
        """Isotropic solid: E (GPa) and nu."""
        if not (youngs_modulus > 0 and -1 < poisson_ratio < 0.5):
            raise ValueError(f"need E > 0 and -1 < nu < 0.5; got E={youngs_modulus}, nu={poisson_ratio}")
        return cls("isotropic", {"E": youngs_modulus, "nu": poisson_ratio})

    @classmethod
    def cubic(cls, C11: float, C12: float, C44: float, crack_plane=(1, 1, 1),
              crack_front=(1, -1, 0)) -> "NearTipField":
        """Cubic crystal (GPa); the crack lies on ``crack_plane`` (Miller indices, the y
        direction) with its front along ``crack_front`` (z); it runs along y x z."""
        from matscipy.fracture_mechanics.crack import CubicCrystalCrack
        if abs(np.dot(crack_plane, crack_front)) > 1e-12:
            raise ValueError(f"crack front {crack_front} must lie in the crack plane {crack_plane}")
        if not (C44 > 0 and C11 > abs(C12) and C11 + 2 * C12 > 0):
            raise ValueError(f"elastic constants C11={C11}, C12={C12}, C44={C44} are not positive definite")
        crack = CubicCrystalCrack(list(crack_plane), list(crack_front), C11, C12, C44)
        return cls("cubic", {"C11": C11, "C12": C12, "C44": C44, "crack_plane": list(crack_plane),
                             "crack_front": list(crack_front)}, crack)

    @classmethod
    def isotropic_as_cubic(cls, youngs_modulus: float, poisson_ratio: float, **kw) -> "NearTipField":
        """The cubic form with Zener ratio 1: C11 = lambda + 2 mu, C12 = lambda, C44 = mu."""
        E, nu = youngs_modulus, poisson_ratio
        lam, mu = E * nu / ((1 + nu) * (1 - 2 * nu)), E / (2 * (1 + nu))
        return cls.cubic(lam + 2 * mu, lam, mu, **kw)

    # -- fields ------------------------------------------------------------------------------
    def _polar(self, xy, tip):
        d = np.asarray(xy, dtype=float).reshape(-1, 2) - np.asarray(tip, dtype=float).reshape(2)
        r = np.hypot(d[:, 0], d[:, 1])
        if np.any(r == 0):
            raise ValueError("a point lies on the crack tip, where the K-field is singular")
        return r, np.arctan2(d[:, 1], d[:, 0])

    def displacements(self, xy, k1: float, k2: float = 0.0, tip=(0.0, 0.0)) -> np.ndarray:
        """Displacements (n, 2) Å at points ``xy`` (n, 2) Å."""
        r, theta = self._polar(xy, tip)
        if self._crack is not None:
            u, v = self._crack.displacements_from_cylinder_coordinates(r, theta, k1, k2)
            return np.stack([u, v], axis=1)
        E, nu = self.constants["E"], self.constants["nu"]
        from matscipy.fracture_mechanics.crack import (isotropic_modeI_crack_tip_displacement_field,
                                                       isotropic_modeII_crack_tip_displacement_field)
        mu = E / (2 * (1 + nu))
        u1, v1 = isotropic_modeI_crack_tip_displacement_field(k1, mu, nu, r, theta)
        u2, v2 = isotropic_modeII_crack_tip_displacement_field(k2, mu, nu, r, theta)
        return np.stack([u1 + u2, v1 + v2], axis=1)

    def stresses(self, xy, k1: float, k2: float = 0.0, tip=(0.0, 0.0)) -> np.ndarray:
        """In-plane stresses (n, 3) GPa, columns sigma_xx, sigma_yy, sigma_xy."""
        r, theta = self._polar(xy, tip)
        if self._crack is not None:
            sx, sy, sxy = self._crack.stresses_from_cylinder_coordinates(r, theta, k1, k2)
            return np.stack([sx, sy, sxy], axis=1)
        f = 1 / np.sqrt(2 * math.pi * r)
        c, s = np.cos(theta / 2), np.sin(theta / 2)
        c3, s3 = np.cos(3 * theta / 2), np.sin(3 * theta / 2)
        sx = f * (k1 * c * (1 - s * s3) - k2 * s * (2 + c * c3))
        sy = f * (k1 * c * (1 + s * s3) + k2 * s * c * c3)
        sxy = f * (k1 * s * c * c3 + k2 * c * (1 - s * s3))
        return np.stack([sx, sy, sxy], axis=1)

    # -- loads ---------------------------------------------------------------------------------
    def plane_strain_modulus(self) -> float:
        """E' (GPa) with G = K_I^2 / E' (for the cubic case, the effective anisotropic modulus)."""
        if self._crack is not None:
            return self._crack.k1gsqG()
        E, nu = self.constants["E"], self.constants["nu"]
        return E / (1 - nu * nu)

    def griffith_k(self, surface_energy: float) -> float:
        """Griffith load K_G (GPa sqrt(Å)) at which G = 2 gamma; ``surface_energy`` J/m^2."""
        if surface_energy <= 0:
            raise ValueError(f"surface energy must be positive, got {surface_energy} J/m^2")
        return math.sqrt(2 * surface_energy * J_PER_M2_TO_GPA_A * self.plane_strain_modulus())
