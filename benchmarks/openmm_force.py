"""OpenMM steps per second through our TorchForce, against the bare model call and openmm-ml's ANI.

One periodic TIP3P water box (OpenMM's Modeller, ``--box`` nm; about 300 atoms at the
default 1.45 nm), NVE Verlet at 0.5 fs on the CPU platform; every row is timed in the
same run on the same positions:

- ``ours ANI-2x (TorchForce)``: our ANI model (``multiscale.potentials.ANIModel``) with the
  weights of the torchani network below (``from_torchani``: the same network, same size),
  exported in float32 and run by ``multiscale_openmm.create_force``;
- ``ours MP (TorchForce)``: a two-hop ``MessagePassingPotential`` (cutoff 5.1 Å, float32)
  whose width is chosen so that its parameter count matches the ANI-2x networks that this
  box evaluates (the H and O networks);
- ``torchani ANI-2x (PythonForce)``: torchani 2.9's ANI-2x architecture, one network
  (openmm-ml's ``modelIndex``), random weights, run exactly as openmm-ml 1.8 runs ANI:
  an ``openmm.PythonForce`` calling ``openmmml.models.anipotential._computeANI``;
- ``ours ANI-2x (PythonForce)``: the first row through ``create_python_force``, the
  copyable force that openmm-ml's ``interpolate=True`` gets.

For each, "bare" is the model alone on the same input, forward + backward: for our rows
the TorchScript module the TorchForce holds (positions nm -> kJ/mol, neighbour list
included), evaluated and frozen as openmm-torch does; for torchani the model call that
``_computeANI`` makes. overhead = (time per
OpenMM step) / (time per bare call).

    .venv/bin/python benchmarks/openmm_force.py [--steps N] [--threads N] [--box NM] [--json FILE]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import openmm  # noqa: E402
import openmm.app as app  # noqa: E402
import openmm.unit as unit  # noqa: E402

import multiscale  # noqa: E402
from multiscale.potentials import MessagePassingPotential, from_torchani  # noqa: E402
from multiscale.engines.openmm import create_force, create_module, create_python_force  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "openmm_force.json"
ANI2X_SYMBOLS = ("H", "C", "N", "O", "S", "F", "Cl")
from multiscale.units import EV_TO_KJ_PER_MOL


def water_box(edge_nm: float):
    """(topology, positions (N, 3) nm) of a cubic TIP3P box from OpenMM's equilibrated water."""
    forcefield = app.ForceField("amber14/tip3p.xml")
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(forcefield, model="tip3p",
                        boxSize=openmm.Vec3(edge_nm, edge_nm, edge_nm) * unit.nanometer)
    return modeller.topology, np.array(modeller.getPositions().value_in_unit(unit.nanometer))


def torchani_ani2x(seed: int = 0):
    """torchani's ANI-2x (as ``torchani.models.ANI2x`` assembles it), one network, random weights."""
    import torchani

    asm = torchani.arch.Assembler(periodic_table_index=True)
    asm.set_symbols(ANI2X_SYMBOLS)
    asm.set_global_cutoff_fn("cosine")
    asm.set_aev_computer(radial="ani2x", angular="ani2x", strategy="pyaev")
    asm.set_atomic_networks(ctor="ani2x")
    asm.set_neighborlist("all_pairs")
    asm.set_gsaes_as_self_energies("wb97x-631gd")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = asm.assemble(1)
    return model.requires_grad_(False)


def n_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def ani_active_parameters(model, symbols) -> int:
    """Parameters of the element networks that the atoms of ``symbols`` go through."""
    return sum(n_parameters(model.neural_networks.atomics[s]) for s in sorted(set(symbols)))


def mp_matching(target: int, cutoff: float) -> MessagePassingPotential:
    """The two-hop message-passing model on H, O whose parameter count is closest to ``target``."""
    best = min(range(16, 1024, 4), key=lambda f: abs(n_parameters(
        MessagePassingPotential(["H", "O"], cutoff=cutoff, hops=2, features=f)) - target))
    return MessagePassingPotential(["H", "O"], cutoff=cutoff, hops=2, features=best, seed=1)


def float32(model: torch.nn.Module, path: Path) -> Path:
    import dataclasses
    return multiscale.export(model, path, metadata=dataclasses.replace(model.metadata(), dtype="float32"))


def context_for(topology, force, threads: int):
    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    system.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    system.addForce(force)
    integrator = openmm.VerletIntegrator(0.5 * unit.femtosecond)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"),
                             {"Threads": str(threads)})
    return context, integrator


class Row:
    """One model: an OpenMM context stepping it, and the bare call of the same model."""

    def __init__(self, name: str, force_name: str, parameters: int, force, bare, topology, positions,
                 threads: int):
        self.name, self.force_name, self.parameters, self.bare = name, force_name, parameters, bare
        self.context, self.integrator = context_for(topology, force, threads)
        self.context.setPositions(positions)
        self.context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
        self.energy = self.context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(
            unit.kilojoule_per_mole)
        self.step_times: list[float] = []
        self.bare_times: list[float] = []

    def step(self) -> None:
        self.integrator.step(1)

    def result(self) -> dict:
        steps, bare = 1 / statistics.median(self.step_times), 1 / statistics.median(self.bare_times)
        return {"model": self.name, "force": self.force_name, "parameters": self.parameters,
                "steps_per_s": steps, "bare_calls_per_s": bare, "overhead": bare / steps,
                "energy_kJ_per_mol": self.energy}


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure(rows: list[Row], rounds: int, warmup: int = 10) -> None:
    """Interleave one MD step and one bare call of every row per round, so that load from
    elsewhere on the machine hits all rows alike; medians over the rounds.

    The warm-up covers TorchScript's profiling executor, whose first calls of a module
    are slow (seconds for the ANI model) while it records and optimises the graph.
    """
    for row in rows:
        for _ in range(warmup):
            row.step()
            row.bare()
    for _ in range(rounds):
        for row in rows:
            row.step_times.append(timed(row.step))
            row.bare_times.append(timed(row.bare))


