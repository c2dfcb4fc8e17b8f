"""The attention models' speed, each figure a ratio measured in this one run.

(a) LAMMPS, one rank, 4,096-atom diamond silicon at 600 K, NVE: µs per atom-step of the
    shipped si-attention (3 hops at 5.0 Å), an untrained transformer of its size at 4.2 Å
    (the cost does not depend on the weights), the shipped si-ani (ANI ensemble of 2) and a
    two-hop message-passing model (cutoff 3.6 Å, 32 features, untrained), with native ``sw``
    for scale;
(b) OpenMM (CPU platform, TorchForce), a periodic TIP3P water box (about 300 atoms): µs per
    atom-step of the shipped et-chno and aimnet-chno;
(c) our EquivariantTransformer against torchmd-net 3.1.0's TorchMD_ET with the same weights
    and et-chno's size, forward + forces on the water box's atoms as one cluster, each with its
    own neighbour list (ours: vesin; theirs: its OptimizedDistance), interleaved, medians;
(d) NVE energy conservation (ASE's velocity Verlet, the same model files and forces as
    LAMMPS): the shipped si-attention and si-ani on the same 216-atom diamond crystal,
    velocities drawn at 1200 K (about 600 K once shared with the potential energy), 1000 steps
    of 1 fs: the largest |E_total - E_total(0)| per atom, the slope of a linear fit to E_total
    (meV/atom/ps) and the potential energy's range per atom (what the dynamics moves).

    .venv/bin/python benchmarks/attention_models.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import multiscale
from multiscale.engines.lammps import pair_lines
from multiscale.model.registry import model_path
from multiscale.potentials import MessagePassingPotential

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lammps_plugin import crystal, lmp_seconds_per_step  # noqa: E402
from openmm_force import Row, measure, ours_row, water_box  # noqa: E402
from timing import interleaved_medians  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "attention_models.json"


def si_attention_sized(cutoff: float, path: Path) -> Path:
    """An untrained equivariant transformer with si-attention's configuration at ``cutoff``."""
    import tomllib
    from multiscale.learning.silicon_model import CONFIGS
    from multiscale.potentials import EquivariantTransformer
    m = tomllib.loads(CONFIGS["si-attention"].read_text())["model"]
    model = EquivariantTransformer(m["elements"], cutoff=cutoff, layers=m["layers"], features=m["features"],
                                   heads=m["heads"], n_rbf=m["n_rbf"], repulsion=m["repulsion"]).double()
    return multiscale.export(model, path)


def lammps_rows(cells: int, steps: int, tmp: Path) -> list[dict]:
    mp = multiscale.export(MessagePassingPotential(["Si"], cutoff=3.6, hops=2, features=32), tmp / "mp.pt")
    models = {"si-attention": model_path("si-attention"),
              "transformer, si-attention's size, 4.2 Å": si_attention_sized(4.2, tmp / "et42.pt"),
              "si-ani": model_path("si-ani"), "message-passing (2 hops, 32 features)": mp}
    rows = []
    for name, path in models.items():
        module = multiscale.load(path)
        lines = crystal("si", cells, pair_lines(path)[0])
        n_steps = steps
        if module.metadata.hops >= 3:   # ~1 min per step at 4k atoms: one warm-up step, two timed
            lines, n_steps = ["run 1" if c == "run 5" else c for c in lines], 2
        t, n = lmp_seconds_per_step(lines, n_steps, 1, tmp / "a")
        rows.append({"model": name, "atoms": n, "steps": n_steps, "hops": module.metadata.hops,
                     "cutoff_A": module.metadata.cutoff,
                     "parameters": sum(p.numel() for p in module.module.parameters()),
                     "us_per_atom_step": 1e6 * t / n})
        print(f"    {rows[-1]}", flush=True)
    t, n = lmp_seconds_per_step(crystal("si", cells, pair_lines("sw")[0]), 10 * steps, 1, tmp / "a")
    rows.append({"model": "native sw", "atoms": n, "us_per_atom_step": 1e6 * t / n})
    base = next(r["us_per_atom_step"] for r in rows if r["model"] == "si-ani")
    for r in rows:
        r["relative_to_si_ani"] = r["us_per_atom_step"] / base
    return rows


def openmm_rows(box_nm: float, rounds: int, threads: int = 2) -> list[dict]:
    topology, positions = water_box(box_nm)
    rows = [ours_row(name, model_path(name), topology, positions, threads,
                     sum(p.numel() for p in multiscale.load(model_path(name)).module.parameters()))
            for name in ("et-chno", "aimnet-chno")]
    measure(rows, rounds)
    n = len(positions)
    out = []
    for row in rows:
        r = row.result()
        out.append({"model": r["model"], "atoms": n, "parameters": r["parameters"],
                    "us_per_atom_step": 1e6 / r["steps_per_s"] / n, "overhead": r["overhead"]})
        print(f"    {out[-1]}", flush=True)
    return out


