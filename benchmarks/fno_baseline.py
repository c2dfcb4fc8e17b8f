"""Fourier neural operator baseline (neuraloperator's ``FNO``) on rasterised FE fields.

The specimens of a field dataset are re-solved by FE on a fixed non-dimensional grid
(x* in [0, 1], y* in [-1, 1], NX x NY nodes; nodes outside the specimen are masked).  Input
channels: material mask, Poisson's ratio, kind, a/W, cos/sin of the crack angle, distance to
the crack / W and the Westergaard function sqrt(Z^2 - a^2) (real, imaginary), which carries
the crack-face jump the spectral layers cannot make on their own.  Outputs: the five
non-dimensional fields u*, sigma* (the same scaling as the FieldPerceiver).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from multiscale.fields import data as fdata
from multiscale.fields.metrics import R0, tip_distance

NX, NY = 48, 96


def grid() -> np.ndarray:
    """Non-dimensional grid nodes (NY, NX, 2)."""
    gx, gy = np.meshgrid(np.linspace(0, 1, NX), np.linspace(-1, 1, NY))
    return np.stack([gx, gy], axis=-1)


def _channels(spec, g):
    W = spec.width
    xy = g.reshape(-1, 2) * W
    ends = np.stack([spec.mouth(), spec.tips()[0]])
    seg = ends[1] - ends[0]
    t = np.clip((xy - ends[0]) @ seg / (seg @ seg), 0, 1)
    dist = np.linalg.norm(xy - (ends[0] + t[:, None] * seg), axis=1) / W
    d = spec.tip_directions()[0]
    a = spec.crack_length / W
    centre = (spec.tips()[0] / W) - a * d
    z = g.reshape(-1, 2) - centre
    zc = (z[:, 0] * d[0] + z[:, 1] * d[1]) + 1j * (-z[:, 0] * d[1] + z[:, 1] * d[0])
    west = np.sqrt(zc - a) * np.sqrt(zc + a)  # principal branches: cut on the crack only
    inside = (np.abs(g.reshape(-1, 2)[:, 1]) <= spec.height / (2 * W)).astype(float)
    ang = np.radians(spec.crack_angle)
    const = [spec.poisson_ratio, float(spec.kind == "ccp"), a, np.cos(ang), np.sin(ang)]
    ch = [inside] + [np.full(len(xy), c) for c in const] + [dist, west.real, west.imag]
    return np.stack(ch).reshape(len(ch), *g.shape[:2]) * inside.reshape(1, *g.shape[:2])


def rasterise(source: str | Path, path: str | Path, n: int | None = None, progress: bool = True) -> Path:
    """Re-solve the first ``n`` specimens of field dataset ``source`` on the grid; write HDF5."""
    from multiscale.continuum.fem import solve
    src = fdata.read(source)
    n = len(src) if n is None else min(n, len(src))
    g = grid()
    xs, ys, ms, rt, secs = [], [], [], [], []
    t0 = time.perf_counter()
    for i in range(n):
        spec = src.specimen(i)
        sol = solve(spec)
        xy = g.reshape(-1, 2) * spec.width
        ok = sol.inside(xy)
        y = np.zeros((len(xy), 5))
        y[ok, :2] = sol.displacements(xy[ok]) * spec.youngs_modulus / (spec.stress * spec.width)
        y[ok, 2:] = sol.stresses(xy[ok]) / spec.stress
        xs.append(_channels(spec, g))
        ys.append(np.nan_to_num(y).T.reshape(5, NY, NX))
        ms.append(ok.reshape(NY, NX))
        rt.append(tip_distance(xy, spec.tips(), len(spec.tips())).reshape(NY, NX) / spec.width)
        secs.append(sol.seconds)
        if progress:
            el = time.perf_counter() - t0
            print(f"\r[{i + 1}/{n}] rasterising, {el:.0f} s", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    with h5py.File(path, "w") as f:
        for key, val in (("x", xs), ("y", ys), ("mask", ms), ("rtip", rt), ("seconds", secs),
                         ("params", src.params[:n])):
            f.create_dataset(key, data=np.asarray(val))
    return Path(path)


def _load(path):
    with h5py.File(path, "r") as f:
        return {k: torch.as_tensor(f[k][()]).float() for k in ("x", "y", "mask", "rtip", "params")}


def _errors(pred, d, r0: float = R0):
    """Per-specimen relative L2 of displacements (mask) and stresses (mask, r > r0 W)."""
    m = d["mask"].unsqueeze(1)
    ms = m * (d["rtip"] > r0).unsqueeze(1).float()
    norm = lambda x: x.pow(2).sum(dim=(1, 2, 3)).sqrt()  # noqa: E731
    du = norm((pred[:, :2] - d["y"][:, :2]) * m) / norm(d["y"][:, :2] * m)
    ds = norm((pred[:, 2:] - d["y"][:, 2:]) * ms) / norm(d["y"][:, 2:] * ms)
    return du, ds


def train_fno(train_path, test_path, minutes: float = 8.0, seed: int = 0, modes: int = 16,
              hidden: int = 32, batch_size: int = 8, learning_rate: float = 3e-3) -> dict:
    """Train an FNO within ``minutes``; return errors on the test grid, parameters and times."""
    from neuralop.models import FNO
    torch.manual_seed(seed)
    tr, te = _load(train_path), _load(test_path)
    model = FNO(n_modes=(modes, modes), in_channels=tr["x"].shape[1], out_channels=5,
                hidden_channels=hidden, n_layers=4)
    opt = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=1e-5)
    t0, step = time.perf_counter(), 0
    n = len(tr["x"])
    while (elapsed := time.perf_counter() - t0) < 60 * minutes:
        idx = torch.randint(0, n, (batch_size,))
        b = {k: v[idx] for k, v in tr.items()}
        du, ds = _errors(model(b["x"]), b, r0=0.01)
        loss = (du ** 2 + ds ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        for group in opt.param_groups:  # cosine decay over the time budget
            group["lr"] = learning_rate * 0.5 * (1 + np.cos(np.pi * elapsed / (60 * minutes)))
        step += 1
        if step % 20 == 0:
            print(f"\rFNO step {step} loss {loss.item():.3e} {elapsed:.0f} s", end="", file=sys.stderr,
                  flush=True)
    print(file=sys.stderr)
    model.eval()
    with torch.no_grad():
        t1 = time.perf_counter()
        pred = model(te["x"])
        seconds = (time.perf_counter() - t1) / len(te["x"])
    du, ds = _errors(pred, te)
    return {"model": model, "displacement_rel_l2": du.mean().item(), "stress_rel_l2": ds.mean().item(),
            "parameters": sum(p.numel() for p in model.parameters()), "train_seconds": 60 * minutes,
            "steps": step, "seconds_per_specimen": seconds}


def perceiver_on_grid(model_path, test_path) -> dict:
    """The FieldPerceiver's errors on the same grid nodes, for a like-for-like comparison."""
    from multiscale.fields.predictor import FieldPredictor
    pred = FieldPredictor.load(model_path)
    te = _load(test_path)
    g = grid().reshape(-1, 2)
    out = torch.zeros_like(te["y"])
    for i in range(len(te["x"])):
        spec = fdata.specimen_from_vector(te["params"][i].numpy())
        p = pred.predict(spec, g * spec.width)
        y = np.concatenate([p.displacements * spec.youngs_modulus / (spec.stress * spec.width),
                            p.stresses / spec.stress], axis=1)
        out[i] = torch.as_tensor(np.nan_to_num(y).T.reshape(5, NY, NX)).float() * te["mask"][i]
    du, ds = _errors(out, te)
    return {"displacement_rel_l2": du.mean().item(), "stress_rel_l2": ds.mean().item()}
