"""Plane-strain linear elasticity of cracked specimens with scikit-fem on gmsh meshes.

``solve(specimen)`` meshes the specimen (:mod:`.mesh`, crack as a slit refined at the tips),
assembles P2 (default) triangle elasticity, applies the remote traction +-stress along y on
the top and bottom edges, removes rigid motion by pinning the bottom-right corner and the x
displacement of the top-right corner (the load is self-equilibrated, so these reactions are
zero and the constraint works for any crack angle), solves, and extracts K_I, K_II at each tip
by the interaction integral (:mod:`.sif`).

Units: lengths L (Å in the coupled runs), stresses GPa, K in GPa sqrt(L).

``benchmarks/fem_solve.py`` tabulates FE K_I against Tada's handbook and times the solve.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .mesh import CrackMesh, build_mesh, default_sizes, locate
from .sif import interaction_integral
from .specimen import Specimen


def _voigt_strain(grad):
    """Engineering strains (3, ...) from a displacement gradient (2, 2, ...)."""
    return [grad[0][0], grad[1][1], grad[0][1] + grad[1][0]]


class FieldSolution:
    """Finite-element solution of one specimen.

    Attributes: ``specimen``; ``k1``, ``k2`` (n_tips,) GPa sqrt(L) in the order of
    ``specimen.tips()``; ``seconds`` (wall time of mesh + assembly + solve + K extraction);
    ``nodes`` (n, 2) L and ``elements`` (m, 3) of the linear triangle mesh (for plotting);
    ``n_dofs``; ``compliance`` (L/GPa, :meth:`Assembly.compliance`).  ``sif=False`` skips the
    K extraction (k1, k2 NaN).
    """

    def __init__(self, specimen: Specimen, mesh: CrackMesh, basis, u: np.ndarray,
                 radius: float | None = None, sif: bool = True):
        self.specimen = specimen
        self.nodes, self.elements = mesh.points, mesh.triangles
        self._basis, self._u = basis, u
        self._stiffness = specimen.stiffness()
        self.n_dofs = len(u)
        nan = np.full(len(specimen.tips()), np.nan)
        self.k1, self.k2 = self.stress_intensity(radius) if sif else (nan, nan)
        self.seconds = float("nan")
        self.compliance = float("nan")

    # -- K extraction ------------------------------------------------------------------------
    def default_radius(self) -> float:
        """Interaction-integral domain radius (L): half the distance from a tip to the
        nearest boundary, the other tip or the crack mouth."""
        sp = self.specimen
        W, H = sp.width, sp.height
        tips = sp.tips()
        gaps = [sp.crack_length]                   # to the mouth (sent) or the crack centre (ccp)
        for x, y in tips:
            gaps += [x, W - x, H / 2 - y, H / 2 + y]
        return 0.5 * min(gaps)

    def stress_intensity(self, radius: float | None = None):
        """K_I, K_II (n_tips,) by the interaction integral over a disc of ``radius`` (L)."""
        radius = self.default_radius() if radius is None else radius
        b = self._basis
        xy = np.asarray(b.global_coordinates()).reshape(2, -1).T
        grad = b.interpolate(self._u).grad.reshape(2, 2, -1).transpose(2, 0, 1)
        sigma = self._stress_from_grad(grad)
        weights = b.dx.reshape(-1)
        sp = self.specimen
        out = [interaction_integral(xy, weights, grad, sigma, tip, d, radius,
                                    sp.youngs_modulus, sp.poisson_ratio)
               for tip, d in zip(sp.tips(), sp.tip_directions())]
        return np.array([k[0] for k in out]), np.array([k[1] for k in out])

    # -- fields at points --------------------------------------------------------------------
    def _stress_from_grad(self, grad):
        """Stress tensors (n, 2, 2) GPa from displacement gradients (n, 2, 2)."""
        eps = np.stack([grad[:, 0, 0], grad[:, 1, 1], grad[:, 0, 1] + grad[:, 1, 0]], axis=1)
        s = eps @ self._stiffness.T
        return np.stack([np.stack([s[:, 0], s[:, 2]], 1), np.stack([s[:, 2], s[:, 1]], 1)], 1)

    def _evaluate(self, xy, outside: str):
        """Displacements (n, 2) and gradients (n, 2, 2) at points; outside the mesh a ValueError
        (outside="raise") or NaN (outside="nan")."""
        if outside not in ("raise", "nan"):
            raise ValueError(f"outside must be 'raise' or 'nan', got {outside!r}")
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        cells = locate(self.nodes, self.elements, xy)
        ok = cells >= 0
        if outside == "raise" and not ok.all():
            sp = self.specimen
            first = xy[~ok][0]
            raise ValueError(
                f"{int((~ok).sum())} of {len(xy)} points lie outside the specimen (first: "
                f"({first[0]:.4g}, {first[1]:.4g})); FE fields are in specimen coordinates, x in "
                f"[0, {sp.width:g}], y in [{-sp.height / 2:g}, {sp.height / 2:g}] (the tip is at "
                f"Specimen.tips()); pass outside='nan' to get NaN there instead")
        values = np.full((len(xy), 2), np.nan)
        grads = np.full((len(xy), 2, 2), np.nan)
        if ok.any():
            (ux, bx), (uy, _) = self._basis.split(self._u)
            pts = bx.mapping.invF(xy[ok].T[:, :, None], tind=cells[ok])
            dofs = bx.element_dofs[:, cells[ok]]           # (n_basis, n_ok)
            val, grad = np.zeros((ok.sum(), 2)), np.zeros((ok.sum(), 2, 2))
            for k in range(bx.Nbfun):
                phi = bx.elem.gbasis(bx.mapping, pts, k, tind=cells[ok])[0]
                for c, comp in enumerate((ux, uy)):
                    coef = comp[dofs[k]]
                    val[:, c] += coef * np.asarray(phi)[:, 0]
                    grad[:, c] += coef[:, None] * phi.grad[:, :, 0].T
            values[ok], grads[ok] = val, grad
        return values, grads

    def displacements(self, xy, outside: str = "raise") -> np.ndarray:
        """Displacements (n, 2) L at points ``xy`` (n, 2) L in specimen coordinates; a point
        outside the specimen is a ValueError, or NaN with ``outside="nan"``."""
        return self._evaluate(xy, outside)[0]

    def stresses(self, xy, outside: str = "raise") -> np.ndarray:
        """Stresses (n, 3) GPa, columns sigma_xx, sigma_yy, sigma_xy, at points (n, 2) L;
        outside as for ``displacements``.  On an element edge the value of one adjacent
        element is returned."""
        s = self._stress_from_grad(self._evaluate(xy, outside)[1])
        return np.stack([s[:, 0, 0], s[:, 1, 1], s[:, 0, 1]], axis=1)

    def inside(self, xy) -> np.ndarray:
        """(n,) bool: point in the material, i.e. in [0, W] x [-H/2, H/2] and not on the
        crack (farther than 1e-9 W from the crack segment)."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        sp = self.specimen
        in_box = ((xy[:, 0] >= 0) & (xy[:, 0] <= sp.width)
                  & (np.abs(xy[:, 1]) <= sp.height / 2))
        start, end = sp.mouth(), sp.tips()[0]
        seg = end - start
        t = np.clip((xy - start) @ seg / (seg @ seg), 0.0, 1.0)
        dist = np.linalg.norm(xy - (start + t[:, None] * seg), axis=1)
        return in_box & (dist > 1e-9 * sp.width)


