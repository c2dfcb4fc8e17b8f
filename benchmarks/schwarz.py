"""Atomistic feedback into a finite-element specimen (multiscale.coupling.schwarz): the coupled
specimen's compliance before and after the atoms' crack advances, against FE specimens with
longer cracks, and what a Schwarz iteration costs.

A SENT specimen (anisotropic FE: the potential's cubic constants in the crack frame) with a
native-SW region at its tip; the disc of ``--hole`` Å is the atoms'.  Protocol:

1. remote stress sigma_0 with K_I(a) = ``--load`` K_G (from the isotropic E'-matched FE): converged
   Schwarz, compliance C_0; alpha_0 = the crack extension at which the FE specimen has C_0
   (the atoms' tip offset and near-tip nonlinearity, as a crack length);
2. K raised in steps of ``--step`` K_G until the atoms' crack advances: the iteration stops as
   soon as a bond column breaks (under load control the crack would run through the region);
3. unloaded to sigma_1 with K_I(a + da) = ``--load`` K_G (below the fresh tip's K+, above K-):
   compliance C_1, against the FE specimen with its crack longer by da (and by da + alpha_0).

Also timed: one Schwarz iteration against one fixed-boundary relaxation of the same region
(the shell from the FE specimen without atoms).  Writes benchmarks/results/schwarz.json and
docs/figures/schwarz_sw.png.

    .venv/bin/python benchmarks/schwarz.py [--radius 40] [--hole 24] [--tol 1e-4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--radius", type=float, default=40.0)
    p.add_argument("--hole", type=float, default=24.0)
    p.add_argument("--width", type=float, default=200.0)
    p.add_argument("--height", type=float, default=200.0)
    p.add_argument("--crack", type=float, default=80.0)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--step", type=float, default=0.1)
    p.add_argument("--load", type=float, default=0.8, help="K_I/K_G at which both compliances are compared")
    p.add_argument("--verbose", action="store_true", help="every Schwarz iteration")
    p.add_argument("--json", type=Path, default=HERE / "results" / "schwarz.json")
    p.add_argument("--figure", type=Path, default=HERE.parent / "docs" / "figures" / "schwarz_sw.png")
    args = p.parse_args()
    out, increments = measure(args.radius, args.hole, args.width, args.height, args.crack, args.tol, args.step,
                              args.load, log=print if args.verbose else None, echo=print)
    out |= {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "command": "python benchmarks/schwarz.py " + " ".join(sys.argv[1:])}
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    C0, C1, da, alpha0 = out["compliance_before"], out["compliance_after"], out["advance"], out["alpha0"]
    print(f"before: C = {C0:.4f} A/GPa = FE with the crack {alpha0:+.2f} A longer (FE(a) = {out['compliance_fe_a']:.4f})")
    print(f"after an advance of {da:.2f} A: C = {C1:.4f}; FE(a + da) = {out['compliance_fe_a_plus_da']:.4f} "
          f"({out['after_vs_fe_da_percent']:+.2f} %), FE(a + da + alpha0) = "
          f"{out['compliance_fe_a_plus_da_plus_alpha0']:.4f} ({out['after_vs_fe_da_alpha0_percent']:+.2f} %)")
    print(f"a Schwarz iteration: {out['schwarz_iteration_s']:.3f} s = {out['iteration_over_fixed']:.2f} of one "
          f"fixed-boundary relaxation ({out['fixed_relaxation_s']:.3f} s)")
    plot(args.figure, out["increments"], increments, out["fe_curve"], alpha0, da)


def measure(radius=40.0, hole=24.0, width=200.0, height=200.0, crack=80.0, tol=1e-4, step=0.1, load=0.8,
            log=None, echo=lambda *a, **k: None) -> tuple[dict, list]:
    """The protocol of the module doc; the results dict and the SchwarzIncrement of every load."""
    from multiscale.engines.lammps import _load_mpich
    _load_mpich()
    from mpi4py import MPI

    from multiscale.atomistic.region import CrackRegion
    from multiscale.continuum.boundary import LEFMContinuum, isotropic_equivalent, plane_strain_stiffness
    from multiscale.continuum.fem import solve
    from multiscale.continuum.specimen import Specimen
    from multiscale.coupling.schwarz import SchwarzCoupling
    from multiscale.reference.material import material

    mat = material("sw", MPI.COMM_SELF, None, log=lambda *a, **k: None)
    E, nu = isotropic_equivalent(mat)
    k_g = LEFMContinuum(mat).k_g
    iso = Specimen("sent", width, height, crack, 0.0, 1.0, E, nu)
    specimen = replace(iso, stiffness_matrix=plane_strain_stiffness(mat))

    def k_per_stress(extension: float) -> float:
        return float(solve(replace(iso, crack_length=crack + extension), tip_size=1.0).k1[0])

    extensions = np.arange(0.0, radius + 10.0, 1.0)
    fe = np.array([solve(replace(specimen, crack_length=crack + s), tip_size=1.0).compliance
                   for s in extensions])                                     # Å/GPa, monotone in s
    crack_for = lambda c: float(np.interp(c, fe, extensions))               # noqa: E731
    fe_at = lambda s: float(np.interp(s, extensions, fe))                   # noqa: E731

    region = CrackRegion({"potential": "sw", "radius": radius, "boundary": 8.0, "fmax": 1e-5,
                          "max_iterations": 20000}, MPI.COMM_SELF, tempfile.mkdtemp(prefix="schwarz_"),
                         log=lambda *a: None, material=mat)
    coupling = SchwarzCoupling(specimen, hole, region.boundary_reference, region.reference[:, :2],
                               tol=tol, max_iterations=80)
    rows, increments = [], []
    counter = iter(range(10 ** 6))

    def converge(k_nominal: float, stress: float, x0, stop_at_tip: float = np.inf):
        t0 = time.perf_counter()
        inc = coupling.increment(lambda u: region.relax(u, next(counter)), stress, x0, log=log,
                                 stop_at_tip=stop_at_tip)
        seconds = time.perf_counter() - t0
        C, tip = inc.solution.compliance, float(inc.result["tip"][0])
        rows.append({"K_nominal": k_nominal, "stress": stress, "displacement": C * stress, "compliance": C,
                     "tip": tip, "iterations": inc.iterations, "residual": inc.residuals[-1],
                     "force_residual": inc.force_residuals[-1], "converged": inc.converged, "seconds": seconds})
        increments.append(inc)
        echo(f"K {k_nominal:.2f} K_G (sigma {stress:.3f} GPa): {inc.iterations} iterations ({seconds:.1f} s), shell "
              f"change {inc.residuals[-1]:.1e} A, interface force change {inc.force_residuals[-1]:.1e}, tip "
              f"{tip:+.2f} A, C = {C:.4f} A/GPa (FE: crack +{crack_for(C):.2f} A)", flush=True)
        return inc

    # the fixed-boundary baseline: one relaxation from the FE specimen's own shell displacements
    stress0 = load * k_g / k_per_stress(0.0)
    x_fe = coupling.continuum_only(stress0)
    region.relax(x_fe, next(counter))                        # opens the crack
    t0 = time.perf_counter()
    region.relax(x_fe * 1.001, next(counter))
    fixed_seconds = time.perf_counter() - t0

    first = converge(load, stress0, x_fe)
    C0, alpha0 = first.solution.compliance, crack_for(first.solution.compliance)
    x, stress, k = first.x, stress0, load
    while rows[-1]["tip"] < 3.0 and k < 3.0:      # until the first bond column breaks
        k = round(k + step, 10)
        new = k * k_g / k_per_stress(0.0)
        x, stress = converge(k, new, x * new / stress, stop_at_tip=3.0).x, new
    advance = rows[-1]["tip"]           # unload at once: under load control the crack would run on
    stress1 = load * k_g / k_per_stress(advance)
    region.scale_displacements(stress1 / stress)            # the interior unloads with the shell
    after = converge(load, stress1, x * stress1 / stress)
    C1, da = after.solution.compliance, float(after.result["tip"][0])
    fe_da, fe_da_alpha = fe_at(da), fe_at(da + alpha0)
    iteration_seconds = sum(r["seconds"] for r in rows) / sum(r["iterations"] for r in rows)
    out = {
        "specimen": {"width": width, "height": height, "crack_length": crack},
        "radius": radius, "hole": hole, "n_atoms": region.n_atoms, "tol": tol, "K_G": k_g, "load": load,
        "compliance_fe_a": fe_at(0.0), "compliance_before": C0, "alpha0": alpha0,
        "advance": da, "compliance_after": C1, "compliance_fe_a_plus_da": fe_da,
        "compliance_fe_a_plus_da_plus_alpha0": fe_da_alpha,
        "after_vs_fe_da_alpha0_percent": 100 * (C1 / fe_da_alpha - 1),
        "after_vs_fe_da_percent": 100 * (C1 / fe_da - 1),
        "fixed_relaxation_s": fixed_seconds, "schwarz_iteration_s": iteration_seconds,
        "iteration_over_fixed": iteration_seconds / fixed_seconds,
        "increments": rows, "residual_histories": [inc.residuals for inc in increments],
        "fe_curve": {"extension": extensions.tolist(), "compliance": fe.tolist()}}
    region.close()
    return out, increments


def plot(path: Path, rows, increments, fe_curve: dict, alpha0: float, da: float) -> None:
    fe_at = lambda s: float(np.interp(s, fe_curve["extension"], fe_curve["compliance"]))    # noqa: E731
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    stress = np.array([r["stress"] for r in rows])
    disp = np.array([r["displacement"] for r in rows])
    ax.plot(disp, stress, "o-", color="C3", label="coupled: FE specimen + atoms (Schwarz)")
    top = stress.max() * 1.05
    for s, label, style in ((0.0, "FE, crack a", "--"), (alpha0, f"FE, crack a + {alpha0:.1f} Å (fits before)", "-."),
                            (da + alpha0, f"FE, crack a + {alpha0:.1f} + {da:.2f} Å (the advance)", ":")):
        ax.plot([0, fe_at(s) * top], [0, top], style, color="k" if s == 0 else "C0", lw=1, label=label)
    ax.annotate("advance, unload", (disp[-1], stress[-1]), fontsize=7, xytext=(5, -10), textcoords="offset points")
    ax.set_xlabel("load-line displacement (Å)")
    ax.set_ylabel("remote stress (GPa)")
    ax.set_title("load-displacement with atomistic feedback")
    ax.legend(fontsize=7)
    for j, inc in enumerate(increments):
        bx.semilogy(range(1, len(inc.residuals) + 1), inc.residuals, "-", lw=1,
                    label=f"K {rows[j]['K_nominal']:.1f} K_G{' (advanced)' if rows[j]['tip'] > 3 else ''}")
    bx.set_xlabel("Schwarz iteration")
    bx.set_ylabel("largest shell-displacement change (Å)")
    bx.set_title("convergence (Anderson-mixed)")
    bx.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
