"""Sinclair's flexible boundary for the crack cluster: the field-driven shell moves with the
lattice's own linear response, so that its atoms carry no force.

With the shell (regions II and III) held on the K-field, the atoms there keep 0.05-0.1 eV/Å:
the crack faces' surface relaxation and region I's nonlinear core are not in the linear-elastic
field.  Sinclair (1975; Sinclair, Gehlen, Hoagland & Hirth 1978) adds to the field the
displacements w = G phi of forces phi applied to the shell atoms, G the Green's function of
the lattice outside region I, and chooses phi so that the shell's forces vanish.  No library
gives a lattice Green's function for a cracked, multilattice cluster, so it is built here
numerically: the cluster continued to ``outer`` Å (~10^4 atoms at 80 Å), its harmonic
stiffness H (matscipy's analytic Stillinger-Weber Hessian, sparse) at the K-field, region I
and an outer ring one cutoff wide held, and H's sparse LU factors: w = H^-1 phi.  G only
shapes how the shell and the padding (region IV) move; the solved state has zero force on the
shell whatever its accuracy, which is why Stillinger-Weber's Hessian serves every region
potential (``pair_style multiscale`` models included).

The crack-tip position alpha stays an unknown: the outer ring is on the K-field at alpha, and
the tip force is the ring's reaction to w projected on the field's alpha-derivative,
f_alpha = sum_ring (-H w)_ring . d(field)/d(alpha) = -dE/d(alpha) of cluster plus reservoir.

Units: Å, eV/Å; K in GPa sqrt(Å).
"""

from __future__ import annotations

import math

import numpy as np

TIP_STEP = 1e-4      # Å: central differences of the K-field in alpha on the outer ring


def minimum_outer(radius: float, reach: float, far: float) -> float:
    """The smallest ``outer`` (Å) for region I of ``radius``, a potential of range ``reach`` and
    region III ``far`` Å wide: region III's edge plus three cutoffs (the padding, and the held
    ring clear of it)."""
    return radius + reach + far + 3 * reach