def ours_row(name, path, topology, positions, threads, params, python_force: bool = False) -> Row:
    # what create_force wraps, built the same way and frozen as openmm-torch freezes it
    module = torch.jit.freeze(create_module(path, topology).eval())
    x = torch.tensor(positions, dtype=torch.float64)
    box = torch.tensor(np.array(topology.getPeriodicBoxVectors().value_in_unit(unit.nanometer)),
                       dtype=torch.float64)

    def bare():
        p = x.clone().requires_grad_(True)
        torch.autograd.grad(module(p, box), p)
    if python_force:
        return Row(name, "PythonForce (create_python_force)", params, create_python_force(path, topology),
                   bare, topology, positions, threads)
    return Row(name, "TorchForce", params, create_force(path, topology), bare, topology, positions, threads)


def torchani_row(model, topology, positions, threads, params) -> Row:
    from openmmml.models.anipotential import _computeANI

    species = torch.tensor([[a.element.atomic_number for a in topology.atoms()]])
    pbc = torch.tensor([True, True, True])
    force = openmm.PythonForce(functools.partial(_computeANI, model=model, species=species, pbc=pbc))
    force.setUsesPeriodicBoundaryConditions(True)
    x = torch.tensor(positions * 10, dtype=torch.float32).unsqueeze(0)
    cell = torch.tensor(np.array(topology.getPeriodicBoxVectors().value_in_unit(unit.angstrom)),
                        dtype=torch.float32)

    def bare():
        p = x.clone().requires_grad_(True)
        _, e = model((species, p), cell=cell, pbc=pbc)
        torch.autograd.grad(e.sum(), p)
    return Row("torchani ANI-2x", "PythonForce (openmm-ml 1.8)", params, force, bare, topology,
               positions, threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40, help="timed MD steps (and bare calls) per row")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch and OpenMM CPU threads")
    parser.add_argument("--box", type=float, default=1.45, help="water box edge, nm")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # openmm-ml's _computeANI hands OpenMM an energy tensor that still requires grad
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True")

    topology, positions = water_box(args.box)
    symbols = [a.element.symbol for a in topology.atoms()]
    reference = torchani_ani2x()
    active = ani_active_parameters(reference, symbols)
    mp = mp_matching(active, cutoff=5.1)
    with tempfile.TemporaryDirectory() as tmp:
        ani_file = float32(from_torchani(reference), Path(tmp) / "ani2x.pt")
        mp_file = float32(mp, Path(tmp) / "mp.pt")
        rows = [ours_row("ours ANI-2x", ani_file, topology, positions, args.threads, active),
                ours_row(f"ours MP (2 hops, {mp.embedding.embedding_dim} features)", mp_file, topology,
                         positions, args.threads, n_parameters(mp)),
                torchani_row(reference, topology, positions, args.threads, active),
                ours_row("ours ANI-2x", ani_file, topology, positions, args.threads, active,
                         python_force=True)]
    measure(rows, args.steps)
    rows = [row.result() for row in rows]
    ours, theirs = rows[0]["energy_kJ_per_mol"], rows[2]["energy_kJ_per_mol"]
    same_network = abs(ours - theirs) / abs(theirs)

    print(f"{len(symbols)} atoms of TIP3P water, periodic {args.box} nm box, CPU, {args.threads} threads, "
          f"float32 models; {args.steps} steps per row")
    print(f"{'model':32s} {'force':34s} {'params':>9s} {'steps/s':>8s} {'bare/s':>8s} {'overhead':>9s}")
    for r in rows:
        print(f"{r['model']:32s} {r['force']:34s} {r['parameters']:9d} {r['steps_per_s']:8.1f} "
              f"{r['bare_calls_per_s']:8.1f} {r['overhead']:8.2f}x")
    speedup = rows[0]["steps_per_s"] / rows[2]["steps_per_s"]
    print(f"same ANI-2x network: ours (TorchForce) / torchani (PythonForce) steps/s = {speedup:.2f}; "
          f"|E_ours - E_torchani| / |E| = {same_network:.1e} (float32)")

    out = {"what": "MD steps per second (energy + forces, NVE Verlet) and bare model calls per second",
           "overhead": "bare calls/s divided by steps/s (1.0: OpenMM adds nothing)",
           "system": {"atoms": len(symbols), "box_nm": args.box, "periodic": True, "water": "TIP3P"},
           "threads": args.threads, "cpu": platform.processor() or platform.machine(),
           "load_average_after": os.getloadavg(),
           "versions": {"torch": torch.__version__, "openmm": openmm.__version__},
           "parameters": {"ani2x_all_seven_networks": n_parameters(reference.neural_networks),
                          "ani2x_H_and_O_networks": active, "message_passing": n_parameters(mp)},
           "ani_ours_over_torchani_steps_per_s": speedup,
           "ani_energy_relative_difference": same_network, "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
