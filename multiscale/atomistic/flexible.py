"""Flexible boundary conditions for the (111)[1-10] silicon crack: the crack-tip position
solved together with the atoms at a given K, forces from LAMMPS.

Sinclair (1975); Buze & Kermode, Phys. Rev. E 103, 033002 (2021).  matscipy's
``SinclairCrack`` holds the method (regions I-IV around the tip, the anisotropic
linear-elastic near-tip field for the unknowns (K, alpha), Newton-Krylov solves); this module
gives it a LAMMPS force field (native styles or ``pair_style multiscale`` models, on an MPI
communicator) and the multilattice correction diamond silicon needs:

* **Cauchy-Born shifts.**  Silicon's two fcc sublattices move relative to each other under
  strain; a field that moves both alike leaves about 0.4 eV/Å on every atom of the far
  field.  matscipy's ``CubicCauchyBorn`` predicts the shift from the local deformation
  gradient; its sublattices are labelled here from the bond graph (two colours), and which
  colour is which is *chosen by the forces*: both labellings are applied once and the one
  that lowers the far-field forces kept.  matscipy's own force-based labelling picks the wrong
  one for this crack system (shifts then double the far-field forces, 0.7 to 1.4 eV/Å).
* **Units.**  K in GPa sqrt(Å) (1 MPa sqrt(m) = 100 GPa sqrt(Å)), lengths in Å, forces eV/Å,
  as in :mod:`multiscale.atomistic.region`.

Geometry: crack frame x = [11-2] (propagation), y = [111], z = [1-10] (one period,
periodic); region I (free atoms) r < radius, region II (field-driven, feeling region I)
radius .. radius + cutoff, region III (field-driven) out to radius + cutoff + far, region IV
one more cutoff of padding.  alpha is the tip's shift along x from the cluster's centre (Å).
The crack plane is the *shuffle* plane: the wide gap between (111) layers, one bond per
surface atom, the (111) surface whose energy gives K_G (:func:`crack_cluster`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import warnings
from typing import Callable

import numpy as np

from ..engines.lammps_calculator import LammpsCalculator
from ..reference.material import Material, material as material_of
from . import spec as region_spec

J_PER_M2_TO_GPA_A = 10.0          # 1 J/m^2 = 10 GPa Å


@dataclasses.dataclass
class Solution:
    """One converged flexible-boundary state: K (GPa sqrt(Å)), tip shift alpha (Å), and the
    largest force (eV/Å) on the free atoms (region I), on the atoms of region II (the boundary
    shell), all of them and away from the crack faces, and on region III."""
    K: float
    alpha: float
    max_force_free: float
    max_force_boundary: float
    max_force_boundary_bulk: float
    max_force_far: float


def unit_cell_calculator(pot: region_spec.Potential):
    """The region potential's LAMMPS as an ASE calculator for the Cauchy-Born fit's strained
    periodic unit cells (ASE's LAMMPSlib on this rank alone, which follows the cell's changes),
    with the multiscale plugin loaded for ``pair_style multiscale`` models."""
    import mpi4py.MPI  # noqa: F401  (MPICH's libmpi before liblammps)
    from ase.calculators.lammpslib import LAMMPSlib

    from ..engines.lammps import plugin_path
    commands = list(pot.pair_lines)
    if pot.plugin:
        import torch  # noqa: F401  (libtorch before the plugin)
        commands.insert(0, f'plugin load "{plugin_path()}"')
    return LAMMPSlib(lmpcmds=commands, atom_types={"Si": 1}, atom_type_masses={"Si": 28.0855},
                     keep_alive=True, log_file=None, comm=_self_comm())


def _self_comm():
    from mpi4py import MPI
    return MPI.COMM_SELF


@contextlib.contextmanager
def _matscipy_quietly():
    """matscipy's solvers print every step and warn about its own cluster ordering and h5py
    usage; keep their output out of ours (our progress lines say what happens)."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.filterwarnings("ignore", module=r"matscipy\..*")
        warnings.filterwarnings("ignore", message=r".*without passing data or dtype.*")
        yield


CB_FIT_SEED = 1975   # the Cauchy-Born fit's strain samples: the same field on every run and rank


