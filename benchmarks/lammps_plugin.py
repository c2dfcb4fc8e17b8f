"""Benchmarks of pair_style multiscale, each figure a ratio measured in this one run.

(a) overhead: time per MD step through LAMMPS vs the bare TorchScript call
    (forward + backward) on the same nodes and edges the plugin builds, and the same for the
    model compiled to a .pt2;
(b) plugin with the reference LJ and SW models vs LAMMPS' native lj/cut and sw;
(c) time per atom-step from 1k to 64k atoms;
(d) 2 MPI ranks vs 1.

    .venv/bin/python benchmarks/lammps_plugin.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import multiscale
from multiscale.engines.lammps import pair_lines
from multiscale.potentials import LennardJones, MessagePassingPotential, StillingerWeber

BIN = Path(sys.executable).parent
LOOP = re.compile(r"Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps with (\d+) atoms")


def lmp_seconds_per_step(lines: list[str], steps: int, ranks: int, workdir: Path) -> tuple[float, int]:
    """Run an input through `mpiexec -n ranks multiscale lmp`; (seconds per step, atoms)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "in.lmp").write_text("\n".join(lines + [f"run {steps}"]) + "\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(BIN / "mpiexec"), "-n", str(ranks), str(BIN / "multiscale"), "lmp",
                           "-in", "in.lmp", "-log", "none", "-nocite"],
                          cwd=workdir, capture_output=True, text=True, env=env)
    found = LOOP.findall(proc.stdout)
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"LAMMPS failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    seconds, _, nsteps, natoms = found[-1]
    return float(seconds) / int(nsteps), int(natoms)


def crystal(kind: str, cells: int, pair_lines: list[str]) -> list[str]:
    lattice = {"si": "diamond 5.431", "ar": "fcc 5.26"}[kind]
    return ["units metal", "atom_style atomic", f"lattice {lattice}",
            f"region box block 0 {cells} 0 {cells} 0 {cells}", "create_box 1 box",
            "create_atoms 1 box", "mass 1 28.0", *pair_lines,
            "velocity all create 600.0 4928459 mom yes rot yes", "fix nve all nve",
            "timestep 0.001", "thermo 1000", "run 5"]


