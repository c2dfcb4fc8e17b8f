"""The lattice-trapping curve of a flexible-boundary crack: K against the crack-tip position,
through its turning points K- and K+.

Buze & Kermode, Phys. Rev. E 103, 033002 (2021): pseudo-arclength continuation of the
equilibria of :class:`~multiscale.atomistic.flexible.FlexibleCrack` in x = (u, alpha, K), u
the free atoms' displacements (region I), alpha the tip position, K the load.  Each step
predicts x + ds t along the curve's secant tangent t and corrects on the hyperplane
(x' - x) . t = ds, solving region I's forces, the crack-tip force f_alpha = -dE/d alpha and that
constraint together by Newton-Krylov (scipy's ``newton_krylov``).  With K free, the corrector
passes the folds where the tip's bond breaks (K+) or the crack closes (K-); at fixed K no
equilibrium exists beyond them.  With a lattice Green's function (``outer``, :mod:`.green`) the
unknowns also hold phi, the forces whose lattice response moves regions II-IV, and the shell's
forces join the residual: x = (u, phi, alpha, K), every atom of regions I-III at zero force and
the tip force taken on the Green's function's outer ring.  The Krylov iterations are
preconditioned by Stillinger-Weber's Hessian (:mod:`.preconditioner`), and a step across which
K turns is retaken shorter, so that each fold's K is resolved.

Why not matscipy's ``arc_length_continuation``: it measures arclength Euclidean in mixed units
(u and alpha in Å, K in GPa sqrt(Å)), so K dominates the step and a step small enough to
resolve the curve moves the tip by ~0.01 Å; and it evaluates the Cauchy-Born shift gradients
of the tip force (0.09 s of the 0.13 s of one residual at R = 20 Å) at every Krylov product.
Here the metric is (u / 1 Å, alpha / 1 Å, K / (K_unit K_G)); while (alpha, K) stay within
1e-5 of where the field was evaluated (Krylov products perturb them by ~1e-6), the field's
positions are its first-order expansion and the tip-force direction is kept (its change over
1e-5 Å moves f_alpha by ~1e-7 eV/Å).  The step follows the curve's turning: ds scales to turn consecutive tangents by
about 10 degrees (at most 1.5x longer a step), and halves when the corrector fails (it gives
up after ``newton_steps`` Newton steps: near a fold a step too long has no solution on its
hyperplane, and Newton only creeps).

A model whose energy is only C1 (ANI's cosine cutoffs: si-ani's angular one at 3.8 Å lies on
silicon's second-neighbour shell) has kinks in its forces; Newton stalls where a pair of the
solution sits on one (si-ani on the glide crack of earlier versions; on the shuffle crack its
curves pass without).  A solve at fixed K next to the curve then falls back to ASE's FIRE on
the augmented system (``_nearby_equilibrium``), which needs no Jacobian; ``branch_end`` follows a
branch at fixed K past such kinks to its fold.

Units: Å, eV, eV/Å, K in GPa sqrt(Å).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import warnings
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ase.optimize.optimize import Optimizable

from .flexible import FlexibleCrack, Solution, _matscipy_quietly
from .green import LatticeGreen

BOND = 1.2      # a bond: two atoms closer than 1.2 nearest-neighbour distances
TURN = 10.0     # degrees between consecutive tangents the step size aims at
START_STEPS = 200  # Newton steps for the first equilibrium (from the bare field: far)
FIXED_STEPS = 40   # Newton steps for the fixed-tip relaxation the first equilibrium starts from
PROBE_STEPS = 15   # Newton steps for a solve at fixed K next to the curve
FOLD_PROBE = 0.002  # K_G: how far past a fold of K an equilibrium is looked for
NEARBY = 0.02      # Å: a solve at fixed K next to the curve keeps its equilibrium within this
RETREAT = 0.5   # Å the tip may fall back from its furthest before the forward leg stops
PAST_FOLD = 0.01   # K_G: how far K must move on past a fold before trace(forward_folds=...) counts it
NEAR = 1e-5     # Å of alpha, and relative K: a Krylov product's perturbation (~1e-6), not a step
TIP_MOBILITY = 0.5  # FIRE's step on alpha per eV/Å of tip force, relative to an atom's per eV/Å
FIRE_STEPS = 20000  # FIRE steps for an equilibrium at fixed K (si-ani: 1,500-16,500)


@dataclasses.dataclass
class TrappingCurve:
    """Equilibria of the flexible-boundary crack in the order traced.  (n,) arrays: alpha (Å),
    K (GPa sqrt(Å)), energy (eV, the cluster's), max_force_free and max_force_boundary (eV/Å,
    regions I and II), evaluations (force calls of each step's corrector); positions (n,
    n_free, 3), Å: region I.  K_G (GPa sqrt(Å)), radius (Å), nearest-neighbour distance (Å),
    origin: where alpha = 0 puts the tip, (x, y) Å in the positions' frame; stopped: why the
    trace ended early ("" when it ran its length); shell (n, n_II-IV, 3), Å: regions II-IV
    where they move off the field (a lattice Green's function boundary), else None."""

    alpha: np.ndarray
    K: np.ndarray
    energy: np.ndarray
    max_force_free: np.ndarray
    max_force_boundary: np.ndarray
    evaluations: np.ndarray
    positions: np.ndarray
    K_G: float
    radius: float
    neighbour: float
    origin: tuple[float, float] = (0.0, 0.0)
    stopped: str = ""
    past: dict[str, str] = dataclasses.field(default_factory=dict)   # "K_plus"/"K_minus": past_folds' lines
    shell: np.ndarray | None = None

    def turning_points(self, tolerance: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the minima and maxima of K along the curve (its folds): K turns there and
        moves on by more than ``tolerance`` K_G (hysteresis: at a fold K is flat, and the
        corrector's tolerance makes it wobble by ~1e-4 K_G)."""
        return _turns(self.K, tolerance * self.K_G)

    def fold_index(self, which: int) -> int:
        """The point of K- (``which`` 0: the lowest minimum below K_G) or K+ (1: the highest
        maximum above K_G).  The band holds K_G: a minimum above it (or a maximum below) is one
        fold of a small pair inside the band, not its end (si-ani's backward leg stopped short
        of K- with a pair at 1.535 and 1.537 K_G traced)."""
        index = self.turning_points()[which]
        index = index[self.K[index] <= self.K_G] if which == 0 else index[self.K[index] >= self.K_G]
        if not len(index):
            name = "K- (a minimum below K_G)" if which == 0 else "K+ (a maximum above K_G)"
            raise ValueError(f"the curve ({len(self.K)} points, alpha {self.alpha[0]:.2f} to {self.alpha[-1]:.2f} Å) "
                             f"has no {name} yet: trace it further (a lattice period is about 3.3 Å)"
                             + (f"; it stopped: {self.stopped}" if self.stopped else ""))
        return int(index[np.argmin(self.K[index])] if which == 0 else index[np.argmax(self.K[index])])

    def _fold(self, which: int) -> float:
        return float(self.K[self.fold_index(which)])

    @property
    def K_minus(self) -> float:
        """The lowest fold of K below K_G (GPa sqrt(Å)): below it the crack closes."""
        return self._fold(0)

    @property
    def K_plus(self) -> float:
        """The highest fold of K above K_G (GPa sqrt(Å)): above it the crack advances."""
        return self._fold(1)

    def bond_changes(self, i: int, j: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """(broken, formed): region-I atom pairs bonded at point i and not at j, and the other
        way round."""
        from scipy.spatial import cKDTree   # pairs within a distance: no neighbour list needed
        cut = BOND * self.neighbour
        before, after = (set(cKDTree(self.positions[k]).query_pairs(cut)) for k in (i, j))
        return sorted(before - after), sorted(after - before)

    def events(self) -> list[str]:
        """What happens between consecutive folds: K, alpha, and the bonds broken and formed
        (region-I atom pairs, with their midpoints (x, y) in Å from the tip at the later fold)."""
        minima, maxima = self.turning_points()
        marks = [0, *sorted([*minima, *maxima]), len(self.K) - 1]
        lines = []
        for a, b in zip(marks[:-1], marks[1:]):
            tip = np.array([self.origin[0] + self.alpha[b], self.origin[1]])

            def where(pairs):
                return ", ".join(f"{i}-{j} at ({m[0]:+.1f}, {m[1]:+.1f})" for i, j in pairs[:4]
                                 for m in [(self.positions[b, i, :2] + self.positions[b, j, :2]) / 2 - tip])

            broken, formed = self.bond_changes(a, b)
            kind = "K-" if b in minima else "K+" if b in maxima else "end"
            lines.append(f"to {kind} at alpha = {self.alpha[b]:+.3f} Å, K = {self.K[b] / self.K_G:.4f} K_G: "
                         f"{len(broken)} bond(s) broken{': ' + where(broken) if broken else ''}; "
                         f"{len(formed)} formed{': ' + where(formed) if formed else ''}")
        return lines

    def write(self, group) -> None:
        """Into an h5py group: attributes K_minus, K_plus, K_G (GPa sqrt(Å)), radius (Å),
        stopped; the arrays as datasets."""
        for key in ("K_G", "radius", "neighbour", "origin", "stopped"):
            group.attrs[key] = getattr(self, key)
        for key in ("K_minus", "K_plus"):
            try:
                group.attrs[key] = getattr(self, key)
            except ValueError:
                group.attrs[key] = np.nan
        for name, line in self.past.items():
            group.attrs[f"past_{name}"] = line
        for key in ("alpha", "K", "energy", "max_force_free", "max_force_boundary", "evaluations", "positions"):
            group.create_dataset(key, data=getattr(self, key))
        if self.shell is not None:
            group.create_dataset("shell", data=self.shell)

    @classmethod
    def read(cls, group) -> "TrappingCurve":
        """What :meth:`write` wrote."""
        arrays = {key: group[key][()] for key in ("alpha", "K", "energy", "max_force_free", "max_force_boundary",
                                                 "evaluations", "positions")}
        attrs = {key: group.attrs[key] for key in ("K_G", "radius", "neighbour")}
        past = {key[len("past_"):]: str(value) for key, value in group.attrs.items() if key.startswith("past_")}
        return cls(**arrays, **{k: float(v) for k, v in attrs.items()}, origin=tuple(group.attrs["origin"]),
                   stopped=str(group.attrs["stopped"]), past=past,
                   shell=group["shell"][()] if "shell" in group else None)

    def plot(self, path, others: dict[str, "TrappingCurve"] | None = None, label: str | None = None,
             marks: dict[str, float] | None = None, folds: tuple[str, ...] = ("K-", "K+")) -> None:
        """K/K_G against alpha with K_G and this curve's ``folds`` (where traced) marked, and
        the cluster's energy along the curve below; ``others`` (label -> curve) are drawn
        alongside (e.g. other radii), ``marks`` (label -> K/K_G) as more dashed lines (e.g. a
        fold found at fixed K; green where the label starts with K+)."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        label = label or f"R = {self.radius:g} Å"
        curves = {label: self, **(others or {})}
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.5, 6.5), sharex=True,
                                          gridspec_kw={"height_ratios": [2, 1]})
        for name, c in curves.items():
            line, = top.plot(c.alpha, c.K / c.K_G, "o-", ms=2, lw=1, label=name)
            bottom.plot(c.alpha, c.energy - c.energy[0], "-", color=line.get_color())
        top.axhline(1.0, color="k", lw=0.8, ls=":", label="K_G")
        for which, name, colour in ((0, "K-", "C3"), (1, "K+", "C2")):
            if name not in folds:
                continue
            try:
                value = self._fold(which) / self.K_G
            except ValueError:                           # not traced (yet)
                continue
            top.axhline(value, color=colour, lw=0.8, ls="--", label=f"{name} = {value:.3f} K_G ({label})")
        for name, value in (marks or {}).items():
            top.axhline(value, color="C2" if name.startswith("K+") else "C3", lw=0.8, ls="-.", label=name)
        top.set_ylabel("K / K_G")
        top.legend(fontsize=7)
        bottom.set_xlabel("crack-tip position alpha (Å)")
        bottom.set_ylabel("E - E(start) (eV)")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)


class _Augmented:
    """The residual of the augmented system at x = (u, phi, alpha, K): region I's forces and,
    with a lattice Green's function ``green``, the shell's (eV/Å), and the crack-tip force
    f_alpha (eV/Å), on matscipy's SinclairCrack ``sc``.  phi (eV/Å, the shell's atoms) are
    the forces whose lattice response w = G phi moves regions II-IV (:mod:`.green`); without
    ``green`` there is no phi and the shell stays on the field."""

    def __init__(self, crack: FlexibleCrack, sc, K_unit: float, green: LatticeGreen | None = None):
        self.crack, self.sc, self.green = crack, sc, green
        self.n_u = 3 * int(sc.regionI.sum())
        self.n = self.n_u + (3 * len(green.shell) if green is not None else 0)   # index of alpha
        self.scale = np.ones(self.n + 2)                  # units of the metric: Å, eV/Å, Å, K_unit K_G
        self.scale[-1] = K_unit * crack.K_G
        self.direction = None                             # ((alpha, K), V) of the tip force
        self.field = None                                 # ((alpha, K), positions, d/dalpha, d/dK)
        self.phi = np.zeros(self.n - self.n_u)
        self.w = None                                     # (phi, w on the continued cluster)
        self.calls = 0
        self.preconditioner = None                        # a HessianPreconditioner, once refreshed

    def precondition(self, x: np.ndarray) -> None:
        """(Re)factorise the Newton-Krylov preconditioner at x (:mod:`.preconditioner`): SW's
        Hessian of the continued cluster with a Green's function boundary, else of region I."""
        from .preconditioner import HessianPreconditioner, RegionIPreconditioner
        region_I = np.flatnonzero(self.sc.regionI)
        if self.preconditioner is None:
            self.preconditioner = (RegionIPreconditioner(region_I) if self.green is None else
                                   HessianPreconditioner(self.green, region_I, self.sc.atoms.cell.array))
        self.set_state(x)
        if self.green is None:
            self.preconditioner.refresh(self.sc.atoms)
        else:
            self.preconditioner.refresh(self.sc.atoms.positions, self.sc.kI, self.sc.alpha, self.w[1])

    def inner_M(self):
        """The preconditioner's LinearOperator for newton_krylov, or None."""
        return None if self.preconditioner is None else self.preconditioner.operator()

    def state(self) -> np.ndarray:
        return np.r_[self.sc.u.reshape(-1), self.phi, self.sc.alpha, self.sc.kI]

    def state_from(self, moved: np.ndarray, alpha: float, K: float) -> np.ndarray:
        """x at (alpha, K) for the cluster's atoms displaced by ``moved`` (n_atoms, 3) Å off the
        field: u region I's, phi the forces whose response moves the shell so (CG on G)."""
        x = np.r_[moved[self.sc.regionI].reshape(-1), np.zeros(self.n - self.n_u), alpha, K]
        if self.green is not None:
            x[self.n_u:self.n] = self.green.forces_for(moved[self.green.shell]).reshape(-1)
        return x

    def _near(self, cached) -> bool:
        """(alpha, K) within NEAR of where ``cached`` was evaluated."""
        sc = self.sc
        return (cached is not None and abs(sc.alpha - cached[0][0]) <= NEAR
                and abs(sc.kI - cached[0][1]) <= NEAR * abs(cached[0][1]))

    def _field_positions(self) -> np.ndarray:
        """Positions of every atom with u = 0 at the current (alpha, K): the K-field and its
        Cauchy-Born shifts (matscipy's update_atoms, a polar decomposition per atom: most of a
        force call's time, 1.5 s at R = 40 Å)."""
        sc = self.sc
        with _matscipy_quietly():
            sc.update_atoms()
        field = sc.atoms.positions.copy()
        field[sc.regionI] -= sc.u
        return field

    def set_state(self, x: np.ndarray) -> None:
        """Region I at u, the field at (alpha, K): evaluated afresh, or, within NEAR of the
        last evaluation (a Krylov product's perturbation), its first-order Taylor expansion
        (derivatives by finite differences of 1e-7 Å and 1e-7 K, taken on the first such call)."""
        sc = self.sc
        sc.u[:] = x[:self.n_u].reshape(-1, 3)
        self.phi = x[self.n_u:self.n].copy()
        sc.alpha, sc.kI = float(x[self.n]), float(x[self.n + 1])
        if not self._near(self.field):
            self.field = [(sc.alpha, sc.kI), self._field_positions(), None, None]
        (alpha0, K0), field, d_alpha, d_K = self.field
        if (sc.alpha, sc.kI) != (alpha0, K0):
            if d_alpha is None:
                here = (sc.alpha, sc.kI)
                h_alpha, h_K = 1e-7, 1e-7 * abs(K0)
                sc.alpha, sc.kI = alpha0 + h_alpha, K0
                d_alpha = (self._field_positions() - field) / h_alpha
                sc.alpha, sc.kI = alpha0, K0 + h_K
                d_K = (self._field_positions() - field) / h_K
                self.field[2:] = d_alpha, d_K
                sc.alpha, sc.kI = here
            field = field + (sc.alpha - alpha0) * d_alpha + (sc.kI - K0) * d_K
        sc.atoms.positions[:] = field
        sc.atoms.positions[sc.regionI] += sc.u
        if self.green is not None:
            if self.w is None or not np.array_equal(self.w[0], self.phi):
                self.w = (self.phi.copy(), self.green.response(self.phi.reshape(-1, 3)))
            sc.atoms.positions[:] += self.green.on_cluster(self.w[1], len(sc.atoms))

    def forces(self, x: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """(the free atoms' forces flattened: region I's, then the shell's with ``green``,
        f_alpha, all forces (n_atoms, 3)) at x."""
        self.set_state(x)
        self.calls += 1
        sc = self.sc
        with _matscipy_quietly():
            forces = sc.atoms.get_forces()
        if self.green is not None:   # the outer ring's reaction: -dE/dalpha of cluster and reservoir
            f_alpha = self.green.tip_force(self.w[1], sc.kI, sc.alpha)
            return np.r_[forces[sc.regionI].reshape(-1), forces[self.green.shell].reshape(-1)], f_alpha, forces
        if not self._near(self.direction):
            self.direction = ((sc.alpha, sc.kI), self._tip_direction())
        mask = sc.regionII          # matscipy's f_alpha: the tip force on the field-driven shell
        f_alpha = float(np.tensordot(forces[mask], self.direction[1][mask]))
        return forces[sc.regionI].reshape(-1), f_alpha, forces

    def _tip_direction(self) -> np.ndarray:
        """-d(positions)/d alpha of the field with its Cauchy-Born shifts, (n_atoms, 3): the
        vector matscipy's ``get_crack_tip_force`` projects the forces on."""
        sc = self.sc
        tip_x, tip_y = sc.cryst.cell.diagonal()[0] / 2.0 + sc.alpha, sc.cryst.cell.diagonal()[1] / 2.0
        F = sc.crk.deformation_gradient(sc.cryst.positions[:, 0], sc.cryst.positions[:, 1], tip_x, tip_y,
                                        sc.kI, sc.kII)
        V = np.zeros((len(sc.cryst), 3))
        V[:, 0], V[:, 1] = -(F[:, 0, 0] - 1.0), -F[:, 0, 1]
        A = np.transpose(sc.crk.RotationMatrix)
        with _matscipy_quietly():
            shifts = sc.crk.cauchy_born.get_shift_gradients(A, sc.cryst, F_func=sc.get_deformation_gradient,
                                                            coordinates="cart2D", kI=sc.kI, kII=sc.kII)
        mask = sc.shiftmask if sc.shiftmask is not None else slice(None)
        V[mask] += shifts[mask]
        return V


def trace(crack: FlexibleCrack, length: float = 4.0, back: float = 1.0, ds: float = 0.05, ds_max: float = 0.1,
          K_unit: float = 1.0, fmax: float = 1e-5, newton_steps: int = 8, max_points: int = 600,
          tip_weight: float = 20.0, inner_steps: int = 40, outer: float | None = None,
          log: Callable[[str], None] | None = None, keep: str | Path | None = None,
          precondition: bool = True, fold_ds: float | None = None,
          forward_folds: int | None = None) -> TrappingCurve:
    """The trapping curve through the flexible equilibrium at K_G: from it with the tip
    advancing until alpha has grown by ``length`` Å (a lattice period of the (111)[1-10] crack
    is a sqrt(6)/4, 3.33 Å for SW), then from it backwards until alpha has fallen by ``back``
    Å (where the start lies on a stable branch, its K- is behind it); the points in arclength
    order.  Steps ds (metric: module docstring) between ds_max and ds/256; every point
    solved to ``fmax`` eV/Å on region I and on ``tip_weight`` x f_alpha, by Newton-Krylov
    (``newton_steps`` outer, ``inner_steps`` LGMRES iterations).  Why so tight: the tip force
    moves by only ~0.005 eV/Å per Å of alpha (its field-driven shell is far from the tip) and
    region I's softest modes by ~0.01 eV/Å per Å, so fmax = 1e-4 with weight 1 left alpha
    uncertain by ~0.1 Å at R = 30 Å; the curve then crept and turned back at false folds
    (K+ 1.16 instead of 1.63 K_G).  A trace that cannot go on keeps
    its points and says why in ``stopped``, as does a forward leg that turns back on itself
    (the tip falls 0.5 Å behind its furthest: past its last fold the crack rearranges instead
    of advancing), and the backward leg ends once past a fold of K.  At most ``max_points``
    points forward and half as many back; ``keep``: an HDF5 file rewritten with the curve so
    far after every point (a killed run keeps its points); ``outer`` (Å): regions II-IV move
    by the lattice Green's function of the cluster continued to this radius, so that the shell
    carries no force (None: the shell stays on the K-field, matscipy's scheme); ``precondition``:
    Krylov iterations preconditioned by Stillinger-Weber's Hessian of the continued cluster
    (with ``outer``), else of region I (:mod:`.preconditioner`: about 8x fewer force calls per
    point), refreshed when its extra force calls have cost as much as a refresh.  A step across which K turns
    (a fold) is taken again shorter until it is at most ``fold_ds`` (default ds / 8) long.
    ``forward_folds``: the forward leg also ends once K has passed that many folds by
    ``PAST_FOLD`` x K_G (1: just past K-, where a leg of many Å would climb the steep branch)."""
    from scipy.optimize import NoConvergence

    if forward_folds is not None and forward_folds < 1:
        raise ValueError(f"trace: forward_folds must be a positive count of folds, or None; got {forward_folds}")
    log = log or crack.log
    if not (length >= 0 and back >= 0 and ds_max >= ds > 0 and K_unit > 0 and fmax > 0 and tip_weight > 0):
        raise ValueError(f"trace: need length, back >= 0, ds_max >= ds > 0, K_unit, fmax, tip_weight > 0; got "
                         f"{length}, {back}, {ds}, {ds_max}, {K_unit}, {fmax}, {tip_weight}")
    fold_ds = ds / 8 if fold_ds is None else fold_ds
    begin = time.perf_counter()
    system = _system(crack, K_unit, outer, log)
    weight = 1.0 / system.scale

    def at_load(start: np.ndarray, K: float) -> np.ndarray:
        return _at_load(system, start, K, fmax, tip_weight)

    x = _first(system, fmax, tip_weight, log, precondition)
    if precondition and system.preconditioner is None:     # _first's downhill route factorises none
        system.precondition(x)
    # the second point at lower K: at K_G the tip sits on the branch where raising K moves it back
    tangent = (at_load(x, 0.99 * crack.K_G) - x) * weight
    tangent /= np.linalg.norm(tangent)
    if tangent[system.n] < 0:
        tangent = -tangent                                 # the tip advances
    first = _point(system, x, system.calls)
    log(f"trapping curve: R = {crack.radius:g} Å, from the flexible equilibrium at K_G "
        f"(alpha = {x[system.n]:+.4f} Å)")
    alpha0 = x[system.n]

    def leg(direction: float, until, done: list, budget: int) -> tuple[list, str]:
        """Points from the start along ``direction`` * tangent until ``until(alpha, Ks)`` says
        why to stop ("" for a leg that ran its length), at most ``budget`` of them."""
        points, here, t_here, step = [first], x, direction * tangent, ds
        calls, started = system.calls, time.perf_counter()      # since the last point
        while (why := until(here[system.n], [p[1] for p in points])) is None:
            if len(points) >= budget:
                return points, f"{budget} points reached at alpha = {here[system.n]:+.3f} Å"
            base, t, h = here, t_here, step
            rescued = False
            try:
                y = _corrected(system, base, t, h, fmax, tip_weight, newton_steps, inner_steps)
            except (NoConvergence, ValueError, RuntimeError):
                step /= 2
                if step >= ds / 256:
                    continue
                y = _rescue(system, base, t, ds, fmax, tip_weight, newton_steps, inner_steps, log)
                if y is None:
                    return points, (f"no step converged down to ds = {step:.2g} at alpha = "
                                    f"{here[system.n]:+.3f} Å, K = {here[-1] / crack.K_G:.4f} K_G, "
                                    "nor a longer corrector or a step at fixed K")
                step, h, rescued = ds, float(np.linalg.norm((y - base) * weight)), True
            new_tangent = (y - base) * weight
            new_tangent /= np.linalg.norm(new_tangent)
            if new_tangent[-1] * t_here[-1] < 0 and h > fold_ds and not rescued:
                # K turned within this step: take it again shorter, until the turn lies within a
                # step of fold_ds, so that the fold's K is resolved (K is flat there to second
                # order: with steps of 0.1 SW's K- at R = 20 Å came out 0.35 % high)
                step = h / 4
                continue
            if new_tangent[-1] * t_here[-1] < 0:
                # K turned: a fold, unless an equilibrium lies just beyond at fixed K next to
                # this one. The curve then has a kink where the forces kink (ANI's cosine
                # cutoffs: energy only C1), and the corrector creeps and turns back there
                # (si-ani at 1.148 K_G, R = 40 Å, a pair 1e-5 Å from its 3.8 Å angular cutoff).
                # Past a true fold the nearest equilibrium at that K is another branch, more
                # than NEARBY away.
                K = base[-1] + math.copysign(FOLD_PROBE * crack.K_G, t_here[-1])
                beyond = _nearby_at_load(system, base, K, fmax, tip_weight)
                if beyond is not None:
                    log(f"trapping curve: no fold at K = {base[-1] / crack.K_G:.4f} K_G: an equilibrium "
                        f"lies beyond it at {K / crack.K_G:.4f} K_G (a kink in the curve); going on")
                    y, new_tangent = beyond, (beyond - base) * weight
                    h = float(np.linalg.norm(new_tangent))
                    new_tangent /= h
            turn = math.degrees(math.acos(float(np.clip(np.dot(new_tangent, t_here), -1.0, 1.0))))
            here, t_here = y, new_tangent
            point_calls = system.calls - calls      # retaken and failed correctors included
            points.append(_point(system, here, point_calls))
            if system.preconditioner is not None:
                stale = system.preconditioner.stale(point_calls, time.perf_counter() - started)
                if crack.comm is not None and crack.comm.size > 1:
                    stale = crack.comm.bcast(stale, root=0)    # timed apart, refreshed together
                if stale:
                    system.precondition(here)
            calls, started = system.calls, time.perf_counter()
            if keep is not None:
                _keep(Path(keep), _curve(crack, _joined(done, points, direction), "running"))
            log(f"trapping curve: alpha = {here[system.n]:+.3f} Å  K = {here[-1] / crack.K_G:.4f} K_G  "
                f"(ds {h:.3g}, turn {turn:.0f} deg, {point_calls} force calls, point "
                f"{len(done) + len(points)}, {time.perf_counter() - begin:.0f} s)")
            # about 10 degrees a step: a fold turns the curve within a few hundredths of a unit,
            # where a longer step's hyperplane misses it (the corrector then fails and costs a
            # halving); not below ds / 16 for the turning alone (so short a secant is the
            # corrector's noise)
            step = min(ds_max, max(min(step, ds / 16), step * min(1.5, max(0.25, TURN / max(turn, 1e-3)))))
        return points, why

    furthest = [alpha0]

    def ahead(alpha: float, K: list) -> str | None:
        furthest[0] = max(furthest[0], alpha)
        if alpha >= alpha0 + length:
            return ""
        if forward_folds is not None and _folds_passed(K, PAST_FOLD * crack.K_G) >= forward_folds:
            return ""                         # just past its last fold: the leg's work is done
        if alpha < furthest[0] - RETREAT:     # the curve turned back on itself: not an advance
            return (f"the tip went back {RETREAT:g} Å from its furthest, alpha = {furthest[0]:+.3f} Å, at "
                    f"K = {K[-1] / crack.K_G:.4f} K_G: past its last fold the crack rearranges instead of "
                    "advancing (the events name the bonds)")
        return None

    forward, stopped = leg(1.0, ahead, [], max_points)
    points, why = forward, [f"forward: {stopped}"] if stopped else []
    if back > 0:
        log(f"trapping curve: back from the start, {back:g} Å")
        # the backward leg ends early once it has passed a fold of K by 0.05 K_G: that fold
        # bounds the start's branch (where the curve loops, alpha may never fall by ``back``)
        def behind(alpha: float, K: list) -> str | None:
            passed = _folds_passed(K, 0.05 * crack.K_G) > 0
            return "" if alpha <= alpha0 - back or passed else None

        backward, stopped = leg(-1.0, behind, forward, max_points // 2)
        points = _joined(forward, backward, -1.0)
        why += [f"backward: {stopped}"] if stopped else []
    if why:
        log(f"trapping curve stopped: {'; '.join(why)}")
    return _curve(crack, points, "; ".join(why))


def _corrected(system: _Augmented, base: np.ndarray, t: np.ndarray, h: float, fmax: float, tip_weight: float,
               newton_steps: int, inner_steps: int) -> np.ndarray:
    """The point on the hyperplane (x - base) . t = h (the metric's units) where region I's
    forces and ``tip_weight`` x f_alpha vanish to ``fmax``: Newton-Krylov from base + h t,
    raising scipy's NoConvergence (or ValueError, RuntimeError) where it fails."""
    from scipy.optimize import newton_krylov

    weight = 1.0 / system.scale

    def residual(y):
        f_free, f_alpha, _ = system.forces(y)
        return np.r_[f_free, tip_weight * f_alpha, np.dot((y - base) * weight, t) - h]
    with _quiet_newton():
        return newton_krylov(residual, base + h * t / weight, f_tol=fmax, maxiter=newton_steps,
                             method="lgmres", inner_maxiter=inner_steps, inner_M=system.inner_M())


def _rescue(system: _Augmented, base: np.ndarray, t: np.ndarray, ds: float, fmax: float, tip_weight: float,
            newton_steps: int, inner_steps: int, log) -> np.ndarray | None:
    """The next point where the corrector failed at every step length (si-ani's backward leg
    at R = 20 Å stalled so): first the corrector at step ds with four times the Newton and
    Krylov iterations (at a kink of the curve the Jacobian jumps: si-ani's cosine cutoffs make
    its energy only C1, its forces kink), then the equilibrium at a fixed K 0.5 % of K_G on
    along the tangent (Newton, else FIRE: ``_nearby_equilibrium``), kept only on the
    same branch (region I and alpha within 0.3 Å).  None when neither converges."""
    from scipy.optimize import NoConvergence

    try:
        y = _corrected(system, base, t, ds, fmax, tip_weight, 4 * newton_steps, 4 * inner_steps)
        log("trapping curve: the corrector converged with more iterations")
        return y
    except (NoConvergence, ValueError, RuntimeError):
        pass
    K = base[-1] + math.copysign(0.005 * system.crack.K_G, t[-1])
    y = _nearby_equilibrium(system, base, K, fmax, tip_weight, 0.3, log)
    if y is not None:
        log(f"trapping curve: stepped at fixed K = {K / system.crack.K_G:.4f} K_G where the corrector failed")
    return y


def _nearby_at_load(system: _Augmented, base: np.ndarray, K: float, fmax: float, tip_weight: float,
                    near: float = NEARBY, steps: int = PROBE_STEPS) -> np.ndarray | None:
    """The equilibrium at load K from ``base`` if one lies within ``near`` Å of it (region I's
    displacements and alpha; at most ``steps`` Newton steps), else None."""
    try:
        y = _at_load(system, base, K, fmax, tip_weight, steps=steps)
    except RuntimeError:
        return None
    return y if _moved(system, y, base) <= near else None


def _nearby_equilibrium(system: _Augmented, base: np.ndarray, K: float, fmax: float, tip_weight: float,
                        near: float, log) -> np.ndarray | None:
    """The equilibrium at load K within ``near`` Å of ``base`` (region I and alpha): Newton
    (FIXED_STEPS), else the one ASE's FIRE settles into from ``base``.  Newton stalls
    where a pair of the solution sits on a cosine cutoff (si-ani on the glide crack of earlier
    versions: no equilibrium found at 0.93 K_G at 20, 30 and 40 Å, where FIRE found one 0.03 Å
    away); FIRE needs no Jacobian, but its flow may run off (refused: None)."""
    y = _nearby_at_load(system, base, K, fmax, tip_weight, near=near, steps=FIXED_STEPS)
    if y is not None:
        return y
    y, steps, converged = _relaxed_at_load(system, base, K, fmax, tip_weight, near=near)
    moved = _moved(system, y, base)
    log(f"FIRE at K = {K / system.crack.K_G:.4f} K_G: {steps} steps, "
        + (f"alpha = {y[system.n]:+.4f} Å, {moved:.3f} Å from the last" if converged else
           f"left the branch ({moved:.3f} Å from the last)" if moved > near else "not converged"))
    return y if converged and moved <= near else None


def _moved(system: _Augmented, y: np.ndarray, base: np.ndarray) -> float:
    """How far (Å) region I's atoms and the tip lie from ``base`` at ``y``, the larger."""
    return max(float(np.abs(y[:system.n_u] - base[:system.n_u]).max(initial=0.0)), abs(y[system.n] - base[system.n]))


class _AtLoad(Optimizable):
    """The augmented system at a fixed load K as an ASE Optimizable, x = (u, phi, alpha): the
    forces on region I and on the shell drive u and phi, TIP_MOBILITY x the tip force drives
    alpha, and FIRE needs nothing else (no energy: the Green's function reservoir's is not
    computed; the value is 0).  Converged as ``_at_load``: every force and ``tip_weight`` x
    f_alpha below fmax (eV/Å)."""

    def __init__(self, system: _Augmented, x: np.ndarray, K: float, tip_weight: float):
        self.system, self.K, self.tip_weight = system, float(K), tip_weight
        self.x = np.array(x[:system.n + 1], dtype=float)
        self._at = None                       # (x, forces on the free atoms, f_alpha)

    def ndofs(self) -> int:
        return self.system.n + 1

    def get_x(self) -> np.ndarray:
        return self.x.copy()

    def set_x(self, x: np.ndarray) -> None:
        self.x = np.array(x, dtype=float)

    def _forces(self) -> tuple[np.ndarray, float]:
        if self._at is None or not np.array_equal(self._at[0], self.x):
            f_free, f_alpha, _ = self.system.forces(np.r_[self.x, self.K])
            self._at = (self.x.copy(), f_free, f_alpha)
        return self._at[1], self._at[2]

    def get_gradient(self) -> np.ndarray:
        f_free, f_alpha = self._forces()
        return -np.r_[f_free, TIP_MOBILITY * f_alpha]

    def get_value(self) -> float:
        return 0.0

    def iterimages(self):
        yield self.system.sc.atoms

    def gradient_norm(self, gradient: np.ndarray) -> float:
        f_free, f_alpha = self._forces()
        return max(float(np.abs(f_free).max(initial=0.0)), self.tip_weight * abs(f_alpha))

    def converged(self, gradient: np.ndarray, fmax: float) -> bool:
        return self.gradient_norm(gradient) < fmax


def _relaxed_at_load(system: _Augmented, x: np.ndarray, K: float, fmax: float, tip_weight: float,
                     steps: int = FIRE_STEPS, near: float | None = None) -> tuple[np.ndarray, int, bool]:
    """(the state FIRE relaxes ``x`` into at load K, its steps, whether it converged to
    ``fmax``); given ``near`` (Å), FIRE stops where region I or the tip has moved further
    than that from x (it left x's branch: past a fold the crack slides elsewhere).  Not a
    descent: the tip force is -dE/dalpha only at equilibrium, and from SW's equilibrium at K_G
    (R = 20 Å) the tip runs off, so it serves only where Newton has failed.  FIRE's time steps
    are smaller than ASE's defaults: region I's stiffest modes (~50 eV/Å^2) beside phi's (~1)."""
    from ase.optimize import FIRE

    at_load = _AtLoad(system, x, K, tip_weight)
    optimizer = FIRE(at_load, logfile=None, dt=0.05, dtmax=0.5, maxstep=0.1)
    converged = False
    for converged in optimizer.irun(fmax=fmax, steps=steps):
        if near is not None and _moved(system, at_load.x, x) > near:
            break
    return np.r_[at_load.x, K], int(optimizer.nsteps), bool(converged)


def _system(crack: FlexibleCrack, K_unit: float, outer: float | None, log) -> _Augmented:
    """The augmented system at (K_G, alpha = 0), with a lattice Green's function to ``outer``
    Å (None: the shell stays on the field)."""
    green = None
    if outer:
        log(f"flexible boundary: the shell moves with the lattice's response out to {outer:g} Å "
            "(Sinclair's scheme, atomistic/green.py)")
        green = LatticeGreen(crack, outer=outer)
    return _Augmented(crack, crack._sinclair(crack.K_G, 0.0, variable_alpha=True), K_unit, green)


def _at_load(system: _Augmented, start: np.ndarray, K: float, fmax: float, tip_weight: float,
             steps: int = START_STEPS) -> np.ndarray:
    """The flexible equilibrium at load K from ``start`` (the continuation's system with K held
    instead of the arclength), in at most ``steps`` Newton steps."""
    from scipy.optimize import NoConvergence, newton_krylov

    weight = 1.0 / system.scale

    def residual(y):
        f_free, f_alpha, _ = system.forces(y)
        return np.r_[f_free, tip_weight * f_alpha, (y[-1] - K) * weight[-1]]
    guess = start.copy()
    guess[-1] = K
    try:
        with _quiet_newton():
            return newton_krylov(residual, guess, f_tol=fmax, maxiter=steps, method="lgmres",
                                 inner_maxiter=100, inner_M=system.inner_M())
    except (NoConvergence, ValueError, RuntimeError):
        raise RuntimeError(f"flexible boundary: no equilibrium found at K = {K / system.crack.K_G:.3f} K_G "
                           f"from alpha = {start[system.n]:+.3f} Å in {steps} Newton steps; check the "
                           "potential's material constants and the region's radius") from None


def _first(system: _Augmented, fmax: float, tip_weight: float, log, precondition: bool = False) -> np.ndarray:
    """The flexible equilibrium at K_G, from region I relaxed with the tip held at alpha = 0
    (matscipy's solve; Newton-Krylov from the bare K-field needs minutes from R = 30 Å on and
    fails at 40 Å).  Where that fixed-tip solve finds nothing in FIXED_STEPS Newton steps
    (si-ani's glide crack of earlier versions from R = 30 Å; on the shuffle crack SW and si-ani
    converge in fewer at 20, 30 and 40 Å), the atoms relax downhill from the bare field instead,
    with the tip held (on si-ani's shuffle crack at 20 Å that start finds no equilibrium: the
    error below).  ``precondition``: the Newton-Krylov solves preconditioned
    (:mod:`.preconditioner`), factorised at their starts."""
    crack = system.crack
    start = system.state()
    try:
        fixed = crack.solved(crack.K_G, 0.0, flexible=False, fmax=max(fmax, 1e-3), steps=FIXED_STEPS)
    except RuntimeError:
        log(f"flexible boundary: no fixed-tip equilibrium at K_G in {FIXED_STEPS} Newton steps; relaxing "
            "downhill from the K-field instead")
        return _at_load(system, _relaxed_downhill(system, start), crack.K_G, fmax, tip_weight)
    start[:system.n_u] = fixed.u.reshape(-1)
    if system.green is not None:
        # Newton-Krylov does not reach the Green's function equilibrium from the fixed-tip
        # relaxation (SW at R = 40 Å): first the equilibrium with the shell on the field; from
        # there, or (si-ani at 20 Å) once regions I-III have relaxed downhill with region IV held
        # and phi is matched to the shell (not first: SW's crack heals a bond in that relaxation)
        on_field = _Augmented(crack, system.sc, 1.0)
        if precondition:
            on_field.precondition(np.r_[start[:system.n_u], start[system.n:]])
        x = _at_load(on_field, np.r_[start[:system.n_u], start[system.n:]], crack.K_G, fmax, tip_weight)
        start[:system.n_u], start[system.n:] = x[:system.n_u], x[system.n_u:]
        if precondition:
            system.precondition(start)
        try:
            return _at_load(system, start, crack.K_G, fmax, tip_weight)
        except RuntimeError:
            log("flexible boundary: no equilibrium from the shell on the field; relaxing regions I-III first")
            start = _relaxed_downhill(system, start)
    elif precondition:
        system.precondition(start)
    return _at_load(system, start, crack.K_G, fmax, tip_weight)


def _relaxed_downhill(system: _Augmented, x: np.ndarray, fmax: float = 1e-4, steps: int = 3000) -> np.ndarray:
    """x with the atoms relaxed downhill (ASE's FIRE) at its (alpha, K): with a Green's
    function regions I-III, region IV held on the field (u from region I's positions, phi the
    forces whose response gives the shell's); without, region I inside the field's shell."""
    from ase.constraints import FixAtoms
    from ase.optimize import FIRE

    sc, green = system.sc, system.green
    system.set_state(np.r_[x[:system.n_u], np.zeros(system.n - system.n_u), x[system.n:]])
    region = system.crack.cluster.arrays["region"]
    field = sc.atoms.positions.copy()
    field[sc.regionI] -= sc.u
    sc.atoms.set_constraint(FixAtoms(mask=region == 4 if green is not None else region > 1))
    try:
        with _matscipy_quietly():
            FIRE(sc.atoms, logfile=None).run(fmax=fmax, steps=steps)
    finally:
        sc.atoms.set_constraint()
    return system.state_from(sc.atoms.positions - field, x[system.n], x[-1])


def equilibrium(crack: FlexibleCrack, K: float | None = None, outer: float | None = 80.0, fmax: float = 1e-5,
                tip_weight: float = 20.0, log: Callable[[str], None] | None = None) -> Solution:
    """The flexible-boundary equilibrium at load K (GPa sqrt(Å); default K_G), reached from
    K_G's, with the shell moving by the lattice Green's function to ``outer`` Å (None: on the
    field, matscipy's scheme): alpha, K and the largest forces by region."""
    log = log or crack.log
    system = _system(crack, 1.0, outer, log)
    x = _first(system, fmax, tip_weight, log)
    if K is not None and K != crack.K_G:
        x = _at_load(system, x, K, fmax, tip_weight)
    system.set_state(x)
    return crack._solution(system.sc)


def past_fold(crack: FlexibleCrack, curve: TrappingCurve, index: int, factor: float, fmax: float = 1e-3,
              steps: int = 3000) -> dict:
    """What region I does when the load passes the fold at point ``index`` (K+ with factor > 1,
    K- with factor < 1): the cluster at K = factor x K(index) with the tip position held at the
    fold's, the field-driven atoms fixed and region I relaxed downhill from the fold's
    displacements (ASE's FIRE, which keeps to the basin it slides into, unlike Newton).
    Returns K (GPa sqrt(Å)), the FIRE steps, whether it converged to ``fmax`` (eV/Å), and the
    region-I bonds broken and formed as (i, j, x, y), their midpoints' (x, y) from the tip (Å)."""
    from ase.constraints import FixAtoms
    from ase.optimize import FIRE
    from scipy.spatial import cKDTree

    alpha, K = float(curve.alpha[index]), float(curve.K[index])
    sc = crack._sinclair(K, alpha, variable_alpha=False)
    with _matscipy_quietly():
        sc.update_atoms()                                   # u = 0: the field at the fold
        sc.u[:] = curve.positions[index] - sc.atoms.positions[sc.regionI]
        off_field = 0.0 if curve.shell is None else curve.shell[index] - sc.atoms.positions[~sc.regionI]
        sc.kI = K * factor
        sc.update_atoms()                                   # the fold's displacements, the new load
    atoms = sc.atoms
    atoms.positions[~sc.regionI] += off_field               # a Green's function boundary's w, held
    atoms.set_constraint(FixAtoms(mask=~sc.regionI))
    with _matscipy_quietly():
        optimizer = FIRE(atoms, logfile=None)
        converged = bool(optimizer.run(fmax=fmax, steps=steps))
    before, after = curve.positions[index], atoms.positions[sc.regionI]
    cut = BOND * curve.neighbour
    bonded = [set(cKDTree(p).query_pairs(cut)) for p in (before, after)]
    tip = np.array([curve.origin[0] + alpha, curve.origin[1]])

    def located(pairs):
        return [(int(i), int(j), *map(float, np.round((before[i, :2] + before[j, :2]) / 2 - tip, 2)))
                for i, j in sorted(pairs)]

    return {"K": K * factor, "steps": int(optimizer.nsteps), "converged": converged,
            "broken": located(bonded[0] - bonded[1]), "formed": located(bonded[1] - bonded[0])}


def branch_end(crack: FlexibleCrack, curve: TrappingCurve, index: int, direction: float, outer: float | None = None,
               fmax: float = 1e-5, tip_weight: float = 20.0, step: float = 0.01, smallest: float = 0.00125,
               log: Callable[[str], None] | None = None,
               keep: Callable[[TrappingCurve], None] | None = None) -> tuple[float, float, TrappingCurve]:
    """Where the branch through the curve's point ``index`` ends at fixed loads: the
    flexible equilibrium solved at K moving by ``step`` K_G along ``direction`` (-1 towards
    K-, +1 towards K+), each from the last one found (Newton, else FIRE:
    ``_nearby_equilibrium``), kept while it lies on the branch (region I and alpha within 0.3 Å),
    the step halved on every failure down to ``smallest`` K_G.
    Returns (last K with an equilibrium, first K without), GPa sqrt(Å): a bracket of the fold
    without continuation, for a curve whose trace stopped short of it (si-ani's backward legs
    stall at kinks of the curve, module docstring); and the equilibria followed, as a
    TrappingCurve (the last one's state is where :func:`past_fold` starts), also handed to
    ``keep`` after every equilibrium (a killed run keeps them).  ``outer``: the curve's Green's function
    boundary (None: the shell on the field)."""
    log = log or crack.log
    system = _system(crack, 1.0, outer, log)
    sc = system.sc
    alpha, K = float(curve.alpha[index]), float(curve.K[index])
    system.set_state(np.r_[np.zeros(system.n_u), np.zeros(system.n - system.n_u), alpha, K])
    field = sc.atoms.positions.copy()
    moved = np.zeros_like(field)
    moved[sc.regionI] = curve.positions[index] - field[sc.regionI]
    if system.green is not None:
        moved[~sc.regionI] = curve.shell[index] - field[~sc.regionI]
    good = _nearby_equilibrium(system, system.state_from(moved, alpha, K), K, fmax, tip_weight, 0.3, log)
    if good is None:
        raise RuntimeError(f"branch end: the curve's point {index} (alpha = {alpha:+.3f} Å, K = "
                           f"{K / crack.K_G:.4f} K_G) is no equilibrium of this crack: was the curve traced "
                           "with this potential, radius and outer?")
    h = step * crack.K_G
    points = [_point(system, good, system.calls)]
    while h >= smallest * crack.K_G * (1 - 1e-9):
        K_next = good[-1] + math.copysign(h, direction)
        calls = system.calls
        y = _nearby_equilibrium(system, good, K_next, fmax, tip_weight, 0.3, log)
        log(f"branch end: K = {K_next / crack.K_G:.4f} K_G "
            + (f"equilibrium at alpha = {y[system.n]:+.3f} Å" if y is not None else "none on the branch"))
        if y is None:
            h /= 2
        else:
            good = y
            points.append(_point(system, good, system.calls - calls))
            if keep is not None:
                keep(_curve(crack, points, "running"))
    bad = float(good[-1] + math.copysign(2 * h, direction))
    return float(good[-1]), bad, _curve(crack, points, f"no equilibrium on the branch at {bad / crack.K_G:.4f} K_G")


def describe_past(out: dict, K_G: float) -> str:
    """One line for :func:`past_fold`'s result: the crack-plane bonds (midpoints within 1 Å of
    y = 0: an advance or a healing) and the bonds changed off the plane (a reconstruction)."""
    plane_broken = sum(abs(b[3]) < 1.0 for b in out["broken"])
    plane_formed = sum(abs(b[3]) < 1.0 for b in out["formed"])
    off_broken = [b for b in out["broken"] if abs(b[3]) >= 1.0]
    off_formed = [b for b in out["formed"] if abs(b[3]) >= 1.0]
    where = lambda bonds: ", ".join(f"({b[2]:+.1f}, {b[3]:+.1f})" for b in bonds[:4])  # noqa: E731
    line = (f"at {out['K'] / K_G:.4f} K_G, tip held (FIRE {out['steps']} steps"
            f"{'' if out['converged'] else ', not converged'}): {plane_broken} crack-plane bonds broken, "
            f"{plane_formed} formed")
    if off_broken or off_formed:
        line += (f"; off the plane {len(off_broken)} broken{' at ' + where(off_broken) if off_broken else ''}, "
                 f"{len(off_formed)} formed{' at ' + where(off_formed) if off_formed else ''} (Å from the tip)")
    return line if plane_broken or plane_formed or off_broken or off_formed else line + " (no bond changed)"


def past_folds(crack: FlexibleCrack, curve: TrappingCurve, log: Callable[[str], None] | None = None) -> dict:
    """:func:`past_fold` 1 % beyond the curve's K+ (its highest maximum, above K_G) and K- (its
    lowest minimum, below K_G), where traced: which bonds break and form at the tip.  The lines
    (:func:`describe_past`) also go into ``curve.past``.

    Why the tip position is held: the tip force is not the derivative of the cluster's energy
    (it sums the field-driven shell only), so no downhill flow includes it; with it free (FIRE
    over (u, 20 f_alpha), tried while writing this) the crack healed through region I at K_G
    after a 0.03 Å kick, on the branch between K- and K+.  Region I alone is a true energy
    minimisation."""
    log = log or crack.log
    for name, which, factor in (("K_plus", 1, 1.01), ("K_minus", 0, 0.99)):
        try:
            fold = curve.fold_index(which)
        except ValueError:                                   # not traced
            continue
        curve.past[name] = describe_past(past_fold(crack, curve, fold, factor), curve.K_G)
        log(f"past {name.replace('_minus', '-').replace('_plus', '+')}: {curve.past[name]}")
    return curve.past


def _folds_passed(K: list, h: float) -> int:
    """How many folds (minima and maxima) the sequence of loads K has passed by more than h."""
    return sum(len(t) for t in _turns(np.asarray(K, dtype=float), h))


def _turns(K: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the minima and maxima of K after which it moves on by more than h."""
    minima, maxima, direction, candidate = [], [], 0, 0
    for i in range(1, len(K)):
        if direction == 0:
            if abs(K[i] - K[0]) > h:
                direction, candidate = (1 if K[i] > K[0] else -1), i
        elif direction * (K[i] - K[candidate]) >= 0:
            candidate = i
        elif abs(K[i] - K[candidate]) > h:
            (maxima if direction == 1 else minima).append(candidate)
            direction, candidate = -direction, i
    return np.array(minima, int), np.array(maxima, int)


def _joined(forward: list, points: list, direction: float) -> list:
    """The curve in the order of increasing arclength: the backward leg reversed, then the
    forward one (they share the start)."""
    return points if direction > 0 else points[::-1] + forward[1:]


@contextlib.contextmanager
def _quiet_newton():
    """A failing corrector is expected (the step halves): scipy's warnings about its NaN step
    norms would flood the log."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"scipy\.optimize\..*")
        yield


def _curve(crack: FlexibleCrack, points: list[tuple], stopped: str) -> TrappingCurve:
    columns = list(zip(*points))
    cell = crack.cluster.cell.diagonal()
    shell = None if columns[7][0] is None else np.array(columns[7])
    return TrappingCurve(*(np.array(c) for c in columns[:7]), K_G=crack.K_G, radius=crack.radius,
                         neighbour=crack.material.lattice_constant * math.sqrt(3) / 4,
                         origin=(float(cell[0] / 2), float(cell[1] / 2)), stopped=stopped, shell=shell)


def _keep(path: Path, curve: TrappingCurve) -> None:
    """Write ``curve`` to ``path`` atomically (group /trapping)."""
    import h5py
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        curve.write(f.create_group("trapping"))
    os.replace(tmp, path)


def _point(system: _Augmented, x: np.ndarray, calls: int) -> tuple:
    """(alpha, K, energy, max |F| region I, max |F| region II, calls, region-I positions,
    regions II-IV's positions with a Green's function boundary else None) at x."""
    _, _, forces = system.forces(x)
    system.calls -= 1
    sc = system.sc
    with _matscipy_quietly():
        energy = float(sc.atoms.get_potential_energy())
    norm = np.linalg.norm(forces, axis=1)
    return (float(sc.alpha), float(sc.kI), energy, float(norm[sc.regionI].max()), float(norm[sc.regionII].max()),
            calls, sc.atoms.positions[sc.regionI].copy(),
            None if system.green is None else sc.atoms.positions[~sc.regionI].copy())