@contextlib.contextmanager
def _seeded_latin_hypercube():
    """matscipy's ``initial_regression_fit`` draws its strain samples from a LatinHypercube
    seeded from fresh entropy (no seed argument), so each run's Cauchy-Born shifts - and a whole
    trapping curve, by up to 0.016 Å in alpha - differed.  Hand it a seeded sampler while it fits."""
    import matscipy.cauchy_born as cauchy_born
    from scipy.stats.qmc import LatinHypercube

    def seeded(d, **kwargs):
        return LatinHypercube(d, **{**kwargs, "rng": np.random.default_rng(CB_FIT_SEED)})

    original = cauchy_born.LatinHypercube
    cauchy_born.LatinHypercube = seeded
    try:
        yield
    finally:
        cauchy_born.LatinHypercube = original


SHUFFLE_GAP = math.sqrt(3) / 4      # the wide (111) interlayer gap, in lattice constants
BOND_BEHIND = math.sqrt(6) / 24     # the nearest bond across it, behind the centre, in lattice constants


def crack_cluster(a0: float, n, shift=None):
    """matscipy's (111)[1-10] diamond cluster of ``n`` unit cells (x, y, z) with its centre -
    the tip at alpha = 0 - in the middle of a shuffle gap and a sixth of a bond-column period
    (0.55 Å) ahead of a bond across it; (cluster, fractional shift).

    Where the centre of ``cluster()`` falls depends on the cell counts and on rounding in its
    construction: for SW's a at 20 Å in a shuffle gap, at 30 and 40 Å in a glide gap, as for
    si-ani's a at all three - a crack there breaks three bonds per surface atom instead of one,
    3x the surface energy K_G is computed from - and along x anywhere in the 3.33 Å between
    bond columns.  The lattice is moved by the first fractions of a cell (1/96 steps, y then x)
    that put every size in the registry of SW's 20 Å cluster, whose flexible equilibrium at K_G
    lies 0.3 Å from alpha = 0 (midway between columns it lies 1.3 Å away, and Newton from
    alpha = 0 failed at 40 Å).  matscipy's ``centred_shift`` centres the gap too but puts a bond
    at the centre.  ``shift``: use this one."""
    from ase.neighborlist import neighbor_list
    from matscipy.fracture_mechanics.clusters import diamond

    def build(sx, sy):
        return diamond("Si", a0, list(n), crack_surface=[1, 1, 1], crack_front=[1, -1, 0],
                       shift=[sx, sy, 0.0])

    def centred_gap(cluster):
        ys = np.unique(np.round(cluster.positions[:, 1] - cluster.cell[1, 1] / 2.0, 4))
        below, above = ys[ys < 0].max(), ys[ys > 0].min()
        return abs(above - below - SHUFFLE_GAP * a0) < 1e-3 and abs(above + below) < 1e-3

    def nearest_bond(cluster):
        centre = cluster.cell.diagonal()[:2] / 2.0
        i, _, D = neighbor_list("ijD", cluster, 1.2 * a0 * math.sqrt(3) / 4)
        y = cluster.positions[:, 1] - centre[1]
        across = (y[i] < 0) & (y[i] + D[:, 1] > 0)
        x = cluster.positions[i[across], 0] + 0.5 * D[across, 0] - centre[0]
        return x[np.argmin(np.abs(x))]

    if shift is not None:
        cluster = build(shift[0], shift[1])
        if not centred_gap(cluster):
            raise ValueError(f"shift {shift} does not centre a shuffle gap in {list(n)} cells")
        return cluster, list(shift)
    grid = np.arange(96) / 96.0
    sy = next((sy for sy in grid if centred_gap(build(0.0, sy))), None)
    if sy is None:
        raise ValueError(f"no shift of {list(n)} cells centres a (111) shuffle gap (a = {a0} Å)")
    for sx in grid:
        cluster = build(sx, sy)
        if abs(nearest_bond(cluster) + BOND_BEHIND * a0) < 1e-3:
            return cluster, [float(sx), float(sy), 0.0]
    raise ValueError(f"no shift of {list(n)} cells puts a bond {BOND_BEHIND * a0:.3f} Å behind the centre")


