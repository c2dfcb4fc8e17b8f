"""Contract version 2: models with per-system sums (charges normalised to the total charge)
give the same numbers in ASE, OpenMM and LAMMPS on 1 to 4 ranks, with exact total charge,
and forces and stresses that are derivatives of the energy through the reductions."""

import numpy as np
import pytest
import torch
from ase import Atoms

import multiscale
from charged_models import TwoPassCharges
from lmp_runs import DUMP, THERMO, relative, run_ok
from multiscale.engines import neighbors
from multiscale.engines.scatter import evaluate

ELEMENTS = ["H", "C", "O"]
CASES = [(0.0, 1), (1.0, 2), (-2.0, 1), (2.0, 3)]   # (Q, M)


@pytest.fixture(scope="module")
def model_file(model_dir):
    return multiscale.export(TwoPassCharges(ELEMENTS), model_dir / "two_pass.pt")


def box_of_molecules(seed=3, n=48, length=9.0):
    """Random H/C/O atoms in a periodic box, no two closer than 1 Å."""
    rng = np.random.default_rng(seed)
    positions = []
    while len(positions) < n:
        p = rng.uniform(0.0, length, 3)
        if all(np.linalg.norm((p - q + length / 2) % length - length / 2) > 1.0 for q in positions):
            positions.append(p)
    symbols = rng.choice(ELEMENTS, n)
    return Atoms(list(symbols), positions=positions, cell=[length, length * 1.05, length * 0.95], pbc=True)


def _calc(model_file, atoms, charge, spin):
    atoms = atoms.copy()
    atoms.calc = multiscale.MultiscaleCalculator(model_file, charge=charge, spin=spin)
    return atoms


def test_metadata_declares_the_stages_and_version_2(model_file):
    meta = multiscale.load(model_file).metadata
    assert meta.reductions == (4, 4) and meta.contract_version == 2
    plain = multiscale.load(multiscale.model.registry.model_path("si-ani")).metadata
    assert plain.reductions == () and plain.contract_version == 1   # old files keep loading


@pytest.mark.parametrize("charge,spin", CASES)
def test_total_charge_is_exact(model_file, charge, spin):
    atoms = _calc(model_file, box_of_molecules(), charge, spin)
    q = atoms.get_charges()
    assert abs(q.sum() - charge) <= 1e-10
    assert np.ptp(q) > 0.05          # the charges really depend on the environment