@dataclass
class Assembly:
    """A specimen's discrete problem: ``mesh``, skfem ``basis``, stiffness ``K`` (n_dofs, n_dofs),
    load vector ``f`` (n_dofs,) of a unit remote stress (GPa), the rigid-body constraint dofs
    ``rigid`` and the ``loaded`` work: ``f @ u / width`` is the load-line displacement (L) that the
    remote stress does work on."""
    specimen: Specimen
    mesh: CrackMesh
    basis: object
    K: object
    f: np.ndarray
    rigid: np.ndarray
    form: object = None            # the elasticity BilinearForm (for assembling over some elements)
    intorder: int = 4              # its quadrature order

    def stiffness_over(self, elements: np.ndarray):
        """The stiffness (n_dofs, n_dofs) of the given elements alone (indices into the mesh)."""
        from skfem import Basis
        b = self.basis
        return self.form.assemble(Basis(b.mesh, b.elem, intorder=self.intorder, elements=elements))

    def compliance(self, u: np.ndarray, stress: float) -> float:
        """Load-line displacement per remote stress (L/GPa) of the solution ``u`` under ``stress``:
        the mean opening of the top edge against the bottom edge, the displacement the remote
        traction works on."""
        return float(self.f @ u) / (self.specimen.width * stress)


def assemble(specimen: Specimen, mesh_size: float | None = None, tip_size: float | None = None,
             order: int = 2) -> Assembly:
    """Mesh ``specimen`` (sizes as in :func:`solve`) and assemble P1/P2 plane-strain elasticity,
    the unit remote traction on the top and bottom edges and the minimal rigid-body
    constraint."""
    from skfem import (Basis, BilinearForm, ElementTriP1, ElementTriP2, ElementVector,
                       FacetBasis, LinearForm, MeshTri)

    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2 (P1 or P2 triangles), got {order}")
    mesh_size, tip_size = default_sizes(specimen, mesh_size, tip_size)
    mesh = build_mesh(specimen, mesh_size, tip_size)
    sk_mesh = MeshTri(mesh.points.T.copy(), mesh.triangles.T.copy())
    element = ElementVector(ElementTriP2() if order == 2 else ElementTriP1())
    basis = Basis(sk_mesh, element, intorder=2 * order)
    C = specimen.stiffness()

    @BilinearForm
    def elasticity(u, v, w):
        eu, ev = _voigt_strain(u.grad), _voigt_strain(v.grad)
        return sum(ev[i] * C[i, j] * eu[j] for i in range(3) for j in range(3) if C[i, j] != 0)

    half = specimen.height / 2
    loaded = sk_mesh.facets_satisfying(lambda x: np.abs(np.abs(x[1]) - half) < 1e-9 * half,
                                       boundaries_only=True)
    traction = FacetBasis(sk_mesh, element, facets=loaded, intorder=2 * order)

    @LinearForm
    def load(v, w):
        return w.n[1] * v[1]

    # minimal rigid-body constraint: corner (W, -H/2) fixed, corner (W, H/2) fixed in x
    def nearest_node(p):
        return int(np.argmin(np.linalg.norm(mesh.points - np.asarray(p), axis=1)))

    bottom_right = nearest_node([specimen.width, -half])
    top_right = nearest_node([specimen.width, half])
    rigid = np.concatenate([basis.nodal_dofs[:, bottom_right], basis.nodal_dofs[:1, top_right]])
    return Assembly(specimen, mesh, basis, elasticity.assemble(basis), load.assemble(traction), rigid,
                    elasticity, 2 * order)


def solve(specimen: Specimen, mesh_size: float | None = None, tip_size: float | None = None,
          order: int = 2, radius: float | None = None) -> FieldSolution:
    """Solve ``specimen`` with elements of ``tip_size`` at the tips and ``mesh_size`` far away
    (L; defaults min(W, H)/12 and min(a, ligament)/60), Lagrange elements of ``order`` 1 or 2;
    ``radius``: interaction-integral domain (L, default :meth:`FieldSolution.default_radius`).
    The solution's ``compliance`` is :meth:`Assembly.compliance` (L/GPa)."""
    from skfem import condense, solve as sk_solve

    start = time.perf_counter()
    a = assemble(specimen, mesh_size, tip_size, order)
    u = sk_solve(*condense(a.K, specimen.stress * a.f, D=a.rigid))
    # the interaction integral assumes an isotropic solid: an anisotropic solve reports no K
    solution = FieldSolution(specimen, a.mesh, a.basis, u, radius, sif=specimen.stiffness_matrix is None)
    solution.compliance = a.compliance(u, specimen.stress)
    solution.seconds = time.perf_counter() - start
    return solution
