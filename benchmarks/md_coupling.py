"""What coupling an MD crack region costs per exchange (`[run] mode = "md"`).

1. Region side, one process, one rank (medians of interleaved calls): one exchange of a
   ThermalCrackRegion (``exchange_every`` MD steps with the rank-independent Langevin layer
   through fix external, the shell moving, the tip from averaged positions, gathers) against
   the same steps of plain LAMMPS on the same atoms with LAMMPS' own ``fix langevin`` on the
   layer, and with no thermostat (NVE).
2. The whole coupled run (``mpiexec -n 2``: continuum rank + region rank) for ``--exchanges``
   exchanges: the mean wall time of an exchange, its LAMMPS part, the continuum model's part and
   the rest (messages, the region's Python), from results.h5.

Writes benchmarks/results/md_coupling.json.

    .venv/bin/python benchmarks/md_coupling.py [--radius 60] [--exchange-every 50] [--exchanges 100] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(HERE))

CONFIG = """
[run]
output = "{output}"
mode = "md"
max_increments = {exchanges}
checkpoint_every = 0
[loading]
k_start = 1.0
k_max = 1.0
[md]
exchange_every = {every}
k_rate = 0.0
[atomistic]
potential = "sw"
radius = {radius}
[[region]]
name = "tip"
"""


def region_side(radius: float, every: int, rounds: int) -> dict:
    from mpi4py import MPI

    from multiscale.atomistic.thermal import ThermalCrackRegion
    from multiscale.coupling.continuum import build_continuum
    from multiscale.reference.material import material
    from timing import interleaved_medians

    mat = material("sw", MPI.COMM_SELF, None, log=lambda *a, **k: None)
    model = build_continuum("lefm", mat)
    folder = Path(tempfile.mkdtemp(prefix="md_bench_"))
    regions = [ThermalCrackRegion({"potential": "sw", "radius": radius}, MPI.COMM_SELF, folder / str(j),
                                  log=lambda *a: None, material=mat, md={"exchange_every": every})
               for j in range(3)]
    u = model.boundary_displacements(regions[0].boundary_reference, model.k_g, np.zeros(2))
    for r in regions:
        r.advance(u, 0)                                  # relaxed at K_G, MD fixes on
    ours, native, nve = regions
    native.lmp.commands_list(["unfix md_bath", f"fix native layer langevin 300.0 300.0 0.1 {native.seed}"])
    nve.lmp.command("unfix md_bath")
    counter = iter(range(1, 10 ** 6))
    medians = interleaved_medians({
        "exchange": lambda: ours.advance(u, next(counter)),
        "lammps_langevin": lambda: native.lmp.command(f"run {every} post no"),
        "lammps_nve": lambda: nve.lmp.command(f"run {every} post no")}, rounds=rounds)
    out = {"n_atoms": ours.n_atoms, "layer_atoms": len(ours.layer), "steps": every,
           **{f"{k}_s": v for k, v in medians.items()},
           "exchange_over_lammps_langevin": medians["exchange"] / medians["lammps_langevin"],
           "lammps_langevin_over_nve": medians["lammps_langevin"] / medians["lammps_nve"]}
    for r in regions:
        r.close()
    shutil.rmtree(folder, ignore_errors=True)
    return out


def coupled(radius: float, every: int, exchanges: int) -> dict:
    import h5py
    folder = Path(tempfile.mkdtemp(prefix="md_bench_run_"))
    config = folder / "md.toml"
    config.write_text(CONFIG.format(output=folder / "out", exchanges=exchanges, every=every, radius=radius))
    mpiexec = shutil.which("mpiexec", path=str(BIN)) or "mpiexec"
    t0 = time.perf_counter()
    proc = subprocess.run([mpiexec, "-n", "2", str(BIN / "multiscale"), "run", str(config)], capture_output=True,
                          text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"the coupled run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    with h5py.File(folder / "out" / "results.h5") as f:
        h = {c: f["regions/tip/history"][c][()][1:] for c in f["regions/tip/history"]}   # MD exchanges only
    shutil.rmtree(folder, ignore_errors=True)
    increment, lammps = h["seconds_increment"], h["seconds_lammps"]
    return {"exchanges": exchanges - 1, "wall_s": wall, "exchange_s_mean": float(increment.mean()),
            "lammps_s_mean": float(lammps.mean()), "continuum_s_mean": float(h["seconds_continuum"].mean()),
            "coupling_s_mean": float(h["seconds_coupling"].mean()),
            "overhead_fraction_mean": float(((increment - lammps) / increment).mean())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--radius", type=float, default=60.0)
    p.add_argument("--exchange-every", type=int, default=50)
    p.add_argument("--exchanges", type=int, default=100)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--json", type=Path, default=HERE / "results" / "md_coupling.json")
    args = p.parse_args()
    from multiscale.engines.lammps import _load_mpich
    _load_mpich()
    side = region_side(args.radius, args.exchange_every, args.rounds)
    print(f"region side, {side['n_atoms']} atoms, {side['steps']} steps: exchange {side['exchange_s']:.4f} s, "
          f"LAMMPS fix langevin {side['lammps_langevin_s']:.4f} s, NVE {side['lammps_nve_s']:.4f} s: "
          f"x{side['exchange_over_lammps_langevin']:.2f} of LAMMPS' own Langevin MD", flush=True)
    run = coupled(args.radius, args.exchange_every, args.exchanges)
    print(f"coupled run (mpiexec -n 2), {run['exchanges']} exchanges: {run['exchange_s_mean']:.4f} s each, LAMMPS "
          f"{run['lammps_s_mean']:.4f} s, continuum {run['continuum_s_mean']:.4f} s, the rest "
          f"{run['coupling_s_mean']:.4f} s: overhead {100 * run['overhead_fraction_mean']:.1f} % of an exchange")
    out = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
           "radius": args.radius, "region_side": side, "coupled": run,
           "command": "python benchmarks/md_coupling.py " + " ".join(sys.argv[1:])}
    args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