def test_forces_and_stress_are_derivatives_through_the_reductions(model_file):
    atoms = _calc(model_file, box_of_molecules(n=24, length=7.0), 1.0, 2)
    forces, stress = atoms.get_forces(), atoms.get_stress(voigt=False)
    h = 1e-5
    for a, c in [(0, 0), (5, 1), (11, 2), (17, 0)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[a, c] += h
        minus.positions[a, c] -= h
        fd = -(_calc(model_file, plus, 1.0, 2).get_potential_energy()
               - _calc(model_file, minus, 1.0, 2).get_potential_energy()) / (2 * h)
        assert abs(fd - forces[a, c]) <= 1e-6 * max(1.0, abs(forces[a, c]))
    volume = atoms.get_volume()
    for a, b in [(0, 0), (1, 2), (2, 1)]:
        energies = []
        for sign in (1, -1):
            strain = np.eye(3)
            strain[a, b] += sign * h
            strained = atoms.copy()
            strained.set_cell(atoms.cell.array @ strain.T, scale_atoms=True)
            energies.append(_calc(model_file, strained, 1.0, 2).get_potential_energy())
        fd = (energies[0] - energies[1]) / (2 * h) / volume
        assert abs(fd - 0.5 * (stress[a, b] + stress[b, a])) <= 1e-6 * max(1.0, abs(stress).max())


def test_engine_paths_without_every_atom_refuse(model_file):
    loaded = multiscale.load(model_file)
    atoms = box_of_molecules(n=10, length=6.0)
    species = torch.tensor([ELEMENTS.index(s) for s in atoms.get_chemical_symbols()])
    edge_index, vectors = neighbors.edges(atoms.positions, atoms.cell.array, atoms.pbc, 3.5)
    with pytest.raises(ValueError, match="needs sums over the whole system"):
        evaluate(loaded, species, edge_index, vectors, n_local=6)


def _lammps_script(model, charge, spin):
    return "\n".join(["units metal", "atom_style atomic", "atom_modify map array",
                      "read_data ../data.lmp",
                      f"pair_style multiscale {model} charge {charge} spin {spin}",
                      "pair_coeff * * H C O", *DUMP, "run 0", *THERMO]) + "\n"


@pytest.mark.mpi
def test_lammps_one_to_four_ranks_equal_ase(tmp_path, model_file):
    import ase.io
    atoms = box_of_molecules(n=60, length=10.0)
    ase.io.write(tmp_path / "data.lmp", atoms, format="lammps-data", specorder=ELEMENTS, masses=True)
    charge = 1.0
    spin = 2 if (int(atoms.get_atomic_numbers().sum()) - 1) % 2 else 3   # an open shell either way
    ref = _calc(model_file, atoms, charge, spin)
    order = np.lexsort(np.round(atoms.positions, 4).T[::-1])   # the order lmp_runs.read uses
    energy, forces = ref.get_potential_energy(), ref.get_forces()[order]
    per_atom = ref.get_potential_energies()[order]
    results = {}
    for ranks in (1, 2, 3, 4):
        results[ranks] = run_ok(_lammps_script(model_file, charge, spin), tmp_path / f"r{ranks}", ranks)
        got = results[ranks]
        assert abs(got["pe"] - energy) <= 1e-10 * abs(energy), ranks
        assert relative(got["forces"], forces) <= 1e-10, ranks
        assert relative(got["energies"], per_atom) <= 1e-10, ranks
        assert relative(got["stresses"], results[1]["stresses"]) <= 1e-10, ranks
        assert relative(got["pressure"], results[1]["pressure"]) <= 1e-10, ranks
    # the global virial is the strain derivative: ASE's stress from the same edge gradients
    volume = atoms.get_volume()
    pxx_ase = -ref.get_stress()[0] * volume
    nktv2p = 1.6021765e6   # LAMMPS metal: eV/Å^3 -> bar
    assert abs(results[1]["pressure"][0] * volume / nktv2p - pxx_ase) <= 1e-6 * max(1.0, abs(pxx_ase))


def test_openmm_equals_ase(model_file):
    import openmm
    import openmm.unit as unit
    from openmm_systems import topology_of
    from multiscale.engines.openmm import create_force
    from multiscale.units import EV_TO_KJ_PER_MOL
    atoms = box_of_molecules(n=30, length=8.0)
    ref = _calc(model_file, atoms, -1.0, 2)
    topology = topology_of(atoms)
    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    system.setDefaultPeriodicBoxVectors(*(np.diag(atoms.cell.lengths()) * 0.1 * unit.nanometer))
    system.addForce(create_force(model_file, topology, charge=-1.0, spin=2))
    context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(atoms.positions * 0.1)
    state = context.getState(getEnergy=True, getForces=True)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) / EV_TO_KJ_PER_MOL
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.angstrom)
    assert abs(energy - ref.get_potential_energy()) <= 1e-10 * abs(energy)
    assert relative(forces / EV_TO_KJ_PER_MOL, ref.get_forces()) <= 1e-10


def _charge_script(model, charge, spin, extra):
    return "\n".join(["units metal", "atom_style charge", "atom_modify map array",
                      "read_data ../data.lmp",
                      f"pair_style multiscale {model} charge {charge} spin {spin}",
                      "pair_coeff * * H C O", *extra]) + "\n"


