"""A cracked specimen whose disc around the crack tip is prescribed: the continuum's subdomain of
an alternating Schwarz coupling (``multiscale.coupling.schwarz``).

Every degree of freedom within ``radius`` of the disc's centre (the region's origin, where the
crack tip was when the region was built) takes the displacement a caller gives (the atoms' there), the rest of the specimen is solved under the remote stress.  The
constraint set never changes, so the free block of the stiffness is factorised once and each
Schwarz iteration is one back-substitution.  The mesh keeps the specimen's crack up to the tip;
inside the disc it does not matter (all its nodes are prescribed), so a crack the atoms grew
there is the atoms' alone.

Units: lengths Å, stresses GPa; ``side`` of a prescribed node: +1 above the crack plane, -1
below, 0 on the plane ahead of the crack (shared by both).  ``points`` are relative to the centre.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .fem import Assembly, FieldSolution, assemble
from .specimen import Specimen


class ClampedDisc:
    """``specimen`` (its remote stress is the unit; :meth:`solve` scales it) with the disc of
    ``radius`` Å around ``centre`` (2,) Å (default: its first tip) prescribed; the crack may end
    anywhere in the disc or beyond it (a crack the atoms grew).  ``tip_size``/``mesh_size``:
    element sizes (Å) at the tip and far away."""

    def __init__(self, specimen: Specimen, radius: float, centre=None, tip_size: float = 1.0,
                 mesh_size: float | None = None):
        from scipy.sparse.linalg import splu

        self.specimen, self.radius = specimen, float(radius)
        self.tip = specimen.tips()[0] if centre is None else np.asarray(centre, float).reshape(2)
        self.assembly: Assembly = assemble(specimen, mesh_size, tip_size)
        basis = self.assembly.basis
        locations = basis.doflocs.T                                          # (n_dofs, 2)
        inside = np.flatnonzero(np.linalg.norm(locations - self.tip, axis=1) <= self.radius)
        if len(inside) == 0:
            raise ValueError(f"no finite-element node lies within {radius} Å of the tip; enlarge the radius")
        self.prescribed = np.union1d(inside, self.assembly.rigid)
        self.free = np.setdiff1d(np.arange(basis.N), self.prescribed)
        self.inside = inside
        # each prescribed dof: its node's position relative to the tip, its component, its side
        self.points = locations[inside] - self.tip
        self.component = np.zeros(basis.N, int)
        self.component[basis.nodal_dofs[1]] = 1
        if basis.facet_dofs.size:
            self.component[basis.facet_dofs[1]] = 1
        self.side = self._sides(inside)
        K = self.assembly.K.tocsr()
        self._K_free = splu(K[self.free][:, self.free].tocsc())
        self._K_coupling = K[self.free][:, self.prescribed]
        # the interface force on the disc is what the elements outside it exert on its nodes
        held = np.zeros(basis.N, bool)
        held[inside] = True
        outside = np.flatnonzero(~held[basis.element_dofs].all(axis=0))
        self._K_outside = self.assembly.stiffness_over(outside).tocsr()[inside]

    def _sides(self, dofs: np.ndarray) -> np.ndarray:
        """+1 / -1 / 0 (module doc) for ``dofs``, from the elements that hold them: a crack-face
        node belongs to elements on one side only."""
        basis = self.assembly.basis
        nodes = self.assembly.mesh.points[self.assembly.mesh.triangles]          # (m, 3, 2)
        above = nodes[:, :, 1].mean(axis=1) > self.tip[1]
        up, down = np.zeros(basis.N, bool), np.zeros(basis.N, bool)
        up[np.unique(basis.element_dofs[:, above])] = True
        down[np.unique(basis.element_dofs[:, ~above])] = True
        return up[dofs].astype(int) - down[dofs].astype(int)

    def solve(self, stress: float, displacement: Callable[[np.ndarray, np.ndarray], np.ndarray]):
        """The specimen under remote ``stress`` (GPa) with the disc's nodes at
        ``displacement(points (n, 2) Å from the tip, side (n,)) -> (n, 2) Å``.  Returns the
        :class:`~multiscale.continuum.fem.FieldSolution` (no K extraction; its ``compliance``
        in Å/GPa) and the interface forces (n_inside,) GPa·Å per Å of thickness: what the
        specimen outside the disc exerts on each of the disc's degrees of freedom (zero but on
        its rim)."""
        n = self.assembly.basis.N
        u = np.zeros(n)
        values = np.asarray(displacement(self.points, self.side), float).reshape(-1, 2)
        if not np.all(np.isfinite(values)):
            raise ValueError("the prescribed disc displacements are not finite")
        u[self.inside] = values[np.arange(len(self.inside)), self.component[self.inside]]
        f = stress * self.assembly.f
        u[self.free] = self._K_free.solve(f[self.free] - self._K_coupling @ u[self.prescribed])
        solution = FieldSolution(self.specimen, self.assembly.mesh, self.assembly.basis, u, sif=False)
        solution.compliance = self.assembly.compliance(u, stress)
        return solution, self._K_outside @ u - f[self.inside]