class LatticeGreen:
    """The linear response of the cluster of ``crack`` (a FlexibleCrack) continued to ``outer``
    Å, at load ``K`` (GPa sqrt(Å), default K_G) and tip shift ``alpha`` (Å).

    Atoms: ``shell`` are the FlexibleCrack cluster's regions II+III (where phi acts and the
    forces are solved to zero), ``moved`` its regions II-IV (which move by w)."""

    def __init__(self, crack, outer: float = 80.0, K: float | None = None, alpha: float = 0.0):
        import scipy.sparse.linalg as spla
        from .flexible import crack_cluster
        from matscipy.fracture_mechanics.crack import CubicCrystalCrack
        from scipy.spatial import cKDTree

        needed = minimum_outer(crack.radius, crack.cutoff, crack.r_III - crack.radius - crack.cutoff)
        if outer < needed:
            raise ValueError(f"outer = {outer} Å must exceed region III ({crack.r_III:.1f} Å) by three "
                             f"cutoffs ({needed:.1f} Å)")
        self.outer, self.cutoff = float(outer), crack.cutoff
        small = crack.cluster
        region = small.arrays["region"]
        a0 = crack.material.lattice_constant
        # the same lattice as the small cluster's about the same centre: cell counts of the
        # same parity (matscipy's cluster() centres n unit cells)
        n = []
        for k, period in enumerate((a0 * math.sqrt(6) / 2, a0 * math.sqrt(3))):
            count = int(math.ceil(2.0 * (self.outer + 2.0) / period)) + 1
            count += (count - crack.cells[k]) % 2
            n.append(count)
        big, _ = crack_cluster(a0, [n[0], n[1], 1], shift=crack.shift)
        centre = big.cell.diagonal()[:2] / 2
        r = np.hypot(*(big.positions[:, :2] - centre).T)
        big = big[r < self.outer]
        rel_big = big.positions - big.cell.diagonal() / 2
        rel_small = small.positions - small.cell.diagonal() / 2
        distance, self.index = cKDTree(rel_big).query(rel_small)   # small atom -> big atom
        if distance.max() > 1e-6:
            raise RuntimeError(f"the continued cluster's lattice misses the crack cluster's atoms by "
                               f"{distance.max():.2g} Å")
        # stiffness at the K-field (no Cauchy-Born shifts: they change H by far less than G needs)
        m = crack.material
        self.field = CubicCrystalCrack([1, 1, 1], [1, -1, 0], C11=m.C11, C12=m.C12, C44=m.C44)
        K = float(K if K is not None else crack.K_G)
        self._centre = big.cell.diagonal()[:2] / 2
        self.reference = big.positions.copy()
        deformed = big.copy()
        deformed.positions[:, :2] += self._displacements(self.reference, K, alpha)
        deformed.set_pbc([False, False, True])
        self.deformed = deformed                           # where H was taken (the K-field, no shifts)
        H = stillinger_weber_hessian(deformed)
        r = np.hypot(*(self.reference[:, :2] - self._centre).T)
        held_core = np.zeros(len(big), bool)
        held_core[self.index[region == 1]] = True
        self.ring = np.flatnonzero(r >= self.outer - self.cutoff)
        self.free = np.flatnonzero((r < self.outer - self.cutoff) & ~held_core)
        free_dof, ring_dof = _dofs(self.free), _dofs(self.ring)
        self._lu = spla.splu(H[free_dof][:, free_dof].tocsc())
        self._H_ring_free = H[ring_dof][:, free_dof].tocsr()
        self.n_big = len(big)
        shell = (region == 2) | (region == 3)
        moved = region >= 2
        self.shell, self.moved = np.flatnonzero(shell), np.flatnonzero(moved)
        position = np.full(self.n_big, -1)
        position[self.free] = np.arange(len(self.free))
        self._shell_free = position[self.index[self.shell]]
        self._moved_free = position[self.index[self.moved]]
        if (self._shell_free < 0).any() or (self._moved_free < 0).any():
            raise RuntimeError("the continued cluster does not free every shell atom: raise outer")
        self._tip = None

    def _displacements(self, positions: np.ndarray, K: float, alpha: float) -> np.ndarray:
        ux, uy = self.field.displacements(positions[:, 0], positions[:, 1], self._centre[0] + alpha,
                                          self._centre[1], K)
        return np.stack([ux, uy], axis=1)

    def response(self, phi: np.ndarray) -> np.ndarray:
        """w (n_free, 3) Å on the continued cluster's free atoms for forces ``phi`` (n_shell, 3)
        eV/Å on the shell."""
        load = np.zeros((len(self.free), 3))
        load[self._shell_free] = phi
        return self._lu.solve(load.reshape(-1)).reshape(-1, 3)

    def on_cluster(self, w: np.ndarray, n_atoms: int) -> np.ndarray:
        """w on the crack cluster's atoms (n_atoms, 3): regions II-IV, zero on region I."""
        out = np.zeros((n_atoms, 3))
        out[self.moved] = w[self._moved_free]
        return out

    def forces_for(self, w_shell: np.ndarray) -> np.ndarray:
        """phi (n_shell, 3) eV/Å whose response moves the shell by ``w_shell`` (n_shell, 3) Å:
        conjugate gradients on G restricted to the shell (symmetric positive definite)."""
        from scipy.sparse.linalg import LinearOperator, cg

        n = 3 * len(self.shell)

        def on_shell(phi):
            return self.response(phi.reshape(-1, 3))[self._shell_free].reshape(-1)

        phi, info = cg(LinearOperator((n, n), matvec=on_shell), w_shell.reshape(-1), rtol=1e-10, maxiter=5000)
        if info != 0:
            raise RuntimeError(f"the shell's displacement could not be matched by forces (CG: {info})")
        return phi.reshape(-1, 3)

    def tip_force(self, w: np.ndarray, K: float, alpha: float) -> float:
        """f_alpha (eV/Å): the outer ring's reaction to w on the field's alpha-derivative at
        (K, alpha); the derivative is recomputed when alpha or K moves by more than 1e-5."""
        if self._tip is None or abs(self._tip[0] - alpha) > 1e-5 or abs(self._tip[1] - K) > 1e-5 * abs(K):
            ring = self.reference[self.ring]
            d = (self._displacements(ring, K, alpha + TIP_STEP) - self._displacements(ring, K, alpha - TIP_STEP))
            direction = np.zeros((len(self.ring), 3))
            direction[:, :2] = d / (2 * TIP_STEP)
            self._tip = (alpha, K, direction.reshape(-1))
        reaction = -(self._H_ring_free @ w.reshape(-1))
        return float(reaction @ self._tip[2])


def stillinger_weber_hessian(atoms):
    """matscipy's analytic Stillinger-Weber Hessian of ``atoms`` (eV/Å^2), sparse CSR (3n, 3n)."""
    from matscipy.calculators.manybody import Manybody
    from matscipy.calculators.manybody.explicit_forms.stillinger_weber import (
        StillingerWeber, Stillinger_Weber_PRB_31_5262_Si)
    return Manybody(**StillingerWeber(Stillinger_Weber_PRB_31_5262_Si)).get_hessian(atoms, format="sparse").tocsr()


def _dofs(atoms: np.ndarray) -> np.ndarray:
    return (3 * atoms[:, None] + np.arange(3)).reshape(-1)