@pytest.mark.mpi
def test_lammps_writes_the_charges_and_conserves_energy(tmp_path, model_file):
    """atom_style charge: the model's charges land on the atoms (dump q), sum to Q on 2 ranks
    and equal ASE's; NVE over 1000 steps of 0.25 fs conserves the energy."""
    import ase.io
    atoms = box_of_molecules(n=40, length=9.0)
    atoms.set_initial_charges(np.zeros(len(atoms)))
    ase.io.write(tmp_path / "data.lmp", atoms, format="lammps-data", specorder=ELEMENTS, masses=True,
                 atom_style="charge")
    ref = _calc(model_file, atoms, 1.0, 2)
    order = np.lexsort(np.round(atoms.positions, 4).T[::-1])
    extra = ["run 0", "dump q all custom 1 charges.txt x y z q", "dump_modify q sort id format float %.17g",
             "run 0", "undump q",
             "velocity all create 300.0 4321 mom yes rot yes", "fix nve all nve", "timestep 0.00025",
             "thermo_style custom step pe ke etotal", "thermo 100",
             'fix e all print 100 "$(etotal:%.12g)" file energy.txt screen no', "run 1000"]
    from lmp_runs import run
    proc = run(_charge_script(model_file, 1.0, 2, extra), tmp_path / "run", ranks=2)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = (tmp_path / "run" / "charges.txt").read_text().splitlines()
    n = int(lines[3])
    rows = np.array([[float(v) for v in line.split()] for line in lines[9:9 + n]])
    rows = rows[np.lexsort(np.round(rows[:, :3], 4).T[::-1])]
    assert abs(rows[:, 3].sum() - 1.0) <= 1e-10
    assert relative(rows[:, 3], ref.get_charges()[order]) <= 1e-10
    etotal = np.loadtxt(tmp_path / "run" / "energy.txt")
    assert len(etotal) == 11 and np.ptp(etotal) < 2e-3 * len(atoms) * 0.0388   # < 0.2 % of kT per atom


def test_impossible_charge_and_spin_are_refused_everywhere(tmp_path, model_file):
    from openmm_systems import topology_of
    from multiscale.engines.openmm import create_force
    from lmp_runs import run
    import ase.io
    atoms = box_of_molecules(n=12, length=6.0)
    electrons = int(atoms.get_atomic_numbers().sum())
    spin = 1 if electrons % 2 else 2          # wrong parity for the neutral system
    message = f"charge 0 and spin multiplicity {spin} are impossible for {electrons} electrons"
    with pytest.raises(ValueError, match=message):
        _calc(model_file, atoms, 0.0, spin).get_potential_energy()
    with pytest.raises(ValueError, match=message):
        create_force(model_file, topology_of(atoms), charge=0.0, spin=spin)
    ase.io.write(tmp_path / "data.lmp", atoms, format="lammps-data", specorder=ELEMENTS, masses=True)
    proc = run(_lammps_script(model_file, 0.0, spin), tmp_path / "lmp", ranks=1)
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr
    _calc(model_file, atoms, 1.0, spin).get_potential_energy()   # one electron fewer: fine


def test_openmm_ml_takes_charge_and_multiplicity(model_file):
    import openmm
    import openmm.unit as unit
    from openmmml import MLPotential
    from openmm_systems import topology_of
    from multiscale.units import EV_TO_KJ_PER_MOL
    atoms = box_of_molecules(n=20, length=7.0)
    atoms.pbc = False
    atoms.cell = None
    spin = 2 if (int(atoms.get_atomic_numbers().sum()) + 1) % 2 else 1
    system = MLPotential("multiscale", modelFile=str(model_file)).createSystem(
        topology_of(atoms), charge=-1.0, multiplicity=spin)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(atoms.positions * 0.1)
    energy = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    expected = _calc(model_file, atoms, -1.0, spin).get_potential_energy()
    assert abs(energy / EV_TO_KJ_PER_MOL - expected) <= 1e-10 * abs(expected)
