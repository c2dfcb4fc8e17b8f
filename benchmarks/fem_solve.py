"""Finite-element crack models: K_I against Tada's handbook, mesh convergence, solve time.

    .venv/bin/python benchmarks/fem_solve.py [--quick] [--json PATH] [--figure PATH]

Prints a markdown table (FE K_I vs handbook for several a/W), the solve time of a typical
specimen, and draws the tip-refinement convergence plot (default docs/figures/fem_convergence.png).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from multiscale.continuum import handbook  # noqa: E402
from multiscale.continuum.fem import solve  # noqa: E402
from multiscale.continuum.specimen import Specimen  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def table(quick: bool):
    """Rows (kind, a/W or 2a/W, H/W, K_FE, K_Tada, error, K_II/K_I, seconds, dofs)."""
    rows = []
    sent = (0.2, 0.4, 0.6) if quick else (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
    ccp = (0.2, 0.6) if quick else (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
    for kind, ratios, h_over_w in (("sent", sent, 2.0), ("ccp", ccp, 3.0)):
        for x in ratios:
            a = x if kind == "sent" else x / 2
            sp = Specimen(kind, width=1.0, height=h_over_w, crack_length=a)
            sol = solve(sp)
            ref = handbook.reference_k1(sp)
            k1 = float(sol.k1.mean())
            rows.append(dict(kind=kind, ratio=x, h_over_w=h_over_w, k1_fe=k1, k1_tada=ref,
                             error=k1 / ref - 1, k2_over_k1=float(np.abs(sol.k2).max() / k1),
                             seconds=sol.seconds, dofs=sol.n_dofs))
            print(f"  {kind} {x:.1f}: K_I {k1:.4f} vs {ref:.4f} ({100 * (k1 / ref - 1):+.2f} %), "
                  f"{sol.seconds:.2f} s, {sol.n_dofs} dofs", flush=True)
    return rows


def convergence(quick: bool):
    """K_I error of the ccp (2a/W = 0.4, H/W = 3) against Tada as tip_size = a/n shrinks."""
    sp = Specimen("ccp", width=1.0, height=3.0, crack_length=0.2)
    ref = handbook.reference_k1(sp)
    ns = (2, 8, 32) if quick else (2, 4, 8, 16, 32, 64, 128)
    out = {}
    for order in (1, 2):
        out[order] = []
        for n in ns:
            sol = solve(sp, tip_size=sp.crack_length / n, order=order)
            out[order].append(dict(n=n, error=float(np.abs(sol.k1 / ref - 1).mean()),
                                   seconds=sol.seconds, dofs=sol.n_dofs))
    return out


def timing(repeats: int):
    """Median wall time (s) of mesh + assembly + solve + K of the typical specimen."""
    sp = Specimen("sent", width=200.0, height=400.0, crack_length=80.0)   # Å
    solve(sp)   # imports and first gmsh start
    times = [solve(sp).seconds for _ in range(repeats)]
    sol = solve(sp)
    return dict(specimen="sent W=200 H=400 a=80 (Å), default mesh, P2", dofs=sol.n_dofs,
                elements=len(sol.elements), median_seconds=float(np.median(times)),
                min_seconds=float(np.min(times)))


def plot(conv, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9, 3.6))
    for order, rows in conv.items():
        n = [r["n"] for r in rows]
        ax.loglog(n, [max(r["error"], 1e-6) for r in rows], "o-", label=f"P{order}")
        bx.semilogx(n, [r["seconds"] for r in rows], "o-", label=f"P{order}")
    ax.axhline(1e-3, color="grey", lw=0.8, ls=":", label="Tada formula accuracy (0.1 %)")
    ax.set_xlabel("a / tip element size")
    ax.set_ylabel("|K_I(FE) / K_I(Tada) - 1|")
    ax.set_title("centre-cracked plate, 2a/W = 0.4, H/W = 3")
    ax.legend()
    bx.set_xlabel("a / tip element size")
    bx.set_ylabel("mesh + assembly + solve + K (s)")
    bx.set_ylim(bottom=0)
    bx.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases (smoke run)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "fem_solve.json")
    parser.add_argument("--figure", type=Path, default=ROOT / "docs" / "figures" / "fem_convergence.png")
    args = parser.parse_args()
    start = time.perf_counter()
    solve(Specimen("sent", 1.0, 2.0, 0.4))   # imports and first gmsh start, not timed below
    print("K_I against Tada:", flush=True)
    rows = table(args.quick)
    print("convergence:", flush=True)
    conv = convergence(args.quick)
    print("timing:", flush=True)
    times = timing(3 if args.quick else 10)
    plot(conv, args.figure)

    print("\n| specimen | a/W (sent), 2a/W (ccp) | H/W | K_I FE | K_I Tada | error | max abs K_II/K_I | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['kind']} | {r['ratio']:.1f} | {r['h_over_w']:.0f} | {r['k1_fe']:.4f} | "
              f"{r['k1_tada']:.4f} | {100 * r['error']:+.2f} % | {r['k2_over_k1']:.1e} | {r['seconds']:.2f} |")
    print(f"\ntiming: {times}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(dict(table=rows, convergence=conv, timing=times), indent=1))
    print(f"wrote {args.json} and {args.figure} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
