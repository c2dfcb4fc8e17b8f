"""Atomistic feedback into the finite-element specimen: alternating Schwarz iterations.

The two subdomains overlap. The specimen (:class:`~multiscale.continuum.clamped.ClampedDisc`)
has the disc of ``hole`` Å around the crack tip cut out: its nodes take the atoms'
displacements. The atomistic region's shell (radius > R - boundary, beyond the hole) takes the
specimen's displacements. One iteration relaxes the atoms under the shell's displacements,
interpolates their displacements onto the disc's nodes, solves the specimen, and evaluates it
at the shell. At the fixed point both agree on the overlap, so the atoms' crack (grown,
blunted, reconstructed) changes the specimen's displacements, compliance and interface forces.

The fixed-point map is accelerated by Anderson mixing (:class:`Anderson`): plain alternation
contracts the slowest mode, the rigid-like n = 0 mode of the disc, by only about 0.8 per
iteration.  Convergence: the largest change of the shell displacements (Å) in an iteration
below ``tol``; the interface forces' largest change is reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


class AtomField:
    """The atoms' displacement field (Å) for the disc's nodes: thin-plate-spline interpolation
    of the atoms' (x, y) displacements, separately over the atoms above and below the crack
    plane (the crack faces move apart; a node on a face takes its own side's atoms), averaged
    for nodes on the plane ahead of the tip.  ``reference`` (N, 2) Å from the tip,
    ``displacement`` (N, 2) Å."""

    def __init__(self, reference: np.ndarray, displacement: np.ndarray, neighbours: int = 24):
        from scipy.interpolate import RBFInterpolator
        ref, d = np.asarray(reference, float), np.asarray(displacement, float)
        above = ref[:, 1] > 0
        self._halves = {s: RBFInterpolator(ref[mask], d[mask], neighbors=neighbours, kernel="thin_plate_spline",
                                           degree=1)
                        for s, mask in ((1, above), (-1, ~above))}

    def __call__(self, points: np.ndarray, side: np.ndarray) -> np.ndarray:
        points, side = np.asarray(points, float), np.asarray(side)
        up, down = self._halves[1](points), self._halves[-1](points)
        return np.where(side[:, None] > 0, up, np.where(side[:, None] < 0, down, 0.5 * (up + down)))


class Anderson:
    """Anderson mixing of a fixed-point map x -> g(x) (Walker & Ni 2011, type II, ``depth``
    last differences); a step more than ``max_extrapolation`` (Å) from the plain one ``g`` is
    not taken (the plain one is, and the history restarts).  Written here: scipy's ``anderson`` runs its own loop, and a coupled run
    interleaves the iterations of several regions through MPI exchanges."""

    def __init__(self, depth: int = 5, max_extrapolation: float = 1.0):
        self.depth, self.max_extrapolation = depth, max_extrapolation
        self._x: list[np.ndarray] = []
        self._g: list[np.ndarray] = []

    def next(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        """The next iterate from the current ``x`` and its image ``g``.  A residual more than twice
        the last one (the map jumped: bonds broke or formed) restarts the history: a plain step."""
        residual = float(np.abs(g - x).max())
        if self._x and residual > 2 * float(np.abs(self._g[-1] - self._x[-1]).max()):
            self._x, self._g = [], []
        self._x.append(x.ravel().copy())
        self._g.append(g.ravel().copy())
        self._x, self._g = self._x[-self.depth - 1:], self._g[-self.depth - 1:]
        f = [g_ - x_ for g_, x_ in zip(self._g, self._x)]
        if len(f) == 1:
            return g.copy()
        dF = np.stack([f[j + 1] - f[j] for j in range(len(f) - 1)], axis=1)
        dG = np.stack([self._g[j + 1] - self._g[j] for j in range(len(f) - 1)], axis=1)
        gamma = np.linalg.lstsq(dF, f[-1], rcond=None)[0]
        step = (self._g[-1] - dG @ gamma).reshape(g.shape)
        if np.abs(step - g).max() > self.max_extrapolation:   # no elastic correction is that large
            self._x, self._g = self._x[-1:], self._g[-1:]
            return g.copy()
        return step


@dataclass
class SchwarzIncrement:
    """One load increment's iterations: the converged (or last) shell displacements ``x``
    (n_b, 2) Å, the region's last result, the specimen's solution, and per iteration the largest
    shell-displacement change (Å) and interface-force change (GPa·Å per Å)."""
    x: np.ndarray
    result: dict
    solution: object
    interface: np.ndarray
    residuals: list[float] = field(default_factory=list)
    force_residuals: list[float] = field(default_factory=list)
    converged: bool = False

    @property
    def iterations(self) -> int:
        return len(self.residuals)


class SchwarzCoupling:
    """The iteration of one region in ``specimen`` (its crack tip at the region's origin).

    ``hole``: the disc's radius (Å), inside the region's interior; ``shell`` (n_b, 2) and
    ``atoms`` (N, 2): the region's shell and all its atoms' reference x, y (Å, region frame).
    When the atoms' tip has moved ``follow`` Å or more from the end of the specimen's crack, the
    specimen's crack is cut to the atoms' tip (re-meshed; the disc stays where the atoms are) and
    the iteration restarts from where it is."""

    def __init__(self, specimen, hole: float, shell: np.ndarray, atoms: np.ndarray, tol: float = 1e-3,
                 max_iterations: int = 40, depth: int = 5, follow: float = 1.0):
        from ..continuum.clamped import ClampedDisc
        self.specimen, self.hole, self.follow = specimen, float(hole), float(follow)
        self.centre = specimen.tips()[0].copy()
        self.extension = 0.0                      # Å the specimen's crack was cut beyond the centre
        self.outer = ClampedDisc(specimen, hole)
        self.tol, self.max_iterations, self.depth = tol, max_iterations, depth
        self.shell, self.atoms = np.asarray(shell, float), np.asarray(atoms, float)

    def _cut(self, tip_x: float) -> bool:
        """Re-mesh the specimen with its crack ending at the atoms' tip ``tip_x`` (Å from the
        centre) if it moved ``follow`` Å or more; whether it did."""
        from dataclasses import replace

        from ..continuum.clamped import ClampedDisc
        if abs(tip_x - self.extension) < self.follow:
            return False
        self.extension = float(tip_x)
        longer = replace(self.specimen, crack_length=self.specimen.crack_length + self.extension)
        self.outer = ClampedDisc(longer, self.hole, centre=self.centre)
        return True

    def continuum_only(self, stress: float) -> np.ndarray:
        """Shell displacements (n_b, 2) Å of the specimen without atoms (its own disc): a start."""
        from dataclasses import replace

        from ..continuum.fem import solve
        solution = solve(replace(self.outer.specimen, stress=stress), tip_size=1.0)
        return self.shell_displacements(solution)

    def shell_displacements(self, solution) -> np.ndarray:
        return solution.displacements(self.centre + self.shell)

    def image(self, result: dict, stress: float):
        """The specimen's solution under ``stress`` with the atoms of ``result`` in its disc, the
        interface forces, and the shell displacements it gives (the map's image)."""
        field_ = AtomField(self.atoms, np.asarray(result["atom_displacements"], float))
        solution, interface = self.outer.solve(stress, field_)
        return solution, interface, self.shell_displacements(solution)

    def start(self, stress: float, x0: np.ndarray, stop_at_tip: float = np.inf) -> "SchwarzIteration":
        """The iteration of one load increment at remote ``stress`` (GPa) from shell displacements
        ``x0`` (n_b, 2) Å; ``stop_at_tip``: end (unconverged) as soon as the atoms' tip reaches
        this x (Å): under load control a crack that starts to advance runs on, and the caller
        may lower the load instead."""
        return SchwarzIteration(self, stress, np.asarray(x0, float), stop_at_tip)

    def increment(self, relax: Callable[[np.ndarray], dict], stress: float, x0: np.ndarray,
                  log: Callable[[str], None] | None = None, stop_at_tip: float = np.inf) -> SchwarzIncrement:
        """Iterate (:meth:`start`) until the shell moves less than ``tol`` Å in an iteration (or
        ``max_iterations``, or ``stop_at_tip``); ``relax(x) -> result`` relaxes the region with
        its shell at ``x``."""
        iteration = self.start(stress, x0, stop_at_tip)
        while not iteration.feed(relax(iteration.proposal), log):
            pass
        return iteration.outcome


class SchwarzIteration:
    """One increment's iteration as steps, so that a coupled run can interleave the iterations
    of several regions through MPI exchanges: relax the region with its shell at ``proposal``
    (the region's frame), :meth:`feed` the result, until it returns True; ``outcome`` then holds
    the :class:`SchwarzIncrement`."""

    def __init__(self, coupling: SchwarzCoupling, stress: float, x0: np.ndarray, stop_at_tip: float):
        self.coupling, self.stress, self.stop_at_tip = coupling, stress, stop_at_tip
        self.mixer, self.x, self.last_interface = Anderson(coupling.depth), x0, None
        # the atoms see the shell without the increment's mean translation (the specimen's tip
        # region moves by Å as the load changes: their energy does not care, but their minimiser
        # would start with the shell run into the interior); it stays fixed while iterating
        self.shift = x0.mean(axis=0)
        self.outcome: SchwarzIncrement | None = None

    @property
    def proposal(self) -> np.ndarray:
        """The shell displacements (n_b, 2) Å to relax the region with next, in its frame."""
        return self.x - self.shift

    def feed(self, result: dict, log: Callable[[str], None] | None = None) -> bool:
        """Take the region's result for :attr:`proposal`; whether the increment is done."""
        c = self.coupling
        result = {**result, "atom_displacements": np.asarray(result["atom_displacements"], float) + self.shift}
        if c._cut(float(result["tip"][0])):
            self.mixer, self.last_interface = Anderson(c.depth), None
            if log:
                log(f"  the atoms' crack tip moved to {c.extension:+.2f} A: the specimen's crack follows")
        solution, interface, g = c.image(result, self.stress)
        change = float(np.abs(g - self.x).max())
        force = (float(np.abs(interface - self.last_interface).max()) if self.last_interface is not None
                 else float("nan"))
        if self.outcome is None:
            self.outcome = SchwarzIncrement(self.x, result, solution, interface)
        out = self.outcome
        out.x, out.result, out.solution, out.interface = self.x, result, solution, interface
        out.residuals.append(change)
        out.force_residuals.append(force)
        if log:
            log(f"  Schwarz {len(out.residuals):2d}: shell change {change:.2e} A, interface force change {force:.2e}, "
                f"compliance {solution.compliance:.5f} A/GPa, atoms: {result.get('iterations', 0)} "
                f"minimiser steps to {result.get('fmax', float('nan')):.1e} eV/A")
        if change < c.tol:
            out.converged = True
            return True
        if float(result["tip"][0]) >= self.stop_at_tip or len(out.residuals) >= c.max_iterations:
            return True
        self.x, self.last_interface = self.mixer.next(self.x, g), interface
        return False
