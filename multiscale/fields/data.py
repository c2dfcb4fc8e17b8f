"""Training data for field predictors: random cracked specimens solved by finite elements.

One HDF5 file holds N specimens with Q query points each (fixed Q, so arrays stack):

    params   (N, 8)     Specimen.as_vector(): is_ccp, W, H, a, angle (deg), s (GPa), E (GPa), nu
    tips     (N, 2, 2)  tip positions, L (second slot zero for sent)
    k        (N, 2, 2)  FE stress intensity factors [tip, (K_I, K_II)], GPa sqrt(L)
    xy       (N, Q, 2)  query points inside the material, L
    u        (N, Q, 2)  FE displacements, L
    sigma    (N, Q, 3)  FE stresses sigma_xx, sigma_yy, sigma_xy, GPa
    seconds  (N,)       FE wall time per specimen

Query points: a share uniform over the specimen, the rest log-uniform in r around each tip
(from 0.002 W to 0.15 W), so the singular neighbourhood is sampled densely.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..continuum.specimen import Specimen


@dataclass(frozen=True)
class Ranges:
    """Sampling ranges of the random specimens (uniform in each)."""

    sent_a: tuple[float, float] = (0.15, 0.55)   # a/W of edge cracks
    ccp_a: tuple[float, float] = (0.10, 0.35)    # half length a/W of centre cracks
    angle: tuple[float, float] = (-30.0, 30.0)   # degrees
    aspect: tuple[float, float] = (1.0, 2.0)     # H/W
    nu: tuple[float, float] = (0.15, 0.40)
    width: tuple[float, float] = (50.0, 200.0)   # W, L (fields scale out; varied to prove it)
    stress: tuple[float, float] = (0.5, 2.0)     # GPa
    youngs_modulus: tuple[float, float] = (50.0, 300.0)  # GPa

    def domain(self) -> dict[str, list[float]]:
        """The geometry a predictor trained on these ranges covers, as stored in its file's
        metadata (``training.domain``): crack_length/width per kind and height/width."""
        return {"sent": list(self.sent_a), "ccp": list(self.ccp_a), "aspect": list(self.aspect)}


def random_specimen(rng: np.random.Generator, ranges: Ranges = Ranges()) -> Specimen:
    kind = "sent" if rng.random() < 0.5 else "ccp"
    W = rng.uniform(*ranges.width)
    a_over_w = rng.uniform(*(ranges.sent_a if kind == "sent" else ranges.ccp_a))
    return Specimen(kind=kind, width=W, height=W * rng.uniform(*ranges.aspect),
                    crack_length=a_over_w * W, crack_angle=rng.uniform(*ranges.angle),
                    stress=rng.uniform(*ranges.stress),
                    youngs_modulus=rng.uniform(*ranges.youngs_modulus),
                    poisson_ratio=rng.uniform(*ranges.nu))


def specimen_from_vector(v) -> Specimen:
    v = [float(x) for x in v]
    return Specimen(kind="ccp" if v[0] > 0.5 else "sent", width=v[1], height=v[2], crack_length=v[3],
                    crack_angle=v[4], stress=v[5], youngs_modulus=v[6], poisson_ratio=v[7])


def query_points(spec: Specimen, inside, n: int, rng: np.random.Generator,
                 tip_fraction: float = 0.4) -> np.ndarray:
    """``n`` points (n, 2) L inside the material: uniform, plus ``tip_fraction`` of them
    log-uniform in r (0.002 W .. 0.15 W) about the tips.  ``inside(xy) -> bool mask``."""
    W, H = spec.width, spec.height
    tips = spec.tips()
    n_tip = int(round(n * tip_fraction)) // len(tips) * len(tips)
    out = []
    for want, near in ((n - n_tip, None), (n_tip, tips)):
        got = np.zeros((0, 2))
        while len(got) < want:
            m = 2 * want + 16
            if near is None:
                xy = np.column_stack([rng.uniform(0, W, m), rng.uniform(-H / 2, H / 2, m)])
            else:
                r = W * np.exp(rng.uniform(math.log(0.002), math.log(0.15), m))
                t = rng.uniform(-math.pi, math.pi, m)
                xy = near[np.arange(m) % len(near)] + np.column_stack([r * np.cos(t), r * np.sin(t)])
            got = np.concatenate([got, xy[inside(xy)]])
        out.append(got[:want])
    return np.concatenate(out)


def stress_array(s) -> np.ndarray:
    """FE stresses as (n, 3) [xx, yy, xy], whether given as a tuple of columns or an array."""
    if isinstance(s, (tuple, list)):
        return np.column_stack(s)
    return np.asarray(s)


def _fe_solver():
    try:
        from ..continuum.fem import solve
    except ImportError as exc:
        raise RuntimeError("the finite-element solver multiscale.continuum.fem is not available "
                           f"({exc}); it is needed to label field data") from None
    return solve


def generate(path: str | Path, n: int, n_query: int = 1024, seed: int = 0,
             ranges: Ranges = Ranges(), solve_kwargs: dict | None = None,
             progress: bool = True) -> Path:
    """Solve ``n`` random specimens with FE and write them to ``path`` (HDF5)."""
    if n < 1 or n_query < 8:
        raise ValueError(f"need n >= 1 specimens and n_query >= 8 points, got {n}, {n_query}")
    solve = _fe_solver()
    rng = np.random.default_rng(seed)
    rows = {k: [] for k in ("params", "tips", "k", "xy", "u", "sigma", "seconds")}
    t0 = time.perf_counter()
    for i in range(n):
        spec = random_specimen(rng, ranges)
        sol = solve(spec, **(solve_kwargs or {}))
        xy = query_points(spec, sol.inside, n_query, rng)
        tips, k = np.zeros((2, 2)), np.zeros((2, 2))
        nt = len(spec.tips())
        tips[:nt] = spec.tips()
        k[:nt, 0], k[:nt, 1] = np.atleast_1d(sol.k1), np.atleast_1d(sol.k2)
        rows["params"].append(spec.as_vector())
        rows["tips"].append(tips)
        rows["k"].append(k)
        rows["xy"].append(xy)
        rows["u"].append(sol.displacements(xy))
        rows["sigma"].append(stress_array(sol.stresses(xy)))
        rows["seconds"].append(sol.seconds)
        if progress:
            el = time.perf_counter() - t0
            print(f"\r[{i + 1}/{n}] {spec.kind} a/W={spec.crack_length / spec.width:.2f} "
                  f"angle={spec.crack_angle:+.0f} K_I={k[0, 0]:.3g}  {el:.0f} s elapsed, "
                  f"~{el / (i + 1) * (n - i - 1):.0f} s left", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, val in rows.items():
            f.create_dataset(key, data=np.asarray(val, dtype=np.float64))
        f.attrs["format"] = "multiscale-crack-fields"
        f.attrs["seed"] = seed
        f.attrs["units"] = "length L, stress GPa, K GPa sqrt(L)"
    return path


@dataclass
class FieldData:
    """A dataset in memory (arrays as in the file)."""

    params: np.ndarray
    tips: np.ndarray
    k: np.ndarray
    xy: np.ndarray
    u: np.ndarray
    sigma: np.ndarray
    seconds: np.ndarray

    def __len__(self):
        return len(self.params)

    def subset(self, idx) -> "FieldData":
        return FieldData(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))

    def specimen(self, i: int) -> Specimen:
        return specimen_from_vector(self.params[i])


def read(path: str | Path) -> FieldData:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"field dataset {path} does not exist; make one with "
                                "`multiscale fields dataset --n N -o FILE.h5`")
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != "multiscale-crack-fields":
            raise ValueError(f"{path} is not a crack-field dataset (no format "
                             "'multiscale-crack-fields'); make one with `multiscale fields dataset`")
        return FieldData(*(f[k][()] for k in ("params", "tips", "k", "xy", "u", "sigma", "seconds")))
