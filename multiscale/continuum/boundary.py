"""Boundary conditions from continuum crack models, behind one small interface.

A model gives the displacements (Å) that the continuum imposes on an atomistic region's
boundary shell and the stresses (GPa) it predicts, both for a mode-I load ``k1``
(GPa sqrt(Å)) with the crack tip at ``tip`` (2,) Å, in the crack frame of
:class:`multiscale.atomistic.region.CrackRegion` (x = [11-2] propagation, y = [111] normal,
z = [1-10] front).  :class:`LEFMContinuum` is the anisotropic near-tip K-field;
:class:`FEMContinuum` (finite elements, :mod:`multiscale.continuum.fem`) puts the region at the
crack tip of an isotropic specimen (:class:`multiscale.continuum.specimen.Specimen`); the
attention field predictor joins them in :mod:`multiscale.coupling.continuum`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..reference.material import Material
from .lefm import NearTipField


class ContinuumModel(Protocol):
    k_g: float  # Griffith load of the material, GPa sqrt(Å)

    def boundary_displacements(self, reference_xy: np.ndarray, k1: float, tip: np.ndarray) -> np.ndarray:
        """(n, 2) Å displacements at the reference points ``reference_xy`` (n, 2) Å."""

    def stresses(self, xy: np.ndarray, k1: float, tip: np.ndarray) -> np.ndarray:
        """(n, 3) GPa sigma_xx, sigma_yy, sigma_xy at ``xy`` (n, 2) Å."""


class LEFMContinuum:
    """The cubic-anisotropic near-tip K-field of a (111)[1-10] crack (plane strain),
    centred at the current tip: ``u(x) = K_I f(x - tip)``."""

    def __init__(self, mat: Material):
        self.field = NearTipField.cubic(mat.C11, mat.C12, mat.C44, crack_plane=(1, 1, 1),
                                        crack_front=(1, -1, 0))
        self.k_g = self.field.griffith_k(mat.surface_energy)

    def boundary_displacements(self, reference_xy, k1, tip):
        return self.field.displacements(reference_xy, k1, 0.0, tip)

    def stresses(self, xy, k1, tip):
        return self.field.stresses(xy, k1, 0.0, tip)


def isotropic_equivalent(mat: Material) -> tuple[float, float]:
    """(E GPa, nu) of the isotropic solid whose plane-strain modulus E' equals that of the
    anisotropic (111)[1-10] crack (so K and G correspond as in "lefm"); nu is the Voigt
    average's Poisson ratio of the cubic constants."""
    e_prime = NearTipField.cubic(mat.C11, mat.C12, mat.C44, crack_plane=(1, 1, 1),
                                 crack_front=(1, -1, 0)).plane_strain_modulus()
    bulk, shear = (mat.C11 + 2 * mat.C12) / 3, (mat.C11 - mat.C12 + 3 * mat.C44) / 5
    nu = (3 * bulk - 2 * shear) / (2 * (3 * bulk + shear))
    return e_prime * (1 - nu * nu), nu


def plane_strain_stiffness(mat: Material) -> tuple[float, ...]:
    """The potential's cubic constants rotated into the (111)[1-10] crack frame, reduced to
    plane strain: the (3, 3) stiffness (GPa, Voigt xx, yy, xy) as 9 floats for
    :class:`~multiscale.continuum.specimen.Specimen` ``stiffness_matrix`` (matscipy's rotation)."""
    field = NearTipField.cubic(mat.C11, mat.C12, mat.C44, crack_plane=(1, 1, 1), crack_front=(1, -1, 0))
    C = np.asarray(field._crack.C, float)[np.ix_([0, 1, 5], [0, 1, 5])]
    return tuple(float(c) for c in C.ravel())


@dataclass
class _TipField:
    """A unit-stress solution of one crack length: the region's tip in specimen coordinates
    (2,), its displacement (2,) and K_I (GPa sqrt(Å) per GPa of remote stress)."""
    solution: object
    tip: np.ndarray
    u_tip: np.ndarray
    k_unit: float


