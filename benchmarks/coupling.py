"""Coupling overhead of `multiscale run` and the gain from running regions side by side.

Two crack regions (the same potential and load; default the shipped "si-ani" model) for a
few increments, launched as
  - parallel:   mpiexec -n 3 (continuum + one rank per region, both relax at the same time)
  - sequential: mpiexec -n 1 (both regions in turn on one rank)
Overhead per increment = (increment wall time - LAMMPS time - continuum model time) / increment
wall time, from results.h5 (target <= 5 %).  Writes benchmarks/results/coupling.json.

    python benchmarks/coupling.py [--potential si-ani] [--radius 25] [--increments 4] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent

CONFIG = """
[run]
output = "{output}"
max_increments = {increments}
checkpoint_every = 0
[loading]
k_start = 0.9
k_step = 0.05
k_max = 3.0
[atomistic]
potential = "{potential}"
radius = {radius}
boundary = 8.0
fmax = 1e-3
[[region]]
name = "a"
[[region]]
name = "b"
"""


def run(folder: Path, ranks: int, potential: str, radius: float, increments: int) -> dict:
    import h5py
    config = folder / f"n{ranks}.toml"
    out = folder / f"n{ranks}"
    config.write_text(CONFIG.format(output=out, potential=potential, radius=radius, increments=increments))
    mpiexec = shutil.which("mpiexec", path=str(BIN)) or "mpiexec"
    t0 = time.perf_counter()
    proc = subprocess.run([mpiexec, "-n", str(ranks), str(BIN / "multiscale"), "run", str(config)],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"mpiexec -n {ranks} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    with h5py.File(out / "results.h5") as f:
        h = {name: {c: g["history"][c][()] for c in g["history"]} for name, g in f["regions"].items()}
    # an increment's wall time is the same for every region; LAMMPS and the model are per region
    inc = h["a"]["seconds_increment"]
    lammps = np.maximum(h["a"]["seconds_lammps"], h["b"]["seconds_lammps"]) if ranks > 1 else \
        h["a"]["seconds_lammps"] + h["b"]["seconds_lammps"]
    model = h["a"]["seconds_continuum"] + h["b"]["seconds_continuum"]
    overhead = (inc - lammps - model) / inc
    return {"ranks": ranks, "increments": increments, "wall_s": wall,
            "increment_s_mean": float(inc.mean()), "lammps_s_mean": float(lammps.mean()),
            "continuum_s_mean": float(model.mean()),
            "coupling_s_mean": float(np.mean(h["a"]["seconds_coupling"])),
            "overhead_fraction_mean": float(overhead.mean()), "overhead_fraction_max": float(overhead.max()),
            "n_atoms": int(h["a"]["n_atoms"][0])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--potential", default="si-ani", help='"sw", a shipped model or a model file')
    p.add_argument("--radius", type=float, default=25.0, help="region radius, Å")
    p.add_argument("--increments", type=int, default=4)
    p.add_argument("--quick", action="store_true", help="radius 16 Å, 3 increments (smoke run)")
    p.add_argument("--json", type=Path, default=HERE / "results" / "coupling.json")
    args = p.parse_args()
    if args.quick:
        args.radius, args.increments = 16.0, 3
    with tempfile.TemporaryDirectory() as tmp:
        parallel = run(Path(tmp), 3, args.potential, args.radius, args.increments)
        sequential = run(Path(tmp), 1, args.potential, args.radius, args.increments)
    result = {"benchmark": "coupling", "cores": os.cpu_count(), "potential": args.potential,
              "radius_A": args.radius, "load_average_1min": os.getloadavg()[0],
              "parallel_n3": parallel, "sequential_n1": sequential,
              "speedup_per_increment": sequential["increment_s_mean"] / parallel["increment_s_mean"]}
    out = args.json
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
