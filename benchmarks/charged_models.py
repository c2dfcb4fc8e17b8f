"""Charge/spin-aware models (AIMNet2 class): OpenMM steps/s ours vs aimnet's calculator, LAMMPS
1 vs 2 ranks on a 2,000-atom charged box, and the cost of the global reductions.

- **OpenMM**: aimnet 0.2.0's AIMNet2 (its shipped architecture, random weights, float32) on a
  22-atom cation radical (a cluster of small molecules, Q = +1, M = 2), CPU platform, Verlet
  0.5 fs.  "ours" is ``from_aimnet2`` of the same module (same weights, same numbers) in our
  TorchForce; "aimnet (PythonForce)" is aimnet's own module (forward + autograd forces, its
  dense all-pairs mode for one molecule) called from an ``openmm.PythonForce``, the way
  openmm-ml runs AIMNet2.  Both in one run, same positions.
- **LAMMPS**: the shipped ``aimnet-chno`` (``dtype float32``) in a periodic box of methanol
  (84 molecules, 504 atoms, 0.79 g/cm^3; ``--molecules 334`` for 2,004), total charge +1,
  spin doublet, ``run`` of a few steps on 1 and 2 MPI ranks.  Its receptive field is 3 hops
  x 6 Å = 18 Å, so every rank holds ~11,000 ghost atoms whatever the box: the 2-rank run of
  2,004 atoms in float64 needs more than this machine's 24 GB.
- **Reductions**: on the same box in one domain, the time of the stage inputs
  (``reduction_inputs``, forward and backward: what a rank computes for the sums beyond the
  plain model) as a share of the whole staged evaluation, and the measured ``MPI_Allreduce``
  of those sums on 2 ranks as a share of the 2-rank step.

    .venv/bin/python benchmarks/charged_models.py [--steps N] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import multiscale
from multiscale.potentials.aimnet2 import from_aimnet2
from multiscale.units import EV_TO_KJ_PER_MOL

RESULTS = Path(__file__).resolve().parent / "results" / "charged_models.json"
BIN = Path(sys.executable).parent


def cluster() -> "ase.Atoms":
    """22 atoms: acetamide, methanol, water, formaldehyde around the origin (C/H/N/O)."""
    from ase.build import molecule
    parts = []
    for name, shift in (("CH3CONH2", (0, 0, 0)), ("CH3OH", (3.6, 0.5, 0)), ("H2O", (-2.5, 2.2, 0.8)),
                        ("H2CO", (0.5, -3.3, 1.0))):
        m = molecule(name)
        m.positions += np.array(shift) - m.get_center_of_mass()
        parts.append(m)
    atoms = sum(parts[1:], parts[0])
    assert len(atoms) == 22
    return atoms


def aimnet_module():
    import aimnet
    import yaml
    from aimnet.config import build_module
    with open(os.path.join(os.path.dirname(aimnet.__file__), "models", "aimnet2.yaml")) as fh:
        cfg = yaml.safe_load(fh)
    cfg["kwargs"]["num_charge_channels"] = 2
    torch.manual_seed(0)
    return build_module(cfg).float().eval()


def openmm_rows(steps: int) -> list[dict]:
    import openmm
    import openmm.app as app
    import openmm.unit as unit
    from multiscale.engines.openmm import create_force

    atoms = cluster()
    theirs = aimnet_module()
    ours = from_aimnet2(theirs, ["H", "C", "N", "O"]).float()
    work = Path(tempfile.mkdtemp())
    path = multiscale.export(ours, work / "aimnet2_float32.pt")
    topology = app.Topology()
    residue = topology.addResidue("CLU", topology.addChain())
    for s in atoms.get_chemical_symbols():
        topology.addAtom(s, app.Element.getBySymbol(s), residue)
    numbers = torch.tensor(atoms.get_atomic_numbers()[None])
    charge, mult = torch.tensor([1.0]), torch.tensor([2.0])

    def aimnet_compute(state):
        # aimnet's module on one molecule in its dense (all-pairs) mode, forces by autograd;
        # its AIMNet2Calculator wants neighbour matrices for a module it did not load itself
        pos = state.getPositions(asNumpy=True).value_in_unit(unit.angstrom)
        coord = torch.tensor(pos[None], dtype=torch.float32, requires_grad=True)
        energy = theirs({"coord": coord, "numbers": numbers, "charge": charge, "mult": mult})["energy"].sum()
        forces = -torch.autograd.grad(energy, coord)[0][0].double().numpy()
        return (float(energy) * EV_TO_KJ_PER_MOL * unit.kilojoule_per_mole,
                forces * EV_TO_KJ_PER_MOL * 10.0 * unit.kilojoule_per_mole / unit.nanometer)

    forces = {"ours (TorchForce)": create_force(path, topology, charge=1.0, spin=2),
              "aimnet (PythonForce)": openmm.PythonForce(aimnet_compute)}
    rows = []
    contexts = {}
    for name, force in forces.items():
        system = openmm.System()
        for a in topology.atoms():
            system.addParticle(a.element.mass)
        system.addForce(force)
        integrator = openmm.VerletIntegrator(0.5 * unit.femtosecond)
        context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"), {"Threads": "1"})
        context.setPositions(atoms.positions * 0.1)
        context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
        energy = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        integrator.step(3)                       # warm-up (TorchScript profiling runs)
        contexts[name] = (context, integrator, energy, [])
    for _ in range(5):                           # interleaved: the machine's noise hits both
        for name, (context, integrator, _, times) in contexts.items():
            start = time.perf_counter()
            integrator.step(steps)
            times.append((time.perf_counter() - start) / steps)
    for name, (_, _, energy, times) in contexts.items():
        rows.append({"force": name, "steps_per_s": 1 / statistics.median(times),
                     "ms_per_step": 1e3 * statistics.median(times), "energy_kJ_per_mol": energy})
    rows[0]["speedup_vs_aimnet"] = rows[0]["steps_per_s"] / rows[1]["steps_per_s"]
    rows[0]["energy_difference_kJ_per_mol"] = abs(rows[0]["energy_kJ_per_mol"] - rows[1]["energy_kJ_per_mol"])
    return rows


def methanol_box(n_molecules: int = 334, density: float = 0.79, seed: int = 0):
    """Methanol molecules on a jittered cubic grid, random orientations, periodic (Å)."""
    from ase.build import molecule
    from scipy.spatial.transform import Rotation
    rng = np.random.default_rng(seed)
    mass = molecule("CH3OH").get_masses().sum()
    length = (n_molecules * mass / (density * 0.602214)) ** (1 / 3)
    per_side = int(np.ceil(n_molecules ** (1 / 3)))
    spacing = length / per_side
    parts = []
    for k in range(n_molecules):
        m = molecule("CH3OH")
        m.positions = Rotation.random(random_state=rng.integers(1 << 30)).apply(m.positions - m.get_center_of_mass())
        cell = np.array([k % per_side, (k // per_side) % per_side, k // per_side ** 2])
        m.positions += (cell + 0.5) * spacing + rng.uniform(-0.3, 0.3, 3)
        parts.append(m)
    atoms = sum(parts[1:], parts[0])
    atoms.cell, atoms.pbc = [length] * 3, True
    atoms.wrap()
    return atoms


def lammps_rows(model: Path, atoms, steps: int) -> list[dict]:
    import ase.io
    work = Path(tempfile.mkdtemp())
    ase.io.write(work / "box.lmp", atoms, format="lammps-data", specorder=["C", "H", "N", "O"], masses=True,
                 atom_style="charge")
    script = "\n".join(["units metal", "atom_style charge", "atom_modify map array", "read_data box.lmp",
                        "comm_modify mode single", f"pair_style multiscale {model} charge 1.0 spin 2 dtype float32",
                        "pair_coeff * * C H N O", "velocity all create 300 1 mom yes rot yes",
                        "fix nve all nve", "timestep 0.0005", "thermo_style custom step pe etotal",
                        "thermo 1", "run 1", f"run {steps}"]) + "\n"
    (work / "in.lmp").write_text(script)
    rows = []
    for ranks in (1, 2):
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.run([str(BIN / "mpiexec"), "-n", str(ranks), str(BIN / "multiscale"), "lmp",
                               "-in", "in.lmp", "-log", f"log{ranks}.lammps", "-nocite"], cwd=work,
                              capture_output=True, text=True, env=env, timeout=3000)
        if proc.returncode != 0:
            raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
        loops = re.findall(r"Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps", proc.stdout)
        seconds, _, nsteps = loops[-1]
        pe = re.findall(r"^\s+\d+\s+(-?[0-9.]+)\s+-?[0-9.]+\s*$", proc.stdout, re.M)
        rows.append({"ranks": ranks, "atoms": len(atoms), "s_per_step": float(seconds) / int(nsteps),
                     "first_pe_eV": float(pe[0]) if pe else None})
    rows[1]["speedup_vs_1_rank"] = rows[0]["s_per_step"] / rows[1]["s_per_step"]
    return rows


def reduction_share(model: Path, atoms, repeats: int = 3) -> dict:
    """Stage inputs (forward + backward) as a share of the staged evaluation, one domain."""
    from multiscale.engines import neighbors
    loaded = multiscale.load(model)
    module = loaded.module
    elements = list(loaded.metadata.elements)
    species = torch.tensor([elements.index(s) for s in atoms.get_chemical_symbols()])
    edge_index, vectors = neighbors.edges(atoms.positions, atoms.cell.array, atoms.pbc, loaded.metadata.cutoff)
    n = len(atoms)
    widths = list(loaded.metadata.reductions)

    def staged():
        vec = vectors.to(loaded.dtype).requires_grad_(True)
        sums = []
        for k in range(len(widths)):
            sums.append(module.reduction_inputs(k, species, edge_index, vec, n, 1.0, 2, sums).sum(0))
        module.forward_reduced(species, edge_index, vec, n, 1.0, 2, sums)["energies"].sum().backward()

    def inputs_only():
        vec = vectors.to(loaded.dtype).requires_grad_(True)
        sums = []
        for k in range(len(widths)):
            sums.append(module.reduction_inputs(k, species, edge_index, vec, n, 1.0, 2, sums).sum(0))
        sum(s.sum() for s in sums).backward()

    times = {}
    for name, fn in (("staged", staged), ("inputs", inputs_only)):
        fn()
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
        times[name] = statistics.median(samples)
    # MPI_Allreduce of the sums (forward, then the adjoint) on 2 ranks, timed by mpi4py
    code = ("import time, numpy as np\nfrom mpi4py import MPI\nw = %r\nx = [np.ones(k) for k in w]\n"
            "for _ in range(50):\n    [MPI.COMM_WORLD.allreduce(a) for a in x]\n"
            "t = time.perf_counter()\nfor _ in range(2000):\n    for a in x + x:\n"
            "        b = np.empty_like(a); MPI.COMM_WORLD.Allreduce(a, b)\n"
            "dt = (time.perf_counter() - t) / 2000\nif MPI.COMM_WORLD.rank == 0: print(dt)\n") % widths
    proc = subprocess.run([str(BIN / "mpiexec"), "-n", "2", sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=600)
    allreduce = float(proc.stdout.split()[-1])
    return {"atoms": n, "staged_s": times["staged"], "stage_inputs_s": times["inputs"],
            "stage_inputs_share": times["inputs"] / times["staged"], "allreduce_s_per_step": allreduce}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="OpenMM steps per sample")
    parser.add_argument("--lammps-steps", type=int, default=3)
    parser.add_argument("--molecules", type=int, default=84, help="methanol molecules in the LAMMPS box")
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = multiscale.model.registry.model_path("aimnet-chno")
    box = methanol_box(args.molecules)
    out = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
           "openmm": openmm_rows(5 if args.quick else args.steps)}
    print(json.dumps(out["openmm"], indent=1), flush=True)
    out["reductions"] = reduction_share(model, box)
    print(json.dumps(out["reductions"], indent=1), flush=True)
    out["lammps"] = lammps_rows(model, box, 1 if args.quick else args.lammps_steps)
    step2 = out["lammps"][1]["s_per_step"]
    out["reductions"]["allreduce_share_of_2_rank_step"] = out["reductions"]["allreduce_s_per_step"] / step2
    print(json.dumps(out["lammps"], indent=1), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