class SpecimenContinuum:
    """The atomistic region at the (right) crack tip of a cracked specimen under remote
    tension, solved for unit stress and scaled to the requested K_I (the model is linear).

    The region's crack frame is the specimen's (crack_angle 0): a region point ``p`` with the
    region's tip at ``tip`` sits at ``tip_specimen + p - tip``; a tip moved by dx along x is a
    crack longer by dx (re-solved, cached by crack length).  Displacements are relative to the
    tip's own, as in the K-field.  ``options``: the ``[continuum]`` table (kind, width, height,
    crack_length Å; youngs_modulus GPa, poisson_ratio default to :func:`isotropic_equivalent`).
    Subclasses give ``_solve(specimen) -> (solution, k1 of the first tip, displacements(sol,
    xy), stresses(sol, xy))``.
    """

    def __init__(self, mat: Material, options: dict | None = None):
        from .specimen import Specimen
        options = dict(options or {})
        options.pop("model", None)             # the predictor's file; not part of the specimen
        self.k_g = LEFMContinuum(mat).k_g      # same Griffith load as "lefm": the K ramp means the same
        E, nu = isotropic_equivalent(mat)
        if options.get("poisson_ratio") is not None:
            e_prime, nu = E / (1 - nu * nu), options["poisson_ratio"]
            E = e_prime * (1 - nu * nu)                                       # keep E'
        if options.get("youngs_modulus") is not None:
            E = options["youngs_modulus"]
        self.specimen = Specimen(options.get("kind", "sent"), options["width"], options["height"],
                                 options["crack_length"], 0.0, 1.0, E, nu)
        self._fields: dict[float, _TipField] = {}

    def _field(self, tip) -> _TipField:
        from dataclasses import replace
        a = round(self.specimen.crack_length + float(tip[0]), 9)
        if a not in self._fields:
            spec = replace(self.specimen, crack_length=a)
            sol, k1 = self._solve(spec)
            at = spec.tips()[0]
            # the tip's displacement, a hair ahead of it (continuous there; no element ambiguity)
            u_tip = self._displacements(sol, at[None, :] + [[1e-6 * spec.width, 0.0]])[0]
            self._fields[a] = _TipField(sol, at, u_tip, float(k1))
        return self._fields[a]

    def k_per_stress(self, tip) -> float:
        """K_I (GPa sqrt(Å)) per GPa of remote stress with the region's tip at ``tip`` (2,) Å."""
        return self._field(tip).k_unit

    def _points(self, f: _TipField, xy, tip) -> np.ndarray:
        return f.tip + np.asarray(xy, float).reshape(-1, 2) - np.asarray(tip, float).reshape(2)

    def _check(self, values: np.ndarray, what: str) -> np.ndarray:
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{what}: {int((~np.isfinite(values).all(1)).sum())} region point(s) fall "
                             f"outside the specimen {self.specimen}; enlarge width/height in [continuum]")
        return values

    def boundary_displacements(self, reference_xy, k1, tip):
        f = self._field(tip)
        u = self._displacements(f.solution, self._points(f, reference_xy, tip)) - f.u_tip
        return self._check(k1 / f.k_unit * u, "continuum displacements")

    def stresses(self, xy, k1, tip):
        f = self._field(tip)
        return self._check(k1 / f.k_unit * self._stresses(f.solution, self._points(f, xy, tip)),
                           "continuum stresses")


class FEMContinuum(SpecimenContinuum):
    """The specimen solved by finite elements (:func:`multiscale.continuum.fem.solve`)."""

    # Å at the tip: the default (min(a, ligament)/60, ~2.7 Å for a = 160 Å) puts a 7 % error in
    # the tip's own displacement seen from a region of radius 8 Å; 0.5 Å brings it to ~1.5 %
    # (the predictor agrees) for ~0.1 s more per solve
    TIP_SIZE = 0.5

    def _solve(self, spec):
        from .fem import solve
        sol = solve(spec, tip_size=self.TIP_SIZE)
        return sol, sol.k1[0]

    @staticmethod
    def _displacements(sol, xy):
        return sol.displacements(xy)

    @staticmethod
    def _stresses(sol, xy):
        # stress samples compare fields where both exist: NaN outside, as the predictor's
        return sol.stresses(xy, outside="nan")
