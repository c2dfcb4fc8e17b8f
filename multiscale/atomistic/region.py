"""One atomistic (111)[1-10] silicon crack-tip region in LAMMPS, on an MPI communicator.

Crack frame: x = [11-2] (propagation), y = [111] (crack-plane normal), z = [1-10] (front),
one period along z (periodic), a cylinder of radius R in x-y around the initial tip at the
origin.  The crack lies on the (111) shuffle plane y = 0 for x < 0; the tip sits midway
between two columns of shuffle-plane bonds.  Atoms with reference radius > R - boundary
form the shell, placed by the continuum (reference + given displacement) and held fixed;
the interior is minimised.  Units: Å, eV, eV/Å, GPa, K in GPa sqrt(Å).  docs/crack_region.md
has the physics and the measured numbers.
"""

from __future__ import annotations

import math
import pathlib
import time
from typing import Callable

import numpy as np

from ..reference.material import Material
from ..units import BAR_TO_GPA
from . import spec as region_spec
from .tip import bond_lengths, crack_plane_bonds, find_tip

MAX_ENERGY_PER_ATOM = 100.0  # eV: |E/N| above this is an exploded configuration
SI_MASS = 28.0855
# LAMMPS lattice for the crack frame: the true periods along x, y, z in units of a (LAMMPS'
# default spacings are the rotated cell's bounding box, not periods along [11-2]), and an origin
# (fractions of the periods) that puts the (111) shuffle plane at y = 0 and the nearest bond
# columns at x = +-period/4.
ORIENT = "orient x 1 1 -2 orient y 1 1 1 orient z 1 -1 0"
PERIODS = (math.sqrt(6) / 2, math.sqrt(3), math.sqrt(2) / 2)
ORIGIN = (0.25, 0.875, 0.0)


class RegionError(RuntimeError):
    """The region cannot go on: ``kind`` is "nan" (non-finite input or energy), "lost_atoms"
    or "diverged" (exploding energy, failed minimisation)."""

    def __init__(self, kind: str, message: str):
        if kind not in ("nan", "lost_atoms", "diverged"):
            raise ValueError(f"unknown RegionError kind {kind!r}")
        super().__init__(message)
        self.kind = kind