def overhead(model_file: Path, cells: int, steps: int, rounds: int = 9) -> dict:
    """(a) LAMMPS step time vs the bare model call on the plugin's own graph, one rank.

    The model has random weights, so MD with it heats and disorders the crystal and the
    number of edges within the cutoff keeps changing; the comparison is therefore made on a
    perfect crystal at rest (forces vanish by symmetry, nothing moves): every LAMMPS step
    is a full force call on exactly the graph the bare call gets."""
    import torch
    import vesin

    from multiscale.engines.lammps import new_lammps
    lmp = new_lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    lines = [c for c in crystal("si", cells, [f"pair_style multiscale {model_file}", "pair_coeff * * Si"])
             if not c.startswith("velocity")]
    lmp.commands_list(lines)
    model = multiscale.load(model_file)
    nl = vesin.NeighborList(cutoff=model.metadata.cutoff, full_list=True)

    def graph():
        # the graph the plugin builds: local nodes first, edges centred on every atom (hops > 1)
        nlocal, nghost = lmp.extract_global("nlocal"), lmp.extract_global("nghost")
        x = np.array(lmp.numpy.extract_atom("x", nelem=nlocal + nghost))[:, :3].copy()
        box = np.eye(3) * (np.ptp(x, axis=0).max() + 10.0)
        i, j = nl.compute(points=x, box=box, periodic=False, quantities="ij")
        return (torch.zeros(len(x), dtype=torch.long), torch.from_numpy(np.stack([i, j]).astype(np.int64)),
                torch.from_numpy(x[j] - x[i]), nlocal, nghost)

    def bare(g):
        species, edge_index, vectors, nlocal, _ = g
        v = vectors.clone().requires_grad_(True)
        e = model.module(species, edge_index, v, nlocal, 0.0, 1)["energies"].sum()
        torch.autograd.grad(e, v)

    g = graph()
    for _ in range(3):
        bare(g)
    # alternate the two measurements, so machine noise hits both alike
    t_bare, t_step, edges = [], [], []
    for _ in range(rounds):
        g = graph()
        edges.append(g[1].shape[1])
        start = time.perf_counter()
        for _ in range(steps):
            bare(g)
        t_bare.append((time.perf_counter() - start) / steps)
        start = time.perf_counter()
        lmp.command(f"run {steps} pre no post no")  # no setup: exactly `steps` force calls
        t_step.append((time.perf_counter() - start) / steps)
    nlocal, nghost = g[3], g[4]
    lmp.close()
    # each round's own ratio (the two halves of a round see the same machine), then the median
    ratios = sorted(b / s for b, s in zip(t_bare, t_step))
    return {"atoms": nlocal, "ghost_nodes": nghost, "edges": [min(edges), max(edges)], "rounds": rounds,
            "ms_per_step": 1e3 * min(t_step), "ms_bare_call": 1e3 * min(t_bare),
            "overhead_fraction": 1.0 - ratios[len(ratios) // 2],
            "overhead_fraction_of_minima": 1.0 - min(t_bare) / min(t_step),
            "overhead_fraction_range": [1.0 - ratios[-1], 1.0 - ratios[0]]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes and few steps (CI smoke run)")
    p.add_argument("--json", default="benchmarks/results/lammps_plugin.json")
    p.add_argument("--parts", default="abcd", help="which of (a)-(d) to run, e.g. 'a'; the others "
                   "keep their figures from the existing --json file")
    args = p.parse_args()
    quick = args.quick
    out = Path(args.json)
    results: dict = json.loads(out.read_text()) if out.is_file() and args.parts != "abcd" else {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sw = multiscale.export(StillingerWeber("Si.sw", ["Si"]), tmp / "sw.pt")
        lj = multiscale.export(LennardJones(["Ar"], 0.0104, 3.405, 8.0), tmp / "lj.pt")
        mp = multiscale.export(MessagePassingPotential(["Si"], cutoff=3.6, hops=2, features=32),
                               tmp / "mp.pt")

        if "a" in args.parts:
            print("(a) overhead of the plugin around the model call, 2-hop message passing, 1 rank",
                  flush=True)
            results["overhead"] = overhead(mp, 4 if quick else 8, 5 if quick else 10)
            print(f"    {results['overhead']}", flush=True)
            print("(a) the same with the model compiled to a .pt2 (one package call, backward inside)", flush=True)
            mp2 = multiscale.export(MessagePassingPotential(["Si"], cutoff=3.6, hops=2, features=32),
                                    tmp / "mp.pt2")
            results["overhead_compiled"] = overhead(mp2, 4 if quick else 8, 5 if quick else 10)
            print(f"    {results['overhead_compiled']}", flush=True)

        pairs = {
            "lj": ("ar", [f"pair_style multiscale {lj}", "pair_coeff * * Ar"],
                   ["pair_style lj/cut 8.0", "pair_coeff * * 0.0104 3.405"]),
            "sw": ("si", [f"pair_style multiscale {sw}", "pair_coeff * * Si"],
                   pair_lines("sw")[0]),
        }
        if "b" in args.parts:
            print("(b) plugin vs native LAMMPS (time per step ratio)", flush=True)
            sizes = {"lj": [10, 20], "sw": [8, 16]}  # 4,000 and 32,000 / 4,096 and 32,768 atoms
            results["vs_native"] = []
            for name, (kind, ours, native) in pairs.items():
                for cells in sizes[name][: 1 if quick else 2]:
                    steps = 10 if quick else max(5, 200 // cells)
                    t_ours, n = lmp_seconds_per_step(crystal(kind, cells, ours), steps, 1, tmp / "b")
                    t_nat, _ = lmp_seconds_per_step(crystal(kind, cells, native), steps, 1, tmp / "b")
                    row = {"model": name, "atoms": n, "ms_per_step_plugin": 1e3 * t_ours,
                           "ms_per_step_native": 1e3 * t_nat, "ratio": t_ours / t_nat}
                    results["vs_native"].append(row)
                    print(f"    {row}", flush=True)

        if "c" in args.parts:
            print("(c) time per atom-step, SW model through the plugin", flush=True)
            results["scaling"] = []
            for cells in ([4, 6] if quick else [5, 8, 11, 16, 20]):  # 1,000 to 64,000 atoms
                steps = 10 if quick else max(5, 400 // cells)
                t, n = lmp_seconds_per_step(crystal("si", cells, pairs["sw"][1]), steps, 1, tmp / "c")
                row = {"atoms": n, "us_per_atom_step": 1e6 * t / n}
                results["scaling"].append(row)
                print(f"    {row}", flush=True)

        if "d" in args.parts:
            print("(d) 2 ranks vs 1, SW model, 32k atoms", flush=True)
            cells = 6 if quick else 16
            t1, n = lmp_seconds_per_step(crystal("si", cells, pairs["sw"][1]), 10, 1, tmp / "d")
            t2, _ = lmp_seconds_per_step(crystal("si", cells, pairs["sw"][1]), 10, 2, tmp / "d")
            results["ranks"] = {"atoms": n, "ms_per_step_1": 1e3 * t1, "ms_per_step_2": 1e3 * t2,
                                "speedup": t1 / t2}
            print(f"    {results['ranks']}", flush=True)

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
