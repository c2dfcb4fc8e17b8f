"""A preconditioner for the trapping continuation's Newton-Krylov solves: the inverse of
Stillinger-Weber's Hessian of the cluster continued by the lattice Green's function.

Each Krylov product of the corrector costs one force call.  Unpreconditioned, LGMRES needs
20-40 of them per Newton step (about 180 force calls per point of a trapping curve at R = 20
Å, SW and si-ani alike): region I's stiffest modes (bonds, ~10 eV/Å^2) and its softest (the
crack opening, ~0.01) lie four decades apart.  With forces u -> f(u), phi the shell's
Green's-function forces (:mod:`.green`), and H the harmonic stiffness of the continued cluster
(outer ring held, nothing else), the linearised residual is

    f_I = -(H_II du + H_Io G_os dphi),   f_s = -(H_sI du + dphi)

(H_so G_os = 1 on the shell: G is H_oo's inverse).  Its inverse needs no dense G: with
c = G_os dphi, [[H_II, H_Io], [H_oI, H_oo]] [du; c] = -[f_I; f_s on the shell] and then
dphi = -f_s - H_sI du - one sparse LU of the whole continued cluster.  Stillinger-Weber's
Hessian (matscipy's analytic one) stands for every region potential: the model's stiffness
differs from SW's by a few per cent away from the tip, so LGMRES on the preconditioned system
converges in a few products; alpha and K (the last two unknowns) are left unpreconditioned.
The Hessian is taken at the state it is refreshed at (region I's atoms where they are, the rest
on the field plus w), so that the broken and stretched bonds at the tip are in it.
With the shell on the K-field (no G) the Jacobian is region I's alone:
:class:`RegionIPreconditioner`, -H_II^-1 from the crack cluster's own SW Hessian.

Units: Å, eV/Å, eV/Å^2.
"""

from __future__ import annotations

import numpy as np

from .green import LatticeGreen, _dofs, stillinger_weber_hessian


class Ageing:
    """When a factorisation has aged enough to refresh: the force calls each corrector takes
    beyond the first one's after the refresh (the tip's bonds stretch and break, the Hessian
    it was taken at drifts), counted in seconds, until they have cost as much as the refresh
    (``refresh_seconds``) did."""

    def __init__(self, refresh_seconds: float = 0.0):
        self.refresh_seconds = float(refresh_seconds)
        self.baseline: int | None = None
        self.excess = 0.0

    def after(self, calls: int, seconds: float) -> bool:
        """Whether to refresh after a corrector of ``calls`` force calls that took ``seconds``."""
        if calls <= 0:
            return False
        if self.baseline is None:
            self.baseline = calls
        self.excess += max(0, calls - self.baseline) * seconds / calls
        return self.excess > self.refresh_seconds


class _Preconditioner:
    """What both preconditioners share: a scipy LinearOperator of the subclass's ``solve`` over
    the augmented unknowns (``size``), refreshed when :class:`Ageing` says so."""

    size = 0

    def __init__(self):
        self._lu = None
        self.refreshes = 0
        self.age = Ageing()

    def _refreshed(self, seconds: float) -> None:
        self.refreshes += 1
        self.age = Ageing(seconds)

    def stale(self, calls: int, seconds: float) -> bool:
        """After a corrector that took ``calls`` force calls in ``seconds``: whether to refresh
        (:class:`Ageing`)."""
        return self.age.after(calls, seconds)

    def operator(self):
        """The scipy LinearOperator of :meth:`solve` (for ``newton_krylov(inner_M=...)``)."""
        from scipy.sparse.linalg import LinearOperator
        if self._lu is None:
            raise RuntimeError(f"{type(self).__name__}: refresh() it at a state first")
        return LinearOperator((self.size, self.size), matvec=self.solve, dtype=float)


