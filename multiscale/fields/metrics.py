"""Error measures of predicted crack fields (numpy or torch, per specimen)."""

from __future__ import annotations

import numpy as np

R0 = 0.02  # stresses are compared outside r0 = 0.02 W of every tip (FE stresses are poor inside)


def tip_distance(xy, tips, n_tips) -> np.ndarray:
    """Distance (n,) from points (n, 2) to the nearest of the first ``n_tips`` tips (2, 2)."""
    return np.min(np.linalg.norm(xy[:, None, :] - tips[None, :n_tips], axis=2), axis=1)


def relative_l2(pred, ref, mask=None) -> float:
    """||pred - ref|| / ||ref|| over the rows selected by ``mask``."""
    if mask is not None:
        pred, ref = pred[mask], ref[mask]
    return float(np.linalg.norm(pred - ref) / np.linalg.norm(ref))


def field_errors(u_pred, u_ref, s_pred, s_ref, rtip_over_w, r0: float = R0) -> dict:
    """Relative L2 errors of displacements (all points) and stresses (points beyond r0 W)."""
    return {"displacement_rel_l2": relative_l2(u_pred, u_ref),
            "stress_rel_l2": relative_l2(s_pred, s_ref, rtip_over_w > r0)}