class CrackRegion:
    """One atomistic (111)[1-10] silicon crack-tip region run by LAMMPS on ``comm``.

    Collective: every rank of ``comm`` constructs it and calls relax/state/restore/dump/close.
    ``boundary_reference`` (n_b, 2) Å: the shell atoms' reference x, y in a fixed order that
    does not depend on the number of ranks.  Attributes: ``lattice_constant`` (Å),
    ``elastic`` (C11, C12, C44 GPa), ``field`` (NearTipField.cubic), ``n_atoms``.
    """

    def __init__(self, spec: dict, comm=None, workdir: pathlib.Path | str = ".",
                 log: Callable[[str], None] = print, material: Material | None = None):
        from mpi4py import MPI
        self.spec = region_spec.validate(spec)
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.log = log if self.rank == 0 else (lambda msg: None)
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        pot = region_spec.potential(self.spec["potential"])
        region_spec.check_potential(self.spec, pot)
        self.pair_lines, self.plugin, describe = list(pot.pair_lines), pot.plugin, pot.description
        self._material(pot.name, material)
        self.radius, self.boundary = float(self.spec["radius"]), float(self.spec["boundary"])
        self.period_z = self.lattice_constant * PERIODS[2]
        self.bond_length = self.lattice_constant * math.sqrt(3) / 4
        self.broken_bond = float(self.spec["broken_bond"] or 1.3 * self.bond_length)
        self._seconds = 0.0
        self._build()
        self.log(f"crack region: {describe}, a = {self.lattice_constant:.5f} Å, R = {self.radius} Å, "
                 f"{self.n_atoms} atoms ({len(self.shell)} in the shell of {self.boundary} Å), "
                 f"{self.comm.Get_size()} rank(s)")

    # -- set-up ----------------------------------------------------------------------------
    def _material(self, potential: str, given: Material | None) -> None:
        """The potential's lattice and elastic constants (given, or from
        :func:`multiscale.reference.material.material` on rank 0 alone and broadcast, so every
        rank count gets the same numbers)."""
        from ..continuum.lefm import NearTipField
        from ..reference.material import material
        mat, error = given, None
        if mat is None and self.rank == 0:
            try:
                mat = material(potential, lattice_constant=self.spec["lattice_constant"], log=self.log)
            except Exception as exc:  # every rank raises, not only rank 0
                error = f"{type(exc).__name__}: {exc}"
        if given is None:
            mat, error = self.comm.bcast((mat, error), root=0)
        if error:
            raise RuntimeError(f"CrackRegion: computing the potential's lattice and elastic constants "
                               f"failed: {error}")
        if self.spec["lattice_constant"] is not None and mat.lattice_constant != self.spec["lattice_constant"]:
            raise ValueError(f"CrackRegion: spec lattice_constant = {self.spec['lattice_constant']} Å differs "
                             f"from the given material's {mat.lattice_constant} Å; give one")
        self.material = mat
        self.lattice_constant, self.elastic = float(mat.lattice_constant), mat.elastic
        self.field = NearTipField.cubic(self.elastic["C11"], self.elastic["C12"], self.elastic["C44"])

    def _lammps(self):
        from ..engines.lammps import quiet_lammps
        return quiet_lammps(self.plugin, self.comm, log=self.workdir / "log.lammps")

    def _build(self) -> None:
        a, R = self.lattice_constant, self.radius
        half = R + 2 * a
        self.lmp = lmp = self._lammps()
        spacing = " ".join(repr(p) for p in PERIODS)
        origin = " ".join(repr(o) for o in ORIGIN)
        lmp.commands_list([
            "units metal", "atom_style atomic", "atom_modify map array sort 0 0.0", "boundary s s p",
            f"lattice diamond {a!r} {ORIENT} spacing {spacing} origin {origin}",
            f"region box block {-half!r} {half!r} {-half!r} {half!r} 0 {self.period_z!r} units box",
            "create_box 1 box",
            f"region cylinder cylinder z 0 0 {R!r} INF INF units box",
            "create_atoms 1 region cylinder", f"mass 1 {SI_MASS}", *self.pair_lines,
            "neighbor 1.0 bin", "neigh_modify every 1 delay 0 check yes",
            "compute stress all stress/atom NULL virial",
            "thermo_style custom step pe fmax", "thermo_modify lost error norm no", "thermo 0",
            "timestep 0.001"])
        self.n_atoms = lmp.get_natoms()
        ref_by_id = self._gather("x", 3)
        # canonical order: by reference position, the same for any number of ranks (LAMMPS
        # numbers atoms rank by rank)
        key = np.round(ref_by_id, 6)
        self._order = np.lexsort((key[:, 2], key[:, 1], key[:, 0]))   # canonical -> id - 1
        self.reference = ref_by_id[self._order]
        r = np.hypot(self.reference[:, 0], self.reference[:, 1])
        self.shell = np.flatnonzero(r > R - self.boundary)             # canonical indices
        self.interior = np.flatnonzero(r <= R - self.boundary)
        self._group("shell", self.shell)
        lmp.command("group interior subtract all shell")
        self.boundary_reference = self.reference[self.shell, :2].copy()
        inner = np.hypot(*self.reference[:, :2].T) < R - self.boundary - self.bond_length
        bonds = crack_plane_bonds(self.reference, self.bond_length, 0.0, self.period_z)
        self._bonds = bonds[inner[bonds].all(axis=1)]
        self._initialized, self._tip_x = False, 0.0
        self._displacements = np.zeros((len(self.shell), 2))
        self._dumps = 0

    def _group(self, name: str, atoms: np.ndarray) -> None:
        """LAMMPS group ``name`` of the atoms with canonical indices ``atoms``."""
        ids = self._order[atoms] + 1
        for chunk in range(0, len(ids), 400):
            self.lmp.command(f"group {name} id " + " ".join(map(str, ids[chunk:chunk + 400])))

    # -- LAMMPS data by canonical index ----------------------------------------------------------
    def _gather(self, name: str, count: int) -> np.ndarray:
        """Per-atom data (N, count) ordered by atom id, the same on every rank."""
        compute_or_fix = name.startswith(("c_", "f_"))
        data = self.lmp.gather(name, 1, count) if compute_or_fix else self.lmp.gather_atoms(name, 1, count)
        return np.ctypeslib.as_array(data).reshape(-1, count).copy()

    def _positions(self) -> np.ndarray:
        return self._gather("x", 3)[self._order]

    def _scatter(self, name: str, values: np.ndarray) -> None:
        """Set the per-atom (N, 3) ``values`` of ``name`` ("x", "v"), given in canonical order."""
        by_id = np.empty_like(values)
        by_id[self._order] = values
        self.lmp.scatter_atoms(name, 1, 3, np.ctypeslib.as_ctypes(np.ascontiguousarray(by_id).ravel()))

    def _set_positions(self, positions: np.ndarray) -> None:
        self._scatter("x", positions)

    def _command(self, *commands: str) -> None:
        """Run LAMMPS commands; LAMMPS errors (raised on every rank) become RegionError."""
        t0 = time.perf_counter()
        try:
            self.lmp.commands_list(list(commands))
        except Exception as exc:
            text = str(exc)
            kind = "lost_atoms" if "Lost atoms" in text else "nan" if "Non-numeric" in text else "diverged"
            raise RegionError(kind, f"LAMMPS failed in {commands[-1]!r}: {text}") from None
        finally:
            self._seconds += time.perf_counter() - t0

    def _check(self, where: str) -> float:
        """Energy (eV) after ``where``; RegionError on non-finite/exploding energy or lost atoms."""
        energy = float(self.lmp.get_thermo("pe"))
        natoms = self.lmp.get_natoms()
        if natoms != self.n_atoms:
            raise RegionError("lost_atoms", f"{where}: {self.n_atoms - natoms} of {self.n_atoms} atoms were lost")
        if not math.isfinite(energy):
            raise RegionError("nan", f"{where}: the energy is {energy}; atoms overlap or the potential "
                                     "returned NaN (check the boundary displacements)")
        if abs(energy) / natoms > MAX_ENERGY_PER_ATOM:
            raise RegionError("diverged", f"{where}: the energy {energy / natoms:.4g} eV/atom exceeds "
                                          f"{MAX_ENERGY_PER_ATOM} eV/atom in magnitude; atoms overlap "
                                          "(boundary displacements too large?)")
        return energy

    # -- the initial crack ------------------------------------------------------------------------
    def fit_k(self, displacements: np.ndarray, tip=(0.0, 0.0)) -> tuple[float, np.ndarray, float]:
        """K_I (GPa sqrt(Å)), a rigid translation (2,) Å and the relative rms residual of the
        K-field centred at ``tip`` that best fits shell ``displacements`` (n_b, 2) Å
        (:func:`multiscale.continuum.sif.fit_k`)."""
        from ..continuum.sif import fit_k
        coef, residual = fit_k(self.field, self.boundary_reference - np.asarray(tip, float), displacements, 1)
        return float(coef[0]), coef[1:], residual

    def _predict(self, displacements: np.ndarray) -> np.ndarray:
        """Start of the next minimisation: the current positions, plus, when the shell's change is
        a K-field increment and a translation about the current tip (a K ramp: residual < 5%),
        the translation and, if K rises, that increment in the interior too; otherwise (the tip
        moved) the interior as it is."""
        pos = self._positions()
        change = displacements - self._displacements
        if not np.any(change):
            return pos
        tip = np.array([self._tip_x, 0.0])
        dk, shift, residual = self.fit_k(change, tip)
        if residual < 0.05:
            xy = self.reference[self.interior, :2]
            far = np.hypot(*(xy - tip).T) > 1e-6
            step = np.broadcast_to(shift, xy.shape).copy()
            if dk > 0:                   # unloading: a closing K-step can push the crack faces together
                step[far] += self.field.displacements(xy[far], dk, tip=tip)
            pos[self.interior, :2] += step
        return pos

    def scale_displacements(self, factor: float) -> None:
        """Move every atom to reference + ``factor`` x (position - reference): the start of the
        next relaxation after the load changed by ``factor``, in particular on unloading, where
        relaxing a loaded interior inside an unloaded shell would release its stored energy into
        the crack.  Collective."""
        pos = self._positions()
        pos[:, :2] = self.reference[:, :2] + factor * (pos[:, :2] - self.reference[:, :2])
        self._set_positions(pos)
        self._displacements = factor * self._displacements

    def _open_crack(self, displacements: np.ndarray) -> np.ndarray:
        """Initial positions: the whole crystal displaced by the K-field that fits the shell's
        displacements; the field's branch cut on y = 0, x < 0 opens the crack on the shuffle plane."""
        k, shift, _ = self.fit_k(displacements)
        pos = self.reference.copy()
        if k != 0.0:
            pos[:, :2] += self.field.displacements(self.reference[:, :2], k) + shift
        else:
            pos[:, :2] += shift
        self.log(f"crack region: initial crack opened with the K-field K = {k:.3f} GPa sqrt(Å)")
        return pos

    # -- the interface ------------------------------------------------------------------------
    def relax(self, boundary_displacements: np.ndarray, increment: int) -> dict:
        """Move the shell to reference + ``boundary_displacements`` (n_b, 2) Å, minimise the
        interior, find the tip.  Collective; returns the same dict on every rank (see module doc
        and docs/crack_region.md for the keys)."""
        self._seconds = 0.0
        u = self._checked(boundary_displacements, increment)
        pos = self._predict(u) if self._initialized else self._open_crack(u)
        pos[self.shell, :2] = self.boundary_reference + u
        pos[self.shell, 2] = self.reference[self.shell, 2]
        self._set_positions(pos)
        self._command("run 0 post no")
        self._check(f"increment {increment}, before minimising")
        step0 = self.lmp.get_thermo("step")
        max_it = self.spec["max_iterations"]
        self._command(f"min_style {self.spec['min_style']}", "min_modify norm max",
                      "fix hold shell setforce 0.0 0.0 0.0",
                      f"minimize 0.0 {self.spec['fmax']!r} {max_it} {10 * max_it}", "unfix hold",
                      "run 0 post no")   # forces again without the hold: the shell's reactions
        iterations = int(self.lmp.get_thermo("step") - step0)
        energy = self._check(f"increment {increment}, after minimising")
        self._initialized, self._displacements = True, u.copy()
        return self._result(energy, iterations, increment)

    def _checked(self, boundary_displacements: np.ndarray, increment: int) -> np.ndarray:
        """The shell displacements as a float array (n_b, 2); ValueError for another shape,
        RegionError "nan" on every rank when any is not finite."""
        from mpi4py import MPI
        u = np.asarray(boundary_displacements, dtype=float)
        if u.shape != (len(self.shell), 2):
            raise ValueError(f"boundary displacements must have shape ({len(self.shell)}, 2) (one row per "
                             f"boundary_reference row), got {u.shape}")
        bad = np.flatnonzero(~np.isfinite(u).all(axis=1))
        if self.comm.allreduce(len(bad), op=MPI.MAX):
            raise RegionError("nan", f"increment {increment}: {len(bad)} boundary displacements are not "
                                     f"finite (rows {bad[:5].tolist()}...); the continuum model produced NaN/inf")
        return u

    def _result(self, energy: float, iterations: int, increment: int) -> dict:
        pos = self._positions()
        forces = self._gather("f", 3)[self._order]
        stress = self._gather("c_stress", 6)[self._order]
        tip_x, broken = find_tip(pos, self.reference, self._bonds, self.broken_bond, self.period_z)
        self._tip_x = tip_x
        tip = np.array([tip_x, 0.0])
        fmax = float(np.abs(forces[self.interior]).max())
        converged = fmax <= self.spec["fmax"] * (1 + 1e-6)
        if not converged:
            self.log(f"crack region: increment {increment}: minimiser stopped after {iterations} iterations "
                     f"at fmax {fmax:.3g} eV/Å > {self.spec['fmax']} eV/Å (raise max_iterations)")
        radius = self.spec["stress_radius"]
        near = self.interior if radius is None else self.interior[
            np.hypot(*(self.reference[self.interior, :2] - tip).T) < radius]
        volume = self.lattice_constant ** 3 / 8          # Å^3 per atom of the diamond crystal
        sigma = stress[near][:, [0, 1, 3]] / volume * BAR_TO_GPA   # stress/atom is stress x volume, bar Å^3
        self._dump(increment)
        return {"energy": energy, "tip": tip, "reaction": forces[self.shell, :2].copy(),
                "stress_xy": self.reference[near, :2].copy(), "stress": sigma, "iterations": iterations,
                "n_atoms": int(self.n_atoms), "seconds_lammps": self._seconds, "fmax": fmax,
                "converged": bool(converged), "broken_bonds": int(broken.sum()),
                "tip_limit": float(self.reference[self._bonds[-1, 0], 0]) - self.bond_length,
                "max_bond": float(bond_lengths(pos, self._bonds, self.period_z).max()),
                "atom_displacements": pos[:, :2] - self.reference[:, :2]}

    def _dump(self, increment: int) -> None:
        every = self.spec["dump_every"]
        if every and increment % every == 0:
            self.dump(self.workdir / f"region.{increment:05d}.dump")

    def state(self) -> dict[str, np.ndarray]:
        """Current positions (N, 3) Å in the canonical order, the reference they belong to and
        the last shell displacements: all a checkpoint needs."""
        return {"positions": self._positions(), "reference": self.reference.copy(),
                "displacements": self._displacements.copy(),
                "initialized": np.array(self._initialized), "tip_x": np.array(self._tip_x)}

    def restore(self, state: dict) -> None:
        """Collective; put the region back into ``state`` (from :meth:`state`, any rank count)."""
        ref = np.asarray(state["reference"], float)
        if ref.shape != self.reference.shape or not np.allclose(ref, self.reference, atol=1e-6):
            raise ValueError(f"state is of another region ({ref.shape[0]} atoms) than this one "
                             f"({self.n_atoms} atoms, radius {self.radius} Å, a = {self.lattice_constant} Å)")
        self._set_positions(np.asarray(state["positions"], float))
        self._displacements = np.asarray(state["displacements"], float).copy()
        self._initialized = bool(np.asarray(state["initialized"]))
        self._tip_x = float(np.asarray(state["tip_x"]))
        self._command("run 0 post no")

    def dump(self, path) -> None:
        """LAMMPS text dump (id element x y z fx fy fz) of the current configuration; ASE reads
        it (``ase.io.read(path, format="lammps-dump-text")``), and so does ``multiscale attention``."""
        self._command(f"write_dump all custom {pathlib.Path(path)} id element x y z fx fy fz "
                      "modify sort id element Si format float %.10g")

    def close(self) -> None:
        if getattr(self, "lmp", None) is not None:
            self.lmp.close()
            self.lmp = None