class RegionIPreconditioner(_Preconditioner):
    """M ~ J^-1 with the shell on the K-field (no Green's function: matscipy's scheme, and the
    first equilibrium's solve before G): -H_II^-1 on region I's forces, H Stillinger-Weber's
    Hessian of the crack cluster itself where refreshed; the tip force's and the last row's
    entries passed through.  ``region_I``: the cluster's region-I atoms in the order of u."""

    def __init__(self, region_I: np.ndarray):
        super().__init__()
        self.dofs = _dofs(np.asarray(region_I))
        self.size = len(self.dofs) + 2

    def refresh(self, atoms) -> None:
        """Factorise H_II at ``atoms`` (the crack cluster where it is)."""
        import time

        import scipy.sparse.linalg as spla
        start = time.perf_counter()
        H = stillinger_weber_hessian(atoms)
        self._lu = spla.splu(H[self.dofs][:, self.dofs].tocsc())
        self._refreshed(time.perf_counter() - start)

    def solve(self, r: np.ndarray) -> np.ndarray:
        n_u = len(self.dofs)
        return np.r_[self._lu.solve(-r[:n_u]), r[n_u:]]


class HessianPreconditioner(_Preconditioner):
    """M ~ J^-1 for the augmented residual (region I's forces, the shell's, the tip force,
    one more row) of :class:`~multiscale.atomistic.trapping._Augmented`, as a scipy
    LinearOperator (:meth:`operator`).  ``green``: the system's LatticeGreen; ``region_I``:
    the crack cluster's region-I atoms in the order of u; ``cell``: the crack cluster's cell
    (its centre maps onto the continued cluster's)."""

    def __init__(self, green: LatticeGreen, region_I: np.ndarray, cell):
        super().__init__()
        self.green = green
        self.offset = green.deformed.cell.diagonal() / 2 - np.asarray(cell).diagonal() / 2
        self.I_big = green.index[region_I]
        self.shell_big = green.index[green.shell]
        self.free = np.setdiff1d(np.arange(green.n_big), green.ring)      # all but the held ring
        position = np.full(green.n_big, -1)
        position[self.free] = np.arange(len(self.free))
        self._I_free, self._shell_free = position[self.I_big], position[self.shell_big]
        self.n_u, self.n_s = 3 * len(self.I_big), 3 * len(self.shell_big)
        self.size = self.n_u + self.n_s + 2
        self._H_sI = None

    def refresh(self, positions: np.ndarray, K: float, alpha: float, w: np.ndarray | None) -> None:
        """Factorise SW's Hessian at the crack cluster's ``positions`` (n_atoms, 3) Å, the rest of
        the continued cluster on the field at (K, alpha) moved by ``w`` (the Green's function's
        response on its free atoms, or None)."""
        import time

        import scipy.sparse.linalg as spla

        start = time.perf_counter()
        green = self.green
        big = green.deformed.copy()
        big.positions[:] = green.reference
        big.positions[:, :2] += green._displacements(green.reference, K, alpha)
        if w is not None:
            big.positions[green.free] += w
        big.positions[green.index] = positions + self.offset
        H = stillinger_weber_hessian(big)
        free = _dofs(self.free)
        self._lu = spla.splu(H[free][:, free].tocsc())
        self._H_sI = H[_dofs(self.shell_big)][:, _dofs(self.I_big)].tocsr()
        self._refreshed(time.perf_counter() - start)

    def solve(self, r: np.ndarray) -> np.ndarray:
        """-H^-1 applied to a residual r (n_u + n_s + 2,): (du, dphi) from the Hessian, alpha's
        and the last row's entries passed through."""
        n_u, n_s = self.n_u, self.n_s
        f_I, f_s = r[:n_u].reshape(-1, 3), r[n_u:n_u + n_s].reshape(-1, 3)
        load = np.zeros((len(self.free), 3))
        load[self._I_free] = -f_I
        load[self._shell_free] = -f_s
        solved = self._lu.solve(load.reshape(-1)).reshape(-1, 3)
        du = solved[self._I_free].reshape(-1)
        dphi = -f_s.reshape(-1) - self._H_sI @ du
        return np.r_[du, dphi, r[n_u + n_s:]]