class FlexibleCrack:
    """A (111)[1-10] silicon crack cluster under flexible boundary conditions.

    potential: "sw", a shipped model's name or a model file (as a region's ``potential``);
    radius: region I (free atoms), Å; far: the width of region III, Å; calculator: an ASE
    calculator to use instead of LAMMPS (matscipy's own Stillinger-Weber for the independent
    check); comm: the MPI communicator LAMMPS runs on; log: progress lines.
    """

    def __init__(self, potential: str = "sw", radius: float = 20.0, far: float = 8.0,
                 material: Material | None = None, calculator=None, comm=None,
                 log: Callable[[str], None] = print):
        from ase.lattice.cubic import Diamond
        from matscipy.cauchy_born import CubicCauchyBorn
        from matscipy.fracture_mechanics.clusters import set_regions
        from matscipy.fracture_mechanics.crack import CubicCrystalCrack

        if radius < 8.0:
            raise ValueError(f"radius = {radius} Å leaves region I too small for a crack tip; use >= 8 Å")
        self.log = log
        pot = region_spec.potential(potential)
        self.potential = pot
        self.material = material or material_of(potential, log=log)
        a0 = self.material.lattice_constant
        self.cutoff = pot.reach
        self.comm = comm
        # the cluster's forces: LAMMPS on ``comm``, every rank running this solver in step
        self.calc = calculator if calculator is not None else LammpsCalculator(pot.pair_lines, comm=comm,
                                                                                plugin=pot.plugin)
        # the Cauchy-Born fit strains periodic unit cells: a LAMMPS box of its own, on each rank
        # alone (8 atoms split over ranks get lost as the fit moves them; every rank fits the
        # same model)
        self.unit_cell_calc = calculator if calculator is not None else unit_cell_calculator(pot)
        m = self.material
        self.cb = CubicCauchyBorn("Si", a0, self.unit_cell_calc, lattice=Diamond)
        with _matscipy_quietly(), _seeded_latin_hypercube():
            self.cb.initial_regression_fit()
        self.crack = CubicCrystalCrack([1, 1, 1], [1, -1, 0], C11=m.C11, C12=m.C12, C44=m.C44,
                                       cauchy_born=self.cb)
        self.K_G = float(self.crack.k1g(m.surface_energy * J_PER_M2_TO_GPA_A))
        self.radius, self.r_III = float(radius), float(radius) + self.cutoff + float(far)
        span = 2.0 * (self.r_III + self.cutoff + 2.0)
        n = [int(math.ceil(span / (a0 * math.sqrt(6) / 2))) + 1, int(math.ceil(span / (a0 * math.sqrt(3)))) + 1, 1]
        self.cells = n[:2]                                 # unit cells along x and y (LatticeGreen matches them)
        cluster, self.shift = crack_cluster(a0, n)
        self.cluster = set_regions(cluster, self.radius, self.cutoff, self.r_III)
        counts = [int((self.cluster.arrays["region"] == k).sum()) for k in (1, 2, 3, 4)]
        self.log(f"flexible crack: {pot.description}, a = {a0:.5f} Å, K_G = {self.K_G:.4f} GPa sqrt(Å); "
                 f"regions I-IV {counts[0]}/{counts[1]}/{counts[2]}/{counts[3]} atoms (radius {radius} Å)")
        self._label_sublattices()

    # -- Cauchy-Born sublattices -----------------------------------------------------------

    def _sinclair(self, K: float, alpha: float = 0.0, variable_alpha: bool = True, shifts: bool = True):
        from matscipy.fracture_mechanics.crack import SinclairCrack
        with _matscipy_quietly():
            sc = SinclairCrack(self.crack, self.cluster, self.calc, k=K, alpha=alpha,
                               variable_alpha=variable_alpha, variable_k=False, rI=self.radius,
                               rIII=self.r_III, cutoff=self.cutoff, energy="total")
            sc.set_shiftmask(self.radius if shifts else np.inf)
            sc.update_atoms()
        return sc

    def _far_field_force(self, sc) -> float:
        """Median |F| (eV/Å) on the field-driven atoms of regions II and III."""
        with _matscipy_quietly():
            forces = sc.atoms.get_forces()
        driven = (self.cluster.arrays["region"] == 2) | (self.cluster.arrays["region"] == 3)
        return float(np.median(np.linalg.norm(forces[driven], axis=1)))

    def _label_sublattices(self) -> None:
        """Colour the bond graph in two; keep the colouring whose Cauchy-Born shifts lower the
        far-field forces at K_G (see the module docstring)."""
        A = np.transpose(self.crack.RotationMatrix)
        self.cb.set_sublattices(self.cluster, A, method="graph")
        first, second = self.cluster.arrays["lattice1mask"].copy(), self.cluster.arrays["lattice2mask"].copy()
        results = {}
        for name, (one, two) in {"as coloured": (first, second), "swapped": (second, first)}.items():
            self.cluster.arrays["lattice1mask"][:], self.cluster.arrays["lattice2mask"][:] = one, two
            self.cb.set_sublattices(self.cluster, A, read_from_atoms=True)
            results[name] = self._far_field_force(self._sinclair(self.K_G))
        unshifted = self._far_field_force(self._sinclair(self.K_G, shifts=False))
        best = min(results, key=results.get)
        one, two = (first, second) if best == "as coloured" else (second, first)
        self.cluster.arrays["lattice1mask"][:], self.cluster.arrays["lattice2mask"][:] = one, two
        self.cb.set_sublattices(self.cluster, A, read_from_atoms=True)
        self.shift_check = {"without shifts": unshifted, **results, "kept": best}
        self.log(f"Cauchy-Born shifts: median far-field |F| {unshifted:.3f} eV/Å without, "
                 f"{results[best]:.4f} with the sublattices {best} "
                 f"({max(results.values()):.3f} the other way)")
        if results[best] > 0.25 * unshifted:
            raise RuntimeError(f"the Cauchy-Born shifts do not remove the far-field forces "
                               f"({results[best]:.3f} of {unshifted:.3f} eV/Å): check the lattice "
                               "constant and elastic constants of the potential")

    # -- solves ------------------------------------------------------------------------------

    def _solution(self, sc) -> Solution:
        """The state ``sc`` holds (its atoms where the forces are taken)."""
        with _matscipy_quietly():
            forces = sc.atoms.get_forces()
        region = self.cluster.arrays["region"]
        x = sc.cryst.positions[:, 0] - sc.cryst.cell[0, 0] / 2 - sc.alpha
        y = sc.cryst.positions[:, 1] - sc.cryst.cell[1, 1] / 2
        faces = (np.abs(y) < 4.0) & (x < 0)
        norm = np.linalg.norm(forces, axis=1)
        return Solution(K=float(sc.kI), alpha=float(sc.alpha), max_force_free=float(norm[region == 1].max()),
                        max_force_boundary=float(norm[region == 2].max()),
                        max_force_boundary_bulk=float(norm[(region == 2) & ~faces].max()),
                        max_force_far=float(norm[region == 3].max()))

    def solve(self, K: float, alpha: float = 0.0, flexible: bool = True, fmax: float = 1e-3,
              steps: int = 200) -> Solution:
        """Relax region I at load K (GPa sqrt(Å)); with ``flexible`` the tip position alpha is
        an unknown too (its crack-tip force vanishes), else it stays at ``alpha`` (Å)."""
        return self._solution(self.solved(K, alpha, flexible, fmax, steps))

    def solved(self, K: float, alpha: float = 0.0, flexible: bool = True, fmax: float = 1e-3,
               steps: int = 200):
        """:meth:`solve`'s converged state: matscipy's SinclairCrack (u, alpha, kI)."""
        sc = self._sinclair(K, alpha, variable_alpha=flexible)
        try:
            with _matscipy_quietly():
                sc.optimize(ftol=fmax, steps=steps, method="krylov")
        except RuntimeError as exc:
            if not str(exc).startswith("no convergence"):
                raise
            raise RuntimeError(
                f"the flexible solve at K = {K:.4f} GPa sqrt(Å) ({K / self.K_G:.3f} K_G) from alpha = {alpha:.3f} Å "
                f"did not reach fmax = {fmax:g} eV/Å in {steps} Newton-Krylov steps: the tip may have no "
                "equilibrium near there (past an end of the lattice-trapping band); approach K in smaller "
                "steps from a converged state, or allow more steps (matscipy wrote the last configuration "
                "to ./no_convergence.xyz)") from None
        return sc

    def close(self) -> None:
        """End the LAMMPS instances (no-op for another calculator)."""
        for calc in {id(self.calc): self.calc, id(self.unit_cell_calc): self.unit_cell_calc}.values():
            if hasattr(calc, "clean"):
                calc.clean()
