"""Continuum models of the coupled crack run, behind one small interface.

A model gives the displacements (Å) that the continuum imposes on an atomistic region's
boundary shell and the stresses (GPa) it predicts, both for a mode-I load ``k1``
(GPa sqrt(Å)) with the crack tip at ``tip`` (2,) Å, in the crack frame of
:class:`multiscale.coupling.region.CrackRegion` (x = [11-2] propagation, y = [111] normal,
z = [1-10] front).  ``"lefm"`` is the anisotropic near-tip K-field; ``"fem"`` (finite
elements, :mod:`multiscale.continuum.fem`) and ``"predictor"`` (the attention field predictor,
:mod:`multiscale.fields`) put the region at the crack tip of an isotropic specimen
(:class:`multiscale.continuum.specimen.Specimen`, the ``[continuum]`` table of the config).
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


def isotropic_equivalent(mat: Material) -> tuple[float, float]:
    """(E GPa, nu) of the isotropic solid whose plane-strain modulus E' equals that of the
    anisotropic (111)[1-10] crack (so K and G correspond as in "lefm"); nu is the Voigt
    average's Poisson ratio of the cubic constants."""
    from ..continuum.lefm import NearTipField
    e_prime = NearTipField.cubic(mat.C11, mat.C12, mat.C44, crack_plane=(1, 1, 1),
                                 crack_front=(1, -1, 0)).plane_strain_modulus()
    bulk, shear = (mat.C11 + 2 * mat.C12) / 3, (mat.C11 - mat.C12 + 3 * mat.C44) / 5
    nu = (3 * bulk - 2 * shear) / (2 * (3 * bulk + shear))
    return e_prime * (1 - nu * nu), nu


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
        from ..continuum.specimen import Specimen
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
        from ..continuum.fem import solve
        sol = solve(spec, tip_size=self.TIP_SIZE)
        return sol, sol.k1[0]

    @staticmethod
    def _displacements(sol, xy):
        return sol.displacements(xy)

    @staticmethod
    def _stresses(sol, xy):
        return sol.stresses(xy)


class PredictorContinuum(SpecimenContinuum):
    """The specimen's field from an attention field predictor (``[continuum] model``: a file or
    a shipped name, default "crack-fields"; "crack-fields-si" is the one fine-tuned on the
    shipped silicon model's near-tip stresses, docs/fields.md); K_unit from its K head, whose
    Williams field its displacements contain."""

    _loaded: dict = {}   # model path -> FieldPredictor, per process

    def __init__(self, mat: Material, options: dict | None = None):
        from ..registry import resolve
        super().__init__(mat, options)
        self.model_path = str(resolve((options or {}).get("model") or "crack-fields"))

    def _solve(self, spec):
        if self.model_path not in self._loaded:
            from ..fields.predictor import FieldPredictor
            PredictorContinuum._loaded[self.model_path] = FieldPredictor.load(self.model_path)
        predictor = self._loaded[self.model_path]
        return (predictor, spec), predictor.predict(spec, spec.tips()[:1]).k1[0]

    @staticmethod
    def _displacements(sol, xy):
        predictor, spec = sol
        return _outside_nan(spec, xy, predictor.predict(spec, xy).displacements)

    @staticmethod
    def _stresses(sol, xy):
        predictor, spec = sol
        return _outside_nan(spec, xy, predictor.predict(spec, xy).stresses)


def _outside_nan(spec, xy, values: np.ndarray) -> np.ndarray:
    """NaN rows for points outside the specimen's box (the predictor extrapolates silently)."""
    xy = np.asarray(xy, float).reshape(-1, 2)
    outside = (xy[:, 0] < 0) | (xy[:, 0] > spec.width) | (np.abs(xy[:, 1]) > spec.height / 2)
    values = np.array(values, float)
    values[outside] = np.nan
    return values


# name -> builder(Material, [continuum] options) -> ContinuumModel; new models register here
MODELS: dict[str, Callable[[Material, dict | None], ContinuumModel]] = {
    "lefm": lambda mat, options=None: LEFMContinuum(mat),
    "fem": FEMContinuum,
    "predictor": PredictorContinuum,
}


def build_continuum(kind: str, mat: Material, options: dict | None = None) -> ContinuumModel:
    """The continuum model ``kind`` for material ``mat``; ``options`` the ``[continuum]`` table
    (the specimen of "fem" and "predictor")."""
    if kind not in MODELS:
        raise ValueError(f"unknown continuum model {kind!r}; known: {sorted(MODELS)}")
    return MODELS[kind](mat, options)
