"""Continuum models of the coupled crack run, behind one small interface.

A model gives the displacements (Å) that the continuum imposes on an atomistic region's
boundary shell and the stresses (GPa) it predicts, both for a mode-I load ``k1``
(GPa sqrt(Å)) with the crack tip at ``tip`` (2,) Å, in the crack frame of
:class:`multiscale.coupling.region.CrackRegion` (x = [11-2] propagation, y = [111] normal,
z = [1-10] front).  ``"lefm"`` is the anisotropic near-tip K-field; ``"fem"`` and
``"predictor"`` slot into :data:`MODELS` once multiscale.continuum.fem and
multiscale.fields provide them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Protocol

import numpy as np


class ContinuumModel(Protocol):
    k_g: float  # Griffith load of the material, GPa sqrt(Å)

    def boundary_displacements(self, reference_xy: np.ndarray, k1: float, tip: np.ndarray) -> np.ndarray:
        """(n, 2) Å displacements at the reference points ``reference_xy`` (n, 2) Å."""

    def stresses(self, xy: np.ndarray, k1: float, tip: np.ndarray) -> np.ndarray:
        """(n, 3) GPa sigma_xx, sigma_yy, sigma_xy at ``xy`` (n, 2) Å."""


@dataclass
class Material:
    """What a continuum model needs of the potential: lattice constant (Å), cubic elastic
    constants (GPa, relaxed) and the relaxed (111) surface energy (J/m^2)."""
    lattice_constant: float
    C11: float
    C12: float
    C44: float
    surface_energy: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def pair_lines(potential: str) -> tuple[list[str], bool]:
    """LAMMPS commands for a resolved potential ("sw" or a model file) and whether they
    need the multiscale plugin."""
    if potential == "sw":
        from ..datasets.silicon import sw_pair_lines
        return sw_pair_lines(), False
    return [f"pair_style multiscale {potential}", "pair_coeff * * Si"], True


def material(potential: str, comm, lattice_constant: float | None = None) -> Material:
    """Silicon's properties with ``potential``, computed in LAMMPS on the MPI communicator
    ``comm`` (a few seconds for SW, longer for ML models)."""
    from .. import properties
    lines, plugin = pair_lines(potential)
    a = lattice_constant or properties.lattice_constant(lines, plugin=plugin, comm=comm)
    c = properties.elastic_constants(lines, a, plugin=plugin, comm=comm)
    gamma = properties.surface_energy(lines, a, "111", plugin=plugin, comm=comm)
    return Material(a, c["C11"], c["C12"], c["C44"], gamma)


class LEFMContinuum:
    """The cubic-anisotropic near-tip K-field of a (111)[1-10] crack (plane strain),
    centred at the current tip: ``u(x) = K_I f(x - tip)``."""

    def __init__(self, mat: Material):
        from ..continuum.lefm import NearTipField
        self.field = NearTipField.cubic(mat.C11, mat.C12, mat.C44, crack_plane=(1, 1, 1),
                                        crack_front=(1, -1, 0))
        self.k_g = self.field.griffith_k(mat.surface_energy)

    def boundary_displacements(self, reference_xy, k1, tip):
        return self.field.displacements(reference_xy, k1, 0.0, tip)

    def stresses(self, xy, k1, tip):
        return self.field.stresses(xy, k1, 0.0, tip)


def _not_yet(name: str, module: str) -> Callable[[Material], ContinuumModel]:
    def build(mat: Material) -> ContinuumModel:
        raise NotImplementedError(f"continuum model {name!r} needs {module}, which this installation "
                                  f"does not provide yet; use continuum = \"lefm\" in [run]")
    return build


# name -> builder(Material) -> ContinuumModel; new models register here
MODELS: dict[str, Callable[[Material], ContinuumModel]] = {
    "lefm": LEFMContinuum,
    "fem": _not_yet("fem", "multiscale.continuum.fem"),
    "predictor": _not_yet("predictor", "multiscale.fields"),
}


def build_continuum(kind: str, mat: Material) -> ContinuumModel:
    if kind not in MODELS:
        raise ValueError(f"unknown continuum model {kind!r}; known: {sorted(MODELS)}")
    return MODELS[kind](mat)
