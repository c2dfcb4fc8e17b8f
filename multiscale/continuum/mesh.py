"""Triangle meshes of cracked specimens with gmsh, refined at the crack tips.

The crack is a slit of zero width: gmsh meshes the plate with the crack segment embedded
(conforming edges along it), then its ``Crack`` plugin duplicates the nodes on the segment
(all but the tips, plus the mouth node where a sent crack meets the left edge), so elements
above and below the crack no longer share nodes.  This keeps the crack faces exactly
straight and coincident (no notch-width parameter that would change K) and the tip a
single node, and it is what gmsh does natively, so no mesh surgery is written by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .specimen import Specimen


@dataclass(frozen=True)
class CrackMesh:
    """Linear triangle mesh: ``points`` (n, 2) L, ``triangles`` (m, 3) node indices."""

    points: np.ndarray
    triangles: np.ndarray


def default_sizes(specimen: Specimen, mesh_size: float | None, tip_size: float | None):
    """Element size far from (mesh_size) and at (tip_size) the tips, L."""
    a, W, H = specimen.crack_length, specimen.width, specimen.height
    if mesh_size is None:
        mesh_size = min(W, H) / 12
    if tip_size is None:
        tip_size = min(a, W - specimen.tips()[:, 0].max()) / 60
    if not (mesh_size > 0 and tip_size > 0):
        raise ValueError(f"mesh_size and tip_size must be positive, got {mesh_size}, {tip_size}")
    return mesh_size, min(tip_size, mesh_size)


def build_mesh(specimen: Specimen, mesh_size: float | None = None,
               tip_size: float | None = None, growth: float = 0.25) -> CrackMesh:
    """Mesh ``specimen`` with elements of ``tip_size`` at the tips growing by about
    ``growth`` per element to ``mesh_size`` (L)."""
    try:
        import gmsh
    except OSError as err:   # the PyPI wheel links the GUI's system libraries
        raise ImportError(f"gmsh cannot load its shared libraries ({err}); on Debian/Ubuntu "
                          "install them with: apt-get install libglu1-mesa libxcursor1 libxft2 "
                          "libxinerama1") from err

    mesh_size, tip_size = default_sizes(specimen, mesh_size, tip_size)
    W, H = specimen.width, specimen.height
    start, tips = specimen.mouth(), specimen.tips()
    end = tips[0]
    gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("specimen")
        occ = gmsh.model.occ
        plate = occ.addRectangle(0.0, -H / 2, 0.0, W, H)
        crack = occ.addLine(occ.addPoint(*start, 0.0), occ.addPoint(*end, 0.0))
        occ.fragment([(2, plate)], [(1, crack)])
        occ.synchronize()

        midpoint = (start + end) / 2
        crack_curves = [tag for _, tag in gmsh.model.getEntities(1)
                        if np.allclose(occ.getCenterOfMass(1, tag)[:2], midpoint, atol=1e-9 * W)]
        if len(crack_curves) != 1:
            raise RuntimeError(f"gmsh did not keep the crack as one curve ({crack_curves})")
        crack_group = gmsh.model.addPhysicalGroup(1, crack_curves)
        gmsh.model.addPhysicalGroup(2, [tag for _, tag in gmsh.model.getEntities(2)])

        tip_points = [tag for _, tag in gmsh.model.getEntities(0)
                      if min(np.linalg.norm(gmsh.model.getValue(0, tag, [])[:2] - t) for t in tips)
                      < 1e-9 * W]
        field = gmsh.model.mesh.field
        distance = field.add("Distance")
        field.setNumbers(distance, "PointsList", tip_points)
        threshold = field.add("Threshold")
        field.setNumber(threshold, "InField", distance)
        field.setNumber(threshold, "SizeMin", tip_size)
        field.setNumber(threshold, "SizeMax", mesh_size)
        field.setNumber(threshold, "DistMin", 2 * tip_size)
        field.setNumber(threshold, "DistMax", 2 * tip_size + (mesh_size - tip_size) / growth)
        field.setAsBackgroundMesh(threshold)
        for option in ("MeshSizeExtendFromBoundary", "MeshSizeFromPoints", "MeshSizeFromCurvature"):
            gmsh.option.setNumber(f"Mesh.{option}", 0)
        gmsh.model.mesh.generate(2)

        gmsh.plugin.setNumber("Crack", "Dimension", 1)
        gmsh.plugin.setNumber("Crack", "PhysicalGroup", crack_group)
        open_boundary = 0   # plugin options outlive gmsh.finalize(): always set them all
        if specimen.kind == "sent":
            mouth = [tag for _, tag in gmsh.model.getEntities(0)
                     if np.linalg.norm(gmsh.model.getValue(0, tag, [])[:2] - start) < 1e-9 * W]
            open_boundary = gmsh.model.addPhysicalGroup(0, mouth)
        gmsh.plugin.setNumber("Crack", "OpenBoundaryPhysicalGroup", open_boundary)
        gmsh.plugin.run("Crack")

        node_tags, coords, _ = gmsh.model.mesh.getNodes()
        types, _, element_nodes = gmsh.model.mesh.getElements(2)
    finally:
        gmsh.finalize()
    if list(types) != [2]:
        raise RuntimeError(f"expected only 3-node triangles from gmsh, got element types {types}")
    # renumber the nodes the triangles use to 0..n-1 (gmsh tags are sparse)
    index = np.full(int(node_tags.max()) + 1, -1)
    index[node_tags.astype(int)] = np.arange(len(node_tags))
    triangles = index[element_nodes[0].astype(int)].reshape(-1, 3)
    used, triangles = np.unique(triangles, return_inverse=True)
    points = coords.reshape(-1, 3)[used, :2]
    return CrackMesh(points, triangles.reshape(-1, 3))


def locate(points: np.ndarray, triangles: np.ndarray, xy: np.ndarray, neighbours: int = 24):
    """Triangle containing each point of ``xy`` (n, 2), -1 where none does.

    Hand-written because skfem's finder falls back to testing every point against every
    element (memory n x m) as soon as one point is outside the mesh or beyond its 5 nearest
    centroids, which happens in graded meshes; here only the unresolved points are retried
    against all elements, one at a time.
    """
    from scipy.spatial import cKDTree

    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    corners = points[triangles]                       # (m, 3, 2)
    origin = corners[:, 0]
    edges = np.stack([corners[:, 1] - origin, corners[:, 2] - origin], axis=2)  # (m, 2, 2)
    inverse = np.linalg.inv(edges)
    scale = np.abs(edges).max()
    tol = 1e-10

    def barycentric(cells, pts):
        local = np.einsum("...ij,...j->...i", inverse[cells], pts - origin[cells])
        return np.minimum(np.minimum(local[..., 0], local[..., 1]), 1 - local.sum(-1))

    k = min(neighbours, len(triangles))
    _, near = cKDTree(corners.mean(axis=1)).query(xy, k)
    near = near.reshape(len(xy), k)
    margin = barycentric(near, xy[:, None, :])        # (n, k) >= -tol inside
    best = margin.argmax(axis=1)
    found = near[np.arange(len(xy)), best]
    found[margin[np.arange(len(xy)), best] < -tol] = -1
    bbox_lo, bbox_hi = points.min(0) - tol * scale, points.max(0) + tol * scale
    for i in np.flatnonzero(found < 0):
        if np.all(xy[i] >= bbox_lo) and np.all(xy[i] <= bbox_hi):
            margin = barycentric(np.arange(len(triangles)), xy[i][None, :])
            if margin.max() >= -tol:
                found[i] = margin.argmax()
    return found
