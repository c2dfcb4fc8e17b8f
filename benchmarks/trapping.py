"""Lattice-trapping curves under flexible boundaries (multiscale.atomistic.trapping): K- and K+
against the region's radius, an independent check, and what a continuation step costs.

For each radius: the whole curve through the flexible equilibrium at K_G, ``--length`` Å of tip
advance and ``--back`` Å back from it (LAMMPS forces, one rank), its folds K-/K_G and K+/K_G, points, force calls and seconds;
the cost of a continuation step against one fixed-boundary relaxation (region I relaxed at K_G
with the tip held, matscipy's Newton-Krylov, same radius and forces).

``--check``: instead, an independent run at the first radius, on the curve traced there
before.  matscipy's own flexible solve (``SinclairCrack.optimize``, alpha free, K fixed) with
matscipy's own Stillinger-Weber calculator (``Manybody``, no LAMMPS), started on the stable
branch at K_G and ramped in K up and down in steps of 2 % K_G, halved on every failure down to
0.25 %: the last K with an equilibrium on that branch brackets K+ (and K-) without
continuation.

Curves go to benchmarks/results/trapping/<potential>_R<radius>.h5, figures to
docs/figures/trapping_<potential>.png, figures and timings to benchmarks/results/trapping.json
(updated, not replaced: radii can be run one at a time).

    .venv/bin/python benchmarks/trapping.py [--potential sw] [--radii 20 30 40] [--length 4.0]
    .venv/bin/python benchmarks/trapping.py --check --radii 20
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "trapping.json"
CURVES = HERE / "results" / "trapping"
FIGURES = HERE.parent / "docs" / "figures"


def fixed_relaxation_seconds(crack) -> float:
    """One region-I relaxation at K_G with the tip held (the fixed-boundary baseline), s."""
    start = time.perf_counter()
    crack.solve(crack.K_G, alpha=0.0, flexible=False, fmax=1e-4)
    return time.perf_counter() - start


def fold(curve, name: str) -> float | None:
    """K_minus or K_plus over K_G; None where the trace has no such fold."""
    try:
        return getattr(curve, name) / curve.K_G
    except ValueError:
        return None


def run_radius(potential: str, radius: float, length: float, back: float) -> tuple[dict, object]:
    import h5py

    from multiscale.atomistic.flexible import FlexibleCrack
    from multiscale.atomistic.trapping import trace

    crack = FlexibleCrack(potential, radius=radius)
    try:
        fixed = fixed_relaxation_seconds(crack)
        start = time.perf_counter()
        curve = trace(crack, length=length, back=back)
        seconds = time.perf_counter() - start
    finally:
        crack.close()
    CURVES.mkdir(parents=True, exist_ok=True)
    with h5py.File(CURVES / f"{potential}_R{radius:g}.h5", "w") as f:
        curve.write(f.create_group("trapping"))
    steps = len(curve.K) - 1
    row = {"potential": potential, "radius": radius, "free_atoms": int(curve.positions.shape[1]),
           "K_G": curve.K_G, "K_minus_over_KG": fold(curve, "K_minus"), "K_plus_over_KG": fold(curve, "K_plus"),
           "folds": {kind: [[float(curve.alpha[i]), float(curve.K[i] / curve.K_G)] for i in index]
                     for kind, index in zip(("minima", "maxima"), curve.turning_points())},
           "points": len(curve.K), "force_calls": int(curve.evaluations.sum()), "seconds": seconds,
           "seconds_per_step": seconds / steps, "fixed_relaxation_seconds": fixed,
           "step_over_fixed_relaxation": seconds / steps / fixed, "events": curve.events(),
           "max_force_free": float(curve.max_force_free.max()),
           "max_force_boundary_median": float(np.median(curve.max_force_boundary)), "stopped": curve.stopped}
    print(json.dumps({k: v for k, v in row.items() if k != "events"}, indent=1), flush=True)
    return row, curve


def independent_check(radius: float, curve) -> dict:
    """K+ and K- bracketed by matscipy's flexible solves at fixed K with its own SW (module doc)."""
    from matscipy.calculators.manybody import Manybody
    from matscipy.calculators.manybody.explicit_forms.stillinger_weber import (
        StillingerWeber, Stillinger_Weber_PRB_31_5262_Si)

    from multiscale.atomistic.flexible import FlexibleCrack, _matscipy_quietly

    crack = FlexibleCrack("sw", radius=radius, calculator=Manybody(**StillingerWeber(Stillinger_Weber_PRB_31_5262_Si)))
    minima, maxima = curve.turning_points()
    low, high = minima[0], maxima[maxima > minima[0]][0]         # the stable branch: K- up to K+
    stable = low + int(np.argmin(np.abs(curve.K[low:high + 1] - curve.K_G)))
    sc = crack._sinclair(crack.K_G, float(curve.alpha[stable]), variable_alpha=True)

    def solve(K: float, state) -> bool:
        sc.u[:], sc.alpha, sc.kI = state[0], state[1], K
        try:
            with _matscipy_quietly():
                sc.update_atoms()
                sc.optimize(ftol=1e-4, steps=20, method="krylov")
        except RuntimeError:
            return False
        return abs(sc.alpha - state[1]) < 0.5                    # still on the branch it started on

    start = time.perf_counter()
    assert solve(crack.K_G, (np.zeros_like(sc.u), float(curve.alpha[stable]))), "no stable equilibrium at K_G"
    base = (sc.u.copy(), float(sc.alpha))
    print(f"independent: stable equilibrium at K_G, alpha = {base[1]:+.4f} Å", flush=True)
    out = {"alpha_at_K_G": base[1]}
    for name, sign in (("K_plus", 1.0), ("K_minus", -1.0)):
        good_K, good, step = crack.K_G, base, 0.02 * crack.K_G
        while step >= 0.0025 * crack.K_G - 1e-12:
            K = good_K + sign * step
            if solve(K, good):
                good_K, good = K, (sc.u.copy(), float(sc.alpha))
            else:
                step /= 2
            print(f"  {name}: K = {K / crack.K_G:.4f} K_G {'ok' if good_K == K else 'no equilibrium'}", flush=True)
        out[f"{name}_over_KG_bracket"] = sorted([good_K / crack.K_G, (good_K + sign * 2 * step) / crack.K_G])
    out["seconds"] = time.perf_counter() - start
    # the folds of the branch the check started on (the curve may have others, e.g. behind the start)
    ours = {"K_plus": curve.K[high] / curve.K_G, "K_minus": curve.K[low] / curve.K_G}
    for name in ("K_plus", "K_minus"):
        lo, hi = out[f"{name}_over_KG_bracket"]
        mid = (lo + hi) / 2
        out[f"{name}_over_KG_ours"] = ours[name]
        out[f"{name}_relative_difference"] = abs(ours[name] - mid) / mid
    print(json.dumps(out, indent=1), flush=True)
    return out


