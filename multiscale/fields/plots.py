"""Side-by-side plots of FE and predicted crack fields (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _save(fig, path) -> Path:
    import matplotlib.pyplot as plt
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def compare_fields(spec, solution, predictor, path: str | Path, n: int = 140) -> Path:
    """u_y and sigma_yy of ``solution`` (FE) and ``predictor`` on a grid, with their difference."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    W, H = spec.width, spec.height
    x, y = np.linspace(0, W, n), np.linspace(-H / 2, H / 2, int(n * H / W))
    gx, gy = np.meshgrid(x, y)
    xy = np.column_stack([gx.ravel(), gy.ravel()])
    ok = solution.inside(xy)
    fe_u, fe_s = np.full((len(xy), 2), np.nan), np.full((len(xy), 3), np.nan)
    fe_u[ok], fe_s[ok] = solution.displacements(xy[ok]), solution.stresses(xy[ok])
    p = predictor.predict(spec, xy[ok])
    pr_u, pr_s = np.full_like(fe_u, np.nan), np.full_like(fe_s, np.nan)
    pr_u[ok], pr_s[ok] = p.displacements, p.stresses
    fig, axes = plt.subplots(2, 3, figsize=(12, 7 * H / W), constrained_layout=True)
    rows = [("u_y (L)", fe_u[:, 1], pr_u[:, 1], None), ("sigma_yy (GPa)", fe_s[:, 1], pr_s[:, 1], 4 * spec.stress)]
    for ax_row, (name, fe, pr, cap) in zip(axes, rows):
        lim = np.nanmax(np.abs(fe)) if cap is None else cap
        for ax, val, title in zip(ax_row, (fe, pr, pr - fe), ("FE", "predictor", "predictor - FE")):
            # the difference's scale: its 99th percentile (a few points at the tip are singular)
            vmax = lim if title != "predictor - FE" else max(np.nanpercentile(np.abs(val), 99), 1e-12)
            im = ax.pcolormesh(gx, gy, val.reshape(gx.shape), cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                               shading="auto")
            ends = np.stack([spec.mouth(), spec.tips()[0]])
            ax.plot(ends[:, 0], ends[:, 1], "k-", lw=1)
            ax.set_aspect("equal")
            ax.set_title(f"{name}: {title}")
            fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"{spec.kind}, a/W = {spec.crack_length / W:.2f}, angle {spec.crack_angle:.0f} deg, "
                 f"H/W = {H / W:.2f}, nu = {spec.poisson_ratio:.2f}")
    return _save(fig, path)


def atomistic_profiles(data_path, model_paths, labels, path: str | Path, sample: int | None = None) -> Path:
    """sigma_xx, sigma_yy, sigma_xy around two rings about the tip: coarse-grained atomistic
    stresses of one sample of an atomistic dataset against each model's prediction."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import data as fdata
    from .predictor import FieldPredictor
    d = fdata.read(data_path)
    i = len(d) // 2 if sample is None else sample
    spec = d.specimen(i)
    rel = d.xy[i] - spec.tips()[0]
    r, theta = np.hypot(rel[:, 0], rel[:, 1]), np.degrees(np.arctan2(rel[:, 1], rel[:, 0]))
    radii = np.unique(np.round(r, 6))
    rings = [radii[1], radii[-2]]
    preds = [FieldPredictor.load(p).predict(spec, d.xy[i]).stresses for p in model_paths]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5), constrained_layout=True, sharex=True)
    for row, ring in zip(axes, rings):
        on = np.abs(r - ring) < 1e-4
        order = np.argsort(theta[on])
        for c, (ax, name) in enumerate(zip(row, ("xx", "yy", "xy"))):
            ax.plot(theta[on][order], d.sigma[i][on][order, c], "ko", ms=4, label="atomistic (coarse-grained)")
            for p, lab in zip(preds, labels):
                ax.plot(theta[on][order], p[on][order, c], "-", label=lab)
            ax.set_title(f"sigma_{name}, r = {ring:.1f} Å")
            ax.set_ylabel("GPa")
    for ax in axes[1]:
        ax.set_xlabel("angle about the tip (deg)")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"near-tip stresses, a = {spec.crack_length:.0f} Å, W = {spec.width:.0f} Å, "
                 f"K_I = {d.k[i, 0, 0]:.1f} GPa sqrt(Å) (held out)")
    return _save(fig, path)