def against_torchmdnet(box_nm: float, rounds: int) -> dict:
    from torchmdnet.models.output_modules import Scalar
    from torchmdnet.models.torchmd_et import TorchMD_ET
    from multiscale.engines.neighbors import edges
    from multiscale.potentials import from_torchmdnet

    import tomllib
    from multiscale.learning.et_chno import CONFIG
    et = tomllib.loads(CONFIG.read_text())["model"]          # et-chno's size
    size = dict(hidden_channels=et["features"], num_layers=et["layers"], num_heads=et["heads"],
                num_rbf=et["n_rbf"], cutoff_upper=et["cutoff"])
    _, positions = water_box(box_nm)
    x = torch.tensor(positions * 10.0)                           # Å
    n = len(x)
    numbers = torch.tensor([8 if k % 3 == 0 else 1 for k in range(n)])   # O H H per TIP3P water
    torch.manual_seed(0)
    theirs = TorchMD_ET(**size, max_z=10, vector_cutoff=True, max_num_neighbors=64, dtype=torch.float64)
    head = Scalar(size["hidden_channels"], dtype=torch.float64)
    ours = from_torchmdnet(theirs, head, ["H", "O"], [1, 8])
    species = (numbers == 8).long()
    batch = torch.zeros(n, dtype=torch.long)

    def call_theirs():
        p = x.clone().requires_grad_(True)
        h, v, z, pos, b = theirs(numbers, p, batch)
        e = head.pre_reduce(h, v, z, pos, b).sum()
        return e, torch.autograd.grad(e, p)[0]

    def call_ours():
        index, vectors = edges(x.numpy(), np.zeros((3, 3)), [False] * 3, et["cutoff"])
        v = vectors.clone().requires_grad_(True)
        e = ours(species, index, v, n)["energies"].sum()
        g = torch.autograd.grad(e, v)[0]
        forces = torch.zeros_like(x).index_add_(0, index[0], g).index_add_(0, index[1], -g)
        return e, forces

    (e1, f1), (e2, f2) = call_theirs(), call_ours()
    agreement = float((f1 + f2).abs().max() / f1.abs().max())   # theirs is a gradient, ours forces
    med = interleaved_medians({"ours": call_ours, "torchmd-net": call_theirs}, rounds, warmup=3)
    out = {"atoms": n, **size, "energy_difference_eV": float(abs(e1 - e2)), "force_max_relative_difference": agreement,
           "ms_ours": 1e3 * med["ours"], "ms_torchmdnet": 1e3 * med["torchmd-net"],
           "speedup": med["torchmd-net"] / med["ours"]}
    print(f"    {out}", flush=True)
    return out


def nve_drift(steps: int, cells: int = 3) -> list[dict]:
    """(d) in ASE: the graph of the periodic cell itself, no ghost atoms (in LAMMPS a 216-atom
    box needs si-attention's 15 Å ghost shell, about 6,000 atoms per step)."""
    from ase import units
    from ase.build import bulk
    from ase.md.velocitydistribution import Stationary, thermalize_momenta
    from ase.md.verlet import VelocityVerlet
    rows = []
    for name in ("si-attention", "si-ani"):
        atoms = bulk("Si", "diamond", a=5.431, cubic=True).repeat(cells)
        thermalize_momenta(atoms, temperature_K=1200, rng=np.random.default_rng(0))
        Stationary(atoms)
        atoms.calc = multiscale.MultiscaleCalculator(name)
        total, pe = [], []
        dyn = VelocityVerlet(atoms, 1.0 * units.fs)
        dyn.attach(lambda: (total.append(atoms.get_total_energy()), pe.append(atoms.get_potential_energy())),
                   interval=10)
        start = time.perf_counter()
        dyn.run(steps)
        seconds = (time.perf_counter() - start) / steps
        n = len(atoms)
        total, pe = np.array(total) / n, np.array(pe) / n
        t_ps = 1e-3 * 10 * np.arange(len(total))
        rows.append({"model": name, "atoms": n, "steps": steps, "timestep_fs": 1.0,
                     "max_drift_meV_per_atom": 1e3 * float(np.abs(total - total[0]).max()),
                     "slope_meV_per_atom_ps": 1e3 * float(np.polyfit(t_ps, total, 1)[0]),
                     "pe_range_meV_per_atom": 1e3 * float(np.ptp(pe)),
                     "seconds_per_step": seconds})
        print(f"    {rows[-1]}", flush=True)
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes and few steps (smoke run)")
    p.add_argument("--json", default=str(RESULTS))
    args = p.parse_args()
    torch.set_num_threads(2)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        print("(a) LAMMPS, 1 rank, diamond silicon", flush=True)
        results["lammps"] = lammps_rows(4 if args.quick else 8, 3 if args.quick else 10, Path(tmp))
    print("(b) OpenMM CPU platform, TIP3P water box", flush=True)
    results["openmm"] = openmm_rows(1.0 if args.quick else 1.45, 5 if args.quick else 30)
    print("(c) ours vs torchmd-net's ET, same weights, water cluster", flush=True)
    results["torchmdnet"] = against_torchmdnet(1.0 if args.quick else 1.45, 5 if args.quick else 30)
    print("(d) NVE energy conservation, 216 atoms, ASE", flush=True)
    results["nve"] = nve_drift(100 if args.quick else 1000)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