def update_json(path: Path, update) -> None:
    """Read ``path`` now, apply ``update`` to its dict, write it back (runs for other radii may
    write it in between)."""
    results = json.loads(path.read_text()) if path.is_file() else {}
    results.update({"what": __doc__.splitlines()[0], "cpu": platform.processor() or platform.machine()})
    update(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")


def read_curve(path: Path):
    import h5py

    from multiscale.atomistic.trapping import TrappingCurve
    with h5py.File(path, "r") as f:
        return TrappingCurve.read(f["trapping"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--potential", default="sw")
    parser.add_argument("--radii", type=float, nargs="+", default=[20.0, 30.0, 40.0])
    parser.add_argument("--length", type=float, default=4.0)
    parser.add_argument("--back", type=float, default=1.0)
    parser.add_argument("--check", action="store_true", help="the independent matscipy run at the first radius")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.check:
        if args.potential != "sw":
            sys.exit("--check compares native SW with matscipy's own SW: use --potential sw")
        radius = args.radii[0]
        path = CURVES / f"sw_R{radius:g}.h5"
        if not path.is_file():
            sys.exit(f"--check needs the curve at R = {radius:g} Å: run benchmarks/trapping.py --radii {radius:g}")
        out = independent_check(radius, read_curve(path))
        update_json(args.json, lambda r: r.setdefault("independent", {}).update({f"R={radius:g}": out}))
        return 0
    for radius in args.radii:
        row, _ = run_radius(args.potential, radius, args.length, args.back)
        update_json(args.json, lambda r: r.setdefault("curves", {}).update({f"{args.potential} R={radius:g}": row}))
    # every curve of this potential traced so far; the smallest radius's folds marked (the
    # radius --check validates)
    saved = {c.radius: c for c in map(read_curve, sorted(CURVES.glob(f"{args.potential}_R*.h5")))}
    if saved:
        smallest, *rest = sorted(saved)
        FIGURES.mkdir(parents=True, exist_ok=True)
        saved[smallest].plot(FIGURES / f"trapping_{args.potential}.png",
                             {f"R = {r:g} Å": saved[r] for r in rest})
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
