"""Where a (111) cleavage crack's tip is: the front of the broken bonds across the crack plane.

The crack of :class:`multiscale.coupling.region.CrackRegion` runs on the (111) shuffle plane
y = 0, crossed by one bond per surface atom, each bond along y.  Those bonds (in the reference
crystal) are the only ones a cleavage crack breaks, so the tip is where they stop being broken.

matscipy's ``find_tip_coordination`` and ``find_tip_broken_bonds`` are not used: both look for
the under-coordinated atom with the largest x, with "the boundary" taken as a rectangular box
(or as the atoms' ``groups`` array), so on a cylindrical region the free outer surface and the
crack faces next to it look like tips.  Counting only the crack-plane bonds, and only from the
crack mouth on, ignores broken bonds anywhere else (outer surface, a stray defect ahead).
"""

from __future__ import annotations

import numpy as np


def crack_plane_bonds(reference: np.ndarray, bond_length: float, plane_y: float = 0.0,
                      period_z: float | None = None) -> np.ndarray:
    """Bonds (m, 2) of atom indices (above, below) that cross the plane y = ``plane_y``.

    reference: (N, 3) Å crystal positions; a bond crosses the shuffle plane along y, so its two
    atoms share x and z.  Sorted by the bonds' x.  ``period_z``: the periodic length along z.
    """
    ref = np.asarray(reference, float)
    y = ref[:, 1] - plane_y
    tol = 0.05 * bond_length
    above = np.flatnonzero((y > 0) & (np.abs(y - bond_length / 2) < tol))
    below = np.flatnonzero((y < 0) & (np.abs(y + bond_length / 2) < tol))
    if len(above) == 0 or len(below) == 0:
        raise ValueError(f"no atoms {bond_length / 2:.3f} Å above and below the plane y = {plane_y} Å: "
                         "the crystal is not cut at a (111) shuffle plane there")
    d = ref[below][None, :, ::2] - ref[above][:, None, ::2]    # (n_above, n_below, (x, z))
    if period_z:
        d[..., 1] -= period_z * np.round(d[..., 1] / period_z)
    dist = np.hypot(d[..., 0], d[..., 1])
    partner = dist.argmin(axis=1)
    ok = dist[np.arange(len(above)), partner] < tol
    bonds = np.stack([above[ok], below[partner[ok]]], axis=1)
    return bonds[np.argsort(ref[bonds[:, 0], 0], kind="stable")]


def bond_lengths(positions: np.ndarray, bonds: np.ndarray, period_z: float | None = None) -> np.ndarray:
    """Current lengths (m,) Å of ``bonds`` (minimum image along a periodic z)."""
    d = positions[bonds[:, 0]] - positions[bonds[:, 1]]
    if period_z:
        d[:, 2] -= period_z * np.round(d[:, 2] / period_z)
    return np.linalg.norm(d, axis=1)


def find_tip(positions: np.ndarray, reference: np.ndarray, bonds: np.ndarray, broken_length: float,
             period_z: float | None = None, intact_run: int = 2) -> tuple[float, np.ndarray]:
    """Tip x (Å, reference frame) and the broken mask (m,) of the crack-plane ``bonds``.

    Walking from the crack mouth (smallest x) along the bonds sorted by x, the crack front is
    the last broken bond before the first ``intact_run`` consecutive intact ones (so one bridging
    bond behind the front does not stop the crack, and broken bonds beyond the front do not
    count); the tip is midway between that bond and the next.  Bonds longer than
    ``broken_length`` Å are broken.  No broken bond at the mouth: the tip is half a bond spacing
    before the first bond.  All broken: half a spacing beyond the last.
    """
    x = reference[bonds[:, 0], 0]
    broken = bond_lengths(positions, bonds, period_z) > broken_length
    spacing = float(np.median(np.diff(np.unique(np.round(x, 6))))) if len(x) > 1 else 1.0
    stop = len(bonds)
    for k in range(len(bonds) - intact_run + 1):
        if not broken[k:k + intact_run].any():
            stop = k
            break
    behind = np.flatnonzero(broken[:stop])
    front = int(behind[-1]) if len(behind) else -1
    if front < 0:
        return float(x[0] - spacing / 2), broken
    if front == len(bonds) - 1:
        return float(x[-1] + spacing / 2), broken
    nxt = x[front + 1:][x[front + 1:] > x[front] + 1e-6]
    return float((x[front] + (nxt[0] if len(nxt) else x[front] + spacing)) / 2), broken
